#!/usr/bin/env bash
# tests/integration/ops.sh — operator safety of isifd's start-up, shutdown
# and HTTP front, each case written against a fault an operator met:
#   flags     --max-queued 0 refused at start (it made every POST /jobs 429)
#   listen    localhost:PORT and [::1]:PORT accepted; host names and odd
#             strings refused (exit 2) before anything is created; a port
#             in use reported as such (exit 1) before the state directory
#             exists
#   lock      one isifd per --state-dir: a second one exits 1 naming the
#             first (pid, start time) and leaves its running job alone;
#             after kill -9 a new one starts; a symlink or FIFO in the lock
#             file's place is refused
#   front     8 KB / 64 KB query strings (one long value, or thousands of
#             parameters) answered 414 within 2 s; unknown, repeated or
#             valueless query parameters 400 on several routes; --web-dir
#             serves no symlinked directory or file and no FIFO (404 at
#             once); dataset images behind a token are Cache-Control: private
#   shutdown  with a handler that never returns, isifd still exits 0 within
#             --shutdown-timeout + 1 s, and at once on a second signal
#   events    the final state event carries "progress"; SIGTERM with 20 open
#             event streams and slow clients: every stream gets an
#             "event: shutdown" and ends, isifd exits 0 within
#             --shutdown-timeout + 2 s (the measured figures are printed)
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd ops

LONG='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1000, "batch_size": 32,
       "train_subset": 64, "eval": {"every": 0}}'
# The time `curl` took for one request: "CODE SECONDS".
timed() { curl -s -o "$T/body" -w '%{http_code} %{time_total}' --max-time 5 "$@"; }
# A daemon that must refuse to start: runs it (10 s at most), output in $T/out.
refused() { timeout $((10 * SLOW)) "$ISIFD" --web-dir web --cores 1 "$@" >"$T/out" 2>&1; }
# listening LOG HOST_RE: waits for the "listening" line of the daemon $PID
# started with its output in LOG; sets PORT and BASE.
listening() {
	local i
	for ((i = 0; i < 100 * SLOW; i++)); do
		PORT=$(sed -n "s|.*listening on http://$2:\([0-9]*\)/.*|\1|p" "$1" 2>/dev/null)
		BASE="http://127.0.0.1:$PORT"
		[ -n "$PORT" ] && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "isifd did not start; log:" >&2
	tail -5 "$1" >&2
	return 1
}

# ---- flags -------------------------------------------------------------------------------
refused --listen 127.0.0.1:0 --state-dir "$T/mq" --max-queued 0
[ $? = 2 ] && grep -q -- '--max-queued: must be an integer between 1 and' "$T/out" &&
	[ ! -e "$T/mq" ]; is ops_max_queued_0_refused
"$ISIFD" --help | grep -A1 -- '--max-queued' | grep -q 'min 1,'; is ops_help_max_queued_min_1

