#!/usr/bin/env bash
# The sidecar injector with --source kubernetes: what it needs to know about the cluster comes from the API (the
# stand-in API server, tests/k8s/apiserver), not from flags.
#   - a namespace labelled ringmesh.io/inject=enabled with the real kubectl gets its pods injected; unlabelling it
#     stops injection promptly (the namespace informer's cache, no API call per review); a pod's opt-out
#     (annotation "false") and opt-in (annotation "true" in an unlabelled namespace) work;
#   - a namespace created a moment ago, before its watch event arrived, is read with one GET;
#   - the API server's /version decides nativeSidecar auto: gitVersion v1.33.2 gives the native sidecar, v1.28.5 the
#     classic one, an unreadable /version the classic one (logged once, asked again until it answers);
#     InjectorConfig nativeSidecar true and the pod's ringmesh.io/native-sidecar annotation override it;
#   - an API failure or outage while a namespace must be fetched fails that review with a reason (the API server
#     then applies failurePolicy), within the lookup's bound, and never crashes the control plane; namespaces in the
#     cache are still answered;
#   - --namespace-labels-file and --kube-version are refused with --source kubernetes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
# shellcheck source-path=SCRIPTDIR source=apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/apiserver/lib_apiserver.sh"
rm_k8s_require_tools
rm_require_cmds curl python3 jq openssl
rm_setup_no_netns
rm_control_init

W=$RM_TMP/webhook
mkdir -p "$W"
HOST=ringmesh-control.ringmesh-system.svc
declare -A WPORT
APP_LABELS='{"app": "orders"}'

# control_start NAME [FLAG]...: a control plane with the Kubernetes source and the webhook; waits for it to serve
control_start() {
    local name=$1
    shift
    mkdir -p "$RM_TMP/control/state-$name"
    rm_bg "control-$name" - "$RM_TMP/logs/control-$name.log" "$RM_CONTROL_BIN" --source kubernetes \
        --kubeconfig "${CONTROL_KUBECONFIG:-$RM_KUBECONFIG}" --mesh-config "$RM_TMP/control/mesh/mesh.yaml" --kube-timeout 5s \
        --listen 127.0.0.1:0 --admin-listen off --state-dir "$RM_TMP/control/state-$name" \
        --jwks "$RM_TMP/control/jwks.json" --webhook-listen 127.0.0.1:0 --log-level debug "$@"
    rm_wait_log "$RM_TMP/logs/control-$name.log" '.event == "webhook_started"' 60 >/dev/null || {
        cat "$RM_TMP/logs/control-$name.log" "$RM_TMP/logs/control-$name.log.stderr" >&2 || true
        rm_fail "ringmesh-control $name did not start"
    }
    WPORT[$name]=$(jq -r 'select(.event == "webhook_started") | .port' "$RM_TMP/logs/control-$name.log")
}

# ns_create NAME: a Namespace created with kubectl apply (the stand-in refuses kubectl create's protobuf bodies)
ns_create() {
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n' "$1" | rm_kube_ctl apply -f - >/dev/null
}

