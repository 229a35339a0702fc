#!/usr/bin/env bash
# ringmeshctl svid issue|verify, end to end: certificates ringmesh issues are checked with the openssl CLI (chain,
# purpose, every X509-SVID field), and ringmeshctl's verifier is run on certificates openssl made
# (tests/data/svid/make-test-certs.sh). Exit codes and messages are part of the contract and are checked too. The
# leaf rules are the proxy's own (lib/svid_rules.c): what is refused here is refused in a handshake
# (test_tls_refusals.sh), with the same reason.
# Needs: RM_BUILD_DIR, RM_SOURCE_DIR, openssl. No network, no processes left behind.
set -u

ctl=${RM_BUILD_DIR:?}/ctl/ringmeshctl
src=${RM_SOURCE_DIR:?}
if ! command -v openssl >/dev/null; then
    echo "SKIP: openssl CLI not installed"
    exit 77
fi
if [ ! -x "$ctl" ]; then
    echo "FAIL: $ctl not built"
    exit 1
fi

work=$(mktemp -d /tmp/rm-e2e-svid-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
pass() {
    echo "ok: $*"
}

# run EXPECTED_STATUS DESCRIPTION CMD...: runs CMD, keeps stdout in $out and stderr in $err
run() {
    local want=$1 what=$2
    shift 2
    "$@" >out.txt 2>err.txt
    status=$?
    out=$(cat out.txt)
    err=$(cat err.txt)
    if [ "$status" -ne "$want" ]; then
        fail "$what: exit $status, want $want (stdout: $out; stderr: $err)"
        return 1
    fi
    pass "$what"
    return 0
}

# expect_match DESCRIPTION TEXT REGEX
expect_match() {
    if printf '%s\n' "$2" | grep -Eq -- "$3"; then
        pass "$1"
    else
        fail "$1: '$2' does not match /$3/"
    fi
}

text() {
    openssl x509 -in "$1" -noout -text
}

# ---- help and usage ---------------------------------------------------------------------------------------------
run 0 "--help" "$ctl" --help && expect_match "--help lists svid" "$out" "svid verify"
run 0 "svid --help" "$ctl" svid --help && expect_match "svid --help lists issue" "$out" "svid issue --ca"
run 2 "no arguments" "$ctl"
run 2 "unknown command" "$ctl" frobnicate && expect_match "unknown command named" "$err" "frobnicate"
run 2 "unknown svid subcommand" "$ctl" svid renew
run 2 "unknown flag" "$ctl" svid verify --bundle x --cert y --colour && expect_match "unknown flag named" "$err" "--colour"
run 2 "abbreviated flag" "$ctl" svid verify --bund x --cert y
# every level answers the same way: help on stdout (exit 0) from "--help", "-h", "help" and a command's --help;
# the help on stderr (exit 2) without a subcommand; an unknown one named, with the help (exit 2)
top_help=$("$ctl" --help)
for group in svid token policy; do
    case $group in
    svid) cmds="verify issue" ;;
    token) cmds="keygen mint" ;;
    policy) cmds="lint check" ;;
    esac
    for h in --help -h help; do
        run 0 "$group $h" "$ctl" "$group" "$h"
        for c in $cmds; do
            expect_match "$group $h shows the synopsis of $c" "$out" "^(usage:| ) +ringmeshctl $group $c "
        done
    done
    for c in $cmds; do
        run 0 "$group $c --help" "$ctl" "$group" "$c" --help &&
            expect_match "$group $c --help is the group's help" "$out" "^usage: ringmeshctl $group "
        expect_match "--help lists $group $c" "$top_help" "^  $group $c +[a-z]"
        run 2 "$group $c with an unknown flag" "$ctl" "$group" "$c" --frobnicate &&
            expect_match "$group $c points at its help" "$err" "run 'ringmeshctl $group --help' for usage"
    done
    run 2 "$group without a subcommand" "$ctl" "$group" &&
        expect_match "$group without a subcommand shows its help on stderr" "$err" "^usage: ringmeshctl $group "
    run 2 "unknown $group subcommand" "$ctl" "$group" frobnicate &&
        expect_match "unknown $group subcommand named" "$err" "^ringmeshctl $group: unknown subcommand 'frobnicate'"
done
run 2 "missing --cert" "$ctl" svid verify --bundle x
run 2 "flag without value" "$ctl" svid verify --bundle x --cert
run 2 "bad --ttl" "$ctl" svid issue --ca --trust-domain example.org --cert a.pem --key a.key --ttl 5x
run 2 "zero --ttl" "$ctl" svid issue --ca --trust-domain example.org --cert a.pem --key a.key --ttl 0s
run 2 "bad trust domain" "$ctl" svid issue --ca --trust-domain Example.org --cert a.pem --key a.key
run 2 "--ca with --id" "$ctl" svid issue --ca --trust-domain example.org --id spiffe://example.org/x \
    --cert a.pem --key a.key
