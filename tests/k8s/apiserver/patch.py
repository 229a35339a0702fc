"""The three PATCH bodies the API server takes for JSON objects (API Concepts, "Patch"; "Update API Objects in Place
Using kubectl patch"):

  application/merge-patch+json           RFC 7386 JSON merge patch: objects merge, null deletes, lists are replaced.
  application/json-patch+json            RFC 6902 JSON patch: add, remove, replace, move, copy, test, in order.
  application/strategic-merge-patch+json Kubernetes' strategic merge patch, for built-in kinds only (custom resources
                                         refuse it with 415, as the API server does).

The strategic merge patch here covers what kubectl apply and kubectl patch send for the kinds served: lists of
objects merged by their patch merge key (containers, initContainers, volumes, env, imagePullSecrets and webhooks by
name, container ports by containerPort, service ports by port, volumeMounts by mountPath, conditions by type,
ownerReferences by uid), finalizers merged as a set, every other list replaced; the directives $patch
(replace, delete, merge), $retainKeys, $setElementOrder/FIELD and $deleteFromPrimitiveList/FIELD. It does not read
patch strategies from the OpenAPI schema: the table below is the whole of it.
"""

import copy

NAME_KEYED = {"containers", "initContainers", "ephemeralContainers", "volumes", "imagePullSecrets", "env",
              "resourceClaims", "schedulingGates", "webhooks"}
CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}
OTHER_KEYED = {"volumeMounts": "mountPath", "volumeDevices": "devicePath", "hostAliases": "ip",
               "ownerReferences": "uid", "conditions": "type", "topologySpreadConstraints": "topologyKey"}
PRIMITIVE_SETS = {"finalizers"}


class PatchError(Exception):
    pass


# -- RFC 7386 ---------------------------------------------------------------------------------------------------

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# -- RFC 6902 ---------------------------------------------------------------------------------------------------

def _pointer(path):
    if path == "":
        return []
    if not isinstance(path, str) or not path.startswith("/"):
        raise PatchError("invalid JSON pointer %r" % (path,))
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts, path):
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise PatchError("doc is missing path: %s" % path)
    return cur


def _add(doc, parts, value, path, replace=False):
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError("replace operation does not apply: doc is missing key: %s" % path)
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise PatchError("unable to access invalid index: %s" % path)
    else:
        raise PatchError("doc is missing path: %s" % path)
    return doc


def _remove(doc, parts, path):
    if not parts:
        raise PatchError("unable to remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError("remove operation does not apply: doc is missing path: %s" % path)


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("json patch operation without op: %r" % (op,))
        kind, path = op["op"], op.get("path")
        parts = _pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError("missing value in %s operation for path %s" % (kind, path))
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path)
        elif kind == "replace":
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path, replace=True)
        elif kind == "remove":
            _remove(doc, parts, path)
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from"))
            value = copy.deepcopy(_walk(doc, src, op.get("from")))
            if kind == "move":
                _remove(doc, src, op.get("from"))
            doc = _add(doc, parts, value, path)
        elif kind == "test":
            if _walk(doc, parts, path) != op["value"]:
                raise PatchError("testing value %s failed" % path)
        else:
            raise PatchError("unexpected kind of operation %r" % kind)
    return doc


# -- strategic merge patch --------------------------------------------------------------------------------------

def merge_key(path, kind):
    field = path[-1]
    parent = path[-2] if len(path) > 1 else None
    if field in NAME_KEYED:
        return "name"
    if field == "ports":
        if parent in CONTAINER_LISTS:
            return "containerPort"
        if kind == "Service" and path == ["spec", "ports"]:
            return "port"
        return None
    return OTHER_KEYED.get(field)


def _clean(value):
    """A patch value with its directives removed (for elements the original does not have)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _smp_map(orig, patch, path, kind):
    directive = patch.get("$patch")
    if directive == "replace":
        return _clean(patch)
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchError("unknown patch type: %s in map: %s" % (directive, patch))
    out = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    retain = patch.get("$retainKeys")
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list")
        for k in list(out):
            if k not in retain:
                del out[k]
    orders = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if x not in (v or [])]
            continue
        if k.startswith("$"):
            raise PatchError("unknown directive %s" % k)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            merged = _smp_map(out.get(k), v, path + [k], kind)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list):
            out[k] = _smp_list(out.get(k), v, path + [k], kind)
        else:
            out[k] = v
    for field, order in orders.items():
        if isinstance(out.get(field), list) and isinstance(order, list):
            out[field] = _reorder(out[field], order, merge_key(path + [field], kind))
    return out


def _reorder(items, order, key):
    def ident(x):
        return x.get(key) if key and isinstance(x, dict) else x
    wanted = [ident(o) for o in order]
    first = [i for w in wanted for i in items if ident(i) == w]
    rest = [i for i in items if ident(i) not in wanted]
    return first + rest


def _smp_list(orig, patch, path, kind):
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_clean(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    field = path[-1]
    if field in PRIMITIVE_SETS:
        out = list(orig or [])
        return out + [v for v in patch if v not in out]
    key = merge_key(path, kind)
    if key is None:
        return _clean(patch)
    out = copy.deepcopy(orig) if isinstance(orig, list) else []
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError("%s: a merge list holds only objects" % ".".join(path))
        if key not in item:
            raise PatchError("map: %s does not contain declared merge key: %s" % (item, key))
        at = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if at is not None:
                del out[at]
        elif at is None:
            out.append(_smp_map({}, item, path, kind))
        else:
            out[at] = _smp_map(out[at], item, path, kind)
    return out


def strategic_merge_patch(doc, patch, kind):
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    out = _smp_map(doc, patch, [], kind)
    if out is None:
        raise PatchError("the patch deletes the whole object")
    return out
