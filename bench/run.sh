#!/usr/bin/env bash
# `make bench`: figures, never verdicts, and never a failure on speed.
# Prints one table of ours against PyTorch (Debian's python3-torch, when
# installed) measured in the same run, same model, batch and thread count,
# the two runs alternating so that load on a shared machine hits both alike:
#   - training throughput (source images/s: forward of 2m rows, ISIF loss,
#     backward, SGD; median over ROUNDS runs of the median of ITERS timed
#     steps after one warm-up step) and the peak RSS of each process;
#   - bf16: ours at --precision fp32 and bf16 beside PyTorch fp32 and PyTorch
#     bf16 autocast (alternating), and resnet18's bf16 convolution layers
#     in effective GFLOP/s against the machine's bf16 peak;
#   - the evaluation forward (embedding) of 70k images with convnet;
#   - the kNN evaluation, 60000 gallery × 10000 queries × 128, k = 200;
#   - the convolution layers' GFLOP/s (resnet18, 1×28×28) beside the sgemm
#     rate on convolution-shaped products (OpenBLAS and the engine's GEMM);
#   - one full Fashion-MNIST epoch (convnet, m = M, isif train's defaults)
#     with data loading and augmentation, then the kNN evaluation: ours
#     (`isif train --epochs 1`) and PyTorch's (bench/torch_bench.py epoch:
#     torchvision transforms, a DataLoader, the same loss and SGD; needs
#     python3-torchvision too), one after the other, with the ratio of
#     training images/s (ours/theirs), wall times and peak RSS;
#   - the linear probe on 60000 × 512 features of 10 classes (bench/probe_bench);
# then the tensor-by-tensor crosscheck against PyTorch, and NPID's loss and
# memory bank against a PyTorch reference (bench/npid_crosscheck.py).
# Environment: THREADS (default 2), ROUNDS (3), ITERS (3), M (128),
# TORCH_WORKERS (1: DataLoader processes, beside THREADS compute threads, as
# isif train --threads 2 runs 2 compute threads and 1 loader thread),
# SKIP_EPOCH=1 to leave out the epoch (it takes a few minutes), QUICK=1 for a
# smoke run (1 round, 1 step, small embed, no resnet18, no epoch).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
ITERS=${ITERS:-3}
M=${M:-128}
TORCH_WORKERS=${TORCH_WORKERS:-1}
EMBED_N=${EMBED_N:-70000}
CONFIGS=("convnet 1 28" "resnet20 1 28" "resnet18 1 28" "resnet18 3 32")
if [ "${QUICK:-0}" = 1 ]; then
	ROUNDS=1 ITERS=1 EMBED_N=5000 SKIP_EPOCH=1
	CONFIGS=("convnet 1 28" "resnet20 1 28")
