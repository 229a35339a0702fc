#!/usr/bin/env bash
# Istio's own policies (the collection of Istio's test data, task pages and API examples named by RM_ISTIO_POLICIES,
# one document per file; the test skips when it is absent), read as a team moving from Istio would bring them:
#  - no document is refused as "unknown field" for a field of Istio's API: each field is implemented or refused as
#    "not supported" with the reason;
#  - the policies that use serviceAccounts, trustDomains, the source.trustDomain key, path templates and
#    remoteIpBlocks lint clean, and `ringmeshctl policy check` decides requests against them as Istio would.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
[ -x "$RM_CTL_BIN" ] || rm_skip "ringmeshctl is not built ($RM_CTL_BIN)"
CORPUS=${RM_ISTIO_POLICIES:-/work/shared/istio-policies}
[ -d "$CORPUS/corpus" ] && [ -d "$CORPUS/scenarios" ] || rm_skip "Istio's policies are not at $CORPUS"
S=$CORPUS/scenarios

# every field name of security.istio.io/v1 AuthorizationPolicy and PeerAuthentication
ISTIO_FIELDS="selector matchLabels action rules targetRef targetRefs provider from to when source operation
principals notPrincipals requestPrincipals notRequestPrincipals namespaces notNamespaces ipBlocks notIpBlocks
remoteIpBlocks notRemoteIpBlocks serviceAccounts notServiceAccounts trustDomains notTrustDomains hosts notHosts ports
notPorts methods notMethods paths notPaths key values notValues mtls portLevelMtls mode"

case_no_istio_field_is_unknown() {
    local f out n=0 field
    while IFS= read -r -d '' f; do
        n=$((n + 1))
        out=$("$RM_CTL_BIN" policy lint "$f" 2>&1) || true
        while IFS= read -r field; do
            [ -n "$field" ] || continue
            # "hosts" in a source is a mistake of some istio.io pages: Istio's Source has no such field
            [ "$field" = hosts ] && echo "$out" | grep -qF "source: unknown field \"hosts\"" && continue
            for known in $ISTIO_FIELDS; do
                [ "$field" != "$known" ] || rm_fail "$f: Istio's field $field is refused as unknown: $out"
            done
        done < <(echo "$out" | sed -n 's/.*unknown field "\([^"]*\)".*/\1/p')
    done < <(find "$CORPUS/corpus" -name '*.yaml' -print0)
    [ "$n" -gt 100 ] || rm_fail "only $n documents in $CORPUS/corpus"
    rm_log "ok: $n documents: no field of Istio's API is called unknown"
}

case_new_fields_lint_clean() {
    local d
    for d in guard-serviceaccounts guard-trust-domains guard-source-trustdomain-key guard-path-templates \
        guard-path-templates-deny guard-remoteipblocks-allow; do
        RM_RC=0
        RM_OUT=$("$RM_CTL_BIN" policy lint "$S/$d" 2>&1) || RM_RC=$?
        rm_assert_eq "$RM_RC" 0 "$d lints clean ($RM_OUT)"
    done
    RM_RC=0
    RM_OUT=$("$RM_CTL_BIN" policy lint "$S/guard-custom" 2>&1) || RM_RC=$?
    rm_assert_eq "$RM_RC" 1 "CUSTOM is refused"
    echo "$RM_OUT" | grep -qF "spec.action: the CUSTOM action is not supported: ringmesh has no external authorization" ||
        rm_fail "CUSTOM: $RM_OUT"
    echo "$RM_OUT" | grep -qF "spec.provider: provider is not supported" || rm_fail "provider: $RM_OUT"
}

