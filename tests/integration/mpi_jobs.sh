#!/usr/bin/env bash
# tests/integration/mpi_jobs.sh — isifd runs jobs of 2 MPI processes under
# mpirun (2 ranks × 1 thread on loopback, TCP forced): refused with 400 while
# --max-processes is 1; with it raised, a job reaches succeeded across a
# kill -9 of the daemon (mpirun does not outlive it, the job resumes from its
# checkpoint) with each epoch's metrics once; a rank killed mid-run fails
# the attempt with a message, not a hung job, and the retry policy applies
# (--max-attempts 2 here): the job is requeued and resumes from its last
# checkpoint to succeed with each epoch once, or, killed again before an
# epoch completes, ends failed naming the limit; a cancel ends it cancelled;
# SIGTERM of isifd checkpoints the batch and the job resumes at the next start.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd mpi_jobs
# Under make sanitize: Open MPI never frees what its plugins allocate (the
# stacks end in unloaded modules, so no suppression can name them), so leak
# detection is off for this suite; ASan's and UBSan's other checks stay on.
[ -n "${SANITIZED:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
if ! command -v mpirun >/dev/null || ! ldd "$ISIF" | grep -q libmpi; then
	fail mpi_jobs_mpi_present "needs mpirun (openmpi-bin) and an isif built with libopenmpi-dev"
	finish
fi

SPEC='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 2, "batch_size": 64,
       "train_subset": 4096, "processes": 2, "eval": {"every": 0}}'
DB="$T/state/isifd.db"
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$1"; }
MPI_ARGS="--oversubscribe --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
# the isif processes of this suite's jobs (their command lines name $T)
ranks() { pgrep -f -- "--out $T/state/jobs/$1/run" | grep -v "^$$\$"; }

wait_mid_epoch() {
	local i
	for ((i = 0; i < 300 * SLOW; i++)); do
		[ "$(job_field "$1" "(d['progress'] or {}).get('epoch') == $2 and d['progress']['images_done'] >= 64")" = True ] && return 0
		sleep 0.1
	done
	return 1
}

start_isifd "$T/state" || { fail mpi_jobs_start; exit 1; }
expect_error mpi_jobs processes_off 400 "max-processes 1 (MPI jobs are off)" POST /jobs \
	-H 'Content-Type: application/json' --data-binary "$SPEC"
stop_isifd TERM

start_isifd "$T/state" --max-processes 2 --mpirun-args "$MPI_ARGS" --isif "$ISIF" ||
	{ fail mpi_jobs_restart; exit 1; }
code=$(post_json /jobs "$SPEC")
check mpi_jobs_submit [ "$code" = 201 ]
check mpi_jobs_epoch_1_committed wait_epoch 1 1 90
check mpi_jobs_mid_epoch_2 wait_mid_epoch 1 2
# frozen (SIGSTOP) from here to the kill: isifd cannot commit epoch 2 while the
# checks below look at the ranks (they took long enough for it to, at times)
kill -STOP "$PID"
check mpi_jobs_ranks_running [ "$(ranks 1 | wc -l)" -ge 2 ]
# the ranks map the decoded folders isifd caches (a folder dataset would hit there)
check mpi_jobs_ranks_get_folder_cache bash -c "ranks() { pgrep -f -- \"--out $T/state/jobs/1/run\"; }; ranks | xargs -r ps -o args= -p | grep ' train ' | grep -q -- '--cache-dir $T/state/folder-cache --cache-max-mib 16384'"
kill -KILL "$PID"
kill -CONT "$PID" 2>/dev/null
wait "$PID" 2>/dev/null
PID=
gone=0
for ((i = 0; i < 100; i++)); do
	[ -z "$(ranks 1)" ] && { gone=1; break; }
	sleep 0.1
done
check mpi_jobs_mpirun_dies_with_daemon [ $gone = 1 ]
[ "$(sql "SELECT status, epoch FROM jobs WHERE id = 1")" = "running|1" ]; is mpi_jobs_state_after_kill

start_isifd "$T/state" --max-processes 2 --mpirun-args "$MPI_ARGS" --isif "$ISIF" \
	--max-attempts 2 || { fail mpi_jobs_restart2; exit 1; }
check mpi_jobs_resumed_job_succeeds wait_status 1 succeeded 120
[ "$(job_field 1 "d['resumed_from_epoch'], d['epoch']")" = "(1, 2)" ]; is mpi_jobs_resumed_from_epoch
code=$(req GET /jobs/1/metrics)
[ "$code" = 200 ] && [ "$(json "[r['epoch'] for r in d['metrics']]")" = "[1, 2]" ]; is mpi_jobs_every_epoch_once
check mpi_jobs_spec_keeps_processes [ "$(job_field 1 "d['spec']['processes']")" = 2 ]

