/* The pooled HTTP/2 connections of the request path (req_conn.h). One connection is a side owner with one side and
 * an HTTP/2 client session; its progress reads what the peer sent into the session, lets the session's events reach
 * the streams' users, sends what the session queued, and then kicks the users that learned something. Failures end
 * the connection's streams with a cause their users can act on (UNSENT: send it elsewhere; CONN_LOST: 503 UC). */
#include "req_conn.h"

#include "req_pool.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define NGHTTP2_REFUSED_STREAM_CODE 0x7u /* RFC 9113 section 7 */
#define NGHTTP2_CANCEL_CODE         0x8u

typedef struct st_rm_req_ep_t {
    struct st_rm_req_ep_t *next;
    rm_sockaddr_t addr;
    char *identity, *sni;
    rm_tls_ctx_t *ctx; /* a reference; NULL: plain HTTP/2 */
    rm_req_conn_t *conns[RM_REQ_POOL_DEFAULT_MAX_CONNS * 4];
    size_t num_conns;
    rm_req_stream_t *wait_head, *wait_tail; /* streams waiting for a connection, in order */
    size_t num_users;                       /* connections (even failed ones not yet freed) and waiting streams */
} rm_req_ep_t;

struct st_rm_req_conn_t {
    rm_side_owner_t t;
    rm_side_t side;
    rm_pipe_t rx, tx;
    rm_h2s_t *h2;
    rm_req_pools_t *pools;
    rm_req_ep_t *ep;
    rm_req_conn_t *prev, *next; /* in the pools' list */
    rm_req_pool_conn_t st;      /* what req_pool.h decides on */
    rm_req_stream_t *streams;
    uint64_t deadline_ms; /* connect and handshake; 0 once ready */
    uint64_t pings_seen;
    uint8_t connecting, was_ready, failed, cancelled, in_ep;
};

struct st_rm_req_pools_t {
    rm_loop_t *loop;
    rm_req_pools_cfg_t cfg;
    _Atomic uint_fast64_t *handshakes;
    rm_req_ep_t *eps;
    rm_req_conn_t *conns;
    rm_req_user_t *kick_head, *kick_tail;
    rm_req_pools_stats_t stats;
    int kicking;
    rm_req_stream_t *opening; /* the stream rm_req_stream_open is placing: its failure is that call's NULL */
    int opening_failed;
};

static void conn_progress(rm_side_owner_t *o);
static void conn_fail(rm_req_conn_t *pc, const char *why, int err);
static void ep_dispatch(rm_req_pools_t *p, rm_req_ep_t *ep);

/* ------------------------------------------------------------------ users and kicks */

static void kick_queue(rm_req_pools_t *p, rm_req_user_t *u)
{
    if (u == NULL || u->kick_queued)
        return;
    u->kick_queued = 1;
    u->kick_next = NULL;
    u->kick_prev = p->kick_tail;
    if (p->kick_tail != NULL)
        p->kick_tail->kick_next = u;
    else
        p->kick_head = u;
    p->kick_tail = u;
}

void rm_req_user_unlink(rm_req_pools_t *p, rm_req_user_t *u)
{
    if (p == NULL || !u->kick_queued)
        return;
    if (u->kick_prev != NULL)
        u->kick_prev->kick_next = u->kick_next;
    else
        p->kick_head = u->kick_next;
    if (u->kick_next != NULL)
        u->kick_next->kick_prev = u->kick_prev;
    else
        p->kick_tail = u->kick_prev;
    u->kick_prev = u->kick_next = NULL;
    u->kick_queued = 0;
}

/* Lets each user that learned something act on it; a user kicked may queue others (or itself) again. Not nested: a
 * kick that leads back here (a stream it opens failing at once) leaves the rest to the outer loop. */
static void run_kicks(rm_req_pools_t *p)
{
    if (p->kicking)
        return;
    p->kicking = 1;
    for (unsigned guard = 0; p->kick_head != NULL && guard < 100000; guard++) {
        rm_req_user_t *u = p->kick_head;
        rm_req_user_unlink(p, u);
        u->ops->kick(u);
    }
    p->kicking = 0;
}

/* ------------------------------------------------------------------ streams */

static void stream_free(rm_req_stream_t *st)
{
    free(st->hblock);
    free(st);
}

