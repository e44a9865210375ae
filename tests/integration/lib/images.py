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
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
