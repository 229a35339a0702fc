#!/usr/bin/env bash
#
# The control plane fails under steady traffic. Pods a and b get their SVIDs and destinations from ringmesh-control
# (node namespace); a sends two steady streams through the mesh to b for the whole test: one request per new
# connection (each a handshake and a destination lookup) and one over keep-alive connections, 2 connections each,
# one request every 20 ms per connection. Then the control plane is
#   1. killed (SIGKILL): both proxies log the outage once (control_plane_unreachable), traffic goes on;
#   2. started again (same CA): both reconnect (control_plane_reconnected);
#   3. partitioned: iptables DROP in the node namespace between the pods and its port, both ways, so nothing is
#      refused and the streams just go silent: both notice through their keepalive (control.keepaliveTime 30s, the
#      least the control plane allows, and keepaliveTimeout 3s here) and log the outage; traffic goes on;
#   4. reachable again (rules removed): both reconnect.
# Every request of both streams must succeed: zero failed, checked byte for byte by e2e_load. (The faults are the
# control plane's: the data plane's I/O backend does not matter, so this runs once, on the default one.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_control_init

VIP=198.19.0.40
rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders
rm_pod_create a
rm_pod_create b
rm_service "$VIP:8080" b:8080
rm_load_server app b 0.0.0.0:8080

rm_control_start main node 0.0.0.0:15012
rm_pod_mesh b "control=$(rm_pod_gateway b):15012" ns=shop sa=orders keepalive=30s/3s
rm_pod_mesh a "control=$(rm_pod_gateway a):15012" ns=shop sa=frontend keepalive=30s/3s
rm_wait_ready a
rm_wait_ready b
LOG_A=$(rm_proxy_log a)
LOG_B=$(rm_proxy_log b)
STOP=$RM_TMP/logs/traffic.stop

# at most 100,000 requests each: the stop file ends them when the faults are over
rm_load_requests_bg fresh a "$VIP:8080" 2 100000 --new-conn --interval 20 --timeout 5000 --sample-every 20 \
    --stop-file "$STOP"
rm_load_requests_bg kept a "$VIP:8080" 2 100000 --interval 20 --timeout 5000 --sample-every 20 --stop-file "$STOP"
rm_load_wait_progress fresh 40
rm_load_wait_progress kept 40

# both_log N EVENT WHAT TIMEOUT_S: both proxies have logged EVENT N times (bounded wait)
both_log() {
    local pod deadline=$(($(rm_now_ms) + $4 * 1000))
    for pod in a b; do
        until [ "$(rm_log_count "$(rm_proxy_log "$pod")" ".event == \"$2\"")" -ge "$1" ]; do
            [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$3 ($pod): no $2 number $1 within $4 s"
            sleep 0.2
        done
        rm_log "ok: $3 ($pod)"
    done
}

rm_log "--- 1. the control plane is killed"
rm_stop control-main KILL
both_log 1 control_plane_unreachable "the outage is logged" 15
rm_load_wait_progress fresh 100
rm_load_wait_progress kept 100

rm_log "--- 2. it comes back"
rm_control_start back node 0.0.0.0:15012
both_log 1 control_plane_reconnected "the proxy reconnects to the restarted control plane" 40
rm_load_wait_progress fresh 40
rm_load_wait_progress kept 40

rm_log "--- 3. partition: the control plane's port is dropped both ways in the node namespace"
PARTITION=(-p tcp --dport 15012 -j DROP)
PARTITION_BACK=(-p tcp --sport 15012 -j DROP)
rm_exec node iptables -I INPUT "${PARTITION[@]}"
rm_exec node iptables -I OUTPUT "${PARTITION_BACK[@]}"
both_log 2 control_plane_unreachable "the silent partition is noticed and logged" 60
rm_load_wait_progress fresh 100
rm_load_wait_progress kept 100

rm_log "--- 4. the partition ends"
rm_exec node iptables -D INPUT "${PARTITION[@]}"
rm_exec node iptables -D OUTPUT "${PARTITION_BACK[@]}"
both_log 2 control_plane_reconnected "the proxy reconnects after the partition" 60
rm_load_wait_progress fresh 40
rm_load_wait_progress kept 40
touch "$STOP"
rm_load_requests_wait fresh 60
FRESH_RC=$RM_RC FRESH=$RM_LOAD_LINE
rm_load_requests_wait kept 60
KEPT_RC=$RM_RC KEPT=$RM_LOAD_LINE

case_no_failures() {
    local name line
    for name in fresh kept; do
        [ "$name" = fresh ] && line=$FRESH || line=$KEPT
        rm_assert_eq "$(rm_json "$line" .failed)" 0 "failed requests on the $name stream"
        [ "$(rm_json "$line" .ok)" -ge 400 ] || rm_fail "the $name stream made only $(rm_json "$line" .ok) requests"
    done
    rm_assert_eq "$FRESH_RC" 0 "e2e_load's status (new connections)"
    rm_assert_eq "$KEPT_RC" 0 "e2e_load's status (keep-alive)"
}

case_logged_each_way() {
    local log
    for log in "$LOG_A" "$LOG_B"; do
        rm_assert_eq "$(rm_log_count "$log" '.event == "control_plane_unreachable"')" 2 \
            "one outage line per outage (kill, partition), not one per retry"
        rm_assert_eq "$(rm_log_count "$log" '.event == "control_plane_reconnected"')" 2 "one line per return"
    done
    rm_expect_log "$LOG_A" '.event == "control_plane_unreachable" and (.details | test("PING"))' \
        "the partition is named as an unanswered keepalive"
    rm_expect_log "$RM_TMP/logs/control-back.log" '.event == "stream_opened" and .node == "a"' \
        "the control plane sees pod a's stream again"
    rm_expect_no_log "$LOG_A" '.event == "peer_rejected" or .event == "connection_setup_failed"' \
        "no connection was refused meanwhile"
}

rm_case "no allowed request failed" case_no_failures
rm_case "each outage and each return is logged once" case_logged_each_way
rm_finish
