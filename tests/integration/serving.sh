#!/usr/bin/env bash
# tests/integration/serving.sh — the serving path on a real isifd after a
# tiny Fashion-MNIST job: /neighbors answers under 48 concurrent clients
# (micro-batched: --search-wait-us 2000) equal, byte for byte in their
# neighbours, the answers of the same queries one at a time, and an exact
# float64 scan of the exported embeddings; the micro-batch shows in the
# answers and in /metrics. POST /jobs/{id}/embed: a ref's vector is its
# exported row, an uploaded PNG's (raw or one part of several, JSON or
# .npy) the same vector, and its bad inputs each a clear 4xx. A label filter
# answers the unfiltered order's rows of that label (widening its search),
# min_similarity the unfiltered order cut.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd serving
NUMPY=/usr/bin/python3

"$ISIFD" --help >"$T/help" 2>&1
check serving_help_lists_search_flags bash -c "grep -q -- '--search-threads N' '$T/help' &&
	grep -q -- '--search-batch N' '$T/help' && grep -q -- '--search-wait-us N' '$T/help' &&
	grep -q -- '--search-share N' '$T/help'"
start_isifd "$T/state" --search-wait-us 2000 --search-batch 32 --work-threads 8 ||
	{ fail serving_start; exit 1; }
pass serving_start
code=$(post_json /jobs '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1,
	"batch_size": 64, "train_subset": 256, "eval": {"knn_k": 10}}')
check serving_submit [ "$code" = 201 ]
check serving_job_succeeds wait_status 1 succeeded 120

# ---- concurrent clients: the same answers as alone, and as a naive scan ----------
for i in $(seq 0 47); do
	curl -s "$BASE/neighbors?image=test:$i&k=7" -o "$T/one.$i.json"
done
pids=()
for i in $(seq 0 47); do
	curl -s "$BASE/neighbors?image=test:$i&k=7" -o "$T/many.$i.json" &
	pids+=($!)
done
wait "${pids[@]}"
curl -s -o "$T/train.npy" "$BASE/jobs/1/embeddings?format=npy&split=train"
curl -s -o "$T/test.npy" "$BASE/jobs/1/embeddings?format=npy&split=test"
curl -s -o "$T/train.meta" "$BASE/jobs/1/embeddings?format=tsv&metadata=1&split=train"
$NUMPY - "$T" <<'EOF' >"$T/np.log" 2>&1; is serving_concurrent_answers_exact
import json, sys
import numpy as np
T = sys.argv[1]
tr, te = np.load(T + "/train.npy").astype(np.float64), np.load(T + "/test.npy").astype(np.float64)
ids = np.loadtxt(T + "/train.meta", skiprows=1, dtype=np.int64)[:, 0]
widest = 0
for i in range(48):
    one, many = json.load(open(T + "/one.%d.json" % i)), json.load(open(T + "/many.%d.json" % i))
    assert one["neighbors"] == many["neighbors"], i
    widest = max(widest, many["search"]["batch"])
    assert 0 <= many["search"]["wait_ms"] < 5000
    sim = tr @ te[i] / np.linalg.norm(tr, axis=1) / np.linalg.norm(te[i])
    order = np.argsort(-sim, kind="stable")[:7]
    got = [n["index"] for n in many["neighbors"]]
    # rows whose similarities are within rounding of each other may swap
    assert np.allclose([n["similarity"] for n in many["neighbors"]], sim[order], atol=1e-5), i
    assert sorted(got) == sorted(ids[order]) or np.isclose(sim[order[-1]], np.sort(sim)[-8], atol=1e-5), (i, got)
assert widest > 1, "no micro-batch of more than one query"
EOF
[ -s "$T/np.log" ] && cat "$T/np.log"
# ---- label filter and min_similarity: the unfiltered order, cut -----------------------
curl -s "$BASE/neighbors?image=test:3&k=20&label=3" -o "$T/lab.json"
curl -s "$BASE/neighbors?image=test:3&k=256" -o "$T/all.json"
THR=$(python3 -c "import json; print(json.load(open('$T/all.json'))['neighbors'][100]['similarity'])")
curl -s "$BASE/neighbors?image=test:3&k=256&min_similarity=$THR" -o "$T/cut.json"
curl -s -X POST "$BASE/neighbors/batch" -H 'Content-Type: application/json' \
	-d '{"images": ["test:3", "test:4"], "k": 20, "label": 3}' -o "$T/labb.json"
