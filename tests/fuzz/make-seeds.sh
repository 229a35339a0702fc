#!/usr/bin/env bash
# Regenerates the hand-made seeds of the committed fuzz corpora: the files named seed-* in tests/fuzz/corpus/<target>/.
# The other corpus files are inputs libFuzzer found and scripts/fuzz.sh merged in; this script leaves them alone.
#
#   tests/fuzz/make-seeds.sh BUILD_DIR [TARGET...]
#
# With TARGETs, only their seeds are written (the other sections still run, but write nothing).
# BUILD_DIR is a configured and built tree (for ringmesh-init and libringmesh). Needs openssl, socat, gcc and, for
# the iptables-save seeds, root (they come from a network namespace this script makes and deletes).
#   tls_sniff      ClientHellos captured on loopback: openssl s_client with ALPN ringmesh/1, h2 and none, TLS 1.2
#                  and 1.3, and the proxy's own (wolfSSL) ClientHello; plaintext HTTP/1.1, HTTP/2, SSH; truncations
#   spiffe_id      valid IDs and one of each syntax error
#   http_path      request targets (dot segments, escapes, backslashes, slashes, %00, query, fragment, forms) under
#                  each of the four path normalization modes (the first byte)
#   x509_parse     DER certificates from tests/data/svid/make-test-certs.sh (SVIDs, CAs, each rule broken) + extras
#   svid_pem       bundle PEM, NUL, chain PEM, from the same certificates
#   proxy_config   tests/data/config/*.yaml and a few small documents
#   iptables_args  ringmesh-init command lines, arguments separated by NUL
#   iptables_save  `iptables-save -t nat` of a namespace before and after ringmesh-init, and hand-written tables
#   jwt            tests/data/jwt tokens and JWKS, JWKS with each key error, claims sets breaking each claim rule
#   csr            requests from rm_csr_make() and openssl (keys and signatures accepted and refused), PEM and DER
#   discovery      pushes the control plane builds from tests/data/source/ configurations (DiscoveryResponse and
#                  the resources in it), and messages written in protobuf text format (protoc --encode) that the
#                  proxy must refuse
#   mesh_config    each tests/data/source/ directory as one file, and a few small documents
#   admission_review  AdmissionReviews of pods shaped like real workloads (probes of each kind, a Job, init
#                  containers, host network, injected, invalid annotations) and malformed reviews
#   manifest_yaml  a manifest stream of every workload kind, and scalars that must keep their types
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [TARGET...]" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
shift
wanted=("$@")
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
corpus=$src/tests/fuzz/corpus
tmp=$(mktemp -d /tmp/ringmesh-fuzz-seeds.XXXXXX)
netns=""
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    if [ -n "$netns" ]; then
        ip netns delete "$netns" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# want TARGET: whether TARGET's seeds are to be written
