/* The endpoints of a destination (one service port): where the outbound proxy connects instead of the service's
 * address, and the identity each one must present. Pushed by the control plane in Destination.endpoints
 * (proto/ringmesh/v1/discovery.proto); docs/traffic-management.md says how they are chosen.
 *
 * The choice (rm_endpoint_pick) is pure: it reads the endpoints, a load table the caller owns (open connections per
 * endpoint address, one table per worker thread, no locks) and a random state; it does no I/O and allocates
 * nothing. */
#ifndef RINGMESH_DEST_ENDPOINTS_H
#define RINGMESH_DEST_ENDPOINTS_H

#include "proxy_config.h"

#include <stddef.h>
#include <stdint.h>

struct Ringmesh__V1__Destination;

/** Which endpoints may get a new connection: the ready ones that are not terminating; when there is none, the
 *  serving ones that are terminating (Kubernetes' rule for terminating endpoints: kube-proxy does the same). */
typedef enum {
    RM_ENDPOINT_ELIGIBLE_NONE = 0,
    RM_ENDPOINT_ELIGIBLE_READY,
    RM_ENDPOINT_ELIGIBLE_TERMINATING,
} rm_endpoint_class_t;

/** One endpoint of a service port. */
typedef struct st_rm_endpoint_t {
    rm_sockaddr_t addr; /* the pod's IP and target port */
    char *identity;     /* the SPIFFE ID it must present (owned) */
    char *zone;         /* "" when unknown (owned) */
    uint8_t ready, serving, terminating;
} rm_endpoint_t;

/** The endpoints of one destination (VIP:port), in the order pushed, with the ones a new connection may go to. */
typedef struct st_rm_dest_endpoints_t {
    rm_endpoint_t *items;
    size_t num;
    rm_endpoint_class_t cls; /* which endpoints are candidates (rm_dest_endpoints_index) */
    int *candidates;         /* indexes into items of that class, ascending */
    size_t num_candidates;
} rm_dest_endpoints_t;

/** Sets cls and candidates from items (rm_dest_endpoints_parse does; a test that fills items by hand calls it).
 *  Returns 0 or -ENOMEM. */
int rm_dest_endpoints_index(rm_dest_endpoints_t *e);

/** The endpoints of pushed destination `d` that serve `service_port` in address family `family` (AF_INET or
 *  AF_INET6: that of the VIP, as kube-proxy sends an IPv4 cluster IP's connections to IPV4 endpoints only), checked:
 *  each address ip:port, each identity a SPIFFE ID in `trust_domain`. *out is NULL when the destination has none for
 *  that port and family (the proxy then connects to the address the app asked for). Returns 0, or -EINVAL / -ENOMEM
 * with a message naming the destination and the endpoint in `err`. */
int rm_dest_endpoints_parse(const struct Ringmesh__V1__Destination *d, uint16_t service_port, int family,
                            const char *trust_domain, rm_dest_endpoints_t **out, char *err, size_t errlen);

/** Frees what rm_dest_endpoints_parse made. NULL is fine. */
void rm_dest_endpoints_free(rm_dest_endpoints_t *e);

/* ---- the choice ---- */

/** The key form of an address for the per-thread tables keyed by endpoint address (this file's load table,
 *  req_balance.h's estimates): the IP in ip[0, 16) (IPv4 in the first 4 bytes, the rest zero), the port in network
 *  order, the family (AF_INET or AF_INET6). */
void rm_endpoint_addr_key(const rm_sockaddr_t *a, uint8_t ip[16], uint16_t *port, uint8_t *family);
/** The home slot of such a key in a table of `num_slots` slots (FNV-1a over the IP and port). */
size_t rm_endpoint_addr_hash(const uint8_t ip[16], uint16_t port, uint8_t family, size_t num_slots);

/** Open connections per endpoint address, kept by one thread. A fixed table of RM_ENDPOINT_LOAD_SLOTS addresses
 *  (open addressing, at most 3/4 full); addresses no connection holds any more are dropped when it fills up. An
 *  address that finds no slot counts as unloaded (the choice is then less informed, never wrong). The all-zero table
 *  is a valid empty one. */
#define RM_ENDPOINT_LOAD_SLOTS 4096
typedef struct st_rm_endpoint_load_slot_t {
    uint8_t ip[16]; /* IPv4 in the first 4 bytes */
    uint16_t port;  /* network order */
    uint8_t family; /* 0: free slot */
    uint32_t open;
} rm_endpoint_load_slot_t;
typedef struct st_rm_endpoint_load_t {
    rm_endpoint_load_slot_t slots[RM_ENDPOINT_LOAD_SLOTS];
    size_t used;  /* slots taken */
    size_t stale; /* taken slots whose count is 0: what compaction would free */
    rm_endpoint_load_slot_t scratch[RM_ENDPOINT_LOAD_SLOTS]; /* compaction's copy (no allocation on the way) */
} rm_endpoint_load_t;

/** Open connections the table holds for `addr` (0 when unknown). */
uint32_t rm_endpoint_load_get(const rm_endpoint_load_t *t, const rm_sockaddr_t *addr);
/** Counts one more open connection to `addr`. */
void rm_endpoint_load_inc(rm_endpoint_load_t *t, const rm_sockaddr_t *addr);
/** Counts one fewer (never below 0). */
void rm_endpoint_load_dec(rm_endpoint_load_t *t, const rm_sockaddr_t *addr);

/** How many endpoints one connection tries at most (the first and the ones after a refused connect or identity). */
#define RM_ENDPOINT_MAX_ATTEMPTS 3

/** Power of two choices on open connections: among e->candidates, leaving out indexes in `skip` (num_skip of them,
 *  at most RM_ENDPOINT_MAX_ATTEMPTS: those this connection already tried), draws two distinct ones
 *  at random with `*rng` (xorshift64 state, never 0) and returns the index of the one with fewer open connections in
 *  `load` (the first drawn on a tie); with one candidate, that one. Returns -1 when there is no candidate. */
int rm_endpoint_pick(const rm_dest_endpoints_t *e, const rm_endpoint_load_t *load, const int *skip, size_t num_skip,
                     uint64_t *rng);

#endif
