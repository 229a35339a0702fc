/* The connection's reports (conn_observe.h). Spans: conn_trace.h, whose cookie is the high 32 bits of the
 * exchange's cookie (the low 32 bits are left for the other reports). */
#include "conn_observe.h"

#include "conn_trace.h"
#include "proxy_conn-t.h"

void rm__conn_observe_request(struct st_rm_conn_t *c, const rm_http_request_t *req, rm_http_verdict_t verdict,
                              rm_http_decision_t *out)
{
    const rm_tls_ctx_t *own = c->snap->client_ctx;
    const char *peer = rm__conn_peer_id(c), *self = own != NULL ? rm_tls_ctx_id(own)->str : NULL;
    int outbound = c->dir == RM_CONN_DIR_OUTBOUND;
    const rm_sockaddr_t *pa = outbound ? (c->target.len != 0 ? &c->target : &c->orig_dst) : &c->src;
    rm_conn_trace_info_t ti = {
        .outbound = outbound,
        .req = req,
        .verdict = verdict,
        .source_principal = outbound ? self : peer,
        .destination_principal = outbound ? peer : self,
        .peer_addr = pa->len != 0 ? (const struct sockaddr *)&pa->ss : NULL,
    };
    out->cookie = (uint64_t)rm_conn_trace_request(&c->trace, &ti, out) << 32;
}

void rm__conn_observe_exchange(void *conn, const rm_http_exchange_t *ex)
{
    rm_conn_t *c = conn;
    rm_conn_trace_exchange(c->trace, (uint32_t)(ex->cookie >> 32), ex);
}

void rm__conn_observe_opened(struct st_rm_conn_t *c)
{
    (void)c;
}

void rm__conn_observe_closed(struct st_rm_conn_t *c)
{
    (void)c;
}
