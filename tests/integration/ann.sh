#!/usr/bin/env bash
# tests/integration/ann.sh — approximate indexes (FAISS) on a real isifd:
# a small job's index starts exact; POST /jobs/1/index builds HNSW in the
# background, GET shows its recall@10, /neighbors then answers from it (same
# top-1 as exact), IVF replaces it, a restart reloads it without a rebuild,
# "exact" removes it; bad requests each give their 4xx; concurrent builds
# give 202 for one and 409 for the others and leave a consistent index.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd ann

start_isifd "$T/state" || { fail ann_start; exit 1; }
pass ann_start

SMALL='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1, "batch_size": 64,
        "train_subset": 1024, "eval": {"knn_k": 20}}'
NOEVAL='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1, "batch_size": 64,
         "train_subset": 128, "eval": {"every": 0}}'
check ann_submit [ "$(post_json /jobs "$SMALL")" = 201 ]
check ann_submit_noeval [ "$(post_json /jobs "$NOEVAL")" = 201 ]
check ann_job_succeeds wait_status 1 succeeded 120
check ann_noeval_succeeds wait_status 2 succeeded 60

# wait_build JOB STATE SECONDS: polls GET /jobs/JOB/index until build.state is STATE.
wait_build() {
	local i st
	for ((i = 0; i < $3 * SLOW * 5; i++)); do
		req GET "/jobs/$1/index" >/dev/null
		st=$(json "(d.get('build') or {}).get('state')" 2>/dev/null)
		[ "$st" = "$2" ] && return 0
		sleep 0.2
	done
	echo "job $1: build state $st, wanted $2: $(head -c 300 "$T/body")" >&2
	return 1
}

code=$(req GET /jobs/1/index)
[ "$code" = 200 ] && [ "$(json "d['search'], d['ann'], d['train_rows'], d['dim']")" = "('exact', None, 1024, 128)" ]; is ann_starts_exact
req GET '/neighbors?image=test:0&k=10' >/dev/null
EXACT=$(json "[n['index'] for n in d['neighbors']]")

# ---- HNSW ------------------------------------------------------------------------
code=$(post_json /jobs/1/index '{"kind": "hnsw", "m": 16, "ef_search": 64}')
[ "$code" = 202 ] && [ "$(json "d['requested']")" = "{'kind': 'hnsw', 'params': {'m': 16, 'ef_construction': 64, 'ef_search': 64}}" ]; is ann_hnsw_accepted
check ann_hnsw_built wait_build 1 succeeded 60
[ "$(json "d['search'], d['ann']['kind'], d['ann']['params']['m'], d['ann']['rows'], d['ann']['recall_queries']")" = "('hnsw', 'hnsw', 16, 1024, 1000)" ]; is ann_hnsw_shown
# 1,024 rows with efSearch 64: the graph search is all but exhaustive.
R=$(json "d['ann']['recall_at_10']")
echo "ann: hnsw recall@10 $R on 1,024 rows (1,000 test queries)"
check ann_hnsw_recall python3 -c "assert $R >= 0.95, $R"
check ann_hnsw_fields [ "$(json "d['ann']['build_seconds'] >= 0, d['ann']['bytes'] > 1024 * 128 * 4, d['ann']['threads']")" = "(True, True, 2)" ]
DIR=$(ls -d "$T"/state/jobs/1/index-*)
check ann_files_beside_index [ -s "$DIR/ann.faiss" ] && [ -s "$DIR/ann.json" ]
req GET '/neighbors?image=test:0&k=10' >/dev/null
HNSW=$(json "[n['index'] for n in d['neighbors']]")
python3 -c "e=$EXACT; h=$HNSW; assert e[0] == h[0] and len(set(e) & set(h)) >= 9, (e, h)"; is ann_neighbors_from_hnsw_match_exact

