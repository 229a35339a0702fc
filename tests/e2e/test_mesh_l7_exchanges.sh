#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Both proxies of a hop see every HTTP request and report its exchange exactly once, and no byte changes on the way:
#
#   a (client) -> VIP:port -> [a's proxy: outbound, observes] --mTLS--> [b's proxy: inbound] -> b's apps
#     8080  raw_http1.py: pipelined HTTP/1.1 requests; what the app received is byte for byte what the client sent,
#           and what the client received is byte for byte what the app sent
#     8081  Flask over Hypercorn: curl over HTTP/1.1 and HTTP/2 (prior knowledge)
#     8082  gRPC (python3-grpcio): a unary call, grpc-status 0 read from the trailers
#     8083  raw_http1.py script: responses in every framing observe mode's fast scanner must leave to the full parser
#           or frame exactly (plain, HEAD, chunked with a response head in its data, 100 then 201, a body holding a
#           response head, a head cut across writes, one that ends with the connection): unchanged bytes, and the
#           same statuses and body sizes reported by both proxies
#     2525  a server-first protocol (a banner before the client sends anything): plain bytes, never parsed
#   a -> ext:8080 (a host outside the mesh): passthrough, never parsed
# Each proxy logs one "http_exchange" line (debug level) per request: a's with direction outbound, b's inbound.
# Then b gets a policy that denies /deny*: b answers 403 itself (answered_by_proxy), a reports the 403 it forwarded.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_require_cmds curl jq cmp /usr/bin/python3
curl -V | grep -qw HTTP2 || rm_skip "this curl has no HTTP/2"
/usr/bin/python3 -c 'import flask, hypercorn, asgiref, grpc' 2>/dev/null ||
    rm_skip "python3-flask, python3-hypercorn, python3-asgiref and python3-grpcio are not installed (scripts/bootstrap.sh)"

TOOLS=$RM_SOURCE_DIR/tests/e2e/tools
ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.20
BANNER=$'220 orders.example ESMTP ready for '"$$"$'\r\n'
RAW_DIR="$RM_TMP/raw"
mkdir -p "$RAW_DIR"

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"
rm_pod_create a
rm_pod_create b
rm_external_create ext
for port in 8080 8081 8082 8083 2525; do
    rm_service "$VIP:$port" "b:$port"
done
rm_bg app-raw b "$RM_TMP/logs/app-raw.log" /usr/bin/python3 "$TOOLS/raw_http1.py" serve 8080 "$RAW_DIR"
RAW_SCRIPT_DIR="$RM_TMP/raw-script"
mkdir -p "$RAW_SCRIPT_DIR"
FAKE=$'HTTP/1.1 404 Fake\r\nContent-Length: 0\r\n\r\n'
{
    printf 'HTTP/1.1 200 OK\r\nServer: raw\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nfirst'
    printf 'HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n'
    printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n' "${#FAKE}" "$FAKE"
    printf 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew'
    printf 'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s' "${#FAKE}" "$FAKE"
    printf 'HTTP/1.1 200 OK\r\nContent-Le<<split>>ngth: 5\r\n\r\nspl<<split>>it'
    printf 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end'
} >"$RM_TMP/raw-script-responses"
rm_bg app-raw-script b "$RM_TMP/logs/app-raw-script.log" /usr/bin/python3 "$TOOLS/raw_http1.py" script 8083 \
    "$RAW_SCRIPT_DIR" "$RM_TMP/raw-script-responses" 7
rm_bg app-flask b "$RM_TMP/logs/app-flask.log" /usr/bin/python3 "$TOOLS/flask_app.py" 0.0.0.0:8081
rm_bg app-grpc b "$RM_TMP/logs/app-grpc.log" /usr/bin/python3 "$TOOLS/http_app.py" grpc 8082
rm_wait_port b 8080 15 app-raw
rm_wait_port b 8081 15 app-flask
rm_wait_port b 8082 15 app-grpc
rm_wait_port b 8083 15 app-raw-script
rm_server smtp b 0.0.0.0:2525 banner --banner "$BANNER"
rm_bg app-ext ext "$RM_TMP/logs/app-ext.log" /usr/bin/python3 "$TOOLS/http_app.py" http 8080
rm_wait_port ext 8080 15 app-ext

