# tests/lib.sh — the one helper library of the shell test suites
# (tests/cli/*.sh, tests/integration/*.sh): a temporary directory $T removed
# at exit, one output format, and for the integration suites a real isifd on
# a free loopback port with a temporary state directory, talked to with curl
# and always stopped (trap). Every wait is bounded. Not a suite itself.
#
# Output: one line per case, "PASS name" or "FAIL name (why)"; a suite ends
# with `finish`, which exits non-zero when any case failed. tests/run_all.sh
# counts those lines and prints "N passed, N failed" last.
#
# Running tests (after `make all`; BUILD names the build tree):
#   every suite          make test        (or: BUILD=build bash tests/run_all.sh)
#   one suite            BUILD=build bash tests/integration/api.sh
#                        BUILD=build bash tests/cli/engine.sh
#                        python3 tests/tree/layers.py
#   one unit test        build/unit_tests loader_        (every test whose name
#                        build/server_tests srv_          contains an argument)
#   sanitized            BUILD=build/asan SANITIZED=1 bash tests/integration/api.sh
#   keep $T for a look   KEEP=1 BUILD=build bash tests/integration/api.sh
# A suite's cases share one daemon and its state, so a single case of a
# shell suite cannot run alone: run its suite.

set -u
BUILD=${BUILD:-build}
ISIF=${ISIF:-$BUILD/isif}
ISIFD=${ISIFD:-$BUILD/isifd}
# Sanitized builds run several times slower: stretch every timeout.
SLOW=1
[ -n "${SANITIZED:-}" ] && SLOW=4
FAILS=0
T=$(mktemp -d /tmp/isif-test.XXXXXX)
# `isif train` caches decoded image folders under $XDG_CACHE_HOME by default:
# keep the suites' caches in $T, never in the home directory.
export XDG_CACHE_HOME="$T/cache-home"
PID=
PORT=
BASE=

cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -KILL "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	# Background curls of this shell (event streams).
	for j in $(jobs -p); do kill "$j" 2>/dev/null; done
	[ -n "${KEEP:-}" ] || rm -rf "$T"   # KEEP=1 keeps logs and state for a look
}
trap cleanup EXIT

# ---- cases ----------------------------------------------------------------------

pass() { echo "PASS $1"; }
# fail NAME [WHY]
fail() {
	echo "FAIL $1${2:+ ($2)}"
	FAILS=$((FAILS + 1))
}
# cond && cond; is NAME: PASS when the list before it succeeded.
is() {
	if [ $? = 0 ]; then pass "$1"; else fail "$1"; fi
}
# check NAME COMMAND...: PASS when the command succeeds; its output goes to
# $T/last.log, and its last lines into the FAIL line.
check() {
	local name=$1; shift
	if "$@" >"$T/last.log" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(tail -3 "$T/last.log" | tr '\n' ' ' | sed 's/ *$//')"
	fi
}
# check_fails NAME COMMAND...: PASS when the command fails (exit 1 or 2) without crashing.
check_fails() {
	local name=$1; shift
	"$@" >"$T/last.log" 2>&1
	local rc=$?
	if [ $rc -eq 1 ] || [ $rc -eq 2 ]; then pass "$name"; else fail "$name" "exit status $rc"; fi
}

finish() {
	[ "$FAILS" -eq 0 ] && exit 0
	exit 1
}

# ---- a real isifd ---------------------------------------------------------------

# The daemon binary must exist; without it the suite cannot run.
require_isifd() {
	if [ ! -x "$ISIFD" ]; then
		echo "FAIL $1 ($ISIFD not built)"
		exit 1
	fi
}