# decide SCENARIO NAMESPACE LABELS EXPECT DECIDER ARGS...: policy check against a scenario; DECIDER "ns/name#rule",
# or a reason ("no ALLOW policy matched", "default-allow")
decide() {
    local dir=$S/$1 ns=$2 labels=$3 expect=$4 decider=$5 out rc=0
    shift 5
    out=$("$RM_CTL_BIN" policy check -f "$dir" --to-namespace "$ns" --to-labels "$labels" -o json "$@" 2>&1) || rc=$?
    rm_assert_eq "$rc" "$([ "$expect" = allow ] && echo 0 || echo 3)" "$dir $*: exit status ($out)"
    if [[ $decider == */*#* ]]; then
        rm_assert_eq "$(rm_json "$out" .policy)#$(rm_json "$out" .rule)" "$decider" "$dir $*: deciding rule"
    else
        rm_assert_eq "$(rm_json "$out" .reason)" "$decider" "$dir $*: reason"
    fi
}

case_decisions() {
    local a="spiffe://cluster.local/ns/echo1/sa/a" c="spiffe://cluster.local/ns/echo1/sa/c"
    local sa=(guard-serviceaccounts echo1 app=b)
    decide "${sa[@]}" allow "echo1/b#0" --port 18080 --from "$a" --method GET --path /allow
    decide "${sa[@]}" allow "echo1/b#0" --port 18080 --from "spiffe://other.td/ns/echo1/sa/a" --method GET --path /allow
    decide "${sa[@]}" deny "no ALLOW policy matched" --port 18080 --from "$c" --method GET --path /allow
    decide "${sa[@]}" allow "echo1/b#1" --port 17070 --from "$a" --method POST --path /proto.EchoTestService/Echo
    decide "${sa[@]}" allow "echo1/b#2" --port 19090 --from "$a"
    decide "${sa[@]}" deny "no ALLOW policy matched" --port 19090

    local td=(guard-trust-domains echo1 app=b) bad="spiffe://bad.example.com/ns/echo1/sa/a"
    decide "${td[@]}" allow "echo1/b#0" --port 18080 --from "$a" --method GET --path /allow
    decide "${td[@]}" deny "no ALLOW policy matched" --port 18080 --from "$a" --method GET --path /deny
    decide "${td[@]}" allow "echo1/b#1" --port 18080 --from "$bad" --method GET --path /deny
    decide "${td[@]}" deny "no ALLOW policy matched" --port 18080 --from "$a" --method GET --path /not-trust-domain
    decide "${td[@]}" allow "echo1/b#3" --port 18080 --from "$a" --method GET --path /not-deny
    decide "${td[@]}" deny "no ALLOW policy matched" --port 18080 --from "$bad" --method GET --path /not-deny
    decide "${td[@]}" allow "echo1/b#5" --port 19090 --from "$a"

    local tk=(guard-source-trustdomain-key echo1 app=b)
    decide "${tk[@]}" allow "echo1/b-source-trust-domain#0" --port 80 --from "$a" --method GET --path /source-trust-domain
    decide "${tk[@]}" deny "no ALLOW policy matched" --port 80 --from "$bad" --method GET --path /source-trust-domain
    decide "${tk[@]}" allow "echo1/b-source-trust-domain#1" --port 80 --from "$a" --method GET \
        --path /source-trust-domain-notValues
    decide "${tk[@]}" deny "no ALLOW policy matched" --port 80 --from "$bad" --method GET \
        --path /source-trust-domain-notValues

    local pt=(guard-path-templates echo1 app=b) path
    for path in /allow/admin/ /allow/admin/x/y /foo/a/bar/ /foo/a/bar/b/c /store/a/cart /store/a/b/cart; do
        decide "${pt[@]}" allow "echo1/b#0" --port 80 --from "$a" --method GET --path "$path"
    done
    for path in /allow/admin /foo/a/b/bar/ /foo//bar/ /store/cart /store/a/cart/x; do
        decide "${pt[@]}" deny "no ALLOW policy matched" --port 80 --from "$a" --method GET --path "$path"
    done
    local pd=(guard-path-templates-deny echo1 app=b)
    decide "${pd[@]}" deny "echo1/b-deny-templates#0" --port 80 --from "$a" --method GET --path /allow/admin/x \
        --default-action allow
    decide "${pd[@]}" allow "default-allow" --port 80 --from "$a" --method GET --path /foo/a/b/bar/ \
        --default-action allow

    local ri=(guard-remoteipblocks-allow istio-system app=istio-ingressgateway)
    decide "${ri[@]}" allow "istio-system/ingress-policy#0" --port 80 --source-ip 1.2.3.4
    decide "${ri[@]}" deny "no ALLOW policy matched" --port 80 --source-ip 198.18.0.1 --method GET --path / \
        --header x-forwarded-for=5.6.7.8
    decide "${ri[@]}" allow "istio-system/ingress-policy#0" --port 80 --source-ip 198.18.0.1 --method GET --path / \
        --header x-forwarded-for=5.6.7.8 --num-trusted-proxies 1
    decide "${ri[@]}" deny "no ALLOW policy matched" --port 80 --source-ip 198.18.0.1 --method GET --path / \
        --header "x-forwarded-for=5.6.7.8, 10.0.0.1" --num-trusted-proxies 1
}

rm_case no_istio_field_is_unknown case_no_istio_field_is_unknown
rm_case new_fields_lint_clean case_new_fields_lint_clean
rm_case decisions case_decisions
rm_finish
