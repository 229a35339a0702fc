/* The claims of a projected ServiceAccount token (lib/jwt.c), one test per reason to refuse, each changing one claim
 * of a token we sign that otherwise passes: times, issuer and audience, the Kubernetes claims and the subject; and
 * JWKS documents refused (lib/jwt.c's JWKS parser). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ringmesh/error.h"
#include "ringmesh/jwt.h"
#include "ringmesh/x509_issue.h"
#include "jwt_fixtures.h"
#include "unit_asserts.h"

/* ---- time --------------------------------------------------------------------------------------------------- */

static void test_expired(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts;
    char *token;

    s.exp = "1799999000";
    expect_spec(&s, RM_ERR_JWT_EXPIRED);

    /* exp = T, leeway 60: valid up to T + 59, expired from T + 60 */
    s.exp = "1800000000";
    s.nbf = s.iat = "1799990000";
    token = mint(&s);
    opts = opts_at(1800000000 + 59);
    expect_verify(fx.rm_jwks, token, &opts, 0, NULL);
    opts = opts_at(1800000000 + 60);
    expect_verify(fx.rm_jwks, token, &opts, RM_ERR_JWT_EXPIRED, NULL);
    /* leeway 0: valid at T - 1, expired at T */
    opts = opts_at(1800000000 - 1);
    opts.leeway = 0;
    expect_verify(fx.rm_jwks, token, &opts, 0, NULL);
    opts = opts_at(1800000000);
    opts.leeway = 0;
    expect_verify(fx.rm_jwks, token, &opts, RM_ERR_JWT_EXPIRED, NULL);
    free(token);
}

static void test_exp_missing_or_not_a_number(void **state)
{
    claims_spec_t s = good_spec();

    s.exp = NULL;
    expect_spec(&s, RM_ERR_JWT_EXPIRED);
    s.exp = "\"1800003600\"";
    expect_spec(&s, RM_ERR_JWT_EXPIRED);
    s.exp = "null";
    expect_spec(&s, RM_ERR_JWT_EXPIRED);
}

static void test_nbf_in_the_future(void **state)
{
    claims_spec_t s = good_spec();

    /* now is 1800000000, leeway 60 */
    s.iat = NULL;
    s.nbf = "1800000061";
    expect_spec(&s, RM_ERR_JWT_NOT_YET_VALID);
    s.nbf = "1800000060";
    expect_spec(&s, 0);
    s.nbf = "1800000060.5"; /* a fraction counts towards the future */
    expect_spec(&s, RM_ERR_JWT_NOT_YET_VALID);
    s.nbf = "\"soon\"";
    expect_spec(&s, RM_ERR_JWT_NOT_YET_VALID);
    s.nbf = NULL; /* optional */
    expect_spec(&s, 0);
}

static void test_iat_in_the_future(void **state)
{
    claims_spec_t s = good_spec();

    s.nbf = NULL;
    s.iat = "1800000061";
    expect_spec(&s, RM_ERR_JWT_NOT_YET_VALID);
    s.iat = "1800000060";
    expect_spec(&s, 0);
    s.iat = NULL;
    expect_spec(&s, 0);
}

/* ---- issuer and audience ------------------------------------------------------------------------------------ */

static void test_issuer(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    rm_jwt_claims_t claims;
    char *token;

    s.iss = "\"https://kubernetes.default.svc.cluster.local.evil\"";
    expect_spec(&s, RM_ERR_JWT_ISSUER);
    s.iss = "\"https://kubernetes.default.svc\"";
    expect_spec(&s, RM_ERR_JWT_ISSUER);
    s.iss = "42";
    expect_spec(&s, RM_ERR_JWT_ISSUER);
    s.iss = NULL;
    expect_spec(&s, RM_ERR_JWT_ISSUER);

    /* issuer NULL accepts any, and reports it */
    s.iss = "\"https://elsewhere.example\"";
    token = mint(&s);
    opts.issuer = NULL;
    expect_verify(fx.rm_jwks, token, &opts, 0, &claims);
    assert_string_equal(claims.issuer, "https://elsewhere.example");
    free(token);
}

