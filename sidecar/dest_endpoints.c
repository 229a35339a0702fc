/* Endpoints of a pushed destination, the per-thread load table and the power-of-two-choices pick (dest_endpoints.h).
 */
#include "dest_endpoints.h"

#include "conn_addr.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/v1/discovery.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rm_dest_endpoints_free(rm_dest_endpoints_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->num; i++) {
        free(e->items[i].identity);
        free(e->items[i].zone);
    }
    free(e->items);
    free(e->candidates);
    free(e);
}

/* A SPIFFE workload ID of `trust_domain`. */
static int identity_ok(const char *s, const char *trust_domain)
{
    rm_spiffe_id_t id;
    if (rm_spiffe_workload_id_parse(s, strlen(s), &id) != 0)
        return 0;
    return id.td_len == strlen(trust_domain) && memcmp(id.str + 9, trust_domain, id.td_len) == 0;
}

/* The family of "ip:port" / "[ip6]:port" as written (checked when parsed), AF_UNSPEC when neither. */
static int address_family(const char *a)
{
    return a[0] == '[' ? AF_INET6 : strchr(a, ':') != NULL ? AF_INET : AF_UNSPEC;
}

int rm_dest_endpoints_parse(const Ringmesh__V1__Destination *d, uint16_t service_port, int family,
                            const char *trust_domain, rm_dest_endpoints_t **out, char *err, size_t errlen)
{
    const char *name = d->name != NULL ? d->name : "";
    rm_dest_endpoints_t *e = NULL;
    size_t n = 0;
    int ret = 0;

    *out = NULL;
    for (size_t i = 0; i < d->n_endpoints; i++)
        n += d->endpoints[i]->service_port == service_port;
    if (n == 0)
        goto Exit;
    if ((e = calloc(1, sizeof(*e))) == NULL || (e->items = calloc(n, sizeof(*e->items))) == NULL) {
        snprintf(err, errlen, "out of memory");
        ret = -ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < d->n_endpoints; i++) {
        const Ringmesh__V1__Endpoint *src = d->endpoints[i];
        rm_endpoint_t *ep = &e->items[e->num];
        const char *addr = src->address != NULL ? src->address : "";
        const char *id = src->identity != NULL ? src->identity : "";
        if (src->service_port != service_port)
            continue;
        if (rm_sockaddr_parse(addr, &ep->addr) != 0 || address_family(addr) == AF_UNSPEC ||
            rm_sockaddr_port(&ep->addr.ss) == 0) {
            snprintf(err, errlen, "destination %s: endpoints[%zu]: address \"%.100s\" is not ip:port", name, i, addr);
            ret = -EINVAL;
            goto Exit;
        }
        if (!identity_ok(id, trust_domain)) {
            snprintf(err, errlen,
                     "destination %s: endpoints[%zu] (%.100s): identity \"%.300s\" is not a SPIFFE ID in "
                     "trust domain %s",
                     name, i, addr, id, trust_domain);
            ret = -EINVAL;
            goto Exit;
        }
        if (ep->addr.ss.ss_family != family)
            continue; /* checked, but for the VIPs of the other family */
        if ((ep->identity = strdup(id)) == NULL || (ep->zone = strdup(src->zone != NULL ? src->zone : "")) == NULL) {
            free(ep->identity);
            ep->identity = NULL;
            snprintf(err, errlen, "out of memory");
            ret = -ENOMEM;
            goto Exit;
        }
        ep->ready = src->ready;
        ep->serving = src->serving;
        ep->terminating = src->terminating;
        e->num++;
    }
    if (e->num == 0)
        goto Exit; /* none of this family: the VIP, as before */
    if (rm_dest_endpoints_index(e) != 0) {
        snprintf(err, errlen, "out of memory");
        ret = -ENOMEM;
        goto Exit;
    }
    *out = e;
    e = NULL;
Exit:
    rm_dest_endpoints_free(e);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * The load table.
 * ------------------------------------------------------------------------------------------------------- */

void rm_endpoint_addr_key(const rm_sockaddr_t *a, uint8_t ip[16], uint16_t *port, uint8_t *family)
{
    memset(ip, 0, 16);
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)&a->ss;
        memcpy(ip, &s6->sin6_addr, 16);
        *port = s6->sin6_port;
        *family = AF_INET6;
    } else {
        const struct sockaddr_in *s4 = (const void *)&a->ss;
        memcpy(ip, &s4->sin_addr, 4);
        *port = s4->sin_port;
        *family = AF_INET;
    }
}

size_t rm_endpoint_addr_hash(const uint8_t ip[16], uint16_t port, uint8_t family, size_t num_slots)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the IP and port */
    for (size_t i = 0; i < (family == AF_INET6 ? 16u : 4u); i++)
        h = (h ^ ip[i]) * 1099511628211ull;
    h = (h ^ port) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29)) % num_slots;
}

/* The slot form of an address: family, IP and port, zero-padded. */
static void slot_key(const rm_sockaddr_t *a, rm_endpoint_load_slot_t *k)
{
    memset(k, 0, sizeof(*k));
    rm_endpoint_addr_key(a, k->ip, &k->port, &k->family);
}

static size_t slot_hash(const rm_endpoint_load_slot_t *k)
{
    return rm_endpoint_addr_hash(k->ip, k->port, k->family, RM_ENDPOINT_LOAD_SLOTS);
}

