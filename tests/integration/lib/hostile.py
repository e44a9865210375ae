#!/usr/bin/env python3
"""Hostile HTTP clients for tests/integration/hostile.sh (plain python3,
loopback only, every wait bounded). Each sub-command prints PASS/FAIL lines
with its figures in parentheses:

  bodies PORT N              N malformed or truncated JSON bodies to POST /jobs
  oversize PORT MAX_BODY     oversize bodies, headers and URLs; odd bytes
  slowloris PORT TIMEOUT     stalled and trickling connections from other
                             loopback addresses while /healthz answers
  idle PORT N PID [HOLD]     N idle connections held HOLD seconds; /healthz,
                             the daemon's RSS
  limits PORT N PID          N connections against the default limits: from
                             one address, then from eight
  auth PORT TOKEN            every protected route without or with a wrong token
"""
import errno
import json
import os
import random
import select
import socket
import sys
import time

FAILS = 0
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux 4.2+


def result(name, ok, detail=""):
    global FAILS
    if not ok:
        FAILS += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, " (%s)" % detail if detail else ""),
          flush=True)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def exchange(port, data, timeout=5.0, src=None):
    """Sends raw bytes on a new connection; returns (status or 0, seconds, raw answer)."""
    t0 = time.monotonic()
    s = socket.socket()
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    out = b""
    try:
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(data)
        except OSError:
            pass  # refused early (413) and closed: read what came
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    finally:
        s.close()
    status = int(out[9:12]) if out.startswith(b"HTTP/1.") and len(out) >= 12 else 0
    return status, time.monotonic() - t0, out


def healthz(port, src=None):
    status, secs, _ = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                               src=src)
    return status, secs


