#!/usr/bin/env bash
# rm-e2e: both-backends
#
# The inbound proxy terminates a pooled request connection (ALPN ringmesh/h2) and gives its HTTP/2 requests to an
# HTTP/2 (cleartext, prior knowledge) app, with per-request policy. The peer is not ours: real HTTP/2 clients (curl,
# h2load, a python3-grpcio client) on the external host reach b through openssl s_client offering ringmesh/h2 with
# the frontend's SVID:
#
#   ext: curl/h2load -> socat 127.0.0.1:9000 -> openssl s_client -alpn ringmesh/h2 (SVID frontend)
#        -> VIP .30:8081 -> pod b (orders, STRICT) -> Flask over Hypercorn (h2c)
#   ext: gRPC client -> socat 127.0.0.1:9001 -> s_client -> VIP .30:8082 -> pod b -> gRPC app (h2c)
#
# b's policy: ALLOW the frontend's principal on /a and /shop.Orders/Get only. /a reaches the app over HTTP/2 (the
# app says so) without the ringmesh-* fields the client sent, /b is answered 403 by b and b's decision log names the frontend as the source principal; the gRPC
# call to Get gets its reply and grpc-status 0 from the trailers, one to Put is refused with grpc-status 7
# (PERMISSION_DENIED) and never reaches the app; 100 requests over one TLS
# connection are one handshake on b's counter; a client without an SVID, or with one from another CA, is refused
# at the handshake as for ringmesh/1.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_require_cmds curl jq socat h2load openssl /usr/bin/python3
curl -V | grep -qw HTTP2 || rm_skip "this curl has no HTTP/2"
/usr/bin/python3 -c 'import flask, hypercorn, asgiref, grpc' 2>/dev/null ||
    rm_skip "python3-flask, python3-hypercorn, python3-asgiref and python3-grpcio are not installed (scripts/bootstrap.sh)"

TOOLS=$RM_SOURCE_DIR/tests/e2e/tools
TD=cluster.local
ID_A="spiffe://$TD/ns/shop/sa/frontend"
ID_B="spiffe://$TD/ns/shop/sa/orders"
VIP=198.19.0.30
PKI="$RM_TMP/pki"
BRIDGE=127.0.0.1:9000

rm_ca_create main "$TD"
rm_ca_create other "$TD"
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"
rm_svid_issue stranger other "$ID_A"
rm_pod_create b
rm_external_create ext
rm_service "$VIP:8081" b:8081
rm_service "$VIP:8082" b:8082
rm_bg app-flask b "$RM_TMP/logs/app-flask.log" /usr/bin/python3 "$TOOLS/flask_app.py" 0.0.0.0:8081
rm_bg app-grpc b "$RM_TMP/logs/app-grpc.log" /usr/bin/python3 "$TOOLS/http_app.py" grpc 8082
rm_wait_port b 8081 15 app-flask
rm_wait_port b 8082 15 app-grpc

POLICY_DIR="$RM_TMP/pods/b/policies"
mkdir -p "$POLICY_DIR"
cat >"$POLICY_DIR/a-only.yaml" <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: a-only, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["$TD/ns/shop/sa/frontend"]}}]
    to: [{operation: {paths: ["/a", "/shop.Orders/Get"]}}]
EOF
chown -R "$RM_PROXY_UID:$RM_PROXY_UID" "$POLICY_DIR"
rm_pod_mesh b svid=orders bundle=main
rm_stop proxy-b
printf 'authorization:\n  policyDir: "%s"\n' "$POLICY_DIR" >>"$RM_TMP/pods/b/proxy.yaml"
rm_proxy_start b
LOG_B=$(rm_proxy_log b)
rm_expect_log "$LOG_B" '.event == "policies_loaded"' "b loaded the policy"

# bridge CERT LOCAL_PORT APP_PORT: a socat on ext's 127.0.0.1:LOCAL_PORT that runs one s_client per connection to
# $VIP:APP_PORT, offering ringmesh/h2 with CERT (from a script: socat's EXEC would split the address at its colon)
bridge() {
    local run="$RM_TMP/bridge-$2.sh"
    printf '#!/bin/sh\nexec openssl s_client -quiet -nocommands -alpn ringmesh/h2 -cert %s -key %s -CAfile %s -connect %s\n' \
        "$PKI/$1.pem" "$PKI/$1.key" "$PKI/ca-main.pem" "$VIP:$3" >"$run"
    chmod +x "$run"
    rm_bg "bridge-$2" ext "$RM_TMP/logs/bridge-$2.log" socat -t 2 "TCP-LISTEN:$2,bind=127.0.0.1,fork,reuseaddr" \
        "EXEC:$run"
    rm_wait_port ext "$2" 10 "bridge-$2"
}

metric() {
    rm_exec b curl -s -m 5 http://127.0.0.1:15021/metrics | awk -v k="$1" '$1 == k {print $2}'
}

# get PATH [CURL_ARGS...]: one GET over HTTP/2 (prior knowledge) through the bridge; sets CODE and BODY
get() {
    local path=$1
    shift
    rm -f "$RM_TMP/body"
    CODE=$(rm_exec ext curl -s --http2-prior-knowledge -o "$RM_TMP/body" -w '%{http_code}' --max-time 10 "$@" \
        "http://$BRIDGE$path") || true
    BODY=$(cat "$RM_TMP/body" 2>/dev/null || true)
}

