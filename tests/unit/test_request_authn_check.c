/* Finding and checking a request's JWT (lib/request_authn.c) as Istio does: the default locations (Authorization
 * Bearer, access_token), fromHeaders with a prefix, fromParams, fromCookies, a token in a location its issuer's rule
 * does not read, an issuer without a JWKS, and the claims outputClaimToHeaders reads. Tokens are minted by
 * tests/e2e/tools/jwt_tool.py (python3-cryptography). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringmesh/policy.h"
#include "ringmesh/request_authn.h"

#define TOOL "python3 " RM_TEST_DATA_DIR "/../e2e/tools/jwt_tool.py"

static char dir[64], *jwks;

static char *run(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (size_t r; (r = fread(out + n, 1, cap - 1 - n, f)) > 0;)
        n += r;
    assert_int_equal(pclose(f), 0);
    while (n > 0 && out[n - 1] == '\n')
        n--;
    out[n] = '\0';
    return out;
}

static int setup(void **state)
{
    (void)state;
    char cmd[512];
    strcpy(dir, "/tmp/rm-authn-check-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), TOOL " keys %s", dir);
    free(run(cmd));
    snprintf(cmd, sizeof(cmd), TOOL " jwks %s ec256:k1", dir);
    jwks = run(cmd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    free(jwks);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *mint(const char *iss)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             TOOL " mint %s ec256 k1 ES256 '{\"iss\":\"%s\",\"sub\":\"alice\",\"exp\":\"+600\","
                  "\"nested\":{\"team\":\"blue\"},\"groups\":[\"a\",\"b\"],\"n\":7}'",
             dir, iss);
    return run(cmd);
}

/* One RequestAuthentication read by the real loader. */
static void load(rm_policy_set_t *set, const char *rules)
{
    char yaml[8192];
    rm_policy_diags_t d = {0};
    snprintf(yaml, sizeof(yaml),
             "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: ns}\n"
             "spec:\n  jwtRules:\n%s",
             rules);
    assert_int_equal(rm_policy_load_yaml(set, yaml, strlen(yaml), "ra.yaml", 1, &d), 0);
    rm_policy_diags_clear(&d);
}

static int check(const rm_request_authn_cfg_t *cfg, const char *path, const char *hname, const char *hvalue,
                 rm_authn_result_t *r)
{
    rm_http_header_t h = {hname, hname != NULL ? strlen(hname) : 0, hvalue, hvalue != NULL ? strlen(hvalue) : 0};
    rm_http_request_t req = {.method = "GET",
                             .method_len = 3,
                             .path = path,
                             .path_len = strlen(path),
                             .headers = &h,
                             .num_headers = hname != NULL ? 1 : 0};
    assert_int_equal(rm_request_authn_check(cfg, &req, (int64_t)time(NULL), r), 0);
    return (int)r->outcome;
}

static void test_locations(void **state)
{
    (void)state;
    char rules[4096], buf[8192], path[8192];
    rm_policy_set_t set = {0};
    rm_authn_result_t r;
    char *a = mint("https://a.test"), *b = mint("https://b.test");
    /* a: default locations; b: a header with a prefix, a parameter and a cookie */
    snprintf(rules, sizeof(rules),
             "  - {issuer: \"https://a.test\", jwks: '%s'}\n"
             "  - issuer: \"https://b.test\"\n    jwks: '%s'\n"
             "    fromHeaders: [{name: x-jwt, prefix: \"Token \"}]\n    fromParams: [tok]\n    fromCookies: [session]\n"
             "  - {issuer: \"https://c.test\", jwksUri: \"https://c.test/jwks\"}\n",
             jwks, jwks);
    load(&set, rules);
    const rm_request_authn_t *ra = &set.request_authns[0];
    rm_request_authn_cfg_t *cfg;
    assert_int_equal(rm_request_authn_cfg_new(&ra, 1, &cfg), 0);

    assert_int_equal(check(cfg, "/", NULL, NULL, &r), RM_AUTHN_NO_TOKEN);
    rm_authn_result_clear(&r);
    assert_int_equal(check(cfg, "/", "Authorization", "Basic YTpi", &r), RM_AUTHN_NO_TOKEN);
    rm_authn_result_clear(&r);
    snprintf(buf, sizeof(buf), "bearer %s", a); /* the Bearer scheme is case-insensitive */
    assert_int_equal(check(cfg, "/", "authorization", buf, &r), RM_AUTHN_VALID);
    assert_string_equal(r.auth.principal, "https://a.test/alice");
    assert_string_equal(r.token_header, "authorization");
    int n = rm_authn_claim_text(&r, "nested.team", buf, sizeof(buf));
    assert_int_equal(n, 4);
    assert_string_equal(buf, "blue");
    assert_int_equal(rm_authn_claim_text(&r, "groups", buf, sizeof(buf)), 3);
    assert_string_equal(buf, "a,b");
    assert_int_equal(rm_authn_claim_text(&r, "n", buf, sizeof(buf)), 1);
    assert_int_equal(rm_authn_claim_text(&r, "missing", buf, sizeof(buf)), -1);
    rm_authn_result_clear(&r);
    snprintf(path, sizeof(path), "/x?a=1&access_token=%s", a);
    assert_int_equal(check(cfg, path, NULL, NULL, &r), RM_AUTHN_VALID);
    assert_null(r.token_header);
    rm_authn_result_clear(&r);

    /* b's locations */
    snprintf(buf, sizeof(buf), "Token %s", b);
    assert_int_equal(check(cfg, "/", "X-JWT", buf, &r), RM_AUTHN_VALID);
    assert_string_equal(r.auth.principal, "https://b.test/alice");
    rm_authn_result_clear(&r);
    snprintf(path, sizeof(path), "/?tok=%s", b);
    assert_int_equal(check(cfg, path, NULL, NULL, &r), RM_AUTHN_VALID);
    rm_authn_result_clear(&r);
    snprintf(buf, sizeof(buf), "theme=dark; session=%s", b);
    assert_int_equal(check(cfg, "/", "cookie", buf, &r), RM_AUTHN_VALID);
    rm_authn_result_clear(&r);

    /* b's token where only a's rule looks: refused, its issuer is not configured there */
    snprintf(buf, sizeof(buf), "Bearer %s", b);
    assert_int_equal(check(cfg, "/", "authorization", buf, &r), RM_AUTHN_INVALID);
    assert_non_null(strstr(r.reason, "not configured"));
    rm_authn_result_clear(&r);
    /* an issuer whose jwksUri was never fetched: refused, with the reason */
    char *c = mint("https://c.test");
    snprintf(buf, sizeof(buf), "Bearer %s", c);
    /* c's rule reads the default locations, so the token is c's */
    assert_int_equal(check(cfg, "/", "authorization", buf, &r), RM_AUTHN_INVALID);
    assert_non_null(strstr(r.reason, "no JWKS for issuer https://c.test"));
    assert_null(strstr(r.reason, c));
    rm_authn_result_clear(&r);
    free(c);
    free(a);
    free(b);
    rm_request_authn_cfg_free(cfg);
    rm_policy_set_clear(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
