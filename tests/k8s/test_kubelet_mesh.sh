#!/usr/bin/env bash
# Injected pods really run. In the namespace mesh's node namespace: the stand-in API server (with the chart's CRDs,
# applied with the real kubectl) and ringmesh-control --source kubernetes, serving the injection webhook with the
# InjectorConfig the chart renders (helm template), and attesting proxies by TokenReview through the stand-in.
# Two Deployments from plain YAML (orders, frontend) and a Job are applied with kubectl; the test plays the
# ReplicaSet and Job controllers: each pod template becomes a Pod, goes through the webhook as an AdmissionReview over
# HTTPS (the JSONPatch applied with python3-jsonpatch), and is stored in the API. The test kubelet
# (tests/k8s/kubelet/kubelet.py) then runs each Pod of the API in a pod namespace: ringmesh-init, the proxy as a
# native sidecar whose startup probe gates the app, volumes, env, UIDs, probes; it writes the pods' status back.
#   - the proxy runs as UID 1337 with its token, state dir and root cert where the injector put them;
#   - the app's rewritten probes pass through /app-health under STRICT (the app port itself refuses plaintext),
#     and the API shows the pod Ready with its pod IP; the same Deployment with ringmesh.io/rewrite-app-probes:
#     "false" is probed on the app port itself, which STRICT refuses, and never becomes Ready;
#   - with ringmesh.io/native-sidecar: "false" the proxy is a classic first container whose postStart hook
#     (ringmeshctl wait-ready) holds the app back until the proxy is ready;
#   - frontend -> orders' cluster IP is mTLS with the identities the control plane issued by TokenReview;
#   - an AuthorizationPolicy applied with kubectl allows GET and denies DELETE; orders' proxy logs the decision;
#   - relabelling the orders pod through the API moves it out of the policy's selector and back, each within a
#     second (from the API's answer to the proxy's new policy);
#   - the Job's main container exits 0, the native sidecar is then stopped with SIGTERM, the pod is Succeeded.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
# shellcheck source-path=SCRIPTDIR source=apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/apiserver/lib_apiserver.sh"
# shellcheck source-path=SCRIPTDIR source=kubelet/lib_kubelet.sh
source "$(dirname "${BASH_SOURCE[0]}")/kubelet/lib_kubelet.sh"
rm_k8s_require_tools
rm_require_cmds curl jq openssl unshare mount /usr/bin/python3
python3 -c 'import jsonpatch' 2>/dev/null || rm_fail "python3-jsonpatch is missing: run scripts/bootstrap.sh"
rm_setup
RM_DEFAULT_ACTION=ALLOW rm_control_init
rm_kubelet_images

TD=$RM_TRUST_DOMAIN
K=$RM_TMP/k8s
mkdir -p "$K"
ORDERS_VIP=198.19.0.30
CONTROL_VIP=198.19.0.12
APP=$RM_TMP/images/apps/http_app.py
mkdir -p "$RM_TMP/images/apps"
cp "$RM_SOURCE_DIR/tests/e2e/tools/http_app.py" "$APP"
chmod -R a+rX "$RM_TMP/images/apps"

rm_pod_create orders
rm_pod_create frontend
rm_pod_create report
rm_pod_create norw
rm_pod_create classic

# the cluster's DNS, as the pods' /etc/hosts
cat >"$K/hosts" <<EOF
127.0.0.1 localhost
$CONTROL_VIP ringmesh-control.ringmesh-system.svc ringmesh-control.ringmesh-system.svc.cluster.local
$ORDERS_VIP orders.shop.svc orders.shop.svc.cluster.local
EOF
chmod 0644 "$K/hosts"
# the control plane's Service: its cluster IP DNATed by the node to the node itself, where it listens
ip netns exec "$RM_NODE_NS" iptables -t nat -A PREROUTING -d "$CONTROL_VIP/32" -p tcp --dport 15012 \
    -j DNAT --to-destination "$(rm_pod_gateway orders):15012"
rm_service "$ORDERS_VIP:8080" orders:8080

# the TokenReview table the kubelet registers each pod's token in; the control plane's own token is a caller
mkdir -p "$K/tokenreview"
cp "$RM_SOURCE_DIR/tests/data/tokenreview/unauthorized-401.json" "$K/tokenreview/"
CONTROL_TOKEN=control-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
jq -n --arg t "$CONTROL_TOKEN" '{unknown_caller: "unauthorized-401.json", callers: {($t): null}, reviews: {}}' \
    >"$K/tokenreview/table.json"
