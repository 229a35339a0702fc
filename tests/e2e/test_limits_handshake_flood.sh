#!/usr/bin/env bash
#
# A flood of failed handshakes does not break established traffic, nor the mesh's own new handshakes. Pod a (meshed)
# keeps 4 keep-alive connections through a VIP to pod b (meshed, STRICT), one request every 5 ms on each, checked
# byte for byte, and opens a new mTLS connection for every request on 2 more; meanwhile host "ext", outside the mesh,
# makes 1,000 TLS 1.3 handshakes to b's port without a certificate (8 at a time). b's proxy runs its inbound
# handshakes on a handshake thread of low priority, and backs ext's address off after 20 failures (for longer than
# the test), so that most of the flood is closed before any cryptography. Checked:
#   - every flood handshake is refused and none reaches the app; every refusal is logged: a peer_rejected line each
#     for those that got as far as a handshake, and for the others the first line of the burst (handshake_refused)
#     and summary lines (handshakes_refused) that say how many; the back-off is one handshake_backoff line naming
#     ext's address, and the refusals are in ringmesh_proxy_handshakes_refused_total;
#   - not one request of the established traffic fails or reconnects, and the new handshakes of pod a all succeed,
#     some of them while the flood goes on;
#   - b's handshakes run on a thread named rm-handshake at nice 19.
# Then pod c (STRICT, handshakes.maxPending 1, no back-off) takes 300 such handshakes, 8 at a time: those that find a
# handshake in progress are closed at once (cause pending_limit), with the same logs and metric, and every attempt
# is accounted for. (bench/handshake-flood.sh measures the slowdown; this is its CI-sized check, on the default I/O
# backend.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_require_cmds python3

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.70
VIP_C=198.19.0.71
FLOOD=1000
FLOOD_C=300
FLOOD_TOOL="$RM_SOURCE_DIR/tests/e2e/tools/handshake_flood.py"

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"
rm_pod_create a
rm_pod_create b
rm_pod_create c
rm_external_create ext
rm_service "$VIP:8080" b:8080
rm_service "$VIP_C:8080" c:8080
rm_load_server app b 0.0.0.0:8080
rm_load_server appc c 0.0.0.0:8080
rm_pod_config b svid=orders bundle=main
printf 'handshakes: {maxPending: 64, backoffAfterFailures: 20, failureWindow: 1m, backoff: 10m}\n' \
    >>"$RM_TMP/pods/b/proxy.yaml"
rm__capture_rules b
rm_proxy_start b
rm_pod_config c svid=orders bundle=main
printf 'handshakes: {maxPending: 1, backoffAfterFailures: 0}\n' >>"$RM_TMP/pods/c/proxy.yaml"
rm__capture_rules c
rm_proxy_start c
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP:8080=$ID_B" "dest=$VIP_C:8080=$ID_B"
LOG_B=$(rm_proxy_log b)
LOG_C=$(rm_proxy_log c)
STOP=$RM_TMP/logs/traffic.stop

rm_load_requests_bg kept a "$VIP:8080" 4 1000000 --interval 5 --timeout 5000 --sample-every 100 --stop-file "$STOP"
rm_load_requests_bg fresh a "$VIP:8080" 2 1000000 --new-conn --interval 10 --timeout 5000 --sample-every 10 \
    --stop-file "$STOP"
rm_load_wait_progress kept 200
rm_load_wait_progress fresh 20
sample() { rm_log_select "$RM_TMP/logs/requests-$1.log" '.event == "sample"' | tail -n 1 | jq -r .requests; }
BEFORE=$(sample kept) BEFORE_FRESH=$(sample fresh)

rm_log "--- the flood: $FLOOD handshakes without a certificate from ext to b"
RM_RC=0
FLOOD_OUT=$(rm_exec ext timeout 240 python3 "$FLOOD_TOOL" --connect "${RM_POD_IP[b]}:8080" --count "$FLOOD" \
    --concurrency 8) || RM_RC=$?
rm_log "flood: exit $RM_RC $FLOOD_OUT"
AFTER=$(sample kept) AFTER_FRESH=$(sample fresh)
rm_load_wait_progress kept 200
rm_load_wait_progress fresh 20
touch "$STOP"
rm_load_requests_wait kept 60
KEPT=$RM_LOAD_LINE KEPT_RC=$RM_RC
rm_load_requests_wait fresh 60
FRESH=$RM_LOAD_LINE FRESH_RC=$RM_RC

rm_log "--- $FLOOD_C handshakes without a certificate from ext to c (maxPending 1)"
RM_RC=0
FLOOD_C_OUT=$(rm_exec ext timeout 240 python3 "$FLOOD_TOOL" --connect "${RM_POD_IP[c]}:8080" --count "$FLOOD_C" \
    --concurrency 8) || RM_RC=$?
rm_log "flood c: exit $RM_RC $FLOOD_C_OUT"

# refusals_logged LOG: the refusals LOG accounts for: a peer_rejected line each, one for the first of a burst, and
# the counts of the summary lines
refusals_logged() {
    local each first summed
    each=$(rm_log_count "$1" '.event == "peer_rejected" and .direction == "inbound"')
    first=$(rm_log_count "$1" '.event == "handshake_refused"')
    summed=$(rm_log_select "$1" '.event == "handshakes_refused"' | jq -s 'map(.pending_limit + .backoff) | add // 0')
    echo $((each + first + summed))
}

# wait_accounted LOG N: waits (bounded: the summary line comes within a second or two) until LOG accounts for N
wait_accounted() {
    local n
    local _
    for _ in $(seq 1 100); do
        n=$(refusals_logged "$1")
        [ "$n" -ge "$2" ] && break
        sleep 0.1
    done
    echo "$n"
}

