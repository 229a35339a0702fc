/* The client certificate verifier of the control plane's gRPC port (see client_verify.h). */
#include "client_verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>

#include "handshake_log.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"

typedef struct st_client_verifier_t {
    grpc_tls_certificate_verifier_external ext; /* gRPC holds a pointer to this */
    rm_trust_bundle_t *bundle;
    char trust_domain[RM_TRUST_DOMAIN_MAX + 1];
} client_verifier_t;

static const char *cause_of(int code)
{
    switch (code) {
    case RM_ERR_SVID_UNTRUSTED:
    case RM_ERR_SVID_CA_NOT_CA:
        return "untrusted_certificate";
    case RM_ERR_SVID_EXPIRED:
        return "certificate_expired";
    case RM_ERR_SVID_NOT_YET_VALID:
        return "certificate_not_yet_valid";
    case RM_ERR_SVID_PARSE:
        return "bad_certificate";
    case RM_ERR_SVID_TRUST_DOMAIN:
        return "wrong_trust_domain";
    case -ENOMEM:
        return "out_of_memory";
    default:
        return "svid_rule";
    }
}

/* The chain as lib takes it: the leaf, then what else the client sent. On the server side OpenSSL's peer chain
 * leaves the leaf out; a chain that starts with it is taken as it is. */
static char *join_chain(const char *leaf, const char *rest, size_t *len)
{
    size_t leaf_len = strlen(leaf), rest_len = rest != NULL ? strlen(rest) : 0;
    char *all;

    if (rest != NULL && rest_len >= leaf_len && memcmp(rest, leaf, leaf_len) == 0)
        leaf_len = 0;
    if ((all = malloc(leaf_len + rest_len + 1)) == NULL)
        return NULL;
    memcpy(all, leaf, leaf_len);
    if (rest_len != 0)
        memcpy(all + leaf_len, rest, rest_len);
    all[leaf_len + rest_len] = '\0';
    *len = leaf_len + rest_len;
    return all;
}

static int verify(void *user_data, grpc_tls_custom_verification_check_request *request,
                  grpc_tls_on_custom_verification_check_done_cb callback, void *callback_arg,
                  grpc_status_code *sync_status, char **sync_error_details)
{
    client_verifier_t *v = user_data;
    const char *leaf = request->peer_info.peer_cert;
    rm_svid_expect_t expect = {.trust_domain = v->trust_domain};
    rm_spiffe_id_t *id = NULL;
    char *chain = NULL, details[512];
    size_t len = 0;
    int ret;

    (void)callback;
    (void)callback_arg;
    *sync_status = GRPC_STATUS_OK;
    if (leaf == NULL || leaf[0] == '\0')
        return 1; /* no client certificate: each method decides */
    if ((id = calloc(1, sizeof(*id))) == NULL ||
        (chain = join_chain(leaf, request->peer_info.peer_cert_full_chain, &len)) == NULL) {
        ret = -ENOMEM;
    } else {
        ret = rm_svid_verify_pem(v->bundle, chain, len, time(NULL), &expect, id);
    }
    if (ret != 0) {
        /* the ID the certificate claims, for the log: lib's parse when it got that far, else gRPC's SAN list */
        const char *claimed = id != NULL && id->len != 0 ? id->str : "";
        if (claimed[0] == '\0' && request->peer_info.san_names.uri_names_size != 0 &&
            strncasecmp(request->peer_info.san_names.uri_names[0], "spiffe://", 9) == 0)
            claimed = request->peer_info.san_names.uri_names[0];
        rm_tls_refusal_t r = {.cause = cause_of(ret), .code = ret, .spiffe_id = claimed};
        rm_handshake_log_refusal(&r, details, sizeof(details));
        *sync_status = GRPC_STATUS_UNAUTHENTICATED;
        *sync_error_details = gpr_strdup(details);
    }
    free(chain);
    free(id);
    return 1; /* answered synchronously */
}

static void cancel(void *user_data, grpc_tls_custom_verification_check_request *request)
{
    (void)user_data;
    (void)request; /* nothing runs asynchronously */
}

static void destruct(void *user_data)
{
    client_verifier_t *v = user_data;

    rm_trust_bundle_free(v->bundle);
    free(v);
}

grpc_tls_certificate_verifier *rm_client_verifier_create(const rm_ca_t *ca, char *err, size_t errlen)
{
    client_verifier_t *v;
    const char *pem, *td = rm_ca_trust_domain(ca);
    size_t len;
    int ret;

    if ((v = calloc(1, sizeof(*v))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pem = rm_ca_bundle_pem(ca, &len);
    if ((ret = rm_trust_bundle_load_pem(&v->bundle, pem, len)) != 0) {
        snprintf(err, errlen, "the trust bundle does not load for client verification: %s", rm_strerror(ret));
        free(v);
        return NULL;
    }
    snprintf(v->trust_domain, sizeof(v->trust_domain), "%s", td);
    v->ext.user_data = v;
    v->ext.verify = verify;
    v->ext.cancel = cancel;
    v->ext.destruct = destruct;
    return grpc_tls_certificate_verifier_external_create(&v->ext);
}