/* Ends a stream for its user (when it still has one) and frees it. */
static void stream_end(rm_req_pools_t *p, rm_req_stream_t *st, rm_req_stream_end_t how, uint32_t code)
{
    rm_req_user_t *u = st->user;
    if (st->conn != NULL && st->conn->h2 != NULL)
        rm_h2s_body_clear(st->conn->h2, &st->body);
    else if (st->body.buf != NULL) {
        rm_buf_put(st->body.buf);
        st->body.buf = NULL;
    }
    if (how == RM_REQ_STREAM_UNSENT)
        p->stats.streams_unsent++;
    if (st == p->opening) {
        p->opening_failed = 1;
        u = NULL;
    }
    stream_free(st);
    if (u != NULL) {
        u->ops->on_close(u, how, code);
        kick_queue(p, u);
    }
}

static void conn_unlink_stream(rm_req_conn_t *pc, rm_req_stream_t *st)
{
    for (rm_req_stream_t **pp = &pc->streams; *pp != NULL; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            return;
        }
}

/* Puts a waiting stream on connection pc: its HEADERS go into the session. Returns 0 or an error (the stream is then
 * still the caller's). */
static int stream_submit(rm_req_conn_t *pc, rm_req_stream_t *st)
{
    int32_t sid = rm_h2s_request(pc->h2, st->h, st->num_h, st->has_body ? &st->body : NULL, st);
    if (sid < 0)
        return sid;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    st->submitted_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    st->sid = sid;
    st->conn = pc;
    st->headers_sent = 1;
    free(st->hblock);
    st->hblock = NULL;
    st->h = NULL;
    st->next = pc->streams;
    pc->streams = st;
    pc->st.open_streams = (uint32_t)rm_h2s_open_streams(pc->h2);
    pc->pools->stats.streams++;
    if (st->user != NULL && st->has_body) {
        st->user->body_room = 1; /* the body may be written now */
        kick_queue(pc->pools, st->user);
    }
    return 0;
}

/* ------------------------------------------------------------------ the session's events */

static int h2_on_headers(rm_h2s_t *s, int32_t sid, void *sd, const rm_http_header_t *h, size_t n, int end)
{
    rm_req_stream_t *st = sd;
    (void)s, (void)sid;
    if (st == NULL || st->user == NULL)
        return 0;
    int trailers = 1;
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0) {
            trailers = 0;
            if (h[i].value_len == 3 && h[i].value[0] == '1' && !end)
                return 0; /* 1xx: the final response follows */
        }
    st->user->ops->on_head(st->user, h, n, trailers, end);
    kick_queue(st->conn->pools, st->user);
    return 0;
}

static int h2_on_data(rm_h2s_t *s, int32_t sid, void *sd, const uint8_t *p, size_t n)
{
    rm_req_stream_t *st = sd;
    if (st == NULL || st->user == NULL) {
        rm_h2s_consume(s, sid, n); /* nobody reads them: the window goes back at once */
        return 0;
    }
    st->unconsumed += n;
    int r = st->user->ops->on_data(st->user, p, n);
    kick_queue(st->conn->pools, st->user);
    return r;
}

static int h2_on_end(rm_h2s_t *s, int32_t sid, void *sd)
{
    rm_req_stream_t *st = sd;
    (void)s, (void)sid;
    if (st != NULL && st->user != NULL) {
        st->user->ops->on_end(st->user);
        kick_queue(st->conn->pools, st->user);
    }
    return 0;
}

static void h2_on_close(rm_h2s_t *s, int32_t sid, void *sd, uint32_t code)
{
    rm_req_stream_t *st = sd;
    rm_req_conn_t *pc = rm_h2s_owner(s);
    if (st == NULL)
        return;
    if (st->unconsumed > 0) /* the connection's window: the stream's own went with it */
        rm_h2s_consume(s, sid, st->unconsumed);
    st->unconsumed = 0;
    conn_unlink_stream(pc, st);
    pc->st.open_streams = (uint32_t)rm_h2s_open_streams(pc->h2);
    if (pc->st.open_streams == 0)
        pc->st.idle_since_ms = rm_loop_now_ms(pc->t.loop);
    stream_end(pc->pools, st,
               code == 0                             ? RM_REQ_STREAM_DONE
               : code == NGHTTP2_REFUSED_STREAM_CODE ? RM_REQ_STREAM_UNSENT
                                                     : RM_REQ_STREAM_RESET,
               code);
}

