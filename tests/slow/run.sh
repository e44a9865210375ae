#!/usr/bin/env bash
# tests/slow/run.sh — make test-slow: the long versions of the reliability
# suites, too slow for make test (about 5 minutes on 2 cores):
#   crashloop  SIGKILL isifd 200 times (KILLS) in migrations, start-up,
#              checkpoint writes and training; exact resume after 5 kills
#   hostile    the hostile-HTTP suite with a 60 s wrk run (WRK_SECONDS)
# Prints one PASS/FAIL line per case and, last, "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
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

run_suite crashloop python3 tests/slow/crashloop.py --kills "${KILLS:-200}" --determinism
run_suite hostile env WRK_SECONDS="${WRK_SECONDS:-60}" bash tests/integration/hostile.sh

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
[ "$failed" -eq 0 ] || status=1
echo "${passed} passed, ${failed} failed"
exit $status
