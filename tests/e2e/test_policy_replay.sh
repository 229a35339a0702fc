#!/usr/bin/env bash
# Why not allowed, and a policy change previewed on real traffic before it is applied.
#
#   curl -> [proxy "frontend": upstream listener] --mTLS--> [proxy "orders": STRICT inbound listener, policies from
#           files, default DENY, logAllowed and logAttributes on] -> python3 http.server
#
# - a DELETE no ALLOW rule matches is denied, and its decision line names the closest miss: shop/orders-access
#   rule 0, to[0].operation.methods, want [GET, POST], got DELETE;
# - allowed requests are logged with every attribute the engine reads (the x-team header a policy tests), and the
#   values of Authorization and Cookie appear nowhere in the proxy's log;
# - `ringmeshctl policy replay` on the log as `kubectl logs --prefix` prints it (with other lines mixed in): a
#   stricter set (GET only) turns the 2 POSTs from allowed to denied (exit 3, one group, count 2, the closest miss
#   named); a looser set (DELETE too) denies nothing (exit 0) and turns the DELETE into allowed; --against the set in
#   force changes nothing; a policy file with an error exits 1 naming file and line;
# - `ringmeshctl policy coverage` against the live proxy's /metrics lists the rule that never matched, and the
#   policy that selects no workload of those given.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds curl jq /usr/bin/python3
[ -x "$RM_CTL_BIN" ] || rm_skip "ringmeshctl is not built ($RM_CTL_BIN)"

POLICIES="$RM_TMP/policies"
mkdir -p "$POLICIES" "$RM_TMP/www/orders"
echo order >"$RM_TMP/www/orders/1"

# access POLICY-NAME METHODS...: shop's ALLOW policy for the frontend's namespace; rule 1 (PATCH from team ops)
# never matches in this test
access() {
    local name=$1
    shift
    cat <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: $name, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [shop]}}]
    to: [{operation: {methods: [$(
        IFS=,
        echo "$*"
    )]}}]
  - to: [{operation: {methods: [PATCH]}}]
    when: [{key: "request.headers[x-team]", values: [ops]}]
EOF
}
access orders-access GET POST >"$POLICIES/access.yaml"

rm_loopback_place 4
read -r P_APP P_IN P_UP P_ADM_O <<<"${RM_PORTS[*]}"
rm_bg app-http "$POD" "$RM_TMP/logs/app-http.log" /usr/bin/python3 -m http.server --bind 127.0.0.1 \
    --directory "$RM_TMP/www" "$P_APP"
rm_wait_port "$POD" "$P_APP" 15 app-http
RM_ORDERS_YAML=$(printf 'authorization:\n  policyDir: "%s"\n  defaultAction: DENY\n  logAllowed: true\n  logAttributes: true' \
    "$POLICIES") rm_loopback_pair "$P_APP" "$P_IN" "$P_UP" - "$P_ADM_O"
LOG_O="$RM_TMP/logs/proxy-orders.log"
rm_expect_log "$LOG_O" '.event == "policies_loaded" and .policies == 1' "the policy is loaded"

# request METHOD PATH [curl args...]: through frontend; sets CODE
request() {
    CODE=$(rm_run curl -s -X "$1" -o /dev/null -w '%{http_code}' --max-time 10 "${@:3}" \
        "http://127.0.0.1:$P_UP$2") || true
}

SECRET_AUTH="Bearer e2e-secret-token-$$"
SECRET_COOKIE="session=e2e-secret-cookie-$$"
for i in 1 2 3; do
    request GET /orders/1 -H "x-team: payments" -H "Authorization: $SECRET_AUTH"
    rm_assert_eq "$CODE" 200 "GET $i is allowed"
done
for i in 1 2; do
    request POST /orders -H "x-team: payments" -H "Cookie: $SECRET_COOKIE" -d "n=$i"
    [ "$CODE" != 403 ] || rm_fail "POST $i: denied"
