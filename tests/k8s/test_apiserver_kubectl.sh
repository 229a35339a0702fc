#!/usr/bin/env bash
# The stand-in Kubernetes API server (tests/k8s/apiserver) proven against the real kubectl v1.33: version, get,
# get -o json, get -w seeing changes, apply -f creating then updating a Deployment, a Service and an EndpointSlice
# (kubectl's strategic merge patch), a CRD and then a custom resource (JSON merge patch), Istio's CRDs at two
# versions, patch of each kind, the install guide's label/annotate/rollout restart/scale/wait, apply --server-side
# (removed fields, a conflict between managers, --force-conflicts), server dry runs and diff, delete;
# the API server's refusals as kubectl prints them (422 Invalid for a Pod without containers and the others the
# real API server refuses, 409 AlreadyExists and Conflict, 404 NotFound, 415 for a strategic merge patch of a custom
# resource). Every object kubectl was served, and every object the server held, validates against Kubernetes
# 1.33's schema.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
# shellcheck source-path=SCRIPTDIR source=apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/apiserver/lib_apiserver.sh"
rm_k8s_require_tools
rm_setup_no_netns
rm_kube_api_start - --git-version v1.33.2
D=$RM_TMP/k
mkdir -p "$D/served"
keep() { # NAME: kubectl's JSON output on stdin is kept for the schema check at the end
    cat >"$D/served/$1.json"
}
expect_fail() { # PATTERN KUBECTL-ARG...: kubectl fails and prints PATTERN
    local out rc=0
    out=$(rm_kube_ctl "${@:2}" 2>&1) || rc=$?
    [ "$rc" != 0 ] || rm_fail "kubectl ${*:2} succeeded: $out"
    grep -qF -- "$1" <<<"$out" || rm_fail "kubectl ${*:2}: want '$1' in: $out"
    rm_log "ok: kubectl ${2} refused: $out"
}

# --- discovery and version
ver=$(rm_kube_ctl version -o json | jq -r .serverVersion.gitVersion)
rm_assert_eq "$ver" v1.33.2 "kubectl version reads the server's gitVersion"
rm_kube_ctl api-resources -o name >"$D/resources"
for r in pods services endpointslices.discovery.k8s.io deployments.apps mutatingwebhookconfigurations.admissionregistration.k8s.io \
    customresourcedefinitions.apiextensions.k8s.io tokenreviews.authentication.k8s.io; do
    grep -qx "$r" "$D/resources" || rm_fail "kubectl api-resources lacks $r: $(tr '\n' ' ' <"$D/resources")"
done
rm_log "ok: kubectl api-resources lists the served resources"

# --- apply: create, then update
cat >"$D/app.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop, labels: {app: orders}}
spec:
  replicas: 2
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec:
      containers:
      - name: app
        image: shop/orders:1
        ports: [{containerPort: 8080, name: http}]
        env: [{name: MODE, value: one}]
        readinessProbe: {httpGet: {path: /ready, port: http}}
---
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  selector: {app: orders}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: orders-1, namespace: shop, labels: {kubernetes.io/service-name: orders}}
addressType: IPv4
endpoints: [{addresses: [198.18.1.2], conditions: {ready: true}}]
ports: [{name: http, port: 8080, protocol: TCP}]
YAML
out=$(rm_kube_ctl apply -f "$D/app.yaml")
for want in "namespace/shop created" "deployment.apps/orders created" "service/orders created" \
    "endpointslice.discovery.k8s.io/orders-1 created"; do
    grep -qx "$want" <<<"$out" || rm_fail "apply (create): want '$want' in: $out"
done
rm_log "ok: kubectl apply created a Namespace, a Deployment, a Service and an EndpointSlice"

