/* JWTs over wolfCrypt (ringmesh/jwt_user.h), the one implementation of base64url, JWKS parsing and signature
 * verification: end-user tokens (RequestAuthentication) and, under ringmesh/jwt.h's claim checks, ServiceAccount
 * tokens (attestation). JWKS of RSA, EC (P-256, P-384, P-521) and OKP (Ed25519) keys, and the verification of a
 * token against one. Keys are kept as their raw public numbers and imported for each verification, so a keyset is
 * immutable and shared by threads without a lock. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/signature.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/jwt_user.h"

#define JWKS_MAX      (1u << 20)
#define JWKS_MAX_KEYS 64
#define KID_MAX       255
#define RSA_MIN_BITS  2048
#define RSA_MAX_BITS  8192
#define SIG_MAX       1024 /* RSA 8192 bits */

enum { KTY_RSA = 1, KTY_EC, KTY_OKP };

enum {
    ALG_RS256 = 1,
    ALG_RS384,
    ALG_RS512,
    ALG_PS256,
    ALG_PS384,
    ALG_PS512,
    ALG_ES256,
    ALG_ES384,
    ALG_ES512,
    ALG_EDDSA,
};

static const struct {
    const char *name;
    int kty, curve, coord; /* EC: curve and coordinate bytes */
    enum wc_HashType hash;
    int mgf;
} algs[] = {
    [ALG_RS256] = {"RS256", KTY_RSA, 0, 0, WC_HASH_TYPE_SHA256, 0},
    [ALG_RS384] = {"RS384", KTY_RSA, 0, 0, WC_HASH_TYPE_SHA384, 0},
    [ALG_RS512] = {"RS512", KTY_RSA, 0, 0, WC_HASH_TYPE_SHA512, 0},
    [ALG_PS256] = {"PS256", KTY_RSA, 0, 0, WC_HASH_TYPE_SHA256, WC_MGF1SHA256},
    [ALG_PS384] = {"PS384", KTY_RSA, 0, 0, WC_HASH_TYPE_SHA384, WC_MGF1SHA384},
    [ALG_PS512] = {"PS512", KTY_RSA, 0, 0, WC_HASH_TYPE_SHA512, WC_MGF1SHA512},
    [ALG_ES256] = {"ES256", KTY_EC, ECC_SECP256R1, 32, WC_HASH_TYPE_SHA256, 0},
    [ALG_ES384] = {"ES384", KTY_EC, ECC_SECP384R1, 48, WC_HASH_TYPE_SHA384, 0},
    [ALG_ES512] = {"ES512", KTY_EC, ECC_SECP521R1, 66, WC_HASH_TYPE_SHA512, 0},
    [ALG_EDDSA] = {"EdDSA", KTY_OKP, 0, 0, WC_HASH_TYPE_NONE, 0},
};
#define NUM_ALGS ((int)(sizeof(algs) / sizeof(algs[0])))

typedef struct st_ukey_t {
    int kty, curve, alg; /* alg: 0 when the JWK names none */
    char *kid;           /* NULL: none */
    uint8_t *a, *b;      /* RSA n, e; EC x, y; OKP x */
    size_t a_len, b_len;
} ukey_t;

struct st_rm_jwt_keyset_t {
    size_t num;
    ukey_t keys[];
};

/* ---- base64url ---------------------------------------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decodes unpadded base64url into *out (malloc'ed, NUL-terminated for JSON). Returns 0, -EINVAL or -ENOMEM. */
static int b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    uint8_t *o;
    size_t n = 0;
    uint32_t acc = 0;
    unsigned bits = 0;

    *out = NULL;
    if (len % 4 == 1)
        return -EINVAL;
    if ((o = malloc(len * 3 / 4 + 2)) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            free(o);
            return -EINVAL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (uint8_t)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0) { /* non-canonical trailing bits */
        free(o);
        return -EINVAL;
    }
    o[n] = '\0';
    *out = o;
    *out_len = n;
    return 0;
}

