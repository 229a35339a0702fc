/* Sidecar injection: one Pod (JSON, as the API server sends it) in, a decision and an RFC 6902 JSONPatch out. The
 * same code answers the admission webhook (inject_webhook.h) and `ringmeshctl inject`; docs/injection.md says what
 * is added and why.
 *
 * Decision, in order: a Pod with spec.hostNetwork is never injected; one already injected (annotation
 * ringmesh.io/status, or a container named ringmesh-proxy or ringmesh-init) is left as it is, so that injecting
 * twice is injecting once; annotation ringmesh.io/inject "true" injects, "false" does not, anything else is an
 * invalid annotation; with no annotation, the namespace label ringmesh.io/inject=enabled injects. Every ringmesh.io
 * annotation is then validated: an invalid one refuses the pod, naming the annotation and the value (with
 * failOpenOnInvalidAnnotation the pod is admitted uninjected with that sentence as a warning).
 *
 * Nothing here touches a file, the network or global state: the functions are safe on any thread. */
#ifndef RINGMESH_CONTROL_INJECT_H
#define RINGMESH_CONTROL_INJECT_H

#include <jansson.h>
#include <stddef.h>

#include "ringmesh/config.h"

#define RM_INJECT_ANNOTATION_PREFIX "ringmesh.io/"
#define RM_INJECT_STATUS_ANNOTATION "ringmesh.io/status"
#define RM_INJECT_NAMESPACE_LABEL   "ringmesh.io/inject"
#define RM_INJECT_PROXY_NAME        "ringmesh-proxy"
#define RM_INJECT_INIT_NAME         "ringmesh-init"
#define RM_INJECT_ADMIN_PORT        15021
#define RM_INJECT_NATIVE_MINOR      29 /* Kubernetes 1.29: native sidecars (restartPolicy Always) on by default */
#define RM_INJECT_MSG_MAX           512u

typedef enum { RM_INJECT_NATIVE_AUTO = 0, RM_INJECT_NATIVE_ON, RM_INJECT_NATIVE_OFF } rm_inject_native_t;

/** The InjectorConfig document (docs/injection.md), converted. Strings are owned; the resources are JSON objects
 *  (a Kubernetes ResourceRequirements) owned by the config; exclusion lists are validated comma-joined strings
 *  ("" for none). */
typedef struct st_rm_inject_config_t {
    char *name;
    char *mesh_namespace;
    char *control_address; /* host:port */
    char *trust_domain;
    char *image;
    char *image_pull_policy; /* Always, IfNotPresent or Never */
    char *proxy_log_level;
    json_t *proxy_resources;
    json_t *init_resources;
    unsigned proxy_uid;
    rm_inject_native_t native_sidecar;
    int rewrite_app_probes;
    unsigned token_expiration_seconds;
    char *exclude_outbound_ip_ranges;
    char *exclude_outbound_ports;
    char *exclude_inbound_ports;
    int fail_open_on_invalid_annotation;
} rm_inject_config_t;

/** Fills `c` with the defaults. Returns 0 or -ENOMEM (then rm_inject_config_dispose() is still safe). */
int rm_inject_config_defaults(rm_inject_config_t *c);

/** Reads one InjectorConfig document from data[0..len) over the defaults in `c` (filled by
 *  rm_inject_config_defaults()). `file` names it in errors: "FILE:LINE:COLUMN: spec.FIELD: what is wrong".
 *  Returns 0 or an RM_ERR_CONFIG_* code with `err` set; on failure `c` may hold some converted fields and is
 *  disposed by the caller as usual. */
int rm_inject_config_parse(const char *file, const char *data, size_t len, rm_inject_config_t *c,
                           rm_config_error_t *err);

/** rm_inject_config_defaults() then rm_inject_config_parse() of the file at `path` (at most 1 MiB). */
int rm_inject_config_load(const char *path, rm_inject_config_t *c, rm_config_error_t *err);

/** Frees what `c` holds and zeroes it. */
void rm_inject_config_dispose(rm_inject_config_t *c);

typedef enum {
    RM_INJECT_PATCHED = 0, /* injected: patch and pod set */
    RM_INJECT_SKIPPED,     /* admitted unchanged: reason says why (empty patch) */
    RM_INJECT_REFUSED,     /* refused: reason names the annotation and value, or what is wrong with the pod */
} rm_inject_outcome_t;

