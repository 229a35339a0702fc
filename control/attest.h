/* Attestation: turning a sidecar's credential into the namespace and service account its SVID will name.
 *
 * The JWT attestor verifies a projected ServiceAccount token itself against a JWKS file (no cluster needed);
 * the TokenReview attestor asks the Kubernetes API. Both fill the same result, and the identity always comes
 * from it, never from the request. */
#ifndef RINGMESH_CONTROL_ATTEST_H
#define RINGMESH_CONTROL_ATTEST_H

#include <stddef.h>

#include "ringmesh/jwt.h"

typedef struct st_rm_attested_t {
    char namespace_[RM_JWT_NAME_MAX + 1];
    char service_account[RM_JWT_NAME_MAX + 1];
    char pod_name[RM_JWT_NAME_MAX + 1]; /* "" when unknown */
} rm_attested_t;

typedef struct st_rm_attestor_t rm_attestor_t;

typedef struct st_rm_attestor_ops_t {
    const char *name; /* "jwt", "token-review" */
    /** Attests `cred`. Returns 0 and fills *out, or an RM_ERR_JWT_* / RM_ERR_AUTH_REVIEW code with the reason in
     *  `err`. Safe to call from several threads. */
    int (*attest)(rm_attestor_t *a, const char *cred, size_t len, rm_attested_t *out, char *err, size_t errlen);
    void (*destroy)(rm_attestor_t *a);
} rm_attestor_ops_t;

struct st_rm_attestor_t {
    const rm_attestor_ops_t *ops;
};

/** Creates the JWT attestor: tokens must verify against `jwks_file`, carry `issuer` (NULL: any) and include
 *  `audience` in aud. Returns 0, or an error with the file and reason in `err`. */
int rm_attestor_jwt_create(const char *jwks_file, const char *issuer, const char *audience, rm_attestor_t **out,
                           char *err, size_t errlen);

#endif