$NUMPY - "$T" "$THR" <<'EOF' >"$T/np3.log" 2>&1; is serving_label_filter_and_min_similarity
import json, sys
T = sys.argv[1]
lab, every, cut, labb = (json.load(open(T + f)) for f in ("/lab.json", "/all.json", "/cut.json", "/labb.json"))
want = [n for n in every["neighbors"] if n["label"] == 3][:20]
assert lab["neighbors"] == want and len(want) >= 15, (len(want), lab["neighbors"][:2])
assert labb["results"][0]["neighbors"] == want
assert all(n["label"] == 3 for n in labb["results"][1]["neighbors"])
thr = float(sys.argv[2])   # the 101st similarity: at least 101 rows pass, ties included
assert cut["neighbors"] == [n for n in every["neighbors"] if n["similarity"] >= thr]
assert 101 <= len(cut["neighbors"]) < 256
EOF
[ -s "$T/np3.log" ] && cat "$T/np3.log"

req GET /metrics >/dev/null
check serving_metrics_search grep -q '^isifd_search_queries_total [1-9]' "$T/body"
# the CPU policy: set (the default 30% of a core), not applied with no job running
check serving_metrics_search_policy bash -c "grep -q '^isifd_search_cpu_share_cap 0.3000$' '$T/body' &&
	grep -q '^isifd_search_capped 0$' '$T/body' &&
	grep -q '^isifd_search_throttled_seconds_total 0.000000$' '$T/body' &&
	grep -q '^isifd_search_cpu_share [0-9.]*$' '$T/body'"
# --serve-nice (default 5): the search thread and the HTTP threads that served
# a query run at nice 5; a job's threads are not among them (their own: 0)
nice_of() {   # COMM: the nice values of the daemon's threads of that name
	for t in /proc/"$PID"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$1" ] && awk '{print $19}' "$t/stat"
	done | sort -u | tr '\n' ' '
}
check serving_threads_niced bash -c "[ '$(nice_of isifd-search)' = '5 ' ] &&
	echo '$(nice_of MHD-worker)' | grep -qw 5"
# the scan: on a CPU with AVX512_BF16 the queries went through the bf16 candidates
if grep -qw avx512_bf16 /proc/cpuinfo; then scan_re='^isifd_search_bf16_queries_total [1-9]'; else
	scan_re='^isifd_search_bf16_queries_total 0$'; fi
check serving_metrics_search_scan bash -c "grep -q '$scan_re' '$T/body' &&
	grep -q '^isifd_search_fp32_fallbacks_total [0-9]*$' '$T/body'"

# ---- POST /jobs/{id}/embed ---------------------------------------------------------
curl -s -o "$T/t0.png" "$BASE/datasets/fashion-mnist/images/test/0"
curl -s -o "$T/t1.png" "$BASE/datasets/fashion-mnist/images/test/1"
code=$(post_json /jobs/1/embed '{"images": ["test:0", "test:1"]}')
cp "$T/body" "$T/e_refs.json"
check serving_embed_refs [ "$code" = 200 ]
code=$(req POST /jobs/1/embed -H 'Content-Type: image/png' --data-binary @"$T/t0.png")
cp "$T/body" "$T/e_raw.json"
check serving_embed_raw [ "$code" = 200 ]
code=$(req POST /jobs/1/embed -F "a=@$T/t0.png" -F "b=@$T/t1.png" -H 'Accept: application/x-npy')
cp "$T/body" "$T/e_mp.npy"
check serving_embed_multipart_npy [ "$code" = 200 ]
check serving_embed_npy_type grep -qi '^Content-Type: application/x-npy' "$T/headers"
$NUMPY - "$T" <<'EOF' >"$T/np2.log" 2>&1; is serving_embed_vectors_agree
import json, sys
import numpy as np
T = sys.argv[1]
te = np.load(T + "/test.npy")
refs, raw, mp = json.load(open(T + "/e_refs.json")), json.load(open(T + "/e_raw.json")), np.load(T + "/e_mp.npy")
assert refs["count"] == 2 and refs["dim"] == 128 and refs["job"] == 1
assert np.array_equal(np.array(refs["embeddings"], dtype=np.float32), te[:2])
assert mp.dtype == np.float32 and mp.shape == (2, 128)
# the uploads go through the same preprocessing and model as the index
assert np.allclose(mp, te[:2], atol=1e-5), abs(mp - te[:2]).max()
assert np.allclose(np.array(raw["embeddings"][0]), mp[0], atol=1e-6)
assert raw["images"][0]["width"] == 28
EOF
[ -s "$T/np2.log" ] && cat "$T/np2.log"

