#!/usr/bin/env bash
# tests/integration/retrieval.sh — retrieval on a real isifd: after a small
# Fashion-MNIST job, neighbours by test:N refs (a reasonable same-label
# rate over 50 queries), by an uploaded PNG and JPEG of test:0 and by URL
# from a loopback HTTP server (same top-1 as by ref), the embedding exports
# checked with numpy against what /neighbors answers, the dataset registry
# and thumbnails, 40+ bad requests each with its exact 4xx, and after a
# restart without --allow-private-urls the same URL refused (403) while the
# index is served again from disk.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd retrieval

IMG="python3 tests/integration/lib/images.py"
NUMPY=/usr/bin/python3   # Debian's python3 with python3-numpy

# ---- the loopback image server ---------------------------------------------------
mkdir -p "$T/www"
python3 tests/integration/lib/fixture_http.py "$T/www" "$T/www.port" >"$T/www.log" 2>&1 &
WWW_PID=$!
for ((i = 0; i < 50; i++)); do [ -s "$T/www.port" ] && break; sleep 0.1; done
WWW="http://127.0.0.1:$(cat "$T/www.port" 2>/dev/null)"
stop_www() { kill "$WWW_PID" 2>/dev/null; wait "$WWW_PID" 2>/dev/null; }
trap 'stop_www; cleanup' EXIT

# cjpeg (libjpeg-turbo-progs, in the Makefile's DEB_PKGS) writes the JPEG.
if ! command -v cjpeg >/dev/null && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		libjpeg-turbo-progs >/dev/null 2>&1
fi

mkdir -p "$T/roots/a" "$T/outside"
start_isifd "$T/state" --allow-private-urls --url-timeout 2 --dataset-root "$T/roots/a,$T/tiny" ||
	{ fail retrieval_start; exit 1; }
pass retrieval_start

# ---- a small job, and one without an index ----------------------------------------
SMALL='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 2, "batch_size": 64,
        "train_subset": 512, "eval": {"knn_k": 20}}'
NOEVAL='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1, "batch_size": 64,
         "train_subset": 128, "eval": {"every": 0}}'
code=$(post_json /jobs "$SMALL")
check retrieval_submit [ "$code" = 201 ]
code=$(post_json /jobs "$NOEVAL")
check retrieval_submit_noeval [ "$code" = 201 ]
check retrieval_job_succeeds wait_status 1 succeeded 120
check retrieval_noeval_succeeds wait_status 2 succeeded 60

# ---- neighbours by ref -------------------------------------------------------------
code=$(req GET '/neighbors?image=test:0&k=5')
[ "$code" = 200 ] && [ "$(json "d['job'], d['epoch'], d['split'], d['k'], len(d['neighbors']), d['query']['label'], d['query']['in_index']")" = "(1, 2, 'train', 5, 5, 9, True)" ]; is retrieval_default_job_is_newest_with_index
# Fashion-MNIST's class names beside the labels, query and neighbours alike.
NAMES="['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']"
check retrieval_class_names_beside_labels [ "$(json "d['query']['class'], all(n['class'] == $NAMES[n['label']] for n in d['neighbors'])")" = "('Ankle boot', True)" ]
check retrieval_answer_fields [ "$(json "sorted(d['neighbors'][0].keys()), d['seconds'] > 0, all(d['neighbors'][i]['similarity'] >= d['neighbors'][i + 1]['similarity'] for i in range(4))")" = "(['class', 'index', 'label', 'similarity', 'split'], True, True)" ]
TOP1=$(json "d['neighbors'][0]['index']")
check retrieval_one_index_dir_left [ "$(ls -d "$T"/state/jobs/1/index-* | wc -l)" = 1 ]

