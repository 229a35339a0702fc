#!/usr/bin/env bash
# What the chart renders is what the binaries read: the InjectorConfig of the ringmesh-injector ConfigMap, for the
# default values and for non-default ones, is loaded by the injector itself (`ringmeshctl inject`, the code the
# webhook runs), and a plain Deployment injected with it is still a valid Kubernetes 1.33 object whose proxy has the
# image, UID and log level the values asked for. A chart value the injector refuses (a renamed key, a number out
# of its range) fails here instead of in a cluster.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
rm_k8s_require_tools
rm_require_cmds jq python3
[ -x "$RM_CTL_BIN" ] || rm_fail "$RM_CTL_BIN is missing: build the project first"

dir=$(mktemp -d /tmp/ringmesh-k8s-chart-injector.XXXXXX)
trap 'rm -rf "$dir"' EXIT

cat >"$dir/deploy.yaml" <<'YAML'
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
        image: shop/orders:1
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: http}}
YAML

# check CASE PROXY_IMAGE PROXY_UID LOG_LEVEL [helm --set ...]: renders, extracts injector.yaml, injects, checks
check() {
    local name=$1 image=$2 uid=$3 level=$4 out
    shift 4
    "$RM_HELM" template ringmesh "$RM_SOURCE_DIR/charts/ringmesh" -n ringmesh-system "$@" >"$dir/$name.yaml" ||
        rm_fail "$name: helm template failed"
    python3 - "$dir/$name.yaml" "$dir/$name-injector.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
# the ConfigMap's data is a block scalar; find it without a YAML library: the document of the ConfigMap
for doc in text.split("\n---"):
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
sys.exit("no ringmesh-injector ConfigMap with injector.yaml")
PY
    out=$("$RM_CTL_BIN" inject -f "$dir/deploy.yaml" --injector-config "$dir/$name-injector.yaml" \
        --kube-version 1.33 -o json 2>&1) || rm_fail "$name: the injector refuses the chart's InjectorConfig: $out"
    printf '%s\n' "$out" >"$dir/$name-injected.json"
    out=$(rm_k8s_validate "$dir/$name-injected.json") || rm_fail "$name: the injected Deployment is not valid: $out"
    local proxy
    proxy=$(jq -c '[.spec.template.spec.initContainers[]?, .spec.template.spec.containers[]]
                   | map(select(.name == "ringmesh-proxy")) | .[0]' "$dir/$name-injected.json")
    [ "$proxy" != null ] || rm_fail "$name: no ringmesh-proxy container after injection"
    rm_assert_eq "$(jq -r .image <<<"$proxy")" "$image" "$name: the proxy's image"
    rm_assert_eq "$(jq -r .securityContext.runAsUser <<<"$proxy")" "$uid" "$name: the proxy's UID"
    jq -r '.env[] | select(.name == "RINGMESH_PROXY_CONFIG") | .value' <<<"$proxy" | grep -q . ||
        rm_fail "$name: the proxy has no RINGMESH_PROXY_CONFIG"
    grep -q "\"$level\"\|: *$level\b" <<<"$(jq -r '.env[] | .value // empty' <<<"$proxy")" ||
        rm_fail "$name: the proxy's log level is not $level: $proxy"
    rm_log "ok: $name: the chart's InjectorConfig is the injector's, and the injected Deployment is valid"
}

appver=$(awk '/^appVersion:/ { gsub(/"/, "", $2); print $2 }' "$RM_SOURCE_DIR/charts/ringmesh/Chart.yaml")
check default "ringmesh/ringmesh:$appver" 1337 info
check custom registry.example.com/mesh/ringmesh:1.2.3-rc.1 2000 debug \
    --set image.repository=registry.example.com/mesh/ringmesh --set image.tag=1.2.3-rc.1 \
    --set proxy.uid=2000 --set proxy.logLevel=debug --set injector.nativeSidecar=false \
    --set injector.tokenExpirationSeconds=600 --set 'injector.excludeOutboundPorts={3306}'
rm_log PASS
