#!/usr/bin/env bash
# rm-e2e: both-backends
#
# The inbound proxy serves a pooled request connection (ALPN ringmesh/h2) itself and gives the requests that carry
# `ringmesh-orig-proto: HTTP/1.1` (an HTTP/1.x client behind the outbound proxy) to an HTTP/1.1-only app as
# HTTP/1.1, over keep-alive connections it reuses. The peer is not ours: curl and h2load (HTTP/2, prior knowledge)
# on the external host reach b through openssl s_client offering ringmesh/h2 with the frontend's SVID:
#
#   ext: curl/h2load -> socat 127.0.0.1:9000 -> openssl s_client -alpn ringmesh/h2 (SVID frontend)
#        -> VIP .30:8081 -> pod b (orders, STRICT) -> h1_echo_app.py (HTTP/1.1 only, says what it got)
#
# What the app gets: an HTTP/1.1 request line with the path as sent, Host from :authority, the client's fields
# without any ringmesh-* one, a body with content-length when the request had one and chunked when it had none (1
# MiB each way intact); HEAD, 204 and 304 answered without a body, chunked and close-delimited responses carried.
# b's policy ALLOWs the frontend on some paths only: /b is answered 403, logged with the frontend as source
# principal, and never reaches the app. 100 requests over one TLS connection are one handshake on b, and the app
# accepts no more connections than requests were in flight at once (keep-alive reuse). With the app down, a request
# is answered 503 and b's access log says UF.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_require_cmds curl jq socat h2load openssl /usr/bin/python3 md5sum
curl -V | grep -qw HTTP2 || rm_skip "this curl has no HTTP/2"

TOOLS=$RM_SOURCE_DIR/tests/e2e/tools
TD=cluster.local
ID_A="spiffe://$TD/ns/shop/sa/frontend"
ID_B="spiffe://$TD/ns/shop/sa/orders"
VIP=198.19.0.30
PKI="$RM_TMP/pki"
BRIDGE=127.0.0.1:9000
APP_LOG="$RM_TMP/logs/app-h1.log"
H1='ringmesh-orig-proto: HTTP/1.1'

rm_ca_create main "$TD"
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"
rm_pod_create b
rm_external_create ext
rm_service "$VIP:8081" b:8081
rm_service "$VIP:8083" b:8083 # nothing listens there
rm_service "$VIP:8084" b:8084 # a PERMISSIVE port
rm_bg app-h1 b "$APP_LOG" /usr/bin/python3 "$TOOLS/h1_echo_app.py" 8081
rm_bg app-h1-permissive b "$RM_TMP/logs/app-h1-permissive.log" /usr/bin/python3 "$TOOLS/h1_echo_app.py" 8084
rm_wait_port b 8081 15 app-h1
rm_wait_port b 8084 15 app-h1-permissive

POLICY_DIR="$RM_TMP/pods/b/policies"
mkdir -p "$POLICY_DIR"
cat >"$POLICY_DIR/some-paths.yaml" <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: some-paths, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["$TD/ns/shop/sa/frontend"]}}]
    to: [{operation: {paths: ["/a", "/echo", "/big", "/chunked", "/close", "/status", "/cut"]}}]
EOF
chown -R "$RM_PROXY_UID:$RM_PROXY_UID" "$POLICY_DIR"
rm_pod_mesh b svid=orders bundle=main permissive=8084
rm_stop proxy-b
printf 'authorization:\n  policyDir: "%s"\naccessLog: true\n' "$POLICY_DIR" >>"$RM_TMP/pods/b/proxy.yaml"
rm_proxy_start b
LOG_B=$(rm_proxy_log b)
rm_expect_log "$LOG_B" '.event == "policies_loaded"' "b loaded the policy"

