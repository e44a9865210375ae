#!/usr/bin/env bash
# tests/integration/api.sh — a real isifd driven with curl: submit a small
# Fashion-MNIST job and follow it to succeeded (JSON and CSV metrics,
# Server-Sent Events, checkpoint download with its preprocessing), cancel a running and a queued
# job, delete a job, /metrics, /healthz, /datasets, the dashboard page,
# and 30+ kinds of bad request, each answered with its exact status code
# while the daemon stays healthy.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd api

# A 4 KiB body limit so the 413 cases stay small.
start_isifd "$T/state" --max-body 4096 || { fail api_start; exit 1; }
pass api_start

# Evaluation (kNN and the linear probe) only after the last epoch and on two classes (2000 test
# images instead of 10000), to keep it quick.
SMALL='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 2, "batch_size": 64,
        "train_subset": 512, "eval": {"knn_k": 20, "every": 2, "linear_probe": true},
        "classes": {"train": [0, 1], "test": [0, 1]}}'
LONG='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 50, "batch_size": 64,
       "train_subset": 512, "eval": {"every": 0}}'

check api_healthz healthy
code=$(req GET /datasets)
[ "$code" = 200 ] && [ "$(json "[x['available'] for x in d['datasets'] if x['name'] == 'fashion-mnist'][0]")" = True ]; is api_datasets

# ---- a job from submission to success ---------------------------------------
code=$(post_json /jobs "$SMALL")
check api_submit_201 [ "$code" = 201 ]
check api_submit_location grep -qi '^Location: /jobs/1' "$T/headers"
check api_submit_body [ "$(json "d['id'], d['spec']['model'], d['epochs'], d['spec']['lr']")" = "(1, 'convnet', 2, 0.03)" ]
curl -sN --max-time $((120 * SLOW)) "$BASE/jobs/1/events" -o "$T/events" &
SSE=$!

check api_job_succeeds wait_status 1 succeeded 120
code=$(req GET /jobs/1)
[ "$code" = 200 ] && [ "$(json "d['epoch'], d['last_metrics']['epoch'], d['finished_at'] is not None, d['error'], d['resumed_from_epoch']")" = "(2, 2, True, None, None)" ]; is api_job_status

code=$(req GET /jobs/1/metrics)
[ "$code" = 200 ] && [ "$(json "[r['epoch'] for r in d['metrics']], d['job']")" = "([1, 2], 1)" ]; is api_metrics_json
check api_metrics_fields [ "$(json "sorted(d['metrics'][0].keys())")" = "['epoch', 'images_per_sec', 'knn_top1', 'knn_top5', 'loss', 'lr', 'probe_backbone_top1', 'probe_top1', 'seconds']" ]
check api_metrics_values [ "$(json "all(r['loss'] > 0 and r['lr'] == 0.03 and r['images_per_sec'] > 0 for r in d['metrics'])")" = True ]
check api_metrics_knn [ "$(json "d['metrics'][0]['knn_top1'] is None and 0.5 < d['metrics'][1]['knn_top1'] <= d['metrics'][1]['knn_top5'] <= 1")" = True ]
check api_metrics_probe [ "$(json "d['metrics'][0]['probe_top1'] is None and 0.5 < d['metrics'][1]['probe_top1'] <= 1 and 0.5 < d['metrics'][1]['probe_backbone_top1'] <= 1")" = True ]
code=$(req GET '/jobs/1/metrics?since=1')
[ "$code" = 200 ] && [ "$(json "[r['epoch'] for r in d['metrics']]")" = "[2]" ]; is api_metrics_since
code=$(req GET '/jobs/1/metrics?format=csv')
[ "$code" = 200 ] && grep -qi '^Content-Type: text/csv' "$T/headers" &&
	[ "$(head -1 "$T/body")" = "epoch,loss,knn_top1,knn_top5,lr,seconds,images_per_sec,recall_at_1,recall_at_2,recall_at_4,recall_at_8,nmi,data_wait,sim_same_mean,sim_diff_mean,probe_top1,probe_backbone_top1" ] &&
	[ "$(cut -d, -f1 "$T/body" | tail -n +2 | tr '\n' ' ')" = "1 2 " ]; is api_metrics_csv

# The event stream ends by itself after the final state event.
for ((i = 0; i < 50 * SLOW; i++)); do kill -0 $SSE 2>/dev/null || break; sleep 0.1; done
exited() { ! kill -0 "$1" 2>/dev/null; }
check api_sse_stream_ends exited $SSE
check api_sse_epoch_events [ "$(grep -c '^event: epoch' "$T/events")" = 2 ]
check api_sse_progress_events grep -q '^event: progress' "$T/events"
check api_sse_final_state bash -c "grep '^data: ' '$T/events' | tail -1 | grep -q '\"status\": *\"succeeded\"'"
check api_sse_wire_format grep -q '^id: [0-9]' "$T/events"
req GET /jobs/1/events >/dev/null
check api_sse_finished_job grep -q '^event: state' "$T/body"

