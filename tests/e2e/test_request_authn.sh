#!/usr/bin/env bash
# RequestAuthentication in the proxy: end-user JWTs validated on every HTTP request, with tokens and keys another
# implementation makes (tests/e2e/tools/jwt_tool.py, python3-cryptography).
#
#   curl -> [proxy "frontend": upstream listener] --mTLS--> [proxy "orders": STRICT inbound, policies and a
#           RequestAuthentication from files (JWKS inline), default DENY] -> an app that answers with the request's
#           headers
#
# Over HTTP/1.1 and HTTP/2:
# - no token: /public is allowed, /api is denied by the policy that wants a request principal (403, not 401);
# - a valid token of each algorithm (RS256, PS256, ES256, ES384, EdDSA) reaches /api; the app gets no
#   Authorization header (forwardOriginalToken false), the payload in x-jwt-payload and the subject in x-jwt-sub;
# - expired, wrongly signed, of another audience or issuer, alg none: 401, logged as event "authn" with the
#   reason, the peer and no token; gRPC gets grpc-status 16;
# - the access_token query parameter is read; "Authorization: Basic" is no token;
# - /admin needs the claim groups to hold "admins" (a list claim) and scope to hold "write" (space-separated);
# - key rotation: the JWKS holds the old and the new key, then the new one only, while a client sends tokens of
#   the new key: no request fails.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds curl jq /usr/bin/python3
/usr/bin/python3 -c 'import cryptography, hypercorn' 2>/dev/null ||
    rm_skip "python3-cryptography and python3-hypercorn are not installed (scripts/bootstrap.sh)"
curl -V | grep -qw HTTP2 || rm_skip "this curl has no HTTP/2"

TOOL=(/usr/bin/python3 "$RM_SOURCE_DIR/tests/e2e/tools/jwt_tool.py")
KEYS="$RM_TMP/keys"
"${TOOL[@]}" keys "$KEYS"
ISS=https://idp.example.test
POLICIES="$RM_TMP/policies"
mkdir -p "$POLICIES"

# write_policies JWKS: the RequestAuthentication with this JWKS, and the policies (written to a new file renamed
# over the old one, so the proxy reads a whole file)
write_policies() {
    local jwks=$1
    cat >"$RM_TMP/policies.tmp" <<EOF
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: idp, namespace: shop}
spec:
  jwtRules:
  - issuer: "$ISS"
    audiences: [orders]
    jwks: '$jwks'
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders:
    - {header: x-jwt-sub, claim: sub}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: public, namespace: shop}