static void test_audience(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    rm_jwt_claims_t claims;
    char *token, err[128];

    s.aud = "\"" AUD "\"";
    expect_spec(&s, 0);
    s.aud = "\"other\"";
    expect_spec(&s, RM_ERR_JWT_AUDIENCE);
    s.aud = "\"ringmesh2\"";
    expect_spec(&s, RM_ERR_JWT_AUDIENCE);
    s.aud = "[\"other\",\"https://kubernetes.default.svc\"]";
    expect_spec(&s, RM_ERR_JWT_AUDIENCE);
    s.aud = "[\"other\",\"" AUD "\"]";
    expect_spec(&s, 0);
    s.aud = "[]";
    expect_spec(&s, RM_ERR_JWT_AUDIENCE);
    s.aud = "[\"" AUD "\",7]";
    expect_spec(&s, RM_ERR_JWT_AUDIENCE);
    s.aud = "{\"" AUD "\":true}";
    expect_spec(&s, RM_ERR_JWT_AUDIENCE);
    s.aud = NULL;
    expect_spec(&s, RM_ERR_JWT_AUDIENCE);

    /* an audience must be configured */
    s = good_spec();
    token = mint(&s);
    opts.audience = NULL;
    assert_code(rm_jwt_verify(fx.rm_jwks, token, strlen(token), &opts, &claims, err, sizeof(err)), -EINVAL);
    free(token);
}

/* ---- Kubernetes claims -------------------------------------------------------------------------------------- */

static void test_kubernetes_claims_missing(void **state)
{
    claims_spec_t s = good_spec();

    s.k8s = NULL;
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    s.k8s = "\"shop\"";
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    s.k8s = "{\"serviceaccount\":{\"name\":\"orders\"}}";
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    s.k8s = "{\"namespace\":\"shop\"}";
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    s.k8s = "{\"namespace\":\"shop\",\"serviceaccount\":{\"uid\":\"x\"}}";
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    s.k8s = "{\"namespace\":\"shop\",\"serviceaccount\":\"orders\"}";
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
}

static void test_namespace_invalid(void **state)
{
    static const char *const bad[] = {
        "../x",       "Shop",
        "shop/x",     "shop.x",
        "-shop",      "shop-",
        "",           "sh op",
        "sh\\u00f6p", "a123456789012345678901234567890123456789012345678901234567890123", /* 64 */
    };
    claims_spec_t s = good_spec();
    char k8s[512], sub[512];
    size_t i;

    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        snprintf(k8s, sizeof(k8s), "{\"namespace\":\"%s\",\"serviceaccount\":{\"name\":\"orders\"}}", bad[i]);
        snprintf(sub, sizeof(sub), "\"system:serviceaccount:%s:orders\"", bad[i]);
        s.k8s = k8s;
        s.sub = sub;
        expect_spec(&s, RM_ERR_JWT_CLAIMS);
    }
    /* 63 is fine */
    s.k8s = "{\"namespace\":\"a12345678901234567890123456789012345678901234567890123456789012\","
            "\"serviceaccount\":{\"name\":\"orders\"}}";
    s.sub = "\"system:serviceaccount:a12345678901234567890123456789012345678901234567890123456789012:orders\"";
    expect_spec(&s, 0);
}

static void test_service_account_invalid(void **state)
{
    static const char *const bad[] = {"Orders",  "../orders", "orders/x", "orders..x",
                                      ".orders", "orders.",   "",         "or:ders"};
    claims_spec_t s = good_spec();
    char k8s[512], sub[512];
    size_t i;

    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        snprintf(k8s, sizeof(k8s), "{\"namespace\":\"shop\",\"serviceaccount\":{\"name\":\"%s\"}}", bad[i]);
        snprintf(sub, sizeof(sub), "\"system:serviceaccount:shop:%s\"", bad[i]);
        s.k8s = k8s;
        s.sub = sub;
        expect_spec(&s, RM_ERR_JWT_CLAIMS);
    }
    /* a subdomain with dots is a valid service account name */
    s.k8s = K8S("shop", "orders.v2", "");
    s.sub = "\"system:serviceaccount:shop:orders.v2\"";
    expect_spec(&s, 0);
}