export RM_PROXY_ENV="RINGMESH_LOG_LEVEL=debug"
rm_pod_mesh b svid=orders bundle=main
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP:8080=$ID_B" "dest=$VIP:8081=$ID_B" "dest=$VIP:8082=$ID_B" \
    "dest=$VIP:8083=$ID_B" "dest=$VIP:2525=$ID_B"

EXCHANGE='.event == "http_exchange"'
OUT="$EXCHANGE and .direction == \"outbound\""
IN="$EXCHANGE and .direction == \"inbound\""

# expect_count LOG FILTER N WHAT: waits (bounded) until LOG has N lines matching FILTER, then checks it is exactly N
expect_count() {
    local deadline=$(($(rm_now_ms) + 5000))
    until [ "$(rm_log_count "$1" "$2")" -ge "$3" ] || [ "$(rm_now_ms)" -ge "$deadline" ]; do
        sleep 0.05
    done
    sleep 0.2 # a line too many would come now
    rm_assert_eq "$(rm_log_count "$1" "$2")" "$3" "$4"
}

case_raw_http1() {
    local req="$RM_TMP/raw-request" got="$RM_TMP/raw-received" conn
    printf 'GET /one HTTP/1.1\r\nHost: orders\r\nX-Trace: keep me\r\n\r\n%s%s' \
        $'POST /two?q=%2e HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\n\r\nhello' \
        $'GET //three/../x HTTP/1.1\r\nHost: orders\r\n\r\n' >"$req"
    rm_exec a /usr/bin/python3 "$TOOLS/raw_http1.py" send "$VIP:8080" "$req" 3 "$got" >"$RM_TMP/logs/raw-client.log" ||
        rm_fail "the pipelined requests did not all get their responses: $(cat "$RM_TMP/logs/raw-client.log")"
    conn=$(find "$RAW_DIR" -name 'conn-*.in' | head -n 1)
    [ -n "$conn" ] || rm_fail "the raw app got no connection"
    cmp "$req" "$conn" || rm_fail "the app did not receive the client's bytes unchanged"
    rm_log "ok: the app received the client's $(wc -c <"$req") bytes unchanged (targets as written)"
    cmp "${conn%.in}.out" "$got" || rm_fail "the client did not receive the app's bytes unchanged"
    rm_log "ok: the client received the app's $(wc -c <"$got") bytes unchanged"
    expect_count "$(rm_proxy_log a)" "$OUT and .protocol == \"http1\" and .status == 200 and .complete and
        (.answered_by_proxy | not) and .grpc_status == -1 and .response_bytes == 6" 3 "a reported the 3 requests"
    expect_count "$(rm_proxy_log b)" "$IN and .protocol == \"http1\" and .status == 200 and .complete and
        (.answered_by_proxy | not) and .response_bytes == 6" 3 "b reported the 3 requests"
    rm_assert_eq "$(rm_log_select "$(rm_proxy_log a)" "$OUT" | jq -s 'map(.request_bytes) | add')" 5 \
        "a counted the POST's 5 body bytes"
    rm_assert_eq "$(rm_log_select "$(rm_proxy_log b)" "$IN" | jq -s 'map(.request_bytes) | add')" 5 \
        "b counted the POST's 5 body bytes"
}

