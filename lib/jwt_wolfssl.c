/* JWTs (JWS compact serialization) verified against a JWKS, and ES256 signing, over wolfCrypt and jansson.
 *
 * Keys are held as raw bytes (EC coordinates, RSA modulus and exponent) and imported into a fresh wolfCrypt key
 * for every verification: wolfCrypt's verify functions write state into the key object, so one shared key
 * would not be safe from several threads, and rm_jwks_t promises that it is.
 *
 * All three parts of a token are decoded, and header and payload parsed as JSON objects, before any key is
 * tried: a malformed token is reported as malformed whatever its signature. The claims are read only once the
 * signature has verified. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/signature.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ecc_internal.h"
#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/jwt.h"

#define TOKEN_MAX      (16u << 10) /* projected ServiceAccount tokens are about 1 KiB */
#define JWKS_MAX       (1u << 20)
#define JWKS_MAX_KEYS  64
#define KID_MAX        255
#define P256_LEN       32
#define RSA_MIN_BITS   2048
#define RSA_MAX_BITS   4096 /* larger keys are not used for ServiceAccount tokens and cost far more to verify */
#define DEFAULT_LEEWAY 60
#define LEEWAY_MAX     ((int64_t)1 << 32)
#define DATE_LIMIT     ((int64_t)1 << 52) /* NumericDates are clamped to +-this, so sums with a leeway never overflow */
#define SHOWN_MAX      64                 /* claim values quoted in an error message are cut to this many bytes */
#define SUB_PREFIX     "system:serviceaccount:"

enum { ALG_ES256 = 1, ALG_RS256 };

typedef struct st_jwk_t {
    int alg;
    char *kid;                        /* NULL when the key has none */
    uint8_t x[P256_LEN], y[P256_LEN]; /* ES256: the public point */
    uint8_t *n;                       /* RS256: modulus, without leading zero bytes */
    size_t n_len;
    uint8_t e[4]; /* RS256: public exponent, without leading zero bytes */
    size_t e_len;
} jwk_t;

struct st_rm_jwks_t {
    size_t num;
    jwk_t keys[];
};

/* ---- messages ----------------------------------------------------------------------------------------------- */

/* A claim value fit to quote in a message: at most SHOWN_MAX bytes, anything but printable ASCII (and the quote)
 * shown as '?'. */
