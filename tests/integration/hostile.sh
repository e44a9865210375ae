#!/usr/bin/env bash
# tests/integration/hostile.sh — isifd under hostile HTTP, loopback only,
# every phase bounded: 1,000 malformed or truncated JSON bodies; oversize
# bodies (413 before the body is read), headers and URLs; stalled and
# trickling slow-loris connections; 10,000 idle connections held while
# /healthz answers (memory bounded), and the default connection limit
# refusing the excess cleanly; a wrk run (WRK_SECONDS, 5 here, 60 in make
# test-slow); the token on every protected route; isifd's own total limit
# (a newcomer over --max-connections is closed at once, not left in the
# listen backlog, and a freed slot serves at once) and --request-timeout
# (trickled headers and bodies cut at the deadline, requests within it and
# event streams spared). The daemon must stay up throughout; its RSS is
# reported after each phase.
# The clients are tests/integration/lib/hostile.py, conn_limits.py and wrk.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd hostile

WRK_SECONDS=${WRK_SECONDS:-5}
IDLE=${IDLE_CONNECTIONS:-10000}
H=tests/integration/lib/hostile.py
# 10,000 connections need as many descriptors in the daemon and the client.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((IDLE + 500)) ] || IDLE=$(($(ulimit -n) - 500))

rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
RSS=()
note_rss() { RSS+=("$1 $(rss_mb) MB"); }
alive() {
	kill -0 "$PID" 2>/dev/null && healthy
}

# ---- defaults, a short connection timeout --------------------------------------------
start_isifd "$T/a" --connection-timeout 3 || { fail hostile_start; exit 1; }
note_rss start
python3 "$H" bodies "$PORT" 1000
note_rss "1000 bodies"
python3 "$H" oversize "$PORT" 1048576
note_rss oversize
python3 "$H" slowloris "$PORT" 3
note_rss slow-loris
python3 "$H" limits "$PORT" 1000 "$PID"
note_rss "connection limits"
check hostile_daemon_up_after_abuse alive

if command -v wrk >/dev/null; then
	before=$(rss_mb)
	out=$(wrk -t2 -c32 -d"${WRK_SECONDS}s" -s tests/integration/lib/wrk_mix.lua "$BASE/" 2>&1)
	after=$(rss_mb)
	reqs=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
	rate=$(sed -n 's/^Requests\/sec: *//p' <<<"$out")
	errs=$(sed -n 's/^ *Socket errors: *//p' <<<"$out")
	lat=$(awk '/Latency/ {print $2 " avg, max " $4; exit}' <<<"$out")
	[ -n "$reqs" ] && [ "$reqs" -gt 0 ] && [ -z "$errs" ] && alive
	is "hostile_wrk_${WRK_SECONDS}s (${reqs:-0} requests, ${rate:-?}/s, latency ${lat:-?}, socket errors: ${errs:-none}; RSS $before -> $after MB)"
	note_rss "wrk ${WRK_SECONDS}s"
else
	fail hostile_wrk "wrk is not installed (make deps installs it)"
fi
stop_isifd TERM
check hostile_a_exit_0 [ $? = 0 ]

# ---- 10,000 idle connections ------------------------------------------------------------
start_isifd "$T/b" --max-connections $((IDLE + 100)) --max-connections-per-ip $((IDLE + 100)) ||
	{ fail hostile_start_b; exit 1; }
python3 "$H" idle "$PORT" "$IDLE" "$PID" 2
check hostile_daemon_up_after_idle alive
stop_isifd TERM
check hostile_b_exit_0 [ $? = 0 ]

# ---- the total limit and the request deadline, small numbers -----------------------------
L=tests/integration/lib/conn_limits.py
start_isifd "$T/d" --max-connections 40 --max-connections-per-ip 16 --request-timeout 2 \
	--connection-timeout 30 --workers 1 --cores 1 --sse-keepalive 1 || { fail hostile_start_d; exit 1; }
python3 "$L" full "$PORT" "$PID" 40 16
python3 "$L" deadline "$PORT" 2
# A long job keeps its event stream open past the deadline; cancelled after.
code=$(post_json /jobs '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1000,
	"batch_size": 32, "train_subset": 64, "eval": {"every": 0}}')
check hostile_d_job_submitted [ "$code" = 201 ]
python3 "$L" stream "$PORT" 1 2
post_json /jobs/1/cancel '' >/dev/null
check hostile_d_job_cancelled wait_status 1 cancelled 30
check hostile_daemon_up_after_deadlines alive
stop_isifd TERM
check hostile_d_exit_0 [ $? = 0 ]

# ---- the token ------------------------------------------------------------------------------
TOKEN=hostile-token-$RANDOM-0123456789abcdef
echo "$TOKEN" > "$T/token"
start_isifd "$T/c" --token-file "$T/token" || { fail hostile_start_c; exit 1; }
python3 "$H" auth "$PORT" "$TOKEN"
stop_isifd TERM

echo "hostile figures: RSS ${RSS[*]/%/;}"
finish
