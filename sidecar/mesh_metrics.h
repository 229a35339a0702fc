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

/** Envoy's response flags a request can carry here. */
typedef enum {
    RM_MESH_FLAGS_NONE = 0, /* "-" */
    RM_MESH_FLAGS_DPE,      /* the proxy answered: a downstream protocol error */
    RM_MESH_FLAGS_UC,       /* the upstream went away before the end */
    RM_MESH_FLAGS_DC,       /* the downstream went away before the end */
    RM_MESH_FLAGS_UF,       /* the proxy answered 503: the upstream could not be connected to */
} rm_mesh_flags_t;

/** What varies between the requests of one connection: the labels response_code, grpc_response_status,
 *  response_flags and request_protocol. */
typedef struct st_rm_mesh_request_key_t {
    uint16_t status;     /* response_code (0: no response) */
    int32_t grpc_status; /* grpc_response_status; -1: none ("") */
    rm_mesh_flags_t flags;
    uint8_t grpc; /* request_protocol "grpc", else "http" */
} rm_mesh_request_key_t;

/** Label sets of a connection's requests kept with their series, most used first. */
#define RM_MESH_REQUEST_CACHE_WAYS 4

/** A connection's cache of the request series it records into: `base` holds the labels every request of the
 *  connection shares (all but the key's four; filled by the caller once, the strings outliving the connection's
 *  use of the cache), and each way the four families' series of one key, valid while the shard's generation is
 *  the one noted. The all-zero value is an empty cache with no base (base_ready 0). Owned by the connection's
 *  worker; allocates nothing. */
typedef struct st_rm_mesh_request_cache_t {
    rm_mesh_labels_t base;
    uint8_t base_ready; /* base is filled; the caller clears it (rm_mesh_request_cache_reset) when it changes */
    struct {
        uint64_t key; /* 0: empty */
        uint64_t generation;
        rm_metric_series_t *series[4]; /* requests, duration, request bytes, response bytes */
    } ways[RM_MESH_REQUEST_CACHE_WAYS];
} rm_mesh_request_cache_t;

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
/** The same as rm_mesh_metrics_request for the label set cache->base with the key's four labels, through the
 *  connection's cache: when the key was seen on this connection and the shard's generation is unchanged, no hash
 *  lookup, no string compare and no formatting. cache->base_ready must be set. */
void rm_mesh_metrics_request_cached(rm_metrics_shard_t *sh, rm_mesh_request_cache_t *cache,
                                    const rm_mesh_request_key_t *key, double duration_ms, uint64_t request_bytes,
                                    uint64_t response_bytes, uint64_t now_ms);
/** Forgets the cached series and the base labels (the connection's constant labels changed). */
void rm_mesh_request_cache_reset(rm_mesh_request_cache_t *cache);

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
