#!/usr/bin/env bash
# Runs every test suite and prints the total as its last line:
# "N passed, N failed". Exits non-zero when any case failed or a suite crashed.
# BUILD names the build tree (build, build/asan); suites print one
# "PASS name" or "FAIL name" line per case.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run_suite() {
	local name=$1; shift
	echo "== $name"
	"$@" 2>&1 | tee -a "$log"
	local rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$log"; then
		echo "FAIL $name (suite exited with status $rc)" | tee -a "$log"
	fi
	[ "$rc" -eq 0 ] || status=1
}

run_suite unit "$BUILD/unit_tests"
for t in tests/cli/*.sh tests/integration/*.sh tests/fuzz/replay.sh; do
	[ -e "$t" ] || continue
	run_suite "$(basename "$t" .sh)" bash "$t"
done

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
[ "$failed" -eq 0 ] || status=1
echo "${passed} passed, ${failed} failed"
exit $status
