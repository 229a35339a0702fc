"""What the stand-in refuses with 422 Invalid, the defaults it fills in, and custom resources checked against their CRD.

Each check follows the API server's validation for that field (k8s.io/kubernetes pkg/apis/*/validation as the API
reference states its rules) and words its cause the same way ("spec.containers: Required value",
"spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"). Only the rules listed here are
checked; the README lists them.

Custom resources: the version's openAPIV3Schema (type, properties, required, items, enum, minimum, maximum,
minLength, maxLength, pattern, minItems, maxItems, additionalProperties, nullable,
x-kubernetes-preserve-unknown-fields). Fields the schema does not declare are pruned, or refused with 400 when the
request says fieldValidation=Strict, as the API server does ("Field validation" in the API Concepts page).
"""

import ipaddress
import json
import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                 "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
                 "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_NAMES = {"Namespace", "Service"}  # names that must be DNS-1123 labels, not subdomains


def go_value(v):
    """A value as the API server prints it in "Invalid value: ..." (Go's %#v for the common cases)."""
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


class Errors:
    def __init__(self):
        self.causes = []

    def required(self, field, detail=""):
        self.causes.append(("FieldValueRequired", field, "Required value" + (": " + detail if detail else "")))

    def invalid(self, field, value, detail):
        self.causes.append(("FieldValueInvalid", field, "Invalid value: %s: %s" % (go_value(value), detail)))

    def unsupported(self, field, value, allowed):
        self.causes.append(("FieldValueNotSupported", field, "Unsupported value: %s: supported values: %s" % (
            go_value(value), ", ".join(json.dumps(a) for a in allowed))))

    def duplicate(self, field, value):
        self.causes.append(("FieldValueDuplicate", field, "Duplicate value: %s" % go_value(value)))

    def type_invalid(self, field, value, want):
        self.causes.append(("FieldValueTypeInvalid", field, "Invalid value: %s: %s" % (go_value(value), want)))


def port_ok(errs, field, value, allow_zero=False):
    if not isinstance(value, int) or isinstance(value, bool) or not (0 if allow_zero else 1) <= value <= 65535:
        errs.invalid(field, value, "must be between %d and 65535, inclusive" % (0 if allow_zero else 1))


# -- built-in kinds -------------------------------------------------------------------------------------------------

def check_metadata(errs, obj, kind):
    md = obj.get("metadata") or {}
    name = md.get("name")
    if not name:
        errs.required("metadata.name", "name or generateName is required")
    elif not isinstance(name, str):
        errs.type_invalid("metadata.name", name, "must be a string")
    elif kind in LABEL_NAMES:
        if not DNS1123_LABEL.match(name) or len(name) > 63:
            errs.invalid("metadata.name", name, LABEL_MSG)
    elif kind != "CustomResourceDefinition" and (not DNS1123_SUBDOMAIN.match(name) or len(name) > 253):
        errs.invalid("metadata.name", name, SUBDOMAIN_MSG)
    for field in ("labels", "annotations"):
        m = md.get(field)
        if m is not None and (not isinstance(m, dict) or not all(isinstance(v, str) for v in m.values())):
            errs.type_invalid("metadata." + field, m, "must be a map of strings")


def check_containers(errs, containers, field, names, init=False):
    if not isinstance(containers, list):
        errs.type_invalid(field, containers, "must be a list of containers")
        return
    for i, c in enumerate(containers):
        at = "%s[%d]" % (field, i)
        if not isinstance(c, dict):
            errs.type_invalid(at, c, "must be an object")
            continue
        name = c.get("name")
        if not name:
            errs.required(at + ".name")
        elif not DNS1123_LABEL.match(name):
            errs.invalid(at + ".name", name, LABEL_MSG)
        elif name in names:
            errs.duplicate(at + ".name", name)
        else:
            names.add(name)
        if not c.get("image"):
            errs.required(at + ".image")
        for j, p in enumerate(c.get("ports") or []):
            port_ok(errs, "%s.ports[%d].containerPort" % (at, j), p.get("containerPort"))
            if p.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
                errs.unsupported("%s.ports[%d].protocol" % (at, j), p.get("protocol"), ["SCTP", "TCP", "UDP"])
        if "restartPolicy" in c:
            if not init:
                errs.invalid(at + ".restartPolicy", c["restartPolicy"], "may not be set for non-init containers")
            elif c["restartPolicy"] != "Always":
                errs.unsupported(at + ".restartPolicy", c["restartPolicy"], ["Always"])


