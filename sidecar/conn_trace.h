/* Spans on the request path: what a connection does with the trace context of each HTTP request it decides, and the
 * span it records for the exchange (docs/tracing.md).
 *
 * For each decided request (rm_conn_trace_request): the incoming context is read (W3C traceparent first, else B3
 * single, else B3 multi-header) and continued, or a trace is started when there is none, subject to the sampler.
 * This proxy's span gets a new span id, a child of the incoming span: a CLIENT span outbound, a SERVER span inbound.
 * The forwarded request carries that span as its parent: traceparent (tracestate passed on), and the B3 fields
 * rewritten when the request came with B3, so that apps that only speak B3 keep their traces. When the exchange
 * ends (rm_conn_trace_exchange), a sampled span gets its status and goes to the exporter (trace_export.h).
 *
 * Per-request state is a fixed table of slots per connection, allocated on the connection's first traced request
 * and reused; a request that finds the table full is forwarded with its context but records no span (counted as a
 * dropped span, reason queue_full). When tracing is off (no exporter), these functions do nothing and the request's
 * headers pass untouched. All on the connection's worker thread; no lock. */
#ifndef RINGMESH_CONN_TRACE_H
#define RINGMESH_CONN_TRACE_H

#include "http_filter.h"

#include <stdint.h>
#include <sys/socket.h>

/** Concurrent exchanges of one connection that can have a span (HTTP/2 streams). */
#define RM_CONN_TRACE_SLOTS 8

typedef struct st_rm_conn_trace_t rm_conn_trace_t;

/** What the connection knows of one decided request. Pointers are read during the call only; NULL: not known. */
typedef struct st_rm_conn_trace_info_t {
    int outbound;                       /* 1: this proxy is the client's side (CLIENT span); 0: SERVER span */
    const rm_http_request_t *req;       /* the request as decided */
    rm_http_verdict_t verdict;          /* the decision */
    const char *authz_decision;         /* the decision's kind as the decision log names it; NULL: from verdict */
    const char *authz_policy;           /* the policy that decided (namespace.name), when one did */
    const char *source_principal;       /* SPIFFE ID of the calling workload */
    const char *destination_principal;  /* SPIFFE ID of the called workload */
    const struct sockaddr *peer_addr;   /* the other end of this hop: the client (inbound) or the server (outbound) */
    const struct sockaddr *client_addr; /* inbound: the original client (client.address) */
} rm_conn_trace_info_t;

/** A request's head is decided: continues or starts its trace, keeps a span for the exchange when it is sampled,
 *  and fills out->set with the header fields of the forwarded request (their strings live in *table until the next
 *  call). *table is the connection's (NULL at first; allocated here). Returns the value to keep as the exchange's
 *  cookie for rm_conn_trace_exchange: 0 when no span is kept. Never fails the request. */
uint32_t rm_conn_trace_request(rm_conn_trace_t **table, const rm_conn_trace_info_t *info, rm_http_decision_t *out);

/** The exchange of the request whose rm_conn_trace_request returned `cookie` has ended: the span ends and is
 *  exported. `cookie` 0 does nothing. */
void rm_conn_trace_exchange(rm_conn_trace_t *table, uint32_t cookie, const rm_http_exchange_t *ex);

/** The destination's SPIFFE ID for the span `cookie` of an outbound request decided before the upstream's handshake
 *  had told it (the client's first bytes come while the proxy still connects). NULL or cookie 0 do nothing. */
void rm_conn_trace_destination(rm_conn_trace_t *table, uint32_t cookie, const char *principal);
/** The hex trace id (32 characters) of the span `cookie` (the access log's trace_id), or NULL. Valid until
 *  rm_conn_trace_exchange ends that span: read it first. A request that is not sampled has no span (cookie 0);
 *  its trace id is the one rm_conn_trace_request_id gave when it was decided. */
const char *rm_conn_trace_id(rm_conn_trace_t *table, uint32_t cookie);

/** The trace id the request `req` belongs to, as hex, for the decision log: the incoming one, or, when the request
 *  has none, the id of the trace rm_conn_trace_request will start for it (kept for that call, on this thread, while
 *  `req` is the same request). NULL when tracing is off (the log then reads the request's own fields). */
const char *rm_conn_trace_request_id(const rm_http_request_t *req);

/** The authorization decision of `req`, the request being decided on this thread, for its span: `decision` (the
 *  decision log's word: allow, deny, would-deny, audit) and the policy that made it (`ns`/`name`, NULL when no
 *  policy did). Copied; used by the rm_conn_trace_request that follows for the same request. Does nothing when
 *  tracing is off. */
void rm_conn_trace_note_decision(const rm_http_request_t *req, const char *decision, const char *ns, const char *name);

/** The connection is closing: spans still open end as incomplete (status ERROR) and are exported; frees the table.
 *  NULL is fine. */
void rm_conn_trace_free(rm_conn_trace_t *table);

#endif
