#!/usr/bin/env bash
#
# The control plane's check of client certificates, and its refusal lines. From a pod, real TLS clients (openssl
# s_client, and python3-grpcio for a Discovery call) connect to ringmesh-control with: TLS 1.2 only; no cipher
# suite in common; no client certificate on Discovery; a certificate from an unknown CA; an expired one; and
# certificates signed by the mesh's own CA (so OpenSSL's chain check alone would take them) that break an X509-SVID
# leaf rule: two URI SANs, CA:TRUE, a SPIFFE ID of another trust domain, a SPIFFE ID with no path, an extended key
# usage without clientAuth. Each is refused, and the control plane writes one JSON line that names the cause and
# the pod's address (and the SPIFFE ID the certificate carries). A valid SVID from the same CA is not refused.
# The rules themselves are lib's (rm_svid_verify_pem): the no-path and clientAuth cases pass once lib has those
# two rules.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds openssl jq
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$FAKETIME_LIB" ] || rm_skip "libfaketime is not installed (scripts/bootstrap.sh installs it)"
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c 'import grpc, google.protobuf' 2>/dev/null; then
    rm_skip "Debian's python3-grpcio / python3-protobuf are not installed (scripts/bootstrap.sh installs them)"
fi
rm_require_cmds protoc
rm_setup
rm_control_init

rm_pod_create client
rm_control_start main node 0.0.0.0:15012
CLOG=$RM_TMP/logs/control-main.log
ADDR=$(rm_pod_gateway client):15012
PEER="ipv4:${RM_POD_IP[client]}:"
CA=$RM_TMP/control/state
K=$RM_TMP/certs
mkdir -p "$K"

# leaf NAME EXTENSIONS [faketime offset]: a P-256 key and a certificate for it signed by the mesh's CA, valid for a
# day from now (or from the offset), with the given extension lines
leaf() {
    local name=$1 ext=$2 offset=${3:-}
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/$name.key" 2>/dev/null
    openssl req -new -key "$K/$name.key" -subj "/O=ringmesh-e2e" -out "$K/$name.csr" 2>/dev/null
    printf '%b\n' "$ext" >"$K/$name.ext"
    if [ -n "$offset" ]; then
        env LD_PRELOAD="$FAKETIME_LIB" FAKETIME="$offset" openssl x509 -req -in "$K/$name.csr" -CA "$CA/ca-cert.pem" \
            -CAkey "$CA/ca-key.pem" -days 1 -extfile "$K/$name.ext" -out "$K/$name.pem" 2>/dev/null
    else
        openssl x509 -req -in "$K/$name.csr" -CA "$CA/ca-cert.pem" -CAkey "$CA/ca-key.pem" -days 1 \
            -extfile "$K/$name.ext" -out "$K/$name.pem" 2>/dev/null
    fi
    [ -s "$K/$name.pem" ] || rm_fail "cannot make certificate $name"
}
SVID_EXT='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth'
leaf good "$SVID_EXT\nsubjectAltName=URI:spiffe://cluster.local/ns/t/sa/good"
leaf expired "$SVID_EXT\nsubjectAltName=URI:spiffe://cluster.local/ns/t/sa/expired" -3d
leaf two-uris "$SVID_EXT\nsubjectAltName=URI:spiffe://cluster.local/ns/t/sa/two-uris,URI:spiffe://cluster.local/ns/t/sa/other"
leaf ca-true 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\nsubjectAltName=URI:spiffe://cluster.local/ns/t/sa/ca-true'
leaf other-td "$SVID_EXT\nsubjectAltName=URI:spiffe://evil.example/ns/t/sa/other-td"
leaf no-path "$SVID_EXT\nsubjectAltName=URI:spiffe://cluster.local"
leaf server-only 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=URI:spiffe://cluster.local/ns/t/sa/server-only'
# a CA of its own, with a leaf that would be a valid SVID of the mesh's trust domain
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$K/rogue-ca.key" -out "$K/rogue-ca.pem" \
    -days 1 -subj "/O=rogue" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/rogue.key" 2>/dev/null