static const char *shown(char buf[SHOWN_MAX + 4], const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i != SHOWN_MAX; ++i)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' ? s[i] : '?';
    if (s[i] != '\0') {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* ---- base64url (RFC 7515 section 2: no padding, no line breaks) -------------------------------------------- */

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes into a malloc'd buffer (NULL for empty input). Returns 0, -EINVAL for anything but canonical unpadded
 * base64url, or -ENOMEM. wolfCrypt decodes standard base64, so the alphabet is mapped and the padding restored
 * first; the input is checked beforehand because Base64_Decode skips line breaks and stops at a NUL. */
static int b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    size_t padded = (len + 3) / 4 * 4, want = len / 4 * 3 + (len % 4 != 0 ? len % 4 - 1 : 0), i;
    char *std = NULL;
    uint8_t *buf = NULL;
    word32 got;
    int ret;

    *out = NULL;
    *out_len = 0;
    if (len == 0)
        return 0;
    if (len % 4 == 1 || len > TOKEN_MAX * 64)
        return -EINVAL;
    for (i = 0; i != len; ++i)
        if (b64url_value(in[i]) < 0)
            return -EINVAL;
    /* the bits after the last whole byte must be zero, so that a value has one encoding only */
    if (len % 4 != 0 && (b64url_value(in[len - 1]) & (len % 4 == 2 ? 0x0f : 0x03)) != 0)
        return -EINVAL;
    if ((std = malloc(padded)) == NULL || (buf = malloc(padded / 4 * 3 + 4)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (i = 0; i != len; ++i)
        std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    for (; i != padded; ++i)
        std[i] = '=';
    got = (word32)(padded / 4 * 3 + 4);
    if (Base64_Decode((const byte *)std, (word32)padded, buf, &got) != 0 || got != want) {
        ret = -EINVAL;
        goto Exit;
    }
    *out = buf;
    *out_len = want;
    buf = NULL;
    ret = 0;

Exit:
    free(std);
    free(buf);
    return ret;
}

/* Returns a malloc'd NUL-terminated base64url string of `len` (> 0) bytes, or NULL. */
static char *b64url_encode(const uint8_t *in, size_t len)
{
    word32 cap, i, j;
    char *out;

    if (len == 0 || len > TOKEN_MAX * 64)
        return NULL;
    cap = (word32)((len + 2) / 3 * 4 + 1);
    if ((out = malloc(cap)) == NULL)
        return NULL;
    if (Base64_Encode_NoNl(in, (word32)len, (byte *)out, &cap) != 0) {
        free(out);
        return NULL;
    }
    for (i = 0, j = 0; i != cap; ++i) {
        if (out[i] == '=')
            break;
        out[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[j] = '\0';
    return out;
}

/* ---- names -------------------------------------------------------------------------------------------------- */

/* DNS-1123 label as Kubernetes checks it: 1 to 63 of [a-z0-9-], starting and ending with [a-z0-9]. */
static int is_dns_label(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (i = 0; i != len; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* DNS-1123 subdomain as Kubernetes checks it: at most 253 bytes, dot-separated parts of [a-z0-9-] that start and
 * end with [a-z0-9] (Kubernetes does not bound the parts to 63 here, so neither do we). */
static int is_dns_subdomain(const char *s)
{
    size_t len = strlen(s), start = 0, i;

    if (len == 0 || len > 253)
        return 0;
    for (i = 0; i <= len; ++i) {
        if (i != len && s[i] != '.')
            continue;
        if (i == start || s[start] == '-' || s[i - 1] == '-')
            return 0;
        for (; start != i; ++start)
            if (!((s[start] >= 'a' && s[start] <= 'z') || (s[start] >= '0' && s[start] <= '9') || s[start] == '-'))
                return 0;
        start = i + 1;
    }
    return 1;
}

/* A pod UID: Kubernetes makes them UUIDs; accept 1 to 63 of [A-Za-z0-9-]. */
static int is_uid(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; ++i)
        if (i == 63 || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                         s[i] == '-'))
            return 0;
    return i != 0;
}

/* ---- JWKS --------------------------------------------------------------------------------------------------- */

/* Reads an optional string member: 0 absent (*out = NULL), 1 a string, -1 present but not a string. */
static int member_string(const json_t *obj, const char *name, const char **out)
{
    const json_t *v = json_object_get(obj, name);

    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 1;
}

/* Decodes a base64url member into a malloc'd buffer. Returns 0, -EINVAL (missing, not a string, not base64url) or
 * -ENOMEM. */
static int member_b64url(const json_t *obj, const char *name, uint8_t **out, size_t *out_len)
{
    const char *s;

    *out = NULL;
    if (member_string(obj, name, &s) != 1)
        return -EINVAL;
    return b64url_decode(s, strlen(s), out, out_len);
}

static int check_ec_point(const uint8_t x[P256_LEN], const uint8_t y[P256_LEN])
{
    ecc_key key;
    int ok;

    if (wc_ecc_init(&key) != 0)
        return 0;
    ok = wc_ecc_import_unsigned(&key, x, y, NULL, ECC_SECP256R1) == 0 && wc_ecc_check_key(&key) == 0;
    wc_ecc_free(&key);
    return ok;
}

static int check_rsa_key(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len)
{
    RsaKey key;
    int ok;

    if (wc_InitRsaKey(&key, NULL) != 0)
        return 0;
    ok = wc_RsaPublicKeyDecodeRaw(n, (word32)n_len, e, (word32)e_len, &key) == 0 &&
         wc_RsaEncryptSize(&key) == (int)n_len;
    wc_FreeRsaKey(&key);
    return ok;
}

/* Reads keys[index] into *out. Returns 0 (usable), 1 (skipped; the reason in `why`), RM_ERR_JWKS or -ENOMEM. */
static int parse_jwk(const json_t *k, size_t index, jwk_t *out, char *why, size_t whylen, char *err, size_t errlen)
{
    const char *kty, *kid, *use, *alg, *crv;
    const json_t *ops;
    uint8_t *a = NULL, *b = NULL;
    size_t a_len = 0, b_len = 0, i;
    char name[KID_MAX + 32], tmp[SHOWN_MAX + 4];
    int ret;

    memset(out, 0, sizeof(*out));
    snprintf(name, sizeof(name), "key %zu", index);
    if (!json_is_object(k))
        return rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s is not an object", name);
    if (member_string(k, "kid", &kid) < 0)
        return rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: \"kid\" is not a string", name);
    if (kid != NULL) {
        if (strlen(kid) > KID_MAX)
            return rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: \"kid\" is longer than %d bytes", name, KID_MAX);
        snprintf(name, sizeof(name), "key %zu (kid '%s')", index, shown(tmp, kid));
    }
    if (member_string(k, "kty", &kty) != 1)
        return rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s has no \"kty\" string", name);
    if (member_string(k, "use", &use) < 0 || member_string(k, "alg", &alg) < 0)
        return rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: \"use\" or \"alg\" is not a string", name);
    if (use != NULL && strcmp(use, "sig") != 0)
        return rm_config_fail(why, whylen, 1, "%s is for use '%s', not 'sig'", name, shown(tmp, use));
    if ((ops = json_object_get(k, "key_ops")) != NULL) {
        const json_t *op;
        int verify = 0;
        if (!json_is_array(ops))
            return rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: \"key_ops\" is not an array", name);
        json_array_foreach(ops, i, op)
        {
            verify |= json_is_string(op) && strcmp(json_string_value(op), "verify") == 0;
        }
        if (!verify)
            return rm_config_fail(why, whylen, 1, "%s: its key_ops do not include 'verify'", name);
    }

    if (strcmp(kty, "EC") == 0) {
        if (member_string(k, "crv", &crv) != 1)
            return rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: EC key without a \"crv\" string", name);
        if (strcmp(crv, "P-256") != 0)
            return rm_config_fail(why, whylen, 1, "%s is on curve '%s', not P-256", name, shown(tmp, crv));
        if (alg != NULL && strcmp(alg, "ES256") != 0)
            return rm_config_fail(why, whylen, 1, "%s is for alg '%s', not ES256", name, shown(tmp, alg));
        if ((ret = member_b64url(k, "x", &a, &a_len)) == 0)
            ret = member_b64url(k, "y", &b, &b_len);
        if (ret == -ENOMEM)
            goto Exit;
        if (ret != 0 || a_len != P256_LEN || b_len != P256_LEN) {
            ret = rm_config_fail(err, errlen, RM_ERR_JWKS,
                                 "JWKS %s: \"x\" and \"y\" must each be 32 bytes of base64url", name);
            goto Exit;
        }
        if (!check_ec_point(a, b)) {
            ret = rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: (x, y) is not a point of P-256", name);
            goto Exit;
        }
        out->alg = ALG_ES256;
        memcpy(out->x, a, P256_LEN);
        memcpy(out->y, b, P256_LEN);
    } else if (strcmp(kty, "RSA") == 0) {
        const uint8_t *n, *e;
        size_t n_len, e_len, bits;
        unsigned top;
        if (alg != NULL && strcmp(alg, "RS256") != 0)
            return rm_config_fail(why, whylen, 1, "%s is for alg '%s', not RS256", name, shown(tmp, alg));
        if ((ret = member_b64url(k, "n", &a, &a_len)) == 0)
            ret = member_b64url(k, "e", &b, &b_len);
        if (ret == -ENOMEM)
            goto Exit;
        if (ret != 0) {
            ret = rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: \"n\" and \"e\" must be base64url", name);
            goto Exit;
        }
        for (n = a, n_len = a_len; n_len != 0 && n[0] == 0; ++n, --n_len)
            ;
        for (e = b, e_len = b_len; e_len != 0 && e[0] == 0; ++e, --e_len)
            ;
        if (e_len == 0 || e_len > sizeof(out->e) || (e[e_len - 1] & 1) == 0 || (e_len == 1 && e[0] < 3)) {
            ret = rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: \"e\" is not an odd exponent of at most 32 bits",
                                 name);
            goto Exit;
        }
        if (n_len == 0 || (n[n_len - 1] & 1) == 0) {
            ret = rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: \"n\" is not an RSA modulus", name);
            goto Exit;
        }
        for (bits = (n_len - 1) * 8, top = n[0]; top != 0; top >>= 1)
            ++bits;
        if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
            ret = rm_config_fail(why, whylen, 1, "%s has a %zu-bit RSA modulus, outside %d to %d bits", name, bits,
                                 RSA_MIN_BITS, RSA_MAX_BITS);
            goto Exit;
        }
        if (!check_rsa_key(n, n_len, e, e_len)) {
            ret = rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS %s: not a usable RSA public key", name);
            goto Exit;
        }
        if ((out->n = malloc(n_len)) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        out->alg = ALG_RS256;
        memcpy(out->n, n, n_len);
        out->n_len = n_len;
        memcpy(out->e, e, e_len);
        out->e_len = e_len;
    } else {
        return rm_config_fail(why, whylen, 1, "%s has kty '%s', neither EC nor RSA", name, shown(tmp, kty));
    }
    if (kid != NULL && (out->kid = strdup(kid)) == NULL) {
        free(out->n);
        out->n = NULL;
        ret = -ENOMEM;
        goto Exit;
    }
    ret = 0;

