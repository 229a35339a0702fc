#!/usr/bin/python3
"""A stand-in for the Kubernetes API's TokenReview endpoint, for ringmesh-control's tests.

It serves POST /apis/authentication.k8s.io/v1/tokenreviews over TLS and answers from recordings of what a real API
server returns (tests/data/tokenreview/). It checks a request the way the API server does, in the same order:

  1. the caller's bearer token (Authorization header): a token the table does not list gets the recorded 401 Status,
     a caller listed with a recording (no RBAC permission) gets that recording (a 403 Status);
  2. the path and method: only POST to the tokenreviews collection (404 / 405 Status otherwise);
  3. the body: Content-Type application/json (415 otherwise), then a TokenReview as the API reference documents it:
     a JSON object with apiVersion "authentication.k8s.io/v1", kind "TokenReview", a spec object with a non-empty
     string "token" and optionally "audiences" (a list of strings), and optionally metadata and status objects.
     Any other field is refused, as the API server does with strict field validation (400 Status).

The token under review then picks the recording from the table. A TokenReview recording is answered with 201 Created
and its spec replaced by the request's spec, because the API server echoes the request's spec back; a Status
recording is answered with its own code; a recording whose name ends in ".raw" is sent as it is, with 201; one whose
name ends in ".stall" is not answered (the connection is closed after STALL_SECONDS). A token with no recording gets
a 500 Status naming the problem, so that a test cannot mistake it for a refusal.

Tables (--table, several allowed, re-read at every request so a test may add entries while the stand-in runs):
    {"unknown_caller": "401.json", "callers": {"token": null | "403.json"}, "reviews": {"token": "recording.json"}}
Recording paths are relative to the table's directory.

With --request-log, each request is appended as one JSON line (method, path, authorization, content_type, accept,
body) before it is answered, so a test can check exactly what its client sent. The log holds tokens: it is for
throwaway test directories only.

The chosen port is written to --port-file once the socket listens (write then rename, so a reader never sees half).
Standard library only, for Debian's /usr/bin/python3.
"""

import argparse
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
REVIEW_VERSION = "authentication.k8s.io/v1"
TOP_FIELDS = {"apiVersion", "kind", "metadata", "spec", "status"}
SPEC_FIELDS = {"token", "audiences"}
BODY_MAX = 1 << 20
STALL_SECONDS = 30  # far beyond any timeout a test sets; then the connection is closed unanswered


