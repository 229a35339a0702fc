/* The span exporter (trace_export.h): the queue the workers push into, the thread that batches and POSTs, the
 * retries, the counters. */
#include "trace_export_internal.h"

#include "ringmesh/log.h"
#include "ringmesh/textbuf.h"
#include "ringmesh/trace_context.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_QUEUE_SIZE      2048
#define DEFAULT_BATCH_SIZE      512
#define DEFAULT_DELAY_MS        5000
#define DEFAULT_EXPORT_TIMEOUT  30000
#define DEFAULT_REQUEST_TIMEOUT 10000
#define BACKOFF_FIRST_MS        250   /* the first retry waits about this long, each next one twice as long */
#define BACKOFF_MAX_MS          8000  /* and never longer than this */
#define RETRY_AFTER_MAX_MS      30000 /* a Retry-After longer than this is cut to it */

/* One slot of the queue (a bounded multi-producer ring with a sequence number per slot: a producer claims a
 * position with one compare-and-swap on tail and publishes the slot by storing its sequence; the one consumer
 * reads in order). */
typedef struct {
    _Atomic size_t seq;
    rm_span_t span;
} slot_t;

struct st_rm_trace_exporter_t {
    _Alignas(64) _Atomic size_t tail; /* next position producers claim (its own cache line: the workers write it) */
    slot_t *slots;
    size_t mask;
    uint64_t stop_deadline_ms;
    pthread_t thread;
    size_t batch_size;
    uint64_t delay_ms, export_timeout_ms;
    size_t head; /* next position the thread reads (the thread's own) */
    uint64_t request_timeout_ms;
    char *endpoint;
    struct curl_slist *headers;
    CURL *curl;
    char *service_name; /* OTEL_SERVICE_NAME or service.name of OTEL_RESOURCE_ATTRIBUTES */
    const char *(*workload_name)(void *ctx);
    void *workload_ctx;
    rm_span_t *batch;
    rm_trace_sampler_t sampler;
    rm__trace_resource_t resource; /* without service.name, which may change (the workload's name) */
    int efd;                       /* wakes the thread: a batch is full, or stop */
    _Atomic int stopping;
};

/* Process-wide counters (metrics). */
static struct {
    _Atomic uint64_t exported, dropped_queue_full, dropped_export_failed, dropped_shutdown;
    _Atomic uint64_t exports_ok, exports_retry, exports_failed;
} counters;

static _Atomic(rm_trace_exporter_t *) running;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

rm_trace_exporter_t *rm_trace_exporter(void)
{
    return atomic_load_explicit(&running, memory_order_acquire);
}

const rm_trace_sampler_t *rm_trace_export_sampler(const rm_trace_exporter_t *x)
{
    return &x->sampler;
}

int rm_trace_export_submit(rm_trace_exporter_t *x, const rm_span_t *span)
{
    size_t pos = atomic_load_explicit(&x->tail, memory_order_relaxed);
    slot_t *s;
    for (;;) {
        s = &x->slots[pos & x->mask];
        size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&x->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            atomic_fetch_add_explicit(&counters.dropped_queue_full, 1, memory_order_relaxed);
            return -ENOBUFS;
        } else {
            pos = atomic_load_explicit(&x->tail, memory_order_relaxed);
        }
    }
    s->span = *span;
    atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
    /* the span that fills a batch wakes the thread (one write per batch, not per span) */
    if ((pos + 1) % x->batch_size == 0) {
        uint64_t one = 1;
        ssize_t w = write(x->efd, &one, sizeof(one));
        (void)w; /* a full eventfd counter still wakes the thread */
    }
    return 0;
}

void rm_trace_export_count_dropped(void)
{
    atomic_fetch_add_explicit(&counters.dropped_queue_full, 1, memory_order_relaxed);
}

