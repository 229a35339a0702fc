/* JWT / JWKS: projected ServiceAccount tokens verified against a JWKS, one test per reason to refuse.
 *
 * Tokens and keys come from two sources: PyJWT (tests/data/jwt/, made once by make_fixtures.py, so the verifier
 * is held against an encoder and signer that are not ringmesh's own) and rm_jwt_sign_es256 with keys made at test
 * start (for the claim checks, where each test changes one claim of a token that otherwise passes). Every
 * verification pins opts.now to the fixtures' fixed time. */
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

#ifndef RM_TEST_DATA_DIR
#error RM_TEST_DATA_DIR must point at tests/data
#endif

#define DATA_DIR RM_TEST_DATA_DIR "/jwt/"
#define ISS      "https://kubernetes.default.svc.cluster.local"
#define AUD      "ringmesh"
#define KID      "rm-1"

#define assert_code(expr, code)                                                                                        \
    do {                                                                                                               \
        int ret_ = (expr);                                                                                             \
        if (ret_ != (code))                                                                                            \
            fail_msg("%s: got %d (%s), want %d (%s)", #expr, ret_, rm_strerror(ret_), (code), rm_strerror(code));      \
    } while (0)

/* ---- fixtures ----------------------------------------------------------------------------------------------- */

static struct {
    time_t now;         /* the fixtures' fixed time */
    rm_jwks_t *py_jwks; /* jwks.json: PyJWT's EC and RSA keys, and keys to skip */
    char *key, *other;  /* our signing keys (PEM); `key` is KID in rm_jwks */
    size_t key_len, other_len;
    rm_jwks_t *rm_jwks;
} fx;

static char *read_data(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), DATA_DIR "%s", name);
    if ((f = fopen(path, "rb")) == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

static rm_jwks_t *load_jwks(const char *name)
{
    rm_jwks_t *jwks;
    size_t len;
    char *doc = read_data(name, &len), err[256];

    assert_code(rm_jwks_parse(doc, len, &jwks, err, sizeof(err)), 0);
    free(doc);
    return jwks;
}

static rm_jwks_t *jwks_of(const char *key, size_t key_len, const char *kid)
{
    rm_jwks_t *jwks;
    char *doc, err[256];

    assert_code(rm_jwks_from_private_key(key, key_len, kid, &doc), 0);
    assert_code(rm_jwks_parse(doc, strlen(doc), &jwks, err, sizeof(err)), 0);
    free(doc);
    return jwks;
}

static int setup(void **state)
{
    uint8_t *spki;
    size_t spki_len;
    char *text = read_data("now", NULL);

    fx.now = (time_t)strtoll(text, NULL, 10);
    free(text);
    if (fx.now < 1700000000)
        return -1;
    fx.py_jwks = load_jwks("jwks.json");
    if (rm_x509_generate_key(&fx.key, &fx.key_len, &spki, &spki_len) != 0)
        return -1;
    free(spki);
    if (rm_x509_generate_key(&fx.other, &fx.other_len, &spki, &spki_len) != 0)
        return -1;
    free(spki);
    fx.rm_jwks = jwks_of(fx.key, fx.key_len, KID);
    return 0;
}

static int teardown(void **state)
{
    rm_jwks_free(fx.py_jwks);
    rm_jwks_free(fx.rm_jwks);
    rm_x509_free_secret(fx.key, fx.key_len);
    rm_x509_free_secret(fx.other, fx.other_len);
    return 0;
}

static rm_jwt_verify_opts_t opts_at(time_t now)
{
    rm_jwt_verify_opts_t opts;

    rm_jwt_verify_opts_init(&opts);
    opts.issuer = ISS;
    opts.audience = AUD;
    opts.now = now;
    return opts;
}

/* Verifies and checks the code; on failure also that a reason was given and no claim was returned. */
static void expect_verify(const rm_jwks_t *jwks, const char *token, const rm_jwt_verify_opts_t *opts, int code,
                          rm_jwt_claims_t *claims_out)
{
    rm_jwt_claims_t claims;
    char err[256];
    int ret;

    memset(&claims, 0x55, sizeof(claims));
    memset(err, 0x55, sizeof(err));
    ret = rm_jwt_verify(jwks, token, strlen(token), opts, &claims, err, sizeof(err));
    if (ret != code)
        fail_msg("verify: got %d (%s: %.*s), want %d (%s)", ret, rm_strerror(ret), (int)sizeof(err), err, code,
                 rm_strerror(code));
    assert_non_null(memchr(err, '\0', sizeof(err)));
    if (code != 0) {
        assert_true(err[0] != '\0');
        assert_int_equal(claims.namespace_[0], '\0');
        assert_int_equal(claims.service_account[0], '\0');
        assert_int_equal(claims.expires_at, 0);
    }
    if (claims_out != NULL)
        *claims_out = claims;
}

static void expect_fixture(const rm_jwks_t *jwks, const char *name, int code)
{
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *token = read_data(name, NULL);

    expect_verify(jwks, token, &opts, code, NULL);
    free(token);
}

/* ---- claims of tokens we sign ------------------------------------------------------------------------------- */

/* Each member is raw JSON; NULL leaves the claim out. */
typedef struct st_claims_spec_t {
    const char *iss, *aud, *exp, *nbf, *iat, *sub, *k8s;
} claims_spec_t;

#define K8S(ns, sa, pod)                                                                                               \
    "{\"namespace\":\"" ns "\",\"serviceaccount\":{\"name\":\"" sa                                                     \
    "\",\"uid\":\"5f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\"}" pod "}"
#define POD ",\"pod\":{\"name\":\"orders-7d9f8b6c5-x2x9k\",\"uid\":\"0c9a3b2e-5d1f-4a7e-9b8c-2f6d4e1a7c30\"}"

static claims_spec_t good_spec(void)
{
    /* the fixtures' time is 1800000000 */
    claims_spec_t s = {.iss = "\"" ISS "\"",
                       .aud = "[\"" AUD "\"]",
                       .exp = "1800003600",
                       .nbf = "1799999940",
                       .iat = "1799999940",
                       .sub = "\"system:serviceaccount:shop:orders\"",
                       .k8s = K8S("shop", "orders", POD)};
    return s;
}

/* Signs the claims with `key` under `kid`; returns the token (free()). */
static char *mint_with(const char *key, size_t key_len, const char *kid, const claims_spec_t *s)
{
    const char *names[] = {"iss", "aud", "exp", "nbf", "iat", "sub", "kubernetes.io"};
    const char *values[] = {s->iss, s->aud, s->exp, s->nbf, s->iat, s->sub, s->k8s};
    char json[2048], *token;
    size_t len = 0, i;

    json[len++] = '{';
    for (i = 0; i != sizeof(names) / sizeof(names[0]); ++i)
        if (values[i] != NULL)
            len += (size_t)snprintf(json + len, sizeof(json) - len, "%s\"%s\":%s", len > 1 ? "," : "", names[i],
                                    values[i]);
    snprintf(json + len, sizeof(json) - len, "}");
    assert_code(rm_jwt_sign_es256(key, key_len, kid, json, &token), 0);
    return token;
}

static char *mint(const claims_spec_t *s)
{
    return mint_with(fx.key, fx.key_len, KID, s);
}

/* Mints `s` with our key and verifies it at the fixtures' time. */
static void expect_spec(const claims_spec_t *s, int code)
{
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *token = mint(s);

    expect_verify(fx.rm_jwks, token, &opts, code, NULL);
    free(token);
}

/* ---- token surgery ------------------------------------------------------------------------------------------ */

typedef struct st_parts_t {
    const char *p[3];
    size_t len[3];
} parts_t;

static parts_t split(const char *token)
{
    parts_t t;
    const char *d1 = strchr(token, '.'), *d2;

    assert_non_null(d1);
    d2 = strchr(d1 + 1, '.');
    assert_non_null(d2);
    assert_null(strchr(d2 + 1, '.'));
    t.p[0] = token;
    t.len[0] = (size_t)(d1 - token);
    t.p[1] = d1 + 1;
    t.len[1] = (size_t)(d2 - d1 - 1);
    t.p[2] = d2 + 1;
    t.len[2] = strlen(d2 + 1);
    return t;
}

static char *join(const parts_t *t)
{
    char *s = malloc(t->len[0] + t->len[1] + t->len[2] + 3);

    assert_non_null(s);
    sprintf(s, "%.*s.%.*s.%.*s", (int)t->len[0], t->p[0], (int)t->len[1], t->p[1], (int)t->len[2], t->p[2]);
    return s;
}

/* A copy of `token` with the byte at `at` (negative: from the end) replaced. */
static char *with_byte(const char *token, long at, char c)
{
    char *s = strdup(token);
    size_t len = strlen(s);

    assert_non_null(s);
    s[at < 0 ? (long)len + at : at] = c;
    return s;
}

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
    /* jwks.json: EC P-256 and RSA-2048 are usable; oct, P-384, RSA-1024 and use "enc" are not */
    assert_int_equal(rm_jwks_num_keys(fx.py_jwks), 2);
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
    snprintf(buf, sizeof(buf), "{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"PS256\",\"n\":\"%s\",\"e\":\"AQAB\"}]}", n);
    assert_code(parse_code(buf), RM_ERR_JWKS); /* skipped: nothing left */
#undef RSA_KEY
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
