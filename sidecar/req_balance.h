/* The per-request choice of an endpoint (docs/traffic-management.md, "Requests"): peak-EWMA power of two choices
 * (ringmesh/lb.h) among a destination's candidate endpoints (dest_endpoints.h: the ready ones that are not
 * terminating, else the serving terminating ones), with each endpoint's estimate kept by address in a table of the
 * worker thread (no locks). Pure: the caller passes the clock; nothing allocates or does I/O. */
#ifndef RINGMESH_REQ_BALANCE_H
#define RINGMESH_REQ_BALANCE_H

#include "dest_endpoints.h"
#include "ringmesh/lb.h"

#include <stddef.h>
#include <stdint.h>

/** Estimates by endpoint address: a fixed open-addressing table of RM_REQ_LB_SLOTS, at most 3/4 full; when it
 *  fills, the estimates of endpoints with nothing in flight are dropped (they start again at the default RTT). An
 *  address that finds no slot is given `spare` (an estimate shared by such addresses: the choice is then less
 *  informed, never wrong). Zeroed, then `cfg` and `rng` (never 0) set, it is ready. */
#define RM_REQ_LB_SLOTS 1024
typedef struct st_rm_req_lb_slot_t {
    uint8_t ip[16]; /* IPv4 in the first 4 bytes */
    uint16_t port;  /* network order */
    uint8_t family; /* 0: free slot */
    rm_lb_ewma_t est;
} rm_req_lb_slot_t;
typedef struct st_rm_req_lb_t {
    rm_lb_ewma_cfg_t cfg;
    uint64_t rng;
    rm_req_lb_slot_t slots[RM_REQ_LB_SLOTS];
    size_t used;
    rm_lb_ewma_t spare;
    rm_req_lb_slot_t scratch[RM_REQ_LB_SLOTS]; /* compaction's copy */
} rm_req_lb_t;

/** The estimate of the endpoint at `addr` (made at the default when new). Never NULL. */
rm_lb_ewma_t *rm_req_lb_estimate(rm_req_lb_t *t, const rm_sockaddr_t *addr);

/** Chooses the endpoint of `e` a request goes to at `now_ns`: two distinct candidates drawn at random, the one of
 *  lower load wins (the first drawn on a tie); with one candidate, that one. Returns its index in e->items, or -1
 *  when there is no candidate (the caller answers 503, flag UH). The caller counts the request in flight on the
 *  chosen one's estimate (rm_lb_ewma_start) and reports its end (rm_lb_ewma_done / rm_lb_ewma_cancel). */
int rm_req_lb_pick(rm_req_lb_t *t, const rm_dest_endpoints_t *e, uint64_t now_ns);

#endif