class KeepAlive:
    """One HTTP/1.1 connection reused for many requests (reopened when closed)."""

    def __init__(self, port):
        self.port, self.sock, self.buf = port, None, b""

    def request(self, raw):
        for _ in range(2):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                self.buf = b""
            try:
                self.sock.sendall(raw)
                return self.read_answer()
            except (OSError, ValueError):
                self.sock.close()
                self.sock = None
        return 0, b""

    def read_answer(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ValueError("closed")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
            if k.strip().lower() == b"connection" and v.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ValueError("closed")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        if close:
            self.sock.close()
            self.sock = None
        return status, body


# ---- malformed bodies ----------------------------------------------------------------
VALID = json.dumps({
    "dataset": "fashion-mnist", "model": "convnet", "epochs": 5, "batch_size": 64, "lr": 0.03,
    "momentum": 0.9, "weight_decay": 5e-4, "lr_schedule": {"type": "step", "milestones": [3],
                                                           "factors": [0.1]},
    "temperature": 0.1, "seed": 3, "augment": {"crop_scale": [0.2, 1.0], "hflip": 0.5,
                                               "color_jitter": {"hue": 0.4, "p": 1.0}},
    "eval": {"knn_k": 20, "every": 1}, "train_subset": 256, "classes": None}).encode()


def is_json(b):
    try:
        json.loads(b.decode("utf-8"))
        return True
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


def malformed_bodies(n, rng):
    """n bodies that are not JSON: crafted ones, every truncation of a full
    spec, then random byte edits of it (kept only when they do not parse)."""
    crafted = [b"", b" ", b"\n", b"{", b"}", b"[", b"nul", b"{\"dataset\": }", b"{'dataset': 'x'}",
               b"{\"dataset\": \"fashion-mnist\",}", b"\xef\xbb\xbf{\"dataset\": \"fashion-mnist\"}",
               b"{\"dataset\": \"\xff\xfe\"}", b"{\"dataset\": \"a\x00b\"}",
               b"{\"dataset\": \"fashion-mnist\"} trailing", b"{\"lr\": 1e99999}",
               b"{\"epochs\": 01}", b"{\"epochs\": -}", b"{\"epochs\": 0x10}",
               b"{\"epochs\": NaN}", b"{\"epochs\": Infinity}", b"{\"dataset\": \"\\ud800\"}",
               b"{\"dataset\": \"\\u12\"}", b"{\"dataset\": \"tab\there\"}",
               b"[" * 100000, b"{\"a\":" * 20000, b"{\"dataset\": \"" + b"x" * 900000,
               b"\x00" * 64, bytes(range(256))]
    out = [c for c in crafted if not is_json(c)]
    out += [VALID[:k] for k in range(1, len(VALID))]
    while len(out) < n:
        b = bytearray(VALID)
        for _ in range(rng.randint(1, 4)):
            op, at = rng.randrange(3), rng.randrange(len(b))
            if op == 0:
                b[at] = rng.randrange(256)
            elif op == 1:
                del b[at]
            else:
                b.insert(at, rng.choice(b"{}[]\",:\\\x00\xff"))
        if not is_json(bytes(b)):
            out.append(bytes(b))
    return out[:n]


def cmd_bodies(port, n):
    rng = random.Random(8)
    bodies = malformed_bodies(n, rng)
    conn = KeepAlive(port)
    codes = {}
    t0 = time.monotonic()
    for body in bodies:
        raw = (b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
        status, answer = conn.request(raw)
        ok_error = False
        if status == 400:
            try:
                ok_error = json.loads(answer)["error"]["code"] == "invalid_spec"
            except (ValueError, KeyError, TypeError):
                pass
        key = status if (status != 400 or ok_error) else "400 without an invalid_spec body"
        codes[key] = codes.get(key, 0) + 1
    secs = time.monotonic() - t0
    h, _ = healthz(port)
    result("hostile_malformed_json_bodies", codes == {400: len(bodies)} and len(bodies) == n
           and h == 200, "%d bodies in %.1f s: %s; /healthz %d"
           % (len(bodies), secs, ", ".join("%s x %d" % kv for kv in sorted(codes.items(), key=str)), h))


# ---- oversize and odd requests -------------------------------------------------------------
def cmd_oversize(port, max_body):
    ct = b"Content-Type: application/json\r\n"
    # 1. A declared length over the limit, no body sent: 413 at once.
    st, secs, _ = exchange(port, b"POST /jobs HTTP/1.1\r\nHost: x\r\n" + ct +
                           b"Content-Length: %d\r\n\r\n" % (max_body + 1), timeout=5)
    result("hostile_declared_oversize_413_before_body", st == 413 and secs < 1.0,
           "%d in %.0f ms with no body sent" % (st, secs * 1e3))
    st, secs, _ = exchange(port, b"POST /jobs HTTP/1.1\r\nHost: x\r\n" + ct +
                           b"Content-Length: 99999999999999999999\r\n\r\n", timeout=5)
    result("hostile_absurd_length_refused", st in (400, 413), "%d" % st)
    # 2. A chunked body that grows past the limit.
    chunk = b"a" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(max_body // 65536 + 2))
    st, secs, _ = exchange(port, b"POST /jobs HTTP/1.1\r\nHost: x\r\n" + ct +
                           b"Transfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n")
    result("hostile_chunked_oversize_413", st == 413, "%d after %d bytes" % (st, len(body)))
    # 3. Headers and URLs past the connection memory.
    st, _, _ = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300000 +
                        b"\r\n\r\n")
    result("hostile_oversize_header_refused", st in (413, 431), "%d for a 300 kB header" % st)
    st, _, _ = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                        b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\n")
    result("hostile_many_headers_refused", st in (413, 431), "%d for 20000 headers" % st)
    st, _, _ = exchange(port, b"GET /" + b"a" * 300000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    result("hostile_oversize_url_refused", st in (413, 414), "%d for a 300 kB URL" % st)
    # 4. Client bytes echoed into error messages (fuzz_http findings): 4xx, not 500.
    st, _, _ = exchange(port, b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: a\xb4\xff\r\n"
                        b"Content-Length: 2\r\n\r\n{}")
    result("hostile_invalid_utf8_content_type_415", st == 415, "%d" % st)
    st, _, _ = exchange(port, b"POST /\xff\xfe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    result("hostile_invalid_utf8_url_404", st == 404, "%d" % st)
    st, _, _ = exchange(port, b"BREW /jobs HTTP/1.1\r\nHost: x\r\n\r\n")
    result("hostile_unknown_method_405", st == 405, "%d" % st)
    st, _, _ = exchange(port, b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n")
    result("hostile_bad_version_refused", st in (400, 505), "%d" % st)
    st, _, _ = exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64))
    result("hostile_tls_hello_refused", st in (0, 400), "%d" % st)
    h, _ = healthz(port)
    result("hostile_oversize_daemon_up", h == 200, "/healthz %d" % h)


# ---- slow clients ----------------------------------------------------------------------------
def open_conns(n, port, src, payload=b""):
    conns = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            if payload:
                s.sendall(payload)
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        conns.append(s)
    return conns


def readable(s, timeout=0.0):
    p = select.poll()
    p.register(s, select.POLLIN)
    return bool(p.poll(timeout * 1000))


def closed_by_peer(s):
    """True when the daemon closed the connection (EOF or reset)."""
    if not readable(s):
        return False
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def cmd_slowloris(port, timeout):
    # Stalled: half a request line, then silence, from 127.0.0.2.
    stalled = open_conns(50, port, "127.0.0.2", b"GET /healthz HTTP/1.1\r\nHo")
    t0 = time.monotonic()
    closed_at = {}
    worst_health = 0.0
    while len(closed_at) < len(stalled) and time.monotonic() - t0 < timeout + 5:
        for i, s in enumerate(stalled):
            if i not in closed_at and closed_by_peer(s):
                closed_at[i] = time.monotonic() - t0
        st, secs = healthz(port)
        worst_health = max(worst_health, secs if st == 200 else 99)
        time.sleep(0.1)
    for s in stalled:
        s.close()
    latest = max(closed_at.values()) if closed_at else -1
    result("hostile_slowloris_stalled_closed_by_timeout",
           len(closed_at) == len(stalled) == 50 and latest <= timeout + 2.5 and worst_health < 1,
           "%d of 50 stalled connections closed after %.1f-%.1f s (--connection-timeout %d); "
           "/healthz at worst %.0f ms" % (len(closed_at), min(closed_at.values(), default=-1),
                                          latest, timeout, worst_health * 1e3))
    # Trickling: a byte every 0.5 s never looks idle, so the per-address limit
    # is what bounds it; other addresses are still served.
    trickle = open_conns(100, port, "127.0.0.3")
    time.sleep(0.5)
    gone = [closed_by_peer(s) for s in trickle]
    refused = sum(gone)
    live = [s for s, g in zip(trickle, gone) if not g]
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    t0 = time.monotonic()
    worst_health, sent = 0.0, 0
    while time.monotonic() - t0 < timeout + 2:
        for s in live:
            try:
                s.send(request[sent:sent + 1])
            except OSError:
                pass
        sent += 1
        st, secs = healthz(port)
        worst_health = max(worst_health, secs if st == 200 else 99)
        time.sleep(0.5)
    alive = sum(not closed_by_peer(s) for s in live)
    for s in trickle:
        s.close()
    result("hostile_slowloris_trickle_bounded_per_address",
           worst_health < 1 and alive <= 64,
           "100 trickling connections from one address: %d refused at once, %d still open "
           "after %.0f s (--max-connections-per-ip 64); /healthz from another at worst %.0f ms"
           % (refused, alive, timeout + 2, worst_health * 1e3))


# ---- many idle connections -----------------------------------------------------------------------
def connect_many(port, n, sources=("127.0.0.1",)):
    """Opens n connections without sending anything, from the source addresses
    in turn, 500 connects in flight at a time; returns (connections, failed)."""
    conns, failed, pending = [], 0, {}
    todo = n
    deadline = time.monotonic() + 60
    while (todo or pending) and time.monotonic() < deadline:
        while todo and len(pending) < 500:
            s = socket.socket()
            s.setblocking(False)
            # Leave the port choice to connect(): bind(port 0) would search
            # the whole ephemeral range per socket.
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((sources[todo % len(sources)], 0))
            err = s.connect_ex(("127.0.0.1", port))
            if err not in (0, errno.EINPROGRESS):
                s.close()
                failed += 1
            else:
                pending[s.fileno()] = s
            todo -= 1
        p = select.poll()
        for fd in pending:
            p.register(fd, select.POLLOUT)
        for fd, _ in p.poll(1000):
            s = pending.pop(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                conns.append(s)
            else:
                s.close()
                failed += 1
    for s in pending.values():
        s.close()
        failed += 1
    return conns, failed


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def over_limit(port, n, pid, sources):
    """n connections from `sources` against the default limits; returns
    (sockets the daemon took, connections it closed at once, waiting in
    the listen backlog, /healthz status from another address while full)."""
    fd0 = fd_count(pid)
    conns, failed = connect_many(port, n, sources)
    time.sleep(1.0)
    closed = sum(closed_by_peer(s) for s in conns)
    taken = fd_count(pid) - fd0
    st, _, _ = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                        timeout=2, src="127.0.0.99")
    for s in conns:
        s.close()
    time.sleep(0.5)
    return taken, closed, len(conns) - closed - taken, failed, st


def cmd_limits(port, n, pid):
    taken, closed, waiting, failed, st = over_limit(port, n, pid, ["127.0.0.10"])
    h, _ = healthz(port)
    result("hostile_per_address_limit_closes_excess",
           taken <= 64 and closed >= n - 64 and failed == 0 and st == 200 and h == 200,
           "%d connections from one address: the daemon took %d, closed %d at once; /healthz "
           "from another address %d while they were held" % (n, taken, closed, st))
    taken, closed, waiting, failed, st = over_limit(port, n, pid,
                                                    ["127.0.0.%d" % (20 + i) for i in range(8)])
    h, _ = healthz(port)
    result("hostile_total_limit_bounds_connections", taken <= 256 and failed == 0 and h == 200,
           "%d connections from 8 addresses: the daemon took %d (--max-connections 256), closed %d "
           "at once (per-address and total limits), %d still waiting; /healthz from a 9th "
           "address %s while full, %d after" % (n, taken, closed, waiting,
                                               st or "closed at once (limit reached)", h))


def cmd_idle(port, n, pid, hold):
    rss0 = rss_kb(pid)
    t0 = time.monotonic()
    # From 16 loopback addresses: each has its own ephemeral ports.
    conns, failed = connect_many(port, n, ["127.0.1.%d" % i for i in range(1, 17)])
    t_open = time.monotonic() - t0
    time.sleep(hold)
    gone = [closed_by_peer(s) for s in conns]
    held = len(conns) - sum(gone)
    rss1 = rss_kb(pid)
    st, secs = healthz(port)
    for s in conns:
        s.close()
    time.sleep(1.0)
    rss2 = rss_kb(pid)
    st2, _ = healthz(port)
    result("hostile_idle_connections_held", held == n and st == 200 and secs < 2 and st2 == 200,
           "%d of %d idle connections held (opened in %.1f s), /healthz %d in %.0f ms while held; "
           "RSS %.1f -> %.1f MB (%.1f kB per connection), %.1f MB after closing"
           % (held, n, t_open, st, secs * 1e3, rss0 / 1024, rss1 / 1024,
              (rss1 - rss0) / max(held, 1), rss2 / 1024))
    result("hostile_idle_connections_memory_bounded", rss1 - rss0 < 64 * n,
           "%.1f MB for %d connections (bound: 64 kB each)" % ((rss1 - rss0) / 1024, n))


# ---- token ------------------------------------------------------------------------------------
PROTECTED = [("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/1"), ("DELETE", "/jobs/1"),
             ("GET", "/jobs/1/metrics"), ("GET", "/jobs/1/events"), ("POST", "/jobs/1/cancel"),
             ("GET", "/jobs/1/checkpoint"), ("GET", "/metrics"), ("GET", "/datasets"),
             ("GET", "/"), ("GET", "/index.html"), ("HEAD", "/jobs"), ("GET", "/nope"),
             ("POST", "/datasets"), ("GET", "/datasets/fashion-mnist"),
             ("GET", "/datasets/fashion-mnist/images/test/0"),
             ("GET", "/neighbors?image=test:0"), ("POST", "/neighbors"),
             ("POST", "/neighbors/batch"), ("GET", "/jobs/1/embeddings?format=npy")]


def cmd_auth(port, token):
    wrong = "x" * len(token)
    variants = [
        ("no token", []),
        ("wrong token of the same length", ["Authorization: Bearer " + wrong]),
        ("the token's prefix", ["Authorization: Bearer " + token[:-1]]),
        ("the token plus a byte", ["Authorization: Bearer " + token + "x"]),
        ("empty bearer", ["Authorization: Bearer "]),
        ("basic scheme", ["Authorization: Basic " + token]),
        ("token without scheme", ["Authorization: " + token]),
        ("wrong access_token", [], "?access_token=" + wrong),
    ]
    bad = []
    tried = 0
    for method, path in PROTECTED:
        for v in variants:
            name, headers = v[0], v[1]
            query = v[2] if len(v) > 2 else ""
            if query and "?" in path:
                query = "&" + query[1:]
            raw = ("%s %s%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s"
                   "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                   % (method, path, query, "".join(h + "\r\n" for h in headers))).encode()
            st, _, answer = exchange(port, raw)
            tried += 1
            if st != 401 or b"WWW-Authenticate: Bearer" not in answer:
                bad.append("%s %s with %s: %d" % (method, path, name, st))
    result("hostile_token_every_route_401", not bad,
           "; ".join(bad[:4]) if bad else "%d routes x %d kinds of missing or wrong token: %d "
           "answers, all 401 with WWW-Authenticate" % (len(PROTECTED), len(variants), tried))
    good = []
    for method, path in PROTECTED:
        raw = ("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
               % (method, path, token)).encode()
        st, _, _ = exchange(port, raw)
        if st == 401 or st == 0:
            good.append("%s %s: %d" % (method, path, st))
    st, _, _ = exchange(port, ("GET /jobs?access_token=%s HTTP/1.1\r\nHost: x\r\n"
                               "Connection: close\r\n\r\n" % token).encode())
    if st != 200:
        good.append("access_token: %d" % st)
    result("hostile_token_right_token_passes", not good, "; ".join(good[:4]))
    st, _ = healthz(port)
    result("hostile_token_healthz_open", st == 200, "%d" % st)


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    try:
        run(cmd, port)
    except Exception as e:  # a client bug must show as a failure, not vanish
        result("hostile_%s_client" % cmd, False, "%s: %s" % (type(e).__name__, e))
    sys.exit(1 if FAILS else 0)


def run(cmd, port):
    if cmd == "bodies":
        cmd_bodies(port, int(sys.argv[3]))
    elif cmd == "oversize":
        cmd_oversize(port, int(sys.argv[3]))
    elif cmd == "slowloris":
        cmd_slowloris(port, int(sys.argv[3]))
    elif cmd == "idle":
        cmd_idle(port, int(sys.argv[3]), int(sys.argv[4]),
                 float(sys.argv[5]) if len(sys.argv) > 5 else 2.0)
    elif cmd == "limits":
        cmd_limits(port, int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "auth":
        cmd_auth(port, sys.argv[3])
    else:
        raise ValueError("unknown command " + cmd)


if __name__ == "__main__":
    main()
