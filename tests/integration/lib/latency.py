#!/usr/bin/env python3
"""tests/integration/lib/latency.py — how long a URL takes to answer, over
and over (plain python3, standard library only).

    latency.py URL SECONDS INTERVAL_MS

GETs URL on a fresh connection every INTERVAL_MS for SECONDS seconds (one
request at a time, each allowed 30 s) and prints one line:
    n=N ok=K p50=X p99=Y max=Z        (milliseconds)
ok counts the 200 answers; a request that fails counts with its time.
"""
import http.client
import sys
import time
import urllib.parse


def main():
    url, seconds, interval = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]) / 1000
    u = urllib.parse.urlsplit(url)
    times, ok, end = [], 0, time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            c.request("GET", u.path or "/")
            r = c.getresponse()
            r.read()
            ok += r.status == 200
            c.close()
        except OSError:
            pass
        dt = time.monotonic() - t0
        times.append(dt * 1000)
        time.sleep(max(0.0, interval - dt))
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print("n=%d ok=%d p50=%.1f p99=%.1f max=%.1f" % (len(times), ok, pick(0.5), pick(0.99),
                                                      times[-1]))


if __name__ == "__main__":
    main()
