#!/usr/bin/env python3
"""Backends and clients of the traffic management tests: every answer names the pod that gave it, so a test can
count where each request went.

Servers (one JSON line on stdout per event: {"event": "listening"}, {"event": "start", ...} when a request's head
has arrived, {"event": "request", ...} when its answer was written):
  traffic_app.py http PORT NAME [--fail-share F] [--fail-run N]
      HTTP/1.1 keep-alive; every method and path answers 200 with header "x-pod: NAME" and body NAME.
      --fail-share F: a share F (0..1) of the requests answers 503 instead, spread evenly (F = 0.5: every other one).
      --fail-run N: with --fail-share, the 503s come in runs of N in a row (then as many successes for F = 0.5),
      as a pod that fails for a while does; "half the time" with runs long enough for consecutive-5xx detection.
      The query of a request may ask for more: ?delay_ms=MS waits before answering, ?status=CODE answers CODE,
      ?close=1 sends the head and half the body, then closes (a response cut in its middle).
      The request's x-canary header and every ringmesh-* header it arrived with are logged in "headers".
  traffic_app.py grpc PORT NAME
      gRPC (HTTP/2 cleartext) with no TLS; every unary method answers the bytes NAME.

Clients (print one JSON summary line; exit 0 when they ran, whatever the answers were):
  traffic_app.py http-calls HOST:PORT N [--path P] [--method M] [--header K:V]... [--new-conn]
                            [--until-file F] [--each] [--timeout S] [--pace-ms MS]
      N requests over ONE keep-alive HTTP/1.1 connection (a new connection is opened only when the server side
      closed it; "connections" counts them), or each on a new connection with --new-conn ("Connection: close").
      --until-file: stops early once F exists. --each: also one JSON line per request {"seq", "pod", "status"}.
      Summary: {"requests", "ok" (2xx), "status": {code: n}, "pods": {name: n}, "errors", "connections"}.
  traffic_app.py grpc-calls HOST:PORT N
      N unary calls over ONE gRPC channel (one connection); summary {"calls", "ok", "codes", "pods"}.
"""
import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_out_lock = threading.Lock()


def log(**kw):
    line = json.dumps(kw)
    with _out_lock:
        print(line, flush=True)


class FailPlan:
    """Which requests answer 503: deterministic, so that a test's numbers do not depend on chance."""

    def __init__(self, share, run):
        self.share = share
        self.run = max(1, run)
        self.lock = threading.Lock()
        self.n = 0

    def next_fails(self):
        with self.lock:
            k = self.n // self.run  # the requests of one run share a fate
            self.n += 1
            return int((k + 1) * self.share + 1e-9) > int(k * self.share + 1e-9)


def serve_http(port, name, plan):
    body = name.encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # a head and a body written apart must not wait for a delayed ACK

        def _any(self):
            n = int(self.headers.get("content-length") or 0)
            if n:
                self.rfile.read(n)
            q = parse_qs(urlsplit(self.path).query)
            hdrs = {k.lower(): v for k, v in self.headers.items()
                    if k.lower().startswith("ringmesh-") or k.lower() == "x-canary"}
            log(event="start", pod=name, method=self.command, path=self.path)
            delay = int(q.get("delay_ms", ["0"])[0])
            if delay > 0:
                time.sleep(delay / 1000.0)
            status = int(q.get("status", ["200"])[0])
            if status == 200 and plan.share > 0 and plan.next_fails():
                status = 503
            if q.get("close", ["0"])[0] == "1":
                self.send_response(200)
                self.send_header("x-pod", name)
                self.send_header("content-length", str(2 * len(body) + 100))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                log(event="request", pod=name, method=self.command, path=self.path, status=0, headers=hdrs)
                self.close_connection = True
                return
            self.send_response(status)
            self.send_header("x-pod", name)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            log(event="request", pod=name, method=self.command, path=self.path, status=status, headers=hdrs)

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


