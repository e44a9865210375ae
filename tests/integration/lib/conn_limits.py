#!/usr/bin/env python3
"""tests/integration/lib/conn_limits.py — isifd's own total connection limit
and request deadline, for tests/integration/hostile.sh (plain python3,
loopback only, every wait bounded). Prints PASS/FAIL lines with figures:

  full PORT PID MAX PER_IP   fill --max-connections MAX from several
                             addresses: the excess and a newcomer are closed
                             at once (not left in the listen backlog), and a
                             freed slot serves the next client straight away
  deadline PORT TIMEOUT      --request-timeout TIMEOUT: trickled headers and
                             bodies are cut after TIMEOUT s, a slow request
                             within it and a kept-alive second request pass
  stream PORT JOB TIMEOUT    an event stream being answered outlives TIMEOUT
"""
import os
import select
import socket
import sys
import time

FAILS = 0
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def result(name, ok, detail=""):
    global FAILS
    if not ok:
        FAILS += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, " (%s)" % detail if detail else ""),
          flush=True)


def connect(port, src, timeout=5.0):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def closed_by_peer(s, wait=0.0):
    """True when the daemon closed s (EOF or reset) within `wait` seconds."""
    p = select.poll()
    p.register(s, select.POLLIN)
    if not p.poll(wait * 1000):
        return False
    try:
        s.setblocking(False)
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def ask(port, src, raw=HEALTHZ, limit=3.0):
    """One request on a new connection: (status or 0, seconds, how it ended)."""
    t0 = time.monotonic()
    out = b""
    try:
        s = connect(port, src, limit)
    except OSError as e:
        return 0, time.monotonic() - t0, "connect: %s" % e.strerror
    try:
        s.sendall(raw)
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        how = "answered" if out else "closed"
    except socket.timeout:
        how = "no answer in %.0f s" % limit
    except OSError as e:
        how = "reset" if e.errno in (104, 32) else e.strerror
    finally:
        s.close()
    status = int(out[9:12]) if out.startswith(b"HTTP/1.") and len(out) >= 12 else 0
    return status, time.monotonic() - t0, how


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cmd_full(port, pid, limit, per_ip):
    fd0 = fd_count(pid)
    sources = ["127.0.0.%d" % (41 + i) for i in range(limit // per_ip + 1)]
    held, failed = [], 0
    for src in sources:
        for _ in range(per_ip):
            try:
                held.append(connect(port, src))
            except OSError:
                failed += 1
    time.sleep(0.5)
    closed = [s for s in held if closed_by_peer(s)]
    taken = fd_count(pid) - fd0
    st, secs, how = ask(port, "127.0.0.99")
    result("hostile_total_limit_closes_the_excess_at_once",
           taken <= limit and len(held) - len(closed) == limit and failed == 0
           and st == 0 and secs < 1.0,
           "%d connections from %d addresses (per address %d): the daemon took %d "
           "(--max-connections %d), closed %d at once; a newcomer from another address: %s "
           "after %.0f ms" % (len(held), len(sources), per_ip, taken, limit, len(closed),
                              how, secs * 1e3))
    open_ = [s for s in held if s not in closed]
    open_[0].close()
    time.sleep(0.2)
    st, secs, how = ask(port, "127.0.0.99")
    result("hostile_total_limit_freed_slot_serves_at_once", st == 200 and secs < 1.0,
           "one held connection closed: /healthz %d in %.0f ms" % (st, secs * 1e3))
    for s in held:
        s.close()
    time.sleep(0.3)
    st, secs, _ = ask(port, "127.0.0.98")
    result("hostile_total_limit_recovers", st == 200, "/healthz %d in %.0f ms" % (st, secs * 1e3))


def trickle(conns, step, limit):
    """Sends each (socket, data) pair's data one byte per `step` s until the
    daemon closes the socket; returns {index: seconds until closed}."""
    t0 = time.monotonic()
    closed_at, sent = {}, 0
    while len(closed_at) < len(conns) and time.monotonic() - t0 < limit:
        for i, (s, data) in enumerate(conns):
            if i in closed_at:
                continue
            if closed_by_peer(s):
                closed_at[i] = time.monotonic() - t0
                continue
            try:
                s.send(data[sent % len(data):sent % len(data) + 1])
            except OSError:
                closed_at[i] = time.monotonic() - t0
        sent += 1
        time.sleep(step)
    return closed_at


def span(times):
    return "%.1f-%.1f s" % (min(times), max(times)) if times else "-"


def cmd_deadline(port, timeout):
    bound = timeout + 1.5     # the sweeper looks twice a second
    # 1. Headers, and bodies after complete headers, trickled a byte every
    #    0.4 s from two addresses: never idle, so only the deadline cuts them.
    heads = [connect(port, "127.0.0.51") for _ in range(10)]
    bodies = [connect(port, "127.0.0.52") for _ in range(5)]
    for s in bodies:
        s.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n")
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    body = b"{" + b" " * 998 + b"}"
    closed = trickle([(s, head) for s in heads] + [(s, body) for s in bodies], 0.4, timeout + 4)
    for s in heads + bodies:
        s.close()
    th = [t for i, t in closed.items() if i < 10]
    tb = [t for i, t in closed.items() if i >= 10]
    ok = lambda ts, n: len(ts) == n and timeout - 0.2 <= min(ts) and max(ts) <= bound
    result("hostile_request_deadline_cuts_trickled_headers", ok(th, 10),
           "10 connections sending a header byte every 0.4 s: %d closed after %s "
           "(--request-timeout %d)" % (len(th), span(th), timeout))
    result("hostile_request_deadline_cuts_trickled_bodies", ok(tb, 5),
           "5 bodies sent a byte every 0.4 s: %d closed after %s" % (len(tb), span(tb)))
    # 3. A slow request that is in within the deadline is answered; on the same
    #    connection the deadline restarts after each answer; idle past it, closed.
    s = connect(port, "127.0.0.53")
    raw = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for k in range(4):
        s.sendall(raw[k * len(raw) // 4:(k + 1) * len(raw) // 4])
        time.sleep(timeout * 0.15)
    first = s.recv(65536)
    time.sleep(timeout * 0.6)
    s.sendall(raw)
    second = s.recv(65536)
    t0 = time.monotonic()
    idle_closed = closed_by_peer(s, timeout + 2)
    idle = time.monotonic() - t0
    s.close()
    result("hostile_request_deadline_spares_requests_within_it",
           first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
           and idle_closed and idle <= bound,
           "a request sent in 4 pieces over %.1f s: %s; a second one %.1f s after the "
           "answer: %s; then idle: closed after %.1f s"
           % (timeout * 0.6, first[:12].decode(errors="replace"), timeout * 0.6,
              second[:12].decode(errors="replace"), idle))


def cmd_stream(port, job, timeout):
    s = connect(port, "127.0.0.54")
    s.sendall(b"GET /jobs/%d/events HTTP/1.1\r\nHost: x\r\n\r\n" % job)
    t0 = time.monotonic()
    got, late, gone = b"", 0, False
    s.setblocking(False)
    while time.monotonic() - t0 < timeout + 2:
        if select.select([s], [], [], 0.2)[0]:
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                gone = True
                break
            got += chunk
            if time.monotonic() - t0 > timeout + 0.5:
                late += len(chunk)
    s.close()
    result("hostile_request_deadline_spares_event_streams",
           got.startswith(b"HTTP/1.1 200") and not gone and late > 0,
           "GET /jobs/%d/events for %.0f s (--request-timeout %d): %s, %d bytes, %d after "
           "the deadline" % (job, timeout + 2, timeout, "closed" if gone else "still open",
                             len(got), late))


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    try:
        if cmd == "full":
            cmd_full(port, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        elif cmd == "deadline":
            cmd_deadline(port, int(sys.argv[3]))
        elif cmd == "stream":
            cmd_stream(port, int(sys.argv[3]), int(sys.argv[4]))
        else:
            raise ValueError("unknown command " + cmd)
    except Exception as e:  # a client bug must show as a failure, not vanish
        result("hostile_%s_client" % cmd, False, "%s: %s" % (type(e).__name__, e))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