fi
PY=/usr/bin/python3
HAVE_TORCH=0
$PY -c "import torch" 2>/dev/null && HAVE_TORCH=1
HAVE_TV=0
[ $HAVE_TORCH = 1 ] && $PY -c "import torchvision" 2>/dev/null && HAVE_TV=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "nan"}'; }
# field VALUE-PATTERN: the number after a label in a line, e.g. field 'peak RSS'
after() { grep -o "$1 *[0-9.]*" | grep -o '[0-9.]*$' | head -1; }
kv() { grep -o "$1=[0-9.]*" | cut -d= -f2 | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a > 0) printf "%.2f", a / b; else print "n/a" }'; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }
# peak_rss FILE CMD...: runs CMD and writes its peak RSS in MiB (the largest
# of its processes, as getrusage's RUSAGE_CHILDREN reports it) to FILE.
peak_rss() {
	python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write("%.0f\n" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
sys.exit(rc)' "$@"
}

echo "== make bench: $(nproc) cores, $THREADS threads, m = $M, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   ours: $BUILD/isif; PyTorch: $([ $HAVE_TORCH = 1 ] && $PY -c 'import torch; print(torch.__version__)' || echo 'not installed')"
echo
echo "-- training throughput, source images/s (median of $ROUNDS alternating runs of $ITERS steps each)"
printf "%-22s %10s %10s %8s %12s %12s\n" "model" "ours" "pytorch" "ratio" "ours RSS" "torch RSS"
for cfg in "${CONFIGS[@]}"; do
	set -- $cfg
	: > "$TMP/o" ; : > "$TMP/t"; : > "$TMP/orss"; : > "$TMP/trss"
	for ((r = 0; r < ROUNDS; r++)); do
		line=$("$BUILD/isif" bench --model "$1" --channels "$2" --size "$3" --batch "$M" \
			--iters "$ITERS" --warmup 1 --threads "$THREADS")
		echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "img/s") print $i}' >> "$TMP/o"
		echo "$line" | after 'peak RSS' >> "$TMP/orss"
		if [ $HAVE_TORCH = 1 ]; then
			line=$($PY bench/torch_bench.py step "$1" "$2" "$3" "$M" "$THREADS" "$ITERS" 1)
			echo "$line" | kv img_s >> "$TMP/t"
			echo "$line" | kv peak_rss_mib >> "$TMP/trss"
		fi
	done
	o=$(median < "$TMP/o"); t=$(median < "$TMP/t")
	printf "%-22s %10s %10s %8s %9s MiB %9s MiB\n" "$1 ${2}x${3}x${3}" "$o" "${t:-n/a}" \
		"$(ratio "$o" "${t:-0}")" "$(median < "$TMP/orss")" "$(median < "$TMP/trss")"
done

# bf16 (issue 17): ours at --precision fp32 and bf16 beside PyTorch fp32 and
# PyTorch with torch.autocast('cpu', dtype=torch.bfloat16), the four runs
# alternating within each round.
echo
echo "-- bf16 training throughput, source images/s (median of $ROUNDS rounds of 4 alternating runs)"
echo "   CPU:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); AVX512_BF16: $(grep -qw avx512_bf16 /proc/cpuinfo && echo yes || echo 'no (our bf16 runs exact fp32)'); AMX-BF16: $(grep -qw amx_bf16 /proc/cpuinfo && echo 'yes (no AMX kernels: not used)' || echo no)"
printf "%-18s %9s %9s %7s %9s %9s %7s %9s\n" "model" "ours32" "ours16" "16/32" "torch32" "torch16" "t16/t32" "o16/t16"
for cfg in "${CONFIGS[@]}"; do
	set -- $cfg
	for f in o32 o16 t32 t16; do : > "$TMP/$f"; done
	for ((r = 0; r < ROUNDS; r++)); do
		for p in fp32 bf16; do
			"$BUILD/isif" bench --model "$1" --channels "$2" --size "$3" --batch "$M" \
				--iters "$ITERS" --warmup 1 --threads "$THREADS" --precision $p |
				awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "img/s") print $i}' \
				>> "$TMP/o${p#fp}"
			[ $p = fp32 ] && f=t32 || f=t16
			[ $HAVE_TORCH = 1 ] && $PY bench/torch_bench.py step "$1" "$2" "$3" "$M" \
				"$THREADS" "$ITERS" 1 $([ $p = bf16 ] && echo 1 || echo 0) | kv img_s >> "$TMP/$f"
		done
	done
	o32=$(median < "$TMP/o32"); o16=$(median < "$TMP/o16")
	t32=$(median < "$TMP/t32"); t16=$(median < "$TMP/t16")
	printf "%-18s %9s %9s %7s %9s %9s %7s %9s\n" "$1 ${2}x${3}x${3}" "$o32" "$o16" \
		"$(ratio "$o16" "$o32")" "${t32:-n/a}" "${t16:-n/a}" "$(ratio "${t16:-0}" "${t32:-0}")" \
		"$(ratio "$o16" "${t16:-0}")"