# outcome INSTANCE NAMESPACE ANNOTATIONS_JSON [LABELS_JSON]: reviews a Deployment-shaped pod as the API server would
# and prints what came of it: "native" or "classic" (injected; where the proxy is), "skipped", or "refused: MESSAGE"
outcome() {
    local inst=$1 ns=$2 ann=$3 labels=${4:-$APP_LABELS} f
    f=$W/review-$RANDOM$RANDOM
    jq -n --arg ns "$ns" --arg uid "uid-$RANDOM-$RANDOM" --argjson ann "$ann" --argjson labels "$labels" '{
        apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
        request: {uid: $uid, kind: {group: "", version: "v1", kind: "Pod"}, resource: {group: "", version: "v1",
        resource: "pods"}, namespace: $ns, operation: "CREATE",
        userInfo: {username: "system:serviceaccount:kube-system:replicaset-controller"},
        object: {apiVersion: "v1", kind: "Pod", metadata: {generateName: "orders-7d4f9c-", namespace: $ns,
            labels: $labels, annotations: $ann},
          spec: {serviceAccountName: "orders", containers: [{name: "app", image: "registry.example/orders:1",
            ports: [{containerPort: 8080}],
            readinessProbe: {httpGet: {path: "/ready", port: 8080}, periodSeconds: 5}}]}}}}' >"$f.json"
    curl -sS --max-time 20 --cacert "$RM_TMP/control/state-$inst/trust-bundle.pem" \
        --resolve "$HOST:${WPORT[$inst]}:127.0.0.1" -H 'Content-Type: application/json' --data-binary "@$f.json" \
        -o "$f.answer" "https://$HOST:${WPORT[$inst]}/inject" >/dev/null || rm_fail "the webhook $inst did not answer"
    python3 - "$f.json" "$f.answer" <<'PY'
import base64, json, sys
import jsonpatch
review = json.load(open(sys.argv[1]))
resp = json.load(open(sys.argv[2]))["response"]
assert resp["uid"] == review["request"]["uid"], resp
if not resp["allowed"]:
    print("refused: " + resp["status"]["message"])
elif "patch" not in resp:
    print("skipped")
else:
    pod = jsonpatch.JsonPatch(json.loads(base64.b64decode(resp["patch"]))).apply(review["request"]["object"])
    spec = pod["spec"]
    native = [c for c in spec.get("initContainers", []) if c["name"] == "ringmesh-proxy" and
              c.get("restartPolicy") == "Always"]
    classic = [c for c in spec["containers"] if c["name"] == "ringmesh-proxy"]
    print("native" if native and not classic else "classic" if classic and not native else "both?")
PY
}

# expect INSTANCE NAMESPACE ANNOTATIONS WANT WHAT [LABELS]
expect() {
    local got
    got=$(outcome "$1" "$2" "$3" "${6:-$APP_LABELS}")
    [ "$got" = "$4" ] || rm_fail "$5: wanted $4, got: $got"
    rm_log "ok: $5: $got"
}

# ---- the flags that stand in for the API are refused with the Kubernetes source ------------------------------
for flag in "--namespace-labels-file $W/labels.yaml" "--kube-version 1.33"; do
    # shellcheck disable=SC2086 # the flag and its value, split on purpose
    if out=$("$RM_CONTROL_BIN" --source kubernetes --jwks "$RM_TMP/control/jwks.json" $flag 2>&1); then
        rm_fail "$flag was accepted with --source kubernetes"
    fi
    [[ $out == *"apply to --source file only"* ]] || rm_fail "$flag: the refusal does not say why: $out"
done
rm_log "ok: --namespace-labels-file and --kube-version are refused with --source kubernetes, saying why"

# ---- Kubernetes 1.28: the classic sidecar, unless InjectorConfig or the pod says otherwise -------------------
rm_kube_api_start - --git-version v1.28.5+k3s1
ns_create shop
rm_kube_ctl label namespace shop ringmesh.io/inject=enabled >/dev/null
control_start old
rm_expect_log "$RM_TMP/logs/control-old.log" \
    '.event == "kube_version" and .version == "1.28" and .gitVersion == "v1.28.5+k3s1" and .nativeSidecarAuto == "classic"' \
    "the version is read from /version"
expect old shop '{}' classic "v1.28.5+k3s1, nativeSidecar auto"
expect old shop '{"ringmesh.io/native-sidecar": "true"}' native "v1.28.5+k3s1, the pod's annotation"
cat >"$W/injector-native.yaml" <<'EOF'
apiVersion: ringmesh.io/v1alpha1
kind: InjectorConfig
metadata: {name: native}
spec: {nativeSidecar: "true"}
EOF
control_start forced --injector-config "$W/injector-native.yaml"
expect forced shop '{}' native "v1.28.5+k3s1, InjectorConfig nativeSidecar true"
expect forced shop '{"ringmesh.io/native-sidecar": "false"}' classic "InjectorConfig true, the pod's annotation false"
rm_stop control-forced

