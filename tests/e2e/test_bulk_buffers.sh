#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Buffers follow the traffic: small request/response exchanges use small (one-record) buffers only; a bulk stream
# moves to large buffers on both proxies of an mTLS pair; a stalled consumer holds them only while it stalls; the
# bytes arrive intact; once the connection is gone, every large buffer is back and given up
# (ringmesh_proxy_buffer_bytes).
#
#   e2e_client -> [proxy "frontend": upstream listener] --mTLS--> [proxy "orders": inbound listener]
#              -> e2e_server reply-after-eof, reading nothing until a file exists
#
# Loopback only, in a private network namespace when root, else on free host ports.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds curl jq

rm_loopback_place 5
read -r P_APP P_IN P_UP P_ADM_F P_ADM_O <<<"${RM_PORTS[*]}"

GO="$RM_TMP/go"
rm_server app "$POD" "127.0.0.1:$P_APP" reply-after-eof --hold-file "$GO"
rm_loopback_pair "$P_APP" "$P_IN" "$P_UP" "$P_ADM_F" "$P_ADM_O"

# buffers PORT SIZE STATE -> ringmesh_proxy_buffer_bytes{size=SIZE,state=STATE} of the proxy with that admin port
buffers() {
    rm_metric "$1" "ringmesh_proxy_buffer_bytes{size=\"$2\",state=\"$3\"}"
}
# wait_buffers PORT SIZE STATE OP VALUE WHAT: polls (10 s) until the gauge compares as asked (OP: -eq, -gt)
wait_buffers() {
    local port=$1 size=$2 state=$3 op=$4 want=$5 what=$6 v deadline=$(($(rm_now_ms) + 10000))
    while :; do
        v=$(buffers "$port" "$size" "$state")
        [ -n "$v" ] || rm_fail "$what: no ringmesh_proxy_buffer_bytes{size=\"$size\",state=\"$state\"} in /metrics"
        if { [ "$op" = -gt ] && [ "$v" -gt "$want" ]; } || { [ "$op" = -eq ] && [ "$v" -eq "$want" ]; }; then
            rm_log "ok: $what ($v bytes)"
            return 0
        fi
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$what: $size/$state buffers at $v bytes after 10 s"
        sleep 0.1
    done
}

client() { # NAME e2e_client-steps...
    rm_client "$1" "$POD" --timeout 30000 --connect "127.0.0.1:$P_UP" "${@:2}"
}

# Request/response traffic: a few bytes each way, never a large buffer. A connection held open meanwhile keeps the
# workers from giving idle buffers up, so a large buffer taken and returned would still show as idle.
case_small() {
    touch "$GO"
    rm_bg client-open "$POD" "$RM_TMP/logs/client-open.log" "$RM_TOOLS/e2e_client" --timeout 30000 \
        --connect "127.0.0.1:$P_UP" --out /dev/null "send:held open" "read:1"
    for i in 1 2 3; do
        client "small$i" "send:small request $i" shutdown readeof
        rm_assert_eq "$RM_RC" 0 "small exchange $i: client exit"
        rm_assert_eq "$(head -n 1 "$RM_TMP/logs/client-small$i.out")" "received=15" "small exchange $i: the reply"
    done
    sleep 0.6 # two of the workers' 250 ms ticks, which publish the gauges
    for port in $P_ADM_F $P_ADM_O; do
        rm_assert_eq "$(buffers "$port" large in_use)" 0 "large buffers in use after small exchanges (admin $port)"
        rm_assert_eq "$(buffers "$port" large idle)" 0 "large buffers kept after small exchanges (admin $port)"
    done
    rm_alive client-open || rm_fail "the connection held open has ended"
    rm_stop client-open
    rm -f "$GO"
}

SIZE=$((32 * 1024 * 1024))

# A bulk stream into a consumer that stalls: both proxies hold it in large buffers until it reads, everything
# arrives, and the large buffers are given up once the connection is over.
case_bulk_stalled() {
    head -c $SIZE /dev/urandom >"$RM_TMP/payload.bin"
    rm_bg client-bulk "$POD" "$RM_TMP/logs/client-bulk.log" "$RM_TOOLS/e2e_client" --timeout 60000 \
        --connect "127.0.0.1:$P_UP" --out "$RM_TMP/logs/client-bulk.out" \
        --status "$RM_TMP/logs/client-bulk.status" "sendfile:$RM_TMP/payload.bin" shutdown readeof
    # the app reads nothing: the stream backs up through the inbound proxy into the outbound one
    wait_buffers "$P_ADM_O" large in_use -gt 0 "the inbound proxy holds the stalled stream in large buffers"
    wait_buffers "$P_ADM_F" large in_use -gt 0 "the outbound proxy holds the stalled stream in large buffers"
    touch "$GO"
    rm_wait_exit client-bulk 60
    rm_assert_eq "$RM_RC" 0 "bulk client exit"
    rm_assert_eq "$(head -n 1 "$RM_TMP/logs/client-bulk.out")" "received=$SIZE" "the app received every byte"
    local sum_in sum_out
    sum_in=$(sha256sum <"$RM_TMP/payload.bin" | cut -d' ' -f1)
    sum_out=$(tail -c +$((${#SIZE} + 11)) "$RM_TMP/logs/client-bulk.out" | sha256sum | cut -d' ' -f1)
    rm_assert_eq "$sum_out" "$sum_in" "SHA-256 of the 32 MiB that came back"
    for port in $P_ADM_F $P_ADM_O; do
        wait_buffers "$port" large in_use -eq 0 "every large buffer is back once the connection is over (admin $port)"
        wait_buffers "$port" large idle -eq 0 "and given up with nothing open (admin $port)"
    done
}

rm_case "small exchanges use small buffers" case_small
rm_case "a stalled bulk stream, held in large buffers and given back" case_bulk_stalled

for name in frontend orders; do
    rm_stop "proxy-$name" TERM
    rm_assert_eq "$RM_RC" 0 "proxy $name exit status after SIGTERM"
done
rm_finish
