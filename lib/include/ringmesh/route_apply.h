/* A chosen route rule's filters applied to one request (Gateway API v1.2): RequestHeaderModifier, URLRewrite
 * (hostname, ReplaceFullPath, ReplacePrefixMatch), RequestRedirect (a 301/302 answer whose Location is built by
 * the API's rules), and the ResponseHeaderModifier to apply to the response. No allocation: what is built goes to
 * an arena the caller provides; everything else points into the request or the rule, which must outlive the
 * result. docs/traffic-management.md gives the semantics. */
#ifndef RINGMESH_ROUTE_APPLY_H
#define RINGMESH_ROUTE_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "ringmesh/http_request.h"
#include "ringmesh/route.h"

/** Room for what applying filters builds: bytes (a rewritten path, a Location) and header entries. The caller
 *  points `buf` and `headers` at storage of its own (per worker or per stream) and sets `used` and `headers_used`
 *  to 0 before each request; what a request's results point to stays valid until then. */
typedef struct st_rm_route_arena_t {
    char *buf;
    size_t cap, used;
    rm_http_header_t *headers;
    size_t headers_cap, headers_used;
} rm_route_arena_t;

/** The request to send, or the redirect to answer with. */
typedef struct st_rm_route_applied_t {
    int redirect_status; /* 0: forward the request below; 301 or 302: answer with this status and `location` */
    const char *location;
    size_t location_len;
    const char *path; /* the target to send (query string kept) */
    size_t path_len;
    const char *authority; /* :authority / Host to send; NULL when the request had none and no rewrite set one */
    size_t authority_len;
    const rm_http_header_t *headers; /* the regular headers to send, in order */
    size_t num_headers;
    const rm_route_filter_t *response_headers; /* the rule's ResponseHeaderModifier, NULL when none */
} rm_route_applied_t;

/** Applies `rule`'s filters (the rule selected by match `match_index`, as rm_route_select returned them) to `req`,
 *  which was addressed to Service port `service_port` (the port of a redirect that names no scheme or port, as a
 *  Gateway's listener port). Header modifiers run remove, then set (the first line of a name keeps its place, the
 *  others go), then add (a new line after the others); names compare case-insensitively. A rewritten or
 *  redirected hostname also replaces the value of a `host` header line. A redirect without hostname uses the
 *  request's host without its port. Returns 0, -ENOSPC when the arena is too small (nothing of *out is valid),
 *  or -EINVAL for a redirect without a hostname that a request without a host cannot give. */
int rm_route_apply(const rm_route_rule_t *rule, size_t match_index, const rm_http_request_t *req, uint16_t service_port,
                   rm_route_arena_t *arena, rm_route_applied_t *out);

/** Applies a header modifier (RequestHeaderModifier or ResponseHeaderModifier; `mod` NULL: none) to headers
 *  in[0..num_in), writing the resulting list into the arena: *out and *num_out. Same order of operations as above.
 *  Returns 0 or -ENOSPC. */
int rm_route_apply_headers(const rm_route_filter_t *mod, const rm_http_header_t *in, size_t num_in,
                           rm_route_arena_t *arena, const rm_http_header_t **out, size_t *num_out);

#endif