# Bodies far larger than the sockets' buffers, pipelined behind each other and sent at once: the proxies forward
# them from their receive buffers while sends complete partially (the app reads slowly, the TLS session's output
# window fills) and the client's next requests arrive behind a send in flight. Any byte lost, duplicated or moved
# shows in the comparison of what the app received with what the client sent.
case_raw_http1_bulk() {
    local req="$RM_TMP/bulk-request" got="$RM_TMP/bulk-received" conn size
    /usr/bin/python3 - "$req" <<'PY'
import random, sys
rnd = random.Random(17)
def body(n):
    return rnd.randbytes(n)
parts = []
for i, n in enumerate((1500000, 0, 700001, 3, 1200000)):
    if n == 0:
        parts.append(b"GET /bulk/%d HTTP/1.1\r\nHost: orders\r\n\r\n" % i)
    else:
        parts.append(b"POST /bulk/%d HTTP/1.1\r\nHost: orders\r\nContent-Length: %d\r\n\r\n" % (i, n) + body(n))
open(sys.argv[1], "wb").write(b"".join(parts))
PY
    size=$(wc -c <"$req")
    rm_exec a /usr/bin/python3 "$TOOLS/raw_http1.py" send "$VIP:8080" "$req" 5 "$got" >"$RM_TMP/logs/bulk-client.log" ||
        rm_fail "the pipelined bulk requests did not all get their responses: $(cat "$RM_TMP/logs/bulk-client.log")"
    conn=$(find "$RAW_DIR" -name 'conn-*.in' -size "${size}c" | head -n 1)
    [ -n "$conn" ] || rm_fail "the raw app received no connection of the request's $size bytes"
    cmp "$req" "$conn" || rm_fail "the app did not receive the pipelined bulk requests unchanged"
    rm_log "ok: the app received the $size bytes of 5 pipelined requests unchanged"
    cmp "${conn%.in}.out" "$got" || rm_fail "the client did not receive the app's responses unchanged"
    rm_log "ok: the client received the app's $(wc -c <"$got") bytes unchanged"
    expect_count "$(rm_proxy_log a)" "$OUT and .protocol == \"http1\" and .complete and
        .request_bytes == 1500000" 1 "a counted the first bulk body"
    # b runs with the policy of the case before (restarted in its subshell): its newest log
    expect_count "$(find "$RM_TMP/pods/b" -name 'proxy.*.log' -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)" \
        "$IN and .protocol == \"http1\" and .complete and .request_bytes == 1200000" 1 "b counted the last bulk body"
}

# curl_get PROTO PATH: GET PATH on the Flask app (h1, or h2 with prior knowledge) from pod a; sets CODE, BODY and
# BODY_BYTES
curl_get() {
    local opt=()
    [ "$1" = h2 ] && opt=(--http2-prior-knowledge)
    rm -f "$RM_TMP/body"
    CODE=$(rm_exec a curl -s "${opt[@]}" -o "$RM_TMP/body" -w '%{http_code}' --max-time 10 "http://$VIP:8081$2") || true
    BODY=$(cat "$RM_TMP/body" 2>/dev/null || true)
    BODY_BYTES=$(wc -c <"$RM_TMP/body" 2>/dev/null || echo 0)
}

case_curl() {
    curl_get h1 '/ok?x=1'
    rm_assert_eq "$CODE/$BODY" "200/route=ok path=/ok query=x=1" "curl over HTTP/1.1"
    expect_count "$(rm_proxy_log a)" "$OUT and .protocol == \"http1\" and .response_bytes == $BODY_BYTES" 1 \
        "a counted the HTTP/1.1 response's $BODY_BYTES body bytes"
    curl_get h2 '/ok?y=2'
    rm_assert_eq "$CODE/$BODY" "200/route=ok path=/ok query=y=2" "curl over HTTP/2"
    rm_expect_log "$RM_TMP/logs/app-flask.log" '.event == "request" and .proto == "HTTP/2" and .query == "y=2"' \
        "the app served the second request over HTTP/2"
    expect_count "$(rm_proxy_log a)" "$OUT and .protocol == \"http2\" and .status == 200 and .complete and
        .stream == 1 and .response_bytes == $BODY_BYTES" 1 "a reported the HTTP/2 request"
    expect_count "$(rm_proxy_log b)" "$IN and .protocol == \"http2\" and .status == 200 and .complete and
        .stream == 1 and .response_bytes == $BODY_BYTES" 1 "b reported the HTTP/2 request"
    expect_count "$(rm_proxy_log a)" "$OUT and .protocol == \"http1\"" 4 "a: 4 HTTP/1.1 requests so far"
    expect_count "$(rm_proxy_log b)" "$IN and .protocol == \"http1\"" 4 "b: 4 HTTP/1.1 requests so far"
}

