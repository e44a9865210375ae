#!/usr/bin/python3
"""bench/augment_crosscheck.py — compares the deterministic parts of the
augmentation pipeline (core/data/augment.c, core/data/color_jitter.c) with torchvision
0.14's tensor functions: resized crop (bilinear, align_corners=False, no
antialias), brightness/contrast/saturation/hue with fixed factors, grayscale,
the HSV conversions, and the RandomResizedCrop centre fallback. It also
compares the distribution of random crops (ours vs get_params, different
generators, so only statistics). Not a test of `make test`: it needs
/usr/bin/python3 with torch, torchvision and numpy (Debian: python3-torch,
python3-torchvision). Run from the repository root:

    /usr/bin/python3 bench/augment_crosscheck.py

Builds a throwaway shared library of the three C files and calls it with
ctypes. Prints one line per check with the largest absolute difference and
exits 1 when any exceeds its tolerance.
"""
import ctypes
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision.transforms.functional as F
import torchvision.transforms.functional_tensor as FT
from torchvision.transforms import InterpolationMode, RandomResizedCrop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FP = ctypes.POINTER(ctypes.c_float)
U8P = ctypes.POINTER(ctypes.c_uint8)
IP = ctypes.POINTER(ctypes.c_int)
failures = 0


class Rng(ctypes.Structure):
    _fields_ = [("state", ctypes.c_uint64), ("inc", ctypes.c_uint64)]


def build_lib(tmp):
    so = os.path.join(tmp, "libaug.so")
    srcs = [os.path.join(ROOT, "core", f) for f in ("augment.c", "color_jitter.c", "rng.c")]
    subprocess.check_call(["cc", "-std=c11", "-O2", "-march=native", "-fPIC", "-shared",
                           "-I" + os.path.join(ROOT, "include"), *srcs, "-o", so, "-lm"])
    lib = ctypes.CDLL(so)
    i = ctypes.c_int
    lib.isif_resize_bilinear_u8.argtypes = [FP, i, i, U8P, i, i, i, i, i, i, i]
    for name in ("isif_adjust_brightness", "isif_adjust_contrast",
                 "isif_adjust_saturation", "isif_adjust_hue"):
        getattr(lib, name).argtypes = [FP, i, i, ctypes.c_float]
    lib.isif_to_grayscale.argtypes = [FP, i, i]
    lib.isif_rgb_to_hsv.argtypes = [ctypes.c_float] * 3 + [FP] * 3
    lib.isif_augment_crop_params.argtypes = [i, i, FP, FP, ctypes.POINTER(Rng), IP, IP, IP, IP]
    lib.isif_rng_seed.argtypes = [ctypes.POINTER(Rng), ctypes.c_uint64, ctypes.c_uint64]
    return lib


def fp(a):
    return a.ctypes.data_as(FP)


def report(name, diff, tol):
    global failures
    ok = diff <= tol
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name:44s} max|diff| {diff:.3g} (tol {tol:g})")


def check_resize(lib, rs):
    worst = 0.0
    exact = total = 0
    for _ in range(200):
        c = int(rs.choice([1, 3]))
        h, w = int(rs.integers(2, 40)), int(rs.integers(2, 40))
        ch, cw = int(rs.integers(1, h + 1)), int(rs.integers(1, w + 1))
        top, left = int(rs.integers(0, h - ch + 1)), int(rs.integers(0, w - cw + 1))
        oh, ow = int(rs.integers(1, 48)), int(rs.integers(1, 48))
        src = rs.integers(0, 256, size=(c, h, w), dtype=np.uint8)
        out = np.zeros((c, oh, ow), np.float32)
        lib.isif_resize_bilinear_u8(fp(out), oh, ow, src.ctypes.data_as(U8P), c, h, w,
                                    top, left, ch, cw)
        img = torch.from_numpy(src).float() / 255.0
        ref = F.resized_crop(img, top, left, ch, cw, [oh, ow],
                             InterpolationMode.BILINEAR, antialias=False).numpy()
        d = np.abs(out - ref)
        worst = max(worst, float(d.max()))
        exact += int((d == 0).sum())
        total += d.size
    report(f"resized_crop bilinear ({100.0 * exact / total:.1f}% bit-equal)", worst, 1e-6)


def check_colour(lib, rs):
    ops = [("adjust_brightness", lib.isif_adjust_brightness, F.adjust_brightness, (0.0, 2.0)),
           ("adjust_contrast", lib.isif_adjust_contrast, F.adjust_contrast, (0.0, 2.0)),
           ("adjust_saturation", lib.isif_adjust_saturation, F.adjust_saturation, (0.0, 2.0)),
           ("adjust_hue", lib.isif_adjust_hue, F.adjust_hue, (-0.5, 0.5))]
    for name, ours, theirs, (lo, hi) in ops:
        for c in (3, 1):
            worst = 0.0
            for _ in range(50):
                h, w = int(rs.integers(1, 20)), int(rs.integers(1, 20))
                img = (rs.integers(0, 256, size=(c, h, w)).astype(np.float32) / np.float32(255))
                f = float(np.float32(rs.uniform(lo, hi)))
                ref = theirs(torch.from_numpy(img.copy()), f).numpy()
                x = img.copy()
                ours(fp(x), c, h * w, f)
                worst = max(worst, float(np.abs(x - ref).max()))
            report(f"{name} c={c}", worst, 2e-6)
    worst = 0.0
    for _ in range(50):
        img = rs.integers(0, 256, size=(3, 7, 9)).astype(np.float32) / np.float32(255)
        ref = F.rgb_to_grayscale(torch.from_numpy(img.copy()), 3).numpy()
        x = img.copy()
        lib.isif_to_grayscale(fp(x), 3, 63)
        worst = max(worst, float(np.abs(x - ref).max()))
    report("rgb_to_grayscale (3 out channels)", worst, 1e-7)


