/* The control plane's duties towards the cluster it serves, through the Kubernetes API (docs/control-plane.md,
 * "In a cluster"):
 *
 *  - the signing CA kept in a Secret of the control plane's namespace (--ca-secret), so that replicas and restarts
 *    share one CA: read it; when it does not exist, generate a root and create the Secret; when another replica
 *    created it first (409), read and use that one;
 *  - the trust bundle published as the ConfigMap ringmesh-root-cert (key root-cert.pem) in every namespace, created
 *    when missing (and again after a deletion), updated when its content differs, left alone when equal;
 *  - the trust bundle patched into the caBundle of every webhook of the MutatingWebhookConfiguration that sends pods
 *    to the injector, retried while that configuration does not exist yet, and again whenever it no longer holds it.
 *
 * Several replicas doing this at once converge: they share one CA, so they write the same content, and each write is
 * made only after comparing with what the API holds. */
#ifndef RINGMESH_CONTROL_KUBE_CLUSTER_H
#define RINGMESH_CONTROL_KUBE_CLUSTER_H

#include <stddef.h>

#include "kube_client.h"

#define RM_ROOT_CERT_CONFIGMAP "ringmesh-root-cert"
#define RM_ROOT_CERT_KEY       "root-cert.pem"

/** A client from a kubeconfig (`kubeconfig` non-NULL) or the in-cluster files. Returns 0 or an error with the
 *  reason in `err`. */
int rm_kube_client_open(const char *kubeconfig, unsigned timeout_ms, rm_kube_client_t **out, char *err, size_t errlen);

/** The CA's PEM texts as read from (or written to) the Secret. key_pem is wiped when cleared. */
typedef struct st_rm_kube_ca_secret_t {
    char *cert_pem, *key_pem, *roots_pem;
    size_t cert_len, key_len, roots_len;
    int created; /* this process generated the root and created the Secret */
} rm_kube_ca_secret_t;

/** Reads Secret `name` of `ns` (keys tls.crt, tls.key and optionally ca.crt, base64 as the API holds them). When it
 *  does not exist (404), generates a root for `trust_domain` and creates the Secret (type kubernetes.io/tls); when
 *  the create answers 409 (another replica created it), reads it again. Returns 0, or an error with a sentence
 *  naming the Secret and the key or the API's answer (a 403 on create says that a user-supplied Secret must exist
 *  before the control plane starts). The key never reaches a log. */
int rm_kube_ca_secret_fetch(rm_kube_client_t *c, const char *ns, const char *name, const char *trust_domain,
                            rm_kube_ca_secret_t *out, char *err, size_t errlen);

/** Frees (the key wiped) and zeroes. */
void rm_kube_ca_secret_clear(rm_kube_ca_secret_t *s);

typedef struct st_rm_kube_publisher_t rm_kube_publisher_t;

typedef struct st_rm_kube_publisher_config_t {
    rm_kube_client_t *client; /* must outlive the publisher */
    const char *bundle_pem;   /* the trust bundle (copied) */
    size_t bundle_len;
    const char *webhook_config; /* the MutatingWebhookConfiguration to patch; NULL: none (cert-manager mode) */
    int publish_root_cert;      /* publish the ringmesh-root-cert ConfigMaps */
    unsigned resync_ms;         /* how often everything is compared again without a change seen (0: 30 s) */
} rm_kube_publisher_config_t;

/** Starts the publisher's thread (it reconciles at once). Returns 0 or -errno with the reason in `err`. */
int rm_kube_publisher_start(const rm_kube_publisher_config_t *cfg, rm_kube_publisher_t **out, char *err, size_t errlen);

/** Stops the thread and frees. NULL is fine. */
void rm_kube_publisher_stop(rm_kube_publisher_t *p);

/* ---- parts, visible for the unit tests ---- */

/** Standard base64 (RFC 4648 with padding). *out is malloc'd and NUL-terminated. Returns 0 or -ENOMEM. */
int rm__b64_encode(const char *in, size_t len, char **out, size_t *out_len);
/** Decodes standard base64 (padding optional, no whitespace). Returns 0, -EINVAL or -ENOMEM. */
int rm__b64_decode(const char *in, size_t len, char **out, size_t *out_len);

#endif
