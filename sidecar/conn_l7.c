/* A connection filter (conn_filter.h) between the client and the app: the filter's input comes from the sides'
 * pipes, its output is staged in pipes of its own that the sides send from, and an answer that closes the
 * connection is followed by a short linger so that the client reads it. */
#include "conn_observe.h"
#include "h2_filter.h"
#include "proxy_conn-t.h"
#include "ringmesh/buffer_pool.h"
#include "ringmesh/tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define L7_BACKLOG   (64u * 1024) /* filter output a direction may hold before its input stops being read */
#define L7_LINGER_MS 5000         /* after an answer that closes: how long the client's bytes are read and dropped */

/* A filter's exchange ended: logged at debug level, then reported (conn_observe.h). */
static void l7_exchange_done(void *conn, const rm_http_exchange_t *ex)
{
    rm_conn_t *c = conn;
    if (rm_log_enabled(RM_LOG_DEBUG)) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_DEBUG, "http_exchange");
        rm__conn_log_fields(c, &l);
        rm_log_str(&l, "protocol", c->l7->ops->name);
        rm_log_uint(&l, "stream", ex->stream_id);
        rm_log_uint(&l, "status", ex->status);
        rm_log_int(&l, "grpc_status", ex->grpc_status);
        rm_log_uint(&l, "request_bytes", ex->request_bytes);
        rm_log_uint(&l, "response_bytes", ex->response_bytes);
        rm_log_bool(&l, "answered_by_proxy", ex->answered_by_proxy);
        rm_log_bool(&l, "complete", ex->complete);
        rm_log_end(&l);
    }
    rm__conn_observe_exchange(conn, ex);
}

int rm__conn_l7_start(rm_conn_t *c, const rm_conn_filter_ops_t *ops, int observe)
{
    int ret;
    if ((c->l7 = calloc(1, sizeof(*c->l7) + ops->size)) == NULL)
        return -ENOMEM;
    c->l7->ops = ops;
    c->l7->observe = (uint8_t)observe;
    if ((ret = ops->init(c->l7->state, observe ? rm__conn_observe_decide : rm__conn_decide_request, l7_exchange_done,
                         c)) != 0) {
        free(c->l7);
        c->l7 = NULL;
        return ret;
    }
    if (observe && ops->set_observe != NULL)
        ops->set_observe(c->l7->state);
    /* a pooled request connection (ringmesh/h2): the proxies' own fields never reach the app */
    if (ops == &rm_conn_filter_http2 && c->dir == RM_CONN_DIR_INBOUND && c->down.tls != NULL &&
        rm_tls_alpn_h2(c->down.tls))
        rm_h2_filter_strip_mesh_fields((rm_h2_filter_t *)(void *)c->l7->state);
    /* the filter's staging pipes are what the sides send from now on */
    c->up.tx = &c->l7->app_out;
    c->down.tx = &c->l7->client_out;
    c->authz_state = RM_CONN_AUTHZ_HTTP;
    return 0;
}

void rm__conn_l7_end(rm_conn_t *c)
{
    if (c->l7 == NULL || c->l7->ended)
        return;
    /* the exchanges still open end with the connection; the app's last response may end with its sending */
    c->l7->ended = 1;
    c->l7->ops->end(c->l7->state, c->u2d.src_eof && c->u2d.len == 0);
}

void rm__conn_l7_free(rm_conn_t *c)
{
    if (c->l7 == NULL)
        return;
    rm__conn_l7_end(c);
    c->l7->ops->dispose(c->l7->state);
    rm_bytebuf_free(&c->l7->to_app);
    rm_bytebuf_free(&c->l7->to_client);
    rm_buf_put(c->l7->app_out.buf);
    rm_buf_put(c->l7->client_out.buf);
    free(c->l7);
    c->l7 = NULL;
}

/* The filter ended the exchange (an answer that closes, or a protocol error): say so once. */
static void l7_result(rm_conn_t *c, int r, int from_app)
{
    if (r == 0 || c->l7->result != 0)
        return;
    c->l7->result = r;
    rm_log_line_t l;
    rm_log_begin(&l, r == RM_CONN_FILTER_CLOSE ? RM_LOG_DEBUG : RM_LOG_WARN, "http_connection_ended");
    rm__conn_log_fields(c, &l);
    rm_log_str(&l, "protocol", c->l7->ops->name);
    rm_log_str(&l, "from", from_app ? "app" : "client");
    rm_log_str(&l, "reason", c->l7->ops->reason(r, from_app));
    if (r < 0)
        rm_log_err(&l, "error", r);
    rm_log_end(&l);
}

/* Tells the filter how to normalize paths: the setting of the policies in force, which the next decision uses
 * (rm__conn_decide_request). */
