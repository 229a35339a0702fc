#!/usr/bin/env bash
# rm-e2e: both-backends
#
# The HTTP filter's own answers reach the client at once, whatever the app does, and what the filter refuses never
# reaches the app. The apps here never answer anything (tests/e2e/tools/silent_app.py; the HTTP/2 one sends its
# SETTINGS preface and then nothing), so every answer a client gets is the proxy's.
#
#   client ------------------------------------> [proxy "orders": PERMISSIVE inbound listeners, HTTP policy] -> apps
#   client -> [proxy "frontend": upstream] --mTLS--^
#
# - HTTP/1.1 request heads of 70 KB, 100 KB and 1 MB, written in several chunkings, over plaintext and over mTLS:
#   431 every time, the app receives no byte (repeated, since a lost answer showed only now and then);
# - HTTP/2 header blocks of 70 to 100 KB (HEADERS + CONTINUATION frames) in one or many fields, over plaintext and
#   over mTLS: stream 1 is answered 431, the app receives the client's preface and SETTINGS only;
# - an HTTP/1.1 field folded over two lines (obs-fold, RFC 9112 5.2): 400, and the app never sees the request.
#
# The clients are tests/e2e/tools/big_head_client.py (HTTP/1.1 with chosen write sizes; HTTP/2 frames made by hand,
# the answer decoded with libnghttp2's HPACK decoder) and curl: nghttp and h2load refuse to send a header block over
# 64 KiB (nghttp2's max_send_header_block_length), so they cannot make these requests.
#
# Loopback only, in a private network namespace when root, else on free host ports.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds python3 curl

ID_FRONTEND="spiffe://cluster.local/ns/shop/sa/frontend"
ID_ORDERS="spiffe://cluster.local/ns/shop/sa/orders"
CLIENT="$RM_SOURCE_DIR/tests/e2e/tools/big_head_client.py"
APP="$RM_SOURCE_DIR/tests/e2e/tools/silent_app.py"
REPEAT=${RM_HTTP_LIMITS_REPEAT:-4}

rm_loopback_place 6
read -r P_APP1 P_APP2 P_IN1 P_IN2 P_UP1 P_UP2 <<<"${RM_PORTS[*]}"
rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_FRONTEND"
rm_svid_issue orders main "$ID_ORDERS"

# a policy with an HTTP field, so that every request goes through the HTTP filter; it allows all but /denied
cat >"$RM_TMP/policy.yaml" <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-denied-path, namespace: shop}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/denied"]}}]
YAML
cat >"$RM_TMP/orders.yaml" <<YAML
tls: {certFile: $RM_TMP/pki/orders.pem, keyFile: $RM_TMP/pki/orders.key, bundleFile: $RM_TMP/pki/ca-main.pem}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {enabled: false}
authorization: {policyDir: "$RM_TMP/policy.yaml", defaultAction: ALLOW}
listeners:
  - {name: h1, type: inbound, listen: "127.0.0.1:$P_IN1", target: "127.0.0.1:$P_APP1", mode: PERMISSIVE}
  - {name: h2, type: inbound, listen: "127.0.0.1:$P_IN2", target: "127.0.0.1:$P_APP2", mode: PERMISSIVE}
YAML
cat >"$RM_TMP/frontend.yaml" <<YAML
tls: {certFile: $RM_TMP/pki/frontend.pem, keyFile: $RM_TMP/pki/frontend.key, bundleFile: $RM_TMP/pki/ca-main.pem}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {enabled: false}
listeners:
  - {name: up1, type: upstream, listen: "127.0.0.1:$P_UP1", target: "127.0.0.1:$P_IN1", identities: ["$ID_ORDERS"]}
  - {name: up2, type: upstream, listen: "127.0.0.1:$P_UP2", target: "127.0.0.1:$P_IN2", identities: ["$ID_ORDERS"]}
YAML

