#!/usr/bin/env bash
# Regenerates the hand-made seeds of the committed fuzz corpora: the files named seed-* in tests/fuzz/corpus/<target>/.
# The other corpus files are inputs libFuzzer found and scripts/fuzz.sh merged in; this script leaves them alone.
#
#   tests/fuzz/make-seeds.sh BUILD_DIR
#
# BUILD_DIR is a configured and built tree (for ringmesh-init and libringmesh). Needs openssl, socat, gcc and, for
# the iptables-save seeds, root (they come from a network namespace this script makes and deletes).
#   tls_sniff      ClientHellos captured on loopback: openssl s_client with ALPN ringmesh/1, h2 and none, TLS 1.2
#                  and 1.3, and the proxy's own (wolfSSL) ClientHello; plaintext HTTP/1.1, HTTP/2, SSH; truncations
#   spiffe_id      valid IDs and one of each syntax error
#   x509_parse     DER certificates from tests/data/svid/make-test-certs.sh (SVIDs, CAs, each rule broken) + extras
#   svid_pem       bundle PEM, NUL, chain PEM, from the same certificates
#   proxy_config   tests/data/config/*.yaml and a few small documents
#   iptables_args  ringmesh-init command lines, arguments separated by NUL
#   iptables_save  `iptables-save -t nat` of a namespace before and after ringmesh-init, and hand-written tables
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
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

# seed TARGET NAME: writes stdin to corpus/TARGET/seed-NAME
seed() {
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

echo "make-seeds: seeds written under $corpus"
