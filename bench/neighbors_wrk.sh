#!/usr/bin/env bash
# bench/neighbors_wrk.sh — the serving benchmark. Over the embedding index of
# a job trained one epoch on all of Fashion-MNIST with evaluation (60000
# train + 10000 test = 70000 vectors of 128 floats; a query searches the
# 60000 train rows, exact), wrk measures in one run, for -c8 and -c64:
#   GET /healthz                          (the daemon's HTTP ceiling)
#   GET /neighbors?image=test:0&k=10      (by ref)
#   POST /neighbors?k=10 with a 28x28 PNG (by upload: decode, embed, search)
# first alone, then while another job trains on the same daemon, and at
# a paced rate (PACE, default 4800 asked of 32 connections; the rate got,
# 32 / (gap + latency), is printed: about 2,000 req/s here) while it trains.
# While it trains, each wrk run sits between two quiet windows of the same
# length, and the job's cost is its images/s during the run over the mean of
# the two (the job's own pace drifts on a shared machine). Each figure is the
# median of RUNS runs; the ratio neighbours / healthz is taken within each
# run, then its median. At the end, if bench/neighbors_1m.sh is executable
# and SKIP_1M is not 1,
# it runs (the 1M-vector exact / IVF / HNSW rows). Never fails on speed;
# not part of `make test`. Installs Debian's wrk when missing (root/sudo).
#
#   bench/neighbors_wrk.sh [DURATION_S] [RUNS]        (defaults 10, 3)
#   KEEP=1 keeps the state directory; STATE=dir reuses one whose job 1 has
#   an index (skips the training). ISIFD_FLAGS: extra isifd flags.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
DUR=${1:-10}
RUNS=${2:-3}
ISIFD=$BUILD/isifd
[ -x "$ISIFD" ] || { echo "build isifd first (make all)"; exit 1; }
if ! command -v wrk >/dev/null; then
	SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk ||
		{ echo "wrk is missing and could not be installed"; exit 1; }
fi

REUSE=${STATE:+1}
STATE=${STATE:-$(mktemp -d /tmp/isifd-bench.XXXXXX)}
LOG=$STATE/isifd.$$.log   # one per start: a reused state keeps older ones
. bench/lib.sh
cleanup() {
	kill "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	[ -n "${KEEP:-}${REUSE}" ] || rm -rf "$STATE"
}
trap cleanup EXIT
# shellcheck disable=SC2086
isifd_start "$LOG" --state-dir "$STATE" --workers 1 --work-queue 4096 ${ISIFD_FLAGS:-} || exit 1

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
images_per_s() { curl -s "$B/jobs/$1" | field "round((d['progress'] or {}).get('images_per_sec', 0))"; }
# images_so_far ID: the images the running job has trained since it started,
# with the time; two samples give its images/s over one wrk run
images_so_far() {
	curl -s "$B/jobs/$1" | field "'%d %.3f' % (((d['progress'] or {}).get('epoch', 1) - 1) * ((d['progress'] or {}).get('images_total', 0)) + (d['progress'] or {}).get('images_done', 0), __import__('time').time())"
}
job_rate() {  # "N0 T0" "N1 T1" -> images/s between the samples
	python3 -c "import sys; a = sys.argv[1].split(); b = sys.argv[2].split(); print(round((int(b[0]) - int(a[0])) / (float(b[1]) - float(a[1]))))" "$1" "$2"
}

if [ -z "$REUSE" ]; then
	echo "== training the index: convnet, 1 epoch of all 60000 images, evaluation on"
	t0=$SECONDS
	id=$(submit '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1, "batch_size": 128}')
	wait_for "$id" succeeded 3600 || exit 1
	echo "   took $((SECONDS - t0)) s"
fi
REF="$B/neighbors?image=test:0&k=10&job=1"
curl -s "$REF" | field "'index: job %d epoch %d; %d neighbours; first %s' % (d['job'], d['epoch'], len(d['neighbors']), d['neighbors'][0])"
curl -s -o "$STATE/q.png" "$B/datasets/fashion-mnist/images/test/0"
cat >"$STATE/upload.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = io.open("$STATE/q.png", "rb")
wrk.body = f:read("*a")
f:close()
EOF
curl -s -X POST "$B/neighbors?k=10&job=1" -H 'Content-Type: image/png' \
	--data-binary @"$STATE/q.png" >/dev/null   # warm: index and model loaded

# quiet_window: the training job's images/s over DUR s with no queries
quiet_window() {
	local s0
	s0=$(images_so_far "$TID")
	sleep "$DUR"
	job_rate "$s0" "$(images_so_far "$TID")"
}

