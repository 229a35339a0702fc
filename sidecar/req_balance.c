/* Per-request endpoint choice (req_balance.h). The table follows dest_endpoints.c's load table and shares its address
 * key and hash (rm_endpoint_addr_key, rm_endpoint_addr_hash): linear probing, compaction into a scratch copy when 3/4
 * full (no allocation on the request path). */
#include "req_balance.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static void slot_key(const rm_sockaddr_t *a, rm_req_lb_slot_t *k)
{
    memset(k, 0, sizeof(*k));
    rm_endpoint_addr_key(a, k->ip, &k->port, &k->family);
}

static size_t slot_hash(const rm_req_lb_slot_t *k)
{
    return rm_endpoint_addr_hash(k->ip, k->port, k->family, RM_REQ_LB_SLOTS);
}

static int same_key(const rm_req_lb_slot_t *a, const rm_req_lb_slot_t *b)
{
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, sizeof(a->ip)) == 0;
}

/* The slot of `k`, or a free one made its own (its estimate zeroed: never measured); NULL when the table is full. */
static rm_req_lb_slot_t *find(rm_req_lb_t *t, const rm_req_lb_slot_t *k)
{
    size_t i = slot_hash(k);
    for (size_t n = 0; n < RM_REQ_LB_SLOTS; n++, i = (i + 1) % RM_REQ_LB_SLOTS) {
        rm_req_lb_slot_t *s = &t->slots[i];
        if (s->family == 0) {
            if (t->used >= RM_REQ_LB_SLOTS * 3 / 4)
                return NULL;
            *s = *k;
            t->used++;
            return s;
        }
        if (same_key(s, k))
            return s;
    }
    return NULL;
}

/* Keeps only the estimates with requests in flight: their counts must come back down where they went up. */
static void compact(rm_req_lb_t *t)
{
    size_t n = 0;
    for (size_t i = 0; i < RM_REQ_LB_SLOTS; i++)
        if (t->slots[i].family != 0 && t->slots[i].est.pending != 0)
            t->scratch[n++] = t->slots[i];
    memset(t->slots, 0, sizeof(t->slots));
    t->used = 0;
    for (size_t i = 0; i < n; i++) {
        rm_req_lb_slot_t *s = find(t, &t->scratch[i]);
        if (s != NULL)
            s->est = t->scratch[i].est;
    }
}

rm_lb_ewma_t *rm_req_lb_estimate(rm_req_lb_t *t, const rm_sockaddr_t *addr)
{
    rm_req_lb_slot_t k, *s;
    slot_key(addr, &k);
    if ((s = find(t, &k)) == NULL) {
        compact(t);
        if ((s = find(t, &k)) == NULL)
            return &t->spare;
    }
    return &s->est;
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s != 0 ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

int rm_req_lb_pick(rm_req_lb_t *t, const rm_dest_endpoints_t *e, uint64_t now_ns)
{
    size_t n = e->num_candidates, a, b;
    rm_lb_ewma_t *ea, *eb;
    if (n == 0)
        return -1;
    if (n == 1)
        return e->candidates[0];
    a = (size_t)(xorshift64(&t->rng) % n);
    b = (size_t)(xorshift64(&t->rng) % (n - 1));
    if (b >= a)
        b++;
    ea = rm_req_lb_estimate(t, &e->items[e->candidates[a]].addr);
    eb = rm_req_lb_estimate(t, &e->items[e->candidates[b]].addr);
    /* an endpoint never measured and with nothing in flight is tried first (Finagle's new nodes cost nothing): at
     * the default RTT it would lose every draw against endpoints answering faster, and a client sending one request
     * at a time would never learn it */
    if (!ea->measured && ea->pending == 0)
        return e->candidates[a];
    if (!eb->measured && eb->pending == 0)
        return e->candidates[b];
    return rm_lb_ewma_load(eb, &t->cfg, now_ns) < rm_lb_ewma_load(ea, &t->cfg, now_ns) ? e->candidates[b]
                                                                                       : e->candidates[a];
}
