/* Who a workload is, in the words of Istio's metric labels and OpenTelemetry's resource: this proxy's own workload,
 * and the workloads of the peers it talks to, looked up by pod address. Read on the worker threads for every
 * connection and request that is measured, so lookups take no lock and allocate nothing. */
#ifndef RINGMESH_WORKLOAD_META_H
#define RINGMESH_WORKLOAD_META_H

#include "proxy_config.h"

struct st_rm_snapshot_t;

/** One workload. Every string is non-NULL; what is not known is "unknown", as Istio's labels say it. */
typedef struct st_rm_workload_meta_t {
    const char *name;      /* the Kubernetes workload: Deployment, StatefulSet, DaemonSet, Job, CronJob, or the pod */
    const char *namespace; /* its namespace */
    const char *app;       /* app.kubernetes.io/name, else the app label */
    const char *version;   /* app.kubernetes.io/version, else the version label */
    const char *principal; /* its SPIFFE ID */
} rm_workload_meta_t;

/** This proxy's workload, as of snapshot `s`. Never NULL. */
const rm_workload_meta_t *rm_workload_self(const struct st_rm_snapshot_t *s);
/** The workload whose pod has address `addr` (the port is ignored), or NULL when `s` knows none. */
const rm_workload_meta_t *rm_workload_peer(const struct st_rm_snapshot_t *s, const rm_sockaddr_t *addr);

#endif
