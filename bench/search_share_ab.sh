#!/usr/bin/env bash
# bench/search_share_ab.sh — the search CPU policy (--search-share) while a
# job trains, A/B: for each setting in SHARES (default "0 35": no cap, the
# default cap), alternated PAIRS times, one isifd on a kept index starts a
# training job (convnet, 20000 images an epoch, no evaluation), then
# measures DUR seconds with no queries, then wrk -t2 -c64 and -c8 on
# GET /neighbors?image=test:0&k=10. Per phase it prints req/s, the job's
# images/s, and CPU in cores (from /proc/PID/task/*/stat): the job's
# threads (those that appeared when it started), the search dispatcher
# (thread "isifd-search"), and the rest of isifd (HTTP, work). The job's
# threads are those that appeared when it started plus the worker thread
# (busy above 0.1 core in a first quiet phase). CPU shares
# are less hostage to a busy machine than images/s: the cap bounds the
# dispatcher's cores whatever else runs. Never fails on speed.
#
#   STATE=dir (a state directory whose job 1 has an index, e.g. kept by
#   KEEP=1 bench/neighbors_wrk.sh) bench/search_share_ab.sh [DUR] [PAIRS]
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
DUR=${1:-5}
PAIRS=${2:-2}
SHARES=${SHARES:-0 35}
[ -n "${STATE:-}" ] || { echo "STATE=dir with an indexed job 1 is needed"; exit 1; }
. bench/lib.sh

# cpu_ticks PID TIDS...: "job search rest" clock ticks of isifd's threads
cpu_ticks() {
	local pid=$1 j=0 s=0 r=0 t ticks; shift
	local -A job=()
	for t in "$@"; do job[$t]=1; done
	for d in /proc/"$pid"/task/*; do
		t=${d##*/}
		ticks=$(awk '{print $14 + $15}' "$d/stat" 2>/dev/null) || continue
		[ -n "$ticks" ] || continue
		if [ -n "${job[$t]:-}" ]; then j=$((j + ticks))
		elif [ "$(cat "$d/comm" 2>/dev/null)" = isifd-search ]; then s=$((s + ticks))
		else r=$((r + ticks)); fi
	done
	echo "$j $s $r"
}
images_so_far() {
	curl -s "$B/jobs/$1" | field "((d['progress'] or {}).get('epoch', 1) - 1) * (d['progress'] or {}).get('images_total', 0) + (d['progress'] or {}).get('images_done', 0)"
}
# sample: "time images job_ticks search_ticks rest_ticks"
sample() { echo "$(date +%s.%N) $(images_so_far "$TID") $(cpu_ticks "$PID" "${JOBT[@]}")"; }
# report SETTING PHASE REQ/S "SAMPLE0" "SAMPLE1"
report() {
	python3 - "$@" "$(getconf CLK_TCK)" <<'PY'
import sys
share, phase, rps, a, b, hz = sys.argv[1:7]
a, b = [float(x) for x in a.split()], [float(x) for x in b.split()]
dt = b[0] - a[0]
c = [(b[i] - a[i]) / float(hz) / dt for i in (2, 3, 4)]
print("| %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %s |" % (
    share, phase, rps, (b[1] - a[1]) / dt, c[0], c[1], c[2], open("/proc/loadavg").read().split()[0]))
PY
}
wrk_rps() { wrk -t2 -c"$1" -d"${DUR}s" "$2" 2>&1 | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'; }

echo "| --search-share | phase | req/s | job images/s | job cores | search cores | other isifd cores | load |"
echo "|---|---|---|---|---|---|---|---|"
for pair in $(seq 1 "$PAIRS"); do
	for share in $SHARES; do
		LOG=$(mktemp)
		isifd_start "$LOG" --state-dir "$STATE" --workers 1 --work-queue 4096 \
			--search-share "$share" || exit 1
		REF="$B/neighbors?image=test:0&k=10&job=1"
		curl -s "$REF" >/dev/null   # the index loaded
		# jobs left queued or running by an interrupted run would train instead
		for j in $(curl -s "$B/jobs" | field "' '.join(str(j['id']) for j in (d['jobs'] if isinstance(d, dict) else d) if j['status'] in ('queued', 'running'))"); do
			curl -s -X POST "$B/jobs/$j/cancel" >/dev/null
		done
		before=$(ls /proc/$PID/task)
		TID=$(curl -s -X POST "$B/jobs" -H 'Content-Type: application/json' -d '{"dataset":
			"fashion-mnist", "model": "convnet", "epochs": 50, "batch_size": 128,
			"train_subset": 20000, "eval": {"every": 0}}' | field "d['id']")
		for ((i = 0; i < 60; i++)); do
			[ "$(curl -s "$B/jobs/$TID" | field "(d['progress'] or {}).get('images_done', 0) > 0")" = True ] && break
			sleep 1
		done
		# the job's threads: those it started, and the worker that runs it
		# (older, but the only other thread busy while no query comes)
		JOBT=()
		for t in $(ls /proc/$PID/task); do
			grep -qx "$t" <<<"$before" || JOBT+=("$t")
		done
		declare -A t0=()
		for t in $before; do t0[$t]=$(awk '{print $14 + $15}' /proc/$PID/task/$t/stat 2>/dev/null); done
		s0=$(sample); sleep "$DUR"; s1=$(sample)
		for t in $before; do
			n=$(awk '{print $14 + $15}' /proc/$PID/task/$t/stat 2>/dev/null)
			[ -n "$n" ] && [ $((n - ${t0[$t]:-0})) -gt $((DUR * $(getconf CLK_TCK) / 10)) ] && JOBT+=("$t")
		done
		s0=$(sample); sleep "$DUR"; s1=$(sample)
		report "$share" "no queries" - "$s0" "$s1"
		for c in 64 8; do
			s0=$(sample); rps=$(wrk_rps $c "$REF"); s1=$(sample)
			report "$share" "ref -c$c" "${rps%.*}" "$s0" "$s1"
		done
		curl -s -X POST "$B/jobs/$TID/cancel" >/dev/null
		kill "$PID"; wait "$PID" 2>/dev/null
		rm -f "$LOG"
	done
done
echo "(2 cores; wrk on the same machine; load = 1-min load average at the end of the phase)"
