#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Explicit listeners, no iptables, loopback only:
#
#   e2e_client -> [proxy "frontend": upstream listener "orders"] --mTLS--> [proxy "orders": inbound listener]
#              -> echo backend
#
# A 1 MiB random payload goes through and back intact (SHA-256 compared); an upstream listener that expects
# another identity refuses the same server and logs why. Runs inside a private network namespace when it can
# (root), otherwise on the host's loopback with ports that were free when the test started.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns

ID_FRONTEND="spiffe://cluster.local/ns/shop/sa/frontend"
ID_ORDERS="spiffe://cluster.local/ns/shop/sa/orders"
ID_OTHER="spiffe://cluster.local/ns/shop/sa/payments"

rm_loopback_place 4
read -r P_APP P_IN P_UP P_BAD <<<"${RM_PORTS[*]}"

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_FRONTEND"
rm_svid_issue orders main "$ID_ORDERS"

# proxy_config NAME LISTENERS_YAML: a config with only explicit listeners (no capture ports, no admin)
proxy_config() {
    cat >"$RM_TMP/$1.yaml" <<EOF
trustDomain: cluster.local
tls:
  certFile: $RM_TMP/pki/$1.pem
  keyFile: $RM_TMP/pki/$1.key
  bundleFile: $RM_TMP/pki/ca-main.pem
outbound:
  enabled: false
inbound:
  enabled: false
admin:
  enabled: false
listeners:
$2
workers: 1
ioBackend: auto
connectTimeout: 5s
drainTimeout: 2s
connectionLog: true
EOF
}

proxy_config orders "  - name: in
    type: inbound
    listen: 127.0.0.1:$P_IN
    target: 127.0.0.1:$P_APP
    mode: STRICT"
proxy_config frontend "  - name: orders
    type: upstream
    listen: 127.0.0.1:$P_UP
    target: 127.0.0.1:$P_IN
    identities: [\"$ID_ORDERS\"]
  - name: wrong
    type: upstream
    listen: 127.0.0.1:$P_BAD
    target: 127.0.0.1:$P_IN
    identities: [\"$ID_OTHER\"]"

for name in orders frontend; do
    "$RM_PROXY_BIN" --config "$RM_TMP/$name.yaml" --check >"$RM_TMP/logs/check-$name.log" 2>&1 ||
        rm_fail "ringmesh-proxy --check rejects $name.yaml: $(cat "$RM_TMP/logs/check-$name.log")"
done
rm_log "ok: both configurations pass --check"

rm_server app "$POD" "127.0.0.1:$P_APP" echo
# start_proxy NAME PORT...: starts a proxy, waits for proxy_started and its listeners
start_proxy() {
    local name=$1 line port
    shift
    rm_bg "proxy-$name" "$POD" "$RM_TMP/logs/proxy-$name.log" "$RM_PROXY_BIN" --config "$RM_TMP/$name.yaml"
    line=$(rm_wait_log "$RM_TMP/logs/proxy-$name.log" '.event == "proxy_started"' 10) ||
        rm_fail "proxy $name logged no proxy_started: $(cat "$RM_TMP/logs/proxy-$name.log.stderr")"
    rm_check_backend "$line" "proxy $name" >/dev/null
    for port in "$@"; do rm_wait_port "$POD" "$port" 10 "proxy-$name"; done
}
start_proxy orders "$P_IN"
start_proxy frontend "$P_UP" "$P_BAD"
LOG_F="$RM_TMP/logs/proxy-frontend.log"
LOG_O="$RM_TMP/logs/proxy-orders.log"

SIZE=1048576

# 1 MiB there and back.
case_big() {
    local sum_in sum_out
    head -c $SIZE /dev/urandom >"$RM_TMP/payload.bin"
    rm_client big "$POD" --timeout 20000 --connect "127.0.0.1:$P_UP" "sendfile:$RM_TMP/payload.bin" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "1 MiB client exit"
    rm_expect_log "$(rm_server_log app)" ".event == \"close\" and .received == $SIZE and .end == \"eof\"" \
        "the backend received the whole payload"
    sum_in=$(sha256sum <"$RM_TMP/payload.bin" | cut -d' ' -f1)
    sum_out=$(sha256sum <"$RM_TMP/logs/client-big.out" | cut -d' ' -f1)
    [ "$sum_out" = "$sum_in" ] || rm_fail "SHA-256 of the 1 MiB echo differs: $(cmp "$RM_TMP/payload.bin" \
        "$RM_TMP/logs/client-big.out" 2>&1 | head -n 1)"
    rm_log "ok: SHA-256 of the 1 MiB echo ($sum_out)"
    rm_assert_eq "$(rm_log_select "$(rm_server_log app)" '.event == "accept"' | jq -r '.peer | sub(":[0-9]+$"; "")')" \
        127.0.0.1 "the backend's peer (the inbound listener's proxy)"
    rm_expect_log "$LOG_F" ".event == \"connection\" and .mode == \"mtls\" and .peer_id == \"$ID_ORDERS\"
        and .tls_version == \"TLSv1.3\" and .bytes_sent >= $SIZE and .bytes_received >= $SIZE" \
        "the upstream listener logs the mTLS connection"
    rm_expect_log "$LOG_O" ".event == \"connection\" and .mode == \"mtls\" and .peer_id == \"$ID_FRONTEND\"
        and .tls_version == \"TLSv1.3\" and .bytes_sent >= $SIZE and .bytes_received >= $SIZE" \
        "the inbound listener logs the mTLS connection"
}

# The same server through a listener that expects another identity.
case_wrong_identity() {
    rm_client wrong "$POD" --timeout 8000 --connect "127.0.0.1:$P_BAD" "send:must not arrive" readeof
    [ "$RM_RC" = 0 ] || [ "$RM_RC" = 3 ] || rm_fail "wrong identity: expected close or reset, client exit $RM_RC"
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-wrong.status")" 0 "wrong identity: bytes the client received"
    rm_expect_log "$LOG_F" ".event == \"peer_rejected\" and .peer_id == \"$ID_ORDERS\"
        and (.reason | test(\"SPIFFE ID\")) and (.expected | tostring | contains(\"$ID_OTHER\"))" \
        "the upstream listener refuses a server with another identity"
    rm_expect_no_log "$(rm_server_log app)" '.event == "close" and (.head | startswith("must not"))' \
        "the backend received nothing from the refused connection"
}

rm_case "1 MiB through upstream and inbound listeners" case_big
rm_case "wrong identity refused" case_wrong_identity

# SIGTERM: both proxies stop cleanly.
for name in frontend orders; do
    rm_stop "proxy-$name" TERM
    rm_assert_eq "$RM_RC" 0 "proxy $name exit status after SIGTERM"
done

rm_finish
