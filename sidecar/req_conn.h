/* The pooled HTTP/2 connections of the request path (docs/traffic-management.md, "Requests"): per worker thread,
 * per endpoint, a few long-lived connections that carry the requests of every app connection of that worker.
 *
 * A pooled connection is a side owner (transport.h) with ONE side: an mTLS client offering only the ALPN protocol
 * ringmesh/h2 and checking the endpoint's own identity (as the TCP path does, rm_endpoint_tls_new), or, without a TLS
 * context, plain HTTP/2 (prior knowledge); and an HTTP/2 session in the client role (h2_session.h). Which of an
 * endpoint's connections takes a stream, when another opens, when one closes or sends a PING: req_pool.h.
 *
 * A stream belongs to the pool: its user (the app connection's request, or a test) holds a pointer from
 * rm_req_stream_open until on_close, or until it cancels it. Events reach the user through its ops while the pool's
 * connection reads; they must only record what they learned: the user acts on them when the pool calls its kick
 * (after the connection's bytes are processed), never inside the event. A user that goes away unlinks itself
 * (rm_req_user_unlink).
 *
 * Everything runs on the worker's loop thread; nothing takes a lock. */
#ifndef RINGMESH_REQ_CONN_H
#define RINGMESH_REQ_CONN_H

#include "h2_session.h"
#include "io_loop.h"
#include "proxy_config.h"
#include "ringmesh/http_request.h"
#include "ringmesh/tls.h"

#include <stddef.h>
#include <stdint.h>

typedef struct st_rm_req_pools_t rm_req_pools_t;
typedef struct st_rm_req_conn_t rm_req_conn_t;
typedef struct st_rm_req_stream_t rm_req_stream_t;
typedef struct st_rm_req_user_t rm_req_user_t;

/** How a stream ended, for its user (on_close). */
typedef enum {
    RM_REQ_STREAM_DONE = 0,  /* both sides ended normally */
    RM_REQ_STREAM_RESET,     /* the peer reset it after taking it (its error code in `h2_error`) */
    RM_REQ_STREAM_UNSENT,    /* nothing of the request was taken: the connection failed to connect or handshake,
                                the peer refused the stream (REFUSED_STREAM) or sent GOAWAY before it: safe to send
                                elsewhere */
    RM_REQ_STREAM_CONN_LOST, /* the connection failed after the request was sent (flag UC) */
} rm_req_stream_end_t;

/** What a stream tells its user; each runs inside the pool connection's processing (see above). */
typedef struct st_rm_req_stream_ops_t {
    /** The response head (final status, 1xx are not passed on), or trailers when `trailers`. Header names are
     *  lower-case, pseudo-headers included; the list is valid only during the call. `end`: nothing follows. */
    void (*on_head)(rm_req_user_t *u, const rm_http_header_t *h, size_t n, int trailers, int end);
    /** Response body bytes: the user keeps them (rm_req_stream_consume once passed on gives the window back).
     *  Returns 0, or nonzero to reset the stream (the user could not keep them). */
    int (*on_data)(rm_req_user_t *u, const uint8_t *p, size_t n);
    /** The response ended after body bytes (no trailers). */
    void (*on_end)(rm_req_user_t *u);
    /** The stream is over; the user's pointer to it is no longer valid. */
    void (*on_close)(rm_req_user_t *u, rm_req_stream_end_t how, uint32_t h2_error);
    /** The user acts now on what its events recorded (room for more body, a response, the end). May open, write,
     *  consume, cancel streams of any pool, and may free the user (which unlinks itself first). */
    void (*kick)(rm_req_user_t *u);
} rm_req_stream_ops_t;

/** The user's part, embedded in its own object. Zeroed, then `ops` set, it is ready. */
struct st_rm_req_user_t {
    const rm_req_stream_ops_t *ops;
    rm_req_user_t *kick_prev, *kick_next; /* in the pools' list of users to kick */
    uint8_t kick_queued;
    uint8_t body_room; /* set by the pool when the stream's body buffer has room again */
};

/** A request on its way: the pool's object, the user's handle. */
struct st_rm_req_stream_t {
    rm_req_conn_t *conn; /* NULL while waiting for a connection (the request's bytes not yet taken) */
    rm_req_user_t *user; /* NULL once cancelled */
    int32_t sid;
    rm_h2s_body_t body; /* the request body on its way out */
    uint8_t has_body;
    uint8_t headers_sent;
    uint64_t submitted_ns; /* CLOCK_MONOTONIC when a connection took it (its latency starts there) */
    size_t unconsumed;     /* response body bytes given to the user and not consumed: given back when it closes */
    rm_req_stream_t *next; /* on its connection, or on the endpoint's queue of waiting streams */
    /* the request as given, until the stream is taken by a connection (copied into one block) */
    rm_http_header_t *h;
    size_t num_h;
    void *hblock;
};