# 50 test images against the 512 train rows, and against the test split
# (itself left out). Chance is 10%; the job's own kNN top-1 is about 60%.
refs=$(python3 -c "import json; print(json.dumps(['test:%d' % i for i in range(50)]))")
code=$(post_json /neighbors/batch "{\"images\": $refs, \"k\": 10}")
[ "$code" = 200 ] && [ "$(json "len(d['results'])")" = 50 ]; is retrieval_batch_50
rate=$(json "sum(r['neighbors'][0]['label'] == r['query']['label'] for r in d['results']) / 50")
vote=$(json "sum(max(range(10), key=lambda c: sum(n['label'] == c for n in r['neighbors'])) == r['query']['label'] for r in d['results']) / 50")
echo "retrieval: top-1 same-label rate $rate, top-10 vote $vote (train split)"
check retrieval_top1_same_label_rate python3 -c "assert $rate >= 0.4, $rate"
check retrieval_top10_vote_rate python3 -c "assert $vote > 0.5, $vote"
code=$(post_json /neighbors/batch "{\"images\": $refs, \"k\": 1, \"split\": \"test\"}")
trate=$(json "sum(r['neighbors'][0]['label'] == r['query']['label'] for r in d['results']) / 50")
echo "retrieval: top-1 same-label rate $trate (test split)"
[ "$code" = 200 ] && python3 -c "assert $trate > 0.5, $trate" &&
	[ "$(json "any(r['neighbors'][0]['index'] == int(r['query']['image'][5:]) for r in d['results'])")" = False ]; is retrieval_test_split_excludes_self

# train:5 is outside the 512-image subset: embedded from the dataset.
code=$(req GET '/neighbors?image=train:5&k=3')
[ "$code" = 200 ] && [ "$(json "d['query']['in_index'], d['query']['label'], d['query']['class'], len(d['neighbors'])")" = "(False, 2, 'Pullover', 3)" ]; is retrieval_ref_outside_index
# A train row of the index finds itself when uploaded (the row mapping holds).
TRAIN_ID=$(curl -s "$BASE/jobs/1/embeddings?format=tsv&metadata=1" | sed -n 2p | cut -f1)
curl -s -o "$T/train.png" "$BASE/datasets/fashion-mnist/images/train/$TRAIN_ID"
code=$(req POST '/neighbors?k=1' -H 'Content-Type: image/png' --data-binary @"$T/train.png")
[ "$code" = 200 ] && [ "$(json "d['neighbors'][0]['index'] == $TRAIN_ID and d['neighbors'][0]['similarity'] > 0.9999")" = True ]; is retrieval_upload_finds_itself

# ---- the same image uploaded, as PNG and JPEG, and by URL ----------------------------
code=$(req GET /datasets/fashion-mnist/images/test/0)
cp "$T/body" "$T/www/t0.png"
$IMG idx-pgm test 0 "$T/t0.pgm"
[ "$code" = 200 ] && grep -qi '^Content-Type: image/png' "$T/headers" && grep -qi '^X-Isif-Label: 9' "$T/headers" &&
	$IMG png-equals-pgm "$T/www/t0.png" "$T/t0.pgm"; is retrieval_thumbnail_png_is_the_idx_image