# ---- --listen ----------------------------------------------------------------------------
"$ISIFD" --listen localhost:0 --state-dir "$T/lh" --web-dir web --cores 1 >"$T/lh.log" 2>&1 &
PID=$!
listening "$T/lh.log" '127\.0\.0\.1' &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" = 200 ]
is ops_listen_localhost
stop_isifd TERM
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
	"$ISIFD" --listen '[::1]:0' --state-dir "$T/v6" --web-dir web --cores 1 >"$T/v6.log" 2>&1 &
	PID=$!
	listening "$T/v6.log" '\[::1\]' &&
		[ "$(curl -sg -o /dev/null -w '%{http_code}' "http://[::1]:$PORT/healthz")" = 200 ]
	is ops_listen_ipv6_loopback
	stop_isifd TERM
else
	pass "ops_listen_ipv6_loopback (no IPv6 loopback on this machine: not run)"
fi
refused --listen example.com:8080 --state-dir "$T/never"
[ $? = 2 ] && grep -q '"example.com" is a host name' "$T/out" && [ ! -e "$T/never" ]
is ops_listen_host_name_refused
ok=1
for spec in 'localhost' 'localhost:' 'localhost:+80' 'localhost: 80' 'localhost:0x50' \
	'localhost:65536' 'localhost.:80' ' localhost:80' '[localhost]:80' '[::1]' '[::1]80' \
	'[127.0.0.1]:80' '127.1:80' '1.2.3.4:80:80' ':80' '[]:80' "$(printf 'local\thost:80')"; do
	refused --listen "$spec" --state-dir "$T/never"
	rc=$?
	if [ $rc != 2 ] || [ -e "$T/never" ]; then
		ok=0
		echo "--listen '$spec': exit $rc, $(head -c 200 "$T/out")" >&2
	fi
done
check ops_listen_odd_strings_refused [ $ok = 1 ]
# A port in use: the second daemon says so, before creating its state directory.
start_isifd "$T/first" || { fail ops_start_first; exit 1; }
refused --listen "127.0.0.1:$PORT" --state-dir "$T/second"
[ $? = 1 ] && grep -q -- "--listen 127.0.0.1:$PORT: address already in use" "$T/out" &&
	[ ! -e "$T/second" ]; is ops_listen_port_in_use
stop_isifd TERM

# ---- one daemon per state directory ---------------------------------------------------------
start_isifd "$T/lk" --workers 1 --cores 1 || { fail ops_start_lock; exit 1; }
FIRST=$PID
code=$(post_json /jobs "$LONG")
check ops_lock_job_submitted [ "$code" = 201 ]
check ops_lock_job_running wait_status 1 running 60
refused --listen 127.0.0.1:0 --state-dir "$T/lk" --workers 1
rc=$?
[ $rc = 1 ] && grep -q "in use by isifd pid $FIRST (started 20" "$T/out"
is ops_lock_second_refused
cp "$T/out" "$T/second.log"
! grep -q 'migration\|resum\|listening' "$T/second.log" && [ "$(job_field 1 "d['status']")" = running ] &&
	[ -d "$T/lk/jobs/1/run" ] && grep -q "pid $FIRST " "$T/lk/isifd.lock"
is ops_lock_first_job_untouched
stop_isifd KILL
start_isifd "$T/lk" --workers 1 --cores 1
is ops_lock_start_after_kill_9
check ops_lock_job_resumed wait_status 1 running 60
wait_epoch 1 1 60   # a checkpoint for the stuck-handler case below
post_json /jobs/1/cancel '' >/dev/null
wait_status 1 cancelled 30
stop_isifd TERM
check ops_lock_clean_exit_0 [ $? = 0 ]
# Whatever an attacker with write access puts in the lock file's place is not followed.
echo "precious" >"$T/victim"
rm -f "$T/lk/isifd.lock"
ln -s "$T/victim" "$T/lk/isifd.lock"
refused --listen 127.0.0.1:0 --state-dir "$T/lk"
[ $? = 1 ] && grep -q 'symbolic link' "$T/out" && [ "$(cat "$T/victim")" = precious ]
is ops_lock_symlink_refused
rm -f "$T/lk/isifd.lock"
mkfifo "$T/lk/isifd.lock"
t0=$(date +%s%N)
refused --listen 127.0.0.1:0 --state-dir "$T/lk"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ $rc = 1 ] && grep -q 'not a plain file' "$T/out" && [ $ms -lt 3000 ]
is "ops_lock_fifo_refused (${ms} ms)"
rm -f "$T/lk/isifd.lock"

# ---- a shutdown with a handler that never returns ---------------------------------------------
# A checkpoint file replaced by a FIFO blocks GET /jobs/1/checkpoint in
# open(2): it stands for any HTTP handler that does not return, which
# MHD_stop_daemon would wait for. The bound holds: --shutdown-timeout + 1 s,
# or at once on a second signal.
stopped_in() {   # stopped_in SIGNAL [SECOND_SIGNAL]: ms from the first signal to the exit
	local t0 i
	t0=$(date +%s%N)
	kill "-$1" "$PID"
	if [ -n "${2:-}" ]; then sleep 0.3; kill "-$2" "$PID"; fi
	for ((i = 0; i < 400; i++)); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
	echo $((($(date +%s%N) - t0) / 1000000))
}
ck=$(ls "$T"/lk/jobs/1/ckpt-*/checkpoint-latest.safetensors 2>/dev/null | head -1)
if [ -z "$ck" ]; then
	fail ops_stuck_handler "job 1 left no checkpoint to replace"
