#include "admin_server.h"
#include "dest_endpoints.h"
#include "app_health.h"
#include "dest_routes.h"
#include "trace_export.h"
#include "mesh_metrics.h"
#include "ringmesh/textbuf.h"
#include "ringmesh/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define METRICS_START   (16u << 10)  /* the /metrics buffer doubles from this until the text fits... */
#define METRICS_MAX     (128u << 20) /* ...up to this: a request label set's three histograms take some 40 KiB */
#define CONFIG_DUMP_MAX (1u << 20)
#define ADMIN_REQ_MAX   4096
#define ADMIN_DEADLINE  5000
#define ADMIN_MAX_CONNS 16

struct st_rm_admin_conn_t {
    rm_worker_t *w;
    struct st_rm_admin_conn_t *prev, *next;
    rm_io_handle_t h;
    rm_io_op_t rd_op, wr_op;
    http_parser parser;
    uint64_t deadline_ms;
    size_t len;
    char url[256];
    char header[16];  /* the name of the header field being read, lower-case ("" when longer) */
    char accept[512]; /* the Accept field's value, cut at its size */
    int in_value;     /* the parser is in a field's value */
    int complete, closing;
    int from_loopback; /* the peer is this host: every endpoint; else only the kubelet's and Prometheus's */
    struct sockaddr_storage peer;
    char *resp;
    size_t resp_len, sent;
    char req[ADMIN_REQ_MAX];
};

#define SUM(field)                                                                                                     \
    ({                                                                                                                 \
        uint64_t s_ = 0;                                                                                               \
        for (unsigned i_ = 0; i_ < p->num_workers; i_++)                                                               \
            s_ += atomic_load_explicit(&p->workers[i_].stats.field, memory_order_relaxed);                             \
        s_;                                                                                                            \
    })

