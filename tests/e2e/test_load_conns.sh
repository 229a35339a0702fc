#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Many concurrent connections through an mTLS pair (explicit listeners on loopback in a private network namespace;
# bench/conns.sh is the full-size run, 10,000): 1,000 connections are opened through the pair, each echoes 8 bytes
# end to end, and all are held open at once. Checked: every one is held (none refused or dropped), the pair's RSS
# with all of them open stays under 64 MiB (the 10,000-connection target), the memory each connection adds to the
# pair stays within the bound that target gives (below), and once they close each proxy's descriptors are back to
# the count before and its RSS within 2 MiB of it (measured after a warm-up of 100). What a connection adds is the
# median of the slopes of the pair's RSS from step to step as the connections open CONNS/5 at a time, each step read
# a second after it is complete (the proxies' tick gives free pages back in between): the slopes leave out what the
# pair takes once for any load (pooled buffers, the allocator's arenas), and the median the noise of one step taken
# while handshakes' transient memory is still out.
#
# The bound per connection: the target leaves (64 MiB - the idle pair's RSS) / 10,000 for each connection through
# the pair, about 4.4 KiB. Where the kernel does not carry the TLS records (kernelTls: auto on a kernel without TLS,
# as on most CI machines), each proxy also keeps wolfSSL's session for the connection's TLS side: the WOLFSSL object
# (1,472 bytes), its two AES-GCM key schedules (2 x 928), its WOLFSSL_SESSION (448) and its extensions, about 4 KiB
# with the allocator's headers (docs/hardening.md, "Memory"); the bound adds 4.5 KiB for each proxy whose records
# stay in user space. With kernel TLS on both (the way to the target) nothing is added.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_root
rm_require_cmds curl
rm_loopback_place 5
APP=${RM_PORTS[0]} IN=${RM_PORTS[1]} UP=${RM_PORTS[2]} ADMIN_F=${RM_PORTS[3]} ADMIN_O=${RM_PORTS[4]}
CONNS=${RM_LOAD_CONNS:-1000}

rm_load_server app "$POD" "127.0.0.1:$APP"
rm_loopback_pair "$APP" "$IN" "$UP" "$ADMIN_F" "$ADMIN_O"
PIDS="${RM_PID[proxy-frontend]},${RM_PID[proxy-orders]}"

