/* What the inbound L7 filters (HTTP/1.1: http1_filter.h, HTTP/2 and gRPC: h2_filter.h) tell the policy hook
 * about one request, and what the hook answers.
 *
 * A filter sits between the client (the mTLS peer) and the app. It parses the client's requests as bytes arrive,
 * calls the hook once per request when the request head is complete, forwards allowed requests unchanged in
 * meaning, and answers denied ones itself (HTTP 403 with body "RBAC: access denied", or for gRPC a trailers-only
 * response with grpc-status 7) without the app ever seeing them. The connection stays usable after a denial.
 *
 * Paths: before the hook, the filter normalizes the request target (rm_http_path_normalize, with the mode the
 * caller set, BASE unless told otherwise). The hook is given the normalized target, and an allowed request reaches
 * the app with that same target (query as received, no fragment), so the app routes exactly the path the policy
 * judged. A target that cannot be normalized (%00) is answered 400 (HTTP/2: a 400 response on the stream); the
 * hook is still called, with req->path_error set, so that the refusal is logged, and its answer is ignored. */
#ifndef RINGMESH_HTTP_FILTER_H
#define RINGMESH_HTTP_FILTER_H

#include "ringmesh/http_path.h"
#include "ringmesh/http_request.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RM_HTTP_ALLOW = 0,
    RM_HTTP_DENY = 1,
} rm_http_verdict_t;

/** The policy hook. Called on the connection's worker thread, at most once per request. */
typedef rm_http_verdict_t (*rm_http_decide_cb)(void *ctx, const rm_http_request_t *req);

/** The body of every 403 a filter sends (Istio's, so clients and tests written for Istio keep working). */
#define RM_HTTP_DENIED_BODY "RBAC: access denied"

#endif
