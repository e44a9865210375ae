#!/usr/bin/env bash
# bench/unseen_shapes.sh — the unseen-category protocol end to end, longer than
# tests/cli/unseen.sh: a generated folder dataset (tests/cli/gen_shapes.py, 20
# classes of shapes and textures, 32×32 PNG), `isif train --class-split
# first_half` (train on the first 10 classes by sorted name), and Recall@1/2/4/8,
# NMI and the mean same-/different-class cosine similarity on the 10 held-out
# classes before training (`isif unseen` on `isif init`'s checkpoint of the same
# seed) and after each evaluated epoch. Prints figures; never fails on them.
#
#   bench/unseen_shapes.sh [EPOCHS] [TRAIN_PER_CLASS]     (defaults 30, 100)
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
EPOCHS=${1:-30}
PER=${2:-100}
ISIF=$BUILD/isif
[ -x "$ISIF" ] || { echo "build isif first (make all)"; exit 1; }
D=$(mktemp -d /tmp/isif-unseen.XXXXXX)
trap 'rm -rf "$D"' EXIT
python3 tests/cli/gen_shapes.py "$D/shapes" --train "$PER" --test 20 --seed 1
"$ISIF" init --model convnet --in-channels 3 --seed 1 --out "$D/init.safetensors" >/dev/null
echo "untrained (isif unseen on isif init --seed 1):"
"$ISIF" unseen --dataset "$D/shapes" --checkpoint "$D/init.safetensors"
"$ISIF" train --dataset "$D/shapes" --model convnet --epochs "$EPOCHS" --batch-size 64 --lr 0.05 \
	--crop-scale 0.5,1 --class-split first_half --seed 1 --quiet --out "$D/run" > "$D/train.log" 2>&1 ||
	{ tail -5 "$D/train.log"; exit 1; }
echo "per epoch (metrics.csv):"
awk -F, 'NR==1{print "epoch  loss    R@1    R@2    R@4    R@8    NMI    sim_same sim_diff"} NR>1{printf "%5d  %.3f  %.3f  %.3f  %.3f  %.3f  %.3f  %.3f    %.3f\n", $1, $2, $8, $9, $10, $11, $12, $14, $15}' "$D/run/metrics.csv"
echo "trained (isif unseen on the last checkpoint):"
"$ISIF" unseen --dataset "$D/shapes" --checkpoint "$D/run/checkpoint-latest.safetensors"
