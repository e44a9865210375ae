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
# The kernel tests again on the portable SIMD kernels: the run above takes
# the AVX-512 ones where the CPU has them, so every build tests both.
run_suite unit_portable env ISIF_CPU=portable "$BUILD/unit_tests" conv_ gemm_ ops_ knn_ cpu_
for t in tests/tree/*.py; do
	run_suite "$(basename "$t" .py)" python3 "$t"
done
for t in tests/cli/*.sh tests/integration/*.sh tests/fuzz/replay.sh; do
	[ -e "$t" ] || continue
	run_suite "$(basename "$t" .sh)" bash "$t"
done
suites_total