static void h2_on_body_room(rm_h2s_t *s, int32_t sid, void *sd)
{
    rm_req_stream_t *st = sd;
    (void)s, (void)sid;
    if (st != NULL && st->user != NULL) {
        st->user->body_room = 1;
        kick_queue(st->conn->pools, st->user);
    }
}

static const rm_h2s_cbs_t h2_cbs = {h2_on_headers, h2_on_data, h2_on_end, h2_on_close, h2_on_body_room};

/* ------------------------------------------------------------------ one connection */

static void conn_side_error(rm_side_owner_t *o, rm_side_t *s, rm_side_error_t kind, int err)
{
    rm_req_conn_t *pc = rm_container_of(o, rm_req_conn_t, t);
    (void)s;
    conn_fail(pc, kind == RM_SIDE_RESET ? "reset by the peer" : "I/O error", err);
}

static void conn_side_ktls(rm_side_owner_t *o, rm_side_t *s, const char *failed_step, int err)
{
    (void)o, (void)s, (void)failed_step, (void)err; /* the pooled connections keep their records in the proxy */
}

static const rm_side_owner_ops_t conn_ops = {conn_progress, conn_side_error, conn_side_ktls};

static void ep_remove_conn(rm_req_ep_t *ep, rm_req_conn_t *pc)
{
    for (size_t i = 0; i < ep->num_conns; i++)
        if (ep->conns[i] == pc) {
            ep->conns[i] = ep->conns[--ep->num_conns];
            break;
        }
    pc->in_ep = 0;
}

static void ep_release(rm_req_pools_t *p, rm_req_ep_t *ep)
{
    if (--ep->num_users > 0)
        return;
    for (rm_req_ep_t **pp = &p->eps; *pp != NULL; pp = &(*pp)->next)
        if (*pp == ep) {
            *pp = ep->next;
            break;
        }
    if (ep->ctx != NULL)
        rm_tls_ctx_unref(ep->ctx);
    free(ep->identity);
    free(ep->sni);
    free(ep);
}

static void conn_free(rm_req_conn_t *pc)
{
    rm_req_pools_t *p = pc->pools;
    rm_h2s_free(pc->h2);
    pc->h2 = NULL;
    rm_side_close(&pc->side);
    rm_pipe_free(&pc->rx);
    rm_pipe_free(&pc->tx);
    if (pc->prev != NULL)
        pc->prev->next = pc->next;
    else
        p->conns = pc->next;
    if (pc->next != NULL)
        pc->next->prev = pc->prev;
    if (pc->in_ep)
        ep_remove_conn(pc->ep, pc);
    ep_release(p, pc->ep);
    free(pc);
}

/* Ends the connection: its streams end (UNSENT when it never became ready, else CONN_LOST), the endpoint's waiting
 * streams go to another of its connections or end UNSENT when none is left, and its socket is closed once nothing is
 * in flight. */
// NOLINTNEXTLINE(misc-no-recursion): bounded: each connection fails once (pc->failed)
static void conn_fail(rm_req_conn_t *pc, const char *why, int err)
{
    rm_req_pools_t *p = pc->pools;
    rm_req_ep_t *ep = pc->ep;
    if (pc->failed)
        return;
    pc->failed = 1;
    pc->st.draining = 1;
    pc->t.closing = 1;
    if (why != NULL) {
        /* a connection that never served, or that takes streams with it, failed; one closed while idle is news */
        int failed = !pc->was_ready || rm_h2s_open_streams(pc->h2) > 0;
        rm_log_line_t l;
        p->stats.conns_failed += (uint64_t)failed;
        rm_log_begin(&l, failed ? RM_LOG_WARN : RM_LOG_INFO,
                     failed ? "pooled_connection_failed" : "pooled_connection_closed");
        rm_log_addr(&l, "endpoint", (const struct sockaddr *)&ep->addr.ss);
        rm_log_str(&l, "expected_identity", ep->identity);
        rm_log_str(&l, "reason", why);
        if (err != 0)
            rm_log_err(&l, "error", err);
        rm_log_uint(&l, "streams", rm_h2s_open_streams(pc->h2));
        rm_log_end(&l);
    }
    if (pc->in_ep)
        ep_remove_conn(ep, pc);
    while (pc->streams != NULL) {
        rm_req_stream_t *st = pc->streams;
        pc->streams = st->next;
        rm_h2s_set_stream_data(pc->h2, st->sid, NULL);
        stream_end(p, st, pc->was_ready ? RM_REQ_STREAM_CONN_LOST : RM_REQ_STREAM_UNSENT, 0);
    }
    if (!pc->was_ready) {
        /* the endpoint could not be reached: what waits for it goes elsewhere */
        int others = 0;
        for (size_t i = 0; i < ep->num_conns; i++)
            others |= !ep->conns[i]->failed;
        while (!others && ep->wait_head != NULL) {
            rm_req_stream_t *st = ep->wait_head;
            ep->wait_head = st->next;
            if (ep->wait_head == NULL)
                ep->wait_tail = NULL;
            ep->num_users--; /* never the last: pc holds one */
            stream_end(p, st, RM_REQ_STREAM_UNSENT, 0);
        }
    }
    if (!pc->cancelled) {
        pc->cancelled = 1;
        rm_side_cancel(&pc->side);
    }
    ep_dispatch(p, ep);
}

