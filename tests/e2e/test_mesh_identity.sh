#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Identity failures are refused and logged with the rule that failed.
#
#   pod a (frontend) -> VIP .10 -> pod b       (orders, good SVID)          works: the setup itself is sound
#   pod a            -> VIP .11 -> pod wrongid (payments: wrong SPIFFE ID)  a's proxy: "SPIFFE ID ... expected"
#   pod a            -> VIP .12 -> pod expired (orders, SVID expired)       a's proxy: "expired"
#   pod a            -> VIP .13 -> pod foreign (evil.example, another CA)   a's proxy: chain/trust bundle
#   pod oldclient (frontend, SVID expired)   -> VIP .10 -> pod b            b's proxy: "expired"
#   pod rogue (frontend ID, signed by a CA outside b's bundle) -> VIP .10   b's proxy: chain/trust bundle
#
# The expired SVIDs are valid when their proxies start and expire a few seconds later, so the test does not
# depend on whether a proxy accepts an already expired certificate of its own at start-up.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup

TD=cluster.local
ID_FRONTEND="spiffe://$TD/ns/shop/sa/frontend"
ID_ORDERS="spiffe://$TD/ns/shop/sa/orders"
ID_PAYMENTS="spiffe://$TD/ns/shop/sa/payments"
ID_FOREIGN="spiffe://evil.example/ns/shop/sa/orders"
EXPIRE_IN=5 # seconds after issuance the short-lived SVIDs expire

rm_ca_create main "$TD"
rm_ca_create rogue "$TD"
rm_ca_create evil evil.example
rm_svid_issue frontend main "$ID_FRONTEND"
rm_svid_issue orders main "$ID_ORDERS"
rm_svid_issue payments main "$ID_PAYMENTS"
rm_svid_issue foreign evil "$ID_FOREIGN"
rm_svid_issue rogue-frontend rogue "$ID_FRONTEND"

for p in a b wrongid expired foreign oldclient rogue; do rm_pod_create "$p"; done
rm_service 198.19.0.10:8080 b:8080
rm_service 198.19.0.11:8080 wrongid:8080
rm_service 198.19.0.12:8080 expired:8080
rm_service 198.19.0.13:8080 foreign:8080
for p in b wrongid expired foreign; do rm_server "$p" "$p" 0.0.0.0:8080 echo; done

DESTS=()
for i in 10 11 12 13; do DESTS+=("dest=198.19.0.$i:8080=$ID_ORDERS"); done
rm_pod_mesh a svid=frontend bundle=main "${DESTS[@]}"
rm_pod_mesh b svid=orders bundle=main
rm_pod_mesh wrongid svid=payments bundle=main
rm_pod_mesh foreign svid=foreign bundle=evil td=evil.example
# The rogue pod trusts its own CA too (a proxy checks its own SVID against its bundle at start-up); b does not.
rm_pod_mesh rogue svid=rogue-frontend bundle=main,rogue "dest=198.19.0.10:8080=$ID_ORDERS"

# The two short-lived SVIDs, issued last so that they expire soon after their proxies start.
expire_at=$(($(date +%s) + EXPIRE_IN))
rm_svid_issue orders-short main "$ID_ORDERS" $((300 + EXPIRE_IN)) 300
rm_svid_issue frontend-short main "$ID_FRONTEND" $((300 + EXPIRE_IN)) 300
rm_pod_mesh expired svid=orders-short bundle=main
rm_pod_mesh oldclient svid=frontend-short bundle=main "dest=198.19.0.10:8080=$ID_ORDERS"
if [ "$(date +%s)" -ge "$expire_at" ]; then
    rm_fail "the short-lived SVIDs expired before their proxies were up (more than $EXPIRE_IN s): machine too slow"
fi

LOG_A=$(rm_proxy_log a)
LOG_B=$(rm_proxy_log b)

