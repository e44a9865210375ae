#!/usr/bin/env bash
# tests/fuzz/run.sh TARGET... — runs each libFuzzer target of build/fuzz/
# for FUZZ_SECONDS (default 30) from its seed corpus (tests/fuzz/corpus/T,
# plus the kept crashers in tests/fuzz/regress/T), with ASan + UBSan.
# New interesting inputs go to build/fuzz/corpus/T (not into the repo);
# a crash, leak, timeout or OOM stops that target and is saved as
# build/fuzz/crashes/T-<kind>-<sha1>. Prints one line per target with the
# executions and findings, and a total; exits 1 if anything was found.
# To keep a finding as a regression test: fix it, then copy the file to
# tests/fuzz/regress/T/ (make test replays it).
set -u
cd "$(dirname "$0")/../.." || exit 1
B=${BUILD:-build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
mkdir -p "$B/crashes" "$B/logs"
# fuzz_http leaves half-closed connections open until their 1 s timeout.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Largest input per target: room for the files of a small dataset.
max_len() {
	case $1 in
	stl) echo 120000 ;;
	cifar) echo 32768 ;;
	image | http | safetensors) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

total_runs=0
total_found=0
printf '%-12s %12s %9s %8s %6s\n' target executions exec/s corpus found
for t in "$@"; do
	bin="$B/fuzz_$t"
	if [ ! -x "$bin" ]; then
		echo "fuzz: $bin not built" >&2
		total_found=$((total_found + 1))
		continue
	fi
	mkdir -p "$B/corpus/$t"
	seeds=(tests/fuzz/corpus/"$t")
	[ -d "tests/fuzz/regress/$t" ] && seeds+=(tests/fuzz/regress/"$t")
	dict=()
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	before=$(ls "$B/crashes" | grep -c "^$t-" || true)
	log="$B/logs/$t.log"
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 \
		-rss_limit_mb=4096 -max_len="$(max_len "$t")" "${dict[@]}" \
		-artifact_prefix="$B/crashes/$t-" "$B/corpus/$t" "${seeds[@]}" >"$log" 2>&1
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	units=$(ls "$B/corpus/$t" | wc -l)
	after=$(ls "$B/crashes" | grep -c "^$t-" || true)
	found=$((after - before))
	printf '%-12s %12s %9s %8s %6s\n' "$t" "${runs:-?}" "${rate:-?}" "$units" "$found"
	if [ "$found" -gt 0 ]; then
		grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|deadly signal' "$log" | sed 's/^/    /'
		ls "$B/crashes" | grep "^$t-" | tail -"$found" | sed "s|^|    $B/crashes/|"
	fi
	total_runs=$((total_runs + ${runs:-0}))
	total_found=$((total_found + found))
done
echo "fuzz: $total_runs executions over $# targets, $total_found findings (logs in $B/logs/)"
[ "$total_found" -eq 0 ]
