#!/usr/bin/env bash
# The sidecar injector's webhook, as the API server calls it: ringmesh-control --webhook-listen serves HTTPS POST
# /inject with a certificate its CA issued; real AdmissionReview documents for pods shaped like real workloads go
# over HTTPS with curl (verifying the certificate and the Service's DNS name against the CA), the returned JSONPatch
# is applied with Debian's python3-jsonpatch (an independent implementation), and the result is checked against
# Kubernetes 1.33's Pod schema. Injecting twice equals injecting once; every invalid annotation is refused naming
# the annotation and the value (or admitted uninjected with a warning, fail-open); malformed reviews (not JSON,
# wrong kind, no uid, huge body, wrong method, path or media type, not TLS) are answered and never crash it; and
# `ringmeshctl inject` prints the very pod the webhook's patch makes. The classic sidecar's postStart hook,
# `ringmeshctl wait-ready`, waits for a real HTTP server's readiness.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
rm_k8s_require_tools
rm_require_cmds curl python3 jq
python3 -c 'import jsonpatch' 2>/dev/null || rm_fail "python3-jsonpatch is missing: run scripts/bootstrap.sh"
rm_setup_no_netns
rm_control_init

W=$RM_TMP/webhook
mkdir -p "$W"
HOST=ringmesh-control.ringmesh-system.svc

cat >"$W/labels.yaml" <<'EOF'
shop: {ringmesh.io/inject: enabled, team: shop}
plain: {team: plain}
EOF
cat >"$W/injector-b.yaml" <<'EOF'
apiVersion: ringmesh.io/v1alpha1
kind: InjectorConfig
metadata: {name: fail-open}
spec:
  image: registry.example/ringmesh:9.9.9
  failOpenOnInvalidAnnotation: true
  excludeOutboundPorts: ["25"]
EOF

# Instance A: Kubernetes 1.33 (native sidecars), default InjectorConfig. Instance B: 1.28 (classic), fail-open.
rm_control_start a - 127.0.0.1:0 --admin-listen off --webhook-listen 127.0.0.1:0 --kube-version 1.33 \
    --namespace-labels-file "$W/labels.yaml"
rm_expect_log "$RM_TMP/logs/control-a.log" '.event == "webhook_started"' "webhook A started"
PORT_A=$(rm_json "$RM_LINE" .port)
mkdir -p "$RM_TMP/control/state-b"
rm_bg control-b - "$RM_TMP/logs/control-b.log" "$RM_CONTROL_BIN" --listen 127.0.0.1:0 --admin-listen off \
    --config-dir "$RM_TMP/control/mesh" --state-dir "$RM_TMP/control/state-b" --jwks "$RM_TMP/control/jwks.json" \
    --webhook-listen 127.0.0.1:0 --kube-version 1.28 --injector-config "$W/injector-b.yaml" \
    --namespace-labels-file "$W/labels.yaml"
rm_expect_log "$RM_TMP/logs/control-b.log" '.event == "webhook_started"' "webhook B started" 15
PORT_B=$(rm_json "$RM_LINE" .port)

# an InjectorConfig of another trust domain would give proxies that never get an SVID: refused at start
printf 'apiVersion: ringmesh.io/v1alpha1\nkind: InjectorConfig\nmetadata: {name: x}\nspec: {trustDomain: other.example}\n' \
    >"$W/injector-td.yaml"
mkdir -p "$RM_TMP/control/state-c"
rm_bg control-c - "$RM_TMP/logs/control-c.log" "$RM_CONTROL_BIN" --listen 127.0.0.1:0 --admin-listen off \
    --config-dir "$RM_TMP/control/mesh" --state-dir "$RM_TMP/control/state-c" --jwks "$RM_TMP/control/jwks.json" \
    --webhook-listen 127.0.0.1:0 --injector-config "$W/injector-td.yaml"
