#!/usr/bin/env bash
# ringmeshctl route check as a team uses it before applying routes: which route, rule and backend a request takes
# (text and -o json), a canary split drawn over evenly spread random numbers, GRPCRoute service/method matches,
# a directory of mixed documents, and the exit statuses of no match, invalid routes (file, line and field) and
# usage errors.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
[ -x "$RM_CTL_BIN" ] || rm_skip "ringmeshctl is not built ($RM_CTL_BIN)"
D=$RM_TMP/routes
mkdir -p "$D/dir"

ctl() {
    RM_RC=0
    RM_OUT=$("$RM_CTL_BIN" route "$@" 2>&1) || RM_RC=$?
}

cat >"$D/dir/10-routes.yaml" <<'EOF'
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: orders, namespace: shop}
spec: {addresses: [198.19.0.10], ports: [8080, 9090], serviceAccounts: [orders]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-canary, namespace: shop, creationTimestamp: "2024-05-02T10:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: orders, port: 8080}]
  rules:
  - name: marked
    matches: [{headers: [{name: x-canary, value: "true"}]}]
    backendRefs: [{name: orders-v2, port: 8080}]
  - name: split
    backendRefs: [{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: 8080, weight: 10}]
    timeouts: {request: 10s, backendRequest: 2s}
    retry: {attempts: 2, codes: [503], backoff: 50ms}
EOF
cat >"$D/dir/20-grpc.yml" <<'EOF'
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: orders-grpc, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: orders, port: 9090}]
  rules:
  - matches: [{method: {service: shop.Orders, method: Get}}]
    backendRefs: [{name: orders-v2, port: 9090}]
  - backendRefs: [{name: orders-v1, port: 9090}]
EOF
echo "not a route: ignored" >"$D/dir/notes.txt"

case_text() {
    ctl check -f "$D/dir" --port 8080 --path /items --header x-canary=true
    rm_assert_eq "$RM_RC" 0 "a routed request exits 0"
    printf '%s\n' "$RM_OUT" | grep -qxF "route: HTTPRoute shop/orders-canary ($D/dir/10-routes.yaml:6)" ||
        rm_fail "the route is named with its file and line: $RM_OUT"
    printf '%s\n' "$RM_OUT" | grep -qxF "rule: 0 (marked), match 0" || rm_fail "the rule is named: $RM_OUT"
    printf '%s\n' "$RM_OUT" | grep -qxF "backend: shop/orders-v2:8080" || rm_fail "the backend is named: $RM_OUT"
}

case_json_split() {
    local i r v1=0 v2=0 b
    # 100 random numbers spread evenly over [0, 2^32): the 90/10 split is exact
    for i in $(seq 0 99); do
        r=$(((i * 4294967296 + 99) / 100))
        ctl check -f "$D/dir" --port 8080 --path / --random "$r" -o json
        rm_assert_eq "$RM_RC" 0 "a request the split rule routes exits 0"
        b=$(rm_json "$RM_OUT" .backend.name)
        case $b in
        orders-v1) v1=$((v1 + 1)) ;;
        orders-v2) v2=$((v2 + 1)) ;;
        *) rm_fail "unexpected backend $b: $RM_OUT" ;;
        esac
    done
    rm_assert_eq "$v1/$v2" "90/10" "the split sends 90 of 100 draws to v1 and 10 to v2"
    rm_assert_eq "$(rm_json "$RM_OUT" '[.ruleName, .requestTimeoutMs, .backendRequestTimeoutMs, .retry.attempts,
        .retry.codes[0], .retry.backoffMs, .status] | map(tostring) | join(" ")')" "split 10000 2000 2 503 50 200" \
        "-o json carries the rule's timeouts and retry"
}

case_grpc() {
    ctl check -f "$D/dir" --port 9090 --grpc --path /shop.Orders/Get -o json
    rm_assert_eq "$(rm_json "$RM_OUT" '"\(.route.kind) \(.rule) \(.backend.name)"')" "GRPCRoute 0 orders-v2" \
        "the gRPC method match takes Get to v2"
    ctl check -f "$D/dir" --port 9090 --grpc --path /shop.Orders/List -o json
    rm_assert_eq "$(rm_json "$RM_OUT" '"\(.route.kind) \(.rule) \(.backend.name)"')" "GRPCRoute 1 orders-v1" \
        "other methods go to v1"
}

case_no_match() {
    ctl check -f "$D/dir/20-grpc.yml" --port 9090 --path /plain-http
    rm_assert_eq "$RM_RC" 3 "a request no rule matches exits 3"
    printf '%s\n' "$RM_OUT" | grep -qF "status: 404" || rm_fail "the answer is 404: $RM_OUT"
}

case_invalid() {
    cat >"$D/bad.yaml" <<'EOF'
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad, namespace: shop}
spec:
  parentRefs: [{name: my-gateway}]
EOF
    ctl check -f "$D/bad.yaml"
    rm_assert_eq "$RM_RC" 1 "invalid routes exit 1"
    rm_assert_eq "$RM_OUT" "ringmeshctl route check: $D/bad.yaml:5:16: spec.parentRefs[0]: not supported: a parentRef to gateway.networking.k8s.io/Gateway (the mesh attaches routes to a Service: group \"\", kind Service)" \
        "the error names file, line, column and field"
}

case_usage() {
    ctl check --path /
    rm_assert_eq "$RM_RC" 2 "no -f is a usage error"
    ctl check -f "$D/missing.yaml"
    rm_assert_eq "$RM_RC" 2 "a file that cannot be read exits 2"
    ctl check -f "$D/dir" --random -1
    rm_assert_eq "$RM_RC" 2 "a negative --random is a usage error"
}

rm_case "text output names route, rule and backend" case_text
rm_case "the canary split and -o json" case_json_split
rm_case "GRPCRoute service and method matches" case_grpc
rm_case "no match is 404, exit 3" case_no_match
rm_case "invalid routes are refused with file, line and field" case_invalid
rm_case "usage errors" case_usage
rm_finish