rm_bg app1 "$POD" "$RM_TMP/logs/app1.log" python3 "$APP" tcp "$P_APP1"
rm_bg app2 "$POD" "$RM_TMP/logs/app2.log" python3 "$APP" h2 "$P_APP2"
rm_wait_port "$POD" "$P_APP1" 10 app1
rm_wait_port "$POD" "$P_APP2" 10 app2
for name in orders frontend; do
    rm_bg "proxy-$name" "$POD" "$RM_TMP/logs/proxy-$name.log" "$RM_PROXY_BIN" --config "$RM_TMP/$name.yaml"
    line=$(rm_wait_log "$RM_TMP/logs/proxy-$name.log" '.event == "proxy_started"' 10) ||
        rm_fail "proxy $name did not start: $(cat "$RM_TMP/logs/proxy-$name.log.stderr")"
    rm_check_backend "$line" "proxy $name" >/dev/null
done
for p in "$P_IN1" "$P_IN2" "$P_UP1" "$P_UP2"; do rm_wait_port "$POD" "$p" 10; done
LOG_O="$RM_TMP/logs/proxy-orders.log"

# the apps' "close" lines so far, to check what one case let through
app_closes() { # APP
    rm_log_count "$RM_TMP/logs/$1.log" '.event == "close"'
}

# expect_app_got_nothing APP SINCE WHAT: every connection APP saw close after the first SINCE carried at most the
# bytes the filter lets through before any request (HTTP/2: the preface and SETTINGS), and no request
expect_app_got_nothing() {
    local app=$1 since=$2 what=$3 line
    line=$(rm_log_select "$RM_TMP/logs/$app.log" '.event == "close"' | tail -n +"$((since + 1))" |
        jq -c 'select((.head | test("x-big|X-Big|GET|X-A")) or .received > 64)' | head -n 1)
    [ -z "$line" ] || rm_fail "$what: the app received part of a refused request: $line"
}

# h1 WHERE SIZE CHUNK: one HTTP/1.1 head of SIZE bytes in CHUNK-byte writes must be answered 431 without the app
h1() {
    local port=$1 size=$2 chunk=$3 out
    out=$(rm_run python3 "$CLIENT" h1 "127.0.0.1:$port" "$size" "$chunk" --timeout 5) || true
    [ "$(rm_json "$out" .status)" = 431 ] ||
        rm_fail "HTTP/1.1 head of $size bytes in $chunk-byte writes to port $port: no 431 within 5 s: $out"
}

h1_case() { # PORT WHAT
    local port=$1 what=$2 before size chunk i
    before=$(app_closes app1)
    for ((i = 0; i < REPEAT; i++)); do
        for size in 70000 100000 1000000; do
            for chunk in 1000 16384 65536 1048576; do
                h1 "$port" "$size" "$chunk"
            done
        done
    done
    rm_log "ok: $what: $((REPEAT * 12)) oversized heads, each answered 431 at once"
    sleep 0.5 # the proxy has closed the app's side of each connection; let the app log it
    expect_app_got_nothing app1 "$before" "$what"
    rm_expect_log "$LOG_O" '.event == "http_connection_ended" and .protocol == "http1" and (.reason | test("431"))' \
        "$what: the proxy logs why it ended the connection"
}

case_h1_plaintext() { h1_case "$P_IN1" "plaintext HTTP/1.1"; }
case_h1_mtls() { h1_case "$P_UP1" "HTTP/1.1 over mTLS"; }

# curl, a client that is not ours: a 100 KB and a 1 MB field (read from a file: the command line holds 128 KB)
case_h1_curl() {
    local size code
    for size in 100000 1000000; do
        printf 'X-Big: %s\r\n' "$(head -c "$size" /dev/zero | tr '\0' a)" >"$RM_TMP/big-$size.hdr"
        code=$(rm_run curl -s -o /dev/null -w '%{http_code}' -m 5 -H "@$RM_TMP/big-$size.hdr" \
            "http://127.0.0.1:$P_UP1/") || true
        rm_assert_eq "$code" 431 "curl with a $size-byte field over mTLS"
    done
}

