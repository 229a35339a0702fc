#!/usr/bin/env bash
# Key exchange groups and refusal reasons through the capture ports of the namespace mesh, with openssl as the peer
# on a host outside the mesh:
#
#   ext (openssl s_client -alpn ringmesh/1) -> VIP .10:8080 -> pod b (orders, STRICT, port 15006) -> echo app
#   pod a (frontend) app -> port 15001 -> VIP .11:8443 -> ext (openssl s_server -trace)
#
# Inbound: a client offering only X25519 gets through; one offering only X448, a TLS 1.2 client, a client
# certificate without clientAuth and one whose SPIFFE ID has no path are refused, and b's peer_rejected line names the
# reason, the code, the client's address (the external host, whatever the DNAT) and the SPIFFE ID its certificate
# carries. Outbound: a's ClientHello offers exactly P-256, X25519 and P-384; a server taking only P-521 refuses it,
# and a's peer_rejected line names the server's alert and address.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup

TD=cluster.local
ID_FRONTEND="spiffe://$TD/ns/shop/sa/frontend"
ID_ORDERS="spiffe://$TD/ns/shop/sa/orders"
PKI="$RM_TMP/pki"
CODE_TLS_VERSION=-65548
CODE_TLS_NO_SHARED_GROUP=-65550
CODE_TLS_PEER_ALERT=-65551
CODE_SVID_NO_PATH=-131107
CODE_SVID_EXT_KEY_USAGE=-131108

rm_ca_create main "$TD"
rm_svid_issue frontend main "$ID_FRONTEND"
rm_svid_issue orders main "$ID_ORDERS"

# odd_cert NAME SAN EKU: a certificate signed by CA "main" with that URI SAN and extended key usage
odd_cert() {
    local name=$1 db="$PKI/odd-$1.db"
    mkdir -p "$db"
    : >"$db/index.txt"
    openssl rand -hex 16 >"$db/serial"
    cat >"$db/ca.cnf" <<EOF
[ca]
default_ca = odd
[odd]
database = $db/index.txt
new_certs_dir = $db
serial = $db/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
default_days = 1
[any]
organizationName = optional
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = $3
subjectAltName = URI:$2
EOF
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
    openssl req -new -key "$PKI/$name.key" -subj "/O=ringmesh e2e" -out "$db/req.csr" 2>/dev/null
    openssl ca -batch -notext -config "$db/ca.cnf" -extensions ext -cert "$PKI/ca-main.pem" \
        -keyfile "$PKI/ca-main.key" -in "$db/req.csr" -out "$PKI/$name.pem" >"$db/log" 2>&1 ||
        rm_fail "openssl ca failed for $name: $(cat "$db/log")"
}
odd_cert server-auth-only "$ID_FRONTEND" serverAuth
odd_cert no-path "spiffe://$TD" serverAuth,clientAuth

rm_pod_create a
rm_pod_create b
rm_external_create ext
rm_service 198.19.0.10:8080 b:8080
rm_service 198.19.0.11:8443 ext:8443
rm_server b b 0.0.0.0:8080 echo
rm_pod_mesh a svid=frontend bundle=main "dest=198.19.0.11:8443=$ID_ORDERS"
rm_pod_mesh b svid=orders bundle=main
LOG_A=$(rm_proxy_log a)
LOG_B=$(rm_proxy_log b)
EXT_IP=${RM_POD_IP[ext]}

# s_client NAME CERT ARGS...: from the external host to b's service, offering the mesh ALPN; output in
# $RM_TMP/logs/s_client-NAME.out, RM_RC its exit status
s_client() {
    local name=$1 cert=$2
    shift 2
    RM_RC=0
    # shellcheck disable=SC2016 # expanded by the inner shell
    rm_exec ext sh -c 'n=$1 c=$2 ca=$3; shift 3; (printf "hello %s\n" "$n"; sleep 1) |
        timeout 15 openssl s_client -connect 198.19.0.10:8080 -alpn ringmesh/1 -brief -cert "$c.pem" -key "$c.key" \
        -CAfile "$ca" "$@"' s_client "$name" "$PKI/$cert" "$PKI/ca-main.pem" "$@" \
        >"$RM_TMP/logs/s_client-$name.out" 2>&1 || RM_RC=$?
    rm_log "s_client $name: exit $RM_RC"
}

