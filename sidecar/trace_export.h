/* The span exporter: spans finished on the worker threads go through a bounded lock-free queue to one background
 * thread that sends them in batches to an OpenTelemetry collector as OTLP over HTTP (protobuf, POST /v1/traces),
 * with libcurl.
 *
 * Configuration is OpenTelemetry's standard environment, read once at start (docs/tracing.md):
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), else OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces";
 *   OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TRACES_HEADERS ("k=v,k2=v2", values percent-decoded);
 *   OTEL_EXPORTER_OTLP_TIMEOUT / OTEL_EXPORTER_OTLP_TRACES_TIMEOUT (ms per request, default 10000);
 *   OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES; RINGMESH_POD_NAME and RINGMESH_POD_NAMESPACE give
 *   k8s.pod.name and k8s.namespace.name;
 *   OTEL_BSP_MAX_QUEUE_SIZE (2048), OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512), OTEL_BSP_SCHEDULE_DELAY (5000 ms),
 *   OTEL_BSP_EXPORT_TIMEOUT (30000 ms: one batch's tries, retries included);
 *   OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG (ringmesh/trace_sampler.h);
 *   OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn tracing off.
 * Without an endpoint there is no exporter and no thread, and the proxy neither records spans nor touches trace
 * headers.
 *
 * Failure never reaches the workers: rm_trace_export_submit never blocks and never allocates; a full queue drops
 * the span and counts it. An export answered 429, 502, 503 or 504, or that could not connect, is tried again after
 * an exponential backoff with jitter (or the server's Retry-After), at most RM_TRACE_EXPORT_MAX_TRIES times and
 * within OTEL_BSP_EXPORT_TIMEOUT; then its spans are dropped and counted. */
#ifndef RINGMESH_TRACE_EXPORT_H
#define RINGMESH_TRACE_EXPORT_H

#include "ringmesh/trace_sampler.h"

#include <stddef.h>
#include <stdint.h>

/** Tries of one batch (the first and the retries). */
#define RM_TRACE_EXPORT_MAX_TRIES 5
/** Bytes of attribute text a span keeps (values past it are cut). */
#define RM_SPAN_TEXT_MAX 768

/** A span's kind, with OTLP's numbers. */
typedef enum { RM_SPAN_KIND_SERVER = 2, RM_SPAN_KIND_CLIENT = 3 } rm_span_kind_t;

/** The string attributes a span may carry (OpenTelemetry HTTP semantic conventions, and ringmesh's own). */
typedef enum {
    RM_SPAN_METHOD = 0,            /* http.request.method */
    RM_SPAN_PATH,                  /* url.path */
    RM_SPAN_QUERY,                 /* url.query */
    RM_SPAN_SCHEME,                /* url.scheme */
    RM_SPAN_ROUTE,                 /* http.route */
    RM_SPAN_SERVER_ADDRESS,        /* server.address */
    RM_SPAN_CLIENT_ADDRESS,        /* client.address */
    RM_SPAN_PEER_ADDRESS,          /* network.peer.address */
    RM_SPAN_PROTOCOL_VERSION,      /* network.protocol.version */
    RM_SPAN_USER_AGENT,            /* user_agent.original */
    RM_SPAN_SOURCE_PRINCIPAL,      /* ringmesh.source_principal */
    RM_SPAN_DESTINATION_PRINCIPAL, /* ringmesh.destination_principal */
    RM_SPAN_AUTHZ_DECISION,        /* ringmesh.authz.decision */
    RM_SPAN_AUTHZ_POLICY,          /* ringmesh.authz.policy */
    RM_SPAN_NUM_STR
} rm_span_str_t;

/** One finished span, by value (it is copied into a queue slot). The all-zero value is an empty span. */
typedef struct st_rm_span_t {
    uint8_t trace_id[16], span_id[8], parent_span_id[8];
    uint8_t has_parent;
    uint8_t kind;  /* rm_span_kind_t */
    uint8_t flags; /* W3C trace flags */
    uint8_t error; /* status ERROR */
    uint16_t server_port, peer_port;
    uint16_t status_code;                                        /* http.response.status_code; 0: none */
    int16_t grpc_status;                                         /* rpc.grpc.status_code; -1: none */
    uint64_t start_ns, end_ns;                                   /* Unix epoch nanoseconds */
    uint16_t str_off[RM_SPAN_NUM_STR], str_len[RM_SPAN_NUM_STR]; /* into text; length 0: absent */
    uint16_t text_len;
    char text[RM_SPAN_TEXT_MAX];
} rm_span_t;

/** Sets string attribute `a` to s[0, n), cut to what room is left in the span's text. */
void rm_span_set_str(rm_span_t *s, rm_span_str_t a, const char *v, size_t n);
/** The span's name: "METHOD route" when a route is known, else "METHOD" (OpenTelemetry HTTP conventions), into
 *  out[0, cap) with a NUL. Returns its length. */
size_t rm_span_name(const rm_span_t *s, char *out, size_t cap);

typedef struct st_rm_trace_exporter_t rm_trace_exporter_t;

/** Reads the environment and, when an endpoint is configured, starts the exporter thread. `workload_name`, when
 *  not NULL, names the service when OTEL_SERVICE_NAME does not (its answer "unknown" or NULL means no name, and
 *  "ringmesh-proxy" is used); it is called on the exporter thread. Logs what it configured (trace_export_config)
 *  and any variable it had to ignore, naming it. Returns 0 (tracing on or off: see rm_trace_exporter), or a
 *  negative errno when the thread or libcurl could not start. Call once. */
int rm_trace_export_start(const char *(*workload_name)(void *ctx), void *ctx);

/** The running exporter, or NULL when tracing is off. Safe on any thread. */
rm_trace_exporter_t *rm_trace_exporter(void);

/** The sampler configured with the exporter. */
const rm_trace_sampler_t *rm_trace_export_sampler(const rm_trace_exporter_t *x);

/** Queues a copy of `span` for export. Never blocks, never allocates. Returns 0, or -ENOBUFS when the queue is
 *  full (the span is dropped and counted as queue_full). */
int rm_trace_export_submit(rm_trace_exporter_t *x, const rm_span_t *span);

/** Counts a span that could not be kept at all (a connection's span table was full) as dropped, queue_full. */
void rm_trace_export_count_dropped(void);

/** Appends the exporter's metrics (ringmesh_proxy_spans_exported_total, ringmesh_proxy_spans_dropped_total{reason},
 *  ringmesh_proxy_trace_exports_total{result}) to buf[o, len) in Prometheus text; returns the new offset
 *  (rm_textf's rules). The counters are process-wide and read 0 when tracing is off. */
size_t rm_trace_export_metrics(char *buf, size_t len, size_t o);

/** Stops the exporter: spans queued until now are sent within RM_TRACE_EXPORT_FLUSH_MS (one try each, a request in
 *  flight is cut at the bound), what is left is dropped and counted as shutdown, the thread is joined and
 *  everything freed. Call after the workers have stopped submitting. Safe when tracing is off. */
void rm_trace_export_stop(void);
#define RM_TRACE_EXPORT_FLUSH_MS 5000

#endif
