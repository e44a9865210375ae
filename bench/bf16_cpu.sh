#!/usr/bin/env bash
# bench/bf16_cpu.sh — bf16 against fp32 training steps on a shared machine:
# CPU time of one thread per step (forward, loss, backward), fp32 and bf16
# alternating, ROUNDS rounds, the median of each and their ratio, for the
# four models of issue 17. CPU time, not wall time: on a busy machine the
# wall time also counts the time other processes held the core.
#
#   make build/layer_bench && bash bench/bf16_cpu.sh [ROUNDS 3] [LAYER_BENCH build/layer_bench]
set -euo pipefail
rounds=${1:-3}
lb=${2:-build/layer_bench}
models=("convnet 1 28 128" "resnet20 1 28 128" "resnet18 1 28 32" "resnet18 3 32 32")
echo "# $(uptime)"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $lb, $rounds rounds"
printf '%-22s %10s %10s %8s\n' model "fp32 ms" "bf16 ms" speed-up
for m in "${models[@]}"; do
	f=() b=()
	for ((r = 0; r < rounds; r++)); do
		f+=("$("$lb" $m 1 3 | sed -n 's/.*, \([0-9.]*\) ms CPU time/\1/p')")
		b+=("$("$lb" $m 1 3 -bf16 | sed -n 's/.*, \([0-9.]*\) ms CPU time/\1/p')")
	done
	mf=$(printf '%s\n' "${f[@]}" | sort -g | sed -n "$((rounds / 2 + 1))p")
	mb=$(printf '%s\n' "${b[@]}" | sort -g | sed -n "$((rounds / 2 + 1))p")
	printf '%-22s %10s %10s %7.2fx   (fp32 %s; bf16 %s)\n' "$(echo $m | awk '{print $1" "$2"x"$3"x"$3" m="$4}')" \
		"$mf" "$mb" "$(echo "$mf / $mb" | bc -l)" "${f[*]}" "${b[*]}"
done
echo "# $(uptime)"
