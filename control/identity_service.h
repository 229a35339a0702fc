/* Identity.Sign without the transport: a serialized SignRequest in, a serialized SignResponse (or a gRPC status
 * and message) out. The identity is spiffe://<trust domain>/ns/<namespace>/sa/<service account> of the attested
 * credential; whatever the CSR asks for is ignored. Every issuance and every refusal is one JSON log line. */
#ifndef RINGMESH_CONTROL_IDENTITY_SERVICE_H
#define RINGMESH_CONTROL_IDENTITY_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "attest.h"
#include "ca.h"

/** Why a Sign call was refused: a small closed set, the `reason` label of ringmesh_control_svid_refusals_total. The
 *  log line of the refusal (sign_refused, or call_refused for a call without a message) carries the full sentence
 *  and the peer. */
typedef enum {
    RM_SIGN_ISSUED = 0,
    RM_SIGN_REQUEST_INVALID, /* no message, or not a ringmesh.v1.SignRequest */
    RM_SIGN_TOKEN_MISSING,   /* no credential in the request */
    RM_SIGN_TOKEN_INVALID, /* the token failed a check: form, size, signature, key, expiry, issuer, audience, claims */
    RM_SIGN_TOKEN_REVIEW_FAILED, /* the TokenReview could not be had, or the API did not authenticate the token */
    RM_SIGN_CSR_INVALID,         /* the CSR does not parse, is not self-signed, or its key is not P-256 */
    RM_SIGN_INTERNAL,            /* signing failed, or out of memory */
    RM_SIGN_NUM_OUTCOMES
} rm_sign_outcome_t;

/** The label value of a refusal ("token_invalid", ...); "" for RM_SIGN_ISSUED. */
const char *rm_sign_outcome_name(rm_sign_outcome_t o);

typedef struct st_rm_sign_result_t {
    rm_sign_outcome_t outcome;
    int grpc_status;   /* 0 OK, 3 INVALID_ARGUMENT, 16 UNAUTHENTICATED, 13 INTERNAL */
    char message[256]; /* the reason on failure (also logged) */
    uint8_t *response; /* serialized SignResponse when grpc_status is 0 (free()) */
    size_t response_len;
    int error; /* the ringmesh error behind a failure, 0 on success */
} rm_sign_result_t;

/** Handles one Sign call. `peer` names the caller for the log (its address), `default_ttl` is the mesh's SVID
 *  lifetime, used when the request asks for none. Never fails to fill *res. */
void rm_identity_sign(const rm_ca_t *ca, rm_attestor_t *attestor, int64_t default_ttl, const char *peer,
                      const uint8_t *req, size_t req_len, rm_sign_result_t *res);

#endif
