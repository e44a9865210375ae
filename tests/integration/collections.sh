#!/usr/bin/env bash
# tests/integration/collections.sh — collections that grow (POST
# /jobs/{id}/items) on a real isifd after a tiny Fashion-MNIST job: items
# added by dataset ref (JSON), raw upload and a multipart batch are embedded
# by the job's model (an uploaded PNG gets the same vector as its dataset
# row), found by /neighbors with their id, label and metadata, merged into
# the exact order (checked against a float64 scan of the exported train
# rows plus the items' stored embeddings, an item equal to a train row
# right after it), cut by the label filter and min_similarity, listed,
# replaced, deleted; they survive kill -9 and a restart, go with their job,
# and every bad input is a clear 4xx naming its field. Concurrent adds,
# deletes and searches leave the daemon healthy and consistent.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd collections
NUMPY=/usr/bin/python3
FLAGS=(--max-items 8 --max-items-request 4 --max-item-metadata 200 --max-item-id 16)

"$ISIFD" --help >"$T/help" 2>&1
check collections_help_lists_flags bash -c "grep -q -- '--max-items N' '$T/help' &&
	grep -q -- '--max-item-metadata N' '$T/help' && grep -q -- '--max-item-id N' '$T/help' &&
	grep -q -- '--max-items-request N' '$T/help'"
start_isifd "$T/state" "${FLAGS[@]}" || { fail collections_start; exit 1; }
pass collections_start
expect_error collections unknown_job 404 '"not_found"' POST /jobs/9/items \
	-H 'Content-Type: application/json' -d '{"items": [{"id": "a", "image": "test:0"}]}'
code=$(post_json /jobs '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1,
	"batch_size": 64, "train_subset": 256, "eval": {"knn_k": 10}}')
check collections_submit [ "$code" = 201 ]
check collections_job_succeeds wait_status 1 succeeded 120
# a job that is still queued behind nothing but cancelled: not succeeded
code=$(post_json /jobs '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 50,
	"batch_size": 64, "train_subset": 256}')
req POST /jobs/2/cancel >/dev/null
check collections_second_job_cancelled wait_status 2 cancelled 60
expect_error collections job_not_succeeded 409 '"job_not_succeeded"' POST /jobs/2/items \
	-H 'Content-Type: application/json' -d '{"items": [{"id": "a", "image": "test:0"}]}'

# ---- adding: refs (JSON), a raw upload, a multipart batch --------------------------
code=$(post_json /jobs/1/items '{"items": [
	{"id": "shoe-a", "image": "test:0", "label": 7, "metadata": {"sku": "A-1", "price": 3.5}},
	{"id": "b", "image": "test:1"}]}')
check collections_add_refs bash -c "[ $code = 201 ] && python3 -c \"import json; d=json.load(open('$T/body'))
assert d['count'] == 2 and [a['id'] for a in d['added']] == ['shoe-a', 'b'], d
assert d['added'][0] == {'id': 'shoe-a', 'replaced': False, 'label': 7}, d\""
for i in 5 6 7 10; do curl -s -o "$T/t$i.png" "$BASE/datasets/fashion-mnist/images/test/$i"; done
code=$(req POST '/jobs/1/items?id=up5&label=2' -H 'Content-Type: image/png' --data-binary @"$T/t5.png")
check collections_add_raw_upload [ "$code" = 201 ]
code=$(req POST /jobs/1/items -F 'items=[{"id": "m6", "metadata": {"n": 6}}, {"id": "m7", "label": 1}]' \
	-F "a=@$T/t6.png" -F "b=@$T/t7.png")
check collections_add_multipart_batch bash -c "[ $code = 201 ] && grep -q '\"count\": 5' '$T/body'"