/* Copies what the session has to send into the side's pipe and sends it. */
// NOLINTNEXTLINE(misc-no-recursion): bounded: each connection fails once (pc->failed)
static void conn_flush(rm_req_conn_t *pc)
{
    int ret;
    if (pc->failed || !pc->side.ready)
        return;
    while (rm_h2s_want_write(pc->h2)) {
        if ((ret = rm_pipe_reserve(&pc->tx)) != 0) {
            conn_fail(pc, "no memory for a buffer", ret);
            return;
        }
        size_t room = rm_pipe_room(&pc->tx);
        if (room == 0)
            break; /* the rest once the send in flight is back */
        long n = rm_h2s_output(pc->h2, pc->tx.buf + pc->tx.off + pc->tx.len, room);
        if (n < 0) {
            conn_fail(pc, "HTTP/2 session error", (int)n);
            return;
        }
        if (n == 0)
            break;
        pc->tx.len += (size_t)n;
    }
    rm_pipe_release_if_empty(&pc->tx);
    if ((ret = rm_side_drain(&pc->side)) != 0)
        conn_fail(pc, "send failed", ret);
}

static void conn_became_ready(rm_req_conn_t *pc)
{
    uint64_t now = rm_loop_now_ms(pc->t.loop);
    pc->was_ready = 1;
    pc->st.ready = 1;
    pc->st.idle_since_ms = pc->st.last_recv_ms = now;
    pc->deadline_ms = 0;
}

/* Reads what arrived into the session. Returns 0, or -1 when the connection failed. */
static int conn_read(rm_req_conn_t *pc)
{
    for (;;) { /* ends: each fill either yields bytes the peer sent or submits a receive */
        if (pc->rx.len > 0) {
            long r = rm_h2s_feed(pc->h2, pc->rx.buf + pc->rx.off, pc->rx.len);
            if (r < 0) {
                conn_flush(pc); /* its GOAWAY */
                conn_fail(pc, "the peer broke the HTTP/2 protocol", (int)r);
                return -1;
            }
            rm_pipe_consume(&pc->rx, pc->rx.len);
            pc->st.last_recv_ms = rm_loop_now_ms(pc->t.loop);
            if (pc->failed)
                return -1;
        }
        if (pc->rx.src_eof) {
            conn_fail(pc, "closed by the peer", 0);
            return -1;
        }
        int ret = rm_side_fill(&pc->side, 0);
        if (ret != 0) {
            conn_fail(pc, "receive failed", ret);
            return -1;
        }
        if (pc->rx.len == 0) {
            if (pc->side.rd_eof || pc->rx.src_eof) { /* the peer's FIN (or close_notify), nothing more to read */
                conn_fail(pc, "closed by the peer", 0);
                return -1;
            }
            return 0;
        }
    }
}

