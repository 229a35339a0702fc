#!/usr/bin/env bash
# rm-e2e: both-backends
#
# On a PERMISSIVE port the client's first bytes tell mTLS from plaintext; they get handshakeTimeout (2 s here), as a
# TLS handshake does, and nothing that has not shown which it is ever reaches the app.
#
#   first_bytes_client.py / e2e_client ------------> [proxy "orders": PERMISSIVE inbound listener] -> echo app
#   e2e_client -> [proxy "frontend": upstream] --mTLS--^
#
# - 300 connections that send nothing are all closed once handshakeTimeout has passed, each logged
#   (handshake_timeout, phase first_bytes), and the proxy holds no descriptor for them afterwards;
# - a real ClientHello sent one byte every 200 ms is cut off at handshakeTimeout;
# - a client that sends part of a ClientHello and closes is closed (undecided_closed): the app never sees those
#   bytes (before, they went to it as plaintext);
# - plaintext and mTLS connections that have shown what they are outlive handshakeTimeout;
# - a TLS client still needs an SVID that verifies to the bundle (PERMISSIVE only adds plaintext);
# - an HTTP/2 app's SETTINGS preface, sent before the client's ClientHello arrives, leaves the connection mTLS.
#
# Loopback only, in a private network namespace when root, else on free host ports.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds python3

ID_ORDERS="spiffe://cluster.local/ns/shop/sa/orders"
ID_FRONTEND="spiffe://cluster.local/ns/shop/sa/frontend"
CLIENT="$RM_SOURCE_DIR/tests/e2e/tools/first_bytes_client.py"

rm_loopback_place 5
read -r P_APP P_IN P_UP P_H2APP P_H2IN <<<"${RM_PORTS[*]}"
rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_FRONTEND"
rm_svid_issue orders main "$ID_ORDERS"
cat >"$RM_TMP/orders.yaml" <<YAML
tls: {certFile: $RM_TMP/pki/orders.pem, keyFile: $RM_TMP/pki/orders.key, bundleFile: $RM_TMP/pki/ca-main.pem}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {enabled: false}
handshakeTimeout: 2s
connectionLog: true
listeners:
  - {name: in, type: inbound, listen: "127.0.0.1:$P_IN", target: "127.0.0.1:$P_APP", mode: PERMISSIVE}
  - {name: h2, type: inbound, listen: "127.0.0.1:$P_H2IN", target: "127.0.0.1:$P_H2APP", mode: PERMISSIVE}
YAML
cat >"$RM_TMP/frontend.yaml" <<YAML
tls: {certFile: $RM_TMP/pki/frontend.pem, keyFile: $RM_TMP/pki/frontend.key, bundleFile: $RM_TMP/pki/ca-main.pem}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {enabled: false}
listeners:
  - {name: up, type: upstream, listen: "127.0.0.1:$P_UP", target: "127.0.0.1:$P_IN", identities: ["$ID_ORDERS"]}
YAML

rm_server app "$POD" "127.0.0.1:$P_APP" echo
# an HTTP/2 app: its SETTINGS preface goes out as soon as it accepts, then nothing
rm_bg h2app "$POD" "$RM_TMP/logs/h2app.log" python3 "$RM_SOURCE_DIR/tests/e2e/tools/silent_app.py" h2 "$P_H2APP"
rm_wait_port "$POD" "$P_H2APP" 10 h2app
for name in orders frontend; do
    rm_bg "proxy-$name" "$POD" "$RM_TMP/logs/proxy-$name.log" "$RM_PROXY_BIN" --config "$RM_TMP/$name.yaml"
    line=$(rm_wait_log "$RM_TMP/logs/proxy-$name.log" '.event == "proxy_started"' 10) ||
        rm_fail "proxy $name did not start: $(cat "$RM_TMP/logs/proxy-$name.log.stderr")"
    rm_check_backend "$line" "proxy $name" >/dev/null
done
rm_wait_port "$POD" "$P_IN" 10 proxy-orders
rm_wait_port "$POD" "$P_UP" 10 proxy-frontend
LOG_O="$RM_TMP/logs/proxy-orders.log"
APP_LOG=$(rm_server_log app)