def check_pod_spec(errs, spec, field):
    if not isinstance(spec, dict):
        errs.required(field)
        return
    names = set()
    if not spec.get("containers"):
        errs.required(field + ".containers")
    else:
        check_containers(errs, spec["containers"], field + ".containers", names)
    if spec.get("initContainers"):
        check_containers(errs, spec["initContainers"], field + ".initContainers", names, init=True)
    if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
        errs.unsupported(field + ".restartPolicy", spec["restartPolicy"], ["Always", "Never", "OnFailure"])
    vols = set()
    for i, v in enumerate(spec.get("volumes") or []):
        if not v.get("name"):
            errs.required("%s.volumes[%d].name" % (field, i))
        elif v["name"] in vols:
            errs.duplicate("%s.volumes[%d].name" % (field, i), v["name"])
        vols.add(v.get("name"))


CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def check_data_keys(errs, obj):
    for field in ("data", "binaryData", "stringData"):
        m = obj.get(field)
        if m is None:
            continue
        if not isinstance(m, dict) or not all(isinstance(v, str) for v in m.values()):
            errs.type_invalid(field, m, "must be a map of strings")
            continue
        for k in m:
            if not CONFIG_KEY.match(k) or len(k) > 253:
                errs.invalid("%s[%s]" % (field, k), k, "a valid config key must consist of alphanumeric characters, "
                             "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                             "validation is '[-._a-zA-Z0-9]+')")


