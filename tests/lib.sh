# tests/lib.sh — shared by the shell test suites: a temporary directory
# removed at exit, and one "PASS name" / "FAIL name" line per case.
# Suites exit non-zero when any case failed.
set -u
BUILD=${BUILD:-build}
ISIF=${ISIF:-$BUILD/isif}
TMP=$(mktemp -d /tmp/isif-test-XXXXXX)
FAILED=0
trap 'rm -rf "$TMP"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; FAILED=1; }

# check NAME COMMAND...: PASS when the command succeeds.
check() {
	local name=$1; shift
	if "$@" >"$TMP/last.log" 2>&1; then pass "$name"; else fail "$name" "$(tail -3 "$TMP/last.log" | tr '\n' ' ')"; fi
}

# check_fails NAME COMMAND...: PASS when the command fails (exit 1 or 2) without crashing.
check_fails() {
	local name=$1; shift
	"$@" >"$TMP/last.log" 2>&1
	local rc=$?
	if [ $rc -eq 1 ] || [ $rc -eq 2 ]; then pass "$name"; else fail "$name" "exit status $rc"; fi
}

finish() { exit $FAILED; }
