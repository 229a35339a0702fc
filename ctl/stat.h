/* ringmeshctl stat: the per-workload traffic table, from proxies' /metrics pages (--admin) or from Prometheus
 * (--prometheus). The pieces, each in its own file:
 *   stat_expo.c  a strict parser of the Prometheus text exposition format (0.0.4);
 *   stat_rows.c  the series a table needs, their deltas between two scrapes, the rows and the quantile math;
 *   stat_fetch.c HTTP GETs with libcurl (a proxy's /metrics, Prometheus' /api/v1/query);
 *   stat_prom.c  the table from Prometheus' HTTP API;
 *   stat_cmd.c   the command: flags, the live view, the table and JSON output.
 * Only reporter="destination" series count: each request is measured once, by the proxy that received it. */
#ifndef RINGMESH_CTL_STAT_H
#define RINGMESH_CTL_STAT_H

#include <stddef.h>
#include <stdint.h>

/* ---- the text exposition format (stat_expo.c) ---------------------------------------------------------------- */

#define RM_EXPO_MAX_LABELS 64

/** A label of a sample, its value unescaped. */
typedef struct st_rm_expo_label_t {
    const char *name;
    const char *value;
} rm_expo_label_t;

/** One sample line. The strings live until the callback returns. */
typedef struct st_rm_expo_sample_t {
    const char *name;
    const rm_expo_label_t *labels;
    size_t num_labels;
    double value;
    int has_timestamp;
    int64_t timestamp_ms;
    size_t line; /* 1-based */
} rm_expo_sample_t;

/** Called for each sample; a non-zero return stops the parse and is returned by rm_expo_parse(). */
typedef int (*rm_expo_sample_cb)(void *ctx, const rm_expo_sample_t *s);

/** Parses `len` bytes of Prometheus text exposition (version 0.0.4), calling `cb` for each sample in order.
 *  Strict: names, label syntax, the escapes \\ \" \n in label values, duplicate label names, values (floats, NaN,
 *  +Inf, -Inf), timestamps and TYPE lines are checked. Returns 0; -1 with "line N: what is wrong" in `err`; or the
 *  callback's non-zero value (then `err` is left to the callback). */
int rm_expo_parse(const char *text, size_t len, rm_expo_sample_cb cb, void *ctx, char *err, size_t errlen);

/* ---- series, deltas, rows (stat_rows.c) ---------------------------------------------------------------------- */

/** The metrics a table reads, without their prefix. */
typedef enum en_rm_stat_metric_t {
    RM_STAT_REQUESTS,        /* requests_total */
    RM_STAT_DURATION_BUCKET, /* request_duration_milliseconds_bucket */
    RM_STAT_TCP_OPENED,      /* tcp_connections_opened_total */
    RM_STAT_TCP_CLOSED,      /* tcp_connections_closed_total */
    RM_STAT_NUM_METRICS
} rm_stat_metric_t;

/** Where the names come from: ringmesh_* (the default) or istio_* (metrics.istioNames: true). */
typedef enum en_rm_stat_prefix_t {
    RM_STAT_PREFIX_RINGMESH,
    RM_STAT_PREFIX_ISTIO,
    RM_STAT_NUM_PREFIXES
} rm_stat_prefix_t;

/** The name prefixes, indexed by rm_stat_prefix_t: "ringmesh_", "istio_". */
extern const char *const rm_stat_prefixes[RM_STAT_NUM_PREFIXES];

/** How a request series counts (requests_total only). */
#define RM_STAT_SUCCESS 0x1 /* HTTP: status 100..499; gRPC (request_protocol="grpc"): grpc_response_status="0" */
#define RM_STAT_DENY    0x2 /* response_code="403", or gRPC with grpc_response_status="7" */
#define RM_STAT_MTLS    0x4 /* connection_security_policy="mutual_tls" */

/** One series of one scrape that a table needs. */
typedef struct st_rm_stat_series_t {
    char *key;       /* the metric's full name and every label: the same series in the next scrape has the same key */
    char *namespace; /* destination_workload_namespace ("unknown" when absent) */
    char *workload;  /* destination_workload ("unknown" when absent) */
    uint8_t metric;  /* rm_stat_metric_t */
    uint8_t prefix;  /* rm_stat_prefix_t */
    uint8_t flags;   /* RM_STAT_SUCCESS | RM_STAT_DENY | RM_STAT_MTLS */
    double le;       /* a bucket's upper bound */
    double value;
    size_t line; /* where the page gives it (1-based) */
} rm_stat_series_t;

/** One scrape of one proxy: its reporter="destination" series of the metrics above, both prefixes. */
typedef struct st_rm_stat_scrape_t {
    rm_stat_series_t *series;
    size_t num, cap;
    size_t per_prefix[RM_STAT_NUM_PREFIXES]; /* how many series each prefix has */
    int timestamped;                         /* every series carried a timestamp */
    int64_t timestamp_ms;                    /* the latest of them */
    int sorted;
} rm_stat_scrape_t;

