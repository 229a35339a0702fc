#!/usr/bin/env bash
# rm-e2e: both-backends
#
# The outbound request path (docs/traffic-management.md, "Requests"): pod a's proxy, with
# traffic.requestBalancing: true, serves its app's HTTP/1.1 itself and sends each request as a stream over pooled
# HTTP/2 mTLS connections (ALPN ringmesh/h2) to the endpoints of Service orders. The endpoints' inbound proxies are
# not ours: in each of p1, p2, p3 HAProxy terminates the mTLS (the pod's SVID from the control plane's CA, the
# client's required) with HTTP/2 on that bind, and hands each request to the pod's app over HTTP/1.1 with an x-pod
# header naming the pod:
#
#   a: curl / traffic_app.py -> a's proxy (15001) == h2 over mTLS, ringmesh/h2 ==> HAProxy p1|p2|p3:8080
#        -> req_echo_app.py 127.0.0.1:9080 (says what reached it)
#
# Proven: one keep-alive app connection's requests spread over the three pods; 1,000 short app connections cost a
# handful of handshakes (a's own counter, and HAProxy's accepted connections); a 90/10 HTTPRoute split over 2,000
# requests within +-3 points and a header match to the canary; ringmesh-* fields the app sends never reach the
# backend while ringmesh-orig-proto: HTTP/1.1 does; chunked and 1 MiB bodies both ways, and an HTTP/1.0 client; a
# pod whose HAProxy is stopped gets no request after its connection fails and no GET fails; one
# ringmesh_requests_total{reporter="source"} count and one access line per request; a rule's ResponseHeaderModifier
# applied; a rule's timeouts.request answered 504. RM_REQ_CASES (a regular expression) runs some cases only. RM_REQ_BALANCING=false runs the same checks on the
# connection-level path (they fail there: one pod per connection, one handshake per connection, no routes).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib/traffic.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/traffic.sh"
rm_setup
rm_require_cmds curl jq haproxy /usr/bin/python3 sha256sum
rm_control_init

ECHO_APP=$RM_SOURCE_DIR/tests/e2e/tools/req_echo_app.py
VIP=198.19.0.60  # orders: p1, p2, p3
VIP1=198.19.0.61 # orders-v1: p1, p2
VIP2=198.19.0.62 # orders-v2: p3 (the canary)
STATE=$RM_TMP/control/state
PODS="p1 p2 p3"

printf '  accessLog: {enabled: "true"}\n' >>"$RM_TMP/control/mesh/mesh.yaml" # one access line per request

rm_pod_create a
for p in $PODS; do rm_pod_create "$p"; done
rm_traffic_service orders "$VIP" 8080 orders "$(rm_traffic_ep p1)" "$(rm_traffic_ep p2)" "$(rm_traffic_ep p3)"
rm_traffic_service orders-v1 "$VIP1" 8080 orders "$(rm_traffic_ep p1)" "$(rm_traffic_ep p2)"
rm_traffic_service orders-v2 "$VIP2" 8080 orders "$(rm_traffic_ep p3)"
rm_control_start main node 0.0.0.0:15012

# the client: our proxy with the request path on (or off, to see the checks fail)
rm_pod_config a "control=$(rm_pod_gateway a):15012" ns=shop sa=frontend
printf 'traffic:\n  requestBalancing: %s\nlogLevel: %s\n' "${RM_REQ_BALANCING:-true}" \
    "${RM_REQ_LOG_LEVEL:-info}" >>"$RM_TMP/pods/a/proxy.yaml"
rm__capture_rules a
rm_proxy_start a
rm_wait_ready a

