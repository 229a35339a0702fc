"""Label and field selectors, and the Table form of a list (what kubectl's human-readable output asks for).

Label selectors follow "Labels and Selectors" (equality-based =, ==, != and set-based in, notin, exists, !exists,
comma meaning AND). Field selectors follow "Field Selectors": =, == and != on metadata.name and metadata.namespace
for every kind, plus the few per-kind fields the API server supports that ringmesh's tests use; any other field is
refused with the API server's 400 "field label not supported".
"""

import datetime
import re

LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")

FIELDS = {
    "Pod": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"},
    "Secret": {"type"},
    "Namespace": {"status.phase"},
    "Service": {"spec.clusterIP", "spec.type"},
}


class SelectorError(Exception):
    pass


def parse_label_selector(text):
    """Returns a list of (key, op, values) requirements; op is one of = != in notin exists !exists."""
    reqs = []
    text = (text or "").strip()
    i = 0
    while i < len(text):
        m = re.compile(r"\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(==|=|!=|\bnotin\b|\bin\b)?\s*").match(text, i)
        if not m or not m.group(2):
            raise SelectorError("unable to parse requirement: %r" % text[i:])
        neg, key, op = m.group(1), m.group(2), m.group(3)
        if not LABEL_KEY.match(key):
            raise SelectorError("unable to parse requirement: invalid label key %r" % key)
        i = m.end()
        if neg:
            if op:
                raise SelectorError("unable to parse requirement: %r" % text)
            reqs.append((key, "!exists", []))
        elif op is None:
            reqs.append((key, "exists", []))
        elif op in ("in", "notin"):
            m2 = re.compile(r"\(([^)]*)\)\s*").match(text, i)
            if not m2:
                raise SelectorError("unable to parse requirement: found %r, expected: '('" % text[i:i + 1])
            reqs.append((key, op, [v.strip() for v in m2.group(1).split(",") if v.strip()]))
            i = m2.end()
        else:
            m2 = re.compile(r"([A-Za-z0-9_.-]*)\s*").match(text, i)
            reqs.append((key, "=" if op in ("=", "==") else "!=", [m2.group(1)]))
            i = m2.end()
        if i < len(text):
            if text[i] != ",":
                raise SelectorError("unable to parse requirement: found %r, expected: ','" % text[i:])
            i += 1
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, values in reqs:
        have = key in labels
        value = labels.get(key)
        if op == "=" and not (have and value == values[0]):
            return False
        if op == "!=" and have and value == values[0]:
            return False
        if op == "in" and not (have and value in values):
            return False
        if op == "notin" and have and value in values:
            return False
        if op == "exists" and not have:
            return False
        if op == "!exists" and have:
            return False
    return True


def parse_field_selector(text, kind):
    """Returns a list of (path, op, value); raises SelectorError for a field the kind does not support."""
    reqs = []
    for part in [p for p in (text or "").split(",") if p.strip()]:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*", part)
        if not m:
            raise SelectorError("invalid selector: '%s'; can't understand '%s'" % (text, part))
        path, op, value = m.groups()
        if path not in ("metadata.name", "metadata.namespace") and path not in FIELDS.get(kind, ()):
            raise SelectorError('field label not supported: %s' % path)
        reqs.append((path, "!=" if op == "!=" else "=", value))
    return reqs


def field_value(obj, path):
    cur = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


def fields_match(reqs, obj):
    for path, op, value in reqs:
        if (field_value(obj, path) == value) != (op == "="):
            return False
    return True


# -- tables ---------------------------------------------------------------------------------------------------------

def wants_table(accept):
    """True when the Accept header asks for meta.k8s.io Table (kubectl get's human-readable output)."""
    for part in (accept or "").split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in part.split(";")[1:])}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return params["v"]
    return None


def age(timestamp):
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    s = max(0, int((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds()))
    if s < 120:
        return "%ds" % s
    if s < 7200:
        return "%dm" % (s // 60)
    return "%dh" % (s // 3600)


def table(version, objs, include, list_meta=None, columns=True):
    """A meta.k8s.io Table with the API server's default columns (Name, Age) plus a few per kind."""
    defs = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    kind = objs[0].get("kind") if objs else None
    extra = []
    if kind == "Pod":
        extra = [("Status", lambda o: o.get("status", {}).get("phase", "")),
                 ("IP", lambda o: o.get("status", {}).get("podIP", "<none>"))]
    elif kind == "Service":
        extra = [("Type", lambda o: o.get("spec", {}).get("type", "")),
                 ("Cluster-IP", lambda o: o.get("spec", {}).get("clusterIP", ""))]
    for name, _f in extra:
        defs.append({"name": name, "type": "string", "format": "", "description": name, "priority": 0})
    defs.append({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp", "priority": 0})
    rows = []
    for o in objs:
        md = o.get("metadata", {})
        cells = [md.get("name", "")] + [f(o) for _n, f in extra] + [age(md.get("creationTimestamp"))]
        row = {"cells": cells}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md}
        rows.append(row)
    out = {"kind": "Table", "apiVersion": "meta.k8s.io/" + version, "metadata": list_meta or {}, "rows": rows}
    if columns:
        out["columnDefinitions"] = defs
    return out
