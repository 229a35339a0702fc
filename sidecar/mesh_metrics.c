/* Istio's standard metrics over the registry (mesh_metrics.h). */
#include "mesh_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const request_labels[RM_ML_NUM] = {
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
};

/* Istio's TCP metrics: the request labels without response_code and grpc_response_status. */
#define TCP_NUM_LABELS (RM_ML_NUM - 2)
static const char *const tcp_labels[TCP_NUM_LABELS] = {
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
};

/* Envoy's default histogram buckets, which Istio's standard histograms use (milliseconds and bytes alike). */
static const double default_buckets[] = {0.5,  1,    5,     10,    25,    50,     100,    250,     500,    1000,
                                         2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};
#define NUM_BUCKETS (sizeof(default_buckets) / sizeof(default_buckets[0]))

static const rm_metric_def_t families[RM_MM_NUM_FAMILIES] = {
    [RM_MM_REQUESTS] = {"requests_total", "Requests handled by the proxy (Istio's requests_total).", RM_METRIC_COUNTER,
                        request_labels, RM_ML_NUM, NULL, 0},
    [RM_MM_DURATION] = {"request_duration_milliseconds",
                        "Duration of requests, from the decided request head to the end of the response.",
                        RM_METRIC_HISTOGRAM, request_labels, RM_ML_NUM, default_buckets, NUM_BUCKETS},
    [RM_MM_REQUEST_BYTES] = {"request_bytes", "HTTP request body sizes.", RM_METRIC_HISTOGRAM, request_labels,
                             RM_ML_NUM, default_buckets, NUM_BUCKETS},
    [RM_MM_RESPONSE_BYTES] = {"response_bytes", "HTTP response body sizes.", RM_METRIC_HISTOGRAM, request_labels,
                              RM_ML_NUM, default_buckets, NUM_BUCKETS},
    [RM_MM_TCP_OPENED] = {"tcp_connections_opened_total", "TCP connections opened.", RM_METRIC_COUNTER, tcp_labels,
                          TCP_NUM_LABELS, NULL, 0},
    [RM_MM_TCP_CLOSED] = {"tcp_connections_closed_total", "TCP connections closed.", RM_METRIC_COUNTER, tcp_labels,
                          TCP_NUM_LABELS, NULL, 0},
    [RM_MM_TCP_SENT] = {"tcp_sent_bytes_total",
                        "Bytes sent to the downstream peer of TCP connections (the response direction).",
                        RM_METRIC_COUNTER, tcp_labels, TCP_NUM_LABELS, NULL, 0},
    [RM_MM_TCP_RECEIVED] = {"tcp_received_bytes_total",
                            "Bytes received from the downstream peer of TCP connections (the request direction).",
                            RM_METRIC_COUNTER, tcp_labels, TCP_NUM_LABELS, NULL, 0},
};

int rm_mesh_metrics_new(rm_metrics_t **out, unsigned num_workers)
{
    return rm_metrics_new(out, families, RM_MM_NUM_FAMILIES, num_workers);
}

void rm_mesh_metrics_tick(rm_metrics_t *m, rm_metrics_shard_t *sh, const rm_proxy_config_t *cfg, uint64_t now_ms)
{
    rm_metrics_set_limits(m, cfg->metrics_max_series, cfg->metrics_expiry_ms);
    rm_metrics_expire(sh, now_ms);
}

size_t rm_mesh_metrics_render(rm_metrics_t *m, const rm_proxy_config_t *cfg, rm_metrics_format_t fmt, char *buf,
                              size_t len, size_t o)
{
    return rm_metrics_render(m, cfg->metrics_istio_names ? "istio_" : "ringmesh_", fmt, buf, len, o);
}

