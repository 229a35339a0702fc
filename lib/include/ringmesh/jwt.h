/* JSON Web Tokens as Kubernetes projects them into pods (ServiceAccount tokens), verified against a JWKS: the claim
 * checks of attestation over the one JWT verifier of ringmesh/jwt_user.h (its JWKS parser, key choice and
 * signatures).
 *
 * Accepted algorithms are that verifier's: RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA, each only with a
 * key of its type (and curve) in the JWKS, so the operator's JWKS decides which are used (Kubernetes signs RS256 with
 * an RSA key, ES256/ES384/ES512 with an EC key). "none", HMAC and any other alg are refused. A key is chosen by
 * "kid" when the token names one (keys without a kid are tried too), else every key of the token's alg is tried.
 * The namespace and service account come from the "kubernetes.io" claim and must agree with "sub"
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

/** A parsed JWKS: public keys only; the same object as rm_jwt_keyset_t. Opaque, immutable once parsed, safe to
 *  share between threads. */
typedef struct st_rm_jwt_keyset_t rm_jwks_t;

/** Parses a JWKS document ({"keys":[...]}) with rm_jwt_keyset_parse(): keys of the types and curves listed there;
 *  others, and broken ones, are skipped (not an error); a document with no usable key is RM_ERR_JWKS. */
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