static void conn_progress(rm_side_owner_t *o)
{
    rm_req_conn_t *pc = rm_container_of(o, rm_req_conn_t, t);
    rm_req_pools_t *p = pc->pools;
    int ret, r;

    if (pc->t.closing) {
        if (!pc->failed)
            conn_fail(pc, NULL, 0);
        if (pc->t.pending == 0)
            conn_free(pc);
        run_kicks(p);
        return;
    }
    if (pc->connecting)
        return;
    if (pc->side.tls != NULL && !pc->side.ready) {
        if ((ret = rm_side_handshake(&pc->side, &r)) != 0) {
            conn_fail(pc, "handshake I/O failed", ret);
            goto Kicks;
        }
        if (r == RM_ERR_TLS_WANT_IO)
            return;
        if (r != 0) {
            conn_fail(pc, "the endpoint's handshake was refused (identity, ALPN ringmesh/h2, or TLS)", r);
            goto Kicks;
        }
        p->stats.handshakes++;
        if (p->handshakes != NULL)
            atomic_fetch_add_explicit(p->handshakes, 1, memory_order_relaxed);
        conn_became_ready(pc);
    }
    if (conn_read(pc) != 0)
        goto Kicks;
    if (pc->st.ping_out && rm_h2s_pings_acked(pc->h2) != pc->pings_seen) {
        pc->pings_seen = rm_h2s_pings_acked(pc->h2);
        pc->st.ping_out = 0;
    }
    if (rm_h2s_goaway_received(pc->h2) && !pc->st.draining) {
        pc->st.draining = 1;
        if (pc->in_ep)
            ep_remove_conn(pc->ep, pc);
    }
    ep_dispatch(p, pc->ep);
    conn_flush(pc);
    if (!pc->failed && (!rm_h2s_alive(pc->h2) || (pc->st.draining && rm_h2s_open_streams(pc->h2) == 0)))
        conn_fail(pc, rm_h2s_goaway_received(pc->h2) ? "GOAWAY from the peer" : NULL, 0);
    if (pc->failed && pc->t.pending == 0)
        conn_free(pc);
Kicks:
    run_kicks(p);
}

static void conn_on_connect(rm_io_op_t *op, int res)
{
    rm_side_t *s = rm_container_of(op, rm_side_t, conn_op);
    rm_req_conn_t *pc = rm_container_of(s, rm_req_conn_t, side);
    pc->t.pending--;
    pc->connecting = 0;
    if (res != 0 && !pc->t.closing) {
        conn_fail(pc, "connect failed", res);
    } else if (!pc->t.closing) {
        int one = 1;
        setsockopt(s->h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pc->t.last_active_ms = rm_loop_now_ms(pc->t.loop);
        if (s->tls == NULL) {
            s->ready = 1;
            conn_became_ready(pc);
        }
    }
    conn_progress(&pc->t);
}

int rm_endpoint_tls_new(rm_tls_t **out, rm_tls_ctx_t *ctx, const char *const *identity, const char *sni, unsigned flags)
{
    int ret;
    if ((ret = rm_tls_new(out, ctx, identity, identity != NULL ? 1 : 0, flags)) != 0)
        return ret;
    if (sni != NULL && (ret = rm_tls_set_server_name(*out, sni)) != 0)
        return ret;
    return 0;
}

/* Opens one more connection to the endpoint. Returns it, or NULL (logged) when it could not even start. */
static rm_req_conn_t *conn_open(rm_req_pools_t *p, rm_req_ep_t *ep)
{
    rm_req_conn_t *pc;
    int ret;

    if (ep->num_conns == sizeof(ep->conns) / sizeof(ep->conns[0]) || (pc = calloc(1, sizeof(*pc))) == NULL)
        return NULL;
    pc->pools = p;
    pc->ep = ep;
    pc->t.loop = p->loop;
    pc->t.ops = &conn_ops;
    pc->st.max_streams = 100;
    rm_side_init(&pc->side, &pc->t, &pc->rx, &pc->tx);
    if ((pc->h2 = rm_h2s_new(0, &h2_cbs, NULL, pc)) == NULL) {
        free(pc);
        return NULL;
    }
    if (ep->ctx != NULL && (ret = rm_endpoint_tls_new(&pc->side.tls, ep->ctx, (const char *const *)&ep->identity,
                                                      ep->sni, RM_TLS_REQUIRE_MESH_ALPN | RM_TLS_OFFER_H2)) != 0)
        goto Fail;
    if ((ret = rm_side_connect(&pc->side, (const struct sockaddr *)&ep->addr.ss, ep->addr.len, conn_on_connect)) != 0)
        goto Fail;
    pc->connecting = 1;
    pc->deadline_ms = rm_loop_now_ms(p->loop) + p->cfg.connect_timeout_ms;
    pc->next = p->conns;
    if (p->conns != NULL)
        p->conns->prev = pc;
    p->conns = pc;
    ep->conns[ep->num_conns++] = pc;
    pc->in_ep = 1;
    ep->num_users++;
    p->stats.conns_opened++;
    return pc;

Fail : {
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_WARN, "pooled_connection_failed");
    rm_log_addr(&l, "endpoint", (const struct sockaddr *)&ep->addr.ss);
    rm_log_str(&l, "reason", "could not start the connection");
    rm_log_err(&l, "error", ret);
    rm_log_end(&l);
}
    rm_h2s_free(pc->h2);
    rm_side_close(&pc->side);
    free(pc);
    return NULL;
}

