/* The inbound end of the request path (docs/traffic-management.md, "The inbound side"): a pooled request connection
 * (ALPN ringmesh/h2 on a capture port) is an HTTP/2 server session of its own (req_in.c). Each stream's request is
 * decided by the inbound policy as any inbound request (rm__conn_decide_request), loses every ringmesh-* field, and
 * goes to the app at the original destination's port:
 *   - with `ringmesh-orig-proto: HTTP/1.x`: as HTTP/1.1 over keep-alive app connections the worker keeps per app
 *     port, one request at a time on each (req_in_app.c);
 *   - without it: as a stream of an HTTP/2 cleartext session on the connection's own app side (c->up).
 * The connection module calls the rm__req_in_* functions of req_in.c; req_in.c and req_in_app.c call each other
 * through the rest of this header (req_in_up.c shares req_in.c's types through req_in-t.h). Everything runs on the
 * connection's worker thread. */
#ifndef RINGMESH_REQ_IN_H
#define RINGMESH_REQ_IN_H

#include "proxy_conn-t.h"

#include <stddef.h>
#include <stdint.h>

typedef struct st_rm__req_in_t rm__req_in_t;
typedef struct st_rm__req_in_stream_t rm__req_in_stream_t;
typedef struct st_rm__app_conn_t rm__app_conn_t;

/* ------------------------------------------------------------------ req_in.c, req_in_up.c: the pooled connection */

/** 1 when the inbound connection's handshake negotiated ringmesh/h2 on a capture port (not an explicit listener):
 *  it becomes a request server (rm__req_in_start) instead of taking a filter. */
int rm__req_in_wanted(rm_conn_t *c);
/** Makes c (handshake done) an HTTP/2 server session; its app side is connected only when a stream needs it.
 *  Returns 0 or -ENOMEM. */
int rm__req_in_start(rm_conn_t *c);
/** Moves everything of the connection along: the client's bytes into the session, the session's out, the app's
 *  HTTP/2 session both ways. May set closing (the client is done and no stream is left). Returns 0 or an error that
 *  ends the connection. */
int rm__req_in_pump(rm_conn_t *c);
/** The connect to the app (c->up) failed with `err`: the streams waiting for it are answered 503 (flag UF). */
void rm__req_in_up_failed(rm_conn_t *c, int err);
/** The app side (c->up) failed after it was connected: its streams are reset, the next one connects again. */
void rm__req_in_up_error(rm_conn_t *c, int err);
/** The connection is closing: every stream still open is reported as ended and freed, and its HTTP/1.1 app
 *  connection (if any) closed. */
void rm__req_in_free(rm_conn_t *c);

/* What an HTTP/1.1 exchange with the app tells its stream (req_in_app.c -> req_in.c). None of these frees the
 * stream; the caller runs rm__req_in_kick last, so that the pooled connection sends what they queued. */

/** The app's response head: `status`, its fields (names lower-case, connection-specific ones left out). `no_body`:
 *  the response has no body (HEAD, 204, 304). Returns 0 or an error (the exchange is then failed). */
int rm__req_in_app_head(rm__req_in_stream_t *st, int status, const rm_http_header_t *h, size_t n, int no_body);
/** Response body bytes. Returns how many were taken (fewer than n: the client's window is full; the caller holds
 *  the rest and tries again after rm__app_h1_resume) or a negative error. */
long rm__req_in_app_body(rm__req_in_stream_t *st, const uint8_t *p, size_t n);
/** The response ended (trailers of a chunked response, when `n` > 0, are given as fields). */
void rm__req_in_app_end(rm__req_in_stream_t *st, const rm_http_header_t *trailers, size_t n);
/** The exchange failed: answered 503 with `flag` ("UF": the app could not be connected to; "UC": it went away
 *  before its response) when no response head went out yet, else the stream is reset. The app connection no
 *  longer belongs to the stream. */
void rm__req_in_app_failed(rm__req_in_stream_t *st, const char *flag);
/** The exchange was sent again on another connection `a` (the one it was on closed before answering). */
void rm__req_in_app_moved(rm__req_in_stream_t *st, rm__app_conn_t *a);
/** `n` bytes of the client's request body went out towards the app: the client may send that much more. */
void rm__req_in_app_sent(rm__req_in_stream_t *st, size_t n);
/** Runs the progress of the stream's pooled connection (which may free the connection and the stream). */
void rm__req_in_kick(rm__req_in_stream_t *st);

/* ------------------------------------------------------------------ req_in_app.c: HTTP/1.1 app connections */

/** Sends a request to the app at `target` for `st`: on an idle keep-alive connection of the worker to that address,
 *  else on a new one (`fresh` forces a new one). `head` is the whole request head; `framing` says how the body that
 *  follows (rm__app_h1_body) is delimited (RM_H1C_BODY_NONE: no body); `head_request`: a HEAD (its response has no
 *  body). Returns the connection (the stream's until rm__app_h1_detach or a failure event) or NULL when out of
 *  memory or sockets (the caller answers 503 UF). */
rm__app_conn_t *rm__app_h1_send(rm_worker_t *w, const rm_sockaddr_t *target, rm__req_in_stream_t *st, const char *head,
                                size_t head_len, int framing, int head_request, int fresh);
/** Body bytes of the stream's request (framed as the connection's `framing` says). Returns 0 or -ENOMEM. */
int rm__app_h1_body(rm__app_conn_t *a, const uint8_t *p, size_t n);
/** The request's body ended (chunked: the last chunk with these trailers). Returns 0 or -ENOMEM. */
int rm__app_h1_end(rm__app_conn_t *a, const rm_http_header_t *trailers, size_t n);
/** The client's window has room again: response bytes held back are offered again. */
void rm__app_h1_resume(rm__app_conn_t *a);
/** The stream lets go of the connection: back to the worker's idle ones when its exchange ended cleanly (`clean`),
 *  else closed. */
void rm__app_h1_detach(rm__app_conn_t *a, int clean);
/* rm__app_pool_tick and rm__app_pool_cut, the worker's calls, are in proxy.h. */

#endif