code=$(req GET /jobs/1/checkpoint)
[ "$code" = 200 ] && grep -qi 'Content-Disposition: attachment; filename="job-1-epoch-2.safetensors"' "$T/headers" &&
	python3 -c "
import json, struct, sys
b = open('$T/body', 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
assert h['__metadata__']['epoch'] == '2' and 'features.0.weight' in h, h.keys()
m = h['__metadata__']
p = json.loads(m['preprocessing'])
assert (p['channels'], p['height'], p['width'], len(p['mean'])) == (1, 28, 28, 1), p
assert json.loads(m['classes'])[9] == 'Ankle boot', m['classes']
"; is api_checkpoint

code=$(req GET '/jobs?status=succeeded')
[ "$code" = 200 ] && [ "$(json "[j['id'] for j in d['jobs']]")" = "[1]" ]; is api_list_filter

# ---- cancel: a running job, then a queued one --------------------------------
code=$(post_json /jobs "$LONG")
check api_submit_long [ "$code" = 201 ]
code=$(post_json '/jobs?priority=-5' "$SMALL")
[ "$code" = 201 ] && [ "$(json "d['status'], d['priority']")" = "('queued', -5)" ]; is api_submit_queued
wait_epoch 2 1 60
code=$(req POST /jobs/3/cancel)
[ "$code" = 202 ] && [ "$(json "d['status']")" = cancelled ]; is api_cancel_queued
code=$(req POST /jobs/2/cancel)
[ "$code" = 202 ] && [ "$(json "d['cancel_requested']")" = True ]; is api_cancel_running_202
check api_cancel_running_takes_effect wait_status 2 cancelled 30
code=$(req GET /jobs/2/metrics)
[ "$code" = 200 ] && [ "$(json "len(d['metrics']) >= 1 and len(d['metrics']) < 50")" = True ]; is api_cancel_keeps_metrics

# ---- delete -------------------------------------------------------------------
code=$(req DELETE /jobs/1)
check api_delete_204 [ "$code" = 204 ]
code=$(req GET /jobs/1)
[ "$code" = 404 ] && [ ! -e "$T/state/jobs/1" ]; is api_deleted_is_gone

# ---- pages and metrics ----------------------------------------------------------
code=$(req GET /)
[ "$code" = 200 ] && grep -qi '^Content-Type: text/html' "$T/headers"; is api_dashboard
code=$(req GET /metrics)
[ "$code" = 200 ] && grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/headers" &&
	grep -q '^isifd_jobs{state="cancelled"} 2$' "$T/body" &&
	grep -q '^isifd_epochs_trained_total [1-9]' "$T/body" &&
	grep -q '^isifd_images_trained_total [1-9]' "$T/body" &&
	grep -q '^isifd_http_requests_total{route="/jobs",method="POST",code="201"} 3$' "$T/body" &&
	grep -q '^isifd_http_request_duration_seconds_bucket{route="/jobs/{id}",le="+Inf"} [1-9]' "$T/body" &&
	grep -q '^isifd_http_request_duration_seconds_count{route="/healthz"} [1-9]' "$T/body"; is api_prometheus
# GET and POST /jobs (both sent above) are one route label, and no label repeats.
check api_prometheus_one_label_per_pattern [ "$(grep -o '^isifd_http_request_duration_seconds_count{route="[^"]*"}' "$T/body" |
	sort | uniq -d)$(grep -c '^isifd_http_request_duration_seconds_count{route="/jobs"} ' "$T/body")" = 1 ]

# ---- bad requests: exact status, and the daemon still healthy -------------------
# bad NAME CODE TEXT METHOD PATH [CURL ARGS...]: see expect_error in tests/lib.sh.
bad() { expect_error api "$@"; }
J=(-H 'Content-Type: application/json')
big=$(python3 -c "print('{\"dataset\": \"fashion-mnist\", \"pad\": \"' + 'x' * 5000 + '\"}')")
bad unknown_path 404 '"not_found"' GET /nope
bad nul_in_query 400 'NUL byte' GET '/jobs?limit=5%00'
bad nul_in_path 400 'NUL byte' GET '/datasets/fashion-mnist%00x'
bad unknown_path_post 404 '"not_found"' POST /nope
bad unknown_nested_path 404 '' GET /jobs/1/nope
bad dotdot_path 404 '' GET /../etc/passwd --path-as-is
bad method_healthz 405 'method_not_allowed' POST /healthz
check api_bad_allow_header grep -qi '^Allow: GET, HEAD' "$T/bad_headers"
bad method_jobs 405 '' PUT /jobs
check api_bad_allow_jobs grep -qi '^Allow: POST, GET, HEAD' "$T/bad_headers"
bad method_job 405 '' PATCH /jobs/2
bad method_cancel 405 '' GET /jobs/2/cancel
bad method_datasets 405 '' DELETE /datasets
bad content_type_text 415 'unsupported_media_type' POST /jobs -H 'Content-Type: text/plain' --data-binary "$SMALL"
bad content_type_missing 415 '' POST /jobs -H 'Content-Type:' --data-binary "$SMALL"
bad body_too_large 413 'bytes (--max-body)' POST /jobs "${J[@]}" --data-binary "$big"
bad body_too_large_chunked 413 'bytes (--max-body)' POST /jobs "${J[@]}" -H 'Transfer-Encoding: chunked' --data-binary "$big"
bad invalid_json 400 'spec: invalid JSON' POST /jobs "${J[@]}" --data-binary '{"dataset": '
bad empty_body 400 'invalid_spec' POST /jobs "${J[@]}" --data-binary ''
bad not_an_object 400 'spec: must be an object' POST /jobs "${J[@]}" --data-binary '[1]'
bad duplicate_key 400 'invalid JSON' POST /jobs "${J[@]}" --data-binary '{"dataset": "fashion-mnist", "dataset": "x"}'
bad unknown_field 400 'bogus: unknown field' POST /jobs "${J[@]}" --data-binary '{"dataset": "fashion-mnist", "bogus": 1}'
bad unknown_nested_field 400 'augment.color_jitter.bogus: unknown field' POST /jobs "${J[@]}" \
	--data-binary '{"dataset": "fashion-mnist", "augment": {"color_jitter": {"bogus": 1}}}'
bad wrong_type 400 'epochs: must be an integer' POST /jobs "${J[@]}" --data-binary '{"dataset": "fashion-mnist", "epochs": "2"}'
bad out_of_range_lr 400 'lr: must be a number > 0' POST /jobs "${J[@]}" --data-binary '{"dataset": "fashion-mnist", "lr": 0}'
bad out_of_range_batch 400 'batch_size: must be an integer between 2 and 1024' POST /jobs "${J[@]}" --data-binary '{"dataset": "fashion-mnist", "batch_size": 1}'
bad out_of_range_hue 400 'augment.color_jitter.hue' POST /jobs "${J[@]}" --data-binary '{"dataset": "fashion-mnist", "augment": {"color_jitter": {"hue": 0.7}}}'
bad unknown_model 400 'model: unknown model' POST /jobs "${J[@]}" --data-binary '{"dataset": "fashion-mnist", "model": "vgg16"}'
bad unknown_dataset 400 'dataset: unknown dataset \"cifar-11\"' POST /jobs "${J[@]}" --data-binary '{"dataset": "cifar-11"}'
bad missing_dataset 400 'dataset: required' POST /jobs "${J[@]}" --data-binary '{"model": "convnet"}'
bad bad_priority 400 'priority: must be an integer' POST '/jobs?priority=high' "${J[@]}" --data-binary "$SMALL"
bad bad_status_filter 400 'status: must be' GET '/jobs?status=done'
bad bad_limit 400 'limit: must be' GET '/jobs?limit=0'
bad bad_job_id 400 'invalid_id' GET /jobs/abc
bad zero_job_id 400 'invalid_id' GET /jobs/0
bad unknown_job 404 'no job 999' GET /jobs/999
bad unknown_job_metrics 404 '' GET /jobs/999/metrics
bad unknown_job_events 404 '' GET /jobs/999/events
bad unknown_job_cancel 404 '' POST /jobs/999/cancel
bad unknown_job_delete 404 '' DELETE /jobs/999
bad unknown_job_checkpoint 404 '' GET /jobs/999/checkpoint
bad metrics_format 400 'format: must be json or csv' GET '/jobs/2/metrics?format=xml'
bad metrics_since 400 'since: must be' GET '/jobs/2/metrics?since=-1'
bad cancel_finished 409 'already cancelled' POST /jobs/2/cancel
bad no_checkpoint_yet 404 'no_checkpoint' GET /jobs/3/checkpoint
post_json /jobs "$LONG" >/dev/null
bad delete_running 409 'cancel it first' DELETE /jobs/4
req POST /jobs/4/cancel >/dev/null
wait_status 4 cancelled 30 >/dev/null

# ---- shutdown --------------------------------------------------------------------
stop_isifd TERM
check api_sigterm_exit_0 [ $? = 0 ]
finish
