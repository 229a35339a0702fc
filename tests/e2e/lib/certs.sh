# shellcheck shell=bash
# Certificates: a CA and SVIDs issued by ringmeshctl when it is built, else by the openssl CLI with the same
# profile.
# Part of the end-to-end harness: sourced by tests/e2e/lib.sh (never on its own), whose globals it uses.

rm__use_ctl() {
    [ "${RM_E2E_CERT_TOOL:-}" = openssl ] && return 1
    [ -x "$RM_CTL_BIN" ] && "$RM_CTL_BIN" svid issue --help >/dev/null 2>&1
}

# rm_ca_create NAME TRUST_DOMAIN: a root CA in $RM_TMP/pki/ca-NAME.{pem,key}
rm_ca_create() {
    local name=$1 td=$2 dir="$RM_TMP/pki"
    if rm__use_ctl; then
        "$RM_CTL_BIN" svid issue --ca --trust-domain "$td" --cert "$dir/ca-$name.pem" --key "$dir/ca-$name.key" \
            --ttl 24h >"$dir/ca-$name.ctl.log" 2>&1 || {
            cat "$dir/ca-$name.ctl.log" >&2
            rm_fail "ringmeshctl svid issue --ca failed"
        }
    else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca-$name.key" 2>/dev/null
        openssl req -x509 -new -key "$dir/ca-$name.key" -sha256 -days 1 -subj "/O=ringmesh e2e/CN=$td root $name" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectAltName=URI:spiffe://$td" -addext "subjectKeyIdentifier=hash" \
            -out "$dir/ca-$name.pem" 2>/dev/null
    fi
}

# rm_svid_issue NAME CA SPIFFE_ID [TTL_SECONDS [BACKDATE_SECONDS]]: an SVID in $RM_TMP/pki/NAME.{pem,key}.
# Defaults: valid for an hour, backdated 5 minutes. TTL 3600 with BACKDATE 7200 gives a cert that expired an
# hour ago.
rm_svid_issue() {
    local name=$1 ca=$2 id=$3 ttl=${4:-3600} backdate=${5:-300} dir="$RM_TMP/pki" now
    if rm__use_ctl; then
        "$RM_CTL_BIN" svid issue --ca-cert "$dir/ca-$ca.pem" --ca-key "$dir/ca-$ca.key" --id "$id" \
            --cert "$dir/$name.pem" --key "$dir/$name.key" --ttl "${ttl}s" --backdate "${backdate}s" \
            >"$dir/$name.ctl.log" 2>&1 || {
            cat "$dir/$name.ctl.log" >&2
            rm_fail "ringmeshctl svid issue --id $id failed"
        }
    else
        now=$(date -u +%s)
        [ -f "$dir/ca.cnf" ] || cat >"$dir/ca.cnf" <<'EOF'
[ca]
default_ca = e2e_ca
[e2e_ca]
database = $ENV::RM_CA_DIR/index.txt
new_certs_dir = $ENV::RM_CA_DIR
serial = $ENV::RM_CA_DIR/serial
default_md = sha256
policy = e2e_policy
unique_subject = no
copy_extensions = none
[e2e_policy]
organizationName = optional
commonName = optional
[svid]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:$ENV::RM_SVID_ID
authorityKeyIdentifier = keyid
EOF
        mkdir -p "$dir/ca-$ca.db"
        touch "$dir/ca-$ca.db/index.txt"
        openssl rand -hex 16 >"$dir/ca-$ca.db/serial"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
        openssl req -new -key "$dir/$name.key" -subj "/O=ringmesh e2e" -out "$dir/$name.csr" 2>/dev/null
        RM_CA_DIR="$dir/ca-$ca.db" RM_SVID_ID="$id" openssl ca -batch -notext -config "$dir/ca.cnf" \
            -extensions svid -cert "$dir/ca-$ca.pem" -keyfile "$dir/ca-$ca.key" -in "$dir/$name.csr" \
            -out "$dir/$name.pem" -startdate "$(date -u -d "@$((now - backdate))" +%Y%m%d%H%M%SZ)" \
            -enddate "$(date -u -d "@$((now - backdate + ttl))" +%Y%m%d%H%M%SZ)" \
            >"$dir/$name.openssl.log" 2>&1 || {
            cat "$dir/$name.openssl.log" >&2
            rm_fail "openssl ca failed for $id"
        }
    fi
    chmod 0600 "$dir/$name.key"
}