/* The slot of key `k`, or (with `insert`) a free one made its own; NULL when neither is found. */
static rm_endpoint_load_slot_t *load_find(rm_endpoint_load_t *t, const rm_endpoint_load_slot_t *k, int insert)
{
    size_t i = slot_hash(k);
    for (size_t probe = 0; probe < RM_ENDPOINT_LOAD_SLOTS; probe++, i = (i + 1) % RM_ENDPOINT_LOAD_SLOTS) {
        rm_endpoint_load_slot_t *s = &t->slots[i];
        if (s->family == 0) {
            if (!insert)
                return NULL;
            *s = *k;
            s->open = 0;
            t->used++;
            t->stale++;
            return s;
        }
        if (s->family == k->family && s->port == k->port && memcmp(s->ip, k->ip, sizeof(s->ip)) == 0)
            return s;
    }
    return NULL;
}

/* Keeps only the addresses connections still hold, so that churned endpoints do not fill the table up. */
static void load_compact(rm_endpoint_load_t *t)
{
    rm_endpoint_load_slot_t *kept = t->scratch;
    size_t n = 0;
    for (size_t i = 0; i < RM_ENDPOINT_LOAD_SLOTS; i++)
        if (t->slots[i].family != 0 && t->slots[i].open != 0)
            kept[n++] = t->slots[i];
    memset(t->slots, 0, sizeof(t->slots));
    t->used = t->stale = 0;
    for (size_t i = 0; i < n; i++) {
        rm_endpoint_load_slot_t *s = load_find(t, &kept[i], 1);
        s->open = kept[i].open;
        t->stale--;
    }
}

uint32_t rm_endpoint_load_get(const rm_endpoint_load_t *t, const rm_sockaddr_t *addr)
{
    rm_endpoint_load_slot_t k;
    slot_key(addr, &k);
    const rm_endpoint_load_slot_t *s = load_find((rm_endpoint_load_t *)t, &k, 0);
    return s != NULL ? s->open : 0;
}

void rm_endpoint_load_inc(rm_endpoint_load_t *t, const rm_sockaddr_t *addr)
{
    rm_endpoint_load_slot_t k, *s;
    slot_key(addr, &k);
    if ((s = load_find(t, &k, 0)) == NULL) {
        if (t->used >= RM_ENDPOINT_LOAD_SLOTS * 3 / 4 && t->stale > 0)
            load_compact(t);
        if (t->used >= RM_ENDPOINT_LOAD_SLOTS * 3 / 4 || (s = load_find(t, &k, 1)) == NULL)
            return; /* the table is full of addresses with open connections: this one goes uncounted */
    }
    if (s->open++ == 0)
        t->stale--;
}

void rm_endpoint_load_dec(rm_endpoint_load_t *t, const rm_sockaddr_t *addr)
{
    rm_endpoint_load_slot_t k, *s;
    slot_key(addr, &k);
    if ((s = load_find(t, &k, 0)) != NULL && s->open > 0 && --s->open == 0)
        t->stale++;
}

/* ---------------------------------------------------------------------------------------------------------
 * The pick.
 * ------------------------------------------------------------------------------------------------------- */

static int in_class(const rm_endpoint_t *ep, rm_endpoint_class_t cls)
{
    if (cls == RM_ENDPOINT_ELIGIBLE_READY)
        return ep->ready && !ep->terminating;
    if (cls == RM_ENDPOINT_ELIGIBLE_TERMINATING)
        return ep->serving && ep->terminating;
    return 0;
}

int rm_dest_endpoints_index(rm_dest_endpoints_t *e)
{
    free(e->candidates);
    e->candidates = NULL;
    e->num_candidates = 0;
    e->cls = RM_ENDPOINT_ELIGIBLE_NONE;
    for (size_t i = 0; i < e->num && e->cls != RM_ENDPOINT_ELIGIBLE_READY; i++) {
        if (in_class(&e->items[i], RM_ENDPOINT_ELIGIBLE_READY))
            e->cls = RM_ENDPOINT_ELIGIBLE_READY;
        else if (in_class(&e->items[i], RM_ENDPOINT_ELIGIBLE_TERMINATING))
            e->cls = RM_ENDPOINT_ELIGIBLE_TERMINATING;
    }
    if (e->cls == RM_ENDPOINT_ELIGIBLE_NONE)
        return 0;
    if ((e->candidates = calloc(e->num, sizeof(*e->candidates))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < e->num; i++)
        if (in_class(&e->items[i], e->cls))
            e->candidates[e->num_candidates++] = (int)i;
    return 0;
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

int rm_endpoint_pick(const rm_dest_endpoints_t *e, const rm_endpoint_load_t *load, const int *skip, size_t num_skip,
                     uint64_t *rng)
{
    size_t gone[RM_ENDPOINT_MAX_ATTEMPTS], num_gone = 0, m;

    if (e == NULL || e->num_candidates == 0)
        return -1;
    /* the positions in `candidates` of the endpoints to leave out, ascending (only after a failed attempt) */
    for (size_t p = 0; num_skip > 0 && p < e->num_candidates && num_gone < RM_ENDPOINT_MAX_ATTEMPTS; p++)
        for (size_t j = 0; j < num_skip; j++)
            if (skip[j] == e->candidates[p]) {
                gone[num_gone++] = p;
                break;
            }
    if ((m = e->num_candidates - num_gone) == 0)
        return -1;
    size_t a = 0, b = 0;
    if (m > 1) {
        a = (size_t)(xorshift64(rng) % m);
        b = (size_t)(xorshift64(rng) % (m - 1));
        if (b >= a)
            b++; /* two distinct candidates */
    }
    /* the a-th and b-th of the candidates left: step over the ones left out */
    for (size_t j = 0; j < num_gone; j++) {
        a += gone[j] <= a;
        b += gone[j] <= b;
    }
    int ia = e->candidates[a], ib = e->candidates[b];
    if (m > 1 && rm_endpoint_load_get(load, &e->items[ib].addr) < rm_endpoint_load_get(load, &e->items[ia].addr))
        return ib;
    return ia;
}
