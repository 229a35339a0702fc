#!/usr/bin/env bash
# RequestAuthentication with jwksUri, in the namespace mesh with ringmesh-control: the control plane fetches the
# JWKS (libcurl, from a server on its own loopback that no pod can reach) and pushes it inline to the sidecars.
#
#   web (curl) -> [sidecar] --mTLS--> [sidecar of orders: RequestAuthentication + policies] -> app
#
# - no token: denied by the policy that wants a request principal (403); a valid token: allowed (200);
# - an issuer whose jwksUri never fetched: the control plane logs jwks_fetch_failed and counts it; its tokens get
#   401 and the sidecar's authn line says why;
# - key rotation at the JWKS server (old and new key, then the new key only), refreshed by the control plane every
#   second: a client sending tokens of the new key throughout sees no failed request, and the old key's tokens are
#   refused at the end.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds curl jq /usr/bin/python3
/usr/bin/python3 -c 'import cryptography' 2>/dev/null ||
    rm_skip "python3-cryptography is not installed (scripts/bootstrap.sh)"
rm_setup
RM_DEFAULT_ACTION=DENY rm_control_init

APP=$RM_SOURCE_DIR/tests/e2e/tools/http_app.py
TOOL=(/usr/bin/python3 "$RM_SOURCE_DIR/tests/e2e/tools/jwt_tool.py")
KEYS="$RM_TMP/keys"
"${TOOL[@]}" keys "$KEYS"
MESH=$RM_TMP/control/mesh
VIP=198.19.0.31
ISS=https://idp.example.test
DEAD=https://dead.example.test
JWKS_DIR="$RM_TMP/jwks-server"
JWKS_PORT=18443
mkdir -p "$JWKS_DIR"
"${TOOL[@]}" jwks "$KEYS" rsa:old ec256:new >"$JWKS_DIR/jwks.json"

cat >"$MESH/orders.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  addresses: [$VIP]
  ports: [8080]
  serviceAccounts: [orders]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: idp, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  jwtRules:
  - issuer: "$ISS"
    jwksUri: "http://127.0.0.1:$JWKS_PORT/jwks.json"
  - issuer: "$DEAD"
    jwksUri: "http://127.0.0.1:1/jwks.json"
    timeout: 1s
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-needs-jwt, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
EOF

rm_pod_create orders
rm_pod_create web
rm_service "$VIP:8080" orders:8080
rm_bg app-http orders "$RM_TMP/logs/app-http.log" /usr/bin/python3 "$APP" http 8080
rm_wait_port orders 8080 10 app-http
rm_bg jwks-server node "$RM_TMP/logs/jwks-server.log" /usr/bin/python3 -m http.server "$JWKS_PORT" \
    --bind 127.0.0.1 --directory "$JWKS_DIR"
rm_wait_port node "$JWKS_PORT" 10 jwks-server

rm_control_start main node 0.0.0.0:15012 --jwks-refresh 1s --admin-listen 127.0.0.1:15014
CLOG=$RM_TMP/logs/control-main.log
rm_pod_mesh orders "control=$(rm_pod_gateway orders):15012" ns=shop sa=orders labels=app=orders
rm_pod_mesh web "control=$(rm_pod_gateway web):15012" ns=web sa=frontend labels=app=web
for p in orders web; do rm_wait_ready "$p"; done
OLOG=$(rm_proxy_log orders)

rm_expect_log "$CLOG" ".event == \"jwks_fetched\" and .uri == \"http://127.0.0.1:$JWKS_PORT/jwks.json\"" \
    "the control plane fetched the JWKS" 10
rm_expect_log "$CLOG" '.event == "jwks_fetch_failed" and .uri == "http://127.0.0.1:1/jwks.json" and
    (.kept | test("refused"))' "a jwksUri that cannot be fetched is logged" 10
failures=$(rm_exec node curl -s --max-time 5 http://127.0.0.1:15014/metrics |
    awk '$1 == "ringmesh_control_jwks_fetch_failures_total" {print $2}')
[ "${failures:-0}" -ge 1 ] || rm_fail "ringmesh_control_jwks_fetch_failures_total is '$failures'"

mint() { # KEY KID ISSUER
    "${TOOL[@]}" mint "$KEYS" "$1" "$2" "$( [ "$1" = rsa ] && echo RS256 || echo ES256)" \
        "{\"iss\":\"$3\",\"sub\":\"alice\",\"exp\":\"+600\"}"
}
code() { # [TOKEN]: the status of GET /api from web
    local h=()
    [ -z "${1:-}" ] || h=(-H "authorization: Bearer $1")
    rm_exec web curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${h[@]}" "http://$VIP:8080/api" || true
}

NEW=$(mint ec256 new "$ISS")
OLD=$(mint rsa old "$ISS")
# the push with the fetched JWKS may follow the first one by a moment
deadline=$(($(rm_now_ms) + 10000))
until [ "$(code "$NEW")" = 200 ]; do
    [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "a valid token is not accepted within 10 s"
    sleep 0.1
done
rm_assert_eq "$(code)" 403 "no token: no request principal, denied by the policy"
rm_assert_eq "$(code "$OLD")" 200 "a token of the old key while the JWKS holds it"
rm_assert_eq "$(code "$(mint ec256 new "$DEAD")")" 401 "a token of the issuer whose JWKS never fetched"
rm_expect_log "$OLOG" '.event == "authn" and (.reason | test("no JWKS for issuer https://dead.example.test"))' \
    "the sidecar says why"

# rotation: the JWKS server drops the old key while tokens of the new key keep coming
fails=0
for i in $(seq 1 60); do
    if [ "$i" = 10 ]; then
        "${TOOL[@]}" jwks "$KEYS" ec256:new >"$JWKS_DIR/jwks.tmp"
        mv -f "$JWKS_DIR/jwks.tmp" "$JWKS_DIR/jwks.json"
    fi
    [ "$(code "$NEW")" = 200 ] || fails=$((fails + 1))
    sleep 0.05
done
deadline=$(($(rm_now_ms) + 10000))
until [ "$(code "$OLD")" = 401 ]; do
    [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "the old key is still accepted 10 s after it left the JWKS"
    [ "$(code "$NEW")" = 200 ] || fails=$((fails + 1))
    sleep 0.1
done
rm_assert_eq "$fails" 0 "requests with the new key that failed during the rotation"
rm_finish