rm_wait_exit control-c 15
rm_assert_eq "$RM_RC" 1 "another trust domain in the InjectorConfig: the control plane does not start"
rm_expect_log "$RM_TMP/logs/control-c.log" \
    '.event == "config_invalid" and (.msg | test("spec.trustDomain: \"other.example\" is not the mesh.s trust domain"))' \
    "the refusal names the file and field"

# post INSTANCE FILE OUT [curl args...]: POSTs FILE to /inject, verifying the serving certificate against the
# instance's CA and its DNS name; the body goes to OUT, the HTTP status is printed
post() {
    local inst=$1 file=$2 out=$3 port state
    shift 3
    if [ "$inst" = a ]; then port=$PORT_A state=$RM_TMP/control/state; else port=$PORT_B state=$RM_TMP/control/state-b; fi
    curl -sS --max-time 20 --cacert "$state/trust-bundle.pem" --resolve "$HOST:$port:127.0.0.1" \
        -H 'Content-Type: application/json' --data-binary "@$file" -o "$out" -w '%{http_code}' "$@" \
        "https://$HOST:$port/inject"
}

# review NAMESPACE POD_FILE OUT: wraps a Pod in an admission.k8s.io/v1 AdmissionReview as the API server sends it
review() {
    jq -c --arg ns "$1" --arg uid "uid-$RANDOM-$RANDOM" '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
        request: {uid: $uid, kind: {group: "", version: "v1", kind: "Pod"},
        resource: {group: "", version: "v1", resource: "pods"}, requestKind: {group: "", version: "v1", kind: "Pod"},
        namespace: $ns, operation: "CREATE", userInfo: {username: "system:serviceaccount:kube-system:replicaset-controller"},
        object: ., oldObject: null, dryRun: false, options: {apiVersion: "meta.k8s.io/v1", kind: "CreateOptions"}}}' \
        "$2" >"$3"
}

# apply_patch REVIEW_ANSWER POD_FILE OUT: decodes the base64 JSONPatch and applies it with python3-jsonpatch
apply_patch() {
    python3 - "$1" "$2" "$3" <<'PY'
import base64, json, sys
import jsonpatch
answer = json.load(open(sys.argv[1]))
pod = json.load(open(sys.argv[2]))
resp = answer["response"]
assert resp.get("patchType") == "JSONPatch", resp
patch = json.loads(base64.b64decode(resp["patch"], validate=True))
assert isinstance(patch, list) and patch, patch
out = jsonpatch.JsonPatch(patch).apply(pod)
json.dump(out, open(sys.argv[3], "w"), indent=1, sort_keys=True)
PY
}

# inject_ok INSTANCE NAMESPACE NAME: reviews $W/NAME.json, expects a patch, applies it, validates the Pod against
# Kubernetes 1.33, and leaves the result in $W/NAME.patched.json
inject_ok() {
    local inst=$1 ns=$2 name=$3 status uid out
    review "$ns" "$W/$name.json" "$W/$name.review.json"
    status=$(post "$inst" "$W/$name.review.json" "$W/$name.answer.json")
    rm_assert_eq "$status" 200 "$name: HTTP status"
    uid=$(jq -r .request.uid "$W/$name.review.json")
    rm_assert_eq "$(jq -r .response.uid "$W/$name.answer.json")" "$uid" "$name: the uid echoed"
    rm_assert_eq "$(jq -r .response.allowed "$W/$name.answer.json")" true "$name: allowed"
    apply_patch "$W/$name.answer.json" "$W/$name.json" "$W/$name.patched.json" ||
        rm_fail "$name: the patch does not apply with python3-jsonpatch: $(cat "$W/$name.answer.json")"
    out=$(rm_k8s_validate "$W/$name.patched.json") || rm_fail "$name: the injected pod is not a valid Pod: $out"
    rm_log "ok: $name injected; the patched pod is a valid Kubernetes 1.33 Pod"
    # twice is once: the injected pod comes back without a patch
    review "$ns" "$W/$name.patched.json" "$W/$name.review2.json"
    status=$(post "$inst" "$W/$name.review2.json" "$W/$name.answer2.json")
    rm_assert_eq "$status" 200 "$name (again): HTTP status"
    rm_assert_eq "$(jq -r '.response | [.allowed, has("patch")] | @csv' "$W/$name.answer2.json")" "true,false" \
        "$name: injecting the injected pod changes nothing"
}

