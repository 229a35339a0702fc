#!/usr/bin/python3
"""A stand-in Kubernetes API server for ringmesh's tests: HTTPS, bearer tokens, discovery, list/watch/CRUD/patch of
the kinds ringmesh uses, CRD-defined custom resources, TokenReview from recordings, and a test-control endpoint.

    kube_apiserver.py --cert PEM --key PEM --token TOKEN [--token ...] --port-file FILE [options]

See README.md next to this file for what it implements, what it does not, and which Kubernetes documentation each
behaviour follows. Standard library only (Debian's /usr/bin/python3).
"""

import argparse
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "e2e", "tools"))

import fake_kube_api  # noqa: E402  (the TokenReview stand-in: its tables, body checks and recordings)
import objects  # noqa: E402
import openapi  # noqa: E402
import rbac  # noqa: E402
from api import ApiError, ResourceVerbs, truthy  # noqa: E402
from registry import Registry  # noqa: E402
from store import Store  # noqa: E402

BODY_MAX = 8 << 20
FAULT_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                 410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                 504: "Timeout"}
PUBLIC = {"/version", "/healthz", "/livez", "/readyz"}


class Handler(ResourceVerbs, fake_kube_api.Handler):
    server_version = "kube-apiserver-standin"

    def log_message(self, fmt, *args):  # requests go to --request-log, not stderr
        pass

    def send_json(self, code, doc):
        data = json.dumps(doc, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for w in self.warnings:
            self.send_header("Warning", '299 - "%s"' % w.replace('"', "'"))
        self.end_headers()
        self.wfile.write(data)

    def send_raw(self, code, data):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_response(self, code, message=None):
        self.record(code)
        super().send_response(code, message)

    def record(self, code):
        log = self.server.request_log
        if log is None or self.logged:
            return
        self.logged = True
        entry = {"time": time.time(), "method": self.command, "path": self.path, "user": self.user,
                 "authorization": self.headers.get("Authorization"), "content_type": self.headers.get("Content-Type"),
                 "accept": self.headers.get("Accept"), "user_agent": self.headers.get("User-Agent"),
                 "body": self.body.decode("utf-8", "replace"), "code": code}
        with self.server.log_lock, open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    # -- entry ----------------------------------------------------------------------------------------------------

    def handle_any(self):
        self.logged = False
        self.user = None
        self.body = b""
        self.warnings = []
        try:
            self.body = self.read_request_body()
        except ValueError:
            self.close_connection = True
            return self.send_json(413, objects.status(413, "RequestEntityTooLarge", "the request is too large"))
        url = urllib.parse.urlsplit(self.path)
        self.route_path = url.path.rstrip("/") or "/"
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        if self.route_path not in PUBLIC and not self.authenticate():
            return
        if not self.route_path.startswith("/_test/") and self.inject_fault():
            return
        try:
            self.route()
        except ApiError as e:
            if self.logged:  # a watch already answered 200: the stream can only end
                self.close_connection = True
            else:
                self.send_json(e.doc["code"], e.doc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001  a bug here must answer, not drop the connection silently
            sys.stderr.write("kube_apiserver: %s %s: %s\n" % (self.command, self.path, traceback.format_exc()))
            if not self.logged:
                self.send_json(500, objects.status(500, "InternalError", "kube_apiserver: %s: %s" % (
                    type(e).__name__, e)))
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def read_request_body(self):
        """The body by Content-Length, or by chunks (Transfer-Encoding: chunked); ValueError when too large or
        malformed."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline(64).split(b";")[0].strip() or b"x", 16)
                if size < 0 or len(body) + size > BODY_MAX:
                    raise ValueError("too large")
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > BODY_MAX:
            raise ValueError("too large")
        return self.rfile.read(length)

    def authenticate(self):
        auth = self.headers.get("Authorization") or ""
        token = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else None
        if token in self.server.tokens:
            self.user = self.server.tokens[token]
            return True
        tables = self.server.tables.load() if self.server.tables else None
        if tables is not None and token in tables["callers"]:
            if tables["callers"][token] is not None:
                self.send_recording(tables["callers"][token])
                return False
            self.user = "caller"
            return True
        if tables is not None and tables["unknown_caller"] is not None:
            self.send_recording(tables["unknown_caller"])
        else:
            self.send_json(401, objects.status(401, "Unauthorized", "Unauthorized"))
        return False

    def inject_fault(self):
        fault = self.server.take_fault(self.command, self.path)
        if fault is None:
            return False
        action = fault.get("action", "error")
        if action == "stall":
            self.record(None)
            time.sleep(float(fault.get("seconds", 30)))
            self.close_connection = True
            return True
        if action == "close":
            self.record(None)
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return True
        code = int(fault.get("code", 500))
        doc = objects.status(code, FAULT_REASONS.get(code, "InternalError"), fault.get("message", "injected fault"))
        if code == 429:
            doc["details"] = {"retryAfterSeconds": 1}
        self.send_json(code, doc)
        return True

    # -- routing --------------------------------------------------------------------------------------------------

    def route(self):
        path, method = self.route_path, self.command
        reg = self.server.registry
        if path in ("/healthz", "/livez", "/readyz"):
            return self.send_text(200, "ok")
        if path == "/version":
            return self.send_json(200, self.server.version_doc())
        if path.startswith("/_test/"):
            return self.test_control(path[len("/_test/"):])
        if path.startswith("/openapi/"):
            return openapi.serve(self, path)
        if path == "/api":
            return self.send_json(200, reg.api_versions(self.headers.get("Host") or ""))
        if path == "/apis":
            return self.send_json(200, reg.api_group_list())
        parts = path.split("/")[1:]
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                for g in reg.api_group_list()["groups"]:
                    if g["name"] == parts[1]:
                        return self.send_json(200, dict(g, kind="APIGroup", apiVersion="v1"))
                raise ApiError(self.not_found_path())
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(self.not_found_path())
        if not rest:
            doc = reg.resource_list(group, version)
            if doc is None:
                raise ApiError(self.not_found_path())
            return self.send_json(200, doc)
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            res = reg.find(group, version, rest[2])
            if res is not None and res.namespaced:
                namespace, rest = rest[1], rest[2:]
        res = reg.find(group, version, rest[0])
        if res is None or len(rest) > 3 or (res.namespaced and namespace is None and len(rest) > 1):
            raise ApiError(self.not_found_path())
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (sub == "status" and res.status or sub == "scale" and res.scale):
            raise ApiError(self.not_found_path())
        verb = self.verb(method, name)
        if verb not in res.verbs and not (verb in ("get", "update", "patch") and sub in ("status", "scale")):
            raise ApiError(objects.status(405, "MethodNotAllowed",
                                          "the server does not allow this method on the requested resource"))
        if self.server.authorize and self.user != "caller":
            m = re.search(r"(?:^|,)\s*metadata\.name\s*==?\s*([^,\s]+)", self.query.get("fieldSelector") or "")
            resource = res.plural + ("/" + sub if sub else "")
            if not rbac.allowed(self.server.store, self.user, verb, res.group, resource, namespace, name,
                                m.group(1) if m else None):
                raise ApiError(rbac.forbidden(self.user, verb, res, sub, namespace, name))
        if sub == "scale":
            return self.do_scale(res, namespace, name, verb, self.body)
        if verb == "list":
            return self.do_list(res, namespace)
        if verb == "watch":
            return self.do_watch(res, namespace, name)
        if verb == "get":
            return self.do_get(res, namespace, name)
        if verb == "create":
            if name is not None:
                raise ApiError(objects.status(405, "MethodNotAllowed",
                                              "the server does not allow this method on the requested resource"))
            return self.do_create(res, namespace, self.body)
        if verb == "update":
            return self.do_update(res, namespace, name, sub, self.body)
        if verb == "patch":
            return self.do_patch(res, namespace, name, sub, self.body)
        if verb == "delete":
            return self.do_delete(res, namespace, name, self.body)
        if verb == "deletecollection":
            return self.do_delete_collection(res, namespace)
        raise ApiError(objects.status(405, "MethodNotAllowed",
                                      "the server does not allow this method on the requested resource"))

    def verb(self, method, name):
        if method == "GET":
            if truthy(self.query.get("watch")):
                return "watch"
            return "get" if name else "list"
        if method == "POST":
            return "create"
        if method == "PUT":
            return "update" if name else None
        if method == "PATCH":
            return "patch" if name else None
        if method == "DELETE":
            return "delete" if name else "deletecollection"
        return None

    def not_found_path(self):
        return objects.status(404, "NotFound", "the server could not find the requested resource",
                              {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})

    def send_text(self, code, text):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # -- TokenReview (the recordings of tests/data/tokenreview, as fake_kube_api.py serves them) ------------------

    def tokenreview(self, body):
        tables = self.server.tables.load() if self.server.tables else None
        if tables is None:
            raise ApiError(objects.status(500, "InternalError", "kube_apiserver: no --tokenreview-table given"))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            raise ApiError(objects.status(415, "UnsupportedMediaType", "the body of the request was in an unknown "
                                          "format - accepted media types include: application/json"))
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise ApiError(objects.bad_request("couldn't decode the body: %s" % e))
        problem = fake_kube_api.body_problem(doc)
        if problem is not None:
            raise ApiError(objects.bad_request(problem))
        recording = tables["reviews"].get(doc["spec"]["token"])
        if recording is None:
            raise ApiError(objects.status(500, "InternalError", "kube_apiserver: no recording for this token"))
        self.send_recording(recording, spec=doc["spec"])

    # -- test control ---------------------------------------------------------------------------------------------

    def test_control(self, what):
        srv, store, method = self.server, self.server.store, self.command
        if what == "compact" and method == "POST":
            return self.send_json(200, {"resourceVersion": str(store.compact())})
        if what == "drop-watches" and method == "POST":
            mode = self.query.get("mode", "close")
            if mode not in ("close", "abort"):
                raise ApiError(objects.bad_request("mode must be close or abort"))
            return self.send_json(200, {"dropped": store.drop_watchers(mode, self.query.get("resource"))})
        if what == "bookmark" and method == "POST":
            return self.send_json(200, {"watches": store.bookmark_all()})
        if what == "watches" and method == "GET":
            with store.lock:
                found = sorted(w.gr for w in store.watchers)
            return self.send_json(200, {"watches": found})
        if what == "faults" and method == "POST":
            try:
                doc = json.loads(self.body)
            except ValueError as e:
                raise ApiError(objects.bad_request("faults: %s" % e))
            rules = doc if isinstance(doc, list) else [doc]
            for r in rules:
                if not isinstance(r, dict) or r.get("action", "error") not in ("error", "stall", "close"):
                    raise ApiError(objects.bad_request("faults: each rule is an object with action error, stall "
                                                       "or close"))
                try:
                    re.compile(r.get("path", ""))
                    int(r.get("count", 1)), int(r.get("code", 500)), float(r.get("seconds", 30))
                except re.error as e:
                    raise ApiError(objects.bad_request("faults: path is not a regular expression: %s" % e))
                except (TypeError, ValueError) as e:
                    raise ApiError(objects.bad_request("faults: count, code and seconds are numbers: %s" % e))
            with srv.fault_lock:
                srv.faults.extend(dict(r, count=int(r.get("count", 1))) for r in rules)
                return self.send_json(200, {"pending": sum(r["count"] for r in srv.faults)})
        if what == "faults" and method == "DELETE":
            with srv.fault_lock:
                srv.faults.clear()
            return self.send_json(200, {"pending": 0})
        if what == "objects" and method == "GET":
            return self.send_json(200, {"kind": "List", "apiVersion": "v1", "metadata": {},
                                        "items": store.all_objects()})
        raise ApiError(self.not_found_path())


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, context, args):
        self.context = context
        self.tokens = {}
        for t in args.token or []:
            token, _, user = t.partition("=")
            self.tokens[token] = user or "admin"
        self.tables = fake_kube_api.Tables(args.tokenreview_table) if args.tokenreview_table else None
        self.request_log = args.request_log
        self.log_lock = threading.Lock()
        self.faults = []
        self.fault_lock = threading.Lock()
        self.store = Store(args.history)
        self.registry = Registry(self.store)
        self.allocator = objects.Allocator(args.service_cidr)
        self.git_version = args.git_version
        self.bookmark_seconds = args.bookmark_seconds
        self.watch_timeout = args.watch_timeout
        self.namespace_finalize_seconds = args.namespace_finalize_seconds
        self.authorize = args.authorize
        super().__init__(address, Handler, bind_and_activate=True)
        self.seed()

    def seed(self):
        """The namespaces every cluster has, each with its default ServiceAccount, and the kubernetes Service."""
        ns_res = self.registry.find("", "v1", "namespaces")
        sa_res = self.registry.find("", "v1", "serviceaccounts")
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            objects.fill_create(ns_res, obj, self.allocator)
            self.store.put(ns_res.gr, obj, lambda old: None)
            sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}
            objects.fill_create(sa_res, sa, self.allocator)
            self.store.put(sa_res.gr, sa, lambda old: None)

    def version_doc(self):
        m = re.match(r"v(\d+)\.(\d+)", self.git_version)
        return {"major": m.group(1) if m else "1", "minor": m.group(2) if m else "33", "gitVersion": self.git_version,
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
                "platform": "linux/amd64"}

    def take_fault(self, method, path):
        with self.fault_lock:
            for r in self.faults:
                if r.get("method") not in (None, method) or not re.search(r.get("path", ""), path):
                    continue
                r["count"] -= 1
                if r["count"] <= 0:
                    self.faults.remove(r)
                return r
        return None

    def finish_request(self, request, client_address):
        request.settimeout(None)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write("kube_apiserver: TLS handshake with %s failed: %s\n" % (client_address[0], e))
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cert", required=True, help="the server's certificate chain (PEM)")
    p.add_argument("--key", required=True, help="its private key (PEM)")
    p.add_argument("--token", action="append",
                   help="TOKEN[=USER]: a bearer token the server accepts, for USER (default admin, in system:masters)"
                   "; a service account is system:serviceaccount:NAMESPACE:NAME (repeatable)")
    p.add_argument("--authorize", action="store_true",
                   help="authorize requests with the stored RBAC objects (users other than admin)")
    p.add_argument("--tokenreview-table", action="append",
                   help="a TokenReview table as tests/data/tokenreview/table.json (repeatable)")
    p.add_argument("--port-file", required=True, help="where to write the port listened on (write then rename)")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--request-log", help="append each request here as a JSON line (holds tokens: tests only)")
    p.add_argument("--git-version", default="v1.33.2", help="the gitVersion /version reports")
    p.add_argument("--service-cidr", default="10.96.0.0/16", help="where Services' cluster IPs come from")
    p.add_argument("--history", type=int, default=5000, help="how many events the history keeps")
    p.add_argument("--compact-seconds", type=float, default=0,
                   help="compact the history this often, as etcd every 5 minutes (default: only when asked)")
    p.add_argument("--bookmark-seconds", type=float, default=5.0, help="idle time before a watch gets a BOOKMARK")
    p.add_argument("--namespace-finalize-seconds", type=float, default=0.5,
                   help="how long a deleted namespace stays Terminating before it and its content are deleted")
    p.add_argument("--watch-timeout", type=int, default=1800, help="a watch without timeoutSeconds ends after this")
    args = p.parse_args()
    if not args.token and not args.tokenreview_table:
        p.error("give at least one --token or --tokenreview-table")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    Server.address_family = family
    server = Server((args.bind, args.port), context, args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.port_file)
    if args.compact_seconds > 0:
        def compact_forever():
            while True:
                time.sleep(args.compact_seconds)
                server.store.compact()
        threading.Thread(target=compact_forever, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
