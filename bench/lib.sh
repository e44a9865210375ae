# bench/lib.sh — sourced by the serving benchmarks (neighbors_wrk.sh,
# neighbors_1m.sh, search_share_ab.sh, serve_train_ab.sh).

# isifd_start LOG ARGS...: starts $BUILD/isifd (default build/isifd) on a free
# loopback port with the web directory and ARGS, its output in LOG (emptied
# first: an older "listening" line would name a dead port); sets PID, PORT
# and B (the base URL) once it listens; returns 1 when it has not within 10 s.
isifd_start() {
	local log=$1 i
	shift
	"${BUILD:-build}/isifd" --listen 127.0.0.1:0 --web-dir web "$@" >"$log" 2>&1 &
	PID=$!
	PORT=
	for ((i = 0; i < 100; i++)); do
		PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$log" | tail -1)
		[ -n "$PORT" ] && break
		sleep 0.1
	done
	B=http://127.0.0.1:$PORT
	[ -n "$PORT" ] || { echo "isifd did not start; its log, $log:" >&2; tail -5 "$log" >&2; return 1; }
}

# field EXPR: EXPR evaluated over the JSON document on stdin (as d)
field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