# not_injected INSTANCE NAMESPACE NAME: allowed with no patch
not_injected() {
    local status
    review "$2" "$W/$3.json" "$W/$3.review.json"
    status=$(post "$1" "$W/$3.review.json" "$W/$3.answer.json")
    rm_assert_eq "$status" 200 "$3: HTTP status"
    rm_assert_eq "$(jq -r '.response | [.allowed, has("patch")] | @csv' "$W/$3.answer.json")" "true,false" \
        "$3: admitted unchanged"
}

jqp() { jq -r "$1" "$W/$2.patched.json"; }

# ---- pods shaped like real workloads -------------------------------------------------------------------------

rm_log "--- a Deployment's pod with probes of every kind, in a labelled namespace (native sidecar on 1.33)"
cat >"$W/deploy.json" <<'EOF'
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"generateName": "orders-6b8f9c-", "namespace": "shop", "labels": {"app": "orders", "pod-template-hash": "6b8f9c"},
   "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "orders-6b8f9c", "uid": "0f1e", "controller": true}]},
 "spec": {"serviceAccountName": "orders",
   "containers": [
     {"name": "app", "image": "shop/orders:1.4",
      "ports": [{"name": "http", "containerPort": 8080}, {"name": "grpc", "containerPort": 9090}],
      "env": [{"name": "ENABLED", "value": "yes"}],
      "livenessProbe": {"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2},
      "readinessProbe": {"tcpSocket": {"port": 8080}},
      "startupProbe": {"grpc": {"port": 9090}, "failureThreshold": 30}},
     {"name": "metrics", "image": "prom/statsd-exporter", "livenessProbe": {"exec": {"command": ["true"]}}}]}}
EOF
inject_ok a shop deploy
rm_assert_eq "$(jqp '[.spec.initContainers[].name] | join(",")' deploy)" "ringmesh-init,ringmesh-proxy" "init containers in order"
rm_assert_eq "$(jqp '.spec.initContainers[1].restartPolicy' deploy)" Always "the proxy is a native sidecar"
rm_assert_eq "$(jqp '.spec.initContainers[1].startupProbe.httpGet | "\(.port) \(.path)"' deploy)" "15021 /healthz/ready" \
    "the startup probe gates the app on the proxy"
rm_assert_eq "$(jqp '.spec.initContainers[0].securityContext.capabilities.add | join(",")' deploy)" "NET_ADMIN,NET_RAW" \
    "ringmesh-init: NET_ADMIN and NET_RAW only"
rm_assert_eq "$(jqp '.spec.initContainers[1].securityContext | [.runAsUser, .runAsNonRoot, .readOnlyRootFilesystem, .allowPrivilegeEscalation, (.capabilities.drop|join(",")), .seccompProfile.type] | @csv' deploy)" \
    '1337,true,true,false,"ALL","RuntimeDefault"' "the proxy's restricted security context"
rm_assert_eq "$(jqp '[.spec.containers[0] | .livenessProbe.httpGet.path, .readinessProbe.httpGet.path, .startupProbe.httpGet.path] | join(" ")' deploy)" \
    "/app-health/app/livez /app-health/app/readyz /app-health/app/startupz" "app probes rewritten to the admin port"
