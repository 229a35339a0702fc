/* Attestation (rm_jwks_parse() and rm_jwt_verify(), lib/jwt_wolfssl.c) over the one JWT verifier: ServiceAccount
 * tokens signed with every algorithm of that verifier (RS256/384/512, PS256, ES384, EdDSA) by keys made by another
 * implementation (tests/e2e/tools/jwt_tool.py) verify against a JWKS of those keys and give their workload, while
 * HMAC, a key of another type or curve and a JWK bound to another alg are still refused with their own codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/error.h"
#include "ringmesh/jwt.h"
#include "ringmesh/jwt_user.h"
#include "jwt_tool_fixtures.h"

#define ISS "https://kubernetes.default.svc.cluster.local"
#define AUD "ringmesh"
/* a projected ServiceAccount token's claims for shop/orders, bound to a pod, valid for an hour from now */
#define SA_CLAIMS                                                                                                      \
    "{\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\"],\"sub\":\"system:serviceaccount:shop:orders\",\"exp\":\"+3600\","      \
    "\"iat\":\"-10\",\"nbf\":\"-10\",\"kubernetes.io\":{\"namespace\":\"shop\",\"serviceaccount\":{\"name\":"          \
    "\"orders\",\"uid\":\"5f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\"},\"pod\":{\"name\":\"orders-7d9f8b6c5-x2x9k\","       \
    "\"uid\":\"0c9a3b2e-5d1f-4a7e-9b8c-2f6d4e1a7c30\"}}}"

static char dir[64];
static rm_jwks_t *jwks;

static int setup(void **state)
{
    (void)state;
    /* an RSA key for any RSA alg, one bound to PS256, EC P-384 and Ed25519: of these, attestation accepted only the
     * first, for RS256 only, before it used the shared verifier */
    return jwt_tool_setup(dir, "rsa:sa-rsa rsa2:sa-ps:PS256 ec384:sa-ec384 ed25519:sa-ed", rm_jwks_parse, &jwks);
}

static int teardown(void **state)
{
    (void)state;
    return jwt_tool_teardown(dir, jwks);
}

/* Mints SA_CLAIMS with the tool's key `key` under `kid` as `alg` and verifies it now; returns the code. On success
 * the workload must be shop/orders of the pod; on failure a reason must be given and no claim returned. */
static int attest(const char *key, const char *kid, const char *alg)
{
    char *token = jwt_tool("mint %s %s %s %s '%s'", dir, key, kid, alg, SA_CLAIMS), err[256];
    rm_jwt_verify_opts_t opts;
    rm_jwt_claims_t claims;
    int ret;

    rm_jwt_verify_opts_init(&opts);
    opts.issuer = ISS;
    opts.audience = AUD;
    ret = rm_jwt_verify(jwks, token, strlen(token), &opts, &claims, err, sizeof(err));
    if (ret == 0) {
        assert_string_equal(err, "");
        assert_string_equal(claims.namespace_, "shop");
        assert_string_equal(claims.service_account, "orders");
        assert_string_equal(claims.pod_name, "orders-7d9f8b6c5-x2x9k");
        assert_string_equal(claims.issuer, ISS);
    } else {
        assert_true(err[0] != '\0');
        assert_string_equal(claims.namespace_, "");
        assert_null(strstr(err, strrchr(token, '.') + 1));
    }
    free(token);
    return ret;
}

static void test_jwks_holds_every_key_type(void **state)
{
    (void)state;
    assert_int_equal(rm_jwks_num_keys(jwks), 4);
}

static void test_every_alg_of_the_verifier_attests(void **state)
{
    (void)state;
    static const struct {
        const char *key, *kid, *alg;
    } t[] = {
        {"rsa", "sa-rsa", "RS256"},    {"rsa", "sa-rsa", "RS384"}, {"rsa", "sa-rsa", "RS512"},
        {"rsa", "sa-rsa", "PS512"},    {"rsa2", "sa-ps", "PS256"}, {"ec384", "sa-ec384", "ES384"},
        {"ed25519", "sa-ed", "EdDSA"}, {"ed25519", "-", "EdDSA"}, /* no kid: every key of the type is tried */
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        assert_int_equal(attest(t[i].key, t[i].kid, t[i].alg), 0);
}

static void test_refusals_keep_their_codes(void **state)
{
    (void)state;
    char hdr[128], tok[512];
    const char *hs = "{\"alg\":\"HS256\",\"kid\":\"sa-rsa\"}";
    rm_jwt_verify_opts_t opts;
    rm_jwt_claims_t claims;

    /* the JWK of sa-ps is for PS256 only; ES256 has no P-256 key here; ES384 by the Ed25519 key's kid */
    assert_int_equal(attest("rsa2", "sa-ps", "RS256"), RM_ERR_JWT_UNKNOWN_KEY);
    assert_int_equal(attest("ec256", "-", "ES256"), RM_ERR_JWT_UNKNOWN_KEY);
    assert_int_equal(attest("ec384", "sa-ed", "ES384"), RM_ERR_JWT_UNKNOWN_KEY);
    /* another RSA key's signature under sa-rsa's kid */
    assert_int_equal(attest("rsa2", "sa-rsa", "RS512"), RM_ERR_JWT_SIGNATURE);
    /* HMAC keyed with the RSA key's public numbers (alg confusion) is never accepted */
    rm_jwt_base64url((const uint8_t *)hs, strlen(hs), hdr);
    snprintf(tok, sizeof(tok), "%s.e30.c2lnbmF0dXJl", hdr);
    rm_jwt_verify_opts_init(&opts);
    opts.issuer = ISS;
    opts.audience = AUD;
    assert_int_equal(rm_jwt_verify(jwks, tok, strlen(tok), &opts, &claims, NULL, 0), RM_ERR_JWT_ALG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwks_holds_every_key_type),
        cmocka_unit_test(test_every_alg_of_the_verifier_attests),
        cmocka_unit_test(test_refusals_keep_their_codes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
