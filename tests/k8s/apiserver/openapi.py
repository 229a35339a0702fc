"""/openapi/v2 and /openapi/v3: just enough OpenAPI for kubectl.

kubectl apply and kubectl's client-side validation download the OpenAPI document before they send anything; an API
server without one makes them fail ("failed to download openapi"). The stand-in publishes documents without schemas:
kubectl then finds no schema for a kind, skips client-side validation of it, and computes apply's strategic merge
patch from its built-in Go types (its documented fallback) or a JSON merge patch for custom resources. Server-side
field validation is announced through each PATCH operation's fieldValidation parameter in /openapi/v3, as the API
server publishes it, so kubectl sends fieldValidation=Strict and leaves the unknown-field check to the server.

/openapi/v2 is served as protobuf (gnostic's openapi_v2.Document, the form kubectl asks for) or JSON.
"""



def _field(number, payload):
    """A length-delimited protobuf field."""
    out = bytes([(number << 3) | 2])
    n = len(payload)
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n]) + payload


def v2_protobuf(version):
    info = _field(1, b"Kubernetes") + _field(2, version.encode())
    return _field(1, b"2.0") + _field(2, info) + _field(8, b"")


def v3_paths(handler):
    reg = handler.server.registry
    paths = {}
    for group, version in reg.group_versions():
        prefix = "api/%s" % version if not group else "apis/%s/%s" % (group, version)
        paths[prefix] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (prefix, handler.server.store.current_rv())}
    return {"paths": paths}


def v3_document(handler, group, version):
    """PATCH operations per resource, each naming its GVK and its fieldValidation parameter; no schemas."""
    reg = handler.server.registry
    found = [r for r in reg.resources if r.group == group and r.version == version]
    if not found:
        return None
    paths = {}
    for r in found:
        if "patch" not in r.verbs:
            continue
        root = "/api/%s" % version if not group else "/apis/%s/%s" % (group, version)
        item = "%s/namespaces/{namespace}/%s/{name}" % (root, r.plural) if r.namespaced else \
            "%s/%s/{name}" % (root, r.plural)
        types = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
        if not r.crd:
            types.append("application/strategic-merge-patch+json")
        paths[item] = {"patch": {
            "operationId": "patch" + r.kind,
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                           {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                           {"name": "dryRun", "in": "query", "schema": {"type": "string"}}],
            "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in types}, "required": True},
            "responses": {"200": {"description": "OK"}}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": handler.server.git_version},
            "paths": paths, "components": {"schemas": {}}}


def serve(handler, path):
    from objects import status
    from api import ApiError
    if path == "/openapi/v2":
        if "protobuf" in (handler.headers.get("Accept") or ""):
            data = v2_protobuf(handler.server.git_version)
            handler.send_response(200)
            handler.send_header("Content-Type", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return None
        return handler.send_json(200, {"swagger": "2.0", "info": {"title": "Kubernetes",
                                                                  "version": handler.server.git_version},
                                       "paths": {}, "definitions": {}})
    if path == "/openapi/v3":
        return handler.send_json(200, v3_paths(handler))
    if path.startswith("/openapi/v3/"):
        parts = path[len("/openapi/v3/"):].split("/")
        doc = None
        if parts[0] == "api" and len(parts) == 2:
            doc = v3_document(handler, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = v3_document(handler, parts[1], parts[2])
        if doc is not None:
            return handler.send_json(200, doc)
    raise ApiError(status(404, "NotFound", "the server could not find the requested resource"))