# one_wrk NAME CONN URL [SCRIPT]: one run; appends "NAME CONN run req/s p50_ms p99_ms errors
# job_images/s quiet_images/s" (with TID set: the training job's images/s over the run,
# and the mean of its quiet windows before and after it; the window after a run is the
# next run's window before; else -1 -1)
one_wrk() {
	local name=$1 conn=$2 url=$3 script=${4:-} out s0 ips=-1 quiet=-1 after
	if [ -n "${TID:-}" ]; then
		[ -n "${QUIET_BEFORE:-}" ] || QUIET_BEFORE=$(quiet_window)
		s0=$(images_so_far "$TID")
	fi
	out=$(wrk -t2 -c"$conn" -d"${DUR}s" --latency ${script:+-s "$script"} "$url" 2>&1)
	if [ -n "${TID:-}" ]; then
		ips=$(job_rate "$s0" "$(images_so_far "$TID")")
		after=$(quiet_window)
		quiet=$(( (QUIET_BEFORE + after) / 2 ))
		QUIET_BEFORE=$after
	fi
	echo "$out" >>"$STATE/wrk.txt"
	python3 - "$name" "$conn" "$RUN" "$ips" "$quiet" <<EOF >>"$STATE/rows.txt"
import re, sys
t = """$out"""
def ms(s):
    v, u = re.match(r"([\d.]+)(us|ms|s|m)", s).groups()
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"^\s*50%\s+(\S+)", t, re.M).group(1)); p99 = ms(re.search(r"^\s*99%\s+(\S+)", t, re.M).group(1))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(sys.argv[1], sys.argv[2], sys.argv[3], rps, p50, p99, m.group(1) if m else 0, sys.argv[4], sys.argv[5])
EOF
}

# scenario LABEL: RUNS rounds of healthz, by ref and by upload at -c8 and -c64
scenario() {
	for RUN in $(seq 1 "$RUNS"); do
		for c in 8 64; do
			one_wrk "$1/healthz" $c "$B/healthz"
			one_wrk "$1/ref" $c "$REF"
			one_wrk "$1/upload" $c "$B/neighbors?k=10&job=1" "$STATE/upload.lua"
		done
	done
}

: >"$STATE/rows.txt"
echo "== alone: $RUNS runs of ${DUR} s each"
scenario alone
echo "== starting a training job (convnet, 20000 images an epoch, no evaluation)"
tid=$(submit '{"dataset": "fashion-mnist", "model": "convnet", "epochs": 50, "batch_size": 128,
               "train_subset": 20000, "eval": {"every": 0}}')
wait_for "$tid" running 60 || exit 1
sleep $((DUR > 5 ? DUR : 5))
ips_before=$(images_per_s "$tid")
s0=$(images_so_far "$tid")
sleep "$DUR"
ips_alone=$(job_rate "$s0" "$(images_so_far "$tid")")
QUIET_BEFORE=$ips_alone
TID=$tid scenario training
# paced: PACE (4800) req/s asked by ref from 32 connections (wrk's delay()
# between a connection's requests): what serving a fixed load costs the job,
# rather than what a flood of as many queries as isifd answers costs it
cat >"$STATE/paced.lua" <<EOF
local gap = 1000 * 32 / ${PACE:-4800}
function delay() return gap end
EOF
for RUN in $(seq 1 "$RUNS"); do
	TID=$tid one_wrk training/ref-paced 32 "$REF" "$STATE/paced.lua"
done
ips_during=$(images_per_s "$tid")

curl -s -X POST "$B/jobs/$tid/cancel" >/dev/null
wait_for "$tid" cancelled 60 >/dev/null
curl -s -X DELETE "$B/jobs/$tid" >/dev/null   # a reused STATE keeps job 1 alone

python3 - "$STATE/rows.txt" "$ips_before" "$ips_during" "$ips_alone" "$DUR" <<'EOF'
import statistics as st, sys
from collections import defaultdict
rows = [l.split() for l in open(sys.argv[1])]
by = defaultdict(list)
for name, c, run, rps, p50, p99, err, ips, quiet in rows:
    by[(name, c)].append((int(run), float(rps), float(p50), float(p99), int(err), int(ips), int(quiet)))
print("| scenario | route | conns | req/s | p50 ms | p99 ms | non-2xx | / healthz (same run) | job images/s (its change against the quiet windows around each run) |")
print("|---|---|---|---|---|---|---|---|---|")
for scen in ("alone", "training"):
    for c in ("8", "64", "32"):
        hz = {r[0]: r[1] for r in by[(scen + "/healthz", c)]}
        for route in ("healthz", "ref", "upload", "ref-paced"):
            v = by[(scen + "/" + route, c)]
            if not v:
                continue
            ratio = ("%.3f" % st.median(r[1] / hz[r[0]] for r in v) if route != "healthz" and hz
                     else "1.000" if route == "healthz" else "-")   # no healthz run at this conns
            ips = st.median(r[5] for r in v)
            job = "%d (%+.0f%%)" % (ips, 100 * st.median(r[5] / r[6] - 1 for r in v)) if ips >= 0 and min(r[6] for r in v) > 0 else "-"
            print("| %s | %s | %s | %.0f | %.2f | %.2f | %d | %s | %s |" % (
                scen, route, c, st.median(r[1] for r in v), st.median(r[2] for r in v),
                st.median(r[3] for r in v), sum(r[4] for r in v), ratio, job))
print("training job images/s: %s before the queries (epoch mean), %s alone over %s s before them, "
      "%s at their end (epoch mean)" % (sys.argv[2], sys.argv[4], sys.argv[5], sys.argv[3]))
EOF
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   (medians of $RUNS runs of ${DUR} s; wrk shares the machine with isifd)"
if [ "${SKIP_1M:-0}" != 1 ] && [ -x bench/neighbors_1m.sh ]; then
	echo "== bench/neighbors_1m.sh"
	bench/neighbors_1m.sh
fi
