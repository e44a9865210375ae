#!/usr/bin/env bash
# tests/integration/init_checkpoint.sh — a job started from pretrained
# weights through the API: POST /checkpoints stores a safetensors file under
# a name (201; 409 for a taken name, 400 bad name, 415 wrong type, 422 not
# safetensors, 413 over --max-checkpoint-bytes), GET /checkpoints lists it,
# a spec naming a missing checkpoint is refused at submit, a job with
# init.checkpoint and freeze_epochs trains from it (its downloaded
# checkpoint's backbone equals the uploaded file's bit for bit, its
# embedding layer does not), and a checkpoint of another network fails the
# job with a message naming the tensor.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd init

start_isifd "$T/state" --max-checkpoint-bytes 1048576 || { fail init_start; exit 1; }
pass init_start

"$ISIF" init --model convnet --in-channels 1 --seed 9 --out "$T/conv.safetensors" >/dev/null &&
	"$ISIF" init --model convnet --in-channels 3 --seed 9 --out "$T/rgb.safetensors" >/dev/null
is init_cli_writes_checkpoints
post_file() { req POST "$1" -H 'Content-Type: application/octet-stream' --data-binary "@$2"; }

code=$(post_file '/checkpoints?name=conv9' "$T/conv.safetensors")
check init_upload_201 [ "$code" = 201 ]
check init_upload_body [ "$(json "d['name'], d['bytes'], d['model']")" = "('conv9', $(stat -c %s "$T/conv.safetensors"), 'convnet')" ]
check init_upload_stored cmp -s "$T/conv.safetensors" "$T/state/checkpoints/conv9.safetensors"
code=$(req GET /checkpoints)
check init_list [ "$code" = 200 ] && [ "$(json "[c['name'] for c in d['checkpoints']]")" = "['conv9']" ]
expect_error init taken 409 'exists' POST '/checkpoints?name=conv9' \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/conv.safetensors"
expect_error init name 400 'name:' POST '/checkpoints?name=../x' \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/conv.safetensors"
expect_error init type 415 'octet-stream' POST '/checkpoints?name=a' \
	-H 'Content-Type: application/json' --data-binary '{}'
expect_error init garbage 422 'not a safetensors file' POST '/checkpoints?name=a' \
	-H 'Content-Type: application/octet-stream' --data-binary 'not a checkpoint at all'
head -c 1100000 /dev/zero >"$T/big"
expect_error init too_large 413 '' POST '/checkpoints?name=a' \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/big"
check init_refused_not_stored [ ! -e "$T/state/checkpoints/a.safetensors" ]
# a decoded %00 would store the name cut short ("ab"): refused
expect_error init name_nul 400 'NUL byte' POST '/checkpoints?name=ab%00cd' \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/conv.safetensors"
check init_nul_not_stored [ ! -e "$T/state/checkpoints/ab.safetensors" ]
# one upload at a time: a second one while a slow one is held is a 503 at once
head -c 900000 /dev/zero >"$T/slow"
curl -s -o /dev/null --limit-rate 300k -X POST "$BASE/checkpoints?name=slow" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/slow" &
slow=$!
sleep 0.7
expect_error init upload_busy 503 'another checkpoint upload' POST '/checkpoints?name=conv10' \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/conv.safetensors"
wait "$slow"
code=$(post_file '/checkpoints?name=conv10' "$T/conv.safetensors")
check init_upload_after_slow_one [ "$code" = 201 ]

BASESPEC='"dataset": "fashion-mnist", "model": "convnet", "epochs": 1, "batch_size": 32,
          "train_subset": 128, "eval": {"every": 0}'
expect_error init missing_checkpoint 400 'init.checkpoint: no checkpoint' POST /jobs \
	-H 'Content-Type: application/json' --data-binary "{$BASESPEC, \"init\": {\"checkpoint\": \"nope\"}}"

code=$(post_json /jobs "{$BASESPEC, \"init\": {\"checkpoint\": \"conv9\", \"freeze_epochs\": 1}}")
check init_job_submitted [ "$code" = 201 ]
check init_job_succeeds wait_status 1 succeeded 120
req GET /jobs/1/checkpoint >/dev/null && cp "$T/body" "$T/trained.safetensors"
python3 - "$T/conv.safetensors" "$T/trained.safetensors" <<'PY' && pass init_backbone_from_upload || fail init_backbone_from_upload
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items()}
up, tr = tensors(sys.argv[1]), tensors(sys.argv[2])
params = [k for k in up if k.endswith(".weight") or k.endswith(".bias")]
frozen = [k for k in params if not k.startswith("linear.")]
assert frozen and all(up[k] == tr[k] for k in frozen), "backbone changed"
assert up["linear.weight"] != tr["linear.weight"], "head not trained"
PY

# a checkpoint of a 3-channel convnet for a 1-channel job: it fails naming the tensor
post_file '/checkpoints?name=rgb' "$T/rgb.safetensors" >/dev/null
code=$(post_json /jobs "{$BASESPEC, \"init\": {\"checkpoint\": \"rgb\"}}")
check init_mismatch_submitted [ "$code" = 201 ]
check init_mismatch_fails wait_status 2 failed 60
check init_mismatch_message [ "$(job_field 2 "d['error']")" = "init.checkpoint: features.0.weight: shape [32,3,3,3] in file, [32,1,3,3] expected" ]

finish
