# shellcheck shell=bash
# The control plane: its configuration directory, mesh services, tokens, and starting ringmesh-control.
# Part of the end-to-end harness: sourced by tests/e2e/lib.sh (never on its own), whose globals it uses.

# rm_control_init: a token signing key and its JWKS ($RM_TMP/control/token-key.pem, jwks.json) and an empty mesh
# configuration directory ($RM_TMP/control/mesh) with a MeshConfig for $RM_TRUST_DOMAIN. Workloads no policy
# selects are allowed unless RM_DEFAULT_ACTION=DENY (the mesh's own default): tests of other features are not
# about authorization.
rm_control_init() {
    [ -x "$RM_CONTROL_BIN" ] || rm_skip "ringmesh-control is not built ($RM_CONTROL_BIN)"
    [ -x "$RM_CTL_BIN" ] || rm_skip "ringmeshctl is not built ($RM_CTL_BIN)"
    mkdir -p "$RM_TMP/control/mesh" "$RM_TMP/control/state"
    "$RM_CTL_BIN" token keygen --key "$RM_TMP/control/token-key.pem" --jwks "$RM_TMP/control/jwks.json" --kid e2e \
        >"$RM_TMP/control/keygen.log" 2>&1 || {
        cat "$RM_TMP/control/keygen.log" >&2
        rm_fail "ringmeshctl token keygen failed"
    }
    cat >"$RM_TMP/control/mesh/mesh.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec:
  trustDomain: $RM_TRUST_DOMAIN
  mtls: {mode: STRICT}
  svidTTL: 1h
  authorization: {defaultAction: ${RM_DEFAULT_ACTION:-ALLOW}}
EOF
}

# rm_mesh_service FILE NAME NAMESPACE ADDRESS PORT SERVICE_ACCOUNT: writes a one-address, one-port, in-mesh Service
# served by SERVICE_ACCOUNT into the control plane's configuration directory as FILE
rm_mesh_service() {
    cat >"$RM_TMP/control/mesh/$1" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: $2, namespace: $3}
spec:
  addresses: [$4]
  ports: [$5]
  serviceAccounts: [$6]
EOF
}

# rm_token NAMESPACE SA OUTFILE [ringmeshctl token mint args...]: a projected-ServiceAccount-style token
rm_token() {
    local ns=$1 sa=$2 out=$3
    shift 3
    "$RM_CTL_BIN" token mint --key "$RM_TMP/control/token-key.pem" --kid e2e --namespace "$ns" \
        --service-account "$sa" "$@" >"$out" 2>"$out.stderr" || {
        cat "$out.stderr" >&2
        rm_fail "ringmeshctl token mint failed"
    }
}

# rm_service_move VIP:PORT POD:PORT: points the service at another pod (as kube-proxy does when endpoints change):
# removes the VIP's DNAT rules and adds the new one. Connections already tracked keep their old destination.
rm_service_move() {
    local vip=${1%:*} vport=${1##*:} rule
    while rule=$(ip netns exec "$RM_NODE_NS" iptables -t nat -S PREROUTING |
        grep -F -- "-d $vip/32 -p tcp -m tcp --dport $vport " | head -n 1) && [ -n "$rule" ]; do
        # shellcheck disable=SC2086 # the rule is a list of iptables words
        ip netns exec "$RM_NODE_NS" iptables -t nat -D ${rule#-A }
    done
    rm_service "$@"
}

# rm_pod_gateway POD: the node-side address of POD's veth (where a control plane in the node namespace listens)
rm_pod_gateway() {
    echo "${RM_POD_IP[$1]%.2}.1"
}

# rm_wait_ready POD [TIMEOUT_S]: waits until POD's proxy logs proxy_ready (SVID and configuration in place)
rm_wait_ready() {
    rm_expect_log "$(rm_proxy_log "$1")" '.event == "proxy_ready"' "the proxy in pod $1 is ready" "${2:-20}"
}

# rm_control_start NAME POD|- LISTEN [ringmesh-control args...]: starts the control plane (log
# $RM_TMP/logs/control-NAME.log) and waits for control_started
rm_control_start() {
    local name=$1 pod=$2 listen=$3
    shift 3
    rm_bg "control-$name" "$pod" "$RM_TMP/logs/control-$name.log" "$RM_CONTROL_BIN" --listen "$listen" \
        --config-dir "$RM_TMP/control/mesh" --state-dir "$RM_TMP/control/state" --jwks "$RM_TMP/control/jwks.json" \
        --log-level debug "$@"
    rm_wait_log "$RM_TMP/logs/control-$name.log" '.event == "control_started"' 15 >/dev/null || {
        cat "$RM_TMP/logs/control-$name.log" "$RM_TMP/logs/control-$name.log.stderr" >&2 || true
        rm_fail "ringmesh-control $name did not start"
    }
}
