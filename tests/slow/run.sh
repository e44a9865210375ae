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
. tests/suites.bash

run_suite crashloop python3 tests/slow/crashloop.py --kills "${KILLS:-200}" --determinism
run_suite hostile env WRK_SECONDS="${WRK_SECONDS:-60}" bash tests/integration/hostile.sh

suites_total