cjpeg -quality 100 "$T/t0.pgm" >"$T/www/t0.jpg"
check retrieval_jpeg_made [ -s "$T/www/t0.jpg" ]
code=$(req POST '/neighbors?k=3' -H 'Content-Type: image/png' --data-binary @"$T/www/t0.png")
[ "$code" = 200 ] && [ "$(json "d['neighbors'][0]['index'], d['query']['width'], d['query']['channels']")" = "($TOP1, 28, 1)" ]; is retrieval_upload_png_same_top1
code=$(req POST '/neighbors?k=3' -H 'Content-Type: image/jpeg' --data-binary @"$T/www/t0.jpg")
[ "$code" = 200 ] && [ "$(json "d['neighbors'][0]['index']")" = "$TOP1" ]; is retrieval_upload_jpeg_same_top1
# curl -F: one multipart/form-data part, the same answer as the raw body.
code=$(req POST '/neighbors?k=3' -F "image=@$T/www/t0.png")
[ "$code" = 200 ] && [ "$(json "d['neighbors'][0]['index'], d['query']['width'], d['query']['bytes']")" = "($TOP1, 28, $(stat -c %s "$T/www/t0.png"))" ]; is retrieval_upload_multipart_png_same_top1
code=$(req POST '/neighbors?k=3' -F "image=@$T/www/t0.jpg;type=image/jpeg")
[ "$code" = 200 ] && [ "$(json "d['neighbors'][0]['index']")" = "$TOP1" ]; is retrieval_upload_multipart_jpeg_same_top1
code=$(req GET '/neighbors' -G --data-urlencode "image=$WWW/img/t0.png" -d k=3)
[ "$code" = 200 ] && [ "$(json "d['neighbors'][0]['index'], d['query']['content_type']")" = "($TOP1, 'image/png')" ]; is retrieval_url_png_same_top1
code=$(req GET '/neighbors' -G --data-urlencode "image=$WWW/hop/3/t0.jpg" -d k=3)
[ "$code" = 200 ] && [ "$(json "d['neighbors'][0]['index']")" = "$TOP1" ]; is retrieval_url_three_redirects
code=$(post_json /neighbors/batch "{\"images\": [\"test:0\", \"$WWW/img/t0.png\"], \"k\": 2, \"job\": 1}")
[ "$code" = 200 ] && [ "$(json "[r['neighbors'][0]['index'] for r in d['results']]")" = "[$TOP1, $TOP1]" ]; is retrieval_batch_ref_and_url

# ---- exports ---------------------------------------------------------------------
for s in train test; do
	curl -s -o "$T/$s.npy" "$BASE/jobs/1/embeddings?format=npy&split=$s"
	curl -s -o "$T/$s.meta.tsv" "$BASE/jobs/1/embeddings?format=tsv&metadata=1&split=$s"
done
curl -s -o "$T/train.tsv" "$BASE/jobs/1/embeddings?format=tsv"
curl -s -o "$T/train.csv" "$BASE/jobs/1/embeddings?format=csv"
req GET '/neighbors?image=test:0&k=10&job=1' >/dev/null
cp "$T/body" "$T/nb.json"
$NUMPY - "$T" <<'EOF' >"$T/numpy.log" 2>&1; is retrieval_export_npy_equals_search
import json, sys
import numpy as np
T = sys.argv[1]
tr, te = np.load(T + "/train.npy"), np.load(T + "/test.npy")
assert tr.dtype == np.float32 and tr.shape == (512, 128) and te.shape == (10000, 128), (tr.shape, te.shape)
ids = np.loadtxt(T + "/train.meta.tsv", skiprows=1, dtype=np.int64)
tids = np.loadtxt(T + "/test.meta.tsv", skiprows=1, dtype=np.int64)
assert ids.shape == (512, 2) and (tids[:, 0] == np.arange(10000)).all()
# Exact cosine top-10 of test:0 against the train rows, in float64.
g = tr.astype(np.float64); q = te[0].astype(np.float64)
sim = g @ q / np.linalg.norm(g, axis=1) / np.linalg.norm(q)
order = np.argsort(-sim, kind="stable")[:10]
nb = json.load(open(T + "/nb.json"))["neighbors"]
assert [n["index"] for n in nb] == list(ids[order, 0]), ([n["index"] for n in nb], ids[order, 0])
assert [n["label"] for n in nb] == list(ids[order, 1])
assert np.allclose([n["similarity"] for n in nb], sim[order], atol=1e-5)
assert np.array_equal(np.loadtxt(T + "/train.tsv", dtype=np.float32), tr)
csv = np.loadtxt(T + "/train.csv", delimiter=",", skiprows=1, dtype=np.float64)
head = open(T + "/train.csv").readline().strip().split(",")
assert head == ["id", "label"] + ["e%d" % j for j in range(128)], head[:4]
assert (csv[:, :2] == ids).all() and np.array_equal(csv[:, 2:].astype(np.float32), tr)
EOF
[ -s "$T/numpy.log" ] && cat "$T/numpy.log"