# settle: no connection open on either proxy (bounded), then a tick more, when idle buffers are given back
settle() {
    local port n deadline=$(($(rm_now_ms) + 20000))
    for port in "$ADMIN_F" "$ADMIN_O"; do
        until [ "$(rm_metric "$port" ringmesh_proxy_connections_active)" = 0 ]; do
            [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "connections still open on admin port $port after 20 s"
            sleep 0.1
        done
    done
    sleep 0.6
}

measure() { # -> "FDS_F RSS_F FDS_O RSS_O"
    local name
    for name in frontend orders; do
        printf '%s %s ' "$(rm_proc_fds "${RM_PID[proxy-$name]}")" "$(rm_proc_rss_kb "${RM_PID[proxy-$name]}")"
    done
}

rm_load_hold_bg warm "$POD" "127.0.0.1:$UP" 100 --timeout 30000
rm_load_wait_held warm
rm_load_release warm
settle
read -r FDS_F0 RSS_F0 FDS_O0 RSS_O0 <<<"$(measure)"
rm_log "after the warm-up: frontend $FDS_F0 fds $RSS_F0 KiB, orders $FDS_O0 fds $RSS_O0 KiB"

KTLS_F=$(rm_metric "$ADMIN_F" ringmesh_proxy_tls_kernel_enabled)
KTLS_O=$(rm_metric "$ADMIN_O" ringmesh_proxy_tls_kernel_enabled)
STEP=$((CONNS / 5))
rm_load_hold_bg many "$POD" "127.0.0.1:$UP" "$CONNS" --timeout 60000 --pids "$PIDS" --step "$STEP" --step-pause 1000
rm_load_wait_held many 180
HELD_LINE=$RM_LOAD_LINE
# "held pair_rss_kb" per step
STEPS=$(rm_log_select "$RM_TMP/logs/hold-many.log" '.event == "step"' | jq -r '"\(.held) \([.procs[].rss_kb] | add)"')
ACTIVE_F=$(rm_metric "$ADMIN_F" ringmesh_proxy_connections_active)
rm_load_release many
HOLD_RC=$RM_RC
settle
read -r FDS_F1 RSS_F1 FDS_O1 RSS_O1 <<<"$(measure)"
rm_log "after $CONNS connections: frontend $FDS_F1 fds $RSS_F1 KiB, orders $FDS_O1 fds $RSS_O1 KiB"

case_all_held() {
    rm_assert_eq "$(rm_json "$HELD_LINE" .held)" "$CONNS" "connections echoed through the pair and held open"
    rm_assert_eq "$(rm_json "$HELD_LINE" .failed)" 0 "connections that failed"
    rm_assert_eq "$ACTIVE_F" "$CONNS" "the client-side proxy counts them open at once"
    rm_assert_eq "$HOLD_RC" 0 "none was dropped while held"
}

case_pair_rss() {
    local rss
    rss=$(rm_json "$HELD_LINE" '[.procs[].rss_kb] | add')
    rm_log "the pair's RSS with $CONNS connections open: $rss KiB ($(rm_json "$HELD_LINE" '.procs | map("\(.pid): \(.rss_kb) KiB, \(.fds) fds") | join("; ")'))"
    [ "$rss" -lt 65536 ] || rm_fail "the pair holds $rss KiB with $CONNS connections open (target: under 64 MiB)"
}

case_per_connection() {
    local idle user_tls=0 slopes per bound
    idle=$((RSS_F0 + RSS_O0))
    rm_assert_eq "$(wc -l <<<"$STEPS")" 5 "steps of the hold read"
    [ "$KTLS_F" = 1 ] || user_tls=$((user_tls + 1))
    [ "$KTLS_O" = 1 ] || user_tls=$((user_tls + 1))
    # KiB per connection, to a tenth: the median slope from step to step, and the bound the target allows
    slopes=$(awk 'NR > 1 {printf "%.1f\n", ($2 - r) / ($1 - h)} {h = $1; r = $2}' <<<"$STEPS")
    per=$(sort -n <<<"$slopes" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    bound=$(awk -v i="$idle" -v u="$user_tls" 'BEGIN {printf "%.1f", (65536 - i) / 10000 + 4.5 * u}')
    rm_log "per connection through the pair: $per KiB, the median of $(tr '\n' ' ' <<<"$slopes")(steps: $(tr '\n' ';' <<<"$STEPS") bound $bound KiB: idle pair $idle KiB, $user_tls proxies with records in user space)"
    awk -v p="$per" -v b="$bound" 'BEGIN {exit !(p <= b)}' ||
        rm_fail "each connection adds $per KiB to the pair, more than the $bound KiB the 64 MiB target allows"
}

case_back_to_before() {
    rm_assert_eq "$FDS_F1" "$FDS_F0" "the client-side proxy's descriptors after the connections closed"
    rm_assert_eq "$FDS_O1" "$FDS_O0" "the server-side proxy's descriptors after the connections closed"
    if [ "$RSS_F1" -gt $((RSS_F0 + 2048)) ] || [ "$RSS_O1" -gt $((RSS_O0 + 2048)) ]; then
        rm_fail "RSS did not come back: frontend $RSS_F0 -> $RSS_F1 KiB, orders $RSS_O0 -> $RSS_O1 KiB"
    fi
    rm_log "ok: RSS back within 2 MiB (frontend $RSS_F0 -> $RSS_F1 KiB, orders $RSS_O0 -> $RSS_O1 KiB)"
}

rm_case "every connection is held" case_all_held
rm_case "the pair's memory with all of them open" case_pair_rss
rm_case "the memory each connection adds" case_per_connection
rm_case "descriptors and memory come back" case_back_to_before
rm_finish
