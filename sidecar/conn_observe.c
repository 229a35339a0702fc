/* The connection's reports (conn_observe.h): Istio's standard metrics (mesh_metrics.h) into the worker's shard, the
 * request's span (conn_trace.h) and its access-log line (access_log.h).
 *
 * An exchange's cookie carries two slots: the low 32 bits are this file's (1 + the slot of the request's start time,
 * kind and access-log record; 0: none), the high 32 bits conn_trace.h's span slot (0: no span).
 *
 * Which side is which, as Istio says it: an outbound connection reports reporter="source" (this workload is the
 * source, the peer it connected to is the destination), an inbound one reporter="destination". The TCP byte counts
 * are this proxy's view of its downstream peer: received is what came from it (the request direction), sent is
 * what went to it (the response direction). */
#include "access_log.h"
#include "conn_addr.h"
#include "conn_observe.h"
#include "conn_trace.h"
#include "mesh_metrics.h"
#include "trace_export.h"
#include "proxy_conn-t.h"
#include "ringmesh/slab.h"
#include "workload_meta.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The cookie's low 32 bits are these reports' slot + 1 (0: none); the high 32 bits are left for spans. */
#define SLOT_COOKIE_MASK ((uint64_t)UINT32_MAX)

static const char *known(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "unknown";
}

/* The service's parts (0 destination_service, 1 its name, 2 its namespace), or NULL while it is not known. */
static const char *svc_part(const rm__conn_obs_t *o, unsigned k)
{
    const char *p = o->svc;
    if (p == NULL)
        return NULL;
    while (k-- > 0)
        p += strlen(p) + 1;
    return p;
}

/* Keeps the service's three parts in one allocation of their length. Without memory the service stays unknown (its
 * labels say "unknown"), which is looked up again at the next report. */
static void svc_keep(rm__conn_obs_t *o, const char *svc, const char *name, const char *ns)
{
    size_t a = strlen(svc) + 1, b = strlen(name) + 1, n = strlen(ns) + 1;
    char *p = rm_slab_alloc(a + b + n); /* kept as long as the connection: ringmesh/slab.h */
    if (p == NULL)
        return;
    memcpy(p, svc, a);
    memcpy(p + a, name, b);
    memcpy(p + a + b, ns, n);
    rm_slab_free(o->svc);
    o->svc = p;
}

/* The part of the reports that only connections with requests need, allocated at the first. NULL without memory:
 * the request is then counted with no duration and no access-log line, as when its connection has no free slot. */
static rm__conn_obs_req_t *obs_req(rm_conn_t *c)
{
    if (c->obs.req == NULL)
        c->obs.req = calloc(1, sizeof(*c->obs.req));
    return c->obs.req;
}

/* Istio's destination_service of an outbound connection, computed once: the Service its destination names (the
 * SNI the control plane pushed), else its address, with the name PassthroughCluster when it is not in the mesh (as
 * Istio names traffic to unknown destinations). */
static void find_service(rm_conn_t *c)
{
    rm__conn_obs_t *o = &c->obs;
    char svc[128], svc_name[64], svc_ns[64];
    if (o->svc != NULL || c->dir != RM_CONN_DIR_OUTBOUND || c->orig_dst.len == 0)
        return;
    const rm_destination_t *d =
        c->explicit_cfg != NULL ? NULL
                                : rm_proxy_config_find_destination(rm__conn_cfg(c), (struct sockaddr *)&c->orig_dst.ss);
    if (d != NULL &&
        rm_mesh_service_of_sni(d->sni, svc, sizeof(svc), svc_name, sizeof(svc_name), svc_ns, sizeof(svc_ns)) == 0) {
        svc_keep(o, svc, svc_name, svc_ns);
        return;
    }
    char ip[INET6_ADDRSTRLEN] = "";
    const rm_conn_addr_t *a = &c->orig_dst;
    if (a->ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &a->ss.sin6.sin6_addr, ip, sizeof(ip));
    else
        inet_ntop(AF_INET, &a->ss.sin.sin_addr, ip, sizeof(ip));
    snprintf(svc, sizeof(svc), a->ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)rm_conn_addr_port(a));
    svc_keep(o, svc,
             d == NULL && c->explicit_cfg == NULL && c->mode == RM_CONN_MODE_PASSTHROUGH ? "PassthroughCluster"
                                                                                         : "unknown",
             "unknown");
}

