/* The outbound proxy's decision for one HTTP/1.x request of an app (docs/traffic-management.md, "Requests"): the
 * route (rm_req_route), the rule's filters (rm_req_apply_rule), the endpoint (rm_req_lb_pick, EWMA P2C) and the
 * HTTP/2 header list sent on a pooled connection to it (rm_h1c_request_to_h2), or the answer the proxy gives itself
 * (404 NR, 500, 503 UH, a route's redirect, 400 for a request without its Host). Pure: reads the snapshot's
 * destinations and the worker's balancer, writes only into the caller's room; no I/O, no allocation. */
#ifndef RINGMESH_REQ_OUT_PLAN_H
#define RINGMESH_REQ_OUT_PLAN_H

#include "http1_codec.h"
#include "req_balance.h"
#include "req_route.h"

#include <stddef.h>
#include <stdint.h>

/** Where a plan is built: the filters' arena and the HTTP/2 header list with its lower-cased names. The caller points
 *  them at its own storage (per worker or per request); what a plan points to stays valid until it is reused. */
typedef struct st_rm_req_out_room_t {
    rm_route_arena_t arena;
    rm_http_header_t *h2;
    size_t h2_cap;
    char *names;
    size_t names_len;
} rm_req_out_room_t;

typedef enum {
    RM_REQ_OUT_FORWARD = 0, /* send `h2` as a stream to dest->endpoints->items[endpoint] */
    RM_REQ_OUT_LOCAL,       /* answer the app with `status` (and `location` for a redirect) */
} rm_req_out_kind_t;

typedef struct st_rm_req_out_plan_t {
    rm_req_out_kind_t kind;
    /* LOCAL */
    int status;
    const char *flag; /* response flag for logs and metrics ("NR", "UH"), NULL when none */
    const char *location;
    size_t location_len;
    /* FORWARD */
    const rm_destination_t *dest; /* the destination whose endpoint was chosen (a route's backend, or the one asked) */
    int endpoint;                 /* index in dest->endpoints->items */
    const rm_http_header_t *h2;   /* the stream's header list: pseudo-headers, ringmesh-orig-proto, fields */
    size_t num_h2;
    const rm_route_filter_t *response_headers; /* the rule's ResponseHeaderModifier, NULL when none */
    const rm_route_rule_t *rule;               /* the rule that matched (its timeouts); NULL: no routes */
} rm_req_out_plan_t;

/** Plans request `app` that an app sent on a connection to destination `dest` (one of dests[0 .. num_dests), the
 *  snapshot's table). `random` draws the weighted backend; `lb` (the worker's balancer) the endpoint at `now_ns`.
 *  Fills *out and returns 0; a LOCAL plan is not an error. The caller counts a FORWARD request in flight on the
 *  endpoint's estimate (rm_lb_ewma_start) when it sends it. */
int rm_req_out_plan(const rm_destination_t *dest, const rm_destination_t *dests, size_t num_dests,
                    const rm_h1c_request_t *app, uint32_t random, rm_req_lb_t *lb, uint64_t now_ns,
                    rm_req_out_room_t *room, rm_req_out_plan_t *out);

/** Writes the HTTP/1.x response of a LOCAL plan for an HTTP/1.<client_minor> app into buf: the status, its Location
 *  for a redirect, an empty body (content-length: 0); "connection: close" when `close`. Returns the length or
 *  -ENOSPC. */
int rm_req_out_local_response(const rm_req_out_plan_t *plan, int client_minor, int close, char *buf, size_t len);

#endif