/* The two series of a counter by outcome: NAME{KEY="VALUE",result="accepted"|"rejected"}. */
static size_t outcomes(char *buf, size_t len, size_t o, const char *name, const char *key, const char *value,
                       uint64_t accepted, uint64_t rejected)
{
    return rm_textf(buf, len, o, "%s{%s=\"%s\",result=\"accepted\"} %llu\n%s{%s=\"%s\",result=\"rejected\"} %llu\n",
                    name, key, value, (unsigned long long)accepted, name, key, value, (unsigned long long)rejected);
}

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
        {"ringmesh_proxy_accept_failures_total",
         "Accepts that failed for want of file descriptors or memory (retried a tick later).",
         offsetof(rm_worker_stats_t, accept_failed)},
        {"ringmesh_proxy_no_svid_rejected_total",
         "mTLS connections refused because this proxy had no SVID to present (none yet, or its own had expired).",
         offsetof(rm_worker_stats_t, rejected_no_svid)},
        {"ringmesh_proxy_endpoint_connections_total",
         "Outbound connections sent to an endpoint the proxy chose (a Service with pushed endpoints).",
         offsetof(rm_worker_stats_t, endpoint_conns)},
        {"ringmesh_proxy_endpoint_retries_total",
         "Other endpoints tried after an endpoint's connect failed or its identity was refused.",
         offsetof(rm_worker_stats_t, endpoint_retries)},
        {"ringmesh_proxy_endpoint_unavailable_total",
         "Outbound connections refused because no endpoint of their service port was ready or serving.",
         offsetof(rm_worker_stats_t, endpoint_unavailable)},
    };
    rm_tls_verify_stats_t hs_verify = rm_hs_pool_verify_stats(p->hs_pool);
    rm_hs_guard_stats_t hs = rm_hs_guard_stats(p->hs_guard);
    for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
        uint64_t v = 0;
        for (unsigned i = 0; i < p->num_workers; i++)
            v += atomic_load_explicit((atomic_uint_fast64_t *)((char *)&p->workers[i].stats + counters[k].off),
                                      memory_order_relaxed);
        o = rm_textf(buf, len, o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[k].name, counters[k].help,
                     counters[k].name, counters[k].name, (unsigned long long)v);
    }
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_tls_signature_verifications_total ECDSA signatures of peers verified in "
                 "handshakes: computed, or remembered (a certificate signature already verified by the worker).\n"
                 "# TYPE ringmesh_proxy_tls_signature_verifications_total counter\n"
                 "ringmesh_proxy_tls_signature_verifications_total{result=\"computed\"} %llu\n"
                 "ringmesh_proxy_tls_signature_verifications_total{result=\"remembered\"} %llu\n",
                 (unsigned long long)(SUM(sig_computed) + hs_verify.computed),
                 (unsigned long long)(SUM(sig_remembered) + hs_verify.remembered));
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_handshakes_pending Inbound TLS handshakes in progress (handshakes.maxPending "
                 "bounds them).\n"
                 "# TYPE ringmesh_proxy_handshakes_pending gauge\nringmesh_proxy_handshakes_pending %llu\n"
                 "# HELP ringmesh_proxy_handshakes_queued Inbound handshake steps waiting for a handshake thread.\n"
                 "# TYPE ringmesh_proxy_handshakes_queued gauge\nringmesh_proxy_handshakes_queued %u\n"
                 "# HELP ringmesh_proxy_handshakes_refused_total Inbound connections closed before their handshake: "
                 "handshakes.maxPending were in progress (pending_limit), or their address was backing off after "
                 "failed handshakes (backoff).\n"
                 "# TYPE ringmesh_proxy_handshakes_refused_total counter\n"
                 "ringmesh_proxy_handshakes_refused_total{cause=\"pending_limit\"} %llu\n"
                 "ringmesh_proxy_handshakes_refused_total{cause=\"backoff\"} %llu\n"
                 "# HELP ringmesh_proxy_handshake_backoffs_total Back-offs of an address whose handshakes kept "
                 "failing (handshakes.backoffAfterFailures within handshakes.failureWindow).\n"
                 "# TYPE ringmesh_proxy_handshake_backoffs_total counter\nringmesh_proxy_handshake_backoffs_total "
                 "%llu\n"
                 "# HELP ringmesh_proxy_handshake_addresses_backing_off Addresses backing off now (counted once a "
                 "second).\n"
                 "# TYPE ringmesh_proxy_handshake_addresses_backing_off gauge\n"
                 "ringmesh_proxy_handshake_addresses_backing_off %llu\n",
                 (unsigned long long)hs.pending, p->hs_pool != NULL ? rm_hs_pool_queued(p->hs_pool) : 0u,
                 (unsigned long long)hs.refused_pending, (unsigned long long)hs.refused_backoff,
                 (unsigned long long)hs.backoffs, (unsigned long long)hs.backing_off);
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_tls_kernel_enabled 1 when finished handshakes hand their TLS records to the "
                 "kernel (kernelTls: auto, and the kernel has a TLS layer).\n"
                 "# TYPE ringmesh_proxy_tls_kernel_enabled gauge\nringmesh_proxy_tls_kernel_enabled %d\n"
                 "# HELP ringmesh_proxy_tls_kernel_connections_total Connections whose TLS records the kernel sealed "
                 "and opened in both directions after the handshake.\n"
                 "# TYPE ringmesh_proxy_tls_kernel_connections_total counter\n"
                 "ringmesh_proxy_tls_kernel_connections_total %llu\n"
                 "# HELP ringmesh_proxy_tls_kernel_failures_total Hand-overs of a connection's TLS records to the "
                 "kernel that failed (the records stay in the proxy).\n"
                 "# TYPE ringmesh_proxy_tls_kernel_failures_total counter\n"
                 "ringmesh_proxy_tls_kernel_failures_total %llu\n",
                 atomic_load(&p->kernel_tls), (unsigned long long)SUM(ktls_conns),
                 (unsigned long long)SUM(ktls_failed));
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_connections_active Open connections.\n"
                 "# TYPE ringmesh_proxy_connections_active gauge\nringmesh_proxy_connections_active %llu\n",
                 (unsigned long long)SUM(active));
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_buffer_bytes Memory in the workers' I/O buffers, held by connections (in_use) "
                 "or kept for reuse (idle), by size: small (one TLS record) or large (a bulk stream's).\n"
                 "# TYPE ringmesh_proxy_buffer_bytes gauge\n"
                 "ringmesh_proxy_buffer_bytes{size=\"small\",state=\"in_use\"} %llu\n"
                 "ringmesh_proxy_buffer_bytes{size=\"small\",state=\"idle\"} %llu\n"
                 "ringmesh_proxy_buffer_bytes{size=\"large\",state=\"in_use\"} %llu\n"
                 "ringmesh_proxy_buffer_bytes{size=\"large\",state=\"idle\"} %llu\n",
                 (unsigned long long)(SUM(buf_in_use) * RM_BUF_SIZE), (unsigned long long)(SUM(buf_idle) * RM_BUF_SIZE),
                 (unsigned long long)(SUM(buf_large_in_use) * RM_BUF_LARGE_SIZE),
                 (unsigned long long)(SUM(buf_large_idle) * RM_BUF_LARGE_SIZE));
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_bytes_total Bytes proxied, counted when a connection closes.\n"
                 "# TYPE ringmesh_proxy_bytes_total counter\n"
                 "ringmesh_proxy_bytes_total{direction=\"downstream_to_upstream\"} %llu\n"
                 "ringmesh_proxy_bytes_total{direction=\"upstream_to_downstream\"} %llu\n",
                 (unsigned long long)SUM(bytes_down_to_up), (unsigned long long)SUM(bytes_up_to_down));
    if (snap->client_ctx != NULL)
        o = rm_textf(buf, len, o,
                     "# HELP ringmesh_proxy_svid_expiry_timestamp_seconds notAfter of the SVID this proxy presents.\n"
                     "# TYPE ringmesh_proxy_svid_expiry_timestamp_seconds gauge\n"
                     "ringmesh_proxy_svid_expiry_timestamp_seconds %lld\n",
                     (long long)rm_tls_ctx_not_after(snap->client_ctx));
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_svid_expired 1 while the SVID this proxy should present has expired and no new "
                 "one is in force: mTLS connections are refused.\n"
                 "# TYPE ringmesh_proxy_svid_expired gauge\nringmesh_proxy_svid_expired %d\n",
                 atomic_load(&p->svid_expired));
    if (atomic_load(&p->control.enabled)) {
        rm_control_stats_t *cs = &p->control;
        o = rm_textf(buf, len, o,
                     "# HELP ringmesh_proxy_control_plane_connected 1 while the discovery stream is up.\n"
                     "# TYPE ringmesh_proxy_control_plane_connected gauge\nringmesh_proxy_control_plane_connected %d\n"
                     "# HELP ringmesh_proxy_svid_renewals_total SVIDs obtained from the control plane.\n"
                     "# TYPE ringmesh_proxy_svid_renewals_total counter\nringmesh_proxy_svid_renewals_total %llu\n"
                     "# HELP ringmesh_proxy_svid_renewal_failures_total Identity.Sign calls that failed.\n"
                     "# TYPE ringmesh_proxy_svid_renewal_failures_total counter\n"
                     "ringmesh_proxy_svid_renewal_failures_total %llu\n"
                     "# HELP ringmesh_proxy_svid_expiring 1 when the SVID is near expiry and could not be renewed.\n"
                     "# TYPE ringmesh_proxy_svid_expiring gauge\nringmesh_proxy_svid_expiring %d\n",
                     atomic_load(&cs->connected), (unsigned long long)atomic_load(&cs->svid_renewals),
                     (unsigned long long)atomic_load(&cs->svid_failures), atomic_load(&cs->svid_expiring));
        o = rm_textf(buf, len, o,
                     "# HELP ringmesh_proxy_config_pushes_total Pushes from the control plane, by outcome.\n"
                     "# TYPE ringmesh_proxy_config_pushes_total counter\n");
        for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
            o = outcomes(buf, len, o, "ringmesh_proxy_config_pushes_total", "type", rm_xds_type_name((rm_xds_type_t)t),
                         atomic_load(&cs->accepted[t]), atomic_load(&cs->rejected[t]));
    }
    if (!atomic_load(&p->control.enabled)) {
        static const char *const source[RM_FILE_NUM_SOURCES] = {"svid", "policies"};
        o = rm_textf(buf, len, o,
                     "# HELP ringmesh_proxy_file_reloads_total Reads of changed SVID or policy files (no control "
                     "plane), by outcome: accepted for new connections, or rejected with what was in force kept.\n"
                     "# TYPE ringmesh_proxy_file_reloads_total counter\n");
        for (int i = 0; i < RM_FILE_NUM_SOURCES; i++)
            o = outcomes(buf, len, o, "ringmesh_proxy_file_reloads_total", "source", source[i],
                         atomic_load(&p->files.accepted[i]), atomic_load(&p->files.rejected[i]));
    }
    if (snap->authz != NULL)
        o = rm_authz_metrics(snap->authz, buf, len, o);
    o = rm_app_health_metrics(p->app_health, buf, len, o);
    o = rm_trace_export_metrics(buf, len, o);
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_info Static facts about this proxy.\n# TYPE ringmesh_proxy_info gauge\n"
                 "ringmesh_proxy_info{io_backend=\"%s\",workers=\"%u\"} 1\n",
                 rm_loop_backend_name(p->backend), p->num_workers);
    return o;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct st_rm_admin_conn_t *c = p->data;
    size_t have = strlen(c->url);
    if (have + len >= sizeof(c->url))
        return 1;
    memcpy(c->url + have, at, len);
    c->url[have + len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    struct st_rm_admin_conn_t *c = p->data;
    c->complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct st_rm_admin_conn_t *c = p->data;
    size_t have;
    if (c->in_value) {
        c->in_value = 0;
        c->header[0] = '\0';
    }
    have = strlen(c->header);
    for (size_t i = 0; i < len; i++) {
        if (have + 1 >= sizeof(c->header)) {
            c->header[0] = '\x01'; /* too long to be one we read */
            c->header[1] = '\0';
            return 0;
        }
        c->header[have++] = (char)(at[i] >= 'A' && at[i] <= 'Z' ? at[i] + 32 : at[i]);
        c->header[have] = '\0';
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct st_rm_admin_conn_t *c = p->data;
    size_t have = strlen(c->accept);
    int first = !c->in_value;
    c->in_value = 1;
    if (strcmp(c->header, "accept") != 0)
        return 0;
    if (first && have > 0 && have + 1 < sizeof(c->accept)) /* a second Accept field: one list, as HTTP says */
        c->accept[have++] = ',';
    if (len > sizeof(c->accept) - 1 - have)
        len = sizeof(c->accept) - 1 - have;
    memcpy(c->accept + have, at, len);
    c->accept[have + len] = '\0';
    return 0;
}

static const http_parser_settings parser_settings = {.on_url = on_url,
                                                     .on_header_field = on_header_field,
                                                     .on_header_value = on_header_value,
                                                     .on_message_complete = on_complete};

/* The whole exposition in `fmt`: the proxy's own counters, then Istio's standard metrics; as OpenMetrics, the
 * former rewritten and "# EOF" at the end. Returns its length (cap or more: cut). */
static size_t render_metrics(rm_proxy_t *p, rm_metrics_format_t fmt, char *buf, size_t cap)
{
    const rm_proxy_config_t *cfg = atomic_load(&p->snap)->cfg; /* on worker 0's loop: valid for this iteration */
    size_t o;
    if (fmt == RM_METRICS_PROMETHEUS) {
        o = rm_admin_metrics(p, buf, cap);
        return rm_mesh_metrics_render(p->metrics, cfg, fmt, buf, cap, o);
    }
    char *text = malloc(cap);
    if (text == NULL)
        return cap;
    size_t n = rm_admin_metrics(p, text, cap);
    o = n >= cap - 1 ? cap : rm_metrics_text_to_openmetrics(text, n, buf, cap, 0);
    free(text);
    o = rm_mesh_metrics_render(p->metrics, cfg, fmt, buf, cap, o);
    return rm_textf(buf, cap, o, "# EOF\n");
}

static void admin_close(struct st_rm_admin_conn_t *c)
{
    rm_worker_t *w = c->w;
    if (!c->closing) {
        c->closing = 1;
        rm_io_cancel(w->loop, &c->rd_op);
        rm_io_cancel(w->loop, &c->wr_op);
    }
    if (rm_io_busy(&c->rd_op) || rm_io_busy(&c->wr_op))
        return; /* the last callback comes back here */
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->admin_conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->num_admin_conns--;
    rm_loop_del(w->loop, &c->h);
    close(c->h.fd);
    free(c->resp);
    free(c);
}

static void on_sent(rm_io_op_t *op, int res)
{
    struct st_rm_admin_conn_t *c = rm_container_of(op, struct st_rm_admin_conn_t, wr_op);
    if (c->closing || res <= 0) {
        admin_close(c);
        return;
    }
    c->sent += (size_t)res;
    if (c->sent < c->resp_len &&
        rm_io_send(c->w->loop, &c->h, &c->wr_op, c->resp + c->sent, c->resp_len - c->sent, on_sent) == 0)
        return;
    shutdown(c->h.fd, SHUT_WR);
    admin_close(c);
}

static void respond(struct st_rm_admin_conn_t *c, unsigned status, const char *reason, const char *type,
                    const char *body, size_t len)
{
    size_t cap = len + 256;
    if ((c->resp = malloc(cap)) == NULL) {
        admin_close(c);
        return;
    }
    int n =
        snprintf(c->resp, cap, "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 status, reason, type, len);
    memcpy(c->resp + n, body, len);
    c->resp_len = (size_t)n + len;
    c->sent = 0;
    if (rm_io_send(c->w->loop, &c->h, &c->wr_op, c->resp, c->resp_len, on_sent) != 0)
        admin_close(c);
}

/* A JSON string: the values written here are validated SPIFFE IDs, addresses and versions, but escape anyway. */
static size_t put_json_str(char *buf, size_t len, size_t o, const char *v)
{
    o = rm_textf(buf, len, o, "\"");
    for (const unsigned char *p = (const unsigned char *)(v != NULL ? v : ""); *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            o = rm_textf(buf, len, o, "\\%c", *p);
        else if (*p < 0x20)
            o = rm_textf(buf, len, o, "\\u%04x", *p);
        else
            o = rm_textf(buf, len, o, "%c", *p);
    }
    return rm_textf(buf, len, o, "\"");
}

static const char *mode_name(rm_mtls_mode_t m)
{
    return m == RM_MTLS_PERMISSIVE ? "PERMISSIVE" : m == RM_MTLS_DISABLE ? "DISABLE" : "STRICT";
}

size_t rm_admin_config_dump(rm_proxy_t *p, char *buf, size_t len)
{
    rm_snapshot_t *snap = atomic_load(&p->snap); /* on worker 0's loop: valid for this iteration */
    const rm_proxy_config_t *cfg = snap->cfg;
    size_t o = 0;

    o = rm_textf(buf, len, o, "{\"trust_domain\":");
    o = put_json_str(buf, len, o, cfg->trust_domain);
    o = rm_textf(buf, len, o, ",\"svid\":");
    if (snap->client_ctx != NULL) {
        o = rm_textf(buf, len, o, "{\"spiffe_id\":");
        o = put_json_str(buf, len, o, rm_tls_ctx_id(snap->client_ctx)->str);
        o = rm_textf(buf, len, o, ",\"not_after\":%lld}", (long long)rm_tls_ctx_not_after(snap->client_ctx));
    } else {
        o = rm_textf(buf, len, o, "null");
    }
    if (atomic_load(&p->control.enabled)) {
        o = rm_textf(buf, len, o, ",\"control_plane\":{\"connected\":%s,\"versions\":{",
                     atomic_load(&p->control.connected) ? "true" : "false");
        for (int t = 0; t < RM_XDS_NUM_TYPES; t++) {
            o = rm_textf(buf, len, o, "%s\"%s\":", t ? "," : "", rm_xds_type_name((rm_xds_type_t)t));
            o = put_json_str(buf, len, o, snap->versions[t]);
        }
        o = rm_textf(buf, len, o, "}}");
    }
    o = rm_textf(buf, len, o, ",\"authorization\":");
    if (snap->authz != NULL) {
        const rm_authz_t *az = snap->authz;
        o = rm_textf(buf, len, o, "{\"version\":");
        o = put_json_str(buf, len, o, az->version);
        o = rm_textf(buf, len, o, ",\"default_action\":\"%s\",\"path_normalization\":\"%s\",\"policies\":[",
                     rm_authz_action_name(az->wp.opts.default_action),
                     rm_path_normalization_name(az->wp.path_normalization));
        for (size_t i = 0; i < az->set.num_policies; i++) {
            const rm_authz_policy_t *pol = &az->set.policies[i];
            char name[600];
            snprintf(name, sizeof(name), "%s/%s", pol->namespace_, pol->name);
            o = rm_textf(buf, len, o, "%s{\"name\":", i ? "," : "");
            o = put_json_str(buf, len, o, name);
            o = rm_textf(buf, len, o, ",\"action\":\"%s\",\"rules\":%zu,\"dry_run\":%s}",
                         rm_authz_action_name(pol->action), pol->num_rules, pol->dry_run ? "true" : "false");
        }
        o = rm_textf(buf, len, o, "]}");
    } else {
        o = rm_textf(buf, len, o, snap->authz_required ? "\"none received: inbound connections are refused\"" : "null");
    }
    o = rm_textf(buf, len, o, ",\"inbound\":{\"mode\":\"%s\",\"port_modes\":[", mode_name(cfg->inbound_mode));
    for (size_t i = 0; i < cfg->num_port_modes; i++)
        o = rm_textf(buf, len, o, "%s{\"port\":%u,\"mode\":\"%s\"}", i ? "," : "", cfg->port_modes[i].port,
                     mode_name(cfg->port_modes[i].mode));
    o = rm_textf(buf, len, o,
                 "]},\"connect_timeout_ms\":%u,\"idle_timeout_ms\":%u,\"connection_log\":%s,\"access_log\":%s,"
                 "\"access_log_sample_rate\":%g,\"workloads\":",
                 cfg->connect_timeout_ms, cfg->idle_timeout_ms, cfg->connection_log ? "true" : "false",
                 cfg->access_log ? "true" : "false", cfg->access_log_sample);
    o = rm_workload_config_dump(snap, buf, len, o);
    o = rm_textf(buf, len, o, ",\"destinations\":[");
    for (size_t i = 0; i < cfg->num_destinations; i++) {
        char addr[INET6_ADDRSTRLEN + 8];
        const struct sockaddr *sa = (const struct sockaddr *)&cfg->destinations[i].addr.ss;
        char host[INET6_ADDRSTRLEN] = "";
        unsigned port = 0;
        if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
            port = ntohs(s6->sin6_port);
            snprintf(addr, sizeof(addr), "[%s]:%u", host, port);
        } else {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
            inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
            port = ntohs(s4->sin_port);
            snprintf(addr, sizeof(addr), "%s:%u", host, port);
        }
        o = rm_textf(buf, len, o, "%s{\"address\":", i ? "," : "");
        o = put_json_str(buf, len, o, addr);
        o = rm_textf(buf, len, o, ",\"identities\":[");
        for (size_t j = 0; j < cfg->destinations[i].num_identities; j++) {
            o = rm_textf(buf, len, o, "%s", j ? "," : "");
            o = put_json_str(buf, len, o, cfg->destinations[i].identities[j]);
        }
        o = rm_textf(buf, len, o, "]");
        /* the endpoints in counts only: a mesh's worth of pod addresses would outgrow the dump */
        const rm_dest_endpoints_t *eps = cfg->destinations[i].endpoints;
        if (eps != NULL) {
            static const char *const classes[] = {"none", "ready", "serving_terminating"};
            o = rm_textf(buf, len, o, ",\"endpoints\":{\"total\":%zu,\"candidates\":%zu,\"candidate_class\":\"%s\"}",
                         eps->num, eps->num_candidates, classes[eps->cls]);
        }
        o = rm_dest_routes_config_dump(cfg->destinations[i].routes, buf, len, o);
        o = rm_textf(buf, len, o, "}");
    }
    return rm_textf(buf, len, o, "]}\n");
}

/* In a pod the admin port listens on the pod's IP for the kubelet and Prometheus: from elsewhere than loopback only
 * GET (or HEAD) of the health, probe and metrics paths is served. */
static int open_to_network(const char *url, int is_get)
{
    return is_get &&
           (strcmp(url, "/healthz/ready") == 0 || strcmp(url, "/healthz/live") == 0 || strcmp(url, "/metrics") == 0 ||
            strncmp(url, RM_APP_HEALTH_PREFIX, strlen(RM_APP_HEALTH_PREFIX)) == 0);
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return ss->ss_family == AF_UNIX;
}

/* A refusal is logged with its peer, at most once a second (worker 0 only: no lock), with the count left out. */
static void log_refused(struct st_rm_admin_conn_t *c)
{
    static uint64_t last_ms, left_out;
    uint64_t now = rm_loop_now_ms(c->w->loop);
    if (last_ms != 0 && now - last_ms < 1000) {
        left_out++;
        return;
    }
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_WARN, "admin_refused");
    rm_log_addr(&l, "peer", (const struct sockaddr *)&c->peer);
    rm_log_str(&l, "method", http_method_str((enum http_method)c->parser.method));
    rm_log_str(&l, "path", c->url);
    rm_log_str(&l, "reason", "only from loopback");
    rm_log_uint(&l, "refusals_not_logged", left_out);
    rm_log_end(&l);
    last_ms = now;
    left_out = 0;
}