done
request DELETE /orders/1 -H "Authorization: $SECRET_AUTH"
rm_assert_eq "$CODE" 403 "DELETE is denied"

case_closest_miss_logged() {
    rm_expect_log "$LOG_O" '.event == "authz" and .decision == "deny" and .method == "DELETE"
        and .closest_miss.policy == "shop/orders-access" and .closest_miss.rule == 0
        and .closest_miss.field == "to[0].operation.methods" and .closest_miss.want == ["GET", "POST"]
        and .closest_miss.got == "DELETE"
        and (.explanation | contains("shop/orders-access rule 0: methods [GET, POST] did not match DELETE"))' \
        "the denial names its closest miss"
}

case_attributes_logged_without_secrets() {
    rm_expect_log_nth "$LOG_O" '.event == "authz" and .decision == "allow"' 5 "every allowed request is logged"
    rm_expect_log "$LOG_O" '.event == "authz" and .decision == "allow" and .attributes.method == "POST"
        and .attributes.path == "/orders" and .attributes.headers["x-team"] == "payments"
        and .attributes.principal == "spiffe://cluster.local/ns/shop/sa/frontend"
        and .attributes.destination_port > 0' "an allowed request's attributes"
    if grep -qF -e "e2e-secret-token-$$" -e "e2e-secret-cookie-$$" "$LOG_O"; then
        rm_fail "a credential is in the proxy's log: $(grep -F -e "e2e-secret" "$LOG_O" | head -n 1)"
    fi
    rm_log "ok: neither the Authorization nor the Cookie value is in the log"
}

# The log as `kubectl logs --prefix` prints it, other lines mixed in.
CAPTURED="$RM_TMP/captured.log"
captured_log() {
    {
        echo "not a JSON line"
        sed 's|^|[pod/orders-7d9f/ringmesh-proxy] |' "$LOG_O"
        echo '[pod/orders-7d9f/app] {"msg": "an app line"}'
    } >"$CAPTURED"
}

ctl() {
    RM_RC=0
    RM_OUT=$("$RM_CTL_BIN" policy "$@" 2>&1) || RM_RC=$?
}

case_replay_stricter() {
    captured_log
    mkdir -p "$RM_TMP/stricter"
    access orders-access GET >"$RM_TMP/stricter/access.yaml"
    ctl replay --log "$CAPTURED" -f "$RM_TMP/stricter" -o json
    rm_assert_eq "$RM_RC" 3 "replay exit status when allowed requests would be denied ($RM_OUT)"
    rm_assert_eq "$(jq -c '[.replayed, .unchanged, .allow_to_deny, .deny_to_allow]' <<<"$RM_OUT")" "[6,4,2,0]" \
        "replayed, unchanged, allow->deny, deny->allow"
    [ "$(jq '.skipped_lines' <<<"$RM_OUT")" -ge 2 ] || rm_fail "the other lines are not counted: $RM_OUT"
    rm_assert_eq "$(jq -c '.allow_to_deny_groups | map([.policy, .rule, .reason, .source, .count])' <<<"$RM_OUT")" \
        '[["shop/orders-access",0,"no ALLOW policy matched","spiffe://cluster.local/ns/shop/sa/frontend",2]]' \
        "one group: the two POSTs, under the closest miss"
    jq -e '.allow_to_deny_groups[0].example | test("POST /orders: .*closest miss: shop/orders-access rule 0: methods \\[GET\\] did not match POST")' \
        <<<"$RM_OUT" >/dev/null || rm_fail "the example names the request and why: $RM_OUT"
    ctl replay --log "$CAPTURED" -f "$RM_TMP/stricter"
    rm_assert_eq "$RM_RC" 3 "text output: same exit status"
    grep -qF "ALLOWED -> DENIED (2):" <<<"$RM_OUT" || rm_fail "text output: $RM_OUT"
}