size_t rm_jwt_base64url(const uint8_t *in, size_t len, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[v >> 18], out[o++] = tbl[(v >> 12) & 63], out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tbl[v >> 18], out[o++] = tbl[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tbl[v >> 18], out[o++] = tbl[(v >> 12) & 63], out[o++] = tbl[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* ---- keys --------------------------------------------------------------------------------------------------- */

static int alg_by_name(const char *s)
{
    for (int i = 1; i < NUM_ALGS; i++)
        if (strcmp(algs[i].name, s) == 0)
            return i;
    return 0;
}

static const char *str_member(const json_t *o, const char *name)
{
    const json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int b64_member(const json_t *o, const char *name, uint8_t **out, size_t *len)
{
    const char *s = str_member(o, name);
    if (s == NULL)
        return -EINVAL;
    return b64url_decode(s, strlen(s), out, len);
}

static int rsa_key_ok(const ukey_t *k)
{
    RsaKey key;
    int ok;
    if (wc_InitRsaKey(&key, NULL) != 0)
        return 0;
    ok = wc_RsaPublicKeyDecodeRaw(k->a, (word32)k->a_len, k->b, (word32)k->b_len, &key) == 0 &&
         wc_RsaEncryptSize(&key) == (int)k->a_len;
    wc_FreeRsaKey(&key);
    return ok;
}

/* n (leading zeros stripped) odd and of RSA_MIN_BITS to RSA_MAX_BITS bits; e odd, at least 3, at most 32 bits. */
static int rsa_numbers_ok(const ukey_t *k)
{
    size_t bits;
    unsigned top;

    if (k->a_len == 0 || (k->a[k->a_len - 1] & 1) == 0 || k->b_len == 0 || k->b_len > 4 ||
        (k->b[k->b_len - 1] & 1) == 0 || (k->b_len == 1 && k->b[0] < 3))
        return 0;
    for (bits = (k->a_len - 1) * 8, top = k->a[0]; top != 0; top >>= 1)
        ++bits;
    return bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS;
}

static int ec_key_ok(const ukey_t *k)
{
    ecc_key key;
    int ok;
    if (wc_ecc_init(&key) != 0)
        return 0;
    ok = wc_ecc_import_unsigned(&key, k->a, k->b, NULL, k->curve) == 0 && wc_ecc_check_key(&key) == 0;
    wc_ecc_free(&key);
    return ok;
}

/* Reads keys[index]: 0 usable, 1 skipped (why set), -ENOMEM. */
static int parse_key(const json_t *j, size_t index, ukey_t *k, char *why, size_t whylen)
{
    const char *kty = str_member(j, "kty"), *kid = str_member(j, "kid"), *use = str_member(j, "use");
    const char *alg = str_member(j, "alg"), *crv = str_member(j, "crv");
    const json_t *ops = json_object_get(j, "key_ops"), *op;
    size_t i;
    int ret, verify = ops == NULL;

    memset(k, 0, sizeof(*k));
    if (!json_is_object(j) || kty == NULL)
        return rm_config_fail(why, whylen, 1, "key %zu has no kty", index);
    if (json_object_get(j, "kid") != NULL && kid == NULL)
        return rm_config_fail(why, whylen, 1, "key %zu: kid is not a string", index);
    if (kid != NULL && strlen(kid) > KID_MAX)
        return rm_config_fail(why, whylen, 1, "key %zu: kid longer than %d bytes", index, KID_MAX);
    if (use != NULL && strcmp(use, "sig") != 0)
        return rm_config_fail(why, whylen, 1, "key %zu is not for signatures", index);
    json_array_foreach(ops, i, op)
    {
        verify |= json_is_string(op) && strcmp(json_string_value(op), "verify") == 0;
    }
    if (!verify)
        return rm_config_fail(why, whylen, 1, "key %zu: its key_ops do not include verify", index);
    if (alg != NULL && (k->alg = alg_by_name(alg)) == 0)
        return rm_config_fail(why, whylen, 1, "key %zu is for an algorithm not accepted", index);
    if (strcmp(kty, "RSA") == 0) {
        k->kty = KTY_RSA;
        if ((ret = b64_member(j, "n", &k->a, &k->a_len)) == 0)
            ret = b64_member(j, "e", &k->b, &k->b_len);
        if (ret == -ENOMEM)
            goto Fail;
        while (k->a_len > 0 && k->a[0] == 0)
            memmove(k->a, k->a + 1, --k->a_len);
        while (k->b_len > 0 && k->b[0] == 0)
            memmove(k->b, k->b + 1, --k->b_len);
        if (ret != 0 || !rsa_numbers_ok(k) || !rsa_key_ok(k)) {
            ret = rm_config_fail(
                why, whylen, 1,
                "key %zu is not an RSA public key of %d to %d bits with an odd exponent of at most 32 bits", index,
                RSA_MIN_BITS, RSA_MAX_BITS);
            goto Fail;
        }
    } else if (strcmp(kty, "EC") == 0) {
        k->kty = KTY_EC;
        int coord = 0;
        if (crv != NULL && strcmp(crv, "P-256") == 0)
            k->curve = ECC_SECP256R1, coord = 32;
        else if (crv != NULL && strcmp(crv, "P-384") == 0)
            k->curve = ECC_SECP384R1, coord = 48;
        else if (crv != NULL && strcmp(crv, "P-521") == 0)
            k->curve = ECC_SECP521R1, coord = 66;
        else
            return rm_config_fail(why, whylen, 1, "key %zu is on a curve not accepted (P-256, P-384, P-521)", index);
        if ((ret = b64_member(j, "x", &k->a, &k->a_len)) == 0)
            ret = b64_member(j, "y", &k->b, &k->b_len);
        if (ret == -ENOMEM)
            goto Fail;
        if (ret != 0 || k->a_len != (size_t)coord || k->b_len != (size_t)coord || !ec_key_ok(k)) {
            ret = rm_config_fail(why, whylen, 1, "key %zu is not a point of %s", index, crv);
            goto Fail;
        }
    } else if (strcmp(kty, "OKP") == 0) {
        k->kty = KTY_OKP;
        if (crv == NULL || strcmp(crv, "Ed25519") != 0)
            return rm_config_fail(why, whylen, 1, "key %zu: an OKP key not on Ed25519", index);
        if ((ret = b64_member(j, "x", &k->a, &k->a_len)) == -ENOMEM)
            goto Fail;
        if (ret != 0 || k->a_len != ED25519_PUB_KEY_SIZE) {
            ret = rm_config_fail(why, whylen, 1, "key %zu is not an Ed25519 public key", index);
            goto Fail;
        }
    } else {
        return rm_config_fail(why, whylen, 1, "key %zu has kty neither RSA, EC nor OKP", index);
    }
    if (k->alg != 0 && algs[k->alg].kty != k->kty) {
        ret = rm_config_fail(why, whylen, 1, "key %zu: its alg is not one of its key type", index);
        goto Fail;
    }
    if (k->alg != 0 && k->kty == KTY_EC && algs[k->alg].curve != k->curve) {
        ret = rm_config_fail(why, whylen, 1, "key %zu: its alg is not one of its curve", index);
        goto Fail;
    }
    if (kid != NULL && (k->kid = strdup(kid)) == NULL) {
        ret = -ENOMEM;
        goto Fail;
    }
    return 0;
Fail:
    free(k->a);
    free(k->b);
    k->a = k->b = NULL;
    return ret;
}

int rm_jwt_keyset_parse(const char *json, size_t len, rm_jwt_keyset_t **out, char *err, size_t errlen)
{
    json_t *doc = NULL, *keys, *k;
    json_error_t jerr;
    rm_jwt_keyset_t *ks = NULL;
    char why[300] = "";
    size_t i;
    int ret;

    *out = NULL;
    if (len > JWKS_MAX)
        return rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS document larger than %u bytes", JWKS_MAX);
    if ((doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
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
    if ((ks = calloc(1, sizeof(*ks) + json_array_size(keys) * sizeof(ks->keys[0]))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    json_array_foreach(keys, i, k)
    {
        if ((ret = parse_key(k, i, &ks->keys[ks->num], why, sizeof(why))) < 0)
            goto Exit;
        if (ret == 0)
            ks->num++;
    }
    if (ks->num == 0) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWKS, "JWKS holds no usable key%s%s", why[0] ? ": " : "", why);
        goto Exit;
    }
    *out = ks;
    ks = NULL;
    ret = 0;
Exit:
    rm_jwt_keyset_free(ks);
    json_decref(doc);
    return ret;
}

size_t rm_jwt_keyset_num_keys(const rm_jwt_keyset_t *ks)
{
    return ks != NULL ? ks->num : 0;
}

void rm_jwt_keyset_free(rm_jwt_keyset_t *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->num; i++) {
        free(ks->keys[i].kid);
        free(ks->keys[i].a);
        free(ks->keys[i].b);
    }
    free(ks);
}

/* ---- tokens ------------------------------------------------------------------------------------------------- */

void rm_jwt_user_clear(rm_jwt_user_t *t)
{
    json_decref(t->payload);
    free(t->sig);
    memset(t, 0, sizeof(*t));
}

int rm_jwt_user_decode(const char *token, size_t len, rm_jwt_user_t *t, char *err, size_t errlen)
{
    const char *dot1, *dot2;
    uint8_t *raw = NULL;
    size_t raw_len;
    json_t *hdr = NULL;
    json_error_t jerr;
    int ret;

    memset(t, 0, sizeof(*t));
    if (len == 0 || len > RM_JWT_USER_TOKEN_MAX)
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "the token is empty or longer than %u bytes",
                              RM_JWT_USER_TOKEN_MAX);
    if ((dot1 = memchr(token, '.', len)) == NULL ||
        (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
        memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "the token is not three dot-separated parts");
    /* header */
    if ((ret = b64url_decode(token, (size_t)(dot1 - token), &raw, &raw_len)) != 0 ||
        (hdr = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, &jerr)) == NULL || !json_is_object(hdr)) {
        ret = ret == -ENOMEM ? ret
                             : rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED,
                                              "the token's header is not base64url of a JSON object");
        goto Exit;
    }
    free(raw);
    raw = NULL;
    const char *alg = str_member(hdr, "alg"), *kid = str_member(hdr, "kid");
    if (alg == NULL || (t->alg = alg_by_name(alg)) == 0) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_ALG,
                             "the token's alg is %s, not one accepted (RS256/384/512, PS256/384/512, ES256/384/512, "
                             "EdDSA)",
                             alg == NULL                ? "missing"
                             : strcmp(alg, "none") == 0 ? "none"
                                                        : "another");
        goto Exit;
    }
    if (json_object_get(hdr, "crit") != NULL) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED,
                             "the token's header has crit extensions, none of which are supported");
        goto Exit;
    }
    if (json_object_get(hdr, "kid") != NULL && kid == NULL) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "the token's kid is not a string");
        goto Exit;
    }
    if (kid != NULL) {
        if (strlen(kid) >= sizeof(t->kid)) {
            ret = rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "the token's kid is too long");
            goto Exit;
        }
        strcpy(t->kid, kid);
        t->has_kid = 1;
    }
    /* payload */
    if ((ret = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &raw, &raw_len)) != 0 ||
        (t->payload = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
        !json_is_object(t->payload)) {
        ret = ret == -ENOMEM ? ret
                             : rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED,
                                              "the token's payload is not base64url of a JSON object");
        goto Exit;
    }
    /* signature (an empty one is well-formed; it verifies with no key) */
    if ((ret = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &t->sig, &t->sig_len)) != 0 ||
        t->sig_len > SIG_MAX) {
        ret = ret == -ENOMEM ? ret
                             : rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED,
                                              "the token's signature is not base64url of a signature");
        goto Exit;
    }
    t->signing_input = token;
    t->signing_input_len = (size_t)(dot2 - token);
    t->issuer = str_member(t->payload, "iss");
    t->subject = str_member(t->payload, "sub");
    t->presenter = str_member(t->payload, "azp");
    const json_t *aud = json_object_get(t->payload, "aud"), *a;
    size_t i;
    if (json_is_string(aud)) {
        t->audiences[t->num_audiences++] = json_string_value(aud);
    } else if (json_is_array(aud)) {
        json_array_foreach(aud, i, a)
        {
            if (json_is_string(a) && t->num_audiences < sizeof(t->audiences) / sizeof(t->audiences[0]))
                t->audiences[t->num_audiences++] = json_string_value(a);
        }
    }
    ret = 0;
