#!/usr/bin/env python3
"""tests/integration/lib/fixture_http.py — a loopback HTTP server for the
retrieval tests' URL fetches (plain python3, standard library only).

    fixture_http.py DIR PORTFILE

Binds 127.0.0.1 on a free port, writes the port to PORTFILE and serves:
  /img/NAME          the file DIR/NAME (image/png for .png, image/jpeg for .jpg)
  /hop/N/NAME        N redirects (302), then the file NAME
  /loop              a redirect to itself
  /big               50 MB declared in Content-Length, as image/png
  /big-chunked       50 MB with no length (ends when the connection closes)
  /text              text/html
  /status/CODE       an empty answer with that status
  /slow              the answer to /img/t0.png after 5 s
  /drip/S/NAME       the file DIR/NAME, its bytes spread over S seconds
  /to-ftp            a redirect to ftp://127.0.0.1/x
"""
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
BIG = 50 * 1024 * 1024
BLOCK = b"\x89PNG\r\n\x1a\n" + b"\0" * (64 * 1024 - 8)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"   # close-delimited bodies for /big-chunked

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % self.requestline)   # one line per request
        sys.stderr.flush()

    def redirect(self, where):
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def file(self, name):
        path = os.path.join(DIR, os.path.basename(name))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        ctype = "image/png" if name.endswith(".png") else \
            "image/jpeg" if name.endswith(".jpg") else "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def big(self, declared):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if declared:
            self.send_header("Content-Length", str(BIG))
        self.end_headers()
        try:
            for _ in range(BIG // len(BLOCK)):
                self.wfile.write(BLOCK)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client gave up, as it should

    def drip(self, seconds, name):
        data = open(os.path.join(DIR, os.path.basename(name)), "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        pieces = 10
        try:
            for i in range(pieces):
                self.wfile.write(data[i * len(data) // pieces:(i + 1) * len(data) // pieces])
                self.wfile.flush()
                if i < pieces - 1:
                    time.sleep(seconds / (pieces - 1))
        except (BrokenPipeError, ConnectionResetError):
            pass   # isifd gave up (shutdown)

    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        head = parts[0]
        if head == "img" and len(parts) == 2:
            self.file(parts[1])
        elif head == "hop" and len(parts) == 3 and parts[1].isdigit():
            n = int(parts[1])
            if n > 0:
                self.redirect("/hop/%d/%s" % (n - 1, parts[2]))
            else:
                self.file(parts[2])
        elif head == "loop":
            self.redirect("/loop")
        elif head == "big":
            self.big(True)
        elif head == "big-chunked":
            self.big(False)
        elif head == "text":
            body = b"<html><body>not an image</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif head == "status" and len(parts) == 2 and parts[1].isdigit():
            self.send_response(int(parts[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif head == "slow":
            time.sleep(5)
            try:
                self.file("t0.png")
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif head == "drip" and len(parts) == 3:
            self.drip(float(parts[1]), parts[2])
        elif head == "to-ftp":
            self.redirect("ftp://127.0.0.1/x")
        else:
            self.send_error(404)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
