#!/usr/bin/env bash
# tests/integration/collections.sh — collections that grow (POST
# /jobs/{id}/items) on a real isifd after a tiny Fashion-MNIST job: items
# added by dataset ref (JSON), raw upload and a multipart batch are embedded
# by the job's model (an uploaded PNG gets the same vector as its dataset
# row), found by /neighbors with their id, label and metadata, merged into
# the exact order (checked against a float64 scan of the exported train
# rows plus the items' stored embeddings, an item equal to a train row
# right after it), cut by the label filter and min_similarity, listed,
# replaced, deleted, exported (GET /jobs/{id}/embeddings?split=items in npy,
# tsv, tsv metadata and csv: equal to each item's stored embedding, label and
# metadata); they survive kill -9 and a restart, go with their job,
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
# a cancelled job: not succeeded
code=$(post_json /jobs '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 50,
	"batch_size": 64, "train_subset": 256}')
req POST /jobs/2/cancel >/dev/null
check collections_second_job_cancelled wait_status 2 cancelled 60
expect_error collections job_not_succeeded 409 '"job_not_succeeded"' POST /jobs/2/items \
	-H 'Content-Type: application/json' -d '{"items": [{"id": "a", "image": "test:0"}]}'
# a job that succeeded without evaluating: no index to add to
code=$(post_json /jobs '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1,
	"batch_size": 64, "train_subset": 128, "eval": {"every": 0}}')
check collections_noeval_job_succeeds wait_status 3 succeeded 60
expect_error collections job_not_indexed 404 '"no_index"' POST /jobs/3/items \
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

# ---- filters: label and min_similarity apply to items too ----------------------------
curl -s "$BASE/neighbors?image=test:0&k=10&label=7" -o "$T/lab7.json"
curl -s "$BASE/neighbors?image=test:0&k=10&label=4" -o "$T/lab4.json"
curl -s "$BASE/neighbors?image=test:0&k=300&min_similarity=0.9999" -o "$T/cut.json"
curl -s -X POST "$BASE/neighbors/batch" -H 'Content-Type: application/json' \
	-d '{"images": ["test:0"], "k": 300, "label": 4}' -o "$T/labb.json"
$NUMPY - "$T" <<'EOF' >"$T/np3.log" 2>&1; is collections_filters_apply_to_items
import json, sys
T = sys.argv[1]
every = json.load(open(T + "/all.json"))["neighbors"]
lab7, lab4, cut = (json.load(open(T + f))["neighbors"] for f in ("/lab7.json", "/lab4.json", "/cut.json"))
assert lab7 == [n for n in every if n.get("label") == 7][:10] and lab7[0]["item"] == "shoe-a", lab7[:2]
want4 = [n for n in every if n.get("label") == 4]
assert lab4 == want4[:10] and any(n.get("item") == "twin" for n in want4), lab4
labb = json.load(open(T + "/labb.json"))["results"][0]["neighbors"]
assert labb == want4, (len(labb), len(want4))
assert cut == [n for n in every if n["similarity"] >= 0.9999] and cut[0]["item"] == "shoe-a", cut
EOF
[ -s "$T/np3.log" ] && cat "$T/np3.log"
curl -s "$BASE/neighbors?image=test:0&k=5&split=test" -o "$T/ntest.json"
check collections_test_split_has_no_items bash -c "! grep -q '\"item\"' '$T/ntest.json' &&
	grep -q '\"neighbors\"' '$T/ntest.json'"

