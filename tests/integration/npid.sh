#!/usr/bin/env bash
# tests/integration/npid.sh — an npid job in the daemon survives kill -9:
# the memory bank is part of each epoch's snapshot, so a job killed in the
# middle of epoch 2 and resumed ends with the same checkpoint, byte for
# byte, as the same spec run straight through in the same daemon.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd npid

SPEC='{"dataset": "fashion-mnist", "model": "convnet", "method": "npid", "epochs": 2,
       "batch_size": 64, "train_subset": 4096, "eval": {"every": 0}}'

wait_mid_epoch() {
	local i
	for ((i = 0; i < 300 * SLOW; i++)); do
		[ "$(job_field "$1" "(d['progress'] or {}).get('epoch') == $2 and d['progress']['images_done'] >= 64")" = True ] && return 0
		sleep 0.05
	done
	return 1
}

start_isifd "$T/state" || { fail npid_start; exit 1; }
code=$(post_json /jobs "$SPEC")
check npid_submit_straight [ "$code" = 201 ]
check npid_straight_succeeds wait_status 1 succeeded 120
req GET /jobs/1/checkpoint >/dev/null
cp "$T/body" "$T/straight.safetensors"

code=$(post_json /jobs "$SPEC")
check npid_submit_killed [ "$code" = 201 ]
check npid_epoch_1_committed wait_epoch 2 1 60
check npid_mid_epoch_2 wait_mid_epoch 2 2
kill -KILL "$PID"
wait "$PID" 2>/dev/null
PID=
start_isifd "$T/state" || { fail npid_restart; exit 1; }
check npid_resumed_job_succeeds wait_status 2 succeeded 120
code=$(req GET /jobs/2)
[ "$code" = 200 ] && [ "$(json "d['resumed_from_epoch']")" = 1 ]; is npid_resumed_from_epoch
req GET /jobs/2/checkpoint >/dev/null
check npid_kill_resume_is_exact cmp "$T/straight.safetensors" "$T/body"
stop_isifd TERM
finish