case_flood_refused() {
    rm_assert_eq "$(rm_json "$FLOOD_OUT" .attempts)" "$FLOOD" "flood handshakes made"
    rm_assert_eq "$(rm_json "$FLOOD_OUT" .refused)" "$FLOOD" "flood handshakes refused"
    rm_assert_eq "$(rm_json "$FLOOD_OUT" .accepted)" 0 "flood handshakes that got an answer from the app"
}

case_refusals_logged() {
    local n each backoff line
    n=$(wait_accounted "$LOG_B" "$FLOOD")
    rm_assert_eq "$n" "$FLOOD" "refusals b's log accounts for (a line each, or counted in a summary)"
    each=$(rm_log_count "$LOG_B" '.event == "peer_rejected" and .direction == "inbound"')
    # the back-off starts at the 20th failure; the handshakes already under way (at most 8) fail too
    if [ "$each" -lt 20 ] || [ "$each" -gt 28 ]; then
        rm_fail "$each flood handshakes got as far as a handshake (want 20 to 28: the back-off after 20 failures)"
    fi
    line=$(rm_log_select "$LOG_B" '.event == "handshake_backoff"')
    rm_assert_eq "$(wc -l <<<"$line" | tr -d ' ')" 1 "handshake_backoff lines"
    [[ $(jq -r .peer_addr <<<"$line") == "${RM_POD_IP[ext]}:"* ]] || rm_fail "the back-off names $line, not ext"
    rm_assert_eq "$(jq -r .failures <<<"$line")" 20 "failures that started the back-off"
    rm_assert_eq "$(rm_log_select "$LOG_B" '.event == "handshake_refused"' | head -n 1 | jq -r .cause)" backoff \
        "the first refusal's cause"
    backoff=$(rm_exec b curl -s -m 5 http://127.0.0.1:15021/metrics |
        awk '$1 == "ringmesh_proxy_handshakes_refused_total{cause=\"backoff\"}" {print $2}')
    rm_assert_eq "$backoff" $((FLOOD - each)) "ringmesh_proxy_handshakes_refused_total{cause=\"backoff\"}"
    rm_log "ok: $each refused handshakes, $backoff connections closed before a handshake, all logged"
}

case_established_unharmed() {
    rm_assert_eq "$(rm_json "$KEPT" .failed)" 0 "failed requests of the established traffic"
    rm_assert_eq "$KEPT_RC" 0 "e2e_load's status"
    rm_assert_eq "$(rm_json "$KEPT" .reconnects)" 0 "the established connections stayed up (no reconnect)"
    [ "$AFTER" -gt "$BEFORE" ] || rm_fail "no request of the established traffic completed during the flood"
    rm_log "ok: $((AFTER - BEFORE)) requests completed during the flood, $(rm_json "$KEPT" .ok) in all, p99 \
$(rm_json "$KEPT" .p99_us) us"
}

case_mesh_handshakes_succeed() {
    rm_assert_eq "$(rm_json "$FRESH" .failed)" 0 "failed requests on new mTLS connections from a"
    rm_assert_eq "$FRESH_RC" 0 "e2e_load's status (new connections)"
    [ "$AFTER_FRESH" -gt "$BEFORE_FRESH" ] || rm_fail "no new mTLS connection from a completed during the flood"
    rm_log "ok: $((AFTER_FRESH - BEFORE_FRESH)) new mTLS connections from a during the flood, \
$(rm_json "$FRESH" .ok) in all, none failed"
}

case_handshake_thread() {
    local pid line
    pid=${RM_PID[proxy-b]}
    line=$(ps -L -o comm=,nice= -p "$pid" | awk '$1 == "rm-handshake"')
    [ -n "$line" ] || rm_fail "b's proxy (PID $pid) has no thread rm-handshake: $(ps -L -o comm= -p "$pid" | xargs)"
    rm_assert_eq "$(awk '{print $2}' <<<"$line")" 19 "the handshake thread's nice"
    rm_log "ok: $line"
}

case_pending_limit() {
    local n limited
    rm_assert_eq "$(rm_json "$FLOOD_C_OUT" .refused)" "$FLOOD_C" "flood handshakes to c refused"
    rm_assert_eq "$(rm_json "$FLOOD_C_OUT" .accepted)" 0 "flood handshakes to c that got an answer"
    n=$(wait_accounted "$LOG_C" "$FLOOD_C")
    rm_assert_eq "$n" "$FLOOD_C" "refusals c's log accounts for"
    limited=$(rm_exec c curl -s -m 5 http://127.0.0.1:15021/metrics |
        awk '$1 == "ringmesh_proxy_handshakes_refused_total{cause=\"pending_limit\"}" {print $2}')
    [ "${limited:-0}" -gt 0 ] || rm_fail "no handshake was refused at maxPending 1 with 8 at a time"
    rm_assert_eq "$(rm_log_select "$LOG_C" '.event == "handshake_refused"' | head -n 1 | jq -r .cause)" \
        pending_limit "the first refusal's cause on c"
    rm_assert_eq "$(rm_log_count "$LOG_C" '.event == "handshake_backoff"')" 0 "back-offs on c (off)"
    rm_log "ok: $limited of $FLOOD_C closed at the pending limit, all logged"
}

rm_case "every flood handshake is refused" case_flood_refused
rm_case "every refusal is logged, the back-off once" case_refusals_logged
rm_case "the established traffic does not fail" case_established_unharmed
rm_case "the mesh's own handshakes succeed during the flood" case_mesh_handshakes_succeed
rm_case "handshakes run on a low-priority thread" case_handshake_thread
rm_case "handshakes beyond maxPending are closed before any cryptography" case_pending_limit
rm_finish
