#!/usr/bin/env bash
# The Kubernetes 1.33 schema validator the chart, webhook and stand-in API server tests rely on accepts a valid
# object and refuses the mistakes those tests must catch: a wrong type, a missing required field, a value outside
# an enumeration, YAML that does not parse, and a kind it has no schema for (unless named with --allow-kind).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
rm_k8s_require_tools

dir=$(mktemp -d /tmp/ringmesh-k8s-validator.XXXXXX)
trap 'rm -rf "$dir"' EXIT

cat >"$dir/good.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec:
      initContainers:
      - {name: proxy, image: ringmesh/proxy, restartPolicy: Always}
      containers:
      - name: app
        image: shop/orders
        ports: [{containerPort: 8080, protocol: TCP}]
        readinessProbe: {httpGet: {path: /ready, port: 8080}}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: orders}, spec: {ports: [{port: 8080}]}}
YAML
out=$(rm_k8s_validate "$dir/good.yaml") || rm_fail "a valid Deployment and List were refused: $out"
[ "$(grep -c '^ok ' <<<"$out")" = 3 ] || rm_fail "want 3 objects checked (the List and its item too): $out"
rm_log "ok: a valid Deployment with a native sidecar, and a List item by item"

expect_bad() { # NAME PATTERN: the document on stdin is refused with PATTERN in the message
    cat >"$dir/$1.yaml"
    local rc=0
    out=$(rm_k8s_validate "$dir/$1.yaml") || rc=$?
    rm_assert_eq "$rc" 1 "$1 is refused"
    grep -q -- "$2" <<<"$out" || rm_fail "$1: the message lacks '$2': $out"
    rm_log "ok: $1 refused ($2)"
}
expect_bad wrong-type 'must be integer' <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: app, image: i, ports: [{containerPort: "8080"}]}]}
YAML
expect_bad missing-required 'missingProperty' <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{image: i}]}
YAML
expect_bad not-in-enum 'must be equal to one of the allowed values' <<'YAML'
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: w}
webhooks:
- name: inject.ringmesh.io
  admissionReviewVersions: [v1]
  sideEffects: Sometimes
  clientConfig: {service: {name: c, namespace: n}}
YAML
expect_bad yaml-error 'YAML' <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: [p
YAML
expect_bad unknown-kind 'no Kubernetes 1.33 schema for ringmesh.io/v1alpha1/AuthorizationPolicy' <<'YAML'
apiVersion: ringmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: p}
YAML
out=$(rm_k8s_validate --allow-kind ringmesh.io/v1alpha1/AuthorizationPolicy "$dir/unknown-kind.yaml") ||
    rm_fail "--allow-kind did not let the custom kind through: $out"
rm_log PASS
