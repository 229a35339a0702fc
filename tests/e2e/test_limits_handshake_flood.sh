#!/usr/bin/env bash
#
# A flood of failed handshakes does not break established traffic. Pod a (meshed) keeps 4 keep-alive connections
# through a VIP to pod b (meshed, STRICT), one request every 5 ms on each, checked byte for byte; meanwhile host "ext",
# outside the mesh, makes 1,000 TLS 1.3 handshakes to b's port without a certificate (8 at a time), each of which
# makes b's proxy run its key exchange and signature before refusing it. Checked: every flood handshake is refused,
# none gets through to the app, and not one request of the established traffic fails. (bench/handshake-flood.sh
# measures the slowdown on a quiet machine; this is its CI-sized check, on the default I/O backend.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_require_cmds python3

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.70
FLOOD=1000
FLOOD_TOOL="$RM_SOURCE_DIR/tests/e2e/tools/handshake_flood.py"

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"
rm_pod_create a
rm_pod_create b
rm_external_create ext
rm_service "$VIP:8080" b:8080
rm_load_server app b 0.0.0.0:8080
rm_pod_mesh b svid=orders bundle=main
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP:8080=$ID_B"
LOG_B=$(rm_proxy_log b)
STOP=$RM_TMP/logs/traffic.stop

rm_load_requests_bg kept a "$VIP:8080" 4 1000000 --interval 5 --timeout 5000 --sample-every 100 --stop-file "$STOP"
rm_load_wait_progress kept 200
BEFORE=$(rm_log_select "$RM_TMP/logs/requests-kept.log" '.event == "sample"' | tail -n 1 | jq -r .requests)

rm_log "--- the flood: $FLOOD handshakes without a certificate from ext"
RM_RC=0
FLOOD_OUT=$(rm_exec ext timeout 240 python3 "$FLOOD_TOOL" --connect "${RM_POD_IP[b]}:8080" --count "$FLOOD" \
    --concurrency 8) || RM_RC=$?
rm_log "flood: exit $RM_RC $FLOOD_OUT"
AFTER=$(rm_log_select "$RM_TMP/logs/requests-kept.log" '.event == "sample"' | tail -n 1 | jq -r .requests)
rm_load_wait_progress kept 200
touch "$STOP"
rm_load_requests_wait kept 60
KEPT=$RM_LOAD_LINE KEPT_RC=$RM_RC

case_flood_refused() {
    rm_assert_eq "$(rm_json "$FLOOD_OUT" .attempts)" "$FLOOD" "flood handshakes made"
    rm_assert_eq "$(rm_json "$FLOOD_OUT" .refused)" "$FLOOD" "flood handshakes refused"
    rm_assert_eq "$(rm_json "$FLOOD_OUT" .accepted)" 0 "flood handshakes that got an answer from the app"
    local refused
    refused=$(rm_log_count "$LOG_B" '.event == "peer_rejected" and .direction == "inbound"')
    [ "$refused" -ge "$FLOOD" ] || rm_fail "b's proxy logged $refused refusals for $FLOOD failed handshakes"
    rm_log "ok: b's proxy logged $refused refused handshakes"
}

case_established_unharmed() {
    rm_assert_eq "$(rm_json "$KEPT" .failed)" 0 "failed requests of the established traffic"
    rm_assert_eq "$KEPT_RC" 0 "e2e_load's status"
    rm_assert_eq "$(rm_json "$KEPT" .reconnects)" 0 "the established connections stayed up (no reconnect)"
    [ "$AFTER" -gt "$BEFORE" ] || rm_fail "no request of the established traffic completed during the flood"
    rm_log "ok: $((AFTER - BEFORE)) requests completed during the flood, $(rm_json "$KEPT" .ok) in all, p99 \
$(rm_json "$KEPT" .p99_us) us"
}

rm_case "every flood handshake is refused" case_flood_refused
rm_case "the established traffic does not fail" case_established_unharmed
rm_finish
