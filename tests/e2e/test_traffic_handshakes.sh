#!/usr/bin/env bash
# rm-e2e: pending (needs the outbound request path: docs/traffic-management.md#not-yet-1)
# rm-e2e: both-backends
#
# Pooled connections between the proxies (docs/traffic-management.md#tests). Service orders with three endpoint pods;
# from pod a, 1,000 short app connections (one HTTP/1.1 request each, "Connection: close", one after the other):
#   - every request is answered 200;
#   - the mTLS handshakes the proxies count (HANDSHAKE_METRIC, a's outbound and the three inbound proxies together)
#     grow by at most POOL_PER_ENDPOINT x endpoints x workers, not by 1,000: the requests ride on a few pooled
#     ringmesh/h2 connections per endpoint (a's proxy runs one worker, as every e2e proxy does);
#   - and by at least one on a's side (the pool was opened in this run: nothing talked to orders before).
# Depends on: the request path (the pooled connections). POOL_PER_ENDPOINT is the bound this test allows for "a small
# pool per endpoint and worker", not a setting.
HANDSHAKE_METRIC=ringmesh_proxy_tls_handshakes_total
POOL_PER_ENDPOINT=4
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib/traffic.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/traffic.sh"
rm_setup
rm_control_init

VIP=198.19.0.80
CONNECTIONS=1000
ENDPOINTS=3
WORKERS=1 # rm_pod_mesh writes workers: 1

rm_pod_create a
for p in b1 b2 b3; do rm_pod_create "$p"; done
rm_traffic_service orders "$VIP" 8080 orders "$(rm_traffic_ep b1)" "$(rm_traffic_ep b2)" "$(rm_traffic_ep b3)"
for p in b1 b2 b3; do rm_traffic_http_app "$p" 8080; done
rm_traffic_mesh a b1 b2 b3

# inbound_handshakes: the three inbound proxies' handshakes together
inbound_handshakes() {
    echo $(($(rm_traffic_metric b1 "$HANDSHAKE_METRIC") + $(rm_traffic_metric b2 "$HANDSHAKE_METRIC") +
        $(rm_traffic_metric b3 "$HANDSHAKE_METRIC")))
}

case_few_handshakes() {
    local bound=$((POOL_PER_ENDPOINT * ENDPOINTS * WORKERS)) a0 b0 a1 b1 s
    a0=$(rm_traffic_metric a "$HANDSHAKE_METRIC")
    b0=$(inbound_handshakes)
    s=$(rm_traffic_calls a http-calls "$VIP:8080" "$CONNECTIONS" --new-conn --path /short)
    rm_log "$CONNECTIONS short connections: $s"
    rm_assert_eq "$(rm_json "$s" '"\(.ok) \(.errors) \(.connections)"')" "$CONNECTIONS 0 $CONNECTIONS" \
        "$CONNECTIONS connections, each answered 200"
    a1=$(rm_traffic_metric a "$HANDSHAKE_METRIC")
    b1=$(inbound_handshakes)
    rm_log "handshakes for $CONNECTIONS app connections: pod a's proxy $((a1 - a0)), the inbound proxies $((b1 - b0))" \
        "(bound: $POOL_PER_ENDPOINT per endpoint and worker x $ENDPOINTS endpoints x $WORKERS worker = $bound)"
    [ $((a1 - a0)) -le "$bound" ] ||
        rm_fail "pod a's proxy made $((a1 - a0)) handshakes for $CONNECTIONS app connections (want at most $bound)"
    [ $((b1 - b0)) -le "$bound" ] ||
        rm_fail "the inbound proxies made $((b1 - b0)) handshakes for $CONNECTIONS app connections (want at most $bound)"
    [ $((a1 - a0)) -ge 1 ] || rm_fail "pod a's proxy counted no handshake at all ($HANDSHAKE_METRIC absent?)"
    rm_log "ok: a handful of handshakes, not $CONNECTIONS"
}

rm_case "$CONNECTIONS short app connections cost a handful of handshakes" case_few_handshakes
rm_finish