rm_stop control-old
rm_stop kube-api
rm -rf "$RM_TMP/kube"

# ---- Kubernetes 1.33: native; namespaces through kubectl ---------------------------------------------------------
# this control plane runs with the chart's permissions only (RBAC enforced): namespaces get/list/watch, /version
# open to every authenticated user
SA_TOKEN=sa-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
rm_kube_api_start - --git-version v1.33.2 --authorize \
    --token "$SA_TOKEN=system:serviceaccount:ringmesh-system:ringmesh-control"
CONTROL_KUBECONFIG=$RM_TMP/sa.kubeconfig
rm_kube_config "$SA_TOKEN" "$CONTROL_KUBECONFIG"
rm_kube_ctl apply -f - >/dev/null <<'EOF'
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
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ringmesh-control}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ringmesh-control}
subjects:
- {kind: ServiceAccount, name: ringmesh-control, namespace: ringmesh-system}
EOF
ns_create shop
ns_create plain
rm_kube_ctl label namespace shop ringmesh.io/inject=enabled >/dev/null
# an unreadable /version: unknown, the classic sidecar, logged once; asked again until it answers, then native
rm_kube_fault '{"action": "error", "code": 503, "method": "GET", "path": "^/version$", "count": 1}'
control_start unknown
rm_expect_log "$RM_TMP/logs/control-unknown.log" \
    '.event == "kube_version_unknown" and (.reason | test("/version")) and (.action | test("classic"))' \
    "an unknown version is logged with the reason and what follows"
expect unknown shop '{}' classic "unknown version, nativeSidecar auto"
# /version fails once more (the retry 10 s later is not logged again), then answers: the version is learned
rm_kube_fault '{"action": "error", "code": 500, "method": "GET", "path": "^/version$", "count": 1}'
rm_expect_log "$RM_TMP/logs/control-unknown.log" '.event == "kube_version" and .version == "1.33"' \
    "the version is learned when /version answers again" 30
rm_assert_eq "$(rm_log_count "$RM_TMP/logs/control-unknown.log" '.event == "kube_version_unknown"')" 1 \
    "the unknown version is logged once"
rm_assert_eq "$(jq -s '[.[] | select(.path == "/version" and .user_agent == "ringmesh-control")] | length' \
    "$RM_KUBE_LOG")" 3 "/version asked until it answered, then no more"
expect unknown shop '{}' native "v1.33 learned late, nativeSidecar auto"
rm_stop control-unknown
control_start main
CLOG=$RM_TMP/logs/control-main.log
rm_expect_log "$CLOG" '.event == "kube_version" and .version == "1.33" and .nativeSidecarAuto == "native"' \
    "v1.33.2 read from /version"
expect main shop '{}' native "labelled namespace, v1.33.2"
expect main shop '{"ringmesh.io/inject": "false"}' skipped "labelled namespace, the pod opts out"
expect main shop '{"ringmesh.io/native-sidecar": "false"}' classic "v1.33.2, the pod's annotation false"
expect main plain '{}' skipped "unlabelled namespace"
expect main plain '{"ringmesh.io/inject": "true"}' native "unlabelled namespace, the pod's annotation opts in"
# the reviews above were answered from the cache: no namespace was read one by one
rm_assert_eq "$(jq -s '[.[] | select(.user_agent == "ringmesh-control" and (.path | test("^/api/v1/namespaces/[a-z]")))]
    | length' "$RM_KUBE_LOG")" 0 \
    "namespaces in the cache cost no API request"

