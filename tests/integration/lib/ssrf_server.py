#!/usr/bin/env python3
"""tests/integration/lib/ssrf_server.py — redirector and honeypot for
tests/integration/ssrf.sh, run inside a private network namespace.

    ssrf_server.py PORTFILE ALLOWED_IP...

Listens on every address ([::] dual-stack) on one free port, written to
PORTFILE. Connections that arrive on an ALLOWED_IP are the test's "public"
web server:
  /img.png      a 16x16 gray PNG
  /r?to=URL     a 302 redirect to URL
Any connection that arrives on another address is a honeypot hit: the
fetcher connected somewhere the URL guard should have refused. Each
connection is logged on stdout as "CONN <local address> <path>".
"""
import socket
import struct
import sys
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALLOWED = set(sys.argv[2:])


def png16():
    raw = b"".join(b"\x00" + bytes((x * 16 + y) % 256 for x in range(16)) for y in range(16))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PNG = png16()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        local = self.connection.getsockname()[0]
        if local.startswith("::ffff:"):
            local = local[7:]
        print("CONN %s %s" % (local, self.path), flush=True)
        if local not in ALLOWED:
            self.send_error(418)    # a honeypot hit; the test fails on the log line
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/img.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)
        elif url.path == "/r":
            to = urllib.parse.parse_qs(url.query).get("to", [""])[0]
            self.send_response(302)
            self.send_header("Location", to)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


srv = Server(("::", 0), Handler)
with open(sys.argv[1] + ".new", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(sys.argv[1] + ".new", sys.argv[1])
srv.serve_forever()