def check_service(errs, obj):
    spec = obj.get("spec") or {}
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errs.unsupported("spec.type", stype, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])
    ports = spec.get("ports") or []
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        errs.required("spec.ports")
    names = set()
    for i, p in enumerate(ports):
        at = "spec.ports[%d]" % i
        if len(ports) > 1 and not p.get("name"):
            errs.required(at + ".name")
        elif p.get("name") in names:
            errs.duplicate(at + ".name", p["name"])
        names.add(p.get("name"))
        port_ok(errs, at + ".port", p.get("port"))
        if p.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
            errs.unsupported(at + ".protocol", p.get("protocol"), ["SCTP", "TCP", "UDP"])
        tp = p.get("targetPort")
        if isinstance(tp, int):
            port_ok(errs, at + ".targetPort", tp)
    ip = spec.get("clusterIP")
    if ip not in (None, "", "None"):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            errs.invalid("spec.clusterIP", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")


def check_endpointslice(errs, obj):
    at = obj.get("addressType")
    if not at:
        errs.required("addressType")
    elif at not in ("IPv4", "IPv6", "FQDN"):
        errs.unsupported("addressType", at, ["FQDN", "IPv4", "IPv6"])
    for i, ep in enumerate(obj.get("endpoints") or []):
        if at not in ("IPv4", "IPv6", "FQDN"):
            break  # addresses are checked against the address type
        addrs = ep.get("addresses")
        if not addrs:
            errs.required("endpoints[%d].addresses" % i, "must contain at least 1 address")
            continue
        for j, a in enumerate(addrs):
            try:
                ok = at == "FQDN" or ipaddress.ip_address(a).version == (4 if at == "IPv4" else 6)
            except ValueError:
                ok = False
            if not ok:
                errs.invalid("endpoints[%d].addresses[%d]" % (i, j), a, "must be a valid %s address" % at)
    for i, p in enumerate(obj.get("ports") or []):
        if p.get("port") is not None:
            port_ok(errs, "ports[%d].port" % i, p["port"], allow_zero=True)


def check_deployment(errs, obj):
    spec = obj.get("spec") or {}
    sel = spec.get("selector")
    if not sel:
        errs.required("spec.selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if sel and isinstance(sel, dict):
        wanted = sel.get("matchLabels") or {}
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            errs.invalid("spec.selector", sel, "empty selector is invalid for deployment")
        elif any(labels.get(k) != v for k, v in wanted.items()):
            errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    check_pod_spec(errs, template.get("spec"), "spec.template.spec")
    if spec.get("replicas", 0) < 0:
        errs.invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0")


def check_webhooks(errs, obj):
    names = set()
    for i, w in enumerate(obj.get("webhooks") or []):
        at = "webhooks[%d]" % i
        name = w.get("name")
        if not name:
            errs.required(at + ".name")
        elif name.count(".") < 2:
            errs.invalid(at + ".name", name, "should be a domain with at least three segments separated by dots")
        elif name in names:
            errs.duplicate(at + ".name", name)
        names.add(name)
        if w.get("sideEffects") not in ("None", "NoneOnDryRun"):
            if w.get("sideEffects") is None:
                errs.required(at + ".sideEffects")
            else:
                errs.unsupported(at + ".sideEffects", w["sideEffects"], ["None", "NoneOnDryRun"])
        if not w.get("admissionReviewVersions"):
            errs.required(at + ".admissionReviewVersions")
        cc = w.get("clientConfig") or {}
        if ("url" in cc) == ("service" in cc):
            errs.required(at + ".clientConfig", "exactly one of url or service is required")
        if w.get("failurePolicy", "Fail") not in ("Fail", "Ignore"):
            errs.unsupported(at + ".failurePolicy", w["failurePolicy"], ["Fail", "Ignore"])


def check_crd(errs, obj):
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    if not group:
        errs.required("spec.group")
    elif group.count(".") < 1:
        errs.invalid("spec.group", group, "should be a domain with at least one dot")
    for f in ("plural", "kind"):
        if not names.get(f):
            errs.required("spec.names." + f)
    if names.get("plural") and group and obj["metadata"].get("name") != "%s.%s" % (names["plural"], group):
        errs.invalid("metadata.name", obj["metadata"].get("name"), 'must be spec.names.plural+"."+spec.group')
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errs.unsupported("spec.scope", spec.get("scope"), ["Cluster", "Namespaced"])
    versions = spec.get("versions") or []
    if not versions:
        errs.required("spec.versions", "must have exactly one version marked as storage version")
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errs.invalid("spec.versions", versions, "must have exactly one version marked as storage version")
    for i, v in enumerate(versions):
        if not v.get("name"):
            errs.required("spec.versions[%d].name" % i)
        if "served" not in v:
            errs.required("spec.versions[%d].served" % i)


def check_binding(errs, obj):
    ref = obj.get("roleRef") or {}
    if not ref:
        errs.required("roleRef")
        return
    allowed = ["ClusterRole"] if obj.get("kind") == "ClusterRoleBinding" else ["ClusterRole", "Role"]
    if ref.get("kind") not in allowed:
        errs.unsupported("roleRef.kind", ref.get("kind"), allowed)
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        errs.unsupported("roleRef.apiGroup", ref.get("apiGroup"), ["rbac.authorization.k8s.io"])
    if not ref.get("name"):
        errs.required("roleRef.name")
    for i, s in enumerate(obj.get("subjects") or []):
        if s.get("kind") not in ("User", "Group", "ServiceAccount"):
            errs.unsupported("subjects[%d].kind" % i, s.get("kind"), ["Group", "ServiceAccount", "User"])
        if not s.get("name"):
            errs.required("subjects[%d].name" % i)


def check_rules(errs, obj):
    for i, r in enumerate(obj.get("rules") or []):
        if not r.get("verbs"):
            errs.required("rules[%d].verbs" % i, "verbs must contain at least one value")


CHECKS = {"Service": check_service, "EndpointSlice": check_endpointslice, "Deployment": check_deployment,
          "MutatingWebhookConfiguration": check_webhooks, "CustomResourceDefinition": check_crd,
          "RoleBinding": check_binding, "ClusterRoleBinding": check_binding, "Role": check_rules,
          "ClusterRole": check_rules, "ConfigMap": check_data_keys, "Secret": check_data_keys,
          "Pod": lambda errs, obj: check_pod_spec(errs, obj.get("spec"), "spec")}


def check_builtin(obj, kind):
    errs = Errors()
    check_metadata(errs, obj, kind)
    if kind in CHECKS:
        CHECKS[kind](errs, obj)
    return errs.causes


# -- custom resources -----------------------------------------------------------------------------------------------

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_ok(value, t):
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES.get(t, object))


def check_schema(errs, unknown, value, schema, path, prune):
    """Checks value against a structural schema; returns the value with undeclared fields pruned (when prune) and
    their paths added to unknown."""
    if not isinstance(schema, dict):
        return value
    field = path or "<root>"
    if value is None:
        if not schema.get("nullable"):
            errs.type_invalid(field, value, 'must be of type %s' % schema.get("type", "object"))
        return value
    t = schema.get("type")
    if t and not _type_ok(value, t):
        errs.type_invalid(field, value, "must be of type %s" % t)
        return value
    if "enum" in schema and value not in schema["enum"]:
        errs.unsupported(field, value, schema["enum"])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.invalid(field, value, "should be greater than or equal to %s" % schema["minimum"])
        if "maximum" in schema and value > schema["maximum"]:
            errs.invalid(field, value, "should be less than or equal to %s" % schema["maximum"])
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errs.invalid(field, value, "should be at least %d chars long" % schema["minLength"])
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errs.causes.append(("FieldValueTooLong", field, "Too long: may not be more than %d bytes" %
                                schema["maxLength"]))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.invalid(field, value, "should match '%s'" % schema["pattern"])
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.invalid(field, len(value), "should have at least %d items" % schema["minItems"])
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.causes.append(("FieldValueTooMany", field, "Too many: %d: must have at most %d items" %
                                (len(value), schema["maxItems"])))
        return [check_schema(errs, unknown, v, schema.get("items"), "%s[%d]" % (path, i), prune)
                for i, v in enumerate(value)]
    if isinstance(value, dict):
        for r in schema.get("required") or []:
            if r not in value:
                errs.required((path + "." if path else "") + r)
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") or addl is True
        out = {}
        for k, v in value.items():
            sub = (path + "." if path else "") + k
            if props is not None and k in props:
                out[k] = check_schema(errs, unknown, v, props[k], sub, prune)
            elif isinstance(addl, dict):
                out[k] = check_schema(errs, unknown, v, addl, sub, prune)
            elif keep_unknown:
                out[k] = v
            else:
                unknown.append(sub)
                if not prune:
                    out[k] = v
        return out
    return value


def check_custom(obj, schema, prune=True):
    """(causes, pruned object, undeclared field paths) for a custom resource."""
    errs = Errors()
    check_metadata(errs, obj, "custom")
    unknown = []
    if not schema:
        return errs.causes, obj, unknown
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    props = dict(schema.get("properties") or {})
    for k in ("apiVersion", "kind", "metadata"):
        props.pop(k, None)
    top = dict(schema, properties=props)
    top["required"] = [r for r in schema.get("required") or [] if r not in ("apiVersion", "kind", "metadata")]
    checked = check_schema(errs, unknown, body, top, "", prune)
    out = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    out.update(checked if isinstance(checked, dict) else {})
    return errs.causes, out, unknown
