/* One HTTP/2 session (RFC 9113) of the request path between proxies, client or server role, over the caller's
 * bytes: what arrives from the peer goes in with rm_h2s_feed, what is to be sent comes out with rm_h2s_output. No
 * I/O, no timers: the owner (a pooled connection's side, or a test) moves the bytes and the clock.
 *
 * Streams are the caller's: each carries a `stream_data` pointer given when the stream is opened (client) or set
 * when its request arrives (server), handed back with every event of the stream.
 *
 * Back-pressure both ways, no unbounded buffering:
 *   - received DATA is handed to on_data and counts against the stream's and the session's receive windows until
 *     the caller says it passed it on (rm_h2s_consume): a slow reader stops the peer at the window.
 *   - a body to send is an rm_h2s_body_t the caller owns (in its stream object): rm_h2s_body_write copies what fits
 *     in its one pool buffer and returns how much; the rest waits for the peer's window and on_body_room.
 *
 * Received header blocks are copied into one scratch area of the session (one block at a time: HTTP/2 never
 * interleaves them) and are valid only during on_headers; a block over RM_H2S_MAX_FIELDS fields or
 * RM_H2S_MAX_HEADER_BYTES bytes resets its stream (REFUSED_STREAM is not used: the request may have been seen).
 *
 * Errors: functions return 0 (or a count) or a negative nghttp2 error code (nghttp2_strerror names it); a session
 * that returned an error from rm_h2s_feed is over (the owner closes the connection). */
#ifndef RINGMESH_H2_SESSION_H
#define RINGMESH_H2_SESSION_H

#include "ringmesh/http_request.h"

#include <stddef.h>
#include <stdint.h>

#define RM_H2S_MAX_FIELDS       128
#define RM_H2S_MAX_HEADER_BYTES 32768

typedef struct st_rm_h2s_t rm_h2s_t;

/** The bytes of one body on their way out: one pool buffer (taken on the first write, given back when empty). The
 *  all-zero value is an empty body still open. Trailers, when the caller ends with some, are sent after the last
 *  byte (they must stay valid until on_close of the stream). */
typedef struct st_rm_h2s_body_t {
    uint8_t *buf;
    size_t off, len;
    uint8_t eof;                      /* no more bytes will be written */
    uint8_t eof_sent;                 /* the last DATA frame (or the trailers) went into the session */
    uint8_t deferred;                 /* the session waits for bytes: a write resumes it */
    const rm_http_header_t *trailers; /* sent after the body when eof (NULL: END_STREAM on the last DATA) */
    size_t num_trailers;
} rm_h2s_body_t;

/** What the session tells its owner; each callback returns 0, or a nonzero value to reset that stream (CANCEL). */
typedef struct st_rm_h2s_cbs_t {
    /** A header block of stream `sid` arrived whole: a request (server role; stream_data is NULL until the caller
     *  sets it with rm_h2s_set_stream_data), a response (1xx ones too), or trailers. `end_stream`: the peer sent
     *  nothing more on it. */
    int (*on_headers)(rm_h2s_t *s, int32_t sid, void *stream_data, const rm_http_header_t *h, size_t n, int end_stream);
    /** Body bytes of the stream; the caller rm_h2s_consume-s them once passed on. */
    int (*on_data)(rm_h2s_t *s, int32_t sid, void *stream_data, const uint8_t *p, size_t n);
    /** The peer ended its side after body bytes (no trailers). */
    int (*on_end)(rm_h2s_t *s, int32_t sid, void *stream_data);
    /** The stream is over: error_code 0 when both sides ended normally, else the reset's code. Its body and
     *  trailers are no longer read. */
    void (*on_close)(rm_h2s_t *s, int32_t sid, void *stream_data, uint32_t error_code);
    /** Room again in the stream's body buffer (some of it went out). May be NULL. */
    void (*on_body_room)(rm_h2s_t *s, int32_t sid, void *stream_data);
} rm_h2s_cbs_t;

/** Settings a session announces. 0 fields take the defaults (100 streams, 64 KiB - 1 windows). */
typedef struct st_rm_h2s_settings_t {
    uint32_t max_concurrent_streams;
    uint32_t initial_window; /* per stream */
    uint32_t session_window; /* the connection's receive window */
} rm_h2s_settings_t;