/* Gives waiting streams to the endpoint's connections, opening one when req_pool.h says so. */
// NOLINTNEXTLINE(misc-no-recursion): bounded: each connection fails once (pc->failed)
static void ep_dispatch(rm_req_pools_t *p, rm_req_ep_t *ep)
{
    rm_req_pool_conn_t view[sizeof(ep->conns) / sizeof(ep->conns[0])];
    size_t max = p->cfg.max_conns != 0 ? p->cfg.max_conns : RM_REQ_POOL_DEFAULT_MAX_CONNS;

    while (ep->wait_head != NULL) {
        size_t idx = 0;
        if (ep->wait_head->user == NULL) {
            /* cancelled while it waited: nothing of it is sent */
            rm_req_stream_t *st = ep->wait_head;
            ep->wait_head = st->next;
            if (ep->wait_head == NULL)
                ep->wait_tail = NULL;
            stream_end(p, st, RM_REQ_STREAM_UNSENT, 0);
            if (ep->num_users == 1) {
                ep_release(p, ep);
                return;
            }
            ep->num_users--;
            continue;
        }
        for (size_t i = 0; i < ep->num_conns; i++) {
            rm_req_conn_t *pc = ep->conns[i];
            pc->st.open_streams = (uint32_t)rm_h2s_open_streams(pc->h2);
            pc->st.max_streams = rm_h2s_can_open(pc->h2) ? pc->st.open_streams + 1 : pc->st.open_streams;
            view[i] = pc->st;
        }
        rm_req_pool_action_t a = rm_req_pool_choose(view, ep->num_conns, max, &idx);
        if (a == RM_REQ_POOL_WAIT) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_DEBUG, "pool_wait");
            rm_log_addr(&l, "endpoint", (const struct sockaddr *)&ep->addr.ss);
            rm_log_uint(&l, "conns", ep->num_conns);
            for (size_t i = 0; i < ep->num_conns && i < 2; i++) {
                rm_log_uint(&l, i ? "c1_ready" : "c0_ready", view[i].ready);
                rm_log_uint(&l, i ? "c1_open" : "c0_open", view[i].open_streams);
                rm_log_uint(&l, i ? "c1_max" : "c0_max", view[i].max_streams);
                rm_log_uint(&l, i ? "c1_drain" : "c0_drain", view[i].draining);
            }
            rm_log_end(&l);
            return;
        }
        if (a == RM_REQ_POOL_OPEN) {
            if (conn_open(p, ep) == NULL) {
                /* could not open one: what waits ends UNSENT unless a connection is on its way */
                if (ep->num_conns > 0)
                    return;
                rm_req_stream_t *st = ep->wait_head;
                ep->wait_head = st->next;
                if (ep->wait_head == NULL)
                    ep->wait_tail = NULL;
                stream_end(p, st, RM_REQ_STREAM_UNSENT, 0);
                ep_release(p, ep); /* may free ep when that was its last user */
                return;
            }
            continue;
        }
        rm_req_conn_t *pc = ep->conns[idx];
        rm_req_stream_t *st = ep->wait_head;
        ep->wait_head = st->next;
        if (ep->wait_head == NULL)
            ep->wait_tail = NULL;
        if (stream_submit(pc, st) != 0) {
            stream_end(p, st, RM_REQ_STREAM_UNSENT, 0);
            ep_release(p, ep);
            return;
        }
        ep->num_users--; /* the connection holds ep now */
        conn_flush(pc);
    }
}

/* ------------------------------------------------------------------ the pools */