case_replay_looser() {
    captured_log
    mkdir -p "$RM_TMP/looser"
    access orders-access GET POST DELETE >"$RM_TMP/looser/access.yaml"
    ctl replay --log "$CAPTURED" -f "$RM_TMP/looser" -o json
    rm_assert_eq "$RM_RC" 0 "replay exit status when nothing allowed would be denied ($RM_OUT)"
    rm_assert_eq "$(jq -c '[.replayed, .unchanged, .allow_to_deny, .deny_to_allow]' <<<"$RM_OUT")" "[6,5,0,1]" \
        "the DELETE would be allowed"
    rm_assert_eq "$(jq -c '.deny_to_allow_groups | map([.policy, .rule, .count])' <<<"$RM_OUT")" \
        '[["shop/orders-access",0,1]]' "allowed by the looser rule"
    # against the set in force: the recorded decisions again, nothing changes
    ctl replay --log "$CAPTURED" -f "$POLICIES" --against "$POLICIES" -o json
    rm_assert_eq "$RM_RC" 0 "replay of the set in force"
    rm_assert_eq "$(jq -c '[.replayed, .unchanged]' <<<"$RM_OUT")" "[6,6]" "nothing changes"
}

case_replay_errors() {
    captured_log
    mkdir -p "$RM_TMP/bad"
    printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: b, namespace: shop}\nspec:\n  action: ALLOW\n  rules:\n  - to: [{operation: {methods: 7}}]\n' \
        >"$RM_TMP/bad/bad.yaml"
    ctl replay --log "$CAPTURED" -f "$RM_TMP/bad"
    rm_assert_eq "$RM_RC" 1 "a bad policy file"
    grep -qF "$RM_TMP/bad/bad.yaml:7:" <<<"$RM_OUT" || rm_fail "the error names file and line: $RM_OUT"
    ctl replay --log "$RM_TMP/no-such.log" -f "$POLICIES"
    rm_assert_eq "$RM_RC" 1 "a log that cannot be read"
    grep -qF "$RM_TMP/no-such.log" <<<"$RM_OUT" || rm_fail "the error names the file: $RM_OUT"
}

case_coverage_live_proxy() {
    cp "$POLICIES/access.yaml" "$RM_TMP/coverage.yaml"
    cat >>"$RM_TMP/coverage.yaml" <<'EOF'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: billing-only, namespace: billing}
spec:
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [shop]}}]
EOF
    RM_RC=0
    RM_OUT=$(rm_run "$RM_CTL_BIN" policy coverage --admin "127.0.0.1:$P_ADM_O" -f "$RM_TMP/coverage.yaml" \
        --workload shop:app=orders -o json 2>&1) || RM_RC=$?
    rm_assert_eq "$RM_RC" 0 "coverage exit status ($RM_OUT)"
    rm_assert_eq "$(jq -c '.never_matched | map([.policy, .rule])' <<<"$RM_OUT")" \
        '[["shop/orders-access",1],["billing/billing-only",0]]' "the rules that never matched"
    rm_assert_eq "$(jq -c '.select_no_workload' <<<"$RM_OUT")" '["billing/billing-only"]' \
        "the policy that selects no workload"
    # from the logs instead, with the set in force: a proxy without a control plane applies every policy of its
    # directory, and its lines say no workload, so every policy applies to them when they are decided again
    captured_log
    ctl coverage --log "$CAPTURED" -f "$POLICIES" --workload shop:app=orders -o json
    rm_assert_eq "$RM_RC" 0 "coverage from logs ($RM_OUT)"
    rm_assert_eq "$(jq -c '[.requests, (.never_matched | map([.policy, .rule])), .select_no_workload]' <<<"$RM_OUT")" \
        '[6,[["shop/orders-access",1]],[]]' "the same rule, from the logs"
}

rm_case closest_miss_logged case_closest_miss_logged
rm_case attributes_logged_without_secrets case_attributes_logged_without_secrets
rm_case replay_stricter case_replay_stricter
rm_case replay_looser case_replay_looser
rm_case replay_errors case_replay_errors
rm_case coverage_live_proxy case_coverage_live_proxy
rm_finish
