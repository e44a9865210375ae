#!/usr/bin/env bash
# tests/integration/crash.sh — durability: kill -9 isifd in the middle of
# an epoch, restart it on the same state directory, and the job resumes
# from its last checkpoint (resumed_from_epoch), finishes, and has every
# epoch's metrics row exactly once with the rows from before the crash
# unchanged; the database passes PRAGMA integrity_check. Then the same
# with SIGTERM: exit 0 within 10 s, the job waits in the queue and resumes
# at the next start. Epochs of 4096 images: a 2048-image epoch could end
# between the mid-epoch sighting and the kill on a quiet machine.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd crash

SPEC='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 2, "batch_size": 64,
       "train_subset": 4096, "eval": {"every": 0}}'
DB="$T/state/isifd.db"
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$1"; }

# wait_mid_epoch ID EPOCH: until the job reports progress inside EPOCH.
wait_mid_epoch() {
	local i
	for ((i = 0; i < 300 * SLOW; i++)); do
		[ "$(job_field "$1" "(d['progress'] or {}).get('epoch') == $2 and d['progress']['images_done'] >= 128")" = True ] && return 0
		sleep 0.05
	done
	return 1
}

start_isifd "$T/state" || { fail crash_start; exit 1; }
code=$(post_json /jobs "$SPEC")
check crash_submit [ "$code" = 201 ]
check crash_epoch_1_committed wait_epoch 1 1 60
req GET /jobs/1/metrics >/dev/null   # epoch 1's row is final: read it now,
before=$(json "d['metrics'][0]")      # so that the kill follows the mid-epoch sighting at once
check crash_mid_epoch_2 wait_mid_epoch 1 2
kill -KILL "$PID"
wait "$PID" 2>/dev/null
PID=
[ "$(sql "SELECT status, epoch FROM jobs WHERE id = 1")" = "running|1" ] &&
	[ "$(sql "SELECT group_concat(epoch) FROM metrics WHERE job_id = 1")" = 1 ]; is crash_state_after_kill
check crash_integrity_after_kill [ "$(sql "PRAGMA integrity_check")" = ok ]

start_isifd "$T/state" || { fail crash_restart; exit 1; }
check crash_resumed_job_succeeds wait_status 1 succeeded 90
code=$(req GET /jobs/1)
[ "$code" = 200 ] && [ "$(json "d['resumed_from_epoch'], d['epoch']")" = "(1, 2)" ]; is crash_resumed_from_epoch
check crash_log_says_resume grep -q 'job 1: resuming from epoch 1' "$LOG"
code=$(req GET /jobs/1/metrics)
[ "$code" = 200 ] && [ "$(json "[r['epoch'] for r in d['metrics']]")" = "[1, 2]" ]; is crash_every_epoch_once
check crash_rows_before_unchanged [ "$(json "d['metrics'][0]")" = "$before" ]
[ "$(sql "SELECT COUNT(*), COUNT(DISTINCT epoch), MIN(epoch), MAX(epoch) FROM metrics WHERE job_id = 1")" = "2|2|1|2" ]; is crash_rows_in_db
code=$(req GET /jobs/1/checkpoint)
check crash_checkpoint_final grep -q 'filename="job-1-epoch-2.safetensors"' "$T/headers"
check crash_integrity_after_resume [ "$(sql "PRAGMA integrity_check")" = ok ]

# ---- SIGTERM: checkpointed jobs wait for the next start ------------------------
code=$(post_json /jobs "$SPEC")
check crash_term_submit [ "$code" = 201 ]
wait_epoch 2 1 60 && wait_mid_epoch 2 2
t0=$(date +%s%N)
stop_isifd TERM
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" = 0 ] && [ "$ms" -lt 10000 ]; is crash_sigterm_exit_0_within_10s
check crash_sigterm_logged grep -q 'stopped for shutdown at a batch boundary' "$LOG"
check crash_sigterm_checkpoints_the_batch grep -q 'job 2: checkpoint at epoch 1 + [1-9][0-9]* batches' "$LOG"
[ "$(sql "SELECT status, resume_pending, epoch FROM jobs WHERE id = 2")" = "queued|1|1" ]; is crash_sigterm_requeued
check crash_sigterm_checkpoint_recorded bash -c "sqlite3 '$DB' 'SELECT checkpoint FROM jobs WHERE id = 2' | grep -q 'ckpt-000001-s'"
start_isifd "$T/state" || { fail crash_term_restart; exit 1; }
check crash_term_job_succeeds wait_status 2 succeeded 90
code=$(req GET /jobs/2/metrics)
[ "$(json "[r['epoch'] for r in d['metrics']]")" = "[1, 2]" ]; is crash_term_every_epoch_once
check crash_term_resumed [ "$(job_field 2 "d['resumed_from_epoch']")" = 1 ]
check crash_job_1_untouched [ "$(job_field 1 "d['status'], d['resumed_from_epoch']")" = "('succeeded', 1)" ]

stop_isifd TERM
check crash_final_exit_0 [ $? = 0 ]
check crash_final_integrity [ "$(sql "PRAGMA integrity_check")" = ok ]
finish