def check_hsv(lib, rs):
    g = np.linspace(0, 1, 18, dtype=np.float32)
    rgb = np.stack(np.meshgrid(g, g, g, indexing="ij")).reshape(3, -1, 1)
    rgb = np.concatenate([rgb, rs.integers(0, 256, size=(3, 4000, 1)).astype(np.float32) / 255],
                         axis=1).astype(np.float32)
    ref = FT._rgb2hsv(torch.from_numpy(rgb)).numpy()
    h, s, v = ctypes.c_float(), ctypes.c_float(), ctypes.c_float()
    ours = np.zeros_like(ref)
    for k in range(rgb.shape[1]):
        lib.isif_rgb_to_hsv(float(rgb[0, k, 0]), float(rgb[1, k, 0]), float(rgb[2, k, 0]),
                            ctypes.byref(h), ctypes.byref(s), ctypes.byref(v))
        ours[:, k, 0] = (h.value, s.value, v.value)
    report("_rgb2hsv", float(np.abs(ours - ref).max()), 1e-6)
    x = rgb.copy()
    lib.isif_adjust_hue(fp(x), 3, rgb.shape[1], 0.0)
    report("hue 0: RGB->HSV->RGB round trip vs input", float(np.abs(x - rgb).max()), 1e-6)
    back = FT._hsv2rgb(FT._rgb2hsv(torch.from_numpy(rgb))).numpy()
    report("hue 0: ours vs torchvision round trip", float(np.abs(x - back).max()), 1e-6)


def check_crop_fallback(lib):
    scale = (ctypes.c_float * 2)(2.0, 3.0)
    bad = 0
    n = 0
    rng = Rng()
    lib.isif_rng_seed(ctypes.byref(rng), 1, 1)
    for ratio in ((3 / 4, 4 / 3), (0.5, 1.0), (1.0, 2.5), (0.9, 1.1)):
        ra = (ctypes.c_float * 2)(*ratio)
        ratio32 = [float(np.float32(r)) for r in ratio]
        for h in range(1, 60, 3):
            for w in range(1, 60, 4):
                out = [ctypes.c_int() for _ in range(4)]
                lib.isif_augment_crop_params(h, w, ctypes.cast(scale, FP), ctypes.cast(ra, FP),
                                             ctypes.byref(rng), *[ctypes.byref(o) for o in out])
                ref = RandomResizedCrop.get_params(torch.zeros(1, h, w), [2.0, 3.0], ratio32)
                bad += tuple(o.value for o in out) != tuple(ref)
                n += 1
    report(f"crop fallback (centre) on {n} shapes: mismatches", bad, 0)


def check_crop_distribution(lib):
    """Different generators: compare moments of area fraction, log aspect, top, left."""
    sc = (ctypes.c_float * 2)(0.2, 1.0)
    ra = (ctypes.c_float * 2)(3 / 4, 4 / 3)
    rng = Rng()
    lib.isif_rng_seed(ctypes.byref(rng), 7, 3)
    torch.manual_seed(7)
    h, w, n = 32, 32, 20000
    ours, theirs = np.zeros((n, 4)), np.zeros((n, 4))
    out = [ctypes.c_int() for _ in range(4)]
    for k in range(n):
        lib.isif_augment_crop_params(h, w, ctypes.cast(sc, FP), ctypes.cast(ra, FP),
                                     ctypes.byref(rng), *[ctypes.byref(o) for o in out])
        i, j, ch, cw = (o.value for o in out)
        ours[k] = (ch * cw / (h * w), math.log(cw / ch), i, j)
        i, j, ch, cw = RandomResizedCrop.get_params(torch.zeros(1, h, w), [0.2, 1.0], [3 / 4, 4 / 3])
        theirs[k] = (ch * cw / (h * w), math.log(cw / ch), i, j)
    for col, name in enumerate(("area fraction", "log aspect", "top", "left")):
        m1, m2 = ours[:, col].mean(), theirs[:, col].mean()
        se = math.sqrt((ours[:, col].var() + theirs[:, col].var()) / n)
        report(f"crop {name} mean {m1:.4f} vs {m2:.4f} (in s.e.)", abs(m1 - m2) / se, 4.0)


def main():
    rs = np.random.default_rng(2019)
    with tempfile.TemporaryDirectory() as tmp:
        lib = build_lib(tmp)
        check_resize(lib, rs)
        check_colour(lib, rs)
        check_hsv(lib, rs)
        check_crop_fallback(lib)
        check_crop_distribution(lib)
    print("all checks passed" if failures == 0 else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
