/* What the L7 filters (HTTP/1.1: http1_filter.h, HTTP/2 and gRPC: h2_filter.h) tell the policy hook about one
 * request, what the hook answers, and how they report each exchange's end.
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
 * hook is still called, with req->path_error set, so that the refusal is logged, and its answer is ignored.
 *
 * Exchanges: every request the hook was called for is followed until its response has ended (or can no longer end)
 * and then reported exactly once to the filter's rm_http_done_cb (rm_http_exchange_t), the filter's own answers
 * included. Per-request state is fixed-size and reused: nothing is allocated per request once warm.
 *
 * Observe mode (outbound): the same filters run between a local app (the client) and an mTLS upstream with a hook
 * that always allows and path normalization NONE, so requests go out as the app wrote them (plus the hook's set
 * fields) and only the exchanges are reported. */
#ifndef RINGMESH_HTTP_FILTER_H
#define RINGMESH_HTTP_FILTER_H

#include "ringmesh/http_path.h"
#include "ringmesh/http_request.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RM_HTTP_ALLOW = 0,
    RM_HTTP_DENY = 1,
    /* the request's credentials (a JWT, RequestAuthentication) were refused: the filter answers 401 with
     * www-authenticate: Bearer error="invalid_token" (gRPC: grpc-status 16 UNAUTHENTICATED) */
    RM_HTTP_UNAUTHENTICATED = 2,
} rm_http_verdict_t;

/** At most this many header fields a hook may ask to set on a forwarded request (trace context, the JWT's
 *  outputs and the removal of its token). A field with value NULL (and value_len 0) is removed. */
#define RM_HTTP_MAX_SET_HEADERS 8

/** What a hook may add to its verdict for one request (filled by the hook; the filter zeroes it before the call).
 *  `cookie` comes back in the request's rm_http_exchange_t, so that the hook's caller can find what it kept about
 *  the request. `set` lists header fields the forwarded request carries instead of any of the same name (names
 *  lower-case); the strings must stay valid until the hook's next call on the same filter. */
typedef struct st_rm_http_decision_t {
    uint64_t cookie;
    struct {
        const char *name, *value;
        size_t name_len, value_len;
    } set[RM_HTTP_MAX_SET_HEADERS];
    size_t num_set;
} rm_http_decision_t;

/** The policy (or observe) hook. Called on the connection's worker thread, at most once per request, with `out`
 *  zeroed by the filter. After RM_HTTP_ALLOW the filter sets the fields of out->set on the forwarded request
 *  (replacing any of the same name; a name or value holding CR, LF or NUL, or an empty or non-lower-case name, is
 *  skipped). Whatever the verdict, the filter reports how the request's exchange ended through its rm_http_done_cb
 *  with out->cookie. */
typedef rm_http_verdict_t (*rm_http_decide_cb)(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out);

/** How one request/response exchange ended, reported once per request the hook was called for. */
typedef struct st_rm_http_exchange_t {
    uint64_t cookie;           /* the hook's rm_http_decision_t.cookie for the request */
    uint32_t stream_id;        /* HTTP/2 stream; 0 for HTTP/1.x */
    uint16_t status;           /* the response's status code (the final one, not 1xx); 0 when none came */
    int16_t grpc_status;       /* grpc-status of the response (headers or trailers); -1 when none */
    uint64_t request_bytes;    /* request body bytes forwarded or received (HTTP/2: DATA payload, padding excluded) */
    uint64_t response_bytes;   /* response body bytes (the filter's own answers included) */
    uint8_t answered_by_proxy; /* the filter answered the request itself (403, gRPC 7, 400, 431) */
    uint8_t complete;          /* the response ended normally; 0: reset, or the connection closed first */
    /* Envoy's response flag of an answer the proxy made for an upstream ("UF": it could not be connected to, "UC":
     * it went away before answering), NULL otherwise */
    const char *response_flag;
} rm_http_exchange_t;

/** Called once per exchange the hook saw, when its response has ended or can no longer end (reset, close). */
typedef void (*rm_http_done_cb)(void *ctx, const rm_http_exchange_t *ex);

/** 1 when a field a hook asked to set may go on the wire: a non-empty lower-case token name, and a value without
 *  CR, LF or NUL. */
static inline int rm_http_set_field_valid(const char *name, size_t name_len, const char *value, size_t value_len)
{
    static const char tchar_extra[] = "!#$%&'*+-.^_`|~";
    if (name == NULL || name_len == 0 || (value == NULL && value_len != 0))
        return 0;
    for (size_t i = 0; i != name_len; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        for (size_t j = 0; !ok && j != sizeof(tchar_extra) - 1; j++)
            ok = ch == tchar_extra[j];
        if (!ok)
            return 0;
    }
    for (size_t i = 0; i != value_len; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return 0;
    return 1;
}

/** The body of every 403 a filter sends (Istio's, so clients and tests written for Istio keep working). */
#define RM_HTTP_DENIED_BODY "RBAC: access denied"

#endif
