/* The policy of the pool of HTTP/2 connections to one endpoint (docs/traffic-management.md, "Requests"): which
 * pooled connection takes the next request, when another is opened, when one is closed. Pure decisions over what
 * the pool knows of each connection; the connections themselves (sockets, TLS, h2_session.h) are the caller's. */
#ifndef RINGMESH_REQ_POOL_H
#define RINGMESH_REQ_POOL_H

#include <stddef.h>
#include <stdint.h>

/** Connections per endpoint and worker thread unless configured otherwise. */
#define RM_REQ_POOL_DEFAULT_MAX_CONNS 2
/** A pooled connection with no stream for this long is closed. */
#define RM_REQ_POOL_DEFAULT_IDLE_MS 60000
/** A PING goes out on a connection the peer has sent nothing on for this long. */
#define RM_REQ_POOL_DEFAULT_PING_MS 10000

/** What the pool knows of one of its connections. */
typedef struct st_rm_req_pool_conn_t {
    uint32_t open_streams;  /* streams in flight on it */
    uint32_t max_streams;   /* the peer's SETTINGS_MAX_CONCURRENT_STREAMS (100 until its SETTINGS arrive) */
    uint64_t idle_since_ms; /* when its last stream ended, or when it became ready (valid when open_streams is 0) */
    uint64_t last_recv_ms;  /* when the peer last sent anything */
    uint8_t ready;          /* connected, handshake done (the endpoint's identity checked) */
    uint8_t draining;       /* GOAWAY sent or received, or failed: no new streams, open ones finish */
    uint8_t ping_out;       /* a PING is waiting for its ACK */
} rm_req_pool_conn_t;

typedef enum {
    RM_REQ_POOL_USE = 0, /* send it on conns[*idx] */
    RM_REQ_POOL_OPEN,    /* open one more connection and send it there once ready */
    RM_REQ_POOL_WAIT,    /* a connection being opened, or a stream ending, will take it */
} rm_req_pool_action_t;

/** Where the next request to the endpoint goes, among its `n` connections: the ready, not draining one with the
 *  fewest open streams below its peer's limit (the first on a tie), into *idx; else WAIT when one is being opened
 *  (it will have room); else OPEN while fewer than `max_conns` are not draining; else WAIT. */
rm_req_pool_action_t rm_req_pool_choose(const rm_req_pool_conn_t *conns, size_t n, size_t max_conns, size_t *idx);

/** Whether the connection should be closed now: draining with no stream left, or ready with no stream for
 *  `idle_ms` (0: never idle-closed). */
int rm_req_pool_should_close(const rm_req_pool_conn_t *c, uint64_t now_ms, uint64_t idle_ms);

/** Whether a keepalive PING is due: ready, none waiting, and nothing from the peer for `ping_ms` (0: never). A PING
 *  still unanswered after another `ping_ms` means the peer is gone: rm_req_pool_ping_lost. */
int rm_req_pool_ping_due(const rm_req_pool_conn_t *c, uint64_t now_ms, uint64_t ping_ms);

/** Whether the PING out is unanswered for too long: the connection is to be failed (its streams get UC). */
int rm_req_pool_ping_lost(const rm_req_pool_conn_t *c, uint64_t now_ms, uint64_t ping_ms);

#endif
