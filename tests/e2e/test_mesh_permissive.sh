#!/usr/bin/env bash
# rm-e2e: both-backends
#
# STRICT vs PERMISSIVE inbound. Pod b is meshed with STRICT by default and port 9000 PERMISSIVE; pod legacy has
# no proxy; pod a is meshed.
#   legacy -> VIP:8080 (STRICT)      refused, b's proxy logs "plaintext ... STRICT", the app sees no byte
#   legacy -> VIP:9000 (PERMISSIVE)  works in plaintext, logged as mode plaintext
#   a      -> VIP:9000 (PERMISSIVE)  still mTLS, logged as mtls with a's identity
#   a      -> VIP:8080 (STRICT)      mTLS works
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/shop/sa/orders"
VIP=198.19.0.10

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue orders main "$ID_B"

rm_pod_create a
rm_pod_create b
rm_pod_create legacy
rm_service "$VIP:8080" b:8080
rm_service "$VIP:9000" b:9000
rm_server strict b 0.0.0.0:8080 echo
rm_server permissive b 0.0.0.0:9000 echo
rm_pod_mesh b svid=orders bundle=main permissive=9000
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP:8080=$ID_B" "dest=$VIP:9000=$ID_B"
LOG_A=$(rm_proxy_log a)
LOG_B=$(rm_proxy_log b)

MESH_STRICT="mesh to strict"

case_plaintext_strict() {
    rm_client legacy-strict legacy --timeout 8000 --connect "$VIP:8080" "send:plain to strict" readeof
    [ "$RM_RC" = 0 ] || [ "$RM_RC" = 3 ] || rm_fail "plaintext to STRICT: expected close or reset, exit $RM_RC"
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-legacy-strict.status")" 0 \
        "plaintext to STRICT gets no answer"
    rm_expect_log "$LOG_B" ".event == \"peer_rejected\" and .level == \"warn\" and .direction == \"inbound\"
        and (.src | addr | startswith(\"${RM_POD_IP[legacy]}:\")) and (.dst | addr) == \"${RM_POD_IP[b]}:8080\"
        and (.reason | test(\"plaintext\"; \"i\")) and (.reason | test(\"STRICT\"))" \
        "b's proxy refuses plaintext on the STRICT port"
}

case_plaintext_permissive() {
    rm_client legacy-permissive legacy --connect "$VIP:9000" "send:plain to permissive" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "plaintext to PERMISSIVE exit"
    rm_assert_content "$(rm_client_out legacy-permissive)" "plain to permissive" "plaintext to PERMISSIVE echo"
    rm_expect_log "$LOG_B" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"plaintext\"
        and (.src | addr | startswith(\"${RM_POD_IP[legacy]}:\")) and (.dst | addr) == \"${RM_POD_IP[b]}:9000\"" \
        "b's proxy logs the plaintext connection on the PERMISSIVE port"
}

case_mtls_permissive() {
    rm_client mesh-permissive a --connect "$VIP:9000" "send:mesh to permissive" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "mTLS to PERMISSIVE exit"
    rm_assert_content "$(rm_client_out mesh-permissive)" "mesh to permissive" "mTLS to PERMISSIVE echo"
    rm_expect_log "$LOG_B" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"mtls\"
        and .peer_id == \"$ID_A\" and (.dst | addr) == \"${RM_POD_IP[b]}:9000\" and .tls_version == \"TLSv1.3\"" \
        "b's proxy logs mTLS on the PERMISSIVE port"
    rm_expect_log "$LOG_A" ".event == \"connection\" and .direction == \"outbound\" and .mode == \"mtls\"
        and .peer_id == \"$ID_B\" and (.dst | addr) == \"$VIP:9000\"" "a's proxy logs mTLS to the PERMISSIVE port"
}

case_mtls_strict() {
    rm_client mesh-strict a --connect "$VIP:8080" "send:$MESH_STRICT" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "mTLS to STRICT exit"
    rm_assert_content "$(rm_client_out mesh-strict)" "$MESH_STRICT" "mTLS to STRICT echo"
    rm_expect_log "$LOG_B" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"mtls\"
        and .peer_id == \"$ID_A\" and (.dst | addr) == \"${RM_POD_IP[b]}:8080\"" "b's proxy logs mTLS on the STRICT port"
}

# The STRICT port's application only ever received bytes from the meshed client, never the plaintext ones.
case_strict_app_bytes() {
    rm_expect_no_log "$(rm_server_log strict)" '.event == "close" and .received > 0 and .head != "'"$MESH_STRICT"'"' \
        "the STRICT port's application received no bytes but the meshed client's"
    rm_expect_no_log "$LOG_B" ".event == \"connection\" and .mode == \"plaintext\"
        and (.dst | addr) == \"${RM_POD_IP[b]}:8080\"" "no plaintext connection was let through on the STRICT port"
}

rm_case "plaintext to a STRICT port is refused" case_plaintext_strict
rm_case "plaintext to a PERMISSIVE port works" case_plaintext_permissive
rm_case "mTLS to a PERMISSIVE port stays mTLS" case_mtls_permissive
rm_case "mTLS to a STRICT port" case_mtls_strict
rm_case "the STRICT application saw only mTLS bytes" case_strict_app_bytes
rm_finish
