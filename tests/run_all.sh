#!/usr/bin/env bash
# Runs every test suite and prints the total as its last line:
# "N passed, N failed". Exits non-zero when any case failed or a suite crashed.
# BUILD names the build tree (build, build/asan); suites print one
# "PASS name" or "FAIL name" line per case.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
. tests/suites.bash

run_suite unit "$BUILD/unit_tests"
for t in tests/tree/*.py; do
	run_suite "$(basename "$t" .py)" python3 "$t"
done
for t in tests/cli/*.sh tests/integration/*.sh tests/fuzz/replay.sh; do
	[ -e "$t" ] || continue
	run_suite "$(basename "$t" .sh)" bash "$t"
done
suites_total