rm_req_pools_t *rm_req_pools_new(rm_loop_t *loop, const rm_req_pools_cfg_t *cfg, _Atomic uint_fast64_t *handshakes)
{
    rm_req_pools_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->cfg = *cfg;
    if (p->cfg.idle_ms == 0)
        p->cfg.idle_ms = RM_REQ_POOL_DEFAULT_IDLE_MS;
    if (p->cfg.ping_ms == 0)
        p->cfg.ping_ms = RM_REQ_POOL_DEFAULT_PING_MS;
    if (p->cfg.connect_timeout_ms == 0)
        p->cfg.connect_timeout_ms = 10000;
    if (p->cfg.max_conns > sizeof(((rm_req_ep_t *)NULL)->conns) / sizeof(rm_req_conn_t *))
        p->cfg.max_conns = sizeof(((rm_req_ep_t *)NULL)->conns) / sizeof(rm_req_conn_t *);
    p->handshakes = handshakes;
    return p;
}

void rm_req_pools_shutdown(rm_req_pools_t *p)
{
    if (p == NULL)
        return;
    for (rm_req_conn_t *pc = p->conns, *next; pc != NULL; pc = next) {
        next = pc->next;
        conn_fail(pc, NULL, 0);
    }
    for (rm_req_ep_t *ep = p->eps; ep != NULL; ep = ep->next)
        while (ep->wait_head != NULL) {
            rm_req_stream_t *st = ep->wait_head;
            ep->wait_head = st->next;
            if (ep->wait_head == NULL)
                ep->wait_tail = NULL;
            ep->num_users--;
            stream_end(p, st, RM_REQ_STREAM_UNSENT, 0);
        }
    for (rm_req_conn_t *pc = p->conns, *next; pc != NULL; pc = next) {
        next = pc->next;
        if (pc->t.pending == 0)
            conn_free(pc);
    }
    run_kicks(p);
}

int rm_req_pools_busy(const rm_req_pools_t *p)
{
    return p != NULL && p->conns != NULL;
}

void rm_req_pools_free(rm_req_pools_t *p)
{
    if (p == NULL)
        return;
    rm_req_pools_shutdown(p);
    for (rm_req_conn_t *pc = p->conns, *next; pc != NULL; pc = next) {
        next = pc->next;
        conn_free(pc); /* ops left in flight: the loop is going away with them */
    }
    while (p->eps != NULL) {
        rm_req_ep_t *ep = p->eps;
        ep->num_users = 1;
        ep_release(p, ep);
    }
    free(p);
}

void rm_req_pools_tick(rm_req_pools_t *p, uint64_t now_ms)
{
    if (p == NULL)
        return;
    for (rm_req_conn_t *pc = p->conns, *next; pc != NULL; pc = next) {
        next = pc->next;
        if (pc->failed) {
            if (pc->t.pending == 0)
                conn_free(pc);
            continue;
        }
        if (pc->deadline_ms != 0 && now_ms >= pc->deadline_ms) {
            conn_fail(pc, pc->connecting ? "connect timed out" : "handshake timed out", -ETIMEDOUT);
            continue;
        }
        if (!pc->st.ready)
            continue;
        pc->st.open_streams = (uint32_t)rm_h2s_open_streams(pc->h2);
        if (rm_req_pool_should_close(&pc->st, now_ms, p->cfg.idle_ms)) {
            conn_fail(pc, NULL, 0);
            continue;
        }
        if (rm_req_pool_ping_lost(&pc->st, now_ms, p->cfg.ping_ms)) {
            conn_fail(pc, "keepalive PING unanswered", -ETIMEDOUT);
            continue;
        }
        if (rm_req_pool_ping_due(&pc->st, now_ms, p->cfg.ping_ms) && rm_h2s_ping(pc->h2) == 0) {
            pc->st.ping_out = 1;
            pc->st.last_recv_ms = now_ms; /* the ACK is due within ping_ms from now */
            pc->pings_seen = rm_h2s_pings_acked(pc->h2);
            conn_flush(pc);
        }
    }
    run_kicks(p);
}

rm_req_pools_stats_t rm_req_pools_stats(const rm_req_pools_t *p)
{
    return p->stats;
}

