#!/usr/bin/env bash
# ringmesh in one command, run as root on Debian 12 (through sudo or not):
#
#   ./scripts/demo.sh
#
# 1. scripts/bootstrap.sh installs what is missing and builds the accelerated wolfSSL (when the script exists);
# 2. configures and builds ringmesh into build/ (or $RM_BUILD_DIR);
# 3. brings up a small cluster made of network namespaces (tests/e2e/lib.sh): a node doing kube-proxy style
#    DNAT for service VIPs and running ringmesh-control, a meshed "frontend" pod, a meshed "orders" pod behind
#    198.19.0.10:8080, and an impostor pod (service account "payments") behind 198.19.0.11:8080, a VIP the mesh
#    configuration says is served by "orders";
# 4. each proxy gets its SVID from the control plane (its ServiceAccount token attested against a JWKS) and its
#    destination map from the discovery stream; the demo prints those log lines;
# 5. zero-trust authorization: the mesh denies by default, and one AuthorizationPolicy (Istio's format) lets the
#    frontend GET /orders/*, another denies DELETE; the demo sends an allowed GET, then a DELETE that orders' proxy
#    answers with 403
#    and explains in its log (which policy, which rule, who asked for what);
# 6. sends one request to the impostor's VIP: refused, because the server's SPIFFE ID is not the one expected for
#    that destination;
# 7. prints the proxies' log lines for each and tears everything down.
#
# `scripts/demo.sh --no-build` skips steps 1 and 2 and uses what is already built.
set -euo pipefail

[ "$(id -u)" = 0 ] || {
    echo "demo.sh needs root (it installs packages and makes network namespaces and iptables rules): run it as root" >&2
    exit 1
}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${RM_BUILD_DIR:-$ROOT/build}

bold() {
    if [ -t 1 ]; then
        printf '\n\033[1m%s\033[0m\n' "$*"
    else
        printf '\n%s\n' "$*"
    fi
}

NO_BUILD=0
case "${1:-}" in
--no-build) NO_BUILD=1 ;;
"") ;;
*)
    echo "usage: $0 [--no-build]" >&2
    exit 2
    ;;
esac

if [ $NO_BUILD = 0 ]; then
    bold "==> preparing the machine and building into $BUILD"
    if [ -f "$ROOT/scripts/bootstrap.sh" ]; then
        bash "$ROOT/scripts/bootstrap.sh" "$BUILD"
    fi
    # The accelerated wolfSSL is what bootstrap builds; without it, fall back to Debian's library.
    system_wolfssl=ON
    [ -f "$BUILD/deps/wolfssl/lib/libwolfssl.a" ] && system_wolfssl=OFF
    mkdir -p "$BUILD"
    if ! cmake -S "$ROOT" -B "$BUILD" -DRINGMESH_SYSTEM_WOLFSSL=$system_wolfssl >"$BUILD/demo-build.log" 2>&1 ||
        ! cmake --build "$BUILD" -j"$(nproc)" >>"$BUILD/demo-build.log" 2>&1; then
        tail -n 40 "$BUILD/demo-build.log" >&2
        echo "the build failed; the whole log is $BUILD/demo-build.log" >&2
        exit 1
    fi
    echo "  built (log: $BUILD/demo-build.log)"
fi
[ -x "$BUILD/sidecar/ringmesh-proxy" ] || {
    echo "the build did not produce $BUILD/sidecar/ringmesh-proxy" >&2
    exit 1
}

bold "==> bringing up the namespace cluster"
export RM_BUILD_DIR=$BUILD RM_SOURCE_DIR=$ROOT RINGMESH_IO_BACKEND=${RINGMESH_IO_BACKEND:-default}
export RM_E2E_QUIET=1
# a machine where namespaces or iptables cannot be used stops the demo with lib.sh's reason, as an error
export RM_SKIP_AS_ERROR="demo.sh cannot run on this machine"
# shellcheck source-path=SCRIPTDIR/.. source=tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"
started=$(date +%s)
rm_setup

