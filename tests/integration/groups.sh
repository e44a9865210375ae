#!/usr/bin/env bash
# tests/integration/groups.sh — job groups (POST /groups) against a real
# daemon: a group of 4 tiny jobs (2 seeds × 2 schedules) is created in one
# piece, survives kill -9 of the daemon while its second job runs (the
# group and its rows intact, the job resumed), and ends with the right
# summary: per grid point (seed left out) and epoch, the mean, sample std,
# min and max of each metric, checked against the jobs' own metrics rows
# computed here independently. The group's CSV export has the group
# columns. Bad groups (empty grid, unknown field, an invalid value at one
# point, too many points, ...) are each a 400 that names the problem and
# create no job. Cancel and delete a group; delete refuses a group with
# unfinished jobs (409).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd groups

DB="$T/state/isifd.db"
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$1"; }
python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.make_dataset('$T/tiny')"
register() {
	python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.register_dataset('$DB', '$1', '$2')"
}
group_field() {
	req GET "/groups/$1" >/dev/null
	json "$2"
}
# wait_group ID EXPR SECONDS: polls GET /groups/ID until EXPR is True.
wait_group() {
	local i
	for ((i = 0; i < $3 * SLOW * 5; i++)); do
		[ "$(group_field "$1" "$2" 2>/dev/null)" = True ] && return 0
		sleep 0.2
	done
	echo "group $1: not ($2) after $3 s" >&2
	return 1
}

"$ISIFD" --help | grep -A1 -- '--max-group-jobs N' | grep -q 'default 64, min 1, max 10000'; is groups_flag_in_help
start_isifd "$T/state" --workers 1 --max-group-jobs 8 || { fail groups_start; exit 1; }
register tiny "$T/tiny"   # 512 + 64 images of 16x16, 10 classes
BASE_SPEC='{"dataset": "tiny", "model": "convnet", "epochs": 3, "batch_size": 32, "train_subset": 256,
            "eval": {"knn_k": 20}}'
G4="{\"base\": $BASE_SPEC, \"grid\": {\"seed\": [1, 2], \"lr_schedule.type\": [\"constant\", \"cosine\"],
    \"augment.crop_scale\": [[0.5, 1.0]]}}"

# ---- bad groups: each a clear 400, no job made -----------------------------------------
J=(-H 'Content-Type: application/json')
bad() { expect_error groups "$@"; }
bad empty_grid 400 'grid: must be a non-empty object' POST /groups "${J[@]}" \
	--data-binary "{\"base\": $BASE_SPEC, \"grid\": {}}"
bad no_grid 400 'grid: must be a non-empty object' POST /groups "${J[@]}" \
	--data-binary "{\"base\": $BASE_SPEC}"
bad empty_values 400 'grid.seed: must be a non-empty array' POST /groups "${J[@]}" \
	--data-binary "{\"base\": $BASE_SPEC, \"grid\": {\"seed\": []}}"
bad unknown_field 400 'augment.crop_scael: unknown field' POST /groups "${J[@]}" \
	--data-binary "{\"base\": $BASE_SPEC, \"grid\": {\"augment.crop_scael\": [[0.2, 1]]}}"
bad unknown_top_field 400 'sweep: unknown field' POST /groups "${J[@]}" \
	--data-binary "{\"base\": $BASE_SPEC, \"grid\": {\"seed\": [1]}, \"sweep\": 1}"
bad invalid_value_at_one_point 400 'grid point {\"seed\":1,\"lr\":-1}: lr: must be a number > 0' \
	POST /groups "${J[@]}" --data-binary "{\"base\": $BASE_SPEC, \"grid\": {\"seed\": [1, 2], \"lr\": [0.03, -1]}}"
bad point_cannot_run 400 'train_subset: 600 is more than the 512 training images of tiny' \
	POST /groups "${J[@]}" --data-binary "{\"base\": $BASE_SPEC, \"grid\": {\"train_subset\": [128, 600]}}"
bad too_many_points 400 'more than 8 jobs' POST /groups "${J[@]}" \
	--data-binary "{\"base\": $BASE_SPEC, \"grid\": {\"seed\": [1, 2, 3], \"lr\": [0.01, 0.02, 0.03]}}"
bad field_inside_field 400 'grid.lr_schedule.type: inside grid.lr_schedule' POST /groups "${J[@]}" \
	--data-binary "{\"base\": $BASE_SPEC, \"grid\": {\"lr_schedule\": [{}], \"lr_schedule.type\": [\"step\"]}}"
