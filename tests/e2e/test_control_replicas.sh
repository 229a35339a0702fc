#!/usr/bin/env bash
#
# Control-plane replicas are interchangeable. Two replicas share one CA (files, as from a Kubernetes Secret) and
# one configuration directory, behind a service VIP that points at the first. The first is killed and the VIP
# moved to the second (as kube-proxy does when endpoints change): the proxies reconnect to it and are pushed
# nothing, since equal content has equal versions on every replica; a configuration change then reaches them
# through the second replica; and a pod that joins afterwards gets its SVID from the second replica and talks
# mTLS with a pod whose SVID the first one signed.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_control_init
rm_ca_create shared cluster.local
CA=(--ca-cert "$RM_TMP/pki/ca-shared.pem" --ca-key "$RM_TMP/pki/ca-shared.key")

VIP=198.19.0.40
CONTROL_VIP=198.19.0.100:15012
rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders

rm_pod_create r1
rm_pod_create r2
rm_pod_create a
rm_pod_create b
rm_pod_create c
rm_service "$VIP:8080" b:8080
rm_service "$VIP:9090" b:9090
rm_service "$CONTROL_VIP" r1:15012
rm_server echo b 0.0.0.0:8080 echo
rm_server echo2 b 0.0.0.0:9090 echo
rm_control_start r1 r1 0.0.0.0:15012 "${CA[@]}"
rm_control_start r2 r2 0.0.0.0:15012 "${CA[@]}"
rm_pod_mesh b "control=$CONTROL_VIP" ns=shop sa=orders
rm_pod_mesh a "control=$CONTROL_VIP" ns=shop sa=frontend
rm_wait_ready a
rm_wait_ready b
R1=$RM_TMP/logs/control-r1.log
R2=$RM_TMP/logs/control-r2.log

case_same_versions() {
    local v1 v2
    v1=$(rm_log_select "$R1" '.event == "config_serving"' | tail -n 1 | jq -r .destinationsVersion)
    v2=$(rm_log_select "$R2" '.event == "config_serving"' | tail -n 1 | jq -r .destinationsVersion)
    rm_assert_eq "$v2" "$v1" "both replicas serve the same destinations version"
    rm_expect_log "$R1" '.event == "stream_opened" and .node == "a"' "pod a is on the first replica"
}

rm_service_move "$CONTROL_VIP" r2:15012
rm_stop control-r1 KILL

case_failover() {
    rm_expect_log "$(rm_proxy_log a)" '.event == "control_plane_reconnected"' "pod a reconnects" 40
    rm_expect_log "$(rm_proxy_log b)" '.event == "control_plane_reconnected"' "pod b reconnects" 40
    rm_expect_log "$R2" '.event == "stream_opened" and .node == "a"' "pod a is on the second replica"
    rm_expect_no_log "$R2" '.event == "config_pushed" and .node == "a"' \
        "the second replica pushes pod a nothing: it already runs these versions"
    local ok
    rm_client after-failover a --connect "$VIP:8080" "send:ping" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "traffic after the failover"
}

case_change_through_second() {
    rm_mesh_service orders-grpc.yaml orders-grpc shop "$VIP" 9090 orders
    rm_expect_log "$R2" '.event == "config_acked" and .node == "a" and .type == "destinations"' \
        "pod a ACKs the change from the second replica" 15
    rm_client grpc-port a --connect "$VIP:9090" "send:ping" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "the new destination works"
    rm_expect_log "$(rm_proxy_log a)" ".event == \"connection\" and (.dst | addr) == \"$VIP:9090\" and .mode == \"mtls\"" \
        "and is mTLS"
}

rm_case "replicas agree on versions" case_same_versions
rm_case "proxies fail over to the second replica" case_failover
rm_case "a change reaches them through the second replica" case_change_through_second

rm_pod_mesh c "control=$CONTROL_VIP" ns=shop sa=checkout
rm_wait_ready c

case_new_pod_from_second() {
    rm_expect_log "$R2" '.event == "svid_issued" and .spiffeId == "spiffe://cluster.local/ns/shop/sa/checkout"' \
        "the second replica issued pod c's SVID"
    rm_client from-c c --connect "$VIP:8080" "send:ping" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "pod c (SVID from the second replica) reaches pod b (SVID from the first)"
    rm_expect_log "$(rm_proxy_log b)" '.event == "connection" and .mode == "mtls"
        and .peer_id == "spiffe://cluster.local/ns/shop/sa/checkout"' "b authenticated c"
}
rm_case "a pod that joins later gets its SVID from the second replica" case_new_pod_from_second
rm_finish