Exit:
    free(a);
    free(b);
    return ret;
}

int rm_jwks_parse(const char *json, size_t len, rm_jwks_t **out, char *err, size_t errlen)
{
    json_t *doc = NULL, *keys, *k;
    json_error_t jerr;
    rm_jwks_t *jwks = NULL;
    char why[KID_MAX + 128] = "";
    size_t i;
    int ret;

    *out = NULL;
    rm_config_fail(err, errlen, 0, "%s", "");
    if (json == NULL)
        return rm_config_fail(err, errlen, -EINVAL, "no JWKS document given");
    if (len > JWKS_MAX)
        return rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS document is larger than %u bytes", JWKS_MAX);
    if ((doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        /* jansson's text quotes the document; only the position is given */
        ret = rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS document is not JSON (error at line %d, column %d)",
                             jerr.line, jerr.column);
        goto Exit;
    }
    if (!json_is_object(doc) || !json_is_array(keys = json_object_get(doc, "keys"))) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS document is not an object with a \"keys\" array");
        goto Exit;
    }
    if (json_array_size(keys) > JWKS_MAX_KEYS) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS holds more than %d keys", JWKS_MAX_KEYS);
        goto Exit;
    }
    if ((jwks = calloc(1, sizeof(*jwks) + json_array_size(keys) * sizeof(jwks->keys[0]))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    json_array_foreach(keys, i, k)
    {
        if ((ret = parse_jwk(k, i, &jwks->keys[jwks->num], why, sizeof(why), err, errlen)) < 0)
            goto Exit;
        if (ret == 0)
            ++jwks->num;
    }
    if (jwks->num == 0) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWKS,
                             "JWKS holds no usable key (ES256 on P-256, or RS256 of %d to %d bits)%s%s", RSA_MIN_BITS,
                             RSA_MAX_BITS, why[0] != '\0' ? ": " : "", why);
        goto Exit;
    }
    *out = jwks;
    jwks = NULL;
    ret = 0;

