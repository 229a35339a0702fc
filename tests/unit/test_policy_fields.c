/* The fields of Istio's AuthorizationPolicy beyond the first ones (lib/policy_yaml_fields.c, lib/policy_attrs.c):
 * serviceAccounts, trustDomains, remoteIpBlocks and their keys, path templates, remote.ip from X-Forwarded-For with
 * the mesh's numTrustedProxies, what is refused as not supported, and the WorkloadPolicy that carries them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy_fixtures.h"
#include "ringmesh/policy.h"

#include <stdlib.h>
#include <string.h>

#define TDX_AX "spiffe://other.example/ns/a/sa/x"

/* Compiles every policy of the set with numTrustedProxies `ntp`. */
static rm_authz_engine_t *compile_ntp(const rm_policy_set_t *set, uint32_t ntp)
{
    const rm_authz_policy_t *ptrs[16];
    rm_authz_engine_opts_t opts = {.default_action = RM_AUTHZ_DENY, .num_trusted_proxies = ntp};
    rm_authz_engine_t *e = NULL;
    char err[512] = "";
    assert_true(set->num_policies <= 16);
    for (size_t i = 0; i < set->num_policies; i++)
        ptrs[i] = &set->policies[i];
    if (rm_authz_engine_new(&e, ptrs, set->num_policies, &opts, err, sizeof(err)) != 0)
        fail_msg("compile: %s", err);
    return e;
}

/* The rule of a/p that decides `r` (-1: none, denied). */
static int rule_of(const rm_authz_engine_t *e, const req_t *r)
{
    req_buf_t b;
    rm_authz_decision_t d;
    rm_authz_evaluate(e, make_attrs(r, &b), 0.5, &d);
    if (!d.allow)
        return -1;
    assert_int_equal(d.reason, RM_AUTHZ_REASON_POLICY);
    return d.rule;
}

