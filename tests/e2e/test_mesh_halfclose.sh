#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Half-close and reset through the mesh (pod a -> VIP -> pod b, both meshed).
#   half-close: the client sends 256 KiB and shuts down its write side; the server reads to EOF and only then
#               answers "received=N\n" plus everything it read. The client must get the whole answer, so the
#               FIN has to cross both proxies while the other direction stays open.
#   reset:      the server resets the connection after the first bytes; the client must see a reset, not EOF.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.10
SIZE=262144

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"

rm_pod_create a
rm_pod_create b
rm_service "$VIP:8080" b:8080
rm_service "$VIP:8081" b:8081
rm_server after-eof b 0.0.0.0:8080 reply-after-eof
rm_server reset b 0.0.0.0:8081 reset
rm_pod_mesh b svid=orders bundle=main
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP:8080=$ID_B" "dest=$VIP:8081=$ID_B"
LOG_A=$(rm_proxy_log a)
LOG_B=$(rm_proxy_log b)

case_half_close() {
    head -c "$SIZE" /dev/urandom >"$RM_TMP/request.bin"
    {
        printf 'received=%d\n' "$SIZE"
        cat "$RM_TMP/request.bin"
    } >"$RM_TMP/expected.bin"
    rm_client halfclose a --timeout 15000 --connect "$VIP:8080" "sendfile:$RM_TMP/request.bin" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "half-close client exit (4 = the server never saw EOF)"
    rm_expect_log "$(rm_server_log after-eof)" ".event == \"close\" and .received == $SIZE and .end == \"eof\"" \
        "the server read the whole request up to EOF"
    cmp -s "$RM_TMP/expected.bin" "$(rm_client_out halfclose)" ||
        rm_fail "half-close: the answer differs from what the server sent: $(cmp "$RM_TMP/expected.bin" \
            "$(rm_client_out halfclose)" 2>&1 | head -n 1)"
    rm_log "ok: half-close: the whole answer ($(stat -c %s "$RM_TMP/expected.bin") bytes) arrived after the FIN"
    rm_expect_log "$LOG_A" ".event == \"connection\" and .mode == \"mtls\" and (.dst | addr) == \"$VIP:8080\"
        and .close == \"eof\" and .bytes_sent >= $SIZE and .bytes_received >= $SIZE" \
        "a's proxy logs the half-closed connection"
    rm_expect_log "$LOG_B" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"mtls\"
        and (.dst | addr) == \"${RM_POD_IP[b]}:8080\" and .close == \"eof\"" "b's proxy logs the half-closed connection"
}

case_reset() {
    rm_client reset a --timeout 8000 --connect "$VIP:8081" "send:please reset" readeof
    rm_assert_eq "$RM_RC" 3 "the server's reset reaches the client as a reset (0 = clean EOF, 4 = nothing)"
    rm_expect_log "$(rm_server_log reset)" '.event == "close" and .end == "sent_reset"' "the server sent its reset"
    rm_expect_log "$LOG_B" ".event == \"connection\" and .direction == \"inbound\"
        and (.dst | addr) == \"${RM_POD_IP[b]}:8081\" and .close == \"reset\"" "b's proxy logs the reset from the application"
    rm_expect_log "$LOG_A" ".event == \"connection\" and .direction == \"outbound\" and (.dst | addr) == \"$VIP:8081\"
        and .close == \"reset\"" "a's proxy logs the reset from the peer"
}

rm_case "half-close" case_half_close
rm_case "reset" case_reset
rm_finish
