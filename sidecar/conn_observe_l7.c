/* Connections whose requests are observed, not decided: outbound ones to the mesh (the app is the client, the mTLS
 * upstream the server), and inbound ones without HTTP rules to apply. The client's first bytes tell whether an HTTP
 * filter (conn_filter.h) runs; in observe mode it allows every request, forwards it as the client wrote it (plus
 * the fields the report asks for, trace context), and reports each exchange (conn_observe.h). Passthrough
 * destinations (not in the mesh) never get here. */
#include "conn_observe.h"
#include "proxy_conn-t.h"
#include "req_out.h"

rm_http_verdict_t rm__conn_observe_decide(void *conn, const rm_http_request_t *req, rm_http_decision_t *out)
{
    rm__conn_observe_request(conn, req, RM_HTTP_ALLOW, out);
    return RM_HTTP_ALLOW;
}

/* Told from the first bytes only, never by waiting on a timer (design.md): bytes the client sends that no filter
 * claims, or a server that speaks first, make the connection plain bytes. An HTTP/2 server speaks first too (its
 * SETTINGS, as soon as it accepts), while its client sends the preface without waiting for it (RFC 9113 3.4): that
 * waits for the client's first bytes, as the policy's choice does (conn_authz.c). */
int rm__conn_observe_sniff(rm_conn_t *c)
{
    const rm_conn_filter_ops_t *f;
    int ret, need_more;

    /* read both ends, forward nothing yet; a side is read once it is ready (connected, handshake done) */
    if ((ret = rm_side_fill(&c->down, 0)) != 0 || (ret = rm_side_fill(&c->up, 0)) != 0)
        return ret;
    if (c->d2u.len == 0) {
        if (c->d2u.src_eof)
            goto Bytes;
        if ((c->u2d.len > 0 || c->u2d.src_eof) &&
            (!rm__conn_app_sent_h2_settings(&c->u2d) || (c->u2d.len >= 9 && rm_pipe_room(&c->u2d) == 0)))
            goto Bytes;
        return 0;
    }
    if ((f = rm__conn_pick_filter(c->d2u.buf + c->d2u.off, c->d2u.len, &need_more)) != NULL) {
        if (c->rq_dest != NULL) { /* traffic.requestBalancing: HTTP/1.x is served by the request path */
            if ((ret = rm__req_out_take(c, f)) <= 0 || ret == 2)
                return ret == 2 ? 0 : ret;
            if ((ret = rm__conn_connect_deferred(c)) != 0 || c->t.closing)
                return ret;
            if (!rm__conn_observed(c)) {
                c->authz_state = RM_CONN_AUTHZ_OFF;
                return 0;
            }
        }
        return rm__conn_l7_start(c, f, 1);
    }
    if (need_more && !c->d2u.src_eof && rm_pipe_room(&c->d2u) > 0)
        return 0;

Bytes:
    if (c->rq_dest != NULL && ((ret = rm__conn_connect_deferred(c)) != 0 || c->t.closing))
        return ret;
    c->authz_state = RM_CONN_AUTHZ_OFF;
    return 0;
}
