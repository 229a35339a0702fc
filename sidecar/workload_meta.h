/* Who a workload is, in the words of Istio's metric labels and OpenTelemetry's resource: this proxy's own workload,
 * and the workloads of the peers it talks to, looked up by pod address. Read on the worker threads for every
 * connection and request that is measured, so lookups take no lock and allocate nothing.
 *
 * Where it comes from: the control plane's WorkloadMap (proto/ringmesh/v1/discovery.proto), parsed on the control
 * thread into an immutable, reference-counted table that snapshots share (like rm_dest_table_t). This proxy's own
 * workload is the pushed one; what the push leaves empty (or everything, without a control plane) comes from the
 * proxy's file (`workload:`), else from the environment the injector sets (RINGMESH_POD_NAME,
 * RINGMESH_POD_NAMESPACE, RINGMESH_SERVICE_ACCOUNT, the labels of control.node.labels and of the downward-API
 * labels file), else is "unknown". */
#ifndef RINGMESH_WORKLOAD_META_H
#define RINGMESH_WORKLOAD_META_H

#include "proxy_config.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct st_rm_snapshot_t;

/** One workload. Every string is non-NULL; what is not known is "unknown", as Istio's labels say it. */
typedef struct st_rm_workload_meta_t {
    const char *name;      /* the Kubernetes workload: Deployment, StatefulSet, DaemonSet, Job, CronJob, or the pod */
    const char *namespace; /* its namespace */
    const char *app;       /* app.kubernetes.io/name, else the app label */
    const char *version;   /* app.kubernetes.io/version, else the version label */
    const char *principal; /* its SPIFFE ID */
} rm_workload_meta_t;

/** What a pod's ringmesh.io/access-log annotation says about its access log (ringmesh.v1.AccessLogOverride). */
typedef enum {
    RM_WORKLOAD_ACCESS_LOG_MESH = 0, /* nothing: the mesh's (or the file's) setting */
    RM_WORKLOAD_ACCESS_LOG_ON = 1,
    RM_WORKLOAD_ACCESS_LOG_OFF = 2,
} rm_workload_access_log_t;

/** This proxy's workload, as of snapshot `s` (NULL: before any). Never NULL. */
const rm_workload_meta_t *rm_workload_self(const struct st_rm_snapshot_t *s);
/** The workload whose pod has address `addr` (the port is ignored; an IPv4-mapped IPv6 address is its IPv4
 *  address), or NULL when `s` knows none. */
const rm_workload_meta_t *rm_workload_peer(const struct st_rm_snapshot_t *s, const rm_sockaddr_t *addr);

/** The one workload whose pods run as `principal` (a SPIFFE ID), or NULL when `s` knows none or more than one: what
 *  names the peer of an outbound connection made to a service's address rather than to its pod. */
const rm_workload_meta_t *rm_workload_peer_by_principal(const struct st_rm_snapshot_t *s, const char *principal);

/** Sets the workload this proxy is when nothing was pushed, from `cfg` and the environment (see above). Call once,
 *  before the workers start; rm_workload_self() returns "unknown" everywhere until then. Returns 0 or -ENOMEM. */
int rm_workload_meta_init(const rm_proxy_config_t *cfg);

/** A pushed WorkloadMap, parsed. Immutable once made; shared by the snapshots that use it. */
typedef struct st_rm_workload_table_t rm_workload_table_t;

/** At most this many peer workloads and addresses in one WorkloadMap. */
#define RM_WORKLOAD_MAX_PEERS     65536
#define RM_WORKLOAD_MAX_ADDRESSES 262144

/** Parses a serialized WorkloadMap. Returns 0 with *out (one reference), or -EINVAL / -ENOMEM with the reason in
 *  `err` (a peer address that is not an IP literal, one address for two workloads, too many entries). */
int rm_workload_table_parse(const uint8_t *value, size_t len, rm_workload_table_t **out, char *err, size_t errlen);
void rm_workload_table_ref(rm_workload_table_t *t);
/** NULL is fine. */
void rm_workload_table_unref(rm_workload_table_t *t);

/** This proxy's workload as pushed in `t`, its gaps filled as rm_workload_self() says. */
const rm_workload_meta_t *rm_workload_table_self(const rm_workload_table_t *t);
/** What the pushed workload's pod annotation says about the access log. */
rm_workload_access_log_t rm_workload_table_access_log(const rm_workload_table_t *t);
/** The peer at `addr` in `t`, or NULL. No lock, no allocation. */
const rm_workload_meta_t *rm_workload_table_find(const rm_workload_table_t *t, const rm_sockaddr_t *addr);
/** The one workload of `t` whose principal is `principal`, or NULL (none, or several). No lock, no allocation. */
const rm_workload_meta_t *rm_workload_table_find_principal(const rm_workload_table_t *t, const char *principal);
/** How many peer workloads and addresses `t` holds (for /config_dump). */
size_t rm_workload_table_num_peers(const rm_workload_table_t *t);
size_t rm_workload_table_num_addresses(const rm_workload_table_t *t);
/** The i-th peer workload (i < rm_workload_table_num_peers) and its addresses (*addrs, *num), for /config_dump. */
const rm_workload_meta_t *rm_workload_table_peer_at(const rm_workload_table_t *t, size_t i, char *const **addrs,
                                                    size_t *num);

/** Appends the workloads `s` knows to buf[o..len) as JSON ({"self":{...},"peers":[...],"peers_total":N}; at most
 *  RM_WORKLOAD_DUMP_MAX_PEERS peers listed) for /config_dump. Returns the new offset (rm_textf's contract). */
#define RM_WORKLOAD_DUMP_MAX_PEERS 1000
size_t rm_workload_config_dump(const struct st_rm_snapshot_t *s, char *buf, size_t len, size_t o);

#endif
