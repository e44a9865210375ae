#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Run from the repository root with plain python3 (no numpy); JPEG seeds need
cjpeg (Debian's libjpeg-turbo-progs). The files are committed; rerun only to
change them:  python3 tests/fuzz/make_seeds.py
Each seed is a small valid input (or a near miss) in the framing its target
expects (see the comment at the top of tests/fuzz/fuzz_<target>.c).
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def parts(*ps):
    """fuzz_split framing: every part but the last behind a u32 LE length."""
    out = b""
    for p in ps[:-1]:
        out += struct.pack("<I", len(p)) + p
    return out + ps[-1]


def pattern(n, k=7):
    return bytes((i * k + 3) % 256 for i in range(n))


# ---- spec ---------------------------------------------------------------
def spec_seeds():
    full = {"dataset": "fashion-mnist", "model": "resnet20", "epochs": 20,
            "batch_size": 128, "lr": 0.03, "momentum": 0.9, "weight_decay": 5e-4,
            "nesterov": False,
            "lr_schedule": {"type": "step", "milestones": [120, 160], "factors": [0.1, 0.05]},
            "temperature": 0.1, "embedding_dim": 128, "seed": 1, "threads": 0,
            "augment": {"crop": True, "crop_scale": [0.2, 1.0], "hflip": 0.5, "grayscale": 0.2,
                        "color_jitter": {"brightness": 0.4, "contrast": 0.4,
                                         "saturation": 0.4, "hue": 0.4, "p": 1.0}},
            "gradient": "reference", "bn_groups": 1,
            "eval": {"knn_k": 200, "knn_temperature": 0.1, "every": 1},
            "train_subset": 0, "classes": None}
    seeds = {
        "minimal": {"dataset": "fashion-mnist"},
        "full": full,
        "cosine": {"dataset": "d", "model": "convnet", "lr_schedule": {
            "type": "cosine", "warmup_epochs": 2, "min_lr": 0.001}, "gradient": "full"},
        "classes": {"dataset": "d", "classes": {"train": [0, 1, 2, 3, 4], "test": [5, 6, 7]}},
        "unknown_field": {"dataset": "d", "bogus": 1},
        "wrong_type": {"dataset": "d", "epochs": "ten"},
        "out_of_range": {"dataset": "d", "augment": {"color_jitter": {"hue": 0.9}}},
    }
    for i, (name, obj) in enumerate(sorted(seeds.items())):
        put("spec", name, bytes([i % 2]) + json.dumps(obj).encode())
    put("spec", "not_json", b"\x01{\"dataset\": \"d\", ")
    put("spec", "array", b"\x01[1, 2, 3]")


# ---- IDX ------------------------------------------------------------------
def idx_images(n, h, w):
    return struct.pack(">IIII", 0x803, n, h, w) + pattern(n * h * w)


def idx_labels(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)


def idx_seeds():
    tr, trl = idx_images(3, 4, 5), idx_labels([0, 1, 2])
    te, tel = idx_images(2, 4, 5), idx_labels([2, 0])
    put("idx", "plain", parts(tr, trl, te, tel))
    put("idx", "gzip", parts(*(gzip.compress(x, mtime=0) for x in (tr, trl, te, tel))))
    put("idx", "bad_magic", parts(b"\x00\x00\x08\x02" + tr[4:], trl, te, tel))
    put("idx", "truncated", parts(tr[:-3], trl, te, tel))


# ---- CIFAR and STL ----------------------------------------------------------
def cifar_seeds():
    def rec10(label, k):
        return bytes([label]) + pattern(3072, k)

    batches = [rec10(i % 10, i + 1) for i in range(5)]
    put("cifar", "cifar10", b"\x00" + parts(*batches, rec10(3, 9),
                                           b"\n".join(b"class%d" % i for i in range(10))))
    rec100 = bytes([4, 42]) + pattern(3072, 5)
    put("cifar", "cifar100", b"\x01" + parts(rec100 + rec100, rec100, b"apple\npear\n"))
    put("cifar", "cifar10_short", b"\x00" + parts(*batches[:4], batches[4][:-1], rec10(0, 2), b""))


def stl_seeds():
    img = pattern(27648, 3)
    names = b"\n".join(b"c%d" % i for i in range(10))
    put("stl", "labelled", b"\x00" + parts(img, b"\x01", img, b"\x0a", b"", names))
    put("stl", "unlabeled", b"\x01" + parts(img, b"\x05", img, b"\x02", img, b""))


# ---- images -------------------------------------------------------------------
def adam7(w, h, rows, bpp):
    """The interlaced stream: each Adam7 pass's sub-image, rows filtered with 0."""
    out = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        xs = range(x0, w, dx)
        if not xs:
            continue
        for y in range(y0, h, dy):
            out += b"\x00" + b"".join(rows[y][x * bpp:(x + 1) * bpp] for x in xs)
    return out


def png(w, h, color_type, bit_depth, rows, interlace=0, plte=None, trns=None):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    if interlace:
        raw = adam7(w, h, rows, len(rows[0]) // w)
    else:
        raw = b"".join(b"\x00" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, interlace))
    if plte:
        out += chunk(b"PLTE", plte)
    if trns:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def image_seeds():
    w, h = 6, 5
    put("image", "gray8.png", png(w, h, 0, 8, [pattern(w, y + 1) for y in range(h)]))
    put("image", "rgb8.png", png(w, h, 2, 8, [pattern(3 * w, y + 2) for y in range(h)]))
    put("image", "rgba8.png", png(w, h, 6, 8, [pattern(4 * w, y + 3) for y in range(h)]))
    put("image", "gray16.png", png(w, h, 0, 16, [pattern(2 * w, y + 4) for y in range(h)]))
    put("image", "palette.png", png(w, h, 3, 8, [bytes(i % 4 for i in range(w))] * h,
                                    plte=pattern(12, 11), trns=b"\x80"))
    put("image", "gray1.png", png(8, 2, 0, 1, [b"\xa5", b"\x5a"]))
    put("image", "interlaced.png", png(w, h, 2, 8, [pattern(3 * w, y + 5) for y in range(h)],
                                       interlace=1))
    if shutil.which("cjpeg"):
        with tempfile.TemporaryDirectory() as t:
            ppm = os.path.join(t, "a.ppm")
            pgm = os.path.join(t, "a.pgm")
            with open(ppm, "wb") as f:
                f.write(b"P6 9 7 255\n" + pattern(9 * 7 * 3, 13))
            with open(pgm, "wb") as f:
                f.write(b"P5 9 7 255\n" + pattern(9 * 7, 17))
            for name, src, args in (("rgb.jpg", ppm, []), ("gray.jpg", pgm, []),
                                    ("progressive.jpg", ppm, ["-progressive"]),
                                    ("restart.jpg", ppm, ["-restart", "1"])):
                data = subprocess.run(["cjpeg", "-quality", "90"] + args + [src],
                                      check=True, capture_output=True).stdout
                put("image", name, data)


# ---- safetensors and npy ---------------------------------------------------------
def safetensors(tensors, meta=None):
    header, data = {}, b""
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def st_seeds():
    f32 = struct.pack("<6f", 0.5, -1, 2, 3.25, 1e-3, -7.5)
    put("safetensors", "two_tensors", safetensors(
        [("a.weight", "F32", [2, 3], f32),
         ("bn1.num_batches_tracked", "I64", [], struct.pack("<q", 7))],
        {"model": "convnet", "epoch": "3"}))
    put("safetensors", "empty", safetensors([]))
    put("safetensors", "convnet_names", safetensors(
        [("features.0.weight", "F32", [32, 1, 3, 3], bytes(4 * 288)),
         ("linear.bias", "F32", [128], bytes(512))], {"model": "convnet", "steps": "10"}))
    put("safetensors", "momentum", safetensors(
        [("features.0.weight.momentum_buffer", "F32", [32, 1, 3, 3], bytes(4 * 288))],
        {"steps": "5"}))


def npy(shape, version=1, descr="<f4", fortran=False):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False",
        "".join("%d, " % s for s in shape) if len(shape) != 1 else "%d," % shape[0])
    pre = 6 + 2 + (2 if version == 1 else 4)
    d = d + " " * (-(pre + len(d) + 1) % 64) + "\n"
    n = 1
    for s in shape:
        n *= s
    return (b"\x93NUMPY" + bytes([version, 0]) +
            (struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d))) +
            d.encode() + pattern(4 * n))


