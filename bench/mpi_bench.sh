#!/usr/bin/env bash
# bench/mpi_bench.sh — data-parallel training on this machine: images/s of
# `mpirun -np 2 isif train` (2 ranks × 1 thread) against one process of 2
# threads, beside PyTorch DDP (gloo) run the same two ways
# (bench/ddp_bench.py), for resnet20 and resnet18 on 3×32×32, global m = 128,
# and the time per step in the embeddings' allgather and the gradients'
# allreduce. The data is a generated CIFAR-10-format folder of STEPS × 128
# random images. Ours: the epoch's images/s (all STEPS steps, its first
# included, with data loading and augmentation on the loader thread);
# PyTorch: the median step after one warm-up, random rows in memory.
# Prints figures; never fails on speed.
#   BUILD=build STEPS=6 MODELS="resnet20 resnet18" bash bench/mpi_bench.sh
set -u
BUILD=${BUILD:-build}
STEPS=${STEPS:-6}
MODELS=${MODELS:-resnet20 resnet18}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl tcp,self
	--mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -np 2)

# CIFAR-10 binary format: records of 1 label byte + 3072 pixel bytes.
/usr/bin/python3 - "$TMP/cifar" "$((STEPS * 128))" <<'PY'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
random.seed(1)
per = (n + 4) // 5
for name, count in [("data_batch_%d.bin" % i, per) for i in range(1, 6)] + [("test_batch.bin", 100)]:
    with open(os.path.join(d, name), "wb") as f:
        for _ in range(count):
            f.write(bytes([random.randrange(10)]) + os.urandom(3072))
PY
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for model in $MODELS; do
	common=(--dataset "$TMP/cifar" --format cifar10 --model "$model" --batch-size 128
		--train-subset $((STEPS * 128)) --epochs 1 --eval-every 0 --quiet)
	one=$("$BUILD/isif" train "${common[@]}" --threads 2 --out "$TMP/one" 2>&1 |
		awk '/^epoch/{for(i=1;i<=NF;i++) if($i=="img/s") print $(i-1)}')
	two_log=$("${MPIRUN[@]}" "$BUILD/isif" train "${common[@]}" --threads 1 --out "$TMP/two" 2>&1)
	two=$(echo "$two_log" | awk '/^epoch/{for(i=1;i<=NF;i++) if($i=="img/s") print $(i-1)}')
	comm=$(echo "$two_log" | sed -n 's/.*per step: //p')
	echo "isif $model 3x32x32 m=128: 1x2 threads $one img/s, 2x1 (MPI) $two img/s," \
		"ratio $(awk -v a="$two" -v b="$one" 'BEGIN{printf "%.2f", a/b}'); 2 ranks per step: $comm"
	t1=$(/usr/bin/python3 "$HERE/ddp_bench.py" "$model" 128 1 2 $((STEPS - 2)) 1)
	t2=$(/usr/bin/python3 "$HERE/ddp_bench.py" "$model" 128 2 1 $((STEPS - 2)) 1)
	echo "$t1"
	echo "$t2"
	ti2=$(echo "$t2" | sed -n 's/.*img_s=\([0-9.]*\).*/\1/p')
	ti1=$(echo "$t1" | sed -n 's/.*img_s=\([0-9.]*\).*/\1/p')
	echo "torch $model: 2x1 / 1x2 = $(awk -v a="$ti2" -v b="$ti1" 'BEGIN{printf "%.2f", a/b}');" \
		"ours 2x1 / torch 2x1 = $(awk -v a="$two" -v b="$ti2" 'BEGIN{printf "%.2f", a/b}')"
done
