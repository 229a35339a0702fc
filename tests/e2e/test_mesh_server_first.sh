#!/usr/bin/env bash
# rm-e2e: both-backends
#
# Server-first protocols (SMTP, MySQL: the server writes a banner as soon as it accepts) work through the mesh:
# the client receives the banner without sending anything first.
#   a      -> VIP:3306 (b, STRICT)      over mTLS
#   legacy -> VIP:2525 (b, PERMISSIVE)  in plaintext: b's proxy connects to the app at once, so the banner flows
#                                       before the client's first byte tells plaintext from TLS
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup

ID_A="spiffe://cluster.local/ns/shop/sa/frontend"
ID_B="spiffe://cluster.local/ns/db/sa/mysql"
VIP=198.19.0.10
BANNER=$'220 e2e.example ESMTP ready for '"$$"$'\r\n'

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_A"
rm_svid_issue mysql main "$ID_B"

rm_pod_create a
rm_pod_create b
rm_pod_create legacy
rm_service "$VIP:3306" b:3306
rm_service "$VIP:2525" b:2525
rm_server mysql b 0.0.0.0:3306 banner --banner "$BANNER"
rm_server smtp b 0.0.0.0:2525 banner --banner "$BANNER"
rm_pod_mesh b svid=mysql bundle=main permissive=2525
rm_pod_mesh a svid=frontend bundle=main "dest=$VIP:3306=$ID_B"

# read:N first: the client sends nothing until the whole banner has arrived (bounded by --timeout).
QUIT=$'QUIT\r\n'

case_mtls() {
    rm_client mtls a --timeout 8000 --connect "$VIP:3306" "read:${#BANNER}" 'send:QUIT\r\n' "read:${#QUIT}" \
        shutdown readeof
    rm_assert_eq "$RM_RC" 0 "server-first over mTLS: client exit (4 = the banner never came)"
    rm_assert_content "$(rm_client_out mtls)" "$BANNER$QUIT" "server-first over mTLS: banner, then the echo"
    rm_expect_log "$(rm_proxy_log a)" ".event == \"connection\" and .mode == \"mtls\" and (.dst | addr) == \"$VIP:3306\"
        and .peer_id == \"$ID_B\"" "a's proxy logs the server-first connection as mtls"
    rm_expect_log "$(rm_proxy_log b)" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"mtls\"
        and (.dst | addr) == \"${RM_POD_IP[b]}:3306\" and .peer_id == \"$ID_A\"" "b's proxy logs it as mtls"
}

case_plaintext_permissive() {
    rm_client plain legacy --timeout 8000 --connect "$VIP:2525" "read:${#BANNER}" 'send:QUIT\r\n' "read:${#QUIT}" \
        shutdown readeof
    rm_assert_eq "$RM_RC" 0 "server-first in plaintext on a PERMISSIVE port: client exit (4 = the banner never came)"
    rm_assert_content "$(rm_client_out plain)" "$BANNER$QUIT" "server-first in plaintext: banner, then the echo"
    rm_expect_log "$(rm_proxy_log b)" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"plaintext\"
        and (.dst | addr) == \"${RM_POD_IP[b]}:2525\"" "b's proxy logs the plaintext server-first connection"
}

rm_case "server-first over mTLS" case_mtls
rm_case "server-first in plaintext on a PERMISSIVE port" case_plaintext_permissive
rm_finish
