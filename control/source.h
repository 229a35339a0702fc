/* Where the control plane's configuration comes from: the interface every source implements (the file source
 * below; a Kubernetes API source plugs in beside it with the same contract).
 *
 * What a source delivers: whole mesh models (mesh_model.h), each one complete and valid, built by the mesh loader
 * (mesh_load.h) from the source's YAML documents. Never a partial model or a diff.
 *
 * When: its create function delivers the first model synchronously, or fails, so that the control plane never
 * starts on an invalid configuration. After start(), the source's own thread (or none) watches its origin and
 * calls the update callback once per accepted change, in order, never concurrently with itself. A rejected change
 * is logged by the source (event "config_rejected", with file, line, field and reason) and the last good model
 * stays in force: the callback is simply not called.
 *
 * Who owns what: each model passed to the callback (and the initial one) is a new reference that the callee owns
 * and releases with rm_mesh_model_unref(); the source keeps no hold on it. The source owns its thread and its
 * descriptors; stop() joins the thread, and destroy() frees the source. The callback's `arg` stays the caller's. */
#ifndef RINGMESH_CONTROL_SOURCE_H
#define RINGMESH_CONTROL_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mesh_model.h"

/** A pod as a source knows it, for policy selection: its service account and its labels (sorted by key). */
typedef struct st_rm_source_workload_t {
    char *service_account;
    rm_label_t *labels;
    size_t num_labels;
} rm_source_workload_t;

/** Frees what a lookup filled in and zeroes `w`. */
void rm_source_workload_clear(rm_source_workload_t *w);

/** Called on the source's thread with a new reference the callee owns. Must not block for long. */
typedef void (*rm_source_update_cb)(void *arg, rm_mesh_model_t *model);

typedef struct st_rm_source_t rm_source_t;

typedef struct st_rm_source_ops_t {
    const char *name; /* "file", "kubernetes" */
    /** Starts watching; from now on `cb` may be called. Returns 0 or -errno. */
    int (*start)(rm_source_t *src, rm_source_update_cb cb, void *arg);
    /** Stops watching and joins the thread; `cb` is never called after it returns. */
    void (*stop)(rm_source_t *src);
    /** Frees the source (stopped first if needed). */
    void (*destroy)(rm_source_t *src);
    /** Optional (NULL for a source that does not know pods: the file source; the node's own labels are then used).
     *  Looks up pod `name` of namespace `ns`: returns 0 with *out filled (the caller clears it), -ENOENT when the
     *  source does not know that pod, or -ENOMEM. Thread-safe; does not block on the network. */
    int (*lookup_workload)(rm_source_t *src, const char *ns, const char *name, rm_source_workload_t *out);
    /** Optional, with lookup_workload: a counter that changes whenever a lookup's answer may have changed (a pod
     *  added, deleted, relabelled), so that a caller knows when to look again. Thread-safe. */
    uint64_t (*workloads_generation)(rm_source_t *src);
    /** Optional (NULL for a source that does not know namespaces: the file source). The labels of namespace `ns`:
     *  sets *labels to a new reference to an object ({} for none). Answered from the source's cache; a namespace
     *  the cache does not hold yet (created a moment ago) is fetched once from the origin, bounded by a short
     *  timeout. Returns 0, -ENOENT when the origin says there is no such namespace, -EINVAL for a name that cannot
     *  be one, -ETIMEDOUT when the origin did not answer in time, -EIO when it failed (the source logs the reason,
     *  event "namespace_lookup_failed"), or -ENOMEM. Thread-safe; may block up to that timeout. */
    int (*namespace_labels)(rm_source_t *src, const char *ns, json_t **labels);
    /** Optional (NULL for a source without a server). The version of the server the source reads, as last learned
     *  (the Kubernetes source asks at create and then every 10 minutes): returns 0 with major.minor, or -ENOENT
     *  while it is unknown. Thread-safe; never blocks on the network. */
    int (*server_version)(rm_source_t *src, unsigned *major, unsigned *minor);
} rm_source_ops_t;

struct st_rm_source_t {
    const rm_source_ops_t *ops;
};

/** Loads every *.yaml / *.yml file of `dir` (hidden files and subdirectories ignored; Kubernetes ConfigMap
 *  volumes' "..data" symlink layout works) into a model. On failure returns RM_ERR_CONFIG_* and a message naming
 *  the file, line, column and field path in `err`; *out is untouched. */
int rm_mesh_model_load_dir(const char *dir, rm_mesh_model_t **out, char *err, size_t errlen);

/** Creates the file source for `dir` and loads it once; fails (with the message in `err`) when that first load
 *  fails, so the control plane never starts on an invalid configuration. *initial receives the first model
 *  (a reference the caller owns). The watcher (inotify, changes coalesced for 25 ms) runs after start(). */
int rm_source_file_create(const char *dir, rm_source_t **out, rm_mesh_model_t **initial, char *err, size_t errlen);

/** How the Kubernetes source reaches the API and what it reads besides it (docs/control-config.md, "Kubernetes
 *  source"). Zero values take the defaults. */
typedef struct st_rm_source_kube_config_t {
    const char *kubeconfig;      /* NULL: the in-cluster configuration */
    const char *sa_dir;          /* in-cluster files (NULL: /var/run/secrets/kubernetes.io/serviceaccount) */
    const char *mesh_config;     /* the MeshConfig document's file (a mounted ConfigMap key); NULL: the defaults */
    unsigned timeout_ms;         /* bound on one API request, and on how long a watch may overrun (0: 30 s) */
    unsigned sync_timeout_ms;    /* how long create waits for the first lists (0: 60 s) */
    unsigned watch_seconds;      /* watches' timeoutSeconds (0: 300) */
    unsigned debounce_ms;        /* a rebuild waits until the objects were quiet this long (0: 100 ms), at most 1 s */
    unsigned lookup_timeout_ms;  /* bound on a namespace fetched for a lookup and on GET /version (0: 2 s) */
    unsigned version_refresh_ms; /* how often /version is asked again (0: 10 minutes; 10 s while unknown) */
    /* Optional: asked while create waits for the first lists (every 200 ms at most); nonzero gives up the wait
     * (create then fails with -ECANCELED), so that a process told to stop while the API is away does stop. */
    int (*should_stop)(void *arg);
    void *should_stop_arg;
} rm_source_kube_config_t;

/** Creates the Kubernetes source: connects, lists Namespaces, Pods, Services, EndpointSlices, the
 *  CustomResourceDefinitions and the policy resources whose CRDs exist, asks the server's /version (a failure
 *  leaves it unknown, logged, and is retried), and builds the first model (*initial, the
 *  caller's reference). Fails, with the reason in `err`, when the configuration or the MeshConfig is invalid or the
 *  first lists do not complete within the sync timeout (or -ECANCELED when should_stop said so meanwhile). The
 * informers keep watching from then on; changes are delivered after start(). */
int rm_source_kube_create(const rm_source_kube_config_t *cfg, rm_source_t **out, rm_mesh_model_t **initial, char *err,
                          size_t errlen);

#endif
