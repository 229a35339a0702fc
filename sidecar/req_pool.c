/* Decisions of the pool of connections to one endpoint (req_pool.h). Streams go to the least busy connection so
 * that a connection closing (GOAWAY, idle) takes few requests with it; a second connection is opened only when
 * the first is full, so the usual case is one connection, one handshake, per endpoint and worker. */
#include "req_pool.h"

rm_req_pool_action_t rm_req_pool_choose(const rm_req_pool_conn_t *conns, size_t n, size_t max_conns, size_t *idx)
{
    size_t best = n, live = 0;
    int connecting = 0;
    for (size_t i = 0; i < n; i++) {
        const rm_req_pool_conn_t *c = &conns[i];
        if (c->draining)
            continue;
        live++;
        if (!c->ready) {
            connecting = 1;
            continue;
        }
        if (c->open_streams >= c->max_streams)
            continue;
        if (best == n || c->open_streams < conns[best].open_streams)
            best = i;
    }
    if (best < n) {
        *idx = best;
        return RM_REQ_POOL_USE;
    }
    if (connecting)
        return RM_REQ_POOL_WAIT;
    return live < max_conns ? RM_REQ_POOL_OPEN : RM_REQ_POOL_WAIT;
}

int rm_req_pool_should_close(const rm_req_pool_conn_t *c, uint64_t now_ms, uint64_t idle_ms)
{
    if (c->open_streams != 0)
        return 0;
    if (c->draining)
        return 1;
    return c->ready && idle_ms != 0 && now_ms >= c->idle_since_ms && now_ms - c->idle_since_ms >= idle_ms;
}

int rm_req_pool_ping_due(const rm_req_pool_conn_t *c, uint64_t now_ms, uint64_t ping_ms)
{
    return c->ready && !c->draining && !c->ping_out && ping_ms != 0 && now_ms >= c->last_recv_ms &&
           now_ms - c->last_recv_ms >= ping_ms;
}

int rm_req_pool_ping_lost(const rm_req_pool_conn_t *c, uint64_t now_ms, uint64_t ping_ms)
{
    return c->ping_out && ping_ms != 0 && now_ms >= c->last_recv_ms && now_ms - c->last_recv_ms >= 2 * ping_ms;
}