case_grpc() {
    local out
    out=$(rm_exec a /usr/bin/python3 "$TOOLS/http_app.py" call "$VIP:8082" /shop.Orders/Get) || true
    rm_assert_eq "$(rm_json "$out" .code)/$(rm_json "$out" .reply)" "OK/echo:ping" "the gRPC call through both proxies"
    expect_count "$(rm_proxy_log a)" "$OUT and .protocol == \"http2\" and .grpc_status == 0 and .status == 200 and
        .complete" 1 "a reported the gRPC call with its grpc-status"
    expect_count "$(rm_proxy_log b)" "$IN and .protocol == \"http2\" and .grpc_status == 0 and .status == 200 and
        .complete" 1 "b reported the gRPC call with its grpc-status"
}

case_server_first() {
    local quit=$'QUIT\r\n' before_a before_b
    before_a=$(rm_log_count "$(rm_proxy_log a)" "$EXCHANGE")
    before_b=$(rm_log_count "$(rm_proxy_log b)" "$EXCHANGE")
    rm_client smtp a --timeout 8000 --connect "$VIP:2525" "read:${#BANNER}" 'send:QUIT\r\n' "read:${#quit}" \
        shutdown readeof
    rm_assert_eq "$RM_RC" 0 "server-first outbound: client exit (4 = the banner never came)"
    rm_assert_content "$(rm_client_out smtp)" "$BANNER$quit" "server-first: the banner, then the echo"
    rm_expect_log "$(rm_proxy_log a)" ".event == \"connection\" and .mode == \"mtls\" and (.dst | addr) == \"$VIP:2525\"" \
        "a carried it over mTLS"
    rm_assert_eq "$(rm_log_count "$(rm_proxy_log a)" "$EXCHANGE")/$(rm_log_count "$(rm_proxy_log b)" "$EXCHANGE")" \
        "$before_a/$before_b" "no exchange reported for a protocol that is not HTTP"
}

case_passthrough() {
    local before code
    before=$(rm_log_count "$(rm_proxy_log a)" "$EXCHANGE")
    code=$(rm_exec a curl -s -o "$RM_TMP/ext-body" -w '%{http_code}' --max-time 10 "http://${RM_POD_IP[ext]}:8080/out") ||
        true
    rm_assert_eq "$code/$(cat "$RM_TMP/ext-body" 2>/dev/null)" "200/GET /out" "a request to a host outside the mesh"
    rm_expect_log "$(rm_proxy_log a)" ".event == \"connection\" and .mode == \"passthrough\" and
        (.dst | addr) == \"${RM_POD_IP[ext]}:8080\"" "a passed it through"
    rm_assert_eq "$(rm_log_count "$(rm_proxy_log a)" "$EXCHANGE")" "$before" "a passthrough connection is never parsed"
}

case_totals() {
    # 3 raw + 2 curl + 1 gRPC: each once on each side, every one complete and answered by the app
    expect_count "$(rm_proxy_log a)" "$EXCHANGE" 6 "a reported each request exactly once"
    expect_count "$(rm_proxy_log b)" "$EXCHANGE" 6 "b reported each request exactly once"
    rm_expect_no_log "$(rm_proxy_log a)" "$EXCHANGE and (.complete | not)" "a: no exchange left incomplete"
    rm_expect_no_log "$(rm_proxy_log b)" "$EXCHANGE and (.complete | not)" "b: no exchange left incomplete"
    rm_expect_no_log "$(rm_proxy_log a)" "$EXCHANGE and .direction != \"outbound\"" "a's are all outbound"
    rm_expect_no_log "$(rm_proxy_log b)" "$EXCHANGE and .direction != \"inbound\"" "b's are all inbound"
}

case_denied() {
    local dir="$RM_TMP/pods/b/policies"
    mkdir -p "$dir"
    cat >"$dir/no-deny.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-deny, namespace: shop}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/deny*"]}}]
EOF
    chown -R "$RM_PROXY_UID:$RM_PROXY_UID" "$dir"
    rm_stop proxy-b
    printf 'authorization:\n  policyDir: "%s"\n  defaultAction: ALLOW\n' "$dir" >>"$RM_TMP/pods/b/proxy.yaml"
    rm_proxy_start b
    rm_expect_log "$(rm_proxy_log b)" '.event == "policies_loaded"' "b loaded the policy"
    for proto in h1 h2; do
        curl_get "$proto" /deny/x
        rm_assert_eq "$CODE/$BODY" "403/RBAC: access denied" "$proto: b denies /deny/x"
        curl_get "$proto" /ok
        rm_assert_eq "$CODE" 200 "$proto: b still allows /ok"
    done
    expect_count "$(rm_proxy_log b)" "$IN and .status == 403 and .answered_by_proxy and .response_bytes == 19 and
        .complete" 2 "b reported its own 403s as answered by the proxy"
    expect_count "$(rm_proxy_log a)" "$OUT and .status == 403 and (.answered_by_proxy | not) and
        .response_bytes == 19 and .complete" 2 "a reported the 403s it forwarded"
    expect_count "$(rm_proxy_log b)" "$IN and .status == 200" 2 "b reported the allowed requests"
}

