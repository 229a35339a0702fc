#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Pass-through: destinations that are not in the proxy's `destinations` are reached as plain TCP. Pod a is meshed
# (its only mesh destination is the VIP of pod b); the external host "ext" is outside the mesh.
#   a -> ext:7000 directly            plain TCP, logged as passthrough, payload visible on ext's veth, no TLS
#   a -> VIP .20:7000 (DNAT to ext)   the same through a service VIP that is not a mesh destination
#   a -> VIP .10:8080 (pod b)         still mTLS (the capture on b's veth has TLS and no payload)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds tcpdump
rm_setup

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"

rm_pod_create a
rm_pod_create b
rm_external_create ext
EXT_IP=${RM_POD_IP[ext]}
rm_service 198.19.0.10:8080 b:8080
rm_service 198.19.0.20:7000 ext:7000
rm_server ext ext 0.0.0.0:7000 echo
rm_server b b 0.0.0.0:8080 echo
rm_pod_mesh b svid=orders bundle=main
rm_pod_mesh a svid=frontend bundle=main "dest=198.19.0.10:8080=$ID_B"
LOG_A=$(rm_proxy_log a)

DIRECT="passthrough-direct-$$-$RANDOM$RANDOM"
VIA_VIP="passthrough-vip-$$-$RANDOM$RANDOM"
MESHED="meshed-$$-$RANDOM$RANDOM"

rm_capture_start ext ext
rm_capture_start b b
rm_client direct a --connect "$EXT_IP:7000" "send:$DIRECT" shutdown readeof
rm_assert_eq "$RM_RC" 0 "pass-through to the external host exit"
rm_assert_content "$(rm_client_out direct)" "$DIRECT" "pass-through to the external host echo"
rm_client vip a --connect 198.19.0.20:7000 "send:$VIA_VIP" shutdown readeof
rm_assert_eq "$RM_RC" 0 "pass-through via a non-mesh VIP exit"
rm_assert_content "$(rm_client_out vip)" "$VIA_VIP" "pass-through via a non-mesh VIP echo"
rm_client meshed a --connect 198.19.0.10:8080 "send:$MESHED" shutdown readeof
rm_assert_eq "$RM_RC" 0 "mesh destination exit"
rm_assert_content "$(rm_client_out meshed)" "$MESHED" "mesh destination echo"
rm_capture_stop ext "$DIRECT" "$VIA_VIP"
scan_ext=$RM_SCAN
rm_capture_stop b "$MESHED"
scan_b=$RM_SCAN

case_wire() {
    # On the external host's wire: the payloads in clear (request and echo), no TLS at all.
    [ "$(rm_json "$scan_ext" '.found[0]')" -ge 2 ] || rm_fail "the direct pass-through payload is not on the wire"
    [ "$(rm_json "$scan_ext" '.found[1]')" -ge 2 ] || rm_fail "the VIP pass-through payload is not on the wire"
    rm_assert_eq "$(rm_json "$scan_ext" '.tls_records')" 0 "TLS records on the external host's wire"
    # On b's wire: TLS and no payload.
    rm_assert_eq "$(rm_json "$scan_b" '.found[0]')" 0 "the mesh payload on b's wire"
    [ "$(rm_json "$scan_b" '.server_hello_tls13')" -ge 1 ] || rm_fail "no TLS 1.3 handshake on b's wire"
}

# The external host sees pod a's own address (no proxy in between on its side).
case_external_peer() {
    rm_expect_log "$(rm_server_log ext)" '.event == "close"' "the external host closed its connections"
    rm_assert_eq "$(rm_log_select "$(rm_server_log ext)" '.event == "accept"' | jq -r '.peer | sub(":[0-9]+$"; "")' |
        sort -u)" "${RM_POD_IP[a]}" "the external host's peer address"
}

case_access_log() {
    rm_expect_log "$LOG_A" ".event == \"connection\" and .direction == \"outbound\" and .mode == \"passthrough\"
        and (.dst | addr) == \"$EXT_IP:7000\" and .bytes_sent == ${#DIRECT} and .bytes_received == ${#DIRECT}" \
        "a's proxy logs the direct pass-through"
    rm_expect_log "$LOG_A" ".event == \"connection\" and .direction == \"outbound\" and .mode == \"passthrough\"
        and (.dst | addr) == \"198.19.0.20:7000\"" "a's proxy logs the pass-through via the VIP"
    rm_expect_log "$LOG_A" ".event == \"connection\" and .direction == \"outbound\" and .mode == \"mtls\"
        and (.dst | addr) == \"198.19.0.10:8080\" and .peer_id == \"$ID_B\"" "a's proxy logs the mesh destination as mtls"
}

rm_case "the wires" case_wire
rm_case "the external host's view" case_external_peer
rm_case "the access log" case_access_log
rm_finish
