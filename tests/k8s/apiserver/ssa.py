"""Server-side apply (PATCH with application/apply-patch+yaml), simplified, after "Server-Side Apply" in the
Kubernetes documentation.

What it does:
- fieldManager is required (400 otherwise); the body is the manager's whole intent for the object (JSON, or YAML
  when python3-yaml is importable), with apiVersion, kind and the name of the URL.
- An object that does not exist is created from the configuration.
- Otherwise the fields of the configuration are merged into the object: maps field by field, lists of the kinds in
  patch.py's merge-key table item by item (an associative list), finalizers as a set, every other list as a whole
  (atomic). Fields this manager applied last time and no longer applies are removed, unless another apply manager
  also owns them.
- Each apply manager's fields are recorded in metadata.managedFields (operation Apply, fieldsType FieldsV1, the
  documented "f:NAME", "k:{KEY}" and "." encoding). A field another apply manager owns with a different value is a
  409 Conflict naming the manager and field, unless force=true, which moves the field to this manager.

Simplified: only Apply operations record ownership (create, update and the other patches do not add "Update"
entries, so they never conflict with an apply); the merge-key table stands in for the OpenAPI schema's list types
(x-kubernetes-list-type of custom resources is not read: their lists are atomic).
"""

import copy
import json

import objects
from patch import PRIMITIVE_SETS, merge_key

META_FIELDS = ("name", "namespace", "labels", "annotations", "finalizers", "ownerReferences")


class Conflict(Exception):
    def __init__(self, conflicts):
        super().__init__("conflict")
        self.conflicts = conflicts


def _names(path):
    return [p for p in path if isinstance(p, str)]


def field_set(value, kind, path=()):
    """The set of field paths value sets: tuples of names and ("k", key, value) list-item selectors."""
    out = set()
    if isinstance(value, dict):
        if not value and path:
            out.add(path)
        for k, v in value.items():
            if not path and k in ("apiVersion", "kind", "status"):
                continue
            if path == ("metadata",) and k not in META_FIELDS:
                continue
            out |= field_set(v, kind, path + (k,))
        return out
    if isinstance(value, list) and path:
        key = merge_key(_names(path), kind)
        if key and all(isinstance(i, dict) and key in i for i in value):
            for item in value:
                p = path + (("k", key, item[key]),)
                out.add(p)
                out |= field_set(item, kind, p)
            return out
        if path[-1] in PRIMITIVE_SETS:
            return {path + (("v", v),) for v in value}
    out.add(path)
    return out


def encode(fields):
    """The FieldsV1 form of a field set."""
    root = {}
    for path in sorted(fields, key=lambda p: [json.dumps(x) for x in p]):
        node = root
        for part in path:
            if isinstance(part, str):
                name = "f:" + part
            elif part[0] == "k":
                name = "k:" + json.dumps({part[1]: part[2]}, separators=(",", ":"))
            else:
                name = "v:" + json.dumps(part[1])
            node = node.setdefault(name, {})
        if path and isinstance(path[-1], tuple) and path[-1][0] == "k":
            node.setdefault(".", {})
    return root


def decode(node, path=()):
    out = set()
    for name, sub in (node or {}).items():
        if name == ".":
            out.add(path)
            continue
        if name.startswith("f:"):
            part = name[2:]
        elif name.startswith("k:"):
            key, value = next(iter(json.loads(name[2:]).items()))
            part = ("k", key, value)
        elif name.startswith("v:"):
            part = ("v", json.loads(name[2:]))
        else:
            continue
        if sub:
            out |= decode(sub, path + (part,))
        else:
            out.add(path + (part,))
    return out


def _get(obj, path):
    cur = obj
    for part in path:
        if isinstance(part, str):
            if not isinstance(cur, dict) or part not in cur:
                return None, False
            cur = cur[part]
        elif part[0] == "k":
            found = [i for i in cur or [] if isinstance(i, dict) and i.get(part[1]) == part[2]] \
                if isinstance(cur, list) else []
            if not found:
                return None, False
            cur = found[0]
        else:
            return part[1], isinstance(cur, list) and part[1] in cur
    return cur, True