# ---- the dataset registry ------------------------------------------------------------
$IMG folder-dataset "$T/tiny"
mkdir -p "$T/empty"
code=$(post_json /datasets "{\"name\": \"tiny\", \"format\": \"folder\", \"path\": \"$T/tiny\"}")
[ "$code" = 201 ] && grep -qi '^Location: /datasets/tiny' "$T/headers" &&
	[ "$(json "d['name'], d['format'], d['train_images'], d['test_images'], d['classes'], d['available'], d['class_names']")" = "('tiny', 'folder', 12, 4, 2, True, ['a', 'b'])" ]; is retrieval_dataset_registered
check retrieval_dataset_preprocessing [ "$(json "(p := d['preprocessing'])['channels'], p['height'], p['width'], len(p['mean']), all(0 < m < 1 for m in p['mean']), all(s > 0 for s in p['std'])")" = "(1, 32, 32, 1, True, True)" ]
code=$(req GET /datasets)
[ "$code" = 200 ] && [ "$(json "sorted(x['name'] for x in d['datasets']), [x['height'] for x in d['datasets']]")" = "(['fashion-mnist', 'tiny'], [28, 32])" ]; is retrieval_datasets_list
check retrieval_datasets_fashion_preprocessing [ "$(json "(f := [x for x in d['datasets'] if x['name'] == 'fashion-mnist'][0])['preprocessing'], f['class_names'][9]")" = "({'channels': 1, 'height': 28, 'width': 28, 'mean': [0.286040604], 'std': [0.353024244]}, 'Ankle boot')" ]
code=$(req GET /datasets/tiny/images/test/3)
[ "$code" = 200 ] && grep -qi '^X-Isif-Label: 1' "$T/headers"; is retrieval_tiny_thumbnail

# ---- bad requests: exact status and code, daemon healthy afterwards --------------------
bad() { expect_error retrieval "$@"; }
J=(-H 'Content-Type: application/json')
PNG=(-H 'Content-Type: image/png')
head -c 4000 /dev/urandom >"$T/random.bin"
cp "$T/random.bin" "$T/www/random.bin.png"
head -c 200 "$T/www/t0.png" >"$T/trunc.png"
head -c 500 "$T/www/t0.jpg" >"$T/trunc.jpg"
$IMG huge-png "$T/huge.png" 20000 20000
$IMG huge-png "$T/wide.png" 5000 100
head -c $((11 * 1024 * 1024)) /dev/zero >"$T/eleven.bin"
url() { printf '/neighbors?k=1&image=%s' "$(python3 -c "import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=''))" "$1")"; }

