/* End-user JWT verification (lib/jwt_user_wolfssl.c) against tokens and keys made by another implementation:
 * tests/e2e/tools/jwt_tool.py (python3-cryptography) makes the keys at group setup and mints each token. Every
 * accepted algorithm verifies; a bad signature, a wrong issuer or audience, an expired or not-yet-valid token, an
 * unknown kid, alg "none", HS256 (the alg-confusion attack with an RSA key) and a key of the wrong type are refused
 * with their own codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ringmesh/error.h"
#include "ringmesh/jwt_user.h"
#include "jwt_tool_fixtures.h"

#define ISS "https://idp.example.test"

static char dir[64];
static rm_jwt_keyset_t *keys;

static int setup(void **state)
{
    (void)state;
    return jwt_tool_setup(dir, "rsa:rsa-1 rsa2:rsa-ps:PS256 ec256:ec-1 ec384:ec-2 ed25519:ed-1", rm_jwt_keyset_parse,
                          &keys);
}

static int teardown(void **state)
{
    (void)state;
    return jwt_tool_teardown(dir, keys);
}

static char *mint(const char *key, const char *kid, const char *alg, const char *claims)
{
    return jwt_tool("mint %s %s %s %s '%s'", dir, key, kid, alg, claims);
}

static const char *const auds[] = {"orders", "other"};

/* Decodes and verifies; returns the code; on success the principal is checked against `principal`. */
static int verify(const char *token, const char *principal)
{
    rm_jwt_user_t t;
    char err[256];
    rm_jwt_user_check_t c = {.issuer = ISS, .audiences = auds, .num_audiences = 2, .now = time(NULL), .skew = 60};
    int ret = rm_jwt_user_decode(token, strlen(token), &t, err, sizeof(err));
    if (ret == 0) {
        ret = rm_jwt_user_verify(&t, keys, &c, err, sizeof(err));
        if (ret == 0 && principal != NULL)
            assert_string_equal(t.principal, principal);
    }
    if (ret != 0) {
        assert_true(err[0] != '\0'); /* a reason for the log */
        assert_null(strstr(err, token));
    }
    rm_jwt_user_clear(&t);
    return ret;
}

#define GOOD "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"aud\":\"orders\",\"exp\":\"+3600\",\"iat\":\"-10\"}"

static void test_every_alg_verifies(void **state)
{
    (void)state;
    static const struct {
        const char *key, *kid, *alg;
    } t[] = {
        {"rsa", "rsa-1", "RS256"},    {"rsa", "rsa-1", "RS384"},  {"rsa", "rsa-1", "RS512"},
        {"rsa2", "rsa-ps", "PS256"},  {"ec256", "ec-1", "ES256"}, {"ec384", "ec-2", "ES384"},
        {"ed25519", "ed-1", "EdDSA"}, {"rsa", "-", "RS256"}, /* no kid: every key of the type is tried */
    };
    assert_int_equal(rm_jwt_keyset_num_keys(keys), 5);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *tok = mint(t[i].key, t[i].kid, t[i].alg, GOOD);
        assert_int_equal(verify(tok, ISS "/alice"), 0);
        free(tok);
    }
}