def serve_grpc(port, name):
    import grpc

    class Generic(grpc.GenericRpcHandler):
        def service(self, details):
            method = details.method

            def unary(req, ctx):
                log(event="request", pod=name, proto="grpc", method="POST", path=method, status=0)
                return name.encode()

            return grpc.unary_unary_rpc_method_handler(unary)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((Generic(),))
    server.add_insecure_port(f"0.0.0.0:{port}")
    server.start()
    log(event="listening", port=port, pod=name, proto="grpc")
    threading.Event().wait()


def http_calls(a):
    host, port = a.addr.rsplit(":", 1)
    headers = dict(h.split(":", 1) for h in a.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    if a.new_conn:
        headers["Connection"] = "close"
    res = {"requests": 0, "ok": 0, "status": {}, "pods": {}, "errors": 0, "connections": 0}
    conn = None
    for seq in range(1, a.n + 1):
        if a.until_file and os.path.exists(a.until_file):
            break
        if conn is None:
            conn = http.client.HTTPConnection(host, int(port), timeout=a.timeout)
            res["connections"] += 1
            try:
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass  # the request below fails and is counted
        res["requests"] += 1
        pod, status = None, 0
        try:
            body = b"x" * 16 if a.method in ("POST", "PUT") else None
            conn.request(a.method, a.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            status = r.status
            pod = r.getheader("x-pod") or (data.decode(errors="replace") if data else None)
            if r.will_close or a.new_conn:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            res["errors"] += 1
            pod = None
            status = 0
            if a.each:
                print(json.dumps({"seq": seq, "error": type(e).__name__}), flush=True)
            conn.close()
            conn = None
        if status:
            res["status"][str(status)] = res["status"].get(str(status), 0) + 1
            if 200 <= status < 300:
                res["ok"] += 1
                res["pods"][pod] = res["pods"].get(pod, 0) + 1
            if a.each:
                print(json.dumps({"seq": seq, "pod": pod, "status": status}), flush=True)
        if a.pace_ms:
            time.sleep(a.pace_ms / 1000.0)
    if conn is not None:
        conn.close()
    print(json.dumps(res), flush=True)


def grpc_calls(a):
    import grpc

    res = {"calls": 0, "ok": 0, "codes": {}, "pods": {}}
    # one target address, the default pick_first policy: one subchannel, so one TCP connection for every call
    with grpc.insecure_channel(a.addr, options=[("grpc.enable_retries", 0)]) as ch:
        fn = ch.unary_unary("/traffic.Pods/Name")
        for _ in range(a.n):
            res["calls"] += 1
            try:
                reply = fn(b"who", timeout=a.timeout)
                res["ok"] += 1
                code = "OK"
                pod = reply.decode(errors="replace")
                res["pods"][pod] = res["pods"].get(pod, 0) + 1
            except grpc.RpcError as e:
                code = e.code().name
            res["codes"][code] = res["codes"].get(code, 0) + 1
    print(json.dumps(res), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("http")
    s.add_argument("port", type=int)
    s.add_argument("name")
    s.add_argument("--fail-share", type=float, default=0.0)
    s.add_argument("--fail-run", type=int, default=1)
    s = sub.add_parser("grpc")
    s.add_argument("port", type=int)
    s.add_argument("name")
    s = sub.add_parser("http-calls")
    s.add_argument("addr")
    s.add_argument("n", type=int)
    s.add_argument("--path", default="/")
    s.add_argument("--method", default="GET")
    s.add_argument("--header", action="append", default=[])
    s.add_argument("--new-conn", action="store_true")
    s.add_argument("--until-file")
    s.add_argument("--each", action="store_true")
    s.add_argument("--timeout", type=float, default=10.0)
    s.add_argument("--pace-ms", type=int, default=0)
    s = sub.add_parser("grpc-calls")
    s.add_argument("addr")
    s.add_argument("n", type=int)
    s.add_argument("--timeout", type=float, default=10.0)
    a = p.parse_args()
    if a.what == "http":
        serve_http(a.port, a.name, FailPlan(a.fail_share, a.fail_run))
    elif a.what == "grpc":
        serve_grpc(a.port, a.name)
    elif a.what == "http-calls":
        http_calls(a)
    else:
        grpc_calls(a)


if __name__ == "__main__":
    sys.exit(main())