bad() {   # bad NAME WANT-STATUS WANT-CODE CURL-ARGS...
	local name=$1 want=$2 wcode=$3; shift 3
	local got; got=$(req "$@")
	check "$name" [ "$got $(json "d['error']['code']")" = "$want $wcode" ]
}
bad serving_label_negative 400 invalid_parameter GET '/neighbors?image=test:0&label=-1'
bad serving_label_not_a_number 400 invalid_parameter GET '/neighbors?image=test:0&label=x'
bad serving_min_similarity_over_1 400 invalid_parameter GET '/neighbors?image=test:0&min_similarity=2'
bad serving_min_similarity_nan 400 invalid_parameter GET '/neighbors?image=test:0&min_similarity=nan'
bad serving_batch_label_string 400 invalid_parameter POST /neighbors/batch -H 'Content-Type: application/json' -d '{"images": ["test:0"], "label": "3"}'
bad serving_embed_unknown_job 404 not_found POST /jobs/99/embed -H 'Content-Type: application/json' -d '{"images": ["test:0"]}'
bad serving_embed_bad_id 400 invalid_id POST /jobs/x/embed -H 'Content-Type: application/json' -d '{"images": ["test:0"]}'
bad serving_embed_unknown_field 400 invalid_parameter POST /jobs/1/embed -H 'Content-Type: application/json' -d '{"images": ["test:0"], "k": 3}'
bad serving_embed_bad_json 400 invalid_parameter POST /jobs/1/embed -H 'Content-Type: application/json' -d '{"images": '
bad serving_embed_empty_list 400 invalid_parameter POST /jobs/1/embed -H 'Content-Type: application/json' -d '{"images": []}'
bad serving_embed_bad_ref 400 invalid_parameter POST /jobs/1/embed -H 'Content-Type: application/json' -d '{"images": ["nope:1"]}'
bad serving_embed_not_an_image 422 invalid_image POST /jobs/1/embed -H 'Content-Type: image/png' --data-binary 'not a png at all'
bad serving_embed_empty_body 400 invalid_image POST /jobs/1/embed -H 'Content-Type: image/png' --data-binary ''
bad serving_embed_wrong_type 415 unsupported_media_type POST /jobs/1/embed -H 'Content-Type: text/plain' -d 'x'
head -c 300 /dev/zero | tr '\0' 'a' >"$T/part"
args=(); for i in $(seq 1 300); do args+=(-F "p$i=@$T/part"); done
bad serving_embed_too_many_parts 400 invalid_multipart POST /jobs/1/embed "${args[@]}"
check serving_healthy_after [ "$(req GET /healthz)" = 200 ]

# ---- the direct path (a ref of a loaded index, job given: no lane) ---------------
pids=()
for i in $(seq 0 47); do
	curl -s "$BASE/neighbors?image=test:$i&k=7&job=1" -o "$T/direct.$i.json" &
	pids+=($!)
done
wait "${pids[@]}"
$NUMPY - "$T" <<'EOF' >"$T/np3.log" 2>&1; is serving_direct_path_same_answers
import json, sys
T = sys.argv[1]
for i in range(48):
    one, d = json.load(open(T + "/one.%d.json" % i)), json.load(open(T + "/direct.%d.json" % i))
    assert one["neighbors"] == d["neighbors"] and one["query"] == d["query"], i
EOF

# ---- SIGTERM while 48 keep-alive clients query (requests keep arriving on open
# connections after the listen socket closes, some suspended for the search
# threads): isifd exits 0, no crash, the clients saw answers ----------------------
wrk -t2 -c48 -d6s "$BASE/neighbors?image=test:3&k=5&job=1" >"$T/wrk.out" 2>&1 &
wrk_pid=$!
sleep 1.5
check serving_stop_under_load_exit_0 stop_isifd
wait "$wrk_pid"
check serving_stop_under_load_answered grep -qE '^ +[1-9][0-9]* requests in' "$T/wrk.out"
finish

