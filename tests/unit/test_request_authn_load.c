/* RequestAuthentication in the policy loader (lib/request_authn_yaml.c): the model it builds from Istio's fields,
 * each refusal with its file, line, column and field path, "not supported" for what the mesh does not do, and the
 * AuthorizationPolicy fields and keys of end-user identity (requestPrincipals, request.auth.*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/policy.h"

#define JWKS_EC                                                                                                        \
    "{\\\"keys\\\":[{\\\"kty\\\":\\\"EC\\\",\\\"crv\\\":\\\"P-256\\\",\\\"kid\\\":\\\"k1\\\","                         \
    "\\\"x\\\":\\\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\\\","                                                   \
    "\\\"y\\\":\\\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\\\"}]}"

static const char good[] =                                         /* line numbers on the right */
    "apiVersion: security.istio.io/v1\n"                           /* 1 */
    "kind: RequestAuthentication\n"                                /* 2 */
    "metadata:\n"                                                  /* 3 */
    "  name: jwt-example\n"                                        /* 4 */
    "  namespace: foo\n"                                           /* 5 */
    "spec:\n"                                                      /* 6 */
    "  selector:\n"                                                /* 7 */
    "    matchLabels: {app: httpbin}\n"                            /* 8 */
    "  jwtRules:\n"                                                /* 9 */
    "  - issuer: testing@secure.istio.io\n"                        /* 10 */
    "    jwksUri: https://idp.example.test/jwks.json\n"            /* 11 */
    "    audiences: [orders, billing]\n"                           /* 12 */
    "    fromHeaders:\n"                                           /* 13 */
    "    - name: x-jwt-assertion\n"                                /* 14 */
    "    - name: Authorization\n"                                  /* 15 */
    "      prefix: \"Bearer \"\n"                                  /* 16 */
    "    fromParams: [my_token]\n"                                 /* 17 */
    "    fromCookies: [session]\n"                                 /* 18 */
    "    forwardOriginalToken: true\n"                             /* 19 */
    "    outputPayloadToHeader: x-jwt-payload\n"                   /* 20 */
    "    outputClaimToHeaders:\n"                                  /* 21 */
    "    - {header: x-jwt-claim-foo, claim: foo}\n"                /* 22 */
    "    timeout: 3s\n"                                            /* 23 */
    "  - issuer: other\n"                                          /* 24 */
    "    jwks: \"" JWKS_EC "\"\n"                                  /* 25 */
    "---\n"                                                        /* 26 */
    "apiVersion: security.istio.io/v1\n"                           /* 27 */
    "kind: AuthorizationPolicy\n"                                  /* 28 */
    "metadata: {name: require-jwt, namespace: foo}\n"              /* 29 */
    "spec:\n"                                                      /* 30 */
    "  rules:\n"                                                   /* 31 */
    "  - from:\n"                                                  /* 32 */
    "    - source:\n"                                              /* 33 */
    "        requestPrincipals: [\"testing@secure.istio.io/*\"]\n" /* 34 */
    "        notRequestPrincipals: [\"*/bob\"]\n"                  /* 35 */
    "    when:\n"                                                  /* 36 */
    "    - key: request.auth.claims[groups]\n"                     /* 37 */
    "      values: [group1]\n"                                     /* 38 */
    "    - key: request.auth.claims[nested][key1]\n"               /* 39 */
    "      values: [value1]\n"                                     /* 40 */
    "    - {key: request.auth.audiences, values: [orders]}\n"      /* 41 */
    "    - {key: request.auth.presenter, values: [\"*\"]}\n"       /* 42 */
    "    - {key: request.auth.principal, values: [\"*\"]}\n";      /* 43 */

static void test_model(void **state)
{
    (void)state;
    rm_policy_set_t set = {0};
    rm_policy_diags_t d = {0};
    assert_int_equal(rm_policy_load_yaml(&set, good, strlen(good), "ra.yaml", 1, &d), 0);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "unexpected: %u:%u %s %s\n", d.d[i].line, d.d[i].column, d.d[i].path, d.d[i].message);
    assert_int_equal(d.n, 0);
    assert_int_equal(set.num_request_authns, 1);
    assert_int_equal(set.num_policies, 1);
    const rm_request_authn_t *ra = &set.request_authns[0];
    assert_string_equal(ra->namespace_, "foo");
    assert_string_equal(ra->name, "jwt-example");
    assert_int_equal(ra->line, 1);
    assert_true(ra->has_selector);
    assert_int_equal(ra->num_match_labels, 1);
    assert_int_equal(ra->num_rules, 2);
    const rm_jwt_rule_t *r = &ra->rules[0];
    assert_string_equal(r->issuer, "testing@secure.istio.io");
    assert_string_equal(r->jwks_uri, "https://idp.example.test/jwks.json");
    assert_null(r->jwks);
    assert_int_equal(r->audiences.n, 2);
    assert_string_equal(r->audiences.v[1], "billing");
    assert_int_equal(r->num_from_headers, 2);
    assert_string_equal(r->from_headers[0].name, "x-jwt-assertion");
    assert_string_equal(r->from_headers[0].prefix, "");
    assert_string_equal(r->from_headers[1].prefix, "Bearer ");
    assert_string_equal(r->from_params.v[0], "my_token");
    assert_string_equal(r->from_cookies.v[0], "session");
    assert_int_equal(r->forward_original_token, 1);
    assert_string_equal(r->output_payload_to_header, "x-jwt-payload");
    assert_int_equal(r->num_output_claim_to_headers, 1);
    assert_string_equal(r->output_claim_to_headers[0].claim, "foo");
    assert_int_equal(r->timeout_ms, 3000);
    assert_non_null(ra->rules[1].jwks);
    assert_null(ra->rules[1].jwks_uri);
    const rm_authz_source_t *s = &set.policies[0].rules[0].from[0];
    assert_int_equal(s->request_principals.n, 1);
    assert_int_equal(s->not_request_principals.n, 1);
    assert_int_equal(set.policies[0].rules[0].num_when, 5);
    rm_policy_set_clear(&set);
    rm_policy_diags_clear(&d);
}

