#!/usr/bin/env bash
# rm-e2e: both-backends
#
# The mesh run by ringmesh-control. The control plane runs in the node namespace; pods a and b get their SVIDs
# from it (a ServiceAccount token attested against its JWKS) and the destination map from the discovery stream,
# with no certificate or destination in their own files. Then:
#   - a -> VIP -> b is mTLS with the identities the control plane issued;
#   - a configuration change (a new Service) is pushed and takes effect;
#   - a change the proxies cannot take (more identities than a destination may hold) is NACKed by them, logged by
#     both sides, and the previous destinations stay in force;
#   - the control plane's /metrics counts both proxies connected, their SVIDs and their NACKs;
#   - the control plane is killed: traffic goes on, the outage is logged once;
#   - a proxy restarted while the control plane is down comes back from its state directory;
#   - the control plane comes back and the proxies reconnect.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_control_init

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.10
VIP2=198.19.0.11
MESH=$RM_TMP/control/mesh

rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders

rm_pod_create a
rm_pod_create b
rm_service "$VIP:8080" b:8080
rm_service "$VIP2:9090" b:9090
rm_server echo b 0.0.0.0:8080 echo
rm_server echo2 b 0.0.0.0:9090 echo

rm_control_start main node 0.0.0.0:15012
CLOG=$RM_TMP/logs/control-main.log
rm_pod_mesh b "control=$(rm_pod_gateway b):15012" ns=shop sa=orders
rm_pod_mesh a "control=$(rm_pod_gateway a):15012" ns=shop sa=frontend
rm_wait_ready a
rm_wait_ready b

# one client connection a -> ADDR; checks the echo and prints nothing
through_mesh() {
    local name=$1 addr=$2 payload="ringmesh-$1-$$-$RANDOM"
    rm_client "$name" a --connect "$addr" "send:$payload" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "client $name finishes cleanly"
    rm_assert_content "$(rm_client_out "$name")" "$payload" "the echo of $name came back"
}

case_identity_from_control() {
    rm_expect_log "$(rm_proxy_log a)" ".event == \"svid_issued\" and .spiffe_id == \"$ID_A\"" \
        "pod a's proxy holds the SVID the control plane issued"
    rm_expect_log "$CLOG" ".event == \"svid_issued\" and .spiffeId == \"$ID_B\" and .pod == \"b\"" \
        "the control plane issued pod b's SVID from its token"
    local key
    key=$(stat -c %a "$RM_TMP/pods/a/state/svid-key.pem")
    rm_assert_eq "$key" 600 "the saved private key is mode 0600"
    rm_expect_no_log "$(rm_proxy_log a)" '(tostring | test("BEGIN (EC )?PRIVATE KEY"))' "no private key in the log"
}

# cp_metric SERIES: the control plane's /metrics value of SERIES (its monitoring port in the node namespace)
cp_metric() {
    rm_exec node curl -sf -m 5 http://127.0.0.1:15014/metrics | awk -v k="$1" '$1 == k {print $2}'
}

case_mtls_via_control() {
    rm_assert_eq "$(cp_metric ringmesh_control_connected_proxies)" 2 "the control plane counts both proxies connected"
    rm_assert_eq "$(cp_metric ringmesh_control_svids_issued_total)" 2 "and the two SVIDs it signed"
    through_mesh first "$VIP:8080"
    rm_expect_log "$(rm_proxy_log a)" ".event == \"connection\" and .direction == \"outbound\" and .mode == \"mtls\"
        and .peer_id == \"$ID_B\" and (.dst | addr) == \"$VIP:8080\"" "a's proxy used mTLS with b's issued identity"
    rm_expect_log "$(rm_proxy_log b)" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"mtls\"
        and .peer_id == \"$ID_A\"" "b's proxy saw a's issued identity"
}

