#!/usr/bin/env bash
# tests/integration/auth.sh — operations: --help lists every flag with its
# default and bounds, bad flags exit 2, a non-loopback address needs a
# token, bearer-token authentication on every route but /healthz (header
# or ?access_token=), and the queue limit (429 with --max-queued 1 once a
# job runs and one waits).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd auth

"$ISIFD" --help >"$T/help" 2>&1
rc=$?
check auth_help_exit_0 [ $rc = 0 ]
ok=1
for flag in listen state-dir web-dir token-file workers cores max-queued max-body http-threads \
	max-connections max-connections-per-ip connection-memory connection-timeout sse-keepalive \
	progress-interval-ms shutdown-timeout verbose; do
	grep -q -- "--$flag" "$T/help" || { ok=0; echo "--$flag missing from --help" >&2; }
done
check auth_help_lists_flags [ $ok = 1 ]
check auth_help_bounds grep -q 'default 1, min 1, max 64' "$T/help"

"$ISIFD" --workers 0 >"$T/out" 2>&1
[ $? = 2 ] && grep -q -- '--workers: must be an integer between 1 and 64' "$T/out"; is auth_bad_flag_exit_2
"$ISIFD" --bogus >"$T/out" 2>&1
check auth_unknown_flag_exit_2 [ $? = 2 ]
"$ISIFD" --listen 0.0.0.0:0 --state-dir "$T/never" >"$T/out" 2>&1
[ $? = 2 ] && grep -q 'without --token-file' "$T/out" && [ ! -e "$T/never" ]; is auth_public_needs_token
echo short >"$T/short-token"
"$ISIFD" --listen 127.0.0.1:0 --state-dir "$T/never" --token-file "$T/short-token" >"$T/out" 2>&1
check auth_short_token_refused [ $? = 2 ]

TOKEN=0123456789abcdef0123456789abcdef
printf '%s\n' "$TOKEN" >"$T/token"
start_isifd "$T/state" --token-file "$T/token" --max-queued 1 --workers 1 --cores 1 ||
	{ fail auth_start; exit 1; }
pass auth_start

check auth_healthz_open healthy
code=$(req GET /jobs)
[ "$code" = 401 ] && grep -qi '^WWW-Authenticate: Bearer' "$T/headers" &&
	grep -q '"unauthorized"' "$T/body"; is auth_missing_token_401
code=$(req GET /jobs -H "Authorization: Bearer wrong-token-wrong-token")
check auth_wrong_token_401 [ "$code" = 401 ]
code=$(req GET /jobs -H "Authorization: Bearer ${TOKEN}x")
check auth_longer_token_401 [ "$code" = 401 ]
code=$(req GET /metrics)
check auth_metrics_401 [ "$code" = 401 ]
code=$(req GET /)
check auth_dashboard_401 [ "$code" = 401 ]
code=$(req POST /jobs -H 'Content-Type: application/json' --data-binary '{"dataset": "fashion-mnist"}')
check auth_post_401 [ "$code" = 401 ]
AUTH=(-H "Authorization: Bearer $TOKEN")
code=$(req GET /jobs "${AUTH[@]}")
[ "$code" = 200 ] && [ "$(json "d['jobs']")" = "[]" ]; is auth_token_200
code=$(req GET "/datasets?access_token=$TOKEN")
check auth_query_token_200 [ "$code" = 200 ]
# One job runs, one waits (--max-queued 1): the third is refused.
LONG='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1000, "batch_size": 32,
       "train_subset": 64, "eval": {"every": 0}}'
code=$(post_json /jobs "$LONG" "${AUTH[@]}")
[ "$code" = 201 ] && wait_status 1 running 60 &&
	[ "$(post_json /jobs "$LONG" "${AUTH[@]}")" = 201 ]; is auth_queue_one_running_one_waiting
code=$(post_json /jobs "$LONG" "${AUTH[@]}")
[ "$code" = 429 ] && grep -q '"queue_full"' "$T/body" &&
	grep -qi '^Retry-After:' "$T/headers"; is auth_queue_full_429
post_json /jobs/2/cancel '' "${AUTH[@]}" >/dev/null
post_json /jobs/1/cancel '' "${AUTH[@]}" >/dev/null
check auth_queue_jobs_cancelled wait_status 1 cancelled 30
check auth_still_healthy healthy

stop_isifd TERM
check auth_sigterm_exit_0 [ $? = 0 ]
finish