/* Takes up to `max` spans from the queue into x->batch. Returns how many. */
static size_t queue_take(rm_trace_exporter_t *x, size_t max)
{
    size_t n = 0;
    while (n < max) {
        slot_t *s = &x->slots[x->head & x->mask];
        size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (seq != x->head + 1)
            break;
        x->batch[n++] = s->span;
        atomic_store_explicit(&s->seq, x->head + x->mask + 1, memory_order_release);
        x->head++;
    }
    return n;
}

static size_t queue_depth(rm_trace_exporter_t *x)
{
    return atomic_load_explicit(&x->tail, memory_order_relaxed) - x->head;
}

/* Waits up to `ms` for the eventfd (a full batch or stop). */
static void wait_wake(rm_trace_exporter_t *x, uint64_t ms)
{
    struct pollfd p = {.fd = x->efd, .events = POLLIN};
    if (poll(&p, 1, ms > 60000 ? 60000 : (int)ms) > 0) {
        uint64_t v;
        ssize_t r = read(x->efd, &v, sizeof(v));
        (void)r;
    }
}

/* libcurl's progress callback: a request in flight is cut once the shutdown bound has passed. */
static int progress_cb(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    rm_trace_exporter_t *x = ctx;
    return atomic_load(&x->stopping) && now_ms() >= x->stop_deadline_ms;
}

/* One POST of body[0, len). Returns the HTTP status, or 0 when no answer came (connect failure, timeout, cut);
 * *retry_after_ms is the server's Retry-After when it gave one, else 0. */
static long post(rm_trace_exporter_t *x, const uint8_t *body, size_t len, uint64_t timeout_ms, uint64_t *retry_after_ms)
{
    CURL *c = x->curl;
    long code = 0;
    *retry_after_ms = 0;
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_off_t ra = 0;
        if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after_ms = (uint64_t)ra * 1000 > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : (uint64_t)ra * 1000;
    } else {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_DEBUG, "trace_export_error");
        rm_log_str(&l, "endpoint", x->endpoint);
        rm_log_str(&l, "error", curl_easy_strerror(rc));
        rm_log_end(&l);
    }
    return code;
}

static size_t discard_body(char *p, size_t size, size_t n, void *ctx)
{
    return size * n;
}

/* How long to wait before try number `tries` + 1: 250 ms doubling, up to 8 s, with full jitter in its upper
 * half (so that many proxies do not retry in step). */
static uint64_t backoff_ms(int tries)
{
    uint64_t base = BACKOFF_FIRST_MS << (tries > 6 ? 6 : tries - 1);
    uint8_t r[8];
    if (base > BACKOFF_MAX_MS)
        base = BACKOFF_MAX_MS;
    if (rm_trace_random_ids(NULL, r) != 0)
        return base;
    return base / 2 + (r[0] | (uint64_t)r[1] << 8) % (base / 2 + 1);
}

static int retryable(long code)
{
    return code == 0 || code == 429 || code == 502 || code == 503 || code == 504;
}

/* Builds the resource's attribute list for an export: service.name first, then the rest. */
static void resource_for_export(rm_trace_exporter_t *x, rm__trace_resource_t *r, char **keys, char **values)
{
    const char *name = x->service_name;
    if (name == NULL && x->workload_name != NULL) {
        name = x->workload_name(x->workload_ctx);
        if (name != NULL && strcmp(name, "unknown") == 0)
            name = NULL;
    }
    keys[0] = "service.name";
    values[0] = (char *)(name != NULL ? name : "ringmesh-proxy");
    for (size_t i = 0; i < x->resource.num; i++) {
        keys[1 + i] = x->resource.keys[i];
        values[1 + i] = x->resource.values[i];
    }
    r->keys = keys;
    r->values = values;
    r->num = 1 + x->resource.num;
}

/* Sends x->batch[0, n): tries until a final answer, the tries or the time run out (the shutdown bound when
 * stopping: one try). Counts the outcome. */