# A rank killed mid-run: the attempt fails with mpirun's account, promptly,
# and is retried (attempt 1 of --max-attempts 2); killed again before an
# epoch completes, the job ends failed naming the limit.
kill_rank() {
	local victim
	victim=$(ranks "$1" | xargs -r ps -o pid=,args= -p | awk '/ train /{print $1}' | tail -1)
	[ -n "$victim" ] && kill -KILL "$victim"
}
wait_retried() {   # wait_retried ID: the failed attempt was requeued
	local i
	for ((i = 0; i < 300 * SLOW; i++)); do
		[ "$(job_field "$1" "'retried from its last checkpoint' in (d['error'] or '')")" = True ] && return 0
		sleep 0.1
	done
	return 1
}
code=$(post_json /jobs "${SPEC/\"epochs\": 2/\"epochs\": 3}")
check mpi_jobs_submit_2 [ "$code" = 201 ]
check mpi_jobs_job_2_training wait_mid_epoch 2 1
kill_rank 2
check mpi_jobs_killed_rank_attempt_retried wait_retried 2
why=$(job_field 2 "d['error']")
echo "    job 2, attempt 1: $why"
case "$why" in *"MPI process of the job failed"*) pass mpi_jobs_retry_says_why ;;
	*) fail mpi_jobs_retry_says_why "$why" ;; esac
check mpi_jobs_attempt_2_training wait_mid_epoch 2 1
kill_rank 2
check mpi_jobs_killed_rank_fails_the_job wait_status 2 failed 60
why=$(job_field 2 "d['error']")
echo "    job 2: $why"
case "$why" in *"MPI process of the job failed"*"not retried: --max-attempts 2"*) pass mpi_jobs_failure_says_why ;;
	*) fail mpi_jobs_failure_says_why "$why" ;; esac
check mpi_jobs_retry_logged grep -q "job 2: an attempt failed (an MPI process of the job failed.*retrying from its last checkpoint" "$LOG"
sleep 2
check mpi_jobs_no_ranks_left [ -z "$(ranks 2)" ]

# Retried, then succeeded: a rank killed in epoch 2 of 2; the next attempt
# resumes from epoch 1's checkpoint and each epoch's row is there once.
code=$(post_json /jobs "$SPEC")
check mpi_jobs_submit_3 [ "$code" = 201 ]
check mpi_jobs_job_3_epoch_2 wait_mid_epoch 3 2
kill_rank 3
check mpi_jobs_job_3_retried wait_retried 3
check mpi_jobs_retried_job_succeeds wait_status 3 succeeded 120
[ "$(job_field 3 "d['resumed_from_epoch'], d['epoch'], d['error']")" = "(1, 2, None)" ]; is mpi_jobs_retried_resumed_from_epoch_1
code=$(req GET /jobs/3/metrics)
[ "$(json "[r['epoch'] for r in d['metrics']]")" = "[1, 2]" ]; is mpi_jobs_retried_every_epoch_once

# Cancel: the ranks stop at a batch boundary and the job ends cancelled.
code=$(post_json /jobs "$SPEC")
check mpi_jobs_submit_4 [ "$code" = 201 ]
check mpi_jobs_job_4_training wait_mid_epoch 4 1
code=$(req POST /jobs/4/cancel)
check mpi_jobs_cancel_accepted [ "$code" = 202 ]
check mpi_jobs_cancel_ends_cancelled wait_status 4 cancelled 30
sleep 1
check mpi_jobs_cancel_leaves_no_ranks [ -z "$(ranks 4)" ]

# SIGTERM of isifd: the ranks stop at a batch with a checkpoint (@stop), the
# job waits in the queue and resumes at the next start.
code=$(post_json /jobs "$SPEC")
check mpi_jobs_submit_5 [ "$code" = 201 ]
check mpi_jobs_job_5_training wait_mid_epoch 5 1
stop_isifd TERM
check mpi_jobs_sigterm_exit_0 [ $? = 0 ]
[ "$(sql "SELECT status, resume_pending FROM jobs WHERE id = 5")" = "queued|1" ]; is mpi_jobs_sigterm_requeued
check mpi_jobs_sigterm_checkpoints_the_batch bash -c "sqlite3 '$DB' 'SELECT checkpoint FROM jobs WHERE id = 5' | grep -q 'ckpt-000000-s'"
check mpi_jobs_sigterm_leaves_no_ranks [ -z "$(ranks 5)" ]
start_isifd "$T/state" --max-processes 2 --mpirun-args "$MPI_ARGS" --isif "$ISIF" ||
	{ fail mpi_jobs_restart3; exit 1; }
check mpi_jobs_sigterm_job_succeeds wait_status 5 succeeded 120
code=$(req GET /jobs/5/metrics)
[ "$(json "[r['epoch'] for r in d['metrics']]")" = "[1, 2]" ]; is mpi_jobs_sigterm_every_epoch_once
stop_isifd TERM
check mpi_jobs_exit_0 [ $? = 0 ]
finish
