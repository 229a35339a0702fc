"""RBAC authorization from the Roles, ClusterRoles and bindings stored in the stand-in (with --authorize).

Follows "Using RBAC Authorization": a request (user, groups, verb, API group, resource[/subresource], namespace,
name) is allowed when a rule of a role bound to the user, one of its groups or its ServiceAccount allows it. A
ClusterRoleBinding's role applies everywhere; a RoleBinding's role (a Role of its namespace, or a ClusterRole) only in
the binding's namespace. "*" matches any verb, group or resource. A rule with resourceNames allows only requests
naming one of them; list and watch name an object through fieldSelector metadata.name=NAME. aggregationRule is not
evaluated. Users in the group system:masters (the --token users without a USER part, "admin") are never checked;
non-resource URLs (discovery, /version, /openapi) are open to every authenticated user, as the default
system:discovery and system:public-info-viewer bindings make them.

A refusal is the API server's 403 Forbidden Status:
    pods is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "pods" in API group "" at the
    cluster scope
"""

import objects

RBAC_GROUP = "rbac.authorization.k8s.io"


def groups_of(user):
    """The groups the API server's authenticators give a user."""
    if user == "admin":
        return ["system:masters", "system:authenticated"]
    if user.startswith("system:serviceaccount:"):
        ns = user.split(":")[2]
        return ["system:serviceaccounts", "system:serviceaccounts:%s" % ns, "system:authenticated"]
    return ["system:authenticated"]


def _subject_matches(subject, user, groups):
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        return user == "system:serviceaccount:%s:%s" % (subject.get("namespace"), name)
    return False


def _rule_allows(rule, verb, group, resource, name, field_name):
    def has(values, want):
        return "*" in (values or []) or want in (values or [])
    if not has(rule.get("verbs"), verb) or not has(rule.get("apiGroups"), group):
        return False
    if not has(rule.get("resources"), resource):
        base, _, sub = resource.partition("/")
        if not (sub and has(rule.get("resources"), base + "/*")):
            return False
    names = rule.get("resourceNames")
    if names:
        named = name or (field_name if verb in ("list", "watch") else None)
        return named in names
    return True


def allowed(store, user, verb, group, resource, namespace, name, field_name):
    groups = groups_of(user)
    if "system:masters" in groups:
        return True
    _rv, crbs = store.list(RBAC_GROUP + "/clusterrolebindings")
    bindings = [(b, None) for b in crbs]
    if namespace:
        _rv, rbs = store.list(RBAC_GROUP + "/rolebindings", namespace)
        bindings += [(b, namespace) for b in rbs]
    for binding, ns in bindings:
        if not any(_subject_matches(s, user, groups) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            role = store.get(RBAC_GROUP + "/clusterroles", "", ref.get("name"))
        elif ref.get("kind") == "Role" and ns:
            role = store.get(RBAC_GROUP + "/roles", ns, ref.get("name"))
        else:
            role = None
        for rule in (role or {}).get("rules") or []:
            if _rule_allows(rule, verb, group, resource, name, field_name):
                return True
    return False


def forbidden(user, verb, res, subresource, namespace, name):
    resource = res.plural + ("/" + subresource if subresource else "")
    where = 'in the namespace "%s"' % namespace if namespace else "at the cluster scope"
    what = '%s "%s"' % (res.group_resource, name) if name else res.group_resource
    details = {"kind": res.plural}
    if name:
        details["name"] = name
    if res.group:
        details["group"] = res.group
    return objects.status(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' %
                          (what, user, verb, resource, res.group, where), details)
