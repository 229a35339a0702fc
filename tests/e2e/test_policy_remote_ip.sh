#!/usr/bin/env bash
# remoteIpBlocks and remote.ip behind trusted proxies: the MeshConfig's defaultConfig.gatewayTopology.numTrustedProxies
# (Istio's) is pushed to the sidecars, and remote.ip is then the Nth address from the right of the request's
# X-Forwarded-For (when it has that many), else the connection's source IP, as in Istio. Every decision is made twice:
# by a real request through the namespace mesh (web's sidecar to orders' sidecar, the orders proxy's decision log),
# and by `ringmeshctl policy check` given the same header and --num-trusted-proxies.
#
# orders (ns shop) runs an HTTP/1.1 app on 8080; web (ns web) has a sidecar and sends requests with curl.
#   ALLOW remoteIpBlocks [203.0.113.0/24]; DENY when remote.ip is in 192.0.2.0/24.
#   - numTrustedProxies 1: XFF "203.0.113.7" allowed; "203.0.113.7, 198.51.100.1" denied (the last address decides);
#     no XFF denied (web's own address); "192.0.2.5" denied by the DENY policy.
#   - numTrustedProxies 2: "203.0.113.7, 198.51.100.1" allowed; "203.0.113.7" alone (fewer than 2): the source IP.
#   - numTrustedProxies absent (0): "203.0.113.7" denied, the header is not trusted.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds curl jq /usr/bin/python3
rm_setup
RM_DEFAULT_ACTION=DENY rm_control_init

APP=$RM_SOURCE_DIR/tests/e2e/tools/http_app.py
MESH=$RM_TMP/control/mesh
VIP=198.19.0.42
TD=$RM_TRUST_DOMAIN

# mesh_config N: the MeshConfig with numTrustedProxies N ("" for none), written aside and renamed
mesh_config() {
    local topology=""
    [ -n "$1" ] && topology="  defaultConfig: {gatewayTopology: {numTrustedProxies: $1}}"
    cat >"$MESH/.mesh.yaml.new" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec:
  trustDomain: $TD
  mtls: {mode: STRICT}
  svidTTL: 1h
  authorization: {defaultAction: DENY, logAllowed: "true"}
$topology
EOF
    mv -f "$MESH/.mesh.yaml.new" "$MESH/mesh.yaml"
}

