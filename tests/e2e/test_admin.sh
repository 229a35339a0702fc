#!/usr/bin/env bash
# rm-e2e: both-backends
#
# The admin port: health, Prometheus metrics that move with traffic, error statuses, bounded requests, and the
# two ways to stop (POST /drain waits for open connections; POST /quitquitquit does not). Loopback only, in a
# private network namespace when root, else on free host ports.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds curl jq socat

ID_CLIENT="spiffe://cluster.local/ns/shop/sa/frontend"
ID_SERVER="spiffe://cluster.local/ns/shop/sa/orders"

rm_loopback_place 4
read -r P_APP P_IN P_UP P_ADMIN <<<"${RM_PORTS[*]}"

rm_ca_create main cluster.local
rm_svid_issue client main "$ID_CLIENT"
rm_svid_issue server main "$ID_SERVER"

cat >"$RM_TMP/server.yaml" <<YAML
tls: {certFile: $RM_TMP/pki/server.pem, keyFile: $RM_TMP/pki/server.key, bundleFile: $RM_TMP/pki/ca-main.pem}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {enabled: false}
listeners:
  - {name: in, type: inbound, listen: "127.0.0.1:$P_IN", target: "127.0.0.1:$P_APP", mode: STRICT}
drainTimeout: 10s
YAML
cat >"$RM_TMP/client.yaml" <<YAML
tls: {certFile: $RM_TMP/pki/client.pem, keyFile: $RM_TMP/pki/client.key, bundleFile: $RM_TMP/pki/ca-main.pem}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {listen: "127.0.0.1:$P_ADMIN"}
listeners:
  - {name: up, type: upstream, listen: "127.0.0.1:$P_UP", target: "127.0.0.1:$P_IN", identities: ["$ID_SERVER"]}
drainTimeout: 10s
YAML

rm_server app "$POD" "127.0.0.1:$P_APP" echo
start() {
    rm_bg "proxy-$1" "$POD" "$RM_TMP/logs/proxy-$1.log" "$RM_PROXY_BIN" --config "$RM_TMP/$1.yaml"
    rm_wait_log "$RM_TMP/logs/proxy-$1.log" '.event == "proxy_started"' 10 >/dev/null ||
        rm_fail "proxy $1 did not start: $(cat "$RM_TMP/logs/proxy-$1.log.stderr")"
}
start server
rm_wait_port "$POD" "$P_IN" 10 proxy-server

admin() { # METHOD PATH -> the HTTP status
    rm_run curl -s -m 5 -o /dev/null -w '%{http_code}' -X "$1" "http://127.0.0.1:$P_ADMIN$2" || true
}
metric() { # NAME -> its value in /metrics
    rm_metric "$P_ADMIN" "$1"
}

case_health_and_errors() {
    rm_assert_eq "$(admin GET /healthz/live)" 200 "GET /healthz/live"
    rm_assert_eq "$(admin GET /healthz/ready)" 200 "GET /healthz/ready"
    rm_assert_eq "$(admin GET /nope)" 404 "unknown path"
    rm_assert_eq "$(admin GET /drain)" 405 "GET on a POST-only endpoint"
    rm_assert_eq "$(admin POST /metrics)" 405 "POST on a GET-only endpoint"
    # a header block over the 4 KiB limit is answered, not waited on
    local big
    big=$(head -c 6000 /dev/zero | tr '\0' a)
    rm_assert_eq "$(rm_run curl -s -m 5 -o /dev/null -w '%{http_code}' -H "X-Big: $big" \
        "http://127.0.0.1:$P_ADMIN/metrics" || true)" 431 "oversized request"
    rm_assert_eq "$(printf 'NOT HTTP AT ALL\r\n\r\n' | rm_run timeout 5 socat -t 2 - "TCP:127.0.0.1:$P_ADMIN" |
        head -n 1 | tr -d '\r')" "HTTP/1.1 400 Bad Request" "malformed request"
}

