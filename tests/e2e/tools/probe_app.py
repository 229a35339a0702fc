#!/usr/bin/env python3
"""The app of tests/e2e/test_app_probes.sh: what a pod's container serves for its Kubernetes probes.

  probe_app.py PYOUT STATE_DIR HTTP_PORT GRPC_PORT

HTTP/1.1 on HTTP_PORT: GET /ready is 200 "ready", or 503 "sick" while STATE_DIR/sick exists; other paths 404.
gRPC (Debian's python3-grpcio, messages from protoc's output in PYOUT) on GRPC_PORT: grpc.health.v1.Health/Check
answers SERVING for the service "" and "app", NOT_SERVING while STATE_DIR/sick exists, and NOT_FOUND for any
other service (as grpc's own health servicer does). Every request is one JSON line on stdout.
"""
import json
import os
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import health_pb2  # noqa: E402  (protoc's output of tools/proto/health.proto: package grpc.health.v1)

STATE = sys.argv[2]


def log(**kw):
    print(json.dumps(kw), flush=True)


def sick():
    return os.path.exists(os.path.join(STATE, "sick"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        log(event="request", proto="http", path=self.path, peer=self.client_address[0],
            user_agent=self.headers.get("user-agent"), probe_header=self.headers.get("x-probe"))
        if self.path == "/ready":
            status, body = (503, b"sick\n") if sick() else (200, b"ready\n")
        else:
            status, body = 404, b"not found\n"
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def check(request, context):
    log(event="request", proto="grpc", service=request.service, peer=context.peer())
    if request.service not in ("", "app"):
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    status = health_pb2.HealthCheckResponse.NOT_SERVING if sick() else health_pb2.HealthCheckResponse.SERVING
    return health_pb2.HealthCheckResponse(status=status)


def main():
    http = ThreadingHTTPServer(("0.0.0.0", int(sys.argv[3])), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString),
    })
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("0.0.0.0:" + sys.argv[4])
    server.start()
    log(event="listening", http=int(sys.argv[3]), grpc=int(sys.argv[4]))
    server.wait_for_termination()


if __name__ == "__main__":
    main()