/* The labels every report of the connection shares; response_code, grpc_response_status, response_flags and
 * request_protocol are the caller's. The TCP reports (`tcp`) of an inbound connection leave destination_service
 * unknown: the Host its requests name comes after the connection opened, and both its reports must be one series. */
static void fill(rm_conn_t *c, rm_mesh_labels_t *l, int tcp)
{
    const char **v = l->v;
    const rm_workload_meta_t *self = rm_workload_self(c->snap), *peer, *src, *dst;
    const char *peer_id = rm__conn_peer_id(c);
    int outbound = c->dir == RM_CONN_DIR_OUTBOUND;
    rm_sockaddr_t peer_sa = rm_conn_addr_get(outbound ? (c->target.len != 0 ? &c->target : &c->orig_dst) : &c->src);
    const rm_sockaddr_t *peer_addr = &peer_sa;
    static const rm_workload_meta_t unknown = {"unknown", "unknown", "unknown", "unknown", "unknown"};

    /* by address; else (an outbound connection to a Service's address) by the identity the peer proved */
    if ((peer = rm_workload_peer(c->snap, peer_addr)) == NULL &&
        (peer_id == NULL || (peer = rm_workload_peer_by_principal(c->snap, peer_id)) == NULL))
        peer = &unknown;
    /* this proxy's own SPIFFE ID from the SVID it holds, while the workload's metadata does not say it */
    const rm_tls_ctx_t *own = c->snap->client_ctx;
    const char *self_id = strcmp(known(self->principal), "unknown") != 0 ? self->principal
                          : own != NULL                                  ? rm_tls_ctx_id(own)->str
                                                                         : NULL;
    src = outbound ? self : peer;
    dst = outbound ? peer : self;
    find_service(c);
    v[RM_ML_REPORTER] = outbound ? "source" : "destination";
    v[RM_ML_SOURCE_WORKLOAD] = known(src->name);
    v[RM_ML_SOURCE_WORKLOAD_NAMESPACE] = known(src->namespace);
    v[RM_ML_SOURCE_PRINCIPAL] = known(outbound ? self_id : peer_id != NULL ? peer_id : src->principal);
    v[RM_ML_SOURCE_APP] = known(src->app);
    v[RM_ML_SOURCE_VERSION] = known(src->version);
    v[RM_ML_DESTINATION_WORKLOAD] = known(dst->name);
    v[RM_ML_DESTINATION_WORKLOAD_NAMESPACE] = known(dst->namespace);
    v[RM_ML_DESTINATION_PRINCIPAL] = known(outbound ? (peer_id != NULL ? peer_id : dst->principal) : self_id);
    v[RM_ML_DESTINATION_APP] = known(dst->app);
    v[RM_ML_DESTINATION_VERSION] = known(dst->version);
    int svc = !(tcp && !outbound);
    v[RM_ML_DESTINATION_SERVICE] = known(svc ? svc_part(&c->obs, 0) : NULL);
    v[RM_ML_DESTINATION_SERVICE_NAME] = known(svc ? svc_part(&c->obs, 1) : NULL);
    v[RM_ML_DESTINATION_SERVICE_NAMESPACE] = known(svc ? svc_part(&c->obs, 2) : NULL);
    v[RM_ML_REQUEST_PROTOCOL] = "tcp";
    v[RM_ML_RESPONSE_CODE] = "0";
    v[RM_ML_GRPC_RESPONSE_STATUS] = "";
    v[RM_ML_RESPONSE_FLAGS] = "-";
    /* Istio: the server side knows how the connection was secured; the client side says unknown */
    v[RM_ML_CONNECTION_SECURITY_POLICY] = outbound ? "unknown" : c->mode == RM_CONN_MODE_MTLS ? "mutual_tls" : "none";
}

/* The labels the connection's requests share, in its metrics cache: filled at its first request, and again (the
 * cached series forgotten) when what they were made of was not known yet and now is: the peer's identity (an
 * outbound request decided before the upstream's handshake) or the service (inbound: the first request's Host). */
static void request_base(rm_conn_t *c, rm__conn_obs_req_t *o)
{
    const char *peer_id = rm__conn_peer_id(c);
    if (o->mcache.base_ready && (o->base_peer_known || peer_id == NULL) && (o->base_svc_known || c->obs.svc == NULL))
        return;
    rm_mesh_request_cache_reset(&o->mcache);
    fill(c, &o->mcache.base, 0);
    o->mcache.base_ready = 1;
    o->base_peer_known = peer_id != NULL;
    o->base_svc_known = c->obs.svc != NULL;
}