printf '%s\n' "$CONTROL_TOKEN" >"$K/control-token"

rm_kube_api_start node --service-cidr 198.19.0.0/24 --git-version v1.33.1 \
    --token "$CONTROL_TOKEN=system:serviceaccount:ringmesh-system:ringmesh-control" \
    --tokenreview-table "$K/tokenreview/table.json"
rm_kube_config "$CONTROL_TOKEN" "$K/control-kubeconfig"

# the chart: its CRDs into the API, its InjectorConfig for the webhook
rm_kube_ctl apply -f "$RM_SOURCE_DIR/charts/ringmesh/crds/" >"$K/crds.out" || rm_fail "kubectl apply of the CRDs"
"$RM_HELM" template ringmesh "$RM_SOURCE_DIR/charts/ringmesh" -n ringmesh-system >"$K/chart.yaml" ||
    rm_fail "helm template failed"
python3 - "$K/chart.yaml" "$K/injector.yaml" <<'PY' || rm_fail "no ringmesh-injector ConfigMap in the chart"
import sys
for doc in open(sys.argv[1]).read().split("\n---"):
    if "kind: ConfigMap" in doc and "name: ringmesh-injector" in doc:
        lines = doc.split("\n")
        i = next(n for n, l in enumerate(lines) if l.strip().startswith("injector.yaml: |"))
        indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
        body = []
        for l in lines[i + 1:]:
            if l.strip() and len(l) - len(l.lstrip()) < indent:
                break
            body.append(l[indent:])
        open(sys.argv[2], "w").write("\n".join(body).rstrip() + "\n")
        sys.exit(0)
sys.exit(1)
PY
rm_log "the chart's InjectorConfig: $(grep -c . "$K/injector.yaml") lines"

cat >"$K/objects.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {ringmesh.io/inject: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: batch, labels: {ringmesh.io/inject: enabled}}
---
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  clusterIP: $ORDERS_VIP
  selector: {app: orders}
  ports: [{name: http, port: 8080, protocol: TCP, targetPort: 8080}]
EOF
rm_kube_ctl apply -f "$K/objects.yaml" >/dev/null || rm_fail "kubectl apply of the namespaces and Service"

rm_bg control node "$RM_TMP/logs/control.log" "$RM_CONTROL_BIN" --source kubernetes \
    --kubeconfig "$K/control-kubeconfig" --mesh-config "$RM_TMP/control/mesh/mesh.yaml" --listen 0.0.0.0:15012 \
    --admin-listen off --state-dir "$RM_TMP/control/state" --attestation token-review --kube-api "$RM_KUBE_URL" \
    --kube-ca-file "$RM_KUBE_CA" --kube-token-file "$K/control-token" --webhook-listen 127.0.0.1:0 \
    --injector-config "$K/injector.yaml" \
    --log-level debug
CLOG=$RM_TMP/logs/control.log
rm_wait_log "$CLOG" '.event == "control_started"' 30 >/dev/null || rm_fail "ringmesh-control did not start"
rm_expect_log "$CLOG" '.event == "webhook_started"' "the webhook started" 10
WEBHOOK=https://127.0.0.1:$(rm_json "$RM_LINE" .port)
rm_wait_file "$RM_TMP/control/state/trust-bundle.pem" control 10

# ringmesh-root-cert: the control plane publishes its trust bundle into every namespace; the pods mount it
for ns in shop batch; do
    ok=0
    for _ in $(seq 100); do
        if rm_kube_api GET "/api/v1/namespaces/$ns/configmaps/ringmesh-root-cert" -o "$K/root-cert-$ns.json" \
            -w '%{http_code}' 2>/dev/null | grep -qx 200 &&
            [ "$(jq -r '.data["root-cert.pem"]' "$K/root-cert-$ns.json")" = "$(cat "$RM_TMP/control/state/trust-bundle.pem")" ]; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || rm_fail "the control plane did not publish ConfigMap $ns/ringmesh-root-cert with its trust bundle"
done
rm_log "ok: the control plane published ringmesh-root-cert into shop and batch"

