#!/usr/bin/env bash
# `isif group`: a job group without the daemon. A group of 4 tiny jobs
# (2 seeds × 2 schedules) runs one job after the other into DIR/job-NNN;
# its summary.json (per grid point, seed left out, and epoch: mean, sample
# std, min, max, n of each metric) equals the statistics computed here from
# the jobs' own metrics.csv files, and summary.csv carries the same numbers.
# Bad grids are refused with the daemon's messages before any job runs (no
# output directory made); a directory holding a group is refused without
# --resume; a group stopped by SIGTERM in the middle resumes to the same
# metrics as a run straight through.
. "$(dirname "$0")/../lib.sh"

python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.make_dataset('$T/tiny')"
BASE='{"model": "convnet", "epochs": 2, "batch_size": 32, "train_subset": 256, "eval": {"knn_k": 20}}'
echo "$BASE" > "$T/base.json"
GRID='{"seed": [1, 2], "lr_schedule.type": ["constant", "cosine"]}'
run() { "$ISIF" group --dataset "$T/tiny" --threads 1 --quiet "$@"; }

"$ISIF" group --help | grep -q -- '--max-group-jobs N'; is group_help
"$ISIF" --help | grep -q '^  group '; is group_listed_in_isif_help

run --spec "$T/base.json" --grid "$GRID" --out "$T/g" > "$T/g.log" 2>&1; is group_runs
check group_made_four_jobs test -e "$T/g/job-004/done" -a ! -e "$T/g/job-005"
# itertools.product order, first field slowest: job 2 is seed 1, cosine
check group_job_order python3 -c "
import json
s = json.load(open('$T/g/job-002/spec.json'))
assert s['seed'] == 1 and s['lr_schedule']['type'] == 'cosine', s
s = json.load(open('$T/g/job-003/spec.json'))
assert s['seed'] == 2 and s['lr_schedule']['type'] == 'constant', s"
grep -q '^job 3/4 point 0 {"seed":2,"lr_schedule.type":"constant"}' "$T/g.log"; is group_progress_names_jobs

# The summary against the jobs' own metrics.csv, computed here.
check group_summary_right python3 - "$T/g" <<'PY'
import csv, json, statistics, sys
d = sys.argv[1]
s = json.load(open(f"{d}/summary.json"))
assert s["n_jobs"] == 4 and len(s["points"]) == 2, s.keys()
rows = {j: list(csv.DictReader(open(f"{d}/job-{j:03d}/metrics.csv"))) for j in range(1, 5)}
want_jobs = {0: [1, 3], 1: [2, 4]}   # point 0 constant (jobs 1, 3), point 1 cosine
for p in s["points"]:
    jobs = want_jobs[p["point"]]
    assert p["jobs"] == jobs, p
    assert p["values"] == {"lr_schedule.type": ["constant", "cosine"][p["point"]]}, p
    assert len(p["summary"]) == 2, p
    for e in p["summary"]:
        assert e["n"] == 2
        for name in ("loss", "knn_top1", "knn_top5", "lr", "seconds"):
            v = [float(rows[j][e["epoch"] - 1][name]) for j in jobs]
            got = e[name]
            assert got["n"] == 2, (name, got)
            assert abs(got["mean"] - statistics.mean(v)) < 1e-9, (name, got, v)
            assert abs(got["std"] - statistics.stdev(v)) < 1e-9, (name, got, v)
            assert got["min"] == min(v) and got["max"] == max(v), (name, got, v)
        assert e["recall_at_1"] is None and e["probe_top1"] is None
    # seeds differ, so the loss has a spread
    assert p["summary"][-1]["loss"]["std"] > 0, p
PY
check group_summary_csv_matches python3 - "$T/g" <<'PY'
import csv, json, sys
d = sys.argv[1]
s = json.load(open(f"{d}/summary.json"))
lines = list(csv.DictReader(open(f"{d}/summary.csv")))
assert len(lines) == 4, len(lines)
assert list(lines[0].keys())[:4] == ["point", "lr_schedule.type", "epoch", "n"], lines[0].keys()
for l in lines:
    p = s["points"][int(l["point"])]
    e = p["summary"][int(l["epoch"]) - 1]
    assert l["lr_schedule.type"] == p["values"]["lr_schedule.type"]
    assert abs(float(l["knn_top1_mean"]) - e["knn_top1"]["mean"]) < 1e-12, l
    assert abs(float(l["loss_std"]) - e["loss"]["std"]) < 1e-12, l
    assert l["knn_top1_n"] == "2" and l["nmi_mean"] == ""
PY
grep -q '^knn_top1 (%), mean ± sample std' "$T/g.log"; is group_prints_table

