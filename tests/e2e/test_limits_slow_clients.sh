#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Slow clients on every kind of port are cut by their timeout, and the other clients of that port are served
# meanwhile. Pod b (meshed: STRICT on 8080, PERMISSIVE on 8090, handshakeTimeout 4s, idleTimeout 4s) runs an echo app
# on both ports; pod a (meshed, idleTimeout 4s) reaches 8080 through a VIP; host "ext" is outside the mesh.
#   inbound STRICT    ext sends b:8080 the first 11 bytes of a ClientHello and stops   -> handshakeTimeout
#   PERMISSIVE (TLS)  the same on b:8090                                                -> handshakeTimeout
#   PERMISSIVE (HTTP) ext sends b:8090 a request head without its last line            -> idleTimeout
#   outbound          a's app sends VIP:8080 a request head without its last line     -> idleTimeout
#   admin             20 connections to b's admin port send half a request line        -> the admin deadline (5 s);
#                     more than the 16 the admin port holds at once: the oldest half-sent request makes room for a
#                     new connection, so the kubelet's probes are never locked out
# While all of them hang, a good client on each port must be served; afterwards every slow one must have been
# closed by the proxy (its client saw EOF or a reset, not its own 15 s timeout).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_require_cmds curl

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.60
SLOW=5 SLOW_ADMIN=20

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"
rm_pod_create a
rm_pod_create b
rm_external_create ext
rm_service "$VIP:8080" b:8080
rm_server echo b 0.0.0.0:8080 echo
rm_server echo2 b 0.0.0.0:8090 echo
rm_pod_mesh b svid=orders bundle=main permissive=8090 handshake=4s idle=4s
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP:8080=$ID_B" idle=4s
LOG_B=$(rm_proxy_log b)
B=${RM_POD_IP[b]}

# a ClientHello's record header and handshake header, then nothing: the rest never comes
printf '\026\003\001\002\000\001\000\001\374\003\003' >"$RM_TMP/partial-hello.bin"
HEAD='GET /slow HTTP/1.1\r\nHost: orders\r\nX-Slow: 1\r\n'

slow() { # NAME POD ADDR STEP
    rm_client_bg "$1" "$2" --timeout 15000 --connect "$3" "$4" readeof
}
# the longest timeouts first, so that every kind is still hanging when the good clients run
for i in $(seq 1 "$SLOW_ADMIN"); do
    slow "admin$i" b 127.0.0.1:15021 "send:GET /healthz/rea"
done
for i in $(seq 1 "$SLOW"); do
    slow "phttp$i" ext "$B:8090" "send:$HEAD"
    slow "out$i" a "$VIP:8080" "send:$HEAD"
done
for i in $(seq 1 "$SLOW"); do
    slow "strict$i" ext "$B:8080" "sendfile:$RM_TMP/partial-hello.bin"
    slow "ptls$i" ext "$B:8090" "sendfile:$RM_TMP/partial-hello.bin"
done
sleep 0.5 # every slow client has connected and sent its bytes (the shortest timeout is 4 s)

rm_log "--- good clients while the slow ones hang"
GOOD_START=$(rm_now_ms)
rm_expect_echo good-out a "$VIP:8080"
rm_expect_echo good-permissive ext "$B:8090"
ADMIN_CODE=$(rm_exec b curl -s -m 3 -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready || true)
GOOD_MS=$(($(rm_now_ms) - GOOD_START))
STILL_OPEN=0
for i in $(seq 1 "$SLOW"); do rm_alive "client-strict$i" && STILL_OPEN=$((STILL_OPEN + 1)); done

case_others_served() {
    rm_assert_eq "$ADMIN_CODE" 200 "the admin port answers a probe while $SLOW_ADMIN slow clients hold it"
    [ "$STILL_OPEN" -gt 0 ] || rm_fail "the slow clients were gone before the good ones ran: nothing was proved"
    rm_log "ok: the good clients ran in $GOOD_MS ms while $STILL_OPEN slow STRICT clients were still open"
}
rm_case "good clients are served while slow ones hang" case_others_served

# every slow client ends because the proxy closed it: exit 0 (EOF) or 3 (reset); 4 would be its own timeout. They are
# waited for here, outside the cases (which run in subshells, where they are not children).
declare -A SLOW_RC
for name in strict ptls phttp out admin; do
    n=$SLOW
    [ "$name" = admin ] && n=$SLOW_ADMIN
    for i in $(seq 1 "$n"); do
        rm_wait_exit "client-$name$i" 20
        SLOW_RC[$name$i]=$RM_RC
    done
done

cut_by_proxy() { # PREFIX COUNT WHAT
    local i rc
    for i in $(seq 1 "$2"); do
        rc=${SLOW_RC[$1$i]}
        [ "$rc" = 0 ] || [ "$rc" = 3 ] ||
            rm_fail "$3: slow client $i ended with exit $rc $(rm_client_status "$1$i")"
    done
    rm_log "ok: $3: all $2 slow clients were closed by the proxy"
}

case_strict() {
    cut_by_proxy strict "$SLOW" "inbound STRICT, partial ClientHello"
    [ "$(rm_log_count "$LOG_B" ".event == \"handshake_timeout\" and (.dst | addr) == \"$B:8080\"")" -ge "$SLOW" ] ||
        rm_fail "b's proxy did not log a handshake_timeout for each slow STRICT client"
}
case_permissive() {
    cut_by_proxy ptls "$SLOW" "PERMISSIVE, partial ClientHello"
    cut_by_proxy phttp "$SLOW" "PERMISSIVE, partial request head"
    [ "$(rm_log_count "$LOG_B" ".event == \"handshake_timeout\" and (.dst | addr) == \"$B:8090\"")" -ge "$SLOW" ] ||
        rm_fail "b's proxy did not log a handshake_timeout for each slow PERMISSIVE TLS client"
    [ "$(rm_log_count "$LOG_B" ".event == \"connection\" and (.dst | addr) == \"$B:8090\" and .close == \"timeout\"")" \
        -ge "$SLOW" ] || rm_fail "b's proxy did not close each half-sent plaintext request at idleTimeout"
}
case_outbound() {
    cut_by_proxy out "$SLOW" "outbound, partial request head"
    # a's and b's idle timers started together: whichever proxy ticks first cuts the connection
    local by_a by_b
    by_a=$(rm_log_count "$(rm_proxy_log a)" '.event == "connection" and .direction == "outbound" and .close == "timeout"')
    by_b=$(rm_log_count "$LOG_B" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"mtls\"
        and (.dst | addr) == \"$B:8080\" and .close == \"timeout\"")
    [ $((by_a + by_b)) -ge "$SLOW" ] || rm_fail "only $by_a + $by_b of $SLOW slow outbound clients were cut at idleTimeout"
    rm_log "ok: the slow outbound clients were cut at idleTimeout ($by_a by a's proxy, $by_b by b's)"
}
case_admin() {
    cut_by_proxy admin "$SLOW_ADMIN" "admin, half a request line"
    rm_assert_eq "$(rm_exec b curl -s -m 3 -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready)" 200 \
        "the admin port answers afterwards"
}
rm_case "inbound STRICT: cut at handshakeTimeout" case_strict
rm_case "PERMISSIVE: cut at handshakeTimeout or idleTimeout" case_permissive
rm_case "outbound: cut at idleTimeout" case_outbound
rm_case "admin: cut at its deadline" case_admin
rm_finish
