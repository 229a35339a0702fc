/* JWT verification against a JWKS (lib/jwt_wolfssl.c over lib/jwt_user_wolfssl.c), one test per reason to refuse:
 * tokens and keys from PyJWT and our own that verify, malformed parts, base64url and JSON, refused algorithms and
 * unknown keys, and signatures tampered with, truncated or from another key (checked before any claim). */
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

/* ---- happy paths -------------------------------------------------------------------------------------------- */

static void test_pyjwt_es256(void **state)
{
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    rm_jwt_claims_t claims;
    char *token = read_data("es256.jwt", NULL);

    expect_verify(fx.py_jwks, token, &opts, 0, &claims);
    assert_string_equal(claims.namespace_, "shop");
    assert_string_equal(claims.service_account, "orders");
    assert_string_equal(claims.pod_name, "orders-7d9f8b6c5-x2x9k");
    assert_string_equal(claims.pod_uid, "0c9a3b2e-5d1f-4a7e-9b8c-2f6d4e1a7c30");
    assert_string_equal(claims.issuer, ISS);
    assert_int_equal(claims.expires_at, (int64_t)fx.now + 3600);
    free(token);
}

static void test_pyjwt_rs256(void **state)
{
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    rm_jwt_claims_t claims;
    rm_jwks_t *rsa_only = load_jwks("jwks-rsa.json");
    char *token = read_data("rs256.jwt", NULL);

    /* PyJWT's RSA JWK parses on its own, and the token verifies against it and the mixed set */
    assert_int_equal(rm_jwks_num_keys(rsa_only), 1);
    expect_verify(rsa_only, token, &opts, 0, &claims);
    assert_string_equal(claims.namespace_, "shop");
    assert_string_equal(claims.service_account, "orders");
    assert_int_equal(claims.expires_at, (int64_t)fx.now + 3600);
    expect_verify(fx.py_jwks, token, &opts, 0, NULL);
    rm_jwks_free(rsa_only);
    free(token);
}

static void test_pyjwt_without_kid(void **state)
{
    /* no kid: every key of the alg is tried */
    expect_fixture(fx.py_jwks, "es256-no-kid.jwt", 0);
}

static void test_pyjwt_jwks_skips_unusable_keys(void **state)
{
    /* jwks.json: EC P-256, EC P-384 and RSA-2048 are usable; oct, RSA-1024 and use "enc" are not */
    assert_int_equal(rm_jwks_num_keys(fx.py_jwks), 3);
}

static void test_own_es256(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    rm_jwt_claims_t claims;
    char *token = mint(&s);

    expect_verify(fx.rm_jwks, token, &opts, 0, &claims);
    assert_string_equal(claims.namespace_, "shop");
    assert_string_equal(claims.service_account, "orders");
    assert_string_equal(claims.pod_name, "orders-7d9f8b6c5-x2x9k");
    assert_int_equal(claims.expires_at, 1800003600);
    /* a token of ours is refused by a JWKS that does not hold our key */
    expect_verify(fx.py_jwks, token, &opts, RM_ERR_JWT_UNKNOWN_KEY, NULL);
    free(token);
}

static void test_own_signature_against_pyjwt_jwks(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    size_t len;
    char *pem = read_data("ec-key.pem", &len), *token = mint_with(pem, len, "py-ec", &s);

    /* our ES256 signature, PyJWT's JWK of the same key */
    expect_verify(fx.py_jwks, token, &opts, 0, NULL);
    free(token);
    free(pem);
}