done
# The machine's bf16 peak: Zen 4 (and Intel's AVX512_BF16 cores) retire one
# 512-bit vdpbf16ps a cycle per core (two 256-bit halves on Zen 4): 16 lanes
# × 2 products × 2 FLOP = 64 FLOP/cycle/core, twice the fp32 FMA peak. Zen 5
# (AMD family 26: full 512-bit pipes) retires two: 128 (its direct forward
# measured 440 GFLOP/s of real products on one core, beyond 64 × any clock).
# At the CPU's highest clock (cpufreq's cpuinfo_max_freq, else /proc/cpuinfo,
# under KVM often the base clock: then an underestimate).
khz=$(cat /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq 2>/dev/null ||
	awk -F: '/cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
fpc=64
grep -q 'AuthenticAMD' /proc/cpuinfo && [ "$(awk -F: '/cpu family/ {print $2 + 0; exit}' /proc/cpuinfo)" = 26 ] && fpc=128
peak=$(awk -v k="$khz" -v t="$THREADS" -v f="$fpc" 'BEGIN { printf "%.0f", k / 1e6 * t * f }')
echo
echo "-- bf16 convolution layers, resnet18 1x28x28, m = $M, $THREADS threads: effective GFLOP/s"
echo "   (2·multiply-adds of a direct convolution per pass, fwd and bwd = dx + dw) against the bf16 peak $peak GFLOP/s"
echo "   ($THREADS cores × $(awk -v k="$khz" 'BEGIN { printf "%.2f", k / 1e6 }') GHz × $fpc FLOP/cycle); one run, noisy"
"$BUILD/layer_bench" resnet18 1 28 "$M" "$THREADS" 2 -v -bf16 |
	awk -v peak="$peak" '/^  conv +[0-9]/ { printf "%s  (fwd %.0f%%, bwd %.0f%% of peak)\n", $0, 100 * $(NF - 6) / peak, 100 * $(NF - 1) / peak; next }
		/conv layers:/ { print; split($3, a, " "); printf "   conv layers at %.0f%% of the bf16 peak\n", 100 * $3 / peak; next } /precision/ { print }'

echo
echo "-- evaluation forward (embedding), convnet 1x28x28, $EMBED_N random images, batch 256"
o=$("$BUILD/isif" bench --model convnet --embed "$EMBED_N" --threads "$THREADS" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "img/s") print $i}')
t=n/a
[ $HAVE_TORCH = 1 ] && t=$($PY bench/torch_bench.py embed convnet 1 28 "$EMBED_N" 256 "$THREADS" | kv img_s)
printf "%-22s %10s %10s %8s   (images/s)\n" "embed convnet" "$o" "$t" "$(ratio "$o" "$t")"

echo
echo "-- kNN evaluation, 60000 x 10000 x 128, k = 200 (seconds, lower is better)"
o=$("$BUILD/knn_bench" 60000 10000 128 200 "$THREADS" | grep -o '[0-9.]* s ' | grep -o '[0-9.]*')
t=n/a
[ $HAVE_TORCH = 1 ] && t=$($PY bench/torch_bench.py knn 60000 10000 128 200 "$THREADS" | kv seconds)
printf "%-22s %10s %10s %8s   (theirs/ours)\n" "knn 60k x 10k" "$o" "$t" "$(ratio "$t" "$o")"

echo
echo "-- convolution layers vs sgemm, $THREADS threads (GFLOP/s, median of $ROUNDS alternating runs)"
: > "$TMP/conv"; : > "$TMP/og"; : > "$TMP/eg"
for ((r = 0; r < ROUNDS; r++)); do
	"$BUILD/layer_bench" resnet18 1 28 "$M" "$THREADS" 2 | after 'conv layers:' >> "$TMP/conv"
	# one process each: OpenBLAS's threads keep polling after a call
	"$BUILD/gemm_bench" "$THREADS" 5 openblas | tail -1 | after 'openblas' >> "$TMP/og"
	"$BUILD/gemm_bench" "$THREADS" 5 engine | tail -1 | after 'engine' >> "$TMP/eg"
done
conv=$(median < "$TMP/conv"); og=$(median < "$TMP/og"); eg=$(median < "$TMP/eg")
echo "resnet18 1x28x28 conv layers (fwd + both grads): $conv GFLOP/s (counted as direct convolution: the Winograd layers do fewer multiplications, so this is an effective rate)"
echo "sgemm on conv shapes: OpenBLAS $og, engine GEMM $eg GFLOP/s"
echo "conv / OpenBLAS sgemm $(ratio "$conv" "$og"), conv / engine sgemm $(ratio "$conv" "$eg")"