static void test_pod_claim(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    rm_jwt_claims_t claims;
    char *token;

    /* not bound to a pod */
    s.k8s = K8S("shop", "orders", "");
    token = mint(&s);
    expect_verify(fx.rm_jwks, token, &opts, 0, &claims);
    assert_string_equal(claims.pod_name, "");
    assert_string_equal(claims.pod_uid, "");
    free(token);

    s.k8s = K8S("shop", "orders", ",\"pod\":{\"name\":\"Orders_1\",\"uid\":\"abc\"}");
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    s.k8s = K8S("shop", "orders", ",\"pod\":{\"uid\":\"abc\"}");
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    s.k8s = K8S("shop", "orders", ",\"pod\":{\"name\":\"orders-1\",\"uid\":\"a/b\"}");
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    s.k8s = K8S("shop", "orders", ",\"pod\":\"orders-1\"");
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    /* a UID is at most 63 bytes, of letters (either case), digits and dashes */
    s.k8s = K8S("shop", "orders",
                ",\"pod\":{\"name\":\"orders-1\",\"uid\":"
                "\"0c9a3b2e5d1f4a7e9b8c2f6d4e1a7c300c9a3b2e5d1f4a7e9b8c2f6d4e1a7c30\"}");
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
    s.k8s = K8S(
        "shop", "orders",
        ",\"pod\":{\"name\":\"orders-1\",\"uid\":\"0C9A3B2E5D1F4A7E9B8C2F6D4E1A7C300C9A3B2E5D1F4A7E9B8C2F6D4E1A7C3\"}");
    expect_spec(&s, 0);
}

static void test_sub_disagrees(void **state)
{
    static const char *const bad[] = {
        "\"system:serviceaccount:shop:payments\"", "\"system:serviceaccount:other:orders\"",
        "\"system:serviceaccount:shop:orders:x\"", "\"system:serviceaccount:shop:order\"",
        "\"system:serviceaccount:shoporders\"",    "\"system:serviceaccount:shop\"",
        "\"system:serviceaccounts:shop:orders\"",  "\"shop:orders\"",
        "\"SYSTEM:serviceaccount:shop:orders\"",   "[\"system:serviceaccount:shop:orders\"]",
        "\"system:serviceaccount:shop:orders \"",
    };
    claims_spec_t s = good_spec();
    size_t i;

    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        s.sub = bad[i];
        expect_spec(&s, RM_ERR_JWT_CLAIMS);
    }
    s.sub = NULL;
    expect_spec(&s, RM_ERR_JWT_CLAIMS);
}

/* ---- JWKS --------------------------------------------------------------------------------------------------- */

static int parse_code(const char *doc)
{
    rm_jwks_t *jwks = (rm_jwks_t *)1;
    char err[256];
    int ret = rm_jwks_parse(doc, strlen(doc), &jwks, err, sizeof(err));

    if (ret == 0) {
        assert_true(rm_jwks_num_keys(jwks) > 0);
        rm_jwks_free(jwks);
    } else {
        assert_null(jwks);
        assert_true(err[0] != '\0');
    }
    return ret;
}