static void test_jwks_from_private_key(void **state)
{
    json_t *ours, *theirs, *ec, *key;
    size_t len;
    char *pem = read_data("ec-key.pem", &len), *kid = read_data("ec-key.kid", NULL), *doc, *nl;
    char *their_doc = read_data("jwks.json", NULL);

    if ((nl = strchr(kid, '\n')) != NULL)
        *nl = '\0';
    /* no kid given: the RFC 7638 thumbprint, as the fixture computed it */
    assert_code(rm_jwks_from_private_key(pem, len, NULL, &doc), 0);
    assert_non_null(ours = json_loads(doc, 0, NULL));
    assert_non_null(theirs = json_loads(their_doc, 0, NULL));
    assert_int_equal(json_array_size(json_object_get(ours, "keys")), 1);
    key = json_array_get(json_object_get(ours, "keys"), 0);
    ec = json_array_get(json_object_get(theirs, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(ec, "kid")), "py-ec");
    assert_string_equal(json_string_value(json_object_get(key, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(key, "crv")), "P-256");
    assert_string_equal(json_string_value(json_object_get(key, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(key, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(key, "x")), json_string_value(json_object_get(ec, "x")));
    assert_string_equal(json_string_value(json_object_get(key, "y")), json_string_value(json_object_get(ec, "y")));
    assert_string_equal(json_string_value(json_object_get(key, "kid")), kid);
    assert_null(json_object_get(key, "d"));
    json_decref(ours);
    free(doc);

    /* a kid given is used as is */
    assert_code(rm_jwks_from_private_key(pem, len, "mine", &doc), 0);
    assert_non_null(ours = json_loads(doc, 0, NULL));
    key = json_array_get(json_object_get(ours, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(key, "kid")), "mine");
    json_decref(ours);
    json_decref(theirs);
    free(doc);
    free(their_doc);
    free(kid);
    free(pem);
}

static void test_sign_header_and_payload(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *with_kid = mint(&s), *without, *token;

    /* kid NULL: no kid in the header, so every ES256 key is tried */
    assert_code(rm_jwt_sign_es256(fx.key, fx.key_len, NULL, "{\"a\":1}", &token), 0);
    free(token);
    without = mint_with(fx.key, fx.key_len, NULL, &s);
    assert_true(split(without).len[0] < split(with_kid).len[0]);
    expect_verify(fx.rm_jwks, without, &opts, 0, NULL);
    /* claims must be a JSON object; the key a P-256 PEM private key */
    assert_code(rm_jwt_sign_es256(fx.key, fx.key_len, KID, "[1]", &token), -EINVAL);
    assert_null(token);
    assert_code(rm_jwt_sign_es256(fx.key, fx.key_len, KID, "{\"a\":", &token), -EINVAL);
    assert_code(rm_jwt_sign_es256("not a key", 9, KID, "{}", &token), -EINVAL);
    free(with_kid);
    free(without);
}

/* ---- malformed ---------------------------------------------------------------------------------------------- */

static void test_malformed_parts(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *token = mint(&s), *cut, *more;
    parts_t t = split(token);

    expect_verify(fx.rm_jwks, "", &opts, RM_ERR_JWT_MALFORMED, NULL);
    expect_verify(fx.rm_jwks, "abc", &opts, RM_ERR_JWT_MALFORMED, NULL);
    cut = strndup(token, t.len[0] + 1 + t.len[1]); /* header.payload */
    expect_verify(fx.rm_jwks, cut, &opts, RM_ERR_JWT_MALFORMED, NULL);
    more = malloc(strlen(token) + 5);
    sprintf(more, "%s.e30", token);
    expect_verify(fx.rm_jwks, more, &opts, RM_ERR_JWT_MALFORMED, NULL);
    /* a token longer than the limit, even a well-formed one */
    {
        size_t n = 16 * 1024 + 1;
        char *big = malloc(n + 1);
        memset(big, 'A', n);
        memcpy(big, token, strlen(token));
        big[n] = '\0';
        expect_verify(fx.rm_jwks, big, &opts, RM_ERR_JWT_MALFORMED, NULL);
        free(big);
    }
    free(cut);
    free(more);
    free(token);
}

static void test_malformed_base64url(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *token = mint(&s), *bad;
    parts_t t = split(token);
    long in_payload = (long)(t.len[0] + 1 + 5), in_header = 3, in_sig = (long)(t.len[0] + t.len[1] + 2 + 10);
    const char chars[] = {'+', '/', '=', ' ', '\n', '!'};
    size_t i;

    for (i = 0; i != sizeof(chars); ++i) {
        bad = with_byte(token, in_payload, chars[i]);
        expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_MALFORMED, NULL);
        free(bad);
        bad = with_byte(token, in_header, chars[i]);
        expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_MALFORMED, NULL);
        free(bad);
        bad = with_byte(token, in_sig, chars[i]);
        expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_MALFORMED, NULL);
        free(bad);
    }
    /* padding, even where it would be right for base64 */
    bad = malloc(strlen(token) + 3);
    sprintf(bad, "%s==", token); /* the 64-byte signature is 86 characters: "==" completes it */
    expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_MALFORMED, NULL);
    free(bad);
    /* a length no base64 has (4n + 1): 85 characters */
    bad = strndup(token, strlen(token) - 1);
    expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_MALFORMED, NULL);
    free(bad);
    /* non-zero bits after the last byte: the 86th character of the signature encodes 2 bits of data */
    assert_int_equal(t.len[2], 86);
    bad = with_byte(token, -1, token[strlen(token) - 1] == 'B' ? 'C' : 'B');
    expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_MALFORMED, NULL);
    free(bad);
    free(token);
}

