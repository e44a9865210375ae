#!/usr/bin/env bash
# The `isif` engine commands on explicit tensors: init / embed / step, their
# files, and their refusals of bad input.
. "$(dirname "$0")/../lib.sh"

py=/usr/bin/python3
mknpy() { # mknpy FILE SHAPE... : float32 values in [-1, 1) from a fixed LCG, written as .npy
	python3 - "$@" <<'PY'
import struct, sys
path, shape = sys.argv[1], [int(s) for s in sys.argv[2:]]
n = 1
for s in shape: n *= s
x, vals = 12345, []
for _ in range(n):
    x = (1103515245 * x + 12345) % 2**31
    vals.append(x / 2**30 - 1.0)
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ("".join("%d, " % s for s in shape) if len(shape) > 1 else "%d," % shape[0])
pad = 64 - (10 + len(hdr) + 1) % 64
hdr = hdr + " " * (pad % 64) + "\n"
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + struct.pack("<%df" % n, *vals))
PY
}

check "cli_help_lists_commands" bash -c "'$ISIF' --help | grep -q 'step'"
for cmd in init embed step train knn bench; do
	check "cli_${cmd}_help" "$ISIF" $cmd --help
done
check "cli_init_convnet" "$ISIF" init --model convnet --in-channels 1 --seed 3 --out "$T/c.safetensors"
check "cli_init_is_deterministic" bash -c "'$ISIF' init --model convnet --in-channels 1 --seed 3 --out '$T/c2.safetensors' && cmp '$T/c.safetensors' '$T/c2.safetensors'"
check_fails "cli_init_unknown_model" "$ISIF" init --model vgg --in-channels 1 --out "$T/x.safetensors"
check_fails "cli_init_seed_above_2_53" "$ISIF" init --model convnet --in-channels 1 --seed 9007199254740993 --out "$T/x.safetensors"
check_fails "cli_init_bad_channels" "$ISIF" init --model convnet --in-channels 0 --out "$T/x.safetensors"
check_fails "cli_option_without_value" "$ISIF" init --model convnet --in-channels
check_fails "cli_unknown_flag" "$ISIF" init --model convnet --in-channels 1 --out "$T/x.safetensors" --bogus

mknpy "$T/a.npy" 4 1 28 28
mknpy "$T/b.npy" 4 1 28 28
check "cli_embed_npy" "$ISIF" embed --checkpoint "$T/c.safetensors" --in "$T/a.npy" --out "$T/f.npy"
# F is 4×128 float32: 128-byte header + 2048 bytes
check "cli_embed_output_size" test "$(stat -c %s "$T/f.npy")" -eq $((128 + 4 * 128 * 4))
mknpy "$T/rgb.npy" 2 3 28 28
check_fails "cli_embed_wrong_channels" "$ISIF" embed --checkpoint "$T/c.safetensors" --in "$T/rgb.npy" --out "$T/f2.npy"
: > "$T/empty.npy"
check_fails "cli_embed_empty_npy" "$ISIF" embed --checkpoint "$T/c.safetensors" --in "$T/empty.npy" --out "$T/f2.npy"
check "cli_step_writes_checkpoint" bash -c "'$ISIF' step --checkpoint '$T/c.safetensors' --views '$T/a.npy' '$T/b.npy' --out '$T/c3.safetensors' > '$T/step.out' && grep -Eq '^loss [0-9.]+' '$T/step.out'"
check "cli_step_changes_weights" bash -c "! cmp -s '$T/c.safetensors' '$T/c3.safetensors'"
check "cli_step_is_deterministic" bash -c "'$ISIF' step --checkpoint '$T/c.safetensors' --views '$T/a.npy' '$T/b.npy' --out '$T/c4.safetensors' >/dev/null && cmp '$T/c3.safetensors' '$T/c4.safetensors'"
check "cli_step_full_gradient" "$ISIF" step --checkpoint "$T/c.safetensors" --views "$T/a.npy" "$T/b.npy" --gradient full --out "$T/c5.safetensors"
check_fails "cli_step_bad_gradient" "$ISIF" step --checkpoint "$T/c.safetensors" --views "$T/a.npy" "$T/b.npy" --gradient half --out "$T/c6.safetensors"
head -c 1000 "$T/c.safetensors" > "$T/torn.safetensors"
check_fails "cli_truncated_checkpoint_refused" "$ISIF" embed --checkpoint "$T/torn.safetensors" --in "$T/a.npy" --out "$T/f3.npy"
"$ISIF" init --model resnet20 --in-channels 1 --out "$T/r.safetensors" >/dev/null
check "cli_model_mismatch_named" bash -c "! '$ISIF' embed --checkpoint '$T/r.safetensors' --model convnet --in '$T/a.npy' --out '$T/f4.npy' 2> '$T/err' && grep -q 'tensor' '$T/err'"

# ISIF_CPU=portable: the portable SIMD kernels embed as the default ones do
# (to rounding), and isif bench names the kernels that ran.
close_npy() { # close_npy A B: same shape, every value within 1e-5
	$py -c 'import sys, numpy as n; a, b = n.load(sys.argv[1]), n.load(sys.argv[2]); sys.exit(not (a.shape == b.shape and n.allclose(a, b, rtol=0, atol=1e-5)))' "$1" "$2"
}
ISIF_CPU=portable "$ISIF" embed --checkpoint "$T/c.safetensors" --in "$T/a.npy" --out "$T/fp.npy" >/dev/null
check "cli_portable_kernels_embed_alike" close_npy "$T/f.npy" "$T/fp.npy"
check "cli_bench_names_portable_kernels" bash -c "ISIF_CPU=portable '$ISIF' bench --model convnet --batch 2 --iters 1 --warmup 0 --threads 1 | grep -q 'kernels portable$'"
finish