want() {
    local t
    [ ${#wanted[@]} -eq 0 ] && return 0
    for t in "${wanted[@]}"; do
        [ "$t" = "$1" ] && return 0
    done
    return 1
}

# seed TARGET NAME: writes stdin to corpus/TARGET/seed-NAME
seed() {
    if ! want "$1"; then
        cat >/dev/null
        return 0
    fi
    mkdir -p "$corpus/$1"
    cat >"$corpus/$1/seed-$2"
}

# ---- tls_sniff ----------------------------------------------------------------------------------------------------

free_port() {
    local port i
    for i in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! ss -Hltn "sport = :$port" | grep -q .; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

# capture NAME OPENSSL_ARGS...: the first bytes openssl s_client sends to a loopback listener that never answers
capture_client_hello() {
    local name=$1 port spid i
    shift
    port=$(free_port)
    socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "CREATE:$tmp/ch-$name" &
    spid=$!
    pids+=("$spid")
    for i in $(seq 1 50); do
        ss -Hltn "sport = :$port" | grep -q . && break
        sleep 0.1
    done
    # s_client waits for a ServerHello that never comes; the timeout closes the connection, which ends socat
    timeout 2 openssl s_client -connect "127.0.0.1:$port" "$@" </dev/null >/dev/null 2>&1 || true
    for i in $(seq 1 30); do
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    [ -s "$tmp/ch-$name" ] || { echo "capture $name: nothing received" >&2; return 1; }
    seed tls_sniff "$name" <"$tmp/ch-$name"
}

capture_client_hello openssl-tls13-alpn-ringmesh -alpn ringmesh/1
capture_client_hello openssl-tls13-alpn-h2 -alpn h2,http/1.1
capture_client_hello openssl-tls13-no-alpn
capture_client_hello openssl-tls13-alpn-h2-then-ringmesh -alpn h2,ringmesh/1 -servername orders.shop.svc
capture_client_hello openssl-tls12-alpn-ringmesh -tls1_2 -alpn ringmesh/1
capture_client_hello openssl-tls12-no-alpn -tls1_2 -no_ticket

# The proxy's own ClientHello: wolfSSL through the rm_tls API, with a test SVID.
bash "$src/tests/data/svid/make-test-certs.sh" "$tmp/certs" >/dev/null
cat >"$tmp/wolfssl_hello.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include "ringmesh/tls.h"
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}
int main(int argc, char **argv)
{
    static const char *const ids[] = {"spiffe://example.org/ns/shop/sa/orders"};
    rm_tls_ctx_config_t cfg = {.trust_domain = "example.org"};
    rm_tls_ctx_t *ctx;
    rm_tls_t *tls;
    const uint8_t *p;
    size_t len;
    char err[256];
    cfg.cert_pem = slurp(argv[1], &cfg.cert_len);
    cfg.key_pem = slurp(argv[2], &cfg.key_len);
    cfg.bundle_pem = slurp(argv[3], &cfg.bundle_len);
    if (rm_tls_global_init() != 0 || rm_tls_ctx_new(&ctx, RM_TLS_CLIENT, &cfg, err, sizeof(err)) != 0 ||
        rm_tls_new(&tls, ctx, ids, 1, 0) != 0) {
        fprintf(stderr, "wolfssl_hello: %s\n", err);
        return 1;
    }
    rm_tls_handshake(tls);
    rm_tls_out_data(tls, &p, &len);
    fwrite(p, 1, len, stdout);
    return len != 0 ? 0 : 1;
}
EOF
if grep -q '^RINGMESH_SYSTEM_WOLFSSL:BOOL=ON' "$build/CMakeCache.txt"; then
    wolfssl_libs=$(pkg-config --libs wolfssl)
else
    prefix=$(sed -n 's/^RINGMESH_WOLFSSL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
    wolfssl_libs="$prefix/lib/libwolfssl.a -lm"
fi
# shellcheck disable=SC2046,SC2086  # pkg-config output and the library list are meant to split into words
if gcc -o "$tmp/wolfssl_hello" -I"$src/lib/include" "$tmp/wolfssl_hello.c" "$build/lib/libringmesh.a" \
    $(pkg-config --libs libcyaml) $wolfssl_libs -lpthread &&
    "$tmp/wolfssl_hello" "$tmp/certs/leaf.pem" "$tmp/certs/.ca/leaf.key" "$tmp/certs/bundle.pem" >"$tmp/ch-wolfssl"; then
    seed tls_sniff wolfssl-mesh-client <"$tmp/ch-wolfssl"
    head -c 5 "$tmp/ch-wolfssl" | seed tls_sniff truncated-record-header
    head -c 120 "$tmp/ch-wolfssl" | seed tls_sniff truncated-mesh-client
else
    echo "make-seeds: the proxy's own ClientHello could not be made (rm_tls API changed?); kept the old seeds" >&2
fi

printf 'GET /healthz HTTP/1.1\r\nHost: orders.shop.svc\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n' |
    seed tls_sniff http11-get
printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\x00\x04\x40\x00\x00\x00\x00\x02\x00\x00\x00\x00' |
    seed tls_sniff http2-preface
printf 'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n' | seed tls_sniff ssh-banner
# a TLS alert record where a ClientHello belongs
printf '\x15\x03\x03\x00\x02\x02\x28' | seed tls_sniff tls-alert-record

# ---- spiffe_id ----------------------------------------------------------------------------------------------------

i=0
while IFS= read -r id; do
    printf '%s' "$id" | seed spiffe_id "$(printf '%02d' $i)"
    i=$((i + 1))
done <<'EOF'
spiffe://cluster.local/ns/shop/sa/orders
spiffe://example.org
spiffe://a.b-c_d.0/Path.With-All_Chars/x
spiffe://example.org/ns/../sa/orders
spiffe://example.org/ns/./sa
spiffe://example.org/ns//sa
spiffe://example.org/ns/shop/
spiffe://Example.org/ns
spiffe://user@example.org/ns
spiffe://example.org:8443/ns
spiffe://example.org/ns?query=1
spiffe://example.org/ns#frag
spiffe://example.org/ns%20x
SPIFFE://example.org/ns
https://example.org/ns
spiffe:///ns/shop
spiffe://
EOF
printf 'spiffe://%0255d/sa' 0 | tr 0 a | seed spiffe_id td-255
printf 'spiffe://%0256d/sa' 0 | tr 0 a | seed spiffe_id td-256
{ printf 'spiffe://example.org/'; printf '%02027d' 0 | tr 0 p; } | seed spiffe_id id-2048
{ printf 'spiffe://example.org/'; printf '%02028d' 0 | tr 0 p; } | seed spiffe_id id-2049

# ---- http_path ----------------------------------------------------------------------------------------------------

i=0
for mode in 0 1 2 3; do
    while IFS= read -r target; do
        i=$((i + 1))
        { printf '%b' "\\x0$mode"; printf '%s' "$target"; } | seed http_path "$(printf '%02d' $i)"
    done <<'EOF'
/admin/../ok
/admin/%2e%2e/ok
/admin\..\ok
/a//b/./c/..?q=/../x#f
/%%34%31dmin
/ok%00
http://h/a/%2F..%5c/b?x
*
host:443
/%252e%252e/
//
/..

EOF
done

# ---- x509_parse and svid_pem --------------------------------------------------------------------------------------

for der in "$tmp/certs"/*.der; do
    # shellcheck disable=SC2094  # basename only reads the name
    seed x509_parse "$(basename "$der" .der)" <"$der"
done
# extras: an RSA root, a version 1 certificate (no extensions), a URI SAN longer than a SPIFFE ID may be, GeneralizedTime
(
    cd "$tmp"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -subj /CN=rsa-root -days 30 \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -outform DER -out rsa.der \
        2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key 2>/dev/null
    openssl req -new -key ec.key -subj /CN=v1 -out v1.csr
    openssl x509 -req -in v1.csr -signkey ec.key -days 1 -outform DER -out v1.der 2>/dev/null
    long_uri="URI:spiffe://example.org/$(printf '%02100d' 0 | tr 0 l)"
    openssl req -x509 -key ec.key -subj /CN=long-uri -days 1 -addext "subjectAltName=$long_uri" \
        -addext keyUsage=critical,digitalSignature -outform DER -out long-uri.der
    openssl req -x509 -key ec.key -subj /CN=year-2055 -days 11000 -addext "subjectAltName=URI:spiffe://example.org/x" \
        -addext keyUsage=critical,digitalSignature -outform DER -out generalized-time.der
)
for extra in rsa v1 long-uri generalized-time; do
    seed x509_parse "extra-$extra" <"$tmp/$extra.der"
done

# pem_pair NAME BUNDLE CHAIN: the bundle's PEM, a NUL, the chain's PEM
pem_pair() {
    { cat "$tmp/certs/$2.pem"; printf '\0'; cat "$tmp/certs/$3.pem"; } | seed svid_pem "$1"
}
pem_pair valid-leaf bundle leaf
pem_pair valid-via-intermediate root leaf-inter
pem_pair intermediate-missing root leaf-inter-missing
pem_pair untrusted bundle leaf-untrusted
pem_pair leaf-is-ca bundle leaf-ca
pem_pair two-uris bundle leaf-two-uris
pem_pair under-not-ca root leaf-under-not-ca
pem_pair under-expired-root root-expired leaf-under-expired-root
pem_pair under-expired-intermediate root leaf-under-expired
pem_pair bundle-not-ca leaf leaf
seed svid_pem no-separator <"$tmp/certs/root.pem"

# ---- proxy_config -------------------------------------------------------------------------------------------------

for yaml in "$src"/tests/data/config/*.yaml; do
    # shellcheck disable=SC2094  # basename only reads the name
    seed proxy_config "$(basename "$yaml" .yaml)" <"$yaml"
done
printf '' | seed proxy_config empty
printf '{}\n' | seed proxy_config empty-mapping
cat <<'EOF' | seed proxy_config traffic
inbound: {enabled: false}
outbound: {enabled: false}
traffic:
  requestBalancing: true
  retryBudget: {ratio: 0.25, minRetriesPerSecond: 5, window: 10s}
  retry: {attempts: 3, codes: [502, 503], grpcStatuses: [unavailable, 4], backoff: 25ms, maxBackoff: 250ms}
  outlierDetection: {consecutive5xxErrors: 5, baseEjectionTime: 30s, maxEjectionTime: 5m, maxEjectionPercent: 10}
  circuitBreaker: {maxConnections: 100, maxRequests: 100, perEndpoint: {maxPendingRequests: 10}}
  requestTimeout: 15s
  idleTimeout: 5m
EOF
printf -- '- a\n- b\n' | seed proxy_config top-level-list
printf 'tls: &t\n  certFile: a\n  keyFile: b\n  bundleFile: c\nadmin: *t\n' | seed proxy_config alias
cat <<'EOF' | seed proxy_config flow-style
{trustDomain: example.org, tls: {certFile: c.pem, keyFile: k.pem, bundleFile: b.pem}, outbound: {enabled: false},
 inbound: {listen: "[::1]:15006", mode: PERMISSIVE, portModes: [{port: 80, mode: DISABLE}]},
 destinations: [{address: "[2001:db8::1]:443", identities: [spiffe://example.org/ns/a/sa/b]}],
 workers: "2", connectTimeout: 1m30s, idleTimeout: 0}
EOF
cat <<'EOF' | seed proxy_config no-mtls-paths
outbound: {enabled: false}
inbound: {enabled: true, mode: DISABLE}
admin: {listen: "[::1]:15021"}
EOF

# ---- iptables_args ------------------------------------------------------------------------------------------------

# args NAME ARG...: the arguments separated by NUL
args() {
    local name=$1
    shift
    printf '%s\0' "$@" | seed iptables_args "$name"
}
args defaults
args every-flag --outbound-port 15001 --inbound-port=15006 --proxy-uid 1337 --proxy-gid=1337 \
    --exclude-outbound-ports 22,5432 --exclude-outbound-cidrs '198.18.5.0/24, 2001:db8::/32,10.1.2.3' \
    --include-outbound-cidrs '*' --exclude-inbound-ports=15020 --include-inbound-ports 80,443 --ipv6 on \
    --log-level debug --dry-run
args cleanup --cleanup --ipv6=off
args include-none --include-outbound-cidrs= --include-inbound-ports ''
args host-bits --exclude-outbound-cidrs 198.18.5.77/24,2001:db8::1/33
args same-ports --outbound-port 15001 --inbound-port 15001
args bad-port --outbound-port 65536
args bad-cidr --exclude-outbound-cidrs 198.18.0.0/33
args star-not-allowed --exclude-outbound-ports '*'
args empty-entry --exclude-inbound-ports 1,,2
args missing-value --proxy-uid
args value-on-switch --dry-run=yes
args unknown -x --help
args uid-max --proxy-uid 4294967295

# ---- iptables_save ------------------------------------------------------------------------------------------------

if [ "$(id -u)" -eq 0 ] && command -v iptables-save >/dev/null; then
    netns=rm-fuzz-seeds-$$
    ip netns add "$netns"
    ip netns exec "$netns" iptables-save -t nat | seed iptables_save netns-empty
    ip netns exec "$netns" "$build/sidecar/ringmesh-init" --ipv6 off --exclude-outbound-cidrs 198.18.9.0/24 \
        --exclude-inbound-ports 22 >/dev/null
    ip netns exec "$netns" iptables -t nat -A OUTPUT -p tcp -j RINGMESH_OUTPUT
    ip netns exec "$netns" iptables -t nat -A OUTPUT -d 198.18.1.1/32 -p tcp -m comment --comment "a \"quoted\" note" \
        -j RINGMESH_REDIRECT
    ip netns exec "$netns" iptables-save | seed iptables_save netns-after-init-with-extra-jumps
    ip netns exec "$netns" "$build/sidecar/ringmesh-init" --cleanup --ipv6 off >/dev/null
    ip netns exec "$netns" iptables-save -t nat | seed iptables_save netns-after-cleanup
    ip netns delete "$netns"
    netns=""
else
    echo "make-seeds: not root or no iptables-save: iptables_save seeds from a namespace skipped" >&2
fi
"$build/sidecar/ringmesh-init" --dry-run --ipv6 on 2>/dev/null | seed iptables_save dry-run-output
cat <<'EOF' | seed iptables_save kube-proxy-like
# Generated by iptables-save v1.8.9 (nf_tables) on Mon Jan  1 00:00:00 2024
*filter
:INPUT ACCEPT [0:0]
-A INPUT -j RINGMESH_OUTPUT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:RINGMESH_OUTPUT - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -p tcp -j RINGMESH_INBOUND
-A PREROUTING -p tcp -j RINGMESH_INBOUND
-A OUTPUT -p tcp -g RINGMESH_OUTPUT
-A OUTPUT   -p tcp   -j RINGMESH_OUTPUT   
-A KUBE-SERVICES -d 198.18.0.10/32 -p tcp -m comment --comment "shop/orders:http \"cluster IP\"" -j KUBE-SVC-X
COMMIT
# Completed on Mon Jan  1 00:00:00 2024
EOF
printf '*nat\r\n:RINGMESH_X - [0:0]\r\n-A OUTPUT -j RINGMESH_X\r\nCOMMIT\r\n' | seed iptables_save crlf
printf '*nat\n-A OUTPUT -m comment --comment "unterminated -j RINGMESH_OUTPUT\n' | seed iptables_save unterminated-quote

# ---- jwt ----------------------------------------------------------------------------------------------------------

jwt_data=$src/tests/data/jwt

# b64url: stdin as unpadded base64url
b64url() {
    base64 -w 0 | tr '+/' '-_' | tr -d '='
}

for f in "$jwt_data"/*.jwt; do
    # shellcheck disable=SC2094  # basename only reads the name
    seed jwt "token-$(basename "$f" .jwt)" <"$f"
done
es_payload=$(cut -d. -f2 "$jwt_data/es256.jwt")
es_sig=$(cut -d. -f3 "$jwt_data/es256.jwt")
rs_payload=$(cut -d. -f2 "$jwt_data/rs256.jwt")
rs_sig=$(cut -d. -f3 "$jwt_data/rs256.jwt")
# token NAME HEADER_JSON PAYLOAD SIGNATURE: a token with another header
token() {
    printf '%s.%s.%s' "$(printf '%s' "$2" | b64url)" "$3" "$4" | seed jwt "token-$1"
}
token kid-unknown '{"alg":"ES256","kid":"nope"}' "$es_payload" "$es_sig"
token kid-not-string '{"alg":"ES256","kid":7}' "$es_payload" "$es_sig"
token rsa-kid-with-es256 '{"alg":"ES256","kid":"py-rsa"}' "$rs_payload" "$rs_sig"
token es256-signature-cut '{"alg":"ES256","kid":"py-ec","typ":"JWT"}' "$es_payload" "${es_sig:0:40}"
printf '' | seed jwt token-empty
printf '..' | seed jwt token-empty-parts
printf 'eyJhbGciOiJFUzI1NiJ9.e30.AA.AA' | seed jwt token-four-parts
printf 'eyJhbGciOiJFUzI1NiJ9=.e30.AA' | seed jwt token-padded

seed jwt jwks <"$jwt_data/jwks.json"
seed jwt jwks-rsa <"$jwt_data/jwks-rsa.json"
if "$build/ctl/ringmeshctl" token keygen --key "$tmp/jwt-key.pem" --jwks "$tmp/jwks-kid.json" --kid k1 >/dev/null &&
    "$build/ctl/ringmeshctl" token keygen --key "$tmp/jwt-key2.pem" --jwks "$tmp/jwks-thumbprint.json" >/dev/null; then
    seed jwt jwks-keygen-kid <"$tmp/jwks-kid.json"
    seed jwt jwks-keygen-thumbprint <"$tmp/jwks-thumbprint.json"
fi
ec_x=Op4E_Muzjwz-4HvFMckSbNjaYvCKqPxaK90e-efaFTY
ec_y=Vpk3_SRnmYC5sT9Kp7m1yqKEQTyHVt5qLeF29d3syK8
# jwks NAME KEY_JSON...: a JWKS document holding the given keys
jwks() {
    local name=$1
    shift
    local IFS=,
    printf '{"keys":[%s]}' "$*" | seed jwt "jwks-$name"
}
jwks empty
jwks ec-no-kid "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"$ec_x\",\"y\":\"$ec_y\"}"
jwks ec-off-curve "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"$ec_y\",\"y\":\"$ec_x\",\"kid\":\"py-ec\"}"
jwks ec-short-x "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"${ec_x:0:40}\",\"y\":\"$ec_y\"}"
jwks ec-padded-x "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"$ec_x=\",\"y\":\"$ec_y\"}"
jwks ec-no-crv "{\"kty\":\"EC\",\"x\":\"$ec_x\",\"y\":\"$ec_y\"}"
jwks ec-alg-es384 "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES384\",\"x\":\"$ec_x\",\"y\":\"$ec_y\"}"
jwks ec-key-ops-sign "{\"kty\":\"EC\",\"crv\":\"P-256\",\"key_ops\":[\"sign\"],\"x\":\"$ec_x\",\"y\":\"$ec_y\"}"
jwks ec-kid-256 "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"$ec_x\",\"y\":\"$ec_y\",\"kid\":\"$(printf '%0256d' 0)\"}"
jwks rsa-even-exponent '{"kty":"RSA","n":"x0ASW13gzyRkjSfg12tbNdzWL3t0EZvqvKIWWgxmtvGLZ8jb7VEa1Cp48SfHsaprZQ2PZMbk47loYmqJPPiJwoAZrBeVrepWpRqd7hHG4XckjbFICrRfLsEi_qCzzhT6y9W0xdOVvthNuyZlMPjtiTOmetWJUXAdc8PrGOTiBPi8ZuVWiGnlpjDq69aCewkqMKohEGovx0MiiZabpC6Rdqai-v7aENjZkdZSGDRPEnbB5Qn6BFFHIzOxaKnk4sI0F-wtYLC4N9ChaNYW-jJfpiM880HCR6DADqip0P1pQceGxPp-yDmiVuwHo80t3TexB3LaWlCeTDon4p1CaUiBCQ","e":"AQAC"}'
jwks rsa-leading-zeros '{"kty":"RSA","n":"AAAAx0ASW13gzyRkjSfg12tbNdzWL3t0EZvqvKIWWgxmtvGLZ8jb7VEa1Cp48SfHsaprZQ2PZMbk47loYmqJPPiJwoAZrBeVrepWpRqd7hHG4XckjbFICrRfLsEi_qCzzhT6y9W0xdOVvthNuyZlMPjtiTOmetWJUXAdc8PrGOTiBPi8ZuVWiGnlpjDq69aCewkqMKohEGovx0MiiZabpC6Rdqai-v7aENjZkdZSGDRPEnbB5Qn6BFFHIzOxaKnk4sI0F-wtYLC4N9ChaNYW-jJfpiM880HCR6DADqip0P1pQceGxPp-yDmiVuwHo80t3TexB3LaWlCeTDon4p1CaUiBCQ","e":"AAEAAQ","kid":"py-rsa"}'
jwks rsa-1024 '{"kty":"RSA","n":"6_CzLSymANArPQw3O_7Pv6jTIvVgLV7czT3JGm9Mqq58VzqAwNzxst7xtD2UZxsb96Tqne_lxvGClhpjiPPMDPQcD53kmvBfrZ3c-QFQC2T6yiZ8D4-z_A83I0Owd1sCtSa4Rlil7aI55ppgazspzXoCyLdBmz-2T-MGleJbGQ0","e":"AQAB"}'
jwks oct-only '{"kty":"oct","k":"cibo4hY2NNt8Dl9qhuhpcH8Jn9TvADeQBOYADvfUszo"}'
jwks not-object '"EC"'
printf '{"keys":{}}' | seed jwt jwks-keys-not-array
printf '{"keys":[],"keys":[]}' | seed jwt jwks-duplicate-member

# claims NAME JSON: a claims set, which the target signs with the "py-ec" key before verifying it
claims() {
    printf '%s' "$2" | seed jwt "claims-$1"
}
aud='"aud":["ringmesh"]'
times='"exp":1800003600,"iat":1799999940,"nbf":1799999940'
iss='"iss":"https://kubernetes.default.svc.cluster.local"'
sub='"sub":"system:serviceaccount:shop:orders"'
sa='"serviceaccount":{"name":"orders","uid":"5f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"}'
pod='"pod":{"name":"orders-7d9f8b6c5-x2x9k","uid":"0c9a3b2e-5d1f-4a7e-9b8c-2f6d4e1a7c30"}'
k8s="\"kubernetes.io\":{\"namespace\":\"shop\",$sa,$pod}"
claims valid "{$aud,$times,$iss,$sub,$k8s}"
claims no-pod "{$aud,$times,$iss,$sub,\"kubernetes.io\":{\"namespace\":\"shop\",$sa}}"
claims aud-string "{\"aud\":\"ringmesh\",$times,$iss,$sub,$k8s}"
claims aud-other "{\"aud\":[\"api\",\"vault\"],$times,$iss,$sub,$k8s}"
claims aud-not-string "{\"aud\":[\"ringmesh\",7],$times,$iss,$sub,$k8s}"
claims aud-missing "{$times,$iss,$sub,$k8s}"
claims exp-missing "{$aud,\"iat\":1799999940,$iss,$sub,$k8s}"
claims exp-past "{$aud,\"exp\":1799999900,$iss,$sub,$k8s}"
claims exp-real "{$aud,\"exp\":1800000059.5,\"nbf\":1800000060.25,$iss,$sub,$k8s}"
claims exp-huge "{$aud,\"exp\":1e300,\"iat\":-1e300,$iss,$sub,$k8s}"
claims exp-string "{$aud,\"exp\":\"1800003600\",$iss,$sub,$k8s}"
claims nbf-future "{$aud,\"exp\":1800003600,\"nbf\":1800000600,$iss,$sub,$k8s}"
claims iat-future "{$aud,\"exp\":1800003600,\"iat\":1800000600,$iss,$sub,$k8s}"
claims iss-other "{$aud,$times,\"iss\":\"https://accounts.example.com\",$sub,$k8s}"
claims iss-not-string "{$aud,$times,\"iss\":null,$sub,$k8s}"
claims iss-missing "{$aud,$times,$sub,$k8s}"
claims k8s-missing "{$aud,$times,$iss,$sub}"
claims namespace-upper "{$aud,$times,$iss,\"sub\":\"system:serviceaccount:Shop:orders\",\"kubernetes.io\":{\"namespace\":\"Shop\",$sa}}"
claims sa-subdomain "{$aud,$times,$iss,\"sub\":\"system:serviceaccount:shop:orders.v2\",\"kubernetes.io\":{\"namespace\":\"shop\",\"serviceaccount\":{\"name\":\"orders.v2\"}}}"
claims sa-bad "{$aud,$times,$iss,\"sub\":\"system:serviceaccount:shop:-orders\",\"kubernetes.io\":{\"namespace\":\"shop\",\"serviceaccount\":{\"name\":\"-orders\"}}}"
claims sa-not-object "{$aud,$times,$iss,$sub,\"kubernetes.io\":{\"namespace\":\"shop\",\"serviceaccount\":\"orders\"}}"
claims pod-no-uid "{$aud,$times,$iss,$sub,\"kubernetes.io\":{\"namespace\":\"shop\",$sa,\"pod\":{\"name\":\"orders-1\"}}}"
claims pod-uid-64 "{$aud,$times,$iss,$sub,\"kubernetes.io\":{\"namespace\":\"shop\",$sa,\"pod\":{\"name\":\"orders-1\",\"uid\":\"$(printf '%064d' 0)\"}}}"
claims sub-other-sa "{$aud,$times,$iss,\"sub\":\"system:serviceaccount:shop:cart\",$k8s}"
claims sub-namespace-prefix "{$aud,$times,$iss,\"sub\":\"system:serviceaccount:sh:op:orders\",$k8s}"
claims sub-missing "{$aud,$times,$iss,$k8s}"

# ---- csr ----------------------------------------------------------------------------------------------------------

# The seed helper: rm_csr_make() requests and the control plane's Discovery pushes (below), through the libraries of
# BUILD_DIR.
cat >"$tmp/seed_helper.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "discovery_state.h"
#include "ringmesh/csr.h"
#include "ringmesh/v1/discovery.pb-c.h"
#include "source.h"
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}
static void put(const char *dir, const char *kind, int type, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s-%s", dir, kind, rm_xds_type_name(type));
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}
/* seed_helper csr KEY.pem [SPIFFE_ID]: the request on stdout
 * seed_helper pushes CONFIG_DIR BUNDLE.pem OUT_DIR: OUT_DIR/response-<type>, OUT_DIR/resource-<type> */
int main(int argc, char **argv)
{
    char err[1024] = "", *text;
    size_t len;
    if (argc >= 3 && strcmp(argv[1], "csr") == 0) {
        char *key = slurp(argv[2], &len);
        if (rm_csr_make(key, len, argc > 3 ? argv[3] : NULL, &text, &len) != 0)
            return 1;
        fwrite(text, 1, len, stdout);
        return 0;
    }
    rm_mesh_model_t *m;
    rm_xds_push_set_t *set;
    text = slurp(argv[3], &len);
    if (rm_mesh_model_load_dir(argv[2], &m, err, sizeof(err)) != 0 || rm_xds_push_set_build(m, text, 1, &set) != 0) {
        fprintf(stderr, "seed_helper: %s\n", err);
        return 1;
    }
    /* the per-workload type is built for one workload: namespace "shop", label app=orders */
    rm_label_t label = {.key = "app", .value = "orders"};
    rm_xds_workload_t w = {.workload = {.namespace_ = "shop", .labels = &label, .num_labels = 1},
                           .key = "shop\napp=orders\n"};
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++) {
        const rm_xds_push_t *p = set->types[t].response != NULL ? &set->types[t] : rm_xds_push_get(set, t, &w);
        if (p == NULL || p->response == NULL) {
            fprintf(stderr, "seed_helper: no push of type %d\n", t);
            return 1;
        }
        Ringmesh__V1__DiscoveryResponse *r = ringmesh__v1__discovery_response__unpack(NULL, p->response_len, p->response);
        if (r == NULL || r->n_resources == 0) {
            fprintf(stderr, "seed_helper: the push of type %d does not decode\n", t);
            return 1;
        }
        put(argv[4], "response", t, p->response, p->response_len);
        put(argv[4], "resource", t, r->resources[0]->value.data, r->resources[0]->value.len);
    }
    return 0;
}
EOF
# shellcheck disable=SC2046,SC2086  # pkg-config output and the library list are meant to split into words
gcc -o "$tmp/seed_helper" -I"$src/lib/include" -I"$src/control" -I"$build/proto" "$tmp/seed_helper.c" \
    "$build/control/libringmesh_control_core.a" "$build/lib/libringmesh.a" "$build/proto/libringmesh_proto.a" \
    $(pkg-config --libs libprotobuf-c yaml-0.1 libcyaml jansson) $wolfssl_libs -lpthread

(
    cd "$tmp"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.key 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:explicit \
        -out p256-explicit.key 2>/dev/null
    openssl ec -in p256.key -conv_form compressed -out p256-compressed.key 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key 2>/dev/null
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
    openssl genpkey -algorithm ED25519 -out ed25519.key 2>/dev/null
)
# csr NAME KEY PEM|DER [openssl req options...]: a request openssl makes for KEY
csr() {
    local name=$1 key=$2 form=$3
    shift 3
    openssl req -new -key "$tmp/$key.key" -subj /O=ringmesh-test -outform "$form" -out "$tmp/$name.csr" "$@" 2>/dev/null
    seed csr "$name" <"$tmp/$name.csr"
}
uri=URI:spiffe://cluster.local/ns/shop/sa/orders
csr p256-sha256-pem p256 PEM -sha256 -addext "subjectAltName=$uri"
csr p256-sha256-der p256 DER -sha256 -addext "subjectAltName=$uri"
csr p256-sha384-der p256 DER -sha384
csr p256-sha512-pem p256 PEM -sha512
csr p256-sha1-pem p256 PEM -sha1
csr p256-explicit-der p256-explicit DER
csr p256-compressed-der p256-compressed DER
csr p384-der p384 DER
csr rsa-der rsa DER
csr ed25519-der ed25519 DER
csr p256-extensions-der p256 DER -addext "subjectAltName=$uri,DNS:orders.shop.svc,IP:198.18.0.1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
csr p256-extensions-pem p256 PEM -addext "subjectAltName=$uri,email:ops@example.org" \
    -addext extendedKeyUsage=clientAuth,serverAuth
openssl req -new -key "$tmp/p256.key" -subj "/C=DE/O=ringmesh test/OU=a+CN=b/emailAddress=x@example.org" \
    -outform DER -out "$tmp/p256-subject.csr" 2>/dev/null
seed csr p256-long-subject-der <"$tmp/p256-subject.csr"
# a challengePassword attribute (openssl reads it from a config file's req_attributes)
printf '[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nO=ringmesh-test\n[attrs]\nchallengePassword=secret1\n' \
    >"$tmp/attrs.cnf"
openssl req -new -key "$tmp/p256.key" -config "$tmp/attrs.cnf" -outform DER -out "$tmp/p256-attrs.csr" 2>/dev/null
seed csr p256-attribute-der <"$tmp/p256-attrs.csr"
# the signature's last byte changed (inside s)
{ head -c -1 "$tmp/p256-sha256-der.csr"; tail -c 1 "$tmp/p256-sha256-der.csr" | tr '\000-\377' '\001-\377\000'; } |
    seed csr p256-bad-signature-der
head -c 100 "$tmp/p256-sha256-der.csr" | seed csr p256-truncated-der
sed 's/CERTIFICATE REQUEST/NEW CERTIFICATE REQUEST/' "$tmp/p256-sha256-pem.csr" | seed csr p256-new-header-pem
sed 's/$/\r/' "$tmp/p256-sha256-pem.csr" | seed csr p256-crlf-pem
openssl req -in "$tmp/p256-sha256-pem.csr" -text 2>/dev/null | seed csr p256-with-text-pem
head -n 4 "$tmp/p256-sha256-pem.csr" | seed csr p256-truncated-pem
printf '' | seed csr empty
if "$tmp/seed_helper" csr "$tmp/p256.key" spiffe://cluster.local/ns/shop/sa/orders >"$tmp/rm-id.csr" &&
    "$tmp/seed_helper" csr "$tmp/p256.key" >"$tmp/rm-no-id.csr"; then
    seed csr ringmesh-with-id-pem <"$tmp/rm-id.csr"
    seed csr ringmesh-no-id-pem <"$tmp/rm-no-id.csr"
    # shellcheck disable=SC2094  # two different files
    openssl req -in "$tmp/rm-id.csr" -outform DER 2>/dev/null | seed csr ringmesh-with-id-der
fi

# ---- discovery ----------------------------------------------------------------------------------------------------

# pushes NAME CONFIG_DIR [TYPE...]: the control plane's pushes for CONFIG_DIR, with the test bundle; the responses and
# the resources in them (TYPE: trust_bundle, destinations, mesh_settings; default all three)
pushes() {
    local name=$1 dir=$2 t types
    shift 2
    types=("$@")
    [ ${#types[@]} -ne 0 ] || types=(trust_bundle destinations mesh_settings)
    mkdir -p "$tmp/push-$name"
    "$tmp/seed_helper" pushes "$dir" "$tmp/certs/bundle.pem" "$tmp/push-$name"
    for t in "${types[@]}"; do
        seed discovery "$name-response-$t" <"$tmp/push-$name/response-$t"
        seed discovery "$name-$t" <"$tmp/push-$name/resource-$t"
    done
}
mkdir -p "$tmp/mesh-cluster-local"
{
    cat <<'EOF'
apiVersion: ringmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec: {mtls: {mode: DISABLE}, connectTimeout: 2s, idleTimeout: 1h, accessLog: false, svidTTL: 1h}
---
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: db, namespace: data}
spec:
  addresses: ["2001:db8::5", 198.18.7.7, "::ffff:198.18.7.8"]
  ports: [5432, 6432]
  serviceAccounts: [postgres]
---
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: legacy}
spec: {addresses: [198.18.9.9], ports: [23], inMesh: false}
---
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: many, namespace: shop}
spec:
  addresses: [198.18.8.1]
  ports: [443]
  serviceAccounts: [a, b, c, d, e, f, g, h]
  identities:
EOF
    for i in $(seq 1 8); do
        echo "    - spiffe://cluster.local/ns/shop/sa/x$i"
    done
} >"$tmp/mesh-cluster-local/mesh.yaml"
# 17 identities: the control plane takes them, the proxy refuses more than 16
mkdir -p "$tmp/mesh-17-ids"
sed 's/x8$/x8\n    - spiffe:\/\/cluster.local\/ns\/shop\/sa\/x9/' "$tmp/mesh-cluster-local/mesh.yaml" \
    >"$tmp/mesh-17-ids/mesh.yaml"
pushes valid "$src/tests/data/source/valid"
pushes no-meshconfig "$src/tests/data/source/no-meshconfig" destinations mesh_settings
pushes cluster-local "$tmp/mesh-cluster-local" destinations mesh_settings
pushes 17-identities "$tmp/mesh-17-ids" destinations

# encode NAME MESSAGE: a ringmesh.v1 MESSAGE written in protobuf text format on stdin
encode() {
    protoc --encode="ringmesh.v1.$2" -I"$src/proto" ringmesh/v1/discovery.proto | seed discovery "$1"
}
encode dests-in-mesh-no-identity DestinationMap <<'EOF'
destinations { name: "shop/orders" addresses: "198.19.0.10:8080" in_mesh: true }
EOF
encode dests-address-hostname DestinationMap <<'EOF'
destinations { name: "shop/orders" addresses: "orders.shop:8080" in_mesh: true
               identities: "spiffe://cluster.local/ns/shop/sa/orders" }
EOF
encode dests-address-no-port DestinationMap <<'EOF'
destinations { name: "shop/orders" addresses: "198.19.0.10" in_mesh: true
               identities: "spiffe://cluster.local/ns/shop/sa/orders" }
EOF
encode dests-foreign-identity DestinationMap <<'EOF'
destinations { name: "shop/orders" addresses: "[2001:db8::10]:8080" in_mesh: true
               identities: "spiffe://other.domain/ns/shop/sa/orders" }
EOF
encode dests-identity-not-spiffe DestinationMap <<'EOF'
destinations { name: "shop/orders" addresses: "198.19.0.10:8080" in_mesh: true
               identities: "https://cluster.local/ns/shop/sa/orders" }
EOF
encode dests-repeated-address DestinationMap <<'EOF'
destinations { name: "a/one" addresses: "198.19.0.10:80" addresses: "[::1]:80" in_mesh: true
               identities: "spiffe://cluster.local/ns/a/sa/one" }
destinations { name: "b/two" addresses: "198.19.0.10:80" in_mesh: true
               identities: "spiffe://cluster.local/ns/b/sa/two" identities: "spiffe://cluster.local/x" }
destinations { name: "c/out" addresses: "not an address" }
EOF
encode response-unknown-type DiscoveryResponse <<'EOF'
version_info: "1" type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster" nonce: "n-1"
resources { name: "x" value: "\n\003abc" }
EOF
encode response-two-resources DiscoveryResponse <<'EOF'
version_info: "2" type_url: "type.ringmesh.io/ringmesh.v1.MeshSettings" nonce: "mesh_settings-2"
resources { name: "mesh" value: "\n\rcluster.local" } resources { name: "mesh" }
EOF
encode response-no-resources DiscoveryResponse <<'EOF'
version_info: "3" type_url: "type.ringmesh.io/ringmesh.v1.TrustBundle" nonce: "trust_bundle-3"
EOF
encode response-bad-destinations DiscoveryResponse <<'EOF'
version_info: "4" type_url: "type.ringmesh.io/ringmesh.v1.DestinationMap" nonce: "destinations-4"
resources { name: "destinations" value: "\n\377\377\377\377\017" }
EOF
encode bundle-garbage-roots TrustBundle <<'EOF'
trust_domain: "cluster.local" roots_pem: "not a certificate" roots_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
EOF
encode bundle-no-roots TrustBundle <<'EOF'
trust_domain: "other.domain"
EOF
encode settings-port-modes MeshSettings <<'EOF'
trust_domain: "cluster.local" inbound_mode: PERMISSIVE access_log: true svid_ttl_seconds: -1
port_modes { port: 8080 mode: DISABLE } port_modes { port: 70000 mode: STRICT } connect_timeout_ms: 4294967295
EOF
encode workloads-map WorkloadMap <<'EOF'
self { name: "orders" namespace: "shop" app: "orders" version: "v2" principal: "spiffe://cluster.local/ns/shop/sa/orders"
       access_log: ACCESS_LOG_ON }
peers { name: "web" namespace: "web" addresses: "198.18.0.5" addresses: "2001:2::5" principal: "spiffe://cluster.local/ns/web/sa/web" }
peers { name: "ledger" namespace: "shop" addresses: "::ffff:198.18.0.6" }
EOF
encode workloads-shared-address WorkloadMap <<'EOF'
peers { name: "a" namespace: "x" addresses: "198.18.0.5" }
peers { name: "b" namespace: "x" addresses: "::ffff:198.18.0.5" addresses: "198.18.0.5:80" }
EOF
printf '\x10\x07' | seed discovery settings-unknown-mode
printf '\x0a\xff\xff\xff\xff\x0f' | seed discovery junk-length
printf '' | seed discovery empty

# ---- mesh_config --------------------------------------------------------------------------------------------------

# each tests/data/source/ directory's YAML files in the order the loader reads them, as one stream of documents
for dir in "$src"/tests/data/source/*/; do
    name=$(basename "$dir")
    first=1
    while IFS= read -r f; do
        [ $first -eq 1 ] || printf '\n---\n'
        first=0
        cat "$f"
    done < <(find "$dir" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' \) ! -name '.*' | LC_ALL=C sort) |
        seed mesh_config "dir-$name"
done
sed 's/$/\r/' "$src/tests/data/source/no-meshconfig/svc.yaml" | seed mesh_config crlf
seed mesh_config cluster-local <"$tmp/mesh-cluster-local/mesh.yaml"
seed mesh_config 17-identities <"$tmp/mesh-17-ids/mesh.yaml"
printf '' | seed mesh_config empty
printf '{}\n' | seed mesh_config empty-mapping
printf -- '- a\n- b\n' | seed mesh_config top-level-list
printf -- '---\n...\n---\n' | seed mesh_config only-markers
printf '\xff\xfea\x00:\x00' | seed mesh_config utf16
cat <<'EOF' | seed mesh_config alias
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: &m {name: orders, namespace: shop}
spec: {addresses: [198.18.100.1], ports: [80], serviceAccounts: [orders], identities: *m}
EOF
cat <<'EOF' | seed mesh_config nested
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: orders, namespace: shop}
spec: {addresses: [[[[[[[[[[[[[[[[198.18.100.1]]]]]]]]]]]]]]]]}
EOF
cat <<'EOF' | seed mesh_config schema-errors
%YAML 1.1
---
apiVersion: ringmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: mesh.example.org}
spec:
  trustDomain: mesh.example
  mtls: {mode: STRICT, extra: 1}
  svidTTL: 4m
--- !!map
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: x, namespace: "with\ttab"}
spec: {addresses: "198.18.1.1", ports: [0, 65536, "080"], inMesh: yes}
EOF

# ---- admission_review ---------------------------------------------------------------------------------------------

# review NAME OBJECT [OPERATION]: an AdmissionReview for a Pod as the API server sends it
review() {
    printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"shop","operation":"%s","object":%s}}' \
        "${3:-CREATE}" "$2" | seed admission_review "$1"
}
review deploy '{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"orders-6b8f9c-","labels":{"app":"orders"}},"spec":{"serviceAccountName":"orders","containers":[{"name":"app","image":"orders","ports":[{"name":"http","containerPort":8080}],"livenessProbe":{"httpGet":{"path":"/livez","port":"http"},"timeoutSeconds":2},"readinessProbe":{"tcpSocket":{"port":8080}},"startupProbe":{"grpc":{"port":9090}}},{"name":"side","image":"s","livenessProbe":{"exec":{"command":["true"]}}}]}}'
review job '{"metadata":{"annotations":{"ringmesh.io/inject":"true","ringmesh.io/native-sidecar":"false"}},"spec":{"restartPolicy":"Never","containers":[{"name":"report","image":"r"}]}}'
review init-containers '{"metadata":{"name":"c"},"spec":{"initContainers":[{"name":"wait","image":"b"}],"containers":[{"name":"app","image":"a"}],"volumes":[{"name":"data","emptyDir":{}}]}}'
review host-network '{"metadata":{"annotations":{"ringmesh.io/inject":"true"}},"spec":{"hostNetwork":true,"containers":[{"name":"x","image":"x"}]}}'
review injected '{"metadata":{"annotations":{"ringmesh.io/status":"{}"}},"spec":{"containers":[{"name":"app","image":"a"}]}}'
review annotations '{"metadata":{"annotations":{"ringmesh.io/exclude-inbound-ports":"9000,9001","ringmesh.io/exclude-outbound-ports":"5432","ringmesh.io/exclude-outbound-ip-ranges":"10.0.0.0/8,fd00::/8","ringmesh.io/include-inbound-ports":"*","ringmesh.io/proxy-log-level":"debug","ringmesh.io/proxy-cpu":"200m","ringmesh.io/proxy-memory":"1Gi","ringmesh.io/rewrite-app-probes":"false","ringmesh.io/native-sidecar":"true","ringmesh.io/unknown":"x"}},"spec":{"containers":[{"name":"a","image":"a"}]}}'
review bad-annotation '{"metadata":{"annotations":{"ringmesh.io/proxy-memory":"12XB"}},"spec":{"containers":[{"name":"a","image":"a"}]}}'
review update '{"spec":{"containers":[]}}' UPDATE
review not-a-pod '{"spec":{"containers":"app"}}'
printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}' | seed admission_review no-request
printf '{"apiVersion":"admission.k8s.io/v1",' | seed admission_review truncated
printf '[]' | seed admission_review array

# ---- manifest_yaml ------------------------------------------------------------------------------------------------

cat <<'EOF' | seed manifest_yaml stream
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}, annotations: {ringmesh.io/inject: "true"}}
    spec:
      containers:
      - name: app
        image: shop/orders
        args: ["--port", "8080"]
        command:
        - sh
        - -c
        - |
          exec /orders
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: r, image: r}]}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: "yes", b: "on", c: "1.0", d: "0o17", e: "", f: "~", g: "null", h: "12:30", i: "-"}
...
EOF
printf 'a: 1\nb: 1.5e3\nc: 0x1f\nd: .inf\ne: !!str 3\nf: true\ng: ~\nh: [1, "2", {i: j}]\n' | seed manifest_yaml scalars
printf 'a: &x 1\nb: *x\n' | seed manifest_yaml alias
printf 'a: 1\na: 2\n' | seed manifest_yaml duplicate

echo "make-seeds: seeds written under $corpus"
