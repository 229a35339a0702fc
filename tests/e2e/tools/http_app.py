#!/usr/bin/env python3
"""The app behind a meshed port in the policy tests: HTTP/1.1 (keep-alive) on one port and gRPC (HTTP/2) on
another, both answering every request with what they received, so a test can tell which requests reached it.

  http_app.py http PORT        every method, every path: 200, body "<METHOD> <path>"
  http_app.py grpc PORT        every method of every service: the request bytes back, prefixed "echo:"
  http_app.py call ADDR METHOD [KEY=VALUE...]
                               one unary gRPC call with metadata; prints {"code": "OK"|"PERMISSION_DENIED"|...,
                               "details": ..., "reply": ...} and exits 0 when the call returned a status
Every request is logged on stdout as one JSON line {"event": "request", "method": ..., "path": ...}; an HTTP/1.1
request's trace context fields (traceparent, tracestate, b3, x-b3-*), when it has any, are in "trace".
"""
import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def log(**kw):
    print(json.dumps(kw), flush=True)


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _any(self):
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)
        body = f"{self.command} {self.path}".encode()
        trace = {k.lower(): v for k, v in self.headers.items()
                 if k.lower() in ("traceparent", "tracestate", "b3") or k.lower().startswith("x-b3-")}
        if trace:
            log(event="request", proto="http1", method=self.command, path=self.path, trace=trace)
        else:
            log(event="request", proto="http1", method=self.command, path=self.path)
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._any
        raise AttributeError(name)


def serve_http(port):
    srv = ThreadingHTTPServer(("0.0.0.0", port), Echo)
    log(event="listening", port=port)
    srv.serve_forever()


def serve_grpc(port):
    import grpc

    class Generic(grpc.GenericRpcHandler):
        def service(self, details):
            method = details.method

            def unary(req, ctx):
                log(event="request", proto="grpc", method="POST", path=method)
                return b"echo:" + req

            return grpc.unary_unary_rpc_method_handler(unary)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((Generic(),))
    server.add_insecure_port(f"0.0.0.0:{port}")
    server.start()
    log(event="listening", port=port)
    threading.Event().wait()


def call(addr, method, meta):
    import grpc

    with grpc.insecure_channel(addr) as ch:
        fn = ch.unary_unary(method)
        try:
            reply = fn(b"ping", timeout=10, metadata=meta)
            print(json.dumps({"code": "OK", "details": "", "reply": reply.decode()}))
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "details": e.details() or "", "reply": None}))


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "http":
        serve_http(int(sys.argv[2]))
    elif what == "grpc":
        serve_grpc(int(sys.argv[2]))
    elif what == "call":
        call(sys.argv[2], sys.argv[3], [tuple(kv.split("=", 1)) for kv in sys.argv[4:]])
    else:
        sys.exit("usage: http_app.py http PORT | grpc PORT | call ADDR METHOD [KEY=VALUE...]")
