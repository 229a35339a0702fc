#!/usr/bin/env bash
# A proxy without a control plane reads its SVID files again when they change on disk:
#
#   e2e_client -> [proxy "frontend": upstream listener, expects .../sa/orders] --mTLS--> [proxy "orders": inbound
#              listener, SVID from tls.certFile/keyFile] -> echo backend
#
# - a new SVID for the same identity, swapped in by rename as a Secret volume or an agent does, is logged
#   (svid_reloaded, with the new notAfter) and presented from then on (the expiry gauge follows it);
# - a key that does not match the certificate is refused (svid_reload_failed, naming the rule), and the SVID in
#   force stays: new connections still succeed;
# - an SVID for another identity is taken (previous_spiffe_id logged), and new connections from a client that
#   expects orders are refused for that identity, while a connection opened before carries on to its end;
# - an SVID left to expire is warned about (svid_expiring, then svid_expired), and frontend refuses it once expired,
#   naming the validity rule;
# - going back to a valid orders SVID mends it;
# - at start, a missing or mismatched key stops the proxy with svid_load_failed naming the file and the reason, and a
#   key file that others can read is warned about.
#
# Loopback only, in a private network namespace when root, else on free host ports.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds curl jq openssl

ID_ORDERS="spiffe://cluster.local/ns/shop/sa/orders"
ID_OTHER="spiffe://cluster.local/ns/shop/sa/payments"
PKI="$RM_TMP/pki"

rm_loopback_place 4
read -r P_APP P_IN P_UP P_ADM_O <<<"${RM_PORTS[*]}"
rm_server app "$POD" "127.0.0.1:$P_APP" echo
rm_loopback_pair "$P_APP" "$P_IN" "$P_UP" - "$P_ADM_O"
LOG_F="$RM_TMP/logs/proxy-frontend.log"
LOG_O="$RM_TMP/logs/proxy-orders.log"

cp "$PKI/orders.pem" "$PKI/orders-v1.pem"
cp "$PKI/orders.key" "$PKI/orders-v1.key"
rm_svid_issue orders-v2 main "$ID_ORDERS" 7200 # a longer life, so its notAfter differs from v1's
rm_svid_issue payments main "$ID_OTHER"

# install NAME [KEY_OF]: puts SVID NAME (its key, or KEY_OF's) in orders' files as an agent would: written beside
# them, then renamed over them
install() {
    cp "$PKI/$1.pem" "$PKI/orders.pem.new"
    cp "$PKI/${2:-$1}.key" "$PKI/orders.key.new"
    chmod 0600 "$PKI/orders.key.new"
    mv -f "$PKI/orders.pem.new" "$PKI/orders.pem"
    mv -f "$PKI/orders.key.new" "$PKI/orders.key"
}

not_after() { # PEM -> notAfter in seconds since the epoch
    date -u -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%s
}

reloads() { # RESULT -> ringmesh_proxy_file_reloads_total{source="svid",result=RESULT}
    rm_metric "$P_ADM_O" "ringmesh_proxy_file_reloads_total{source=\"svid\",result=\"$1\"}"
}

expiry_gauge() {
    rm_metric "$P_ADM_O" ringmesh_proxy_svid_expiry_timestamp_seconds
}

client() { # NAME e2e_client-steps...
    rm_client "$1" "$POD" --timeout 8000 --connect "127.0.0.1:$P_UP" "${@:2}"
}

expect_echo() { # NAME: a request through the pair comes back
    rm_expect_echo "$1" "$POD" "127.0.0.1:$P_UP"
}

expect_reloads() { # N: the Nth svid_reloaded line, in RM_LINE
    rm_expect_log_nth "$LOG_O" '.event == "svid_reloaded"' "$1" "svid_reloaded number $1"
}

