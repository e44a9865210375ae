#!/usr/bin/env python3
"""tests/integration/lib/ops.py — clients for tests/integration/ops.sh that
curl cannot play (plain python3, loopback only, every wait bounded):

  hold PORT JOB N READY OUT    open N event streams on /jobs/JOB/events and
                               a few slow clients (3 with half-sent headers,
                               2 downloads of /big.bin that never read, 1
                               idle connection); write READY once every
                               stream has its first event, then read the
                               streams until they end (at most 30 s) and
                               write to OUT one line per stream: "<ended>
                               <saw shutdown event>" (1/0), then a last
                               line with the slow clients' fate
"""
import os
import select
import socket
import sys
import time


def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def cmd_hold(port, job, n, ready, out):
    streams = []
    for _ in range(n):
        s = connect(port)
        s.sendall(b"GET /jobs/%d/events HTTP/1.1\r\nHost: x\r\n\r\n" % job)
        streams.append([s, b"", False])     # socket, bytes seen, ended
    slow = []
    for _ in range(3):
        s = connect(port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(s)
    for _ in range(2):
        s = connect(port, rcvbuf=4096)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        slow.append(s)
    slow.append(connect(port))

    def pump(limit):
        """Reads what the streams have until `limit` (monotonic)."""
        while time.monotonic() < limit:
            live = [st for st in streams if not st[2]]
            if not live:
                return
            r, _, _ = select.select([st[0] for st in live], [], [], 0.1)
            for st in live:
                if st[0] not in r:
                    continue
                try:
                    d = st[0].recv(65536)
                except OSError:
                    d = b""
                if d:
                    st[1] += d
                else:
                    st[2] = True

    # Ready once every stream has its first event (the job's state).
    t_end = time.monotonic() + 20
    while time.monotonic() < t_end and not all(b"event: state" in st[1] for st in streams):
        pump(time.monotonic() + 0.2)
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % sum(b"event: state" in st[1] for st in streams))
    os.rename(ready + ".tmp", ready)
    pump(time.monotonic() + 30)
    with open(out, "w") as f:
        for st in streams:
            f.write("%d %d\n" % (st[2], b"event: shutdown" in st[1]))
        # closed by the daemon's stop, which may close them a moment after
        # the last stream: each gets until 5 s from here to show its end
        gone = 0
        t_close = time.monotonic() + 5
        for s in slow:
            s.setblocking(False)
            try:
                while True:
                    left = t_close - time.monotonic()
                    if left <= 0 or not select.select([s], [], [], left)[0]:
                        break
                    d = s.recv(1 << 20)
                    if not d:
                        gone += 1
                        break
            except BlockingIOError:
                pass
            except OSError:
                gone += 1
        f.write("slow clients closed: %d of %d\n" % (gone, len(slow)))


def main():
    cmd = sys.argv[1]
    if cmd == "hold":
        cmd_hold(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
