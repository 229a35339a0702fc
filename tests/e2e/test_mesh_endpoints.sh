#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Endpoint-aware TCP balancing, with the control plane's file source. Service orders (a VIP with NO kube-proxy
# DNAT: the proxy must not need it) lists its endpoints in spec.endpoints: pods b1, b2, b3 serving as
# ServiceAccount orders. From pod a:
#   - 60 connections held open at once spread over the three endpoints by power of two choices (each gets at least
#     10), each connection's upstream is the pod, not the VIP, and the peer identity the endpoint's;
#   - b3 marked ready: false gets no new connection, the other two get them all;
#   - terminating endpoints get no new connection while one is ready; with none ready, the one still serving takes
#     them (Kubernetes' rule), the one no longer serving none;
#   - an endpoint whose pod presents another identity (b4, running as ServiceAccount impostor but listed as orders)
#     and an endpoint that refuses connections (host x, nothing listening) are each tried, refused and logged, and
#     the connection goes to another endpoint: no client sees a failure, b4's app is never reached;
#   - the proxy's metrics count the connections sent to endpoints and the retries.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_control_init

VIP=198.19.0.40
ID_ORDERS="spiffe://cluster.local/ns/shop/sa/orders"
MESH=$RM_TMP/control/mesh

rm_pod_create a
for p in b1 b2 b3 b4; do rm_pod_create "$p"; done
rm_external_create x

# write_service ENDPOINT_LINES: the Service with these spec.endpoints entries (one YAML flow mapping a line)
write_service() {
    {
        printf 'apiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: orders, namespace: shop}\nspec:\n'
        printf '  addresses: [%s]\n  ports: [8080]\n  serviceAccounts: [orders]\n  endpoints:\n' "$VIP"
        printf '%s\n' "$@"
    } >"$MESH/.orders.tmp"
    mv "$MESH/.orders.tmp" "$MESH/orders.yaml"
}
ep() { # ep POD [ready]: one endpoint entry, serviceAccount orders
    printf '  - {address: %s, serviceAccount: orders, ready: %s}' "${RM_POD_IP[$1]}" "${2:-true}"
}

write_service "$(ep b1)" "$(ep b2)" "$(ep b3)"
rm_control_start main node 0.0.0.0:15012
CLOG=$RM_TMP/logs/control-main.log
for p in b1 b2 b3 b4; do
    rm_server "$p" "$p" 0.0.0.0:8080 echo
    sa=orders
    [ "$p" != b4 ] || sa=impostor
    rm_pod_mesh "$p" "control=$(rm_pod_gateway "$p"):15012" ns=shop sa=$sa
done
rm_pod_mesh a "control=$(rm_pod_gateway a):15012" ns=shop sa=frontend
for p in a b1 b2 b3 b4; do rm_wait_ready "$p"; done
ALOG=$(rm_proxy_log a)

# accepts POD: connections POD's app has accepted so far
accepts() {
    rm_log_count "$(rm_server_log "$1")" '.event == "accept"'
}

# wait_destinations: waits until pod a runs a destinations version other than the one it ran before
wait_destinations() {
    local before=$1
    rm_expect_log "$ALOG" ".event == \"config_accepted\" and .type == \"destinations\" and .version != \"$before\"" \
        "pod a took the new endpoints" 15
}
destinations_version() {
    rm_log_select "$ALOG" '.event == "config_accepted" and .type == "destinations"' | tail -n 1 | jq -r .version
}

# one_client NAME: one short connection from a to the VIP, which must echo
one_client() {
    rm_client "$1" a --timeout 8000 --connect "$VIP:8080" "send:hello $1" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "$1: the client sees no failure"
    rm_assert_content "$(rm_client_out "$1")" "hello $1" "$1: the echo"
}

