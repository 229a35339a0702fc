#!/usr/bin/env bash
# What the proxy negotiates and why it refuses, against real TLS clients and servers (openssl s_client and
# s_server, and tools/tls_client_hello.py for offers openssl will not make), on explicit listeners, loopback only:
#
#   s_client / tls_client_hello.py --> [proxy "orders": inbound listener IN] --> echo app
#   e2e_client --> [proxy "frontend": upstream listener UP, expects .../sa/orders] --mTLS--> s_server on SRV
#
# Key exchange groups: the inbound side completes with a client offering only X25519, only P-256 or only P-384, and
# refuses (alert, not a HelloRetryRequest) one offering only X448, only P-521 or only secp224r1; the outbound side's
# ClientHello offers exactly P-256, X25519 and P-384 and the three TLS 1.3 suites (read from s_server -trace),
# completes with a server that takes only X25519 or only P-384, and is refused by one that takes only P-521.
# Refusals: TLS 1.2, no shared cipher, no shared group, a certificate without digitalSignature, a client
# certificate without clientAuth, a server certificate without serverAuth, an expired certificate, one from an
# unknown CA, one whose SPIFFE ID has no path and one whose URI is no SPIFFE ID each log peer_rejected with their own reason and code, the
# peer's address and, when its certificate carries one, its SPIFFE ID; a server refusing this proxy's certificate
# after the handshake is a tls_error with its alert, address and ID.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds python3

ID_FRONTEND="spiffe://cluster.local/ns/shop/sa/frontend"
ID_ORDERS="spiffe://cluster.local/ns/shop/sa/orders"
HELLO="$RM_SOURCE_DIR/tests/e2e/tools/tls_client_hello.py"
PKI="$RM_TMP/pki"

# error codes (lib/include/ringmesh/error.h): the TLS class is -0x10000, the SVID class -0x20000
CODE_TLS_UNTRUSTED=-65540
CODE_TLS_VERSION=-65548
CODE_TLS_NO_SHARED_CIPHER=-65549
CODE_TLS_NO_SHARED_GROUP=-65550
CODE_TLS_PEER_ALERT=-65551
CODE_SVID_NO_DIGITAL_SIGNATURE=-131096
CODE_SVID_EXPIRED=-131099
CODE_SVID_BAD_SAN_URI=-131105
CODE_SVID_NO_PATH=-131107
CODE_SVID_EXT_KEY_USAGE=-131108

rm_loopback_place 4
read -r P_APP P_IN P_UP P_SRV <<<"${RM_PORTS[*]}"

rm_ca_create main cluster.local
rm_ca_create stranger cluster.local
rm_svid_issue frontend main "$ID_FRONTEND"
rm_svid_issue orders main "$ID_ORDERS"
rm_svid_issue expired main "$ID_FRONTEND" 3600 7200
rm_svid_issue unknown-ca stranger "$ID_FRONTEND"

# odd_cert NAME EXTENSIONS...: a P-256 certificate signed by CA "main" with exactly these extensions (openssl ca)
odd_cert() {
    local name=$1 db="$PKI/odd-$1.db"
    shift
    mkdir -p "$db"
    : >"$db/index.txt"
    openssl rand -hex 16 >"$db/serial"
    {
        printf '[ca]\ndefault_ca = odd\n[odd]\ndatabase = %s/index.txt\nnew_certs_dir = %s\nserial = %s/serial\n' \
            "$db" "$db" "$db"
        printf 'default_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\ndefault_days = 1\n'
        printf '[any]\norganizationName = optional\n[ext]\n'
        printf '%s\n' "$@"
    } >"$db/ca.cnf"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
    openssl req -new -key "$PKI/$name.key" -subj "/O=ringmesh e2e" -out "$db/req.csr" 2>/dev/null
    openssl ca -batch -notext -config "$db/ca.cnf" -extensions ext -cert "$PKI/ca-main.pem" \
        -keyfile "$PKI/ca-main.key" -in "$db/req.csr" -out "$PKI/$name.pem" >"$db/log" 2>&1 ||
        rm_fail "openssl ca failed for $name: $(cat "$db/log")"
}
odd_cert no-digsig "basicConstraints = critical,CA:FALSE" "keyUsage = critical,keyAgreement" \
    "extendedKeyUsage = serverAuth,clientAuth" "subjectAltName = URI:$ID_FRONTEND"