ID_FRONTEND="spiffe://cluster.local/ns/shop/sa/frontend"
ID_ORDERS="spiffe://cluster.local/ns/shop/sa/orders"
ID_IMPOSTOR="spiffe://cluster.local/ns/shop/sa/payments"
RM_DEFAULT_ACTION=DENY rm_control_init
cat >"$RM_TMP/control/mesh/orders-policy.yaml" <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders-readers, namespace: shop}
spec:
  selector:
    matchLabels: {app: orders}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/frontend"]
    to:
    - operation:
        ports: ["8080"]
        methods: ["GET"]
        paths: ["/orders/*"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-deletes, namespace: shop}
spec:
  action: DENY
  rules:
  - to:
    - operation:
        ports: ["8080"]
        methods: ["DELETE"]
EOF
cat >"$RM_TMP/control/mesh/shop.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  addresses: [198.19.0.10]
  ports: [8080]
  serviceAccounts: [orders]
---
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: orders-canary, namespace: shop}
spec:
  addresses: [198.19.0.11]
  ports: [8080]
  serviceAccounts: [orders]
EOF
rm_pod_create frontend
rm_pod_create orders
rm_pod_create impostor
rm_service 198.19.0.10:8080 orders:8080
rm_service 198.19.0.11:8080 impostor:8080
rm_bg app-orders orders "$RM_TMP/logs/app-orders.log" /usr/bin/python3 "$ROOT/tests/e2e/tools/http_app.py" http 8080
rm_wait_port orders 8080 10 app-orders
rm_server impostor impostor 0.0.0.0:8080 echo
rm_control_start main node 0.0.0.0:15012 --log-level info
rm_pod_mesh orders "control=$(rm_pod_gateway orders):15012" ns=shop sa=orders labels=app=orders
rm_pod_mesh impostor "control=$(rm_pod_gateway impostor):15012" ns=shop sa=payments
rm_pod_mesh frontend "control=$(rm_pod_gateway frontend):15012" ns=shop sa=frontend
for pod in orders impostor frontend; do
    rm_wait_ready "$pod" >/dev/null