sed -i 's|shop/orders:1|shop/orders:2|; s|value: one|value: two|; s|\[{containerPort: 8080, name: http}\]|[{containerPort: 8080, name: http}, {containerPort: 9090, name: admin}]|' "$D/app.yaml"
sed -i 's|ports: \[{name: http, port: 80, targetPort: http}\]|ports: [{name: http, port: 80, targetPort: http}, {name: admin, port: 9090}]|' "$D/app.yaml"
out=$(rm_kube_ctl apply -f "$D/app.yaml")
for want in "namespace/shop unchanged" "deployment.apps/orders configured" "service/orders configured" \
    "endpointslice.discovery.k8s.io/orders-1 unchanged"; do
    grep -qx "$want" <<<"$out" || rm_fail "apply (update): want '$want' in: $out"
done
rm_kube_ctl get deploy orders -n shop -o json | tee >(keep deployment) >"$D/deploy.json"
got=$(jq -c '[.spec.template.spec.containers[0].image, .spec.template.spec.containers[0].env,
    [.spec.template.spec.containers[0].ports[].containerPort], .metadata.generation]' "$D/deploy.json")
rm_assert_eq "$got" '["shop/orders:2",[{"name":"MODE","value":"two"}],[8080,9090],2]' \
    "the applied update (image, env merged by name, ports by containerPort, generation)"
got=$(rm_kube_ctl get svc orders -n shop -o json | tee >(keep service) |
    jq -c '[[.spec.ports[] | [.name, .port, .targetPort]], (.spec.clusterIP | test("^10\\.96\\."))]')
rm_assert_eq "$got" '[[["http",80,"http"],["admin",9090,9090]],true]' "the Service update kept its cluster IP"
n=$(jq -s '[.[] | select(.method == "PATCH" and .content_type == "application/strategic-merge-patch+json")] | length' \
    "$RM_KUBE_LOG")
[ "$n" -ge 2 ] || rm_fail "kubectl apply sent $n strategic merge patches, want 2"
rm_log "ok: kubectl apply updated through $n strategic merge patches"

# --- the commands of the install guide: label a namespace, annotate, restart a rollout, scale, wait
rm_assert_eq "$(rm_kube_ctl label namespace shop ringmesh.io/inject=enabled --overwrite)" "namespace/shop labeled" \
    "kubectl label namespace"
rm_assert_eq "$(rm_kube_ctl get ns -l ringmesh.io/inject=enabled -o name)" "namespace/shop" "a label selector in kubectl get"
rm_assert_eq "$(rm_kube_ctl annotate deploy orders -n shop ringmesh.io/inject=true)" "deployment.apps/orders annotated" \
    "kubectl annotate"
rm_assert_eq "$(rm_kube_ctl rollout restart deploy -n shop)" "deployment.apps/orders restarted" "kubectl rollout restart"
got=$(rm_kube_ctl get deploy orders -n shop -o json |
    jq -c '[(.spec.template.metadata.annotations | has("kubectl.kubernetes.io/restartedAt")), .metadata.annotations["ringmesh.io/inject"], .metadata.generation]')
rm_assert_eq "$got" '[true,"true",3]' "the restart annotated the pod template (a new generation)"
rm_assert_eq "$(rm_kube_ctl scale deploy orders -n shop --replicas 3)" "deployment.apps/orders scaled" "kubectl scale"
rm_assert_eq "$(rm_kube_ctl get deploy orders -n shop -o jsonpath='{.spec.replicas}')" 3 "the scale subresource set replicas"
rm_assert_eq "$(rm_kube_ctl wait --for=jsonpath='{.status.phase}'=Active ns/shop --timeout=10s)" \
    "namespace/shop condition met" "kubectl wait (a watch by field selector)"

# --- CRD, then a custom resource
cat >"$D/crd.yaml" <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: authorizationpolicies.ringmesh.io}
spec:
  group: ringmesh.io
  scope: Namespaced
  names: {plural: authorizationpolicies, singular: authorizationpolicy, kind: AuthorizationPolicy, shortNames: [rmap]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            required: [action]
            properties:
              action: {type: string, enum: [ALLOW, DENY]}
              selector:
                type: object
                properties:
                  matchLabels: {type: object, additionalProperties: {type: string}}
              rules: {type: array, items: {type: object, x-kubernetes-preserve-unknown-fields: true}}
YAML
expect_fail 'no matches for kind "AuthorizationPolicy"' apply -f - <<'YAML'
apiVersion: ringmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: early, namespace: shop}
spec: {action: ALLOW}
YAML
rm_assert_eq "$(rm_kube_ctl apply -f "$D/crd.yaml")" \
    "customresourcedefinition.apiextensions.k8s.io/authorizationpolicies.ringmesh.io created" "kubectl apply of the CRD"
