#!/usr/bin/env bash
# rm-e2e: both-backends
#
# mTLS through a service VIP. A client in pod a connects to the VIP 198.19.0.10:8080, which the node DNATs to pod
# b. Both pods are meshed: the connection must go a -> (mTLS, TLS 1.3, ALPN ringmesh/1) -> b, the server must see
# it come from 127.0.0.1 (its own proxy), both proxies must log it as mtls with the other side's SPIFFE ID, and a
# capture on b's veth must show the TLS handshake and never the payload. A plaintext marker sent by a pod without
# a proxy, captured on the same veth, shows that the capture does see payload bytes.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds tcpdump
rm_setup

ID_CLIENT="spiffe://cluster.local/ns/shop/sa/frontend"
ID_SERVER="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.10:8080

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_CLIENT"
rm_svid_issue orders main "$ID_SERVER"

rm_pod_create a
rm_pod_create b
rm_pod_create legacy
rm_service "$VIP" b:8080

rm_server echo b 0.0.0.0:8080 echo
rm_pod_mesh b svid=orders bundle=main
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP=$ID_SERVER"

SECRET="ringmesh-secret-payload-$$-$RANDOM$RANDOM"
MARKER="ringmesh-plaintext-marker-$$-$RANDOM$RANDOM"

rm_capture_start wire b
rm_client mtls a --connect "$VIP" "send:$SECRET" shutdown readeof
rm_assert_eq "$RM_RC" 0 "client through the mesh finishes cleanly"
rm_assert_content "$(rm_client_out mtls)" "$SECRET" "the echo came back through both proxies"
rm_client legacy legacy --connect "$VIP" "send:$MARKER" readeof
rm_capture_stop wire "$SECRET" "$MARKER"
scan=$RM_SCAN

# The wire: a TLS 1.3 handshake with our ALPN, application data records, no plaintext payload.
case_wire() {
    [ "$(rm_json "$scan" '.found[1]')" -ge 1 ] || rm_fail "control: the plaintext marker is not in the capture"
    rm_log "ok: control: the capture sees plaintext payloads"
    rm_assert_eq "$(rm_json "$scan" '.found[0]')" 0 "the secret payload never appears on the wire"
    [ "$(rm_json "$scan" '.client_hello')" -ge 1 ] || rm_fail "no TLS ClientHello (record type 0x16) on the wire"
    [ "$(rm_json "$scan" '.client_hello_alpn_ringmesh')" -ge 1 ] || rm_fail "the ClientHello does not offer ringmesh/1"
    [ "$(rm_json "$scan" '.server_hello_tls13')" -ge 1 ] || rm_fail "no TLS 1.3 ServerHello on the wire"
    [ "$(rm_json "$scan" '.application_data_records')" -ge 1 ] || rm_fail "no TLS application data records"
    rm_log "ok: TLS 1.3 handshake with ALPN ringmesh/1 and encrypted records on the wire"
}

# The server saw exactly one connection (the legacy one was refused), from its local proxy.
case_server() {
    local log
    log=$(rm_server_log echo)
    rm_expect_log "$log" '.event == "close"' "server closed the connection"
    rm_assert_eq "$(rm_log_count "$log" '.event == "accept"')" 1 "connections that reached the server"
    rm_assert_eq "$(rm_log_select "$log" '.event == "accept"' | jq -r '.peer | sub(":[0-9]+$"; "")')" \
        127.0.0.1 "the server sees its local proxy as the peer"
    rm_assert_eq "$(rm_log_select "$log" '.event == "close"' | jq -r .received)" "${#SECRET}" \
        "bytes the server received"
}

case_access_logs() {
    local log_a log_b
    log_a=$(rm_proxy_log a)
    log_b=$(rm_proxy_log b)
    rm_expect_log "$log_a" ".event == \"connection\" and .direction == \"outbound\" and .mode == \"mtls\"
        and .tls_version == \"TLSv1.3\" and .peer_id == \"$ID_SERVER\" and (.dst | addr) == \"$VIP\"
        and .bytes_sent >= ${#SECRET} and .bytes_received >= ${#SECRET} and .close == \"eof\"" \
        "pod a's proxy logs the outbound mTLS connection to the VIP"
    rm_expect_log "$log_b" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"mtls\"
        and .tls_version == \"TLSv1.3\" and .peer_id == \"$ID_CLIENT\" and (.dst | addr) == \"${RM_POD_IP[b]}:8080\"
        and (.src | addr | startswith(\"${RM_POD_IP[a]}:\")) and .bytes_sent >= ${#SECRET}
        and .bytes_received >= ${#SECRET}" "pod b's proxy logs the inbound mTLS connection from pod a"
    rm_expect_log "$log_a" ".event == \"proxy_started\" and .spiffe_id == \"$ID_CLIENT\"" \
        "pod a's proxy knows its identity"
    rm_expect_log "$log_b" ".event == \"proxy_started\" and .spiffe_id == \"$ID_SERVER\"" \
        "pod b's proxy knows its identity"
    rm_expect_no_log "$log_a" '.event == "peer_rejected"' "pod a's proxy rejected nothing"
}

rm_case "the wire" case_wire
rm_case "the server's view" case_server
rm_case "the access logs" case_access_logs
rm_finish