# expect_refusal LOG CODE REASON_REGEX PEER_ADDR_REGEX [PEER_ID]: the peer_rejected line with CODE in LOG
expect_refusal() {
    local log=$1 code=$2 reason=$3 addr=$4 id=${5:-}
    rm_expect_log "$log" ".event == \"peer_rejected\" and .code == $code" "refusal with code $code"
    [[ "$(rm_json "$RM_LINE" .reason)" =~ $reason ]] ||
        rm_fail "refusal $code: reason '$(rm_json "$RM_LINE" .reason)' does not match /$reason/"
    [[ "$(rm_json "$RM_LINE" .peer_addr)" =~ $addr ]] ||
        rm_fail "refusal $code: peer_addr '$(rm_json "$RM_LINE" .peer_addr)' does not match /$addr/"
    rm_assert_eq "$(rm_json "$RM_LINE" '.peer_id // ""')" "$id" "refusal $code names the peer's SPIFFE ID"
}

case_inbound() {
    local client="^${EXT_IP//./\\.}:[0-9]+\$"
    s_client x25519 frontend -groups X25519
    rm_assert_eq "$RM_RC" 0 "only X25519: s_client exit"
    grep -q "^hello x25519$" "$RM_TMP/logs/s_client-x25519.out" ||
        rm_fail "only X25519: no echo: $(cat "$RM_TMP/logs/s_client-x25519.out")"
    rm_expect_log "$LOG_B" ".event == \"connection\" and .mode == \"mtls\" and .peer_id == \"$ID_FRONTEND\"" \
        "only X25519: b logs the mTLS connection"

    s_client x448 frontend -groups X448
    grep -q "alert handshake failure" "$RM_TMP/logs/s_client-x448.out" ||
        rm_fail "only X448: not refused with handshake_failure: $(cat "$RM_TMP/logs/s_client-x448.out")"
    expect_refusal "$LOG_B" "$CODE_TLS_NO_SHARED_GROUP" "^no key exchange group in common" "$client"

    s_client tls12 frontend -tls1_2
    grep -q "alert protocol version" "$RM_TMP/logs/s_client-tls12.out" ||
        rm_fail "TLS 1.2: not refused with protocol_version: $(cat "$RM_TMP/logs/s_client-tls12.out")"
    expect_refusal "$LOG_B" "$CODE_TLS_VERSION" "^peer does not offer TLS 1.3" "$client"

    s_client server-auth-only server-auth-only
    expect_refusal "$LOG_B" "$CODE_SVID_EXT_KEY_USAGE" "both serverAuth and clientAuth" "$client" "$ID_FRONTEND"

    s_client no-path no-path
    expect_refusal "$LOG_B" "$CODE_SVID_NO_PATH" "must have a path" "$client" "spiffe://$TD"
}

# s_server NAME ARGS...: a one-connection s_server on the external host's port 8443 with orders's SVID and the
# mesh ALPN, as a meshed server would present
s_server() {
    local name=$1
    shift
    rm_bg "s_server-$name" ext "$RM_TMP/logs/s_server-$name.log" openssl s_server -accept 8443 -naccept 1 -rev \
        -trace -alpn ringmesh/1 -cert "$PKI/orders.pem" -key "$PKI/orders.key" -CAfile "$PKI/ca-main.pem" -Verify 1 \
        "$@"
    rm_wait_port ext 8443 10 "s_server-$name"
}

case_outbound() {
    local groups
    s_server offer
    rm_client offer a --timeout 5000 --connect 198.19.0.11:8443 "send:hello\n" "read:6"
    rm_assert_eq "$RM_RC" 0 "a's app through its proxy to s_server: client exit"
    rm_assert_content "$(rm_client_out offer)" $'olleh\n' "s_server's answer"
    rm_wait_exit s_server-offer 10
    groups=$(awk 'index($0, "extension_type=supported_groups") { on = 1; depth = match($0, /[^ ]/); next }
        on && (match($0, /[^ ]/) <= depth || /extension_type=/) { exit } on { sub(/^ +/, ""); print }' \
        "$RM_TMP/logs/s_server-offer.log" | paste -sd, -)
    rm_assert_eq "$groups" "secp256r1 (P-256) (23),ecdh_x25519 (29),secp384r1 (P-384) (24)" \
        "a's ClientHello offers exactly P-256, X25519 and P-384"

    s_server p521 -groups P-521
    rm_client p521 a --timeout 5000 --connect 198.19.0.11:8443 "send:hello\n" "read:6"
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-p521.status")" 0 "a server taking only P-521: no answer"
    rm_stop s_server-p521
    expect_refusal "$LOG_A" "$CODE_TLS_PEER_ALERT" "^peer ended the session with a fatal alert" \
        "^198\.19\.0\.11:8443\$"
    rm_assert_eq "$(rm_json "$RM_LINE" .peer_alert)" handshake_failure "the refusal names the server's alert"
}

rm_case "inbound through the capture port" case_inbound
# starts s_server: outside rm_case, whose subshell would keep its PIDs from the teardown
rm_log "--- outbound through the capture port"
case_outbound

rm_finish