# ---- listing, reading, replacing, deleting -------------------------------------------
code=$(req GET '/jobs/1/items?limit=4')
check collections_list_first_page bash -c "[ $code = 200 ] && python3 -c \"import json; d=json.load(open('$T/body'))
assert [i['id'] for i in d['items']] == ['b', 'm6', 'm7', 'shoe-a'] and d['count'] == 6, d
assert d['next_after'] == 'shoe-a' and d['items'][3]['metadata'] == {'price': 3.5, 'sku': 'A-1'}, d
assert 'embedding' not in d['items'][0] and d['items'][0]['created_at'], d\""
code=$(req GET '/jobs/1/items?limit=4&after=shoe-a')
check collections_list_next_page bash -c "[ $code = 200 ] && python3 -c \"import json; d=json.load(open('$T/body'))
assert [i['id'] for i in d['items']] == ['twin', 'up5'] and d['next_after'] is None, d\""
code=$(req POST /jobs/1/embed -H 'Content-Type: application/json' -d '{"images": ["test:0"]}')
cp "$T/body" "$T/embed0.json"
check collections_item_embedding_is_the_models $NUMPY -c "import json, numpy as np
a = np.array(json.load(open('$T/embed0.json'))['embeddings'][0])
b = np.array(json.load(open('$T/item.shoe-a.json'))['embedding'])
assert np.array_equal(a.astype(np.float32), b.astype(np.float32)), abs(a - b).max()"
expect_error collections duplicate_id 409 '"conflict"' POST /jobs/1/items \
	-H 'Content-Type: application/json' -d '{"items": [{"id": "b", "image": "test:2"}]}'
code=$(post_json /jobs/1/items '{"items": [{"id": "b", "image": "test:10", "label": 9}], "replace": true}')
check collections_replace bash -c "[ $code = 201 ] && grep -q '\"replaced\": true' '$T/body' && grep -q '\"count\": 6' '$T/body'"
curl -s "$BASE/neighbors?image=test:10&k=1" -o "$T/n10.json"
check collections_replaced_item_searchable grep -q '"item": "b", "label": 9' "$T/n10.json"
# a form replaces with the object form of its items part (?replace= is for raw bodies)
code=$(req POST /jobs/1/items -F 'items={"items": [{"id": "m7", "label": 3}], "replace": true}' \
	-F "a=@$T/t7.png")
check collections_replace_by_form bash -c "[ $code = 201 ] && grep -q '\"replaced\": true, \"label\": 3' '$T/body' &&
	grep -q '\"count\": 6' '$T/body'"
code=$(req DELETE /jobs/1/items/m7)
check collections_delete [ "$code" = 200 ]
expect_error collections delete_again 404 '"not_found"' DELETE /jobs/1/items/m7
expect_error collections get_deleted 404 '"not_found"' GET /jobs/1/items/m7
curl -s "$BASE/neighbors?image=test:7&k=300" -o "$T/n7.json"
check collections_deleted_not_found_by_search bash -c "! grep -q '\"m7\"' '$T/n7.json' &&
	grep -q '\"up5\"' '$T/n7.json'"

# ---- bad inputs: each a clear 4xx naming its field --------------------------------------
J=(-H 'Content-Type: application/json')
expect_error collections malformed_json 400 'invalid JSON' POST /jobs/1/items "${J[@]}" -d '{"items": [{'
expect_error collections unknown_top_field 400 'colour: unknown field' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "x", "image": "test:0"}], "colour": 1}'
expect_error collections unknown_item_field 400 'items[0].colour: unknown field' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "x", "image": "test:0", "colour": 1}]}'
expect_error collections id_too_long 400 'items[0].id' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "abcdefghijklmnopq", "image": "test:0"}]}'
expect_error collections id_bad_chars 400 'items[0].id' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "a/b", "image": "test:0"}]}'
# "." and "..": curl and browsers resolve /jobs/1/items/.. to /jobs/1/, so
# such an item could never be read or deleted by them
expect_error collections id_dotdot 400 'not . or ..' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "..", "image": "test:0"}]}'
expect_error collections id_dot_raw 400 'not . or ..' POST '/jobs/1/items?id=.' \
	-H 'Content-Type: image/png' --data-binary @"$T/t5.png"
expect_error collections id_missing 400 'items[0].id: required' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"image": "test:0"}]}'
expect_error collections image_missing 400 'items[0].image: required' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "x"}]}'
expect_error collections bad_ref 400 'items[0].image' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "x", "image": "nope:1"}]}'
expect_error collections ref_out_of_range 404 'items[0]' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "x", "image": "test:99999"}]}'
big=$(python3 -c "print('x' * 300)")
expect_error collections huge_metadata 413 'items[0].metadata' POST /jobs/1/items "${J[@]}" \
	-d "{\"items\": [{\"id\": \"x\", \"image\": \"test:0\", \"metadata\": {\"k\": \"$big\"}}]}"
