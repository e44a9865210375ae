#!/usr/bin/env bash
# tests/integration/jobs.sh — a job's safety promises, each seen broken by an
# operator on an earlier isifd, against a real daemon:
#  - an accepted cancel (202) survives kill -9: at the next start the job
#    ends cancelled with its metrics, instead of resuming and succeeding;
#  - a job whose end cannot be recorded (a trigger stands in for a full
#    disk) shows end_pending, cancel and DELETE answer 409 saying why, its
#    event stream stays open, and once the database takes writes again the
#    job ends by itself (it used to stay running with no worker, forever);
#  - a spec over the memory bound is refused at submit with the estimate and
#    the bound (the 9 GB resnet18 spec got the daemon OOM-killed at every
#    start); an accepted job reports memory_estimate_bytes;
#  - the daemon's thread budget bounds every job (spec threads 64 used to
#    win), and the job reports the threads it got;
#  - a spec that cannot run on its dataset is refused at submit (train_subset
#    beyond the split, a batch larger than the images, a missing class), for
#    a dataset not loaded yet too (a probe of its files);
#  - the job object, its SSE progress events say which phase runs
#    (training / evaluating);
#  - the API's metrics CSV has exactly isif train's metrics.csv columns.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd jobs

DB="$T/state/isifd.db"
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$1"; }
mkdata() {
	python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.make_dataset('$1')"
}
# The dataset registry row alone, shape unknown (as an older isifd left it).
register() {
	python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.register_dataset('$DB', '$1', '$2')"
}
# submit JSON: POST /jobs; prints the new id (or nothing).
submit() {
	[ "$(post_json /jobs "$1")" = 201 ] && json "d['id']"
}
exited() { ! kill -0 "$1" 2>/dev/null; }

mkdata "$T/tiny"   # 512 + 64 images of 16x16, 10 classes
start_isifd "$T/state" --workers 1 || { fail jobs_start; exit 1; }
register tiny "$T/tiny"

# ---- 5. the spec against its dataset, at submit -------------------------------------
bad() { expect_error jobs "$@"; }
J=(-H 'Content-Type: application/json')
FM='"dataset": "fashion-mnist", "model": "convnet"'
bad subset_smaller_than_batch 400 'batch_size: 128 is more than the 100 images to train on' \
	POST /jobs "${J[@]}" --data-binary "{$FM, \"train_subset\": 100, \"batch_size\": 128}"
bad subset_beyond_the_split 400 'train_subset: 100000 is more than the 60000 training images of fashion-mnist' \
	POST /jobs "${J[@]}" --data-binary "{$FM, \"train_subset\": 100000}"
bad class_not_in_dataset 400 'classes.test[0]: 12 is not a class of the dataset' \
	POST /jobs "${J[@]}" --data-binary "{$FM, \"classes\": {\"train\": [0], \"test\": [12]}}"
# tiny is registered without its shape: a probe of its files answers
bad probe_subset_beyond_the_split 400 'train_subset: 600 is more than the 512 training images of tiny' \
	POST /jobs "${J[@]}" --data-binary '{"dataset": "tiny", "model": "convnet", "train_subset": 600}'
bad probe_batch_beyond_the_split 400 'batch_size: 1000 is more than the 512 images' \
	POST /jobs "${J[@]}" --data-binary '{"dataset": "tiny", "model": "convnet", "batch_size": 1000}'
check jobs_no_job_was_queued [ "$(sql "SELECT COUNT(*) FROM jobs")" = 0 ]

# ---- 3. memory: the estimate in the job, the bound at submit --------------------------
OK_SPEC='{"dataset": "tiny", "model": "convnet", "epochs": 1, "batch_size": 32,
          "train_subset": 128, "threads": 64, "eval": {"every": 0}}'
id=$(submit "$OK_SPEC")
check jobs_submit_ok [ -n "$id" ]
est=$(json "d['memory_estimate_bytes']")
echo "    tiny convnet batch 32: memory_estimate_bytes $est"
check jobs_memory_estimate_reported python3 -c "import sys; assert 1e6 < int('$est') < 1e9"
BIG='{"dataset": "fashion-mnist", "model": "resnet18", "batch_size": 1024, "embedding_dim": 4096,
      "train_subset": 2048}'