Exit:
    free(raw);
    json_decref(hdr);
    if (ret != 0)
        rm_jwt_user_clear(t);
    return ret;
}

/* 1 when `k` verifies the token's signature, 0 when not, -ENOMEM. */
static int key_verifies(const ukey_t *k, const rm_jwt_user_t *t)
{
    const byte *in = (const byte *)t->signing_input;
    word32 in_len = (word32)t->signing_input_len;
    int ok = 0;
    switch (algs[t->alg].kty) {
    case KTY_RSA: {
        RsaKey key;
        if (t->sig_len != k->a_len)
            return 0;
        if (wc_InitRsaKey(&key, NULL) != 0)
            return -ENOMEM;
        if (wc_RsaPublicKeyDecodeRaw(k->a, (word32)k->a_len, k->b, (word32)k->b_len, &key) == 0) {
            if (algs[t->alg].mgf == 0) {
                ok = wc_SignatureVerify(algs[t->alg].hash, WC_SIGNATURE_TYPE_RSA_W_ENC, in, in_len, t->sig,
                                        (word32)t->sig_len, &key, sizeof(key)) == 0;
            } else {
                byte digest[WC_MAX_DIGEST_SIZE], sig[SIG_MAX], dec[SIG_MAX];
                int dlen = wc_HashGetDigestSize(algs[t->alg].hash);
                memcpy(sig, t->sig, t->sig_len);
                ok = dlen > 0 && wc_Hash(algs[t->alg].hash, in, in_len, digest, (word32)dlen) == 0 &&
                     wc_RsaPSS_VerifyCheck(sig, (word32)t->sig_len, dec, sizeof(dec), digest, (word32)dlen,
                                           algs[t->alg].hash, algs[t->alg].mgf, &key) >= 0;
            }
        }
        wc_FreeRsaKey(&key);
        return ok;
    }
    case KTY_EC: {
        ecc_key key;
        int coord = algs[t->alg].coord;
        byte der[2 * (66 + 3) + 8];
        word32 der_len = sizeof(der);
        if (t->sig_len != 2 * (size_t)coord)
            return 0;
        if (wc_ecc_init(&key) != 0)
            return -ENOMEM;
        /* JOSE carries r||s; wolfCrypt verifies the DER ECDSA-Sig-Value */
        ok = wc_ecc_import_unsigned(&key, k->a, k->b, NULL, k->curve) == 0 &&
             wc_ecc_rs_raw_to_sig(t->sig, (word32)coord, t->sig + coord, (word32)coord, der, &der_len) == 0 &&
             wc_SignatureVerify(algs[t->alg].hash, WC_SIGNATURE_TYPE_ECC, in, in_len, der, der_len, &key,
                                sizeof(key)) == 0;
        wc_ecc_free(&key);
        return ok;
    }
    case KTY_OKP: {
        ed25519_key key;
        int res = 0;
        if (t->sig_len != ED25519_SIG_SIZE)
            return 0;
        if (wc_ed25519_init(&key) != 0)
            return -ENOMEM;
        ok = wc_ed25519_import_public(k->a, (word32)k->a_len, &key) == 0 &&
             wc_ed25519_verify_msg(t->sig, (word32)t->sig_len, in, in_len, &res, &key) == 0 && res == 1;
        wc_ed25519_free(&key);
        return ok;
    }
    }
    return 0;
}

