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

#include "mesh_model.h"

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

#endif
