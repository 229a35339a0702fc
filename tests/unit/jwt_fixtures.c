/* Fixtures shared by the JWT and JWKS tests: see jwt_fixtures.h. */
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

jwt_fixtures_t fx;

char *read_data(const char *name, size_t *len)
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

rm_jwks_t *load_jwks(const char *name)
{
    rm_jwks_t *jwks;
    size_t len;
    char *doc = read_data(name, &len), err[256];

    assert_code(rm_jwks_parse(doc, len, &jwks, err, sizeof(err)), 0);
    free(doc);
    return jwks;
}

rm_jwks_t *jwks_of(const char *key, size_t key_len, const char *kid)
{
    rm_jwks_t *jwks;
    char *doc, err[256];

    assert_code(rm_jwks_from_private_key(key, key_len, kid, &doc), 0);
    assert_code(rm_jwks_parse(doc, strlen(doc), &jwks, err, sizeof(err)), 0);
    free(doc);
    return jwks;
}

int setup(void **state)
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

int teardown(void **state)
{
    rm_jwks_free(fx.py_jwks);
    rm_jwks_free(fx.rm_jwks);
    rm_x509_free_secret(fx.key, fx.key_len);
    rm_x509_free_secret(fx.other, fx.other_len);
    return 0;
}

rm_jwt_verify_opts_t opts_at(time_t now)
{
    rm_jwt_verify_opts_t opts;

    rm_jwt_verify_opts_init(&opts);
    opts.issuer = ISS;
    opts.audience = AUD;
    opts.now = now;
    return opts;
}

/* Verifies and checks the code; on failure also that a reason was given and no claim was returned. */
void expect_verify(const rm_jwks_t *jwks, const char *token, const rm_jwt_verify_opts_t *opts, int code,
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

void expect_fixture(const rm_jwks_t *jwks, const char *name, int code)
{
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *token = read_data(name, NULL);

    expect_verify(jwks, token, &opts, code, NULL);
    free(token);
}

claims_spec_t good_spec(void)
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
char *mint_with(const char *key, size_t key_len, const char *kid, const claims_spec_t *s)
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

char *mint(const claims_spec_t *s)
{
    return mint_with(fx.key, fx.key_len, KID, s);
}

/* Mints `s` with our key and verifies it at the fixtures' time. */
void expect_spec(const claims_spec_t *s, int code)
{
    rm_jwt_verify_opts_t opts = opts_at(fx.now);
    char *token = mint(s);

    expect_verify(fx.rm_jwks, token, &opts, code, NULL);
    free(token);
}

parts_t split(const char *token)
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

char *join(const parts_t *t)
{
    char *s = malloc(t->len[0] + t->len[1] + t->len[2] + 3);

    assert_non_null(s);
    sprintf(s, "%.*s.%.*s.%.*s", (int)t->len[0], t->p[0], (int)t->len[1], t->p[1], (int)t->len[2], t->p[2]);
    return s;
}

/* A copy of `token` with the byte at `at` (negative: from the end) replaced. */
char *with_byte(const char *token, long at, char c)
{
    char *s = strdup(token);
    size_t len = strlen(s);

    assert_non_null(s);
    s[at < 0 ? (long)len + at : at] = c;
    return s;
}
