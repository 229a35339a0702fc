#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Bounded resources: maxConnections refuses the connection over the limit with one clear log line; an upstream
# that never answers the SYN is given up after connectTimeout; a connection silent for idleTimeout is closed; a
# configuration error names its file, line and field and the proxy does not start. Loopback in a private network
# namespace (iptables drops SYNs to one port there).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_root
rm_require_netns
rm_require_cmds iptables jq

ID_CLIENT="spiffe://cluster.local/ns/shop/sa/frontend"
ID_SERVER="spiffe://cluster.local/ns/shop/sa/orders"
rm__ns_add "$(rm_ns lo)"
POD=lo
P_APP=8080 P_IN=9443 P_UP=9000 P_BLACKHOLE=9444 P_BH_UP=9001
# SYNs to the black-hole port vanish, so a connect there can only end by timing out
rm_exec "$POD" iptables -A INPUT -p tcp --dport "$P_BLACKHOLE" --syn -j DROP

rm_ca_create main cluster.local
rm_svid_issue client main "$ID_CLIENT"
rm_svid_issue server main "$ID_SERVER"

cat >"$RM_TMP/server.yaml" <<YAML
tls: {certFile: $RM_TMP/pki/server.pem, keyFile: $RM_TMP/pki/server.key, bundleFile: $RM_TMP/pki/ca-main.pem}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {enabled: false}
connectionLog: true
listeners:
  - {name: in, type: inbound, listen: "127.0.0.1:$P_IN", target: "127.0.0.1:$P_APP", mode: STRICT}
YAML
cat >"$RM_TMP/client.yaml" <<YAML
tls: {certFile: $RM_TMP/pki/client.pem, keyFile: $RM_TMP/pki/client.key, bundleFile: $RM_TMP/pki/ca-main.pem}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {enabled: false}
connectionLog: true
maxConnections: 2
connectTimeout: 1s
idleTimeout: 3s
listeners:
  - {name: up, type: upstream, listen: "127.0.0.1:$P_UP", target: "127.0.0.1:$P_IN", identities: ["$ID_SERVER"]}
  - {name: blackhole, type: upstream, listen: "127.0.0.1:$P_BH_UP", target: "127.0.0.1:$P_BLACKHOLE",
     identities: ["$ID_SERVER"]}
YAML

rm_log "--- a configuration error names file, line and field, and nothing starts"
sed 's/maxConnections: 2/maxConnections: lots/' "$RM_TMP/client.yaml" >"$RM_TMP/bad.yaml"
RM_RC=0
"$RM_PROXY_BIN" --config "$RM_TMP/bad.yaml" >"$RM_TMP/logs/bad.log" 2>&1 || RM_RC=$?
rm_assert_eq "$RM_RC" 1 "exit status for an invalid configuration"
rm_expect_log "$RM_TMP/logs/bad.log" '.event == "config_invalid" and (.msg | test("bad.yaml:[0-9]+:[0-9]+: maxConnections"))' \
    "the error names bad.yaml, its line and column, and the field"

rm_server app "$POD" "127.0.0.1:$P_APP" echo
rm_bg proxy-server "$POD" "$RM_TMP/logs/proxy-server.log" "$RM_PROXY_BIN" --config "$RM_TMP/server.yaml"
rm_bg proxy-client "$POD" "$RM_TMP/logs/proxy-client.log" "$RM_PROXY_BIN" --config "$RM_TMP/client.yaml"
rm_wait_port "$POD" "$P_IN" 10 proxy-server
rm_wait_port "$POD" "$P_UP" 10 proxy-client
LOG="$RM_TMP/logs/proxy-client.log"

rm_log "--- maxConnections"
for i in 1 2; do
    rm_bg "hold$i" "$POD" "$RM_TMP/logs/hold$i.out" "$RM_TOOLS/e2e_client" --timeout 15000 \
        --connect "127.0.0.1:$P_UP" "send:hold-$i" "read:6" sleep:2000 shutdown readeof
done
sleep 1
RM_RC=0
rm_exec "$POD" timeout 10 "$RM_TOOLS/e2e_client" --timeout 5000 --connect "127.0.0.1:$P_UP" "send:third" readeof \
    >"$RM_TMP/logs/third.out" 2>&1 || RM_RC=$?
[ "$RM_RC" = 3 ] || [ "$RM_RC" = 0 ] || rm_fail "the connection over the limit: client exit $RM_RC"
[ ! -s "$RM_TMP/logs/third.out" ] || grep -q '"received":0' "$RM_TMP/logs/third.out" ||
    rm_fail "the connection over the limit received data: $(cat "$RM_TMP/logs/third.out")"
rm_expect_log "$LOG" '.event == "connection_limit" and .max_connections == 2' "the limit is logged"
for i in 1 2; do
    rm_wait_exit "hold$i" 15
    rm_assert_eq "$RM_RC" 0 "connection $i under the limit completed"
done
rm_assert_eq "$(rm_log_count "$LOG" '.event == "connection_limit"')" 1 "one log line, not one per refusal burst"

rm_log "--- connectTimeout"
start=$(rm_now_ms)
RM_RC=0
rm_exec "$POD" timeout 10 "$RM_TOOLS/e2e_client" --timeout 8000 --connect "127.0.0.1:$P_BH_UP" "send:x" readeof \
    >/dev/null 2>&1 || RM_RC=$?
elapsed=$(($(rm_now_ms) - start))
[ "$RM_RC" = 3 ] || [ "$RM_RC" = 0 ] || rm_fail "black-holed upstream: client exit $RM_RC (want reset or close)"
rm_wait_log "$LOG" '.event == "upstream_connect_timeout"' 5 >/dev/null ||
    rm_fail "no upstream_connect_timeout line"
# the configured 1 s plus at most one 250 ms tick, with generous slack for a loaded machine, but well under the
# kernel's own SYN retry timeout (over a minute)
[ "$elapsed" -ge 900 ] && [ "$elapsed" -lt 6000 ] || rm_fail "connect gave up after $elapsed ms (connectTimeout 1s)"
rm_log "ok: gave up after $elapsed ms"

rm_log "--- idleTimeout"
RM_RC=0
rm_exec "$POD" timeout 15 "$RM_TOOLS/e2e_client" --timeout 10000 --connect "127.0.0.1:$P_UP" "send:idle" "read:4" \
    readeof >/dev/null 2>&1 || RM_RC=$?
[ "$RM_RC" = 0 ] || [ "$RM_RC" = 3 ] || rm_fail "idle connection: client exit $RM_RC (want it closed by the proxy)"
rm_wait_log "$LOG" '.event == "connection" and .close == "timeout" and .bytes_sent == 4' 5 >/dev/null ||
    rm_fail "the idle connection was not closed with close=timeout"
rm_log "ok: idle connection closed by the proxy"

rm_finish