else
	rm -f "$ck"
	mkfifo "$ck"
	for second in "" INT; do
		# The watchdog's _exit leaves libmicrohttpd's threads unjoined on
		# purpose: a ThreadSanitizer build must not count that as a leak
		# (it would change the exit status to 66); races are still reported.
		TSAN_OPTIONS="${TSAN_OPTIONS:-} report_thread_leaks=0" \
			start_isifd "$T/lk" --shutdown-timeout 2 || { fail ops_start_stuck; exit 1; }
		curl -s --max-time 30 "$BASE/jobs/1/checkpoint" -o /dev/null &
		sleep 0.5
		ms=$(stopped_in TERM $second)
		kill -KILL "$PID" 2>/dev/null
		wait "$PID"
		rc=$?
		PID=
		if [ -z "$second" ]; then
			[ $rc = 0 ] && [ "$ms" -le $(((2 + 2) * 1000 * SLOW)) ] && grep -q 'exiting now' "$LOG"
			is "ops_sigterm_bounded_with_a_stuck_handler (${ms} ms, --shutdown-timeout 2)"
		else
			[ $rc = 0 ] && [ "$ms" -le $((1500 * SLOW)) ] && grep -q 'second SIGINT' "$LOG"
			is "ops_second_signal_exits_at_once (${ms} ms after the first)"
		fi
	done
	rm -f "$ck"
fi

# ---- the HTTP front ---------------------------------------------------------------------------
W=$T/web
mkdir -p "$W/sub" "$T/outside"
echo '<!doctype html><title>ops</title>' >"$W/index.html"
echo real >"$W/real.txt"
echo inner >"$W/sub/inner.txt"
echo secret >"$T/outside/secret.txt"
ln -s sub "$W/linkdir"
ln -s "$T/outside" "$W/outdir"
ln -s real.txt "$W/link.txt"
mkfifo "$W/pipe.txt"
truncate -s 16M "$W/big.bin"
"$ISIFD" --listen 127.0.0.1:0 --state-dir "$T/front" --web-dir "$W" --cores 1 --workers 1 \
	--shutdown-timeout 3 --connection-memory 16384 >"$T/front.log" 2>&1 &
PID=$!
listening "$T/front.log" '127\.0\.0\.1' && healthy; is ops_front_start

[ "$(req GET /real.txt)" = 200 ] && [ "$(req GET /sub/inner.txt)" = 200 ]; is ops_web_regular_files_200
for p in linkdir/inner.txt outdir/secret.txt link.txt pipe.txt sub; do
	read -r code secs <<<"$(timed "$BASE/$p")"
	[ "$code" = 404 ] && awk "BEGIN {exit !($secs < 2)}" && healthy
	is "ops_web_${p%%[/.]*}_404 (${secs}s)"
done