# Observe mode frames plain responses with a fast scanner and leaves every other framing to http_parser: a response
# to HEAD announcing a length, a chunked body holding a response head, a body of that head's exact length, an
# interim 100, a head cut across writes and a response that ends with the connection must all come through
# unchanged and be reported as they are, with no response taken for another.
case_raw_framings() {
    local req="$RM_TMP/raw-script-request" got="$RM_TMP/raw-script-received" conn before_a before_b want
    printf 'GET /p1 HTTP/1.1\r\nHost: orders\r\n\r\nHEAD /h HTTP/1.1\r\nHost: orders\r\n\r\n%s%s%s%s%s' \
        $'GET /c HTTP/1.1\r\nHost: orders\r\n\r\n' \
        $'POST /e HTTP/1.1\r\nHost: orders\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi' \
        $'GET /b HTTP/1.1\r\nHost: orders\r\n\r\n' $'GET /s HTTP/1.1\r\nHost: orders\r\n\r\n' \
        $'GET /l HTTP/1.1\r\nHost: orders\r\n\r\n' >"$req"
    before_a=$(rm_log_count "$(rm_proxy_log a)" "$EXCHANGE")
    before_b=$(rm_log_count "$(rm_proxy_log b)" "$EXCHANGE")
    rm_exec a /usr/bin/python3 "$TOOLS/raw_http1.py" sendall "$VIP:8083" "$req" "$got" \
        >"$RM_TMP/logs/raw-script-client.log" ||
        rm_fail "the client did not get the app's responses and its close: $(cat "$RM_TMP/logs/raw-script-client.log")"
    conn=$(find "$RAW_SCRIPT_DIR" -name 'conn-*.in' | head -n 1)
    [ -n "$conn" ] || rm_fail "the scripted app got no connection"
    cmp "$req" "$conn" || rm_fail "the app did not receive the client's bytes unchanged"
    cmp "${conn%.in}.out" "$got" || rm_fail "the client did not receive the app's bytes unchanged"
    rm_log "ok: $(wc -c <"$req") bytes of requests and $(wc -c <"$got") of responses came through unchanged"
    expect_count "$(rm_proxy_log a)" "$OUT" $((before_a + 7)) "a reported the 7 exchanges"
    expect_count "$(rm_proxy_log b)" "$IN" $((before_b + 7)) "b reported the 7 exchanges"
    want="200/5/0/true 200/0/0/true 200/${#FAKE}/0/true 201/3/2/true 200/${#FAKE}/0/true 200/5/0/true 200/13/0/true"
    for p in a b; do
        rm_assert_eq "$(rm_log_select "$(rm_proxy_log "$p")" "$EXCHANGE" | tail -n 7 |
            jq -r '"\(.status)/\(.response_bytes)/\(.request_bytes)/\(.complete)"' | paste -sd' ')" "$want" \
            "$p: status/response bytes/request bytes/complete of each exchange, in order"
    done
}

rm_case "pipelined HTTP/1.1, byte for byte, reported on both sides" case_raw_http1
rm_case "curl over HTTP/1.1 and HTTP/2" case_curl
rm_case "gRPC" case_grpc
rm_case "a server-first protocol stays plain bytes" case_server_first
rm_case "a destination outside the mesh is never parsed" case_passthrough
rm_case "every request reported exactly once by each proxy" case_totals
rm_case "framings observe mode leaves to the full parser, through both proxies" case_raw_framings
rm_case "b's own 403s" case_denied
rm_case "pipelined bulk bodies through partial sends, byte for byte" case_raw_http1_bulk
rm_finish