proxy_fds() {
    find "/proc/${RM_PID[proxy-orders]}/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# no connection the app has seen close so far carried a byte of a ClientHello (0x16 0x03 ...)
expect_app_saw_no_hello() {
    rm_expect_no_log "$APP_LOG" '.event == "close" and (.head | startswith("\u0016"))' \
        "$1: no byte of a ClientHello reached the app"
}

case_idle_connections_closed() {
    local base out deadline
    base=$(proxy_fds)
    out=$(rm_run python3 "$CLIENT" idle "127.0.0.1:$P_IN" 300 --timeout 12) || true
    rm_log "idle connections: $out"
    rm_assert_eq "$(rm_json "$out" .closed)" 300 "idle connections the proxy closed within 12 s"
    [ "$(rm_json "$out" .ms)" -ge 1500 ] || rm_fail "idle connections were closed before handshakeTimeout: $out"
    rm_expect_log_nth "$LOG_O" '.event == "handshake_timeout" and .phase == "first_bytes" and .bytes == 0
        and (.src | startswith("127.0.0.1:")) and (.reason | test("first bytes"))' 300 "each one is logged"
    rm_expect_log "$LOG_O" '.event == "connection" and .mode == "undecided" and .close == "timeout"' \
        "the access log says undecided, timeout"
    deadline=$(($(rm_now_ms) + 5000))
    until [ "$(proxy_fds)" -le "$base" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "the proxy holds $(proxy_fds) descriptors, $base before"
        sleep 0.1
    done
    rm_log "ok: the proxy's descriptors are back to $base"
    rm_expect_no_log "$APP_LOG" '.event == "close" and .received > 0' "the app received nothing"
}

case_trickled_hello_cut() {
    local out
    out=$(rm_run python3 "$CLIENT" trickle "127.0.0.1:$P_IN" 200 --timeout 10) || true
    rm_log "trickled ClientHello: $out"
    rm_assert_eq "$(rm_json "$out" .closed)" true "the proxy closed the trickling client"
    [ "$(rm_json "$out" .sent)" -lt "$(rm_json "$out" .hello)" ] || rm_fail "the whole ClientHello got through: $out"
    rm_assert_eq "$(rm_json "$out" .received)" 0 "bytes the trickling client received"
    rm_expect_log "$LOG_O" '.event == "handshake_timeout" and .phase == "first_bytes" and .bytes > 0' \
        "the cut is logged with the bytes received"
    expect_app_saw_no_hello "trickle"
}

case_partial_hello_then_close() {
    local out n
    for n in 100 5 1; do
        out=$(rm_run python3 "$CLIENT" partial "127.0.0.1:$P_IN" "$n" --timeout 5) || true
        rm_log "partial ClientHello ($n bytes), then FIN: $out"
        rm_assert_eq "$(rm_json "$out" .closed)" true "the proxy closed the client that sent $n bytes and closed"
        rm_assert_eq "$(rm_json "$out" .received)" 0 "bytes that client received"
        rm_expect_log "$LOG_O" ".event == \"undecided_closed\" and .level == \"warn\" and .bytes == $n
            and (.src | startswith(\"127.0.0.1:\"))" "the close is logged with its $n bytes"
    done
    out=$(rm_run python3 "$CLIENT" partial "127.0.0.1:$P_IN" 0 --timeout 5) || true
    rm_assert_eq "$(rm_json "$out" .closed)" true "the proxy closed a client that sent nothing and closed"
    rm_expect_log "$LOG_O" '.event == "undecided_closed" and .level == "info" and .bytes == 0' \
        "a client that sent nothing is logged at info"
    sleep 0.5 # the app logs its side's close
    expect_app_saw_no_hello "partial"
}

# established connections are no longer subject to the deadline: both outlive it (3 s of silence, then more)
case_decided_connections_outlive_it() {
    rm_client plain "$POD" --timeout 8000 --connect "127.0.0.1:$P_IN" "send:hello" "read:5" sleep:3000 \
        "send:again" "read:5" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "plaintext client exit"
    rm_assert_content "$(rm_client_out plain)" "helloagain" "plaintext echo across 3 s"
    rm_client mesh "$POD" --timeout 8000 --connect "127.0.0.1:$P_UP" "send:hello" "read:5" sleep:3000 \
        "send:again" "read:5" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "mTLS client exit"
    rm_assert_content "$(rm_client_out mesh)" "helloagain" "mTLS echo across 3 s"
    rm_expect_log "$LOG_O" ".event == \"connection\" and .mode == \"mtls\" and .peer_id == \"$ID_FRONTEND\"
        and .close == \"eof\" and .duration_ms >= 3000" "the mTLS connection is logged as mtls"
    rm_expect_log "$LOG_O" '.event == "connection" and .mode == "plaintext" and .close == "eof"
        and .duration_ms >= 3000' "the plaintext connection is logged as plaintext"
}

# PERMISSIVE adds plaintext; a TLS client must still present an SVID that verifies to the bundle (openssl s_client,
# a client that is not ours: without a certificate it is refused; with the frontend's SVID it gets through)
case_tls_needs_client_svid() {
    local before
    before=$(rm_log_count "$LOG_O" '.event == "peer_rejected"')
    (printf nocert; sleep 1) | rm_run timeout 10 openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$P_IN" -alpn ringmesh/1 \
        -CAfile "$RM_TMP/pki/ca-main.pem" >"$RM_TMP/logs/nocert.out" 2>&1 || true
    rm_expect_log_nth "$LOG_O" '.event == "peer_rejected"' "$((before + 1))" "a TLS client without a certificate is refused"
    rm_assert_eq "$(rm_json "$RM_LINE" '.reason | test("certificate"; "i")')" true "the refusal names the certificate"
    (printf withcert; sleep 1) | rm_run timeout 10 openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$P_IN" -alpn ringmesh/1 \
        -CAfile "$RM_TMP/pki/ca-main.pem" -cert "$RM_TMP/pki/frontend.pem" -key "$RM_TMP/pki/frontend.key" \
        >"$RM_TMP/logs/withcert.out" 2>"$RM_TMP/logs/withcert.err" || true
    rm_assert_eq "$(cat "$RM_TMP/logs/withcert.out")" withcert "the echo to a TLS client with the frontend's SVID"
    rm_expect_no_log "$APP_LOG" '.event == "close" and (.head | startswith("nocert"))' \
        "the refused client's bytes never reached the app"
}

# an app that sends its HTTP/2 SETTINGS before the client's ClientHello arrives does not make the connection
# plaintext (before, the SETTINGS frame went to the TLS client in the clear and its handshake failed)
case_h2_app_speaks_first() {
    local out
    # the client sends its preface after the handshake, as an HTTP/2 client does: the proxy waits for it before
    # passing the app's SETTINGS on, to tell HTTP/2 (observed, conn_observe_l7.c) from a server-first protocol
    out=$(rm_run python3 "$CLIENT" late-tls "127.0.0.1:$P_H2IN" 300 --cert "$RM_TMP/pki/frontend.pem" \
        --key "$RM_TMP/pki/frontend.key" --ca "$RM_TMP/pki/ca-main.pem" --timeout 5 --h2-preface) || true
    rm_log "TLS client after the app's SETTINGS: $out"
    rm_assert_eq "$(rm_json "$out" .handshake)" ok "the mTLS handshake after the app's SETTINGS"
    rm_assert_eq "$(rm_json "$out" .first)" 000000040000000000 "the app's SETTINGS frame, inside TLS"
}

rm_case "connections that send nothing are closed at handshakeTimeout" case_idle_connections_closed
rm_case "a ClientHello one byte at a time is cut off" case_trickled_hello_cut
rm_case "part of a ClientHello, then close: the app sees nothing" case_partial_hello_then_close
rm_case "decided connections outlive handshakeTimeout" case_decided_connections_outlive_it
rm_case "TLS on a PERMISSIVE port needs a client SVID" case_tls_needs_client_svid
rm_case "an HTTP/2 app's SETTINGS before the ClientHello: still mTLS" case_h2_app_speaks_first
rm_finish
