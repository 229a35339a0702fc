#!/usr/bin/env bash
#
# No log holds a private key or a token. Every end-to-end test scans its own logs when it ends (lib/secrets.sh,
# called by rm_teardown), so the whole e2e run is covered; this test checks that the scan finds what it must, then
# runs a mesh with as much logging as there is and scans it explicitly:
#   - the scanner flags a PEM private-key header, a key's base64 body logged as one string inside a JSON line, a JWT,
#     and a token the test wrote to a file, each with its file and line; it flags nothing in a clean log, and never
#     prints the material itself;
#   - a mesh from the control plane (ServiceAccount tokens attested against the JWKS, SVIDs issued from CSRs, the
#     discovery stream), every component at log level debug, mTLS traffic both ways, a proxy restarted (it renews from
#     its state directory), then the teardown's scan over every log once every process has ended: none of the
#     logs of the control plane, the proxies, ringmeshctl or the servers holds a private key, a piece of one, or a
#     token; and every file holding a private key has mode 0600.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_control_init

case_scanner_finds_material() {
    local d=$RM_TMP/scan-check out body jwt
    mkdir -p "$d/logs"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/planted.key" 2>/dev/null
    body=$(awk '/BEGIN/ {p = 1; next} /END/ {p = 0} p' "$d/planted.key" | tr -d '\n')
    jwt=$(cat "$RM_SOURCE_DIR/tests/data/jwt/es256.jwt")
    rm_token shop planted "$d/planted-token"
    printf '{"event":"x","msg":"fine"}\n' >"$d/logs/clean.log"
    {
        printf '{"event":"x"}\n'
        head -n 1 "$d/planted.key"
    } >"$d/logs/pem.log"
    printf '{"event":"x"}\n{"event":"key","material":"%s"}\n' "$body" >"$d/logs/b64.stderr"
    printf 'one\ntwo\nAuthorization: Bearer %s\n' "$jwt" >"$d/logs/jwt.log"
    # a token that is no JWT: found because the test wrote it to a file named *token*
    printf 'opaque-bearer-0123456789abcdef\n' >"$d/opaque-token"
    printf 'header\nsent opaque-bearer-0123456789abcdef\n' >"$d/logs/opaque.err"

    out=$(rm_secrets_scan "$d") && rm_fail "the scan found nothing in logs holding keys and tokens"
    rm_log "findings: $(printf '%s' "$out" | tr '\n' ';')"
    grep -qx 'logs/pem.log:2: PEM private-key header' <<<"$out" || rm_fail "PEM header not found: $out"
    grep -qx 'logs/b64.stderr:2: a piece of a private key or token of this test' <<<"$out" ||
        rm_fail "the key's body on one line not found: $out"
    grep -qx 'logs/jwt.log:3: JWT (header.payload.signature)' <<<"$out" || rm_fail "JWT not found: $out"
    grep -qx 'logs/opaque.err:2: a piece of a private key or token of this test' <<<"$out" ||
        rm_fail "the opaque token not found: $out"
    grep -q 'clean.log' <<<"$out" && rm_fail "a clean log was flagged: $out"
    grep -qF -- "${body:0:32}" <<<"$out" && rm_fail "a finding printed the key itself"
    grep -qF -- "${jwt:0:40}" <<<"$out" && rm_fail "a finding printed the token itself"
    rm -rf "$d"
    out=$(rm_secrets_scan "$RM_TMP") || rm_fail "the scan flags the harness's own files before the mesh ran: $out"
}

VIP=198.19.0.10

mesh_run() {
    rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders
    rm_pod_create a
    rm_pod_create b
    rm_service "$VIP:8080" b:8080
    rm_server echo b 0.0.0.0:8080 echo
    rm_control_start main node 0.0.0.0:15012
    RM_PROXY_ENV="RINGMESH_LOG_LEVEL=debug"
    rm_pod_mesh b "control=$(rm_pod_gateway b):15012" ns=shop sa=orders
    rm_pod_mesh a "control=$(rm_pod_gateway a):15012" ns=shop sa=frontend
    rm_wait_ready a
    rm_wait_ready b
    for i in 1 2 3; do
        rm_client "c$i" a --connect "$VIP:8080" "send:secret-scan-$i" shutdown readeof
        rm_assert_eq "$RM_RC" 0 "request $i through the mesh"
    done
    # a restart: the proxy starts again from its state directory (key and SVID written with mode 0600)
    rm_stop proxy-a
    rm_proxy_start a
    rm_wait_ready a
    rm_client c4 a --connect "$VIP:8080" "send:secret-scan-4" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "a request after the restart"
    # the key files are 0600 (what the logs must not hold is on disk only there)
    local f mode
    while IFS= read -r f; do
        mode=$(stat -c %a "$f")
        rm_assert_eq "$mode" 600 "mode of ${f#"$RM_TMP"/}"
    done < <(grep -rlsI -- 'PRIVATE KEY-----' "$RM_TMP/control/state" "$RM_TMP/pods" || true)
}

rm_case scanner_finds_material case_scanner_finds_material
mesh_run
rm_finish