static void l7_set_path_normalization(rm_conn_t *c)
{
    if (c->l7->observe) {
        c->l7->ops->set_path_normalization(c->l7->state, RM_PATH_NORMALIZATION_NONE); /* as the app wrote it */
        return;
    }
    rm_snapshot_t *now = rm_snapshot_current(c->w->proxy);
    rm_authz_t *az = now->authz != NULL || now->authz_required ? now->authz : c->snap->authz;
    rm_path_normalization_t mode = az != NULL ? az->wp.path_normalization : RM_PATH_NORMALIZATION_BASE;
    c->l7->ops->set_path_normalization(c->l7->state, mode);
}

/* Moves both directions of an HTTP connection through its filter. */
int rm__conn_l7_pump(rm_conn_t *c)
{
    rm__conn_l7_t *l = c->l7;
    int r, ret;

    l7_set_path_normalization(c);
    if ((ret = rm_side_fill(&c->down, 1)) != 0 || (ret = rm_side_fill(&c->up, 1)) != 0)
        return ret;
    /* Filter what the pipes hold, then fill them again so that their receives can go. A TLS source fills its pipe
     * at once from records already in its session, with no receive left to wake the connection later: filter those
     * bytes too, until a fill leaves a pipe empty (its receive is in flight) or the filter's output is full (a send
     * in flight wakes the connection). Each round takes at least one buffer of input, and a session holds at most
     * one input window, so this ends. */
    for (;;) {
        int fed = 0;
        /* the client's bytes: requests decided, allowed ones on to the app, answers to denied ones back */
        if (c->d2u.len > 0 && l->to_app.len < L7_BACKLOG && l->to_client.len < L7_BACKLOG) {
            r = l->ops->from_client(l->state, c->d2u.buf + c->d2u.off, c->d2u.len, &l->to_app, &l->to_client);
            if (r == -ENOMEM)
                return r;
            l7_result(c, r, 0);
            rm_pipe_consume(&c->d2u, c->d2u.len);
            fed = 1;
        }
        /* the app's bytes: responses, with the answers to denied requests put in order */
        if (c->u2d.len > 0 && l->to_client.len < L7_BACKLOG && l->to_app.len < L7_BACKLOG) {
            r = l->ops->from_app(l->state, c->u2d.buf + c->u2d.off, c->u2d.len, &l->to_app, &l->to_client);
            if (r == -ENOMEM)
                return r;
            l7_result(c, r, 1);
            rm_pipe_consume(&c->u2d, c->u2d.len);
            fed = 1;
        }
        if ((ret = rm_side_fill(&c->down, 1)) != 0 || (ret = rm_side_fill(&c->up, 1)) != 0)
            return ret;
        if (!fed || (c->d2u.len == 0 && c->u2d.len == 0))
            break;
    }
    /* stage the output in pipes: a send in flight reads a buffer that does not move */
    if (l->app_out.len == 0 && !rm_io_busy(&c->up.wr_op) && (ret = rm_pipe_append_from(&l->app_out, &l->to_app)) != 0)
        return ret;
    if ((ret = rm_pipe_append_from(&l->client_out, &l->to_client)) != 0)
        return ret;
    /* ends: a direction ends once its source has ended and everything before it went out; an answer that closes
     * (400, 431, 403 with connection: close) ends both once it has gone out */
    int client_done = (c->d2u.src_eof && c->d2u.len == 0) || l->result != 0;
    if (client_done && l->to_app.len == 0)
        l->app_out.src_eof = 1;
    if (((c->u2d.src_eof && c->u2d.len == 0) || l->result != 0) && l->to_client.len == 0)
        l->client_out.src_eof = 1;
    if ((ret = rm_side_drain(&c->up)) != 0 || (ret = rm_side_drain(&c->down)) != 0)
        return ret;
    if (l->result != 0 && rm_side_direction_done(&c->down)) {
        /* The closing answer is out: whatever the app still does, the exchange is over. A client still sending
         * (the rest of an oversized head) would get a reset from a close now, and a reset may destroy the answer
         * before the client has read it (RFC 9112 section 9.6): read and drop what it sends until it closes, for
         * at most L7_LINGER_MS. */
        if (c->d2u.src_eof || c->lingering == RM_CONN_LINGER_OVER) {
            c->close_reason = RM_CONN_CLOSE_EOF;
            c->t.closing = 1;
        } else if (c->lingering == RM_CONN_LINGER_NO) {
            c->lingering = RM_CONN_LINGER_ON;
            c->deadline_ms = rm_loop_now_ms(c->w->loop) + L7_LINGER_MS;
        }
    }
    return 0;
}
