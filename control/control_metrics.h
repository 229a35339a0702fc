/* The control plane's own metrics, exposed in the Prometheus text format on its monitoring port (default 15014,
 * admin_http.h). docs/metrics.md, section "Control plane", lists every family with its meaning.
 *
 * Most numbers live where they happen (the gRPC server's counters under its mutex, the CA's and the webhook's
 * certificates) and are read at scrape time. What lives here: the configuration sources' error counters, which every
 * source thread bumps without a lock and which are process-wide because a process has one source, and the page. */
#ifndef RINGMESH_CONTROL_METRICS_H
#define RINGMESH_CONTROL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ca.h"
#include "control_histogram.h"
#include "grpc_server.h"
#include "inject_webhook.h"

/* ---- the configuration sources' errors ---- */

typedef enum { RM_CONTROL_SOURCE_FILE, RM_CONTROL_SOURCE_KUBERNETES, RM_CONTROL_NUM_SOURCES } rm_control_source_t;

/** What went wrong in a source: the `kind` label of ringmesh_control_source_errors_total. */
typedef enum {
    RM_SOURCE_ERR_PARSE,          /* a document is not YAML, or not of its schema (RM_ERR_CONFIG_PARSE) */
    RM_SOURCE_ERR_VALIDATION,     /* a document's field has a value the mesh refuses */
    RM_SOURCE_ERR_IO,             /* a file could not be read */
    RM_SOURCE_ERR_WATCH_FAILED,   /* a watch broke (the directory's inotify watch; an API watch), retried */
    RM_SOURCE_ERR_LIST_FAILED,    /* an API list failed, retried */
    RM_SOURCE_ERR_RELIST,         /* 410 Gone: the watch's resourceVersion (or a list's continue token) expired */
    RM_SOURCE_ERR_OBJECT_REFUSED, /* one API object was refused and skipped, the rest used */
    RM_SOURCE_ERR_LOOKUP_FAILED,  /* a namespace fetched for the injector could not be had */
    RM_SOURCE_NUM_ERRS
} rm_source_error_kind_t;

/** The label value of `kind` ("parse", "validation", ...). */
const char *rm_source_error_kind_name(rm_source_error_kind_t kind);

/** The kind of a rejected configuration from its error code: RM_ERR_CONFIG_PARSE -> parse, RM_ERR_CONFIG_IO -> io,
 *  anything else -> validation. */
rm_source_error_kind_t rm_source_error_kind_of(int code);

/** Counts one error of `kind` in `source`. Lock-free; any thread. */
void rm_control_source_error(rm_control_source_t source, rm_source_error_kind_t kind);

/** The count so far. */
uint64_t rm_control_source_errors(rm_control_source_t source, rm_source_error_kind_t kind);

/* ---- the page ---- */

/** What /metrics reads. Everything must outlive the admin server; set it before the server starts. */
typedef struct st_rm_control_metrics_ctx_t {
    rm_control_server_t *srv;
    const rm_ca_t *ca;
    rm_inject_webhook_t *webhook;            /* NULL: no webhook (its expiry gauge is left out) */
    rm_control_source_t source;              /* the source in use: only its error series are exposed */
    const struct st_rm_jwks_fetcher_t *jwks; /* jwksUri fetches (jwks_fetch.h); NULL: none */
} rm_control_metrics_ctx_t;

/** An rm_admin_metrics_cb: writes the exposition into buf (at most len bytes) and returns its length. `arg` is an
 *  rm_control_metrics_ctx_t. */
size_t rm_control_metrics_render(void *arg, char *buf, size_t len);

#endif
