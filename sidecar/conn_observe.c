/* The connection's reports (conn_observe.h): Istio's standard metrics (mesh_metrics.h) into the worker's shard.
 *
 * Which side is which, as Istio says it: an outbound connection reports reporter="source" (this workload is the
 * source, the peer it connected to is the destination), an inbound one reporter="destination". The TCP byte counts
 * are this proxy's view of its downstream peer: received is what came from it (the request direction), sent is
 * what went to it (the response direction). */
#include "conn_addr.h"
#include "conn_observe.h"
#include "mesh_metrics.h"
#include "proxy_conn-t.h"
#include "workload_meta.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* The cookie's low 32 bits are these reports' slot + 1 (0: none); the high 32 bits are left for spans. */
#define SLOT_COOKIE_MASK ((uint64_t)UINT32_MAX)

/* One label set and the text its values point into. */
typedef struct st_obs_labels_t {
    rm_mesh_labels_t l;
    char code[8], grpc[8];
} obs_labels_t;

static const char *known(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "unknown";
}

/* Istio's destination_service of an outbound connection, computed once: the Service its destination names (the
 * SNI the control plane pushed), else its address, with the name PassthroughCluster when it is not in the mesh (as
 * Istio names traffic to unknown destinations). */
static void find_service(rm_conn_t *c)
{
    rm__conn_obs_t *o = &c->obs;
    if (o->svc[0] != '\0' || c->dir != RM_CONN_DIR_OUTBOUND || c->orig_dst.len == 0)
        return;
    const rm_destination_t *d =
        c->explicit_cfg != NULL ? NULL
                                : rm_proxy_config_find_destination(rm__conn_cfg(c), (struct sockaddr *)&c->orig_dst.ss);
    if (d != NULL && rm_mesh_service_of_sni(d->sni, o->svc, sizeof(o->svc), o->svc_name, sizeof(o->svc_name), o->svc_ns,
                                            sizeof(o->svc_ns)) == 0)
        return;
    char ip[INET6_ADDRSTRLEN] = "";
    const struct sockaddr_storage *ss = &c->orig_dst.ss;
    if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof(ip));
    else
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
    snprintf(o->svc, sizeof(o->svc), ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
             (unsigned)rm_sockaddr_port(ss));
    snprintf(o->svc_name, sizeof(o->svc_name), "%s",
             d == NULL && c->explicit_cfg == NULL && c->mode == RM_CONN_MODE_PASSTHROUGH ? "PassthroughCluster"
                                                                                         : "unknown");
    snprintf(o->svc_ns, sizeof(o->svc_ns), "unknown");
}

/* The labels every report of the connection shares; response_code, grpc_response_status, response_flags and
 * request_protocol are the caller's. The TCP reports (`tcp`) of an inbound connection leave destination_service
 * unknown: the Host its requests name comes after the connection opened, and both its reports must be one series. */
static void fill(rm_conn_t *c, obs_labels_t *ol, int tcp)
{
    const char **v = ol->l.v;
    const rm_workload_meta_t *self = rm_workload_self(c->snap), *peer, *src, *dst;
    const char *peer_id = rm__conn_peer_id(c);
    int outbound = c->dir == RM_CONN_DIR_OUTBOUND;
    const rm_sockaddr_t *peer_addr = outbound ? (c->target.len != 0 ? &c->target : &c->orig_dst) : &c->src;
    static const rm_workload_meta_t unknown = {"unknown", "unknown", "unknown", "unknown", "unknown"};

    if ((peer = rm_workload_peer(c->snap, peer_addr)) == NULL)
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
    v[RM_ML_DESTINATION_SERVICE] = known(svc ? c->obs.svc : NULL);
    v[RM_ML_DESTINATION_SERVICE_NAME] = known(svc ? c->obs.svc_name : NULL);
    v[RM_ML_DESTINATION_SERVICE_NAMESPACE] = known(svc ? c->obs.svc_ns : NULL);
    v[RM_ML_REQUEST_PROTOCOL] = "tcp";
    v[RM_ML_RESPONSE_CODE] = "0";
    v[RM_ML_GRPC_RESPONSE_STATUS] = "";
    v[RM_ML_RESPONSE_FLAGS] = "-";
    /* Istio: the server side knows how the connection was secured; the client side says unknown */
    v[RM_ML_CONNECTION_SECURITY_POLICY] = outbound ? "unknown" : c->mode == RM_CONN_MODE_MTLS ? "mutual_tls" : "none";
}

