#!/usr/bin/env bash
#
# An SVID that runs out while the control plane is away. Pods a and b get 5-minute SVIDs, then the control plane
# is stopped and pod a's proxy is restarted under libfaketime, 285 s in the future: it comes back from its state
# directory with an SVID that has 15 s left. It must warn that the SVID is about to expire (log line and metric),
# try to renew (and log the failure, not in a loop), and when the SVID expires, stop presenting it: say so in its
# log, report not ready, and refuse mTLS connections with that reason instead of handshaking with an expired
# certificate; /metrics says so (ringmesh_proxy_svid_expired 1) and counts the refusals
# (ringmesh_proxy_no_svid_rejected_total).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$FAKETIME_LIB" ] || rm_skip "libfaketime is not installed (scripts/bootstrap.sh installs it)"
rm_setup
rm_control_init

VIP=198.19.0.30
rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders

rm_pod_create a
rm_pod_create b
rm_service "$VIP:8080" b:8080
rm_server echo b 0.0.0.0:8080 echo
rm_control_start main node 0.0.0.0:15012
rm_pod_mesh b "control=$(rm_pod_gateway b):15012" ns=shop sa=orders ttl=5m renew=0.9
rm_pod_mesh a "control=$(rm_pod_gateway a):15012" ns=shop sa=frontend ttl=5m renew=0.9
rm_wait_ready a
rm_wait_ready b
rm_client before a --connect "$VIP:8080" "send:hello" shutdown readeof
rm_assert_eq "$RM_RC" 0 "mTLS works before the outage"

rm_stop control-main
rm_stop proxy-a
RM_PROXY_ENV="LD_PRELOAD=$FAKETIME_LIB FAKETIME=+285s FAKETIME_DONT_RESET=1" rm_proxy_start a
LOG=$(rm_proxy_log a)
rm_expect_log "$LOG" '.event == "svid_restored"' "the proxy comes back from its state directory"
rm_expect_log "$LOG" '.event == "svid_expiring" and .seconds_left <= 30' "it warns that the SVID is about to expire"
EXPIRING=$(rm_exec a curl -sf http://127.0.0.1:15021/metrics | awk '$1 == "ringmesh_proxy_svid_expiring" {print $2}')
rm_expect_log "$LOG" '.event == "svid_expired"' "it says when the SVID has expired" 30
READY=$(rm_exec a curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready)
EXPIRED_BEFORE=$(rm_exec a curl -sf http://127.0.0.1:15021/metrics | awk '$1 == "ringmesh_proxy_svid_expired" {print $2}')
rm_client after a --connect "$VIP:8080" "send:hello" shutdown readeof
METRICS=$(rm_exec a curl -sf http://127.0.0.1:15021/metrics)
metric() { awk -v k="$1" '$1 == k {print $2}' <<<"$METRICS"; }

case_warning() {
    rm_assert_eq "$EXPIRING" 1 "ringmesh_proxy_svid_expiring while near expiry"
    rm_expect_log "$LOG" '.event == "svid_request_failed"' "the renewal attempt fails and is logged"
    local n
    n=$(rm_log_count "$LOG" '.event == "svid_request_failed"')
    [ "$n" -le 6 ] || rm_fail "svid_request_failed logged $n times in about 15 s: that is a loop"
    rm_log "ok: renewal failures logged $n times (1st, 2nd, 4th, 8th... failure only)"
}

case_expired() {
    rm_assert_eq "$READY" 503 "not ready once the SVID has expired"
    [ "$RM_RC" != 0 ] || rm_fail "a connection through the mesh succeeded with an expired SVID"
    rm_expect_log "$LOG" '.event == "peer_rejected" and (.reason | test("SVID has expired"))' \
        "the refusal says the SVID has expired"
    rm_assert_eq "$(rm_log_count "$(rm_server_log echo)" '.event == "accept"')" 1 \
        "connections that reached b's application (only the one from before the outage)"
}

case_expired_metrics() {
    rm_assert_eq "$EXPIRED_BEFORE" 1 "ringmesh_proxy_svid_expired once the SVID has expired"
    rm_assert_eq "$(metric ringmesh_proxy_svid_expired)" 1 "and it stays 1 while no new SVID comes"
    rm_assert_eq "$(metric ringmesh_proxy_no_svid_rejected_total)" 1 \
        "the connection refused for want of a valid SVID of its own is counted"
}

rm_case "near expiry: warning, metric, bounded retries" case_warning
rm_case "after expiry: the SVID is not presented" case_expired
rm_case "after expiry: the metrics say so" case_expired_metrics
rm_finish