spec:
  rules:
  - to: [{operation: {paths: [/public]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-needs-jwt, namespace: shop}
spec:
  rules:
  - from: [{source: {requestPrincipals: ["$ISS/*"]}}]
    to: [{operation: {paths: ["/api/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: admins, namespace: shop}
spec:
  rules:
  - to: [{operation: {paths: [/admin]}}]
    when:
    - {key: "request.auth.claims[groups]", values: [admins]}
    - {key: "request.auth.claims[scope]", values: [write]}
EOF
    mv -f "$RM_TMP/policies.tmp" "$POLICIES/policies.yaml"
}
ALL_KEYS=$("${TOOL[@]}" jwks "$KEYS" rsa:rsa-1 rsa2:rsa-ps:PS256 ec256:ec-1 ec384:ec-2 ed25519:ed-1)
write_policies "$ALL_KEYS"

rm_loopback_place 4
read -r P_APP P_IN P_UP P_ADM_O <<<"${RM_PORTS[*]}"
cat >"$RM_TMP/headers_app.py" <<'EOF'
# answers every request with its headers as JSON, over HTTP/1.1 and h2c (Hypercorn)
import asyncio, json, sys
from hypercorn.asyncio import serve
from hypercorn.config import Config
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({k.decode().lower(): v.decode() for k, v in scope["headers"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
config = Config()
config.bind = [sys.argv[1]]
config.accesslog = None
asyncio.run(serve(app, config))
EOF
rm_bg app "$POD" "$RM_TMP/logs/app.log" /usr/bin/python3 "$RM_TMP/headers_app.py" "127.0.0.1:$P_APP"
rm_wait_port "$POD" "$P_APP" 15 app
RM_ORDERS_YAML=$(printf 'authorization:\n  policyDir: "%s"\n  defaultAction: DENY' "$POLICIES") \
    rm_loopback_pair "$P_APP" "$P_IN" "$P_UP" - "$P_ADM_O"
LOG_O="$RM_TMP/logs/proxy-orders.log"

mint() { # KEY KID ALG CLAIMS-JSON
    "${TOOL[@]}" mint "$KEYS" "$@"
}
claims() { # [EXTRA-JSON-MEMBERS]
    printf '{"iss":"%s","sub":"alice","aud":"orders","exp":"+600"%s}' "$ISS" "${1:+,$1}"
}

# request PROTO PATH [curl args...]: sets CODE and BODY
request() {
    local proto=$1 path=$2 opt=()
    shift 2
    [ "$proto" = h2 ] && opt=(--http2-prior-knowledge)
    CODE=$(rm_run curl -s "${opt[@]}" -o "$RM_TMP/body" -w '%{http_code}' --max-time 10 "$@" \
        "http://127.0.0.1:$P_UP$path") || true
    BODY=$(cat "$RM_TMP/body" 2>/dev/null || true)
}
expect() { # PROTO PATH CODE [curl args...]
    local proto=$1 path=$2 code=$3
    shift 3
    request "$proto" "$path" "$@"
    rm_assert_eq "$CODE" "$code" "$proto GET $path $*: status"
}
bearer() {
    printf 'authorization: Bearer %s' "$1"
}

GOOD=$(mint rsa rsa-1 RS256 "$(claims)")
for proto in h1 h2; do
    rm_log "--- $proto"
    expect "$proto" /public 200
    expect "$proto" /api/orders 403
    rm_expect_log "$LOG_O" '.event == "authz" and .decision == "deny" and .path == "/api/orders"' \
        "$proto: no token: no request principal, denied by the policy"
    expect "$proto" /api/orders 200 -H "$(bearer "$GOOD")"
    rm_assert_eq "$(jq -r '.authorization // "none"' <<<"$BODY")" none "$proto: the token is not forwarded"
    rm_assert_eq "$(jq -r '."x-jwt-sub"' <<<"$BODY")" alice "$proto: outputClaimToHeaders"
    payload=$(cut -d. -f2 <<<"$GOOD")
    rm_assert_eq "$(jq -r '."x-jwt-payload"' <<<"$BODY")" "$payload" "$proto: outputPayloadToHeader"
    for spec in rsa2:rsa-ps:PS256 ec256:ec-1:ES256 ec384:ec-2:ES384 ed25519:ed-1:EdDSA; do
        IFS=: read -r key kid alg <<<"$spec"
        expect "$proto" /api/x 200 -H "$(bearer "$(mint "$key" "$kid" "$alg" "$(claims)")")"
    done
    expect "$proto" /public 401 -H "$(bearer "$(mint rsa rsa-1 RS256 "$(claims '"exp":"-600"' | sed 's/"exp":"+600",//')")")"
    expect "$proto" /api/x 401 -H "$(bearer "$(mint rsa2 rsa-1 RS256 "$(claims)")")"
    expect "$proto" /api/x 401 -H "$(bearer "$(mint rsa rsa-1 RS256 "$(claims | sed 's/"aud":"orders"/"aud":"billing"/')")")"
    expect "$proto" /api/x 401 -H "$(bearer "$(mint rsa rsa-1 RS256 "$(claims | sed "s|$ISS|https://evil.test|")")")"
    none_tok="$(printf '{"alg":"none"}' | base64 -w0 | tr '+/' '-_' | tr -d '=').$(cut -d. -f2 <<<"$GOOD")."
    expect "$proto" /public 401 -H "$(bearer "$none_tok")"
    expect "$proto" "/api/q?access_token=$GOOD" 200
    expect "$proto" /public 200 -H 'authorization: Basic YWxpY2U6c2VjcmV0'
    expect "$proto" /admin 200 -H "$(bearer "$(mint ec256 ec-1 ES256 "$(claims '"groups":["users","admins"],"scope":"read write"')")")"
    expect "$proto" /admin 403 -H "$(bearer "$(mint ec256 ec-1 ES256 "$(claims '"groups":["users"],"scope":"read write"')")")"
    expect "$proto" /admin 403 -H "$(bearer "$(mint ec256 ec-1 ES256 "$(claims '"groups":["admins"],"scope":"read"')")")"
done
rm_expect_log "$LOG_O" '.event == "authn" and (.reason | test("expired")) and .source_principal ==
    "spiffe://cluster.local/ns/shop/sa/frontend"' "a refused token is logged with its reason and the peer"
rm_expect_log "$LOG_O" '.event == "authn" and (.reason | test("signature"))' "a bad signature is logged"
rm_expect_log "$LOG_O" '.event == "authn" and (.reason | test("aud"))' "a wrong audience is logged"
rm_expect_log "$LOG_O" '.event == "authn" and (.reason | test("issuer"))' "an unknown issuer is logged"
rm_expect_log "$LOG_O" '.event == "authn" and (.reason | test("alg"))' "alg none is logged"
grep -qF "$(cut -d. -f3 <<<"$GOOD")" "$LOG_O" && rm_fail "a token's signature is in the proxy's log"

# gRPC: grpc-status 16 for a refused token
HDRS=$(rm_run curl -s --http2-prior-knowledge -o /dev/null -D - --max-time 10 -H 'content-type: application/grpc' \
    -H 'te: trailers' -H "$(bearer "$(mint rsa2 rsa-1 RS256 "$(claims)")")" --data-binary @/dev/null \
    "http://127.0.0.1:$P_UP/ringmesh.test.Echo/Say") || true
grep -qi '^grpc-status: 16' <<<"$HDRS" || rm_fail "gRPC: want grpc-status 16, got: $HDRS"

# key rotation: old and new key, then the new key only, while a client sends tokens of the new key
OLD_NEW=$("${TOOL[@]}" jwks "$KEYS" rsa:rsa-1 ec256:ec-new)
NEW_ONLY=$("${TOOL[@]}" jwks "$KEYS" ec256:ec-new)
write_policies "$OLD_NEW"
rm_expect_log_nth "$LOG_O" '.event == "policies_reloaded"' 1 "the JWKS with both keys is in force"
NEW_TOK=$(mint ec256 ec-new ES256 "$(claims)")
OLD_TOK=$(mint rsa rsa-1 RS256 "$(claims)")
expect h1 /api/x 200 -H "$(bearer "$OLD_TOK")"
fails=0
for i in $(seq 1 40); do
    [ "$i" = 15 ] && write_policies "$NEW_ONLY"
    request h1 /api/x -H "$(bearer "$NEW_TOK")"
    [ "$CODE" = 200 ] || fails=$((fails + 1))
done
rm_expect_log_nth "$LOG_O" '.event == "policies_reloaded"' 2 "the JWKS with the new key only is in force"
request h1 /api/x -H "$(bearer "$NEW_TOK")"
[ "$CODE" = 200 ] || fails=$((fails + 1))
rm_assert_eq "$fails" 0 "requests with the new key that failed during the rotation"
expect h1 /api/x 401 -H "$(bearer "$OLD_TOK")"
rm_finish
