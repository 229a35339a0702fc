#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Policies in operation, in the namespace mesh with ringmesh-control:
#   - a denied request's log line carries every field a reader needs (policy, rule, why, who, where, trace id);
#   - HTTP/1.1 keep-alive and HTTP/2 (h2c) connections stay usable after a 403;
#   - a policy change written to the control plane's directory is enforced by the sidecar (the delay is logged), while a
#     stream of allowed requests running across the change loses none; requests on a connection kept alive across
#     the change are decided on the new policies;
#   - an invalid change is rejected with file, line and field, by the control plane and by `ringmeshctl policy
#     lint`, and the policies in force stay;
#   - /metrics counts decisions per policy and rule; /config_dump shows the policies in force.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds curl jq nghttp /usr/bin/python3
rm_setup
RM_DEFAULT_ACTION=DENY rm_control_init

APP=$RM_SOURCE_DIR/tests/e2e/tools/http_app.py
POLICIES=$RM_SOURCE_DIR/tests/data/policy/table
MESH=$RM_TMP/control/mesh
VIP=198.19.0.30
TD=$RM_TRUST_DOMAIN

cat >"$MESH/orders.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  addresses: [$VIP]
  ports: [8080, 9090]
  serviceAccounts: [orders]
EOF
cp "$POLICIES/allow-all.yaml" "$MESH/allow-all.yaml"
cp "$POLICIES/deny-admin-suffix.yaml" "$MESH/deny-admin.yaml"

rm_pod_create orders
rm_pod_create web
rm_pod_create evil
rm_pod_create plain
rm_service "$VIP:8080" orders:8080
rm_service "$VIP:9090" orders:9090
rm_bg app-http orders "$RM_TMP/logs/app-http.log" /usr/bin/python3 "$APP" http 8080
rm_bg app-grpc orders "$RM_TMP/logs/app-grpc.log" /usr/bin/python3 "$APP" grpc 9090
rm_wait_port orders 8080 10 app-http
rm_wait_port orders 9090 10 app-grpc

rm_control_start main node 0.0.0.0:15012
CLOG=$RM_TMP/logs/control-main.log
rm_pod_mesh orders "control=$(rm_pod_gateway orders):15012" ns=shop sa=orders labels=app=orders
rm_pod_mesh web "control=$(rm_pod_gateway web):15012" ns=web sa=frontend labels=app=web
rm_pod_mesh evil "control=$(rm_pod_gateway evil):15012" ns=evil sa=attacker labels=app=evil
for p in orders web evil; do rm_wait_ready "$p"; done
OLOG=$(rm_proxy_log orders)
URL=http://$VIP:8080
ACCEPTED='.event == "config_accepted" and .type == "workload_policy"'

# policies_taken: how many WorkloadPolicy pushes orders' proxy has accepted
policies_taken() {
    rm_log_count "$OLOG" "$ACCEPTED"
}

