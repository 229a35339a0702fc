# shellcheck shell=bash disable=SC2034 # RM_PID, RM_POD_IP are lib.sh's globals
# Pods of the stand-in API server run by the test kubelet (kubelet.py) in pods of the namespace mesh. Source after
# tests/e2e/lib.sh and tests/k8s/apiserver/lib_apiserver.sh, once rm_kube_api_start has run in the node namespace.
#
#   rm_kubelet_images: puts the ringmesh image's binaries (ringmesh-proxy, ringmesh-init, ringmeshctl) into
#       $RM_TMP/images/ringmesh, readable by every UID, and sets RM_KUBELET_IMAGES to the --image arguments that
#       map ringmesh/ringmesh:* to it; a test adds its app images (PATTERN=cmd:JSON_ARGV).
#   rm_kubelet_pod_from DEPLOYMENT_OR_JOB_JSON NAME OUT: the Pod the controller would make from the template
#       (name NAME, the template's labels and annotations, the namespace of the workload)
#   rm_kubelet_admit URL CA POD_JSON OUT: sends the Pod to the injection webhook at URL (https://HOST:PORT, CA to
#       verify it, DNS name ringmesh-control.ringmesh-system.svc) as an admission.k8s.io/v1 AdmissionReview for
#       CREATE, applies the returned JSONPatch with python3-jsonpatch and writes the admitted Pod to OUT
#   rm_kubelet_start RMPOD NAMESPACE/NAME [kubelet.py ARG]...: starts kubelet.py for that Pod of the API in mesh pod
#       RMPOD (process "kubelet-RMPOD", log $RM_TMP/pods/RMPOD/kubelet.log; containers' logs in
#       $RM_TMP/pods/RMPOD/containers/)
#   rm_kubelet_log RMPOD CONTAINER: the current log of that container

RM_KUBELET=${RM_KUBELET:-$RM_SOURCE_DIR/tests/k8s/kubelet/kubelet.py}
RM_KUBELET_IMAGES=()

rm_kubelet_images() {
    local d=$RM_TMP/images/ringmesh
    mkdir -p "$d"
    cp "$RM_BUILD_DIR/sidecar/ringmesh-proxy" "$RM_BUILD_DIR/sidecar/ringmesh-init" "$RM_CTL_BIN" "$d/"
    chmod 0755 "$RM_TMP/images" "$d"
    chmod 0755 "$d"/*
    RM_KUBELET_IMAGES=(--image "ringmesh/ringmesh:*=path:$d")
}

rm_kubelet_pod_from() {
    jq --arg name "$2" '{apiVersion: "v1", kind: "Pod",
        metadata: ({name: $name, namespace: .metadata.namespace} + (.spec.template.metadata // {})),
        spec: .spec.template.spec}' "$1" >"$3" || rm_fail "no pod template in $1"
}

rm_kubelet_admit() {
    local url=$1 ca=$2 pod=$3 out=$4 hostport host port
    hostport=${url#https://}
    host=${hostport%:*}
    port=${hostport##*:}
    jq -c --arg uid "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" '{apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview", request: {uid: $uid, kind: {group: "", version: "v1", kind: "Pod"},
        resource: {group: "", version: "v1", resource: "pods"}, namespace: .metadata.namespace, operation: "CREATE",
        userInfo: {username: "system:serviceaccount:kube-system:replicaset-controller"}, object: .,
        oldObject: null, dryRun: false}}' "$pod" >"$out.review" || rm_fail "rm_kubelet_admit: $pod is not JSON"
    ip netns exec "$(rm_ns node)" curl -sS --max-time 20 --cacert "$ca" \
        --resolve "ringmesh-control.ringmesh-system.svc:$port:$host" -H 'Content-Type: application/json' \
        --data-binary "@$out.review" -o "$out.answer" "https://ringmesh-control.ringmesh-system.svc:$port/inject" ||
        rm_fail "the webhook did not answer for $pod"
    python3 - "$out.answer" "$pod" "$out" <<'PY' || rm_fail "the webhook's answer for $pod: $(cat "$out.answer")"
import base64, json, sys
import jsonpatch
answer, pod = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
resp = answer["response"]
if not resp.get("allowed"):
    sys.exit("refused: %s" % resp.get("status"))
if "patch" in resp:
    pod = jsonpatch.JsonPatch(json.loads(base64.b64decode(resp["patch"]))).apply(pod)
json.dump(pod, open(sys.argv[3], "w"), indent=1)
PY
}

rm_kubelet_start() {
    local rmpod=$1 ref=$2
    shift 2
    mkdir -p "$RM_TMP/pods/$rmpod"
    rm_bg "kubelet-$rmpod" node "$RM_TMP/pods/$rmpod/kubelet.log" /usr/bin/python3 "$RM_KUBELET" run --pod "$ref" \
        --netns "$(rm_ns "$rmpod")" --pod-ip "${RM_POD_IP[$rmpod]}" --host-ip "$(rm_pod_gateway "$rmpod")" \
        --dir "$RM_TMP/pods/$rmpod" --api "$RM_KUBE_URL" --api-ca "$RM_KUBE_CA" --api-token-file "$RM_KUBE_TOKEN_FILE" \
        --ctl "$RM_CTL_BIN" "${RM_KUBELET_IMAGES[@]}" "$@"
    rm_log "kubelet for $ref in pod $rmpod (PID ${RM_PID[kubelet-$rmpod]})"
}

rm_kubelet_log() {
    local f
    f=$(find "$RM_TMP/pods/$1/containers" -name "$2.*.log" 2>/dev/null | sort -V | tail -n 1)
    [ -n "$f" ] || rm_fail "no log of container $2 in pod $1"
    echo "$f"
}