# the endpoints: HAProxy with an SVID of ServiceAccount orders from the control plane's own CA
cp "$STATE/ca-cert.pem" "$RM_TMP/pki/ca-mesh.pem"
cp "$STATE/ca-key.pem" "$RM_TMP/pki/ca-mesh.key"
rm_svid_issue orders mesh "spiffe://$RM_TRUST_DOMAIN/ns/shop/sa/orders"
cat "$RM_TMP/pki/orders.pem" "$RM_TMP/pki/orders.key" >"$RM_TMP/pki/orders-haproxy.pem"
start_haproxy() {
    local p=$1 d=$RM_TMP/haproxy-$1
    mkdir -p "$d"
    cat >"$d/haproxy.cfg" <<EOF
global
    maxconn 4000
    stats socket $d/stats.sock mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend mesh
    bind ${RM_POD_IP[$p]}:8080 ssl crt $RM_TMP/pki/orders-haproxy.pem ca-file $STATE/trust-bundle.pem verify required alpn ringmesh/h2 proto h2
    http-response set-header x-pod $p
    default_backend app
backend app
    server app 127.0.0.1:9080
EOF
    rm_bg "haproxy-$p" "$p" "$RM_TMP/logs/haproxy-$p.log" haproxy -db -f "$d/haproxy.cfg"
    rm_wait_port "$p" 8080 10 "haproxy-$p"
}
for p in $PODS; do
    rm_bg "app-$p" "$p" "$RM_TMP/logs/app-$p.log" /usr/bin/python3 "$ECHO_APP" 9080 "$p"
    rm_wait_port "$p" 9080 10 "app-$p"
    start_haproxy "$p"
done

# haproxy_accepted POD: TLS connections HAProxy in POD accepted since it started
haproxy_accepted() {
    rm_exec "$1" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show info\n")
d = b""
while True:
    b = s.recv(65536)
    if not b: break
    d += b
for l in d.decode().splitlines():
    if l.startswith("CumSslConns:"): print(l.split(":")[1].strip())
' "$RM_TMP/haproxy-$1/stats.sock"
}

# echo_log POD FILTER: requests POD's app logged that match the jq FILTER
echo_count() {
    rm_log_count "$RM_TMP/logs/app-$1.log" ".event == \"request\" and ($2)"
}

# a_curl ARGS...: curl in pod a (bounded), printing what it prints
a_curl() {
    rm_exec a curl -sS -m 20 "$@"
}

case_spread_one_connection() {
    local s
    s=$(rm_traffic_calls a http-calls "$VIP:8080" 300 --path /spread)
    rm_log "300 requests over one app connection: $s"
    rm_assert_eq "$(rm_json "$s" '"\(.ok) \(.errors) \(.connections)"')" "300 0 1" \
        "every request answered, over one app connection"
    # peak-EWMA P2C favours the endpoint that answered fastest lately: one request at a time, the shares are uneven,
    # but every pod takes part (the connection-level path sends all 300 to one pod)
    rm_traffic_at_least "$s" 1 p1 p2 p3
}

case_handshakes() {
    local before after accepted=0 p s n
    before=$(rm_traffic_metric a ringmesh_proxy_tls_handshakes_total)
    s=$(rm_traffic_calls a http-calls "$VIP:8080" 1000 --new-conn --path /short)
    rm_log "1000 short app connections: $s"
    rm_assert_eq "$(rm_json "$s" '"\(.ok) \(.errors) \(.connections)"')" "1000 0 1000" \
        "1000 requests, each on its own app connection"
    after=$(rm_traffic_metric a ringmesh_proxy_tls_handshakes_total)
    for p in $PODS; do
        n=$(haproxy_accepted "$p")
        accepted=$((accepted + n))
    done
    rm_log "a's proxy: $((after - before)) handshakes for the 1000 connections ($after in all); HAProxy accepted $accepted connections in all"
    [ $((after - before)) -le 6 ] ||
        rm_fail "1000 short app connections cost $((after - before)) handshakes (want a handful: at most 6)"
    [ "$after" -le 12 ] || rm_fail "a's proxy completed $after handshakes in all (want at most 12)"
    [ "$accepted" -le 12 ] || rm_fail "the endpoints' HAProxy accepted $accepted connections (want at most 12)"
}

