#!/usr/bin/env bash
# rm-e2e: pending (needs the outbound request path: docs/traffic-management.md#not-yet-1)
#
# Failover and draining on the request path (docs/traffic-management.md#tests). Service orders with three endpoint
# pods b1, b2, b3; an HTTPRoute on orders retries 503 (attempts 3, codes [503]): when a pod's app is gone its
# inbound proxy answers 503 (UF, upstream connection failure) or the pooled stream is reset before a response
# started, both of which a GET may be retried on. From pod a:
#   - drain: ONE keep-alive connection sends GETs continuously (each reaching all three pods first); slow requests
#     (8 s) are in flight on b3 when b3 becomes terminating (spec.endpoints terminating: true, serving: true):
#     the slow requests finish with 200 from b3, and of the next 100 requests of the connection none goes to b3
#     (at most TERMINATING_SLACK: a request chosen in the microseconds before the push was taken), both others
#     take them;
#   - kill: ONE keep-alive connection sends 400 GETs 10 ms apart; after 100 of them b2's app is killed (by its
#     PID; its proxy stays): no request fails, the one in flight when it died included (it is retried), and b2 had
#     answered some before.
# Depends on: the request path (per-request choice; endpoint conditions applied per request); the route's retry
# (retry policy of the resilience library); outlier detection helps (b2 answers only failures after the kill) but
# is not required.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib/traffic.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/traffic.sh"
rm_setup
rm_control_init

VIP=198.19.0.70
TERMINATING_SLACK=1

rm_pod_create a
for p in b1 b2 b3; do rm_pod_create "$p"; done
rm_traffic_service orders "$VIP" 8080 orders "$(rm_traffic_ep b1)" "$(rm_traffic_ep b2)" "$(rm_traffic_ep b3)"
rm_traffic_route retry <<EOF2
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-retry, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: orders}
  rules:
  - backendRefs: [{name: orders, port: 8080}]
    retry: {attempts: 3, codes: [503], backoff: 10ms}
EOF2
for p in b1 b2 b3; do rm_traffic_http_app "$p" 8080; done
rm_traffic_mesh a b1 b2 b3
rm_traffic_wait_routes a "$VIP:8080" "HTTPRoute shop/orders-retry" "pod a holds the retry route on orders"

# each_count FILE: requests the background client of --each has written to FILE so far
each_count() {
    grep -c '"seq"' "$1" 2>/dev/null || true
}
# each_pods FILE FROM: "pod=n ..." of the requests from number FROM on in FILE
each_pods() {
    jq -r -s --argjson from "$2" '[.[] | select(.seq != null and .seq >= $from and .pod != null) | .pod] |
        group_by(.) | map("\(.[0])=\(length)") | join(" ")' "$1"
}
# wait_each FILE N NAME: waits (bounded, 60 s) until the client NAME has made N requests
wait_each() {
    local i
    for i in $(seq 1 1200); do
        [ "$(each_count "$1")" -ge "$2" ] && return 0
        rm_alive "$3" || rm_fail "$3 ended after $(each_count "$1") requests (want $2): $(tail -n 2 "$1")"
        sleep 0.05
    done
    rm_fail "$3 made only $(each_count "$1") requests within 60 s (want $2)"
}

# The client processes are started outside the cases (a case may start none: rm_case), then driven from them.
DRAIN_OUT=$RM_TMP/logs/client-drain.log
rm_bg client-drain a "$DRAIN_OUT" "$RM_TRAFFIC_PY" "$RM_TRAFFIC_APP" http-calls "$VIP:8080" 100000 --path /q \
    --pace-ms 5 --each --until-file "$RM_TMP/drain-stop"
wait_each "$DRAIN_OUT" 60 client-drain
SLOW=0
# start_slow: one more slow request (its own connection) in flight; sets SLOW to their number
start_slow() {
    SLOW=$((SLOW + 1))
    rm_bg "slow$SLOW" a "$RM_TMP/logs/slow$SLOW.log" "$RM_TRAFFIC_PY" "$RM_TRAFFIC_APP" http-calls "$VIP:8080" 1 \
        --new-conn --path "/slow?delay_ms=8000" --timeout 30
}
slow_started() { # slow requests the apps have begun
    local p n=0
    for p in b1 b2 b3; do n=$((n + $(rm_traffic_app_count "$p" '.event == "start" and (.path | startswith("/slow"))'))); done
    echo "$n"
}
# until b3 holds a slow request (bounded: 12 of them; each one's pick prefers the pods holding fewer)
for _ in $(seq 1 12); do
    start_slow
    for _ in $(seq 1 100); do
        [ "$(slow_started)" -ge "$SLOW" ] && break
        sleep 0.05
    done
    [ "$(rm_traffic_app_count b3 '.event == "start" and (.path | startswith("/slow"))')" -ge 1 ] && break