/** Makes a session in the client (`server` 0) or server role and queues its preface / SETTINGS. Returns NULL when
 *  out of memory. */
rm_h2s_t *rm_h2s_new(int server, const rm_h2s_cbs_t *cbs, const rm_h2s_settings_t *settings, void *owner);
/** Frees the session (the streams still open get no on_close) and the pool buffers of the bodies it holds are the
 *  caller's to free (rm_h2s_body_clear). NULL is fine. */
void rm_h2s_free(rm_h2s_t *s);
/** The owner pointer given to rm_h2s_new. */
void *rm_h2s_owner(rm_h2s_t *s);

/** Feeds bytes received from the peer. Returns the count taken (all of them) or a negative error: the session is
 *  then over (a GOAWAY may be waiting in rm_h2s_output). */
long rm_h2s_feed(rm_h2s_t *s, const uint8_t *p, size_t n);
/** Copies at most `room` bytes the session has to send into out. Returns the count (0: nothing to send now) or a
 *  negative error. */
long rm_h2s_output(rm_h2s_t *s, uint8_t *out, size_t room);
/** Nonzero while the session has bytes to send. */
int rm_h2s_want_write(rm_h2s_t *s);
/** Nonzero while the session is still useful: not both ends finished (GOAWAY sent or received and no stream left). */
int rm_h2s_alive(rm_h2s_t *s);

/** Client role: nonzero when a new stream may be opened now (no GOAWAY either way, fewer streams open than the
 *  peer's SETTINGS_MAX_CONCURRENT_STREAMS). */
int rm_h2s_can_open(rm_h2s_t *s);
/** Streams open now (both roles). */
size_t rm_h2s_open_streams(rm_h2s_t *s);
/** Client role: opens a stream with the request's header list (pseudo-headers first, names lower-case); with
 *  `body` the request has one (written later with rm_h2s_body_write), else END_STREAM goes with the headers.
 *  Returns the stream ID (> 0) or a negative error. */
int32_t rm_h2s_request(rm_h2s_t *s, const rm_http_header_t *h, size_t n, rm_h2s_body_t *body, void *stream_data);
/** Server role: sets the caller's pointer for a stream whose request arrived. */
int rm_h2s_set_stream_data(rm_h2s_t *s, int32_t sid, void *stream_data);
/** Server role: answers stream `sid` with the header list (":status" first); `body` as for rm_h2s_request.
 *  Returns 0 or a negative error. */
int rm_h2s_respond(rm_h2s_t *s, int32_t sid, const rm_http_header_t *h, size_t n, rm_h2s_body_t *body);
/** Copies what fits of p[0, n) into the body's buffer and lets the session send it. Returns the count taken (0
 *  when the buffer is full: wait for on_body_room) or a negative error (-ENOMEM: no pool buffer). */
long rm_h2s_body_write(rm_h2s_t *s, int32_t sid, rm_h2s_body_t *b, const uint8_t *p, size_t n);
/** No more bytes for the body; `trailers` (NULL: none) follow the last byte. Returns 0 or a negative error. */
int rm_h2s_body_end(rm_h2s_t *s, int32_t sid, rm_h2s_body_t *b, const rm_http_header_t *trailers, size_t n);
/** Gives the body's pool buffer back (the stream is closed or the body no longer sent). */
void rm_h2s_body_clear(rm_h2s_t *s, rm_h2s_body_t *b);
/** `n` bytes of the stream's body were passed on: the peer may send that much more. Returns 0 or an error. */
int rm_h2s_consume(rm_h2s_t *s, int32_t sid, size_t n);
/** Resets the stream with `error_code` (RFC 9113 section 7). Returns 0 or an error. */
int rm_h2s_reset(rm_h2s_t *s, int32_t sid, uint32_t error_code);
/** Graceful end: a GOAWAY naming the last stream the peer opened; open streams finish, no new ones. */
int rm_h2s_goaway(rm_h2s_t *s);
/** Queues a PING (keepalive): the peer's ACK shows in rm_h2s_pings_acked. */
int rm_h2s_ping(rm_h2s_t *s);
/** PING ACKs received so far. */
uint64_t rm_h2s_pings_acked(rm_h2s_t *s);
/** Nonzero once the peer sent a GOAWAY. */
int rm_h2s_goaway_received(rm_h2s_t *s);

#endif