# rejected_request NAME POD VIP: a request that must get no answer, quickly (no timeout)
rejected_request() {
    rm_client "$1" "$2" --timeout 8000 --connect "$3" "send:hello from $2" readeof
    [ "$RM_RC" = 0 ] || [ "$RM_RC" = 3 ] || rm_fail "$1: expected the connection to be closed or reset, exit $RM_RC"
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-$1.status")" 0 "$1: bytes the client received"
}

# 0. The setup is sound: a good client reaches the good server (a hard requirement for everything below).
GOOD="good request"
rm_client good a --connect 198.19.0.10:8080 "send:$GOOD" shutdown readeof
rm_assert_eq "$RM_RC" 0 "good client exit"
rm_assert_content "$(rm_client_out good)" "$GOOD" "good client gets its echo"

case_wrong_id() {
    rejected_request wrongid a 198.19.0.11:8080
    rm_expect_log "$LOG_A" ".event == \"peer_rejected\" and .level == \"warn\" and .direction == \"outbound\"
        and (.dst | addr) == \"198.19.0.11:8080\" and .peer_id == \"$ID_PAYMENTS\" and (.reason | test(\"SPIFFE ID\"))
        and (.expected | tostring | contains(\"$ID_ORDERS\")) and .code != null" \
        "wrong server identity rejected by the client's proxy"
}

case_foreign_server() {
    rejected_request foreign a 198.19.0.13:8080
    rm_expect_log "$LOG_A" ".event == \"peer_rejected\" and .direction == \"outbound\"
        and (.dst | addr) == \"198.19.0.13:8080\" and (.reason | test(\"verify|trust bundle|trust domain\"))" \
        "server SVID from another trust domain and CA rejected by the client's proxy, naming the chain check"
}

case_rogue_client() {
    rejected_request rogue rogue 198.19.0.10:8080
    rm_expect_log "$LOG_B" ".event == \"peer_rejected\" and .direction == \"inbound\"
        and (.src | addr | startswith(\"${RM_POD_IP[rogue]}:\")) and (.reason | test(\"verify|trust bundle\"))" \
        "client SVID from another CA rejected by the server's proxy, naming the chain check"
}

case_expired_server() {
    rejected_request expiredserver a 198.19.0.12:8080
    rm_expect_log "$LOG_A" ".event == \"peer_rejected\" and .direction == \"outbound\"
        and (.dst | addr) == \"198.19.0.12:8080\" and (.reason | test(\"expired\"))" \
        "expired server SVID rejected by the client's proxy"
}

case_expired_client() {
    rejected_request expiredclient oldclient 198.19.0.10:8080
    rm_expect_log "$LOG_B" ".event == \"peer_rejected\" and .direction == \"inbound\"
        and (.src | addr | startswith(\"${RM_POD_IP[oldclient]}:\")) and (.reason | test(\"expired\"))" \
        "expired client SVID rejected by the server's proxy"
}

# No application received a byte from a rejected peer: b only the good request, the others nothing.
case_no_bytes_to_apps() {
    local total p
    rm_expect_no_log "$(rm_server_log b)" '.event == "close" and .received > 0 and .head != "'"$GOOD"'"' \
        "b's application received no bytes but the good request's"
    for p in wrongid expired foreign; do
        total=$(rm_log_select "$(rm_server_log "$p")" '.event == "close"' | jq -s 'map(.received) | add // 0')
        rm_assert_eq "$total" 0 "bytes the application in $p received"
    done
    rm_expect_no_log "$LOG_A" '.event == "peer_rejected" and (.dst | addr) == "198.19.0.10:8080"' \
        "the good server was never rejected"
}

rm_case "wrong server SPIFFE ID" case_wrong_id
rm_case "server from another trust domain" case_foreign_server
rm_case "client from another CA" case_rogue_client
while [ "$(date +%s)" -le "$expire_at" ]; do sleep 0.2; done
sleep 1
rm_case "expired server SVID" case_expired_server
rm_case "expired client SVID" case_expired_client
rm_case "no bytes reached the applications" case_no_bytes_to_apps
rm_finish
