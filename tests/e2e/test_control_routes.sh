#!/usr/bin/env bash
#
# HTTPRoutes from the control plane's file source, pushed to a proxy in its destination map:
#   - an HTTPRoute in the configuration directory is accepted (config_accepted counts it) and pod a's proxy holds it
#     on every VIP:port of the Service it attaches to (/config_dump), and no other Service;
#   - a change to the route is pushed (a new destinations version, the new rules);
#   - an invalid route (a RequestMirror filter, which the mesh does not do) is rejected with file, line and field,
#     and the route in force stays, in the control plane and in the proxy;
#   - removing the route file removes the route from the push.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_control_init

VIP=198.19.0.10
VIP2=198.19.0.11
MESH=$RM_TMP/control/mesh

rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders
rm_mesh_service billing.yaml billing shop "$VIP2" 9090 billing

# route_file RULES...: the canary route of orders, with one header match rule and a 90/10 split
write_route() {
    cat >"$MESH/routes.yaml" <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-canary, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: orders}
  rules:
  - matches:
    - headers: [{name: x-canary, value: "true"}]
    backendRefs: [{name: orders-v2, port: 8080}]
$1
EOF
}

write_route "  - backendRefs: [{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: 8080, weight: 10}]"

rm_pod_create a
rm_control_start main node 0.0.0.0:15012
CLOG=$RM_TMP/logs/control-main.log
rm_pod_mesh a "control=$(rm_pod_gateway a):15012" ns=shop sa=frontend
rm_wait_ready a

dump() {
    rm_exec a curl -sf http://127.0.0.1:15021/config_dump || rm_fail "GET /config_dump failed"
}

# routes_of ADDRESS: "name:rules" of the routes the proxy holds for ADDRESS, comma-separated
routes_of() {
    rm_json "$(dump)" "[.destinations[] | select(.address == \"$1\") | .routes // [] | .[] |
        \"\\(.kind) \\(.namespace)/\\(.name):\\(.rules)\"] | join(\",\")"
}

# wait_routes ADDRESS WANT WHAT: polls /config_dump (bounded) until the proxy holds WANT for ADDRESS
wait_routes() {
    local i got
    for i in $(seq 1 50); do
        got=$(routes_of "$1")
        [ "$got" = "$2" ] && break
        sleep 0.1
    done
    rm_assert_eq "$got" "$2" "$3"
}

case_pushed() {
    rm_expect_log "$CLOG" '.event == "config_accepted" and .routes == 1' "the control plane accepted one route"
    wait_routes "$VIP:8080" "HTTPRoute shop/orders-canary:2" "pod a holds the route on orders' VIP:port"
    rm_assert_eq "$(routes_of "$VIP2:9090")" "" "billing has no route"
}

case_change() {
    local v0
    v0=$(rm_json "$(dump)" .control_plane.versions.destinations)
    write_route "  - matches: [{path: {type: PathPrefix, value: /v2}}]
    backendRefs: [{name: orders-v2, port: 8080}]
  - backendRefs: [{name: orders-v1, port: 8080}]"
    wait_routes "$VIP:8080" "HTTPRoute shop/orders-canary:3" "the changed route is pushed"
    [ "$(rm_json "$(dump)" .control_plane.versions.destinations)" != "$v0" ] ||
        rm_fail "the destinations version did not change"
}

case_invalid_kept() {
    local before
    before=$(routes_of "$VIP:8080")
    write_route "  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: orders-v2, port: 8080}}}]
    backendRefs: [{name: orders-v1, port: 8080}]"
    rm_expect_log "$CLOG" ".event == \"config_rejected\" and .file == \"$MESH/routes.yaml\" and .line == 11
        and .field == \"spec.rules[1].filters[0].type\" and (.reason | test(\"not supported by the mesh: filter RequestMirror\"))" \
        "the control plane rejects the RequestMirror filter with file, line and field"
    sleep 0.5 # a push, if one were made, would have reached the proxy by now
    rm_assert_eq "$(routes_of "$VIP:8080")" "$before" "the proxy keeps the route in force"
}

case_removed() {
    rm -f "$MESH/routes.yaml"
    rm_expect_log "$CLOG" '.event == "config_accepted" and .routes == 0' "the control plane accepts the mesh without routes"
    wait_routes "$VIP:8080" "" "the route is gone from the push"
}

rm_case "a route is pushed with its Service" case_pushed
rm_case "a changed route is pushed" case_change
rm_case "an invalid route is rejected and the last good kept" case_invalid_kept
rm_case "a removed route leaves the push" case_removed
rm_finish
