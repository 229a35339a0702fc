"""Status objects worded as the API server words them, and what the API server fills in on create and update.

Status (API Concepts, "Responses"; metav1.Status in the API reference): kind Status, status Failure, a message, a
reason (NotFound, AlreadyExists, Conflict, Invalid, BadRequest, MethodNotAllowed, Expired, ...), details naming the
object, and the HTTP code.

Create: metadata.uid (a random UUID), creationTimestamp (RFC 3339, seconds, UTC), generation 1 and a name from
generateName. Update: uid and creationTimestamp kept; generation increased when anything but metadata and status
changed; for resources with a status subresource, a write to the main resource keeps the stored status and a write
to /status changes only the status (as the API server's "status" strategies do). Per kind, the defaults a client
relies on: Pod status.phase Pending and spec restartPolicy/dnsPolicy/serviceAccountName; Service type ClusterIP, a
cluster IP allocated from --service-cidr, each port's protocol TCP and targetPort; Namespace status.phase Active;
CRD status conditions Established and NamesAccepted with acceptedNames; Deployment replicas 1.
"""

import copy
import datetime
import ipaddress
import random
import string
import uuid


def status(code, reason, message, details=None):
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


def not_found(res, name):
    return status(404, "NotFound", '%s "%s" not found' % (res.group_resource, name),
                  {"name": name, "group": res.group, "kind": res.plural} if res.group else
                  {"name": name, "kind": res.plural})


def already_exists(res, name):
    d = {"name": name, "kind": res.plural}
    if res.group:
        d["group"] = res.group
    return status(409, "AlreadyExists", '%s "%s" already exists' % (res.group_resource, name), d)


def conflict(res, name):
    d = {"name": name, "kind": res.plural}
    if res.group:
        d["group"] = res.group
    return status(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; please '
                  'apply your changes to the latest version and try again' % (res.group_resource, name), d)


def invalid(res, name, causes):
    listed = ["%s: %s" % (f, m) if f else m for _r, f, m in causes]
    text = listed[0] if len(listed) == 1 else "[%s]" % ", ".join(listed)
    d = {"name": name, "kind": res.kind, "causes": [{"reason": r, "message": m, "field": f} for r, f, m in causes]}
    if res.group:
        d["group"] = res.group
    return status(422, "Invalid", '%s "%s" is invalid: %s' % (res.group_kind, name, text), d)


def bad_request(message):
    return status(400, "BadRequest", message)


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Allocator:
    """Cluster IPs for Services, from a CIDR; an explicit spec.clusterIP is honoured when free."""

    def __init__(self, cidr):
        self.net = ipaddress.ip_network(cidr)
        self.used = set()

    def take(self, ip=None):
        if ip:
            if ip in self.used:
                return None
            self.used.add(ip)
            return ip
        for host in self.net.hosts():
            text = str(host)
            if text not in self.used and host != next(self.net.hosts()):
                self.used.add(text)
                return text
        return None

    def release(self, ip):
        self.used.discard(ip)


def fill_create(res, obj, allocator):
    """Fills what the API server fills on create. Returns a (reason, field, message) cause or None."""
    md = obj.setdefault("metadata", {})
    if not md.get("name") and md.get("generateName"):
        md["name"] = md["generateName"] + "".join(random.choice(string.ascii_lowercase + string.digits)
                                                  for _ in range(5))
    for field in ("resourceVersion", "deletionTimestamp", "selfLink"):
        md.pop(field, None)
    md["uid"] = str(uuid.uuid4())
    md["creationTimestamp"] = now()
    if "spec" in obj or res.crd or res.kind in ("MutatingWebhookConfiguration", "EndpointSlice"):
        md["generation"] = 1
    kind = res.kind
    if kind == "Namespace":
        obj["status"] = {"phase": "Active"}
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md.get("name", "")
    elif kind == "Pod":
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        obj["status"] = {"phase": "Pending"}
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            if "targetPort" not in p and "port" in p:
                p["targetPort"] = p["port"]
        if spec["type"] != "ExternalName" and spec.get("clusterIP") != "None":
            want = spec.get("clusterIP") or None
            ip = allocator.take(want)
            if ip is None:
                return ("FieldValueInvalid", "spec.clusterIP",
                        "Invalid value: \"%s\": failed to allocate IP %s: provided IP is already allocated" % (
                            want, want) if want else "Invalid value: \"\": range is full")
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
            spec.setdefault("ipFamilies", ["IPv6" if ":" in ip else "IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        obj["status"] = {"loadBalancer": {}}
    elif kind == "Deployment":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        obj["status"] = {}
    elif kind == "CustomResourceDefinition":
        names = copy.deepcopy(obj.get("spec", {}).get("names", {}))
        names.setdefault("singular", names.get("kind", "").lower())
        names.setdefault("listKind", names.get("kind", "") + "List")
        t = now()
        obj["status"] = {"acceptedNames": names, "storedVersions": [
            v["name"] for v in obj.get("spec", {}).get("versions", []) if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t, "reason": "NoConflicts",
                 "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": t, "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted"}]}
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
    return None


def fill_update(res, old, new, subresource):
    """Carries over what an update keeps; returns the object to store."""
    md = new.setdefault("metadata", {})
    omd = old["metadata"]
    for field in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
        if field in omd:
            md[field] = omd[field]
        else:
            md.pop(field, None)
    if subresource == "status":
        out = copy.deepcopy(old)
        out["status"] = new.get("status")
        out["metadata"]["resourceVersion"] = md.get("resourceVersion")
        return out
    if res.status and "status" in old:
        new["status"] = copy.deepcopy(old["status"])
    elif res.status:
        new.pop("status", None)
    if res.kind == "Service":
        spec, ospec = new.setdefault("spec", {}), old.get("spec", {})
        for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if f in ospec and not spec.get(f):
                spec[f] = ospec[f]
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            if "targetPort" not in p and "port" in p:
                p["targetPort"] = p["port"]
    if "generation" in omd:
        def body(o):
            return {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}
        if body(old) != body(new):
            md["generation"] = omd["generation"] + 1
    return new
