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

#define RM_TOKENREVIEW_CA_FILE    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
#define RM_TOKENREVIEW_TOKEN_FILE "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define RM_TOKENREVIEW_AUDIENCE   "ringmesh"
#define RM_TOKENREVIEW_TIMEOUT_MS 5000

/** How the TokenReview attestor reaches the Kubernetes API. Every field may be left zero for its in-cluster default,
 *  so `rm_tokenreview_config_t cfg = {0};` is the configuration of a control plane running in a pod. */
typedef struct st_rm_tokenreview_config_t {
    const char *api_server; /* "https://host:port" (a path prefix is allowed); NULL: from KUBERNETES_SERVICE_HOST
                             * and KUBERNETES_SERVICE_PORT */
    const char *ca_file;    /* PEM file the API server's certificate must chain to (nothing else is trusted);
                             * NULL: RM_TOKENREVIEW_CA_FILE */
    const char *token_file; /* the control plane's own bearer token, re-read at every review because the kubelet
                             * rotates it; NULL: RM_TOKENREVIEW_TOKEN_FILE */
    const char *audience;   /* asked for in spec.audiences; status.audiences must include it; NULL: "ringmesh" */
    unsigned timeout_ms;    /* bound on one review, connection and TLS handshake included; 0: 5000 */
} rm_tokenreview_config_t;

/** Creates the TokenReview attestor: each credential is sent to the Kubernetes API (POST
 *  /apis/authentication.k8s.io/v1/tokenreviews, over TLS verified against `ca_file`, with the bearer token read from
 *  `token_file`), and the identity is read from the review: the namespace and service account from
 *  status.user.username ("system:serviceaccount:<ns>:<sa>", both DNS-1123 names), the pod from status.user.extra
 *  "authentication.kubernetes.io/pod-name" ("" when the token is not bound to a pod). Its attest op returns
 *  RM_ERR_JWT_MALFORMED for a credential that is not a compact JWS (the API is not asked), RM_ERR_AUTH_REVIEW when
 *  the review could not be had or did not authenticate the token (API unreachable, TLS, HTTP status, bad answer,
 *  status.authenticated not true: the message carries the API's reason), RM_ERR_JWT_AUDIENCE when status.audiences
 *  lacks the audience, RM_ERR_JWT_CLAIMS when the user is not a service account or a name is not DNS-1123. Messages
 *  never hold the credential or the bearer token. The op may be called from several threads (one HTTP handle per
 *  call).
 *  Returns 0, or RM_ERR_CONFIG_VALUE (no API server, not https, unreadable CA or token file) / -ENOMEM with the
 *  reason in `err`. */
int rm_attestor_tokenreview_create(const rm_tokenreview_config_t *cfg, rm_attestor_t **out, char *err, size_t errlen);

#endif
