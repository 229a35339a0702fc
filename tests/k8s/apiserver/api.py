"""The resource verbs: list, watch, get, create, update, patch, delete and deletecollection on one resource.

A mixin of the request handler (kube_apiserver.Handler): it uses self.send_json, self.send_status, self.query,
self.server.store / registry / allocator. Each verb follows the API Concepts page; see README.md for the list.
"""

import base64
import binascii
import copy
import json
import queue
import socket
import threading
import time

import objects
import patch
import query
import ssa
import validate
from registry import CRD_GR, storage_version
from store import Expired

CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list.")
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json")
APPLY_TYPE = "application/apply-patch+yaml"


def truthy(v):
    return v is not None and v.lower() in ("1", "true", "t", "yes")


def encode_continue(rv, key):
    """An opaque token: the list's resourceVersion (-1: the current state) and the (namespace, name) after which the
    next page starts."""
    doc = {"v": "meta.k8s.io/v1", "rv": rv, "after": list(key)}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        after = doc.get("after")
        if doc.get("v") != "meta.k8s.io/v1" or not isinstance(doc.get("rv"), int) or not isinstance(after, list) \
                or len(after) != 2 or not all(isinstance(a, str) for a in after):
            raise ValueError("unknown version")
        return doc["rv"], tuple(after)
    except (ValueError, binascii.Error, TypeError, AttributeError) as e:
        raise ValueError("continue key is not valid: %s" % e)


class ApiError(Exception):
    def __init__(self, doc):
        super().__init__(doc.get("message"))
        self.doc = doc