Exit:
    rm_jwks_free(jwks);
    json_decref(doc);
    return ret;
}

size_t rm_jwks_num_keys(const rm_jwks_t *jwks)
{
    return jwks != NULL ? jwks->num : 0;
}

void rm_jwks_free(rm_jwks_t *jwks)
{
    size_t i;

    if (jwks == NULL)
        return;
    for (i = 0; i != jwks->num; ++i) {
        free(jwks->keys[i].kid);
        free(jwks->keys[i].n);
    }
    free(jwks);
}

/* ---- verification ------------------------------------------------------------------------------------------- */

void rm_jwt_verify_opts_init(rm_jwt_verify_opts_t *opts)
{
    opts->issuer = NULL;
    opts->audience = NULL;
    opts->now = 0;
    opts->leeway = DEFAULT_LEEWAY;
}

/* Returns 1 when `sig` is a valid signature of `input` by `k`, 0 when not, -ENOMEM. */
static int signature_valid(const jwk_t *k, const char *input, size_t input_len, const uint8_t *sig, size_t sig_len)
{
    int ok = 0;

    if (k->alg == ALG_ES256) {
        ecc_key key;
        uint8_t der[2 * (P256_LEN + 3) + 2];
        word32 der_len = sizeof(der);
        if (sig_len != 2 * P256_LEN)
            return 0;
        if (wc_ecc_init(&key) != 0)
            return -ENOMEM;
        /* JOSE carries r||s; wolfCrypt verifies the DER ECDSA-Sig-Value */
        ok = wc_ecc_import_unsigned(&key, k->x, k->y, NULL, ECC_SECP256R1) == 0 &&
             wc_ecc_rs_raw_to_sig(sig, P256_LEN, sig + P256_LEN, P256_LEN, der, &der_len) == 0 &&
             wc_SignatureVerify(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_ECC, (const byte *)input, (word32)input_len, der,
                                der_len, &key, sizeof(key)) == 0;
        wc_ecc_free(&key);
    } else {
        RsaKey key;
        if (sig_len != k->n_len)
            return 0;
        if (wc_InitRsaKey(&key, NULL) != 0)
            return -ENOMEM;
        /* RSASSA-PKCS1-v1_5: wolfCrypt wraps the SHA-256 digest in its DigestInfo and compares it whole */
        ok = wc_RsaPublicKeyDecodeRaw(k->n, (word32)k->n_len, k->e, (word32)k->e_len, &key) == 0 &&
             wc_SignatureVerify(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC, (const byte *)input,
                                (word32)input_len, sig, (word32)sig_len, &key, sizeof(key)) == 0;
        wc_FreeRsaKey(&key);
    }
    return ok;
}

/* Reads a NumericDate, rounded towards the stricter side (`round_up` for nbf and iat, down for exp). Returns 0 or
 * -1 when `v` is not a number. */