# wait_policies N0 WHAT: waits (10 s at most) until orders' proxy has accepted more than N0 pushes
wait_policies() {
    local deadline=$(($(rm_now_ms) + 10000))
    until [ "$(policies_taken)" -gt "$1" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "orders' proxy did not take $2 within 10 s"
        sleep 0.01
    done
}

case_decision_log_fields() {
    local body="$RM_TMP/logs/admin.body" code line
    local trace=4bf92f3577b34da6a3ce929d0e0e4736
    code=$(rm_exec web curl -s -o "$body" -w '%{http_code}' -H "traceparent: 00-$trace-00f067aa0ba902b7-01" \
        -H "Host: orders.shop.svc.cluster.local" --max-time 10 "$URL/shop/admin?x=1") || true
    rm_assert_eq "$code" 403 "GET /shop/admin is denied"
    rm_assert_eq "$(cat "$body")" "RBAC: access denied" "with Istio's body"
    line=$(rm_wait_log "$OLOG" '.event == "authz" and .path == "/shop/admin?x=1"' 5) || rm_fail "no decision line"
    rm_log "decision line: $line"
    local want
    for want in ".level == \"warn\"" ".decision == \"deny\"" ".policy == \"shop/deny-admin\"" ".rule == 0" \
        ".action == \"DENY\"" ".reason == \"denied by policy\"" \
        ".explanation == \"denied by DENY policy shop/deny-admin rule 0\"" \
        ".source_principal == \"spiffe://$TD/ns/web/sa/frontend\"" ".source_namespace == \"web\"" \
        ".source_ip == \"${RM_POD_IP[web]}\"" ".destination_workload == \"shop/orders\"" \
        ".destination_port == 8080" ".protocol == \"http1\"" ".method == \"GET\"" ".host == \"orders.shop.svc.cluster.local\"" \
        ".trace_id == \"$trace\"" "(.ts | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T\"))" "(.policy_version | length) == 16"; do
        [ "$(rm_json "$line" "$want")" = true ] || rm_fail "the decision line lacks $want: $line"
    done
    rm_log "ok: the decision line names the policy, rule, reason, source, destination, request and trace"
    rm_expect_no_log "$RM_TMP/logs/app-http.log" '.path == "/shop/admin?x=1"' "the denied request never reached the app"
}

case_keepalive_after_403() {
    local out
    # two requests on one connection: denied, then allowed; curl reports a new connection only for the first
    out=$(rm_exec web curl -s -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' --max-time 10 "$URL/a/admin" \
        "$URL/ok") ||
        rm_fail "curl failed: $out"
    rm_assert_eq "$(echo "$out" | tr '\n' ' ')" "403 1 200 0 " "HTTP/1.1: 403, then 200 on the same connection"
    # HTTP/2 (h2c, nghttp2's client) to the gRPC app: two streams on one connection, the first denied; the second
    # must reach the app (which answers a plain GET in its own way: what matters is that it got the stream)
    out=$(rm_exec web timeout 10 nghttp -v --no-dep "http://$VIP:9090/b/admin" "http://$VIP:9090/ok2" 2>&1) || true
    rm_assert_eq "$(echo "$out" | grep -c '\] Connected')" 1 "HTTP/2: one connection"
    echo "$out" | grep -q 'recv (stream_id=1, sensitive) :status: 403' || rm_fail "HTTP/2: stream 1 not answered 403: $out"
    # the gRPC app answers a GET itself, without calling a handler: its content-type shows the answer is its own
    echo "$out" | grep -q 'recv (stream_id=3) content-type: application/grpc' ||
        rm_fail "HTTP/2: stream 3 was not answered by the app: $out"
    rm_log "ok: HTTP/2: stream 1 got the proxy's 403, stream 3 on the same connection the app's answer"
    rm_expect_log "$OLOG" '.event == "authz" and .path == "/b/admin" and .protocol == "http2" and .decision == "deny"' \
        "the HTTP/2 stream was decided on its path"
}

case_change_within_1s_no_loss() {
    # allowed traffic from web across the change: a bounded loop, each request's status in a file
    local loop="$RM_TMP/logs/loop.status"
    rm_bg loop web "$loop" bash -c "for i in \$(seq 1 300); do curl -s -o /dev/null -w '%{http_code}\n' \
        --max-time 5 $URL/steady/\$i; sleep 0.01; done"
    sleep 1
    rm_exec evil curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/before" | grep -qx 200 ||
        rm_fail "evil is allowed before the change"
    local n0 t0 t1 accepted
    n0=$(policies_taken)
    cp "$POLICIES/deny-evil-ns.yaml" "$RM_TMP/deny-evil.tmp"
    t0=$(rm_now_ms)
    mv "$RM_TMP/deny-evil.tmp" "$MESH/deny-evil.yaml" # one atomic change, as a ConfigMap update is
    wait_policies "$n0" "the change"
    accepted=$(rm_log_select "$OLOG" "$ACCEPTED" | tail -n 1 | jq -r .ts)
    t1=$(($(date -d "$accepted" +%s%N) / 1000000))
    rm_log "the change was written at $t0 ms and in force in orders' proxy at $t1 ms: $((t1 - t0)) ms"
    local code
    code=$(rm_exec evil curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/after") || true
    rm_assert_eq "$code" 403 "evil is denied right after the change"
    rm_wait_exit loop 60 || rm_fail "the request loop did not finish"
    local total ok
    total=$(wc -l <"$loop")
    ok=$(grep -cx 200 "$loop" || true)
    rm_assert_eq "$total" 300 "the loop made all its requests"
    rm_assert_eq "$ok" 300 "every allowed request across the change got 200"
}

case_invalid_change_rejected() {
    local n0 v0
    n0=$(policies_taken)
    v0=$(rm_log_select "$OLOG" "$ACCEPTED" | tail -n 1 | jq -r .version)
    cat >"$MESH/bad.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad, namespace: shop}
spec:
  action: DENY
  rules:
  - to:
    - operation:
        ports: ["80800"]
EOF
    rm_expect_log "$CLOG" '.event == "config_rejected" and (.file | endswith("bad.yaml")) and .line == 9
        and .field == "spec.rules[0].to[0].operation.ports[0]"' "the control plane rejects the change with file, line and field" 10
    rm_log "rejection: $RM_LINE"
    local out rc=0
    out=$("$RM_CTL_BIN" policy lint "$MESH/bad.yaml" 2>&1) || rc=$?
    rm_assert_eq "$rc" 1 "ringmeshctl policy lint exits 1 on it"
    echo "$out" | grep -q 'bad.yaml:9:17: spec.rules\[0\].to\[0\].operation.ports\[0\]: "80800" is not a port number' ||
        rm_fail "lint does not name file, line and field: $out"
    rm_log "ok: lint says: $(echo "$out" | head -n 1)"
    sleep 1
    rm_assert_eq "$(policies_taken)" "$n0" \
        "no new policy reached the sidecar"
    local dump
    dump=$(rm_exec orders curl -sf http://127.0.0.1:15021/config_dump) || rm_fail "GET /config_dump failed"
    rm_assert_eq "$(rm_json "$dump" .authorization.version)" "$v0" "the policies in force stay"
    rm_assert_eq "$(rm_json "$dump" '[.authorization.policies[].name] | join(",")')" \
        "shop/allow-all,shop/deny-admin,shop/deny-evil" "/config_dump lists the policies in force"
    rm_assert_eq "$(rm_exec evil curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/still")" 403 "evil still denied"
    rm_assert_eq "$(rm_exec web curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/still")" 200 "web still allowed"
    rm -f "$MESH/bad.yaml"
}

case_metrics() {
    local m
    m=$(rm_exec orders curl -sf http://127.0.0.1:15021/metrics) || rm_fail "GET /metrics failed"
    local v
    v=$(echo "$m" | awk '$1 == "ringmesh_proxy_authz_decisions_total{decision=\"deny\",policy=\"shop/deny-admin\",rule=\"0\"}" {print $2}')
    [ -n "$v" ] && [ "$v" -ge 2 ] || rm_fail "no deny count for shop/deny-admin rule 0: $(echo "$m" | grep authz)"
    v=$(echo "$m" | awk '$1 == "ringmesh_proxy_authz_decisions_total{decision=\"deny\",policy=\"shop/deny-evil\",rule=\"0\"}" {print $2}')
    [ -n "$v" ] && [ "$v" -ge 2 ] || rm_fail "no deny count for shop/deny-evil rule 0: $(echo "$m" | grep authz)"
    rm_log "ok: /metrics counts decisions per policy and rule"
}

case_change_reaches_kept_alive_connection() {
    # a connection opened before a change: its next request is decided on the new policies
    local flag="$RM_TMP/kept.flag" out="$RM_TMP/logs/kept.out" n0
    rm -f "$flag"
    rm_bg kept web "$out" /usr/bin/python3 "$RM_SOURCE_DIR/tests/e2e/tools/keepalive_client.py" "$VIP" 8080 "$flag" \
        /kept/one /kept/two
    local deadline=$(($(rm_now_ms) + 10000))
    until grep -q '^first' "$out" 2>/dev/null; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "the kept-alive client made no first request"
        sleep 0.05
    done
    rm_assert_eq "$(grep '^first' "$out")" "first 200" "the first request is allowed"
    n0=$(policies_taken)
    cat >"$MESH/deny-kept.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-kept, namespace: shop}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/kept/two"]}}]}]