/** Parses a /metrics page into `s` (empty or zeroed). A series the table reads that the page gives twice (same name,
 *  same labels) is an error: its increase would be taken between two different samples. On success the series are
 *  sorted by key. Returns 0, or -1 with the error in `err` ("line N: ..."); `s` is then freed by the caller. */
int rm_stat_scrape_parse(rm_stat_scrape_t *s, const char *text, size_t len, char *err, size_t errlen);
/** Frees what `s` holds and zeroes it. */
void rm_stat_scrape_free(rm_stat_scrape_t *s);
/** The prefix whose series a scrape is read with: ringmesh_ when it has any, else istio_ when it has any, else
 *  ringmesh_. */
rm_stat_prefix_t rm_stat_scrape_prefix(const rm_stat_scrape_t *s);

/** A histogram bucket: upper bound and its (cumulative) count or rate. */
typedef struct st_rm_stat_bucket_t {
    double le;
    double count;
} rm_stat_bucket_t;

/** One workload's row. Rates are per second. */
typedef struct st_rm_stat_row_t {
    char *namespace, *workload;
    double requests;           /* requests in the interval (--admin) or the window (--prometheus) */
    double req_rate;           /* requests per second */
    double success_rate;       /* successful requests per second (see RM_STAT_SUCCESS) */
    double deny_rate;          /* denied requests per second (see RM_STAT_DENY) */
    double mtls_rate;          /* requests per second over mutual TLS */
    double tcp_open;           /* connections open: opened minus closed, at the end of the interval */
    rm_stat_bucket_t *buckets; /* the duration histogram's bucket rates, summed by upper bound (--admin) */
    size_t num_buckets, cap_buckets;
    double p50_ms, p99_ms; /* NaN when there is no request */
} rm_stat_row_t;

/** The rows of a table. The all-zero value is an empty table. */
typedef struct st_rm_stat_table_t {
    rm_stat_row_t *rows;
    size_t num, cap;
} rm_stat_table_t;

/** The row of (namespace, workload), added (all zero, quantiles NaN) if missing. NULL when out of memory. */
rm_stat_row_t *rm_stat_table_row(rm_stat_table_t *t, const char *ns, const char *workload);

/** Adds to `t` what one proxy did between two of its scrapes: each series' increase (its whole value after a
 *  counter reset, or when it is new in `after`) divided by the time between the scrapes: the difference of their
 *  timestamps when both were timestamped, else `elapsed_ms` as measured. Open connections come from `after`. Only
 *  rows of namespace `ns` when it is not NULL. Both scrapes are read with `after`'s prefix. Returns 0 or -ENOMEM. */
int rm_stat_table_add_scrapes(rm_stat_table_t *t, rm_stat_scrape_t *before, rm_stat_scrape_t *after,
                              uint64_t elapsed_ms, const char *ns);

/** Sorts the rows by namespace and workload and computes p50/p99 from each row's buckets (rows whose quantiles are
 *  already set, from Prometheus, keep them). */
void rm_stat_table_finish(rm_stat_table_t *t);

/** Frees the rows and zeroes `t`. */
void rm_stat_table_free(rm_stat_table_t *t);

/** The q-quantile of a histogram as Prometheus' histogram_quantile() computes it: linear interpolation inside the
 *  bucket the rank falls in (from 0 for the first bucket when its bound is positive), the +Inf bucket answered by
 *  the highest finite bound. `b` is sorted in place by bound and made monotonic. NaN when there is no +Inf bucket,
 *  fewer than two buckets or no observation; -Inf/+Inf for q < 0 / q > 1. */
double rm_stat_quantile(double q, rm_stat_bucket_t *b, size_t n);

/* ---- fetching (stat_fetch.c) --------------------------------------------------------------------------------- */

/** A body read from an HTTP endpoint (malloc'd, NUL-terminated). */
typedef struct st_rm_stat_body_t {
    char *data;
    size_t len;
    long status;
} rm_stat_body_t;

/** GETs `url` (timeouts: 5 s to connect, 15 s in all; at most 64 MiB). Returns 0 with the status and body (whatever
 *  the status), or -1 with the reason in `err` ("connection refused", ...). Gives up early, with -1, when
 *  `*stop` becomes non-zero (Ctrl-C). */
int rm_stat_get(const char *url, const char *accept, const volatile int *stop, rm_stat_body_t *out, char *err,
                size_t errlen);

/** Frees a body. */
void rm_stat_body_free(rm_stat_body_t *b);

/* ---- Prometheus (stat_prom.c) -------------------------------------------------------------------------------- */

/** Fills `t` from the Prometheus server at `base_url` (http://host:9090, any path prefix kept): the rates over the
 *  last `window_ms` at `eval_time` (Unix seconds), p50/p99 from histogram_quantile(), only namespace `ns` when not
 *  NULL. Returns 0, or -1 with a message naming the URL in `err`. */
int rm_stat_prometheus(rm_stat_table_t *t, const char *base_url, uint32_t window_ms, double eval_time, const char *ns,
                       const volatile int *stop, char *err, size_t errlen);

#endif
