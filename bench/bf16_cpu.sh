#!/usr/bin/env bash
# bench/bf16_cpu.sh — bf16 against fp32 training steps on a shared machine:
# CPU time of one thread per step (forward, loss, backward; layer_bench,
# no SGD), fp32 and bf16 alternating, ROUNDS rounds, the median of each and
# their ratio, for the four models of issue 17. With TORCH=1, PyTorch's
# step (bench/torch_bench.py, one thread, SGD included) in fp32 and under
# bf16 autocast joins each round, its CPU time (cpu_ms) beside ours. CPU
# time, not wall time: on a busy machine the wall time also counts the time
# other processes held the core.
#
#   make build/layer_bench && [TORCH=1] bash bench/bf16_cpu.sh [ROUNDS 3] [LAYER_BENCH build/layer_bench]
set -euo pipefail
rounds=${1:-3}
lb=${2:-build/layer_bench}
torch=${TORCH:-0}
here=$(dirname "$0")
models=("convnet 1 28 128" "resnet20 1 28 128" "resnet18 1 28 32" "resnet18 3 32 32")

ours() { "$lb" "$@" | sed -n 's/.*, \([0-9.]*\) ms CPU time/\1/p'; }
theirs() { /usr/bin/python3 "$here/torch_bench.py" step "$@" | sed -n 's/.* cpu_ms=\([0-9.]*\).*/\1/p'; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(($# / 2 + 1))p"; }

echo "# $(uptime)"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $lb, $rounds rounds"
printf '%-22s %9s %9s %8s' model "fp32 ms" "bf16 ms" "bf16/fp32"
[ "$torch" = 1 ] && printf ' %10s %10s %10s' "torch fp32" "torch bf16" "bf16/torch"
echo
for m in "${models[@]}"; do
	f=() b=() tf=() tb=()
	for ((r = 0; r < rounds; r++)); do
		f+=("$(ours $m 1 3)")
		b+=("$(ours $m 1 3 -bf16)")
		if [ "$torch" = 1 ]; then
			tf+=("$(theirs $m 1 3 1 0)")
			tb+=("$(theirs $m 1 3 1 1)")
		fi
	done
	mf=$(median "${f[@]}") mb=$(median "${b[@]}")
	printf '%-22s %9s %9s %8.2fx' "$(echo $m | awk '{print $1" "$2"x"$3"x"$3" m="$4}')" \
		"$mf" "$mb" "$(echo "$mf / $mb" | bc -l)"
	if [ "$torch" = 1 ]; then
		mtf=$(median "${tf[@]}") mtb=$(median "${tb[@]}")
		printf ' %10s %10s %9.2fx' "$mtf" "$mtb" "$(echo "$mtb / $mb" | bc -l)"
	fi
	printf '   (fp32 %s; bf16 %s' "${f[*]}" "${b[*]}"
	[ "$torch" = 1 ] && printf '; torch fp32 %s; torch bf16 %s' "${tf[*]}" "${tb[*]}"
	echo ")"
done
echo "# $(uptime)"