/* GET /app-health/...: the prober threads take the connection over (a duplicate of its socket: this side closes
 * its own as for any answered request). */
static void app_health(struct st_rm_admin_conn_t *c)
{
    int fd = dup(c->h.fd), status;
    if (fd < 0) {
        respond(c, 503, "Service Unavailable", "text/plain", "out of file descriptors\n", 24);
        return;
    }
    status = rm_app_health_submit(c->w->proxy->app_health, c->url, c->parser.method == HTTP_HEAD, fd);
    if (status == RM_APP_HEALTH_TAKEN) {
        admin_close(c);
        return;
    }
    close(fd);
    if (status == 404)
        respond(c, 404, "Not Found", "text/plain", "no such probe\n", 14);
    else
        respond(c, 503, "Service Unavailable", "text/plain", "this probe is already running\n", 30);
}

static void handle(struct st_rm_admin_conn_t *c)
{
    rm_proxy_t *p = c->w->proxy;
    int is_get = c->parser.method == HTTP_GET || c->parser.method == HTTP_HEAD;
    int is_post = c->parser.method == HTTP_POST;
    char *q = strchr(c->url, '?');
    if (q != NULL)
        *q = '\0';

    if (!c->from_loopback && !open_to_network(c->url, is_get)) {
        log_refused(c);
        respond(c, 403, "Forbidden", "text/plain", "only from loopback\n", 19);
    } else if (strncmp(c->url, RM_APP_HEALTH_PREFIX, strlen(RM_APP_HEALTH_PREFIX)) == 0 && is_get) {
        app_health(c);
    } else if (strcmp(c->url, "/healthz/live") == 0 && is_get) {
        respond(c, 200, "OK", "text/plain", "live\n", 5);
    } else if (strcmp(c->url, "/healthz/ready") == 0 && is_get) {
        if (atomic_load(&p->draining))
            respond(c, 503, "Service Unavailable", "text/plain", "draining\n", 9);
        else if (!atomic_load(&p->ready))
            respond(c, 503, "Service Unavailable", "text/plain", "waiting for the control plane\n", 30);
        else
            respond(c, 200, "OK", "text/plain", "ready\n", 6);
    } else if (strcmp(c->url, "/metrics") == 0 && is_get) {
        /* every authorization rule that has decided adds a line: render again into a larger buffer until it fits */
        rm_metrics_format_t fmt = rm_metrics_negotiate(c->accept[0] != '\0' ? c->accept : NULL);
        static size_t fitted = METRICS_START; /* the size the last page fitted in (worker 0 only): start there */
        char *buf = NULL, *grown;
        size_t cap = fitted, n;
        for (;;) {
            if ((grown = realloc(buf, cap)) == NULL) {
                free(buf);
                admin_close(c);
                return;
            }
            buf = grown;
            if ((n = render_metrics(p, fmt, buf, cap)) < cap - 1 || cap >= METRICS_MAX)
                break;
            cap *= 2;
        }
        if (n >= cap - 1) {
            respond(c, 507, "Insufficient Storage", "text/plain", "metrics larger than 128 MiB\n", 28);
        } else {
            fitted = cap;
            respond(c, 200, "OK", rm_metrics_content_type(fmt), buf, n);
        }
        free(buf);
    } else if (strcmp(c->url, "/config_dump") == 0 && is_get) {
        char *buf = malloc(CONFIG_DUMP_MAX);
        if (buf == NULL) {
            admin_close(c);
            return;
        }
        size_t n = rm_admin_config_dump(p, buf, CONFIG_DUMP_MAX);
        if (n >= CONFIG_DUMP_MAX - 1)
            respond(c, 507, "Insufficient Storage", "text/plain", "configuration larger than 1 MiB\n", 32);
        else
            respond(c, 200, "OK", "application/json", buf, n);
        free(buf);
    } else if ((strcmp(c->url, "/drain") == 0 || strcmp(c->url, "/quitquitquit") == 0) && is_post) {
        int quit = strcmp(c->url, "/quitquitquit") == 0;
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "admin_request");
        rm_log_str(&l, "path", c->url);
        rm_log_end(&l);
        respond(c, 200, "OK", "text/plain", "OK\n", 3);
        /* the main thread owns shutdown: hand it the same signal an operator would send */
        kill(getpid(), quit ? SIGQUIT : SIGTERM);
    } else if (strcmp(c->url, "/drain") == 0 || strcmp(c->url, "/quitquitquit") == 0 ||
               strcmp(c->url, "/metrics") == 0 || strcmp(c->url, "/config_dump") == 0 ||
               strncmp(c->url, "/healthz/", 9) == 0 ||
               strncmp(c->url, RM_APP_HEALTH_PREFIX, strlen(RM_APP_HEALTH_PREFIX)) == 0) {
        respond(c, 405, "Method Not Allowed", "text/plain", "method not allowed\n", 19);
    } else {
        respond(c, 404, "Not Found", "text/plain", "not found\n", 10);
    }
}

