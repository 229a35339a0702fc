/* The access log's lines from a connection (access_log.h): what the connection knows, in the line's terms. */
#include "access_log.h"
#include "proxy_conn-t.h"
#include "snapshot.h"

#include "ringmesh/tls.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The service a server name stands for: Istio's "outbound_.PORT_._.HOST" names HOST ("orders.shop.svc.cluster.local");
 * another name is itself. NULL when there is none. */
static const char *service_of_sni(const char *sni)
{
    const char *p;

    if (sni == NULL || sni[0] == '\0')
        return NULL;
    if (strncmp(sni, "outbound_.", 10) == 0 && (p = strstr(sni + 10, "_._.")) != NULL && p[4] != '\0')
        return p + 4;
    return sni;
}

/* The outbound destination's server name, from the destinations of the connection's snapshot. */
static const char *outbound_sni(rm_conn_t *c)
{
    const rm_proxy_config_t *cfg = rm__conn_cfg(c);
    const rm_conn_addr_t *dst = c->orig_dst.len != 0 ? &c->orig_dst : &c->target;

    for (size_t i = 0; i < cfg->num_destinations; i++) {
        const rm_sockaddr_t *d = &cfg->destinations[i].addr;
        if (d->ss.ss_family != dst->ss.ss_family)
            continue;
        if (d->ss.ss_family == AF_INET && memcmp(&d->ss, &dst->ss, sizeof(struct sockaddr_in)) == 0)
            return cfg->destinations[i].sni;
        if (d->ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&d->ss,
                                      *b = (const struct sockaddr_in6 *)&dst->ss;
            if (a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0)
                return cfg->destinations[i].sni;
        }
    }
    return NULL;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What every line of `c` says: who is at each end, where it went, how it is secured. The entry's addresses are
 * copies in addrs[2] (the connection keeps them at their family's size), which must outlive it. */
static void fill_common(rm_conn_t *c, rm_access_entry_t *e, rm_sockaddr_t addrs[2], char *policy, size_t policy_size)
{
    const char *self_id = c->snap->client_ctx != NULL ? rm_tls_ctx_id(c->snap->client_ctx)->str : NULL;
    const char *peer_id = c->mode == RM_CONN_MODE_MTLS ? rm__conn_peer_id(c) : NULL;
    const rm_workload_meta_t *self = rm_workload_self(c->snap);

    if (self_id == NULL && strcmp(self->principal, "unknown") != 0)
        self_id = self->principal;
    addrs[0] = rm_conn_addr_get(&c->src);
    addrs[1] = rm_conn_addr_get(&c->target);
    e->downstream = &addrs[0];
    e->upstream = c->target.len != 0 ? &addrs[1] : NULL;
    e->connection_security_policy = c->mode == RM_CONN_MODE_MTLS ? "mutual_tls" : "none";
    if (c->dir == RM_CONN_DIR_OUTBOUND) {
        e->reporter = "source";
        e->source = self;
        rm_sockaddr_t dst = rm_conn_addr_get(c->target.len != 0 ? &c->target : &c->orig_dst);
        e->destination = rm_workload_peer(c->snap, &dst);
        if (e->destination == NULL) /* connected to a service's address: the workload its identity names */
            e->destination = rm_workload_peer_by_principal(c->snap, peer_id);
        e->source_principal = self_id;
        e->destination_principal = peer_id;
        e->destination_service = service_of_sni(outbound_sni(c));
    } else {
        e->reporter = "destination";
        e->source = rm_workload_peer(c->snap, &addrs[0]);
        if (e->source == NULL)
            e->source = rm_workload_peer_by_principal(c->snap, peer_id);
        e->destination = self;
        e->source_principal = peer_id;
        e->destination_principal = self_id;
        e->destination_service = service_of_sni(c->sni);
    }
    if (c->authz_logged) {
        e->authz_decision = c->authz_allowed ? "allow" : "deny";
        if (c->authz_policy != NULL) {
            snprintf(policy, policy_size, "%s/%s", c->authz_policy->namespace_, c->authz_policy->name);
            e->authz_policy = policy;
        }
    }
}

void rm__conn_access_log_tcp(rm_conn_t *c)
{
    rm_access_entry_t e = {0};
    rm_sockaddr_t addrs[2];
    char policy[512];
    uint64_t now = rm_loop_now_ms(c->w->loop);

    if (c->l7 != NULL || c->req_in != NULL || c->authz_state == RM_CONN_AUTHZ_HTTP ||
        !rm_access_log_sampled(rm__conn_cfg(c)))
        return;
    fill_common(c, &e, addrs, policy, sizeof(policy));
    e.protocol = "TCP";
    e.grpc_status = -1;
    e.duration_ms = now - c->started_ms;
    e.start_time_ms = wall_ms() - (int64_t)e.duration_ms;
    /* Envoy's flags that a TCP connection can carry here: UF, the upstream could not be connected to; UT, the
     * connection timed out; DC and UC, one end reset it; "-": it ended normally */
    e.response_flags = c->upstream_failed                         ? "UF"
                       : c->close_reason == RM_CONN_CLOSE_TIMEOUT ? "UT"
                       : c->close_reason == RM_CONN_CLOSE_RESET   ? (c->dir == RM_CONN_DIR_OUTBOUND ? "UC" : "DC")
                                                                  : "-";
    /* from the point of view of the connection's originator (the downstream side), as the connection line */
    e.bytes_received = c->d2u.bytes + (c->l7 != NULL ? c->l7->app_out.bytes : 0);
    e.bytes_sent = c->u2d.bytes + (c->l7 != NULL ? c->l7->client_out.bytes : 0);
    rm_access_log_write(&e);
}

void rm__conn_access_log_request(rm_conn_t *c, const rm_http_request_t *req, rm_http_verdict_t verdict,
                                 rm_access_request_t *rec)
{
    /* the wall clock only for a request the sample keeps */
    rm_access_log_request_keep(rec, rm__conn_cfg(c), req, verdict, RM_ACCESS_NOW, rm_loop_now_ms(c->w->loop));
    if (!rec->sampled)
        return;
    rec->decided = c->dir == RM_CONN_DIR_INBOUND && c->authz_state == RM_CONN_AUTHZ_HTTP;
    rec->authz_policy[0] = '\0';
    if (rec->decided && c->request_authz_policy != NULL)
        snprintf(rec->authz_policy, sizeof(rec->authz_policy), "%s/%s", c->request_authz_policy->namespace_,
                 c->request_authz_policy->name);
}

void rm__conn_access_log_http(rm_conn_t *c, const rm_access_request_t *rec, const rm_http_exchange_t *ex)
{
    rm_access_entry_t e = {0};
    rm_sockaddr_t addrs[2];
    char policy[512];
    uint64_t now = rm_loop_now_ms(c->w->loop);

    if (rec == NULL || !rec->sampled)
        return;
    fill_common(c, &e, addrs, policy, sizeof(policy));
    e.protocol = rec->http2 ? "HTTP/2" : "HTTP/1.1";
    e.method = rec->method;
    e.path = rec->path;
    e.authority = rec->authority[0] != '\0' ? rec->authority : NULL;
    e.user_agent = rec->user_agent[0] != '\0' ? rec->user_agent : NULL;
    e.x_forwarded_for = rec->x_forwarded_for[0] != '\0' ? rec->x_forwarded_for : NULL;
    e.request_id = rec->request_id[0] != '\0' ? rec->request_id : NULL;
    e.trace_id = rec->trace_id[0] != '\0' ? rec->trace_id : NULL;
    e.start_time_ms = rec->start_time_ms;
    e.duration_ms = now >= rec->start_mono_ms ? now - rec->start_mono_ms : 0;
    e.response_code = ex->status;
    e.grpc_status = ex->grpc_status;
    /* DC: the exchange did not end normally (reset, or the connection closed first) */
    e.response_flags = ex->response_flag != NULL ? ex->response_flag : ex->complete ? "-" : "DC";
    e.bytes_received = ex->request_bytes;
    e.bytes_sent = ex->response_bytes;
    /* the request's own verdict (the connection's, when it was decided as a whole, is not this request's) */
    e.authz_decision = rec->decided ? (rec->allowed ? "allow" : "deny") : NULL;
    e.authz_policy = rec->authz_policy[0] != '\0' ? rec->authz_policy : NULL;
    rm_access_log_write(&e);
}