bad k_zero 400 'k: must be an integer between 1 and 1000' GET '/neighbors?image=test:0&k=0'
bad k_huge 400 'k: must be' GET '/neighbors?image=test:0&k=100000'
bad k_text 400 'k: must be' GET '/neighbors?image=test:0&k=ten'
bad image_missing 400 'image: required' GET '/neighbors?k=3'
bad ref_unknown_split 400 'image: must be train:N' GET '/neighbors?image=val:3'
bad ref_negative 400 'image: must be train:N' GET '/neighbors?image=test:-1'
bad ref_not_a_number 400 'image: must be train:N' GET '/neighbors?image=test:1e3'
bad ref_out_of_range 404 'test split of \"fashion-mnist\" has 10000' GET '/neighbors?image=test:10000'
bad ref_out_of_range_train 404 'not_found' GET '/neighbors?image=train:60000'
bad ref_too_big 400 'image: must be' GET '/neighbors?image=train:99999999999'
bad unknown_job 404 'no job 999' GET '/neighbors?image=test:0&job=999'
bad job_not_a_number 400 'job: must be a job id' GET '/neighbors?image=test:0&job=x'
bad job_without_index 404 'no_index' GET '/neighbors?image=test:0&job=2'
bad split_unknown 400 'split: must be train or test' GET '/neighbors?image=test:0&split=val'
bad upload_corrupt 422 'invalid_image' POST '/neighbors' "${PNG[@]}" --data-binary @"$T/random.bin"
bad upload_truncated_png 422 'invalid_image' POST '/neighbors' "${PNG[@]}" --data-binary @"$T/trunc.png"
bad upload_truncated_jpeg 422 'invalid_image' POST '/neighbors' -H 'Content-Type: image/jpeg' --data-binary @"$T/trunc.jpg"
bad upload_huge_dimensions 422 'image_too_large' POST '/neighbors' "${PNG[@]}" --data-binary @"$T/huge.png"
bad upload_too_wide 422 'over the side limit 4096' POST '/neighbors' "${PNG[@]}" --data-binary @"$T/wide.png"
bad upload_over_byte_limit 413 'payload_too_large' POST '/neighbors' "${PNG[@]}" --data-binary @"$T/eleven.bin"
bad upload_over_byte_limit_chunked 413 'payload_too_large' POST '/neighbors' "${PNG[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$T/eleven.bin"
bad upload_wrong_type 415 'unsupported_media_type' POST '/neighbors' -H 'Content-Type: text/plain' --data-binary @"$T/www/t0.png"
# Malformed multipart forms: each a 4xx that says what is wrong.
MP=(-H 'Content-Type: multipart/form-data; boundary=XyZ')
printf -- '--XyZ\r\nContent-Disposition: form-data; name="image"; filename="t.png"\r\nContent-Type: image/png\r\n\r\n' >"$T/mp_head"
cat "$T/mp_head" "$T/www/t0.png" >"$T/mp_trunc"
{ cat "$T/mp_trunc"; printf -- '\r\n--XyZ--\r\n'; } >"$T/mp_ok"
{ cat "$T/mp_trunc"; printf -- '\r\n'; cat "$T/mp_trunc"; printf -- '\r\n--XyZ--\r\n'; } >"$T/mp_two"
{ cat "$T/mp_head"; head -c $((10 * 1024 * 1024 + 10)) /dev/zero; printf -- '\r\n--XyZ--\r\n'; } >"$T/mp_huge"
check retrieval_multipart_hand_made_ok [ "$(req POST '/neighbors?k=1' "${MP[@]}" --data-binary @"$T/mp_ok")" = 200 ]
bad multipart_no_boundary 400 'no valid boundary' POST '/neighbors' -H 'Content-Type: multipart/form-data' --data-binary @"$T/mp_ok"
bad multipart_other_boundary 400 'no boundary line' POST '/neighbors' -H 'Content-Type: multipart/form-data; boundary=AbC' --data-binary @"$T/mp_ok"
bad multipart_truncated 400 'truncated' POST '/neighbors' "${MP[@]}" --data-binary @"$T/mp_trunc"
bad multipart_two_files 400 'more than one part' POST '/neighbors' "${MP[@]}" --data-binary @"$T/mp_two"
bad multipart_two_files_curl 400 'more than one part' POST '/neighbors' -F "image=@$T/www/t0.png" -F "other=@$T/www/t0.jpg"
bad multipart_field_and_file 400 'more than one part' POST '/neighbors' -F k=3 -F "image=@$T/www/t0.png"
bad multipart_huge_part 413 'payload_too_large' POST '/neighbors' "${MP[@]}" --data-binary @"$T/mp_huge"
bad multipart_not_an_image 422 'invalid_image' POST '/neighbors' -F "image=@$T/random.bin"
bad upload_empty 400 'invalid_image' POST '/neighbors' "${PNG[@]}" --data-binary ''
bad upload_bad_k 400 'k: must be' POST '/neighbors?k=0' "${PNG[@]}" --data-binary @"$T/www/t0.png"
bad url_50mb 422 'url_too_large' GET "$(url "$WWW/big")"
bad url_50mb_no_length 422 'url_too_large' GET "$(url "$WWW/big-chunked")"
bad url_redirect_loop 422 'more than 3 redirects' GET "$(url "$WWW/loop")"
bad url_four_redirects 422 'more than 3 redirects' GET "$(url "$WWW/hop/4/t0.png")"
bad url_ftp 400 'only http:// and https://' GET "$(url 'ftp://127.0.0.1/t0.png')"
bad url_file 400 'only http:// and https://' GET "$(url 'file:///etc/passwd')"
bad url_gopher 400 'only http:// and https://' GET "$(url 'gopher://127.0.0.1:70/')"
bad url_no_host 400 'URL without a host' GET "$(url 'http:///t0.png')"
bad url_redirect_to_ftp 422 'not http(s)' GET "$(url "$WWW/to-ftp")"
bad url_not_an_image 422 'unsupported_content_type' GET "$(url "$WWW/text")"
bad url_404 422 'answered HTTP 404' GET "$(url "$WWW/status/404")"
bad url_timeout 422 'timed out after 2 s' GET "$(url "$WWW/slow")"
bad url_corrupt_image 422 'invalid_image' GET "$(url "$WWW/hop/0/random.bin.png")"
bad batch_bad_json 400 'body: invalid JSON' POST /neighbors/batch "${J[@]}" --data-binary '{"images": ['
bad batch_not_object 400 'must be a JSON object' POST /neighbors/batch "${J[@]}" --data-binary '["test:0"]'
bad batch_empty 400 'images: must be a list of 1 to 256' POST /neighbors/batch "${J[@]}" --data-binary '{"images": []}'
bad batch_unknown_field 400 'bogus: unknown field' POST /neighbors/batch "${J[@]}" --data-binary '{"images": ["test:0"], "bogus": 1}'
bad batch_bad_ref 400 'images[1]: image: must be' POST /neighbors/batch "${J[@]}" --data-binary '{"images": ["test:0", "x"]}'
bad batch_bad_k 400 'k: must be' POST /neighbors/batch "${J[@]}" --data-binary '{"images": ["test:0"], "k": 0}'
bad batch_ref_out_of_range 404 'images[0]: no image test:20000' POST /neighbors/batch "${J[@]}" --data-binary '{"images": ["test:20000"]}'
bad batch_wrong_type 415 'unsupported_media_type' POST /neighbors/batch -H 'Content-Type: text/plain' --data-binary '{}'
bad export_format 400 'format: must be npy, tsv or csv' GET '/jobs/1/embeddings?format=xml'
bad export_metadata_npy 400 'metadata=1 goes with tsv' GET '/jobs/1/embeddings?metadata=1'
bad export_split 400 'split: must be train, test or items' GET '/jobs/1/embeddings?split=all'
bad export_unknown_job 404 'no job 999' GET '/jobs/999/embeddings'
bad export_no_index 404 'no_index' GET '/jobs/2/embeddings'
bad dataset_duplicate 409 'already registered' POST /datasets "${J[@]}" --data-binary "{\"name\": \"tiny\", \"format\": \"folder\", \"path\": \"$T/tiny\"}"
bad dataset_bad_name 400 'name: 1 to 63 characters' POST /datasets "${J[@]}" --data-binary "{\"name\": \"Tiny/1\", \"format\": \"folder\", \"path\": \"$T/tiny\"}"
bad dataset_bad_format 400 'format: must be' POST /datasets "${J[@]}" --data-binary "{\"name\": \"t2\", \"format\": \"zip\", \"path\": \"$T/tiny\"}"
bad dataset_relative_path 400 'path: must be absolute' POST /datasets "${J[@]}" --data-binary '{"name": "t2", "format": "folder", "path": "tiny"}'
# Outside --dataset-root, missing, a file, .. or a symlink out of a root:
# one status and one message, which says nothing of what is there.
ln -s "$T/outside" "$T/roots/a/escape"
ln -s "$T/tiny" "$T/roots/a/inside"
: >"$T/roots/a/file"
NOPE='path: not a readable directory under the dataset roots isifd was given (--dataset-root)'
for p in "$T/nope" "$T/roots/a/nope" "$T/outside" "$T/roots/a/file" "$T/roots/a/../../outside" \
	 "$T/roots/a/escape" "$T/roots/a/escape/" /etc /usr/share/datasets/fashion-mnist; do
	code=$(post_json /datasets "{\"name\": \"t3\", \"format\": \"auto\", \"path\": \"$p\"}")
	echo "$code $(json "d['error']['code'], d['error']['message']")"