static void test_malformed_json(void **state)
{
    expect_fixture(fx.py_jwks, "header-not-json.jwt", RM_ERR_JWT_MALFORMED);
    expect_fixture(fx.py_jwks, "payload-not-json.jwt", RM_ERR_JWT_MALFORMED);
    expect_fixture(fx.py_jwks, "payload-not-object.jwt", RM_ERR_JWT_MALFORMED);
    /* validly signed, but "aud" twice: no guessing which one counts */
    expect_fixture(fx.py_jwks, "payload-duplicate.jwt", RM_ERR_JWT_MALFORMED);
}

static void test_crit_header_refused(void **state)
{
    /* validly signed, but with an extension we would have to understand */
    expect_fixture(fx.py_jwks, "crit.jwt", RM_ERR_JWT_MALFORMED);
}

/* ---- alg and key -------------------------------------------------------------------------------------------- */

static void test_alg_refused(void **state)
{
    expect_fixture(fx.py_jwks, "alg-none.jwt", RM_ERR_JWT_ALG);
    expect_fixture(fx.py_jwks, "alg-hs256.jwt", RM_ERR_JWT_ALG);
    expect_fixture(fx.py_jwks, "alg-missing.jwt", RM_ERR_JWT_ALG);
}

static void test_unknown_key(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    rm_jwks_t *rsa_only = load_jwks("jwks-rsa.json");
    char *token = mint_with(fx.key, fx.key_len, "rm-2", &s), *other_alg;

    /* kid not in the JWKS */
    expect_verify(fx.rm_jwks, token, &opts, RM_ERR_JWT_UNKNOWN_KEY, NULL);
    /* kid of a key of the other alg (RSA) on an ES256 token */
    other_alg = mint_with(fx.key, fx.key_len, "py-rsa", &s);
    expect_verify(fx.py_jwks, other_alg, &opts, RM_ERR_JWT_UNKNOWN_KEY, NULL);
    /* no kid, and no key of the alg */
    expect_fixture(rsa_only, "es256-no-kid.jwt", RM_ERR_JWT_UNKNOWN_KEY);
    rm_jwks_free(rsa_only);
    free(other_alg);
    free(token);
}

/* ---- signature ---------------------------------------------------------------------------------------------- */

