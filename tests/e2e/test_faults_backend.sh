#!/usr/bin/env bash
# rm-e2e: both-backends
#
# A backend that fails, seen through the mesh (pod a -> VIP -> pod b, both meshed, idleTimeout 2s on both proxies):
#   refuses   nothing listens on b's port: the client's connection ends at once (reset or close, no data), not
#             after its own timeout;
#   resets    the server closes with SO_LINGER 0 after the first bytes: the client sees a reset, not an EOF;
#   half-closes the server writes a banner and shuts down its write side first, then keeps reading: the client reads
#             the banner and the FIN (EOF), and what it sends after that FIN still reaches the server;
#   hangs     the server accepts and never reads nor answers: the proxies' idle timeout cuts the connection
#             (close "timeout"), before the client's own 10 s;
# and afterwards nothing is left behind: each proxy's descriptors (/proc/PID/fd) are back to the count measured after a
# warm-up round, and its RSS within 1 MiB of it, after 10 more rounds of every fault.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_require_cmds curl

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.50
BANNER="first-then-fin"
ROUNDS=10

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"
rm_pod_create a
rm_pod_create b
dests=()
for port in 8080 8081 8082 8083 8084; do
    rm_service "$VIP:$port" "b:$port"
    dests+=("dest=$VIP:$port=$ID_B")
done
rm_server echo b 0.0.0.0:8080 echo
# 8081: nothing listens
rm_server reset b 0.0.0.0:8082 reset
rm_server shut b 0.0.0.0:8083 shut-first --banner "$BANNER"
rm_server hang b 0.0.0.0:8084 hang
rm_pod_mesh b svid=orders bundle=main idle=2s
rm_pod_mesh a svid=frontend bundle=main idle=2s "${dests[@]}"
LOG_A=$(rm_proxy_log a)
LOG_B=$(rm_proxy_log b)

refused() {
    rm_client "refused$1" a --timeout 8000 --connect "$VIP:8081" "send:anyone there" readeof
    [ "$RM_RC" = 3 ] || [ "$RM_RC" = 0 ] ||
        rm_fail "refused backend: client exit $RM_RC, want a reset (3) or a close (0), not a timeout (4)"
    [ ! -s "$(rm_client_out "refused$1")" ] || rm_fail "refused backend: the client received data"
}

reset() {
    rm_client "reset$1" a --timeout 8000 --connect "$VIP:8082" "send:please reset" readeof
    rm_assert_eq "$RM_RC" 3 "a reset backend is a reset for the client (0 = a clean EOF, 4 = nothing)"
}

half_close() {
    rm_client "shut$1" a --timeout 8000 --connect "$VIP:8083" readeof "send:after-fin-$1" shutdown
    rm_assert_eq "$RM_RC" 0 "half-close: the client read to the FIN and then sent"
    rm_assert_content "$(rm_client_out "shut$1")" "$BANNER" "half-close: the banner before the FIN"
}

hang_bg() {
    rm_client_bg "hang$1" a --timeout 10000 --connect "$VIP:8084" "send:hello?" readeof
}

hang_wait() {
    rm_wait_exit "client-hang$1" 30
    [ "$RM_RC" = 0 ] || [ "$RM_RC" = 3 ] ||
        rm_fail "hanging backend: client exit $RM_RC $(rm_client_status "hang$1") (want it cut by idleTimeout)"
}

# wait_idle POD: until its proxy has no connection open (bounded), then a tick more (idle buffers are given back)
wait_idle() {
    local deadline=$(($(rm_now_ms) + 15000)) n
    while :; do
        n=$(rm_exec "$1" curl -s -m 5 http://127.0.0.1:15021/metrics | awk '$1 == "ringmesh_proxy_connections_active" {print $2}')
        [ "$n" = 0 ] && break
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "the proxy in $1 still has $n connections open after 15 s"
        sleep 0.1
    done
    sleep 0.6
}

round() {
    refused "$1"
    reset "$1"
    half_close "$1"
}

rm_log "--- warm-up: every fault once"
hang_bg 0
round 0
hang_wait 0
wait_idle a
wait_idle b
declare -A FDS0 RSS0
for pod in a b; do
    FDS0[$pod]=$(rm_proc_fds "${RM_PID[proxy-$pod]}")
    RSS0[$pod]=$(rm_proc_rss_kb "${RM_PID[proxy-$pod]}")
    rm_log "after the warm-up, the proxy in $pod holds ${FDS0[$pod]} descriptors and ${RSS0[$pod]} KiB"
done

case_seen_as_is() {
    rm_expect_log "$LOG_B" ".event == \"upstream_connect_failed\" or (.event == \"connection\" and (.dst | addr) == \"${RM_POD_IP[b]}:8081\")" \
        "b's proxy logs the refused connect"
    rm_expect_log "$(rm_server_log reset)" '.event == "close" and .end == "sent_reset"' "the server sent its reset"
    rm_expect_log "$(rm_server_log shut)" '.event == "close" and .head == "after-fin-0" and .end == "eof"' \
        "what the client sent after the server's FIN reached the server, then the client's FIN"
    # both proxies saw the same last activity: whichever ticks first closes it, the other sees that close
    cat "$LOG_A" "$LOG_B" >"$RM_TMP/logs/both-proxies.log"
    rm_expect_log "$RM_TMP/logs/both-proxies.log" ".event == \"connection\" and .close == \"timeout\" and
        ((.dst | addr) == \"$VIP:8084\" or (.dst | addr) == \"${RM_POD_IP[b]}:8084\")" \
        "the hanging backend's connection is closed by an idle timeout"
    rm_expect_log "$(rm_server_log hang)" '.event == "close" and .sent == 0 and (.received == 6 or .end == "reset")' \
        "the hanging server never answered, and the client's bytes reached it unread"
}
rm_case "the client sees what the backend did" case_seen_as_is

rm_log "--- $ROUNDS rounds of every fault"
for i in $(seq 1 "$ROUNDS"); do hang_bg "$i"; done
for i in $(seq 1 "$ROUNDS"); do round "$i"; done
for i in $(seq 1 "$ROUNDS"); do hang_wait "$i"; done
wait_idle a
wait_idle b

case_nothing_leaks() {
    local pod fds rss
    for pod in a b; do
        fds=$(rm_proc_fds "${RM_PID[proxy-$pod]}")
        rss=$(rm_proc_rss_kb "${RM_PID[proxy-$pod]}")
        rm_log "after $ROUNDS rounds, the proxy in $pod holds $fds descriptors and $rss KiB"
        rm_assert_eq "$fds" "${FDS0[$pod]}" "descriptors of the proxy in $pod back to the warm-up count"
        [ "$rss" -le $((RSS0[$pod] + 1024)) ] ||
            rm_fail "the proxy in $pod grew from ${RSS0[$pod]} to $rss KiB over $ROUNDS rounds of faults"
    done
}
rm_case "descriptors and memory are back where they were" case_nothing_leaks
rm_finish
