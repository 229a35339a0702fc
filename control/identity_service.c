#include "identity_service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/v1/identity.pb-c.h"

#define GRPC_OK               0
#define GRPC_INVALID_ARGUMENT 3
#define GRPC_INTERNAL         13
#define GRPC_UNAUTHENTICATED  16

#define MAX_CREDENTIAL_LEN (16u << 10)

const char *rm_sign_outcome_name(rm_sign_outcome_t o)
{
    static const char *const names[RM_SIGN_NUM_OUTCOMES] = {
        [RM_SIGN_ISSUED] = "",
        [RM_SIGN_REQUEST_INVALID] = "request_invalid",
        [RM_SIGN_TOKEN_MISSING] = "token_missing",
        [RM_SIGN_TOKEN_INVALID] = "token_invalid",
        [RM_SIGN_TOKEN_REVIEW_FAILED] = "token_review_failed",
        [RM_SIGN_CSR_INVALID] = "csr_invalid",
        [RM_SIGN_INTERNAL] = "internal",
    };
    return (unsigned)o < RM_SIGN_NUM_OUTCOMES ? names[o] : "internal";
}

static void refuse(rm_sign_result_t *res, rm_sign_outcome_t outcome, int status, int error, const char *peer,
                   const rm_attested_t *who, const char *reason)
{
    rm_log_line_t l;

    res->outcome = outcome;
    res->grpc_status = status;
    res->error = error;
    snprintf(res->message, sizeof(res->message), "%s", reason);
    rm_log_begin(&l, RM_LOG_WARN, "sign_refused");
    rm_log_str(&l, "peer", peer);
    if (who != NULL) {
        rm_log_str(&l, "namespace", who->namespace_);
        rm_log_str(&l, "serviceAccount", who->service_account);
        if (who->pod_name[0] != '\0')
            rm_log_str(&l, "pod", who->pod_name);
    }
    rm_log_str(&l, "reason", reason);
    rm_log_str(&l, "cause", rm_sign_outcome_name(outcome));
    if (error != 0)
        rm_log_err(&l, "error", error);
    rm_log_end(&l);
}

void rm_identity_sign(const rm_ca_t *ca, rm_attestor_t *attestor, int64_t default_ttl, const char *peer,
                      const uint8_t *req, size_t req_len, rm_sign_result_t *res)
{
    Ringmesh__V1__SignRequest *sr = NULL;
    Ringmesh__V1__SignResponse resp = RINGMESH__V1__SIGN_RESPONSE__INIT;
    rm_attested_t who;
    rm_ca_issued_t issued = {0};
    char why[200], reason[256], spiffe_id[600];
    size_t bundle_len;
    int ret;

    memset(res, 0, sizeof(*res));
    if ((sr = ringmesh__v1__sign_request__unpack(NULL, req_len, req)) == NULL) {
        refuse(res, RM_SIGN_REQUEST_INVALID, GRPC_INVALID_ARGUMENT, 0, peer, NULL,
               "request is not a valid ringmesh.v1.SignRequest");
        return;
    }
    if (sr->credential == NULL || sr->credential[0] == '\0') {
        refuse(res, RM_SIGN_TOKEN_MISSING, GRPC_UNAUTHENTICATED, 0, peer, NULL,
               "no credential: a ServiceAccount token is required");
        goto Exit;
    }
    if (strlen(sr->credential) > MAX_CREDENTIAL_LEN) {
        refuse(res, RM_SIGN_TOKEN_INVALID, GRPC_UNAUTHENTICATED, RM_ERR_JWT_MALFORMED, peer, NULL,
               "credential is larger than 16 KiB");
        goto Exit;
    }
    why[0] = '\0';
    if ((ret = attestor->ops->attest(attestor, sr->credential, strlen(sr->credential), &who, why, sizeof(why))) != 0) {
        snprintf(reason, sizeof(reason), "credential refused (%s): %s", attestor->ops->name,
                 why[0] != '\0' ? why : rm_strerror(ret));
        refuse(res, ret == RM_ERR_AUTH_REVIEW ? RM_SIGN_TOKEN_REVIEW_FAILED : RM_SIGN_TOKEN_INVALID,
               GRPC_UNAUTHENTICATED, ret, peer, NULL, reason);
        goto Exit;
    }
    snprintf(spiffe_id, sizeof(spiffe_id), "spiffe://%s/ns/%s/sa/%s", rm_ca_trust_domain(ca), who.namespace_,
             who.service_account);
    why[0] = '\0';
    if ((ret = rm_ca_sign_csr(ca, sr->csr_pem != NULL ? sr->csr_pem : "", sr->csr_pem != NULL ? strlen(sr->csr_pem) : 0,
                              spiffe_id, sr->requested_ttl_seconds != 0 ? sr->requested_ttl_seconds : default_ttl,
                              &issued, why, sizeof(why))) != 0) {
        int status = ret == RM_ERR_SVID_ISSUE || ret == -ENOMEM ? GRPC_INTERNAL : GRPC_INVALID_ARGUMENT;
        snprintf(reason, sizeof(reason), "certificate signing request refused: %s",
                 why[0] != '\0' ? why : rm_strerror(ret));
        refuse(res, status == GRPC_INTERNAL ? RM_SIGN_INTERNAL : RM_SIGN_CSR_INVALID, status, ret, peer, &who, reason);
        goto Exit;
    }
    resp.spiffe_id = spiffe_id;
    resp.cert_chain_pem = issued.chain_pem;
    resp.trust_bundle_pem = (char *)rm_ca_bundle_pem(ca, &bundle_len);
    resp.not_before = issued.not_before;
    resp.not_after = issued.not_after;
    res->response_len = ringmesh__v1__sign_response__get_packed_size(&resp);
    if ((res->response = malloc(res->response_len)) == NULL) {
        refuse(res, RM_SIGN_INTERNAL, GRPC_INTERNAL, -ENOMEM, peer, &who, "out of memory");
        goto Exit;
    }
    ringmesh__v1__sign_response__pack(&resp, res->response);
    res->grpc_status = GRPC_OK;
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "svid_issued");
        rm_log_str(&l, "peer", peer);
        rm_log_str(&l, "spiffeId", spiffe_id);
        if (who.pod_name[0] != '\0')
            rm_log_str(&l, "pod", who.pod_name);
        rm_log_int(&l, "notBefore", issued.not_before);
        rm_log_int(&l, "notAfter", issued.not_after);
        rm_log_str(&l, "attestor", attestor->ops->name);
        rm_log_end(&l);
    }
Exit:
    rm_ca_issued_free(&issued);
    ringmesh__v1__sign_request__free_unpacked(sr, NULL);
}
