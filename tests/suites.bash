# tests/suites.bash — sourced by tests/run_all.sh and tests/slow/run.sh:
# runs suites that print one "PASS name" / "FAIL name" line per case, and
# totals them. A suite that exits non-zero without a FAIL line of its own
# (a crash) gets one, so no failure goes uncounted.
suites_log=$(mktemp)
trap 'rm -f "$suites_log"' EXIT
suites_status=0

# run_suite NAME COMMAND...
run_suite() {
	local name=$1 before; shift
	before=$(grep -c '^FAIL ' "$suites_log")
	echo "== $name"
	"$@" 2>&1 | tee -a "$suites_log"
	local rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ] && [ "$(grep -c '^FAIL ' "$suites_log")" -eq "$before" ]; then
		echo "FAIL $name (suite exited with status $rc)" | tee -a "$suites_log"
	fi
	[ "$rc" -eq 0 ] || suites_status=1
}

# Prints "N passed, N failed" as the last line and exits non-zero on any failure.
suites_total() {
	local passed failed
	passed=$(grep -c '^PASS ' "$suites_log")
	failed=$(grep -c '^FAIL ' "$suites_log")
	[ "$failed" -eq 0 ] || suites_status=1
	echo "${passed} passed, ${failed} failed"
	exit $suites_status
}
