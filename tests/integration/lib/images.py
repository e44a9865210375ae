#!/usr/bin/env python3
"""tests/integration/lib/images.py — image helpers for the retrieval tests,
plain python3 (standard library only), independent of isifd's own codecs.

    images.py idx-pgm SPLIT INDEX OUT.pgm
        image INDEX of Fashion-MNIST's SPLIT (train/test), read straight
        from Debian's IDX files, as a binary PGM (for cjpeg)
    images.py png-equals-pgm FILE.png FILE.pgm
        exit 0 when the 8-bit gray PNG decodes (zlib + the five PNG row
        filters, by hand) to exactly the PGM's pixels
    images.py huge-png OUT.png WIDTH HEIGHT
        a well-formed PNG header claiming WIDTH x HEIGHT gray pixels,
        with one small compressed row: a decoder must refuse it by size
    images.py folder-dataset ROOT
        a tiny image-folder dataset: train/{a,b}/*.png, test/{a,b}/*.png
    images.py idat-bomb OUT.png
        9.7 MB declaring 16x16 gray whose deflate stream goes on for 9.3 GiB
        of zeros past the rows (libpng used to inflate it all: 20 s)
    images.py scan-flood OUT.jpg
        a flat 4096x4096 progressive JPEG of 490 identical refinement scans,
        16 KB (each scan walks every block: 7 s)
"""
import gzip
import os
import struct
import sys
import zlib

FMNIST = "/usr/share/datasets/fashion-mnist"


def idx_image(split, index):
    name = "train-images-idx3-ubyte.gz" if split == "train" else "t10k-images-idx3-ubyte.gz"
    data = gzip.open(os.path.join(FMNIST, name)).read()
    magic, n, h, w = struct.unpack(">IIII", data[:16])
    assert magic == 2051 and 0 <= index < n
    off = 16 + index * h * w
    return w, h, data[off:off + h * w]


def write_pgm(path, w, h, px):
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (w, h) + px)


def read_pgm(path):
    data = open(path, "rb").read()
    fields = data.split(maxsplit=4)
    assert fields[0] == b"P5"
    return int(fields[1]), int(fields[2]), fields[4]


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_png(path, w, h, rows, depth=8, color=0):
    raw = b"".join(b"\0" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def decode_gray_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color == 0 and interlace == 0, "8-bit gray only"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, out, prev = zlib.decompress(idat), bytearray(), bytearray(w)
    for y in range(h):
        f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
        for x in range(w):
            a = line[x - 1] if x else 0
            b, c = prev[x], prev[x - 1] if x else 0
            line[x] = (line[x] + [0, a, b, (a + b) // 2, paeth(a, b, c)][f]) & 255
        out += line
        prev = line
    return w, h, bytes(out)


def idat_bomb(w=16, h=16, extra_mib=9523):
    """The rows, then a full-flushed 1 MiB of zeros (about 1 KiB, no
    reference across the flush) repeated, an empty final stored block and
    the Adler-32 of it all (zeros add the low half to the high half)."""
    raw = b"".join(b"\0" + bytes(w) for _ in range(h))
    c = zlib.compressobj(9)
    head = c.compress(raw) + c.flush(zlib.Z_FULL_FLUSH)
    seg = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    a0 = zlib.adler32(raw)
    lo, hi = a0 & 0xffff, ((a0 >> 16) + (extra_mib << 20) * (a0 & 0xffff)) % 65521
    z = head + seg * extra_mib + b"\x01\x00\x00\xff\xff" + struct.pack(">I", hi << 16 | lo)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", z) + chunk(b"IEND", b"")


def jpeg_segment(marker, body):
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body


def scan_flood(side=4096, scans=490):
    """Gray progressive, no DC scan (libjpeg only warns), `scans` AC
    refinement scans (1..63, Ah 1) that are each one end-of-band run over
    every block: Huffman '0' = EOB14 + 14 bits (32767 blocks), '10' =
    EOB_r + r bits for the rest."""
    bits, left = "", (side // 8) ** 2
    while left >= 32767:
        bits, left = bits + "0" + "1" * 14, left - 32767
    r = max(left.bit_length() - 1, 0)
    if left:
        bits += "10" + (format(left - (1 << r), "0%db" % r) if r else "")
    bits += "1" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big").replace(b"\xff", b"\xff\x00")
    out = b"\xff\xd8" + jpeg_segment(0xDB, b"\x00" + bytes([1] * 64))
    out += jpeg_segment(0xC2, struct.pack(">BHHB", 8, side, side, 1) + b"\x01\x11\x00")
    out += jpeg_segment(0xC4, b"\x10" + bytes([1, 1] + [0] * 14) + bytes([0xE0, r << 4]))
    out += (jpeg_segment(0xDA, bytes([1, 1, 0x00, 1, 63, 0x10])) + data) * scans
    return out + b"\xff\xd9"


def main():
    cmd = sys.argv[1]
    if cmd == "idx-pgm":
        w, h, px = idx_image(sys.argv[2], int(sys.argv[3]))
        write_pgm(sys.argv[4], w, h, px)
    elif cmd == "png-equals-pgm":
        sys.exit(0 if decode_gray_png(sys.argv[2]) == read_pgm(sys.argv[3]) else 1)
    elif cmd == "huge-png":
        w, h = int(sys.argv[3]), int(sys.argv[4])
        write_png(sys.argv[2], w, h, [bytes(w)])
    elif cmd == "folder-dataset":
        root = sys.argv[2]
        for split, count in (("train", 6), ("test", 2)):
            for cls, shade in (("a", 40), ("b", 200)):
                d = os.path.join(root, split, cls)
                os.makedirs(d, exist_ok=True)
                for i in range(count):
                    rows = [bytes((shade + 3 * i + x) & 255 for x in range(8)) for _ in range(8)]
                    write_png(os.path.join(d, "%d.png" % i), 8, 8, rows)
    elif cmd == "idat-bomb":
        open(sys.argv[2], "wb").write(idat_bomb())
    elif cmd == "scan-flood":
        open(sys.argv[2], "wb").write(scan_flood())
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
