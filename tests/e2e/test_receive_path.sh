#!/usr/bin/env bash
# On io_uring, every arrival on a proxied connection comes with its data in one completion: request/response traffic
# through an mTLS pair makes no recv(2) calls of the proxies' own (counted with strace on both proxies while 200
# exchanges cross one keep-alive connection), and the bytes arrive intact.
#
#   e2e_client -> [proxy "frontend": upstream listener] --mTLS--> [proxy "orders": inbound listener] -> echo
#
# io_uring only (the epoll backend receives with recv(2) by design). Loopback only, in a private network namespace
# when root, else on free host ports.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds strace
[ "$(id -u)" = 0 ] || rm_skip "strace needs to attach to the proxies (root)"
[ "${RINGMESH_IO_BACKEND:-default}" = epoll ] && rm_skip "the epoll backend receives with recv(2) by design"
export RINGMESH_IO_BACKEND=io_uring
rm_require_backend

rm_loopback_place 3
read -r P_APP P_IN P_UP <<<"${RM_PORTS[*]}"

rm_server app "$POD" "127.0.0.1:$P_APP" echo
rm_loopback_pair "$P_APP" "$P_IN" "$P_UP" - -

N=200

case_no_recv_calls() {
    local steps=() expect="" i msg name
    for i in $(seq 1 $N); do
        msg=$(printf 'request-%04d' "$i")
        steps+=("send:$msg" "read:${#msg}")
        expect+=$msg
    done
    # strace counts the receive calls of every thread of both proxies while the exchanges run
    for name in frontend orders; do
        rm_bg "strace-$name" - "$RM_TMP/logs/strace-$name.log" strace -f -c -U calls,name \
            -e trace=recvfrom,recvmsg,read,io_uring_enter -o "$RM_TMP/logs/strace-$name.txt" -p "${RM_PID[proxy-$name]}"
    done
    local deadline=$(($(rm_now_ms) + 10000))
    for name in frontend orders; do
        until grep -q attached "$RM_TMP/logs/strace-$name.log.stderr" 2>/dev/null; do
            rm_alive "strace-$name" || rm_fail "strace exited: $(cat "$RM_TMP/logs/strace-$name.log.stderr")"
            [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "strace did not attach within 10 s"
            sleep 0.05
        done
    done
    RM_RC=0
    rm_run timeout 60 "$RM_TOOLS/e2e_client" --timeout 10000 --connect "127.0.0.1:$P_UP" \
        --out "$RM_TMP/logs/client.out" --status "$RM_TMP/logs/client.status" "${steps[@]}" shutdown readeof \
        2>/dev/null || RM_RC=$?
    rm_assert_eq "$RM_RC" 0 "$N exchanges: client exit"
    rm_assert_eq "$(cat "$RM_TMP/logs/client.out")" "$expect" "$N exchanges: every reply, in order"
    for name in frontend orders; do
        rm_stop "strace-$name" INT
        local calls enters
        calls=$(awk '$NF ~ /^(recvfrom|recvmsg|read)$/ {n += $1} END {print n + 0}' "$RM_TMP/logs/strace-$name.txt")
        enters=$(awk '$NF == "io_uring_enter" {n += $1} END {print n + 0}' "$RM_TMP/logs/strace-$name.txt")
        # strace saw the proxy at work: the exchanges went through its ring
        [ "$enters" -ge $N ] || rm_fail "strace saw $enters io_uring_enter calls of proxy $name for $N exchanges"
        rm_log "proxy $name: $calls receive calls for $N exchanges" \
            "($(tr -s ' \n' ' ' <"$RM_TMP/logs/strace-$name.txt"))"
        # each exchange is two arrivals per proxy; receiving them with recv(2) would be up to 2N calls. A few are
        # allowed: the connection's start and end (the peer's EOF, the handshake's last bytes).
        [ "$calls" -le 10 ] || rm_fail "proxy $name made $calls receive calls for $N exchanges (at most 10 expected)"
        rm_log "ok: proxy $name received $((2 * N)) arrivals with $calls receive calls of its own"
    done
}

rm_case "request/response arrivals come in io_uring completions, not recv(2)" case_no_recv_calls

for name in frontend orders; do
    rm_stop "proxy-$name" TERM
    rm_assert_eq "$RM_RC" 0 "proxy $name exit status after SIGTERM"
done
rm_finish
