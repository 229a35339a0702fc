/* JSON Web Tokens: a JWKS and the tokens its keys sign. The one verifier of the project: end-user tokens
 * (RequestAuthentication) use it with the claim checks of rm_jwt_user_verify(), ServiceAccount tokens (attestation,
 * ringmesh/jwt.h) with theirs.
 *
 * Signatures: RS256/384/512 (RSASSA-PKCS1-v1_5, RSA 2048 to 8192 bits with an odd public exponent of 3 to 32 bits),
 * PS256/384/512 (RSASSA-PSS, salt as long as the hash), ES256 (P-256), ES384 (P-384), ES512 (P-521) and EdDSA
 * (Ed25519). "none" and HMAC are refused, and a key is used only for the algorithms of its type (an RSA key never
 * verifies an HS256 token, an EC key only ES* of its curve) and, when the JWK names an "alg", only for that one. The
 * key is chosen as Envoy's jwt_authn chooses: every key whose kid is the token's (a key without kid is tried for any
 * token) and whose type fits the alg. A token whose header has "crit" or a "kid" that is not a string is malformed.
 *
 * The time checks of rm_jwt_user_verify() are Istio's: exp and nbf with a clock skew (60 s by default); a token
 * without exp does not expire. Every function returns 0 or an error of error.h (RM_ERR_JWT_*, RM_ERR_JWKS, -ENOMEM)
 * and, where it takes `err`, writes one sentence for the log (never a part of the token, a key or a signature). */
#ifndef RINGMESH_JWT_USER_H
#define RINGMESH_JWT_USER_H

#include <stddef.h>
#include <stdint.h>

struct json_t;

/** An identity provider's public keys. Immutable once parsed; may be shared by threads. */
typedef struct st_rm_jwt_keyset_t rm_jwt_keyset_t;

/** Parses a JWKS document ({"keys":[...]}, at most 64 keys, no duplicate members). Keys of other types, curves or
 *  uses, whose key_ops leave out "verify", whose kid is not a string, or that are broken (not base64url, not a point
 *  of their curve, an RSA modulus or exponent out of bounds) are skipped; a document with no usable key is
 *  RM_ERR_JWKS with the reason the last key was skipped. */
int rm_jwt_keyset_parse(const char *json, size_t len, rm_jwt_keyset_t **out, char *err, size_t errlen);
size_t rm_jwt_keyset_num_keys(const rm_jwt_keyset_t *ks);
void rm_jwt_keyset_free(rm_jwt_keyset_t *ks);

#define RM_JWT_USER_TOKEN_MAX (16u << 10) /* longer tokens are refused as malformed */

/** A decoded (not yet verified) token. The payload's claims are read from `payload`. Clear with
 *  rm_jwt_user_clear(); the all-zero value is empty. */
typedef struct st_rm_jwt_user_t {
    struct json_t *payload; /* owned */
    const char *issuer;     /* "iss" (in payload), NULL when absent */
    const char *subject;    /* "sub", NULL when absent */
    const char *presenter;  /* "azp", NULL when absent */
    const char *audiences[16];
    size_t num_audiences; /* "aud" as a string or a list (at most 16 kept) */
    char principal[512];  /* "iss/sub", after a successful verification */
    /* private: */
    int alg;
    char kid[256];
    uint8_t has_kid;
    const char *signing_input; /* into the caller's token */
    size_t signing_input_len;
    uint8_t *sig;
    size_t sig_len;
} rm_jwt_user_t;

/** Splits and decodes `token` (header, payload, signature): the header must name an accepted alg. Fills `t`;
 *  `token` must outlive it. */
int rm_jwt_user_decode(const char *token, size_t len, rm_jwt_user_t *t, char *err, size_t errlen);

typedef struct st_rm_jwt_user_check_t {
    const char *issuer;           /* required "iss" */
    const char *const *audiences; /* one must be in "aud"; none: "aud" is not checked */
    size_t num_audiences;
    int64_t now;  /* seconds since the epoch */
    int64_t skew; /* seconds allowed on exp and nbf */
} rm_jwt_user_check_t;

/** Verifies a decoded token: signature with a key of `ks`, then iss, exp, nbf and aud. Sets t->principal. */
int rm_jwt_user_verify(rm_jwt_user_t *t, const rm_jwt_keyset_t *ks, const rm_jwt_user_check_t *c, char *err,
                       size_t errlen);

/** The signature check of rm_jwt_user_verify() alone: 0 when a key of `ks` chosen as above verifies the token's
 *  signature, RM_ERR_JWT_UNKNOWN_KEY when no key fits the token's kid and alg, RM_ERR_JWT_SIGNATURE, -ENOMEM. */
int rm_jwt_user_verify_signature(const rm_jwt_user_t *t, const rm_jwt_keyset_t *ks, char *err, size_t errlen);

/* NumericDates are clamped to +-this, so sums with a clock skew (clamped too) never overflow. */
#define RM_JWT_DATE_LIMIT ((int64_t)1 << 52)

/** `t` clamped to +-RM_JWT_DATE_LIMIT. */
int64_t rm_jwt_clamp_date(int64_t t);

/** Reads the NumericDate claim `name` of `payload`: an integer, or a real rounded towards the stricter side (up when
 *  `round_up`, for nbf and iat; down for exp), clamped. Returns 1 with *out set, 0 when absent, -1 when it is not
 *  a number. */
int rm_jwt_date_claim(const struct json_t *payload, const char *name, int round_up, int64_t *out);

void rm_jwt_user_clear(rm_jwt_user_t *t);

/** The base64url (unpadded) text of `len` bytes into `out` of at least ((len + 2) / 3) * 4 + 1 bytes; returns its
 *  length. */
size_t rm_jwt_base64url(const uint8_t *in, size_t len, char *out);

#endif
