#!/usr/bin/env bash
#
# SVID rotation under continuous traffic. Pods a and b get 5-minute SVIDs (the shortest the control plane issues)
# and renew at 10 % of the lifetime (30 s, give or take 20 % of that). While they renew, pod a keeps
# opening new connections to b through the mesh, one after another, and holds one connection open across the
# rotation. Every connection must succeed, the open one must carry its bytes after the rotation, and new
# handshakes must use the new certificate (the SVID expiry a's proxy reports moves forward).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_control_init

VIP=198.19.0.20
rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders

rm_pod_create a
rm_pod_create b
rm_service "$VIP:8080" b:8080
rm_server echo b 0.0.0.0:8080 echo
rm_control_start main node 0.0.0.0:15012
rm_pod_mesh b "control=$(rm_pod_gateway b):15012" ns=shop sa=orders ttl=5m renew=0.1
rm_pod_mesh a "control=$(rm_pod_gateway a):15012" ns=shop sa=frontend ttl=5m renew=0.1
rm_wait_ready a
rm_wait_ready b

metric() { # metric POD NAME: the value of an unlabelled metric on POD's admin port
    rm_exec "$1" curl -sf http://127.0.0.1:15021/metrics | awk -v n="$2" '$1 == n {print $2}'
}
EXPIRY_BEFORE=$(metric a ringmesh_proxy_svid_expiry_timestamp_seconds)

# One connection held open across the rotation.
rm_client_bg long a --connect "$VIP:8080" --timeout 120000 "send:before-rotation;" "read:16" \
    "waitfile:$RM_TMP/rotated" "send:after-rotation" shutdown readeof

# New connections, one after another, until both proxies have renewed and a few more after (bounded).
issued() { rm_log_count "$(rm_proxy_log "$1")" '.event == "svid_issued"'; }
ok=0
failed=0
after=0
for i in $(seq 1 200); do
    if ip netns exec "$(rm_ns a)" timeout 10 "$RM_TOOLS/e2e_client" --connect "$VIP:8080" "send:ping-$i" shutdown \
        readeof >"$RM_TMP/logs/loop.out" 2>/dev/null && grep -q "^ping-$i\$" "$RM_TMP/logs/loop.out"; then
        ok=$((ok + 1))
    else
        failed=$((failed + 1))
        rm_log "connection $i failed"
    fi
    if [ "$(issued a)" -ge 2 ] && [ "$(issued b)" -ge 2 ]; then
        after=$((after + 1))
        [ $after -lt 10 ] || break
    fi
    sleep 0.4
done
touch "$RM_TMP/rotated"
rm_wait_exit client-long 30
LONG_RC=$RM_RC

case_rotated() {
    local na nb
    na=$(issued a)
    nb=$(issued b)
    [ "$na" -ge 2 ] || rm_fail "pod a's proxy did not renew its SVID ($na issued)"
    [ "$nb" -ge 2 ] || rm_fail "pod b's proxy did not renew its SVID ($nb issued)"
    rm_log "ok: SVIDs issued during the test: a $na, b $nb"
    rm_assert_eq "$(metric a ringmesh_proxy_svid_renewals_total)" "$na" "a's metrics count every SVID it got"
    rm_assert_eq "$(rm_log_select "$(rm_proxy_log a)" '.event == "svid_issued"' | jq -r .connection | sort -u | tr '\n' ' ')" \
        "discovery new " "the first SVID came over a new connection, renewals over the discovery stream's"
    local expiry_after
    expiry_after=$(metric a ringmesh_proxy_svid_expiry_timestamp_seconds)
    [ "$expiry_after" -gt "$EXPIRY_BEFORE" ] ||
        rm_fail "the SVID a presents did not change (expiry $EXPIRY_BEFORE -> $expiry_after)"
    rm_log "ok: a now presents the new SVID (expiry $EXPIRY_BEFORE -> $expiry_after)"
}

case_no_failed_requests() {
    rm_log "$ok connections succeeded, $failed failed during the rotation"
    rm_assert_eq "$failed" 0 "connections that failed during the rotation"
    [ "$ok" -ge 10 ] || rm_fail "only $ok connections were made: the loop did not run"
    rm_assert_eq "$(rm_log_count "$(rm_proxy_log a)" '.event == "peer_rejected" or .event == "tls_error"')" 0 \
        "TLS refusals in a's log"
    rm_assert_eq "$(rm_log_count "$(rm_proxy_log b)" '.event == "peer_rejected" or .event == "tls_error"')" 0 \
        "TLS refusals in b's log"
}

case_open_connection_undisturbed() {
    rm_assert_eq "$LONG_RC" 0 "the connection opened before the rotation finished cleanly"
    rm_assert_content "$(rm_client_out long)" "before-rotation;after-rotation" \
        "bytes sent before and after the rotation came back"
}

rm_case "both proxies renewed" case_rotated
rm_case "no failed connection during the rotation" case_no_failed_requests
rm_case "an open connection is not disturbed" case_open_connection_undisturbed
rm_finish