static rm_req_ep_t *ep_find(rm_req_pools_t *p, const rm_req_target_t *t)
{
    rm_req_ep_t *ep;
    for (ep = p->eps; ep != NULL; ep = ep->next)
        if (ep->ctx == t->ctx && ep->addr.len == t->addr->len &&
            memcmp(&ep->addr.ss, &t->addr->ss, t->addr->len) == 0 &&
            strcmp(ep->identity, t->identity != NULL ? t->identity : "") == 0)
            return ep;
    if ((ep = calloc(1, sizeof(*ep))) == NULL)
        return NULL;
    ep->addr = *t->addr;
    if ((ep->identity = strdup(t->identity != NULL ? t->identity : "")) == NULL ||
        (t->sni != NULL && (ep->sni = strdup(t->sni)) == NULL)) {
        free(ep->identity);
        free(ep);
        return NULL;
    }
    if ((ep->ctx = t->ctx) != NULL)
        rm_tls_ctx_ref(ep->ctx);
    ep->next = p->eps;
    p->eps = ep;
    return ep;
}

rm_req_stream_t *rm_req_stream_open(rm_req_pools_t *p, const rm_req_target_t *t, const rm_http_header_t *h, size_t n,
                                    int has_body, rm_req_user_t *user)
{
    rm_req_stream_t *st;
    rm_req_ep_t *ep;
    size_t bytes = 0;

    if ((ep = ep_find(p, t)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        bytes += h[i].name_len + h[i].value_len;
    if ((st = calloc(1, sizeof(*st))) == NULL || (st->hblock = malloc(n * sizeof(*h) + bytes + 1)) == NULL) {
        free(st);
        ep->num_users++;
        ep_release(p, ep);
        return NULL;
    }
    st->h = st->hblock;
    char *w = (char *)(st->h + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(w, h[i].name, h[i].name_len);
        st->h[i].name = w;
        st->h[i].name_len = h[i].name_len;
        w += h[i].name_len;
        memcpy(w, h[i].value, h[i].value_len);
        st->h[i].value = w;
        st->h[i].value_len = h[i].value_len;
        w += h[i].value_len;
    }
    st->num_h = n;
    st->has_body = (uint8_t)(has_body != 0);
    st->user = user;
    ep->num_users++;
    if (ep->wait_tail != NULL)
        ep->wait_tail->next = st;
    else
        ep->wait_head = st;
    ep->wait_tail = st;
    p->opening = st;
    p->opening_failed = 0;
    ep_dispatch(p, ep);
    p->opening = NULL;
    return p->opening_failed ? NULL : st;
}

size_t rm_req_stream_room(const rm_req_stream_t *st)
{
    if (st->conn == NULL || st->conn->failed || st->body.eof)
        return 0;
    size_t cap = st->body.buf != NULL ? rm_buf_size(st->body.buf) : RM_BUF_SIZE;
    /* what rm_h2s_body_write takes: the tail behind the bytes, or all the free room once they reach the end */
    return st->body.off + st->body.len == cap ? cap - st->body.len : cap - st->body.off - st->body.len;
}

long rm_req_stream_write(rm_req_stream_t *st, const uint8_t *p, size_t n)
{
    if (st->conn == NULL || st->conn->failed)
        return -EAGAIN;
    long r = rm_h2s_body_write(st->conn->h2, st->sid, &st->body, p, n);
    conn_flush(st->conn);
    return r;
}

int rm_req_stream_end(rm_req_stream_t *st)
{
    if (st->conn == NULL || st->conn->failed)
        return -EAGAIN;
    int r = rm_h2s_body_end(st->conn->h2, st->sid, &st->body, NULL, 0);
    conn_flush(st->conn);
    return r;
}

void rm_req_stream_consume(rm_req_stream_t *st, size_t n)
{
    if (n > st->unconsumed)
        n = st->unconsumed;
    if (st->conn == NULL || st->conn->failed || n == 0)
        return;
    st->unconsumed -= n;
    rm_h2s_consume(st->conn->h2, st->sid, n);
    conn_flush(st->conn);
}

void rm_req_stream_cancel(rm_req_stream_t *st)
{
    rm_req_conn_t *pc = st->conn;
    st->user = NULL;
    if (pc == NULL)
        return; /* still waiting: the dispatcher drops it, unsent, when its turn comes */
    if (!pc->failed) {
        if (st->unconsumed > 0)
            rm_h2s_consume(pc->h2, st->sid, st->unconsumed);
        st->unconsumed = 0;
        rm_h2s_reset(pc->h2, st->sid, NGHTTP2_CANCEL_CODE);
        conn_flush(pc);
    }
}

void rm_req_stream_flush(rm_req_stream_t *st)
{
    if (st->conn != NULL)
        conn_flush(st->conn);
}