static void test_signature_tampered_payload(void **state)
{
    claims_spec_t s = good_spec(), other = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *a, *b, *spliced;
    parts_t ta, tb;

    other.sub = "\"system:serviceaccount:shop:admin\"";
    other.k8s = K8S("shop", "admin", POD);
    a = mint(&s);
    b = mint(&other);
    /* b's payload under a's header and signature */
    ta = split(a);
    tb = split(b);
    ta.p[1] = tb.p[1];
    ta.len[1] = tb.len[1];
    spliced = join(&ta);
    expect_verify(fx.rm_jwks, spliced, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    expect_verify(fx.rm_jwks, b, &opts, 0, NULL);
    free(spliced);
    free(a);
    free(b);
}

static void test_signature_other_key(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *token = mint_with(fx.other, fx.other_len, KID, &s), *no_kid = mint_with(fx.other, fx.other_len, NULL, &s);

    expect_verify(fx.rm_jwks, token, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    expect_verify(fx.rm_jwks, no_kid, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    expect_fixture(fx.py_jwks, "rs256-wrong-key.jwt", RM_ERR_JWT_SIGNATURE);
    free(token);
    free(no_kid);
}

static void test_signature_truncated_or_changed(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *token = mint(&s), *bad, *rs = read_data("rs256.jwt", NULL);
    parts_t t = split(token), tr = split(rs);
    size_t i;

    /* two zero bytes after the valid 64 ("AA" extends the last group canonically), then 63 bytes (84 of the 86
     * characters) */
    bad = malloc(strlen(token) + 3);
    sprintf(bad, "%sAA", token);
    expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    free(bad);
    bad = strndup(token, strlen(token) - 2);
    expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    free(bad);
    /* no signature at all */
    bad = strndup(token, (size_t)(t.p[2] - token));
    expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    free(bad);
    /* one character changed inside r, then inside s */
    bad = with_byte(token, (long)(t.p[2] - token) + 20, t.p[2][20] == 'Q' ? 'R' : 'Q');
    expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    free(bad);
    bad = with_byte(token, (long)(t.p[2] - token) + 60, t.p[2][60] == 'Q' ? 'R' : 'Q');
    expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    free(bad);
    /* r = s = 0 */
    bad = strdup(token);
    for (i = 0; i != t.len[2]; ++i)
        bad[(size_t)(t.p[2] - token) + i] = 'A';
    expect_verify(fx.rm_jwks, bad, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    free(bad);
    /* RS256: 340 of the 342 characters (255 bytes of a 256-byte signature) */
    assert_int_equal(tr.len[2], 342);
    bad = strndup(rs, strlen(rs) - 2);
    expect_verify(fx.py_jwks, bad, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    free(bad);
    bad = malloc(strlen(rs) + 3);
    sprintf(bad, "%sAA", rs);
    expect_verify(fx.py_jwks, bad, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    free(bad);
    bad = with_byte(rs, (long)(tr.p[2] - rs) + 100, tr.p[2][100] == 'Q' ? 'R' : 'Q');
    expect_verify(fx.py_jwks, bad, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    free(bad);
    free(rs);
    free(token);
}

static void test_signature_checked_before_claims(void **state)
{
    claims_spec_t s = good_spec();
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *token, *sig_start, err[256];
    rm_jwt_claims_t claims;

    /* expired and with a bad namespace, but the signature is what fails first */
    s.exp = "1";
    s.k8s = K8S("../x", "orders", POD);
    token = mint_with(fx.other, fx.other_len, KID, &s);
    expect_verify(fx.rm_jwks, token, &opts, RM_ERR_JWT_SIGNATURE, NULL);
    /* the message never quotes the signature */
    sig_start = strndup(split(token).p[2], 16);
    assert_code(rm_jwt_verify(fx.rm_jwks, token, strlen(token), &opts, &claims, err, sizeof(err)),
                RM_ERR_JWT_SIGNATURE);
    assert_null(strstr(err, sig_start));
    free(sig_start);
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pyjwt_es256),
        cmocka_unit_test(test_pyjwt_rs256),
        cmocka_unit_test(test_pyjwt_without_kid),
        cmocka_unit_test(test_pyjwt_jwks_skips_unusable_keys),
        cmocka_unit_test(test_own_es256),
        cmocka_unit_test(test_own_signature_against_pyjwt_jwks),
        cmocka_unit_test(test_jwks_from_private_key),
        cmocka_unit_test(test_sign_header_and_payload),
        cmocka_unit_test(test_malformed_parts),
        cmocka_unit_test(test_malformed_base64url),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_crit_header_refused),
        cmocka_unit_test(test_alg_refused),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_signature_tampered_payload),
        cmocka_unit_test(test_signature_other_key),
        cmocka_unit_test(test_signature_truncated_or_changed),
        cmocka_unit_test(test_signature_checked_before_claims),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
