/* Where one request goes (docs/traffic-management.md, "Requests"): the destination's HTTPRoute / GRPCRoute rule for
 * it (rm_route_select), that rule's backend by weight (rm_route_pick_backend), and the destination of that backend
 * Service and port, whose endpoints then take the request. Pure: reads the snapshot's destinations, allocates
 * nothing, does no I/O. */
#ifndef RINGMESH_REQ_ROUTE_H
#define RINGMESH_REQ_ROUTE_H

#include "proxy_config.h"
#include "ringmesh/http_request.h"
#include "ringmesh/route.h"
#include "ringmesh/route_apply.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RM_REQ_ROUTE_DIRECT = 0, /* the destination has no routes: the request goes to its own endpoints */
    RM_REQ_ROUTE_BACKEND,    /* a rule matched and chose `backend`, whose destination is `dest` */
    RM_REQ_ROUTE_NO_RULE,    /* the destination has routes and none matches: 404, response flag NR */
    RM_REQ_ROUTE_NO_BACKEND, /* the rule has no backend of nonzero weight, or its Service and port are no mesh
                                destination this proxy knows: 500 (the Gateway API's answer to an invalid
                                backendRef) */
    RM_REQ_ROUTE_REDIRECT,   /* the rule has a RequestRedirect filter: the proxy answers with the redirect that
                                rm_req_apply_rule builds (no backend is chosen, whatever backendRefs say) */
} rm_req_route_result_t;

typedef struct st_rm_req_route_t {
    rm_req_route_result_t result;
    rm_route_choice_t choice;          /* the rule, when one matched */
    const rm_route_backend_t *backend; /* BACKEND, and NO_BACKEND for a Service not known here; NULL for REDIRECT */
    const rm_destination_t *dest;      /* DIRECT: the destination itself; BACKEND: the backend's */
} rm_req_route_t;

/** Routes request `req` the app sent to destination `dest` (one of dests[0 .. num_dests), the snapshot's table):
 *  fills *out. `random` is a uniformly drawn number for the weighted choice. The backend's destination is the one
 *  of Service backend->name in the route's namespace (or backend->namespace_) and port backend->port, of the same
 *  address family as `dest` when there is one. Returns out->result. */
rm_req_route_result_t rm_req_route(const rm_destination_t *dest, const rm_destination_t *dests, size_t num_dests,
                                   const rm_http_request_t *req, uint32_t random, rm_req_route_t *out);

/** The HTTP status the proxy answers for a result that is not forwarded (404, 500), or 0 when it is (and for
 *  REDIRECT, whose status rm_req_apply_rule gives). */
int rm_req_route_status(rm_req_route_result_t result);

/** The response flag of a result that is not forwarded ("NR" for a request no rule takes), or NULL. */
const char *rm_req_route_flag(rm_req_route_result_t result);

/** The one place where the matched rule's filters (header modifiers, redirect, URL rewrite), timeouts and retries
 *  are applied to request `req` on its way to the backend; `req` was addressed to Service port `service_port`.
 *  Filters: rm_route_apply (ringmesh/route_apply.h) fills *out with the path, authority and headers to send, or
 *  the redirect to answer with (out->redirect_status 301/302), built in `arena`; a DIRECT request goes unchanged
 *  (out points into `req`). Timeouts and retries are not applied here yet. A REDIRECT result always gets
 * out->redirect_status. Returns 0, -ENOSPC when the arena is too small, or -EINVAL for a 404/500 result or a redirect
 * that the request cannot give a host. */
int rm_req_apply_rule(const rm_req_route_t *route, const rm_http_request_t *req, uint16_t service_port,
                      rm_route_arena_t *arena, rm_route_applied_t *out);

#endif