static void export_batch(rm_trace_exporter_t *x, size_t n)
{
    uint8_t *body = NULL;
    size_t len = 0;
    rm__trace_resource_t res;
    char *keys[x->resource.num + 1], *values[x->resource.num + 1];
    uint64_t start = now_ms(), budget_end = start + x->export_timeout_ms;

    resource_for_export(x, &res, keys, values);
    if (rm__trace_encode(x->batch, n, &res, &body, &len) != 0) {
        atomic_fetch_add(&counters.exports_failed, 1);
        atomic_fetch_add(&counters.dropped_export_failed, n);
        return;
    }
    for (int tries = 1;; tries++) {
        int stopping = atomic_load(&x->stopping);
        uint64_t now = now_ms(), end = stopping ? x->stop_deadline_ms : budget_end;
        uint64_t retry_after, timeout = x->request_timeout_ms;
        if (now >= end) {
            atomic_fetch_add(&counters.exports_failed, 1);
            atomic_fetch_add(stopping ? &counters.dropped_shutdown : &counters.dropped_export_failed, n);
            break;
        }
        if (timeout > end - now)
            timeout = end - now;
        long code = post(x, body, len, timeout, &retry_after);
        if (code >= 200 && code < 300) {
            atomic_fetch_add(&counters.exports_ok, 1);
            atomic_fetch_add(&counters.exported, n);
            break;
        }
        uint64_t wait = retry_after > 0 ? retry_after : backoff_ms(tries);
        if (!retryable(code) || tries >= RM_TRACE_EXPORT_MAX_TRIES || atomic_load(&x->stopping) ||
            now_ms() + wait >= end) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_WARN, "trace_export_failed");
            rm_log_str(&l, "endpoint", x->endpoint);
            rm_log_int(&l, "status", code);
            rm_log_uint(&l, "tries", (uint64_t)tries);
            rm_log_uint(&l, "spans_dropped", n);
            rm_log_end(&l);
            atomic_fetch_add(&counters.exports_failed, 1);
            atomic_fetch_add(atomic_load(&x->stopping) ? &counters.dropped_shutdown : &counters.dropped_export_failed,
                             n);
            break;
        }
        atomic_fetch_add(&counters.exports_retry, 1);
        /* wait out the backoff; a stop cuts the wait (the next round sees stopping and gives up on this batch) */
        uint64_t until = now_ms() + wait;
        while (!atomic_load(&x->stopping) && now_ms() < until)
            wait_wake(x, until - now_ms());
    }
    free(body);
}

static void *exporter_main(void *arg)
{
    rm_trace_exporter_t *x = arg;
    uint64_t next = now_ms() + x->delay_ms;
    for (;;) {
        uint64_t now = now_ms();
        if (!atomic_load(&x->stopping) && queue_depth(x) < x->batch_size && now < next) {
            wait_wake(x, next - now);
            continue;
        }
        int stopping = atomic_load(&x->stopping);
        /* a full batch goes at once; on the delay, whatever is queued; at stop, everything, within the bound */
        size_t n;
        while ((n = queue_take(x, x->batch_size)) > 0) {
            export_batch(x, n);
            if (!stopping && queue_depth(x) < x->batch_size)
                break;
        }
        if (stopping)
            break;
        next = now_ms() + x->delay_ms;
    }
    return NULL;
}

/* A positive integer variable, or `def` (a value that is not one is reported and ignored). */
static uint64_t env_uint(const char *name, uint64_t def, uint64_t min, uint64_t max)
{
    const char *v = getenv(name);
    char *end;
    if (v == NULL || v[0] == '\0')
        return def;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || v[0] == '-' || n < min || n > max) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "trace_config_ignored");
        rm_log_str(&l, "variable", name);
        rm_log_str(&l, "value", v);
        rm_log_str(&l, "reason", "not a whole number in range: the default is used");
        rm_log_uint(&l, "min", min);
        rm_log_uint(&l, "max", max);
        rm_log_uint(&l, "default", def);
        rm_log_end(&l);
        return def;
    }
    return n;
}

