/* JSON Web Tokens as Kubernetes projects them into pods (ServiceAccount tokens), verified against a JWKS.
 *
 * Accepted algorithms: ES256 (P-256, JOSE r||s signature) and RS256 (RSA >= 2048 bits). "none", HMAC and any
 * other alg are refused. A key is chosen by "kid" when the token names one, else every key of the token's alg
 * is tried. The namespace and service account come from the "kubernetes.io" claim and must agree with "sub"
 * ("system:serviceaccount:<ns>:<sa>"); both must be DNS-1123 names, so they are safe in a SPIFFE ID path.
 *
 * Every function returns 0 or an error from error.h (RM_ERR_JWT_*, RM_ERR_JWKS, -ENOMEM) and, where it takes
 * `err`, writes one sentence for the log into it (always NUL-terminated; never any part of a key or a
 * signature, and at most the claim values that failed). */
#ifndef RINGMESH_JWT_H
#define RINGMESH_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/** A parsed JWKS: public keys only. Opaque, immutable once parsed, safe to share between threads. */
typedef struct st_rm_jwks_t rm_jwks_t;

/** Parses a JWKS document ({"keys":[...]}) holding EC P-256 and RSA public keys. Keys of other types or curves
 *  are skipped (not an error); a document with no usable key is RM_ERR_JWKS. */
int rm_jwks_parse(const char *json, size_t len, rm_jwks_t **out, char *err, size_t errlen);

/** Number of usable keys held. */
size_t rm_jwks_num_keys(const rm_jwks_t *jwks);

void rm_jwks_free(rm_jwks_t *jwks);

/** What a token must satisfy. Fill with rm_jwt_verify_opts_init(), then set issuer and audience. */
typedef struct st_rm_jwt_verify_opts_t {
    const char *issuer;   /* required "iss"; NULL accepts any issuer */
    const char *audience; /* must appear in "aud" (a string or an array); NULL is not allowed */
    time_t now;           /* 0 means time(NULL) */
    int64_t leeway;       /* seconds of clock skew allowed on exp and nbf (default 60) */
} rm_jwt_verify_opts_t;

void rm_jwt_verify_opts_init(rm_jwt_verify_opts_t *opts);

#define RM_JWT_NAME_MAX 253

/** What a verified token says about its workload. */
typedef struct st_rm_jwt_claims_t {
    char namespace_[RM_JWT_NAME_MAX + 1];
    char service_account[RM_JWT_NAME_MAX + 1];
    char pod_name[RM_JWT_NAME_MAX + 1]; /* "" when the token is not bound to a pod */
    char pod_uid[64];                   /* "" when the token is not bound to a pod */
    char issuer[256];
    int64_t expires_at; /* "exp" */
} rm_jwt_claims_t;

/** Verifies `token` (compact serialization): structure, alg, signature with a key of `jwks`, exp (required),
 *  nbf and iat-in-the-future, iss, aud, then the Kubernetes claims. Returns 0 and fills *claims, or the code
 *  of the first check that failed. */
int rm_jwt_verify(const rm_jwks_t *jwks, const char *token, size_t len, const rm_jwt_verify_opts_t *opts,
                  rm_jwt_claims_t *claims, char *err, size_t errlen);

/** Signs `claims_json` (a JSON object, copied as is into the payload) with the ECDSA P-256 private key
 *  `key_pem` as ES256, with header {"alg":"ES256","typ":"JWT","kid":kid} (kid omitted when NULL). On success
 *  *token is the NUL-terminated compact token (free()). For tests, the demo and `ringmeshctl token mint`. */
int rm_jwt_sign_es256(const char *key_pem, size_t key_len, const char *kid, const char *claims_json, char **token);

/** Writes the JWKS ({"keys":[{kty,crv,x,y,kid,alg,use}]}) holding the public half of the ECDSA P-256 private
 *  key `key_pem`. On success *jwks_json is NUL-terminated (free()). */
int rm_jwks_from_private_key(const char *key_pem, size_t key_len, const char *kid, char **jwks_json);

#endif
