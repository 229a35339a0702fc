/* HTTP/1.x <-> HTTP/2 mapping for the request path between proxies (docs/traffic-management.md, "Requests"): which
 * header fields cross, how pseudo-headers are made, how a message's body is framed on the other side, and the
 * HTTP/1.1 heads and chunk framing written towards an app. The outbound proxy turns an app's HTTP/1.x request into
 * an HTTP/2 stream and the response back; the inbound proxy turns a stream into an HTTP/1.1 request to its app and
 * the app's response into HTTP/2.
 *
 * Pure functions over the caller's memory: no allocation, no I/O. Names are compared without regard to case;
 * every output is bounded by the caller's buffer (-ENOSPC when it does not fit, nothing partial to use). */
#ifndef RINGMESH_HTTP1_CODEC_H
#define RINGMESH_HTTP1_CODEC_H

#include "ringmesh/http_request.h"

#include <stddef.h>
#include <stdint.h>

/** The header the outbound proxy adds when the app spoke HTTP/1.x; its value is the app's version. */
#define RM_H1C_ORIG_PROTO "ringmesh-orig-proto"
/** Header fields whose name starts with this are the proxies' own: never taken from an app, never given to one. */
#define RM_H1C_MESH_PREFIX "ringmesh-"

/** What becomes of one HTTP/1.x header field on the way to HTTP/2 (RFC 9113 section 8.2.2). */
typedef enum {
    RM_H1C_FIELD_KEEP = 0,  /* crosses, its name lower-cased */
    RM_H1C_FIELD_DROP,      /* connection-specific (connection, keep-alive, proxy-connection, transfer-encoding,
                               upgrade, te other than "trailers", a field the Connection header names) or the
                               proxies' own (ringmesh-*) */
    RM_H1C_FIELD_AUTHORITY, /* Host: becomes :authority */
} rm_h1c_field_t;

/** Classifies the field `name: value`. `connection` is the message's Connection header value (its comma-separated
 *  tokens name more fields to drop), NULL or empty when it has none. */
rm_h1c_field_t rm_h1c_classify(const char *name, size_t name_len, const char *value, size_t value_len,
                               const char *connection, size_t connection_len);

/** An HTTP/1.x request head as parsed (header names in any case). */
typedef struct st_rm_h1c_request_t {
    const char *method, *target; /* target: the request-target as the app sent it */
    size_t method_len, target_len;
    const rm_http_header_t *headers;
    size_t num_headers;
    uint8_t minor; /* HTTP/1.<minor>: 0 or 1 */
} rm_h1c_request_t;

/** The HTTP/2 header list of an app's HTTP/1.x request, into out[0 .. max): :method, :scheme "http", :authority
 *  (from Host; left out when there is none), :path, ringmesh-orig-proto (HTTP/1.1 or HTTP/1.0), then the fields
 *  that cross, names lower-cased into `names` (names_len bytes; out's names point there or to constants). Returns
 *  the number of entries, -ENOSPC when out or names is too small, -EINVAL when the request has two Host fields or
 *  an HTTP/1.1 request has none (RFC 9112 section 3.2: the caller answers 400). */
int rm_h1c_request_to_h2(const rm_h1c_request_t *req, rm_http_header_t *out, size_t max, char *names, size_t names_len);

/** How a message body is delimited on HTTP/1.1. */
typedef enum {
    RM_H1C_BODY_NONE = 0, /* no body */
    RM_H1C_BODY_LENGTH,   /* content-length bytes */
    RM_H1C_BODY_CHUNKED,  /* chunked transfer coding */
    RM_H1C_BODY_CLOSE,    /* until the connection closes (an HTTP/1.0 client's response of unknown length) */
} rm_h1c_body_t;

/** The framing of a response given to an HTTP/1.<client_minor> client: none for a HEAD request and for 1xx, 204
 *  and 304 (RFC 9112 section 6.3); content-length when the response has one; else chunked for HTTP/1.1 and
 *  close-delimited for HTTP/1.0. */
rm_h1c_body_t rm_h1c_response_framing(int status, int head_request, int has_length, int client_minor);

/** The framing of a request given to an app over HTTP/1.1: none when the stream ended with its headers,
 *  content-length when it has one, else chunked. */
rm_h1c_body_t rm_h1c_request_framing(int end_stream, int has_length);

/** Writes an HTTP/1.1 response head into buf: the status line (a reason phrase for known codes), the fields of
 *  `headers` except pseudo-headers and connection-specific ones, then, by `framing`, "transfer-encoding: chunked"
 *  (a content-length of the response stays as it is for LENGTH, HEAD and 304, and is dropped otherwise), and
 *  "connection: close" when `close`. HTTP/1.0 clients get an "HTTP/1.0" status line. Returns the length written or
 *  -ENOSPC. */
int rm_h1c_write_response_head(int status, const rm_http_header_t *headers, size_t num, rm_h1c_body_t framing,
                               int client_minor, int close, char *buf, size_t len);

/** Writes an HTTP/1.1 request head for an app from an HTTP/2 stream: "<method> <path> HTTP/1.1", Host from
 *  `authority` (a host field of the stream is dropped for it), the fields of `headers` except pseudo-headers,
 *  connection-specific ones and ringmesh-* ones, and "transfer-encoding: chunked" for CHUNKED framing (a
 *  content-length stays for LENGTH and is dropped otherwise). Returns the length written or -ENOSPC. */
int rm_h1c_write_request_head(const char *method, size_t method_len, const char *path, size_t path_len,
                              const char *authority, size_t authority_len, const rm_http_header_t *headers, size_t num,
                              rm_h1c_body_t framing, char *buf, size_t len);

/** Writes the head of one chunk of `size` bytes (hex size, CRLF) into buf (at least 18 bytes). Returns its length. */
size_t rm_h1c_chunk_head(size_t size, char *buf);

/** Writes the end of a chunked body: the last chunk, the trailer fields of `trailers` (pseudo-headers and
 *  connection-specific ones left out), and the final CRLF. Returns the length written or -ENOSPC. */
int rm_h1c_write_last_chunk(const rm_http_header_t *trailers, size_t num, char *buf, size_t len);

/** The reason phrase of a status code ("" for codes without one here). */
const char *rm_h1c_reason(int status);

#endif