static int numeric_date(const json_t *v, int round_up, int64_t *out)
{
    int64_t t;

    if (json_is_integer(v)) {
        t = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != d)
            return -1;
        if (d > (double)DATE_LIMIT) {
            t = DATE_LIMIT;
        } else if (d < -(double)DATE_LIMIT) {
            t = -DATE_LIMIT;
        } else {
            t = (int64_t)d;
            if (round_up && (double)t < d)
                ++t;
            else if (!round_up && (double)t > d)
                --t;
        }
    } else {
        return -1;
    }
    *out = t > DATE_LIMIT ? DATE_LIMIT : t < -DATE_LIMIT ? -DATE_LIMIT : t;
    return 0;
}

static int check_times(const json_t *payload, const rm_jwt_verify_opts_t *opts, rm_jwt_claims_t *claims, char *err,
                       size_t errlen)
{
    int64_t now = opts->now != 0 ? (int64_t)opts->now : (int64_t)time(NULL), leeway = opts->leeway, exp, nbf, iat;
    const json_t *v;

    leeway = leeway < 0 ? 0 : leeway > LEEWAY_MAX ? LEEWAY_MAX : leeway;
    now = now > DATE_LIMIT ? DATE_LIMIT : now < -DATE_LIMIT ? -DATE_LIMIT : now;
    if ((v = json_object_get(payload, "exp")) == NULL)
        return rm_config_fail(err, errlen, RM_ERR_JWT_EXPIRED, "token has no exp claim");
    if (numeric_date(v, 0, &exp) != 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_EXPIRED, "token's exp claim is not a number");
    if (now >= exp + leeway)
        return rm_config_fail(err, errlen, RM_ERR_JWT_EXPIRED,
                              "token expired at %" PRId64 " (now %" PRId64 ", leeway %" PRId64 "s)", exp, now, leeway);
    if ((v = json_object_get(payload, "nbf")) != NULL) {
        if (numeric_date(v, 1, &nbf) != 0)
            return rm_config_fail(err, errlen, RM_ERR_JWT_NOT_YET_VALID, "token's nbf claim is not a number");
        if (now < nbf - leeway)
            return rm_config_fail(err, errlen, RM_ERR_JWT_NOT_YET_VALID,
                                  "token is not valid before %" PRId64 " (now %" PRId64 ", leeway %" PRId64 "s)", nbf,
                                  now, leeway);
    }
    if ((v = json_object_get(payload, "iat")) != NULL) {
        if (numeric_date(v, 1, &iat) != 0)
            return rm_config_fail(err, errlen, RM_ERR_JWT_NOT_YET_VALID, "token's iat claim is not a number");
        if (now < iat - leeway)
            return rm_config_fail(err, errlen, RM_ERR_JWT_NOT_YET_VALID,
                                  "token was issued in the future, at %" PRId64 " (now %" PRId64 ", leeway %" PRId64
                                  "s)",
                                  iat, now, leeway);
    }
    claims->expires_at = exp;
    return 0;
}

static int check_issuer(const json_t *payload, const rm_jwt_verify_opts_t *opts, rm_jwt_claims_t *claims, char *err,
                        size_t errlen)
{
    const char *iss;
    char tmp[SHOWN_MAX + 4];
    int has = member_string(payload, "iss", &iss);

    if (has < 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_ISSUER, "token's iss claim is not a string");
    if (opts->issuer != NULL) {
        if (has == 0)
            return rm_config_fail(err, errlen, RM_ERR_JWT_ISSUER, "token has no iss claim");
        if (strcmp(iss, opts->issuer) != 0)
            return rm_config_fail(err, errlen, RM_ERR_JWT_ISSUER, "token's issuer '%s' is not the expected one",
                                  shown(tmp, iss));
    }
    if (iss != NULL) {
        if (strlen(iss) >= sizeof(claims->issuer))
            return rm_config_fail(err, errlen, RM_ERR_JWT_ISSUER, "token's iss claim is longer than %zu bytes",
                                  sizeof(claims->issuer) - 1);
        strcpy(claims->issuer, iss);
    }
    return 0;
}

static int check_audience(const json_t *payload, const char *audience, char *err, size_t errlen)
{
    const json_t *aud = json_object_get(payload, "aud"), *v;
    size_t i;
    int found = 0;

    if (aud == NULL)
        return rm_config_fail(err, errlen, RM_ERR_JWT_AUDIENCE, "token has no aud claim");
    if (json_is_string(aud)) {
        found = strcmp(json_string_value(aud), audience) == 0;
    } else if (json_is_array(aud)) {
        json_array_foreach(aud, i, v)
        {
            if (!json_is_string(v))
                return rm_config_fail(err, errlen, RM_ERR_JWT_AUDIENCE,
                                      "token's aud array holds something other than strings");
            found |= strcmp(json_string_value(v), audience) == 0;
        }
    } else {
        return rm_config_fail(err, errlen, RM_ERR_JWT_AUDIENCE, "token's aud claim is neither a string nor an array");
    }
    return found ? 0
                 : rm_config_fail(err, errlen, RM_ERR_JWT_AUDIENCE, "token is not meant for audience '%s'", audience);
}

