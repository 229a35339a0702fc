/* Istio's standard request and connection metrics in the proxy (docs/metrics.md): their families, labels and
 * buckets over the registry of ringmesh/metrics.h, one shard per worker. Names carry "ringmesh_" or, with
 * metrics.istioNames, Istio's own "istio_" so that dashboards built for Istio need no edit. */
#ifndef RINGMESH_MESH_METRICS_H
#define RINGMESH_MESH_METRICS_H

#include "proxy_config.h"
#include "ringmesh/metrics.h"

#include <stdint.h>

/** The families, in registry order. */
enum {
    RM_MM_REQUESTS = 0,   /* requests_total */
    RM_MM_DURATION,       /* request_duration_milliseconds */
    RM_MM_REQUEST_BYTES,  /* request_bytes */
    RM_MM_RESPONSE_BYTES, /* response_bytes */
    RM_MM_TCP_OPENED,     /* tcp_connections_opened_total */
    RM_MM_TCP_CLOSED,     /* tcp_connections_closed_total */
    RM_MM_TCP_SENT,       /* tcp_sent_bytes_total */
    RM_MM_TCP_RECEIVED,   /* tcp_received_bytes_total */
    RM_MM_NUM_FAMILIES
};

/** The labels of the request families, in Istio's order (TCP families have all but response_code and
 *  grpc_response_status). */
enum {
    RM_ML_REPORTER = 0,
    RM_ML_SOURCE_WORKLOAD,
    RM_ML_SOURCE_WORKLOAD_NAMESPACE,
    RM_ML_SOURCE_PRINCIPAL,
    RM_ML_SOURCE_APP,
    RM_ML_SOURCE_VERSION,
    RM_ML_DESTINATION_WORKLOAD,
    RM_ML_DESTINATION_WORKLOAD_NAMESPACE,
    RM_ML_DESTINATION_PRINCIPAL,
    RM_ML_DESTINATION_APP,
    RM_ML_DESTINATION_VERSION,
    RM_ML_DESTINATION_SERVICE,
    RM_ML_DESTINATION_SERVICE_NAME,
    RM_ML_DESTINATION_SERVICE_NAMESPACE,
    RM_ML_REQUEST_PROTOCOL,
    RM_ML_RESPONSE_CODE,
    RM_ML_GRPC_RESPONSE_STATUS,
    RM_ML_RESPONSE_FLAGS,
    RM_ML_CONNECTION_SECURITY_POLICY,
    RM_ML_NUM
};

/** One label set: every value non-NULL (the strings are not kept past the call that records it). */
typedef struct st_rm_mesh_labels_t {
    const char *v[RM_ML_NUM];
} rm_mesh_labels_t;

/** Creates the registry with one shard per worker. Returns 0 or -ENOMEM. */
int rm_mesh_metrics_new(rm_metrics_t **out, unsigned num_workers);
/** Applies the limits of `cfg` (metrics.maxSeriesPerMetric, metrics.seriesExpiry) and removes the shard's expired
 *  series. On the shard's worker, from its tick. */
void rm_mesh_metrics_tick(rm_metrics_t *m, rm_metrics_shard_t *sh, const rm_proxy_config_t *cfg, uint64_t now_ms);
/** Appends the families in `fmt`, named as `cfg` says (metrics.istioNames). */
size_t rm_mesh_metrics_render(rm_metrics_t *m, const rm_proxy_config_t *cfg, rm_metrics_format_t fmt, char *buf,
                              size_t len, size_t o);

/** One request that ended: requests_total, its duration and its body sizes. */
void rm_mesh_metrics_request(rm_metrics_shard_t *sh, const rm_mesh_labels_t *l, double duration_ms,
                             uint64_t request_bytes, uint64_t response_bytes, uint64_t now_ms);
/** A connection established to both ends. */
void rm_mesh_metrics_tcp_opened(rm_metrics_shard_t *sh, const rm_mesh_labels_t *l, uint64_t now_ms);
/** A connection closed: `sent` bytes to the downstream peer (the response direction), `received` from it. */
void rm_mesh_metrics_tcp_closed(rm_metrics_shard_t *sh, const rm_mesh_labels_t *l, uint64_t sent, uint64_t received,
                                uint64_t now_ms);

/** Splits a Kubernetes service host ("name.ns", "name.ns.svc", "name.ns.svc.cluster.local", with or without a
 *  ":port") into Istio's destination_service ("name.ns.svc.cluster.local"), _name and _namespace. Returns 0, or -1
 *  (outputs untouched) when `host` names no service that way. */
int rm_mesh_service_of_host(const char *host, size_t host_len, char *svc, size_t svc_len, char *name, size_t name_len,
                            char *ns, size_t ns_len);
/** The same from an Istio outbound SNI ("outbound_.PORT_._.HOST"). */
int rm_mesh_service_of_sni(const char *sni, char *svc, size_t svc_len, char *name, size_t name_len, char *ns,
                           size_t ns_len);

#endif