# ---- the workloads, from plain YAML ---------------------------------------------------------------------------
cat >"$K/workloads.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders, version: v1}}
    spec:
      serviceAccountName: orders
      containers:
      - name: app
        image: shop/orders:1
        args: [http, "8080"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 1, failureThreshold: 2}
        livenessProbe: {tcpSocket: {port: http}, periodSeconds: 2, failureThreshold: 3}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec:
      serviceAccountName: frontend
      containers:
      - name: web
        image: shop/frontend:1
        env: [{name: ORDERS_URL, value: "http://orders.shop.svc:8080"}]
EOF
rm_kube_ctl apply -f "$K/workloads.yaml" >"$K/workloads.out" || rm_fail "kubectl apply of the workloads"
# The stand-in serves no batch/v1, so the Job stays a file here; its pod goes through the same webhook and API.
cat >"$K/job.json" <<'EOF'
{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "report", "namespace": "batch"},
 "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"job-name": "report"}},
  "spec": {"serviceAccountName": "report", "restartPolicy": "Never",
   "containers": [{"name": "main", "image": "batch/report:1",
                   "env": [{"name": "ORDERS_URL", "value": "http://orders.shop.svc:8080"}]}]}}}}
EOF
rm_k8s_validate "$K/job.json" >/dev/null || rm_fail "the Job is not a valid Kubernetes 1.33 Job"
# shellcheck disable=SC2016 # $ORDERS_URL is the container's, expanded by its shell
RM_KUBELET_IMAGES+=(--image "shop/orders:1=cmd:[\"/usr/bin/python3\", \"$APP\"]"
    --image 'shop/frontend:1=cmd:["/bin/sleep", "3600"]'
    --image 'batch/report:1=cmd:["/bin/sh", "-c", "curl -sS -f -m 10 -o /dev/null -w \"report: %{http_code}\\n\" $ORDERS_URL/report"]')

# make_pod KIND NAMESPACE WORKLOAD POD: what the controller and the API server's admission do: the Pod from the
# workload's template (the workload from the API, or, with KIND "file", from the file WORKLOAD), through the
# webhook, stored in the API (the stand-in validates it against Kubernetes 1.33)
make_pod() {
    local kind=$1 ns=$2 wl=$3 pod=$4
    if [ "$kind" = file ]; then
        cp "$wl" "$K/$pod.workload.json"
    else
        rm_kube_api GET "/apis/$kind/namespaces/$ns/$wl" -f >"$K/$pod.workload.json" || rm_fail "GET $kind $wl"
    fi
    rm_kubelet_pod_from "$K/$pod.workload.json" "$pod" "$K/$pod.json"
    rm_kubelet_admit "$WEBHOOK" "$RM_TMP/control/state/trust-bundle.pem" "$K/$pod.json" "$K/$pod.admitted.json"
    [ "$(jq -r '[.spec.initContainers[]?.name] | join(",")' "$K/$pod.admitted.json")" = ringmesh-init,ringmesh-proxy ] ||
        rm_fail "$pod was not injected with a native sidecar: $(jq -c .spec.initContainers "$K/$pod.admitted.json")"
    rm_kube_api POST "/api/v1/namespaces/$ns/pods" -f -H 'Content-Type: application/json' \
        --data-binary "@$K/$pod.admitted.json" >/dev/null || rm_fail "the API refused pod $ns/$pod"
    rm_log "pod $ns/$pod: made from $wl, injected by the webhook, stored in the API"
}
ORDERS_POD=orders-6b8f7c9d5-x2k4q
FRONTEND_POD=frontend-5c7d8f6b9-m3n8p
make_pod apps/v1 shop deployments/orders "$ORDERS_POD"
make_pod apps/v1 shop deployments/frontend "$FRONTEND_POD"
# the EndpointSlice the endpoints controller would make for the Service
rm_kube_api POST /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices -f -H 'Content-Type: application/json' \
    -d '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"orders-1","namespace":"shop",
    "labels":{"kubernetes.io/service-name":"orders"}},"addressType":"IPv4","endpoints":[{"addresses":
    ["'"${RM_POD_IP[orders]}"'"],"conditions":{"ready":true},"targetRef":{"kind":"Pod","name":"'$ORDERS_POD'",
    "namespace":"shop"}}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}' >/dev/null

# the same Deployment opted out of probe rewriting: its kubelet probes the app port itself, which STRICT refuses
NORW_POD=orders-6b8f7c9d5-norw1
jq '.spec.template.metadata.annotations["ringmesh.io/rewrite-app-probes"] = "false"' \
    "$K/$ORDERS_POD.workload.json" >"$K/orders-norw.json"
