/* The snapshot: everything a connection needs that can change at run time (configuration, SVID, policies), published
 * by the control thread or the file watcher as one immutable, reference-counted object and read by the workers.
 *
 * Lifetime: whoever holds a reference may read a snapshot; the proxy holds one for the published snapshot, and a
 * connection holds one for the snapshot it started with until it closes. Publication (rm_proxy_publish) swaps the
 * pointer and drops the old publication reference only after every worker has finished the loop iteration in which
 * it may have loaded the old pointer, so a worker may read the published snapshot without a reference until its
 * current loop iteration ends (rm_snapshot_current). */
#ifndef RINGMESH_SNAPSHOT_H
#define RINGMESH_SNAPSHOT_H

#include "proxy_authz.h"
#include "proxy_config.h"
#include "ringmesh/tls.h"
#include "ringmesh/xds.h"
#include "workload_meta.h"

#include <stdatomic.h>
#include <stdint.h>

struct st_rm_proxy_t;

/** A destination map pushed by the control plane, shared by the snapshots that use it. */
typedef struct st_rm_dest_table_t {
    atomic_int refs;
    rm_destination_t *dests; /* owned, with their identity strings */
    size_t num;
    struct st_rm_dest_routes_t **routes; /* owned: one per Service with routes (dest_routes.h); dests point at them */
    size_t num_routes;
} rm_dest_table_t;

void rm_dest_table_ref(rm_dest_table_t *t);
void rm_dest_table_unref(rm_dest_table_t *t);

/** Everything a connection needs that can change at run time, published as one immutable, reference-counted
 *  object: a connection keeps the snapshot it started with until it closes.
 *
 *  The first snapshot owns the configuration loaded from the file. Later ones (SVID rotation, pushes from the
 *  control plane) are derived from it: `cfg` then points at `derived_cfg`, a copy of the base's configuration
 *  whose destinations and inbound settings are replaced, and `base` keeps the file's strings alive. */
typedef struct st_rm_snapshot_t {
    atomic_int refs;
    rm_proxy_config_t *cfg;
    rm_tls_ctx_t *client_ctx; /* NULL when no SVID is held (none configured yet, or expired) */
    rm_tls_ctx_t *server_ctx;
    struct st_rm_snapshot_t *base; /* NULL for the first snapshot */
    rm_proxy_config_t derived_cfg; /* used when base != NULL; its pointers are borrowed except port_modes */
    rm_dest_table_t *dest_table;   /* derived: the pushed destinations, or NULL for the file's */
    rm_port_mode_t *owned_port_modes;
    const char *no_tls_reason; /* why client_ctx is NULL, for the refusal log ("svid_expired", ...) */
    rm_authz_t *authz;         /* the policies in force for inbound connections; NULL: none received */
    int authz_required;        /* a control plane is configured: with authz NULL, inbound connections are refused */
    char versions[RM_XDS_NUM_TYPES][64]; /* of the pushed resources in force (ringmesh/xds.h order), "" when none */
    rm_workload_table_t *workloads;      /* the pushed WorkloadMap; NULL: none (workload_meta.h) */
} rm_snapshot_t;

void rm_snapshot_ref(rm_snapshot_t *s);
void rm_snapshot_unref(rm_snapshot_t *s);

/** Makes a snapshot derived from `base` (a first snapshot): the file's configuration with `dests` (NULL: the
 *  file's destinations), the given inbound settings and TLS contexts (references are taken; NULL allowed).
 *  Returns NULL when out of memory. */
typedef struct st_rm_snapshot_params_t {
    rm_dest_table_t *dests;
    int have_inbound_mode;
    rm_mtls_mode_t inbound_mode;
    uint32_t connect_timeout_ms;    /* 0: the file's */
    uint32_t idle_timeout_ms;       /* 0: the file's */
    int access_log;                 /* the mesh's accessLog.enabled, over the file's; -1: none pushed */
    double access_log_sample;       /* the mesh's accessLog.sampleRate (with access_log 1; 0 means 1) */
    rm_workload_table_t *workloads; /* a reference is taken; NULL allowed. Its access-log override wins. */
    /* the pushed metrics settings: istio names 0 (the file's), 1 (off) or 2 (on); max series and expiry 0: the file's
     */
    int metrics_istio_names;
    uint32_t metrics_max_series;
    uint32_t metrics_expiry_ms;
    rm_tls_ctx_t *client_ctx, *server_ctx;
    const char *no_tls_reason;
    const char (*versions)[64]; /* RM_XDS_NUM_TYPES of them, or NULL */
    rm_authz_t *authz;          /* a reference is taken; NULL allowed */
    int authz_required;
    const rm_peer_port_mode_t *port_modes; /* pushed per-port modes, over the file's */
    size_t num_port_modes;
} rm_snapshot_params_t;
rm_snapshot_t *rm_snapshot_derive(rm_snapshot_t *base, const rm_snapshot_params_t *params);

/** The published snapshot with a new reference the caller releases with rm_snapshot_unref(). Any thread. */
rm_snapshot_t *rm_snapshot_acquire(struct st_rm_proxy_t *p);
/** The published snapshot without a reference: valid on a worker thread until the end of its current loop
 *  iteration (rm_proxy_publish waits for that), for decisions that must see the newest policies. */
rm_snapshot_t *rm_snapshot_current(struct st_rm_proxy_t *p);
/** Replaces the published snapshot (taking over the caller's reference) and drops the old one once every worker
 *  has moved past any use of it. Connections keep the snapshot they started with. Call from one thread at a
 *  time (serialised by publish_lock); may block for up to one worker tick. */
void rm_proxy_publish(struct st_rm_proxy_t *p, rm_snapshot_t *snap);

#endif
