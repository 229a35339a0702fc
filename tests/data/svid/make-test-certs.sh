#!/usr/bin/env bash
# Makes the X.509 certificates the SVID unit tests check, with the openssl CLI: an encoder independent of
# ringmesh's own issuer, so the verifier is tested against certificates it did not write.
#
# Usage: make-test-certs.sh OUTDIR
#
# Every certificate is EC P-256. Trust domain "example.org" unless a name says otherwise. Roots are valid from 30
# days ago for ten years (root-expired: from 96 hours to 1 hour ago); other valid certificates run
# from one hour ago to 24 hours from now. Chain files (*.pem of leaves) hold the leaf first, then the
# intermediate when one signed it; *.der holds the leaf alone. <name>.dates holds "notBefore notAfter" of that
# leaf as Unix seconds, computed here from the same strings given to openssl.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/.ca
rm -rf "$work"
mkdir -p "$work/newcerts"
: >"$work/index.txt"
echo 1000 >"$work/serial"
cd "$work"

cat >openssl.cnf <<'CNF'
[ca]
default_ca = testca

[testca]
database = index.txt
new_certs_dir = newcerts
serial = serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[policy_any]
organizationName = optional
commonName = optional

[req]
distinguished_name = dn
prompt = no

[dn]
O = ringmesh test

[ext_root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
subjectAltName = $ENV::RM_SAN

[ext_inter]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ext_inter_not_ca]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ext_inter_no_kcs]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ext_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,$ENV::RM_KU
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::RM_SAN

[ext_leaf_eku]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = $ENV::RM_EKU
subjectAltName = $ENV::RM_SAN

[ext_leaf_no_eku]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectAltName = $ENV::RM_SAN

