#!/usr/bin/env bash
# core/cli/isif_torch.py against the engine: checkpoints of `isif train` load
# into PyTorch, its preprocessing + forward reproduce `isif embed`, and what
# it saves the engine reads back (tests/cli/torch_module.py does the work).
# Needs Debian's python3-torch for /usr/bin/python3 (make test-deps).
. "$(dirname "$0")/../lib.sh"

PY=/usr/bin/python3
if ! $PY -c "import torch, numpy" 2>/dev/null; then
	fail "torch_module_python3_torch_present" "install python3-torch (make test-deps)"
	finish
fi
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
	fail "torch_module_fashion_mnist_present" "install dataset-fashion-mnist (make deps)"
	finish
fi
$PY "$(dirname "$0")/torch_module.py" "$ISIF" "$T" || FAILED=1
finish
