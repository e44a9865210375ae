#!/usr/bin/env bash
# tests/tsan_daemon.sh — part of make tsan: the integration suites that
# drive isifd's threads hardest (jobs + SSE + scheduler, URL fetches,
# hostile HTTP with the connection sweeper, shutdown with open streams and
# its watchdog, queries suspended and resumed by the fetch and work threads,
# items added and deleted while searches run)
# against an isifd built with ThreadSanitizer. Every report TSan writes
# becomes a FAIL line.
set -u
cd "$(dirname "$0")/.." || exit 1
export ISIFD=${ISIFD:-build/tsan/isifd}
# A TSan build runs several times slower, like the ASan one: stretch the
# suites' timeouts (tests/lib.sh), or api.sh's event stream (curl
# --max-time) ends before a loaded machine finishes its job.
export SANITIZED=1
reports=$(mktemp -d)
export TSAN_OPTIONS="log_path=$reports/tsan second_deadlock_stack=1"
. tests/suites.bash
trap 'rm -f "$suites_log"; rm -rf "$reports"' EXIT

for t in api ssrf hostile ops blocking collections; do
	run_suite "tsan_$t" bash "tests/integration/$t.sh"
done
run_suite tsan_reports bash -c '
	n=0
	for f in "$1"/tsan*; do
		[ -e "$f" ] || continue
		n=$((n + 1))
		echo "FAIL tsan_report_$n ($(grep -m1 SUMMARY "$f"))"
		sed -n 1,40p "$f"
	done
	[ $n -eq 0 ] && echo "PASS tsan_no_reports_in_isifd"
	exit $((n > 0))' _ "$reports"
suites_total