# bridge LOCAL_PORT APP_PORT: a socat on ext's 127.0.0.1:LOCAL_PORT that runs one s_client per connection to
# $VIP:APP_PORT, offering ringmesh/h2 with the frontend's SVID (from a script: socat's EXEC would split the address
# at its colon)
bridge() {
    local run="$RM_TMP/bridge-$1.sh"
    printf '#!/bin/sh\nexec openssl s_client -quiet -nocommands -alpn ringmesh/h2 -cert %s -key %s -CAfile %s -connect %s\n' \
        "$PKI/frontend.pem" "$PKI/frontend.key" "$PKI/ca-main.pem" "$VIP:$2" >"$run"
    chmod +x "$run"
    rm_bg "bridge-$1" ext "$RM_TMP/logs/bridge-$1.log" socat -t 2 "TCP-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr" \
        "EXEC:$run"
    rm_wait_port ext "$1" 10 "bridge-$1"
}
bridge "${BRIDGE##*:}" 8081
bridge 9003 8083
bridge 9004 8084

metric() {
    rm_exec b curl -s -m 5 http://127.0.0.1:15021/metrics | awk -v k="$1" '$1 == k {print $2}'
}

# h2 PATH [CURL_ARGS...]: one request over HTTP/2 (prior knowledge) through the bridge, as the outbound proxy sends
# an HTTP/1.1 app's; sets CODE, SIZE (body bytes received), BODY (the file's path) and HEADERS (the response head)
h2() {
    local path=$1
    shift
    BODY="$RM_TMP/body"
    HEADERS="$RM_TMP/headers"
    rm -f "$BODY" "$HEADERS"
    local out
    out=$(rm_exec ext curl -s --http2-prior-knowledge -H "$H1" -o "$BODY" -D "$HEADERS" \
        -w '%{http_code} %{size_download}' --max-time 20 "$@" "http://$BRIDGE$path") || true
    CODE=${out% *}
    SIZE=${out#* }
}

# the app's last request event
last_request() {
    rm_log_select "$APP_LOG" '.event == "request"' | tail -1
}

accepted() {
    rm_log_count "$APP_LOG" '.event == "accept"'
}

case_echo() {
    h2 '/echo?q=1&r=%41' -H 'Host: orders.shop.svc.cluster.local' -H 'Ringmesh-Forged: yes' -H 'x-probe: kept'
    rm_assert_eq "$CODE" 200 "/echo reaches the HTTP/1.1 app"
    local ev
    ev=$(last_request)
    rm_assert_eq "$(rm_json "$ev" .line)" 'GET /echo?q=1&r=%41 HTTP/1.1' "the app got an HTTP/1.1 request line, path as sent"
    rm_assert_eq "$(rm_json "$ev" .host)" orders.shop.svc.cluster.local "Host comes from :authority"
    rm_assert_eq "$(jq -r '[.headers[] | select(ascii_downcase | startswith("ringmesh-"))] | length' <<<"$ev")" 0 \
        "no ringmesh-* field reaches the app"
    rm_assert_eq "$(jq -r '[.headers[] | select(. == "x-probe: kept")] | length' <<<"$ev")" 1 "the other fields do"
    rm_assert_eq "$(jq -r '[.headers[] | select(ascii_downcase | startswith("host:"))] | length' <<<"$ev")" 1 \
        "one Host field"
    # the app's own JSON came back as the body
    rm_assert_eq "$(jq -r .path "$BODY")" '/echo?q=1&r=%41' "the app's response body came back"
}

case_bodies() {
    rm_exec ext sh -c "head -c 1048576 /dev/urandom >$RM_TMP/up.bin"
    local want
    want=$(md5sum <"$RM_TMP/up.bin" | cut -d' ' -f1)
    h2 /echo -X POST --data-binary "@$RM_TMP/up.bin" -H 'content-type: application/octet-stream'
    rm_assert_eq "$CODE" 200 "a 1 MiB POST with content-length"
    local ev
    ev=$(last_request)
    rm_assert_eq "$(rm_json "$ev" .length)/$(rm_json "$ev" .chunked)/$(rm_json "$ev" .body_len)" "1048576/false/1048576" \
        "the app got content-length framing and every byte"
    rm_assert_eq "$(rm_json "$ev" .body_md5)" "$want" "the 1 MiB request body arrived intact"
    # no length: curl uploads from stdin as HTTP/2 DATA without content-length
    CODE=$(rm_exec ext sh -c "head -c 300000 $RM_TMP/up.bin | curl -s --http2-prior-knowledge -H '$H1' -T - \
        -o /dev/null -w '%{http_code}' --max-time 20 http://$BRIDGE/echo") || true
    rm_assert_eq "$CODE" 200 "a POST without content-length"
    ev=$(last_request)
    want=$(head -c 300000 "$RM_TMP/up.bin" | md5sum | cut -d' ' -f1)
    rm_assert_eq "$(rm_json "$ev" .length)/$(rm_json "$ev" .chunked)/$(rm_json "$ev" .body_len)" "null/true/300000" \
        "the app got it chunked"
    rm_assert_eq "$(rm_json "$ev" .body_md5)" "$want" "the chunked request body arrived intact"
    # responses: content-length, chunked, close-delimited
    local n
    for spec in big:1048576 chunked:300000 close:200000; do
        n=${spec#*:}
        h2 "/${spec%%:*}?n=$n"
        rm_assert_eq "$CODE" 200 "/${spec%%:*} answered"
        rm_assert_eq "$(md5sum <"$BODY" | cut -d' ' -f1)" \
            "$(/usr/bin/python3 -c "import hashlib,sys; b=bytes(range(256)); n=$n; print(hashlib.md5((b*(n//256+1))[:n]).hexdigest())")" \
            "the ${spec%%:*} response body of $n bytes arrived intact"
    done
}

case_no_body() {
    h2 '/big?n=1000' -I
    rm_assert_eq "$CODE" 200 "HEAD answered"
    rm_assert_eq "$(rm_json "$(last_request)" .method)" HEAD "the app got a HEAD"
    grep -qi '^content-length: 1000' "$HEADERS" || rm_fail "HEAD's content-length is the GET's: $(cat "$HEADERS")"
    rm_assert_eq "$SIZE" 0 "HEAD has no body"
    for code in 204 304; do
        h2 "/status?code=$code"
        rm_assert_eq "$CODE/$SIZE" "$code/0" "$code without a body"
    done
    h2 /echo
    rm_assert_eq "$CODE" 200 "the connection stays usable after them"
}

case_policy() {
    h2 /b
    rm_assert_eq "$CODE/$(cat "$BODY")" "403/RBAC: access denied" "/b is denied by b"
    rm_expect_log "$LOG_B" ".event == \"authz\" and .decision == \"deny\" and .source_principal == \"$ID_A\" and
        .source_ip == \"${RM_POD_IP[ext]}\" and .path == \"/b\"" "b's decision log names the frontend and its address"
    rm_expect_no_log "$APP_LOG" '.event == "request" and .path == "/b"' "the app never saw /b"
    h2 /a
    rm_assert_eq "$CODE" 200 "/a is allowed"
    rm_assert_eq "$(rm_json "$(last_request)" .path)" /a "the app saw /a"
}

case_reuse() {
    local hs0 hs1 acc0 acc1
    hs0=$(metric ringmesh_proxy_tls_handshakes_total)
    acc0=$(accepted)
    rm_exec ext timeout 60 h2load -n 100 -c 1 -m 4 -H "$H1" "http://$BRIDGE/echo" >"$RM_TMP/logs/h2load.out" 2>&1 ||
        rm_fail "h2load failed: $(cat "$RM_TMP/logs/h2load.out")"
    grep -q "status codes: 100 2xx" "$RM_TMP/logs/h2load.out" ||
        rm_fail "not 100 answers 2xx: $(grep -E 'requests:|status codes:' "$RM_TMP/logs/h2load.out")"
    hs1=$(metric ringmesh_proxy_tls_handshakes_total)
    acc1=$(accepted)
    rm_assert_eq "$((hs1 - hs0))" 1 "100 requests over one TLS connection: one handshake on b"
    [ "$((acc1 - acc0))" -le 4 ] ||
        rm_fail "the app accepted $((acc1 - acc0)) connections for 100 requests 4 at a time (keep-alive reuse: at most 4)"
    rm_log "ok: the app accepted $((acc1 - acc0)) new connections for 100 requests"
}

case_cut() {
    local rc=0
    rm_exec ext curl -s --http2-prior-knowledge -H "$H1" -o /dev/null --max-time 20 "http://$BRIDGE/cut?n=100000" ||
        rc=$?
    # 92: HTTP/2 stream error (the stream was reset), 18: partial file
    case $rc in 92 | 18) rm_log "ok: the client saw the cut (curl exit $rc)" ;; *) rm_fail "curl exit $rc for a cut response" ;; esac
    rm_expect_log "$LOG_B" '.event == "access" and (.path | startswith("/cut")) and .response_flags == "UC"' "b's access log says UC"
    # many at once over few connections, big and small, some cut: every answer whole or reset, the proxy alive
    rm_exec ext timeout 60 h2load -n 200 -c 2 -m 20 -H "$H1" "http://$BRIDGE/big?n=70000" "http://$BRIDGE/echo" \
        "http://$BRIDGE/cut?n=30000" "http://$BRIDGE/chunked?n=50000" >"$RM_TMP/logs/h2load-mix.out" 2>&1 || true
    grep -E "requests:|status codes:" "$RM_TMP/logs/h2load-mix.out" | while read -r l; do rm_log "h2load: $l"; done
    local ok
    ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$RM_TMP/logs/h2load-mix.out")
    [ "${ok:-0}" -ge 150 ] || rm_fail "fewer than 150 of 200 mixed requests succeeded: $(cat "$RM_TMP/logs/h2load-mix.out")"
    h2 /echo
    rm_assert_eq "$CODE" 200 "b still serves after them"
}

case_permissive() {
    # PERMISSIVE connects to the app before the client's bytes show TLS; the pooled connection's requests still go
    # over the worker's own HTTP/1.1 connections
    local code
    code=$(rm_exec ext curl -s --http2-prior-knowledge -H "$H1" -o "$RM_TMP/body-p" -w '%{http_code}' --max-time 20 \
        "http://127.0.0.1:9004/echo?p=1") || true
    rm_assert_eq "$code" 200 "a request on a PERMISSIVE port"
    rm_expect_log "$RM_TMP/logs/app-h1-permissive.log" '.event == "request" and .line == "GET /echo?p=1 HTTP/1.1"' \
        "the app there got it as HTTP/1.1"
}

case_app_down() {
    rm_stop app-h1
    h2 /echo
    rm_assert_eq "$CODE" 503 "with the app down, 503"
    rm_expect_log "$LOG_B" '.event == "access" and .path == "/echo" and .response_code == 503 and
        .response_flags == "UF"' "b's access log says UF"
    # an HTTP/2 client's request (no ringmesh-orig-proto) to a port nothing listens on: 503 UF too, and the pooled
    # connection stays usable (two requests on it)
    rm_exec ext timeout 60 h2load -n 2 -c 1 -m 1 "http://127.0.0.1:9003/echo" "http://127.0.0.1:9003/a" \
        >"$RM_TMP/logs/h2load-down.out" 2>&1 || rm_fail "h2load failed: $(cat "$RM_TMP/logs/h2load-down.out")"
    grep -q "status codes: 0 2xx, 0 3xx, 0 4xx, 2 5xx" "$RM_TMP/logs/h2load-down.out" ||
        rm_fail "not two 5xx: $(grep -E 'requests:|status codes:' "$RM_TMP/logs/h2load-down.out")"
    rm_log "ok: an HTTP/2 request with no app there: 503, twice on one connection"
    rm_expect_log "$LOG_B" '.event == "access" and .path == "/a" and .response_code == 503 and
        .response_flags == "UF"' "b's access log says UF for it"
}

rm_case "an HTTP/1.1 request reaches the HTTP/1.1 app" case_echo
rm_case "bodies both ways: content-length, chunked, close-delimited, 1 MiB" case_bodies
rm_case "HEAD, 204 and 304 without a body" case_no_body
rm_case "per-request policy with the client's principal" case_policy
rm_case "keep-alive: one handshake, few app connections" case_reuse
rm_case "a response the app cuts: the stream is reset, UC" case_cut
rm_case "a PERMISSIVE port" case_permissive
rm_case "the app down: 503 UF" case_app_down
rm_finish