int rm__conn_observed(struct st_rm_conn_t *c)
{
    const rm_proxy_config_t *cfg = rm__conn_cfg(c);
    return cfg->metrics_enabled || cfg->access_log || rm_trace_exporter() != NULL;
}

/* The request's span: continues or starts its trace and sets the forwarded request's context in `out`. Returns the
 * span's slot (0: none). */
static uint32_t trace_request(rm_conn_t *c, const rm_http_request_t *req, rm_http_verdict_t verdict,
                              rm_http_decision_t *out)
{
    const rm_tls_ctx_t *own = c->snap->client_ctx;
    const char *peer = rm__conn_peer_id(c), *self = own != NULL ? rm_tls_ctx_id(own)->str : NULL;
    int outbound = c->dir == RM_CONN_DIR_OUTBOUND;
    rm_sockaddr_t pa_sa = rm_conn_addr_get(outbound ? (c->target.len != 0 ? &c->target : &c->orig_dst) : &c->src);
    const rm_sockaddr_t *pa = &pa_sa;
    rm_conn_trace_info_t ti = {
        .outbound = outbound,
        .req = req,
        .verdict = verdict,
        .source_principal = outbound ? self : peer,
        .destination_principal = outbound ? peer : self,
        .peer_addr = pa->len != 0 ? (const struct sockaddr *)&pa->ss : NULL,
    };
    return rm_conn_trace_request(&c->trace, &ti, out);
}

/* Keeps what the access log needs of the request in slot i's record (allocated on the slot's first sampled request
 * and reused; without memory, the exchange goes unlogged). */
static void access_keep(rm_conn_t *c, rm__conn_obs_req_t *o, unsigned i, const rm_http_request_t *req,
                        rm_http_verdict_t verdict, uint32_t span)
{
    rm_access_request_t probe;
    rm_access_request_t *rec;

    if (!rm__conn_cfg(c)->access_log)
        return; /* off: not even the clock is read */
    if (o->alog != NULL && o->alog[i] != NULL)
        rec = o->alog[i];
    else {
        /* most exchanges are not logged: draw the sample before allocating anything */
        rm__conn_access_log_request(c, req, verdict, &probe);
        if (!probe.sampled)
            return;
        if ((o->alog == NULL && (o->alog = calloc(RM_CONN_OBS_SLOTS, sizeof(*o->alog))) == NULL) ||
            (o->alog[i] = malloc(sizeof(*o->alog[i]))) == NULL)
            return;
        *o->alog[i] = probe;
        rec = o->alog[i];
        goto TraceId;
    }
    rm__conn_access_log_request(c, req, verdict, rec);
TraceId:
    if (rec->sampled && rec->trace_id[0] == '\0') {
        /* a trace this proxy started: the span's id */
        const char *id = rm_conn_trace_id(c->trace, span);
        if (id != NULL)
            snprintf(rec->trace_id, sizeof(rec->trace_id), "%s", id);
    }
}

void rm__conn_observe_request(struct st_rm_conn_t *c, const rm_http_request_t *req, rm_http_verdict_t verdict,
                              rm_http_decision_t *out)
{
    rm__conn_obs_req_t *o;
    uint32_t span = trace_request(c, req, verdict, out);
    out->cookie = (uint64_t)span << 32;
    if (c->dir == RM_CONN_DIR_INBOUND && c->obs.svc == NULL && req->host != NULL) {
        char svc[128], svc_name[64], svc_ns[64];
        if (rm_mesh_service_of_host(req->host, req->host_len, svc, sizeof(svc), svc_name, sizeof(svc_name), svc_ns,
                                    sizeof(svc_ns)) == 0)
            svc_keep(&c->obs, svc, svc_name, svc_ns);
    }
    if ((o = obs_req(c)) == NULL || o->used == UINT64_MAX)
        return; /* no slot: the exchange is still counted, with no duration, and not access-logged */
    unsigned i = (unsigned)__builtin_ctzll(~o->used);
    uint64_t bit = 1ull << i;
    o->used |= bit;
    o->start_ms[i] = rm_loop_now_ms(c->w->loop);
    o->denied = verdict != RM_HTTP_ALLOW ? o->denied | bit : o->denied & ~bit;
    o->grpc = req->grpc ? o->grpc | bit : o->grpc & ~bit;
    if (o->alog != NULL && o->alog[i] != NULL)
        o->alog[i]->sampled = 0;
    access_keep(c, o, i, req, verdict, span);
    out->cookie |= i + 1;
}