cat >"$D/policy.yaml" <<'YAML'
apiVersion: ringmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: orders-allow, namespace: shop}
spec:
  action: ALLOW
  selector: {matchLabels: {app: orders}}
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/frontend]}}]}]
YAML
rm_assert_eq "$(rm_kube_ctl apply -f "$D/policy.yaml")" "authorizationpolicy.ringmesh.io/orders-allow created" \
    "kubectl apply of a custom resource once its CRD exists"
sed -i 's/action: ALLOW/action: DENY/' "$D/policy.yaml"
rm_assert_eq "$(rm_kube_ctl apply -f "$D/policy.yaml")" "authorizationpolicy.ringmesh.io/orders-allow configured" \
    "kubectl apply updating the custom resource"
got=$(rm_kube_ctl get rmap orders-allow -n shop -o json | tee >(keep policy) | jq -c '[.spec.action, .metadata.generation]')
rm_assert_eq "$got" '["DENY",2]' "the custom resource after the update (by its short name)"
n=$(jq -s '[.[] | select(.method == "PATCH" and (.path | startswith("/apis/ringmesh.io/")))][0].content_type' "$RM_KUBE_LOG")
rm_assert_eq "$n" '"application/merge-patch+json"' "kubectl patched the custom resource with a JSON merge patch"
expect_fail 'the body of the request was in an unknown format' patch rmap orders-allow -n shop --type strategic \
    -p '{"spec":{"action":"ALLOW"}}'
rm_kube_ctl patch rmap orders-allow -n shop --type json -p '[{"op":"replace","path":"/spec/action","value":"ALLOW"}]' >/dev/null
rm_assert_eq "$(rm_kube_ctl get rmap orders-allow -n shop -o jsonpath='{.spec.action}')" ALLOW "a JSON patch of the custom resource"

# Istio's security CRDs (v1 stored, v1beta1 served): a policy applied at v1beta1 is read at both versions
out=$(rm_kube_ctl apply -f "$RM_SOURCE_DIR/tests/data/k8s/istio-security-crds.yaml")
grep -q 'peerauthentications.security.istio.io created' <<<"$out" || rm_fail "applying Istio's CRDs: $out"
rm_kube_ctl apply -f - >/dev/null <<'YAML'
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: STRICT}}
YAML
got=$(rm_kube_ctl get peerauthentications.v1.security.istio.io default -n shop -o json | tee >(keep istio-pa) |
    jq -c '[.apiVersion, .spec.mtls.mode]')
rm_assert_eq "$got" '["security.istio.io/v1","STRICT"]' "an Istio PeerAuthentication applied at v1beta1, read at v1"
got=$(rm_kube_ctl get peerauthentications.v1beta1.security.istio.io -n shop -o jsonpath='{.items[0].apiVersion}')
rm_assert_eq "$got" "security.istio.io/v1beta1" "and at v1beta1"

# --- refusals as the API server words them
expect_fail 'The Pod "empty" is invalid: spec.containers: Required value' create -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: empty, namespace: shop}
spec: {}
YAML
expect_fail 'spec.containers[0].image: Required value' create -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: noimage, namespace: shop}
spec: {containers: [{name: app}]}
YAML
expect_fail 'The Service "noports" is invalid: spec.ports: Required value' create -f - <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: noports, namespace: shop}
spec: {selector: {app: x}}
YAML
expect_fail 'The EndpointSlice "bad" is invalid: addressType: Required value' create -f - <<'YAML'
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bad, namespace: shop}
endpoints: [{addresses: [198.18.1.2]}]
YAML
expect_fail 'The AuthorizationPolicy "noaction" is invalid: spec.action: Required value' create -f - <<'YAML'
apiVersion: ringmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: noaction, namespace: shop}
spec: {selector: {matchLabels: {app: orders}}}
YAML
expect_fail 'spec.action: Unsupported value: "AUDIT": supported values: "ALLOW", "DENY"' create -f - <<'YAML'
apiVersion: ringmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: shop}
spec: {action: AUDIT}
YAML
expect_fail '.spec.bogus: field not declared in schema' create -f - <<'YAML'
apiVersion: ringmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: bogus, namespace: shop}
spec: {action: DENY, bogus: 1}
YAML
expect_fail 'Error from server (AlreadyExists): error when creating "STDIN": services "orders" already exists' \
    create -f - <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec: {ports: [{port: 80}]}
