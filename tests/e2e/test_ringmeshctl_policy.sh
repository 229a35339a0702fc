#!/usr/bin/env bash
# ringmeshctl policy lint / check as a team uses them before applying a change: every error with file, line and
# field; warnings that do not fail the lint; exit statuses a CI job can branch on; usage errors.
# (The decisions themselves are checked case by case in test_policy_table.sh.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
[ -x "$RM_CTL_BIN" ] || rm_skip "ringmeshctl is not built ($RM_CTL_BIN)"
POLICIES=$RM_SOURCE_DIR/tests/data/policy/table
D=$RM_TMP/policies

ctl() {
    RM_RC=0
    RM_OUT=$("$RM_CTL_BIN" policy "$@" 2>&1) || RM_RC=$?
}

case_lint_valid_with_warnings() {
    mkdir -p "$D/valid"
    cp "$POLICIES/allow-get-api.yaml" "$POLICIES/deny-evil-ns.yaml" "$POLICIES/presence.yaml" "$D/valid/"
    cat >"$D/valid/overlap.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: overlap, namespace: shop}
spec:
  rules:
  - from:
    - source: {namespaces: [web], notNamespaces: [web]}
EOF
    ctl lint "$D/valid"
    rm_assert_eq "$RM_RC" 0 "lint of valid policies exits 0, warnings or not"
    echo "$RM_OUT" | grep -qF "$D/valid/overlap.yaml:7:15: spec.rules[0].from[0].source: warning: \"web\" is in both namespaces and notNamespaces: this can never match" ||
        rm_fail "no warning for a rule that can never match: $RM_OUT"
    echo "$RM_OUT" | grep -qF "$D/valid/allow-get-api.yaml:7:5: spec.rules[0]: warning: uses HTTP-only fields" ||
        rm_fail "no warning for HTTP-only fields in an ALLOW rule: $RM_OUT"
    rm_assert_eq "$(echo "$RM_OUT" | tail -n 1)" "4 AuthorizationPolicy, 1 PeerAuthentication; 0 errors, 2 warnings" \
        "lint sums up"
}

case_lint_every_error() {
    mkdir -p "$D/bad"
    cat >"$D/bad/bad.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: Bad_Name, namespace: shop}
spec:
  action: REJECT
  rules:
  - from:
    - source: {principals: ["a*b"], requestPrincipals: ["a*b"]}
    to:
    - operation: {ports: ["0"], methods: [GET], paths: ["api"]}
    when:
    - key: request.auth.claims[]
      values: [x]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: fine, namespace: shop}
spec:
  rules: [{}]
EOF
    ctl lint "$D/bad/bad.yaml"
    rm_assert_eq "$RM_RC" 1 "lint exits 1 when a policy has an error"
    local want line
    while IFS= read -r want; do
        echo "$RM_OUT" | grep -qF "$D/bad/bad.yaml:$want" || rm_fail "lint does not report '$want': $RM_OUT"
    done <<'EOF'
3:18: metadata.name: "Bad_Name" is not a DNS subdomain name
5:11: spec.action: "REJECT" is not an action (ALLOW, DENY or AUDIT)
8:29: spec.rules[0].from[0].source.principals[0]: "a*b": '*' may only be the first or the last character
8:57: spec.rules[0].from[0].source.requestPrincipals[0]: "a*b": '*' may only be the first or the last character
10:27: spec.rules[0].to[0].operation.ports[0]: "0" is not a port number (1-65535)
10:57: spec.rules[0].to[0].operation.paths[0]: "api": a path must begin with '/'
12:12: spec.rules[0].when[0].key: "request.auth.claims[]": want request.auth.claims[NAME]
EOF
    line=$(echo "$RM_OUT" | tail -n 1)
    rm_assert_eq "$line" "1 AuthorizationPolicy, 0 PeerAuthentication; 7 errors, 0 warnings" \
        "every error is reported, and the valid document of the file is still read"
    # in text order
    rm_assert_eq "$(echo "$RM_OUT" | grep -c "bad.yaml:")" 7 "seven error lines"
    rm_assert_eq "$(echo "$RM_OUT" | grep "bad.yaml:" | cut -d: -f2 | tr '\n' ' ')" "3 5 8 8 10 10 12 " "errors in file order"
}