#define HEAD                                                                                                           \
    "apiVersion: security.istio.io/v1beta1\n"                                                                          \
    "kind: RequestAuthentication\n"                                                                                    \
    "metadata: {name: ra, namespace: foo}\n"                                                                           \
    "spec:\n" /* lines 1-4 */

static void expect_one(const char *yaml, unsigned line, const char *path, const char *msg_part)
{
    rm_policy_set_t set = {0};
    rm_policy_diags_t d = {0};
    int r = rm_policy_load_yaml(&set, yaml, strlen(yaml), "ra.yaml", 1, &d);
    if (d.n != 1 || d.d[0].line != line || strcmp(d.d[0].path, path) != 0 || strstr(d.d[0].message, msg_part) == NULL)
        for (size_t i = 0; i < d.n; i++)
            fprintf(stderr, "got %u %s: %s\n", d.d[i].line, d.d[i].path, d.d[i].message);
    assert_int_equal(r, 1);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.d[0].line, line);
    assert_string_equal(d.d[0].path, path);
    assert_non_null(strstr(d.d[0].message, msg_part));
    assert_int_equal(set.num_request_authns, 0);
    rm_policy_set_clear(&set);
    rm_policy_diags_clear(&d);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_one(HEAD "  targetRefs: [{kind: Gateway, name: gw}]\n", 5, "spec", "not supported");
    expect_one(HEAD "  jwtRules:\n  - jwksUri: https://x.test/j\n", 6, "spec.jwtRules[0].issuer", "needs an issuer");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n", 6, "spec.jwtRules[0]", "not supported: finding the JWKS");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n    jwksUri: ftp://x\n", 7, "spec.jwtRules[0].jwksUri",
               "not an http:// or https:// URL");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n    jwks: '{\"keys\":[]}'\n", 7, "spec.jwtRules[0].jwks",
               "not a usable JWKS");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n    jwksUri: https://x.test/j\n    jwks: \"" JWKS_EC "\"\n", 8,
               "spec.jwtRules[0].jwks", "not both");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n    jwksUri: https://x.test/j\n    fromHeaders: [{prefix: x}]\n", 8,
               "spec.jwtRules[0].fromHeaders[0]", "needs a name");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n    jwksUri: https://x.test/j\n    timeout: soon\n", 8,
               "spec.jwtRules[0].timeout", "not a duration");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n    jwksUri: https://x.test/j\n    forwardOriginalToken: yes\n", 8,
               "spec.jwtRules[0].forwardOriginalToken", "want true or false");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n    jwksUri: https://x.test/j\n    outputPayloadToHeader: \"a b\"\n",
               8, "spec.jwtRules[0].outputPayloadToHeader", "not a header name");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n    jwksUri: https://x.test/j\n    jwtHeader: x\n", 8,
               "spec.jwtRules[0]", "unknown field \"jwtHeader\"");
    expect_one(HEAD "  jwtRules:\n  - issuer: a\n    jwksUri: https://x.test/j\n  - issuer: a\n    jwksUri: "
                    "https://y.test/j\n",
               8, "spec.jwtRules[1].issuer", "also the issuer of jwtRules[0]");
}

static void test_authz_keys(void **state)
{
    (void)state;
    static const char bad_claim[] = "apiVersion: security.istio.io/v1\n"
                                    "kind: AuthorizationPolicy\n"
                                    "metadata: {name: p, namespace: foo}\n"
                                    "spec:\n"
                                    "  rules:\n"
                                    "  - when:\n"
                                    "    - {key: \"request.auth.claims[]\", values: [x]}\n";
    rm_policy_set_t set = {0};
    rm_policy_diags_t d = {0};
    assert_int_equal(rm_policy_load_yaml(&set, bad_claim, strlen(bad_claim), "p.yaml", 1, &d), 1);
    assert_int_equal(d.d[0].line, 7);
    assert_non_null(strstr(d.d[0].message, "request.auth.claims[NAME]"));
    rm_policy_set_clear(&set);
    rm_policy_diags_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_authz_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
