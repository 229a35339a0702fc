/* Fixtures shared by the JWT and JWKS tests (test_jwt_*.c): PyJWT's tokens and keys (tests/data/jwt/, made once by
 * make_fixtures.py), signing keys made at group setup, tokens minted from claims written as raw JSON, and token
 * surgery. Every verification pins opts.now to the fixtures' fixed time. Helpers fail the running cmocka test on
 * what they do not expect. */
#ifndef RM_TEST_JWT_FIXTURES_H
#define RM_TEST_JWT_FIXTURES_H

#include <stddef.h>
#include <time.h>

#include "ringmesh/jwt.h"

#define DATA_DIR RM_TEST_DATA_DIR "/jwt/"
#define ISS      "https://kubernetes.default.svc.cluster.local"
#define AUD      "ringmesh"
#define KID      "rm-1"

/** The group's keys and time, set by setup(). */
typedef struct st_jwt_fixtures_t {
    time_t now;         /* the fixtures' fixed time */
    rm_jwks_t *py_jwks; /* jwks.json: PyJWT's EC and RSA keys, and keys to skip */
    char *key, *other;  /* our signing keys (PEM); `key` is KID in rm_jwks */
    size_t key_len, other_len;
    rm_jwks_t *rm_jwks;
} jwt_fixtures_t;

extern jwt_fixtures_t fx;

/** The whole file `name` of tests/data/jwt/, NUL-terminated, in memory the caller frees; its length in *len (when
 * not NULL). */
char *read_data(const char *name, size_t *len);

/** The JWKS in the data file `name`; the caller frees it with rm_jwks_free(). */
rm_jwks_t *load_jwks(const char *name);

/** A JWKS holding the public half of the PEM private key `key` under `kid`. */
rm_jwks_t *jwks_of(const char *key, size_t key_len, const char *kid);

/** The cmocka group setup: the fixed time, PyJWT's JWKS, and two signing keys of ours. */
int setup(void **state);

/** The cmocka group teardown: frees what setup() made. */
int teardown(void **state);

/** Verification options for ISS and AUD at `now`. */
rm_jwt_verify_opts_t opts_at(time_t now);

/** Verifies and checks the code; on failure also that a reason was given and no claim was returned. */
void expect_verify(const rm_jwks_t *jwks, const char *token, const rm_jwt_verify_opts_t *opts, int code,
                   rm_jwt_claims_t *claims_out);

/** Verifies the token in the data file `name` at the fixtures' time and checks the code. */
void expect_fixture(const rm_jwks_t *jwks, const char *name, int code);

/* ---- claims of tokens we sign */

/** Each member is raw JSON; NULL leaves the claim out. */
typedef struct st_claims_spec_t {
    const char *iss, *aud, *exp, *nbf, *iat, *sub, *k8s;
} claims_spec_t;

#define K8S(ns, sa, pod)                                                                                               \
    "{\"namespace\":\"" ns "\",\"serviceaccount\":{\"name\":\"" sa                                                     \
    "\",\"uid\":\"5f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\"}" pod "}"
#define POD ",\"pod\":{\"name\":\"orders-7d9f8b6c5-x2x9k\",\"uid\":\"0c9a3b2e-5d1f-4a7e-9b8c-2f6d4e1a7c30\"}"

/** Claims that pass at the fixtures' time: service account shop/orders, bound to a pod. */
claims_spec_t good_spec(void);

/** Signs the claims with `key` under `kid`; returns the token (free()). */
char *mint_with(const char *key, size_t key_len, const char *kid, const claims_spec_t *s);

/** mint_with() with our key `fx.key` under KID. */
char *mint(const claims_spec_t *s);

/** Mints `s` with our key and verifies it at the fixtures' time. */
void expect_spec(const claims_spec_t *s, int code);

/* ---- token surgery */

/** The three dot-separated parts of a compact JWS (pointers into the token). */
typedef struct st_parts_t {
    const char *p[3];
    size_t len[3];
} parts_t;

/** Splits a token that must have exactly three parts. */
parts_t split(const char *token);

/** The parts joined with dots, in memory the caller frees. */
char *join(const parts_t *t);

/** A copy of `token` with the byte at `at` (negative: from the end) replaced. */
char *with_byte(const char *token, long at, char c);

#endif
