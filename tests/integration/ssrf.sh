#!/usr/bin/env bash
# tests/integration/ssrf.sh — image URLs against the address guard end to
# end, without the daemon ever connecting anywhere but loopback. isifd runs
# with --allow-url-addr 127.0.0.1 (exactly that address may be fetched from)
# and tests/integration/lib/ssrf_http.py serves an origin on 127.0.0.1:P
# and trap listeners on 127.0.0.1:Q, 127.0.0.2:Q and [::1]:Q. Every
# redirect target and direct URL below names port Q at a loopback-range
# address (127/8, ::1, ::, 0.0.0.0 and their other spellings), so even a
# broken guard could not leave the machine; the trap's log tells whether
# the daemon connected. Asserted:
#  - the allowed address works directly, under other spellings (127.1,
#    2130706433), through redirects, and localhost resolves to it;
#  - each other loopback spelling is refused with 403 url_forbidden and a
#    message naming the address the guard saw, as a direct URL, after one
#    redirect from the origin and at the end of a two-redirect chain, and
#    the origin did serve those redirects (the refusal was at the hop);
#  - the trap's 127.0.0.2 and ::1 listeners accepted no connection at all,
#    and no refused case's path reached any listener;
#  - start-up refuses a malformed --allow-url-addr with status 2.
# Refusal of private, link-local and public addresses is tested on the
# guard function itself (tests/server/test_urlguard.c, test_ssrf_forms.c).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd ssrf

mkdir -p "$T/www"
python3 tests/integration/lib/ssrf_http.py "$T/www" "$T/www.state" "$T/www.log" 2>"$T/www.err" &
WWW_PID=$!
stop_www() { kill "$WWW_PID" 2>/dev/null; wait "$WWW_PID" 2>/dev/null; }
trap 'stop_www; cleanup' EXIT
for ((i = 0; i < 50; i++)); do [ -s "$T/www.state" ] && break; sleep 0.1; done
state() { python3 -c "import json; print(json.load(open('$T/www.state'))$1)"; }
P=$(state "['origin']") Q=$(state "['trap']") HOSTS=$(state "['trap_hosts']")
[ -n "$P" ] && [ -n "$Q" ]; is "ssrf_loopback_servers (origin 127.0.0.1:$P, trap port $Q on $HOSTS)"
[ -n "$Q" ] || finish

tag() { sed 's/[^a-z0-9]\{1,\}/_/g; s/^_//; s/_$//' <<<"$1"; }

# ---- start-up refuses what is not one plain numeric address ---------------------------
for bad in short=127.1 hex=0x7f000001 name=localhost brackets='[::1]' port=127.0.0.1:80 \
	five=127.0.0.1,::1,::2,::3,::4; do
	out=$(timeout $((10 * SLOW)) "$ISIFD" --listen 127.0.0.1:0 --state-dir "$T/never" \
		--allow-url-addr "${bad#*=}" 2>&1)
	rc=$?
	[ "$rc" = 2 ] && grep -q -- '--allow-url-addr' <<<"$out" || { echo "${bad#*=}: rc $rc: $out"; false; }
	is "ssrf_startup_refuses_allow_url_addr_${bad%%=*}"
done
check ssrf_refused_startups_left_no_state [ ! -e "$T/never" ]

start_isifd "$T/state" --allow-url-addr 127.0.0.1 --url-timeout 2 --url-max-redirects 3 ||
	{ fail ssrf_start; finish; }
pass ssrf_start
grep -q 'image URLs may reach 127.0.0.1 (--allow-url-addr' "$LOG"; is ssrf_startup_warns_about_the_exception

# A one-epoch job on 64 images: the index /neighbors needs (about 1 s).
JOB='{"dataset": "fashion-mnist", "model": "convnet", "epochs": 1, "batch_size": 32,
      "train_subset": 64, "classes": {"train": [0,1,2,3,4,5,6,7,8,9], "test": [0]}, "eval": {"knn_k": 5}}'
check ssrf_job_submitted [ "$(post_json /jobs "$JOB")" = 201 ]
check ssrf_job_succeeds wait_status 1 succeeded 60
code=$(req GET /datasets/fashion-mnist/images/test/0)
cp "$T/body" "$T/www/ok.png"
check ssrf_image_ready [ "$code" = 200 ]

# Percent-encodes everything but unreserved characters (RFC 3986 2.3).
enc() {
	local s=$1 out= c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s\n' "$out"
}
# query URL: GET /neighbors?image=URL; status in $code, body in $T/body.
query() { code=$(req GET "/neighbors?k=1&image=$(enc "$1")"); }
ORIGIN="http://127.0.0.1:$P"