if [ "${SKIP_EPOCH:-0}" != 1 ]; then
	echo
	echo "-- one Fashion-MNIST epoch, convnet, m = $M, $THREADS threads, augmentation and loading on, then kNN eval"
	echo "   (60000 // m steps; ours, then PyTorch's with $TORCH_WORKERS DataLoader worker(s); one run each, so noisy)"
	start=$(now)
	line=$(peak_rss "$TMP/orss" "$BUILD/isif" train --dataset fashion-mnist --model convnet \
		--epochs 1 --batch-size "$M" --threads "$THREADS" --quiet --out "$TMP/run" | grep '^epoch')
	o_total=$(since "$start")
	o_ips=$(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "img/s") print $i}')
	o_train=$(awk -v r="$o_ips" -v n=$((60000 / M * M)) 'BEGIN { if (r > 0) printf "%.1f", n / r; else print "n/a" }')
	o_top1=$(echo "$line" | grep -o 'knn_top1 *[0-9.]*%' | grep -o '[0-9.]*%')
	o_rss=$(cat "$TMP/orss" 2>/dev/null)
	t_ips=n/a t_train=n/a t_total=n/a t_top1=n/a t_rss=n/a tline=
	if [ $HAVE_TV = 1 ]; then
		# THREADS compute threads and TORCH_WORKERS loader processes (one
		# thread each): with the defaults 2 + 1, as isif train runs.
		start=$(now)
		tline=$($PY bench/torch_bench.py epoch convnet "$M" "$THREADS" "$TORCH_WORKERS" 1)
		t_total=$(since "$start")
		t_ips=$(echo "$tline" | kv img_s)
		t_train=$(echo "$tline" | kv train_s)
		t_top1=$(echo "$tline" | grep -o 'knn_top1=[0-9.]*%' | cut -d= -f2)
		t_rss=$(echo "$tline" | kv peak_rss_mib)
		[ -n "$t_rss" ] && t_rss="$t_rss + $(echo "$tline" | kv worker_rss_mib)"
	fi
	printf "%-36s %10s %14s %8s\n" "" "ours" "pytorch" "ratio"
	printf "%-36s %10s %14s %8s   (ours/theirs)\n" "train images/s (loading on)" "$o_ips" "${t_ips:-n/a}" "$(ratio "$o_ips" "${t_ips:-0}")"
	printf "%-36s %10s %14s %8s   (theirs/ours)\n" "train part, s" "$o_train" "${t_train:-n/a}" "$(ratio "${t_train:-0}" "$o_train")"
	printf "%-36s %10s %14s %8s   (theirs/ours)\n" "whole command, s" "$o_total" "${t_total:-n/a}" "$(ratio "${t_total:-0}" "$o_total")"
	printf "%-36s %10s %14s\n" "kNN top-1 after the epoch" "${o_top1:-n/a}" "${t_top1:-n/a}"
	printf "%-36s %10s %14s\n" "peak RSS, MiB (torch: main + worker)" "${o_rss:-n/a}" "${t_rss:-n/a}"
	echo "ours:    $line"
	if [ $HAVE_TV = 1 ]; then
		echo "pytorch: $tline"
	elif [ $HAVE_TORCH = 1 ]; then
		echo "pytorch: skipped, it needs torchvision's transforms: apt-get install python3-torchvision"
	fi
	echo "(whole command: process start, dataset load, the epoch, embedding 70k + kNN; ours also writes a checkpoint)"
fi

echo
echo "== linear probe (L-BFGS, fixed budget) on synthetic features"
"$BUILD/probe_bench" 60000 512 10 "$THREADS" "$ROUNDS"

echo
if [ $HAVE_TORCH = 1 ]; then
	echo "== crosscheck against PyTorch"
	$PY bench/torch_crosscheck.py "$BUILD/isif"
	echo "== NPID loss and memory bank against PyTorch"
	$PY bench/npid_crosscheck.py "$BUILD/npid_ref"
else
	echo "== crosscheck against PyTorch skipped: apt-get install python3-torch"
fi
exit 0