def status_object(code, reason, message):
    """A metav1.Status as the API server writes it for a failed request."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class Tables:
    def __init__(self, paths):
        self.paths = paths

    def load(self):
        """Merges the tables; each recording path made absolute."""
        merged = {"unknown_caller": None, "callers": {}, "reviews": {}}
        for path in self.paths:
            with open(path, encoding="utf-8") as f:
                table = json.load(f)
            base = os.path.dirname(os.path.abspath(path))

            def where(name):
                return None if name is None else os.path.join(base, name)

            if table.get("unknown_caller") is not None:
                merged["unknown_caller"] = where(table["unknown_caller"])
            for token, name in table.get("callers", {}).items():
                merged["callers"][token] = where(name)
            for token, name in table.get("reviews", {}).items():
                merged["reviews"][token] = where(name)
        return merged


def body_problem(doc):
    """Returns why `doc` is not a TokenReview as documented, or None."""
    if not isinstance(doc, dict):
        return "the body is not a JSON object"
    if doc.get("apiVersion") != REVIEW_VERSION or doc.get("kind") != "TokenReview":
        return "the body is not an %s TokenReview (apiVersion %r, kind %r)" % (
            REVIEW_VERSION, doc.get("apiVersion"), doc.get("kind"))
    unknown = sorted(set(doc) - TOP_FIELDS)
    if unknown:
        return 'strict decoding error: unknown field "%s"' % unknown[0]
    for name in ("metadata", "status"):
        if name in doc and not isinstance(doc[name], dict):
            return "%s is not an object" % name
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return "spec is missing or not an object"
    unknown = sorted(set(spec) - SPEC_FIELDS)
    if unknown:
        return 'strict decoding error: unknown field "spec.%s"' % unknown[0]
    if not isinstance(spec.get("token"), str) or spec["token"] == "":
        return "token is required for TokenReview in authentication"
    if "audiences" in spec:
        auds = spec["audiences"]
        if not isinstance(auds, list) or not all(isinstance(a, str) for a in auds):
            return "spec.audiences is not a list of strings"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-api"

    def send_json(self, code, doc):
        self.send_raw(code, json.dumps(doc, separators=(",", ":")).encode())

    def send_raw(self, code, data):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def send_recording(self, path, spec=None, code=201):
        if path.endswith(".stall"):
            time.sleep(STALL_SECONDS)  # an API server that takes the request and does not answer
            return
        if path.endswith(".raw"):
            with open(path, "rb") as f:
                self.send_raw(code, f.read())
            return
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if doc.get("kind") == "Status":
            self.send_json(doc["code"], doc)
            return
        if spec is not None:
            doc["spec"] = spec
        self.send_json(code, doc)

    def log_request_line(self, body):
        log = self.server.request_log
        if log is None:
            return
        entry = {"method": self.command, "path": self.path, "authorization": self.headers.get("Authorization"),
                 "content_type": self.headers.get("Content-Type"), "accept": self.headers.get("Accept"),
                 "body": body.decode("utf-8", "replace")}
        with self.server.log_lock, open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > BODY_MAX:
            raise ValueError("body too large")
        return self.rfile.read(length)

    def handle_any(self):
        try:
            body = self.read_body()
        except ValueError:
            self.send_json(413, status_object(413, "RequestEntityTooLarge", "the request is too large"))
            return
        self.log_request_line(body)
        tables = self.server.tables.load()

        auth = self.headers.get("Authorization") or ""
        caller = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if caller is None or caller not in tables["callers"]:
            if tables["unknown_caller"] is not None:
                self.send_recording(tables["unknown_caller"])
            else:
                self.send_json(401, status_object(401, "Unauthorized", "Unauthorized"))
            return
        if tables["callers"][caller] is not None:
            self.send_recording(tables["callers"][caller])
            return

        if self.path != REVIEW_PATH:
            self.send_json(404, status_object(404, "NotFound", "the server could not find the requested resource"))
            return
        if self.command != "POST":
            self.send_json(405, status_object(405, "MethodNotAllowed",
                                              "the server does not allow this method on the requested resource"))
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            self.send_json(415, status_object(415, "UnsupportedMediaType",
                                              'the body of the request was in an unknown format - accepted media '
                                              'types include: application/json'))
            return
        try:
            doc = json.loads(body)
        except ValueError as e:
            self.send_json(400, status_object(400, "BadRequest", "couldn't decode the body: %s" % e))
            return
        problem = body_problem(doc)
        if problem is not None:
            self.send_json(400, status_object(400, "BadRequest", problem))
            return

        recording = tables["reviews"].get(doc["spec"]["token"])
        if recording is None:
            self.send_json(500, status_object(500, "InternalError", "fake_kube_api: no recording for this token"))
            return
        self.send_recording(recording, spec=doc["spec"])

    do_POST = handle_any
    do_GET = handle_any
    do_PUT = handle_any


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, context, tables, request_log):
        self.context = context
        self.tables = tables
        self.request_log = request_log
        self.log_lock = threading.Lock()
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        # The handshake runs in the connection's own thread: a client that never finishes it holds up no one.
        request.settimeout(30)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write("fake_kube_api: TLS handshake with %s failed: %s\n" % (client_address[0], e))
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cert", required=True, help="the server's certificate chain (PEM)")
    p.add_argument("--key", required=True, help="its private key (PEM)")
    p.add_argument("--table", action="append", required=True, help="token -> recording table (JSON)")
    p.add_argument("--port-file", required=True, help="where to write the port listened on")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--request-log", help="append each request here as a JSON line")
    args = p.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    server = TLSServer((args.bind, args.port), context, Tables(args.table), args.request_log)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
