#!/usr/bin/env bash
# bench/neighbors_wrk.sh — throughput and latency of GET
# /neighbors?image=test:0&k=10 with wrk, over the embedding index of a job
# trained one epoch on all of Fashion-MNIST with evaluation (60000 train +
# 10000 test = 70000 vectors of 128 floats; the query searches the 60000
# train rows), first alone, then while another job trains on the same
# daemon. Not part of `make test`: it takes minutes (the 1-epoch job is most
# of it). Installs Debian's wrk when missing (root or sudo).
#
#   bench/neighbors_wrk.sh [DURATION_S] [CONNECTIONS]     (defaults 20, 8)
#   KEEP=1 keeps the state directory; STATE=dir reuses one whose job 1 has
#   an index (skips the training).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
DUR=${1:-20}
CONN=${2:-8}
ISIFD=$BUILD/isifd
[ -x "$ISIFD" ] || { echo "build isifd first (make all)"; exit 1; }
if ! command -v wrk >/dev/null; then
	SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk ||
		{ echo "wrk is missing and could not be installed"; exit 1; }
fi

REUSE=${STATE:+1}
STATE=${STATE:-$(mktemp -d /tmp/isifd-bench.XXXXXX)}
LOG=$STATE/isifd.log
"$ISIFD" --listen 127.0.0.1:0 --state-dir "$STATE" --web-dir web --workers 1 >>"$LOG" 2>&1 &
PID=$!
cleanup() {
	kill "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	[ -n "${KEEP:-}${REUSE}" ] || rm -rf "$STATE"
}
trap cleanup EXIT
for ((i = 0; i < 100; i++)); do
	PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$LOG" | tail -1)
	[ -n "$PORT" ] && break
	sleep 0.1
done
B=http://127.0.0.1:$PORT
field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

submit() {
	curl -s -X POST "$B/jobs" -H 'Content-Type: application/json' -d "$1" | field "d['id']"
}
wait_for() {  # ID STATUS SECONDS
	for ((i = 0; i < $3; i++)); do
		[ "$(curl -s "$B/jobs/$1" | field "d['status']")" = "$2" ] && return 0
		sleep 1
	done
	echo "job $1 not $2 after $3 s" >&2
	return 1
}

if [ -z "$REUSE" ]; then
	echo "== training the index: convnet, 1 epoch of all 60000 images, evaluation on"
	t0=$SECONDS
	id=$(submit '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1, "batch_size": 128}')
	wait_for "$id" succeeded 3600 || exit 1
	echo "   took $((SECONDS - t0)) s; $(curl -s "$B/jobs/$id/metrics" | field "'kNN top-1 %.3f' % d['metrics'][-1]['knn_top1']")"
fi
URL="$B/neighbors?image=test:0&k=10&job=1"
curl -s "$URL" | field "'index: job %d epoch %d; %d neighbours; first %s' % (d['job'], d['epoch'], len(d['neighbors']), d['neighbors'][0])"
curl -s "$B/jobs/1" >/dev/null
echo "   index rows: $(sqlite3 "$STATE/isifd.db" 'SELECT n_train, n_test, dim FROM job_indexes WHERE job_id = 1' 2>/dev/null)"

run_wrk() {
	echo "== $1: wrk -t2 -c$CONN -d${DUR}s --latency GET /neighbors?image=test:0&k=10"
	wrk -t2 -c"$CONN" -d"${DUR}s" --latency "$URL" | tee "$STATE/wrk-$2.txt" |
		grep -E 'Requests/sec|Latency  |50%|75%|90%|99%|Non-2xx|requests in|Socket errors'
}

curl -s "$URL" >/dev/null   # warm: index and model loaded
run_wrk "alone" alone

echo "== starting a training job (convnet, 20000 images an epoch, no evaluation)"
tid=$(submit '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 50, "batch_size": 128,
               "train_subset": 20000, "eval": {"every": 0}}')
wait_for "$tid" running 60 || exit 1
sleep 3
run_wrk "while job $tid trains" training
curl -s "$B/jobs/$tid" | field "'   job %d during the run: %.0f images/s' % (d['id'], (d['progress'] or {}).get('images_per_sec', 0))"
curl -s -X POST "$B/jobs/$tid/cancel" >/dev/null
wait_for "$tid" cancelled 60 >/dev/null
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
