/* What the inbound L7 filters (HTTP/1.1: http1_filter.h, HTTP/2 and gRPC: h2_filter.h) tell the policy hook
 * about one request, and what the hook answers.
 *
 * A filter sits between the client (the mTLS peer) and the app. It parses the client's requests as bytes arrive,
 * calls the hook once per request when the request head is complete, forwards allowed requests unchanged in
 * meaning, and answers denied ones itself (HTTP 403 with body "RBAC: access denied", or for gRPC a trailers-only
 * response with grpc-status 7) without the app ever seeing them. The connection stays usable after a denial. */
#ifndef RINGMESH_HTTP_FILTER_H
#define RINGMESH_HTTP_FILTER_H

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