void rm_mesh_metrics_request(rm_metrics_shard_t *sh, const rm_mesh_labels_t *l, double duration_ms,
                             uint64_t request_bytes, uint64_t response_bytes, uint64_t now_ms)
{
    rm_metrics_add(sh, RM_MM_REQUESTS, l->v, 1, now_ms);
    rm_metrics_observe(sh, RM_MM_DURATION, l->v, duration_ms, now_ms);
    rm_metrics_observe(sh, RM_MM_REQUEST_BYTES, l->v, (double)request_bytes, now_ms);
    rm_metrics_observe(sh, RM_MM_RESPONSE_BYTES, l->v, (double)response_bytes, now_ms);
}

static const char *const flag_names[] = {"-", "DPE", "UC", "DC", "UF"};

/* A key as one non-zero number: status (16 bits), grpc status + 1 (32 bits, -1 as 0), flags (3), protocol (1). */
static uint64_t pack_key(const rm_mesh_request_key_t *k)
{
    return (uint64_t)k->status | (uint64_t)(uint32_t)(k->grpc_status + 1) << 16 | (uint64_t)(k->flags & 7) << 48 |
           (uint64_t)(k->grpc != 0) << 51 | 1ull << 52;
}

static const unsigned request_families[4] = {RM_MM_REQUESTS, RM_MM_DURATION, RM_MM_REQUEST_BYTES, RM_MM_RESPONSE_BYTES};

void rm_mesh_metrics_request_cached(rm_metrics_shard_t *sh, rm_mesh_request_cache_t *cache,
                                    const rm_mesh_request_key_t *key, double duration_ms, uint64_t request_bytes,
                                    uint64_t response_bytes, uint64_t now_ms)
{
    uint64_t k = pack_key(key), gen = rm_metrics_generation(sh);
    unsigned i;

    for (i = 0; i < RM_MESH_REQUEST_CACHE_WAYS; i++)
        if (cache->ways[i].key == k && cache->ways[i].generation == gen)
            break;
    if (i == RM_MESH_REQUEST_CACHE_WAYS) {
        /* a miss: the label set in full, its four series looked up once, in the last way */
        rm_mesh_labels_t l = cache->base;
        char code[8], grpc[12];
        snprintf(code, sizeof(code), "%u", (unsigned)key->status);
        l.v[RM_ML_RESPONSE_CODE] = code;
        l.v[RM_ML_GRPC_RESPONSE_STATUS] = "";
        if (key->grpc_status >= 0) {
            snprintf(grpc, sizeof(grpc), "%d", (int)key->grpc_status);
            l.v[RM_ML_GRPC_RESPONSE_STATUS] = grpc;
        }
        l.v[RM_ML_RESPONSE_FLAGS] = flag_names[key->flags & 7];
        l.v[RM_ML_REQUEST_PROTOCOL] = key->grpc ? "grpc" : "http";
        i = RM_MESH_REQUEST_CACHE_WAYS - 1;
        cache->ways[i].key = k;
        cache->ways[i].generation = gen;
        for (unsigned f = 0; f < 4; f++)
            cache->ways[i].series[f] = rm_metrics_series(sh, request_families[f], l.v, now_ms);
        /* a series the lookups could not have (no memory): record nothing, and look again next time */
        for (unsigned f = 0; f < 4; f++)
            if (cache->ways[i].series[f] == NULL)
                cache->ways[i].key = 0;
    }
    if (i > 0) {
        /* move to the front: the keys a connection uses most stay */
        __typeof__(cache->ways[0]) w = cache->ways[i];
        memmove(&cache->ways[1], &cache->ways[0], i * sizeof(cache->ways[0]));
        cache->ways[0] = w;
    }
    rm_metrics_series_add(sh, RM_MM_REQUESTS, cache->ways[0].series[0], 1, now_ms);
    rm_metrics_series_observe(sh, RM_MM_DURATION, cache->ways[0].series[1], duration_ms, now_ms);
    rm_metrics_series_observe(sh, RM_MM_REQUEST_BYTES, cache->ways[0].series[2], (double)request_bytes, now_ms);
    rm_metrics_series_observe(sh, RM_MM_RESPONSE_BYTES, cache->ways[0].series[3], (double)response_bytes, now_ms);
}

