#!/usr/bin/env bash
# tests/integration/dashboard.sh — the dashboard in a real browser: Debian's
# chromium driven by playwright-core (tests/browser/dashboard.mjs) against
# two real isifd daemons, one open (one worker, where the tiny jobs train)
# and one with a token; then the Groups view (tests/browser/groups.mjs) on
# the open one. Installs what it needs when it is missing (apt:
# chromium; npm ci: playwright-core and the dashboard's uPlot) and FAILS when
# it cannot: never skipped. Screenshots and the downloaded CSV go to
# $BUILD/test-output/dashboard/.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd dashboard

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
OUT=$BUILD/test-output/dashboard

# ---- what the test needs ------------------------------------------------------
if [ ! -x "$CHROMIUM" ]; then
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	echo "dashboard: installing chromium with apt-get" >&2
	{ $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends chromium; } >"$T/apt.log" 2>&1
	if [ ! -x "$CHROMIUM" ]; then
		tail -5 "$T/apt.log" >&2
		echo "FAIL dashboard_chromium (not installed: $CHROMIUM)"
		exit 1
	fi
fi
# Node.js 20+ (playwright-core's floor) and npm: the machine's, else Debian's.
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	{ $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends nodejs npm; } >"$T/apt-node.log" 2>&1
fi
if [ "$(node -p 'process.versions.node.split(".")[0] >= 20' 2>/dev/null)" != true ] || ! command -v npm >/dev/null; then
	echo "FAIL dashboard_nodejs (need Node.js 20+ and npm; have $(node --version 2>&1))"
	exit 1
fi
if ! make --no-print-directory -s web-deps browser-deps >"$T/npm.log" 2>&1; then
	tail -5 "$T/npm.log" >&2
	echo "FAIL dashboard_npm_packages (make web-deps browser-deps)"
	exit 1
fi

# ---- the daemons ----------------------------------------------------------------
TOKEN=dashboard-test-token-0123456789
printf '%s\n' "$TOKEN" >"$T/token"
start_isifd "$T/token-state" --token-file "$T/token" --workers 1 || { fail dashboard_start_token_daemon; exit 1; }
TOKEN_PID=$PID TOKEN_BASE=$BASE
trap 'kill -KILL "$TOKEN_PID" 2>/dev/null; wait "$TOKEN_PID" 2>/dev/null; cleanup' EXIT
start_isifd "$T/state" --workers 1 || { fail dashboard_start_daemon; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
# The browser test bounds each wait itself; this bounds the whole.
BASE=$BASE TOKEN_BASE=$TOKEN_BASE TOKEN=$TOKEN OUT=$OUT CHROMIUM=$CHROMIUM SLOW=$SLOW \
	timeout $((240 * SLOW)) node tests/browser/dashboard.mjs
rc=$?
# The Groups view (tests/browser/groups.mjs), on the open daemon once the
# main test is done with it.
if [ $rc -ne 124 ]; then
	BASE=$BASE OUT=$OUT CHROMIUM=$CHROMIUM SLOW=$SLOW timeout $((300 * SLOW)) node tests/browser/groups.mjs
	grc=$?
	[ $grc -eq 124 ] && echo "FAIL dashboard_groups_browser_test_timeout"
	[ $rc -eq 0 ] && rc=$grc
fi
if [ $rc -ne 0 ]; then
	[ $rc -eq 124 ] && echo "FAIL dashboard_browser_test_timeout"
	cp "$T"/*.log "$OUT"/ 2>/dev/null
	exit 1
fi
exit 0