static void on_received(rm_io_op_t *op, int res)
{
    struct st_rm_admin_conn_t *c = rm_container_of(op, struct st_rm_admin_conn_t, rd_op);
    size_t parsed;
    if (c->closing || res <= 0) {
        admin_close(c);
        return;
    }
    parsed = http_parser_execute(&c->parser, &parser_settings, c->req + c->len, (size_t)res);
    c->len += (size_t)res;
    if (c->complete) {
        handle(c);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || parsed != (size_t)res) {
        respond(c, 400, "Bad Request", "text/plain", "bad request\n", 12);
        return;
    }
    if (c->len == sizeof(c->req)) {
        respond(c, 431, "Request Header Fields Too Large", "text/plain", "request too large\n", 18);
        return;
    }
    if (rm_io_recv(c->w->loop, &c->h, &c->rd_op, c->req + c->len, sizeof(c->req) - c->len, on_received) != 0)
        admin_close(c);
}

/* At ADMIN_MAX_CONNS, a new connection takes the place of the oldest one that has not sent its whole request yet:
 * slow or silent clients (a slowloris) cannot keep the kubelet's probes out until their deadline, only delay each
 * other. Returns 0 when room was made (the evicted connection goes once its operations are cancelled; the count stays
 * under twice the cap meanwhile), -1 when every connection is answering. */