# a JSON body (or a form's items part) is JSON, bounded by --max-body (1 MiB),
# not by --max-image-bytes (10 MiB): its parsed tree is ~20x its text
python3 -c "print('{\"items\": [{\"id\": \"pad\", \"image\": \"test:0\"}]' + ' ' * (3 << 19) + '}')" >"$T/pad.json"
expect_error collections json_over_max_body 413 'payload_too_large' POST /jobs/1/items "${J[@]}" \
	--data-binary @"$T/pad.json"
python3 -c "print('[{\"id\": \"pad\"}' + ' ' * (3 << 19) + ']')" >"$T/pad.part"
expect_error collections items_part_over_max_body 413 'items: part of' POST /jobs/1/items \
	-F "items=<$T/pad.part" -F "a=@$T/t6.png"
expect_error collections metadata_not_object 400 'items[0].metadata: must be a JSON object' \
	POST /jobs/1/items "${J[@]}" -d '{"items": [{"id": "x", "image": "test:0", "metadata": [1]}]}'
expect_error collections label_negative 400 'items[0].label' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "x", "image": "test:0", "label": -3}]}'
expect_error collections same_id_twice 400 'items[1].id' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "x", "image": "test:0"}, {"id": "x", "image": "test:1"}]}'
expect_error collections too_many_in_request 400 'max-items-request' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "x1", "image": "test:0"}, {"id": "x2", "image": "test:0"},
	{"id": "x3", "image": "test:0"}, {"id": "x4", "image": "test:0"}, {"id": "x5", "image": "test:0"}]}'
expect_error collections collection_full 409 'max-items' POST /jobs/1/items "${J[@]}" \
	-d '{"items": [{"id": "x1", "image": "test:0"}, {"id": "x2", "image": "test:0"},
	{"id": "x3", "image": "test:0"}, {"id": "x4", "image": "test:0"}]}'
head -c 200 "$T/t5.png" >"$T/trunc.png"
expect_error collections truncated_image 422 'items[0]' POST '/jobs/1/items?id=tr' \
	-H 'Content-Type: image/png' --data-binary @"$T/trunc.png"
expect_error collections raw_label_space 400 'label: must be an integer' POST '/jobs/1/items?id=sp&label=%201' \
	-H 'Content-Type: image/png' --data-binary @"$T/t5.png"
expect_error collections raw_label_plus 400 'label: must be an integer' POST '/jobs/1/items?id=sp&label=%2B1' \
	-H 'Content-Type: image/png' --data-binary @"$T/t5.png"
expect_error collections raw_without_id 400 'id: required' POST /jobs/1/items \
	-H 'Content-Type: image/png' --data-binary @"$T/t5.png"
expect_error collections query_id_with_json 400 'query parameters go with a raw image' \
	POST '/jobs/1/items?id=x' "${J[@]}" -d '{"items": [{"id": "x", "image": "test:0"}]}'
expect_error collections multipart_without_items 400 'part named items' POST /jobs/1/items \
	-F "a=@$T/t6.png"
expect_error collections multipart_count_mismatch 400 '2 items for 1 file parts' POST /jobs/1/items \
	-F 'items=[{"id": "p"}, {"id": "q"}]' -F "a=@$T/t6.png"
expect_error collections multipart_item_with_image 400 'items[0].image: not with uploaded files' \
	POST /jobs/1/items -F 'items=[{"id": "p", "image": "test:0"}]' -F "a=@$T/t6.png"
expect_error collections bad_path_id 400 'item id' GET '/jobs/1/items/a%20b'
# a %00 must not cut "b%00x" to the existing item "b"
expect_error collections nul_in_path_id 400 "NUL byte" DELETE '/jobs/1/items/b%00x'
expect_error collections bad_limit 400 'limit' GET '/jobs/1/items?limit=0'
expect_error collections items_of_unknown_job 404 '"not_found"' GET /jobs/99/items
expect_error collections wrong_content_type 415 '' POST /jobs/1/items -H 'Content-Type: text/plain' -d 'x'
check collections_nothing_added_by_bad_inputs bash -c "[ \$(curl -s '$BASE/jobs/1/items' |
	python3 -c 'import json,sys; print(json.load(sys.stdin)[\"count\"])') = 5 ]"