rm_assert_eq "$(jqp '.spec.containers[1].livenessProbe.exec.command[0]' deploy)" "true" "exec probes untouched"
probers=$(jqp '.spec.initContainers[1].env[] | select(.name == "RINGMESH_APP_PROBERS") | .value' deploy)
rm_assert_eq "$(jq -c '."/app-health/app/livez"' <<<"$probers")" '{"httpGet":{"path":"/livez","port":8080},"timeoutSeconds":2}' \
    "the original liveness probe kept, its named port resolved"
rm_assert_eq "$(jq -c '."/app-health/app/startupz".grpc.port' <<<"$probers")" 9090 "the original gRPC probe kept"
rm_assert_eq "$(jqp '.spec.volumes[] | select(.name == "ringmesh-token") | .projected.sources[0].serviceAccountToken | "\(.audience) \(.expirationSeconds)"' deploy)" \
    "ringmesh 3600" "the projected token: audience ringmesh, short-lived"
rm_assert_eq "$(jqp '.spec.volumes[] | select(.name == "ringmesh-state") | .emptyDir.medium' deploy)" Memory "state in memory"
# the proxy's configuration, from the environment, is one the real proxy accepts
jqp '.spec.initContainers[1].env[] | select(.name == "RINGMESH_PROXY_CONFIG") | .value' deploy >"$W/proxy-config.yaml"
"$RM_PROXY_BIN" --config "$W/proxy-config.yaml" --check >"$W/proxy-check.log" 2>&1 ||
    rm_fail "ringmesh-proxy refuses the injected configuration: $(cat "$W/proxy-check.log")"
rm_log "ok: ringmesh-proxy --check accepts the configuration in RINGMESH_PROXY_CONFIG"
rm_expect_log "$RM_TMP/logs/control-a.log" '.event == "inject_review" and .outcome == "injected" and .namespace == "shop"' \
    "the review is logged"

rm_log "--- a Job's pod, opted in by annotation in an unlabelled namespace"
cat >"$W/job.json" <<'EOF'
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"generateName": "nightly-report-", "labels": {"job-name": "nightly-report"},
   "annotations": {"ringmesh.io/inject": "true", "ringmesh.io/exclude-outbound-ip-ranges": "169.254.169.254/32"}},
 "spec": {"restartPolicy": "Never", "containers": [{"name": "report", "image": "shop/report:2", "command": ["/report"]}]}}
EOF
inject_ok a plain job
rm_assert_eq "$(jqp '.spec.initContainers[1].restartPolicy' job)" Always \
    "a Job's proxy is a native sidecar: the Job completes when its container exits"
rm_assert_eq "$(jqp '.spec.initContainers[0].args | join(" ")' job)" \
    "--proxy-uid 1337 --proxy-gid 1337 --exclude-outbound-cidrs 169.254.169.254/32" "the exclusion reaches ringmesh-init"
rm_assert_eq "$(jqp '.metadata.annotations | [."prometheus.io/scrape", ."prometheus.io/port", ."prometheus.io/path"] | join(" ")' job)" \
    "true 15021 /metrics" "Prometheus' annotations point at the proxy's /metrics"

rm_log "--- a pod with its own init containers: the mesh is up before them"
cat >"$W/withinit.json" <<'EOF'
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db-client", "namespace": "shop"},
 "spec": {"initContainers": [{"name": "wait-db", "image": "busybox", "command": ["sh", "-c", "until nc -z db 5432; do sleep 1; done"]}],
   "containers": [{"name": "app", "image": "shop/app"}]}}
EOF
inject_ok a shop withinit
rm_assert_eq "$(jqp '[.spec.initContainers[].name] | join(",")' withinit)" "ringmesh-init,ringmesh-proxy,wait-db" \
    "ringmesh-init, the native proxy, then the pod's own"

rm_log "--- Kubernetes 1.28: the classic sidecar with its postStart hook"
cp "$W/deploy.json" "$W/classic.json"
inject_ok b shop classic
rm_assert_eq "$(jqp '[.spec.containers[].name] | join(",")' classic)" "ringmesh-proxy,app,metrics" "the proxy first among containers"
rm_assert_eq "$(jqp '.spec.containers[0].lifecycle.postStart.exec.command | join(" ")' classic)" \
    "ringmeshctl wait-ready --timeout 120s" "a postStart hook that waits for the proxy"