# Query strings: one 8 KB or 64 KB value, and 8 KB of short parameters (the
# case libmicrohttpd logged a 431 for and never sent it).
q8=$(python3 -c "print('a=' + 'x' * 8190)")
q64=$(python3 -c "print('a=' + 'x' * 65534)")
qmany=$(python3 -c "print('&'.join(['a=1'] * 2048))")
for c in "8k:$q8" "64k:$q64" "many:$qmany"; do
	read -r code secs <<<"$(timed "$BASE/jobs?${c#*:}")"
	[ "${code:0:1}" = 4 ] && awk "BEGIN {exit !($secs < 2)}" && healthy
	is "ops_long_query_${c%%:*}_4xx ($code in ${secs}s)"
done
[ "$(req GET "/jobs?status=queued&$(python3 -c "print('&'.join(['limit=1'] * 40))")")" = 414 ] &&
	grep -q '"uri_too_long"' "$T/body"; is ops_query_41_params_414
# Just within both limits (32 parameters, under 8000 bytes) at the smallest
# --connection-memory (this daemon's): answered at once (400: /jobs takes
# no "k"), not left hanging.
q_at=$(python3 -c "print('&'.join(['k=' + 'x' * 243] * 32))")
read -r code secs <<<"$(timed "$BASE/jobs?$q_at")"
[ "$code" = 400 ] && awk "BEGIN {exit !($secs < 2)}"; is "ops_query_at_limits_answered ($code)"

# Unknown, repeated and valueless query parameters, on several routes.
bad() { expect_error ops "$1" 400 "$2" "${@:3}"; }
bad unknown_jobs_param 'stauts: unknown query parameter' GET '/jobs?stauts=running'
bad unknown_job_param 'verbose: unknown query parameter' GET '/jobs/1?verbose=1'
bad unknown_metrics_param 'sinse: unknown' GET '/jobs/1/metrics?sinse=1'
bad unknown_healthz_param 'x: unknown' GET '/healthz?x=1'
bad unknown_neighbors_param 'kk: unknown' GET '/neighbors?image=train:0&kk=5'
bad unknown_embeddings_param 'fmt: unknown' GET '/jobs/1/embeddings?fmt=csv'
bad unknown_post_param 'prio: unknown' POST '/jobs?prio=5' -H 'Content-Type: application/json' \
	--data-binary "$LONG"
bad repeated_param 'status: given more than once' GET '/jobs?status=running&status=queued'
bad valueless_param 'status: needs a value' GET '/jobs?status'
[ "$(req GET '/jobs?status=running&limit=5')" = 200 ] && [ "$(req GET '/jobs?access_token=x')" = 200 ] &&
	[ "$(req GET '/index.html?v=2')" = 200 ]; is ops_known_params_accepted
n_jobs() { req GET /jobs >/dev/null && json "len(d['jobs'])"; }
check ops_no_job_created_by_refused_post [ "$(n_jobs)" = 0 ]

code=$(req GET /datasets/fashion-mnist/images/train/0)
[ "$code" = 200 ] && grep -qi '^Cache-Control: public' "$T/headers"; is ops_image_public_without_token

# ---- events: the final state, then SIGTERM with 20 streams and slow clients ------------------
post_json /jobs "$LONG" >/dev/null
post_json /jobs "$LONG" >/dev/null
wait_status 1 running 60
curl -sN --max-time $((30 * SLOW)) "$BASE/jobs/2/events" -o "$T/events2" &
SSE=$!
sleep 0.5
post_json /jobs/2/cancel '' >/dev/null
for ((i = 0; i < 50 * SLOW; i++)); do kill -0 $SSE 2>/dev/null || break; sleep 0.1; done
grep '^data: ' "$T/events2" | tail -1 | python3 -c '
import json, sys
d = json.loads(sys.stdin.read()[6:])
sys.exit(not (d["status"] == "cancelled" and "progress" in d))'
is ops_final_state_has_progress

python3 tests/integration/lib/ops.py hold "$PORT" 1 20 "$T/ready" "$T/held" &
HOLD=$!
for ((i = 0; i < 200 * SLOW; i++)); do [ -e "$T/ready" ] && break; sleep 0.1; done
check ops_20_streams_open [ "$(cat "$T/ready" 2>/dev/null)" = 20 ]
t0=$(date +%s%N)
kill -TERM "$PID"
for ((i = 0; i < 300; i++)); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
ms=$((($(date +%s%N) - t0) / 1000000))
kill -KILL "$PID" 2>/dev/null
wait "$PID"
rc=$?
PID=
[ $rc = 0 ] && [ $ms -le $(((3 + 2) * 1000 * SLOW)) ]
is "ops_sigterm_exit_0_within_timeout_plus_2s (${ms} ms, --shutdown-timeout 3)"
wait "$HOLD"
check ops_streams_all_ended [ "$(grep -c '^1 ' "$T/held")" = 20 ]
check ops_streams_all_got_shutdown_event [ "$(grep -c '^1 1$' "$T/held")" = 20 ]
check ops_slow_clients_closed grep -q 'slow clients closed: 6 of 6' "$T/held"
echo "ops figures: SIGTERM to exit ${ms} ms with 20 event streams and 6 slow clients"

# ---- a token: dataset images are private ---------------------------------------------------
TOKEN=ops-token-0123456789abcdef
echo "$TOKEN" >"$T/token"
start_isifd "$T/tok" --token-file "$T/token" || { fail ops_start_token; exit 1; }
AUTH=(-H "Authorization: Bearer $TOKEN")
code=$(req GET /datasets/fashion-mnist/images/train/0 "${AUTH[@]}")
[ "$code" = 200 ] && grep -qi '^Cache-Control: private' "$T/headers" &&
	! grep -qi '^Cache-Control:.*public' "$T/headers"; is ops_image_private_with_token
stop_isifd TERM
finish