/* Copies the string member `name` of `obj`, which `valid` must accept, into dst (of `size` bytes). `what` names
 * the claim in messages, `rule` says what it must be. */
static int claim_name(const json_t *obj, const char *name, const char *what, const char *rule,
                      int (*valid)(const char *), char *dst, size_t size, char *err, size_t errlen)
{
    const char *s;
    char tmp[SHOWN_MAX + 4];

    if (member_string(obj, name, &s) != 1)
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "token has no kubernetes.io %s string", what);
    if (!valid(s) || strlen(s) >= size)
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "token's kubernetes.io %s '%s' is not %s", what,
                              shown(tmp, s), rule);
    strcpy(dst, s);
    return 0;
}

static int is_namespace(const char *s)
{
    return is_dns_label(s, strlen(s));
}

static int check_kubernetes(const json_t *payload, rm_jwt_claims_t *claims, char *err, size_t errlen)
{
    static const char LABEL[] = "a DNS-1123 label", SUBDOMAIN[] = "a DNS-1123 subdomain";
    const json_t *k8s = json_object_get(payload, "kubernetes.io"), *sa, *pod;
    const char *sub;
    char tmp[SHOWN_MAX + 4];
    size_t ns_len;
    int ret;

    if (!json_is_object(k8s))
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "token has no kubernetes.io claim object");
    if ((ret = claim_name(k8s, "namespace", "namespace", LABEL, is_namespace, claims->namespace_,
                          sizeof(claims->namespace_), err, errlen)) != 0)
        return ret;
    if (!json_is_object(sa = json_object_get(k8s, "serviceaccount")))
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "token has no kubernetes.io serviceaccount object");
    if ((ret = claim_name(sa, "name", "serviceaccount.name", SUBDOMAIN, is_dns_subdomain, claims->service_account,
                          sizeof(claims->service_account), err, errlen)) != 0)
        return ret;
    if ((pod = json_object_get(k8s, "pod")) != NULL) {
        if (!json_is_object(pod))
            return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "token's kubernetes.io pod claim is not an object");
        if ((ret = claim_name(pod, "name", "pod.name", SUBDOMAIN, is_dns_subdomain, claims->pod_name,
                              sizeof(claims->pod_name), err, errlen)) != 0 ||
            (ret = claim_name(pod, "uid", "pod.uid", "a UID", is_uid, claims->pod_uid, sizeof(claims->pod_uid), err,
                              errlen)) != 0)
            return ret;
    }

    /* sub must name the same service account: "system:serviceaccount:<ns>:<sa>" */
    if (member_string(payload, "sub", &sub) != 1)
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "token has no sub string");
    ns_len = strlen(claims->namespace_);
    if (strncmp(sub, SUB_PREFIX, sizeof(SUB_PREFIX) - 1) != 0 ||
        strncmp(sub + sizeof(SUB_PREFIX) - 1, claims->namespace_, ns_len) != 0 ||
        sub[sizeof(SUB_PREFIX) - 1 + ns_len] != ':' ||
        strcmp(sub + sizeof(SUB_PREFIX) + ns_len, claims->service_account) != 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "token's sub '%s' does not name service account %s/%s",
                              shown(tmp, sub), claims->namespace_, claims->service_account);
    return 0;
}

/* Decodes one part and, for the header and payload, parses it as a JSON object. */
static int decode_part(const char *p, size_t len, const char *what, uint8_t **raw, size_t *raw_len, json_t **obj,
                       char *err, size_t errlen)
{
    json_error_t jerr;
    int ret;

    if ((ret = b64url_decode(p, len, raw, raw_len)) != 0)
        return ret == -ENOMEM ? ret
                              : rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "token's %s is not base64url", what);
    if (obj == NULL)
        return 0;
    if (*raw_len == 0 || (*obj = json_loadb((const char *)*raw, *raw_len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "token's %s is not JSON", what);
    if (!json_is_object(*obj))
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "token's %s is not a JSON object", what);
    return 0;
}