rm_assert_eq "$(jqp '.metadata.annotations["kubectl.kubernetes.io/default-container"]' classic)" app \
    "kubectl logs picks the app"
rm_assert_eq "$(jqp '.spec.containers[0].image' classic)" "registry.example/ringmesh:9.9.9" "the InjectorConfig's image"
rm_assert_eq "$(jqp '.spec.initContainers[0].args | join(" ")' classic)" \
    "--proxy-uid 1337 --proxy-gid 1337 --exclude-outbound-ports 25" "the InjectorConfig's exclusions"

rm_log "--- not injected: host network, opted out, unlabelled, already injected"
cat >"$W/hostnet.json" <<'EOF'
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "node-exporter", "annotations": {"ringmesh.io/inject": "true"}},
 "spec": {"hostNetwork": true, "containers": [{"name": "x", "image": "prom/node-exporter"}]}}
EOF
not_injected a shop hostnet
jq '.metadata.annotations = {"ringmesh.io/inject": "false"}' "$W/deploy.json" >"$W/optout.json"
not_injected a shop optout
not_injected a plain deploy
cp "$W/deploy.patched.json" "$W/injected.json"
not_injected a shop injected

rm_log "--- every invalid annotation is refused, naming the annotation and the value"
for pair in 'inject=yes' 'exclude-inbound-ports=80,http' 'exclude-outbound-ports=99999' \
    'exclude-outbound-ip-ranges=10.0.0.0/99' 'include-inbound-ports=8080;9090' 'proxy-log-level=trace' \
    'proxy-cpu=fast' 'proxy-memory=12XB' 'native-sidecar=maybe' 'rewrite-app-probes=off'; do
    key=ringmesh.io/${pair%%=*} value=${pair#*=}
    jq --arg k "$key" --arg v "$value" '.metadata.annotations = {($k): $v}' "$W/deploy.json" >"$W/bad.json"
    review shop "$W/bad.json" "$W/bad.review.json"
    status=$(post a "$W/bad.review.json" "$W/bad.answer.json")
    rm_assert_eq "$status" 200 "$key: HTTP status"
    rm_assert_eq "$(jq -r '.response | [.allowed, .status.code] | @csv' "$W/bad.answer.json")" "false,403" "$key: refused"
    msg=$(jq -r .response.status.message "$W/bad.answer.json")
    case "$msg" in
    "annotation $key: \"$value\" is not"*) rm_log "ok: $msg" ;;
    *) rm_fail "$key=$value: the refusal does not name them: $msg" ;;
    esac
    # fail-open (instance B): admitted uninjected, the same sentence as a warning
    status=$(post b "$W/bad.review.json" "$W/bad.answer-b.json")
    rm_assert_eq "$(jq -r '.response | [.allowed, has("patch")] | @csv' "$W/bad.answer-b.json")" "true,false" \
        "$key: fail-open admits the pod uninjected"
    rm_assert_eq "$(jq -r '.response.warnings[0]' "$W/bad.answer-b.json")" "not injected: $msg" "$key: with a warning"
done

rm_log "--- ringmeshctl inject prints the pod the webhook's patch makes"
for pair in deploy:shop job:plain withinit:shop; do
    name=${pair%%:*} ns=${pair#*:}
    labels=()
    [ "$ns" = shop ] && labels=(--namespace-labels ringmesh.io/inject=enabled --namespace-labels team=shop)
    [ "$ns" = plain ] && labels=(--namespace-labels team=plain)
    "$RM_CTL_BIN" inject -f "$W/$name.json" -o json --kube-version 1.33 "${labels[@]}" >"$W/$name.ctl.json" \
        2>"$W/$name.ctl.stderr" || rm_fail "ringmeshctl inject $name failed: $(cat "$W/$name.ctl.stderr")"
    python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a == b else 1)' \
        "$W/$name.ctl.json" "$W/$name.patched.json" ||
        rm_fail "$name: ringmeshctl inject and the webhook differ: $(diff <(jq -S . "$W/$name.ctl.json") <(jq -S . "$W/$name.patched.json") | head -20)"
    rm_log "ok: $name: ringmeshctl inject == the webhook's patch applied"
