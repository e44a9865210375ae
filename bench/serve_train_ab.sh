#!/usr/bin/env bash
# bench/serve_train_ab.sh — what a paced /neighbors load costs a training job,
# A/B over isifd flag sets. For each VARIANT (a set of isifd flags; "" is the
# defaults) in turn, ROUNDS times: a fresh isifd on STATE (a state directory
# whose job 1 has an index, e.g. one kept by KEEP=1 bench/neighbors_wrk.sh)
# trains a convnet job (20,000 images an epoch, no evaluation), then
# alternates quiet windows and windows of wrk asking PACE req/s of 32
# connections by ref (wrk's delay() between a connection's requests), W
# seconds each, REPS loaded windows. A loaded window's cost is the job's
# images/s in it over the mean of the quiet windows on either side (the
# job's own pace drifts on a shared machine). Prints each window and, per
# variant, the medians; never fails on speed. The job is cancelled and
# deleted at the end of each start, so STATE can be reused.
#
# The rate wrk gets is 32 / (gap + latency): asking PACE = 4800 (a 6.7 ms
# gap) gets about 2,000 req/s on the 2-core machine of docs/PERFORMANCE.md.
#
#   STATE=dir [VARIANTS="|--serve-nice 0"] [ROUNDS=2] [REPS=3] [W=5] [PACE=4800] \
#       bash bench/serve_train_ab.sh
set -u
cd "$(dirname "$0")/.." || exit 1
: "${STATE:?STATE=dir (a state directory whose job 1 has an embedding index)}"
BUILD=${BUILD:-build}
PACE=${PACE:-4800} W=${W:-5} REPS=${REPS:-3} ROUNDS=${ROUNDS:-2}
IFS='|' read -r -a variants <<<"${VARIANTS:-}"
[ ${#variants[@]} -gt 0 ] || variants=("")
. bench/lib.sh
printf 'local gap = 1000 * 32 / %s\nfunction delay() return gap end\n' "$PACE" >"$STATE/paced_ab.lua"
: >"$STATE/serve_train_ab.rows"

# one_start FLAGS: one isifd, one job, REPS loaded windows between quiet ones
one_start() {
	local U tid s line= q
	# shellcheck disable=SC2086
	isifd_start "$STATE/serve_train_ab.$$.log" --state-dir "$STATE" --workers 1 $1 || exit 1
	U="$B/neighbors?image=test:0&k=10&job=1"
	curl -s "$U" >/dev/null
	tid=$(curl -s -X POST "$B/jobs" -H 'Content-Type: application/json' -d '{"dataset":
		"fashion-mnist", "model": "convnet", "epochs": 50, "batch_size": 128,
		"train_subset": 20000, "eval": {"every": 0}}' | field "d['id']")
	# images trained so far and the time, as "N_T"
	so_far() { curl -s "$B/jobs/$tid" | field "'%d_%.3f' % (((d['progress'] or {}).get('epoch', 1) - 1) * ((d['progress'] or {}).get('images_total', 0)) + (d['progress'] or {}).get('images_done', 0), __import__('time').time())"; }
	sleep 8
	s=$(so_far); sleep "$W"; line="A:$s:$(so_far)"
	for ((i = 0; i < REPS; i++)); do
		s=$(so_far)
		q=$(wrk -t2 -c32 -d"${W}s" -s "$STATE/paced_ab.lua" "$U" | sed -n 's/Requests\/sec: *//p')
		line="$line D:$s:$(so_far):$q"
		s=$(so_far); sleep "$W"; line="$line A:$s:$(so_far)"
	done
	echo "$1|$line" >>"$STATE/serve_train_ab.rows"
	curl -s -X POST "$B/jobs/$tid/cancel" >/dev/null
	for ((i = 0; i < 100; i++)); do
		[ "$(curl -s "$B/jobs/$tid" | field "d['status']")" = cancelled ] && break
		sleep 0.1
	done
	curl -s -X DELETE "$B/jobs/$tid" >/dev/null
	kill "$PID"
	wait "$PID" 2>/dev/null
}

# report [LAST]: each loaded window of the rows file's last line (LAST set), or
# per variant the medians over all its lines: the job's change against the mean
# of the quiet windows on either side, and the req/s wrk got
report() {
	python3 - "$STATE/serve_train_ab.rows" "${1:-}" <<'EOF'
import statistics as st, sys
from collections import defaultdict
rate = lambda s, e: (int(e.split('_')[0]) - int(s.split('_')[0])) / (float(e.split('_')[1]) - float(s.split('_')[1]))
lines = open(sys.argv[1]).read().splitlines()
by = defaultdict(list)
for l in lines[-1:] if sys.argv[2] else lines:
    flags, windows = l.split('|')
    w = [x.split(':') for x in windows.split()]
    for i, x in enumerate(w):
        if x[0] == 'D':
            quiet = (rate(*w[i - 1][1:3]) + rate(*w[i + 1][1:3])) / 2
            by[flags or 'defaults'].append((rate(x[1], x[2]) / quiet - 1, float(x[3]), quiet))
for flags, v in by.items():
    if sys.argv[2]:
        print('%s [%s]: %s' % (sys.argv[2], flags, '; '.join(
            '%+.0f%% at %.0f req/s (job %.0f images/s quiet)' % (100 * c, q, b) for c, q, b in v)))
    else:
        print('[%s] median of %d windows: job %+.0f%%, %.0f req/s' % (
            flags, len(v), 100 * st.median(c for c, _, _ in v), st.median(q for _, q, _ in v)))
EOF
}

for ((r = 1; r <= ROUNDS; r++)); do
	for v in "${variants[@]}"; do
		one_start "$v"
		report "round $r"
	done
done
report
