#!/usr/bin/env python3
"""Writes the ringmesh.io CRDs of charts/ringmesh/crds/ (their OpenAPI v3 schemas).

    python3 scripts/gen-crds.py charts/ringmesh/crds

The patterns follow the policy loader (lib/policy_yaml.c, lib/policy_yaml_nodes.c): Istio's string match forms, paths
beginning with '/', ports 1-65535, IP addresses and CIDR blocks, the `when` keys the mesh evaluates, the actions and
mTLS modes. Every pattern is both RE2 (the API server's) and ECMAScript (ajv's, in tests/k8s/test_crds.sh).
tests/k8s/test_crds.sh checks that the files in the chart are this script's output.
"""
import json
import os
import re
import sys

# Istio's string match forms: exact, "x*" prefix, "*x" suffix, "*" presence; no '*' inside, not both ends.
MATCH = r"^(\*|\*[^*]+|[^*]+\*?)$"
# A match form that is a path: begins with '/' (or '*' for a suffix match); Istio's path template operators {*} and
# {**} may appear (where they may stand is the loader's check).
PATH = r"^(\*|\*[^*]+|/([^*{}]|\{\*\*?\})*\*?)$"
# inet_pton's IPv4 (no leading zeros) with an optional prefix of 0-32 (leading zeros allowed, as the loader's number
# reader allows them); IPv6 is left to the loader beyond its characters and a prefix of 0-128.
OCT = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IP = r"^(" + OCT + r"(\." + OCT + r"){3}(/0{0,8}(3[0-2]|[12]?[0-9]))?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(/0{0,7}([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))?)$"
# 1-65535, at most 5 characters (with maxLength), leading zeros allowed as the loader allows them.
PORT = r"^0{0,4}([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
HEADER_CHARS = r"[A-Za-z0-9!#$%&'*+.^_`|~:-]"
# A service account as serviceAccounts names it: "NAMESPACE/NAME" or "NAME", exactly.
SERVICE_ACCOUNT = r"^[^*/]+(/[^*/]+)?$"
WHEN_KEY = (r"^(request\.headers\[" + HEADER_CHARS + r"+\]|source\.ip|remote\.ip|source\.namespace|source\.principal|"
            r"source\.serviceAccount|source\.trustDomain|"
            r"destination\.ip|destination\.port|connection\.sni|"
            r"request\.auth\.(principal|audiences|presenter|claims(\[[^][]+\]){1,16}))$")