case_before() {
    expect_echo first
    rm_assert_eq "$(expiry_gauge)" "$(not_after "$PKI/orders-v1.pem")" "expiry gauge: v1's notAfter"
    rm_expect_no_log "$LOG_O" '.event == "svid_reloaded" or .event == "svid_reload_failed"' \
        "nothing reloaded while the files stay as they are"
}

case_rotate() {
    install orders-v2
    expect_reloads 1
    rm_assert_eq "$(rm_json "$RM_LINE" .spiffe_id)" "$ID_ORDERS" "reloaded SPIFFE ID"
    rm_assert_eq "$(rm_json "$RM_LINE" .not_after)" "$(not_after "$PKI/orders-v2.pem")" "reloaded notAfter (v2's)"
    rm_assert_eq "$(rm_json "$RM_LINE" .previous_spiffe_id)" null "no previous_spiffe_id for the same identity"
    rm_assert_eq "$(expiry_gauge)" "$(not_after "$PKI/orders-v2.pem")" "expiry gauge: v2's notAfter"
    rm_assert_eq "$(reloads accepted)/$(reloads rejected)" 1/0 "SVID reloads accepted/rejected"
    expect_echo after-rotation
}

case_bad_key() {
    install orders-v1 payments # v1's certificate with another SVID's key
    rm_expect_log "$LOG_O" '.event == "svid_reload_failed"' "a certificate with the wrong key is refused" 10
    rm_assert_eq "$(rm_json "$RM_LINE" .file)" "$PKI/orders.key" "the file named"
    rm_json "$RM_LINE" .msg | grep -qi "key" || rm_fail "the reason does not speak of the key: $(rm_json "$RM_LINE" .msg)"
    rm_assert_eq "$(rm_json "$RM_LINE" .outcome)" "the SVID in force stays" "outcome"
    rm_assert_eq "$(expiry_gauge)" "$(not_after "$PKI/orders-v2.pem")" "expiry gauge: still v2's"
    expect_echo after-bad-key
    sleep 0.5 # several checks of the unchanged files: a refused set is not read again until it changes
    rm_assert_eq "$(rm_log_count "$LOG_O" '.event == "svid_reload_failed"')" 1 "svid_reload_failed lines"
    rm_assert_eq "$(reloads accepted)/$(reloads rejected)" 1/1 "SVID reloads accepted/rejected"
}

case_identity_change() {
    local go="$RM_TMP/held-go"
    # a connection opened under the orders SVID, held open across the change
    rm_client_bg held "$POD" --timeout 20000 --connect "127.0.0.1:$P_UP" "send:before" "read:6" \
        "touch:$RM_TMP/held-open" "waitfile:$go" "send:after" shutdown readeof
    rm_wait_file "$RM_TMP/held-open" client-held 10
    install payments
    expect_reloads 2
    rm_assert_eq "$(rm_json "$RM_LINE" .spiffe_id)" "$ID_OTHER" "reloaded SPIFFE ID"
    rm_assert_eq "$(rm_json "$RM_LINE" .previous_spiffe_id)" "$ID_ORDERS" "previous_spiffe_id"
    client refused "send:must not arrive" readeof
    [ "$RM_RC" = 0 ] || [ "$RM_RC" = 3 ] || rm_fail "refused: expected close or reset, client exit $RM_RC"
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-refused.status")" 0 "refused: bytes the client received"
    rm_expect_log "$LOG_F" ".event == \"peer_rejected\" and .peer_id == \"$ID_OTHER\" and (.reason | test(\"SPIFFE ID\"))" \
        "the frontend refuses the new identity where it expects orders"
    touch "$go"
    rm_wait_exit client-held 15
    rm_assert_eq "$RM_RC" 0 "held connection: client exit"
    rm_assert_content "$RM_TMP/logs/client-held.out" "beforeafter" "held connection: both echoes"
}