odd_cert server-auth-only "basicConstraints = critical,CA:FALSE" "keyUsage = critical,digitalSignature" \
    "extendedKeyUsage = serverAuth" "subjectAltName = URI:$ID_FRONTEND"
odd_cert client-auth-only "basicConstraints = critical,CA:FALSE" "keyUsage = critical,digitalSignature" \
    "extendedKeyUsage = clientAuth" "subjectAltName = URI:$ID_ORDERS"
odd_cert no-path "basicConstraints = critical,CA:FALSE" "keyUsage = critical,digitalSignature" \
    "extendedKeyUsage = serverAuth,clientAuth" "subjectAltName = URI:spiffe://cluster.local"
odd_cert bad-id "basicConstraints = critical,CA:FALSE" "keyUsage = critical,digitalSignature" \
    "extendedKeyUsage = serverAuth,clientAuth" "subjectAltName = URI:spiffe://cluster.local/ns/../sa/frontend"

# proxy_config NAME LISTENERS_YAML
proxy_config() {
    cat >"$RM_TMP/$1.yaml" <<EOF
trustDomain: cluster.local
tls:
  certFile: $PKI/$1.pem
  keyFile: $PKI/$1.key
  bundleFile: $PKI/ca-main.pem
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
proxy_config frontend "  - name: up
    type: upstream
    listen: 127.0.0.1:$P_UP
    target: 127.0.0.1:$P_SRV
    identities: [\"$ID_ORDERS\"]"

rm_server app "$POD" "127.0.0.1:$P_APP" echo
start_proxy() {
    local name=$1 port=$2 line
    rm_bg "proxy-$name" "$POD" "$RM_TMP/logs/proxy-$name.log" "$RM_PROXY_BIN" --config "$RM_TMP/$name.yaml"
    line=$(rm_wait_log "$RM_TMP/logs/proxy-$name.log" '.event == "proxy_started"' 10) ||
        rm_fail "proxy $name logged no proxy_started: $(cat "$RM_TMP/logs/proxy-$name.log.stderr")"
    rm_check_backend "$line" "proxy $name" >/dev/null
    rm_wait_port "$POD" "$port" 10 "proxy-$name"
}
start_proxy orders "$P_IN"
start_proxy frontend "$P_UP"
LOG_O="$RM_TMP/logs/proxy-orders.log"
LOG_F="$RM_TMP/logs/proxy-frontend.log"

# ---------------------------------------------------------------------------------------------------------------
# inbound: real clients against the inbound listener

# s_client NAME CERT ARGS...: openssl s_client to the inbound listener with CERT's key pair, sending "hello NAME"
# and leaving it a second to come back; its output is in $RM_TMP/logs/s_client-NAME.out, RM_RC its exit status
s_client() {
    local name=$1 cert=$2
    shift 2
    RM_RC=0
    # shellcheck disable=SC2016 # expanded by the inner shell
    rm_run sh -c 'n=$1 a=$2 c=$3 ca=$4; shift 4; (printf "hello %s\n" "$n"; sleep 1) |
        timeout 15 openssl s_client -connect "$a" -brief -cert "$c.pem" -key "$c.key" -CAfile "$ca" "$@"' s_client "$name" "127.0.0.1:$P_IN" "$PKI/$cert" \
        "$PKI/ca-main.pem" "$@" >"$RM_TMP/logs/s_client-$name.out" 2>&1 || RM_RC=$?
    rm_log "s_client $name: exit $RM_RC"
}

# expect_out NAME REGEX WHAT: s_client NAME's output matches REGEX
expect_out() {
    grep -Eq -- "$2" "$RM_TMP/logs/s_client-$1.out" ||
        rm_fail "$3: s_client $1 printed no /$2/: $(cat "$RM_TMP/logs/s_client-$1.out")"
    rm_log "ok: $3"
}

# expect_refusal LOG N CODE REASON_REGEX [PEER_ID]: the Nth peer_rejected line with CODE in LOG names REASON,
# the peer's address (the client's, inbound; the server's, outbound) and PEER_ID (or no peer_id at all)
expect_refusal() {
    local log=$1 n=$2 code=$3 reason=$4 id=${5:-} peer
    rm_expect_log_nth "$log" ".event == \"peer_rejected\" and .code == $code" "$n" "refusal with code $code"
    [[ "$(rm_json "$RM_LINE" .reason)" =~ $reason ]] ||
        rm_fail "refusal $code: reason '$(rm_json "$RM_LINE" .reason)' does not match /$reason/"
    if [ "$(rm_json "$RM_LINE" .direction)" = inbound ]; then
        peer=$(rm_json "$RM_LINE" .src)
        [[ "$peer" =~ ^127\.0\.0\.1:[0-9]+$ ]] || rm_fail "refusal $code: src '$peer' is not a client address"
    else
        peer="127.0.0.1:$P_SRV"
    fi
    rm_assert_eq "$(rm_json "$RM_LINE" .peer_addr)" "$peer" "refusal $code names the peer's address"
    rm_assert_eq "$(rm_json "$RM_LINE" '.peer_id // ""')" "$id" "refusal $code names the peer's SPIFFE ID"
}

# each accepted group completes, negotiated as that group, and carries the bytes both ways
case_groups_accepted() {
    local g key n=0
    for g in X25519 P-256 P-384; do
        case $g in
        X25519) key="X25519" ;;
        P-256) key="prime256v1" ;;
        P-384) key="secp384r1" ;;
        esac
        s_client "group-$g" frontend -groups "$g"
        rm_assert_eq "$RM_RC" 0 "s_client offering only $g: exit"
        expect_out "group-$g" "^Protocol version: TLSv1.3" "only $g: TLS 1.3"
        expect_out "group-$g" "^Server Temp Key: (ECDH, )?$key" "only $g: the key exchange used $g"
        expect_out "group-$g" "^hello group-$g\$" "only $g: the echo came back"
        n=$((n + 1))
        rm_expect_log_nth "$LOG_O" ".event == \"connection\" and .mode == \"mtls\" and .peer_id == \"$ID_FRONTEND\"" \
            "$n" "only $g: the inbound listener logs the mTLS connection"
    done
    rm_expect_no_log "$LOG_O" '.event == "peer_rejected"' "nothing refused"
}

