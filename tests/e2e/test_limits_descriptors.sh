#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Descriptor exhaustion. An mTLS pair of explicit listeners on loopback (a private network namespace); 20
# connections are held open through it, then the client-side proxy's RLIMIT_NOFILE is lowered (prlimit) to its
# lowest free descriptor, so that its next accept fails with EMFILE, and 10 more connections are made. While the
# descriptor table stays full (3 s), the proxy must:
#   - not spin: its CPU time over those 3 s stays under 0.3 s (a busy retry loop burns all of them);
#   - log it once per listener (accept_failed with EMFILE), not once per retry, and count the retries in
#     ringmesh_proxy_accept_failures_total;
#   - keep serving what it holds (the 20 held connections stay open);
# and once the held connections close, it must accept again: the 10 that waited in the backlog are served
# (accept_recovered is logged) and a new connection echoes.
# At start the proxy raises its soft RLIMIT_NOFILE to the hard one (a service started with 1024 of, say, 524288
# would otherwise run out at about 500 connections), and says when even the hard limit is short of what
# maxConnections needs (nofile_limit_low).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_root
rm_require_cmds prlimit curl
rm_loopback_place 7
APP=${RM_PORTS[0]} IN=${RM_PORTS[1]} UP=${RM_PORTS[2]} ADMIN_F=${RM_PORTS[3]} ADMIN_O=${RM_PORTS[4]}
LIM1=${RM_PORTS[5]} LIM2=${RM_PORTS[6]}

rm_load_server app "$POD" "127.0.0.1:$APP"
rm_loopback_pair "$APP" "$IN" "$UP" "$ADMIN_F" "$ADMIN_O"
PROXY=${RM_PID[proxy-frontend]}
LOG=$RM_TMP/logs/proxy-frontend.log
HELD=20 WAITING=10

rm_load_hold_bg first "$POD" "127.0.0.1:$UP" "$HELD" --timeout 30000
rm_load_wait_held first
rm_assert_eq "$(rm_json "$RM_LOAD_LINE" .held)" "$HELD" "connections held open through the pair"

FREE=$(rm_proc_lowest_free_fd "$PROXY")
rm_log "the client-side proxy holds $(rm_proc_fds "$PROXY") descriptors; its next one would be $FREE"
prlimit --pid "$PROXY" --nofile="$FREE:$(prlimit --pid "$PROXY" --nofile -o HARD --noheadings | tr -d ' ')"
CPU0=$(rm_proc_cpu_ticks "$PROXY")
rm_load_hold_bg waiting "$POD" "127.0.0.1:$UP" "$WAITING" --timeout 30000
rm_expect_log "$LOG" '.event == "accept_failed" and .code == -24' "the full descriptor table is logged" 10
sleep 3
CPU1=$(rm_proc_cpu_ticks "$PROXY")
HZ=$(getconf CLK_TCK)

case_backs_off() {
    local used=$((CPU1 - CPU0))
    rm_log "CPU time of the proxy over 3 s without descriptors: $used ticks of 1/$HZ s"
    [ "$used" -lt $((HZ * 3 / 10)) ] || rm_fail "the proxy used $used/$HZ s of CPU in 3 s at EMFILE: it spins"
    rm_assert_eq "$(rm_log_count "$LOG" ".event == \"accept_failed\" and .listen == \"127.0.0.1:$UP\"")" 1 \
        "accept_failed is logged once for the listener, not per retry"
    rm_alive hold-first || rm_fail "the held connections were dropped while descriptors ran out"
    rm_expect_no_log "$RM_TMP/logs/hold-first.log" '.event == "done"' "the held connections are still open"
}
rm_case "at EMFILE the proxy backs off and logs once" case_backs_off

rm_load_release first
rm_assert_eq "$RM_RC" 0 "the held connections stayed open and healthy until released"
rm_load_wait_held waiting 30
rm_load_release waiting

case_recovers() {
    # io_uring takes RLIMIT_NOFILE when an accept is submitted: the accept already in flight when the limit was
    # lowered still gets a descriptor, and that one connection is refused when its upstream socket cannot be opened
    # (connection_setup_failed). Every other one waited in the backlog and is served.
    local held failed
    held=$(rm_json "$RM_LOAD_LINE" .held)
    failed=$(rm_json "$RM_LOAD_LINE" .failed)
    if [ $((held + failed)) != "$WAITING" ] || [ "$failed" -gt 1 ]; then
        rm_fail "of $WAITING connections made without descriptors, $held were served and $failed failed"
    fi
    [ "$failed" = 0 ] || rm_expect_log "$LOG" '.event == "connection_setup_failed" and .code == -24' \
        "the one refused at the limit is logged"
    rm_log "ok: $held of the $WAITING connections that waited in the backlog are served"
    rm_expect_log "$LOG" ".event == \"accept_recovered\" and .listen == \"127.0.0.1:$UP\" and .retries >= 4" \
        "the recovery is logged, with the retries made meanwhile"
    # the admin listener ran out of descriptors too (nothing could be opened): read after the recovery
    local failures
    failures=$(rm_metric "$ADMIN_F" ringmesh_proxy_accept_failures_total)
    if [ -z "$failures" ] || [ "$failures" -lt 5 ] || [ "$failures" -gt 100 ]; then
        rm_fail "ringmesh_proxy_accept_failures_total is '$failures' after 3 s without descriptors (one a tick)"
    fi
    rm_log "ok: $failures failed accepts counted, one a tick"
    rm_client after "$POD" --timeout 8000 --connect "127.0.0.1:$UP" "send:after" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "a new connection after the recovery"
    rm_assert_content "$(rm_client_out after)" "after" "its echo"
}
rm_case "once connections close, it accepts again" case_recovers

# start_limited NAME SOFT:HARD: the frontend's configuration under another RLIMIT_NOFILE, admin off, another port
start_limited() {
    sed -e "s/127.0.0.1:$UP\"/127.0.0.1:$1\"/" -e 's/^admin: .*/admin: {enabled: false}/' "$RM_TMP/frontend.yaml" \
        >"$RM_TMP/limited-$1.yaml"
    rm_bg "limited-$1" "$POD" "$RM_TMP/logs/limited-$1.log" prlimit --nofile="$2" "$RM_PROXY_BIN" \
        --config "$RM_TMP/limited-$1.yaml"
    rm_expect_log "$RM_TMP/logs/limited-$1.log" '.event == "proxy_started"' "the proxy under RLIMIT_NOFILE $2 started"
}
start_limited "$LIM1" 256:12000
start_limited "$LIM2" 256:1000

case_raises_soft_limit() {
    local pid=${RM_PID[limited-$LIM1]}
    rm_assert_eq "$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits")" 12000 "the soft limit raised to the hard one"
    rm_expect_log "$RM_TMP/logs/limited-$LIM1.log" '.event == "proxy_started" and .nofile == 12000' \
        "proxy_started says the limit in force"
    rm_expect_no_log "$RM_TMP/logs/limited-$LIM1.log" '.event == "nofile_limit_low"' \
        "12000 descriptors are enough for maxConnections 4096"
    rm_expect_log "$RM_TMP/logs/limited-$LIM2.log" '.event == "nofile_limit_low" and .nofile == 1000
        and .max_connections == 4096' "a hard limit short of maxConnections is said at start"
}
rm_case "at start, the soft limit is raised to the hard one" case_raises_soft_limit
rm_finish