def strlist(desc, pattern=MATCH):
    return {"type": "array", "description": desc,
            "items": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": pattern}}
def portlist(desc):
    return {"type": "array", "description": desc,
            "items": {"x-kubernetes-int-or-string": True, "minimum": 1, "maximum": 65535,
                      "maxLength": 5, "pattern": PORT}}
selector = {"type": "object", "description": "The workloads the policy applies to: pods with all these labels. "
            "Absent: every workload of the namespace (of the mesh, in the root namespace).",
            "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 4096}}}}
source = {"type": "object", "minProperties": 1,
          "description": "Who makes the request. Every field present must match; at least one field must be set.",
          "properties": {
              "principals": strlist("Peer identities (SPIFFE IDs, with or without spiffe://): exact, prefix x*, suffix *x, or * for any."),
              "notPrincipals": strlist("Peer identities that must not match."),
              "namespaces": strlist("Peer namespaces (from the SPIFFE ID)."),
              "notNamespaces": strlist("Peer namespaces that must not match."),
              "ipBlocks": strlist("Peer IP addresses or CIDR blocks.", IP),
              "notIpBlocks": strlist("Peer IP addresses or CIDR blocks that must not match.", IP),
              "remoteIpBlocks": strlist("Client IP addresses or CIDR blocks (remote.ip: X-Forwarded-For per the mesh's "
                                        "numTrustedProxies, else the peer's IP).", IP),
              "notRemoteIpBlocks": strlist("Client IP addresses or CIDR blocks that must not match.", IP),
              "serviceAccounts": strlist("Peer service accounts, NAMESPACE/NAME (or NAME in the policy's namespace), "
                                         "in any trust domain of the mesh; exact.", SERVICE_ACCOUNT),
              "notServiceAccounts": strlist("Peer service accounts that must not match.", SERVICE_ACCOUNT),
              "trustDomains": strlist("Peer SPIFFE trust domains: exact, prefix x*, suffix *x, or * for any."),
              "notTrustDomains": strlist("Peer trust domains that must not match."),
              "requestPrincipals": strlist("The request's end-user identity, iss/sub of its validated JWT "
                                           "(RequestAuthentication): exact, prefix x*, suffix *x, or * for any."),
              "notRequestPrincipals": strlist("End-user identities that must not match.")}}
operation = {"type": "object", "minProperties": 1,
             "description": "What is requested. Every field present must match; at least one field must be set.",
             "properties": {
                 "hosts": strlist("Request authority (Host, :authority), port included, case-insensitive."),
                 "notHosts": strlist("Authorities that must not match."),
                 "ports": portlist("Destination ports, 1-65535."),
                 "notPorts": portlist("Destination ports that must not match."),
                 "methods": strlist("HTTP methods (gRPC: POST)."),
                 "notMethods": strlist("HTTP methods that must not match."),
                 "paths": strlist("Request paths (normalized, without the query): begin with / (or * for a suffix match).", PATH),
                 "notPaths": strlist("Paths that must not match.", PATH)}}
wvals = {"type": "array", "items": {"x-kubernetes-int-or-string": True, "minLength": 1, "maxLength": 4096,
                                    "pattern": MATCH}}
condition = {"type": "object", "required": ["key"],
             "description": "A condition on an attribute; it needs values or notValues.",
             "anyOf": [{"required": ["values"]}, {"required": ["notValues"]}],
             "properties": {
                 "key": {"type": "string", "maxLength": 4096, "pattern": WHEN_KEY,
                         "description": "request.headers[NAME], source.ip, remote.ip, source.namespace, source.principal, source.serviceAccount, source.trustDomain, destination.ip, destination.port, connection.sni, request.auth.principal, request.auth.audiences, request.auth.presenter or request.auth.claims[NAME]..."},
                 "values": dict(wvals, description="Values that match."),
                 "notValues": dict(wvals, description="Values that must not match.")}}
rule = {"type": "object", "nullable": True, "description": "A rule matches when one source, one operation and every condition match; {} matches everything.",
        "properties": {
            "from": {"type": "array", "items": {"type": "object", "required": ["source"], "properties": {"source": source}}},
            "to": {"type": "array", "items": {"type": "object", "required": ["operation"], "properties": {"operation": operation}}},
            "when": {"type": "array", "items": condition}}}
authz_spec = {"type": "object",
              "description": "Istio's AuthorizationPolicy language (docs/authorization.md). Not supported, so not accepted: the CUSTOM action and providers, targetRef(s).",
              "properties": {
                  "selector": selector,
                  "action": {"type": "string", "enum": ["ALLOW", "DENY", "AUDIT"],
                             "description": "ALLOW (default), DENY or AUDIT."},
                  "rules": {"type": "array", "items": rule,
                            "description": "An ALLOW policy without rules allows nothing."}}}
mode = {"type": "string", "enum": ["STRICT", "PERMISSIVE", "DISABLE", "UNSET"]}
peer_spec = {"type": "object", "description": "The inbound mTLS mode for the mesh (root namespace, no selector), a namespace (no selector) or a workload (selector).",
             "properties": {
                 "selector": selector,
                 "mtls": {"type": "object", "properties": {"mode": dict(mode, description="STRICT, PERMISSIVE, DISABLE or UNSET (inherit).")}},
                 "portLevelMtls": {"type": "object", "maxProperties": 65535,
                                   "description": "Port number (1-65535) to mode, for a workload selected by labels.",
                                   "additionalProperties": {"type": "object", "properties": {"mode": mode}}}}}
URI = r"^https?://[^/]"
DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
def str_(desc, **kw):
    return dict({"type": "string", "description": desc}, **kw)
jwt_rule = {"type": "object", "required": ["issuer"],
            "description": "One issuer's tokens: where they are looked for, the keys that verify them, what is forwarded. "
                           "Exactly one of jwks and jwksUri.",
            "oneOf": [{"required": ["jwks"]}, {"required": ["jwksUri"]}, {"required": ["jwks_uri"]}],
            "properties": {
                "issuer": str_("The token's iss.", minLength=1),
                "audiences": {"type": "array", "items": {"type": "string", "minLength": 1},
                              "description": "Accepted aud values (any of them); none: any audience."},
                "jwks": str_("The JSON Web Key Set, inline.", minLength=1),
                "jwksUri": str_("Where the control plane fetches the key set (http or https).", pattern=URI),
                "jwks_uri": str_("jwksUri's older spelling.", pattern=URI),
                "fromHeaders": {"type": "array", "description": "Headers the token is read from (default Authorization: Bearer).",
                                "items": {"type": "object", "required": ["name"],
                                          "properties": {"name": str_("Header name.", minLength=1),
                                                         "prefix": str_("Prefix before the token, e.g. \"Bearer \".")}}},
                "fromParams": {"type": "array", "items": {"type": "string", "minLength": 1},
                               "description": "Query parameters the token is read from."},
                "fromCookies": {"type": "array", "items": {"type": "string", "minLength": 1},
                                "description": "Cookies the token is read from."},
                "forwardOriginalToken": {"type": "boolean", "description": "Keep the token in the forwarded request."},
                "outputPayloadToHeader": str_("Header that receives the token's payload (base64url)."),
                "outputClaimToHeaders": {"type": "array", "description": "Claims copied into request headers.",
                                         "items": {"type": "object", "required": ["header", "claim"],
                                                   "properties": {"header": str_("Header name.", minLength=1),
                                                                  "claim": str_("Claim name.", minLength=1)}}},
                "timeout": str_("How long the control plane waits for jwksUri (default 5s).", pattern=DURATION),
                "spaceDelimitedClaims": {"type": "array", "items": {"type": "string", "minLength": 1},
                                         "description": "Claims split on spaces besides scope and permission."}}}
ra_spec = {"type": "object",
           "description": "End-user JWT validation for the selected workloads (Istio's RequestAuthentication). Not supported, so not accepted: targetRef(s).",
           "properties": {
               "selector": selector,
               "jwtRules": {"type": "array", "items": jwt_rule,
                            "description": "A request with a token of one of these issuers must verify; without a token it goes on with no request principal."}}}
NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
def crd(kind, plural, singular, spec, cols, desc):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": plural + ".ringmesh.io",
                         "labels": {"app.kubernetes.io/name": "ringmesh", "app.kubernetes.io/part-of": "ringmesh"}},
            "spec": {"group": "ringmesh.io", "scope": "Namespaced",
                     "names": {"kind": kind, "listKind": kind + "List", "plural": plural, "singular": singular,
                               "categories": ["ringmesh"]},
                     "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                   "additionalPrinterColumns": cols + [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object", "description": desc,
                                       "properties": {
                                           "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                           "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 253, "pattern": NAME}}},
                                           "spec": spec,
                                           "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