# ---- IVF replaces it --------------------------------------------------------------
code=$(post_json /jobs/1/index '{"kind": "ivf", "nlist": 16, "nprobe": 8}')
check ann_ivf_accepted [ "$code" = 202 ]
check ann_ivf_built wait_build 1 succeeded 60
[ "$(json "d['search'], d['ann']['params']")" = "('ivf', {'nlist': 16, 'nprobe': 8})" ]; is ann_ivf_shown
R=$(json "d['ann']['recall_at_10']")
echo "ann: ivf recall@10 $R (nprobe 8 of 16)"
check ann_ivf_recall python3 -c "assert $R >= 0.8, $R"
BUILT_AT=$(json "d['ann']['built_at']")
check ann_ivf_neighbors [ "$(req GET '/neighbors?image=test:3&k=5')" = 200 ]

# ---- bad requests -------------------------------------------------------------------
P=/jobs/1/index
expect_error ann kind 400 'kind: must be' POST $P -H 'Content-Type: application/json' -d '{"kind": "lsh"}'
expect_error ann kind_type 400 'kind: must be' POST $P -H 'Content-Type: application/json' -d '{"kind": 3}'
expect_error ann m_huge 400 'm: must be an integer between 1 and 128' POST $P -H 'Content-Type: application/json' -d '{"kind": "hnsw", "m": 1000000000}'
expect_error ann m_real 400 'm: must be an integer' POST $P -H 'Content-Type: application/json' -d '{"kind": "hnsw", "m": 1e9}'
expect_error ann m_small 400 'm: must be between 4' POST $P -H 'Content-Type: application/json' -d '{"kind": "hnsw", "m": 2}'
expect_error ann ef_string 400 'ef_search: must be an integer' POST $P -H 'Content-Type: application/json' -d '{"kind": "hnsw", "ef_search": "32"}'
expect_error ann nlist_over_rows 400 'nlist: must be between 1 and 26' POST $P -H 'Content-Type: application/json' -d '{"kind": "ivf", "nlist": 1000}'
expect_error ann nlist_huge 400 'nlist: must be an integer' POST $P -H 'Content-Type: application/json' -d '{"kind": "ivf", "nlist": 99999999999}'
expect_error ann nprobe_over 400 'nprobe: must be between 1 and nlist' POST $P -H 'Content-Type: application/json' -d '{"kind": "ivf", "nlist": 4, "nprobe": 5}'
expect_error ann m_for_ivf 400 'm: does not apply' POST $P -H 'Content-Type: application/json' -d '{"kind": "ivf", "m": 16}'
expect_error ann params_for_exact 400 'takes no parameters' POST $P -H 'Content-Type: application/json' -d '{"kind": "exact", "m": 16}'
expect_error ann unknown_field 400 'unknown field' POST $P -H 'Content-Type: application/json' -d '{"kind": "hnsw", "M": 16}'
expect_error ann not_object 400 'must be a JSON object' POST $P -H 'Content-Type: application/json' -d '[1]'
expect_error ann not_json 400 'must be a JSON object' POST $P -H 'Content-Type: application/json' -d '{"kind":'
expect_error ann no_job 404 'no job 99' POST /jobs/99/index -H 'Content-Type: application/json' -d '{"kind": "hnsw"}'
expect_error ann no_job_get 404 'no job 99' GET /jobs/99/index
expect_error ann no_index 404 'no embedding index' POST /jobs/2/index -H 'Content-Type: application/json' -d '{"kind": "hnsw"}'
expect_error ann no_index_get 404 'no embedding index' GET /jobs/2/index
expect_error ann query_param 400 '' GET '/jobs/1/index?kind=hnsw'
req GET /jobs/1/index >/dev/null
check ann_bad_requests_change_nothing [ "$(json "d['ann']['kind'], d['ann']['built_at']")" = "('ivf', $BUILT_AT)" ]

