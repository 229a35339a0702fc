#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Istio's standard metrics on a meshed pair, checked with Debian's Prometheus tools. Pod a (client, meshed) reaches
# pod b (server, meshed) through two service VIPs: a TCP echo port and an HTTP app port whose inbound proxy decides
# every request (an ALLOW policy for all but /denied, so one request is the proxy's own 403).
#
#   TCP: TCP_CONNS connections through the echo VIP, each sending a known number of bytes: both proxies count exactly
#   that many connections opened and closed (reporter "source" on a, "destination" on b, with the peer's SPIFFE ID
#   and b's connection_security_policy "mutual_tls"), and b's received and sent bytes are what the clients sent.
#
#   Formats: /metrics as Prometheus text passes `promtool check metrics`; with an Accept header asking for
#   OpenMetrics it is OpenMetrics 1.0 (content type, counter families named without _total, "# EOF" last) and
#   Prometheus's own OpenMetrics parser (`promtool tsdb create-blocks-from openmetrics`) reads it whole.
#
#   HTTP: HTTP_REQS requests and one denied request through the HTTP VIP: requests_total counts them on both sides.
#   These counts need the L7 filters to report each request (rm__conn_observe_request/exchange, called from
#   sidecar/conn_l7.c).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds curl jq promtool
rm_setup
[ -x /usr/bin/python3 ] || rm_skip "python3 is not installed (scripts/bootstrap.sh installs it)"

ID_CLIENT="spiffe://cluster.local/ns/shop/sa/frontend"
ID_SERVER="spiffe://cluster.local/ns/shop/sa/orders"
VIP_TCP=198.19.0.10:8080
VIP_HTTP=198.19.0.11:8081
TCP_CONNS=3
HTTP_REQS=5

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_CLIENT"
rm_svid_issue orders main "$ID_SERVER"

rm_pod_create a
rm_pod_create b
rm_service "$VIP_TCP" b:8080
rm_service "$VIP_HTTP" b:8081

rm_server echo b 0.0.0.0:8080 echo
rm_bg app b "$RM_TMP/logs/app.log" /usr/bin/python3 "$RM_SOURCE_DIR/tests/e2e/tools/http_app.py" http 8081
rm_wait_port b 8081 10 app

# b decides every request: the echo port's connections are allowed as a whole (no HTTP), the app's requests one by
# one (all paths but /denied)
POLICIES="$RM_TMP/policies"
mkdir -p "$POLICIES"
cat >"$POLICIES/allow.yaml" <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/frontend"]}}]
    to: [{operation: {ports: ["8080"]}}]
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/frontend"]}}]
    to: [{operation: {ports: ["8081"], notPaths: ["/denied"]}}]
EOF
chmod -R a+rX "$POLICIES"
rm_pod_config b svid=orders bundle=main
printf 'authorization: {policyDir: "%s", defaultAction: DENY}\n' "$POLICIES" >>"$RM_TMP/pods/b/proxy.yaml"
rm__capture_rules b
rm_proxy_start b
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP_TCP=$ID_SERVER" "dest=$VIP_HTTP=$ID_SERVER"

# scrape POD [ACCEPT] > page: the pod's /metrics (response headers in $RM_TMP/headers-POD, or headers-POD-om with
# an Accept header)
scrape() {
    local args=(-s -m 10 -D "$RM_TMP/headers-$1${2:+-om}")
    [ -z "${2:-}" ] || args+=(-H "Accept: $2")
    rm_exec "$1" curl "${args[@]}" "http://127.0.0.1:15021/metrics"
}

