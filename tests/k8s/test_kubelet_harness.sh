#!/usr/bin/env bash
# The test kubelet (tests/k8s/kubelet/kubelet.py) does what a kubelet does with the fields injected pods depend on,
# checked with plain shell and Python containers in a pod of the namespace mesh, from Pod files (no API server):
#   - a Job-shaped pod: init containers in order, each to completion; a native sidecar (restartPolicy Always) whose
#     startup probe (httpGet) gates the next container; a postStart exec hook that blocks the next container; env
#     (value, $(VAR) expansion, fieldRef name/namespace/podIP/serviceAccountName/labels['x']); runAsUser/runAsGroup;
#     capabilities (drop ALL + add NET_ADMIN gives exactly that); a downward API labels file in key="value" form; an
#     emptyDir of medium Memory; the main containers exit 0, the native sidecar then gets SIGTERM, the pod Succeeds;
#   - a long-running pod: a failing liveness probe (httpGet) restarts the container; readiness follows an exec probe;
#     a container whose main process exits non-zero makes a restartPolicy Never pod Failed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
rm_require_cmds unshare mount /usr/bin/python3
rm_setup
KUBELET=${RM_KUBELET:-$RM_SOURCE_DIR/tests/k8s/kubelet/kubelet.py}

rm_pod_create job
rm_pod_create web
rm_pod_create bad
rm_pod_create tok

# kubelet POD FILE: runs the Pod in FILE in mesh pod POD (process kubelet-POD, log $RM_TMP/pods/POD/kubelet.log)
kubelet() {
    mkdir -p "$RM_TMP/pods/$1"
    rm_bg "kubelet-$1" node "$RM_TMP/pods/$1/kubelet.log" /usr/bin/python3 "$KUBELET" run --pod-file "$2" \
        --netns "$(rm_ns "$1")" --pod-ip "${RM_POD_IP[$1]}" --dir "$RM_TMP/pods/$1" \
        --image 'test/shell:1=cmd:["/bin/sh", "-c"]' --image 'test/python:1=cmd:["/usr/bin/python3"]'
}

