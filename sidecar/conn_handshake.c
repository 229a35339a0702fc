/* The connection's side of inbound handshake isolation: admission by the handshake guard before any cryptography
 * (handshake_guard.h), and the hand-off of handshake steps to the handshake threads (handshake_pool.h). Part of the
 * connection module (proxy_conn-t.h). */
#include "proxy_conn-t.h"

#include "ringmesh/error.h"

static void limits_of(rm_conn_t *c, rm_hs_limits_t *lim)
{
    const rm_proxy_config_t *cfg = rm__conn_cfg(c);
    lim->max_pending = cfg->max_pending_handshakes;
    lim->backoff_failures = cfg->handshake_backoff_failures;
    lim->window_ms = cfg->handshake_failure_window_ms;
    lim->backoff_ms = cfg->handshake_backoff_ms;
}

int rm__conn_handshake_admit(rm_conn_t *c)
{
    rm_hs_limits_t lim;
    rm_hs_verdict_t v;

    limits_of(c, &lim);
    rm_sockaddr_t src = rm_conn_addr_get(&c->src);
    v = rm_hs_guard_admit(c->w->proxy->hs_guard, &lim, &src, rm_loop_now_ms(c->w->loop));
    if (v == RM_HS_ADMIT || v == RM_HS_ADMIT_TRUSTED) {
        c->hs.admitted = 1;
        c->hs.known = v == RM_HS_ADMIT_TRUSTED;
        return 0;
    }
    /* logged and counted by the guard (the first of a burst, then counts), not as a peer_rejected line each */
    c->rejected_logged = 1;
    c->close_reason = RM_CONN_CLOSE_REJECTED;
    rm__conn_abort(c, RM_CONN_CLOSE_REJECTED);
    return 1;
}

void rm__conn_handshake_end(rm_conn_t *c, int failed)
{
    rm_hs_limits_t lim;
    if (!c->hs.admitted)
        return;
    c->hs.admitted = 0;
    limits_of(c, &lim);
    rm_sockaddr_t src = rm_conn_addr_get(&c->src);
    rm_hs_guard_end(c->w->proxy->hs_guard, &lim, &src, failed, rm_loop_now_ms(c->w->loop));
}

int rm__conn_handshake_offload(rm_conn_t *c, rm_side_t *s)
{
    rm_hs_pool_t *pool = c->w->proxy->hs_pool;

    /* Inbound only: a peer chooses when to start those; the proxy's own outbound handshakes stay on the worker, at
     * its priority. So do those of a known peer (an address whose last handshake completed): on a CPU that the
     * workers keep busy, the handshake threads' low priority would keep the mesh's own reconnections waiting
     * behind a flood. A step with no new bytes to work on is quick (the session only asks for more): here too. While
     * an operation of the side is in flight, the session is not the step's alone: here. */
    if (pool == NULL || c->dir != RM_CONN_DIR_INBOUND || c->hs.known || rm_tls_in_pending(s->tls) == 0 ||
        rm_io_busy(&s->rd_op) || rm_io_busy(&s->wr_op) || rm_tls_out_reserve(s->tls) != 0)
        return 0;
    c->hs.tls = s->tls;
    c->hs.reply = &c->w->hs_reply;
    c->hs.busy = 1;
    c->hs.done = 0;
    atomic_store_explicit(&c->hs.cancelled, 0, memory_order_relaxed);
    c->t.pending++; /* the connection is not freed while the thread has its session */
    rm_hs_pool_submit(pool, &c->hs);
    return 1;
}

void rm__conn_handshake_cancel(rm_conn_t *c)
{
    if (c->hs.busy)
        atomic_store_explicit(&c->hs.cancelled, 1, memory_order_release);
}
