/* The sidecar injector's admission webhook: HTTPS POST /inject on ringmesh-control's port 15017, answered by
 * rm_inject_review() (inject/inject.h).
 *
 * TLS 1.3 through libringmesh's TLS backend, with a serving certificate the control plane's own CA issues at start
 * (its SPIFFE ID plus the DNS names the API server dials, ringmesh-control.<ns>.svc) and again at half its life (a
 * thread looks once a second, whether connections come or not); no client certificate is asked for (the API server
 * presents none by default). HTTP/1.1 with http-parser, one request per connection (Connection: close), bodies of at
 * most max_body bytes, the TLS handshake bounded by 3 s and the whole exchange by io_timeout_ms. A few threads accept
 * on the one socket; each serves one connection at a time. Every review is logged (event inject_review) with its uid,
 * namespace, name, outcome and reason. */
#ifndef RINGMESH_CONTROL_INJECT_WEBHOOK_H
#define RINGMESH_CONTROL_INJECT_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "ca.h"
#include "inject.h"
#include "kube_client.h"

#define RM_INJECT_WEBHOOK_PATH "/inject"

typedef struct st_rm_inject_webhook_t rm_inject_webhook_t;

typedef struct st_rm_inject_webhook_config_t {
    const char *listen;           /* "ip:port" or "[ip6]:port" */
    const rm_ca_t *ca;            /* issues the serving certificate; must outlive the webhook */
    const char *spiffe_id;        /* the control plane's own */
    const char *const *dns_names; /* names the API server dials (the Service's) */
    size_t num_dns_names;
    rm_inject_review_ctx_t review; /* what answers; its pointers must outlive the webhook */
    unsigned threads;              /* 0: 8 */
    size_t max_body;               /* 0: 4 MiB */
    unsigned io_timeout_ms;        /* 0: 10 s */
    long serving_ttl;              /* seconds; 0: 24 h */
    /* Both set: serve this certificate (chain) and key (PEM files, e.g. cert-manager's Secret volume) instead of
     * one the CA issues; the files are checked for a change at most once a second and read again when they
     * changed (a pair that fails to load is logged and the previous one kept). */
    const char *cert_file, *key_file;
} rm_inject_webhook_config_t;

/** Loads the serving pair of cert_file/key_file once, as the webhook would (for --check-config). Returns 0 or an
 *  error with the file and reason in `err`. */
int rm_inject_webhook_check_files(const char *cert_file, const char *key_file, const char *trust_domain, char *err,
                                  size_t errlen);

/** Issues the serving certificate, listens and starts the threads. Returns 0, or a negative error with a sentence
 *  in `err`. The strings of `cfg` are copied where needed; its pointers (ca, review) must outlive the webhook. */
int rm_inject_webhook_start(const rm_inject_webhook_config_t *cfg, rm_inject_webhook_t **out, char *err, size_t errlen);

/** Stops the threads (a connection being served finishes first, within io_timeout_ms) and frees. NULL is fine. */
void rm_inject_webhook_stop(rm_inject_webhook_t *w);

/** The notAfter (Unix seconds) of the serving certificate the next connection gets: the files are looked at (and
 *  read again when they changed) or the certificate renewed first, as for a connection. Thread-safe. */
int64_t rm_inject_webhook_not_after(rm_inject_webhook_t *w);

/** The port actually bound (useful with port 0). */
unsigned rm_inject_webhook_port(const rm_inject_webhook_t *w);

/** Puts `bundle_pem` (the CA that issues the serving certificate) into the caBundle of every webhook of the
 *  MutatingWebhookConfiguration `name` through the API (`client`), so that the API server trusts the serving
 *  certificate across restarts and `helm upgrade`. Reads the configuration first and patches only the webhooks whose
 *  caBundle differs (a JSON patch per webhook, each guarded by a test of that webhook's name, so a reordered list
 *  is never patched at the wrong index). Returns 0 (all hold it now; *patched counts the webhooks changed), 404 when
 *  the configuration does not exist (yet), or another error with a sentence in `err`. */
int rm_inject_webhook_publish_ca_bundle(rm_kube_client_t *client, const char *name, const char *bundle_pem,
                                        size_t bundle_len, unsigned *patched, char *err, size_t errlen);

#endif
