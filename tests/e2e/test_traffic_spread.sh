#!/usr/bin/env bash
# rm-e2e: pending (needs the outbound request path: docs/traffic-management.md#not-yet-1)
# rm-e2e: both-backends
#
# Per-request balancing (docs/traffic-management.md#tests). A Service with three endpoint pods b1, b2, b3 (file
# source, spec.endpoints); from pod a:
#   - ONE keep-alive HTTP/1.1 client connection's 300 requests reach all three pods, each at least MIN_SHARE;
#   - ONE gRPC channel's (one HTTP/2 connection's) 300 unary calls reach all three, each at least MIN_SHARE;
#   - the ringmesh-* headers the app sent never reach the called app (the outbound removes them, the inbound removes
#     every ringmesh-* header it got), and the app answers through the mesh as it would directly.
# That TCP connections spread over the three is test_mesh_endpoints.sh's (not repeated here).
#
# Depends on: the request path (per-request EWMA P2C over pooled ringmesh/h2 connections). Nothing of routes,
# retries or outlier detection.
#
# MIN_SHARE: a fair share is 100 of 300. Power of two choices on an EWMA of latency and in-flight load picks the
# less loaded of two random pods; with equal pods the spread is close to uniform (binomial: a standard deviation of
# 8 requests), but a pod that was briefly slower on a machine shared with other tests loses comparisons until its
# estimate decays. 45 (15 % of the requests, a bit under half a fair share) leaves room for that, and still fails
# a connection pinned to one pod (300/0/0) or spread over only two.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib/traffic.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/traffic.sh"
rm_setup
rm_control_init
rm_traffic_require_grpc

MIN_SHARE=45
VIP=198.19.0.42      # orders, HTTP/1.1 on 8080
VIP_GRPC=198.19.0.43 # orders-grpc, gRPC on 8081

rm_pod_create a
for p in b1 b2 b3; do rm_pod_create "$p"; done
rm_traffic_service orders "$VIP" 8080 orders "$(rm_traffic_ep b1)" "$(rm_traffic_ep b2)" "$(rm_traffic_ep b3)"
rm_traffic_service orders-grpc "$VIP_GRPC" 8081 orders "$(rm_traffic_ep b1)" "$(rm_traffic_ep b2)" "$(rm_traffic_ep b3)"
for p in b1 b2 b3; do
    rm_traffic_http_app "$p" 8080
    rm_traffic_grpc_app "$p" 8081
done
rm_traffic_mesh a b1 b2 b3

case_http1_one_connection() {
    local s
    s=$(rm_traffic_calls a http-calls "$VIP:8080" 300 --path /spread --header "ringmesh-orig-proto: HTTP/0.9" \
        --header "ringmesh-error: forged")
    rm_log "one HTTP/1.1 connection, 300 requests: $s"
    rm_assert_eq "$(rm_json "$s" '"\(.ok)/\(.errors)/\(.connections)"')" "300/0/1" \
        "all 300 requests answered 200 over one connection"
    rm_traffic_at_least "$s" "$MIN_SHARE" b1 b2 b3
    local p leaked=0
    for p in b1 b2 b3; do
        leaked=$((leaked + $(rm_traffic_app_count "$p" '.event == "request" and .path == "/spread" and
            ((.headers // {}) | keys | any(startswith("ringmesh-")))')))
    done
    rm_assert_eq "$leaked" 0 "no request reached an app with a ringmesh-* header"
}

case_grpc_one_channel() {
    local s
    s=$(rm_traffic_calls a grpc-calls "$VIP_GRPC:8081" 300)
    rm_log "one gRPC channel, 300 calls: $s"
    rm_assert_eq "$(rm_json "$s" .ok)" 300 "all 300 calls returned OK"
    rm_traffic_at_least "$s" "$MIN_SHARE" b1 b2 b3
}

rm_case "one HTTP/1.1 connection's requests reach every pod" case_http1_one_connection
rm_case "one gRPC channel's calls reach every pod" case_grpc_one_channel
rm_finish
