#!/usr/bin/env bash
# rm-e2e: pending (needs the outbound request path: docs/traffic-management.md#not-yet-1)
#
# Weighted and header-matched routes applied to requests (docs/traffic-management.md#tests). Service orders (the
# parent: its endpoints are every pod of the app, stable s1, s2 and canary c1, as a Service selecting app=orders
# would list them), orders-v1 (s1, s2) and orders-v2 (c1); an HTTPRoute attached to orders. From pod a, over ONE
# keep-alive HTTP/1.1 connection:
#   - backendRefs orders-v1 weight 90, orders-v2 weight 10: over 2,000 requests the canary's share is within
#     10 % +- 3 points (binomial: a standard deviation of 0.67 points at 2,000 requests, so +-3 points is 4.5 of
#     them: a correct split fails this about once in 150,000 runs);
#   - a rule matching the header x-canary: true sends to orders-v2 and the rule without match to orders-v1 alone:
#     every marked request reaches the canary, no unmarked one does.
# Depends on: the request path (per-request route selection and backend weights; rm_route_select and
# rm_route_pick_backend are on main already, not applied to requests). Nothing of retries or outlier detection.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib/traffic.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/traffic.sh"
rm_setup
rm_control_init

REQUESTS=2000
CANARY_MIN=7 # per cent, 10 - 3
CANARY_MAX=13
VIP=198.19.0.50 # orders
VIP1=198.19.0.51
VIP2=198.19.0.52

rm_pod_create a
for p in s1 s2 c1; do rm_pod_create "$p"; done
rm_traffic_service orders "$VIP" 8080 orders "$(rm_traffic_ep s1)" "$(rm_traffic_ep s2)" "$(rm_traffic_ep c1)"
rm_traffic_service orders-v1 "$VIP1" 8080 orders "$(rm_traffic_ep s1)" "$(rm_traffic_ep s2)"
rm_traffic_service orders-v2 "$VIP2" 8080 orders "$(rm_traffic_ep c1)"
rm_traffic_route split <<EOF2
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-split, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: orders}
  rules:
  - backendRefs: [{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: 8080, weight: 10}]
EOF2
for p in s1 s2 c1; do rm_traffic_http_app "$p" 8080; done
rm_traffic_mesh a s1 s2 c1
rm_traffic_wait_routes a "$VIP:8080" "HTTPRoute shop/orders-split" "pod a holds the split route on orders"

case_weighted_split() {
    local s canary ok pct
    s=$(rm_traffic_calls a http-calls "$VIP:8080" "$REQUESTS" --path /split)
    rm_log "$REQUESTS requests over one connection: $s"
    ok=$(rm_json "$s" .ok)
    rm_assert_eq "$ok/$(rm_json "$s" .errors)" "$REQUESTS/0" "every request answered 200"
    canary=$(rm_json "$s" '.pods.c1 // 0')
    pct=$(awk -v c="$canary" -v n="$ok" 'BEGIN { printf "%.1f", 100 * c / n }')
    rm_log "canary share: $canary of $ok = $pct % ($(rm_traffic_pods "$s"))"
    awk -v p="$pct" -v lo="$CANARY_MIN" -v hi="$CANARY_MAX" 'BEGIN { exit !(p >= lo && p <= hi) }' ||
        rm_fail "the canary's share is $pct % (want $CANARY_MIN..$CANARY_MAX %: weights 90/10): $(rm_traffic_pods "$s")"
    rm_log "ok: the canary's share is within 10 +- 3 points"
}

case_header_match() {
    local v s
    v=$(rm_traffic_destinations_version a)
    rm_traffic_route split <<EOF2
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-split, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: orders}
  rules:
  - matches:
    - headers: [{name: x-canary, value: "true"}]
    backendRefs: [{name: orders-v2, port: 8080}]
  - backendRefs: [{name: orders-v1, port: 8080}]
EOF2
    rm_traffic_wait_destinations a "$v" "pod a took the header-match route"
    s=$(rm_traffic_calls a http-calls "$VIP:8080" 200 --path /marked --header "x-canary: true")
    rm_log "200 marked requests: $s"
    rm_assert_eq "$(rm_json "$s" '"\(.ok) \(.errors)"') $(rm_traffic_pods "$s")" "200 0 c1=200" \
        "every marked request reached the canary"
    s=$(rm_traffic_calls a http-calls "$VIP:8080" 200 --path /unmarked)
    rm_log "200 unmarked requests: $s"
    rm_assert_eq "$(rm_json "$s" '"\(.ok) \(.errors) \(.pods.c1 // 0)"')" "200 0 0" \
        "no unmarked request reached the canary"
    rm_assert_eq "$(rm_traffic_app_count c1 '.event == "request" and .path == "/marked" and .headers["x-canary"] == "true"')" \
        200 "the canary's app saw the 200 marked requests with their header"
}

rm_case "a 90/10 split over $REQUESTS requests" case_weighted_split
rm_case "a header match sends marked requests to the canary only" case_header_match
rm_finish
