#!/usr/bin/env bash
#
# Authorization per request on the request path (docs/traffic-management.md#tests). Service orders with three
# endpoint pods; an AuthorizationPolicy in namespace shop allows only spiffe://cluster.local/ns/shop/sa/frontend, and
# only paths /open/*. The requests of many clients ride on the same pooled connections between the proxies, so the
# inbound must decide each request by the principal of the connection it came on, which is the calling workload's own
# SVID:
#   - from pod a (ServiceAccount frontend), ONE keep-alive connection alternates /open/N and /closed/N: every /open
#     request is answered 200, every /closed one 403, request by request on the same connection;
#   - from pod x (ServiceAccount intruder), at the same time as a's requests keep the pooled connections warm, /open
#     requests are answered 403: x's requests are decided as x's, not as whoever opened a pooled connection;
#   - the inbound proxies' decision lines name each denied request's own principal and source IP.
# Depends on: the request path (the inbound's per-request policy with the pooled connection's peer SVID). Today's L4
# pair already decides per request by the client's own connection, so this test passes before the request path
# lands too: it guards the behaviour across the change.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib/traffic.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/traffic.sh"
rm_setup
rm_control_init

VIP=198.19.0.84
ID_FRONTEND="spiffe://cluster.local/ns/shop/sa/frontend"
ID_INTRUDER="spiffe://cluster.local/ns/shop/sa/intruder"

rm_pod_create a
rm_pod_create x
for p in b1 b2 b3; do rm_pod_create "$p"; done
rm_traffic_service orders "$VIP" 8080 orders "$(rm_traffic_ep b1)" "$(rm_traffic_ep b2)" "$(rm_traffic_ep b3)"
cat >"$RM_TMP/control/mesh/policy.yaml" <<'EOF2'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: front-only, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/frontend"]}}]
    to: [{operation: {paths: ["/open/*"]}}]
EOF2
for p in b1 b2 b3; do rm_traffic_http_app "$p" 8080; done
rm_traffic_mesh a b1 b2 b3
rm_pod_mesh x "control=$(rm_pod_gateway x):15012" ns=shop sa=intruder
rm_wait_ready x

# decisions FILTER: decision lines of the three inbound proxies matching FILTER
decisions() {
    local p n=0
    for p in b1 b2 b3; do n=$((n + $(rm_log_count "$(rm_proxy_log "$p")" ".event == \"authz\" and ($1)"))); done
    echo "$n"
}
# wait_decisions FILTER N WHAT: waits (bounded, 10 s) until N decision lines match FILTER
wait_decisions() {
    local i got=0
    for i in $(seq 1 200); do
        got=$(decisions "$1")
        [ "$got" -ge "$2" ] && break
        sleep 0.05
    done
    rm_assert_eq "$got" "$2" "$3"
}

case_per_request_on_one_connection() {
    local i out opened closed
    out=$(rm_exec a timeout 120 "$RM_TRAFFIC_PY" "$RM_TRAFFIC_APP" http-calls "$VIP:8080" 1 --path /warm)
    rm_assert_eq "$(rm_json "$out" .ok)" 0 "/warm is not allowed either (the policy allows /open/* only)"
    # one connection, alternating paths: a tiny script rather than 30 clients, so that it is ONE connection
    out=$(rm_exec a timeout 120 "$RM_TRAFFIC_PY" - "$VIP" <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1], 8080, timeout=10)
res = {"open": {}, "closed": {}, "connections": 1}
for i in range(30):
    kind = "open" if i % 2 == 0 else "closed"
    try:
        c.request("GET", f"/{kind}/{i}")
        r = c.getresponse()
        r.read()
        code = str(r.status)
        if r.will_close:
            c.close()
            c = http.client.HTTPConnection(sys.argv[1], 8080, timeout=10)
            res["connections"] += 1
    except (OSError, http.client.HTTPException):
        code = "error"
        c.close()
        c = http.client.HTTPConnection(sys.argv[1], 8080, timeout=10)
        res["connections"] += 1
    res[kind][code] = res[kind].get(code, 0) + 1
print(json.dumps(res))
PY
    )
    rm_log "a, 30 requests alternating /open and /closed: $out"
    opened=$(rm_json "$out" '.open | tostring')
    closed=$(rm_json "$out" '.closed | tostring')
    rm_assert_eq "$opened" '{"200":15}' "every /open request of frontend was allowed"
    rm_assert_eq "$closed" '{"403":15}' "every /closed request of frontend was denied"
    wait_decisions ".decision == \"deny\" and (.path | startswith(\"/closed/\")) and .source_principal == \"$ID_FRONTEND\"
        and .source_ip == \"${RM_POD_IP[a]}\"" 15 "the inbound proxies logged the 15 denials with frontend's principal and a's address"
}

case_other_principal_denied() {
    local s
    # a keeps the pooled connections busy with allowed requests while x asks
    rm_traffic_calls a http-calls "$VIP:8080" 30 --path /open/warm >/dev/null
    s=$(rm_traffic_calls x http-calls "$VIP:8080" 10 --path /open/x)
    rm_log "x, 10 requests to /open/x: $s"
    rm_assert_eq "$(rm_json "$s" '"\(.status) \(.ok)"')" '{"403":10} 0' "every request of intruder was denied"
    wait_decisions ".decision == \"deny\" and .path == \"/open/x\" and .source_principal == \"$ID_INTRUDER\"
        and .source_ip == \"${RM_POD_IP[x]}\"" 10 "the denials name intruder's principal and x's address"
    rm_assert_eq "$(decisions ".path == \"/open/x\" and .source_principal == \"$ID_FRONTEND\"")" 0 \
        "no request of x was decided as frontend's"
}

rm_case "policy decides each request on one connection" case_per_request_on_one_connection
rm_case "another workload's requests are decided by its own principal" case_other_principal_denied
rm_finish