def _remove(obj, path):
    parent, ok = _get(obj, path[:-1])
    if not ok:
        return
    last = path[-1]
    if isinstance(last, str) and isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list):
        if last[0] == "k":
            parent[:] = [i for i in parent if not (isinstance(i, dict) and i.get(last[1]) == last[2])]
        else:
            parent[:] = [i for i in parent if i != last[1]]


def _merge(current, applied, kind, path=()):
    if isinstance(applied, dict):
        out = copy.deepcopy(current) if isinstance(current, dict) else {}
        for k, v in applied.items():
            out[k] = _merge(out.get(k), v, kind, path + (k,))
        return out
    if isinstance(applied, list) and path:
        key = merge_key(_names(path), kind)
        if key and isinstance(current, list) and all(isinstance(i, dict) and key in i for i in applied):
            out = copy.deepcopy(current)
            for item in applied:
                at = next((n for n, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item[key]), None)
                if at is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[at] = _merge(out[at], item, kind, path)
            return out
        if path[-1] in PRIMITIVE_SETS and isinstance(current, list):
            return current + [v for v in applied if v not in current]
    return copy.deepcopy(applied)


def apply(current, applied, manager, force, kind, api_version):
    """The object after manager applies `applied` to `current` (None: create). Raises Conflict."""
    new_fields = field_set(applied, kind)
    entries = [e for e in ((current or {}).get("metadata", {}).get("managedFields") or [])]
    mine = next((e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"), None)
    others = [e for e in entries if e is not mine and e.get("operation") == "Apply"]
    other_fields = {id(e): decode(e.get("fieldsV1")) for e in others}
    if current is None:
        result = copy.deepcopy(applied)
    else:
        conflicts = []
        for e in others:
            for path in sorted(new_fields & other_fields[id(e)], key=str):
                have, present = _get(current, path)
                want, _ = _get(applied, path)
                if present and have != want and not isinstance(want, (dict, list)):
                    conflicts.append((e.get("manager"), path))
        if conflicts and not force:
            raise Conflict(conflicts)
        if force:
            for e in others:
                other_fields[id(e)] -= new_fields
        result = copy.deepcopy(current)
        owned_elsewhere = set().union(*other_fields.values()) if other_fields else set()
        for path in sorted(decode((mine or {}).get("fieldsV1")) - new_fields, key=len):  # items before their fields
            if path not in owned_elsewhere:
                _remove(result, path)
        result = _merge(result, {k: v for k, v in applied.items() if k != "status"}, kind)
    md = result.setdefault("metadata", {})
    kept = []
    for e in others:
        if other_fields[id(e)]:
            kept.append(dict(e, fieldsV1=encode(other_fields[id(e)])))
    kept.append({"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": objects.now(),
                 "fieldsType": "FieldsV1", "fieldsV1": encode(new_fields)})
    md["managedFields"] = kept
    return result


def conflict_status(res, name, conflicts):
    def field(path):
        out = ""
        for p in path:
            if isinstance(p, str):
                out += "." + p
            elif p[0] == "k":
                out += "[%s=%s]" % (p[1], json.dumps(p[2]))
            else:
                out += "[%s]" % json.dumps(p[1])
        return out
    lines = ['conflict with "%s": %s' % (m, field(p)) for m, p in conflicts]
    msg = "Apply failed with %d conflict%s: %s" % (len(lines), "" if len(lines) == 1 else "s", "\n".join(lines))
    doc = objects.status(409, "Conflict", msg, {"name": name, "kind": res.plural, "causes": [
        {"reason": "FieldManagerConflict", "message": 'conflict with "%s"' % m, "field": field(p)}
        for m, p in conflicts]})
    if res.group:
        doc["details"]["group"] = res.group
    return doc


def parse_body(body):
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        import yaml  # python3-yaml, when it is installed
    except ImportError:
        raise ValueError("the body is not JSON, and YAML needs python3-yaml")
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as e:
        raise ValueError("the body is neither JSON nor YAML: %s" % e)