# the groups ringmesh does not take: refused with handshake_failure at once, never a HelloRetryRequest
case_groups_refused() {
    local g n=0 out
    for g in X448 P-521; do
        s_client "group-$g" frontend -groups "$g"
        [ "$RM_RC" != 0 ] || rm_fail "s_client offering only $g completed a handshake"
        expect_out "group-$g" "alert handshake failure" "only $g: refused with a handshake_failure alert"
        ! grep -q "hello_retry_request\|no change following hrr" "$RM_TMP/logs/s_client-group-$g.out" ||
            rm_fail "only $g: the server sent a HelloRetryRequest"
        n=$((n + 1))
        expect_refusal "$LOG_O" "$n" "$CODE_TLS_NO_SHARED_GROUP" "^no key exchange group in common"
    done
    # secp224r1 (23 is P-256, 21 is secp224r1), which openssl's TLS 1.3 client will not offer
    for g in 21 30 25; do
        out=$(rm_run python3 "$HELLO" "127.0.0.1:$P_IN" --groups "$g") || rm_fail "tls_client_hello.py failed: $out"
        rm_assert_eq "$out" '{"record": "alert", "level": 2, "description": 40}' \
            "a ClientHello offering only group $g: answered with a fatal handshake_failure alert"
        n=$((n + 1))
        expect_refusal "$LOG_O" "$n" "$CODE_TLS_NO_SHARED_GROUP" "^no key exchange group in common"
    done
    # a key share for a group it does not take, and another group offered: a HelloRetryRequest for that one
    out=$(rm_run python3 "$HELLO" "127.0.0.1:$P_IN" --groups 30,24 --shares 1) || rm_fail "tls_client_hello.py failed: $out"
    rm_assert_eq "$out" '{"record": "handshake", "message": "hello_retry_request", "group": 24}' \
        "key share X448, P-384 also offered: a HelloRetryRequest for P-384"
}

case_protocol_refusals() {
    s_client tls12 frontend -tls1_2
    [ "$RM_RC" != 0 ] || rm_fail "a TLS 1.2 client completed a handshake"
    expect_out tls12 "alert protocol version" "TLS 1.2: refused with a protocol_version alert"
    expect_refusal "$LOG_O" 1 "$CODE_TLS_VERSION" "^peer does not offer TLS 1.3"

    s_client ccm frontend -ciphersuites TLS_AES_128_CCM_SHA256
    [ "$RM_RC" != 0 ] || rm_fail "a client offering only AES-128-CCM completed a handshake"
    expect_out ccm "alert handshake failure" "AES-128-CCM only: refused with a handshake_failure alert"
    expect_refusal "$LOG_O" 1 "$CODE_TLS_NO_SHARED_CIPHER" "^no cipher suite in common"
}