case_lint_duplicates_and_kinds() {
    mkdir -p "$D/dup"
    cp "$POLICIES/allow-all.yaml" "$D/dup/a.yaml"
    cp "$POLICIES/allow-all.yaml" "$D/dup/b.yaml"
    cat >"$D/dup/deploy.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec: {replicas: &r 2, template: {metadata: {labels: {replicas: *r}}}}
EOF
    ctl lint "$D/dup"
    rm_assert_eq "$RM_RC" 1 "a policy defined twice is an error"
    echo "$RM_OUT" | grep -qF "$D/dup/b.yaml:2:1: metadata.name: AuthorizationPolicy shop/allow-all is defined twice (first at $D/dup/a.yaml:2)" ||
        rm_fail "the duplicate is not named with both places: $RM_OUT"
    echo "$RM_OUT" | grep -q "deploy.yaml" && rm_fail "a Deployment (even with aliases) is not a policy error: $RM_OUT"
    ctl lint --strict "$D/dup/deploy.yaml"
    rm_assert_eq "$RM_RC" 1 "--strict refuses documents that are not policies"
    echo "$RM_OUT" | grep -qF "deploy.yaml:2:7: kind: \"Deployment\" is not a policy kind" || rm_fail "--strict: $RM_OUT"
    ctl lint "$D/missing"
    rm_assert_eq "$RM_RC" 2 "an unreadable path exits 2"
    echo "$RM_OUT" | grep -qF "$D/missing: cannot read: No such file or directory" || rm_fail "unreadable: $RM_OUT"
}

case_check_text_and_status() {
    mkdir -p "$D/check"
    cp "$POLICIES/allow-all.yaml" "$POLICIES/deny-admin-suffix.yaml" "$D/check/"
    ctl check -f "$D/check" --to-namespace shop --to-labels app=orders --port 8080 \
        --from spiffe://cluster.local/ns/web/sa/frontend --method GET --path /shop/admin
    rm_assert_eq "$RM_RC" 3 "check exits 3 for deny"
    echo "$RM_OUT" | grep -qx "decision: deny" || rm_fail "no decision line: $RM_OUT"
    echo "$RM_OUT" | grep -qx "why: denied by DENY policy shop/deny-admin rule 0" || rm_fail "no why line: $RM_OUT"
    echo "$RM_OUT" | grep -qF "policy: shop/deny-admin (DENY) rule 0, $D/check/deny-admin-suffix.yaml:1" ||
        rm_fail "no policy line with its file: $RM_OUT"
    ctl check -f "$D/check" --to-namespace shop --to-labels app=orders --port 8080 \
        --from spiffe://cluster.local/ns/web/sa/frontend --method GET --path /shop/list
    rm_assert_eq "$RM_RC" 0 "check exits 0 for allow"
    echo "$RM_OUT" | grep -qx "why: allowed by ALLOW policy shop/allow-all rule 0" || rm_fail "allow: $RM_OUT"
    # labels that the selector does not match: only the namespace-wide DENY applies, and no ALLOW policy selects
    ctl check -f "$D/check" --to-namespace shop --to-labels app=cart --port 8080 --method GET --path /x
    rm_assert_eq "$RM_RC" 3 "a workload no ALLOW policy selects is denied by default"
    echo "$RM_OUT" | grep -q "(default-deny)" || rm_fail "default deny: $RM_OUT"
    ctl check -f "$D/check" --to-namespace shop --to-labels app=cart --port 8080 --method GET --path /x \
        --default-action allow
    rm_assert_eq "$RM_RC" 0 "--default-action allow"
}