case_config_change() {
    # VIP2 is not in the mesh yet: pass-through, so b's STRICT inbound refuses it
    rm_client before a --connect "$VIP2:9090" "send:x" shutdown readeof || true
    rm_expect_log "$(rm_proxy_log a)" ".event == \"connection\" and (.dst | addr) == \"$VIP2:9090\"
        and .mode == \"passthrough\"" "before the change VIP2 is passed through"
    local v0
    v0=$(rm_log_select "$(rm_proxy_log a)" '.event == "config_accepted" and .type == "destinations"' | tail -n 1 |
        jq -r .version)
    rm_mesh_service orders2.yaml orders-grpc shop "$VIP2" 9090 orders
    rm_expect_log "$CLOG" '.event == "config_serving" and .streams == 2 and .destinationsVersion != null' \
        "the control plane serves the change" 10
    rm_expect_log "$(rm_proxy_log a)" ".event == \"config_accepted\" and .type == \"destinations\" and .version != \"$v0\"" \
        "pod a accepted new destinations" 10
    local v
    v=$(rm_json "$RM_LINE" .version)
    rm_wait_log "$CLOG" ".event == \"config_acked\" and .node == \"a\" and .type == \"destinations\"
        and .version == \"$v\"" 10 >/dev/null || rm_fail "the control plane saw no ACK of $v from a"
    rm_log "ok: pod a ACKed destinations version $v"
    local dump
    dump=$(rm_exec a curl -sf http://127.0.0.1:15021/config_dump) || rm_fail "GET /config_dump failed"
    rm_assert_eq "$(rm_json "$dump" .control_plane.versions.destinations)" "$v" "/config_dump shows the version in force"
    rm_assert_eq "$(rm_json "$dump" .svid.spiffe_id)" "$ID_A" "/config_dump shows the SVID held"
    rm_assert_eq "$(rm_json "$dump" "[.destinations[] | select(.address == \"$VIP2:9090\") | .identities[]] | join(\",\")")" \
        "$ID_B" "/config_dump lists the pushed destination"
    through_mesh second "$VIP2:9090"
    rm_expect_log "$(rm_proxy_log a)" ".event == \"connection\" and (.dst | addr) == \"$VIP2:9090\"
        and .mode == \"mtls\" and .peer_id == \"$ID_B\"" "after the change VIP2 is mTLS"
}

case_nack_keeps_last_good() {
    local ids="" i
    for i in $(seq 1 17); do ids="$ids, spiffe://cluster.local/ns/shop/sa/extra$i"; done
    cat >"$MESH/toomany.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: wide, namespace: shop}
spec:
  addresses: [198.19.0.12]
  ports: [80]
  identities: [${ids#, }]
EOF
    rm_expect_log "$(rm_proxy_log a)" '.event == "config_rejected" and .type == "destinations"
        and (.reason | test("identities"))' "pod a NACKs destinations it cannot hold" 10
    rm_expect_log "$CLOG" '.event == "config_nacked" and .node == "a" and .type == "destinations"' \
        "the control plane logs the NACK" 10
    rm_expect_log "$CLOG" '.event == "config_nacked" and .node == "b" and .type == "destinations"' \
        "and b's" 10
    rm_assert_eq "$(cp_metric 'ringmesh_control_nacks_total{type="destinations"}')" 2 "/metrics counts both NACKs"
    through_mesh third "$VIP:8080"
    through_mesh fourth "$VIP2:9090"
    rm_log "ok: the last good destinations stay in force"
    rm -f "$MESH/toomany.yaml"
}

case_control_plane_down() {
    rm_expect_log "$(rm_proxy_log a)" '.event == "control_plane_unreachable"' "the outage is logged" 15
    through_mesh during-outage "$VIP:8080"
    sleep 3
    rm_assert_eq "$(rm_log_count "$(rm_proxy_log a)" '.event == "control_plane_unreachable"')" 1 \
        "the outage is logged once, not in a loop"
}

case_restart_from_state() {
    rm_expect_log "$(rm_proxy_log a)" ".event == \"svid_restored\" and .spiffe_id == \"$ID_A\"" \
        "the restarted proxy restores its SVID from the state directory"
    rm_expect_log "$(rm_proxy_log a)" '.event == "config_restored" and .type == "destinations"' \
        "and its destinations"
    rm_wait_ready a
    through_mesh after-restart "$VIP2:9090"
    rm_expect_log "$(rm_proxy_log a)" ".event == \"connection\" and (.dst | addr) == \"$VIP2:9090\"
        and .mode == \"mtls\" and .peer_id == \"$ID_B\"" "restored destinations are used while the control plane is down"
}

case_control_plane_back() {
    rm_expect_log "$(rm_proxy_log b)" '.event == "control_plane_reconnected"' "pod b reconnects" 40
    rm_expect_log "$RM_TMP/logs/control-back.log" '.event == "stream_opened" and .node == "a"' "pod a reconnects" 40
    # a proxy already at the current version is not pushed it again
    sleep 1
    rm_expect_no_log "$RM_TMP/logs/control-back.log" '.event == "config_pushed" and .node == "a"
        and .type == "destinations"' "no push of a version the proxy already runs"
    through_mesh after-return "$VIP:8080"
}

rm_case "identity comes from the control plane" case_identity_from_control
rm_case "mTLS with issued identities" case_mtls_via_control
rm_case "a configuration change is pushed and used" case_config_change
rm_case "a NACKed change leaves the last good one" case_nack_keeps_last_good
# Processes are started and stopped here, outside the cases (which run in subshells), so that teardown knows them.
rm_stop control-main KILL
rm_case "traffic survives the control plane's death" case_control_plane_down
rm_stop proxy-a
rm_proxy_start a
rm_case "a proxy restarts from its state directory" case_restart_from_state
rm_control_start back node 0.0.0.0:15012
rm_case "proxies reconnect to a new control plane" case_control_plane_back
rm_finish