YAML
rm_kube_ctl get svc orders -n shop -o json | jq '.metadata.resourceVersion = "1" | .spec.ports[0].port = 81' \
    >"$D/stale.json"
expect_fail 'Operation cannot be fulfilled on services "orders": the object has been modified' replace -f "$D/stale.json"
expect_fail 'Error from server (NotFound): error when creating "STDIN": namespaces "nowhere" not found' create -f - <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: nowhere}
data: {a: b}
YAML

# --- get -w sees changes made by another client
rm_bg watch - "$D/watch.out" timeout 60 "$RM_KUBECTL" --kubeconfig "$RM_KUBECONFIG" --cache-dir "$D/cache-w" \
    get pods -n shop -w --output-watch-events
rm_bg watchj - "$D/watch.json" timeout 60 "$RM_KUBECTL" --kubeconfig "$RM_KUBECONFIG" --cache-dir "$D/cache-j" \
    get pods -n shop -w -o json
for _ in $(seq 200); do
    [ "$(rm_kube_api GET /_test/watches | jq '[.watches[] | select(. == "/pods")] | length')" = 2 ] && break
    sleep 0.1
done
[ "$(rm_kube_api GET /_test/watches | jq '[.watches[] | select(. == "/pods")] | length')" = 2 ] ||
    rm_fail "kubectl get -w did not open its watches: $(cat "$D/watch.out"* "$D/watch.json"*)"
rm_kube_ctl create -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: shop/web:1}]}
YAML
rm_kube_ctl label pod web -n shop tier=front >/dev/null
rm_kube_ctl delete pod web -n shop --wait=false >/dev/null
for _ in $(seq 100); do
    grep -q DELETED "$D/watch.out" && [ "$(jq -s 'length' "$D/watch.json" 2>/dev/null || echo 0)" -ge 3 ] && break
    sleep 0.1
done
rm_stop watch
rm_stop watchj
got=$(awk '$2 == "web" {print $1}' "$D/watch.out" | tr '\n' ' ')
rm_assert_eq "$got" "ADDED MODIFIED DELETED " "kubectl get -w printed the pod's events"
jq -s '{apiVersion: "v1", kind: "List", items: .}' "$D/watch.json" | keep watched-pods
got=$(jq -s -c '[.[] | [.metadata.name, (.metadata.labels.tier // "-")]]' "$D/watch.json")
rm_assert_eq "$got" '[["web","-"],["web","front"],["web","front"]]' "kubectl get -w -o json printed the pod three times"

# --- server-side apply: fields a manager stops applying go, another manager's change conflicts until forced
cat >"$D/ssa.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web, stage: beta}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: shop/web:1, env: [{name: ONE, value: "1"}, {name: TWO, value: "2"}]}
      - {name: helper, image: shop/helper:1}