done
cat <<EOF
  node       $RM_NODE_NS (routes between pods, DNATs the service VIPs, runs ringmesh-control)
  frontend   ${RM_POD_IP[frontend]}  $ID_FRONTEND
  orders     ${RM_POD_IP[orders]}  $ID_ORDERS        <- VIP 198.19.0.10:8080 (service orders)
  impostor   ${RM_POD_IP[impostor]}  $ID_IMPOSTOR      <- VIP 198.19.0.11:8080 (service orders-canary)
  the mesh configuration says both services are served by $ID_ORDERS
  authorization: deny by default; shop/orders-readers lets the frontend GET /orders/* on orders, and
                 shop/no-deletes denies DELETE on port 8080 to every workload of the namespace
EOF

pretty() {
    # key fields first, one per line, in colour on a terminal
    local color=-M
    [ -t 1 ] && color=-C
    jq -R $color 'fromjson? | {event, level, direction, mode, src, dst, peer_id, expected, reason, tls_version,
        bytes_sent, bytes_received, close} | with_entries(select(.value != null))' | sed 's/^/    /'
}
status=0
# the logs carry certificate times as seconds since the epoch (for machines); the demo shows them as dates
JQ_DATES='def date_fields: with_entries(if (.key | test("^(notAfter|not_after|notBefore|not_before)$")) and
    (.value | type) == "number" then .value |= todate else . end); '

bold "==> identities and configuration from the control plane"
echo "  ringmesh-control:"
rm_log_select "$RM_TMP/logs/control-main.log" '.event == "control_started" or .event == "svid_issued"' |
    jq -R -M "$JQ_DATES"'fromjson? | {event, spiffeId, pod, notAfter, trustDomain, services, attestation} |
        with_entries(select(.value != null)) | date_fields' | sed 's/^/    /'
echo "  frontend's proxy:"
rm_log_select "$(rm_proxy_log frontend)" '.event == "svid_issued" or .event == "config_accepted" or
    .event == "proxy_ready"' | jq -R -M "$JQ_DATES"'fromjson? | {event, spiffe_id, not_after, type, version} |
        with_entries(select(.value != null)) | date_fields' | sed 's/^/    /'

bold "==> request 1: frontend -> orders: GET http://198.19.0.10:8080/orders/42"
code=$(rm_exec frontend curl -s -o "$RM_TMP/logs/req1.body" -w '%{http_code}' --max-time 10 \
    http://198.19.0.10:8080/orders/42) || true
if [ "$code" = 200 ]; then
    echo "  allowed: HTTP $code, the orders app answered \"$(cat "$RM_TMP/logs/req1.body")\" (over mTLS)"
else
    echo "  FAILED: HTTP $code"
    status=1
fi
rm_wait_log "$(rm_proxy_log orders)" '.event == "connection"' 5 >/dev/null || true
echo "  orders' proxy:"
rm_log_select "$(rm_proxy_log orders)" '.event == "connection"' | pretty

bold "==> request 2: frontend -> orders: DELETE http://198.19.0.10:8080/orders/42"
code=$(rm_exec frontend curl -s -o "$RM_TMP/logs/req2.body" -w '%{http_code}' -X DELETE --max-time 10 \
    -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" http://198.19.0.10:8080/orders/42) || true
if [ "$code" = 403 ]; then
    echo "  denied: HTTP $code \"$(cat "$RM_TMP/logs/req2.body")\"; the orders app never saw the request"
else
    echo "  UNEXPECTED: HTTP $code"
    status=1
fi
rm_wait_log "$(rm_proxy_log orders)" '.event == "authz"' 5 >/dev/null || true
echo "  orders' proxy explains the decision (kubectl logs shows this line):"
rm_log_select "$(rm_proxy_log orders)" '.event == "authz"' | jq -R -M 'fromjson? | {event, decision, policy, rule, reason,
    explanation, source_principal, source_ip, destination_workload, destination_port, method, path, trace_id} |
    with_entries(select(.value != null))' | sed 's/^/    /'
echo "  ringmeshctl policy lint: the demo's policies, checked as the control plane checks them:"
"$RM_CTL_BIN" policy lint "$RM_TMP/control/mesh/orders-policy.yaml" | sed 's/^/    /' || status=1
echo "  ringmeshctl policy check: the same engine, to try a request against policies before applying them:"
"$RM_CTL_BIN" policy check -f "$RM_TMP/control/mesh/orders-policy.yaml" --to-namespace shop --to-labels app=orders \
    --from "$ID_FRONTEND" --port 8080 --method DELETE --path /orders/42 | sed 's/^/    /' || true

bold "==> request 3: frontend -> impostor (198.19.0.11:8080)"
REQUEST="GET /orders/42 HTTP/1.0"
rm_client refused frontend --timeout 5000 --connect 198.19.0.11:8080 "send:$REQUEST" readeof
if [ "$(jq -r .received <"$RM_TMP/logs/client-refused.status")" = 0 ]; then
    case "$RM_RC" in
    0) how="closed by its proxy" ;;
    3) how="reset by its proxy" ;;
    *) how="client exit $RM_RC" ;;
    esac
    got=$(rm_log_select "$(rm_server_log impostor)" '.event == "close"' | jq -s 'map(.received) | add // 0')
    if [ "$got" = 0 ]; then
        echo "  refused: the connection was $how; the impostor's application received nothing"
    else
        echo "  UNEXPECTED: the impostor's application received $got bytes"
        status=1
    fi
else
    echo "  UNEXPECTED: the client got an answer: $(cat "$(rm_client_out refused)")"
    status=1
fi
rm_wait_log "$(rm_proxy_log frontend)" '.event == "peer_rejected"' 5 >/dev/null || true
echo "  frontend's proxy:"
rm_log_select "$(rm_proxy_log frontend)" '.event == "peer_rejected"' | pretty

bold "==> tearing down ($(($(date +%s) - started)) s after the build)"
exit $status
