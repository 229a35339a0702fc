/* The access log's line, sampling and request record (access_log.h). */
#include "access_log.h"

#include "ringmesh/http_path.h"
#include "ringmesh/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

char *rm_access_log_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    if (ms < 0 || gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, size, "-");
        return buf;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

static void log_workload(rm_log_line_t *l, const char *prefix, const rm_workload_meta_t *w)
{
    char key[48];

    snprintf(key, sizeof(key), "%s_workload", prefix);
    rm_log_str(l, key, w != NULL ? w->name : "unknown");
    snprintf(key, sizeof(key), "%s_namespace", prefix);
    rm_log_str(l, key, w != NULL ? w->namespace : "unknown");
    snprintf(key, sizeof(key), "%s_app", prefix);
    rm_log_str(l, key, w != NULL ? w->app : "unknown");
    snprintf(key, sizeof(key), "%s_version", prefix);
    rm_log_str(l, key, w != NULL ? w->version : "unknown");
}

void rm_access_log_write(const rm_access_entry_t *e)
{
    rm_log_line_t l;
    char when[40];
    int http = e->method != NULL;

    rm_log_begin(&l, RM_LOG_INFO, "access");
    rm_log_str(&l, "start_time", rm_access_log_time(e->start_time_ms, when, sizeof(when)));
    rm_log_str(&l, "reporter", e->reporter);
    rm_log_str(&l, "protocol", e->protocol);
    if (http) {
        rm_log_str(&l, "method", e->method);
        rm_log_str(&l, "path", e->path);
        rm_log_str(&l, "authority", e->authority);
        rm_log_int(&l, "response_code", e->response_code);
        if (e->grpc_status >= 0)
            rm_log_int(&l, "grpc_status", e->grpc_status);
    }
    rm_log_str(&l, "response_flags", e->response_flags != NULL ? e->response_flags : "-");
    rm_log_uint(&l, "bytes_received", e->bytes_received);
    rm_log_uint(&l, "bytes_sent", e->bytes_sent);
    rm_log_uint(&l, "duration", e->duration_ms);
    if (http) {
        rm_log_str(&l, "x_forwarded_for", e->x_forwarded_for);
        rm_log_str(&l, "user_agent", e->user_agent);
        rm_log_str(&l, "request_id", e->request_id);
    }
    rm_log_addr(&l, "upstream_host", e->upstream != NULL ? (const struct sockaddr *)&e->upstream->ss : NULL);
    rm_log_addr(&l, "downstream_remote_address",
                e->downstream != NULL ? (const struct sockaddr *)&e->downstream->ss : NULL);
    rm_log_str(&l, "destination_service", e->destination_service);
    rm_log_str(&l, "source_principal", e->source_principal);
    rm_log_str(&l, "destination_principal", e->destination_principal);
    log_workload(&l, "source", e->source);
    log_workload(&l, "destination", e->destination);
    rm_log_str(&l, "connection_security_policy", e->connection_security_policy);
    if (http)
        rm_log_str(&l, "trace_id", e->trace_id);
    rm_log_str(&l, "authz_decision", e->authz_decision);
    rm_log_str(&l, "authz_policy", e->authz_policy);
    rm_log_end(&l);
}

/* xorshift64*, one state per thread, seeded from the thread's stack address and the clock on first use: good enough
 * to spread samples, cheap, and shared by nothing. */
static _Thread_local uint64_t prng_state;

static uint64_t prng_next(void)
{
    uint64_t x = prng_state;
    if (x == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = (uint64_t)(uintptr_t)&ts ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
        if (x == 0)
            x = 0x9e3779b97f4a7c15ull;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    prng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

int rm_access_log_draw(double rate)
{
    if (rate >= 1)
        return 1;
    if (!(rate > 0))
        return 0;
    /* 53 random bits as a fraction in [0, 1) */
    return (double)(prng_next() >> 11) * (1.0 / 9007199254740992.0) < rate;
}

int rm_access_log_sampled(const rm_proxy_config_t *cfg)
{
    return cfg->access_log && rm_access_log_draw(cfg->access_log_sample);
}

static void copy_field(char *dst, size_t size, const char *src, size_t len)
{
    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static const rm_http_header_t *find_header(const rm_http_request_t *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->num_headers; i++) {
        const rm_http_header_t *h = &req->headers[i];
        if (h->name_len == n && strncasecmp(h->name, name, n) == 0)
            return h;
    }
    return NULL;
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

void rm_access_log_trace_id(const rm_http_request_t *req, char *out)
{
    const rm_http_header_t *h;

    out[0] = '\0';
    /* traceparent: "00-<32 hex trace id>-<16 hex>-<2 hex>" */
    if ((h = find_header(req, "traceparent")) != NULL && h->value_len >= 55 && h->value[2] == '-' &&
        is_hex(h->value + 3, 32)) {
        copy_field(out, RM_ACCESS_TRACE_ID + 1, h->value + 3, 32);
        return;
    }
    /* B3 multi: x-b3-traceid (16 or 32 hex); single: b3 "<traceid>-<spanid>[-...]" */
    if ((h = find_header(req, "x-b3-traceid")) != NULL && (h->value_len == 16 || h->value_len == 32) &&
        is_hex(h->value, h->value_len)) {
        copy_field(out, RM_ACCESS_TRACE_ID + 1, h->value, h->value_len);
        return;
    }
    if ((h = find_header(req, "b3")) != NULL) {
        const char *dash = memchr(h->value, '-', h->value_len);
        size_t n = dash != NULL ? (size_t)(dash - h->value) : 0;
        if ((n == 16 || n == 32) && is_hex(h->value, n))
            copy_field(out, RM_ACCESS_TRACE_ID + 1, h->value, n);
    }
}

static void copy_header(char *dst, size_t size, const rm_http_request_t *req, const char *name)
{
    const rm_http_header_t *h = find_header(req, name);
    copy_field(dst, size, h != NULL ? h->value : NULL, h != NULL ? h->value_len : 0);
}

void rm_access_log_request_keep(rm_access_request_t *rec, const rm_proxy_config_t *cfg, const rm_http_request_t *req,
                                rm_http_verdict_t verdict, int64_t now_ms, uint64_t mono_ms)
{
    if (!(rec->sampled = (uint8_t)rm_access_log_sampled(cfg)))
        return;
    if (now_ms == RM_ACCESS_NOW) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    rec->http2 = req->http2;
    rec->allowed = verdict == RM_HTTP_ALLOW;
    rec->start_time_ms = now_ms;
    rec->start_mono_ms = mono_ms;
    copy_field(rec->method, sizeof(rec->method), req->method, req->method_len);
    if (req->path != NULL) /* a credential in the query is never logged */
        rm_http_target_redact(req->path, req->path_len, rec->path, sizeof(rec->path));
    else
        rec->path[0] = '\0';
    copy_field(rec->authority, sizeof(rec->authority), req->host, req->host_len);
    copy_header(rec->user_agent, sizeof(rec->user_agent), req, "user-agent");
    copy_header(rec->x_forwarded_for, sizeof(rec->x_forwarded_for), req, "x-forwarded-for");
    copy_header(rec->request_id, sizeof(rec->request_id), req, "x-request-id");
    rm_access_log_trace_id(req, rec->trace_id);
}
