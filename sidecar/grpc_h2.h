/* A gRPC client for the proxy's control thread: HTTP/2 from nghttp2, TLS from the proxy's own backend (rm_tls over
 * wolfSSL, ALPN "h2", the server's SPIFFE ID checked), and gRPC's framing (a 5-byte prefix per message, status in
 * the trailers) on top. It exists so that the proxy does not load the gRPC C core, whose libraries (gRPC, abseil,
 * OpenSSL, libstdc++) would more than double its resident memory; the control plane itself serves with the gRPC
 * C core, and the end-to-end tests run this client against it.
 *
 * One connection, driven by the calling thread with rm_h2_poll(); no other thread may touch it. Calls are
 * streams on the connection; their callbacks run inside rm_h2_poll(). */
#ifndef RINGMESH_GRPC_H2_H
#define RINGMESH_GRPC_H2_H

#include <stddef.h>
#include <stdint.h>

#include "ringmesh/tls.h"

#define RM_GRPC_UNAVAILABLE 14 /* the status a call gets when the connection is lost */
#define RM_GRPC_MAX_MESSAGE (16u << 20)

/** The decimal number in v[0..len): 1 to `max_digits` ASCII digits and nothing else, else `bad`. For :status
 *  (bad 0: not a success) and grpc-status (bad 2, UNKNOWN: a status that does not parse is not OK). */
static inline int rm_h2_parse_digits(const uint8_t *v, size_t len, size_t max_digits, int bad)
{
    int n = 0;
    if (len == 0 || len > max_digits)
        return bad;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return bad;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/** The next gRPC length-prefixed message in buf[off .. len) (a flag byte, a 4-byte big-endian length, the
 *  message): returns 1 with *msg and *msg_len set when all of it is there, 0 when more bytes are needed, -1 when
 *  its prefix is refused (*why: compressed, which is never negotiated, or longer than RM_GRPC_MAX_MESSAGE). `buf`
 *  is NULL when nothing was received (off == len). */
static inline int rm_h2_grpc_message_next(const uint8_t *buf, size_t len, size_t off, const uint8_t **msg,
                                          uint32_t *msg_len, const char **why)
{
    const uint8_t *p;
    size_t avail = len - off;
    uint32_t mlen;
    if (avail < 5)
        return 0;
    p = buf + off; /* not before: buf + 0 with buf NULL is undefined */
    mlen = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (p[0] != 0 || mlen > RM_GRPC_MAX_MESSAGE) {
        *why = p[0] != 0 ? "compressed message (not negotiated)" : "message larger than 16 MiB";
        return -1;
    }
    if (avail < 5 + (size_t)mlen)
        return 0;
    *msg = p + 5;
    *msg_len = mlen;
    return 1;
}

typedef struct st_rm_h2_conn_t rm_h2_conn_t;
typedef struct st_rm_h2_call_t rm_h2_call_t;

typedef struct st_rm_h2_call_cbs_t {
    /** The server accepted the call (response headers without end of stream). May be NULL. */
    void (*on_accepted)(void *arg, rm_h2_call_t *call);
    /** A whole message arrived. */
    void (*on_message)(void *arg, rm_h2_call_t *call, const uint8_t *msg, size_t len);
    /** The call ended: grpc-status (0 OK) and its message. The call is freed after this returns. */
    void (*on_close)(void *arg, rm_h2_call_t *call, int status, const char *message);
} rm_h2_call_cbs_t;

/** Connects to `addr` ("host:port" with a numeric host, or "[ip6]:port"), completes TLS with `ctx` and checks that
 *  the server presents `expected_id`, then starts HTTP/2. Blocks for at most `timeout_ms`. `authority` is sent as
 *  :authority and SNI. Returns 0, or an error with a sentence in `err`. */
int rm_h2_connect(const char *addr, const char *authority, rm_tls_ctx_t *ctx, const char *expected_id, int timeout_ms,
                  rm_h2_conn_t **out, char *err, size_t errlen);

/** Starts a call of `path` ("/package.Service/Method"). Returns 0 or an error. */
int rm_h2_call_start(rm_h2_conn_t *c, const char *path, const rm_h2_call_cbs_t *cbs, void *arg, rm_h2_call_t **out);

/** Queues one message on the call (sent by the next rm_h2_poll()). Returns 0 or -ENOMEM / -EPIPE (already
 *  half-closed or ended). */
int rm_h2_call_send(rm_h2_call_t *call, const uint8_t *msg, size_t len);

/** Half-closes the call once what is queued has been sent. */
void rm_h2_call_close_send(rm_h2_call_t *call);

/** Sets the keepalive of `c`: a PING after `idle_ms` without input, the connection dead when it is not answered
 *  within `timeout_ms` (defaults 60 s and 20 s; 0 keeps the current value). */
void rm_h2_set_keepalive(rm_h2_conn_t *c, uint32_t idle_ms, uint32_t timeout_ms);

/** Sends what is queued, waits up to `timeout_ms` for input and processes it (running callbacks). Sends a PING
 *  after the keepalive time (60 s) without input and declares the connection dead when the keepalive timeout (20 s)
 *  passes without an answer. Returns 0, or a negative error once the
 *  connection is unusable; every open call has then been closed with RM_GRPC_UNAVAILABLE and a reason. */
int rm_h2_poll(rm_h2_conn_t *c, int timeout_ms);

/** Number of calls open on the connection. */
size_t rm_h2_open_calls(const rm_h2_conn_t *c);

/** Why the connection died, or "" while it is alive. */
const char *rm_h2_error(const rm_h2_conn_t *c);

/** Closes the connection and frees it with every call on it (no callback runs). NULL is fine. */
void rm_h2_close(rm_h2_conn_t *c);

/** One unary call on a new connection: connect, send `req`, wait for the answer (all within `timeout_ms`).
 *  On success *resp (free()) holds the response message and *status is 0; on a gRPC error *status and `err` say
 *  it; on a transport error returns a negative error. */
int rm_h2_unary(const char *addr, const char *authority, rm_tls_ctx_t *ctx, const char *expected_id, const char *path,
                const uint8_t *req, size_t req_len, int timeout_ms, uint8_t **resp, size_t *resp_len, int *status,
                char *err, size_t errlen);

/** The same on an open connection (other calls on it keep being served while this one waits). */
int rm_h2_unary_on(rm_h2_conn_t *c, const char *path, const uint8_t *req, size_t req_len, int timeout_ms,
                   uint8_t **resp, size_t *resp_len, int *status, char *err, size_t errlen);

#endif