static int admin_make_room(rm_worker_t *w)
{
    struct st_rm_admin_conn_t *oldest = NULL;
    if (w->num_admin_conns < ADMIN_MAX_CONNS)
        return 0;
    if (w->num_admin_conns >= 2 * ADMIN_MAX_CONNS)
        return -1;
    for (struct st_rm_admin_conn_t *c = w->admin_conns; c != NULL; c = c->next)
        if (!c->complete && !c->closing)
            oldest = c; /* the list is newest first */
    if (oldest == NULL)
        return -1;
    admin_close(oldest);
    return 0;
}

void rm__admin_accepted(rm_worker_t *w, int fd)
{
    struct st_rm_admin_conn_t *c;
    if (admin_make_room(w) != 0 || (c = calloc(1, sizeof(*c))) == NULL) {
        close(fd);
        return;
    }
    c->w = w;
    c->deadline_ms = rm_loop_now_ms(w->loop) + ADMIN_DEADLINE;
    socklen_t plen = sizeof(c->peer);
    if (getpeername(fd, (struct sockaddr *)&c->peer, &plen) != 0)
        memset(&c->peer, 0, sizeof(c->peer)); /* unknown: not loopback */
    c->from_loopback = is_loopback(&c->peer);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (rm_loop_add(w->loop, &c->h, fd) != 0) {
        close(fd);
        free(c);
        return;
    }
    c->next = w->admin_conns;
    if (c->next != NULL)
        c->next->prev = c;
    w->admin_conns = c;
    w->num_admin_conns++;
    if (rm_io_recv(w->loop, &c->h, &c->rd_op, c->req, sizeof(c->req), on_received) != 0)
        admin_close(c);
}

void rm__admin_tick(rm_worker_t *w, uint64_t now_ms, int all)
{
    for (struct st_rm_admin_conn_t *c = w->admin_conns, *next; c != NULL; c = next) {
        next = c->next;
        if (all || now_ms >= c->deadline_ms)
            admin_close(c);
    }
}
