#!/usr/bin/env python3
"""tests/integration/lib/ssrf_http.py — loopback HTTP servers for
tests/integration/ssrf.sh (plain python3, standard library only).

    ssrf_http.py DIR STATEFILE LOG

Binds only loopback addresses:
  origin  127.0.0.1:P (a free port)
  trap    127.0.0.1:Q, 127.0.0.2:Q and [::1]:Q (Q a free port; a bind that
          fails is left out and said so in STATEFILE)
and writes {"origin": P, "trap": Q, "trap_hosts": [...]} to STATEFILE.
Every server answers:
  /ok.png, /hit/NAME   the file DIR/ok.png as image/png
  /r?to=URL            302 to URL (percent-decoded)
  /r2?to=URL           302 to http://127.0.0.1:P/r?to=URL (two redirects in all)
LOG gets one line per accepted connection, "ACCEPT LOCAL_IP:PORT", and one
per request, "GET LOCAL_IP:PORT PATH", so the suite can tell which listener
was reached, and with what. A trap listener that accepts anything while a
refused form is tried means the daemon's guard let a connection through.
"""
import json
import os
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR, STATE, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
log_lock = threading.Lock()
log_file = open(LOG, "a")
ORIGIN_PORT = 0


def log(line):
    with log_lock:
        log_file.write(line + "\n")
        log_file.flush()


def local(sock):
    host, port = sock.getsockname()[:2]
    return "%s:%d" % (host, port)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass  # LOG has what the suite needs

    def redirect(self, where):
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def image(self):
        path = os.path.join(DIR, "ok.png")
        data = open(path, "rb").read() if os.path.isfile(path) else b""
        self.send_response(200 if data else 404)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        log("GET %s %s" % (local(self.connection), self.path))
        url = urllib.parse.urlsplit(self.path)
        to = urllib.parse.parse_qs(url.query).get("to", [""])[0]
        if url.path == "/ok.png" or url.path.startswith("/hit/"):
            self.image()
        elif url.path == "/r" and to:
            self.redirect(to)
        elif url.path == "/r2" and to:
            self.redirect("http://127.0.0.1:%d/r?to=%s" % (ORIGIN_PORT, urllib.parse.quote(to, safe="")))
        else:
            self.send_error(404)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def verify_request(self, request, client_address):
        log("ACCEPT %s" % local(request))
        return True


class Server6(Server):
    address_family = socket.AF_INET6


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()


origin = Server(("127.0.0.1", 0), Handler)
ORIGIN_PORT = origin.server_address[1]
serve(origin)
trap = Server(("127.0.0.1", 0), Handler)
TRAP_PORT = trap.server_address[1]
serve(trap)
hosts = ["127.0.0.1"]
for cls, host in ((Server, "127.0.0.2"), (Server6, "::1")):
    try:
        serve(cls((host, TRAP_PORT), Handler))
        hosts.append(host)
    except OSError as e:
        sys.stderr.write("trap %s:%d not bound: %s\n" % (host, TRAP_PORT, e))
with open(STATE + ".tmp", "w") as f:
    json.dump({"origin": ORIGIN_PORT, "trap": TRAP_PORT, "trap_hosts": hosts}, f)
os.rename(STATE + ".tmp", STATE)
threading.Event().wait()