[ext_leaf_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature
subjectAltName = $ENV::RM_SAN

[ext_leaf_no_ku]
basicConstraints = critical,CA:FALSE
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = $ENV::RM_SAN

[ext_leaf_no_san]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
CNF

export RM_SAN=URI:spiffe://example.org RM_KU=digitalSignature RM_EKU=serverAuth,clientAuth

newkey() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# utc SECONDS: the UTCTime string openssl takes for a Unix time
utc() {
    date -u -d "@$1" +%y%m%d%H%M%SZ
}

# root NAME TRUST_DOMAIN [START END]: a self-signed root CA with a URI SAN naming its trust domain; valid from 30
# days ago for ten years unless START and END say otherwise
root() {
    local start end
    start=$(date -u -d "${3:-30 days ago}" +%s)
    end=$(date -u -d "${4:-+3650 days}" +%s)
    newkey "$1.key"
    openssl req -config openssl.cnf -new -key "$1.key" -subj "/O=ringmesh test/CN=$1" -out "$1.csr"
    RM_SAN=URI:spiffe://$2 openssl ca -config openssl.cnf -batch -notext -selfsign -keyfile "$1.key" -in "$1.csr" \
        -out "$1.pem" -extensions ext_root -startdate "$(utc "$start")" -enddate "$(utc "$end")" 2>/dev/null
}

# sign NAME CA EXTENSIONS START END [SAN] [KU]: a certificate for NAME's key signed by CA, with explicit dates
sign() {
    local name=$1 ca=$2 ext=$3 start end
    start=$(date -u -d "$4" +%s)
    end=$(date -u -d "$5" +%s)
    [ -f "$name.key" ] || newkey "$name.key"
    openssl req -config openssl.cnf -new -key "$name.key" -subj "/O=ringmesh test/CN=$name" -out "$name.csr"
    RM_SAN=${6:-URI:spiffe://example.org/ns/shop/sa/orders} RM_KU=${7:-digitalSignature} \
        openssl ca -config openssl.cnf -batch -notext -cert "$ca.pem" -keyfile "$ca.key" -in "$name.csr" \
        -out "$name.pem" -extensions "$ext" -startdate "$(utc "$start")" -enddate "$(utc "$end")" 2>/dev/null
    echo "$start $end" >"$name.dates"
}

# leaf NAME CA EXTENSIONS START END [SAN] [KU] [INTERMEDIATE]: publish NAME.pem (chain), NAME.der, NAME.dates
leaf() {
    local name=$1 inter=${8:-}
    sign "$@"
    if [ -n "$inter" ]; then
        cat "$name.pem" "$inter.pem" >"$out/$name.pem"
    else
        cp "$name.pem" "$out/$name.pem"
    fi
    openssl x509 -in "$name.pem" -outform DER -out "$out/$name.der"
    cp "$name.dates" "$out/$name.dates"
}

valid_from="-1 hour"
valid_to="+24 hours"

root root example.org
root root2 example.org
root other-root example.org
root root-expired example.org "-96 hours" "-1 hour"
sign inter root ext_inter "$valid_from" "+48 hours"
sign inter-not-ca root ext_inter_not_ca "$valid_from" "+48 hours"
sign inter-no-kcs root ext_inter_no_kcs "$valid_from" "+48 hours"
sign inter-expired root ext_inter "-72 hours" "-48 hours"

# Well-formed SVIDs
leaf leaf root ext_leaf "$valid_from" "$valid_to"
leaf leaf-root2 root2 ext_leaf "$valid_from" "$valid_to" URI:spiffe://example.org/ns/shop/sa/payments
leaf leaf-inter inter ext_leaf "$valid_from" "$valid_to" URI:spiffe://example.org/ns/shop/sa/cart digitalSignature inter
leaf leaf-inter-missing inter ext_leaf "$valid_from" "$valid_to"
leaf leaf-untrusted other-root ext_leaf "$valid_from" "$valid_to"
leaf leaf-other-td root ext_leaf "$valid_from" "$valid_to" URI:spiffe://other.org/ns/shop/sa/orders
leaf leaf-expired root ext_leaf "-48 hours" "-24 hours"
leaf leaf-not-yet-valid root ext_leaf "+24 hours" "+48 hours"
leaf leaf-key-agreement root ext_leaf "$valid_from" "$valid_to" "" "digitalSignature,keyAgreement"
leaf leaf-no-eku root ext_leaf_no_eku "$valid_from" "$valid_to" # extended key usage is a SHOULD
RM_EKU=serverAuth,clientAuth,codeSigning leaf leaf-eku-extra root ext_leaf_eku "$valid_from" "$valid_to"

# Leaves that break one X509-SVID rule each
leaf leaf-ca root ext_leaf_ca "$valid_from" "$valid_to"
leaf leaf-two-uris root ext_leaf "$valid_from" "$valid_to" \
    URI:spiffe://example.org/ns/shop/sa/orders,URI:spiffe://example.org/ns/shop/sa/other
leaf leaf-five-uris root ext_leaf "$valid_from" "$valid_to" \
    URI:spiffe://example.org/a,URI:spiffe://example.org/b,URI:spiffe://example.org/c,URI:spiffe://example.org/d,URI:spiffe://example.org/e
leaf leaf-keycertsign root ext_leaf "$valid_from" "$valid_to" "" "digitalSignature,keyCertSign"
leaf leaf-crlsign root ext_leaf "$valid_from" "$valid_to" "" "digitalSignature,cRLSign"
leaf leaf-no-digsig root ext_leaf "$valid_from" "$valid_to" "" "keyAgreement"
leaf leaf-no-ku root ext_leaf_no_ku "$valid_from" "$valid_to"
leaf leaf-no-san root ext_leaf_no_san "$valid_from" "$valid_to"
leaf leaf-dns-only root ext_leaf "$valid_from" "$valid_to" DNS:orders.shop.svc.cluster.local
leaf leaf-dns-and-uri root ext_leaf "$valid_from" "$valid_to" \
    DNS:orders.shop.svc.cluster.local,URI:spiffe://example.org/ns/shop/sa/orders
leaf leaf-bad-id root ext_leaf "$valid_from" "$valid_to" URI:spiffe://example.org/ns/../sa/orders
leaf leaf-bad-scheme root ext_leaf "$valid_from" "$valid_to" URI:https://example.org/ns/shop/sa/orders
leaf leaf-no-path root ext_leaf "$valid_from" "$valid_to" URI:spiffe://example.org # the trust domain's own ID
RM_EKU=serverAuth leaf leaf-eku-server-only root ext_leaf_eku "$valid_from" "$valid_to"
RM_EKU=clientAuth leaf leaf-eku-client-only root ext_leaf_eku "$valid_from" "$valid_to"
RM_EKU=anyExtendedKeyUsage leaf leaf-eku-any root ext_leaf_eku "$valid_from" "$valid_to"
RM_EKU=codeSigning leaf leaf-eku-other root ext_leaf_eku "$valid_from" "$valid_to"

# Leaves whose chain breaks a rule
leaf leaf-under-not-ca inter-not-ca ext_leaf "$valid_from" "$valid_to" "" digitalSignature inter-not-ca
leaf leaf-under-no-kcs inter-no-kcs ext_leaf "$valid_from" "$valid_to" "" digitalSignature inter-no-kcs
leaf leaf-under-expired-root root-expired ext_leaf "-72 hours" "+24 hours"
leaf leaf-under-expired inter-expired ext_leaf "-60 hours" "+24 hours" "" digitalSignature inter-expired

for ca in root root2 other-root root-expired inter; do
    cp "$ca.pem" "$out/$ca.pem"
done
cat root.pem root2.pem >"$out/bundle.pem"
openssl x509 -in root.pem -outform DER -out "$out/root.der"
openssl x509 -in inter.pem -outform DER -out "$out/inter.der"
