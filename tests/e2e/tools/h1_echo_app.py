#!/usr/bin/env python3
"""An HTTP/1.1-only app for the inbound request path's tests: it speaks nothing but HTTP/1.x (an HTTP/2 preface is
a bad request to it) and says what it received.

  h1_echo_app.py PORT

One JSON line on stdout per event: {"event": "listening"}, {"event": "accept", "n": N} for each connection accepted
(N counts them), {"event": "request", ...} for each request, with what it got: "line" (the request line), "method",
"path", "version", "host", "headers" (every field as "name: value", names as received), "chunked" (the body came
with transfer-encoding: chunked), "length" (its content-length, or null), "body_len", "body_md5".

Answers, by path (query parameters decide the rest):
  /echo            200, the JSON of the request event as the body (content-length)
  /big?n=N         200, N bytes of a repeating pattern (content-length)
  /chunked?n=N     200, N bytes in chunks (transfer-encoding: chunked)
  /close?n=N       200, N bytes delimited by the connection's close (no content-length, Connection: close)
  /status?code=C   status C (204 and 304 without a body; others with body "status C")
  /cut?n=N         200 with content-length N, then half of the body, then the connection closes (a cut response)
HEAD answers as GET would, without the body. Anything else: /echo.
"""
import hashlib
import json
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

_lock = threading.Lock()
_accepted = 0


def log(**kw):
    line = json.dumps(kw)
    with _lock:
        print(line, flush=True)


def pattern(n):
    block = bytes(range(256))
    return (block * (n // 256 + 1))[:n]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the head and the body are separate writes

    def setup(self):
        global _accepted
        super().setup()
        with _lock:
            _accepted += 1
            n = _accepted
        log(event="accept", n=n)

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    return body, True
                body += self.rfile.read(size)
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        return (self.rfile.read(int(length)) if length else b""), False

    def handle_one(self):
        body, chunked = self.read_body()
        u = urlsplit(self.path)
        q = parse_qs(u.query)
        ev = {
            "event": "request",
            "line": self.requestline,
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "host": self.headers.get("Host"),
            "headers": ["%s: %s" % (k, v) for k, v in self.headers.items()],
            "chunked": chunked,
            "length": self.headers.get("Content-Length"),
            "body_len": len(body),
            "body_md5": hashlib.md5(body).hexdigest(),
        }
        log(**ev)
        head = self.command == "HEAD"
        n = int(q.get("n", ["0"])[0])
        if u.path == "/big":
            self.answer(200, pattern(n), head)
        elif u.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if not head:
                data = pattern(n)
                for i in range(0, len(data), 10000):
                    part = data[i:i + 10000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
        elif u.path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self.wfile.write(pattern(n))
            self.close_connection = True
        elif u.path == "/cut":
            data = pattern(n)
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(data[:n // 2])
            self.wfile.flush()
            self.close_connection = True
        elif u.path == "/status":
            code = int(q.get("code", ["200"])[0])
            if code in (204, 304):
                self.send_response(code)
                self.end_headers()
            else:
                self.answer(code, b"status %d" % code, head)
        else:
            self.answer(200, json.dumps(ev).encode(), head, "application/json")

    def answer(self, code, data, head, ctype="application/octet-stream"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = handle_one


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops SYNs of a burst of new connections


def main():
    port = int(sys.argv[1])
    srv = Server(("0.0.0.0", port), Handler)
    log(event="listening", port=port)
    srv.serve_forever()


if __name__ == "__main__":
    main()