# ---- a hostile client: adds, replaces and deletes racing searches -------------------------
storm() {   # storm N: adds and deletes of ids s<N>-*, every answer one of the expected codes
	local n=$1 i c
	for i in 1 2 3 4 5 6; do
		c=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/jobs/1/items" -H 'Content-Type: application/json' \
			-d "{\"items\": [{\"id\": \"s$n\", \"image\": \"test:$((n + i))\"}], \"replace\": true}")
		case $c in 201|409) ;; *) echo "add $c"; return 1 ;; esac
		c=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$BASE/jobs/1/items/s$n")
		case $c in 200|404) ;; *) echo "delete $c"; return 1 ;; esac
	done
}
searches() {
	local i c
	for i in $(seq 1 20); do
		c=$(curl -s -o "$T/storm.$1.json" -w '%{http_code}' "$BASE/neighbors?image=test:$i&k=300")
		[ "$c" = 200 ] || { echo "search $c"; return 1; }
		python3 -c "import json; json.load(open('$T/storm.$1.json'))['neighbors']" || return 1
	done
}
pids=()
for n in 1 2 3; do storm "$n" >"$T/storm$n.log" 2>&1 & pids+=($!); done
for n in 1 2; do searches "$n" >"$T/search$n.log" 2>&1 & pids+=($!); done
ok=0
for p in "${pids[@]}"; do wait "$p" || ok=1; done
[ $ok = 0 ] && healthy; is collections_concurrent_adds_deletes_searches
cat "$T"/storm?.log "$T"/search?.log 2>/dev/null | head -5
# memory and SQLite agree: every listed item, and no other, is searchable
curl -s "$BASE/jobs/1/items" -o "$T/list.json"
curl -s "$BASE/neighbors?image=test:0&k=300" -o "$T/after_storm.json"
check collections_memory_matches_store python3 -c "import json
listed = sorted(i['id'] for i in json.load(open('$T/list.json'))['items'])
found = sorted(n['item'] for n in json.load(open('$T/after_storm.json'))['neighbors'] if 'item' in n)
assert listed == found == ['b', 'm6', 'shoe-a', 'twin', 'up5'], (listed, found)"

code=$(req GET /jobs/1/index)
check collections_index_counts_items bash -c "[ $code = 200 ] && grep -q '\"items\": 5' '$T/body'"
check collections_index_shows_items_bytes python3 -c "import json
d = json.load(open('$T/body'))
assert d['items'] == 5 and d['items_bytes'] >= 5 * d['dim'] * 4, d"

# ---- the export: split=items in every format, equal to the stored items --------------------
code=$(post_json /jobs/1/items '{"items": [{"id": "quoted", "image": "test:3",
	"metadata": {"note": "a \"b\", c\td", "n": [1, 2]}}]}')
check collections_add_quoted_metadata [ "$code" = 201 ]
curl -s "$BASE/jobs/1/items?limit=100" -o "$T/list_x.json"
for id in $(python3 -c "import json; print(' '.join(i['id'] for i in json.load(open('$T/list_x.json'))['items']))"); do
	curl -s "$BASE/jobs/1/items/$id?embedding=true" -o "$T/xitem.$id.json"