# unlabelling the namespace stops injection (bounded wait; the delay is logged, not bounded: timing belongs to bench/)
rm_kube_ctl label namespace shop ringmesh.io/inject- >/dev/null
t0=$(rm_now_ms)
for _ in $(seq 1 200); do
    got=$(outcome main shop '{}')
    [ "$got" = skipped ] && break
    sleep 0.05
done
t1=$(rm_now_ms)
[ "$got" = skipped ] || rm_fail "the unlabelled namespace's pods are still injected: $got"
rm_log "ok: unlabelling the namespace stopped injection after $((t1 - t0)) ms"
rm_kube_ctl label namespace shop ringmesh.io/inject=enabled >/dev/null
for _ in $(seq 1 50); do
    got=$(outcome main shop '{}')
    [ "$got" = native ] && break
    sleep 0.05
done
rm_assert_eq "$got" native "labelled again: injected again"

# a namespace created a moment ago, before its watch event reached the cache: one GET. The namespace watch is
# held back (its stream closed, the next one stalled) so that the cache cannot have it.
rm_kube_fault '{"action": "stall", "seconds": 6, "method": "GET", "path": "^/api/v1/namespaces\\?.*watch=1", "count": 5}'
rm_kube_api POST '/_test/drop-watches?mode=close&resource=/namespaces' -f >/dev/null
ns_create fresh
rm_kube_ctl label namespace fresh ringmesh.io/inject=enabled >/dev/null
expect main fresh '{}' native "a namespace not in the cache yet"
rm_assert_eq "$(jq -s '[.[] | select(.user_agent == "ringmesh-control" and .path == "/api/v1/namespaces/fresh")] | length' \
    "$RM_KUBE_LOG")" 1 "the namespace missing from the cache was read with one GET"

# a namespace the API does not have at all
got=$(outcome main nowhere '{}')
[[ $got == "refused: the labels of namespace nowhere are not known: there is no such namespace"* ]] ||
    rm_fail "a namespace that does not exist: $got"
rm_log "ok: a namespace that does not exist fails the review: $got"

# the API fails while a namespace must be fetched: the review fails with the reason, nothing crashes
rm_kube_fault '{"action": "error", "code": 503, "method": "GET", "path": "^/api/v1/namespaces/ghost$", "count": 1}'
got=$(outcome main ghost '{}')
[[ $got == "refused: the labels of namespace ghost are not known: "*"namespace_lookup_failed"* ]] ||
    rm_fail "an API error while fetching the namespace: $got"
rm_expect_log "$CLOG" '.event == "namespace_lookup_failed" and .namespace == "ghost" and (.reason | test("503"))' \
    "the control plane logs the API's answer"
rm_log "ok: an API error fails the review: $got"
rm_kube_fault '{"action": "stall", "seconds": 8, "method": "GET", "path": "^/api/v1/namespaces/slow$", "count": 1}'
t0=$(rm_now_ms)
got=$(outcome main slow '{}')
t1=$(rm_now_ms)
[[ $got == "refused: the labels of namespace slow are not known: the Kubernetes API did not answer in time" ]] ||
    rm_fail "a stalled API while fetching the namespace: $got"
[ $((t1 - t0)) -lt 4500 ] || rm_fail "the stalled lookup held the review $((t1 - t0)) ms (its bound is 2 s)"
rm_log "ok: a stalled API fails the review after $((t1 - t0)) ms: $got"
rm_kube_api DELETE /_test/faults >/dev/null

# the API server goes away: namespaces in the cache are still answered; one that is not fails with the reason
rm_stop kube-api
expect main shop '{}' native "API down, a namespace in the cache"
got=$(outcome main gone '{}')
[[ $got == "refused: the labels of namespace gone are not known: "* ]] || rm_fail "API down: $got"
rm_log "ok: API down, a namespace not in the cache: $got"
rm_alive control-main || rm_fail "the control plane died"
rm_stop control-main
rm_assert_eq "$RM_RC" 0 "the control plane stops cleanly"
rm_finish