int rm_jwt_verify(const rm_jwks_t *jwks, const char *token, size_t len, const rm_jwt_verify_opts_t *opts,
                  rm_jwt_claims_t *claims, char *err, size_t errlen)
{
    const char *dot1, *dot2, *alg_name, *kid;
    uint8_t *header_raw = NULL, *payload_raw = NULL, *sig = NULL;
    size_t header_len, payload_len, sig_len, i, tried = 0;
    json_t *header = NULL, *payload = NULL;
    rm_jwt_claims_t got;
    char tmp[SHOWN_MAX + 4];
    int alg, ret;

    rm_config_fail(err, errlen, 0, "%s", "");
    if (claims != NULL)
        memset(claims, 0, sizeof(*claims));
    if (jwks == NULL || token == NULL || opts == NULL || opts->audience == NULL || claims == NULL)
        return rm_config_fail(err, errlen, -EINVAL,
                              "token verification needs a JWKS, a token, an audience and a claims buffer");
    memset(&got, 0, sizeof(got));

    /* structure: three base64url parts, the first two JSON objects */
    if (len > TOKEN_MAX)
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "token is longer than %u bytes", TOKEN_MAX);
    if ((dot1 = memchr(token, '.', len)) == NULL ||
        (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
        memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "token is not three dot-separated parts");
    if ((ret = decode_part(token, (size_t)(dot1 - token), "header", &header_raw, &header_len, &header, err, errlen)) !=
            0 ||
        (ret = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload", &payload_raw, &payload_len, &payload, err,
                           errlen)) != 0 ||
        (ret = decode_part(dot2 + 1, len - (size_t)(dot2 + 1 - token), "signature", &sig, &sig_len, NULL, err,
                           errlen)) != 0)
        goto Exit;

    /* alg, and no extension we would have to understand */
    if (member_string(header, "alg", &alg_name) != 1) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_ALG, "token header has no alg string");
        goto Exit;
    }
    if (strcmp(alg_name, "ES256") == 0) {
        alg = ALG_ES256;
    } else if (strcmp(alg_name, "RS256") == 0) {
        alg = ALG_RS256;
    } else {
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_ALG, "token alg '%s' is not accepted (only ES256 and RS256)",
                             shown(tmp, alg_name));
        goto Exit;
    }
    if (json_object_get(header, "crit") != NULL) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED,
                             "token header has crit extensions, none of which are supported");
        goto Exit;
    }
    if (member_string(header, "kid", &kid) < 0) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "token header's kid is not a string");
        goto Exit;
    }

    /* signature: by the key named by kid, else by any key of the alg */
    ret = RM_ERR_JWT_SIGNATURE;
    for (i = 0; i != jwks->num && ret != 0; ++i) {
        const jwk_t *k = &jwks->keys[i];
        int valid;
        if (k->alg != alg || (kid != NULL && (k->kid == NULL || strcmp(k->kid, kid) != 0)))
            continue;
        ++tried;
        if ((valid = signature_valid(k, token, (size_t)(dot2 - token), sig, sig_len)) < 0) {
            ret = valid;
            goto Exit;
        }
        if (valid)
            ret = 0;
    }
    if (tried == 0) {
        ret = kid != NULL ? rm_config_fail(err, errlen, RM_ERR_JWT_UNKNOWN_KEY, "no %s key with kid '%s' in the JWKS",
                                           alg_name, shown(tmp, kid))
                          : rm_config_fail(err, errlen, RM_ERR_JWT_UNKNOWN_KEY, "no %s key in the JWKS", alg_name);
        goto Exit;
    }
    if (ret != 0) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_SIGNATURE, "token signature does not verify");
        goto Exit;
    }

    if ((ret = check_times(payload, opts, &got, err, errlen)) != 0 ||
        (ret = check_issuer(payload, opts, &got, err, errlen)) != 0 ||
        (ret = check_audience(payload, opts->audience, err, errlen)) != 0 ||
        (ret = check_kubernetes(payload, &got, err, errlen)) != 0)
        goto Exit;
    *claims = got;

Exit:
    json_decref(header);
    json_decref(payload);
    free(header_raw);
    free(payload_raw);
    free(sig);
    return ret;
}

/* ---- signing ------------------------------------------------------------------------------------------------ */