case_split_and_header_match() {
    local s canary ok pct v
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
  - matches: [{path: {type: PathPrefix, value: /modified}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: x-route, value: split}], remove: [x-pod]}
    backendRefs: [{name: orders-v1, port: 8080}]
  - backendRefs: [{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: 8080, weight: 10}]
EOF2
    rm_traffic_wait_destinations a "$v" "pod a took the route"
    rm_traffic_wait_routes a "$VIP:8080" "HTTPRoute shop/orders-split" "pod a holds the split route on orders"
    a_curl -D - -o /dev/null "http://$VIP:8080/modified" >"$RM_TMP/modified.txt"
    if ! grep -qi '^x-route: split' "$RM_TMP/modified.txt" || grep -qi '^x-pod:' "$RM_TMP/modified.txt"; then
        rm_fail "the rule's ResponseHeaderModifier was not applied: $(cat "$RM_TMP/modified.txt")"
    fi
    rm_log "ok: the rule's ResponseHeaderModifier set x-route and removed x-pod"
    s=$(rm_traffic_calls a http-calls "$VIP:8080" 2000 --path /split)
    ok=$(rm_json "$s" .ok)
    rm_assert_eq "$ok/$(rm_json "$s" .errors)" "2000/0" "every request answered"
    canary=$(rm_json "$s" '.pods.p3 // 0')
    pct=$(awk -v c="$canary" -v n="$ok" 'BEGIN { printf "%.1f", 100 * c / n }')
    rm_log "canary share: $canary of $ok = $pct % ($(rm_traffic_pods "$s"))"
    awk -v p="$pct" 'BEGIN { exit !(p >= 7 && p <= 13) }' ||
        rm_fail "the canary's share is $pct % (want 7..13 %: weights 90/10): $(rm_traffic_pods "$s")"
    s=$(rm_traffic_calls a http-calls "$VIP:8080" 100 --path /marked --header "x-canary: true")
    rm_assert_eq "$(rm_json "$s" '"\(.ok) \(.errors)"') $(rm_traffic_pods "$s")" "100 0 p3=100" \
        "every marked request reached the canary"
}

case_mesh_headers() {
    local out
    out=$(a_curl -H "ringmesh-evil: forged" -H "Ringmesh-Orig-Proto: HTTP/9.9" -H "x-keep: yes" \
        "http://$VIP:8080/headers")
    rm_log "what the app got: $out"
    rm_assert_eq "$(jq -r '[.headers | keys[] | select(startswith("ringmesh-"))] | join(",")' <<<"$out")" \
        "ringmesh-orig-proto" "the only ringmesh-* field reaching the backend is the proxy's own"
    rm_assert_eq "$(jq -r '.headers["ringmesh-orig-proto"] + " " + .headers["x-keep"] + " " + .headers.host' <<<"$out")" \
        "HTTP/1.1 yes $VIP:8080" "ringmesh-orig-proto: HTTP/1.1, the app's own fields and its Host cross"
}

