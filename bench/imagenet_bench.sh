#!/bin/sh
# bench/imagenet_bench.sh — resnet18_imagenet at 224×224 beside PyTorch's
# torchvision-shaped resnet18 (isif_torch's module: the same network, fp32)
# on the same threads: the ISIF training step (2m rows: forward, loss,
# backward, SGD) and the evaluation forward, each run RUNS times, ours and
# PyTorch's back to back; prints every run, the median times, and the
# median of the per-run speed-ups torch time / isif time (less sensitive to
# a loaded machine's drift). Never fails on speed.
# Usage: bench/imagenet_bench.sh [ISIF] [THREADS] [M] [RUNS]
ISIF=${1:-build/isif}
THREADS=${2:-2}
M=${3:-8}
RUNS=${4:-3}
HERE=$(dirname "$0")
PY=/usr/bin/python3

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ours_step="" torch_step="" ours_embed="" torch_embed="" r_step="" r_embed=""
for r in $(seq "$RUNS"); do
	o=$("$ISIF" bench --model resnet18_imagenet --channels 3 --size 224 --batch "$M" \
		--iters 3 --warmup 1 --threads "$THREADS" | tail -1)
	echo "isif  $o"
	ours_step="$ours_step $(echo "$o" | sed -n 's/.*step *\([0-9.]*\) ms.*/\1/p')"
	t=$($PY "$HERE/torch_bench.py" step resnet18_imagenet 3 224 "$M" "$THREADS" 3 1)
	echo "torch $t"
	torch_step="$torch_step $(echo "$t" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')"
	r_step="$r_step $(awk "BEGIN { printf \"%.2f\", ${torch_step##* } / ${ours_step##* } }")"
	o=$("$ISIF" bench --model resnet18_imagenet --channels 3 --size 224 --batch 32 \
		--embed 64 --threads "$THREADS" | tail -1)
	echo "isif  $o"
	ours_embed="$ours_embed $(echo "$o" | sed -n 's/.*batch=[0-9]* *\([0-9.]*\) s .*/\1/p')"
	t=$($PY "$HERE/torch_bench.py" embed resnet18_imagenet 3 224 64 32 "$THREADS")
	echo "torch $t"
	torch_embed="$torch_embed $(echo "$t" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')"
	r_embed="$r_embed $(awk "BEGIN { printf \"%.2f\", ${torch_embed##* } / ${ours_embed##* } }")"
done
for what in step embed; do
	eval "a=\$ours_$what b=\$torch_$what"
	ma=$(echo $a | tr ' ' '\n' | median)
	mb=$(echo $b | tr ' ' '\n' | median)
	eval "r=\$r_$what"
	echo "$what median time (step ms, embed s of 64 images): isif $ma, torch $mb;" \
	     "per-run speed-up torch time / isif time:$r, median $(echo $r | tr ' ' '\n' | median)"
done
