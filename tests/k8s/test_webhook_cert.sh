#!/usr/bin/env bash
# The webhook's serving certificate renews itself. ringmesh-control runs under libfaketime with a clock the test
# moves: at start the webhook serves a 24-hour certificate from the control plane's CA for the Service's DNS names;
# 13 hours later (past half its life) the next connection gets a new one with the same names, valid for longer, that
# verifies against the CA; and reviews are answered before and after. The expiry gauge on /metrics is the notAfter of
# the certificate served, before and after the renewal.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$FAKETIME_LIB" ] || rm_skip "libfaketime is not installed (scripts/bootstrap.sh installs it)"
rm_require_cmds openssl curl
rm_setup_no_netns
rm_control_init

ADMIN=127.0.0.1:$((20000 + $$ % 12000)) # below the kernel's ephemeral ports (32768-), which a client's connection may hold
CLOCK=$RM_TMP/clock
echo "+0" >"$CLOCK"
rm_bg control-ft - "$RM_TMP/logs/control-ft.log" env LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$CLOCK" \
    FAKETIME_NO_CACHE=1 "$RM_CONTROL_BIN" --listen 127.0.0.1:0 --admin-listen "$ADMIN" --webhook-listen 127.0.0.1:0 \
    --config-dir "$RM_TMP/control/mesh" --state-dir "$RM_TMP/control/state" --jwks "$RM_TMP/control/jwks.json"
CLOG=$RM_TMP/logs/control-ft.log
rm_expect_log "$CLOG" '.event == "webhook_started"' "the webhook started" 15
PORT=$(rm_json "$RM_LINE" .port)
HOST=ringmesh-control.ringmesh-system.svc

served() { # served FILE: the certificate a TLS client gets now, and a review answered on the same connection
    local i
    for i in 1 2 3 4 5; do
        printf 'POST /inject HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}' \
            "$HOST" | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername "$HOST" -alpn http/1.1 \
            -ign_eof >"$1.s_client" 2>&1 && openssl x509 <"$1.s_client" >"$1" 2>/dev/null &&
            grep -q '^HTTP/1.1 400 ' "$1.s_client" && return 0
        sleep 0.5
    done
    cat "$1.s_client" >&2
    rm_fail "no certificate or no answer from the webhook"
}
serial() { openssl x509 -in "$1" -noout -serial; }
end_of() { date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }

# expiry_gauge: the webhook certificate's expiry as /metrics gives it
expiry_gauge() {
    curl -sf "http://$ADMIN/metrics" | awk '$1 == "ringmesh_control_webhook_cert_expiry_timestamp_seconds" {print $2}'
}

served "$RM_TMP/first.pem"
rm_log "ok: a review answered over the first certificate"
rm_assert_eq "$(expiry_gauge)" "$(end_of "$RM_TMP/first.pem")" "the expiry gauge is the served certificate's notAfter"
served "$RM_TMP/again.pem"
rm_assert_eq "$(serial "$RM_TMP/again.pem")" "$(serial "$RM_TMP/first.pem")" "the same certificate before half its life"
rm_assert_eq "$(openssl x509 -in "$RM_TMP/first.pem" -noout -ext subjectAltName | tail -n +2 | tr -d ' ' | tr ',' '\n' | grep -c "^DNS:$HOST$")" \
    1 "the certificate names the Service the API server dials"
openssl verify -CAfile "$RM_TMP/control/state/trust-bundle.pem" "$RM_TMP/first.pem" >/dev/null ||
    rm_fail "the first certificate does not verify against the CA"

echo "+13h" >"$CLOCK"
served "$RM_TMP/second.pem"
rm_log "ok: a review answered over the renewed certificate"
rm_expect_log_nth "$CLOG" '.event == "webhook_certificate_issued"' 2 "a new webhook certificate is issued"
[ "$(serial "$RM_TMP/first.pem")" != "$(serial "$RM_TMP/second.pem")" ] ||
    rm_fail "the same certificate is served after half its life"
rm_assert_eq "$(openssl x509 -in "$RM_TMP/second.pem" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')" \
    "$(openssl x509 -in "$RM_TMP/first.pem" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')" \
    "the same SPIFFE ID and DNS names"
[ $(($(end_of "$RM_TMP/second.pem") - $(end_of "$RM_TMP/first.pem"))) -ge $((13 * 3600 - 10)) ] ||
    rm_fail "the new certificate does not last longer"
openssl verify -attime $(($(date +%s) + 13 * 3600 + 60)) -CAfile "$RM_TMP/control/state/trust-bundle.pem" \
    "$RM_TMP/second.pem" >/dev/null || rm_fail "the new certificate does not verify against the CA"
rm_log "ok: the renewed certificate verifies against the CA and ends 13 h later"
served "$RM_TMP/third.pem"
rm_assert_eq "$(serial "$RM_TMP/third.pem")" "$(serial "$RM_TMP/second.pem")" "the renewed certificate stays in service"
rm_assert_eq "$(expiry_gauge)" "$(end_of "$RM_TMP/second.pem")" "the expiry gauge follows the renewal"
rm_finish
