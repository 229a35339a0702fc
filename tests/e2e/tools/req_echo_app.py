#!/usr/bin/env python3
"""An HTTP/1.1 backend for the request path tests: it tells what reached it.

  req_echo_app.py PORT NAME
      Keep-alive HTTP/1.1 on 0.0.0.0:PORT. Request bodies are read whole, by content-length or chunked. Every
      request answers 200 with "x-pod: NAME" and, by its query:
        (none)          a JSON body {"pod", "method", "path", "headers" (all of them, names lower-case),
                        "body_len", "body_sha256", "chunked" (the request body came chunked)}
        ?size=N         N bytes of a fixed pattern instead (byte i is i % 251), with content-length
        ?size=N&chunked=1   the same in chunks of 10,000 bytes
        ?delay_ms=MS    waits that long before answering
        ?fail_pod=NAME[,NAME...]  the pods named answer 503 (empty body) instead
      One JSON line per request on stdout: {"event": "request", "pod", "method", "path", "headers", "body_len",
      "body_sha256", "chunked"}.
"""
import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_lock = threading.Lock()


def log(**kw):
    with _lock:
        print(json.dumps(kw), flush=True)


def pattern(n):
    block = bytes(i % 251 for i in range(251 * 64))
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


def main():
    port, name = int(sys.argv[1]), sys.argv[2]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _read_body(self):
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                data = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(data), True
                    data += self.rfile.read(size)
                    self.rfile.readline()
            n = int(self.headers.get("content-length") or 0)
            return (self.rfile.read(n) if n else b""), False

        def _any(self):
            body, chunked = self._read_body()
            q = parse_qs(urlsplit(self.path).query)
            info = {
                "pod": name,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_len": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "chunked": chunked,
            }
            log(event="request", **info)
            delay = int(q.get("delay_ms", ["0"])[0])
            if delay > 0:
                time.sleep(delay / 1000.0)
            if name in q.get("fail_pod", [""])[0].split(","):
                self.send_response(503)
                self.send_header("x-pod", name)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            size = q.get("size")
            out = pattern(int(size[0])) if size else json.dumps(info).encode()
            self.send_response(200)
            self.send_header("x-pod", name)
            if size and q.get("chunked", ["0"])[0] == "1":
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for i in range(0, len(out), 10000):
                    part = out[i:i + 10000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

        def log_message(self, fmt, *args):
            pass

        def __getattr__(self, attr):
            if attr.startswith("do_"):
                return self._any
            raise AttributeError(attr)

    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    log(event="listening", port=port, pod=name)
    srv.serve_forever()


if __name__ == "__main__":
    main()