# certificates the inbound side refuses: the rule, the peer's address and the SPIFFE ID the certificate carries
case_certificate_refusals() {
    s_client no-digsig no-digsig
    expect_refusal "$LOG_O" 1 "$CODE_SVID_NO_DIGITAL_SIGNATURE" "key usage must include digitalSignature" \
        "$ID_FRONTEND"
    s_client server-auth-only server-auth-only
    expect_refusal "$LOG_O" 1 "$CODE_SVID_EXT_KEY_USAGE" "extended key usage must include both serverAuth and clientAuth" \
        "$ID_FRONTEND"
    s_client expired expired
    expect_refusal "$LOG_O" 1 "$CODE_SVID_EXPIRED" "has expired" "$ID_FRONTEND"
    s_client unknown-ca unknown-ca
    expect_refusal "$LOG_O" 1 "$CODE_TLS_UNTRUSTED" "does not verify to the trust bundle" "$ID_FRONTEND"
    s_client no-path no-path
    expect_refusal "$LOG_O" 1 "$CODE_SVID_NO_PATH" "must have a path" "spiffe://cluster.local"
    # a URI that is no SPIFFE ID is no identity to name
    s_client bad-id bad-id
    expect_refusal "$LOG_O" 1 "$CODE_SVID_BAD_SAN_URI" "URI SAN is not a valid SPIFFE ID"
    for name in no-digsig server-auth-only expired unknown-ca no-path bad-id; do
        ! grep -q "^hello $name\$" "$RM_TMP/logs/s_client-$name.out" || rm_fail "$name: bytes came back"
    done
    rm_log "ok: no refused client got its bytes through"
}

# ---------------------------------------------------------------------------------------------------------------
# outbound: the upstream listener against openssl s_server

# s_server NAME CERT ARGS...: one-connection s_server on SRV (reverses each line) with CERT, asking for a client
# certificate from CA "main" (or S_SERVER_CA); -trace output in $RM_TMP/logs/s_server-NAME.log
s_server() {
    local name=$1 cert=$2
    shift 2
    rm_bg "s_server-$name" "$POD" "$RM_TMP/logs/s_server-$name.log" openssl s_server -accept "127.0.0.1:$P_SRV" \
        -naccept 1 -rev -trace -cert "$PKI/$cert.pem" -key "$PKI/$cert.key" \
        -CAfile "$PKI/ca-${S_SERVER_CA:-main}.pem" -Verify 1 "$@"
    rm_wait_port "$POD" "$P_SRV" 10 "s_server-$name"
}

# through NAME: "hello\n" through the upstream listener; RM_RC is e2e_client's exit status
through() {
    rm_client "$1" "$POD" --timeout 5000 --connect "127.0.0.1:$P_UP" "send:hello\n" "read:6"
}

# the items of one ClientHello extension in s_server's -trace: the indented lines under its heading
trace_items() {
    awk -v ext="extension_type=$2" '
        index($0, ext) { inside = 1; depth = match($0, /[^ ]/); next }
        inside && (match($0, /[^ ]/) <= depth || /extension_type=/) { exit }
        inside { sub(/^ +/, ""); print }' "$1"
}