POLICIES=$RM_TMP/policies
mkdir -p "$POLICIES"
cat >"$POLICIES/remote-ip.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-clients, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  rules:
  - from:
    - source: {remoteIpBlocks: ["203.0.113.0/24"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-blocked, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  action: DENY
  rules:
  - when:
    - key: remote.ip
      values: ["192.0.2.0/24"]
EOF
cp "$POLICIES/remote-ip.yaml" "$MESH/policy.yaml"
rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders
mesh_config 1

rm_pod_create orders
rm_pod_create web
rm_service "$VIP:8080" orders:8080
rm_bg app-http orders "$RM_TMP/logs/app-http.log" /usr/bin/python3 "$APP" http 8080
rm_wait_port orders 8080 10 app-http
rm_control_start main node 0.0.0.0:15012
rm_pod_mesh orders "control=$(rm_pod_gateway orders):15012" ns=shop sa=orders labels=app=orders
rm_pod_mesh web "control=$(rm_pod_gateway web):15012" ns=web sa=frontend labels=app=web
for p in orders web; do rm_wait_ready "$p"; done
OLOG=$(rm_proxy_log orders)
WEB_IP=${RM_POD_IP[web]}

accepted() { rm_log_count "$OLOG" '.event == "config_accepted" and .type == "workload_policy"'; }
# policies_taken N0: waits until orders' proxy has accepted more than N0 WorkloadPolicy pushes
policies_taken() {
    local deadline=$(($(rm_now_ms) + 15000))
    until [ "$(accepted)" -gt "$1" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "orders' proxy took no new policies within 15 s"
        sleep 0.05
    done
}

# request NAME NTP EXPECT DECIDER [XFF]: one GET / from web with X-Forwarded-For XFF (none when absent), then the
# same through policy check with --num-trusted-proxies NTP. EXPECT allow|deny; DECIDER "ns/name#rule" or
# "no-allow-match".
request() {
    local name=$1 ntp=$2 expect=$3 decider=$4 xff=${5-} hdrs=() args=() n0 code line deadline out rc=0
    [ -n "$xff" ] && hdrs=(-H "X-Forwarded-For: $xff") && args=(--header "x-forwarded-for=$xff")
    n0=$(rm_log_count "$OLOG" '.event == "authz"')
    code=$(rm_exec web curl -s -o "$RM_TMP/logs/$name.body" -w '%{http_code}' "${hdrs[@]}" --max-time 10 \
        "http://$VIP:8080/") || true
    rm_assert_eq "$code" "$([ "$expect" = allow ] && echo 200 || echo 403)" "$name: HTTP status"
    deadline=$(($(rm_now_ms) + 5000))
    until [ "$(rm_log_count "$OLOG" '.event == "authz"')" -gt "$n0" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$name: no decision logged"
        sleep 0.05
    done
    line=$(rm_log_select "$OLOG" '.event == "authz"' | tail -n 1)
    LAST_LINE=$line
    rm_assert_eq "$(rm_json "$line" .decision)" "$expect" "$name: logged decision"
    rm_assert_eq "$(rm_json "$line" .source_ip)" "$WEB_IP" "$name: the connection's source is web"
    out=$("$RM_CTL_BIN" policy check -f "$POLICIES" --to-namespace shop --to-labels app=orders --port 8080 \
        --from "spiffe://$TD/ns/web/sa/frontend" --source-ip "$WEB_IP" --method GET --path / \
        --num-trusted-proxies "$ntp" "${args[@]}" -o json 2>&1) || rc=$?
    rm_assert_eq "$rc" "$([ "$expect" = allow ] && echo 0 || echo 3)" "$name (policy check): exit status ($out)"
    local l
    for l in "$line" "$out"; do
        if [ "$decider" = no-allow-match ]; then
            rm_assert_eq "$(rm_json "$l" .reason)" "no ALLOW policy matched" "$name: reason"
        else
            rm_assert_eq "$(rm_json "$l" .policy)" "${decider%#*}" "$name: deciding policy"
            rm_assert_eq "$(rm_json "$l" .rule)" "${decider#*#}" "$name: deciding rule"
        fi
    done
}

# --- one trusted proxy
request ntp1-client 1 allow "shop/allow-clients#0" "203.0.113.7"
rm_assert_eq "$(rm_json "$LAST_LINE" .remote_ip)" 203.0.113.7 "the log names the remote.ip taken from X-Forwarded-For"
request ntp1-last-decides 1 deny no-allow-match "203.0.113.7, 198.51.100.1"
request ntp1-no-xff 1 deny no-allow-match
request ntp1-blocked 1 deny "shop/deny-blocked#0" "192.0.2.5"
request ntp1-not-an-address 1 deny no-allow-match "unknown"

# --- two trusted proxies (a pushed MeshConfig change)
n0=$(accepted)
mesh_config 2
policies_taken "$n0"
request ntp2-client 2 allow "shop/allow-clients#0" "203.0.113.7, 198.51.100.1"
request ntp2-too-few 2 deny no-allow-match "203.0.113.7"

# --- none: the header is not trusted, remote.ip is the source IP
n0=$(accepted)
mesh_config ""
policies_taken "$n0"
request ntp0-untrusted 0 deny no-allow-match "203.0.113.7"
rm_assert_eq "$(rm_json "$LAST_LINE" .remote_ip)" null "no remote_ip in the log when it is the source IP"
request ntp0-blocked-ignored 0 deny no-allow-match "192.0.2.5"

rm_finish