static void test_service_accounts_and_trust_domains(void **state)
{
    static const char yaml[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                         "  - from: [{source: {serviceAccounts: [b/y, x]}}]\n" /* 0 */
                                                         "    to: [{operation: {ports: [\"1\"]}}]\n"
                                                         "  - from: [{source: {notServiceAccounts: [a/x]}}]\n" /* 1 */
                                                         "    to: [{operation: {ports: [\"2\"]}}]\n"
                                                         "  - from: [{source: {trustDomains: [\"other.*\"]}}]\n" /* 2 */
                                                         "    to: [{operation: {ports: [\"3\"]}}]\n"
                                                         "  - from: [{source: {notTrustDomains: [cluster.local]}}]\n"
                                                         "    to: [{operation: {ports: [\"4\"]}}]\n" /* 3 */
                                                         "  - when: [{key: source.serviceAccount, values: [c/w]}]\n"
                                                         "    to: [{operation: {ports: [\"5\"]}}]\n" /* 4 */
                                                         "  - when: [{key: source.trustDomain, notValues: [\"*\"]}]\n"
                                                         "    to: [{operation: {ports: [\"6\"]}}]\n"; /* 5 */
    static const struct {
        req_t r;
        int rule;
    } cases[] = {
        /* "b/y" in any trust domain; "x" is the policy's namespace's (a/x) */
        {{.principal = SA_BY, .port = 1}, 0},
        {{.principal = SA_AX, .port = 1}, 0},
        {{.principal = TDX_AX, .port = 1}, 0},
        {{.principal = SA_AZ, .port = 1}, -1},
        {{.principal = "spiffe://cluster.local/ns/b/sa/y/z", .port = 1}, -1}, /* not a service account's ID */
        {{.principal = "spiffe://cluster.local/ns/a/sa/xx", .port = 1}, -1},
        {{.port = 1}, -1}, /* plaintext: no service account */
        /* a not-list matches when the attribute is absent too, as in Istio */
        {{.principal = SA_AZ, .port = 2}, 1},
        {{.principal = SA_AX, .port = 2}, -1},
        {{.port = 2}, 1},
        {{.principal = TDX_AX, .port = 3}, 2},
        {{.principal = SA_AX, .port = 3}, -1},
        {{.principal = TDX_AX, .port = 4}, 3},
        {{.principal = SA_AX, .port = 4}, -1},
        {{.principal = SA_CW, .port = 5}, 4},
        {{.principal = SA_DW, .port = 5}, -1},
        {{.principal = SA_CW, .port = 6}, -1},
        {{.port = 6}, 5},
    };
    rm_policy_set_t set = {0};
    load_ok(&set, yaml);
    const rm_authz_source_t *s = &set.policies[0].rules[0].from[0];
    assert_int_equal(s->service_accounts.n, 2);
    assert_string_equal(s->service_accounts.v[1], "x"); /* as written: the wire carries it so */
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = rule_of(e, &cases[i].r);
        if (got != cases[i].rule)
            fail_msg("case %zu (%s port %u): rule %d, want %d", i, cases[i].r.principal, cases[i].r.port, got,
                     cases[i].rule);
    }
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

static void test_path_templates(void **state)
{
    static const char yaml[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                         "  - to: [{operation: {paths: [\"/foo/{*}\"]}}]\n"
                                                         "  - to: [{operation: {paths: [\"/bar/{**}/\"]}}]\n"
                                                         "  - to: [{operation: {paths: [\"/a/{*}/b/{**}\"]}}]\n"
                                                         "  - to: [{operation: {paths: [\"/{**}/cart\"]}}]\n"
                                                         "  - to: [{operation: {notPaths: [\"/x/{**}\"], methods: "
                                                         "[PUT]}}]\n";
    static const struct {
        const char *method, *path;
        int rule;
    } cases[] = {
        {"GET", "/foo/bar", 0},    {"GET", "/foo/bar/baz", -1},
        {"GET", "/foo/", -1},      {"GET", "/foo", -1},
        {"GET", "/foo/b?q=/x", 0}, /* the query is not part of the path */
        {"GET", "/bar/x/", 1},     {"GET", "/bar/x/y.txt/", 1},
        {"GET", "/bar//", 1},      {"GET", "/bar/x", -1},
        {"GET", "/a/1/b/", 2},     {"GET", "/a/1/b/c/d", 2},
        {"GET", "/a/1/2/b/c", -1}, {"GET", "/a//b/c", -1}, /* {*} is one segment of at least one character */
        {"GET", "/shop/cart", 3},  {"GET", "/s/t/cart", 3},
        {"GET", "/cart", -1},      {"GET", "/xcart", -1},
        {"PUT", "/y/z", 4},        {"PUT", "/x/", -1},
        {"PUT", "/x/z", -1},       {"PUT", "/x", 4},
    };
    rm_policy_set_t set = {0};
    load_ok(&set, yaml);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req_t r = {.principal = SA_AX, .method = cases[i].method, .path = cases[i].path};
        int got = rule_of(e, &r);
        if (got != cases[i].rule)
            fail_msg("case %zu (%s %s): rule %d, want %d", i, cases[i].method, cases[i].path, got, cases[i].rule);
    }
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

static void test_remote_ip(void **state)
{
    static const char yaml[] =
        POLICY("a", "p", "ALLOW") "  rules:\n"
                                  "  - from: [{source: {remoteIpBlocks: [\"203.0.113.0/24\"]}}]\n"
                                  "  - when: [{key: remote.ip, values: [\"2001:db8::1\"]}]\n";
    static const struct {
        uint32_t ntp;
        const char *src, *xff1, *xff2;
        int rule;
    } cases[] = {
        /* without trusted proxies remote.ip is the source IP, whatever X-Forwarded-For says */
        {0, "203.0.113.9", NULL, NULL, 0},
        {0, "10.0.0.1", "203.0.113.9", NULL, -1},
        /* one trusted proxy: the last address */
        {1, "10.0.0.1", "203.0.113.9", NULL, 0},
        {1, "10.0.0.1", " 198.51.100.1 ,203.0.113.9 ", NULL, 0},
        {1, "10.0.0.1", "203.0.113.9, 198.51.100.1", NULL, -1},
        {1, "10.0.0.1", "2001:db8::1", NULL, 1},
        /* two: the second from the right, across the fields in order */
        {2, "10.0.0.1", "203.0.113.9, 198.51.100.1", NULL, 0},
        {2, "10.0.0.1", "1.1.1.1, 203.0.113.9", "198.51.100.1", 0},
        {2, "10.0.0.1", "203.0.113.9", "198.51.100.1", 0},
        /* fewer addresses than trusted proxies, or not an address there: the source IP */
        {2, "10.0.0.1", "203.0.113.9", NULL, -1},
        {2, "203.0.113.1", "198.51.100.1", NULL, 0},
        {1, "203.0.113.1", "unknown", NULL, 0},
        {1, "10.0.0.1", "203.0.113.9/24", NULL, -1},
        {1, "10.0.0.1", "", NULL, -1},
    };
    rm_policy_set_t set = {0};
    load_ok(&set, yaml);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rm_authz_engine_t *e = compile_ntp(&set, cases[i].ntp);
        req_t r = {.principal = SA_AX, .src_ip = cases[i].src, .method = "GET", .path = "/"};
        size_t h = 0;
        if (cases[i].xff1 != NULL)
            r.headers[h++] = "X-Forwarded-For", r.headers[h++] = cases[i].xff1;
        if (cases[i].xff2 != NULL)
            r.headers[h++] = "x-forwarded-for", r.headers[h++] = cases[i].xff2;
        int got = rule_of(e, &r);
        if (got != cases[i].rule)
            fail_msg("case %zu: rule %d, want %d", i, got, cases[i].rule);
        /* on a connection that is not HTTP remote.ip is the source IP */
        req_t tcp = {.principal = SA_AX, .src_ip = cases[i].src};
        assert_int_equal(rule_of(e, &tcp), strncmp(cases[i].src, "203.0.113.", 10) == 0 ? 0 : -1);
        rm_authz_engine_free(e);
    }
    /* what the caller knows (e.g. a PROXY protocol header) wins */
    rm_authz_engine_t *e = compile_ntp(&set, 1);
    req_t r = {.principal = SA_AX, .src_ip = "10.0.0.1", .method = "GET", .path = "/"};
    req_buf_t b;
    rm_authz_decision_t d;
    const rm_authz_attrs_t *a = make_attrs(&r, &b);
    assert_int_equal(rm_authz_ip_parse("203.0.113.200", b.a.remote_ip), 0);
    b.a.have_remote_ip = 1;
    rm_authz_evaluate(e, a, 0.5, &d);
    assert_true(d.allow);
    assert_int_equal(d.rule, 0);
    assert_int_equal(d.have_remote_ip, 0); /* the log names a remote.ip only when it came from X-Forwarded-For */
    r.headers[0] = "x-forwarded-for", r.headers[1] = "198.51.100.4";
    a = make_attrs(&r, &b);
    rm_authz_evaluate(e, a, 0.5, &d);
    assert_false(d.allow);
    assert_int_equal(d.have_remote_ip, 1);
    uint8_t want[16];
    assert_int_equal(rm_authz_ip_parse("198.51.100.4", want), 0);
    assert_memory_equal(d.remote_ip, want, 16);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

static void test_refused_with_reasons(void **state)
{
    static const char yaml[] =
        AP_HEAD "metadata: {name: r, namespace: a}\n"                                                    /* 1-3 */
                "spec:\n"                                                                                /* 4 */
                "  targetRef: {kind: Gateway, name: gw}\n"                                               /* 5 */
                "  rules:\n"                                                                             /* 6 */
                "  - from:\n"                                                                            /* 7 */
                "    - source: {serviceAccounts: [\"a/*\"], principals: [x]}\n"                          /* 8 */
                "    - source: {notServiceAccounts: [\"a/b/c\"], trustDomain: [x]}\n"                    /* 9 */
                "    to:\n"                                                                              /* 10 */
                "    - operation: {paths: [\"/a/{*}.txt\", \"/{**}/b/{*}\", \"/x/{id}\", \"/*/{*}\"]}\n" /* 11 */
                "    when:\n"                                                                            /* 12 */
                "    - {key: \"experimental.envoy.filters.a[b]\", values: [x]}\n"                        /* 13 */
                "    - {key: source.serviceaccount, values: [x]}\n"                                      /* 14 */
                "    - {key: remote.ip, values: [\"203.0.113.1\"]}\n";                                   /* 15 */
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    const char *f = "r.yaml";
    assert_int_equal(rm_policy_load_yaml(&set, yaml, strlen(yaml), f, 0, &diags), 11);
    if (diags.n != 11)
        print_diags(&diags);
    assert_int_equal(diags.n, 11);
    expect_diag(&diags.d[0], 0, f, 5, 14, "spec.targetRef",
                "targetRef is not supported: it attaches a policy to a Gateway API resource (a gateway or waypoint), "
                "and ringmesh enforces in each workload's sidecar; use spec.selector");
    expect_diag(&diags.d[1], 0, f, 8, 34, "spec.rules[0].from[0].source.serviceAccounts[0]",
                "\"a/*\": a service account is named exactly (\"NAMESPACE/NAME\", or \"NAME\" in the policy's "
                "namespace), without '*'");
    expect_diag(&diags.d[2], 0, f, 8, 54, "spec.rules[0].from[0].source.principals",
                "cannot be set with serviceAccounts or notServiceAccounts in the same source (as in Istio): write "
                "the peers one way, or use two sources");
    expect_diag(&diags.d[3], 0, f, 9, 37, "spec.rules[0].from[1].source.notServiceAccounts[0]",
                "\"a/b/c\": want \"NAMESPACE/NAME\" or \"NAME\" (at most one '/')");
    expect_diag(&diags.d[4], 0, f, 9, 47, "spec.rules[0].from[1].source",
                "unknown field \"trustDomain\": did you mean \"trustDomains\"? (known: principals, notPrincipals, "
                "namespaces, notNamespaces, ipBlocks, notIpBlocks, remoteIpBlocks, notRemoteIpBlocks, "
                "serviceAccounts, notServiceAccounts, trustDomains, notTrustDomains, requestPrincipals, "
                "notRequestPrincipals)");
    expect_diag(&diags.d[5], 0, f, 11, 27, "spec.rules[0].to[0].operation.paths[0]",
                "\"/a/{*}.txt\": a template operator must be a whole path segment (nothing else between its "
                "slashes)");
    expect_diag(&diags.d[6], 0, f, 11, 41, "spec.rules[0].to[0].operation.paths[1]",
                "\"/{**}/b/{*}\": {**} must be the last template operator");
    expect_diag(&diags.d[7], 0, f, 11, 56, "spec.rules[0].to[0].operation.paths[2]",
                "\"/x/{id}\": the only template operators are {*} (one segment) and {**} (any number of segments)");
    expect_diag(&diags.d[8], 0, f, 11, 67, "spec.rules[0].to[0].operation.paths[3]",
                "\"/*/{*}\": '*' outside a template operator: a path with {*} or {**} is a template, not a prefix or "
                "suffix");
    expect_diag(&diags.d[9], 0, f, 13, 13, "spec.rules[0].when[0].key",
                "\"experimental.envoy.filters.a[b]\": not supported: experimental.envoy.filters.* reads Envoy filter "
                "metadata, which the ringmesh proxy does not have");
    expect_diag(&diags.d[10], 0, f, 14, 13, "spec.rules[0].when[1].key",
                "\"source.serviceaccount\": unknown key: did you mean \"source.serviceAccount\"? (supported: "
                "request.headers[NAME], source.ip, remote.ip, source.namespace, source.principal, "
                "source.serviceAccount, source.trustDomain, destination.ip, destination.port, connection.sni, "
                "request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[NAME])");
    assert_int_equal(set.num_policies, 0);
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

static void test_workload_policy_carries_them(void **state)
{
    static const char yaml[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                         "  - from: [{source: {serviceAccounts: [b/y], "
                                                         "notServiceAccounts: [z], trustDomains: [td], "
                                                         "notTrustDomains: [nt], remoteIpBlocks: [\"1.2.3.0/24\"], "
                                                         "notRemoteIpBlocks: [\"1.2.3.4\"]}}]\n"
                                                         "    to: [{operation: {paths: [\"/x/{**}\"]}}]\n";
    rm_policy_set_t set = {0}, back = {0};
    rm_workload_policy_t wp = {.opts = {.num_trusted_proxies = 2}}, wback = {0};
    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[256] = "";
    load_ok(&set, yaml);
    const rm_authz_policy_t *p = &set.policies[0];
    assert_int_equal(rm_workload_policy_encode(&p, 1, &wp, &bytes, &len), 0);
    if (rm_workload_policy_decode(bytes, len, &back, &wback, err, sizeof(err)) != 0)
        fail_msg("decode: %s", err);
    assert_int_equal(wback.opts.num_trusted_proxies, 2);
    assert_int_equal(back.num_policies, 1);
    const rm_authz_source_t *s = &back.policies[0].rules[0].from[0];
    const rm_strlist_t *lists[] = {&s->service_accounts,  &s->not_service_accounts, &s->trust_domains,
                                   &s->not_trust_domains, &s->remote_ip_blocks,     &s->not_remote_ip_blocks};
    static const char *const want[] = {"b/y", "z", "td", "nt", "1.2.3.0/24", "1.2.3.4"};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(lists[i]->n, 1);
        assert_string_equal(lists[i]->v[0], want[i]);
    }
    assert_string_equal(back.policies[0].rules[0].to[0].paths.v[0], "/x/{**}");
    free(bytes);
    rm_workload_policy_clear(&wback);
    rm_policy_set_clear(&back);
    rm_policy_set_clear(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_accounts_and_trust_domains),
        cmocka_unit_test(test_path_templates),
        cmocka_unit_test(test_remote_ip),
        cmocka_unit_test(test_refused_with_reasons),
        cmocka_unit_test(test_workload_policy_carries_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