def npy_seeds():
    put("npy", "v1_2x3", npy([2, 3]))
    put("npy", "v2_vector", npy([5], version=2))
    put("npy", "scalar", npy([]))
    put("npy", "empty_rows", npy([0, 4]))
    put("npy", "float64", npy([2], descr="<f8"))
    put("npy", "fortran", npy([2, 2], fortran=True))


# ---- HTTP ---------------------------------------------------------------------
TOKEN = b"fuzz-token-0123456789abcdef"


def urlguard_seeds():
    for name, addr in (("loopback", "127.0.0.1"), ("metadata", "169.254.169.254"),
                       ("private", "192.168.1.1"), ("public", "93.184.216.34")):
        put("urlguard", "v4_" + name, b"\x00" + bytes(int(x) for x in addr.split(".")))
    put("urlguard", "v6_mapped", b"\x00" + bytes(10) + b"\xff\xff\x7f\x00\x00\x01")
    put("urlguard", "v6_ula", b"\x00\xfd" + bytes(14))
    for i, url in enumerate((b"http://example.com/a.png", b"https://[::1]:8443/x?y=1",
                             b"HTTP://0x7f.1/", b"ftp://x/", b"http:///x", b"http://a b/")):
        put("urlguard", "url%d" % i, b"\x01" + url)


