#!/usr/bin/env python3
"""A made-up proxy's /metrics page for the `ringmeshctl stat` tests, with counters that grow by known amounts.

  metrics_fixture.py PORT FIXTURE MODE

FIXTURE is a JSON file: {"series": [{"name": ..., "labels": {...}, "first": N, "delta": N, "new": bool}, ...],
"help": {name: text}, "type": {name: type}}. Scrape k of a series is first + k * delta; a "new" series is absent
from scrape 0 (it appeared between the first two scrapes). Label values are written with the text format's
escapes (\\\\, \\", \\n).

MODE says what k is and which timestamps the samples carry:
  count   k counts the GETs of /metrics since the start or the last POST /reset; every sample carries the
          timestamp 1700000000000 + k * 2000 (ms), so two scrapes are 2 s apart whatever the clock says
  clock   k = (now - start) / 2 s, a fraction; samples carry now (ms): counters that grow linearly in time, for a
          Prometheus server that scrapes the page whenever it likes

Other paths: /missing answers 404; /bad serves a page whose line 3 is malformed; /prom-error/api/v1/query answers
as Prometheus does a query it refuses (HTTP 400, status "error"). Every request is logged on stdout as a JSON
line {"event": "request", "path": ..., "k": ...}.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BASE_TS = 1700000000000
STEP_MS = 2000


def escape(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(fixture, k, ts):
    out, typed = [], set()
    for s in fixture["series"]:
        if s.get("new") and k == 0:
            continue
        family = s.get("family", s["name"])
        if family not in typed:
            typed.add(family)
            if family in fixture.get("help", {}):
                out.append(f"# HELP {family} {fixture['help'][family]}")
            if family in fixture.get("type", {}):
                out.append(f"# TYPE {family} {fixture['type'][family]}")
        labels = ",".join(f'{n}="{escape(v)}"' for n, v in s["labels"].items())
        value = s["first"] + k * s["delta"]
        out.append(f"{s['name']}{{{labels}}} {value!r} {ts}")
    return "\n".join(out) + "\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body, ctype="text/plain; version=0.0.4"):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        srv = self.server
        path = self.path.split("?")[0]
        if path == "/metrics":
            with srv.lock:
                if srv.mode == "count":
                    k = srv.count
                    srv.count += 1
                    ts = BASE_TS + k * STEP_MS
                else:
                    ts = int(time.time() * 1000)
                    k = (ts - srv.start_ms) / STEP_MS
            print(json.dumps({"event": "request", "path": path, "k": k}), flush=True)
            self.reply(200, render(srv.fixture, k, ts))
        elif path == "/bad":
            self.reply(200, "# TYPE ringmesh_requests_total counter\nringmesh_requests_total 1\n"
                            'ringmesh_requests_total{reporter="destination",le="1} 2\n')
        elif path == "/prom-error/api/v1/query":
            self.reply(400, json.dumps({"status": "error", "errorType": "bad_data",
                                        "error": "1:1: parse error: unexpected end of input"}),
                       "application/json")
        else:
            self.reply(404, "404 page not found\n")

    def do_POST(self):
        if self.path == "/reset":
            with self.server.lock:
                self.server.count = 0
            self.reply(200, "reset\n")
        else:
            self.reply(404, "404 page not found\n")

    def log_message(self, fmt, *args):
        pass


def main():
    port, fixture, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    with open(fixture) as f:
        srv.fixture = json.load(f)
    srv.mode, srv.count, srv.lock = mode, 0, threading.Lock()
    srv.start_ms = int(time.time() * 1000)
    print(json.dumps({"event": "listening", "port": port}), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