cat >"$RM_TMP/job.json" <<'EOF'
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "report-x1", "namespace": "batch", "labels": {"app": "report", "tier": "back \"end\""}},
 "spec": {
  "serviceAccountName": "reporter", "restartPolicy": "Never",
  "volumes": [{"name": "data", "emptyDir": {}}, {"name": "mem", "emptyDir": {"medium": "Memory"}},
              {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}],
  "initContainers": [
   {"name": "first", "image": "test/shell:1",
    "args": ["umask 0; sleep 1; echo \"first $(id -u):$(id -g) $POD $NS $IP $SA $APP $GREETING\" >> /data/order"],
    "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "WHO", "value": "world"}, {"name": "GREETING", "value": "hello-$(WHO)"}],
    "securityContext": {"runAsUser": 1000, "runAsGroup": 2000},
    "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
   {"name": "second", "image": "test/shell:1",
    "args": ["echo \"second $(grep ^CapEff /proc/self/status | cut -f2)\" >> /data/order"],
    "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}},
    "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
   {"name": "sidecar", "image": "test/python:1", "restartPolicy": "Always",
    "args": ["-c", "import http.server, os, time\ntime.sleep(1.5)\nopen('/data/order', 'a').write('sidecar\\n')\nos.chdir('/data')\nhttp.server.ThreadingHTTPServer(('0.0.0.0', 9000), http.server.SimpleHTTPRequestHandler).serve_forever()"],
    "startupProbe": {"httpGet": {"path": "/order", "port": 9000}, "periodSeconds": 1, "failureThreshold": 30},
    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
  "containers": [
   {"name": "main", "image": "test/shell:1",
    "args": ["echo main >> /data/order; cp /etc/podinfo/labels /data/labels; stat -c '%a %u' /mem > /data/mem; sleep 1"],
    "lifecycle": {"postStart": {"exec": {"command": ["/bin/sh", "-c", "sleep 1; echo hook >> /data/order"]}}},
    "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "mem", "mountPath": "/mem"},
                     {"name": "info", "mountPath": "/etc/podinfo", "readOnly": true}]},
   {"name": "after", "image": "test/shell:1", "args": ["echo after >> /data/order"],
    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}
EOF
kubelet job "$RM_TMP/job.json"
JLOG=$RM_TMP/pods/job/kubelet.log
DATA=$RM_TMP/pods/job/volumes/data

cat >"$RM_TMP/web.json" <<'EOF'
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-x1", "namespace": "shop"},
 "spec": {
  "volumes": [{"name": "state", "emptyDir": {}}],
  "containers": [
   {"name": "web", "image": "test/python:1",
    "args": ["-c", "import http.server, os\nos.chdir('/state')\nopen('alive', 'w').write('yes')\nhttp.server.ThreadingHTTPServer(('0.0.0.0', 9100), http.server.SimpleHTTPRequestHandler).serve_forever()"],
    "livenessProbe": {"httpGet": {"path": "/alive", "port": "http"}, "initialDelaySeconds": 2, "periodSeconds": 1,
                      "failureThreshold": 2},
    "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "test -e /state/ready"]}, "periodSeconds": 1},
    "ports": [{"name": "http", "containerPort": 9100}],
    "volumeMounts": [{"name": "state", "mountPath": "/state"}]}]}}
EOF
kubelet web "$RM_TMP/web.json"
WLOG=$RM_TMP/pods/web/kubelet.log
STATE=$RM_TMP/pods/web/volumes/state

cat >"$RM_TMP/bad.json" <<'EOF'
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad-x1", "namespace": "batch"},
 "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "test/shell:1", "args": ["exit 3"]}]}}
EOF
kubelet bad "$RM_TMP/bad.json"

case_job() {
    rm_expect_log "$JLOG" '.event == "pod_phase" and .phase == "Succeeded"' "the Job-shaped pod Succeeds" 40
    rm_assert_content "$DATA/order" "first 1000:2000 report-x1 batch ${RM_POD_IP[job]} reporter report hello-world
second 0000000000001000
sidecar
main
hook
after
" "init containers in order with their env and UIDs, the sidecar gating, the postStart hook blocking"
    rm_assert_content "$DATA/labels" 'app="report"
tier="back \"end\""' "the downward API labels file"
    rm_assert_eq "$(cat "$DATA/mem")" "700 0" "an emptyDir of one user is 0700 and that user's"
    rm_assert_eq "$(stat -c %a "$DATA")" 777 "an emptyDir of several users is 0777"
    rm_expect_log "$JLOG" '.event == "volume" and .volume == "mem" and .medium == "Memory"' "medium Memory is a tmpfs"
    rm_expect_log "$JLOG" '.event == "probe" and .container == "sidecar" and .probe == "startupProbe"
        and .result == "success"' "the sidecar's startup probe passed"
    rm_expect_log "$JLOG" '.event == "container_stopping" and .container == "sidecar"
        and .reason == "pod'"'"'s main containers finished"' "the native sidecar is stopped after the main containers"
    rm_expect_log "$JLOG" '.event == "container_exited" and .container == "sidecar" and .exitCode == -15' \
        "by SIGTERM"
}

case_liveness_and_readiness() {
    rm_expect_log "$WLOG" '.event == "probe" and .container == "web" and .probe == "livenessProbe"
        and .result == "success" and .handler.port == "http"' "liveness passes through the named port" 20
    rm_expect_no_log "$WLOG" '.event == "pod_ready" and .ready == true' "not ready while the exec probe fails"
    touch "$STATE/ready"
    rm_expect_log "$WLOG" '.event == "pod_ready" and .ready == true' "ready once the exec probe passes" 10
    local starts lives
    starts=$(rm_log_count "$WLOG" '.event == "container_started" and .container == "web"')
    lives=$(rm_log_count "$WLOG" '.event == "probe" and .probe == "livenessProbe" and .result == "success"')
    rm "$STATE/alive"
    rm_expect_log "$WLOG" '.event == "container_stopping" and .container == "web" and .reason == "liveness probe failed"' \
        "a failing liveness probe stops the container" 10
    rm_expect_log_nth "$WLOG" '.event == "container_started" and .container == "web"' $((starts + 1)) \
        "and restarts it (restartPolicy Always)"
    rm_expect_log_nth "$WLOG" '.event == "probe" and .probe == "livenessProbe" and .result == "success"' $((lives + 1)) \
        "alive again"
}

# the projected token, minted with ringmeshctl against the test's signing key
rm_control_init
cat >"$RM_TMP/tok.json" <<'EOF'
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tok-x1", "namespace": "shop", "uid": "7f0c2d1e-0000-4000-8000-000000000001"},
 "spec": {"serviceAccountName": "orders", "securityContext": {"runAsUser": 1337},
  "volumes": [{"name": "token", "projected": {"sources": [{"serviceAccountToken":
               {"audience": "ringmesh", "expirationSeconds": 600, "path": "token"}}]}}],
  "containers": [{"name": "main", "image": "test/shell:1", "args": ["sleep 3600"],
                  "volumeMounts": [{"name": "token", "mountPath": "/var/run/secrets/test/token", "readOnly": true}]}]}}
EOF
mkdir -p "$RM_TMP/pods/tok"
rm_bg kubelet-tok node "$RM_TMP/pods/tok/kubelet.log" /usr/bin/python3 "$KUBELET" run --pod-file "$RM_TMP/tok.json" \
    --netns "$(rm_ns tok)" --pod-ip "${RM_POD_IP[tok]}" --dir "$RM_TMP/pods/tok" --image 'test/shell:1=cmd:["/bin/sh", "-c"]' \
    --token-mint "$RM_TMP/control/token-key.pem:e2e" --ctl "$RM_CTL_BIN"

case_token() {
    local tok=$RM_TMP/pods/tok/volumes/token/token claims
    rm_expect_log "$RM_TMP/pods/tok/kubelet.log" '.event == "pod_phase" and .phase == "Running"' "the pod runs" 20
    rm_assert_eq "$(stat -c '%a %u' "$tok")" "600 1337" "the token is 0600 and the containers' user's"
    claims=$(python3 -c 'import base64, json, sys; p = open(sys.argv[1]).read().split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
print(c["sub"], c["aud"] if isinstance(c["aud"], str) else ",".join(c["aud"]), c["exp"] - c["nbf"],
      c["kubernetes.io"]["pod"]["name"], c["kubernetes.io"]["pod"]["uid"])' "$tok")
    rm_assert_eq "$claims" "system:serviceaccount:shop:orders ringmesh 600 tok-x1 7f0c2d1e-0000-4000-8000-000000000001" \
        "the token's subject, audience, lifetime and pod"
}

case_failed() {
    rm_expect_log "$RM_TMP/pods/bad/kubelet.log" '.event == "container_exited" and .container == "main" and .exitCode == 3' \
        "the main container exits 3" 20
    rm_expect_log "$RM_TMP/pods/bad/kubelet.log" '.event == "pod_phase" and .phase == "Failed"' "the pod is Failed"
}

rm_case "a Job-shaped pod: order, env, users, capabilities, volumes, sidecar, hook" case_job
rm_case "liveness restarts, readiness follows the probe" case_liveness_and_readiness
rm_case "a failing main container fails a restartPolicy Never pod" case_failed
rm_case "a projected ServiceAccount token minted for the pod" case_token
rm_finish