YAML
rm_assert_eq "$(rm_kube_ctl apply --server-side -f "$D/ssa.yaml")" "deployment.apps/web serverside-applied"     "kubectl apply --server-side creates"
sed -i 's/, stage: beta//; s/, {name: TWO, value: "2"}//; /name: helper/d; s|shop/web:1|shop/web:2|' "$D/ssa.yaml"
rm_kube_ctl apply --server-side -f "$D/ssa.yaml" >/dev/null
got=$(rm_kube_ctl get deploy web -n shop -o json | jq -c '[.metadata.labels, [.spec.template.spec.containers[] | [.name, .image, .env]]]')
rm_assert_eq "$got" '[{"app":"web"},[["app","shop/web:2",[{"name":"ONE","value":"1"}]]]]'     "fields no longer applied are removed (a label, an env entry, a container)"
cat >"$D/ssa-other.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: shop/web:3}]
YAML
expect_fail 'Apply failed with 1 conflict: conflict with "kubectl": .spec.template.spec.containers[name="app"].image'     apply --server-side --field-manager rollout -f "$D/ssa-other.yaml"
rm_kube_ctl apply --server-side --field-manager rollout --force-conflicts -f "$D/ssa-other.yaml" >/dev/null
got=$(rm_kube_ctl get deploy web -n shop -o json --show-managed-fields |
    jq -c '[.spec.replicas, .spec.template.spec.containers[0].image, [.metadata.managedFields[] | [.manager, .operation]]]')
rm_assert_eq "$got" '[3,"shop/web:3",[["kubectl","Apply"],["rollout","Apply"]]]'     "--force-conflicts takes the field; both managers are recorded in managedFields"
rm_kube_ctl get deploy web -n shop -o json --show-managed-fields | keep ssa-deployment

rm_kube_api GET /_test/objects -f >"$D/served/held-before-delete.json"

# --- server-side dry runs leave the objects alone; kubectl diff asks for one
out=$(rm_kube_ctl delete svc orders -n shop --dry-run=server)
rm_assert_eq "$out" 'service "orders" deleted (server dry run)' "kubectl delete --dry-run=server"
rm_kube_ctl get svc orders -n shop -o name >/dev/null || rm_fail "a server dry run deleted the Service"
sed 's|shop/orders:2|shop/orders:3|' "$D/app.yaml" >"$D/app-next.yaml"
rc=0
out=$(rm_kube_ctl diff -f "$D/app-next.yaml") || rc=$?
rm_assert_eq "$rc" 1 "kubectl diff finds a difference"
grep -q '^+ *image: shop/orders:3' <<<"$out" || rm_fail "kubectl diff: $out"
rm_assert_eq "$(rm_kube_ctl get deploy orders -n shop -o jsonpath='{.spec.template.spec.containers[0].image}')" \
    shop/orders:2 "kubectl diff changed nothing"

# --- get, get -o json, delete
rm_kube_ctl get all -n shop >"$D/all.txt"
if ! grep -q '^deployment.apps/orders' "$D/all.txt" || ! grep -q '^service/orders' "$D/all.txt"; then
    rm_fail "kubectl get all: $(cat "$D/all.txt")"
fi
rm_kube_ctl get ns,sa,endpointslices,crd,authorizationpolicies -A -o json | keep lists
out=$(rm_kube_ctl delete -f "$D/policy.yaml" -f "$D/app.yaml" 2>&1)
grep -q 'deployment.apps "orders" deleted' <<<"$out" || rm_fail "kubectl delete -f: $out"
expect_fail 'Error from server (NotFound): deployments.apps "orders" not found' get deploy orders -n default
expect_fail 'Error from server (NotFound): namespaces "shop" not found' get deploy orders -n shop
rm_kube_ctl delete crd authorizationpolicies.ringmesh.io >/dev/null
expect_fail 'the server could not find the requested resource' get authorizationpolicies -A
rm_log "ok: kubectl delete removed the objects, and the CRD's resource with it"

# --- every object served and held is valid
rm_kube_api GET /_test/objects -f >"$D/served/held.json"
out=$(rm_k8s_validate --allow-kind ringmesh.io/v1alpha1/AuthorizationPolicy \
    --allow-kind security.istio.io/v1/PeerAuthentication --allow-kind security.istio.io/v1beta1/PeerAuthentication \
    "$D"/served/*.json) ||
    rm_fail "an object the stand-in served is not valid: $(grep -v '^ok' <<<"$out")"
rm_log "ok: $(grep -c '^ok ' <<<"$out") served objects validate against Kubernetes 1.33's schema"
rm_kube_api_clean
rm_log PASS
