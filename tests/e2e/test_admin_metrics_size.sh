#!/usr/bin/env bash
# /metrics stays whole however many authorization rules have decided: each rule that has decided at least once adds a
# line (ringmesh_proxy_authz_decisions_total{policy,rule}), so a workload with many rules in use has a long page.
#
#   curl -> [proxy "frontend"] --mTLS--> [proxy "orders": 150 ALLOW rules, one path each] -> HTTP app
#
# 150 requests, one per rule, then /metrics: larger than the 8 KiB page it once had to fit in, every rule counted
# once, every line in Prometheus's text format, and the page ends with its last metric.
#
# Loopback only, in a private network namespace when root, else on free host ports.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds curl jq
[ -x /usr/bin/python3 ] || rm_skip "python3 is not installed (scripts/bootstrap.sh installs it)"

RULES=150
POLICIES="$RM_TMP/policies"
mkdir -p "$POLICIES"
{
    printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: paths, namespace: shop}\n'
    printf 'spec:\n  action: ALLOW\n  rules:\n'
    for i in $(seq 0 $((RULES - 1))); do
        printf '  - from: [{source: {principals: ["cluster.local/ns/shop/sa/frontend"]}}]\n'
        printf '    to: [{operation: {methods: ["GET"], paths: ["/p/%d"]}}]\n' "$i"
    done
} >"$POLICIES/paths.yaml"

rm_loopback_place 4
read -r P_APP P_IN P_UP P_ADM_O <<<"${RM_PORTS[*]}"
rm_bg app "$POD" "$RM_TMP/logs/app.log" /usr/bin/python3 "$RM_SOURCE_DIR/tests/e2e/tools/http_app.py" http "$P_APP"
rm_wait_port "$POD" "$P_APP" 10 app
RM_ORDERS_YAML="authorization: {policyDir: \"$POLICIES\", defaultAction: DENY}" \
    rm_loopback_pair "$P_APP" "$P_IN" "$P_UP" - "$P_ADM_O"

case_requests() {
    # one keep-alive connection, one request per rule
    rm_run curl -s -m 60 -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$P_UP/p/[0-$((RULES - 1))]" \
        >"$RM_TMP/codes.txt" || rm_fail "curl through the pair failed"
    rm_assert_eq "$(grep -c '^200$' "$RM_TMP/codes.txt")" "$RULES" "requests answered 200"
}

case_metrics() {
    local page="$RM_TMP/metrics.txt" code bad
    code=$(rm_run curl -s -m 10 -o "$page" -w '%{http_code}' "http://127.0.0.1:$P_ADM_O/metrics")
    rm_assert_eq "$code" 200 "/metrics status"
    [ "$(stat -c %s "$page")" -gt 8192 ] || rm_fail "the page is $(stat -c %s "$page") bytes, no more than the 8 KiB it once was cut at"
    rm_log "ok: /metrics is $(stat -c %s "$page") bytes"
    rm_assert_eq "$(grep -c '^ringmesh_proxy_authz_decisions_total{decision="allow",policy="shop/paths",rule="[0-9]*"} 1$' \
        "$page")" "$RULES" "rules counted once each"
    bad=$(grep -v -E '^(# (HELP|TYPE) .*|[a-z_]+(\{[^}]*\})? -?[0-9.e+]+)$' "$page" | head -n 3 || true)
    [ -z "$bad" ] || rm_fail "lines not in Prometheus's text format: $bad"
    rm_log "ok: every line in Prometheus's text format"
    [ -z "$(tail -c 1 "$page")" ] || rm_fail "the page does not end with a newline"
    # the last family is the series-limit counter that follows the request metrics
    tail -n 1 "$page" | grep -q '^ringmesh_metrics_series_folded_total{metric="ringmesh_tcp_received_bytes_total"} ' ||
        rm_fail "the page ends with: $(tail -n 1 "$page")"
    rm_log "ok: the page ends with its last metric"
}

rm_case "a request for every rule" case_requests
rm_case "/metrics whole" case_metrics
rm_finish