make_pod file shop "$K/orders-norw.json" "$NORW_POD"
# and with a classic sidecar (as on Kubernetes before 1.29): the proxy is the first container, its postStart hook
# (ringmeshctl wait-ready) holds the app back until the proxy is ready
CLASSIC_POD=orders-6b8f7c9d5-clas1
jq '.spec.template.metadata.annotations["ringmesh.io/native-sidecar"] = "false"' \
    "$K/$ORDERS_POD.workload.json" >"$K/orders-classic.json"
cp "$K/orders-classic.json" "$K/$CLASSIC_POD.workload.json"
rm_kubelet_pod_from "$K/orders-classic.json" "$CLASSIC_POD" "$K/$CLASSIC_POD.json"
rm_kubelet_admit "$WEBHOOK" "$RM_TMP/control/state/trust-bundle.pem" "$K/$CLASSIC_POD.json" "$K/$CLASSIC_POD.admitted.json"
[ "$(jq -r '[.spec.containers[].name] | join(",")' "$K/$CLASSIC_POD.admitted.json")" = ringmesh-proxy,app ] ||
    rm_fail "the classic pod's containers: $(jq -c '[.spec.containers[].name]' "$K/$CLASSIC_POD.admitted.json")"
rm_kube_api POST /api/v1/namespaces/shop/pods -f -H 'Content-Type: application/json' \
    --data-binary "@$K/$CLASSIC_POD.admitted.json" >/dev/null || rm_fail "the API refused pod shop/$CLASSIC_POD"

KUBELET_ARGS=(--hosts "$K/hosts" --token-review-table "$K/tokenreview/table.json")
rm_kubelet_start orders "shop/$ORDERS_POD" "${KUBELET_ARGS[@]}"
rm_kubelet_start frontend "shop/$FRONTEND_POD" "${KUBELET_ARGS[@]}"
rm_kubelet_start norw "shop/$NORW_POD" "${KUBELET_ARGS[@]}"
rm_kubelet_start classic "shop/$CLASSIC_POD" "${KUBELET_ARGS[@]}"
OKLOG=$RM_TMP/pods/orders/kubelet.log
FKLOG=$RM_TMP/pods/frontend/kubelet.log
rm_expect_log "$OKLOG" '.event == "pod_phase" and .phase == "Running"' "orders is Running" 40
rm_expect_log "$FKLOG" '.event == "pod_phase" and .phase == "Running"' "frontend is Running" 40
OLOG=$(rm_kubelet_log orders ringmesh-proxy)
FLOG=$(rm_kubelet_log frontend ringmesh-proxy)

# pod_status NS NAME FILTER: jq FILTER on the pod's status in the API
pod_status() {
    rm_kube_api GET "/api/v1/namespaces/$1/pods/$2" -f | jq -r ".status | $3"
}