/** Per-endpoint settings of the pools. */
typedef struct st_rm_req_pools_cfg_t {
    uint32_t max_conns; /* per endpoint; 0: RM_REQ_POOL_DEFAULT_MAX_CONNS */
    uint64_t idle_ms;   /* 0: RM_REQ_POOL_DEFAULT_IDLE_MS */
    uint64_t ping_ms;   /* 0: RM_REQ_POOL_DEFAULT_PING_MS */
    uint64_t connect_timeout_ms;
} rm_req_pools_cfg_t;

/** Counters for /metrics and tests (the worker adds the handshakes to its own). */
typedef struct st_rm_req_pools_stats_t {
    uint64_t conns_opened, conns_failed, handshakes, streams, streams_unsent;
} rm_req_pools_stats_t;

/** Makes a worker's pools on `loop`. `handshakes` (may be NULL) is counted up once per completed handshake (the
 *  worker's ringmesh_proxy_tls_handshakes_total). Returns NULL when out of memory. */
rm_req_pools_t *rm_req_pools_new(rm_loop_t *loop, const rm_req_pools_cfg_t *cfg, _Atomic uint_fast64_t *handshakes);
/** Closes every connection now (their streams end CONN_LOST or UNSENT, users kicked); they free themselves as their
 *  operations come back. */
void rm_req_pools_shutdown(rm_req_pools_t *p);
/** Nonzero while a connection still has operations in flight. */
int rm_req_pools_busy(const rm_req_pools_t *p);
/** Frees the pools once rm_req_pools_busy is 0 (connections left are closed; nothing leaks). NULL is fine. */
void rm_req_pools_free(rm_req_pools_t *p);
/** The worker's tick: idle connections close, keepalive PINGs go out, lost ones fail, connects time out. */
void rm_req_pools_tick(rm_req_pools_t *p, uint64_t now_ms);
/** The counters so far. */
rm_req_pools_stats_t rm_req_pools_stats(const rm_req_pools_t *p);

/** Where a stream goes: the endpoint's address, the identity it must present, the server name to send (may be NULL)
 *  and the client TLS context (NULL: plain HTTP/2). Strings are copied. */
typedef struct st_rm_req_target_t {
    const rm_sockaddr_t *addr;
    const char *identity;
    const char *sni;
    rm_tls_ctx_t *ctx;
} rm_req_target_t;

/** Opens a stream to `t` with the request's header list (copied) and, with `has_body`, a body written later
 *  (rm_req_stream_write). It goes on a ready connection of the endpoint at once, or waits for one being opened.
 *  Returns the stream, or NULL when out of memory or over the endpoint's limits (the user answers 503). */
rm_req_stream_t *rm_req_stream_open(rm_req_pools_t *p, const rm_req_target_t *t, const rm_http_header_t *h, size_t n,
                                    int has_body, rm_req_user_t *user);
/** Bytes the stream's body takes now (0 until it is on a connection, or while its buffer is full: body_room
 *  follows). */
size_t rm_req_stream_room(const rm_req_stream_t *st);
/** Writes body bytes; returns the count taken or a negative error. */
long rm_req_stream_write(rm_req_stream_t *st, const uint8_t *p, size_t n);
/** Ends the request body. Returns 0 or a negative error. */
int rm_req_stream_end(rm_req_stream_t *st);
/** `n` response body bytes were passed on. */
void rm_req_stream_consume(rm_req_stream_t *st, size_t n);
/** The user gives the stream up (its app went away): reset (CANCEL) if sent, dropped if waiting. The user gets no
 *  more events of it. */
void rm_req_stream_cancel(rm_req_stream_t *st);
/** Sends what the stream's connection has queued (call after writes, consumes, cancels). */
void rm_req_stream_flush(rm_req_stream_t *st);

/** A client TLS session towards one endpoint: `identity` (one SPIFFE ID, must outlive the session) is what it must
 *  present, `sni` (may be NULL) the server name sent. The TCP path (conn_endpoint.c) and the pooled connections
 *  (RM_TLS_OFFER_H2) both start theirs here. Returns 0 or an RM_ERR_TLS_* (*out, when set, is the caller's to
 *  free). */
int rm_endpoint_tls_new(rm_tls_t **out, rm_tls_ctx_t *ctx, const char *const *identity, const char *sni,
                        unsigned flags);

/** The user goes away: it is taken off the list of users to kick. */
void rm_req_user_unlink(rm_req_pools_t *p, rm_req_user_t *u);

#endif