static void warn_list(const char *name, const char *bad, size_t bad_len)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_WARN, "trace_config_ignored");
    rm_log_str(&l, "variable", name);
    rm_log_strn(&l, "entry", bad, bad_len > 64 ? 64 : bad_len);
    rm_log_str(&l, "reason", "an entry is not key=value: it is skipped");
    rm_log_end(&l);
}

static void add_header(void *ctx, char *k, char *v)
{
    rm_trace_exporter_t *x = ctx;
    size_t n = strlen(k) + strlen(v) + 3;
    char *line = malloc(n);
    if (line != NULL) {
        snprintf(line, n, "%s: %s", k, v);
        struct curl_slist *h = curl_slist_append(x->headers, line);
        if (h != NULL)
            x->headers = h;
        free(line);
    }
    free(k);
    free(v);
}

static void add_resource(void *ctx, char *k, char *v)
{
    rm_trace_exporter_t *x = ctx;
    if (strcmp(k, "service.name") == 0) {
        if (x->service_name == NULL) {
            x->service_name = v;
            v = NULL;
        }
        free(k);
        free(v);
        return;
    }
    char **keys = realloc(x->resource.keys, (x->resource.num + 1) * sizeof(char *));
    if (keys != NULL)
        x->resource.keys = keys;
    char **values = realloc(x->resource.values, (x->resource.num + 1) * sizeof(char *));
    if (values != NULL)
        x->resource.values = values;
    if (keys == NULL || values == NULL) {
        free(k);
        free(v);
        return;
    }
    x->resource.keys[x->resource.num] = k;
    x->resource.values[x->resource.num] = v;
    x->resource.num++;
}

/* A resource attribute from the proxy's own environment, unless OTEL_RESOURCE_ATTRIBUTES set it. */
static void resource_from_env(rm_trace_exporter_t *x, const char *key, const char *env)
{
    const char *v = getenv(env);
    if (v == NULL || v[0] == '\0')
        return;
    for (size_t i = 0; i < x->resource.num; i++)
        if (strcmp(x->resource.keys[i], key) == 0)
            return;
    char *k = strdup(key), *val = strdup(v);
    if (k == NULL || val == NULL) {
        free(k);
        free(val);
        return;
    }
    add_resource(x, k, val);
}

static void exporter_free(rm_trace_exporter_t *x)
{
    if (x == NULL)
        return;
    if (x->curl != NULL)
        curl_easy_cleanup(x->curl);
    curl_slist_free_all(x->headers);
    for (size_t i = 0; i < x->resource.num; i++) {
        free(x->resource.keys[i]);
        free(x->resource.values[i]);
    }
    free(x->resource.keys);
    free(x->resource.values);
    free(x->service_name);
    free(x->endpoint);
    free(x->slots);
    free(x->batch);
    if (x->efd >= 0)
        close(x->efd);
    free(x);
}

/* The endpoint: the traces one as is, else the base one with /v1/traces. NULL when neither is set. */
static char *endpoint_from_env(void)
{
    const char *t = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), *b = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (t != NULL && t[0] != '\0')
        return strdup(t);
    if (b == NULL || b[0] == '\0')
        return NULL;
    size_t n = strlen(b), cap = n + sizeof("/v1/traces");
    char *e = malloc(cap);
    if (e == NULL)
        return NULL;
    if (b[n - 1] == '/')
        n--; /* "http://c:4318/" and "http://c:4318" name the same base */
    snprintf(e, cap, "%.*s/v1/traces", (int)n, b);
    return e;
}

static int tracing_disabled(void)
{
    const char *d = getenv("OTEL_SDK_DISABLED"), *e = getenv("OTEL_TRACES_EXPORTER");
    return (d != NULL && strcasecmp(d, "true") == 0) || (e != NULL && strcasecmp(e, "none") == 0);
}