openssl req -new -key "$K/rogue.key" -subj "/O=rogue" -out "$K/rogue.csr" 2>/dev/null
printf '%b\n' "$SVID_EXT\nsubjectAltName=URI:spiffe://cluster.local/ns/t/sa/rogue" >"$K/rogue.ext"
openssl x509 -req -in "$K/rogue.csr" -CA "$K/rogue-ca.pem" -CAkey "$K/rogue-ca.key" -days 1 -extfile "$K/rogue.ext" \
    -out "$K/rogue.pem" 2>/dev/null

# s_client OUT ARGS...: one TLS client in the pod (ALPN h2, as gRPC requires), its output in $K/OUT.out. It stays
# a second: in TLS 1.3 the server judges the client's certificate after the client has finished its handshake, so
# a refusal shows as the server closing the connection ("unexpected eof") while the client waits.
s_client() {
    local out=$1
    shift
    sleep 1 | rm_exec client timeout 10 openssl s_client -connect "$ADDR" -servername ringmesh-control -alpn h2 "$@" \
        >"$K/$out.out" 2>&1 || true
}

# refused_cert NAME: connects with certificate NAME and expects its tls_refused line, printed in RM_LINE
refused_cert() {
    s_client "$1" -tls1_3 -cert "$K/$1.pem" -key "$K/$1.key"
    grep -q "unexpected eof" "$K/$1.out" || rm_fail "the connection with certificate $1 stayed open: $(cat "$K/$1.out")"
    local filter='.event == "tls_refused" and (.spiffeId // "" | endswith("/sa/'"$1"'"))'
    rm_expect_log "$CLOG" "$filter" "certificate $1 is refused"
    check_peer
    rm_assert_eq "$(rm_log_count "$CLOG" "$filter")" 1 "lines for the refusal"
}

# check_peer: the line in RM_LINE names the pod as the peer
check_peer() {
    case $(rm_json "$RM_LINE" .peer) in
    "$PEER"[0-9]*) rm_log "ok: the peer is the pod (${RM_POD_IP[client]})" ;;
    *) rm_fail "the refusal does not name the pod ${RM_POD_IP[client]} as peer: $RM_LINE" ;;
    esac
}

# expect_field FIELD VALUE: RM_LINE's FIELD is VALUE
expect_field() {
    rm_assert_eq "$(rm_json "$RM_LINE" ".$1")" "$2" "$1"
}

case_tls12() {
    s_client tls12 -tls1_2
    grep -q "Cipher is (NONE)" "$K/tls12.out" || rm_fail "a TLS 1.2 handshake went through: $(cat "$K/tls12.out")"
    rm_expect_log "$CLOG" '.event == "tls_refused" and .cause == "tls_version"' "the refusal of TLS 1.2 is logged"
    check_peer
    rm_assert_eq "$(rm_log_count "$CLOG" '.event == "tls_refused"')" 1 "lines for the refusal"
    ! grep -qv '^{' "$CLOG" || rm_fail "a line of the control plane's stdout is not JSON: $(grep -v '^{' "$CLOG" | head -n 1)"
    ! grep -q "Handshake failed" "$RM_TMP/logs/control-main.log.stderr" ||
        rm_fail "gRPC's handshake failure text still goes to stderr"
    rm_log "ok: stdout holds JSON lines only, and stderr no handshake failure text"
}

case_no_shared_cipher() {
    s_client cipher -tls1_3 -ciphersuites TLS_AES_128_CCM_8_SHA256
    grep -q "Cipher is (NONE)" "$K/cipher.out" || rm_fail "a handshake went through: $(cat "$K/cipher.out")"
    rm_expect_log "$CLOG" '.event == "tls_refused" and .cause == "no_shared_cipher"' \
        "the refusal for no shared cipher suite is logged"
    check_peer
}