case_bodies() {
    local out want got
    head -c 1048576 /dev/urandom >"$RM_TMP/body.bin"
    want=$(sha256sum "$RM_TMP/body.bin" | cut -d' ' -f1)
    out=$(a_curl --data-binary "@$RM_TMP/body.bin" "http://$VIP:8080/upload-length")
    rm_assert_eq "$(jq -r '"\(.body_len) \(.body_sha256)"' <<<"$out")" "1048576 $want" \
        "a 1 MiB request body with content-length arrives whole"
    out=$(a_curl -H "Transfer-Encoding: chunked" --data-binary "@$RM_TMP/body.bin" "http://$VIP:8080/upload-chunked")
    rm_assert_eq "$(jq -r '"\(.body_len) \(.body_sha256)"' <<<"$out")" "1048576 $want" \
        "a 1 MiB chunked request body arrives whole"
    want=$(/usr/bin/python3 -c 'import hashlib; print(hashlib.sha256(bytes(i % 251 for i in range(1048576))).hexdigest())')
    got=$(a_curl -D "$RM_TMP/h1.txt" "http://$VIP:8080/dl?size=1048576" | sha256sum | cut -d' ' -f1)
    rm_assert_eq "$got" "$want" "a 1 MiB response with content-length arrives whole"
    grep -qi '^content-length: 1048576' "$RM_TMP/h1.txt" || rm_fail "no content-length: $(cat "$RM_TMP/h1.txt")"
    got=$(a_curl -D "$RM_TMP/h2.txt" "http://$VIP:8080/dl?size=1048576&chunked=1" | sha256sum | cut -d' ' -f1)
    rm_assert_eq "$got" "$want" "a 1 MiB response of unknown length arrives whole"
    grep -qi '^transfer-encoding: chunked' "$RM_TMP/h2.txt" ||
        rm_fail "a response of unknown length is not chunked to the app: $(cat "$RM_TMP/h2.txt")"
    got=$(a_curl --http1.0 -D "$RM_TMP/h3.txt" "http://$VIP:8080/dl?size=100000&chunked=1" | wc -c)
    rm_assert_eq "$got" 100000 "an HTTP/1.0 client gets the whole body, delimited by the close"
    grep -q '^HTTP/1.0 200' "$RM_TMP/h3.txt" || rm_fail "an HTTP/1.0 client got: $(cat "$RM_TMP/h3.txt")"
}

# A rule's timeouts.request: a request past it is answered 504 by a's proxy, one within it as usual.
case_request_timeout() {
    local v out
    v=$(rm_traffic_destinations_version a)
    rm_traffic_route split <<EOF2
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-split, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: orders}
  rules:
  - matches: [{path: {type: PathPrefix, value: /slow}}]
    timeouts: {request: 500ms}
    backendRefs: [{name: orders, port: 8080}]
  - backendRefs: [{name: orders, port: 8080}]
EOF2
    rm_traffic_wait_destinations a "$v" "pod a took the route with a timeout"
    out=$(a_curl -o /dev/null -w '%{http_code} %{time_total}' "http://$VIP:8080/slow?delay_ms=3000")
    rm_log "a request the app answers after 3 s, with a 500 ms timeout: $out"
    rm_assert_eq "${out%% *}" 504 "the request past its timeout is answered 504"
    awk -v t="${out#* }" 'BEGIN { exit !(t < 2.5) }' || rm_fail "the 504 came after ${out#* } s (want well before 3 s)"
    out=$(a_curl -o /dev/null -w '%{http_code}' "http://$VIP:8080/slow?delay_ms=10")
    rm_assert_eq "$out" 200 "a request within its timeout is answered as usual"
    out=$(a_curl -o /dev/null -w '%{http_code}' "http://$VIP:8080/other?delay_ms=1000")
    rm_assert_eq "$out" 200 "a request of the rule without a timeout waits for its answer"
}