EOF
    wait_policies "$n0" "the new DENY policy"
    touch "$flag"
    rm_wait_exit kept 20 || true
    rm_assert_eq "$(grep '^second' "$out")" "second 403 same-connection" \
        "the next request on the kept-alive connection is denied by the new policy"
    rm_expect_log "$OLOG" '.event == "authz" and .path == "/kept/two" and .policy == "shop/deny-kept"' \
        "the decision names the new policy"
    rm -f "$MESH/deny-kept.yaml"
}

# PeerAuthentication from the control plane sets the mTLS mode of orders' ports: workload-level with a port-level
# exception, then namespace-level; a plaintext client (pod plain, no sidecar) shows which ports take it
case_peer_authentication_modes() {
    local n0 code
    plain_code() { rm_exec plain curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$VIP:$1/pa" || true; }
    code=$(plain_code 8080)
    rm_assert_eq "$code" 000 "STRICT (the mesh default): a plaintext client is refused"
    rm_expect_log "$OLOG" '.event == "peer_rejected" and .reason == "plaintext connection on a STRICT port"' \
        "the refusal is logged with its reason"
    n0=$(policies_taken)
    cat >"$MESH/pa.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: orders-strict, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  mtls: {mode: STRICT}
  portLevelMtls:
    "8080": {mode: PERMISSIVE}
EOF
    wait_policies "$n0" "the PeerAuthentication"
    rm_assert_eq "$(plain_code 8080)" 200 "port-level PERMISSIVE on 8080: plaintext allowed (and authorized: allow-all)"
    rm_assert_eq "$(plain_code 9090)" 000 "9090 stays STRICT"
    rm_expect_log "$RM_TMP/logs/app-http.log" '.path == "/pa"' "the plaintext request reached the app through the HTTP filter"
    n0=$(policies_taken)
    cat >"$MESH/pa.yaml" <<'EOF'
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: shop-permissive, namespace: shop}
spec:
  mtls: {mode: PERMISSIVE}
EOF
    wait_policies "$n0" "the PeerAuthentication"
    # 9090 is the gRPC app: plaintext HTTP/2 (h2c) it answers itself
    local out
    out=$(rm_exec plain timeout 10 nghttp -v --no-dep "http://$VIP:9090/pa2" 2>&1) || true
    echo "$out" | grep -q 'recv (stream_id=1) content-type: application/grpc' ||
        rm_fail "namespace-level PERMISSIVE: 9090 should take plaintext now: $out"
    rm_log "ok: namespace-level PERMISSIVE: 9090 takes plaintext (HTTP/2, decided and passed to the app)"
    local dump
    dump=$(rm_exec orders curl -sf http://127.0.0.1:15021/config_dump) || rm_fail "GET /config_dump failed"
    rm_assert_eq "$(rm_json "$dump" .inbound.mode)" PERMISSIVE "/config_dump shows the pushed mode"
    rm -f "$MESH/pa.yaml"
}

case_malformed_request_refused() {
    # two Host fields: ambiguous for whoever reads them, so the first filter that parses the request answers 400 and
    # closes, and says why: web's own proxy, which observes the requests web sends into the mesh
    local out
    out=$(printf 'GET /twohosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' |
        rm_exec web timeout 10 socat -t 5 - "TCP:$VIP:8080" 2>&1) || true
    [[ "$out" == "HTTP/1.1 400 "* ]] || rm_fail "a malformed request gets 400: $out"
    rm_expect_log "$(rm_proxy_log web)" '.event == "http_connection_ended" and .direction == "outbound"
        and .protocol == "http1" and .from == "client" and .reason == "malformed request (or request body): answered 400"' \
        "the refusal is logged with its reason" 5
    rm_expect_no_log "$RM_TMP/logs/app-http.log" '.path == "/twohosts"' "the malformed request never reached the app"
}

rm_case malformed_request_refused case_malformed_request_refused
rm_case peer_authentication_modes case_peer_authentication_modes
rm_case decision_log_fields case_decision_log_fields
rm_case change_reaches_kept_alive_connection case_change_reaches_kept_alive_connection
rm_case keepalive_after_403 case_keepalive_after_403
rm_case change_within_1s_no_loss case_change_within_1s_no_loss
rm_case invalid_change_rejected case_invalid_change_rejected
rm_case metrics case_metrics
rm_finish