case_check_invalid_and_usage() {
    ctl check -f "$D/bad" --to-namespace shop --port 8080
    rm_assert_eq "$RM_RC" 1 "check refuses invalid policies"
    echo "$RM_OUT" | grep -qF "bad.yaml:5:11: spec.action" || rm_fail "check names the errors: $RM_OUT"
    local args
    for args in "--to-namespace shop --port 8080" "-f $D/check --port 8080" "-f $D/check --to-namespace shop" \
        "-f $D/check --to-namespace shop --port 0" "-f $D/check --to-namespace shop --port 80 --from cluster.local/ns/a/sa/b" \
        "-f $D/check --to-namespace shop --port 80 -o yaml" "-f $D/check --to-namespace shop --port 80 --header novalue" \
        "-f $D/check --to-namespace shop --port 80 --source-ip 300.1.1.1" "-f $D/check --to-namespace shop --port 80 --bogus" \
        "-f $D/check --to-namespace shop --port 80 --trust-domain Example.ORG" \
        "-f $D/check --to-namespace shop --port 80 --trust-domain-alias spiffe://old"; do
        # shellcheck disable=SC2086 # the arguments are words
        ctl check $args
        rm_assert_eq "$RM_RC" 2 "usage error exits 2: check $args"
    done
    ctl frobnicate
    rm_assert_eq "$RM_RC" 2 "an unknown subcommand exits 2"
}

# --path is normalized as the proxy does: the text names the path matched and the target the app would receive
case_check_path_normalization() {
    mkdir -p "$D/norm"
    cp "$POLICIES/allow-get-ok.yaml" "$D/norm/"
    ctl check -f "$D/norm" --to-namespace shop --to-labels app=orders --port 8080 --method GET \
        --path '/admin/%2e%2e/ok?next=/../admin#frag'
    rm_assert_eq "$RM_RC" 0 "the normalized path /ok is allowed"
    echo "$RM_OUT" | grep -qx "path: /ok (BASE normalization; what the policy matched)" || rm_fail "path line: $RM_OUT"
    echo "$RM_OUT" | grep -qx "forwarded: /ok?next=/../admin (what the app receives)" || rm_fail "forwarded: $RM_OUT"
    ctl check -f "$D/norm" --to-namespace shop --to-labels app=orders --port 8080 --method GET --path /ok%00
    rm_assert_eq "$RM_RC" 3 "%00 is denied"
    echo "$RM_OUT" | grep -qx "path: /ok%00 refused (400): the path holds a percent-encoded NUL (%00)" ||
        rm_fail "%00: $RM_OUT"
    ctl check -f "$D/norm" --to-namespace shop --to-labels app=orders --port 8080 --method GET --path //ok \
        --path-normalization MERGE_SLASHES
    rm_assert_eq "$RM_RC" 0 "MERGE_SLASHES makes //ok /ok"
    ctl check -f "$D/norm" --to-namespace shop --to-labels app=orders --port 8080 --method GET --path //ok
    rm_assert_eq "$RM_RC" 3 "BASE leaves //ok as it is"
    ctl check -f "$D/norm" --to-namespace shop --port 8080 --path /ok --path-normalization merge
    rm_assert_eq "$RM_RC" 2 "an unknown mode is a usage error"
    echo "$RM_OUT" | grep -qF -- "--path-normalization must be BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES or NONE" ||
        rm_fail "unknown mode: $RM_OUT"
}