def http_seeds():
    def req(which, method, path, headers=(), body=b""):
        h = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path)
        for k, v in headers:
            h += k + b": " + v + b"\r\n"
        if body and not any(k.lower() == b"transfer-encoding" for k, _ in headers):
            h += b"Content-Length: %d\r\n" % len(body)
        return bytes([which]) + h + b"\r\n" + body

    spec = json.dumps({"dataset": "fashion-mnist", "model": "convnet", "epochs": 1}).encode()
    js = (b"Content-Type", b"application/json")
    auth = (b"Authorization", b"Bearer " + TOKEN)
    seeds = {
        "healthz": req(0, b"GET", b"/healthz"),
        "submit": req(0, b"POST", b"/jobs?priority=5", [js], spec),
        "submit_bad": req(0, b"POST", b"/jobs", [js], b'{"dataset": 3}'),
        "submit_chunked": req(0, b"POST", b"/jobs", [js, (b"Transfer-Encoding", b"chunked")],
                              b"%x\r\n%s\r\n0\r\n\r\n" % (len(spec), spec)),
        "submit_wrong_type": req(0, b"POST", b"/jobs", [(b"Content-Type", b"text/plain")], spec),
        "submit_too_large": req(0, b"POST", b"/jobs", [js, (b"Content-Length", b"99999999")]),
        "list": req(0, b"GET", b"/jobs?status=succeeded&limit=5"),
        "job": req(0, b"GET", b"/jobs/1"),
        "metrics_csv": req(0, b"GET", b"/jobs/1/metrics?since=0&format=csv"),
        "events": req(0, b"GET", b"/jobs/1/events"),
        "cancel": req(0, b"POST", b"/jobs/1/cancel"),
        "delete": req(0, b"DELETE", b"/jobs/1"),
        "checkpoint": req(0, b"GET", b"/jobs/1/checkpoint"),
        "prometheus": req(0, b"GET", b"/metrics"),
        "datasets": req(0, b"GET", b"/datasets"),
        "static": req(0, b"GET", b"/app.js"),
        "index": req(0, b"HEAD", b"/"),
        "traversal": req(0, b"GET", b"/../../etc/passwd"),
        "bad_id": req(0, b"GET", b"/jobs/99999999999999999999"),
        "method": req(0, b"PUT", b"/jobs/1"),
        "token_ok": req(1, b"GET", b"/jobs", [auth]),
        "token_query": req(1, b"GET", b"/jobs/1/events?access_token=" + TOKEN),
        "token_wrong": req(1, b"POST", b"/jobs", [js, (b"Authorization", b"Bearer nope")], spec),
        "pipelined": req(0, b"GET", b"/healthz") + req(0, b"GET", b"/jobs")[1:],
        "expect": req(0, b"POST", b"/jobs", [js, (b"Expect", b"100-continue")], spec),
        "dataset": req(0, b"GET", b"/datasets/fashion-mnist"),
        "dataset_image": req(0, b"GET", b"/datasets/fashion-mnist/images/test/3"),
        "dataset_register": req(0, b"POST", b"/datasets", [js],
                                b'{"name": "d2", "format": "idx", "path": "/nonexistent"}'),
        "neighbors_ref": req(0, b"GET", b"/neighbors?image=train:12&k=5&job=1"),
        "neighbors_url": req(0, b"GET", b"/neighbors?image=http://127.0.0.1:9/x.png&k=3"),
        "neighbors_post": req(0, b"POST", b"/neighbors?k=2", [(b"Content-Type", b"image/png")],
                              b"\x89PNG\r\n\x1a\n" + bytes(40)),
        "neighbors_batch": req(0, b"POST", b"/neighbors/batch", [js],
                               b'{"images": ["train:1", "test:2"], "k": 3, "job": 1}'),
        "embeddings": req(0, b"GET", b"/jobs/1/embeddings?format=csv&split=test"),
    }
    for name, data in seeds.items():
        put("http", name, data)


if __name__ == "__main__":
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    spec_seeds()
    idx_seeds()
    cifar_seeds()
    stl_seeds()
    image_seeds()
    st_seeds()
    npy_seeds()
    urlguard_seeds()
    http_seeds()