# ---- the allowed address: directly, respelled, redirected, by name ----------------------
ALLOWED=()
ok_case() {   # NAME URL: 200 with the image's neighbours
	local name=$1 url=$2
	query "$url"
	[ "$code" = 200 ] && [ "$(json "d['query']['content_type'], len(d['neighbors'])")" = "('image/png', 1)" ] ||
		{ echo "$name: $url -> $code $(head -c 300 "$T/body")"; false; }
	is "ssrf_allowed_$name"
}
ok_case direct "$ORIGIN/ok.png"
ok_case spelled_127.1 "http://127.1:$Q/hit/a-127.1"
ok_case spelled_decimal "http://2130706433:$Q/hit/a-decimal"
ok_case one_redirect "$ORIGIN/r?to=$(enc "http://127.0.0.1:$Q/hit/a-r1")"
ok_case two_redirects "$ORIGIN/r2?to=$(enc "http://127.1:$Q/hit/a-r2")"
# localhost: /etc/hosts and libcurl may give 127.0.0.1 and/or ::1; ::1 is
# refused before any socket, so it is 127.0.0.1 that serves, either way.
ok_case localhost "http://localhost:$Q/hit/a-localhost"
for a in a-127.1 a-decimal a-r1 a-r2 a-localhost; do
	grep -q "^GET 127.0.0.1:$Q /hit/$a\$" "$T/www.log" || { echo "trap did not serve /hit/$a on 127.0.0.1"; false; }
done
is ssrf_allowed_cases_served_by_127.0.0.1

# ---- every other loopback spelling: refused, directly and as redirect targets -----------
# HOST in the URL, and the address the guard sees (its message names it).
FORMS=(
	"127.0.0.2 127.0.0.2" "127.0.2 127.0.0.2" "2130706434 127.0.0.2" "0x7f000002 127.0.0.2"
	"0177.0.0.2 127.0.0.2" "0x7f.0.0.2 127.0.0.2" "127.255.255.254 127.255.255.254"
	"0.0.0.0 0.0.0.0" "0 0.0.0.0" "[::1] ::1" "[0:0:0:0:0:0:0:1] ::1" "[::] ::"
	"[::ffff:127.0.0.2] ::ffff:127.0.0.2" "[::ffff:7f00:2] ::ffff:127.0.0.2"
	"[::ffff:127.0.0.1] ::ffff:127.0.0.1"
)
refused=0 tried=0 slowest=0
refuse_case() {   # KIND TAG URL ADDR
	local kind=$1 tag=$2 url=$3 addr=$4 t0 ms
	t0=$(date +%s%N)
	query "$url"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -gt "$slowest" ] && slowest=$ms
	tried=$((tried + 1))
	if [ "$code" = 403 ] && grep -qF '"code": "url_forbidden"' "$T/body" &&
		grep -qF "refused to connect to $addr: not a public address" "$T/body"; then
		refused=$((refused + 1))
	else
		fail "ssrf_refused_${kind}_$tag" "$url -> $code $(head -c 300 "$T/body")"
	fi
}
for f in "${FORMS[@]}"; do
	host=${f% *} addr=${f#* }
	tag=$(tag "$host")
	target="http://$host:$Q/hit"
	refuse_case direct "$tag" "$target/d-$tag" "$addr"
	refuse_case redirect "$tag" "$ORIGIN/r?to=$(enc "$target/r1-$tag")" "$addr"
	refuse_case chain "$tag" "$ORIGIN/r2?to=$(enc "$target/r2-$tag")" "$addr"
done
[ "$refused" = "$tried" ] && [ "$tried" = $((3 * ${#FORMS[@]})) ]
is "ssrf_other_loopback_forms_refused ($refused of $tried: ${#FORMS[@]} spellings x direct, 1 redirect, 2 redirects; slowest ${slowest} ms)"

# The origin did answer each redirect (the daemon followed it to the hop
# that was refused), once per case: r1 once, r2 through /r2 and then /r.
hops=$(grep -c "^GET 127.0.0.1:$P /r?to=.*%2Fhit%2Fr[12]-" "$T/www.log")
hops2=$(grep -c "^GET 127.0.0.1:$P /r2?to=.*%2Fhit%2Fr2-" "$T/www.log")
[ "$hops" = $((2 * ${#FORMS[@]})) ] && [ "$hops2" = "${#FORMS[@]}" ]
is "ssrf_origin_served_the_redirects ($hops /r, $hops2 /r2)"

# ---- what the trap saw ------------------------------------------------------------------
leaked=$(grep -E "^GET .* /hit/(d|r1|r2)-" "$T/www.log")
check "ssrf_no_refused_target_was_connected_to" [ -z "$leaked" ]
[ -n "$leaked" ] && echo "$leaked" | head -5
for h in 127.0.0.2 ::1; do
	name=$([ "$h" = ::1 ] && echo ipv6_loopback || tag "$h")
	if grep -qx "$h" < <(state "['trap_hosts']" | tr -d "[]' " | tr , '\n'); then
		n=$(grep -c "^ACCEPT $h:$Q\$" "$T/www.log")
		check "ssrf_trap_${name}_accepted_nothing ($n connections)" [ "$n" = 0 ]
	else
		echo "ssrf: no trap listener on $h (bind failed: $(cat "$T/www.err"))"
	fi
done
n=$(grep -c "^ACCEPT 127.0.0.1:$Q\$" "$T/www.log")
check "ssrf_trap_127_0_0_1_only_the_allowed_cases ($n connections, 5 expected)" [ "$n" = 5 ]
check ssrf_daemon_healthy healthy
stop_isifd TERM
check ssrf_exit_0 [ $? = 0 ]
finish