# expect_pod_status NS POD JQ EXPECTED WHAT: the kubelet writes a status to the API after it logs it: waits
# (bounded, 10 s) until the API shows EXPECTED
expect_pod_status() {
    local got deadline=$(($(rm_now_ms) + 10000))
    until got=$(pod_status "$1" "$2" "$3") && [ "$got" = "$4" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || break
        sleep 0.1
    done
    rm_assert_eq "$got" "$4" "$5"
}

case_started_in_order() {
    local first second third
    first=$(rm_log_select "$OKLOG" '.event == "container_started"' | sed -n 1p)
    second=$(rm_log_select "$OKLOG" '.event == "container_started"' | sed -n 2p)
    third=$(rm_log_select "$OKLOG" '.event == "container_started"' | sed -n 3p)
    rm_assert_eq "$(rm_json "$first" .container),$(rm_json "$first" .uid)" ringmesh-init,0 "ringmesh-init first, as root"
    rm_assert_eq "$(rm_json "$second" .container),$(rm_json "$second" .kind),$(rm_json "$second" .uid)" \
        ringmesh-proxy,sidecar,1337 "then the proxy, as a native sidecar, as UID 1337"
    rm_assert_eq "$(rm_json "$third" .container)" app "then the app"
    rm_expect_log "$OKLOG" '.event == "container_exited" and .container == "ringmesh-init" and .exitCode == 0' \
        "ringmesh-init ran to completion"
    # the app started only after the proxy's startup probe passed, and the proxy was ready then
    local n_started n_app
    n_started=$(jq -r 'select(.event == "probe" and .container == "ringmesh-proxy" and .probe == "startupProbe"
        and .result == "success") | input_line_number' "$OKLOG" | head -n 1)
    n_app=$(jq -r 'select(.event == "container_started" and .container == "app") | input_line_number' "$OKLOG" |
        head -n 1)
    if [ -z "$n_started" ] || [ -z "$n_app" ] || [ "$n_started" -ge "$n_app" ]; then
        rm_fail "the app did not wait for the proxy's startup probe (lines $n_started, $n_app)"
    fi
    rm_expect_log "$OKLOG" '.event == "probe" and .container == "ringmesh-proxy" and .probe == "startupProbe"
        and .result == "success" and .handler.path == "/healthz/ready"' "the proxy's startup probe gated the app"
    rm_expect_log "$OLOG" '.event == "proxy_ready"' "orders' proxy got its SVID and configuration"
    rm_expect_log "$CLOG" '.event == "svid_issued" and .attestor == "token-review"
        and .spiffeId == "spiffe://'"$TD"'/ns/shop/sa/orders"' "orders' SVID was issued after a TokenReview" 5
    rm_expect_log "$RM_KUBE_LOG" '.method == "POST" and .path == "/apis/authentication.k8s.io/v1/tokenreviews"' \
        "the control plane asked the API's TokenReview"
}

case_volumes_and_env() {
    local pid
    pid=$(rm_json "$(rm_log_select "$OKLOG" '.event == "container_started" and .container == "ringmesh-proxy"' |
        tail -n 1)" .pid)
    rm_assert_eq "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" 1337 "the proxy process runs as UID 1337"
    rm_assert_eq "$(tr '\0' '\n' <"/proc/$pid/environ" | grep '^RINGMESH_POD_IP=')" \
        "RINGMESH_POD_IP=${RM_POD_IP[orders]}" "status.podIP reached the proxy's env"
    rm_assert_eq "$(tr '\0' '\n' <"/proc/$pid/environ" | grep '^RINGMESH_SERVICE_ACCOUNT=')" \
        "RINGMESH_SERVICE_ACCOUNT=orders" "spec.serviceAccountName reached the proxy's env"
    # what the container sees at the injector's mount paths (its own mount namespace, and its root: -r, so that a
    # test run inside a chroot looks in the chroot)
    rm_assert_eq "$(nsenter -t "$pid" -m -r stat -c '%a %u' /var/lib/ringmesh) $(nsenter -t "$pid" -m -r stat -f -c %T \
        /var/lib/ringmesh)" "700 1337 tmpfs" "the state dir is an in-memory emptyDir, 0700, owned by the proxy"
    rm_assert_eq "$(nsenter -t "$pid" -m -r stat -c '%a %u' /var/run/secrets/ringmesh/token/token)" "600 1337" \
        "the projected token is 0600 and the proxy's"
    rm_assert_eq "$(nsenter -t "$pid" -m -r cat /etc/ringmesh/podinfo/labels)" \
        "$(printf 'app="orders"\nversion="v1"')" "the labels file is in the kubelet's key=\"value\" format"
    nsenter -t "$pid" -m -r cmp -s /etc/ringmesh/root-cert/root-cert.pem "$RM_TMP/control/state/trust-bundle.pem" ||
        rm_fail "the root-cert volume is not the control plane's trust bundle"
    nsenter -t "$pid" -m -r sh -c 'touch /probe-write 2>/dev/null' &&
        rm_fail "the proxy's root filesystem is writable (readOnlyRootFilesystem)"
    rm_log "ok: readOnlyRootFilesystem holds"
}

case_probes_under_strict() {
    rm_expect_log "$OKLOG" '.event == "probe" and .container == "app" and .probe == "readinessProbe"
        and .result == "success" and .handler.path == "/app-health/app/readyz" and .handler.port == 15021' \
        "the app's readiness probe passes through /app-health" 20
    rm_expect_log "$OKLOG" '.event == "pod_ready" and .ready == true or (.event == "pod_phase" and .ready == true)' \
        "the pod became Ready" 10
    expect_pod_status shop "$ORDERS_POD" '[.phase, .podIP, (.conditions[] | select(.type == "Ready") | .status)] | join(",")' \
        "Running,${RM_POD_IP[orders]},True" "the API shows orders Running, its pod IP and Ready"
    rm_expect_log "$(rm_kubelet_log orders app)" '.event == "request" and .path == "/ready"' \
        "the proxy ran the original probe against the app"
    # the original probe, from the node: the app port is STRICT mTLS, a plaintext probe cannot pass
    local code
    code=$(ip netns exec "$RM_NODE_NS" curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        "http://${RM_POD_IP[orders]}:8080/ready" || true)
    [ "$code" != 200 ] || rm_fail "a plaintext probe of the app port passed under STRICT"
    rm_log "ok: a plaintext probe of the app port fails under STRICT (HTTP '$code')"
    rm_expect_no_log "$OKLOG" '.event == "container_stopping" and .reason == "liveness probe failed"' \
        "no liveness restart"
}

case_classic_sidecar() {
    local klog=$RM_TMP/pods/classic/kubelet.log n_hook n_app
    rm_expect_log "$klog" '.event == "pod_ready" and .ready == true' "the classic-sidecar pod becomes Ready" 30
    rm_expect_log "$klog" '.event == "post_start" and .container == "ringmesh-proxy" and .exitCode == 0' \
        "the proxy's postStart hook (ringmeshctl wait-ready) returned 0"
    n_hook=$(jq -r 'select(.event == "post_start") | input_line_number' "$klog" | head -n 1)
    n_app=$(jq -r 'select(.event == "container_started" and .container == "app") | input_line_number' "$klog" | head -n 1)
    [ "$n_hook" -lt "$n_app" ] || rm_fail "the app started before the proxy's postStart hook returned"
    rm_expect_log "$(rm_kubelet_log classic ringmesh-proxy)" '.event == "proxy_ready"' "its proxy is ready"
    rm_log "ok: the app started only after the hook returned"
}

case_probes_not_rewritten() {
    local klog=$RM_TMP/pods/norw/kubelet.log
    rm_expect_log "$klog" '.event == "probe" and .container == "app" and .probe == "readinessProbe"
        and .result == "failure" and .handler.path == "/ready" and .handler.port == "http"' \
        "with rewrite-app-probes: false the kubelet probes the app port itself, and STRICT refuses it" 20
    expect_pod_status shop "$NORW_POD" '.conditions[] | select(.type == "Ready") | .status' False \
        "that pod is not Ready in the API"
}

# call METHOD PATH: the HTTP status frontend's app gets from orders' Service
call() {
    rm_exec frontend curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$1" "http://$ORDERS_VIP:8080$2" || true
}

case_mtls() {
    rm_assert_eq "$(call GET /hello)" 200 "frontend -> orders, before any policy"
    rm_expect_log "$FLOG" '.event == "connection" and .direction == "outbound" and .mode == "mtls"
        and .peer_id == "spiffe://'"$TD"'/ns/shop/sa/orders"' "frontend's proxy used mTLS to orders' identity"
    rm_expect_log "$OLOG" '.event == "connection" and .direction == "inbound" and .mode == "mtls"
        and .peer_id == "spiffe://'"$TD"'/ns/shop/sa/frontend"' "orders' proxy saw frontend's identity"
}

cat >"$K/policy.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: orders-read, namespace: shop, annotations: {ringmesh.io/log-allowed: "true"}}
spec:
  selector: {matchLabels: {app: orders}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["$TD/ns/shop/sa/frontend", "$TD/ns/batch/sa/report"]}}]
    to: [{operation: {methods: [GET]}}]