# ---- refusals: the daemon's messages, nothing run, no directory -------------------
bad() {
	local name=$1 want=$2; shift 2
	run --spec "$T/base.json" --out "$T/bad" "$@" > "$T/bad.log" 2>&1
	local rc=$?
	if [ $rc -ne 2 ]; then fail "group_bad_$name" "exit status $rc"
	elif ! grep -qF -- "$want" "$T/bad.log"; then fail "group_bad_$name" "$(head -c 300 "$T/bad.log")"
	elif [ -e "$T/bad" ]; then fail "group_bad_$name" "made $T/bad"
	else pass "group_bad_$name"; fi
}
bad empty_grid 'grid: must be a non-empty object' --grid '{}'
bad empty_values 'grid.seed: must be a non-empty array' --grid '{"seed": []}'
bad not_a_path "is not a spec field's dotted path" --grid '{"a b": [1]}'
bad inside_another 'grid.augment.hflip: inside grid.augment' --grid '{"augment": [{}], "augment.hflip": [0]}'
bad unknown_field 'augment.crop_scael: unknown field' --grid '{"augment.crop_scael": [[0.2, 1]]}'
bad invalid_value_at_one_point 'grid point {"seed":1,"lr":-1}: lr: must be a number > 0' \
	--grid '{"seed": [1, 2], "lr": [0.03, -1]}'
bad too_many_jobs 'grid: more than 8 jobs' --max-group-jobs 8 --grid '{"seed": [1, 2, 3], "lr": [0.01, 0.02, 0.03]}'
bad against_the_dataset 'grid point {"train_subset":100000}: train_subset: 100000 is more than' \
	--grid '{"train_subset": [256, 100000]}'
bad invalid_json 'invalid JSON' --grid '{"seed": [1,'
bad unknown_metric '--metric top1: not a summarised metric' --metric top1 --grid '{"seed": [1]}'
run --spec "$T/base.json" --grid "$GRID" --out "$T/g" > "$T/again.log" 2>&1
[ $? -eq 2 ] && grep -q 'holds a group already' "$T/again.log"; is group_refuses_a_used_dir
cp "$T/g/summary.json" "$T/summary-before.json"
"$ISIF" group --resume --quiet --out "$T/g" > "$T/resume.log" 2>&1 && grep -q '^job 4/4 .*done already' "$T/resume.log" &&
	python3 -c "
import json
a, b = (json.load(open(f))['points'] for f in ('$T/summary-before.json', '$T/g/summary.json'))
assert a == b" && ! grep -q '^  job ' "$T/resume.log"; is group_resume_of_finished_group

# ---- stopped by SIGTERM in the middle, resumed: the same metrics as straight -------
LONG='{"seed": [1, 2], "lr_schedule.type": ["constant", "cosine"], "epochs": [12], "train_subset": [512]}'
run --spec "$T/base.json" --grid "$LONG" --out "$T/straight" > /dev/null 2>&1
"$ISIF" group --dataset "$T/tiny" --threads 1 --quiet --spec "$T/base.json" --grid "$LONG" \
	--out "$T/stopped" > "$T/stop.log" 2>&1 &
pid=$!
for ((i = 0; i < 600 * SLOW; i++)); do
	[ -s "$T/stopped/job-002/metrics.csv" ] && break
	sleep 0.05
done
kill -TERM "$pid"
wait "$pid"
rc=$?
# 130 when the stop landed inside a job; 0 when the group had ended already
[ $rc -eq 130 ] || [ $rc -eq 0 ]; is group_sigterm_stops
"$ISIF" group --resume --quiet --out "$T/stopped" > "$T/resume2.log" 2>&1 &&
	grep -q '^  job 2/4 resumed at epoch' "$T/resume2.log"; is group_resume_after_stop
"$ISIF" group --resume --out "$T/stopped" --threads 2 > "$T/bad.log" 2>&1
[ $? -eq 2 ] && grep -q 'leave out --group, --spec, --grid, --dataset and --threads' "$T/bad.log"; is group_resume_refuses_new_settings
check group_resumed_equals_straight python3 - "$T/straight" "$T/stopped" <<'PY'
import csv, sys
a, b = sys.argv[1], sys.argv[2]
for j in range(1, 5):
    ra = list(csv.DictReader(open(f"{a}/job-{j:03d}/metrics.csv")))
    rb = list(csv.DictReader(open(f"{b}/job-{j:03d}/metrics.csv")))
    assert len(ra) == len(rb) == 12, (j, len(ra), len(rb))
    for x, y in zip(ra, rb):
        for k in ("epoch", "loss", "knn_top1", "lr"):
            assert x[k] == y[k], (j, k, x[k], y[k])
PY
finish