# ---- 4. threads: within the budget (--cores 2 / 1 worker) -------------------------------
check jobs_threads_job_succeeds wait_status "$id" succeeded 60
check jobs_threads_bounded_by_budget [ "$(job_field "$id" "d['threads']")" = 2 ]
check jobs_threads_logged grep -q "job $id: training on 2 compute threads" "$LOG"
id1=$(submit "${OK_SPEC/\"threads\": 64/\"threads\": 1}")
check jobs_threads_fewer_when_asked wait_status "$id1" succeeded 60
check jobs_threads_one [ "$(job_field "$id1" "d['threads']")" = 1 ]
# the registry learnt tiny's shape when the job loaded it
req GET /datasets/tiny >/dev/null
check jobs_dataset_shape_recorded [ "$(json "d['train_images'], d['test_images'], d['height']")" = "(512, 64, 16)" ]
stop_isifd TERM

# The same spec against an explicit bound, and the bound in the message.
start_isifd "$T/state" --workers 1 --max-job-memory 4096 || { fail jobs_restart_bound; exit 1; }
code=$(post_json /jobs "$BIG")
est=$(python3 -c "import re,sys; m=re.search(r'about ([0-9.]+) GiB', open('$T/body').read()); print(m.group(1) if m else '')")
echo "    resnet18 batch 1024 dim 4096: estimate $est GiB; answer $code: $(json "d['error']['message']")"
[ "$code" = 400 ] && grep -qF 'more than the 4.00 GiB a job may use (--max-job-memory 4096 MiB)' "$T/body" &&
	python3 -c "assert 7 < float('$est') < 12"; is jobs_memory_9gb_spec_refused
# (an isifd without the bound queues it: cancel it before it allocates much)
[ "$code" = 201 ] && req POST "/jobs/$(json "d['id']")/cancel" >/dev/null
stop_isifd TERM
# The default bound: half the machine's memory over the workers (64 here, so
# that the spec is over it on any machine below ~1 TiB).
start_isifd "$T/state" --workers 64 || { fail jobs_restart_default_bound; exit 1; }
code=$(post_json /jobs "$BIG")
echo "    with --workers 64: $code $(json "d['error']['message']" 2>/dev/null)"
[ "$code" = 400 ] && [ "$(json "d['error']['code']")" = over_memory_limit ] &&
	grep -q "half of the machine's [0-9.]* GiB / 64 workers (--max-job-memory 0)" "$T/body"; is jobs_memory_default_bound
[ "$code" = 201 ] && req POST "/jobs/$(json "d['id']")/cancel" >/dev/null
check jobs_memory_refused_not_queued [ "$(sql "SELECT COUNT(*) FROM jobs WHERE spec LIKE '%resnet18%'")" = 0 ]
stop_isifd TERM

# ---- 1. an accepted cancel survives kill -9 --------------------------------------------
# resnet20 steps of 128 images take a second or more: the cancel is still
# pending inside epoch 2's first step when the daemon dies.
start_isifd "$T/state" --workers 1 || { fail jobs_crash_start; exit 1; }
SLOWJOB='{"dataset": "fashion-mnist", "model": "resnet20", "epochs": 20, "batch_size": 128,
          "train_subset": 128, "eval": {"every": 0}}'
id=$(submit "$SLOWJOB")
check jobs_cancel_crash_epoch_1 wait_epoch "$id" 1 120
code=$(req POST "/jobs/$id/cancel")
kill -KILL "$PID"
wait "$PID" 2>/dev/null
PID=
check jobs_cancel_crash_accepted [ "$code" = 202 ]
state=$(sql "SELECT status, cancel_requested, epoch FROM jobs WHERE id = $id")
[ "${state%|*}" = "running|1" ]; is jobs_cancel_crash_pending_at_kill
echo "    at the kill: status|cancel_requested|epoch = $state"
start_isifd "$T/state" --workers 1 || { fail jobs_cancel_crash_restart; exit 1; }
check jobs_cancel_crash_ends_cancelled [ "$(job_field "$id" "d['status']")" = cancelled ]
sleep 1
check jobs_cancel_crash_stays_cancelled [ "$(job_field "$id" "d['status'], d['resumed_from_epoch'], d['finished_at'] is not None")" = "('cancelled', None, True)" ]
code=$(req GET "/jobs/$id/metrics")
[ "$code" = 200 ] && [ "$(json "len(d['metrics']) >= 1")" = True ]; is jobs_cancel_crash_keeps_metrics
check jobs_cancel_crash_not_resumed bash -c "! grep -q 'job $id: resuming' '$LOG'"
check jobs_cancel_crash_logged grep -q "job $id: cancelled (its cancel was accepted before isifd stopped" "$LOG"

# ---- 2. an end that cannot be recorded is retried ----------------------------------------
sql "CREATE TRIGGER refuse_end BEFORE UPDATE OF status ON jobs
     WHEN NEW.status IN ('succeeded', 'failed', 'cancelled')
     BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END;"