[ ! -e a.pem ] && [ ! -e a.key ] || fail "failed issue left files behind"

# ---- root CA ----------------------------------------------------------------------------------------------------
run 0 "issue root CA" "$ctl" svid issue --ca --trust-domain example.org --cert ca.pem --key ca.key --ttl 48h || exit 1
[ "$(stat -c %a ca.key)" = 600 ] && pass "CA key mode 0600" || fail "CA key mode $(stat -c %a ca.key)"
printf '%s%s' "$out" "$err" | grep -q "PRIVATE KEY" && fail "key material printed"
ca_text=$(text ca.pem)
expect_match "CA basicConstraints critical" "$ca_text" "X509v3 Basic Constraints: critical"
expect_match "CA is a CA" "$ca_text" "CA:TRUE"
expect_match "CA keyUsage critical" "$ca_text" "X509v3 Key Usage: critical"
expect_match "CA keyUsage keyCertSign+cRLSign" "$ca_text" "^ +Certificate Sign, CRL Sign$"
expect_match "CA URI SAN" "$ca_text" "URI:spiffe://example.org$"
expect_match "CA key is P-256" "$ca_text" "NIST CURVE: P-256"
expect_match "CA signed with ECDSA SHA-256" "$ca_text" "Signature Algorithm: ecdsa-with-SHA256"
openssl verify -x509_strict -CAfile ca.pem ca.pem >/dev/null 2>&1 && pass "openssl accepts the root" ||
    fail "openssl rejects the root"
ca_life=$(($(date -d "$(openssl x509 -in ca.pem -noout -enddate | cut -d= -f2)" +%s) -
    $(date -d "$(openssl x509 -in ca.pem -noout -startdate | cut -d= -f2)" +%s)))
[ "$ca_life" -eq $((48 * 3600)) ] && pass "CA lifetime = --ttl" || fail "CA lifetime $ca_life"
diff <(openssl pkey -in ca.key -pubout) <(openssl x509 -in ca.pem -pubkey -noout) >/dev/null &&
    pass "CA key matches CA certificate" || fail "CA key does not match CA certificate"

# ---- SVID -------------------------------------------------------------------------------------------------------
id=spiffe://example.org/ns/shop/sa/orders
run 0 "issue SVID" "$ctl" svid issue --ca-cert ca.pem --ca-key ca.key --id $id --cert svid.pem --key svid.key \
    --ttl 2h --backdate 10m || exit 1
printf '%s%s' "$out" "$err" | grep -q "PRIVATE KEY" && fail "key material printed"
[ "$(stat -c %a svid.key)" = 600 ] && pass "SVID key mode 0600" || fail "SVID key mode $(stat -c %a svid.key)"
[ "$(grep -c 'BEGIN CERTIFICATE' svid.pem)" -eq 1 ] && pass "SVID file has the leaf only (root not sent)" ||
    fail "SVID file holds $(grep -c 'BEGIN CERTIFICATE' svid.pem) certificates"
svid_text=$(text svid.pem)
expect_match "SVID basicConstraints critical" "$svid_text" "X509v3 Basic Constraints: critical"
expect_match "SVID is not a CA" "$svid_text" "CA:FALSE"
expect_match "SVID keyUsage critical" "$svid_text" "X509v3 Key Usage: critical"
expect_match "SVID keyUsage digitalSignature only" "$svid_text" "^ +Digital Signature$"
expect_match "SVID extKeyUsage server+client" "$svid_text" \
    "^ +TLS Web Server Authentication, TLS Web Client Authentication$"