case_spread_over_endpoints() {
    local i go=$RM_TMP/spread-go before=() p n
    for p in b1 b2 b3; do before+=("$(accepts "$p")"); done
    for i in $(seq 1 60); do
        rm_client_bg "spread$i" a --timeout 20000 --connect "$VIP:8080" "send:s$i." "read:$((${#i} + 2))" \
            "touch:$RM_TMP/spread-up.$i" "waitfile:$go" shutdown readeof
        rm_wait_file "$RM_TMP/spread-up.$i" "client-spread$i" 10
    done
    # all 60 are open now: count where they went before letting them finish
    local total=0 k=0
    for p in b1 b2 b3; do
        n=$(($(accepts "$p") - ${before[$k]}))
        k=$((k + 1))
        rm_log "endpoint $p (${RM_POD_IP[$p]}) holds $n of the 60 connections"
        [ "$n" -ge 10 ] || rm_fail "endpoint $p got $n connections (want at least 10 of 60)"
        total=$((total + n))
    done
    rm_assert_eq "$total" 60 "the three endpoints hold every connection"
    touch "$go"
    for i in $(seq 1 60); do
        rm_wait_exit "client-spread$i" 20
        rm_assert_eq "$RM_RC" 0 "client spread$i finishes cleanly"
    done
    rm_expect_log "$ALOG" ".event == \"connection\" and .direction == \"outbound\" and (.dst | addr) == \"$VIP:8080\"
        and ((.upstream | addr) | startswith(\"198.18.\")) and .peer_id == \"$ID_ORDERS\"" \
        "a's connection lines name the VIP as dst and the chosen pod as upstream"
    rm_expect_no_log "$ALOG" ".event == \"connection\" and (.upstream | addr) == \"$VIP:8080\"" \
        "no connection went to the VIP itself"
}

case_not_ready_gets_none() {
    local v b3_before i
    v=$(destinations_version)
    write_service "$(ep b1)" "$(ep b2)" "$(ep b3 false)"
    wait_destinations "$v"
    b3_before=$(accepts b3)
    local b12_before=$(($(accepts b1) + $(accepts b2)))
    for i in $(seq 1 20); do one_client "nr$i"; done
    local dump
    dump=$(rm_exec a curl -sf http://127.0.0.1:15021/config_dump) || rm_fail "GET /config_dump failed"
    rm_assert_eq "$(rm_json "$dump" "[.destinations[] | select(.address == \"$VIP:8080\") | .endpoints |
        \"\(.total)/\(.candidates)/\(.candidate_class)\"] | join(\",\")")" "3/2/ready" \
        "/config_dump counts the VIP's endpoints and the two ready ones"
    rm_assert_eq "$(accepts b3)" "$b3_before" "the endpoint marked not ready got no new connection"
    rm_assert_eq "$(($(accepts b1) + $(accepts b2) - b12_before))" 20 "the ready endpoints got all 20"
}

case_wrong_identity_and_refused_endpoint() {
    local v i
    v=$(destinations_version)
    write_service "$(ep b1)" "$(ep b4)" "  - {address: ${RM_POD_IP[x]}, serviceAccount: orders}" "$(ep b3 false)"
    wait_destinations "$v"
    for i in $(seq 1 24); do one_client "wi$i"; done
    rm_expect_log "$ALOG" ".event == \"endpoint_failed\" and (.endpoint | addr) == \"${RM_POD_IP[b4]}:8080\"
        and .reason == \"handshake_refused\" and .expected_identity == \"$ID_ORDERS\"
        and .peer_id == \"spiffe://cluster.local/ns/shop/sa/impostor\" and .next_endpoint != \"none\"" \
        "the endpoint presenting another identity is refused, logged, and the connection goes to another"
    rm_expect_log "$ALOG" ".event == \"endpoint_failed\" and (.endpoint | addr) == \"${RM_POD_IP[x]}:8080\"
        and .reason == \"connect_failed\"" "the endpoint refusing connections is logged and left for another"
    rm_assert_eq "$(accepts b4)" 0 "the impostor's app was never reached"
    local retries conns
    retries=$(rm_exec a curl -sf -m 5 http://127.0.0.1:15021/metrics |
        awk '$1 == "ringmesh_proxy_endpoint_retries_total" {print $2}')
    conns=$(rm_exec a curl -sf -m 5 http://127.0.0.1:15021/metrics |
        awk '$1 == "ringmesh_proxy_endpoint_connections_total" {print $2}')
    [ "${retries:-0}" -ge 2 ] || rm_fail "ringmesh_proxy_endpoint_retries_total is ${retries:-absent} (want >= 2)"
    [ "${conns:-0}" -ge 104 ] || rm_fail "ringmesh_proxy_endpoint_connections_total is ${conns:-absent} (want >= 104)"
    rm_log "ok: the proxy counts $conns connections to endpoints and $retries retries"
}

# A rollout's end: b2 terminating but still serving, b3 terminating and no longer serving. While b1 is ready it takes
# every connection; once b1 is gone too, the terminating b2 that still serves takes them (Kubernetes' fallback), never
# b3.
case_terminating_drains() {
    local v i b1 b2 b3
    term() { printf '  - {address: %s, serviceAccount: orders, ready: false, serving: %s, terminating: true}' \
        "${RM_POD_IP[$1]}" "$2"; }
    v=$(destinations_version)
    write_service "$(ep b1)" "$(term b2 true)" "$(term b3 false)"
    wait_destinations "$v"
    b1=$(accepts b1) b2=$(accepts b2) b3=$(accepts b3)
    for i in $(seq 1 10); do one_client "dr$i"; done
    rm_assert_eq "$(($(accepts b1) - b1))/$(($(accepts b2) - b2))/$(($(accepts b3) - b3))" "10/0/0" \
        "with a ready endpoint, the terminating ones get no new connection"
    v=$(destinations_version)
    write_service "$(term b2 true)" "$(term b3 false)"
    wait_destinations "$v"
    b2=$(accepts b2) b3=$(accepts b3)
    for i in $(seq 1 10); do one_client "dt$i"; done
    rm_assert_eq "$(($(accepts b2) - b2))/$(($(accepts b3) - b3))" "10/0" \
        "with none ready, the serving terminating endpoint takes them, the one no longer serving none"
}

rm_case spread_over_endpoints case_spread_over_endpoints
rm_case terminating_drains case_terminating_drains
rm_case not_ready_gets_none case_not_ready_gets_none
rm_case wrong_identity_and_refused_endpoint case_wrong_identity_and_refused_endpoint
rm_expect_no_log "$CLOG" '.level == "error"' "the control plane logged no error"
rm_finish
