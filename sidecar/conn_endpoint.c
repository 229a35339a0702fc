/* Outbound connections to a destination's endpoints: the first choice, another endpoint after a failed connect or a
 * refused identity, and the load each worker keeps per endpoint (proxy_conn-t.h, dest_endpoints.h).
 *
 * The load is counted per worker (no atomics, no locks): each worker balances its own connections by power of two
 * choices, and with connections spread over workers by the kernel the sum stays balanced too. */
#include "proxy_conn-t.h"
#include "req_conn.h"

#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

/* Makes endpoint i the connection's target and counts it open. */
static void take(rm_conn_t *c, int i)
{
    const rm_endpoint_t *ep = &c->eps->items[i];
    c->ep_tried[c->ep_num_tried++] = i;
    rm_conn_addr_set(&c->target, &ep->addr);
    c->expected_ids = (const char *const *)&ep->identity;
    c->num_expected_ids = 1;
    rm_endpoint_load_inc(c->w->ep_load, &ep->addr);
    c->ep_counted = 1;
}

void rm__conn_endpoint_release(rm_conn_t *c)
{
    if (c->ep_counted) {
        rm_sockaddr_t t = rm_conn_addr_get(&c->target);
        rm_endpoint_load_dec(c->w->ep_load, &t);
    }
    c->ep_counted = 0;
}

int rm__conn_endpoint_first(rm_conn_t *c, const rm_destination_t *dest, const char *sni)
{
    int i;

    c->eps = dest->endpoints;
    c->ep_sni = sni;
    if ((i = rm_endpoint_pick(c->eps, c->w->ep_load, NULL, 0, &c->w->ep_rng)) < 0) {
        rm_log_line_t l;
        atomic_fetch_add_explicit(&c->w->stats.endpoint_unavailable, 1, memory_order_relaxed);
        rm_log_begin(&l, RM_LOG_WARN, "no_ready_endpoint");
        rm__conn_log_fields(c, &l);
        rm_log_uint(&l, "endpoints", c->eps->num);
        rm_log_str(&l, "msg", "no endpoint of this service port is ready (nor serving while terminating)");
        rm_log_end(&l);
        return -EHOSTUNREACH;
    }
    take(c, i);
    atomic_fetch_add_explicit(&c->w->stats.endpoint_conns, 1, memory_order_relaxed);
    return 0;
}

int rm__conn_endpoint_retry(rm_conn_t *c, int err, const char *why)
{
    rm_log_line_t l;
    int next = -1;
    uint64_t now = rm_loop_now_ms(c->w->loop);

    if (c->eps == NULL)
        return 0;
    const rm_endpoint_t *failed = &c->eps->items[c->ep_tried[c->ep_num_tried - 1]];
    if (c->ep_num_tried < RM_ENDPOINT_MAX_ATTEMPTS && now < c->started_ms + rm__conn_cfg(c)->connect_timeout_ms)
        next = rm_endpoint_pick(c->eps, c->w->ep_load, c->ep_tried, c->ep_num_tried, &c->w->ep_rng);
    rm_log_begin(&l, RM_LOG_WARN, "endpoint_failed");
    rm__conn_log_fields(c, &l);
    rm_log_addr(&l, "endpoint", (const struct sockaddr *)&c->target.ss);
    rm_log_str(&l, "expected_identity", failed->identity);
    rm_log_str(&l, "reason", why);
    const char *presented = c->up.tls != NULL ? rm__conn_peer_id(c) : NULL;
    if (presented != NULL)
        rm_log_str(&l, "peer_id", presented);
    rm_log_err(&l, "error", err);
    if (next >= 0)
        rm_log_addr(&l, "next_endpoint", (const struct sockaddr *)&c->eps->items[next].addr.ss);
    else
        rm_log_str(&l, "next_endpoint", "none");
    rm_log_end(&l);
    if (next < 0)
        return 0;
    rm__conn_endpoint_release(c);
    take(c, next);
    atomic_fetch_add_explicit(&c->w->stats.endpoint_retries, 1, memory_order_relaxed);
    c->ep_switching = 1;
    return 1;
}

int rm__conn_endpoint_reconnect(rm_conn_t *c)
{
    c->ep_switching = 0;
    rm_side_close(&c->up);
    rm_side_init(&c->up, &c->t, &c->u2d, &c->d2u);
    if (c->snap->client_ctx == NULL)
        return RM_ERR_TLS_CONFIG;
    return rm_endpoint_tls_new(&c->up.tls, c->snap->client_ctx, c->expected_ids, c->ep_sni, RM_TLS_REQUIRE_MESH_ALPN);
}
