/* End-user identity in the policy engine (lib/policy_request_auth.c): requestPrincipals / notRequestPrincipals and
 * request.auth.principal, .audiences, .presenter, .claims[a][b] with Istio's matching (lists, nested claims, scope
 * and permission split on spaces, other claims not), a request without a token, and TCP connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "policy_fixtures.h"
#include "ringmesh/policy.h"

#define HDR POLICY("shop", "jwt", "ALLOW") "  rules:\n"

typedef struct st_case_t {
    int line;
    const char *rules;  /* after "  rules:\n" */
    const char *claims; /* the token's payload; NULL: no token */
    int http;
    uint8_t allow;
} case_t;

#define PAYLOAD                                                                                                        \
    "{\"iss\":\"https://idp.test\",\"sub\":\"alice\",\"aud\":[\"orders\",\"web\"],\"azp\":\"spa\","                    \
    "\"groups\":[\"group1\",\"group2\"],\"scope\":\"read write\",\"roles\":\"editor admin\","                          \
    "\"nested\":{\"key1\":\"value1\",\"list\":[\"a\",\"b\"]},\"admin\":true}"

static const case_t cases[] = {
    {__LINE__, "  - from: [{source: {requestPrincipals: [\"*\"]}}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - from: [{source: {requestPrincipals: [\"*\"]}}]\n", NULL, 1, 0},
    {__LINE__, "  - from: [{source: {requestPrincipals: [\"https://idp.test/alice\"]}}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - from: [{source: {requestPrincipals: [\"https://idp.test/bob\"]}}]\n", PAYLOAD, 1, 0},
    {__LINE__, "  - from: [{source: {requestPrincipals: [\"https://idp.test/*\"]}}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - from: [{source: {requestPrincipals: [\"*/alice\"]}}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - from: [{source: {notRequestPrincipals: [\"*\"]}}]\n", NULL, 1, 1},
    {__LINE__, "  - from: [{source: {notRequestPrincipals: [\"*\"]}}]\n", PAYLOAD, 1, 0},
    /* HTTP-only: on TCP an ALLOW rule with it does not match */
    {__LINE__, "  - from: [{source: {requestPrincipals: [\"*\"]}}]\n", PAYLOAD, 0, 0},
    {__LINE__, "  - when: [{key: request.auth.principal, values: [\"https://idp.test/alice\"]}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - when: [{key: request.auth.audiences, values: [web]}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - when: [{key: request.auth.audiences, values: [billing]}]\n", PAYLOAD, 1, 0},
    {__LINE__, "  - when: [{key: request.auth.presenter, values: [spa]}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - when: [{key: request.auth.presenter, notValues: [spa]}]\n", PAYLOAD, 1, 0},
    {__LINE__, "  - when: [{key: \"request.auth.claims[groups]\", values: [group2]}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - when: [{key: \"request.auth.claims[groups]\", values: [group3]}]\n", PAYLOAD, 1, 0},
    {__LINE__, "  - when: [{key: \"request.auth.claims[groups]\", values: [\"group*\"]}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - when: [{key: \"request.auth.claims[scope]\", values: [write]}]\n", PAYLOAD, 1, 1},
    /* only scope and permission are split: "roles" is matched whole */
    {__LINE__, "  - when: [{key: \"request.auth.claims[roles]\", values: [admin]}]\n", PAYLOAD, 1, 0},
    {__LINE__, "  - when: [{key: \"request.auth.claims[roles]\", values: [\"editor admin\"]}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - when: [{key: \"request.auth.claims[nested][key1]\", values: [value1]}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - when: [{key: \"request.auth.claims[nested][list]\", values: [b]}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - when: [{key: \"request.auth.claims[nested][nope]\", values: [\"*\"]}]\n", PAYLOAD, 1, 0},
    {__LINE__, "  - when: [{key: \"request.auth.claims[nested][nope]\", notValues: [x]}]\n", PAYLOAD, 1, 1},
    {__LINE__, "  - when: [{key: \"request.auth.claims[admin]\", values: [\"true\"]}]\n", PAYLOAD, 1, 0},
    /* claim names are case-sensitive */
    {__LINE__, "  - when: [{key: \"request.auth.claims[Groups]\", values: [group1]}]\n", PAYLOAD, 1, 0},
    {__LINE__, "  - when: [{key: \"request.auth.claims[groups]\", values: [group1]}]\n", NULL, 1, 0},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const case_t *c = &cases[i];
        char yaml[2048];
        snprintf(yaml, sizeof(yaml), "%s%s", HDR, c->rules);
        rm_policy_set_t set = {0};
        load_ok(&set, yaml);
        rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
        req_t r = {.principal = SA_AX, .method = c->http ? "GET" : NULL, .path = "/"};
        req_buf_t b;
        rm_authz_attrs_t a = *make_attrs(&r, &b);
        json_t *claims = NULL;
        rm_request_auth_t ra = {0};
        const char *auds[4];
        if (c->claims != NULL) {
            claims = json_loads(c->claims, 0, NULL);
            assert_non_null(claims);
            ra.principal = "https://idp.test/alice";
            ra.presenter = "spa";
            auds[0] = "orders", auds[1] = "web";
            ra.audiences = auds;
            ra.num_audiences = 2;
            ra.claims = claims;
            a.request_auth = &ra;
        }
        rm_authz_decision_t d;
        rm_authz_evaluate(e, &a, 0, &d);
        if (d.allow != c->allow)
            fail_msg("case at line %d: got %s", c->line, d.allow ? "allow" : "deny");
        json_decref(claims);
        rm_authz_engine_free(e);
        rm_policy_set_clear(&set);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
