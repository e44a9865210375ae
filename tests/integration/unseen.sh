#!/usr/bin/env bash
# tests/integration/unseen.sh — the unseen-category preset through a real
# isifd with curl: a generated folder dataset (tests/cli/gen_shapes.py)
# registered under --dataset-root, a job with classes {"split": "first_half"},
# Recall@K, NMI and similarity means per evaluated epoch in its metrics, the
# similarity histograms by epoch (GET /jobs/{id}/similarity) with counts that
# add up to the pairs of the held-out test images, and the route's errors;
# the folder is decoded once, at registration, and the jobs map the cache.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd unseen

python3 tests/cli/gen_shapes.py "$T/data/shapes" --train 16 --test 8 --seed 2
start_isifd "$T/state" --dataset-root "$T/data" || { fail unseen_start; exit 1; }
pass unseen_start

code=$(post_json /datasets "{\"name\": \"shapes\", \"format\": \"folder\", \"path\": \"$T/data/shapes\"}")
check unseen_register_folder [ "$code" = 201 ]

JOB='{"dataset": "shapes", "model": "convnet", "epochs": 2, "batch_size": 32,
      "classes": {"split": "first_half"}}'
code=$(post_json /jobs "$JOB")
check unseen_submit_201 [ "$code" = 201 ]
check unseen_spec_keeps_rule [ "$(json "d['spec']['classes']")" = "{'split': 'first_half'}" ]
id=$(json "d['id']")
check unseen_job_succeeds wait_status "$id" succeeded 120
# the folder was decoded once, when registered; the job mapped the cache file
check unseen_folder_cache_stored_at_register grep -q "dataset shapes: decoded, folder cache stored .*/folder-cache/folder-.*\.isifds" "$LOG"
check unseen_folder_cache_job_hits grep -q "dataset shapes: folder cache hit .*/folder-cache/folder-.*\.isifds (mapped, nothing decoded)" "$LOG"

code=$(req GET "/jobs/$id/metrics")
[ "$code" = 200 ] && [ "$(json "[sorted(r['recall_at']) for r in d['metrics']]")" = "[['1', '2', '4', '8'], ['1', '2', '4', '8']]" ]; is unseen_metrics_recall
check unseen_metrics_nmi [ "$(json "all(0 <= r['nmi'] <= 1 and 0 < r['recall_at']['1'] <= r['recall_at']['8'] <= 1 and r['knn_top1'] is None for r in d['metrics'])")" = True ]
check unseen_metrics_sim_means [ "$(json "all(-1 <= r['sim_diff_mean'] <= 1 and -1 <= r['sim_same_mean'] <= 1 for r in d['metrics'])")" = True ]

# 10 held-out classes × 8 test images: 10·C(8,2) = 280 same-class pairs,
# C(80,2) − 280 = 2880 different-class pairs, all of them (under the bound).
code=$(req GET "/jobs/$id/similarity")
[ "$code" = 200 ] && [ "$(json "d['job'] == $id, d['epoch'], d['epochs'], d['bins'], d['range']")" = "(True, 2, [1, 2], 100, [-1, 1])" ]; is unseen_similarity_latest
check unseen_similarity_counts [ "$(json "d['same']['pairs'], sum(d['same']['counts']), d['different']['pairs'], sum(d['different']['counts'])")" = "(280, 280, 2880, 2880)" ]
check unseen_similarity_mean_in_range [ "$(json "-1 <= d['same']['mean'] <= 1 and -1 <= d['different']['mean'] <= 1")" = True ]
same2=$(json "d['same']['mean']")
code=$(req GET "/jobs/$id/metrics")
check unseen_similarity_mean_in_metrics [ "$(json "abs(d['metrics'][1]['sim_same_mean'] - $same2) < 1e-9")" = True ]
code=$(req GET "/jobs/$id/similarity?epoch=1")
[ "$code" = 200 ] && [ "$(json "d['epoch'], d['same']['pairs']")" = "(1, 280)" ]; is unseen_similarity_epoch
code=$(req GET "/jobs/$id/metrics?format=csv")
check unseen_similarity_csv [ "$(awk -F, 'NR>1 && $14 != "" && $15 != ""' "$T/body" | wc -l)" = 2 ]

expect_error unseen similarity_epoch_missing 404 "no similarity histograms for epoch 3" GET "/jobs/$id/similarity?epoch=3"
expect_error unseen similarity_epoch_zero 400 "epoch: must be an integer" GET "/jobs/$id/similarity?epoch=0"
expect_error unseen similarity_epoch_text 400 "epoch: must be an integer" GET "/jobs/$id/similarity?epoch=abc"
expect_error unseen similarity_param 400 "" GET "/jobs/$id/similarity?bins=10"
expect_error unseen similarity_no_job 404 "no job 999" GET "/jobs/999/similarity"

