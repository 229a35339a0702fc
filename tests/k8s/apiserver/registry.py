"""Which resources the stand-in serves, and the discovery documents that describe them.

Built-in resources are a fixed table (the kinds ringmesh reads or writes, with the names, short names, scope and
verbs of the Kubernetes 1.33 API reference). Custom resources come from the CustomResourceDefinitions in the store:
a CRD's group, names, scope and served versions make a resource that exists exactly as long as the CRD does, as
the apiextensions API server does.

Discovery (API Concepts, "Discovery API"; the unaggregated documents): /api (APIVersions), /apis (APIGroupList),
/api/v1 and /apis/GROUP/VERSION (APIResourceList). The aggregated form (apidiscovery.k8s.io/v2) is not served: a
client asking for it with a fallback to application/json gets the unaggregated form, as from an API server that
does not aggregate.
"""

import copy
import threading

VERBS_ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class Resource:
    """One served resource (one group/version/resource)."""

    def __init__(self, group, version, plural, kind, namespaced, short=(), singular=None, verbs=None,
                 status=False, crd=None, schema=None, categories=(), scale=False):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.short = list(short)
        self.singular = singular or kind.lower()
        self.verbs = list(verbs or VERBS_ALL)
        self.status = status  # has a status subresource: writes to the main resource keep the stored status
        self.crd = crd  # the CRD's name for a custom resource
        self.schema = schema  # the version's openAPIV3Schema (custom resources)
        self.categories = list(categories)
        self.scale = scale  # has a scale subresource (autoscaling/v1 Scale of spec.replicas)

    @property
    def gr(self):
        """The storage key: objects of every version of a group-resource are stored together."""
        return "%s/%s" % (self.group, self.plural)

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def group_kind(self):
        """How the API server names the kind in messages: "Pod", "Deployment.apps"."""
        return "%s.%s" % (self.kind, self.group) if self.group else self.kind

    @property
    def group_resource(self):
        """How the API server names the resource in messages: "pods", "deployments.apps"."""
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural

    def discovery(self):
        out = [{"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced, "kind": self.kind,
                "verbs": self.verbs}]
        if self.short:
            out[0]["shortNames"] = self.short
        if self.categories:
            out[0]["categories"] = self.categories
        if self.status:
            out.append({"name": self.plural + "/status", "singularName": "", "namespaced": self.namespaced,
                        "kind": self.kind, "verbs": ["get", "patch", "update"]})
        if self.scale:
            out.append({"name": self.plural + "/scale", "singularName": "", "namespaced": self.namespaced,
                        "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})
        return out


BUILTIN = [
    Resource("", "v1", "namespaces", "Namespace", False, ["ns"], status=True),
    Resource("", "v1", "pods", "Pod", True, ["po"], status=True, categories=["all"]),
    Resource("", "v1", "services", "Service", True, ["svc"], status=True, categories=["all"]),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    Resource("apps", "v1", "deployments", "Deployment", True, ["deploy"], status=True, categories=["all"],
             scale=True),
    Resource("", "v1", "events", "Event", True, ["ev"]),
    Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration",
             False),
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
             ["crd", "crds"], status=True),
    Resource("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, verbs=["create"]),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
]

CRD_GR = "apiextensions.k8s.io/customresourcedefinitions"


def resources_of_crd(crd):
    """The resources one CRD serves: one per served version."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    out = []
    for v in spec.get("versions", []):
        if not v.get("served", False):
            continue
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        out.append(Resource(spec["group"], v["name"], names["plural"], names["kind"], spec.get("scope") == "Namespaced",
                            names.get("shortNames", ()), names.get("singular") or names["kind"].lower(),
                            status="status" in (v.get("subresources") or {}), crd=crd["metadata"]["name"],
                            schema=schema, categories=names.get("categories", ())))
    return out


def storage_version(crd):
    for v in crd.get("spec", {}).get("versions", []):
        if v.get("storage"):
            return v["name"]
    return None


class Registry:
    """The served resources; rebuilt from the store's CRDs after every CRD write."""

    def __init__(self, store):
        self.store = store
        self.lock = threading.Lock()
        self.resources = list(BUILTIN)

    def refresh(self):
        _rv, crds = self.store.list(CRD_GR)
        found = list(BUILTIN)
        for crd in crds:
            found.extend(resources_of_crd(crd))
        with self.lock:
            self.resources = found

    def find(self, group, version, plural):
        with self.lock:
            for r in self.resources:
                if r.group == group and r.version == version and r.plural == plural:
                    return r
        return None

    def find_kind(self, api_version, kind):
        group, _, version = api_version.rpartition("/")
        with self.lock:
            for r in self.resources:
                if r.group == group and r.version == version and r.kind == kind:
                    return r
        return None

    def groups(self):
        """{group: [versions in order]} of every served resource but the core group."""
        out = {}
        with self.lock:
            for r in self.resources:
                if r.group and r.version not in out.setdefault(r.group, []):
                    out[r.group].append(r.version)
        return out

    def group_versions(self):
        with self.lock:
            return sorted({(r.group, r.version) for r in self.resources})

    # -- discovery documents ------------------------------------------------------------------------------------

    def api_versions(self, server_address):
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}

    def api_group_list(self):
        groups = []
        for name, versions in sorted(self.groups().items()):
            versions = sorted(versions, key=version_priority)
            gvs = [{"groupVersion": "%s/%s" % (name, v), "version": v} for v in versions]
            groups.append({"name": name, "versions": gvs, "preferredVersion": copy.deepcopy(gvs[0])})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group, version):
        with self.lock:
            rs = [r for r in self.resources if r.group == group and r.version == version]
        if not rs:
            return None
        out = []
        for r in rs:
            out.extend(r.discovery())
        gv = "%s/%s" % (group, version) if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def version_priority(v):
    """Kubernetes' version order: GA before beta before alpha, higher numbers first (v1 > v1beta2 > v1beta1)."""
    import re
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, v)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0))