/* ---- claims ------------------------------------------------------------------------------------------------- */

int64_t rm_jwt_clamp_date(int64_t t)
{
    return t > RM_JWT_DATE_LIMIT ? RM_JWT_DATE_LIMIT : t < -RM_JWT_DATE_LIMIT ? -RM_JWT_DATE_LIMIT : t;
}

int rm_jwt_date_claim(const struct json_t *payload, const char *name, int round_up, int64_t *out)
{
    const json_t *v = json_object_get(payload, name);
    int64_t t;

    if (v == NULL)
        return 0;
    if (json_is_integer(v)) {
        t = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != d)
            return -1;
        if (d > (double)RM_JWT_DATE_LIMIT) {
            t = RM_JWT_DATE_LIMIT;
        } else if (d < -(double)RM_JWT_DATE_LIMIT) {
            t = -RM_JWT_DATE_LIMIT;
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
    *out = rm_jwt_clamp_date(t);
    return 1;
}

int rm_jwt_user_verify_signature(const rm_jwt_user_t *t, const rm_jwt_keyset_t *ks, char *err, size_t errlen)
{
    int tried = 0, r;

    for (size_t i = 0; ks != NULL && i < ks->num; i++) {
        const ukey_t *k = &ks->keys[i];
        if (t->has_kid && k->kid != NULL && strcmp(k->kid, t->kid) != 0)
            continue;
        if (k->kty != algs[t->alg].kty || (k->alg != 0 && k->alg != t->alg) ||
            (k->kty == KTY_EC && k->curve != algs[t->alg].curve))
            continue;
        tried = 1;
        if ((r = key_verifies(k, t)) != 0)
            return r < 0 ? r : 0;
    }
    if (!tried)
        return rm_config_fail(err, errlen, RM_ERR_JWT_UNKNOWN_KEY, "the JWKS has no key for the token's kid and alg %s",
                              algs[t->alg].name);
    return rm_config_fail(err, errlen, RM_ERR_JWT_SIGNATURE, "the token's signature does not verify");
}

int rm_jwt_user_verify(rm_jwt_user_t *t, const rm_jwt_keyset_t *ks, const rm_jwt_user_check_t *c, char *err,
                       size_t errlen)
{
    int64_t exp, nbf, now = rm_jwt_clamp_date(c->now), skew = c->skew < 0 ? 0 : rm_jwt_clamp_date(c->skew);
    int r, has_exp, has_nbf;

    if ((r = rm_jwt_user_verify_signature(t, ks, err, errlen)) != 0)
        return r;
    if (t->issuer == NULL || c->issuer == NULL || strcmp(t->issuer, c->issuer) != 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_ISSUER, "the token's iss is not the rule's issuer");
    if ((has_exp = rm_jwt_date_claim(t->payload, "exp", 0, &exp)) < 0 ||
        (has_nbf = rm_jwt_date_claim(t->payload, "nbf", 1, &nbf)) < 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "the token's exp or nbf is not a number");
    if (has_exp && now >= exp + skew)
        return rm_config_fail(err, errlen, RM_ERR_JWT_EXPIRED, "the token has expired");
    if (has_nbf && now + skew < nbf)
        return rm_config_fail(err, errlen, RM_ERR_JWT_NOT_YET_VALID, "the token is not yet valid (nbf)");
    if (c->num_audiences > 0) {
        int found = 0;
        for (size_t i = 0; i < t->num_audiences && !found; i++)
            for (size_t k = 0; k < c->num_audiences && !found; k++)
                found = strcmp(t->audiences[i], c->audiences[k]) == 0;
        if (!found)
            return rm_config_fail(err, errlen, RM_ERR_JWT_AUDIENCE, "the token's aud has none of the rule's audiences");
    }
    snprintf(t->principal, sizeof(t->principal), "%s/%s", t->issuer, t->subject != NULL ? t->subject : "");
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    return 0;
}