case_metrics_follow_traffic() {
    local before after hs exp computed remembered
    rm_run curl -s -m 5 "http://127.0.0.1:$P_ADMIN/metrics" >"$RM_TMP/metrics.txt"
    grep -q '^# TYPE ringmesh_proxy_connections_accepted_total counter$' "$RM_TMP/metrics.txt" ||
        rm_fail "metrics lack TYPE lines: $(head -5 "$RM_TMP/metrics.txt")"
    grep -Eq '^ringmesh_proxy_info\{io_backend="(io_uring|epoll)",workers="1"\} 1$' "$RM_TMP/metrics.txt" ||
        rm_fail "ringmesh_proxy_info missing"
    before=$(metric ringmesh_proxy_connections_accepted_total)
    hs=$(metric ringmesh_proxy_tls_handshakes_total)
    computed=$(metric 'ringmesh_proxy_tls_signature_verifications_total{result="computed"}')
    remembered=$(metric 'ringmesh_proxy_tls_signature_verifications_total{result="remembered"}')
    for i in 1 2 3; do
        rm_run timeout 10 "$RM_TOOLS/e2e_client" --timeout 5000 --connect "127.0.0.1:$P_UP" "send:ping-$i" shutdown \
            readeof >/dev/null 2>&1 || rm_fail "request $i through the upstream listener failed"
    done
    after=$(metric ringmesh_proxy_connections_accepted_total)
    rm_assert_eq "$((after - before))" 3 "accepted_total grew by the three connections"
    rm_assert_eq "$(($(metric ringmesh_proxy_tls_handshakes_total) - hs))" 3 "tls_handshakes_total grew by three"
    # each handshake verifies the server's CertificateVerify; the CA's signature over the server's certificate is
    # computed once and then remembered
    [ "$(($(metric 'ringmesh_proxy_tls_signature_verifications_total{result="computed"}') - computed))" -ge 3 ] ||
        rm_fail "signature verifications computed did not count the three CertificateVerify"
    [ "$(($(metric 'ringmesh_proxy_tls_signature_verifications_total{result="remembered"}') - remembered))" -ge 2 ] ||
        rm_fail "the server's certificate signature was not remembered on the 2nd and 3rd handshakes"
    [ "$(metric 'ringmesh_proxy_bytes_total{direction="downstream_to_upstream"}')" -ge 18 ] ||
        rm_fail "bytes_total did not count the payload"
    exp=$(metric ringmesh_proxy_svid_expiry_timestamp_seconds)
    [ "$exp" -gt "$(date +%s)" ] || rm_fail "svid expiry $exp is not in the future"
}

start client
rm_wait_port "$POD" "$P_ADMIN" 10 proxy-client
rm_case "health and error statuses" case_health_and_errors
rm_case "metrics follow traffic" case_metrics_follow_traffic
[ ${#RM_FAILED_CASES[@]} = 0 ] || rm_finish

# The stops start processes, so they run at the top level (a case's background PIDs would not reach teardown).
rm_log "--- POST /drain waits for open connections"
rm_bg held "$POD" "$RM_TMP/logs/held.out" "$RM_TOOLS/e2e_client" --timeout 20000 \
    --connect "127.0.0.1:$P_UP" "send:held" sleep:1500 "send:after" shutdown readeof
sleep 0.5
rm_assert_eq "$(admin POST /drain)" 200 "POST /drain"
sleep 0.3
rm_assert_eq "$(admin GET /healthz/ready)" 503 "ready while draining"
rm_alive proxy-client || rm_fail "the proxy exited while a connection was still open"
rm_wait_exit held 20
rm_assert_eq "$RM_RC" 0 "the held connection finished during the drain"
rm_wait_exit proxy-client 10
rm_assert_eq "$RM_RC" 0 "exit status after POST /drain"
rm_expect_log "$RM_TMP/logs/proxy-client.log" '.event == "connection" and .close == "eof" and .bytes_sent == 9' \
    "the held connection closed normally, all its bytes through"

rm_log "--- POST /quitquitquit exits at once"
start client
rm_wait_port "$POD" "$P_ADMIN" 10 proxy-client
rm_bg held2 "$POD" "$RM_TMP/logs/held2.out" "$RM_TOOLS/e2e_client" --timeout 30000 \
    --connect "127.0.0.1:$P_UP" "send:held" sleep:20000 shutdown readeof
sleep 0.5
rm_assert_eq "$(admin POST /quitquitquit)" 200 "POST /quitquitquit"
rm_wait_exit proxy-client 5
rm_assert_eq "$RM_RC" 0 "exit status after POST /quitquitquit"
rm_expect_log "$RM_TMP/logs/proxy-client.log" '.event == "stop_requested"' "the stop is logged"
rm_expect_log "$RM_TMP/logs/proxy-client.log" '.event == "connection" and .close == "drain"' \
    "the open connection was cut"
rm_finish
