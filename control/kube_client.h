/* A client of the Kubernetes API for the control plane's Kubernetes source: where the API is and how to prove who
 * we are (in-cluster files or a kubeconfig), and the four kinds of call the source makes: GET (one object or one
 * page of a list), WATCH (a streaming GET whose body is one JSON event per line), PATCH and POST.
 *
 * HTTPS only, TLS 1.2 or later, verified against the cluster's CA (nothing else is trusted, no proxy, no redirect);
 * libcurl's own TLS backend, jansson for JSON. Each call uses its own libcurl handle, so one client serves several
 * threads. A bearer token read from a file is read again when it is older than a minute and when the API answers
 * 401 (the kubelet rotates the file). Answers are bounded in size. Every failure is a sentence naming the URL and,
 * when the API sent one, its Status message. */
#ifndef RINGMESH_CONTROL_KUBE_CLIENT_H
#define RINGMESH_CONTROL_KUBE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ringmesh/config.h"

#define RM_KUBE_SA_DIR        "/var/run/secrets/kubernetes.io/serviceaccount"
#define RM_KUBE_ANSWER_MAX    (64u << 20) /* one GET answer (a page of 500 pods is a few MiB) */
#define RM_KUBE_EVENT_MAX     (8u << 20)  /* one watch event line (etcd's object limit is 1.5 MiB) */
#define RM_KUBE_TOKEN_MAX_AGE 60          /* seconds before a token file is read again */

/** How to reach the API. Strings are owned (freed by rm_kube_config_clear()); unset ones are NULL. */
typedef struct st_rm_kube_config_t {
    char *server;               /* "https://host:port" (a path prefix is allowed), no trailing '/' */
    char *origin;               /* where this came from, for messages: "in-cluster" or the kubeconfig's path */
    char *ca_file;              /* PEM roots the server must chain to, or: */
    char *ca_data;              /* the same, inline (kubeconfig certificate-authority-data, decoded) */
    char *token;                /* a bearer token, or: */
    char *token_file;           /* a file holding it, re-read as it rotates */
    char *cert_file, *key_file; /* client certificate and key (PEM), or inline: */
    char *cert_data, *key_data;
    char *namespace_; /* the in-cluster namespace file's content, or the context's namespace; may be NULL */
} rm_kube_config_t;

/** The in-cluster configuration: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the CA, token and
 *  namespace files under `sa_dir` (NULL: RM_KUBE_SA_DIR). Returns 0 or RM_ERR_CONFIG_VALUE with the reason. */
int rm_kube_config_in_cluster(const char *sa_dir, rm_kube_config_t *cfg, char *err, size_t errlen);

/** Reads a kubeconfig (YAML): its current-context's cluster (server, certificate-authority or
 *  certificate-authority-data) and user (token, tokenFile, client-certificate(-data), client-key(-data)); relative
 *  file names are relative to the kubeconfig's directory. `data` NULL: the file `path` is read, else data[0..len)
 *  is parsed and shown as `path`. Exec and auth-provider plugins, insecure-skip-tls-verify and plain http are
 *  refused. Returns 0 or RM_ERR_CONFIG_* with file, line, column and field in `err`. */
int rm_kube_config_load_kubeconfig(const char *path, const char *data, size_t len, rm_kube_config_t *cfg,
                                   rm_config_error_t *err);

/** Frees the strings (key material wiped) and zeroes `cfg`. */
void rm_kube_config_clear(rm_kube_config_t *cfg);

typedef struct st_rm_kube_client_t rm_kube_client_t;

/** A client for `cfg` (taken over: `cfg` is zeroed). `timeout_ms` bounds a GET, PATCH or POST and the connection
 *  and handshake of a watch (0: 30 s). Returns 0 or RM_ERR_CONFIG_VALUE / -ENOMEM with the reason in `err`. */
int rm_kube_client_new(rm_kube_config_t *cfg, unsigned timeout_ms, rm_kube_client_t **out, char *err, size_t errlen);

/** The server, for messages. */
const char *rm_kube_client_server(const rm_kube_client_t *c);

/** Frees the client. NULL is fine. */
void rm_kube_client_free(rm_kube_client_t *c);

/* Results of a call: 0 for a 2xx answer; the HTTP status (a positive number: 401, 404, 410, 500...) when the API
 * answered another; RM_KUBE_ERR_TRANSPORT when it could not be reached or the transfer broke (connection, TLS,
 * timeout); RM_KUBE_ERR_ANSWER when the answer was not what the API sends (not JSON, larger than allowed);
 * RM_KUBE_ERR_CANCELLED when `cancel` was seen set; -ENOMEM. `err` always holds the sentence. */
#define RM_KUBE_ERR_TRANSPORT (-5)   /* -EIO */
#define RM_KUBE_ERR_ANSWER    (-74)  /* -EBADMSG */
#define RM_KUBE_ERR_CANCELLED (-125) /* -ECANCELED */

/** GET `path` (with its query): *out is the answer's JSON (the caller's reference). */
int rm_kube_get(rm_kube_client_t *c, const char *path, json_t **out, char *err, size_t errlen);

/** `method` ("POST", "PATCH", "PUT") of `body` with `content_type` (e.g. "application/merge-patch+json",
 *  "application/json-patch+json") to `path`; *out (may be NULL) receives the answer's JSON. */
int rm_kube_send(rm_kube_client_t *c, const char *method, const char *path, const char *content_type, const char *body,
                 json_t **out, char *err, size_t errlen);

/** Called for each watch event: `type` is "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or "ERROR", `object` the
 *  event's object (borrowed). Returns 0 to go on, or a value that ends the watch and is returned by
 *  rm_kube_watch(). */
typedef int (*rm_kube_event_cb)(void *arg, const char *type, json_t *object);

/** Watches `path` (its query must hold watch=1): calls `cb` per event line, in order, until the server ends the
 *  stream (returns 0), the callback ends it, `*cancel` becomes nonzero (checked at least every second), or a failure
 *  (as above). A line that is not a JSON event ends the watch with RM_KUBE_ERR_ANSWER. A server that sends nothing
 *  within the client's timeout fails it with RM_KUBE_ERR_TRANSPORT. `limit_ms` (0: none) bounds
 *  the whole watch: one still open past it (the server should have ended it by its timeoutSeconds) is stalled, and
 *  ends with RM_KUBE_ERR_TRANSPORT. */
int rm_kube_watch(rm_kube_client_t *c, const char *path, unsigned limit_ms, rm_kube_event_cb cb, void *arg,
                  const int *cancel, char *err, size_t errlen);

/* ---- parts, visible for the unit tests ---- */

/** Splits a byte stream into lines: `on_line` gets each complete line (without its '\n'; empty lines and a trailing
 *  '\r' dropped). A line longer than `max` bytes fails the stream. */
typedef struct st_rm__kube_lines_t {
    char *buf;
    size_t len, cap, max;
    int (*on_line)(void *arg, const char *line, size_t len);
    void *arg;
} rm__kube_lines_t;

/** Feeds data[0..len). Returns 0, -E2BIG (a line over max), -ENOMEM, or the first nonzero on_line() result. */
int rm__kube_lines_feed(rm__kube_lines_t *l, const char *data, size_t len);

/** Frees the buffer (a partial line is dropped). */
void rm__kube_lines_free(rm__kube_lines_t *l);

/** The message of a Status object ("" when `j` is not one), for error sentences. */
const char *rm__kube_status_message(const json_t *j);

#endif