done >"$T/roots.log"
check retrieval_dataset_roots_one_refusal [ "$(sort -u "$T/roots.log")" = "422 ('invalid_dataset', '$NOPE')" ]
code=$(post_json /datasets "{\"name\": \"t4\", \"format\": \"folder\", \"path\": \"$T/roots/a/inside\"}")
[ "$code" = 201 ] && [ "$(json "d['path']")" = "$T/tiny" ]; is retrieval_dataset_symlink_inside_a_root_resolved
mkdir -p "$T/roots/a/empty"
bad dataset_not_a_dataset 422 'invalid_dataset' POST /datasets "${J[@]}" --data-binary "{\"name\": \"t2\", \"format\": \"idx\", \"path\": \"$T/roots/a/empty\"}"
bad dataset_missing_field 400 'path: required' POST /datasets "${J[@]}" --data-binary '{"name": "t2", "format": "folder"}'
bad dataset_url 400 'url: registering by URL is not supported' POST /datasets "${J[@]}" --data-binary '{"name": "t2", "format": "folder", "url": "http://x/"}'
bad dataset_unknown 404 'no dataset \"nope\"' GET /datasets/nope
bad image_unknown_dataset 404 'no dataset \"nope\"' GET /datasets/nope/images/test/0
bad image_bad_split 400 'split: must be train or test' GET /datasets/fashion-mnist/images/val/0
bad image_bad_index 400 'index: must be an integer' GET /datasets/fashion-mnist/images/test/x
bad image_out_of_range 404 'no image test:10000' GET /datasets/fashion-mnist/images/test/10000
bad neighbors_method 405 'method_not_allowed' DELETE /neighbors
check retrieval_t2_not_registered [ "$(req GET /datasets/t2)" = 404 ]

# ---- restart without --allow-private-urls ---------------------------------------------
stop_isifd
check retrieval_stop_exit_0 [ $? = 0 ]
start_isifd "$T/state" || { fail retrieval_restart; exit 1; }
served=$(grep -c 'GET /img/t0.png' "$T/www.log")
code=$(req GET '/neighbors?image=test:0&k=3')
[ "$code" = 200 ] && [ "$(json "d['neighbors'][0]['index']")" = "$TOP1" ]; is retrieval_index_survives_restart
bad private_url_refused 403 'url_forbidden' GET "$(url "$WWW/img/t0.png")"
bad localhost_url_refused 403 'not a public address' GET "$(url "http://localhost:${WWW##*:}/img/t0.png")"
bad ipv6_loopback_url_refused 403 'url_forbidden' GET "$(url "http://[::1]:${WWW##*:}/img/t0.png")"
bad private_url_in_batch 403 'images[1]: refused' POST /neighbors/batch "${J[@]}" --data-binary "{\"images\": [\"test:0\", \"$WWW/img/t0.png\"]}"
check retrieval_refused_urls_never_reached_the_server [ "$(grep -c 'GET /img/t0.png' "$T/www.log")" = "$served" ]

finish
