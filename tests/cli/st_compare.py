#!/usr/bin/env python3
"""tests/cli/st_compare.py A B TOL — compares every tensor of two safetensors
files: fails (exit 1) when a tensor is missing from one, or when
max|a - b| > TOL * max|a| over a tensor (relative to the tensor's scale, so
entries near zero do not divide by nothing). Prints the worst tensor."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "I64": np.int64, "F64": np.float64}


def load(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        out[name] = np.frombuffer(blob[base + lo:base + hi], dtype=DTYPES[t["dtype"]])
    return out


def main():
    a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
    if a.keys() != b.keys():
        print("tensor names differ:", sorted(a.keys() ^ b.keys()))
        return 1
    worst, worst_name = 0.0, ""
    for name in a:
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        scale = max(np.abs(x).max(), 1e-30)
        rel = np.abs(x - y).max() / scale
        if rel > worst:
            worst, worst_name = rel, name
    print(f"{len(a)} tensors, worst relative difference {worst:.3g} ({worst_name})")
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