done
curl -s -D "$T/x.hdr" -o "$T/items.npy" "$BASE/jobs/1/embeddings?format=npy&split=items"
curl -s -o "$T/items.tsv" "$BASE/jobs/1/embeddings?format=tsv&split=items"
curl -s -o "$T/items.meta.tsv" "$BASE/jobs/1/embeddings?format=tsv&metadata=1&split=items"
curl -s -o "$T/items.csv" "$BASE/jobs/1/embeddings?format=csv&split=items"
$NUMPY - "$T" <<'EOF2' >"$T/np_x.log" 2>&1; is collections_export_items_equal_stored
import csv, json, sys
import numpy as np
T = sys.argv[1]
listed = json.load(open(T + "/list_x.json"))["items"]
stored = {i["id"]: json.load(open(T + "/xitem.%s.json" % i["id"])) for i in listed}
assert 'filename="job-1-epoch-1-items.npy"' in open(T + "/x.hdr").read()
npy = np.load(T + "/items.npy")
assert npy.dtype == np.float32 and npy.shape == (6, len(stored["b"]["embedding"])), npy.shape
meta = [l.rstrip("\n").split("\t") for l in open(T + "/items.meta.tsv")]
assert meta[0] == ["id", "label", "metadata"], meta[0]
meta = meta[1:]
assert sorted(m[0] for m in meta) == sorted(stored), (meta, list(stored))
tsv = np.loadtxt(T + "/items.tsv", dtype=np.float32, delimiter="\t", ndmin=2)
rows = list(csv.reader(open(T + "/items.csv", newline="")))
d = npy.shape[1]
assert rows[0] == ["id", "label"] + ["e%d" % j for j in range(d)] + ["metadata"], rows[0][:3]
for r, (m, c) in enumerate(zip(meta, rows[1:])):
    it = stored[m[0]]
    emb = np.array(it["embedding"], dtype=np.float32)
    assert np.array_equal(npy[r], emb), m[0]
    assert np.array_equal(tsv[r], emb), m[0]
    assert np.array_equal(np.array(c[2:2 + d], dtype=np.float32), emb), m[0]
    assert c[0] == m[0], (c[0], m[0])
    label = str(it["label"]) if "label" in it else ""
    assert m[1] == label and c[1] == label, (m, c[:2], it)
    want = it.get("metadata")
    assert (json.loads(m[2]) if m[2] else None) == want, (m, it)
    assert (json.loads(c[-1]) if c[-1] else None) == want, (c[-1], it)
# oldest first: the quoted item, added last, is the last row
assert meta[-1][0] == "quoted" and json.loads(rows[-1][-1])["note"] == 'a "b", c\td', rows[-1][-1]
EOF2
[ -s "$T/np_x.log" ] && cat "$T/np_x.log"
expect_error collections export_bad_split 400 'split: must be train, test or items' \
	GET '/jobs/1/embeddings?split=itemz'
code=$(req DELETE /jobs/1/items/quoted)
check collections_quoted_item_deleted [ "$code" = 200 ]

# ---- durable: kill -9, restart, the same items and answers -----------------------------
kill -KILL "$PID"; wait "$PID" 2>/dev/null; PID=
start_isifd "$T/state" "${FLAGS[@]}" || { fail collections_restart; exit 1; }
curl -s "$BASE/jobs/1/items" -o "$T/list2.json"
curl -s "$BASE/neighbors?image=test:0&k=300" -o "$T/after_kill.json"
check collections_items_survive_kill_9 python3 -c "import json
a, b = (json.load(open('$T/' + f)) for f in ('list.json', 'list2.json'))
assert a == b and b['count'] == 5, (a, b)
x, y = (json.load(open('$T/' + f))['neighbors'] for f in ('after_storm.json', 'after_kill.json'))
assert x == y, 'answers differ after the restart'"
code=$(req POST '/jobs/1/items?id=late&label=3' -H 'Content-Type: image/png' --data-binary @"$T/t10.png")
curl -s "$BASE/neighbors?image=test:10&k=2" -o "$T/late.json"
check collections_add_after_restart bash -c "[ $code = 201 ] && grep -q '\"item\": \"late\"' '$T/late.json'"

# ---- deleted with the job ---------------------------------------------------------------------
code=$(req DELETE /jobs/1)
check collections_job_deleted [ "$code" = 204 ]
expect_error collections items_of_deleted_job 404 '"not_found"' GET /jobs/1/items
check collections_rows_gone_with_job python3 -c "import sqlite3
n = sqlite3.connect('file:$T/state/isifd.db?mode=ro', uri=True).execute('SELECT count(*) FROM job_items').fetchone()[0]
assert n == 0, n"
stop_isifd >/dev/null 2>&1
finish