static void test_claims_refused(void **state)
{
    (void)state;
    static const struct {
        const char *claims;
        int code;
    } t[] = {
        {"{\"iss\":\"https://evil.test\",\"sub\":\"a\",\"aud\":\"orders\",\"exp\":\"+3600\"}", RM_ERR_JWT_ISSUER},
        {"{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"billing\",\"exp\":\"+3600\"}", RM_ERR_JWT_AUDIENCE},
        {"{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":[\"x\",\"other\"],\"exp\":\"+3600\"}", 0},
        {"{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"orders\",\"exp\":\"-120\"}", RM_ERR_JWT_EXPIRED},
        {"{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"orders\",\"exp\":\"-30\"}", 0}, /* within the 60 s skew */
        {"{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"orders\",\"nbf\":\"+120\"}", RM_ERR_JWT_NOT_YET_VALID},
        {"{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"orders\"}", 0}, /* no exp: Istio accepts it */
        {"{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"orders\",\"exp\":\"soon\"}", RM_ERR_JWT_MALFORMED},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *tok = mint("ec256", "ec-1", "ES256", t[i].claims);
        assert_int_equal(verify(tok, NULL), t[i].code);
        free(tok);
    }
}

static void test_signature_and_keys_refused(void **state)
{
    (void)state;
    char *tok = mint("rsa", "rsa-1", "RS256", GOOD);
    size_t len = strlen(tok);
    tok[len - 5] = tok[len - 5] == 'A' ? 'B' : 'A'; /* a signature byte */
    assert_int_equal(verify(tok, NULL), RM_ERR_JWT_SIGNATURE);
    free(tok);

    tok = mint("rsa", "rsa-9", "RS256", GOOD); /* unknown kid */
    assert_int_equal(verify(tok, NULL), RM_ERR_JWT_UNKNOWN_KEY);
    free(tok);

    tok = mint("rsa", "rsa-ps", "RS256", GOOD); /* the JWK says PS256 only */
    assert_int_equal(verify(tok, NULL), RM_ERR_JWT_UNKNOWN_KEY);
    free(tok);

    tok = mint("ec256", "ec-2", "ES256", GOOD); /* kid of the P-384 key: no key of that curve */
    assert_int_equal(verify(tok, NULL), RM_ERR_JWT_UNKNOWN_KEY);
    free(tok);

    tok = mint("rsa2", "rsa-1", "RS256", GOOD); /* another key's signature under rsa-1's kid */
    assert_int_equal(verify(tok, NULL), RM_ERR_JWT_SIGNATURE);
    free(tok);
}

static void test_alg_none_and_hmac_refused(void **state)
{
    (void)state;
    /* {"alg":"none"} . payload . "" and {"alg":"HS256","kid":"rsa-1"}: never accepted, whatever the signature */
    char hdr[128], pay[512], tok[1024];
    const char *h_none = "{\"alg\":\"none\",\"typ\":\"JWT\"}", *h_hs = "{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}";
    const char *p = "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"orders\"}";
    rm_jwt_base64url((const uint8_t *)p, strlen(p), pay);
    rm_jwt_base64url((const uint8_t *)h_none, strlen(h_none), hdr);
    snprintf(tok, sizeof(tok), "%s.%s.", hdr, pay);
    assert_int_equal(verify(tok, NULL), RM_ERR_JWT_ALG);
    snprintf(tok, sizeof(tok), "%s.%s.c2ln", hdr, pay);
    assert_int_equal(verify(tok, NULL), RM_ERR_JWT_ALG);
    rm_jwt_base64url((const uint8_t *)h_hs, strlen(h_hs), hdr);
    snprintf(tok, sizeof(tok), "%s.%s.c2lnbmF0dXJl", hdr, pay);
    assert_int_equal(verify(tok, NULL), RM_ERR_JWT_ALG);
    /* malformed: two parts, bad base64url, not JSON */
    assert_int_equal(verify("abc.def", NULL), RM_ERR_JWT_MALFORMED);
    assert_int_equal(verify("a!c.def.ghi", NULL), RM_ERR_JWT_MALFORMED);
    assert_int_equal(verify("YWJj.ZGVm.Z2hp", NULL), RM_ERR_JWT_MALFORMED);
}

static void test_keyset_refusals(void **state)
{
    (void)state;
    rm_jwt_keyset_t *ks = NULL;
    char err[256];
    static const char *const bad[] = {
        "not json",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", /* a symmetric key is never usable */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rm_jwt_keyset_parse(bad[i], strlen(bad[i]), &ks, err, sizeof(err)), RM_ERR_JWKS);
        assert_null(ks);
        assert_true(err[0] != '\0');
    }
}

static void test_header_crit_and_kid_type(void **state)
{
    (void)state;
    /* refused as malformed before any key is tried: an extension we would have to understand (RFC 7515 4.1.11),
     * and a kid that is not a string (it would otherwise be taken as no kid, and every key tried) */
    static const char *const hdrs[] = {
        "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"RS256\",\"kid\":5}",
    };
    const char *p = "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"orders\"}";
    char hdr[256], pay[512], tok[1024];
    rm_jwt_base64url((const uint8_t *)p, strlen(p), pay);
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        rm_jwt_base64url((const uint8_t *)hdrs[i], strlen(hdrs[i]), hdr);
        snprintf(tok, sizeof(tok), "%s.%s.c2lnbmF0dXJl", hdr, pay);
        assert_int_equal(verify(tok, NULL), RM_ERR_JWT_MALFORMED);
    }
}

