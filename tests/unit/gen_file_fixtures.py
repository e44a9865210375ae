#!/usr/bin/python3
"""Prints the reference byte arrays embedded in test_npy.c and test_safetensors.c.

Run once with /usr/bin/python3 (it needs numpy; not part of `make test`):
    /usr/bin/python3 tests/unit/gen_file_fixtures.py
- npy: files written by numpy's own np.save / write_array (numpy 1.24.2).
- safetensors: a file laid out by the reference rules of the `safetensors`
  package (Rust serde_json writer), rebuilt here with plain struct + json:
  8-byte LE header length, compact JSON with "__metadata__" first, tensors
  sorted by dtype (I64 before F32, as the reference's Dtype order gives) then
  name, data contiguous in that order, header padded with spaces to 8 bytes.
"""
import io
import json
import struct

import numpy as np


def c_array(name, data):
    print("/* %d bytes */" % len(data))
    print("static const unsigned char %s[] = {" % name)
    for i in range(0, len(data), 12):
        print("\t" + " ".join("0x%02x," % b for b in data[i:i + 12]))
    print("};\n")


def npy_bytes(a, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, a)
    else:
        np.lib.format.write_array(b, a, version=version)
    return b.getvalue()


c_array("npy_numpy_v1_2x3", npy_bytes(np.array([[0.5, -1.0, 2.0], [3.25, 1e-3, -7.5]], dtype="<f4")))
c_array("npy_numpy_v2_3", npy_bytes(np.array([1.0, 2.0, 3.0], dtype="<f4"), version=(2, 0)))
c_array("npy_numpy_scalar", npy_bytes(np.array(1.5, dtype="<f4")))

tensors = [  # (name, dtype, shape, raw little-endian bytes), already in reference order
    ("bn.num_batches_tracked", "I64", [], struct.pack("<q", 12345678901234)),
    ("b", "F32", [3], struct.pack("<3f", 0.25, -4.0, 8.5)),
    ("w", "F32", [2, 2], struct.pack("<4f", 0.5, -1.25, 3.0, 1e-3)),
]
header = {"__metadata__": {"note": 'tab\there "q" \u00e9'}}
off = 0
for name, dt, shape, raw in tensors:
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
    off += len(raw)
text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
text += b" " * ((8 - len(text) % 8) % 8)
c_array("st_reference_file",
        struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors))

# npy preambles numpy writes for shapes that exercise the padding rules
# (test_npy.c npy_header_matches_numpy): total preamble length per shape.
import numpy.lib.format as fmt
for shape in [(), (5,), (2, 3), (1,) * 8, (10**12, 0), (0,) + (10**12,) * 7]:
    b = io.BytesIO()
    fmt._write_array_header(b, {"descr": "<f4", "fortran_order": False, "shape": shape}, (1, 0))
    p = b.getvalue()
    print("/* %r: %d bytes, dict %r */" % (shape, len(p), p[10:].rstrip(b"\n").rstrip(b" ")))