bad not_a_path 400 'is not a spec field' POST /groups "${J[@]}" \
	--data-binary "{\"base\": $BASE_SPEC, \"grid\": {\"lr..x\": [1]}}"
bad path_through_value 400 'grid point {\"seed.x\":1}: seed: must be an integer' POST /groups "${J[@]}" \
	--data-binary "{\"base\": $BASE_SPEC, \"grid\": {\"seed.x\": [1]}}"
bad base_not_spec 400 'base: must be a job spec' POST /groups "${J[@]}" \
	--data-binary '{"base": [], "grid": {"seed": [1]}}'
bad unknown_dataset 400 'dataset: unknown dataset' POST /groups "${J[@]}" \
	--data-binary '{"base": {"dataset": "nope"}, "grid": {"seed": [1]}}'
bad bad_json 400 'invalid JSON' POST /groups "${J[@]}" --data-binary '{"base": '
bad unknown_group 404 'no group 99' GET /groups/99
check groups_bad_made_nothing [ "$(sql "SELECT (SELECT COUNT(*) FROM jobs) + (SELECT COUNT(*) FROM groups)")" = 0 ]

# ---- a group of 4, kill -9 while its second job runs ------------------------------------
code=$(post_json /groups "$G4")
[ "$code" = 201 ] && grep -qi '^Location: /groups/1' "$T/headers" &&
	[ "$(json "d['n_jobs'], [j['id'] for j in d['jobs']], [p['point'] for p in d['points']]")" = "(4, [1, 3, 2, 4], [0, 1])" ]; is groups_created
check groups_one_transaction [ "$(sql "SELECT COUNT(*) FROM group_jobs WHERE group_id = 1")" = 4 ]
check groups_job_has_its_values [ "$(job_field 2 "d['spec']['seed'], d['spec']['lr_schedule']['type']")" = "(1, 'cosine')" ]
# kill -9 while a later job runs with one epoch committed: the daemon is
# frozen (SIGSTOP) while SQLite is read, so what the kill interrupts is what
# was read (tiny jobs take milliseconds: a poll and a kill could miss them)
for ((i = 0; i < 6000 * SLOW; i++)); do
	kill -STOP "$PID"
	RUNNING=$(sql "SELECT id FROM jobs WHERE status = 'running' AND epoch = 1 AND id > 1")
	[ -n "$RUNNING" ] && break
	kill -CONT "$PID"
	sleep 0.002
done
kill -KILL "$PID"
kill -CONT "$PID" 2>/dev/null
wait "$PID" 2>/dev/null
PID=
echo "    killed while job ${RUNNING:-none} ran"
check groups_first_job_done [ "$(sql "SELECT status FROM jobs WHERE id = 1")" = succeeded ]
check groups_second_job_epoch_1 [ -n "$RUNNING" ]
check groups_rows_after_kill [ "$(sql "SELECT COUNT(*) FROM group_jobs g JOIN jobs j ON j.id = g.job_id WHERE g.group_id = 1")" = 4 ]
check groups_integrity_after_kill [ "$(sql "PRAGMA integrity_check")" = ok ]
start_isifd "$T/state" --workers 1 --max-group-jobs 8 || { fail groups_restart; exit 1; }
check groups_all_succeed wait_group 1 "d['status']['succeeded'] == 4" 120
[ -n "$RUNNING" ] && [ "$(job_field "$RUNNING" "d['resumed_from_epoch'] is not None")" = True ]; is groups_killed_job_resumed

# The summary against the jobs' own rows, computed here.
req GET /groups/1 >/dev/null
cp "$T/body" "$T/group.json"
for id in 1 2 3 4; do
	req GET "/jobs/$id" >/dev/null && cp "$T/body" "$T/job$id.json"
	req GET "/jobs/$id/metrics" >/dev/null && cp "$T/body" "$T/metrics$id.json"
done
check groups_summary_right python3 - "$T" <<'PY'
import json, math, sys
t = sys.argv[1]
group = json.load(open(f"{t}/group.json"))
by_point = {}   # the schedule type, from each job's spec
for i in (1, 2, 3, 4):
    spec = json.load(open(f"{t}/job{i}.json"))["spec"]
    rows = json.load(open(f"{t}/metrics{i}.json"))["metrics"]
    by_point.setdefault(spec["lr_schedule"]["type"], []).append(rows)