expect_match "SVID URI SAN" "$svid_text" "^ +URI:$id$"
[ "$(printf '%s\n' "$svid_text" | grep -c 'URI:')" -eq 1 ] && pass "exactly one URI SAN" || fail "URI SAN count"
expect_match "SVID key is P-256" "$svid_text" "NIST CURVE: P-256"
serial=$(openssl x509 -in svid.pem -noout -serial | cut -d= -f2)
[ ${#serial} -ge 32 ] && pass "serial has >= 128 bits ($serial)" || fail "serial too short: $serial"
nb=$(date -d "$(openssl x509 -in svid.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in svid.pem -noout -enddate | cut -d= -f2)" +%s)
now=$(date +%s)
[ $((na - nb)) -eq 7200 ] && pass "SVID lifetime = --ttl" || fail "SVID lifetime $((na - nb))"
[ $((now - nb)) -ge 595 ] && [ $((now - nb)) -le 660 ] && pass "NotBefore backdated by --backdate" ||
    fail "NotBefore is $((now - nb))s ago"
for purpose in sslclient sslserver; do
    openssl verify -x509_strict -purpose $purpose -CAfile ca.pem svid.pem >/dev/null 2>&1 &&
        pass "openssl verify -purpose $purpose" || fail "openssl verify -purpose $purpose"
done
diff <(openssl pkey -in svid.key -pubout) <(openssl x509 -in svid.pem -pubkey -noout) >/dev/null &&
    pass "SVID key matches SVID" || fail "SVID key does not match SVID"
head -1 svid.key | grep -q -- "-----BEGIN PRIVATE KEY-----" && pass "key is PKCS#8 PEM" || fail "key format"

run 0 "issue a second SVID" "$ctl" svid issue --ca-cert ca.pem --ca-key ca.key --id $id --cert svid2.pem \
    --key svid2.key
serial2=$(openssl x509 -in svid2.pem -noout -serial | cut -d= -f2)
[ "$serial" != "$serial2" ] && pass "serials differ" || fail "same serial twice"
nb=$(date -d "$(openssl x509 -in svid2.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in svid2.pem -noout -enddate | cut -d= -f2)" +%s)
[ $((na - nb)) -eq 3600 ] && pass "default SVID lifetime 1h" || fail "default SVID lifetime $((na - nb))"
[ $(($(date +%s) - nb)) -ge 295 ] && [ $(($(date +%s) - nb)) -le 360 ] && pass "default backdate 5m" ||
    fail "default backdate $(($(date +%s) - nb))"

# ---- verify -----------------------------------------------------------------------------------------------------
run 0 "verify own SVID" "$ctl" svid verify --bundle ca.pem --cert svid.pem && expect_match "prints the ID" "$out" "^$id$"
run 0 "verify with trust domain and expected ID" "$ctl" svid verify --bundle ca.pem --cert svid.pem \
    --trust-domain example.org --expect spiffe://example.org/ns/shop/sa/cart --expect "$id"
run 1 "other expected ID" "$ctl" svid verify --bundle ca.pem --cert svid.pem --expect spiffe://example.org/ns/x &&
    expect_match "names the rule" "$err" "^invalid SVID: SPIFFE ID is not one of the identities expected"
run 1 "other trust domain" "$ctl" svid verify --bundle ca.pem --cert svid.pem --trust-domain other.org &&
    expect_match "names the rule" "$err" "^invalid SVID: SPIFFE ID is not in the expected trust domain"
run 2 "bad --expect" "$ctl" svid verify --bundle ca.pem --cert svid.pem --expect spiffe://example.org/a/
run 2 "--expect of the trust domain's own ID" "$ctl" svid verify --bundle ca.pem --cert svid.pem \
    --expect spiffe://example.org && expect_match "names the rule" "$err" "--expect 'spiffe://example.org': .*must have a path"
run 2 "missing cert file" "$ctl" svid verify --bundle ca.pem --cert nope.pem &&
    expect_match "names the file" "$err" "nope.pem"
run 2 "missing bundle file" "$ctl" svid verify --bundle gone.pem --cert svid.pem &&
    expect_match "names the file" "$err" "gone.pem"
run 2 "bundle that is a leaf" "$ctl" svid verify --bundle svid.pem --cert svid.pem &&
    expect_match "names the file" "$err" "svid.pem"

run 0 "issue expired SVID" "$ctl" svid issue --ca-cert ca.pem --ca-key ca.key --id $id --cert old.pem \
    --key old.key --backdate 2h --ttl 1h
run 1 "expired SVID" "$ctl" svid verify --bundle ca.pem --cert old.pem &&
    expect_match "says expired" "$err" "^invalid SVID: X509-SVID has expired"
openssl verify -CAfile ca.pem old.pem >verify.txt 2>&1 && fail "openssl accepts the expired SVID" ||
    expect_match "openssl agrees it expired" "$(cat verify.txt)" "certificate has expired"

run 0 "issue second root" "$ctl" svid issue --ca --trust-domain example.org --cert ca2.pem --key ca2.key
run 1 "untrusted root" "$ctl" svid verify --bundle ca2.pem --cert svid.pem &&
    expect_match "says untrusted" "$err" "^invalid SVID: X509-SVID chain does not verify to the trust bundle"
cat ca2.pem ca.pem >both.pem
run 0 "bundle with two roots" "$ctl" svid verify --bundle both.pem --cert svid.pem
run 2 "CA key of another CA" "$ctl" svid issue --ca-cert ca.pem --ca-key ca2.key --id $id --cert x.pem --key x.key &&
    expect_match "names the key file" "$err" "ca2.key"
run 2 "an SVID as CA" "$ctl" svid issue --ca-cert svid.pem --ca-key svid.key --id $id --cert x.pem --key x.key
run 2 "bad --id" "$ctl" svid issue --ca-cert ca.pem --ca-key ca.key --id spiffe://example.org/a//b \
    --cert x.pem --key x.key && expect_match "says why" "$err" "empty segment"
run 2 "--id of the trust domain's own ID" "$ctl" svid issue --ca-cert ca.pem --ca-key ca.key \
    --id spiffe://example.org --cert x.pem --key x.key && expect_match "says why" "$err" "must have a path"
[ ! -e x.pem ] && [ ! -e x.key ] || fail "failed issue left files behind"
run 2 "unwritable output" "$ctl" svid issue --ca-cert ca.pem --ca-key ca.key --id $id --cert nodir/x.pem \
    --key nodir/x.key && expect_match "names the file" "$err" "nodir/x.key"

# ---- openssl-made certificates ----------------------------------------------------------------------------------
certs=$work/openssl
if ! bash "$src/tests/data/svid/make-test-certs.sh" "$certs" >/dev/null 2>&1; then
    fail "make-test-certs.sh"
    echo "$failures failure(s)"
    exit 1
fi
run 0 "openssl leaf" "$ctl" svid verify --bundle "$certs/root.pem" --cert "$certs/leaf.pem"
run 0 "openssl leaf without extended key usage" "$ctl" svid verify --bundle "$certs/root.pem" \
    --cert "$certs/leaf-no-eku.pem"
run 0 "openssl leaf via intermediate" "$ctl" svid verify --bundle "$certs/root.pem" --cert "$certs/leaf-inter.pem"
run 0 "openssl leaf, second root of a bundle" "$ctl" svid verify --bundle "$certs/bundle.pem" \
    --cert "$certs/leaf-root2.pem"
for case in "leaf-ca:must not be a CA" "leaf-two-uris:exactly one URI SAN" "leaf-keycertsign:keyCertSign" \
    "leaf-no-digsig:digitalSignature" "leaf-no-san:no URI SAN" "leaf-dns-only:no URI SAN" \
    "leaf-bad-id:not a valid SPIFFE ID" "leaf-expired:has expired" "leaf-not-yet-valid:not yet valid" \
    "leaf-untrusted:does not verify" "leaf-under-not-ca:not a CA with keyCertSign" \
    "leaf-under-expired:has expired" "leaf-no-path:SPIFFE ID of an X509-SVID leaf must have a path" \
    "leaf-eku-server-only:must include both serverAuth and clientAuth" \
    "leaf-eku-client-only:must include both serverAuth and clientAuth" \
    "leaf-eku-any:must include both serverAuth and clientAuth"; do
    name=${case%%:*}
    run 1 "openssl $name" "$ctl" svid verify --bundle "$certs/root.pem" --cert "$certs/$name.pem" &&
        expect_match "openssl $name reason" "$err" "^invalid SVID: .*${case#*:}"
done

# our issuer signing with CAs openssl made: PKCS#8 and SEC1 keys, and an intermediate whose chain is passed on
run 0 "issue under openssl root (PKCS#8 key)" "$ctl" svid issue --ca-cert "$certs/root.pem" \
    --ca-key "$certs/.ca/root.key" --id $id --cert o1.pem --key o1.key
run 0 "verify it" "$ctl" svid verify --bundle "$certs/root.pem" --cert o1.pem
openssl pkey -in "$certs/.ca/root.key" -traditional -out sec1.key 2>/dev/null
head -1 sec1.key | grep -q "BEGIN EC PRIVATE KEY" || fail "could not make a SEC1 key"
run 0 "issue under openssl root (SEC1 key)" "$ctl" svid issue --ca-cert "$certs/root.pem" --ca-key sec1.key \
    --id $id --cert o2.pem --key o2.key
openssl verify -CAfile "$certs/root.pem" o2.pem >/dev/null 2>&1 && pass "openssl verifies it" ||
    fail "openssl rejects SVID signed with SEC1 key"
cat "$certs/inter.pem" "$certs/root.pem" >inter-chain.pem
run 0 "issue under intermediate" "$ctl" svid issue --ca-cert inter-chain.pem --ca-key "$certs/.ca/inter.key" \
    --id $id --cert o3.pem --key o3.key
[ "$(grep -c 'BEGIN CERTIFICATE' o3.pem)" -eq 2 ] && pass "leaf + intermediate, root left out" ||
    fail "chain file holds $(grep -c 'BEGIN CERTIFICATE' o3.pem) certificates"
run 0 "verify intermediate-signed SVID" "$ctl" svid verify --bundle "$certs/root.pem" --cert o3.pem
openssl verify -x509_strict -purpose sslclient -CAfile "$certs/root.pem" -untrusted o3.pem o3.pem >/dev/null 2>&1 &&
    pass "openssl verifies the intermediate chain" || fail "openssl rejects the intermediate chain"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all passed"