# ---- found by /neighbors, exactly ----------------------------------------------------
curl -s "$BASE/neighbors?image=test:0&k=5" -o "$T/n0.json"
curl -s "$BASE/neighbors?image=test:5&k=5" -o "$T/n5.json"
curl -s "$BASE/neighbors?image=test:6&k=5" -o "$T/n6.json"
$NUMPY - "$T" <<'EOF' >"$T/np1.log" 2>&1; is collections_items_found_with_metadata
import json, sys
T = sys.argv[1]
n0, n5, n6 = (json.load(open(T + f))["neighbors"] for f in ("/n0.json", "/n5.json", "/n6.json"))
top = n0[0]
assert top["item"] == "shoe-a" and top["label"] == 7 and top["metadata"] == {"sku": "A-1", "price": 3.5}, top
assert abs(top["similarity"] - 1) < 1e-5 and "split" not in top and "index" not in top, top
# an uploaded PNG: the vector of its dataset row (the same pixels)
assert n5[0]["item"] == "up5" and n5[0]["label"] == 2 and abs(n5[0]["similarity"] - 1) < 1e-5, n5[0]
assert n6[0]["item"] == "m6" and n6[0]["metadata"] == {"n": 6} and "label" not in n6[0], n6[0]
assert all("split" in n for n in n0[1:] if "item" not in n)
EOF
[ -s "$T/np1.log" ] && cat "$T/np1.log"

# an item equal to a train row of the index: the same similarity, right after that row
curl -s -o "$T/train.npy" "$BASE/jobs/1/embeddings?format=npy&split=train"
curl -s -o "$T/test.npy" "$BASE/jobs/1/embeddings?format=npy&split=test"
curl -s -o "$T/train.meta" "$BASE/jobs/1/embeddings?format=tsv&metadata=1&split=train"
ROW3=$(sed -n 5p "$T/train.meta" | cut -f1)
code=$(post_json /jobs/1/items "{\"items\": [{\"id\": \"twin\", \"image\": \"train:$ROW3\", \"label\": 4}]}")
check collections_add_twin [ "$code" = 201 ]
curl -s "$BASE/neighbors?image=test:0&k=300" -o "$T/all.json"
for id in shoe-a b up5 m6 m7 twin; do
	curl -s "$BASE/jobs/1/items/$id?embedding=true" -o "$T/item.$id.json"
done
$NUMPY - "$T" <<'EOF' >"$T/np2.log" 2>&1; is collections_merged_order_is_exact
import json, sys
import numpy as np
T = sys.argv[1]
tr, te = np.load(T + "/train.npy").astype(np.float64), np.load(T + "/test.npy").astype(np.float64)
ids = np.loadtxt(T + "/train.meta", skiprows=1, dtype=np.int64)[:, 0]
names = ["shoe-a", "b", "up5", "m6", "m7", "twin"]
items = np.array([json.load(open(T + "/item.%s.json" % n))["embedding"] for n in names], dtype=np.float64)
assert items.shape == (6, tr.shape[1]), items.shape
gal = np.vstack([tr, items])
keys = [("row", int(i)) for i in ids] + [("item", n) for n in names]
q = te[0]
sim = gal @ q / np.linalg.norm(gal, axis=1) / np.linalg.norm(q)
got = json.load(open(T + "/all.json"))["neighbors"]
assert len(got) == 262, len(got)   # 256 train rows + 6 items
key = lambda n: ("item", n["item"]) if "item" in n else ("row", n["index"])
pos = {k: i for i, k in enumerate(keys)}
gs = np.array([n["similarity"] for n in got])
assert np.allclose(gs, [sim[pos[key(n)]] for n in got], atol=1e-5)
assert all(gs[i] >= gs[i + 1] for i in range(len(gs) - 1))
# best first within rounding: the naive order's similarities
assert np.allclose(gs, np.sort(sim)[::-1], atol=1e-5)
# the twin: exactly the similarity of train row 3, listed right after it
order = [key(n) for n in got]
row3 = int(ids[3])
i_row, i_twin = order.index(("row", row3)), order.index(("item", "twin"))
assert got[i_row]["similarity"] == got[i_twin]["similarity"], (got[i_row], got[i_twin])
assert i_twin == i_row + 1, (i_row, i_twin)
EOF
[ -s "$T/np2.log" ] && cat "$T/np2.log"