static int exporter_setup(rm_trace_exporter_t *x)
{
    const char *why, *bad;
    size_t bad_len;
    int r;

    if (rm_trace_sampler_set(&x->sampler, getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG"), &why) !=
        0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "trace_config_ignored");
        rm_log_str(&l, "variable", "OTEL_TRACES_SAMPLER");
        rm_log_str(&l, "value", getenv("OTEL_TRACES_SAMPLER"));
        rm_log_str(&l, "argument", getenv("OTEL_TRACES_SAMPLER_ARG"));
        rm_log_str(&l, "reason", why);
        rm_log_end(&l);
    }
    size_t queue = env_uint("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_QUEUE_SIZE, 1, 1u << 20), cap = 1;
    while (cap < queue)
        cap <<= 1; /* the ring wants a power of two: the size is rounded up */
    x->batch_size = env_uint("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_BATCH_SIZE, 1, 1u << 20);
    if (x->batch_size > cap)
        x->batch_size = cap; /* the SDK's rule: a batch is never larger than the queue */
    x->delay_ms = env_uint("OTEL_BSP_SCHEDULE_DELAY", DEFAULT_DELAY_MS, 0, 3600000);
    x->export_timeout_ms = env_uint("OTEL_BSP_EXPORT_TIMEOUT", DEFAULT_EXPORT_TIMEOUT, 1, 3600000);
    const char *tt = getenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
    x->request_timeout_ms =
        env_uint(tt != NULL && tt[0] != '\0' ? "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" : "OTEL_EXPORTER_OTLP_TIMEOUT",
                 DEFAULT_REQUEST_TIMEOUT, 1, 3600000);
    if ((x->slots = calloc(cap, sizeof(*x->slots))) == NULL ||
        (x->batch = calloc(x->batch_size, sizeof(rm_span_t))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        atomic_init(&x->slots[i].seq, i);
    x->mask = cap - 1;

    const char *sn = getenv("OTEL_SERVICE_NAME");
    if (sn != NULL && sn[0] != '\0' && (x->service_name = strdup(sn)) == NULL)
        return -ENOMEM;
    const char *ra = getenv("OTEL_RESOURCE_ATTRIBUTES");
    if (ra != NULL && (r = rm__trace_kv_list_parse(ra, add_resource, x, &bad, &bad_len)) != 0) {
        if (r == -ENOMEM)
            return r;
        warn_list("OTEL_RESOURCE_ATTRIBUTES", bad, bad_len);
    }
    resource_from_env(x, "k8s.pod.name", "RINGMESH_POD_NAME");
    resource_from_env(x, "k8s.namespace.name", "RINGMESH_POD_NAMESPACE");

    x->headers = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
    static const char *const header_vars[] = {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"};
    for (size_t i = 0; i < 2; i++) {
        const char *h = getenv(header_vars[i]);
        if (h != NULL && (r = rm__trace_kv_list_parse(h, add_header, x, &bad, &bad_len)) != 0) {
            if (r == -ENOMEM)
                return r;
            warn_list(header_vars[i], bad, bad_len);
        }
    }
    x->headers = curl_slist_append(x->headers, "Expect:"); /* no 100-continue round trip */
    if (x->headers == NULL || (x->curl = curl_easy_init()) == NULL)
        return -ENOMEM;
    curl_easy_setopt(x->curl, CURLOPT_URL, x->endpoint);
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(x->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(x->curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(x->curl, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(x->curl, CURLOPT_USERAGENT, "ringmesh-proxy/" RM__TRACE_SCOPE_VERSION);
    if ((x->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return -errno;
    return 0;
}

int rm_trace_export_start(const char *(*workload_name)(void *ctx), void *ctx)
{
    int ret;
    rm_trace_exporter_t *x = NULL;
    char *endpoint = endpoint_from_env();

    if (endpoint == NULL || tracing_disabled()) {
        free(endpoint);
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(endpoint);
        return -ENOMEM;
    }
    if ((x = calloc(1, sizeof(*x))) == NULL) {
        free(endpoint);
        ret = -ENOMEM;
        goto Exit;
    }
    x->efd = -1;
    x->endpoint = endpoint;
    x->workload_name = workload_name;
    x->workload_ctx = ctx;
    if ((ret = exporter_setup(x)) != 0)
        goto Exit;
    if ((ret = -pthread_create(&x->thread, NULL, exporter_main, x)) != 0)
        goto Exit;
    atomic_store_explicit(&running, x, memory_order_release);
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, "trace_export_config");
    rm_log_str(&l, "endpoint", x->endpoint);
    rm_log_str(&l, "sampler", rm_trace_sampler_name(&x->sampler));
    if (x->sampler.root == RM_SAMPLER_TRACEIDRATIO) {
        char ratio[32];
        snprintf(ratio, sizeof(ratio), "%g", x->sampler.ratio);
        rm_log_str(&l, "ratio", ratio);
    }
    rm_log_uint(&l, "queue_size", x->mask + 1);
    rm_log_uint(&l, "batch_size", x->batch_size);
    rm_log_uint(&l, "schedule_delay_ms", x->delay_ms);
    rm_log_end(&l);
    x = NULL;
Exit:
    if (x != NULL) {
        exporter_free(x);
        curl_global_cleanup();
    }
    return ret;
}

void rm_trace_export_stop(void)
{
    rm_trace_exporter_t *x = atomic_exchange(&running, NULL);
    if (x == NULL)
        return;
    x->stop_deadline_ms = now_ms() + RM_TRACE_EXPORT_FLUSH_MS;
    atomic_store(&x->stopping, 1);
    uint64_t one = 1;
    ssize_t w = write(x->efd, &one, sizeof(one));
    (void)w;
    pthread_join(x->thread, NULL);
    /* whatever the bound left in the queue */
    size_t left;
    while ((left = queue_take(x, x->batch_size)) > 0)
        atomic_fetch_add(&counters.dropped_shutdown, left);
    exporter_free(x);
    curl_global_cleanup();
}

size_t rm_trace_export_metrics(char *buf, size_t len, size_t o)
{
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_spans_exported_total Spans the trace collector accepted.\n"
                 "# TYPE ringmesh_proxy_spans_exported_total counter\n"
                 "ringmesh_proxy_spans_exported_total %llu\n",
                 (unsigned long long)atomic_load(&counters.exported));
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_spans_dropped_total Spans dropped: the export queue was full, the export "
                 "failed after its retries, or the proxy stopped first.\n"
                 "# TYPE ringmesh_proxy_spans_dropped_total counter\n"
                 "ringmesh_proxy_spans_dropped_total{reason=\"queue_full\"} %llu\n"
                 "ringmesh_proxy_spans_dropped_total{reason=\"export_failed\"} %llu\n"
                 "ringmesh_proxy_spans_dropped_total{reason=\"shutdown\"} %llu\n",
                 (unsigned long long)atomic_load(&counters.dropped_queue_full),
                 (unsigned long long)atomic_load(&counters.dropped_export_failed),
                 (unsigned long long)atomic_load(&counters.dropped_shutdown));
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_trace_exports_total OTLP export requests by result: ok, retry (answered "
                 "429/502/503/504 or unreachable, tried again), failed (dropped).\n"
                 "# TYPE ringmesh_proxy_trace_exports_total counter\n"
                 "ringmesh_proxy_trace_exports_total{result=\"ok\"} %llu\n"
                 "ringmesh_proxy_trace_exports_total{result=\"retry\"} %llu\n"
                 "ringmesh_proxy_trace_exports_total{result=\"failed\"} %llu\n",
                 (unsigned long long)atomic_load(&counters.exports_ok),
                 (unsigned long long)atomic_load(&counters.exports_retry),
                 (unsigned long long)atomic_load(&counters.exports_failed));
    return o;
}