crop = {"augment.crop_scale": [0.5, 1.0]}
assert [p["values"] for p in group["points"]] == [{"lr_schedule.type": "constant", **crop},
                                                  {"lr_schedule.type": "cosine", **crop}], group["points"]
for p in group["points"]:
    jobs = by_point[p["values"]["lr_schedule.type"]]
    assert len(jobs) == 2 and len(p["summary"]) == 3, p
    for s in p["summary"]:
        for name in ("loss", "knn_top1", "knn_top5", "lr"):
            v = [r[name] for rows in jobs for r in rows if r["epoch"] == s["epoch"]]
            mean = sum(v) / len(v)
            std = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))
            got = s[name]
            want = {"mean": mean, "std": std, "min": min(v), "max": max(v), "n": len(v)}
            for k, w in want.items():
                assert abs(got[k] - w) <= 1e-9 * max(1, abs(w)), (p["point"], s["epoch"], name, k, got, w)
    # the two seeds did differ (else std 0 proves nothing)
    assert p["summary"][-1]["loss"]["std"] > 0, p
    assert p["summary"][0]["recall_at_1"] is None
PY

code=$(req GET "/groups/1/metrics?format=csv")
[ "$code" = 200 ] && [ "$(head -1 "$T/body")" = "group,point,job,seed,lr_schedule.type,augment.crop_scale,epoch,loss,knn_top1,knn_top5,lr,seconds,images_per_sec,recall_at_1,recall_at_2,recall_at_4,recall_at_8,nmi,data_wait,sim_same_mean,sim_diff_mean,probe_top1,probe_backbone_top1" ] &&
	[ "$(sed -n 2p "$T/body" | cut -d, -f1-8)" = '1,0,1,1,constant,"[0.5,1.0]",1' ] &&
	[ "$(wc -l <"$T/body")" = 13 ]; is groups_csv_has_group_columns
# each row's engine columns equal the job's own CSV (GET /jobs/{id}/metrics?format=csv),
# the similarity means included (the group CSV once left them empty)
cp "$T/body" "$T/group.csv"
check groups_csv_rows_equal_job_csv python3 - "$T" "$BASE" <<'PY'
import csv, sys, urllib.request
t, base = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(f"{t}/group.csv")))
for job in sorted({r["job"] for r in rows}):
    own = list(csv.DictReader(urllib.request.urlopen(f"{base}/jobs/{job}/metrics?format=csv").read().decode().splitlines()))
    mine = [r for r in rows if r["job"] == job]
    assert len(own) == len(mine) == 3, (job, len(own), len(mine))
    for a, b in zip(own, mine):
        for k in a:
            assert a[k] == b[k], (job, k, a[k], b[k])
    assert mine[0]["sim_same_mean"] != "", mine[0]
PY

code=$(req GET /groups)
[ "$code" = 200 ] && [ "$(json "[(g['id'], g['n_jobs'], g['status']['succeeded']) for g in d['groups']]")" = "[(1, 4, 4)]" ]; is groups_list

# ---- cancel and delete ---------------------------------------------------------------
SLOWG="{\"base\": {\"dataset\": \"tiny\", \"model\": \"convnet\", \"epochs\": 200, \"batch_size\": 32,
        \"train_subset\": 256, \"eval\": {\"every\": 0}}, \"grid\": {\"seed\": [5, 6]}}"
code=$(post_json /groups "$SLOWG")
check groups_second_created [ "$code" = 201 ]
bad delete_unfinished 409 'group 2 has 2 unfinished jobs (5, 6); cancel it first' DELETE /groups/2
code=$(req POST /groups/2/cancel)
[ "$code" = 202 ]; is groups_cancel_accepted
check groups_cancel_ends_jobs wait_group 2 "d['status']['cancelled'] == 2" 60
code=$(req DELETE /groups/2)
[ "$code" = 204 ] && [ "$(req GET /groups/2)" = 404 ] && [ "$(req GET /jobs/5)" = 404 ] &&
	[ "$(sql "SELECT COUNT(*) FROM group_jobs WHERE group_id = 2")" = 0 ]; is groups_delete_removes_jobs
check groups_first_untouched [ "$(group_field 1 "d['n_jobs']")" = 4 ]

stop_isifd TERM
check groups_final_exit_0 [ $? = 0 ]
check groups_final_integrity [ "$(sql "PRAGMA integrity_check")" = ok ]
finish