static void test_jwks_errors(void **state)
{
    /* a real point: the fixture's EC key */
    char *doc = read_data("jwks.json", NULL), buf[2048], x[64], y[64];
    json_t *j = json_loads(doc, 0, NULL), *ec = json_array_get(json_object_get(j, "keys"), 0);

    snprintf(x, sizeof(x), "%s", json_string_value(json_object_get(ec, "x")));
    snprintf(y, sizeof(y), "%s", json_string_value(json_object_get(ec, "y")));
    json_decref(j);
    free(doc);
#define EC_KEY(extra) "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"" extra "}]}"

    snprintf(buf, sizeof(buf), EC_KEY(""), x, y);
    assert_code(parse_code(buf), 0);
    assert_code(parse_code("not json"), RM_ERR_JWKS);
    assert_code(parse_code("[]"), RM_ERR_JWKS);
    assert_code(parse_code("{}"), RM_ERR_JWKS);
    assert_code(parse_code("{\"keys\":{}}"), RM_ERR_JWKS);
    assert_code(parse_code("{\"keys\":[]}"), RM_ERR_JWKS);
    assert_code(parse_code("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}"), RM_ERR_JWKS); /* nothing usable */
    assert_code(parse_code("{\"keys\":[7]}"), RM_ERR_JWKS);
    /* a usable kind of key that is broken */
    snprintf(buf, sizeof(buf), EC_KEY(""), x + 1, y); /* x is not 32 bytes */
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), EC_KEY(""), x, x); /* (x, x) is not on the curve */
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), EC_KEY(",\"kid\":5"), x, y);
    assert_code(parse_code(buf), RM_ERR_JWKS);
    /* skipped: another use, alg or key_ops; the only key gone leaves none */
    snprintf(buf, sizeof(buf), EC_KEY(",\"use\":\"enc\""), x, y);
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), EC_KEY(",\"alg\":\"ES384\""), x, y);
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), EC_KEY(",\"key_ops\":[\"encrypt\"]"), x, y);
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), EC_KEY(",\"use\":\"sig\",\"alg\":\"ES256\",\"key_ops\":[\"verify\"]"), x, y);
    assert_code(parse_code(buf), 0);
    /* duplicate members are refused rather than one of them picked (the last would make a usable key) */
    snprintf(buf, sizeof(buf),
             "{\"keys\":[{\"kty\":\"RSA\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, y);
    assert_code(parse_code(buf), RM_ERR_JWKS);
#undef EC_KEY
}

static void test_jwks_rsa_errors(void **state)
{
    char *doc = read_data("jwks-rsa.json", NULL), buf[2048], n[700], even_n[700];
    json_t *j = json_loads(doc, 0, NULL), *rsa = json_array_get(json_object_get(j, "keys"), 0);
    size_t len;

    snprintf(n, sizeof(n), "%s", json_string_value(json_object_get(rsa, "n")));
    json_decref(j);
    free(doc);
    len = strlen(n);
    assert_int_equal(len, 342);
    /* make the last byte even: the last two characters encode it, the second one only 2 bits of it */
    memcpy(even_n, n, len + 1);
    even_n[len - 1] = 'A';
#define RSA_KEY "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}]}"

    snprintf(buf, sizeof(buf), RSA_KEY, n, "AQAB");
    assert_code(parse_code(buf), 0);
    snprintf(buf, sizeof(buf), RSA_KEY, n, "AQ"); /* e = 1 */
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), RSA_KEY, n, "AAAAAw"); /* e = 3 with leading zeros: fine */
    assert_code(parse_code(buf), 0);
    snprintf(buf, sizeof(buf), RSA_KEY, n, "AQAA"); /* even */
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), RSA_KEY, n, "AQAAAAE"); /* 40 bits */
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), RSA_KEY, n, "");
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), RSA_KEY, even_n, "AQAB");
    assert_code(parse_code(buf), RM_ERR_JWKS);
    snprintf(buf, sizeof(buf), RSA_KEY, n + 2, "AQAB"); /* not base64url any more, or 2040 bits */
    assert_code(parse_code(buf), RM_ERR_JWKS);
    /* a JWK for an RSA alg of the shared verifier is usable; one for an alg it does not have is skipped */
    snprintf(buf, sizeof(buf), "{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"PS256\",\"n\":\"%s\",\"e\":\"AQAB\"}]}", n);
    assert_code(parse_code(buf), 0);
    snprintf(buf, sizeof(buf), "{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP\",\"n\":\"%s\",\"e\":\"AQAB\"}]}", n);
    assert_code(parse_code(buf), RM_ERR_JWKS); /* skipped: nothing left */
#undef RSA_KEY
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_exp_missing_or_not_a_number),
        cmocka_unit_test(test_nbf_in_the_future),
        cmocka_unit_test(test_iat_in_the_future),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_kubernetes_claims_missing),
        cmocka_unit_test(test_namespace_invalid),
        cmocka_unit_test(test_service_account_invalid),
        cmocka_unit_test(test_pod_claim),
        cmocka_unit_test(test_sub_disagrees),
        cmocka_unit_test(test_jwks_errors),
        cmocka_unit_test(test_jwks_rsa_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