void rm__conn_observe_exchange(void *conn, const rm_http_exchange_t *ex)
{
    rm_conn_t *c = conn;
    rm__conn_obs_req_t *o = c->obs.req;
    uint64_t now = rm_loop_now_ms(c->w->loop), start = now;
    uint32_t slot = (uint32_t)(ex->cookie & SLOT_COOKIE_MASK);
    int denied = 0, grpc = ex->grpc_status >= 0;

    if (o != NULL && slot >= 1 && slot <= RM_CONN_OBS_SLOTS && (o->used & (1ull << (slot - 1)))) {
        uint64_t bit = 1ull << (slot - 1);
        start = o->start_ms[slot - 1];
        denied = (o->denied & bit) != 0;
        grpc |= (o->grpc & bit) != 0;
        o->used &= ~bit;
        if (o->alog != NULL && o->alog[slot - 1] != NULL && o->alog[slot - 1]->sampled) {
            rm__conn_access_log_http(c, o->alog[slot - 1], ex);
            o->alog[slot - 1]->sampled = 0;
        }
    }
    if (c->dir == RM_CONN_DIR_OUTBOUND)
        rm_conn_trace_destination(c->trace, (uint32_t)(ex->cookie >> 32), rm__conn_peer_id(c));
    rm_conn_trace_exchange(c->trace, (uint32_t)(ex->cookie >> 32), ex);
    if (!rm__conn_cfg(c)->metrics_enabled)
        return;
    rm_mesh_request_key_t key = {
        .status = (uint16_t)ex->status,
        .grpc_status = ex->grpc_status >= 0 ? ex->grpc_status : -1,
        .grpc = (uint8_t)grpc,
    };
    /* Envoy's response flags: a policy denial is Istio's RBAC 403 (or gRPC 7) with no flag; the proxy's other
     * answers (400, 431) are a downstream protocol error; an exchange cut before its end names the side that
     * went away. */
    if (ex->response_flag != NULL)
        key.flags = strcmp(ex->response_flag, "UF") == 0 ? RM_MESH_FLAGS_UF : RM_MESH_FLAGS_UC;
    else if (ex->answered_by_proxy)
        key.flags = denied ? RM_MESH_FLAGS_NONE : RM_MESH_FLAGS_DPE;
    else if (!ex->complete)
        key.flags = c->u2d.src_eof ? RM_MESH_FLAGS_UC : RM_MESH_FLAGS_DC;
    rm_mesh_request_cache_t once, *cache = &once;
    if (o != NULL || (o = obs_req(c)) != NULL) {
        request_base(c, o);
        cache = &o->mcache;
    } else {
        /* no memory for the connection's cache: the same series, through a cache for this one exchange */
        memset(&once, 0, sizeof(once));
        fill(c, &once.base, 0);
        once.base_ready = 1;
    }
    rm_mesh_metrics_request_cached(c->w->metrics, cache, &key, (double)(now - start), ex->request_bytes,
                                   ex->response_bytes, now);
}

void rm__conn_observe_opened(struct st_rm_conn_t *c)
{
    rm_mesh_labels_t l = {0};
    c->obs.opened = 1;
    if (!rm__conn_cfg(c)->metrics_enabled)
        return;
    fill(c, &l, 1);
    rm_mesh_metrics_tcp_opened(c->w->metrics, &l, rm_loop_now_ms(c->w->loop));
}

void rm__conn_observe_closed(struct st_rm_conn_t *c)
{
    rm_mesh_labels_t l = {0};
    /* what reached each end, the filter's staging included (as the connection's access log counts it) */
    uint64_t received = c->d2u.bytes + (c->l7 != NULL ? c->l7->app_out.bytes : 0);
    uint64_t sent = c->u2d.bytes + (c->l7 != NULL ? c->l7->client_out.bytes : 0);
    if (!rm__conn_cfg(c)->metrics_enabled)
        return;
    fill(c, &l, 1);
    rm_mesh_metrics_tcp_closed(c->w->metrics, &l, sent, received, rm_loop_now_ms(c->w->loop));
}

void rm__conn_observe_free(struct st_rm_conn_t *c)
{
    rm__conn_obs_req_t *o = c->obs.req;
    if (o != NULL && o->alog != NULL) {
        for (unsigned i = 0; i < RM_CONN_OBS_SLOTS; i++)
            free(o->alog[i]);
        free(o->alog);
    }
    free(o);
    c->obs.req = NULL;
    rm_slab_free(c->obs.svc);
    c->obs.svc = NULL;
}