void rm_mesh_request_cache_reset(rm_mesh_request_cache_t *cache)
{
    memset(cache, 0, sizeof(*cache));
}

/* The TCP label values: the request ones without response_code and grpc_response_status. */
static void tcp_values(const rm_mesh_labels_t *l, const char **v)
{
    memcpy(v, l->v, RM_ML_RESPONSE_CODE * sizeof(*v));
    v[RM_ML_RESPONSE_CODE] = l->v[RM_ML_RESPONSE_FLAGS];
    v[RM_ML_RESPONSE_CODE + 1] = l->v[RM_ML_CONNECTION_SECURITY_POLICY];
}

void rm_mesh_metrics_tcp_opened(rm_metrics_shard_t *sh, const rm_mesh_labels_t *l, uint64_t now_ms)
{
    const char *v[TCP_NUM_LABELS];
    tcp_values(l, v);
    rm_metrics_add(sh, RM_MM_TCP_OPENED, v, 1, now_ms);
}

void rm_mesh_metrics_tcp_closed(rm_metrics_shard_t *sh, const rm_mesh_labels_t *l, uint64_t sent, uint64_t received,
                                uint64_t now_ms)
{
    const char *v[TCP_NUM_LABELS];
    tcp_values(l, v);
    rm_metrics_add(sh, RM_MM_TCP_CLOSED, v, 1, now_ms);
    rm_metrics_add(sh, RM_MM_TCP_SENT, v, sent, now_ms);
    rm_metrics_add(sh, RM_MM_TCP_RECEIVED, v, received, now_ms);
}

/* A DNS label as Kubernetes names a Service or namespace: 1..63 of [a-z0-9-]. */
static int is_dns_label(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

int rm_mesh_service_of_host(const char *host, size_t host_len, char *svc, size_t svc_len, char *name, size_t name_len,
                            char *ns, size_t ns_len)
{
    size_t n = host_len, nl, nsl;
    const char *dot, *rest;

    for (size_t i = 0; i < host_len; i++)
        if (host[i] == ':') {
            n = i;
            break;
        }
    if ((dot = memchr(host, '.', n)) == NULL)
        return -1;
    nl = (size_t)(dot - host);
    rest = dot + 1;
    const char *dot2 = memchr(rest, '.', (size_t)(host + n - rest));
    nsl = dot2 != NULL ? (size_t)(dot2 - rest) : (size_t)(host + n - rest);
    if (!is_dns_label(host, nl) || !is_dns_label(rest, nsl))
        return -1;
    if (dot2 != NULL) {
        size_t tl = (size_t)(host + n - (dot2 + 1));
        if (!(tl == 3 && memcmp(dot2 + 1, "svc", 3) == 0) &&
            !(tl == 17 && memcmp(dot2 + 1, "svc.cluster.local", 17) == 0))
            return -1;
    }
    if (nl >= name_len || nsl >= ns_len || nl + nsl + 20 > svc_len)
        return -1;
    snprintf(name, name_len, "%.*s", (int)nl, host);
    snprintf(ns, ns_len, "%.*s", (int)nsl, rest);
    snprintf(svc, svc_len, "%s.%s.svc.cluster.local", name, ns);
    return 0;
}

int rm_mesh_service_of_sni(const char *sni, char *svc, size_t svc_len, char *name, size_t name_len, char *ns,
                           size_t ns_len)
{
    const char *p;
    if (sni == NULL || strncmp(sni, "outbound_.", 10) != 0 || (p = strstr(sni + 10, "_._.")) == NULL)
        return -1;
    p += 4;
    return rm_mesh_service_of_host(p, strlen(p), svc, svc_len, name, name_len, ns, ns_len);
}