case_policy() {
    bridge frontend "${BRIDGE##*:}" 8081
    get /a
    rm_assert_eq "$CODE/$BODY" "200/route=other path=/a query=" "/a reaches the app"
    rm_expect_log "$RM_TMP/logs/app-flask.log" '.event == "request" and .path == "/a" and .proto == "HTTP/2"' \
        "the app served /a over HTTP/2"
    get '/a?mesh=1' -H 'ringmesh-orig-proto: HTTP/2' -H 'Ringmesh-Forged: yes' -H 'x-probe: kept'
    rm_assert_eq "$CODE" 200 "/a with ringmesh-* fields"
    rm_expect_log "$RM_TMP/logs/app-flask.log" '.query == "mesh=1" and (.headers | index("x-probe")) and
        ([.headers[] | select(startswith("ringmesh-"))] | length == 0)' "b removed every ringmesh-* field, kept the rest"
    get /b
    rm_assert_eq "$CODE/$BODY" "403/RBAC: access denied" "/b is denied by b"
    rm_expect_log "$LOG_B" ".event == \"authz\" and .decision == \"deny\" and .source_principal == \"$ID_A\" and
        .source_ip == \"${RM_POD_IP[ext]}\" and .path == \"/b\"" "b's decision log names the frontend and its address"
    rm_expect_no_log "$RM_TMP/logs/app-flask.log" '.path == "/b"' "the app never saw /b"
}

case_one_handshake() {
    local hs0 hs1
    hs0=$(metric ringmesh_proxy_tls_handshakes_total)
    rm_exec ext timeout 60 h2load -n 100 -c 1 -m 1 "http://$BRIDGE/a" >"$RM_TMP/logs/h2load.out" 2>&1 ||
        rm_fail "h2load failed: $(cat "$RM_TMP/logs/h2load.out")"
    grep -q "status codes: 100 2xx" "$RM_TMP/logs/h2load.out" ||
        rm_fail "not 100 answers 2xx: $(grep -E 'requests:|status codes:' "$RM_TMP/logs/h2load.out")"
    hs1=$(metric ringmesh_proxy_tls_handshakes_total)
    rm_assert_eq "$((hs1 - hs0))" 1 "100 requests over one TLS connection: one handshake on b"
}

# requests_total SERIES_REGEX: the sum of b's ringmesh_requests_total series whose labels match
requests_total() {
    rm_exec b curl -s -m 5 http://127.0.0.1:15021/metrics | awk -v re="$1" '
        /^#/ {next}
        { name = $1; sub(/\{.*/, "", name); if (name != "ringmesh_requests_total") next
          labels = $1; sub(/^[^{]*/, "", labels); if (labels ~ re) s += $2 }
        END {printf "%d\n", s}'
}

case_reports() {
    local who='reporter="destination".*source_principal="'"$ID_A"'"'
    # HTTP status 200: /a twice, 100 times by h2load, both gRPC calls (the denied one is 200 with grpc-status 7);
    # 403: /b
    rm_assert_eq "$(requests_total "$who"'.*response_code="200"')" 104 \
        "b counts the 200s as the destination, from the frontend"
    rm_assert_eq "$(requests_total "$who"'.*response_code="403"')" 1 "b counts the HTTP/2 request it denied"
}

case_refused() {
    local out="$RM_TMP/logs/s_client-nocert.out"
    rm_exec ext sh -c "printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' | timeout 15 openssl s_client -quiet -alpn ringmesh/h2 \
        -CAfile $PKI/ca-main.pem -connect $VIP:8081" >"$out" 2>&1 || true
    rm_expect_log "$LOG_B" '.event == "peer_rejected" and .reason == "peer presented no certificate"' \
        "a client without an SVID is refused at the handshake"
    out="$RM_TMP/logs/s_client-stranger.out"
    rm_exec ext sh -c "printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' | timeout 15 openssl s_client -quiet -alpn ringmesh/h2 \
        -cert $PKI/stranger.pem -key $PKI/stranger.key -CAfile $PKI/ca-main.pem -connect $VIP:8081" >"$out" 2>&1 || true
    rm_expect_log "$LOG_B" '.event == "peer_rejected" and (.reason | test("does not verify to the trust bundle"))' \
        "a client with an SVID of another CA is refused at the handshake"
}

rm_case "ringmesh/h2 to an HTTP/2 app, per-request policy" case_policy
case_grpc() {
    local out
    bridge frontend 9001 8082
    out=$(rm_exec ext /usr/bin/python3 "$TOOLS/http_app.py" call 127.0.0.1:9001 /shop.Orders/Get) || true
    rm_assert_eq "$(rm_json "$out" .code)/$(rm_json "$out" .reply)" "OK/echo:ping" "the allowed gRPC call (trailers: OK)"
    out=$(rm_exec ext /usr/bin/python3 "$TOOLS/http_app.py" call 127.0.0.1:9001 /shop.Orders/Put) || true
    rm_assert_eq "$(rm_json "$out" .code)" "PERMISSION_DENIED" "the denied gRPC call gets grpc-status 7"
    rm_expect_no_log "$RM_TMP/logs/app-grpc.log" '.path == "/shop.Orders/Put"' "the app never saw Put"
}

rm_case "gRPC over ringmesh/h2" case_grpc
rm_case "100 requests over one connection, one handshake" case_one_handshake
rm_case "each request reported by b as the destination" case_reports
rm_case "no SVID or an untrusted one is refused at the handshake" case_refused
rm_finish
