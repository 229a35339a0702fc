#!/usr/bin/env bash
# rm-e2e: both-backends
#
# SIGTERM drains the proxy (pod a's, on the outbound side of a connection a -> VIP -> b).
#   1. drainTimeout 20s, one connection open: after SIGTERM new connections are refused (the capture port is
#      closed), the open connection still carries data both ways, and the proxy exits 0 soon after it closes,
#      long before the drain timeout.
#   2. drainTimeout 2s, one connection left open: the proxy cuts it when the drain timeout expires (the client
#      sees EOF or a reset, not silence), logs close "drain" and exits 0.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.10:8080

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"

rm_pod_create a
rm_pod_create b
rm_service "$VIP" b:8080
rm_server echo b 0.0.0.0:8080 echo
rm_pod_mesh b svid=orders bundle=main
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP=$ID_B" drain=20s

# --- 1. the open connection finishes during the drain
LOG=$(rm_proxy_log a)
rm_client_bg open a --timeout 20000 --connect "$VIP" 'send:one\n' read:4 "touch:$RM_TMP/open.ready" \
    "waitfile:$RM_TMP/open.go" 'send:two\n' read:4 shutdown readeof
rm_wait_file "$RM_TMP/open.ready" client-open
rm_signal proxy-a TERM
rm_expect_log "$LOG" '.event == "drain_started" and .open_connections == 1 and .timeout_ms == 20000' \
    "drain started with one open connection"

case_refused() {
    rm_client refused a --timeout 3000 --connect "$VIP" 'send:new connection' readeof
    if [ "$RM_RC" != 2 ]; then
        rm_log "sockets listening in pod a during the drain: $(rm_exec a ss -Hltn | tr -s ' ' | tr '\n' ';')"
        rm_fail "a new connection during the drain must be refused: client exit $RM_RC (4 = accepted, never served)"
    fi
    rm_log "ok: a new connection during the drain is refused"
}
rm_case "new connections are refused during the drain" case_refused
rm_alive proxy-a || rm_fail "the proxy exited while a connection was still open"
rm_log "ok: the proxy still runs while the connection is open"

touch "$RM_TMP/open.go"
rm_wait_exit client-open 15
rm_assert_eq "$RM_RC" 0 "the open connection finished normally during the drain"
rm_assert_content "$(rm_client_out open)" $'one\ntwo\n' "data before and after SIGTERM both went through"
closed_ms=$(rm_now_ms)
rm_wait_exit proxy-a 10
rm_assert_eq "$RM_RC" 0 "proxy exit status after a drain"
elapsed=$(($(rm_now_ms) - closed_ms))
[ "$elapsed" -lt 5000 ] || rm_fail "the proxy took $elapsed ms to exit after its last connection closed"
rm_log "ok: the proxy exited $elapsed ms after the last connection closed (drain timeout 20 s)"
rm_expect_log "$LOG" ".event == \"connection\" and .mode == \"mtls\" and (.dst | addr) == \"$VIP\" and .close == \"eof\"" \
    "the drained connection is logged as closed by EOF"
rm_expect_log "$LOG" '.event == "proxy_stopped"' "proxy_stopped logged"

# --- 2. the drain timeout cuts a connection that stays open
rm_pod_config a svid=frontend bundle=main "dest=$VIP=$ID_B" drain=2s
rm_proxy_start a
LOG=$(rm_proxy_log a)
rm_client_bg held a --timeout 20000 --connect "$VIP" 'send:one\n' read:4 "touch:$RM_TMP/held.ready" readeof
rm_wait_file "$RM_TMP/held.ready" client-held
term_ms=$(rm_now_ms)
rm_signal proxy-a TERM
rm_expect_log "$LOG" '.event == "drain_started" and .open_connections == 1 and .timeout_ms == 2000' \
    "drain started with one open connection"
rm_wait_exit proxy-a 15
rm_assert_eq "$RM_RC" 0 "proxy exit status after the drain timeout"
elapsed=$(($(rm_now_ms) - term_ms))
[ "$elapsed" -ge 1500 ] || rm_fail "the proxy exited after $elapsed ms, before its 2 s drain timeout"
[ "$elapsed" -le 8000 ] || rm_fail "the proxy took $elapsed ms to exit with a 2 s drain timeout"
rm_log "ok: the proxy exited $elapsed ms after SIGTERM (drain timeout 2 s)"
rm_wait_exit client-held 10
[ "$RM_RC" = 0 ] || [ "$RM_RC" = 3 ] ||
    rm_fail "the held connection should be cut at the drain timeout (EOF or reset), client exit $RM_RC"
rm_log "ok: the held connection was cut (client exit $RM_RC)"
rm_expect_log "$LOG" ".event == \"connection\" and (.dst | addr) == \"$VIP\" and .close == \"drain\"" \
    "the cut connection is logged with close \"drain\""
rm_expect_log "$LOG" '.event == "proxy_stopped"' "proxy_stopped logged"

rm_finish
