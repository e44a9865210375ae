#!/usr/bin/env python3
"""tests/cli/gen_shapes.py — writes a folder dataset of 20 classes of visually
separable shapes and textures as small RGB PNGs (pure Python: zlib + struct):

    OUT/train/<class>/NNN.png  and  OUT/test/<class>/NNN.png

Each image draws its class's pattern at a random offset and scale in a random
foreground colour on a random background, with pixel noise, so colour says
nothing about the class and only the shape does. Seeded: the same arguments
give the same files.

usage: gen_shapes.py OUT [--train N] [--test N] [--size 32] [--seed 1]
"""
import argparse
import math
import os
import random
import struct
import zlib


def _circle(u, v, p):
    return u * u + v * v < 0.45


def _ring(u, v, p):
    return 0.25 < u * u + v * v < 0.55


def _square(u, v, p):
    return abs(u) < 0.6 and abs(v) < 0.6


def _square_outline(u, v, p):
    m = max(abs(u), abs(v))
    return 0.45 < m < 0.7


def _triangle(u, v, p):
    return v > -0.6 and abs(u) < (0.7 - v) * 0.55 and v < 0.7


def _plus(u, v, p):
    return (abs(u) < 0.18 or abs(v) < 0.18) and max(abs(u), abs(v)) < 0.8


def _x_cross(u, v, p):
    return (abs(u - v) < 0.22 or abs(u + v) < 0.22) and max(abs(u), abs(v)) < 0.8


def _hstripes(u, v, p):
    return math.sin(v * 9 + p) > 0


def _vstripes(u, v, p):
    return math.sin(u * 9 + p) > 0


def _dstripes(u, v, p):
    return math.sin((u + v) * 7 + p) > 0


def _checker(u, v, p):
    return (math.sin(u * 5 + p) > 0) ^ (math.sin(v * 5 + p) > 0)


def _fine_checker(u, v, p):
    return (math.sin(u * 12 + p) > 0) ^ (math.sin(v * 12 + p) > 0)


def _dots(u, v, p):
    return math.sin(u * 8 + p) > 0.5 and math.sin(v * 8 + p) > 0.5


def _hbar(u, v, p):
    return abs(v) < 0.25


def _vbar(u, v, p):
    return abs(u) < 0.25


def _two_circles(u, v, p):
    return (u + 0.45) ** 2 + v * v < 0.12 or (u - 0.45) ** 2 + v * v < 0.12


def _target(u, v, p):
    return math.sin(math.sqrt(u * u + v * v) * 14) > 0


def _half(u, v, p):
    return u > 0


def _diamond(u, v, p):
    return abs(u) + abs(v) < 0.75


def _waves(u, v, p):
    return math.sin(v * 8 + 2.5 * math.sin(u * 5 + p)) > 0


PATTERNS = {
    "circle": _circle, "ring": _ring, "square": _square, "frame": _square_outline,
    "triangle": _triangle, "plus": _plus, "xcross": _x_cross, "hstripes": _hstripes,
    "vstripes": _vstripes, "dstripes": _dstripes, "checker": _checker,
    "finechecker": _fine_checker, "dots": _dots, "hbar": _hbar, "vbar": _vbar,
    "twocircles": _two_circles, "target": _target, "half": _half, "diamond": _diamond,
    "waves": _waves,
}


def png_bytes(rgb_rows, w, h):
    raw = b"".join(b"\x00" + bytes(row) for row in rgb_rows)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def image(fn, size, rng):
    fg = [rng.randrange(256) for _ in range(3)]
    bg = [rng.randrange(256) for _ in range(3)]
    while sum(abs(a - b) for a, b in zip(fg, bg)) < 200:  # keep the shape visible
        bg = [rng.randrange(256) for _ in range(3)]
    cx, cy = rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15)
    scale = rng.uniform(0.85, 1.15)
    phase = rng.uniform(0, 2 * math.pi)
    rows = []
    for y in range(size):
        row = []
        v = ((y + 0.5) / size * 2 - 1 - cy) / scale
        for x in range(size):
            u = ((x + 0.5) / size * 2 - 1 - cx) / scale
            col = fg if fn(u, v, phase) else bg
            for c in range(3):
                row.append(max(0, min(255, col[c] + rng.randint(-12, 12))))
        rows.append(row)
    return png_bytes(rows, size, size)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=40)
    ap.add_argument("--test", type=int, default=20)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    for split, count in (("train", a.train), ("test", a.test)):
        for name, fn in PATTERNS.items():
            d = os.path.join(a.out, split, name)
            os.makedirs(d, exist_ok=True)
            for i in range(count):
                with open(os.path.join(d, "%03d.png" % i), "wb") as f:
                    f.write(image(fn, a.size, rng))


if __name__ == "__main__":
    main()
