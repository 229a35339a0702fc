#!/usr/bin/env bash
# The stand-in Kubernetes API server with --authorize: RBAC objects applied with the real kubectl decide what a
# ServiceAccount's token may do, as "Using RBAC Authorization" specifies (ClusterRoleBinding everywhere, RoleBinding
# in its namespace, resourceNames also for list/watch through a metadata.name field selector), and a refusal is the
# API server's 403 as kubectl prints it. So a test of a component can run it with exactly the permissions its
# chart grants and see a request outside them fail.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
# shellcheck source-path=SCRIPTDIR source=apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/apiserver/lib_apiserver.sh"
rm_k8s_require_tools
rm_setup_no_netns
SA=system:serviceaccount:ringmesh-system:ringmesh-control
SA_TOKEN=sa-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
rm_kube_api_start - --authorize --token "$SA_TOKEN=$SA"
D=$RM_TMP/r
mkdir -p "$D"

rm_kube_config "$SA_TOKEN" "$D/sa.kubeconfig"
as_sa() { # kubectl with the ServiceAccount's own kubeconfig
    "$RM_KUBECTL" --kubeconfig "$D/sa.kubeconfig" --cache-dir "$D/cache-sa" --request-timeout 20s "$@"
}
allowed() { # WHAT KUBECTL-ARG...
    local out
    out=$(as_sa "${@:2}" 2>&1) || rm_fail "$1: refused: $out"
    rm_log "ok: allowed: $1"
}
refused() { # WHAT MESSAGE KUBECTL-ARG...
    local out rc=0
    out=$(as_sa "${@:3}" 2>&1) || rc=$?
    [ "$rc" != 0 ] || rm_fail "$1: allowed: $out"
    grep -qF -- "$2" <<<"$out" || rm_fail "$1: want '$2' in: $out"
    rm_log "ok: refused: $1: $out"
}

rm_kube_ctl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: ringmesh-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ringmesh-control}
rules:
- apiGroups: [""]
  resources: [pods, services, namespaces]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [admissionregistration.k8s.io]
  resources: [mutatingwebhookconfigurations]
  resourceNames: [ringmesh-sidecar-injector]
  verbs: [get, list, watch, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ringmesh-control}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ringmesh-control}
subjects: [{kind: ServiceAccount, name: ringmesh-control, namespace: ringmesh-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: ringmesh-ca, namespace: ringmesh-system}
rules:
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [ringmesh-ca]
  verbs: [get, update]
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ringmesh-ca, namespace: ringmesh-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ringmesh-ca}
subjects: [{kind: ServiceAccount, name: ringmesh-control, namespace: ringmesh-system}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: ringmesh-sidecar-injector}
webhooks:
- name: inject.ringmesh.io
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig: {service: {name: ringmesh-control, namespace: ringmesh-system, path: /inject, port: 15017}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: someone-else}
webhooks:
- name: other.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig: {url: "https://198.18.9.9/x"}
YAML
rm_log "ok: the RBAC objects applied with kubectl as the admin"

allowed "list pods in every namespace" get pods -A
allowed "get a namespace" get namespace default
allowed "list endpointslices" get endpointslices -A
allowed "get its own webhook configuration" get mutatingwebhookconfiguration ringmesh-sidecar-injector
allowed "list its own webhook configuration by name" get mutatingwebhookconfigurations \
    --field-selector metadata.name=ringmesh-sidecar-injector
allowed "patch its own webhook configuration's caBundle" patch mutatingwebhookconfiguration ringmesh-sidecar-injector \
    --type json -p '[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"Q0E="}]'
allowed "create the CA Secret in its namespace" create -n ringmesh-system -f - <<'YAML'
apiVersion: v1
kind: Secret
metadata: {name: ringmesh-ca}
type: kubernetes.io/tls
data: {tls.crt: Q0E=, tls.key: S0VZ, ca.crt: Q0E=}
YAML
allowed "get the CA Secret" get secret ringmesh-ca -n ringmesh-system

refused "create a pod" \
    "pods is forbidden: User \"$SA\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\"" \
    create -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec: {containers: [{name: c, image: i}]}
YAML
refused "list secrets" \
    "secrets is forbidden: User \"$SA\" cannot list resource \"secrets\" in API group \"\" at the cluster scope" \
    get secrets -A
refused "get another Secret in its namespace" "secrets \"other\" is forbidden" get secret other -n ringmesh-system
refused "create a Secret in another namespace" "cannot create resource \"secrets\" in API group \"\" in the namespace \"default\"" \
    create -n default -f - <<'YAML'
apiVersion: v1
kind: Secret
metadata: {name: x}
YAML
refused "list every webhook configuration" \
    "cannot list resource \"mutatingwebhookconfigurations\" in API group \"admissionregistration.k8s.io\" at the cluster scope" \
    get mutatingwebhookconfigurations
refused "patch another webhook configuration" \
    "mutatingwebhookconfigurations.admissionregistration.k8s.io \"someone-else\" is forbidden" \
    patch mutatingwebhookconfiguration someone-else --type merge -p '{"metadata":{"labels":{"a":"b"}}}'
refused "delete its own webhook configuration" "cannot delete resource" \
    delete mutatingwebhookconfiguration ringmesh-sidecar-injector
refused "read a pod's status subresource (kubectl patch --subresource reads it first)" "cannot get resource \"pods/status\"" \
    patch pod nothing -n default --subresource status --type merge -p '{"status":{}}'

n=$(jq -s --arg u "$SA" '[.[] | select(.user == $u and .code == 403)] | length' "$RM_KUBE_LOG")
[ "$n" -ge 8 ] || rm_fail "the request log shows $n refusals of $SA"
rm_log "ok: the request log shows the $n refused requests with their user"
rm_kube_api_clean
rm_log PASS