class ResourceVerbs:
    # -- helpers --------------------------------------------------------------------------------------------------

    def int_param(self, name, default):
        """A non-negative integer query parameter; 400 naming it when it is not one."""
        text = self.query.get(name)
        if text in (None, ""):
            return default
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise ApiError(objects.bad_request("invalid value for %s: %r is not a non-negative integer" % (name, text)))
        return value

    def served(self, res, obj):
        """The object as served at the request's version (custom resources are stored at one version)."""
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind
        return obj

    def selectors(self, res):
        try:
            labels = query.parse_label_selector(self.query.get("labelSelector"))
            fields = query.parse_field_selector(self.query.get("fieldSelector"), res.kind)
        except query.SelectorError as e:
            raise ApiError(objects.bad_request(str(e)))
        return lambda o: query.labels_match(labels, o.get("metadata", {}).get("labels")) and \
            query.fields_match(fields, o)

    def read_object(self, res, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype not in ("application/json", ""):
            raise ApiError(objects.status(415, "UnsupportedMediaType",
                                          "the body of the request was in an unknown format - accepted media types "
                                          "include: application/json, application/yaml"))
        try:
            obj = json.loads(body)
        except ValueError as e:
            raise ApiError(objects.bad_request("the body of the request could not be decoded: %s" % e))
        if not isinstance(obj, dict):
            raise ApiError(objects.bad_request("the body of the request is not a JSON object"))
        obj = self.check_type(res, obj)
        if res.kind == "Secret" and isinstance(obj.get("data"), dict):
            for k, v in obj["data"].items():
                try:
                    base64.b64decode(v if isinstance(v, str) else "", validate=True)
                except (binascii.Error, ValueError) as e:
                    raise ApiError(objects.bad_request('Secret in version "v1" cannot be handled as a Secret: '
                                                       'data[%s]: illegal base64 data: %s' % (k, e)))
        return obj

    def check_type(self, res, obj):
        if obj.get("apiVersion", res.api_version) != res.api_version:
            raise ApiError(objects.bad_request("the API version in the data (%s) does not match the expected API "
                                               "version (%s)" % (obj.get("apiVersion"), res.api_version)))
        if obj.get("kind", res.kind) != res.kind:
            raise ApiError(objects.bad_request("the kind in the data (%s) does not match the expected kind (%s)" %
                                               (obj.get("kind"), res.kind)))
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        if not isinstance(obj.setdefault("metadata", {}), dict):
            raise ApiError(objects.bad_request("metadata is not an object"))
        return obj

    def place(self, res, obj, namespace):
        md = obj["metadata"]
        if res.namespaced:
            if md.get("namespace", namespace) != namespace:
                raise ApiError(objects.bad_request("the namespace of the provided object does not match the "
                                                   "namespace sent on the request"))
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)

    def validated(self, res, obj):
        """Checks obj; returns it (a custom resource pruned of undeclared fields) or raises 422 / 400."""
        if res.crd:
            strict = self.query.get("fieldValidation") == "Strict"
            causes, out, unknown = validate.check_custom(obj, res.schema, prune=True)
            if unknown and strict:
                raise ApiError(objects.bad_request('.%s: field not declared in schema' % unknown[0]
                                                   if len(unknown) == 1 else "[%s]" % ", ".join(
                                                       '.%s: field not declared in schema' % u for u in unknown)))
            if unknown:
                self.warnings.extend('unknown field "%s"' % u for u in unknown)
        else:
            causes, out = validate.check_builtin(obj, res.kind), obj
        if causes:
            raise ApiError(objects.invalid(res, obj["metadata"].get("name", ""), causes))
        return out

    def require_namespace(self, res, namespace, name=""):
        if not res.namespaced:
            return
        ns = self.server.store.get("/namespaces", "", namespace)
        if ns is None:
            raise ApiError(objects.status(404, "NotFound", 'namespaces "%s" not found' % namespace,
                                          {"name": namespace, "kind": "namespaces"}))
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(objects.status(403, "Forbidden", "%s \"%s\" is forbidden: unable to create new content in "
                                          "namespace %s because it is being terminated" % (
                                              res.group_resource, name, namespace),
                                          {"kind": res.plural, "causes": [{"reason": "NamespaceTerminating",
                                                                           "message": "namespace %s is being "
                                                                           "terminated" % namespace,
                                                                           "field": "metadata.namespace"}]}))

    def after_write(self, res, obj, deleted=False):
        """Side effects of a write: CRDs change what is served; a new namespace gets its default ServiceAccount."""
        store = self.server.store
        if res.gr == CRD_GR:
            if deleted:
                spec = obj.get("spec", {})
                gr = "%s/%s" % (spec.get("group"), spec.get("names", {}).get("plural"))
                for o in store.list(gr)[1]:
                    store.delete(gr, o["metadata"].get("namespace", ""), o["metadata"]["name"])
                store.drop_watchers("close", gr)
            self.server.registry.refresh()
        elif res.kind == "Namespace" and not deleted:
            name = obj["metadata"]["name"]
            if store.get("/serviceaccounts", name, "default") is None:
                sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}
                sa_res = self.server.registry.find("", "v1", "serviceaccounts")
                objects.fill_create(sa_res, sa, self.server.allocator)
                store.put("/serviceaccounts", sa, lambda old: None)
        elif res.kind == "Namespace" and deleted:
            name = obj["metadata"]["name"]
            for r in self.server.registry.resources:
                if r.namespaced:
                    for o in store.list(r.gr, name)[1]:
                        self.delete_one(r, name, o["metadata"]["name"])
        elif res.kind == "Service" and deleted:
            self.server.allocator.release(obj.get("spec", {}).get("clusterIP"))

    # -- read -----------------------------------------------------------------------------------------------------

    def do_list(self, res, namespace):
        match = self.selectors(res)
        store = self.server.store
        limit = self.int_param("limit", 0)
        token = self.query.get("continue")
        start = None
        at = None
        if token:
            try:
                at, start = decode_continue(token)
            except ValueError as e:
                raise ApiError(objects.bad_request(str(e)))
            at = None if at < 0 else at
        else:
            rv_param = self.query.get("resourceVersion")
            if rv_param not in (None, "", "0"):
                try:
                    want = int(rv_param)
                except ValueError:
                    raise ApiError(objects.bad_request("invalid resource version %r" % rv_param))
                if want > store.current_rv():
                    raise ApiError(objects.status(504, "Timeout", "Too large resource version: %d, current: %d" %
                                                  (want, store.current_rv()),
                                                  {"causes": [{"reason": "ResourceVersionTooLarge",
                                                               "message": "Too large resource version"}],
                                                   "retryAfterSeconds": 1}))
                if self.query.get("resourceVersionMatch") == "Exact":
                    at = want
        try:
            rv, items = store.list(res.gr, namespace if res.namespaced else None, at)
        except Expired:
            if not token:
                raise ApiError(objects.status(410, "Expired", "The resourceVersion for the provided list is too old."))
            doc = objects.status(410, "Expired", CONTINUE_TOO_OLD)
            doc["metadata"] = {"continue": encode_continue(-1, start)}
            raise ApiError(doc)
        def after_start(o):
            return start is None or (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start
        items = [o for o in items if after_start(o) and match(o)]
        meta = {"resourceVersion": str(rv)}
        if limit > 0 and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            last = items[-1]["metadata"]
            meta["continue"] = encode_continue(rv, (last.get("namespace", ""), last["name"]))
            if not self.query.get("labelSelector") and not self.query.get("fieldSelector"):
                meta["remainingItemCount"] = rest
        items = [self.served(res, o) for o in items]
        version = query.wants_table(self.headers.get("Accept"))
        if version:
            self.send_json(200, query.table(version, items, self.query.get("includeObject", "Metadata"), meta))
        else:
            self.send_json(200, {"kind": res.kind + "List", "apiVersion": res.api_version, "metadata": meta,
                                 "items": items})

    def do_get(self, res, namespace, name):
        obj = self.server.store.get(res.gr, namespace, name)
        if obj is None:
            raise ApiError(objects.not_found(res, name))
        obj = self.served(res, obj)
        version = query.wants_table(self.headers.get("Accept"))
        if version:
            self.send_json(200, query.table(version, [obj], self.query.get("includeObject", "Metadata"),
                                            {"resourceVersion": obj["metadata"]["resourceVersion"]}))
        else:
            self.send_json(200, obj)

    # -- watch ----------------------------------------------------------------------------------------------------

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_watch(self, res, namespace, name=None):
        """A watch of the collection, or of one object (the deprecated GET .../NAME?watch=1: the collection with a
        metadata.name field selector)."""
        selected = self.selectors(res)

        def match(o):
            return selected(o) and (name is None or o["metadata"].get("name") == name)
        store = self.server.store
        rv_param = self.query.get("resourceVersion")
        bookmarks = truthy(self.query.get("allowWatchBookmarks"))
        initial = truthy(self.query.get("sendInitialEvents"))
        deadline = time.monotonic() + self.int_param("timeoutSeconds", self.server.watch_timeout)
        table_version = query.wants_table(self.headers.get("Accept"))
        since = None
        if rv_param not in (None, "", "0") and not initial:
            try:
                since = int(rv_param)
            except ValueError:
                raise ApiError(objects.bad_request("invalid resource version %r" % rv_param))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            watcher, _ = store.watch(res.gr, since, initial_end=initial and bookmarks)
        except Expired as e:
            self.write_chunk(self.event("ERROR", objects.status(410, "Expired", str(e))))
            self.write_chunk(b"")
            self.close_connection = True
            return
        first_table = True
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    etype, obj, old, rv = watcher.events.get(timeout=min(left, self.server.bookmark_seconds))
                except queue.Empty:
                    if not bookmarks or time.monotonic() >= deadline:
                        continue
                    with store.lock:
                        if not watcher.events.empty():
                            continue
                        etype, obj, old, rv = "BOOKMARK", None, None, store.rv
                if etype == "END":
                    if obj == "abort":
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    break
                if etype in ("BOOKMARK", "BOOKMARK-INITIAL"):
                    if not bookmarks:
                        continue
                    md = {"resourceVersion": str(rv)}
                    if etype == "BOOKMARK-INITIAL":
                        md["annotations"] = {"k8s.io/initial-events-end": "true"}
                    self.write_chunk(self.event("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                                             "metadata": md}))
                    continue
                if res.namespaced and namespace is not None and obj["metadata"].get("namespace") != namespace:
                    continue
                now_in = etype != "DELETED" and match(obj)
                was_in = old is not None and match(old)
                if etype == "DELETED":
                    etype = "DELETED" if was_in else None
                elif now_in:
                    etype = "MODIFIED" if was_in else "ADDED"
                else:
                    etype = "DELETED" if was_in else None
                if etype is None:
                    continue
                out = self.served(res, obj)
                if table_version:
                    out = query.table(table_version, [out], self.query.get("includeObject", "Metadata"),
                                      {"resourceVersion": out["metadata"]["resourceVersion"]}, columns=first_table)
                    first_table = False
                self.write_chunk(self.event(etype, out))
            self.write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            store.unwatch(watcher)

    @staticmethod
    def event(etype, obj):
        return json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n"

    # -- write ----------------------------------------------------------------------------------------------------

    def do_create(self, res, namespace, body):
        if res.kind == "TokenReview":
            return self.tokenreview(body)
        obj = self.read_object(res, body)
        self.place(res, obj, namespace)
        self.create_object(res, namespace, obj)

    def create_object(self, res, namespace, obj):
        self.require_namespace(res, namespace, obj["metadata"].get("name") or "")
        cause = objects.fill_create(res, obj, self.server.allocator)
        allocated = obj.get("spec", {}).get("clusterIP") if res.kind == "Service" and not cause else None
        try:
            obj = self.validated(res, obj)
            if cause:
                raise ApiError(objects.invalid(res, obj["metadata"].get("name", ""), [cause]))
            if res.crd:
                obj["apiVersion"] = "%s/%s" % (res.group, storage_version(self.crd_of(res)) or res.version)
            if self.query.get("dryRun") == "All":
                self.server.allocator.release(allocated)
                return self.send_json(201, self.served(res, obj))

            def check(old):
                if old is not None:
                    raise ApiError(objects.already_exists(res, obj["metadata"]["name"]))
            stored = self.server.store.put(res.gr, obj, check)
        except ApiError:
            self.server.allocator.release(allocated)
            raise
        self.after_write(res, stored)
        self.send_json(201, self.served(res, stored))

    def crd_of(self, res):
        return self.server.store.get(CRD_GR, "", res.crd) or {}

    def write_existing(self, res, namespace, name, subresource, change, reply=True):
        """Update or patch: change(current) gives the new object; stored under the store's lock, so two writers
        never both succeed from the same resourceVersion."""
        store = self.server.store
        with store.lock:
            old = store.get(res.gr, namespace, name)
            if old is None:
                raise ApiError(objects.not_found(res, name))
            old = self.served(res, old)
            new = change(copy.deepcopy(old))
            if not isinstance(new, dict):
                raise ApiError(objects.status(422, "Invalid", "the patch does not leave a JSON object"))
            new = self.check_type(res, new)
            if new["metadata"].get("name") != name:
                raise ApiError(objects.bad_request("the name of the object (%s) does not match the name on the URL "
                                                   "(%s)" % (new["metadata"].get("name"), name)))
            self.place(res, new, namespace)
            want_rv = new["metadata"].get("resourceVersion")
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(objects.conflict(res, name))
            if res.kind in ("RoleBinding", "ClusterRoleBinding") and new.get("roleRef") != old.get("roleRef"):
                raise ApiError(objects.invalid(res, name, [("FieldValueInvalid", "roleRef", "Invalid value: %s: "
                                                            "cannot change roleRef" % validate.go_value(
                                                                new.get("roleRef")))]))
            new = objects.fill_update(res, old, new, subresource)
            new = self.validated(res, new)
            if res.crd:
                new["apiVersion"] = "%s/%s" % (res.group, storage_version(self.crd_of(res)) or res.version)
            if self.query.get("dryRun") == "All":
                if reply:
                    self.send_json(200, self.served(res, new))
                return new
            stored = store.put(res.gr, new, lambda _old: None)
        self.after_write(res, stored)
        if reply:
            self.send_json(200, self.served(res, stored))
        return stored

    @staticmethod
    def scale_of(obj):
        """The autoscaling/v1 Scale of an object with spec.replicas and a label selector."""
        md = obj["metadata"]
        labels = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if k in md},
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
                "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                           "selector": ",".join("%s=%s" % kv for kv in sorted(labels.items()))}}

    def do_scale(self, res, namespace, name, verb, body):
        """GET, PUT and PATCH of .../NAME/scale: an autoscaling/v1 Scale whose spec.replicas is the object's."""
        current = self.server.store.get(res.gr, namespace, name)
        if current is None:
            raise ApiError(objects.not_found(res, name))
        if verb == "get":
            return self.send_json(200, self.scale_of(current))
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise ApiError(objects.bad_request("the body of the request could not be decoded: %s" % e))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            if verb == "update":
                scale = doc
            elif ctype == "application/json-patch+json":
                scale = patch.json_patch(self.scale_of(current), doc)
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                scale = patch.merge_patch(self.scale_of(current), doc)
            else:
                raise ApiError(objects.status(415, "UnsupportedMediaType", "the body of the request was in an "
                                              "unknown format - accepted media types include: %s" %
                                              ", ".join(PATCH_TYPES)))
        except patch.PatchError as e:
            raise ApiError(objects.status(422, "Invalid", str(e)))
        replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(objects.invalid(res, name, [("FieldValueInvalid", "spec.replicas", "Invalid value: %s: "
                                                        "must be greater than or equal to 0" %
                                                        validate.go_value(replicas))]))
        want_rv = (scale.get("metadata") or {}).get("resourceVersion")

        def change(obj):
            obj.setdefault("spec", {})["replicas"] = replicas
            if want_rv:
                obj["metadata"]["resourceVersion"] = want_rv
            return obj
        stored = self.write_existing(res, namespace, name, None, change, reply=False)
        self.send_json(200, self.scale_of(stored))

    def do_update(self, res, namespace, name, subresource, body):
        obj = self.read_object(res, body)
        self.write_existing(res, namespace, name, subresource, lambda old: obj)

    def do_apply(self, res, namespace, name, body):
        manager = self.query.get("fieldManager")
        if not manager:
            raise ApiError(objects.bad_request("PATCH %s: fieldManager is required for apply requests" %
                                               self.route_path))
        try:
            cfg = ssa.parse_body(body)
        except ValueError as e:
            raise ApiError(objects.bad_request("the body of the request could not be decoded: %s" % e))
        if not isinstance(cfg, dict):
            raise ApiError(objects.bad_request("an apply configuration is an object"))
        cfg = self.check_type(res, cfg)
        if cfg["metadata"].get("name") != name:
            raise ApiError(objects.bad_request("the name of the object (%s) does not match the name on the URL "
                                               "(%s)" % (cfg["metadata"].get("name"), name)))
        self.place(res, cfg, namespace)
        force = truthy(self.query.get("force"))
        try:
            if self.server.store.get(res.gr, namespace, name) is None:
                obj = ssa.apply(None, cfg, manager, force, res.kind, res.api_version)
                return self.create_object(res, namespace, obj)
            self.write_existing(res, namespace, name, None,
                                lambda cur: ssa.apply(cur, cfg, manager, force, res.kind, res.api_version))
        except ssa.Conflict as e:
            raise ApiError(ssa.conflict_status(res, name, e.conflicts))

    def do_patch(self, res, namespace, name, subresource, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == APPLY_TYPE and subresource is None:
            return self.do_apply(res, namespace, name, body)
        accepted = (PATCH_TYPES if not res.crd else PATCH_TYPES[:2]) + (APPLY_TYPE,)
        if ctype not in accepted:
            raise ApiError(objects.status(415, "UnsupportedMediaType",
                                          "the body of the request was in an unknown format - accepted media types "
                                          "include: %s" % ", ".join(accepted)))
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise ApiError(objects.bad_request("the body of the request could not be decoded: %s" % e))

        def change(current):
            try:
                if ctype == "application/merge-patch+json":
                    return patch.merge_patch(current, doc)
                if ctype == "application/json-patch+json":
                    return patch.json_patch(current, doc)
                return patch.strategic_merge_patch(current, doc, res.kind)
            except patch.PatchError as e:
                raise ApiError(objects.status(422, "Invalid", str(e)))
        self.write_existing(res, namespace, name, subresource, change)

    def delete_one(self, res, namespace, name, preconditions=None):
        def check(old):
            for field in ("uid", "resourceVersion"):
                want = (preconditions or {}).get(field)
                if want and old["metadata"].get(field) != want:
                    raise ApiError(objects.status(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": '
                                                  "Precondition failed: %s in precondition: %s, %s in object meta: "
                                                  "%s" % (res.group_resource, name, field.upper() if field == "uid"
                                                          else "ResourceVersion", want, field.upper()
                                                          if field == "uid" else "ResourceVersion",
                                                          old["metadata"].get(field)),
                                                  {"name": name, "kind": res.plural}))
        gone = self.server.store.delete(res.gr, namespace, name, check)
        if gone is not None:
            self.after_write(res, gone, deleted=True)
        return gone

    def do_delete(self, res, namespace, name, body):
        options = {}
        if body:
            try:
                options = json.loads(body)
            except ValueError as e:
                raise ApiError(objects.bad_request("the body of the request could not be decoded: %s" % e))
        if not isinstance(options, dict):
            raise ApiError(objects.bad_request("the body of a DELETE is a DeleteOptions object"))
        if self.query.get("dryRun") == "All" or options.get("dryRun") == ["All"]:
            obj = self.server.store.get(res.gr, namespace, name)
            if obj is None:
                raise ApiError(objects.not_found(res, name))
            return self.send_json(200, self.served(res, obj))
        if res.kind == "Namespace":
            return self.send_json(200, self.served(res, self.terminate_namespace(res, name)))
        gone = self.delete_one(res, namespace, name, options.get("preconditions"))
        if gone is None:
            raise ApiError(objects.not_found(res, name))
        self.send_json(200, self.served(res, gone))

    def terminate_namespace(self, res, name):
        """As the namespace lifecycle does: the namespace turns Terminating at once (deletionTimestamp set, new
        content refused), its content and then the namespace itself are deleted --namespace-finalize-seconds
        later, as the namespace controller would."""
        store = self.server.store
        with store.lock:
            ns = store.get(res.gr, "", name)
            if ns is None:
                raise ApiError(objects.not_found(res, name))
            if ns["metadata"].get("deletionTimestamp"):
                return ns
            ns["metadata"]["deletionTimestamp"] = objects.now()
            ns["metadata"]["deletionGracePeriodSeconds"] = 0
            ns["status"] = {"phase": "Terminating"}
            ns = store.put(res.gr, ns, lambda old: None)

        def finalize():
            for r in self.server.registry.resources:
                if r.namespaced:
                    for o in store.list(r.gr, name)[1]:
                        self.delete_one(r, name, o["metadata"]["name"])
            self.delete_one(res, "", name)
        timer = threading.Timer(self.server.namespace_finalize_seconds, finalize)
        timer.daemon = True
        timer.start()
        return ns

    def do_delete_collection(self, res, namespace):
        match = self.selectors(res)
        _rv, items = self.server.store.list(res.gr, namespace if res.namespaced else None)
        try:
            options = json.loads(self.body) if self.body else {}
        except ValueError as e:
            raise ApiError(objects.bad_request("the body of the request could not be decoded: %s" % e))
        if self.query.get("dryRun") == "All" or (isinstance(options, dict) and options.get("dryRun") == ["All"]):
            gone = [o for o in items if match(o)]
        else:
            gone = [self.delete_one(res, o["metadata"].get("namespace", ""), o["metadata"]["name"])
                    for o in items if match(o)]
        self.send_json(200, {"kind": res.kind + "List", "apiVersion": res.api_version,
                             "metadata": {"resourceVersion": str(self.server.store.current_rv())},
                             "items": [self.served(res, o) for o in gone if o is not None]})
