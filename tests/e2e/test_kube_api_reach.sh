#!/usr/bin/env bash
# The stand-in Kubernetes API server (tests/k8s/apiserver) serves pods of the namespace mesh: it runs in a host of
# its own (198.18.200.2, as an API server outside the pod network), and from pod "a" the real kubectl and Debian's
# python3-kubernetes reach it over HTTPS through the node's routing, verify its certificate (issued for that address)
# and see a change another client makes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../k8s/lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/../k8s/lib_k8s.sh"
# shellcheck source-path=SCRIPTDIR source=../k8s/apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/../k8s/apiserver/lib_apiserver.sh"
rm_setup
[ -x "$RM_KUBECTL" ] || rm_fail "$RM_KUBECTL is missing: run scripts/bootstrap.sh"
/usr/bin/python3 -c 'import kubernetes' 2>/dev/null || rm_fail "python3-kubernetes is missing: run scripts/bootstrap.sh"
rm_pod_create a
rm_external_create kapi
RM_KUBE_HOST=${RM_POD_IP[kapi]}
rm_kube_api_start kapi

got=$(rm_exec a "$RM_KUBECTL" --kubeconfig "$RM_KUBECONFIG" --cache-dir "$RM_KUBE_DIR/cache-a" get ns default -o name)
rm_assert_eq "$got" namespace/default "kubectl in pod a reads the API at $RM_KUBE_URL"
cat >"$RM_TMP/watch_one.py" <<'PY'
import sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
rv = v1.list_namespaced_config_map("default").metadata.resource_version
print("listening", flush=True)
for ev in watch.Watch().stream(v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=20):
    print(ev["type"], ev["object"].metadata.name, flush=True)
    break
PY
rm_bg pywatch a "$RM_TMP/logs/pywatch.log" /usr/bin/python3 "$RM_TMP/watch_one.py" "$RM_KUBECONFIG"
for _ in $(seq 200); do
    [ "$(rm_kube_api GET /_test/watches | jq '.watches | length')" = 1 ] && break
    sleep 0.05
done
rm_kube_api POST /api/v1/namespaces/default/configmaps -H 'Content-Type: application/json' \
    -d '{"metadata":{"name":"from-node"}}' >/dev/null
rm_wait_exit pywatch 20
rm_assert_eq "$RM_RC" 0 "the python watcher in pod a exited"
rm_assert_eq "$(tail -1 "$RM_TMP/logs/pywatch.log")" "ADDED from-node" "python3-kubernetes in pod a saw the change another client made"
got=$(jq -r 'select(.path | startswith("/api/v1/namespaces/default/configmaps?")) | .path' "$RM_KUBE_LOG" | grep -c watch)
rm_assert_eq "$got" 1 "one watch request from the pod"
rm_kube_api_clean
rm_log PASS