id=$(submit '{"dataset": "tiny", "model": "convnet", "epochs": 1, "batch_size": 32,
              "train_subset": 64, "eval": {"every": 0}}')
curl -sN --max-time $((120 * SLOW)) "$BASE/jobs/$id/events" -o "$T/stuck.events" &
SSE=$!
pending=
for ((i = 0; i < 300 * SLOW; i++)); do
	pending=$(job_field "$id" "(d['end_pending'] or {}).get('status', '')")
	[ -n "$pending" ] && break
	sleep 0.1
done
check jobs_end_pending_shown [ "$pending" = succeeded ]
check jobs_end_pending_still_running [ "$(job_field "$id" "d['status']")" = running ]
check jobs_end_pending_says_why bash -c "grep -q 'disk is full (test)' '$T/body'"
code=$(req POST "/jobs/$id/cancel")
[ "$code" = 409 ] && grep -q 'nothing left to cancel' "$T/body"; is jobs_end_pending_cancel_409
code=$(req DELETE "/jobs/$id")
[ "$code" = 409 ] && grep -q 'delete it once it shows its final state' "$T/body"; is jobs_end_pending_delete_409
check jobs_end_pending_stream_open kill -0 "$SSE"
check jobs_end_pending_event grep -q '"end_pending": *{"status": *"succeeded"' "$T/stuck.events"
sql "DROP TRIGGER refuse_end"
check jobs_end_recorded_without_restart wait_status "$id" succeeded 30
for ((i = 0; i < 50 * SLOW; i++)); do exited $SSE && break; sleep 0.1; done
check jobs_end_stream_ends exited $SSE
check jobs_end_stream_final_state bash -c "grep '^data: ' '$T/stuck.events' | tail -1 | grep -q '\"status\": *\"succeeded\"'"
code=$(req DELETE "/jobs/$id")
check jobs_end_then_delete_204 [ "$code" = 204 ]

# ---- 6. the phase: job object and SSE progress events --------------------------------------
EVAL='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1, "batch_size": 64,
       "train_subset": 512, "eval": {"knn_k": 20}, "classes": {"train": [0, 1], "test": [0, 1]}}'
id=$(submit "$EVAL")
curl -sN --max-time $((120 * SLOW)) "$BASE/jobs/$id/events" -o "$T/phase.events" &
SSE=$!
phase=
for ((i = 0; i < 600 * SLOW; i++)); do
	phase=$(job_field "$id" "d['phase'] or ''")
	[ -n "$phase" ] && break
	sleep 0.05
done
case $phase in training | evaluating) pass jobs_phase_in_job_object ;;
*) fail jobs_phase_in_job_object "phase '$phase'" ;; esac
check jobs_phase_job_succeeds wait_status "$id" succeeded 120
for ((i = 0; i < 50 * SLOW; i++)); do exited $SSE && break; sleep 0.1; done
check jobs_phase_training_events grep -q '^data: .*"phase": *"training"' "$T/phase.events"
check jobs_phase_evaluating_events grep -q '^data: .*"phase": *"evaluating"' "$T/phase.events"
python3 - "$T/phase.events" <<'EOF'; is jobs_phase_evaluation_progress
import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith('data: ') and '"phase"' in l]
ev = [e for e in ev if e.get('phase') == 'evaluating' and 'images_done' in e]
# 512 gallery images + 2000 test images of classes 0 and 1, counted to the end
assert ev and ev[-1]['images_total'] == 2512 and ev[-1]['images_done'] == 2512, ev[-1:]
EOF
check jobs_phase_null_when_done [ "$(job_field "$id" "d['phase'], d['progress']")" = "(None, None)" ]

# ---- 7. one metrics CSV ----------------------------------------------------------------------
code=$(req GET "/jobs/$id/metrics?format=csv")
head -1 "$T/body" > "$T/api.header"
"$ISIF" train --dataset "$T/tiny" --model convnet --epochs 1 --batch-size 32 --train-subset 64 \
	--eval-every 0 --quiet --out "$T/cli" > "$T/cli.log" 2>&1
head -1 "$T/cli/metrics.csv" > "$T/cli.header"
echo "    $(cat "$T/api.header")"
[ "$code" = 200 ] && [ -s "$T/api.header" ] && cmp -s "$T/api.header" "$T/cli.header"; is jobs_metrics_csv_headers_equal
[ "$(tail -n +2 "$T/body" | head -1 | tr ',' '\n' | wc -l)" = "$(tr ',' '\n' < "$T/api.header" | wc -l)" ]; is jobs_metrics_csv_row_width

stop_isifd TERM
check jobs_sigterm_exit_0 [ $? = 0 ]
finish
