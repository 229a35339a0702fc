/* Identity.Sign without the transport: a serialized SignRequest in, a serialized SignResponse (or a gRPC status
 * and message) out. The identity is spiffe://<trust domain>/ns/<namespace>/sa/<service account> of the attested
 * credential; whatever the CSR asks for is ignored. Every issuance and every refusal is one JSON log line. */
#ifndef RINGMESH_CONTROL_IDENTITY_SERVICE_H
#define RINGMESH_CONTROL_IDENTITY_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "attest.h"
#include "ca.h"

typedef struct st_rm_sign_result_t {
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
