#!/usr/bin/env bash
# Every flag the chart passes to ringmesh-control is one the binary accepts: the chart is rendered (default values,
# cert-manager mode, a user-supplied CA Secret, a custom trust domain and log level), the Deployment's args are taken
# from the rendered object, the in-pod file paths are rewritten to files made from the rendered ConfigMaps (and a
# certificate pair for cert-manager mode), and `ringmesh-control --check-config ARGS` must exit 0. A flag the binary
# refuses, a MeshConfig or InjectorConfig it rejects, or a mismatch between them fails the test. Also proves that
# --check-config itself refuses what a start would refuse (an unknown flag, a bad InjectorConfig, a webhook pair
# that does not match) with the file named, so its exit 0 above means something.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
rm_require_cmds jq openssl
rm_k8s_require_tools
rm_setup_no_netns
[ -x "$RM_CONTROL_BIN" ] || rm_fail "ringmesh-control is not built ($RM_CONTROL_BIN)"

D=$RM_TMP/flags
mkdir -p "$D"
yaml2json() {
    NODE_PATH=$RM_NPM_TOOLS/node_modules node "$RM_SOURCE_DIR/tests/tools/yaml2json.mjs" "$1"
}

# a webhook serving pair as cert-manager's Secret volume would hold it
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/tls.key" -out "$D/tls.crt" \
    -days 1 -subj /CN=ringmesh-control.ringmesh-system.svc \
    -addext subjectAltName=DNS:ringmesh-control.ringmesh-system.svc 2>/dev/null || rm_fail "openssl: webhook pair"

# render NAME [helm --set ...]: renders the chart, writes the ConfigMaps' keys as files, prints the rewritten args
render() {
    local name=$1 dir=$D/$1
    shift
    mkdir -p "$dir"
    "$RM_HELM" template ringmesh "$RM_SOURCE_DIR/charts/ringmesh" -n ringmesh-system "$@" >"$dir/out.yaml" ||
        rm_fail "$name: helm template failed"
    yaml2json "$dir/out.yaml" >"$dir/out.json" || rm_fail "$name: the rendered YAML does not parse"
    jq -r '.[] | select(.kind == "ConfigMap" and .metadata.name == "ringmesh-mesh") | .data["mesh.yaml"]' \
        "$dir/out.json" >"$dir/mesh.yaml"
    jq -r '.[] | select(.kind == "ConfigMap" and .metadata.name == "ringmesh-injector") | .data["injector.yaml"]' \
        "$dir/out.json" >"$dir/injector.yaml"
    [ -s "$dir/mesh.yaml" ] && [ -s "$dir/injector.yaml" ] || rm_fail "$name: the ConfigMaps are not rendered"
    jq -r '.[] | select(.kind == "Deployment" and .metadata.name == "ringmesh-control") |
        .spec.template.spec.containers[] | select(.name == "ringmesh-control") | .args[]' "$dir/out.json" |
        sed -e "s|=/etc/ringmesh/mesh/mesh.yaml|=$dir/mesh.yaml|" \
            -e "s|=/etc/ringmesh/injector/injector.yaml|=$dir/injector.yaml|" \
            -e "s|=/etc/ringmesh/webhook-tls/tls.crt|=$D/tls.crt|" -e "s|=/etc/ringmesh/webhook-tls/tls.key|=$D/tls.key|" \
            -e "s|=/var/lib/ringmesh-control|=$dir/state|" >"$dir/args"
    [ -s "$dir/args" ] || rm_fail "$name: no args in the rendered Deployment"
    # every path left must be one of ours: an in-pod path the rewrite missed would be checked as missing
    if grep -E '=/(etc|var)/' "$dir/args"; then
        rm_fail "$name: an in-pod path is not rewritten (the test's list above must follow the chart)"
    fi
}

# check NAME [helm --set ...]: the rendered args pass --check-config
check() {
    local name=$1 out rc=0
    render "$@"
    mapfile -t args <"$D/$name/args"
    out=$("$RM_CONTROL_BIN" --check-config "${args[@]}" 2>&1) || rc=$?
    [ "$rc" = 0 ] || rm_fail "$name: ringmesh-control refuses the chart's flags (exit $rc): $out
args: ${args[*]}"
    [[ $out == *"configuration valid"* ]] || rm_fail "$name: no verdict: $out"
    rm_log "$name: ${#args[@]} flags accepted: ${args[*]}"
}

case_default() { check default; }
case_cert_manager() {
    check cert-manager --set webhook.certManager.enabled=true --set webhook.certManager.issuerRef.name=ca-issuer
    grep -qx -- "--webhook-cert=$D/tls.crt" "$D/cert-manager/args" || rm_fail "cert-manager: no --webhook-cert rendered"
}
case_existing_ca() {
    check existing-ca --set ca.existingSecret=corp-ca
    grep -qx -- "--ca-secret=corp-ca" "$D/existing-ca/args" || rm_fail "existing-ca: --ca-secret is not the Secret given"
}
case_custom_values() {
    check custom --set mesh.trustDomain=prod.example.com --set control.logLevel=debug --set mesh.svidTTL=2h
}

# --check-config is not a rubber stamp: what a start refuses, it refuses, naming the file
case_check_refuses() {
    local out rc
    mapfile -t args <"$D/default/args"
    rc=0
    out=$("$RM_CONTROL_BIN" --check-config "${args[@]}" --no-such-flag 2>&1) || rc=$?
    [ "$rc" != 0 ] || rm_fail "an unknown flag passed --check-config"
    printf 'spec:\n  nativeSidecar: sometimes\n' >>"$D/default/injector.yaml"
    rc=0
    out=$("$RM_CONTROL_BIN" --check-config "${args[@]}" 2>&1) || rc=$?
    [ "$rc" = 1 ] || rm_fail "a bad InjectorConfig passed --check-config (exit $rc): $out"
    [[ $out == *"$D/default/injector.yaml"* ]] || rm_fail "the refusal does not name the InjectorConfig: $out"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/other.key" -out "$D/other.crt" \
        -days 1 -subj /CN=other 2>/dev/null
    mapfile -t args <"$D/cert-manager/args"
    rc=0
    out=$("$RM_CONTROL_BIN" --check-config "${args[@]/#--webhook-key=*/--webhook-key=$D/other.key}" 2>&1) || rc=$?
    [ "$rc" = 1 ] || rm_fail "a webhook key that is not the certificate's passed --check-config: $out"
    [[ $out == *"$D/tls.crt"* ]] || rm_fail "the refusal does not name the webhook pair: $out"
    rm_log "refused as a start would: $out"
}

rm_case "default values" case_default
rm_case "cert-manager mode" case_cert_manager
rm_case "user-supplied CA Secret" case_existing_ca
rm_case "custom trust domain, log level, SVID lifetime" case_custom_values
rm_case "--check-config refuses what a start refuses" case_check_refuses
rm_finish
