#!/usr/bin/env bash
# tests/fuzz/replay.sh — the fuzz targets in make test, without clang: each
# $BUILD/fuzz_replay/<target> (the target linked with replay_main.c by the
# normal compiler, and under ASan + UBSan in make sanitize) replays its seed
# corpus, then every input a fuzzer ever crashed on (tests/fuzz/regress/<t>/,
# one case per file, named after the bug). A case passes when the target
# returns: targets abort on a broken invariant, sanitizers on memory errors.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
fails=0
for seeds in tests/fuzz/corpus/*/; do
	t=$(basename "$seeds")
	bin="$BUILD/fuzz_replay/$t"
	if [ ! -x "$bin" ]; then
		echo "FAIL fuzz_seeds_$t ($bin not built)"
		fails=$((fails + 1))
		continue
	fi
	if out=$("$bin" "$seeds" 2>&1); then
		echo "PASS fuzz_seeds_$t (${out##*$'\n'})"
	else
		echo "$out" | tail -20
		echo "FAIL fuzz_seeds_$t"
		fails=$((fails + 1))
	fi
	for f in tests/fuzz/regress/"$t"/*; do
		[ -f "$f" ] || continue
		if out=$("$bin" "$f" 2>&1); then
			echo "PASS fuzz_regress_${t}_$(basename "$f")"
		else
			echo "$out" | tail -20
			echo "FAIL fuzz_regress_${t}_$(basename "$f")"
			fails=$((fails + 1))
		fi
	done
done
[ "$fails" -eq 0 ]