# The retry policy's defaults (traffic.retry: 503 retried twice for idempotent methods, within the retry budget):
# pods that answer 503 to every request are hidden from the app, their answers retried on another pod. p1 and p2
# fail, p3 answers; batches of 50 GETs (at most 5) until the balancer has tried a failing pod at least once.
case_retry_503() {
    local s n=0 i
    for i in 1 2 3 4 5; do
        s=$(rm_traffic_calls a http-calls "$VIP:8080" 50 --path "/flaky$i?fail_pod=p1,p2")
        rm_log "50 GETs, p1 and p2 answering 503 to all: $s"
        rm_assert_eq "$(rm_json "$s" '"\(.ok) \(.errors) \(.pods.p3 // 0)"')" "50 0 50" "every GET answered 200 by p3"
        n=$(($(echo_count p1 '.path | startswith("/flaky")') + $(echo_count p2 '.path | startswith("/flaky")')))
        [ "$n" -eq 0 ] || break
    done
    [ "$n" -ge 1 ] || rm_fail "no request went to p1 or p2 in 250: the retry was not exercised"
    rm_log "ok: p1 and p2 answered 503 to $n attempt(s), each retried until p3 answered"
}

# p2's HAProxy stops: a's pooled connection to it closes. a's proxy then restarts, so that every endpoint is new to
# its balancer and p2 is certainly tried (endpoints never measured go first): its connect is refused, the request
# goes to another endpoint (nothing of it was sent), and p2 gets nothing more.
case_stopped_endpoint() {
    local before s
    rm_traffic_calls a http-calls "$VIP:8080" 30 --path /before-stop >/dev/null # a pooled connection to each pod
    before=$(echo_count p2 'true')
    rm_stop haproxy-p2
    rm_expect_log "$(rm_proxy_log a)" '.event == "pooled_connection_closed" and .endpoint == "'"${RM_POD_IP[p2]}"':8080"' \
        "a's proxy saw its pooled connection to p2 close" 5
    rm_stop proxy-a
    rm_proxy_start a
    rm_wait_ready a
    s=$(rm_traffic_calls a http-calls "$VIP:8080" 200 --path /after-stop)
    rm_log "200 requests with p2's HAProxy stopped: $s"
    rm_assert_eq "$(rm_json "$s" '"\(.ok) \(.errors) \(.pods.p2 // 0)"')" "200 0 0" \
        "every GET answered by p1 or p3, none failed"
    rm_expect_log "$(rm_proxy_log a)" '.event == "pooled_connection_failed" and .endpoint == "'"${RM_POD_IP[p2]}"':8080" and
        .reason == "connect failed"' "a's proxy tried p2, whose connect was refused" 5
    rm_assert_eq "$(rm_log_count "$(rm_proxy_log a)" '.event == "pooled_connection_failed" and .endpoint == "'"${RM_POD_IP[p2]}"':8080"')" \
        1 "p2 was tried once, then left alone"
    rm_assert_eq "$(echo_count p2 'true')" "$before" "p2's app got no request after its HAProxy stopped"
}

# source_requests: the sum of a's ringmesh_requests_total series with reporter="source"
source_requests() {
    rm_traffic_metric_lines a '^ringmesh_requests_total\{.*reporter="source"' | awk '{ s += $2 } END { print s + 0 }'
}
case_metrics() {
    local before after
    before=$(source_requests)
    rm_traffic_calls a http-calls "$VIP:8080" 50 --path /counted >/dev/null
    sleep 1 # the worker publishes its shard on its tick
    after=$(source_requests)
    rm_assert_eq "$((after - before))" 50 "50 requests count 50 in ringmesh_requests_total{reporter=\"source\"}"
    local hosts
    hosts=$(rm_log_select "$(rm_proxy_log a)" '.event == "access" and .protocol == "HTTP/1.1" and .path == "/counted"' |
        jq -r '"\(.reporter) \(.upstream_host)"' | sort | uniq -c | awk '{ printf "%s ", $0 }')
    rm_log "access log of the 50 requests: $hosts"
    rm_assert_eq "$(rm_log_count "$(rm_proxy_log a)" '.event == "access" and .path == "/counted" and .reporter == "source" and
        (.upstream_host | test("^198[.]18[.][234][.]2:8080$"))')" 50 \
        "each request's access line names reporter source and the pod that answered as upstream_host"
}

# RM_REQ_CASES: a regular expression naming the cases to run (all by default)
run_case() {
    [[ "$2" =~ ${RM_REQ_CASES:-.} ]] || return 0
    rm_case "$@"
}

run_case "one keep-alive app connection's requests spread over the three pods" case_spread_one_connection
run_case "1000 short app connections cost a handful of handshakes" case_handshakes
run_case "ringmesh-* fields of the app never reach the backend; ringmesh-orig-proto does" case_mesh_headers
run_case "1 MiB bodies both ways, content-length and chunked, and an HTTP/1.0 client" case_bodies
run_case "requests are counted with reporter=source" case_metrics
run_case "a 90/10 split over 2000 requests and a header match to the canary" case_split_and_header_match
run_case "a rule's request timeout answers 504" case_request_timeout
run_case "503s of one pod are retried on the others" case_retry_503
run_case "a pod whose HAProxy stopped gets nothing, and no GET fails" case_stopped_endpoint
rm_finish