int rm_jwt_sign_es256(const char *key_pem, size_t key_len, const char *kid, const char *claims_json, char **token)
{
    ecc_key key;
    WC_RNG rng;
    json_t *header = NULL, *claims = NULL;
    char *header_json = NULL, *h64 = NULL, *p64 = NULL, *s64 = NULL, *out = NULL;
    uint8_t hash[WC_SHA256_DIGEST_SIZE], der[2 * (P256_LEN + 3) + 2], raw[2 * P256_LEN], r[P256_LEN], s[P256_LEN];
    word32 der_len = sizeof(der), r_len = sizeof(r), s_len = sizeof(s);
    size_t input_len, s64_len;
    int ret, have_key = 0, have_rng = 0;

    *token = NULL;
    if (claims_json == NULL || (claims = json_loads(claims_json, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
        !json_is_object(claims)) {
        ret = -EINVAL;
        goto Exit;
    }
    if ((header = json_pack("{s:s, s:s}", "alg", "ES256", "typ", "JWT")) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if (kid != NULL) {
        json_t *v = json_string(kid); /* NULL for a kid that is not UTF-8 */
        if (v == NULL || json_object_set_new(header, "kid", v) != 0) {
            ret = -EINVAL;
            goto Exit;
        }
    }
    if ((header_json = json_dumps(header, JSON_COMPACT)) == NULL ||
        (h64 = b64url_encode((const uint8_t *)header_json, strlen(header_json))) == NULL ||
        (p64 = b64url_encode((const uint8_t *)claims_json, strlen(claims_json))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if (wc_ecc_init(&key) != 0) {
        ret = -ENOMEM;
        goto Exit;
    }
    have_key = 1;
    if ((ret = rm__ecc_load_private_pem(key_pem, key_len, &key)) != 0)
        goto Exit;

    input_len = strlen(h64) + 1 + strlen(p64);
    if ((out = malloc(input_len + 1 + (2 * P256_LEN * 4 + 2) / 3 + 1)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    sprintf(out, "%s.%s", h64, p64);
    if (wc_InitRng(&rng) != 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    have_rng = 1;
    if (wc_Sha256Hash((const byte *)out, (word32)input_len, hash) != 0 ||
        wc_ecc_sign_hash(hash, sizeof(hash), der, &der_len, &rng, &key) != 0 ||
        wc_ecc_sig_to_rs(der, der_len, r, &r_len, s, &s_len) != 0 || r_len > P256_LEN || s_len > P256_LEN) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    /* JOSE wants r and s as fixed-width big-endian integers */
    memset(raw, 0, sizeof(raw));
    memcpy(raw + P256_LEN - r_len, r, r_len);
    memcpy(raw + 2 * P256_LEN - s_len, s, s_len);
    if ((s64 = b64url_encode(raw, sizeof(raw))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    s64_len = strlen(s64);
    out[input_len] = '.';
    memcpy(out + input_len + 1, s64, s64_len + 1);
    *token = out;
    out = NULL;
    ret = 0;

Exit:
    if (have_rng)
        wc_FreeRng(&rng);
    if (have_key)
        wc_ecc_free(&key);
    json_decref(header);
    json_decref(claims);
    free(header_json);
    free(h64);
    free(p64);
    free(s64);
    free(out);
    return ret;
}

int rm_jwks_from_private_key(const char *key_pem, size_t key_len, const char *kid, char **jwks_json)
{
    ecc_key key;
    json_t *doc = NULL;
    uint8_t x[P256_LEN], y[P256_LEN], hash[WC_SHA256_DIGEST_SIZE];
    word32 x_len = sizeof(x), y_len = sizeof(y);
    char *x64 = NULL, *y64 = NULL, *thumbprint = NULL, canonical[160];
    int ret, have_key = 0;

    *jwks_json = NULL;
    if (wc_ecc_init(&key) != 0) {
        ret = -ENOMEM;
        goto Exit;
    }
    have_key = 1;
    if ((ret = rm__ecc_load_private_pem(key_pem, key_len, &key)) != 0)
        goto Exit;
    if (wc_ecc_export_public_raw(&key, x, &x_len, y, &y_len) != 0 || x_len != P256_LEN || y_len != P256_LEN) {
        ret = RM_ERR_SVID_KEY_TYPE;
        goto Exit;
    }
    if ((x64 = b64url_encode(x, sizeof(x))) == NULL || (y64 = b64url_encode(y, sizeof(y))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if (kid == NULL) {
        /* the RFC 7638 thumbprint: SHA-256 of the required members, in this order, without whitespace */
        snprintf(canonical, sizeof(canonical), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x64,
                 y64);
        if (wc_Sha256Hash((const byte *)canonical, (word32)strlen(canonical), hash) != 0) {
            ret = RM_ERR_SVID_KEY_TYPE;
            goto Exit;
        }
        if ((thumbprint = b64url_encode(hash, sizeof(hash))) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        kid = thumbprint;
    }
    if ((doc = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys", "kty", "EC", "crv", "P-256", "x", x64,
                         "y", y64, "kid", kid, "alg", "ES256", "use", "sig")) == NULL) {
        ret = -EINVAL; /* kid is not UTF-8 */
        goto Exit;
    }
    if ((*jwks_json = json_dumps(doc, JSON_INDENT(2))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    ret = 0;

Exit:
    if (have_key)
        wc_ecc_free(&key);
    json_decref(doc);
    free(x64);
    free(y64);
    free(thumbprint);
    return ret;
}