# sum_series PAGE NAME LABEL-REGEX: the sum of the values of NAME's series whose labels match the regex
sum_series() {
    awk -v n="$2" -v re="$3" '
        /^#/ {next}
        { name = $1; sub(/\{.*/, "", name); if (name != n) next
          labels = $1; sub(/^[^{]*/, "", labels); if (labels ~ re) s += $2 }
        END {printf "%d\n", s}' "$1"
}

SENT_TOTAL=0
for i in $(seq 1 "$TCP_CONNS"); do
    payload=$(head -c $((100 * i)) /dev/zero | tr '\0' 'x')
    SENT_TOTAL=$((SENT_TOTAL + 100 * i))
    rm_client "tcp$i" a --connect "$VIP_TCP" "send:$payload" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "TCP connection $i through the mesh"
done

rm_exec a curl -s -m 10 -o /dev/null -w '%{http_code}\n' "http://$VIP_HTTP/ok/[1-$HTTP_REQS]" >"$RM_TMP/codes.txt" ||
    rm_fail "curl through the HTTP VIP failed"
rm_assert_eq "$(grep -c '^200$' "$RM_TMP/codes.txt")" "$HTTP_REQS" "HTTP requests answered 200"
rm_assert_eq "$(rm_exec a curl -s -m 10 -o /dev/null -w '%{http_code}' "http://$VIP_HTTP/denied")" 403 \
    "the request the policy denies"

# every connection made above is closed and reported on both sides before the counts are read (bounded wait)
wait_closed() {
    local pod=$1 want=$2 page="$RM_TMP/wait-$1.txt" deadline=$(($(rm_now_ms) + 10000))
    while :; do
        scrape "$pod" >"$page" || true
        [ "$(sum_series "$page" ringmesh_tcp_connections_closed_total '.')" -ge "$want" ] && return 0
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$pod: fewer than $want connections reported closed"
        sleep 0.1
    done
}
wait_closed a $((TCP_CONNS + 2))
wait_closed b $((TCP_CONNS + 2))
scrape a >"$RM_TMP/a.txt"
scrape b >"$RM_TMP/b.txt"
scrape b "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5" >"$RM_TMP/b.om"
scrape a "application/openmetrics-text" >"$RM_TMP/a.om"

case_tcp_counts() {
    local a="$RM_TMP/a.txt" b="$RM_TMP/b.txt" echo_a echo_b
    # the echo VIP's series: a names its service by address (not a Kubernetes service name), b does not know it
    echo_a='reporter="source".*destination_principal="'"$ID_SERVER"'".*destination_service="198\.19\.0\.10:8080"'
    echo_b='reporter="destination".*source_principal="'"$ID_CLIENT"'".*connection_security_policy="mutual_tls"'
    rm_assert_eq "$(sum_series "$a" ringmesh_tcp_connections_opened_total "$echo_a")" "$TCP_CONNS" \
        "a: connections opened to the echo VIP (reporter source)"
    rm_assert_eq "$(sum_series "$a" ringmesh_tcp_connections_closed_total "$echo_a")" "$TCP_CONNS" \
        "a: connections closed"
    rm_assert_eq "$(sum_series "$b" ringmesh_tcp_connections_opened_total "$echo_b")" "$((TCP_CONNS + 2))" \
        "b: connections opened (the echo's and the two HTTP ones: reporter destination, mutual_tls)"
    rm_assert_eq "$(sum_series "$b" ringmesh_tcp_connections_closed_total "$echo_b")" "$((TCP_CONNS + 2))" \
        "b: connections closed"
    rm_assert_eq "$(sum_series "$a" ringmesh_tcp_received_bytes_total "$echo_a")" "$SENT_TOTAL" \
        "a: bytes received from its client (the request direction)"
    rm_assert_eq "$(sum_series "$a" ringmesh_tcp_sent_bytes_total "$echo_a")" "$SENT_TOTAL" \
        "a: bytes sent to its client (the echo)"
    grep -q '^ringmesh_tcp_connections_opened_total{reporter="source",source_workload="unknown",' "$a" ||
        rm_fail "a: the labels are not in Istio's order with unknown for what is not known"
    grep -q 'request_protocol="tcp",response_flags="-",connection_security_policy="unknown"} ' "$a" ||
        rm_fail "a: the source side's TCP labels"
    rm_log "ok: TCP connections and bytes counted on both sides with Istio's labels"
}

case_prometheus_text() {
    local out
    grep -qi '^content-type: text/plain; version=0.0.4' "$RM_TMP/headers-a" || rm_fail "a: Prometheus text content type"
    # promtool's only allowed finding: Istio's own name for the duration histogram, kept so that dashboards built
    # for Istio work (its lint wants base units); anything else fails
    local f rest
    for f in a b; do
        out=$(promtool check metrics <"$RM_TMP/$f.txt" 2>&1) && continue
        rest=$(echo "$out" | grep -v '^ringmesh_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"$' || true)
        [ -z "$rest" ] || rm_fail "promtool check metrics ($f): $out"
    done
    rm_log "ok: promtool check metrics passes on both proxies' Prometheus text (but for Istio's duration name)"
}

case_openmetrics() {
    local f out
    for f in a b; do
        grep -qi '^content-type: application/openmetrics-text; version=1.0.0; charset=utf-8' "$RM_TMP/headers-$f-om" ||
            rm_fail "$f: OpenMetrics content type"
        rm_assert_eq "$(tail -n 1 "$RM_TMP/$f.om")" "# EOF" "$f: the OpenMetrics page ends with # EOF"
        grep -q '^# TYPE ringmesh_tcp_connections_opened counter$' "$RM_TMP/$f.om" ||
            rm_fail "$f: a counter family is named without _total in OpenMetrics"
        grep -q '^ringmesh_tcp_connections_opened_total{' "$RM_TMP/$f.om" || rm_fail "$f: counter samples end in _total"
        grep -q '^# TYPE ringmesh_proxy_connections_accepted counter$' "$RM_TMP/$f.om" ||
            rm_fail "$f: the proxy's own counters are rewritten as OpenMetrics"
        # Prometheus's OpenMetrics parser, as promtool's backfill runs it (samples need a timestamp there)
        awk '/^#/ {print; next} {print $0 " 1700000000"}' "$RM_TMP/$f.om" >"$RM_TMP/$f.om.ts"
        out=$(promtool tsdb create-blocks-from openmetrics "$RM_TMP/$f.om.ts" "$RM_TMP/blocks-$f" 2>&1) ||
            rm_fail "$f: Prometheus's OpenMetrics parser refused the page: $out"
    done
    rm_log "ok: OpenMetrics on request, read whole by Prometheus's parser"
}

case_http_requests() {
    local a="$RM_TMP/a.txt" b="$RM_TMP/b.txt"
    # every request counted once per side, the denial as Istio reports it
    rm_assert_eq "$(sum_series "$b" ringmesh_requests_total 'reporter="destination".*response_code="200"')" \
        "$HTTP_REQS" "b: requests_total of the 200s (reporter destination)"
    rm_assert_eq "$(sum_series "$b" ringmesh_requests_total \
        'reporter="destination".*source_principal="'"$ID_CLIENT"'".*response_code="403",grpc_response_status="",response_flags="-",connection_security_policy="mutual_tls"')" \
        1 "b: the denied request: 403, no response flag, mutual_tls"
    rm_assert_eq "$(sum_series "$b" ringmesh_request_duration_milliseconds_count 'reporter="destination"')" \
        "$((HTTP_REQS + 1))" "b: request durations observed"
    rm_assert_eq "$(sum_series "$a" ringmesh_requests_total 'reporter="source"')" "$((HTTP_REQS + 1))" \
        "a: requests_total (reporter source)"
    rm_log "ok: every HTTP request counted on both sides"
}

rm_case "TCP connections and bytes" case_tcp_counts
rm_case "Prometheus text and promtool" case_prometheus_text
rm_case "OpenMetrics on request" case_openmetrics
rm_case "HTTP requests" case_http_requests
rm_finish