case_expiry() {
    rm_svid_issue orders-short main "$ID_ORDERS" 40 35 # five seconds left, a tenth of its life in four
    install orders-short
    expect_reloads 3
    rm_expect_log "$LOG_O" '.event == "svid_expiring" and .seconds_left <= 4' "the SVID near its expiry is warned about" 10
    rm_expect_log "$LOG_O" ".event == \"svid_expired\" and .not_after == $(not_after "$PKI/orders-short.pem")" \
        "the expiry is logged" 10
    [ "$(date +%s)" -gt "$(not_after "$PKI/orders-short.pem")" ] || rm_fail "svid_expired logged before notAfter"
    client expired "send:must not arrive" readeof
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-expired.status")" 0 "expired: bytes the client received"
    rm_expect_log "$LOG_F" '.event == "peer_rejected" and .direction == "outbound" and (.reason | test("expired"))' \
        "frontend refuses the expired SVID, naming the rule"
}

case_mend() {
    install orders-v2
    expect_reloads 4
    rm_assert_eq "$(rm_json "$RM_LINE" .spiffe_id)" "$ID_ORDERS" "reloaded SPIFFE ID"
    rm_assert_eq "$(reloads accepted)/$(reloads rejected)" 4/1 "SVID reloads accepted/rejected"
    expect_echo mended
}

# check NAME CERT KEY: `ringmesh-proxy --check` of orders' configuration with other SVID files; RM_RC, output in
# $RM_TMP/logs/check-NAME.log
check() {
    sed -e "s|certFile: [^,]*,|certFile: $2,|" -e "s|keyFile: [^,]*,|keyFile: $3,|" "$RM_TMP/orders.yaml" \
        >"$RM_TMP/check-$1.yaml"
    RM_RC=0
    "$RM_PROXY_BIN" --config "$RM_TMP/check-$1.yaml" --check >"$RM_TMP/logs/check-$1.log" 2>&1 || RM_RC=$?
}

case_start_errors() {
    check missing "$PKI/orders-v1.pem" "$PKI/nowhere.key"
    rm_assert_eq "$RM_RC" 1 "missing key: exit status"
    rm_expect_log "$RM_TMP/logs/check-missing.log" ".event == \"svid_load_failed\" and .file == \"$PKI/nowhere.key\"
        and .msg == \"private key file could not be read\" and .error == \"No such file or directory\"" \
        "missing key: the file and the reason"
    check mismatch "$PKI/orders-v1.pem" "$PKI/payments.key"
    rm_assert_eq "$RM_RC" 1 "mismatched key: exit status"
    rm_expect_log "$RM_TMP/logs/check-mismatch.log" ".event == \"svid_load_failed\" and .file == \"$PKI/payments.key\"
        and (.msg | test(\"key\"; \"i\"))" "mismatched key: the file and the reason"
    cp "$PKI/orders-v1.key" "$PKI/open.key"
    chmod 0644 "$PKI/open.key"
    check open "$PKI/orders-v1.pem" "$PKI/open.key"
    rm_assert_eq "$RM_RC" 0 "key readable by others: exit status"
    rm_expect_log "$RM_TMP/logs/check-open.log" ".event == \"key_file_permissions\" and .file == \"$PKI/open.key\"" \
        "key readable by others: warned"
    check private "$PKI/orders-v1.pem" "$PKI/orders-v1.key"
    rm_assert_eq "$RM_RC" 0 "mode 0600 key: exit status"
    rm_expect_no_log "$RM_TMP/logs/check-private.log" '.event == "key_file_permissions"' "mode 0600 key: no warning"
}

rm_case "the SVID from the files at start" case_before
rm_case "a rotated SVID is read and presented" case_rotate
rm_case "a key that does not match is refused, the SVID in force stays" case_bad_key
rm_case "another identity is taken; a connection opened before carries on" case_identity_change
rm_case "an SVID left to expire" case_expiry
rm_case "a valid SVID again" case_mend
rm_case "bad SVID files at start" case_start_errors

rm_stop proxy-orders TERM
rm_assert_eq "$RM_RC" 0 "proxy orders exit status after SIGTERM"
rm_finish