# without evaluation there are no histograms: a clear 404
code=$(post_json /jobs '{"dataset": "shapes", "model": "convnet", "epochs": 1, "batch_size": 32,
                         "eval": {"every": 0}, "classes": {"split": "second_half"}}')
id2=$(json "d['id']")
check unseen_no_eval_job_succeeds wait_status "$id2" succeeded 120
expect_error unseen similarity_none 404 "has no similarity histograms" GET "/jobs/$id2/similarity"

# a split needs classes to halve: refused at submit, naming the field
mkdir -p "$T/data/one/train/only"
cp "$T/data/shapes/train/circle/000.png" "$T/data/one/train/only/a.png"
cp "$T/data/shapes/train/circle/001.png" "$T/data/one/train/only/b.png"
mkdir -p "$T/data/one/test/only"
cp "$T/data/shapes/test/circle/000.png" "$T/data/one/test/only/a.png"
code=$(post_json /datasets "{\"name\": \"one\", \"format\": \"folder\", \"path\": \"$T/data/one\"}")
check unseen_register_one_class [ "$code" = 201 ]
expect_error unseen split_one_class 400 "classes.split" POST /jobs -H 'Content-Type: application/json' \
	--data-binary '{"dataset": "one", "model": "convnet", "epochs": 1, "batch_size": 2, "classes": {"split": "first_half"}}'

# The paper's second setting needs bigger stored images than the folder
# reader's default 32: POST /datasets "image_size" resizes them, and a job's
# random_crop (centre crop at evaluation) then fits — end to end through the
# daemon's loader (40 → 36 here, 256 → 227 in the paper).
code=$(post_json /datasets "{\"name\": \"shapes40\", \"format\": \"folder\", \"path\": \"$T/data/shapes\", \"image_size\": 40}")
[ "$code" = 201 ] && [ "$(json "d['height'], d['width']")" = "(40, 40)" ]; is unseen_register_image_size
expect_error unseen random_crop_over_default 400 "larger than the 32x32" POST /jobs -H 'Content-Type: application/json' \
	--data-binary '{"dataset": "shapes", "model": "convnet", "epochs": 1, "batch_size": 32, "augment": {"random_crop": 36}}'
code=$(post_json /jobs '{"dataset": "shapes40", "model": "convnet", "epochs": 1, "batch_size": 32,
                         "augment": {"random_crop": 36}, "classes": {"split": "first_half"}}')
id3=$(json "d['id']")
check unseen_image_size_job_succeeds wait_status "$id3" succeeded 120
# image_size 40 is another key: its own file, stored at registration, mapped by the job
f32=$(sed -n 's|.*dataset shapes: decoded, folder cache stored \(.*\.isifds\).*|\1|p' "$LOG")
f40=$(sed -n 's|.*dataset shapes40: folder cache hit \(.*\.isifds\).*|\1|p' "$LOG" | head -1)
check unseen_folder_cache_other_size_own_file test -n "$f40" -a -n "$f32" -a "$f40" != "$f32"
code=$(req GET "/jobs/$id3/similarity")
check unseen_image_size_job_evaluated [ "$code" = 200 ]
expect_error unseen random_crop_tiny 400 "augment.random_crop: 15 is below" POST /jobs -H 'Content-Type: application/json' \
	--data-binary '{"dataset": "shapes40", "model": "convnet", "epochs": 1, "batch_size": 32, "augment": {"random_crop": 15}}'
expect_error unseen image_size_small 400 "image_size: must be an integer between 16 and 512" POST /datasets \
	-H 'Content-Type: application/json' --data-binary "{\"name\": \"s8\", \"format\": \"folder\", \"path\": \"$T/data/shapes\", \"image_size\": 8}"
expect_error unseen image_size_text 400 "image_size: must be an integer" POST /datasets \
	-H 'Content-Type: application/json' --data-binary "{\"name\": \"s9\", \"format\": \"folder\", \"path\": \"$T/data/shapes\", \"image_size\": \"40\"}"
expect_error unseen image_size_not_folder 400 "only folder datasets" POST /datasets \
	-H 'Content-Type: application/json' --data-binary "{\"name\": \"s10\", \"format\": \"idx\", \"path\": \"$T/data/shapes\", \"image_size\": 40}"

check unseen_stops_cleanly stop_isifd
finish