h2_case() { # PORT WHAT
    local port=$1 what=$2 before size fields out i
    before=$(app_closes app2)
    for ((i = 0; i < REPEAT; i++)); do
        for size in 70000 80000 100000; do
            for fields in 2 8 64; do
                out=$(rm_run python3 "$CLIENT" h2 "127.0.0.1:$port" "$size" --fields "$fields" --timeout 5) || true
                [ "$(rm_json "$out" .status)" = 431 ] ||
                    rm_fail "$what: a $size-byte header block in $fields fields: stream 1 not answered 431 in 5 s: $out"
            done
        done
    done
    rm_log "ok: $what: $((REPEAT * 9)) oversized header blocks, each answered 431 at once"
    sleep 0.5
    expect_app_got_nothing app2 "$before" "$what"
}

case_h2_plaintext() { h2_case "$P_IN2" "plaintext HTTP/2"; }
case_h2_mtls() { h2_case "$P_UP2" "HTTP/2 over mTLS"; }

# a field value folded onto a second line: refused with 400 before anything reaches the app
case_obs_fold() {
    local before out port
    before=$(app_closes app1)
    for port in "$P_IN1" "$P_UP1"; do
        printf 'GET /ok HTTP/1.1\r\nHost: svc\r\nX-A: a\r\n b\r\n\r\n' >"$RM_TMP/fold.req"
        out=$(rm_run python3 "$CLIENT" h1 "127.0.0.1:$port" 0 1 --raw "$RM_TMP/fold.req" --timeout 5) || true
        rm_assert_eq "$(rm_json "$out" .status)" 400 "obs-fold to port $port"
        printf 'GET /ok HTTP/1.1\r\nHost: svc\r\nX-A: a\r\n\tb\r\nX-B: c\r\n\r\n' >"$RM_TMP/fold.req"
        out=$(rm_run python3 "$CLIENT" h1 "127.0.0.1:$port" 0 7 --raw "$RM_TMP/fold.req" --timeout 5) || true
        rm_assert_eq "$(rm_json "$out" .status)" 400 "obs-fold with a tab, in 7-byte writes, to port $port"
    done
    sleep 0.5
    expect_app_got_nothing app1 "$before" "obs-fold"
    rm_expect_log "$LOG_O" '.event == "http_connection_ended" and .protocol == "http1" and (.reason | test("400"))' \
        "the proxy logs the 400"
}

# the same listener still forwards an ordinary request (the app stays silent, so only its arrival is checked)
case_ordinary_request_forwarded() {
    local before
    before=$(rm_log_count "$RM_TMP/logs/app1.log" '.event == "close" and (.head | startswith("GET /fine"))')
    rm_run python3 - "127.0.0.1:$P_IN1" <<'PY'
import socket, sys
host, port = sys.argv[1].split(":")
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(b"GET /fine HTTP/1.1\r\nHost: svc\r\nX-A: a b\r\n\r\n")
s.shutdown(socket.SHUT_WR)
s.settimeout(2)
try:
    s.recv(1)
except OSError:
    pass
s.close()
PY
    local deadline=$(($(rm_now_ms) + 5000))
    until [ "$(rm_log_count "$RM_TMP/logs/app1.log" '.event == "close" and (.head | startswith("GET /fine"))')" -gt \
        "$before" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "an ordinary request did not reach the app"
        sleep 0.05
    done
    rm_log "ok: an ordinary request reaches the app"
}

rm_case "an ordinary request is forwarded" case_ordinary_request_forwarded
rm_case "oversized HTTP/1.1 heads, plaintext: 431 at once" case_h1_plaintext
rm_case "oversized HTTP/1.1 heads, mTLS: 431 at once" case_h1_mtls
rm_case "oversized HTTP/1.1 heads from curl: 431" case_h1_curl
rm_case "oversized HTTP/2 header blocks, plaintext: 431 at once" case_h2_plaintext
rm_case "oversized HTTP/2 header blocks, mTLS: 431 at once" case_h2_mtls
rm_case "obs-fold: 400, the app never sees it" case_obs_fold
rm_finish