case_no_client_cert() {
    local py=$RM_TMP/py line
    mkdir -p "$py"
    protoc --proto_path="$RM_SOURCE_DIR/proto" --python_out="$py" ringmesh/v1/identity.proto ringmesh/v1/route.proto \
        ringmesh/v1/discovery.proto
    touch "$py/ringmesh/__init__.py" "$py/ringmesh/v1/__init__.py"
    line=$(rm_exec client "$PY" "$RM_SOURCE_DIR/tests/e2e/tools/grpc_interop.py" "$py" stream-nocert "$ADDR" \
        "$CA/trust-bundle.pem")
    rm_assert_eq "$(rm_json "$line" .code)" UNAUTHENTICATED "Discovery without a client certificate"
    rm_expect_log "$CLOG" '.event == "stream_refused" and (.reason | test("no SPIFFE ID"))' \
        "the refusal of Discovery without a client certificate is logged"
    check_peer
}

case_unknown_ca() {
    refused_cert rogue
    expect_field cause untrusted_certificate
    expect_field reason "X509-SVID chain does not verify to the trust bundle"
}

case_expired() {
    refused_cert expired
    expect_field cause certificate_expired
    expect_field spiffeId spiffe://cluster.local/ns/t/sa/expired
}

case_two_uris() {
    refused_cert two-uris
    expect_field cause svid_rule
    expect_field reason "X509-SVID leaf must have exactly one URI SAN"
}

case_ca_true() {
    refused_cert ca-true
    expect_field cause svid_rule
    expect_field reason "X509-SVID leaf must not be a CA (basicConstraints cA=true)"
}

case_other_trust_domain() {
    refused_cert other-td
    expect_field cause wrong_trust_domain
    expect_field spiffeId spiffe://evil.example/ns/t/sa/other-td
}

case_no_path() {
    s_client no-path -tls1_3 -cert "$K/no-path.pem" -key "$K/no-path.key"
    grep -q "unexpected eof" "$K/no-path.out" || rm_fail "the connection stayed open: $(cat "$K/no-path.out")"
    rm_expect_log "$CLOG" '.event == "tls_refused" and .spiffeId == "spiffe://cluster.local"' \
        "a SPIFFE ID with no path is refused"
    check_peer
    expect_field cause svid_rule
}

case_eku_without_client_auth() {
    refused_cert server-only
    expect_field cause svid_rule
}

case_valid() {
    local n
    n=$(rm_log_count "$CLOG" '.event == "tls_refused"')
    s_client good -tls1_3 -cert "$K/good.pem" -key "$K/good.key"
    grep -q "New, TLSv1.3" "$K/good.out" || rm_fail "no TLS 1.3 handshake with a valid SVID: $(cat "$K/good.out")"
    ! grep -q "unexpected eof" "$K/good.out" || rm_fail "the server closed the connection of a valid SVID"
    rm_assert_eq "$(rm_log_count "$CLOG" '.event == "tls_refused"')" "$n" "refusals after a valid SVID"
    rm_expect_no_log "$CLOG" '.spiffeId == "spiffe://cluster.local/ns/t/sa/good"' "the valid SVID is not refused"
}

rm_case "a TLS 1.2 client is refused and logged with its address" case_tls12
rm_case "a client with no cipher suite in common is refused and logged" case_no_shared_cipher
rm_case "Discovery without a client certificate is refused and logged" case_no_client_cert
rm_case "a certificate from an unknown CA is refused" case_unknown_ca
rm_case "an expired certificate is refused" case_expired
rm_case "a leaf with two URI SANs is refused" case_two_uris
rm_case "a CA:TRUE leaf is refused" case_ca_true
rm_case "a SPIFFE ID of another trust domain is refused" case_other_trust_domain
rm_case "a SPIFFE ID with no path is refused" case_no_path
rm_case "an extended key usage without clientAuth is refused" case_eku_without_client_auth
rm_case "a valid SVID from the mesh's CA is accepted" case_valid
rm_finish
