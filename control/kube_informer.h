/* An informer: one kind of Kubernetes object kept in a local cache by listing it, then watching from the list's
 * resourceVersion, as the API concepts documentation describes.
 *
 * - Lists are paginated (limit 500, continue); a continue token that expired (410) restarts the list from the
 *   beginning. A list replaces the cache as a whole.
 * - Watches ask for bookmarks (allowWatchBookmarks=true) and a server-side timeout, resume from the last
 *   resourceVersion seen, and on 410 Gone (an ERROR event or the HTTP status) list again.
 * - Failures (transport, 5xx, a stalled watch, a bad answer) are logged and retried after a capped exponential
 *   backoff with full jitter; a success resets it. Nothing here is ever fatal.
 *
 * The cache is a jansson object keyed "namespace/name" (cluster-scoped objects: "name") whose values are the
 * objects with kind and apiVersion filled in. It is read and written under the lock the owner gives, and the
 * owner's `changed` callback runs under that lock after every change, with the old and the new object (either may
 * be NULL; both NULL after a list replaced the whole cache). */
#ifndef RINGMESH_CONTROL_KUBE_INFORMER_H
#define RINGMESH_CONTROL_KUBE_INFORMER_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>

#include "kube_client.h"

#define RM_KUBE_LIST_LIMIT      500
#define RM_KUBE_BACKOFF_BASE_MS 200
#define RM_KUBE_BACKOFF_MAX_MS  10000

typedef struct st_rm_kube_informer_t rm_kube_informer_t;

/** Runs under the owner's lock after each change of the cache. Must not block. */
typedef void (*rm_kube_changed_cb)(void *arg, rm_kube_informer_t *inf, const json_t *old_obj, const json_t *new_obj);

typedef struct st_rm_kube_informer_config_t {
    const char *kind;        /* "Pod" */
    const char *api_version; /* "v1", "discovery.k8s.io/v1" */
    const char *path; /* the collection, all namespaces: "/api/v1/pods" (may carry a query, e.g. a fieldSelector) */
    unsigned watch_seconds; /* the watch's timeoutSeconds (0: 300); a jitter of up to a fifth is added */
    unsigned timeout_ms;    /* how long past watch_seconds a watch may stay open before it counts as stalled */
    pthread_mutex_t *lock;  /* guards the cache */
    pthread_cond_t *wake;   /* signalled (under lock) when the informer has synced or fails */
    rm_kube_changed_cb changed;
    void *arg;
} rm_kube_informer_config_t;

/** Starts the informer's thread (it lists at once). Returns 0 or -errno. */
int rm_kube_informer_start(rm_kube_client_t *client, const rm_kube_informer_config_t *cfg, rm_kube_informer_t **out);

/** Stops the thread (an open request is cancelled within a second) and frees the informer and its cache. The lock
 *  must not be held. NULL is fine. */
void rm_kube_informer_stop(rm_kube_informer_t *inf);

/** The cache (borrowed; read it under the lock). */
json_t *rm_kube_informer_cache(rm_kube_informer_t *inf);

/** Whether a first list has completed (read under the lock). */
int rm_kube_informer_synced(const rm_kube_informer_t *inf);

/** The last error ("" when none), for a failure to start (read under the lock). */
const char *rm_kube_informer_last_error(const rm_kube_informer_t *inf);

const char *rm_kube_informer_kind(const rm_kube_informer_t *inf);
const char *rm_kube_informer_api_version(const rm_kube_informer_t *inf);

/** How many lists (first one included) and watch restarts the informer made, for tests and metrics. */
void rm_kube_informer_counts(rm_kube_informer_t *inf, uint64_t *lists, uint64_t *watches);

/* ---- parts, visible for the unit tests ---- */

/** The delay before retry number `attempt` (0 for the first retry): a number drawn from [0, min(max_ms,
 *  base_ms * 2^attempt)] with `rnd` (a uniformly random 32-bit value). */
unsigned rm__kube_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, uint32_t rnd);

/** The cache key of `obj`: "namespace/name" or "name"; NULL when metadata.name is missing. `buf` holds it. */
const char *rm__kube_object_key(const json_t *obj, char *buf, size_t len);

#endif
