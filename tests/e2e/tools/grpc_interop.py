#!/usr/bin/env python3
"""A gRPC client that is not ours: Debian's python3-grpcio with messages protoc generated from proto/.

Talks to a running ringmesh-control and prints one JSON object per step on stdout, for
tests/e2e/test_control_grpc_interop.sh to check. Usage:

  grpc_interop.py sign    ADDR BUNDLE TOKEN_FILE CSR_FILE OUT_PREFIX [TTL]
  grpc_interop.py stream  ADDR BUNDLE CERT KEY NAMESPACE SA [nack-destinations | hold=FILE]
                          (hold=FILE: stay connected after answering every push until FILE exists)
  grpc_interop.py call    ADDR BUNDLE METHOD                  (a method the server does not have)
  grpc_interop.py stream-nocert ADDR BUNDLE

ADDR is host:port; the server's certificate is checked against BUNDLE under the name
ringmesh-control.ringmesh-system.svc (as the sidecar does).
"""
import json
import os
import sys
import time

import grpc
from google.protobuf import json_format

sys.path.insert(0, sys.argv.pop(1))  # directory with the protoc output
from ringmesh.v1 import discovery_pb2, identity_pb2  # noqa: E402


def destination_json(d):
    """A pushed Destination as JSON; its routes (route.proto) only when it has any."""
    j = dict(name=d.name, addresses=list(d.addresses), in_mesh=d.in_mesh, identities=list(d.identities))
    if d.routes:
        j["routes"] = [json_format.MessageToDict(r, preserving_proto_field_name=True) for r in d.routes]
    return j


SERVER_NAME = "ringmesh-control.ringmesh-system.svc"
TYPES = ["TrustBundle", "DestinationMap", "MeshSettings"]
PREFIX = "type.ringmesh.io/ringmesh.v1."


def out(**kw):
    print(json.dumps(kw), flush=True)


def channel(addr, bundle, cert=None, key=None):
    roots = open(bundle, "rb").read()
    if cert:
        creds = grpc.ssl_channel_credentials(roots, open(key, "rb").read(), open(cert, "rb").read())
    else:
        creds = grpc.ssl_channel_credentials(roots)
    return grpc.secure_channel(addr, creds, options=[("grpc.ssl_target_name_override", SERVER_NAME)])


def sign(addr, bundle, token_file, csr_file, prefix, ttl="0"):
    ch = channel(addr, bundle)
    call = ch.unary_unary("/ringmesh.v1.Identity/Sign",
                          request_serializer=identity_pb2.SignRequest.SerializeToString,
                          response_deserializer=identity_pb2.SignResponse.FromString)
    req = identity_pb2.SignRequest(csr_pem=open(csr_file).read(), credential=open(token_file).read().strip(),
                                   requested_ttl_seconds=int(ttl))
    try:
        resp = call(req, timeout=10)
    except grpc.RpcError as e:
        out(step="sign", ok=False, code=e.code().name, details=e.details())
        return
    open(prefix + "-chain.pem", "w").write(resp.cert_chain_pem)
    open(prefix + "-bundle.pem", "w").write(resp.trust_bundle_pem)
    out(step="sign", ok=True, spiffe_id=resp.spiffe_id, not_before=resp.not_before, not_after=resp.not_after)


def stream(addr, bundle, cert, key, ns, sa, nack=None):
    ch = channel(addr, bundle, cert, key)
    call = ch.stream_stream("/ringmesh.v1.Discovery/Stream",
                            request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
                            response_deserializer=discovery_pb2.DiscoveryResponse.FromString)
    import queue
    q = queue.Queue()
    node = discovery_pb2.Node(id="interop-client", namespace=ns, service_account=sa, proxy_version="python-grpcio")
    for i, t in enumerate(TYPES):
        q.put(discovery_pb2.DiscoveryRequest(node=node if i == 0 else None, type_url=PREFIX + t))

    def requests():
        while True:
            item = q.get()
            if item is None:
                return
            yield item

    responses = call(requests(), timeout=20)
    seen = 0
    try:
        for resp in responses:
            t = resp.type_url[len(PREFIX):]
            res = resp.resources[0]
            info = dict(step="push", type=t, version=resp.version_info, nonce=resp.nonce, resource=res.name)
            if t == "TrustBundle":
                m = discovery_pb2.TrustBundle.FromString(res.value)
                info.update(trust_domain=m.trust_domain, roots=len(m.roots_pem))
            elif t == "DestinationMap":
                m = discovery_pb2.DestinationMap.FromString(res.value)
                info.update(destinations=[destination_json(d) for d in m.destinations])
            elif t == "MeshSettings":
                m = discovery_pb2.MeshSettings.FromString(res.value)
                info.update(trust_domain=m.trust_domain, inbound_mode=discovery_pb2.MtlsMode.Name(m.inbound_mode),
                            svid_ttl_seconds=m.svid_ttl_seconds)
            out(**info)
            if nack == "nack-destinations" and t == "DestinationMap":
                q.put(discovery_pb2.DiscoveryRequest(type_url=resp.type_url, version_info="", response_nonce=resp.nonce,
                                                     error_detail=discovery_pb2.ErrorDetail(
                                                         code=3, message="interop test rejects this push")))
            else:
                q.put(discovery_pb2.DiscoveryRequest(type_url=resp.type_url, version_info=resp.version_info,
                                                     response_nonce=resp.nonce))
            seen += 1
            if seen == len(TYPES):
                if nack and nack.startswith("hold="):
                    # stay connected until the test creates the file (bounded: 30 s)
                    for _ in range(600):
                        if os.path.exists(nack[len("hold="):]):
                            break
                        time.sleep(0.05)
                # half-close after the last answer: the server then ends the stream with OK
                q.put(None)
    except grpc.RpcError as e:
        out(step="stream", ok=False, code=e.code().name, details=e.details())
        return
    out(step="stream", ok=True, pushes=seen)


def call_unknown(addr, bundle, method):
    ch = channel(addr, bundle)
    c = ch.unary_unary(method, request_serializer=lambda x: x, response_deserializer=lambda x: x)
    try:
        c(b"", timeout=10)
        out(step="call", ok=True)
    except grpc.RpcError as e:
        out(step="call", ok=False, code=e.code().name, details=e.details())


def stream_nocert(addr, bundle):
    ch = channel(addr, bundle)
    call = ch.stream_stream("/ringmesh.v1.Discovery/Stream",
                            request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
                            response_deserializer=discovery_pb2.DiscoveryResponse.FromString)
    node = discovery_pb2.Node(id="x", namespace="shop", service_account="orders")
    try:
        for _ in call(iter([discovery_pb2.DiscoveryRequest(node=node, type_url=PREFIX + TYPES[0])]), timeout=10):
            out(step="stream-nocert", ok=True)
            return
        out(step="stream-nocert", ok=True)
    except grpc.RpcError as e:
        out(step="stream-nocert", ok=False, code=e.code().name, details=e.details())


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sign":
        sign(*args)
    elif cmd == "stream":
        stream(*args)
    elif cmd == "call":
        call_unknown(*args)
    elif cmd == "stream-nocert":
        stream_nocert(*args)
    else:
        sys.exit("unknown command " + cmd)