case_client_hello_offer() {
    local log="$RM_TMP/logs/s_server-offer.log" groups shares suites
    s_server offer orders
    through offer
    rm_assert_eq "$RM_RC" 0 "through the upstream listener to s_server: client exit"
    rm_assert_content "$(rm_client_out offer)" $'olleh\n' "s_server's answer"
    rm_wait_exit s_server-offer 10
    groups=$(trace_items "$log" supported_groups | paste -sd, -)
    rm_assert_eq "$groups" "secp256r1 (P-256) (23),ecdh_x25519 (29),secp384r1 (P-384) (24)" \
        "the proxy's ClientHello offers exactly P-256, X25519 and P-384"
    shares=$(trace_items "$log" key_share | grep -o 'NamedGroup: .*' | paste -sd, -)
    rm_assert_eq "$shares" "NamedGroup: secp256r1 (P-256) (23)" "the proxy's ClientHello has one key share, P-256"
    suites=$(awk '/ClientHello/ { hello = 1 } hello && /cipher_suites/ { on = 1; next }
        on && /compression_methods/ { exit } on { sub(/^ +/, ""); print }' "$log" | paste -sd, -)
    rm_assert_eq "$suites" "{0x13, 0x01} TLS_AES_128_GCM_SHA256,{0x13, 0x02} TLS_AES_256_GCM_SHA384,{0x13, 0x03} TLS_CHACHA20_POLY1305_SHA256" \
        "the proxy's ClientHello offers exactly the three TLS 1.3 suites"
}

case_server_groups() {
    local g n=0
    for g in X25519 P-384; do
        s_server "groups-$g" orders -groups "$g"
        through "groups-$g"
        rm_assert_eq "$RM_RC" 0 "a server taking only $g: client exit"
        rm_assert_content "$(rm_client_out "groups-$g")" $'olleh\n' "a server taking only $g: its answer"
        rm_wait_exit "s_server-groups-$g" 10
        n=$((n + 1))
        rm_expect_log_nth "$LOG_F" ".event == \"connection\" and .mode == \"mtls\" and .peer_id == \"$ID_ORDERS\"" \
            $((n + 1)) "a server taking only $g: the upstream listener logs the mTLS connection"
    done
    s_server groups-P-521 orders -groups P-521
    through groups-P-521
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-groups-P-521.status")" 0 \
        "a server taking only P-521: nothing came back"
    rm_stop s_server-groups-P-521
    expect_refusal "$LOG_F" 1 "$CODE_TLS_PEER_ALERT" "^peer ended the session with a fatal alert"
    rm_assert_eq "$(rm_json "$RM_LINE" .peer_alert)" handshake_failure "the refusal names the server's alert"
}

# a server certificate without serverAuth: refused by the client side with the rule and the server's ID
case_server_without_server_auth() {
    s_server client-auth-only client-auth-only
    through client-auth-only
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-client-auth-only.status")" 0 \
        "a server without serverAuth: nothing came back"
    rm_stop s_server-client-auth-only
    expect_refusal "$LOG_F" 1 "$CODE_SVID_EXT_KEY_USAGE" \
        "extended key usage must include both serverAuth and clientAuth" "$ID_ORDERS"
}

rm_case "inbound: X25519, P-256 and P-384 accepted" case_groups_accepted
rm_case "inbound: X448, P-521 and secp224r1 refused with their cause" case_groups_refused
rm_case "inbound: TLS 1.2 and a cipher suite not accepted" case_protocol_refusals
rm_case "inbound: certificates refused with the rule, the peer's address and ID" case_certificate_refusals
# a server whose bundle does not hold this proxy's CA: TLS 1.3 lets the client finish first, so the refusal arrives
# as the server's alert after the handshake: a tls_error naming the alert, the server's address and its ID
case_server_refuses_us() {
    S_SERVER_CA=stranger s_server refuses-us orders -verify_return_error
    through refuses-us
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-refuses-us.status")" 0 \
        "a server refusing our certificate: nothing came back"
    rm_stop s_server-refuses-us
    rm_expect_log "$LOG_F" ".event == \"tls_error\" and .peer_alert == \"unknown_ca\" and .code == $CODE_TLS_PEER_ALERT
        and (.error | startswith(\"peer ended the session with a fatal alert\"))" "the upstream listener logs the server's refusal"
    rm_assert_eq "$(rm_json "$RM_LINE" .peer_addr)" "127.0.0.1:$P_SRV" "the TLS error names the server's address"
    rm_assert_eq "$(rm_json "$RM_LINE" .peer_id)" "$ID_ORDERS" "the TLS error names the server's SPIFFE ID"
}

# These start s_server, so they run outside rm_case (whose subshell would keep their PIDs from the teardown).
rm_log "--- outbound: the ClientHello offers only the accepted suites and groups"
case_client_hello_offer
rm_log "--- outbound: servers taking X25519 or P-384 accepted, P-521 refused"
case_server_groups
rm_log "--- outbound: a server certificate without serverAuth refused"
case_server_without_server_auth
rm_log "--- outbound: a server that refuses this proxy's certificate"
case_server_refuses_us

for name in frontend orders; do
    rm_stop "proxy-$name" TERM
    rm_assert_eq "$RM_RC" 0 "proxy $name exit status after SIGTERM"
done

rm_finish
