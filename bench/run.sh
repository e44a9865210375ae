#!/usr/bin/env bash
# `make bench`: figures, never verdicts. Prints training-step times per model
# (forward of 2m rows + ISIF loss + backward + SGD, median of several steps),
# the kNN evaluation time, and, when Debian's python3-torch is installed, the
# tensor-by-tensor crosscheck against PyTorch.
# Environment: ITERS (timed steps, default 5), THREADS (default: all cores).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ITERS=${ITERS:-5}
THREADS=${THREADS:-$(nproc)}
echo "== training step, m = 128 (256 rows), $THREADS threads, median of $ITERS steps"
for cfg in "convnet 1 28" "resnet20 1 28" "resnet18 1 28" "resnet18 3 32"; do
	set -- $cfg
	"$BUILD/isif" bench --model "$1" --channels "$2" --size "$3" --batch 128 \
		--iters "$ITERS" --threads "$THREADS"
done
echo "== kNN evaluation, 60000 x 10000 x 128"
"$BUILD/knn_bench"
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
	echo "== crosscheck against PyTorch"
	/usr/bin/python3 bench/torch_crosscheck.py "$BUILD/isif"
else
	echo "== crosscheck against PyTorch skipped: apt-get install python3-torch"
fi