void rm__conn_observe_request(struct st_rm_conn_t *c, const rm_http_request_t *req, rm_http_verdict_t verdict,
                              rm_http_decision_t *out)
{
    rm__conn_obs_t *o = &c->obs;
    out->cookie &= ~SLOT_COOKIE_MASK;
    if (c->dir == RM_CONN_DIR_INBOUND && o->svc[0] == '\0' && req->host != NULL)
        rm_mesh_service_of_host(req->host, req->host_len, o->svc, sizeof(o->svc), o->svc_name, sizeof(o->svc_name),
                                o->svc_ns, sizeof(o->svc_ns));
    if (o->used == UINT64_MAX)
        return; /* no slot: the exchange is still counted, with no duration */
    unsigned i = (unsigned)__builtin_ctzll(~o->used);
    uint64_t bit = 1ull << i;
    o->used |= bit;
    o->start_ms[i] = rm_loop_now_ms(c->w->loop);
    o->denied = verdict == RM_HTTP_DENY ? o->denied | bit : o->denied & ~bit;
    o->grpc = req->grpc ? o->grpc | bit : o->grpc & ~bit;
    out->cookie |= i + 1;
}

void rm__conn_observe_exchange(void *conn, const rm_http_exchange_t *ex)
{
    rm_conn_t *c = conn;
    rm__conn_obs_t *o = &c->obs;
    uint64_t now = rm_loop_now_ms(c->w->loop), start = now;
    int denied = 0, grpc = ex->grpc_status >= 0;
    obs_labels_t ol = {0};

    uint64_t k = ex->cookie & SLOT_COOKIE_MASK;
    if (k >= 1 && k <= RM_CONN_OBS_SLOTS && (o->used & (1ull << (k - 1)))) {
        uint64_t bit = 1ull << (k - 1);
        start = o->start_ms[k - 1];
        denied = (o->denied & bit) != 0;
        grpc |= (o->grpc & bit) != 0;
        o->used &= ~bit;
    }
    fill(c, &ol, 0);
    snprintf(ol.code, sizeof(ol.code), "%u", (unsigned)ex->status);
    ol.l.v[RM_ML_RESPONSE_CODE] = ol.code;
    if (ex->grpc_status >= 0) {
        snprintf(ol.grpc, sizeof(ol.grpc), "%d", (int)ex->grpc_status);
        ol.l.v[RM_ML_GRPC_RESPONSE_STATUS] = ol.grpc;
    }
    ol.l.v[RM_ML_REQUEST_PROTOCOL] = grpc ? "grpc" : "http";
    /* Envoy's response flags: a policy denial is Istio's RBAC 403 (or gRPC 7) with no flag; the proxy's other
     * answers (400, 431) are a downstream protocol error; an exchange cut before its end names the side that
     * went away. */
    if (ex->answered_by_proxy)
        ol.l.v[RM_ML_RESPONSE_FLAGS] = denied ? "-" : "DPE";
    else if (!ex->complete)
        ol.l.v[RM_ML_RESPONSE_FLAGS] = c->u2d.src_eof ? "UC" : "DC";
    rm_mesh_metrics_request(c->w->metrics, &ol.l, (double)(now - start), ex->request_bytes, ex->response_bytes, now);
}

void rm__conn_observe_opened(struct st_rm_conn_t *c)
{
    obs_labels_t ol = {0};
    c->obs.opened = 1;
    fill(c, &ol, 1);
    rm_mesh_metrics_tcp_opened(c->w->metrics, &ol.l, rm_loop_now_ms(c->w->loop));
}

void rm__conn_observe_closed(struct st_rm_conn_t *c)
{
    obs_labels_t ol = {0};
    /* what reached each end, the filter's staging included (as the connection's access log counts it) */
    uint64_t received = c->d2u.bytes + (c->l7 != NULL ? c->l7->app_out.bytes : 0);
    uint64_t sent = c->u2d.bytes + (c->l7 != NULL ? c->l7->client_out.bytes : 0);
    fill(c, &ol, 1);
    rm_mesh_metrics_tcp_closed(c->w->metrics, &ol.l, sent, received, rm_loop_now_ms(c->w->loop));
}