static void test_exp_far_in_the_future(void **state)
{
    (void)state;
    /* the largest exp jansson reads: exp plus the clock skew must not overflow into "expired" */
    char *tok = mint("ec256", "ec-1", "ES256",
                     "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"orders\",\"exp\":9223372036854775807}");
    assert_int_equal(verify(tok, ISS "/a"), 0);
    free(tok);
    tok = mint("ec256", "ec-1", "ES256",
               "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"orders\",\"nbf\":-9223372036854775807}");
    assert_int_equal(verify(tok, ISS "/a"), 0);
    free(tok);
}

/* The code of parsing the JWKS of the tool's key `key` with `member` (raw JSON) set on it. */
static int keyset_code_with(const char *key, const char *member, const char *value)
{
    char *doc = jwt_tool("jwks %s %s:k", dir, key), *out, err[256];
    json_t *j = json_loads(doc, 0, NULL), *k = json_array_get(json_object_get(j, "keys"), 0);
    rm_jwt_keyset_t *ks = NULL;
    int ret;

    assert_non_null(k);
    assert_int_equal(json_object_set_new(k, member, json_loads(value, JSON_DECODE_ANY, NULL)), 0);
    assert_non_null(out = json_dumps(j, 0));
    ret = rm_jwt_keyset_parse(out, strlen(out), &ks, err, sizeof(err));
    if (ret != 0) {
        assert_null(ks);
        assert_true(err[0] != '\0');
    }
    rm_jwt_keyset_free(ks);
    json_decref(j);
    free(out);
    free(doc);
    return ret;
}

static void test_keyset_skips_keys_not_for_verifying(void **state)
{
    (void)state;
    /* each JWKS holds one key, usable but for the member set on it: skipped, nothing is left */
    assert_int_equal(keyset_code_with("rsa", "use", "\"sig\""), 0);
    assert_int_equal(keyset_code_with("rsa", "key_ops", "[\"verify\"]"), 0);
    assert_int_equal(keyset_code_with("rsa", "key_ops", "[\"encrypt\"]"), RM_ERR_JWKS);
    assert_int_equal(keyset_code_with("ed25519", "key_ops", "\"verify\""), RM_ERR_JWKS); /* not a list */
    assert_int_equal(keyset_code_with("ec256", "kid", "5"), RM_ERR_JWKS);
    assert_int_equal(keyset_code_with("rsa", "e", "\"AAAAAw\""), 0);            /* 3, with leading zeros */
    assert_int_equal(keyset_code_with("rsa", "e", "\"AQ\""), RM_ERR_JWKS);      /* 1 */
    assert_int_equal(keyset_code_with("rsa", "e", "\"AQAA\""), RM_ERR_JWKS);    /* even */
    assert_int_equal(keyset_code_with("rsa", "e", "\"AQAAAAE\""), RM_ERR_JWKS); /* 40 bits */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_alg_verifies),
        cmocka_unit_test(test_claims_refused),
        cmocka_unit_test(test_signature_and_keys_refused),
        cmocka_unit_test(test_alg_none_and_hmac_refused),
        cmocka_unit_test(test_keyset_refusals),
        cmocka_unit_test(test_header_crit_and_kid_type),
        cmocka_unit_test(test_exp_far_in_the_future),
        cmocka_unit_test(test_keyset_skips_keys_not_for_verifying),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
