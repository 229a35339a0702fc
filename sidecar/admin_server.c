#include "admin_server.h"
#include "ringmesh/log.h"

#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct st_rm_admin_server_t {
    struct MHD_Daemon *d;
    rm_proxy_t *proxy;
};

#define METRICS_MAX 8192

static size_t put(char *buf, size_t len, size_t o, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static size_t put(char *buf, size_t len, size_t o, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (o >= len)
        return o;
    va_start(ap, fmt);
    n = vsnprintf(buf + o, len - o, fmt, ap);
    va_end(ap);
    if (n < 0)
        return o;
    return o + (size_t)n < len ? o + (size_t)n : len;
}

#define SUM(field)                                                                                                     \
    ({                                                                                                                 \
        uint64_t s_ = 0;                                                                                               \
        for (unsigned i_ = 0; i_ < p->num_workers; i_++)                                                               \
            s_ += atomic_load_explicit(&p->workers[i_].stats.field, memory_order_relaxed);                             \
        s_;                                                                                                            \
    })

size_t rm_admin_metrics(rm_proxy_t *p, char *buf, size_t len)
{
    size_t o = 0;
    rm_snapshot_t *snap = atomic_load(&p->snap);
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"ringmesh_proxy_connections_accepted_total", "Connections accepted on any listener.",
         offsetof(rm_worker_stats_t, accepted)},
        {"ringmesh_proxy_connections_closed_total", "Connections closed.", offsetof(rm_worker_stats_t, closed)},
        {"ringmesh_proxy_peer_rejected_total", "Connections refused because of the peer's identity or TLS.",
         offsetof(rm_worker_stats_t, rejected_peer)},
        {"ringmesh_proxy_plaintext_rejected_total", "Plaintext connections refused on STRICT ports.",
         offsetof(rm_worker_stats_t, rejected_plaintext)},
        {"ringmesh_proxy_connection_limit_rejected_total", "Connections refused at maxConnections.",
         offsetof(rm_worker_stats_t, rejected_limit)},
        {"ringmesh_proxy_upstream_connect_failures_total", "Upstream connects that failed.",
         offsetof(rm_worker_stats_t, connect_failed)},
        {"ringmesh_proxy_tls_handshakes_total", "Completed mTLS handshakes.", offsetof(rm_worker_stats_t, handshakes)},
    };
    for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
        uint64_t v = 0;
        for (unsigned i = 0; i < p->num_workers; i++)
            v += atomic_load_explicit((atomic_uint_fast64_t *)((char *)&p->workers[i].stats + counters[k].off),
                                      memory_order_relaxed);
        o = put(buf, len, o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[k].name, counters[k].help,
                counters[k].name, counters[k].name, (unsigned long long)v);
    }
    o = put(buf, len, o,
            "# HELP ringmesh_proxy_connections_active Open connections.\n"
            "# TYPE ringmesh_proxy_connections_active gauge\nringmesh_proxy_connections_active %llu\n",
            (unsigned long long)SUM(active));
    o = put(buf, len, o,
            "# HELP ringmesh_proxy_bytes_total Bytes proxied, counted when a connection closes.\n"
            "# TYPE ringmesh_proxy_bytes_total counter\n"
            "ringmesh_proxy_bytes_total{direction=\"downstream_to_upstream\"} %llu\n"
            "ringmesh_proxy_bytes_total{direction=\"upstream_to_downstream\"} %llu\n",
            (unsigned long long)SUM(bytes_down_to_up), (unsigned long long)SUM(bytes_up_to_down));
    if (snap->client_ctx != NULL)
        o = put(buf, len, o,
                "# HELP ringmesh_proxy_svid_expiry_timestamp_seconds notAfter of the SVID this proxy presents.\n"
                "# TYPE ringmesh_proxy_svid_expiry_timestamp_seconds gauge\n"
                "ringmesh_proxy_svid_expiry_timestamp_seconds %lld\n",
                (long long)rm_tls_ctx_not_after(snap->client_ctx));
    o = put(buf, len, o,
            "# HELP ringmesh_proxy_info Static facts about this proxy.\n# TYPE ringmesh_proxy_info gauge\n"
            "ringmesh_proxy_info{io_backend=\"%s\",workers=\"%u\"} 1\n",
            rm_loop_backend_name(p->backend), p->num_workers);
    return o;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type, const char *body,
                               size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
    rm_admin_server_t *s = cls;
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int is_post = strcmp(method, "POST") == 0;

    if (*req_cls == NULL) { /* first call for this request: headers only */
        *req_cls = s;
        return MHD_YES;
    }
    *upload_size = 0; /* bodies are ignored */

    if (is_get && strcmp(url, "/healthz/live") == 0)
        return respond(conn, 200, "text/plain", "live\n", 5);
    if (is_get && strcmp(url, "/healthz/ready") == 0) {
        if (atomic_load(&s->proxy->draining))
            return respond(conn, 503, "text/plain", "draining\n", 9);
        return respond(conn, 200, "text/plain", "ready\n", 6);
    }
    if (is_get && strcmp(url, "/metrics") == 0) {
        char *buf = malloc(METRICS_MAX);
        enum MHD_Result r;
        if (buf == NULL)
            return MHD_NO;
        size_t n = rm_admin_metrics(s->proxy, buf, METRICS_MAX);
        r = respond(conn, 200, "text/plain; version=0.0.4", buf, n);
        free(buf);
        return r;
    }
    if (is_post && (strcmp(url, "/drain") == 0 || strcmp(url, "/quitquitquit") == 0)) {
        int quit = strcmp(url, "/quitquitquit") == 0;
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "admin_request");
        rm_log_str(&l, "path", url);
        rm_log_end(&l);
        /* the main thread owns shutdown: hand it the same signals an operator would send */
        kill(getpid(), quit ? SIGQUIT : SIGTERM);
        return respond(conn, 200, "text/plain", "OK\n", 3);
    }
    if ((is_get || is_post) && (strcmp(url, "/drain") == 0 || strcmp(url, "/quitquitquit") == 0 ||
                                strncmp(url, "/healthz/", 9) == 0 || strcmp(url, "/metrics") == 0))
        return respond(conn, 405, "text/plain", "method not allowed\n", 19);
    return respond(conn, 404, "text/plain", "not found\n", 10);
}

int rm_admin_server_start(rm_admin_server_t **out, rm_proxy_t *proxy, const rm_sockaddr_t *addr)
{
    rm_admin_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->proxy = proxy;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    if (addr->ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, &addr->ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_END);
    if (s->d == NULL) {
        int err = errno ? -errno : -EADDRINUSE;
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "admin_listen_failed");
        rm_log_addr(&l, "listen", (const struct sockaddr *)&addr->ss);
        rm_log_err(&l, "error", err);
        rm_log_end(&l);
        free(s);
        return err;
    }
    *out = s;
    return 0;
}

void rm_admin_server_stop(rm_admin_server_t *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->d);
    free(s);
}