def emit(v, ind, out, key=None):
    pad = "  " * ind
    if isinstance(v, dict):
        for k, x in v.items():
            ks = k if re.match(r"^[A-Za-z][A-Za-z0-9_.-]*$", k) else json.dumps(k)
            if isinstance(x, (dict, list)) and x:
                out.append(f"{pad}{ks}:"); emit(x, ind + 1, out)
            else:
                out.append(f"{pad}{ks}: {scalar(x)}")
    elif isinstance(v, list):
        for x in v:
            if isinstance(x, dict) and x:
                sub = []; emit(x, ind + 1, sub)
                sub[0] = pad + "- " + sub[0][len(pad) + 2:]
                out.extend(sub)
            else:
                out.append(f"{pad}- {scalar(x)}")
def scalar(x):
    if isinstance(x, bool): return "true" if x else "false"
    if isinstance(x, int): return str(x)
    if isinstance(x, dict): return "{}"
    if isinstance(x, list): return "[]"
    if re.match(r"^[A-Za-z][A-Za-z0-9 ,()./:_-]*[A-Za-z0-9.)]$", x) and x not in ("true", "false", "null", "yes", "no", "on", "off") and ": " not in x and " #" not in x:
        return x
    return json.dumps(x)
if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
    sys.exit("usage: scripts/gen-crds.py DIR  (DIR: charts/ringmesh/crds)")
for kind, plural, singular, spec, cols, desc, hdr in [
    ("AuthorizationPolicy", "authorizationpolicies", "authorizationpolicy", authz_spec,
     [{"name": "Action", "type": "string", "jsonPath": ".spec.action"}],
     "Who may call the selected workloads (Istio's AuthorizationPolicy language). DENY policies first, then ALLOW; a workload no ALLOW policy selects gets the mesh's defaultAction.",
     "AuthorizationPolicy"),
    ("PeerAuthentication", "peerauthentications", "peerauthentication", peer_spec,
     [{"name": "Mode", "type": "string", "jsonPath": ".spec.mtls.mode"}],
     "The inbound mTLS mode of the selected workloads.", "PeerAuthentication"),
    ("RequestAuthentication", "requestauthentications", "requestauthentication", ra_spec,
     [{"name": "Issuers", "type": "string", "jsonPath": ".spec.jwtRules[*].issuer"}],
     "End-user JWTs: the issuers whose tokens the selected workloads accept, their keys, and where tokens are read.",
     "RequestAuthentication")]:
    out = [f"# ringmesh.io/v1alpha1 {hdr}. The schema refuses what ringmeshctl policy lint and the control plane refuse",
           "# where a schema can say it (tests/k8s/test_crds.sh checks both against the same documents); what it cannot",
           "# say (annotation values, a PeerAuthentication port that is not a number, portLevelMtls without a workload",
           "# selector, a source or operation whose lists are all empty) the control plane refuses when it reads the",
           "# object, logging namespace/name and the reason, and skips it. Unknown fields: kubectl's default strict field",
           "# validation refuses them (the API server would otherwise drop them, as pruning does).",
           "# Helm installs these once and never upgrades or deletes them (its crds/ rule): upgrade them with",
           "# kubectl apply -f charts/ringmesh/crds/."]
    emit(crd(kind, plural, singular, spec, cols, desc), 0, out)
    open(f"{sys.argv[1]}/ringmesh.io_{plural}.yaml", "w").write("\n".join(out) + "\n")