/** What the cluster tells the injector about the pod's surroundings. */
typedef struct st_rm_inject_env_t {
    const json_t *namespace_labels;  /* the namespace's labels (an object), or NULL for none */
    unsigned kube_major, kube_minor; /* the API server's version; 0.0 when unknown (classic sidecar on auto) */
} rm_inject_env_t;

typedef struct st_rm_inject_result_t {
    rm_inject_outcome_t outcome;
    char reason[RM_INJECT_MSG_MAX];
    char warning[RM_INJECT_MSG_MAX]; /* "" or a warning for the user (kubectl prints admission warnings) */
    json_t *patch;                   /* a JSON array, [] unless PATCHED */
    json_t *pod;                     /* the pod after the patch (a copy of the input unless PATCHED); NULL if REFUSED */
    int native;                      /* PATCHED: the proxy is a native sidecar */
} rm_inject_result_t;

/** Decides and, when it injects, builds the patched pod and the patch that makes it from `pod`. `pod` is not
 *  changed. Returns 0 with `res` filled (free it with rm_inject_result_dispose()), or -ENOMEM. */
int rm_inject_pod(const rm_inject_config_t *cfg, const json_t *pod, const rm_inject_env_t *env,
                  rm_inject_result_t *res);

/** Frees what `res` holds. */
void rm_inject_result_dispose(rm_inject_result_t *res);

/** The RFC 6902 operations (add, remove, replace) that turn `from` into `to`, appended to `patch`: objects are
 *  compared key by key, arrays of the same length element by element, other differences replaced whole.
 *  Returns 0 or -ENOMEM. */
int rm_inject_diff(const json_t *from, const json_t *to, json_t *patch);

/** Parses "MAJOR.MINOR" (a leading "v" and a "+..." or "-..." tail allowed, as /version's gitVersion, and a minor
 *  such as "29+" as /version's minor on some providers). Returns 0 or -EINVAL. */
int rm_inject_parse_kube_version(const char *s, unsigned *major, unsigned *minor);

/* ---------------------------------------------------------------------------------------------------------
 * admission.k8s.io/v1 AdmissionReview, as the Kubernetes API server sends it to a mutating webhook.
 * ------------------------------------------------------------------------------------------------------- */

/** The namespace's labels: sets *labels to a new reference to an object (or NULL: none known). Returns 0 or -errno
 *  (the review is then answered with an error, and the API server applies the webhook's failurePolicy). */
typedef int (*rm_inject_namespace_labels_fn)(void *arg, const char *namespace_, json_t **labels);

/** The API server's version. Returns 0, or -errno when unknown (then 0.0: classic sidecar on auto). */
typedef int (*rm_inject_kube_version_fn)(void *arg, unsigned *major, unsigned *minor);

typedef struct st_rm_inject_review_ctx_t {
    const rm_inject_config_t *config;
    rm_inject_namespace_labels_fn namespace_labels;
    void *namespace_labels_arg;
    rm_inject_kube_version_fn kube_version;
    void *kube_version_arg;
} rm_inject_review_ctx_t;

/** What one review came to, for the log. */
typedef struct st_rm_inject_review_info_t {
    char uid[128], namespace_[64], name[256];
    rm_inject_outcome_t outcome;
    int malformed; /* the review itself could not be read */
    char reason[RM_INJECT_MSG_MAX];
} rm_inject_review_info_t;

/** Answers one AdmissionReview body. A review that can be read gets HTTP 200 and an AdmissionReview whose response
 *  echoes request.uid: allowed with a base64 JSONPatch (patchType JSONPatch) when injected, allowed without one when
 *  not (warnings when there is something to say), or allowed false with status 403 and the reason when refused.
 *  An operation other than CREATE or an object other than a Pod is allowed unchanged. A review that cannot be read
 *  (not JSON, not an admission.k8s.io/v1 AdmissionReview, no request.uid or request.object) gets HTTP 400 and an
 *  AdmissionReview with allowed false and status 400 naming what is wrong: the API server counts any answer but 200
 *  as a failed call and applies the webhook's failurePolicy. *body is a new NUL-terminated JSON text (free()).
 *  Returns 0, or -ENOMEM (answer 500). */
int rm_inject_review(const rm_inject_review_ctx_t *ctx, const char *req, size_t len, int *http_status, char **body,
                     rm_inject_review_info_t *info);

#endif