# ---- restart: reloaded from disk, not rebuilt ----------------------------------------
# exit 0 after builds (under ASan: no leak and no error in the build paths)
stop_isifd
check ann_clean_exit_after_builds [ $? = 0 ]
start_isifd "$T/state" || { fail ann_restart; exit 1; }
code=$(req GET /jobs/1/index)
[ "$code" = 200 ] && [ "$(json "d['search'], d['ann']['built_at'], d.get('build')")" = "('ivf', $BUILT_AT, None)" ]; is ann_reloaded_after_restart
check ann_not_rebuilt_after_restart [ "$(grep -c 'index built' "$LOG")" = 0 ]
check ann_neighbors_after_restart [ "$(req GET '/neighbors?image=test:0&k=10')" = 200 ]

# ---- hostile: eight builds at once --------------------------------------------------------
pids=()
for i in 1 2 3 4 5 6 7 8; do
	curl -s -o /dev/null -w '%{http_code}\n' -X POST "$BASE/jobs/1/index" \
		-H 'Content-Type: application/json' -d '{"kind": "hnsw", "m": 8}' >>"$T/codes" &
	pids+=($!)
done
wait "${pids[@]}"   # not a bare wait: isifd is a child too
c202=$(grep -c '^202$' "$T/codes"); c409=$(grep -c '^409$' "$T/codes")
echo "ann: concurrent builds: $c202 accepted, $c409 refused (409)"
check ann_concurrent_builds [ "$c202" -ge 1 ] && [ $((c202 + c409)) = 8 ]
check ann_concurrent_settles wait_build 1 succeeded 60
check ann_concurrent_consistent [ "$(json "d['search'], d['ann']['params']['m']")" = "('hnsw', 8)" ]

# ---- exact again ----------------------------------------------------------------------
code=$(post_json /jobs/1/index '{"kind": "exact"}')
[ "$code" = 200 ] && [ "$(json "d['search'], d['ann']")" = "('exact', None)" ] &&
	[ ! -e "$DIR/ann.faiss" ] && [ ! -e "$DIR/ann.json" ]; is ann_exact_removes_files
req GET '/neighbors?image=test:0&k=10' >/dev/null
check ann_exact_again_same_neighbors [ "$(json "[n['index'] for n in d['neighbors']]")" = "$EXACT" ]
code=$(post_json /jobs/1/index '{}')
check ann_auto_small_is_exact [ "$code" = 200 ] && [ "$(json "d['search']")" = exact ]

# ---- a grown gallery (the 1M benchmark's path, at 3,000 rows) ----------------------------
expect_error ann grow_below_rows 400 'grow.rows: must be at least' POST $P -H 'Content-Type: application/json' -d '{"kind": "hnsw", "grow": {"rows": 10}}'
expect_error ann grow_huge 400 'grow: must be' POST $P -H 'Content-Type: application/json' -d '{"kind": "hnsw", "grow": {"rows": 1000000000000}}'
expect_error ann grow_sigma 400 'grow.sigma' POST $P -H 'Content-Type: application/json' -d '{"kind": "hnsw", "grow": {"rows": 3000, "sigma": 5}}'
expect_error ann grow_extra 400 'grow: must be' POST $P -H 'Content-Type: application/json' -d '{"kind": "hnsw", "grow": {"rows": 3000, "x": 1}}'
code=$(post_json /jobs/1/index '{"kind": "hnsw", "grow": {"rows": 3000, "sigma": 0.02}}')
check ann_grow_accepted [ "$code" = 202 ]
check ann_grow_built wait_build 1 succeeded 60
[ "$(json "d['train_rows'], d['search'], d['ann']['rows']")" = "(3000, 'hnsw', 3000)" ] && [ ! -e "$DIR" ] &&
	[ "$(ls -d "$T"/state/jobs/1/index-* | wc -l)" = 1 ]; is ann_grow_serves_new_gallery
# the original rows keep their dataset index, copies count on past the largest
code=$(req GET '/neighbors?image=test:0&k=10')
[ "$code" = 200 ] && python3 -c "e=$EXACT; g=$(json "[n['index'] for n in d['neighbors']]"); assert e[0] in g and len(g) == 10, (e, g)"; is ann_grow_neighbors

stop_isifd
check ann_clean_exit_after_grow [ $? = 0 ]
finish