# start_isifd STATE_DIR [FLAGS...]: starts isifd on 127.0.0.1:0 and waits
# for its "listening" line; sets PID, PORT, BASE and LOG (a new log file per
# start: STATE_DIR.N.log).
NSTART=0
LOG=
start_isifd() {
	local state=$1; shift
	NSTART=$((NSTART + 1))
	LOG="$state.$NSTART.log"
	"$ISIFD" --listen 127.0.0.1:0 --state-dir "$state" --web-dir web --cores 2 \
		--shutdown-timeout 8 "$@" >"$LOG" 2>&1 &
	PID=$!
	local i
	for ((i = 0; i < 100 * SLOW; i++)); do
		PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$LOG" 2>/dev/null)
		if [ -n "$PORT" ]; then
			BASE="http://127.0.0.1:$PORT"
			return 0
		fi
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "isifd did not start; log:" >&2
	tail -20 "$LOG" >&2
	return 1
}

# stop_isifd [SIGNAL]: sends SIGTERM (default) and waits up to 15 s.
# Returns the daemon's exit status (137 when it had to be killed).
stop_isifd() {
	local sig=${1:-TERM} i
	kill "-$sig" "$PID" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$PID" 2>/dev/null; then
		kill -KILL "$PID"
	fi
	wait "$PID"
	local rc=$?
	PID=
	return $rc
}

# req METHOD PATH [CURL ARGS...]: body to $T/body, headers to $T/headers,
# prints the status code.
req() {
	local method=$1 path=$2; shift 2
	curl -s --max-time $((20 * SLOW)) -X "$method" -o "$T/body" -D "$T/headers" \
		-w '%{http_code}' "$@" "$BASE$path"
}

# post_json PATH JSON [CURL ARGS...]
post_json() {
	local path=$1 json=$2; shift 2
	req POST "$path" -H 'Content-Type: application/json' --data-binary "$json" "$@"
}

# json EXPR: evaluates a Python expression over the JSON in $T/body (as d).
json() {
	python3 -c "import json,sys; d=json.load(open('$T/body')); v=($1); print('' if v is None else v)"
}

# job_field ID EXPR: GET /jobs/ID and evaluate EXPR on it.
job_field() {
	req GET "/jobs/$1" "${AUTH[@]}" >/dev/null
	json "$2"
}
AUTH=()

# wait_status ID STATUS SECONDS: polls GET /jobs/ID until status matches.
wait_status() {
	local id=$1 want=$2 limit=$(($3 * SLOW)) i st
	for ((i = 0; i < limit * 5; i++)); do
		st=$(job_field "$id" "d['status']" 2>/dev/null)
		[ "$st" = "$want" ] && return 0
		sleep 0.2
	done
	echo "job $id: status $st after ${limit}s, wanted $want" >&2
	return 1
}

# wait_epoch ID EPOCH SECONDS: polls until the job has committed EPOCH.
wait_epoch() {
	local id=$1 want=$2 limit=$(($3 * SLOW)) i e
	for ((i = 0; i < limit * 10; i++)); do
		e=$(job_field "$id" "d['epoch']" 2>/dev/null)
		[ -n "$e" ] && [ "$e" -ge "$want" ] && return 0
		sleep 0.1
	done
	echo "job $id: epoch $e after ${limit}s, wanted $want" >&2
	return 1
}

# expect_error PREFIX NAME CODE TEXT METHOD PATH [CURL ARGS...]: the answer
# has status CODE, TEXT ('' for none) appears in its body, and the daemon is
# healthy afterwards; one case named PREFIX_bad_NAME. The headers stay in
# $T/bad_headers for further checks.
expect_error() {
	local prefix=$1 name=$2 want=$3 text=$4 method=$5 path=$6; shift 6
	local code
	code=$(req "$method" "$path" "$@")
	cp "$T/headers" "$T/bad_headers"
	if [ "$code" != "$want" ]; then
		fail "${prefix}_bad_$name" "got $code, want $want: $(head -c 200 "$T/body")"
	elif [ -n "$text" ] && ! grep -qF -- "$text" "$T/body"; then
		fail "${prefix}_bad_$name" "body lacks '$text': $(head -c 200 "$T/body")"
	elif ! healthy; then
		fail "${prefix}_bad_$name" "daemon unhealthy afterwards"
	else
		pass "${prefix}_bad_$name"
	fi
}

healthy() {
	[ "$(req GET /healthz)" = 200 ]
}