# a workload that DENY and AUDIT policies select but no ALLOW policy: the default decides, and check says which
# policies do select it (none of whose rules matched) rather than that none does
case_check_deny_audit_only() {
    mkdir -p "$D/nonallow"
    cp "$POLICIES/deny-evil-ns.yaml" "$POLICIES/audit-get.yaml" "$POLICIES/dry-run-deny-web.yaml" "$D/nonallow/"
    ctl check -f "$D/nonallow" --to-namespace shop --to-labels app=orders --port 8080 \
        --from spiffe://cluster.local/ns/backend/sa/backend --method POST --path /x
    rm_assert_eq "$RM_RC" 3 "default deny"
    rm_assert_eq "$(echo "$RM_OUT" | grep '^why: ')" \
        "why: denied: no ALLOW policy selects this workload and the mesh's defaultAction is DENY (default-deny); DENY policies select this workload: shop/deny-evil, shop/dry-deny-web (dry-run) (none of their rules matched); AUDIT policy selects this workload: shop/audit-get" \
        "the DENY and AUDIT policies selecting the workload are named"
    ctl check -f "$D/nonallow" --to-namespace shop --to-labels app=orders --port 8080 --default-action allow \
        --from spiffe://cluster.local/ns/backend/sa/backend --method POST --path /x
    rm_assert_eq "$RM_RC" 0 "default allow"
    echo "$RM_OUT" | grep -q "no policy selects" && rm_fail "says no policy selects the workload: $RM_OUT"
    echo "$RM_OUT" | grep -qF "why: allowed: no ALLOW policy selects this workload and the mesh's defaultAction is ALLOW (default-allow); DENY policies select this workload: shop/deny-evil" ||
        rm_fail "default allow names the DENY policies: $RM_OUT"
    # no policy at all: nothing to name
    mkdir -p "$D/empty"
    ctl check -f "$D/empty" --to-namespace shop --port 8080
    rm_assert_eq "$(echo "$RM_OUT" | grep '^why: ')" \
        "why: denied: no ALLOW policy selects this workload and the mesh's defaultAction is DENY (default-deny)" \
        "no policy: the default only"
}

# the fields beyond the first ones: lint accepts them, check decides on them, remote.ip with --num-trusted-proxies
case_fields() {
    mkdir -p "$D/fields"
    cat >"$D/fields/fields.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: fields, namespace: shop}
spec:
  rules:
  - from: [{source: {serviceAccounts: [web/frontend]}}]
  - from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]
  - to: [{operation: {paths: ["/store/{**}/cart"]}}]
    when: [{key: source.trustDomain, values: [cluster.local]}]
EOF
    ctl lint "$D/fields"
    rm_assert_eq "$RM_RC" 0 "the new fields lint clean ($RM_OUT)"
    local base=(-f "$D/fields" --to-namespace shop --port 8080 -o json)
    ctl check "${base[@]}" --from spiffe://example.org/ns/web/sa/frontend
    rm_assert_eq "$RM_RC" 0 "serviceAccounts: web/frontend in any trust domain"
    rm_assert_eq "$(rm_json "$RM_OUT" .rule)" 0 "serviceAccounts: rule 0"
    ctl check "${base[@]}" --from spiffe://cluster.local/ns/web/sa/other --method GET --path /store/a/b/cart
    rm_assert_eq "$(rm_json "$RM_OUT" .rule)" 2 "path template and source.trustDomain: rule 2"
    ctl check "${base[@]}" --from spiffe://cluster.local/ns/web/sa/other --method GET --path /store/cart
    rm_assert_eq "$RM_RC" 3 "/store/cart is not /store/{**}/cart"
    ctl check "${base[@]}" --source-ip 198.18.0.9 --method GET --path / --header x-forwarded-for=203.0.113.7
    rm_assert_eq "$RM_RC" 3 "without trusted proxies remote.ip is the source IP"
    ctl check "${base[@]}" --source-ip 198.18.0.9 --method GET --path / --header x-forwarded-for=203.0.113.7 \
        --num-trusted-proxies 1
    rm_assert_eq "$RM_RC" 0 "one trusted proxy: remote.ip is the last X-Forwarded-For address"
    rm_assert_eq "$(rm_json "$RM_OUT" .rule)" 1 "remoteIpBlocks: rule 1"
    ctl check "${base[@]}" --source-ip 198.18.0.9 --method GET --path / --header x-forwarded-for=203.0.113.7 \
        --num-trusted-proxies x
    rm_assert_eq "$RM_RC" 2 "--num-trusted-proxies wants a number"
}

rm_case lint_valid_with_warnings case_lint_valid_with_warnings
rm_case lint_every_error case_lint_every_error
rm_case lint_duplicates_and_kinds case_lint_duplicates_and_kinds
rm_case check_text_and_status case_check_text_and_status
rm_case check_invalid_and_usage case_check_invalid_and_usage
rm_case check_path_normalization case_check_path_normalization
rm_case check_deny_audit_only case_check_deny_audit_only
rm_case fields case_fields
rm_finish
