/* ServiceAccount tokens (ringmesh/jwt.h): the claim checks of attestation over the one JWT verifier
 * (ringmesh/jwt_user.h, which also holds the JWKS parser and base64url), and ES256 signing over wolfCrypt and
 * jansson.
 *
 * A token is decoded whole (header and payload parsed as JSON objects, the signature decoded) before any key is
 * tried, so a malformed token is reported as malformed whatever its signature; the claims are read only once the
 * signature has verified. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ecc_internal.h"
#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/jwt.h"
#include "ringmesh/jwt_user.h"

#define TOKEN_MAX      RM_JWT_USER_TOKEN_MAX
#define P256_LEN       32
#define DEFAULT_LEEWAY 60
#define LEEWAY_MAX     ((int64_t)1 << 32)
#define SHOWN_MAX      64 /* claim values quoted in an error message are cut to this many bytes */
#define SUB_PREFIX     "system:serviceaccount:"

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

/* ---- base64url ---------------------------------------------------------------------------------------------- */

/* Returns a malloc'd NUL-terminated base64url string of `len` (> 0) bytes, or NULL. */
static char *b64url_encode(const uint8_t *in, size_t len)
{
    char *out;

    if (len == 0 || len > TOKEN_MAX * 64 || (out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
        return NULL;
    rm_jwt_base64url(in, len, out);
    return out;
}

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

int rm_jwks_parse(const char *json, size_t len, rm_jwks_t **out, char *err, size_t errlen)
{
    rm_config_fail(err, errlen, 0, "%s", "");
    *out = NULL;
    if (json == NULL)
        return rm_config_fail(err, errlen, -EINVAL, "no JWKS document given");
    return rm_jwt_keyset_parse(json, len, out, err, errlen);
}

size_t rm_jwks_num_keys(const rm_jwks_t *jwks)
{
    return rm_jwt_keyset_num_keys(jwks);
}

void rm_jwks_free(rm_jwks_t *jwks)
{
    rm_jwt_keyset_free(jwks);
}

/* ---- verification ------------------------------------------------------------------------------------------- */

void rm_jwt_verify_opts_init(rm_jwt_verify_opts_t *opts)
{
    opts->issuer = NULL;
    opts->audience = NULL;
    opts->now = 0;
    opts->leeway = DEFAULT_LEEWAY;
}

static int check_times(const json_t *payload, const rm_jwt_verify_opts_t *opts, rm_jwt_claims_t *claims, char *err,
                       size_t errlen)
{
    int64_t now = rm_jwt_clamp_date(opts->now != 0 ? (int64_t)opts->now : (int64_t)time(NULL)), leeway = opts->leeway;
    int64_t exp, nbf, iat;
    int has;

    leeway = leeway < 0 ? 0 : leeway > LEEWAY_MAX ? LEEWAY_MAX : leeway;
    if ((has = rm_jwt_date_claim(payload, "exp", 0, &exp)) == 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_EXPIRED, "token has no exp claim");
    if (has < 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_EXPIRED, "token's exp claim is not a number");
    if (now >= exp + leeway)
        return rm_config_fail(err, errlen, RM_ERR_JWT_EXPIRED,
                              "token expired at %" PRId64 " (now %" PRId64 ", leeway %" PRId64 "s)", exp, now, leeway);
    if ((has = rm_jwt_date_claim(payload, "nbf", 1, &nbf)) < 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_NOT_YET_VALID, "token's nbf claim is not a number");
    if (has && now < nbf - leeway)
        return rm_config_fail(err, errlen, RM_ERR_JWT_NOT_YET_VALID,
                              "token is not valid before %" PRId64 " (now %" PRId64 ", leeway %" PRId64 "s)", nbf, now,
                              leeway);
    if ((has = rm_jwt_date_claim(payload, "iat", 1, &iat)) < 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_NOT_YET_VALID, "token's iat claim is not a number");
    if (has && now < iat - leeway)
        return rm_config_fail(err, errlen, RM_ERR_JWT_NOT_YET_VALID,
                              "token was issued in the future, at %" PRId64 " (now %" PRId64 ", leeway %" PRId64 "s)",
                              iat, now, leeway);
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

int rm_jwt_verify(const rm_jwks_t *jwks, const char *token, size_t len, const rm_jwt_verify_opts_t *opts,
                  rm_jwt_claims_t *claims, char *err, size_t errlen)
{
    rm_jwt_user_t t = {0};
    rm_jwt_claims_t got;
    int ret;

    rm_config_fail(err, errlen, 0, "%s", "");
    if (claims != NULL)
        memset(claims, 0, sizeof(*claims));
    if (jwks == NULL || token == NULL || opts == NULL || opts->audience == NULL || claims == NULL)
        return rm_config_fail(err, errlen, -EINVAL,
                              "token verification needs a JWKS, a token, an audience and a claims buffer");
    memset(&got, 0, sizeof(got));
    if ((ret = rm_jwt_user_decode(token, len, &t, err, errlen)) != 0 ||
        (ret = rm_jwt_user_verify_signature(&t, jwks, err, errlen)) != 0 ||
        (ret = check_times(t.payload, opts, &got, err, errlen)) != 0 ||
        (ret = check_issuer(t.payload, opts, &got, err, errlen)) != 0 ||
        (ret = check_audience(t.payload, opts->audience, err, errlen)) != 0 ||
        (ret = check_kubernetes(t.payload, &got, err, errlen)) != 0)
        goto Exit;
    *claims = got;

Exit:
    rm_jwt_user_clear(&t);
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