EOF

policy_count() {
    rm_log_count "$OLOG" '.event == "config_accepted" and .type == "workload_policy"'
}

case_policy() {
    local n
    n=$(policy_count)
    rm_kube_ctl apply -f "$K/policy.yaml" >/dev/null || rm_fail "kubectl apply of the policy"
    rm_expect_log_nth "$OLOG" '.event == "config_accepted" and .type == "workload_policy"' $((n + 1)) \
        "orders' proxy took the policy"
    rm_assert_eq "$(call GET /orders)" 200 "GET is allowed"
    rm_assert_eq "$(call DELETE /orders/7)" 403 "DELETE is denied"
    rm_expect_log "$OLOG" '.event == "authz" and .decision == "deny" and .reason == "no ALLOW policy matched"
        and .method == "DELETE" and .path == "/orders/7" and .destination_workload == "shop/'$ORDERS_POD'"
        and .source_principal == "spiffe://'"$TD"'/ns/shop/sa/frontend"' "orders' proxy logs the denial"
    rm_expect_log "$OLOG" '.event == "authz" and .decision == "allow" and .policy == "shop/orders-read"
        and .method == "GET" and .path == "/orders"' "orders' proxy logs the allowed GET, naming the policy"
}

# relabel APP: sets the orders pod's app label through the API; prints ms from the API's answer to the next
# WorkloadPolicy orders' proxy takes
relabel() {
    local n v0 other t_api t_log
    # the WorkloadPolicy in force now; the relabel's is the next one of another version (a push that repeats the
    # version in force, or a late one of an earlier change, is not the relabel's)
    v0=$(rm_log_select "$OLOG" '.event == "config_accepted" and .type == "workload_policy"' | tail -n 1 | jq -r .version)
    other='.event == "config_accepted" and .type == "workload_policy" and .version != "'"$v0"'"'
    n=$(rm_log_count "$OLOG" "$other")
    rm_kube_api PATCH "/api/v1/namespaces/shop/pods/$ORDERS_POD" -f -H 'Content-Type: application/merge-patch+json' \
        -d "{\"metadata\":{\"labels\":{\"app\":\"$1\"}}}" >/dev/null || rm_fail "PATCH of the pod's labels"
    t_api=$(jq -r 'select(.method == "PATCH" and (.path | endswith("/pods/'$ORDERS_POD'"))) | .time' "$RM_KUBE_LOG" |
        tail -n 1)
    rm_expect_log_nth "$OLOG" "$other" $((n + 1)) "orders' proxy takes a new WorkloadPolicy after app=$1" >&2
    t_log=$(rm_json "$RM_LINE" .ts)
    python3 -c 'import sys, datetime
t = datetime.datetime.strptime(sys.argv[2].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
print(int((t.timestamp() - float(sys.argv[1])) * 1000))' "$t_api" "$t_log"
}

case_relabel() {
    local ms
    ms=$(relabel orders-canary)
    rm_log "app=orders-canary reached orders' proxy $ms ms after the API took it"
    rm_assert_eq "$(call DELETE /orders/8)" 200 "out of the policy's selector: DELETE allowed by the mesh default"
    ms=$(relabel orders)
    rm_log "app=orders reached orders' proxy $ms ms after the API took it"
    rm_assert_eq "$(call DELETE /orders/9)" 403 "back in the selector: DELETE denied again"
}

case_job_completes() {
    local klog=$RM_TMP/pods/report/kubelet.log
    rm_expect_log "$klog" '.event == "container_exited" and .container == "main" and .exitCode == 0' \
        "the Job's main container exits 0" 40
    grep -q 'report: 200' "$(rm_kubelet_log report main)" || rm_fail "the Job did not reach orders: $(cat \
        "$(rm_kubelet_log report main)" "$(rm_kubelet_log report main).stderr")"
    rm_expect_log "$klog" '.event == "container_stopping" and .container == "ringmesh-proxy"
        and .reason == "pod'"'"'s main containers finished"' "then the native sidecar is stopped"
    rm_expect_log "$klog" '.event == "container_exited" and .container == "ringmesh-proxy" and .exitCode == 0' \
        "the proxy exits 0 on SIGTERM"
    rm_expect_log "$klog" '.event == "pod_phase" and .phase == "Succeeded"' "the pod is Succeeded" 10
    expect_pod_status batch report-7kq2z .phase Succeeded "the API shows the Job's pod Succeeded"
}

rm_case "containers start in order, the native sidecar gating the app" case_started_in_order
rm_case "volumes, env and the security context as the injector asked" case_volumes_and_env
rm_case "app probes pass through /app-health under STRICT" case_probes_under_strict
rm_case "without rewriting, the kubelet's probes fail under STRICT" case_probes_not_rewritten
rm_case "a classic sidecar's postStart hook holds the app until the proxy is ready" case_classic_sidecar
rm_case "frontend -> orders over mTLS with identities from the control plane" case_mtls
rm_case "a policy applied with kubectl allows GET and denies DELETE" case_policy
rm_case "a relabelled pod moves out of the policy and back" case_relabel
# the Job's pod (its kubelet is started here, not in a case, so that the teardown stops it by PID)
make_pod file batch "$K/job.json" report-7kq2z
rm_kubelet_start report batch/report-7kq2z "${KUBELET_ARGS[@]}"
rm_case "a Job-shaped pod completes" case_job_completes
rm_kube_api_clean
rm_finish
