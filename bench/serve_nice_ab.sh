#!/usr/bin/env bash
# bench/serve_nice_ab.sh — what a paced /neighbors load costs a training job
# at each --serve-nice value: for each NICE, a fresh isifd on STATE (a state
# directory whose job 1 has an index, e.g. one kept by neighbors_wrk.sh)
# trains a convnet job (20,000 images an epoch, no evaluation); the job's
# images/s over 4 s alone, then over 5 s of wrk asking PACE req/s of 32
# connections by ref (wrk's delay()), and the req/s got. Prints a line per
# run; never fails on speed.
#
#   STATE=dir [NICES="0 5 10 19"] [ROUNDS=2] [PACE=3200] bash bench/serve_nice_ab.sh
set -u
cd "$(dirname "$0")/.." || exit 1
: "${STATE:?STATE=dir (a state directory whose job 1 has an embedding index)}"
BUILD=${BUILD:-build}
field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
cat >"$STATE/paced_ab.lua" <<LUA
local gap = 1000 * 32 / ${PACE:-3200}
function delay() return gap end
LUA
for round in $(seq "${ROUNDS:-2}"); do
	for nv in ${NICES:-0 5 10 19}; do
		log=$STATE/serve_nice_ab.$$.log
		"$BUILD/isifd" --listen 127.0.0.1:0 --state-dir "$STATE" --web-dir web --workers 1 \
			--serve-nice "$nv" >"$log" 2>&1 &
		pid=$!
		port=
		for ((i = 0; i < 200; i++)); do
			port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$log" | tail -1)
			[ -n "$port" ] && break
			sleep 0.1
		done
		B=http://127.0.0.1:$port
		U="$B/neighbors?image=test:0&k=10&job=1"
		curl -s "$U" >/dev/null
		tid=$(curl -s -X POST "$B/jobs" -H 'Content-Type: application/json' -d '{"dataset":
			"fashion-mnist", "model": "convnet", "epochs": 50, "batch_size": 128,
			"train_subset": 20000, "eval": {"every": 0}}' | field "d['id']")
		so_far() { curl -s "$B/jobs/$tid" | field "'%d %.3f' % (((d['progress'] or {}).get('epoch', 1) - 1) * ((d['progress'] or {}).get('images_total', 0)) + (d['progress'] or {}).get('images_done', 0), __import__('time').time())"; }
		rate() { python3 -c "import sys; a, b = sys.argv[1].split(), sys.argv[2].split(); print(round((int(b[0]) - int(a[0])) / (float(b[1]) - float(a[1]))))" "$1" "$2"; }
		sleep 8
		s0=$(so_far); sleep 4; alone=$(rate "$s0" "$(so_far)")
		s0=$(so_far)
		out=$(wrk -t2 -c32 -d5s -s "$STATE/paced_ab.lua" "$U")
		during=$(rate "$s0" "$(so_far)")
		echo "round $round --serve-nice $nv: job $alone images/s alone, $during during" \
			"($(python3 -c "print('%+.0f%%' % (100 * ($during / $alone - 1)))")), $(echo "$out" |
			sed -n 's/Requests\/sec: *//p') req/s"
		curl -s -X POST "$B/jobs/$tid/cancel" >/dev/null
		sleep 1
		kill "$pid"
		wait "$pid" 2>/dev/null
	done
done