done
cp "$W/deploy.json" "$W/deploy-stdin.json"
"$RM_CTL_BIN" inject -f - --kube-version 1.28 --injector-config "$W/injector-b.yaml" -o json <"$W/deploy-stdin.json" \
    >"$W/classic.ctl.json" 2>/dev/null || rm_fail "ringmeshctl inject -f - failed"
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])) == json.load(open(sys.argv[2])) else 1)' \
    "$W/classic.ctl.json" "$W/classic.patched.json" || rm_fail "classic: ringmeshctl inject and the webhook differ"
rm_log "ok: the classic sidecar too, with the same InjectorConfig, from standard input"

rm_log "--- ringmeshctl inject over a manifest stream: every workload kind, other documents untouched"
cat >"$W/stream.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec:
      containers:
      - name: app
        image: shop/orders
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: http}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}, annotations: {ringmesh.io/inject: "false"}}
    spec: {containers: [{name: agent, image: agent}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: migrate, image: migrate}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: OnFailure, containers: [{name: report, image: report}]}
---
apiVersion: v1
kind: Service
metadata: {name: orders}
spec: {ports: [{port: 80, targetPort: 8080}], selector: {app: orders}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {enabled: "yes", port: "8080", empty: ""}
EOF
"$RM_CTL_BIN" inject -f "$W/stream.yaml" --kube-version 1.33 >"$W/stream.out.yaml" 2>"$W/stream.stderr" ||
    rm_fail "ringmeshctl inject of the stream failed: $(cat "$W/stream.stderr")"
out=$(rm_k8s_validate "$W/stream.out.yaml") || rm_fail "the injected stream is not valid Kubernetes 1.33: $out"
rm_assert_eq "$(grep -c '^ok ' <<<"$out")" 7 "seven objects, each valid"
# kubectl reads the stream back (with --local: no API server); its objects are what the checks below look at
"$RM_KUBECTL" annotate --local -f "$W/stream.out.yaml" ringmesh.test/read-back=kubectl -o json >"$W/stream.kubectl.raw" \
    2>"$W/kubectl.stderr" || rm_fail "kubectl cannot read the output: $(cat "$W/kubectl.stderr")"
jq -s '{items: .}' "$W/stream.kubectl.raw" >"$W/stream.kubectl.json"
rm_assert_eq "$(jq '.items | length' "$W/stream.kubectl.json")" 7 "kubectl reads seven objects back"
kinj() { jq -r "$1" "$W/stream.kubectl.json"; }
rm_assert_eq "$(kinj '[.items[] | select(.kind == "Deployment" or .kind == "StatefulSet" or .kind == "Job") | .spec.template.spec.initContainers[1].name] | join(",")')" \
    "ringmesh-proxy,ringmesh-proxy,ringmesh-proxy" "Deployment, StatefulSet and Job templates injected (read back by kubectl)"
rm_assert_eq "$(kinj '.items[] | select(.kind == "CronJob") | .spec.jobTemplate.spec.template.spec.initContainers[1].restartPolicy')" \
    Always "the CronJob's job template injected"
rm_assert_eq "$(kinj '.items[] | select(.kind == "DaemonSet") | .spec.template.spec | has("initContainers")')" false \
    "the opted-out DaemonSet left alone"
rm_assert_eq "$(kinj '.items[] | select(.kind == "ConfigMap") | .data | [.enabled, .port, .empty] | @csv')" '"yes","8080",""' \
    "other documents pass through with their strings intact"
rm_assert_eq "$(kinj '.items[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].readinessProbe.httpGet.port')" \
    15021 "the Deployment's probe rewritten"

# a refused pod fails the command, naming the document, the object and the annotation
cat >"$W/refused.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: first}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: {ringmesh.io/exclude-outbound-ports: "5432,pg"}}
    spec: {containers: [{name: web, image: web}]}
EOF
RM_RC=0
"$RM_CTL_BIN" inject -f "$W/refused.yaml" >"$W/refused.out" 2>"$W/refused.err" || RM_RC=$?
rm_assert_eq "$RM_RC" 1 "ringmeshctl inject of a pod with an invalid annotation: exit 1"
rm_assert_eq "$(cat "$W/refused.err")" \
    'ringmeshctl inject: document 2 (Deployment web): refused: annotation ringmesh.io/exclude-outbound-ports: "5432,pg" is not a comma-separated list of ports (1 to 65535), e.g. "22,5432"' \
    "the refusal names the document, the object, the annotation and the value"
[ ! -s "$W/refused.out" ] || rm_fail "a refused stream was still printed"
RM_RC=0
printf 'a: [1,\n' | "$RM_CTL_BIN" inject -f - >/dev/null 2>"$W/syntax.err" || RM_RC=$?
rm_assert_eq "$RM_RC" 1 "a YAML syntax error: exit 1"
grep -q '^ringmeshctl inject: -:2:1: YAML syntax error' "$W/syntax.err" || rm_fail "no position: $(cat "$W/syntax.err")"

rm_log "--- malformed reviews are answered, and the webhook lives on"
printf '{"apiVersion": "admission.k8s.io/v1", "kind": ' >"$W/trunc.json"
status=$(post a "$W/trunc.json" "$W/trunc.answer.json")
rm_assert_eq "$status" 400 "not JSON: 400"
rm_assert_eq "$(jq -r '.kind + " " + (.response.allowed|tostring)' "$W/trunc.answer.json")" "AdmissionReview false" \
    "not JSON: answered with an AdmissionReview"
jq -r .response.status.message "$W/trunc.answer.json" | grep -q 'the body is not JSON' || rm_fail "not JSON: no reason"
jq '.kind = "Pod"' "$W/deploy.review.json" >"$W/wrongkind.json"
status=$(post a "$W/wrongkind.json" "$W/wrongkind.answer.json")
rm_assert_eq "$status" 400 "wrong kind: 400"
rm_assert_eq "$(jq -r .response.uid "$W/wrongkind.answer.json")" "$(jq -r .request.uid "$W/deploy.review.json")" \
    "wrong kind: the uid still echoed"
jq 'del(.request.uid)' "$W/deploy.review.json" >"$W/nouid.json"
rm_assert_eq "$(post a "$W/nouid.json" "$W/nouid.answer.json")" 400 "no uid: 400"
head -c $((5 << 20)) /dev/zero | tr '\0' ' ' >"$W/huge.json"
rm_assert_eq "$(post a "$W/huge.json" "$W/huge.answer.txt")" 413 "a 5 MiB body: 413"
rm_assert_eq "$(post a "$W/deploy.review.json" "$W/get.txt" -X GET)" 405 "GET: 405"
rm_assert_eq "$(post a "$W/deploy.review.json" "$W/ct.txt" -H 'Content-Type: text/plain')" 415 "text/plain: 415"
status=$(curl -sS --max-time 20 --cacert "$RM_TMP/control/state/trust-bundle.pem" --resolve "$HOST:$PORT_A:127.0.0.1" \
    -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data '{}' "https://$HOST:$PORT_A/mutate")
rm_assert_eq "$status" 404 "another path: 404"
# not TLS at all, and a client that goes silent: the connection is dropped, nothing else happens
python3 - "$PORT_A" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    s.recv(100)
except OSError:
    pass
s.close()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.close()
PY
# clients that connect and say nothing hold a serving thread each until the 3 s handshake bound: with more of them
# than threads (8), a real review is still answered, and the silent ones are cut off
python3 - "$PORT_A" "$W/deploy.review.json" "$RM_TMP/control/state/trust-bundle.pem" <<'PY'
import json, socket, ssl, sys, time
port, review, ca = int(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]
silent = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(12)]
ctx = ssl.create_default_context(cafile=ca)
start = time.monotonic()
with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
    with ctx.wrap_socket(raw, server_hostname="ringmesh-control.ringmesh-system.svc") as s:
        s.sendall(b"POST /inject HTTP/1.1\r\nHost: ringmesh-control.ringmesh-system.svc\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(review) + review)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
took = time.monotonic() - start
head, _, body = data.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 200 "), head
assert json.loads(body)["response"]["allowed"] is True
cut = 0
for c in silent:
    try:
        cut += c.recv(1) == b""
    except OSError:
        cut += 1
    c.close()
assert cut == len(silent), cut
print("answered after %.1f s behind %d silent clients, all of them cut off" % (took, len(silent)))
PY
rm_log "ok: silent clients are cut off by the I/O bound and do not stop the webhook"

# the certificate names the Service: a name it does not carry is refused by curl
if curl -sS --max-time 10 --cacert "$RM_TMP/control/state/trust-bundle.pem" --resolve "other.example:$PORT_A:127.0.0.1" \
    -o /dev/null "https://other.example:$PORT_A/inject" 2>"$W/wrongname.err"; then
    rm_fail "a name the serving certificate does not carry was accepted"
fi
rm_log "ok: curl refuses another host name: $(head -c 120 "$W/wrongname.err")"
status=$(post a "$W/deploy.review.json" "$W/after.answer.json")
rm_assert_eq "$status" 200 "after all that, a real review is still answered"
rm_alive control-a || rm_fail "ringmesh-control A exited"
rm_alive control-b || rm_fail "ringmesh-control B exited"
rm_expect_log "$RM_TMP/logs/control-a.log" '.event == "inject_review" and .outcome == "malformed"' "malformed reviews are logged"

rm_log "--- ringmeshctl wait-ready: the classic sidecar's postStart hook waits for readiness"
cat >"$W/ready_server.py" <<'PY'
import http.server, os, sys
flag = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/healthz/ready" and os.path.exists(flag)
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
rm_bg ready-server - "$W/ready-server.log" python3 "$W/ready_server.py" x "$W/ready.flag"
deadline=$(($(rm_now_ms) + 10000))
until [ -s "$W/ready-server.log" ]; do
    [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "the readiness server did not start"
    sleep 0.05
done
RPORT=$(head -n1 "$W/ready-server.log")
RM_RC=0
"$RM_CTL_BIN" wait-ready --url "http://127.0.0.1:$RPORT/healthz/ready" --timeout 1s --interval 100ms \
    >/dev/null 2>"$W/wait1.err" || RM_RC=$?
rm_assert_eq "$RM_RC" 1 "not ready within the timeout: exit 1"
grep -q 'last answer: HTTP 503' "$W/wait1.err" || rm_fail "wait-ready does not say what it saw: $(cat "$W/wait1.err")"
rm_bg wait-ready - "$W/wait2.log" "$RM_CTL_BIN" wait-ready --url "http://127.0.0.1:$RPORT/healthz/ready" \
    --timeout 30s --interval 100ms
sleep 0.5
rm_alive wait-ready || rm_fail "wait-ready returned before the proxy was ready: $(cat "$W/wait2.log")"
touch "$W/ready.flag"
rm_wait_exit wait-ready 15
rm_assert_eq "$RM_RC" 0 "ready: exit 0"
rm_expect_log "$W/wait2.log" '.event == "proxy_ready"' "wait-ready logs the readiness it waited for"

rm_finish
