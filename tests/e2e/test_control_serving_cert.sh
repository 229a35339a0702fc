#!/usr/bin/env bash
#
# The control plane's serving certificate renews itself. ringmesh-control runs under libfaketime with a clock the
# test moves: at start it serves a 24-hour certificate for its SPIFFE ID and DNS names; 13 hours later (past half
# its life) it issues a new one, with the same identity and names, that verifies against the trust bundle, and the
# handshakes after gRPC's next read of it (within a second) get it, while the old one is no longer served. The
# injection webhook's certificate is renewed at the same time on its own, with no connection to the webhook and no
# scrape to ask for it, and the expiry metric then shows the new one.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$FAKETIME_LIB" ] || rm_skip "libfaketime is not installed (scripts/bootstrap.sh installs it)"
rm_setup_no_netns
rm_control_init

PORT=$((20000 + $$ % 12000)) # below the kernel's ephemeral ports (32768-), which a client's connection may hold
WPORT=$((PORT + 1)) APORT=$((PORT + 2))
CLOCK=$RM_TMP/clock
echo "+0" >"$CLOCK"
rm_bg control-ft - "$RM_TMP/logs/control-ft.log" env LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$CLOCK" \
    FAKETIME_NO_CACHE=1 "$RM_CONTROL_BIN" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$APORT" \
    --webhook-listen "127.0.0.1:$WPORT" \
    --config-dir "$RM_TMP/control/mesh" --state-dir "$RM_TMP/control/state" --jwks "$RM_TMP/control/jwks.json"
rm_wait_log "$RM_TMP/logs/control-ft.log" '.event == "control_started"' 15 >/dev/null ||
    rm_fail "ringmesh-control did not start"
CLOG=$RM_TMP/logs/control-ft.log

served() { # served FILE [PORT]: the certificate a TLS client gets now (a few tries: the machine may be busy)
    local i
    for i in 1 2 3 4 5; do
        echo | timeout 10 openssl s_client -connect "127.0.0.1:${2:-$PORT}" -alpn h2 >"$1.s_client" 2>&1 &&
            openssl x509 <"$1.s_client" >"$1" 2>/dev/null && return 0
        sleep 0.5
    done
    cat "$1.s_client" >&2
    rm_fail "no certificate from the control plane"
}
served "$RM_TMP/first.pem"
served "$RM_TMP/webhook-first.pem" "$WPORT"
echo "+13h" >"$CLOCK"
rm_expect_log_nth "$CLOG" '.event == "serving_certificate_issued"' 2 "a new serving certificate is issued"
# nothing reaches the webhook or the metrics before its renewal is seen (either would renew it on the way)
rm_expect_log_nth "$CLOG" '.event == "webhook_certificate_issued"' 2 "a new webhook certificate is issued by itself"
for _ in $(seq 1 20); do # gRPC's file watcher reads it every second
    served "$RM_TMP/second.pem"
    [ "$(openssl x509 -in "$RM_TMP/first.pem" -noout -serial)" = "$(openssl x509 -in "$RM_TMP/second.pem" -noout -serial)" ] ||
        break
    sleep 0.2
done
AT=$(($(date +%s) + 13 * 3600 + 60))

case_renewed() {
    rm_assert_eq "$(rm_log_count "$CLOG" '.event == "serving_certificate_issued"')" 2 "serving certificates issued"
    [ "$(openssl x509 -in "$RM_TMP/first.pem" -noout -serial)" != "$(openssl x509 -in "$RM_TMP/second.pem" -noout -serial)" ] ||
        rm_fail "the same certificate is served after half its life"
    local end1 end2
    end1=$(date -d "$(openssl x509 -in "$RM_TMP/first.pem" -noout -enddate | cut -d= -f2)" +%s)
    end2=$(date -d "$(openssl x509 -in "$RM_TMP/second.pem" -noout -enddate | cut -d= -f2)" +%s)
    [ $((end2 - end1)) -ge $((13 * 3600 - 10)) ] || rm_fail "the new certificate does not last longer ($end1 -> $end2)"
    rm_log "ok: the new certificate ends 13 h later than the first"
}

case_same_identity() {
    rm_assert_eq "$(openssl x509 -in "$RM_TMP/second.pem" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')" \
        "$(openssl x509 -in "$RM_TMP/first.pem" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')" \
        "the same SPIFFE ID and DNS names"
    openssl verify -attime "$AT" -CAfile "$RM_TMP/control/state/trust-bundle.pem" "$RM_TMP/second.pem" >/dev/null ||
        rm_fail "the new serving certificate does not verify against the bundle"
    rm_log "ok: the new certificate verifies against the trust bundle"
}

case_webhook_renewed() {
    local end1 end2 metric
    served "$RM_TMP/webhook-second.pem" "$WPORT"
    [ "$(openssl x509 -in "$RM_TMP/webhook-first.pem" -noout -serial)" != \
        "$(openssl x509 -in "$RM_TMP/webhook-second.pem" -noout -serial)" ] ||
        rm_fail "the webhook serves the same certificate after half its life"
    end1=$(date -d "$(openssl x509 -in "$RM_TMP/webhook-first.pem" -noout -enddate | cut -d= -f2)" +%s)
    end2=$(date -d "$(openssl x509 -in "$RM_TMP/webhook-second.pem" -noout -enddate | cut -d= -f2)" +%s)
    [ $((end2 - end1)) -ge $((13 * 3600 - 10)) ] || rm_fail "the new webhook certificate does not last longer"
    metric=$(curl -s "http://127.0.0.1:$APORT/metrics" |
        awk '$1 == "ringmesh_control_webhook_cert_expiry_timestamp_seconds" {print $2}')
    rm_assert_eq "$metric" "$end2" "the expiry metric: the renewed certificate's notAfter"
    rm_assert_eq "$(rm_log_count "$CLOG" '.event == "webhook_certificate_issued"')" 2 "webhook certificates issued"
}

rm_case "the serving certificate is renewed at half its life" case_renewed
rm_case "with the same identity, under the same root" case_same_identity
rm_case "the webhook's certificate is renewed with no connection, and the metric shows it" case_webhook_renewed
rm_finish
