#!/usr/bin/env bash
# tests/integration/ssrf.sh — image URLs cannot reach internal addresses:
# 40 spellings of loopback, private, link-local, cloud-metadata and other
# refused addresses (dotted, shortened, decimal, octal, hex, IPv6, IPv4-
# mapped, NAT64, 6to4, localhost) given to GET /neighbors?image=URL, each
# directly and behind a redirect from an allowed server: every one is
# answered 403 url_forbidden, and a honeypot listening on all those
# addresses sees no connection. Two allowed URLs (direct and redirected)
# are fetched, so the test can fail.
# Runs inside a private network namespace (unshare -n, root): it holds only
# its own loopback interface, carrying the "public" 203.0.113.7/.8 and the
# internal addresses, so nothing can leave the machine even if the guard
# were wrong. Without root: SKIP (the guard's own table and these forms
# through getaddrinfo are unit tests in server_tests).
cd "$(dirname "$0")/../.." || exit 1
if [ -z "${ISIFD_IN_NETNS:-}" ]; then
	if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
		exec unshare -n env ISIFD_IN_NETNS=1 bash "$0" "$@"
	fi
	echo "SKIP ssrf (needs root for a private network namespace)"
	exit 0
fi
. tests/integration/lib/common.bash
require_isifd ssrf

ip link set lo up
for a in 203.0.113.7 203.0.113.8 10.0.0.1 169.254.169.254 169.254.0.1 172.16.0.1 \
	172.31.255.254 192.168.0.1 100.64.0.1; do
	ip addr add "$a/32" dev lo
done
ip addr add fd00::1/128 dev lo
python3 tests/integration/lib/ssrf_server.py "$T/www.port" 203.0.113.7 203.0.113.8 \
	>"$T/www.log" 2>&1 &
WWW_PID=$!
trap 'kill "$WWW_PID" 2>/dev/null; wait "$WWW_PID" 2>/dev/null; cleanup' EXIT
for ((i = 0; i < 100; i++)); do [ -s "$T/www.port" ] && break; sleep 0.05; done
P=$(cat "$T/www.port")

python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.make_dataset('$T/tiny')"
start_isifd "$T/state" --url-timeout 3 || { fail ssrf_start; exit 1; }
python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.register_dataset('$T/state/isifd.db', 'tiny', '$T/tiny')"
code=$(post_json /jobs '{"dataset": "tiny", "model": "convnet", "epochs": 1, "batch_size": 32,
	"train_subset": 64, "threads": 1, "eval": {"knn_k": 10}}')
check ssrf_job_submitted [ "$code" = 201 ]
check ssrf_job_with_index wait_status 1 succeeded 60

enc() { python3 -c "import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=''))" "$1"; }
neighbors() { req GET "/neighbors?job=1&k=3&image=$(enc "$1")"; }

# The allowed server works, directly and through a redirect to another one.
code=$(neighbors "http://203.0.113.7:$P/img.png")
check ssrf_allowed_url_fetched [ "$code" = 200 ]
code=$(neighbors "http://203.0.113.7:$P/r?to=$(enc "http://203.0.113.8:$P/img.png")")
check ssrf_allowed_redirect_fetched [ "$code" = 200 ]

FORMS=(127.0.0.1 127.1 127.0.1 2130706433 0x7f000001 0x7f.0.0.1 0177.0.0.1 017700000001
	0x7f.1 127.255.255.254 0.0.0.0 0 localhost
	169.254.169.254 2852039166 0xa9fea9fe 0251.0376.0251.0376 0xa9.0xfe.0xa9.0xfe 169.254.0.1
	10.0.0.1 167772161 012.0.0.1 0xa.0.0.1 172.16.0.1 172.31.255.254 192.168.0.1 3232235521
	100.64.0.1
	'[::1]' '[0:0:0:0:0:0:0:1]' '[::ffff:127.0.0.1]' '[::ffff:7f00:1]' '[::ffff:169.254.169.254]'
	'[::ffff:a9fe:a9fe]' '[::ffff:10.0.0.1]' '[::127.0.0.1]' '[fd00::1]' '[fe80::1]'
	'[64:ff9b::a9fe:a9fe]' '[2002:a9fe:a9fe::1]')
# Each form directly and behind a redirect, in one client process.
out=$(python3 - "$PORT" "$P" "${FORMS[@]}" <<'PY'
import json, sys, urllib.error, urllib.parse, urllib.request
port, p, forms = sys.argv[1], sys.argv[2], sys.argv[3:]
q = lambda s: urllib.parse.quote(s, safe="")
refused, bad = 0, []
for host in forms:
    target = "http://%s:%s/img.png" % (host, p)
    for how, url in (("direct", target), ("redirect", "http://203.0.113.7:%s/r?to=%s" % (p, q(target)))):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%s/neighbors?job=1&k=3&image=%s"
                                        % (port, q(url)), timeout=20) as r:
                code, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, body = e.code, e.read()
        try:
            err = json.loads(body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            err = None
        if code == 403 and err == "url_forbidden":
            refused += 1
        else:
            bad.append("%s %s: %d %s" % (how, host, code, body[:120]))
print(refused, len(forms))
for b in bad[:3]:
    print(b)
PY
)
read -r n_refused n_forms <<<"$(head -1 <<<"$out")"
problems=$(tail -n +2 <<<"$out" | tr '\n' ';')
[ "$n_forms" = 40 ] && [ "$n_refused" = 80 ]; is "ssrf_40_forms_refused_direct_and_redirected ($n_refused of $((2 * ${n_forms:-0})) URLs refused${problems:+; $problems})"
hits=$(grep CONN "$T/www.log" | grep -v -E "CONN 203\.0\.113\.[78] " || true)
shown=$(head -3 <<<"$hits" | tr '\n' ';')
[ -z "$hits" ]; is "ssrf_honeypot_never_reached${hits:+ ($shown)}"
check ssrf_refusal_names_address grep -q "169.254.169.254" <(neighbors "http://2852039166:$P/x" >/dev/null; cat "$T/body")
check ssrf_daemon_up healthy
# The honeypot does see a connection to an internal address (made here,
# not by isifd), so its silence above means something.
curl -s -o /dev/null "http://10.0.0.1:$P/img.png"
check ssrf_honeypot_works grep -q "CONN 10.0.0.1 /img.png" "$T/www.log"
stop_isifd TERM
finish
