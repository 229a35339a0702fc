#!/usr/bin/env bash
# The Helm chart (charts/ringmesh) with the real helm v4: `helm lint --strict` is clean and `helm template` renders
# objects that Kubernetes 1.33's schema accepts, for the default values and a matrix of others; what each value
# changes is where it should be; the RBAC is exactly the list written below (any widening fails here); the mesh
# settings rendered are accepted by the control plane's own loader; values.schema.json refuses bad values with a
# message naming the value; NOTES tells how to mesh a namespace and where the decision logs are.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
rm_k8s_require_tools
rm_require_cmds jq
[ -x "$RM_CONTROL_BIN" ] || rm_fail "$RM_CONTROL_BIN is missing: build the project first"

chart=$RM_SOURCE_DIR/charts/ringmesh
dir=$(mktemp -d /tmp/ringmesh-k8s-chart.XXXXXX)
control_pid=""
cleanup() {
    if [ -n "$control_pid" ]; then
        kill "$control_pid" 2>/dev/null || true
        wait "$control_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
helm() { "$RM_HELM" "$@"; }
yaml2json() { NODE_PATH=$RM_NPM_TOOLS/node_modules node "$RM_SOURCE_DIR/tests/tools/yaml2json.mjs" "$@"; }

# render CASE [helm args]: lints and renders the chart into $dir/CASE.{yaml,json} and validates every object
render() {
    local name=$1 out
    shift
    out=$(helm lint --strict "$chart" "$@" 2>&1) || rm_fail "$name: helm lint --strict: $out"
    grep -q '0 chart(s) failed' <<<"$out" || rm_fail "$name: helm lint: $out"
    ! grep -q '^\[\(WARNING\|ERROR\)\]' <<<"$out" || rm_fail "$name: helm lint is not clean: $out"
    helm template ringmesh "$chart" --include-crds "$@" >"$dir/$name.yaml" 2>"$dir/$name.err" ||
        rm_fail "$name: helm template: $(cat "$dir/$name.err")"
    out=$(rm_k8s_validate --allow-kind cert-manager.io/v1/Certificate "$dir/$name.yaml") ||
        rm_fail "$name: an object is not valid for Kubernetes 1.33: $(grep '^bad' <<<"$out")"
    yaml2json "$dir/$name.yaml" >"$dir/$name.json"
    rm_log "ok: $name: lint clean, $(grep -c '^ok ' <<<"$out") objects valid for Kubernetes 1.33"
}
# q CASE JQ: jq -r over the rendered objects of CASE
q() { jq -r "$2" "$dir/$1.json"; }
# obj KIND NAME: the jq filter selecting one object
obj() { printf '.[] | select(.kind == "%s" and .metadata.name == "%s")' "$1" "$2"; }
deploy=$(obj Deployment ringmesh-control)
ctr="$deploy | .spec.template.spec.containers[0]"
webhooks="$(obj MutatingWebhookConfiguration ringmesh-sidecar-injector) | .webhooks"
# embedded CASE CONFIGMAP KEY: the YAML document a ConfigMap carries, as JSON
embedded() { q "$1" "$(obj ConfigMap "$2") | .data[\"$3\"]" | yaml2json - | jq -c '.[0]'; }
expect() { # CASE JQ WANT WHAT
    local got
    got=$(q "$1" "$2")
    [ "$got" = "$3" ] || rm_fail "$1: $4: got '$got', want '$3'"
}

# rbac CASE: every rule the control plane is granted, one line each: KIND GROUPS RESOURCES VERBS NAMES
rbac() {
    # shellcheck disable=SC2016 # a jq variable
    q "$1" '.[] | select(.kind == "ClusterRole" or .kind == "Role") | .kind as $k | .rules[] |
        [$k, (.apiGroups | map(if . == "" then "core" else . end) | join(",")), (.resources | join(",")),
         (.verbs | join(",")), ((.resourceNames // ["*"]) | join(","))] | join(" ")' | sort
}
read -r -d '' RBAC_COMMON <<'EOF' || true
ClusterRole apiextensions.k8s.io customresourcedefinitions get,list,watch *
ClusterRole authentication.k8s.io tokenreviews create *
ClusterRole core configmaps create *
ClusterRole core configmaps get,list,watch,update ringmesh-root-cert
ClusterRole core pods,services,namespaces get,list,watch *
ClusterRole discovery.k8s.io endpointslices get,list,watch *
ClusterRole gateway.networking.k8s.io httproutes,grpcroutes get,list,watch *
ClusterRole ringmesh.io authorizationpolicies,peerauthentications,requestauthentications get,list,watch *
ClusterRole security.istio.io authorizationpolicies,peerauthentications,requestauthentications get,list,watch *
EOF
expect_rbac() { # CASE EXTRA_LINES
    local want
    want=$(printf '%s\n%s\n' "$RBAC_COMMON" "$2" | sed '/^$/d' | sort)
    diff <(printf '%s\n' "$want") <(rbac "$1") >"$dir/rbac.diff" ||
        rm_fail "$1: the RBAC differs from the expected list (- expected, + rendered): $(cat "$dir/rbac.diff")"
    # bound to the control plane's ServiceAccount only, and no other role is rendered
    expect "$1" '[.[] | select(.kind | test("Role(Binding)?$")) | .kind] | sort | join(" ")' \
        "ClusterRole ClusterRoleBinding Role RoleBinding" "the RBAC objects"
    expect "$1" '[.[] | select(.kind | test("RoleBinding$")) | .subjects[] | "\(.kind)/\(.name)"] | unique | join(" ")' \
        "ServiceAccount/ringmesh-control" "the bindings' subjects"
    rm_log "ok: $1: RBAC is exactly the expected $(rbac "$1" | wc -l) rules"
}

# --- defaults
render default -n ringmesh-system
expect default "$deploy | .spec.replicas" 2 "control plane replicas"
expect default "$(obj PodDisruptionBudget ringmesh-control) | .spec.maxUnavailable" 1 "PDB"
expect default "[$deploy | .spec.template.spec.topologySpreadConstraints[0].topologyKey, (.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey)] | join(\" \")" \
    "topology.kubernetes.io/zone kubernetes.io/hostname" "spread over zones, soft anti-affinity on nodes"
expect default "$ctr | .image" "ringmesh/ringmesh:$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$chart/Chart.yaml")" "image"
expect default "$ctr | .securityContext | [.runAsNonRoot, .readOnlyRootFilesystem, .allowPrivilegeEscalation, (.capabilities.drop | join(\",\")), .seccompProfile.type] | map(tostring) | join(\" \")" \
    "true true false ALL RuntimeDefault" "restricted container security context"
expect default "$deploy | .spec.template.spec.securityContext | [.runAsNonRoot, .runAsUser, .seccompProfile.type] | map(tostring) | join(\" \")" \
    "true 65532 RuntimeDefault" "pod security context"
expect default "$ctr | [.startupProbe.httpGet.path, .livenessProbe.httpGet.path, .readinessProbe.httpGet.path, .readinessProbe.httpGet.port] | join(\" \")" \
    "/healthz/live /healthz/live /healthz/ready http-metrics" "probes on the admin port"
expect default "$ctr | [.ports[] | \"\(.name)=\(.containerPort)\"] | join(\" \")" \
    "grpc=15012 https-webhook=15017 http-metrics=15014" "container ports"
expect default "$(obj Service ringmesh-control) | [.spec.ports[] | \"\(.name)=\(.port)\"] | join(\" \")" \
    "grpc=15012 https-webhook=15017 http-metrics=15014" "Service ports"
expect default "$ctr | .resources | [.requests.cpu, .requests.memory, .limits.memory] | join(\" \")" "100m 128Mi 512Mi" "resources"
expect default "[$deploy | .spec.template.spec.volumes[] | select(.name == \"state\") | .emptyDir.medium] | join(\"\")" Memory \
    "state directory is an emptyDir"
expect default "$ctr | .args | join(\" \")" \
    "--source=kubernetes --namespace=ringmesh-system --mesh-config=/etc/ringmesh/mesh/mesh.yaml --attestation=token-review --listen=[::]:15012 --admin-listen=[::]:15014 --webhook-listen=[::]:15017 --injector-config=/etc/ringmesh/injector/injector.yaml --webhook-config-name=ringmesh-sidecar-injector --ca-secret=ringmesh-ca --state-dir=/var/lib/ringmesh-control --max-svid-ttl=24h --log-level=info" \
    "control plane flags"
expect default "$webhooks | map(.name) | join(\" \")" "inject.ringmesh.io pod.inject.ringmesh.io" "webhooks"
expect default "$webhooks | map([.failurePolicy, .sideEffects, .reinvocationPolicy, (.timeoutSeconds | tostring), (.admissionReviewVersions | join(\",\")), .clientConfig.service.name, .clientConfig.service.namespace, .clientConfig.service.path, (.clientConfig.service.port | tostring), (.clientConfig.caBundle // \"unset\")] | join(\" \")) | unique | join(\"|\")" \
    "Fail None IfNeeded 5 v1 ringmesh-control ringmesh-system /inject 15017 unset" "webhook settings (caBundle left to the control plane)"
expect default "$webhooks | .[0] | [.namespaceSelector.matchExpressions[] | \"\(.key) \(.operator) \(.values // [] | join(\",\"))\"] | join(\"; \")" \
    "ringmesh.io/inject In enabled; kubernetes.io/metadata.name NotIn kube-system,ringmesh-system" "namespace webhook: namespace selector"
expect default "$webhooks | .[0].objectSelector.matchExpressions[0] | \"\(.key) \(.operator) \(.values | join(\",\"))\"" \
    "ringmesh.io/inject NotIn false" "namespace webhook: pods labelled false are not sent"
expect default "$webhooks | .[1] | [(.namespaceSelector.matchExpressions[] | \"\(.key) \(.operator) \(.values // [] | join(\",\"))\"), (.objectSelector.matchExpressions[] | \"\(.key) \(.operator) \(.values | join(\",\"))\")] | join(\"; \")" \
    "ringmesh.io/inject DoesNotExist ; kubernetes.io/metadata.name NotIn kube-system,ringmesh-system; ringmesh.io/inject In true" \
    "pod webhook: unlabelled namespaces, pods labelled true"
expect default "$webhooks | .[0].rules[0] | [(.operations | join(\",\")), (.apiGroups | join(\",\")), (.resources | join(\",\"))] | join(\" \")" \
    "CREATE  pods" "webhook rule: Pod CREATE"
expect default '[.[] | select(.kind == "CustomResourceDefinition") | .metadata.name] | sort | join(" ")' \
    "authorizationpolicies.ringmesh.io peerauthentications.ringmesh.io requestauthentications.ringmesh.io" "CRDs from crds/"
expect_rbac default 'ClusterRole admissionregistration.k8s.io mutatingwebhookconfigurations get,patch ringmesh-sidecar-injector
Role core secrets get ringmesh-ca
Role core secrets create *'
injector=$(embedded default ringmesh-injector injector.yaml)
want_injector='{"apiVersion":"ringmesh.io/v1alpha1","kind":"InjectorConfig","metadata":{"name":"injector"},"spec":{"meshNamespace":"ringmesh-system","controlPlaneAddress":"ringmesh-control.ringmesh-system.svc:15012","trustDomain":"cluster.local","image":"ringmesh/ringmesh:0.1.0","imagePullPolicy":"IfNotPresent","proxy":{"logLevel":"info","uid":1337,"resources":{"limits":{"memory":"256Mi"},"requests":{"cpu":"50m","memory":"32Mi"}}},"init":{"resources":{"limits":{"memory":"64Mi"},"requests":{"cpu":"10m","memory":"16Mi"}}},"nativeSidecar":"auto","rewriteAppProbes":true,"tokenExpirationSeconds":3600,"excludeOutboundIPRanges":[],"excludeOutboundPorts":[],"excludeInboundPorts":[],"failOpenOnInvalidAnnotation":false}}'
rm_assert_eq "$injector" "$want_injector" "the InjectorConfig of the default values"
rm_assert_eq "$(embedded default ringmesh-mesh mesh.yaml | jq -c .spec)" \
    '{"trustDomain":"cluster.local","rootNamespace":"ringmesh-system","mtls":{"mode":"STRICT"},"svidTTL":"24h","authorization":{"defaultAction":"DENY","logAllowed":"false","pathNormalization":{"normalization":"BASE"}}}' \
    "the MeshConfig of the default values"

# --- the matrix
render replicas-1 -n ringmesh-system --set control.replicas=1
expect replicas-1 "$deploy | .spec.replicas" 1 "one replica"
expect replicas-1 '[.[] | select(.kind == "PodDisruptionBudget")] | length' 0 "no PDB for one replica (it would block drains)"

render replicas-3 -n ringmesh-system --set control.replicas=3 --set control.antiAffinity=hard
expect replicas-3 "$deploy | .spec.replicas" 3 "three replicas"
expect replicas-3 "$deploy | .spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey" \
    kubernetes.io/hostname "hard anti-affinity"
expect replicas-3 "$(obj PodDisruptionBudget ringmesh-control) | .spec.maxUnavailable" 1 "PDB"

render fail-ignore -n ringmesh-system --set webhook.failurePolicy=Ignore --set webhook.timeoutSeconds=3
expect fail-ignore "$webhooks | map(\"\(.failurePolicy)/\(.timeoutSeconds)\") | join(\" \")" "Ignore/3 Ignore/3" "failurePolicy Ignore"

render cert-manager -n ringmesh-system --set webhook.certManager.enabled=true \
    --set webhook.certManager.issuerRef.name=mesh-issuer --set webhook.certManager.issuerRef.kind=ClusterIssuer
expect cert-manager "$(obj Certificate ringmesh-webhook) | [.spec.secretName, .spec.issuerRef.name, .spec.issuerRef.kind, (.spec.dnsNames | join(\",\"))] | join(\" \")" \
    "ringmesh-webhook-tls mesh-issuer ClusterIssuer ringmesh-control.ringmesh-system.svc,ringmesh-control.ringmesh-system.svc.cluster.local" \
    "the Certificate"
expect cert-manager "$(obj MutatingWebhookConfiguration ringmesh-sidecar-injector) | .metadata.annotations[\"cert-manager.io/inject-ca-from\"]" \
    ringmesh-system/ringmesh-webhook "cainjector annotation"
expect cert-manager "$ctr | [.args[] | select(test(\"^--webhook-(cert|key|config-name)\"))] | join(\" \")" \
    "--webhook-cert=/etc/ringmesh/webhook-tls/tls.crt --webhook-key=/etc/ringmesh/webhook-tls/tls.key" \
    "serves cert-manager's certificate, does not patch the webhook"
expect cert-manager "[$deploy | .spec.template.spec.volumes[] | select(.name == \"webhook-tls\") | .secret.secretName] | join(\"\")" \
    ringmesh-webhook-tls "the certificate's Secret is mounted"
expect_rbac cert-manager 'Role core secrets get ringmesh-ca
Role core secrets create *'

render existing-ca -n ringmesh-system --set ca.existingSecret=corp-mesh-ca
expect existing-ca "$ctr | [.args[] | select(startswith(\"--ca-secret\"))] | join(\"\")" --ca-secret=corp-mesh-ca "CA Secret flag"
expect_rbac existing-ca 'ClusterRole admissionregistration.k8s.io mutatingwebhookconfigurations get,patch ringmesh-sidecar-injector
Role core secrets get corp-mesh-ca'

render native-off -n ringmesh-system --set injector.nativeSidecar=false --set injector.rewriteAppProbes=false \
    --set injector.failOpenOnInvalidAnnotation=true --set 'injector.excludeOutboundIPRanges={169.254.169.254/32,fd00::/8}' \
    --set 'injector.excludeOutboundPorts={3306}' --set 'injector.excludeInboundPorts={15090}' --set injector.tokenExpirationSeconds=600
rm_assert_eq "$(embedded native-off ringmesh-injector injector.yaml | jq -c '.spec | [.nativeSidecar, .rewriteAppProbes, .failOpenOnInvalidAnnotation, .excludeOutboundIPRanges, .excludeOutboundPorts, .excludeInboundPorts, .tokenExpirationSeconds]')" \
    '[false,false,true,["169.254.169.254/32","fd00::/8"],[3306],[15090],600]' "native-off: the injector's settings"

render custom -n ringmesh-system --set image.repository=registry.example.com/mesh/ringmesh --set image.tag=1.2.3-rc.1 \
    --set image.pullPolicy=Always --set 'imagePullSecrets={regcred}' --set control.resources.requests.cpu=500m \
    --set control.resources.limits.cpu=2 --set proxy.resources.limits.cpu=1 --set proxy.resources.requests.memory=64Mi \
    --set init.resources.limits.memory=32Mi --set proxy.logLevel=debug --set proxy.uid=2000 --set control.logLevel=debug \
    --set control.priorityClassName=system-cluster-critical --set control.nodeSelector.pool=system \
    --set 'control.tolerations[0].key=dedicated' --set 'control.tolerations[0].operator=Exists' \
    --set control.podAnnotations.team=platform --set control.topologySpread=false
expect custom "$ctr | [.image, .imagePullPolicy] | join(\" \")" "registry.example.com/mesh/ringmesh:1.2.3-rc.1 Always" "custom image"
expect custom "$ctr | .resources | [.requests.cpu, .limits.cpu] | map(tostring) | join(\" \")" "500m 2" "control plane resources"
expect custom "$deploy | .spec.template.spec | [.priorityClassName, .nodeSelector.pool, .tolerations[0].key, .imagePullSecrets[0].name, (.topologySpreadConstraints // [] | length | tostring)] | join(\" \")" \
    "system-cluster-critical system dedicated regcred 0" "scheduling settings"
expect custom "$deploy | .spec.template.metadata.annotations.team" platform "pod annotations"
rm_assert_eq "$(embedded custom ringmesh-injector injector.yaml | jq -c '.spec | [.image, .imagePullPolicy, .proxy, .init.resources.limits.memory]')" \
    '["registry.example.com/mesh/ringmesh:1.2.3-rc.1","Always",{"logLevel":"debug","uid":2000,"resources":{"limits":{"cpu":1,"memory":"256Mi"},"requests":{"cpu":"50m","memory":"64Mi"}}},"32Mi"]' \
    "custom: the injected containers' image, proxy settings and resources"

render other-ns -n mesh-prod --set 'webhook.excludeNamespaces={monitoring}' --set webhook.podOptIn=false
expect other-ns '[.[] | select(.metadata.namespace != null) | .metadata.namespace] | unique | join(" ")' mesh-prod \
    "every namespaced object is in the release namespace"
expect other-ns '[.[] | select(.kind | test("^(Deployment|Service|ServiceAccount|ConfigMap|Role|RoleBinding|PodDisruptionBudget)$")) | select(.metadata.namespace != "mesh-prod")] | length' 0 \
    "no namespaced object without its namespace"
expect other-ns "$webhooks | map(.name) | join(\" \")" "inject.ringmesh.io" "podOptIn=false: the namespace webhook only"
expect other-ns "$webhooks | .[0] | [.clientConfig.service.namespace, (.namespaceSelector.matchExpressions[1].values | join(\",\"))] | join(\" \")" \
    "mesh-prod kube-system,mesh-prod,monitoring" "the webhook calls the release namespace and skips it"
expect other-ns "$(obj ClusterRoleBinding ringmesh-control) | .subjects[0].namespace" mesh-prod "ClusterRoleBinding subject"
expect other-ns "$ctr | [.args[] | select(startswith(\"--namespace\"))] | join(\"\")" --namespace=mesh-prod "--namespace"
rm_assert_eq "$(embedded other-ns ringmesh-injector injector.yaml | jq -r '.spec | "\(.meshNamespace) \(.controlPlaneAddress)"')" \
    "mesh-prod ringmesh-control.mesh-prod.svc:15012" "other-ns: the injector points at the release namespace"
rm_assert_eq "$(embedded other-ns ringmesh-mesh mesh.yaml | jq -r .spec.rootNamespace)" mesh-prod \
    "other-ns: the mesh's root namespace"

render mesh-settings -n ringmesh-system --set mesh.trustDomain=prod.example.org \
    --set 'mesh.trustDomainAliases={cluster.local,old.example.org}' --set mesh.defaultAction=ALLOW --set mesh.mtlsMode=PERMISSIVE \
    --set mesh.svidTTL=1h30m --set mesh.logAllowed=true --set mesh.pathNormalization=DECODE_AND_MERGE_SLASHES
expect mesh-settings "$ctr | [.args[] | select(startswith(\"--max-svid-ttl\"))] | join(\"\")" --max-svid-ttl=1h30m \
    "the SVID lifetime bounds what the CA issues"

# The MeshConfig documents rendered are accepted by the control plane's own loader (its file source reads the
# same documents): it starts serving on each, and refuses a broken one.
rm_log "--- the control plane's loader reads the rendered MeshConfig"
"$RM_CTL_BIN" token keygen --key "$dir/jwt.pem" --jwks "$dir/jwks.json" >/dev/null
control_loads() { # CASE: 0 when ringmesh-control accepts the case's mesh.yaml and serves
    local d=$dir/control-$1 i
    mkdir -p "$d/cfg" "$d/state"
    q "$1" "$(obj ConfigMap ringmesh-mesh) | .data[\"mesh.yaml\"]" >"$d/cfg/mesh.yaml"
    [ -z "${2:-}" ] || sed -i "$2" "$d/cfg/mesh.yaml"
    : >"$d/log"
    "$RM_CONTROL_BIN" --config-dir "$d/cfg" --jwks "$dir/jwks.json" --listen 127.0.0.1:0 --admin-listen off \
        --state-dir "$d/state" >>"$d/log" 2>&1 &
    control_pid=$!
    for ((i = 0; i < 100; i++)); do
        grep -q '"event":"control_started"' "$d/log" && break
        kill -0 "$control_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$control_pid" 2>/dev/null || true
    wait "$control_pid" 2>/dev/null || true
    control_pid=""
    grep -q '"event":"config_accepted"' "$d/log" && grep -q '"event":"control_started"' "$d/log"
}
for c in default mesh-settings other-ns; do
    control_loads $c || rm_fail "$c: ringmesh-control refused the rendered MeshConfig: $(cat "$dir/control-$c/log")"
    rm_log "ok: $c: ringmesh-control accepts the rendered MeshConfig"
done
cp "$dir/default.json" "$dir/broken.json"
if control_loads broken 's/defaultAction: DENY/defaultAction: deny/'; then
    rm_fail "the loader check is vacuous: a broken MeshConfig was accepted"
fi
grep -q '"event":"config_invalid"' "$dir/control-broken/log" || rm_fail "no config_invalid for a broken MeshConfig"
rm_log "ok: a broken MeshConfig is refused by the same check"

# --- bad values: refused by values.schema.json, with the value's path in the message
refused() { # WANT_IN_MESSAGE HELM_ARGS...
    local want=$1 out
    shift
    if out=$(helm template ringmesh "$chart" -n ringmesh-system "$@" 2>&1); then
        rm_fail "helm accepted $*"
    fi
    grep -qF -- "$want" <<<"$out" || rm_fail "$*: the message lacks '$want': $out"
    rm_log "ok: refused $* ($want)"
}
refused "at '/control/replicas': minimum: got 0, want 1" --set control.replicas=0
refused "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'" --set webhook.failurePolicy=Sometimes
refused "at '/webhook/timeoutSeconds'" --set webhook.timeoutSeconds=60
refused "at '/mesh/defaultAction': value must be one of 'DENY', 'ALLOW'" --set mesh.defaultAction=deny
refused "at '/mesh/mtlsMode'" --set mesh.mtlsMode=OFF
refused "at '/mesh/svidTTL': '1d' does not match" --set mesh.svidTTL=1d
refused "at '/mesh/trustDomain'" --set mesh.trustDomain=Cluster.Local
refused "at '/mesh/pathNormalization'" --set mesh.pathNormalization=base
refused "at '/injector/nativeSidecar'" --set injector.nativeSidecar=maybe
refused "at '/injector/excludeOutboundPorts/0'" --set 'injector.excludeOutboundPorts={0}'
refused "at '/injector/excludeOutboundIPRanges/0'" --set 'injector.excludeOutboundIPRanges={metadata.internal}'
refused "at '/injector/tokenExpirationSeconds'" --set injector.tokenExpirationSeconds=60
refused "at '/image/pullPolicy'" --set image.pullPolicy=Sometimes
refused "at '/control/antiAffinity'" --set control.antiAffinity=strict
refused "at '/proxy/uid'" --set proxy.uid=0
refused "at '/control/resources/requests/cpu'" --set control.resources.requests.cpu=lots
refused "at '/ca/existingSecret'" --set ca.existingSecret=Bad_Name
refused "at '/webhook/certManager/issuerRef/name'" --set webhook.certManager.enabled=true
refused "additional properties 'replica' not allowed" --set control.replica=3

# --- NOTES: how to mesh a namespace, where the decisions are logged
notes=$(helm install ringmesh "$chart" -n ringmesh-system --dry-run=client 2>&1 | sed -n '/^NOTES:/,$p')
for want in "kubectl label namespace NAMESPACE ringmesh.io/inject=enabled" "kubectl rollout restart deploy -n NAMESPACE" \
    "kubectl logs deploy/WORKLOAD -n NAMESPACE -c ringmesh-proxy | grep '\"event\":\"authz\"'" \
    "kubectl -n ringmesh-system rollout status deploy/ringmesh-control"; do
    grep -qF -- "$want" <<<"$notes" || rm_fail "NOTES lacks: $want: $notes"
done
rm_log "ok: NOTES tells how to label a namespace and where the decision logs are"

# --- the oldest Kubernetes the chart is for renders; an older one is refused by Chart.yaml's kubeVersion
helm template ringmesh "$chart" -n ringmesh-system --kube-version 1.25.0 >/dev/null || rm_fail "Kubernetes 1.25 refused"
if out=$(helm template ringmesh "$chart" -n ringmesh-system --kube-version 1.24.0 2>&1); then
    rm_fail "Kubernetes 1.24 was not refused"
fi
grep -q 'requires kubeVersion: >=1.25.0-0' <<<"$out" || rm_fail "Kubernetes 1.24: $out"
rm_log "ok: Kubernetes 1.25 renders, 1.24 is refused"

# --- the packaged chart renders what the directory renders (nothing the templates need is left out by .helmignore)
helm package "$chart" -d "$dir" >/dev/null
helm template ringmesh "$dir/ringmesh-$(sed -n 's/^version: //p' "$chart/Chart.yaml").tgz" --include-crds -n ringmesh-system \
    >"$dir/packaged.yaml"
cmp -s "$dir/packaged.yaml" "$dir/default.yaml" || rm_fail "the packaged chart renders differently: $(diff "$dir/default.yaml" "$dir/packaged.yaml" | head)"
rm_log "ok: helm package: the archive renders the same objects"

# --- the README's values table is generated from values.yaml, and every value must be documented
out=$(python3 "$RM_SOURCE_DIR/scripts/chart-readme.py" --check 2>&1) || rm_fail "$out"
rows=$(grep -c '^| `' "$chart/README.md")
[ "$rows" -ge 40 ] || rm_fail "the README's values table has only $rows rows"
rm_log "ok: the values tables of the chart's README and docs/helm-chart.md ($rows rows) are in sync with values.yaml"
cp -r "$chart" "$dir/undocumented"
sed -i 's/^  replicas: 2$/  replicas: 2\n  surge: 1/' "$dir/undocumented/values.yaml"
if out=$(python3 "$RM_SOURCE_DIR/scripts/chart-readme.py" --chart "$dir/undocumented" --check 2>&1); then
    rm_fail "a value without a comment was not refused"
fi
grep -qF "values.yaml:$(grep -n '^  surge: 1$' "$dir/undocumented/values.yaml" | cut -d: -f1): control.surge has no comment" <<<"$out" ||
    rm_fail "the message does not name the undocumented value: $out"
rm_log "ok: an undocumented value is refused ($out)"
rm_log PASS