done

case_drain() {
    local before v n0 i s b3_slow after
    before=$(each_pods "$DRAIN_OUT" 1)
    rm_log "the connection's first $(each_count "$DRAIN_OUT") requests: $before"
    for p in b1 b2 b3; do
        [[ " $before " == *" $p="* ]] || rm_fail "the keep-alive connection's requests never reached $p: $before"
    done
    b3_slow=$(rm_traffic_app_count b3 '.event == "start" and (.path | startswith("/slow"))')
    [ "$b3_slow" -ge 1 ] || rm_fail "none of $SLOW slow requests went to b3"
    v=$(rm_traffic_destinations_version a)
    rm_traffic_service orders "$VIP" 8080 orders "$(rm_traffic_ep b1)" "$(rm_traffic_ep b2)" \
        "$(rm_traffic_ep b3 false true true)"
    touch "$RM_TMP/b3-terminating"
    rm_traffic_wait_destinations a "$v" "pod a took b3 terminating"
    n0=$(($(each_count "$DRAIN_OUT") + 1))
    wait_each "$DRAIN_OUT" $((n0 + 100)) client-drain
    after=$(each_pods "$DRAIN_OUT" "$n0")
    rm_log "the connection's requests after b3 became terminating: $after"
    [[ "$after" =~ (^| )b3=([0-9]+) ]] && [ "${BASH_REMATCH[2]}" -gt "$TERMINATING_SLACK" ] &&
        rm_fail "b3, terminating, got ${BASH_REMATCH[2]} new requests (at most $TERMINATING_SLACK): $after"
    if [[ " $after " != *" b1="* ]] || [[ " $after " != *" b2="* ]]; then
        rm_fail "the two ready pods do not both take the requests: $after"
    fi
    rm_log "ok: no new request went to the terminating b3"
    for i in $(seq 1 "$SLOW"); do
        rm_wait_exit "slow$i" 30
        s=$(tail -n 1 "$RM_TMP/logs/slow$i.log")
        rm_assert_eq "$(rm_json "$s" '"\(.ok) \(.errors)"')" "1 0" "slow request $i finished ($(rm_traffic_pods "$s"))"
    done
    rm_assert_eq "$(rm_traffic_app_count b3 '.event == "request" and (.path | startswith("/slow")) and .status == 200')" \
        "$b3_slow" "the slow requests in flight on b3 when it began terminating finished there"
}

case_drain_client_clean() {
    touch "$RM_TMP/drain-stop"
    rm_wait_exit client-drain 30
    local s
    s=$(tail -n 1 "$DRAIN_OUT")
    rm_assert_eq "$(rm_json "$s" '"\(.errors) \(.connections) \(.requests - .ok)"')" "0 1 0" \
        "the draining run's connection saw no failure"
}

rm_case "a terminating endpoint drains" case_drain
rm_case "the draining run's client saw no failure" case_drain_client_clean

# back to three ready pods for the kill (when the drain got as far as making b3 terminating)
if [ -e "$RM_TMP/b3-terminating" ]; then
    V=$(rm_traffic_destinations_version a)
    rm_traffic_service orders "$VIP" 8080 orders "$(rm_traffic_ep b1)" "$(rm_traffic_ep b2)" "$(rm_traffic_ep b3)"
    rm_traffic_wait_destinations a "$V" "pod a took b3 ready again"
fi
KILL_OUT=$RM_TMP/logs/client-kill.log
rm_bg client-kill a "$KILL_OUT" "$RM_TRAFFIC_PY" "$RM_TRAFFIC_APP" http-calls "$VIP:8080" 400 --path /k \
    --pace-ms 10 --each

case_kill() {
    local b2_before s
    wait_each "$KILL_OUT" 100 client-kill
    b2_before=$(rm_traffic_app_count b2 '.event == "request" and .path == "/k"')
    rm_stop app-b2 KILL
    rm_log "killed b2's app (it had answered $b2_before requests of the run) after $(each_count "$KILL_OUT") requests"
    rm_wait_exit client-kill 60
    s=$(tail -n 1 "$KILL_OUT")
    rm_log "the run: $s"
    [ "$b2_before" -ge 1 ] || rm_fail "b2 had answered none of the run's requests before it died: $(rm_traffic_pods "$s")"
    rm_assert_eq "$(rm_json "$s" '"\(.status) \(.errors)"')" '{"200":400} 0' \
        "no request failed although b2's app died mid-run"
    grep -F '"error"' "$KILL_OUT" && rm_fail "the client logged a failed request"
    rm_log "ok: every request of the run was answered 200"
}

rm_case "a pod killed mid-run costs no failed request" case_kill
rm_finish
