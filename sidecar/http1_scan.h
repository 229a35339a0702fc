/* A fast scanner of HTTP/1.1 response heads for observe mode (http1_filter.h, rm_http1_filter_set_observe).
 *
 * Observing a response needs its status and where it ends, nothing else: the bytes go to the client as the app sent
 * them. The scanner recognises, in one pass with memchr over whole lines, only the plainest response head, the one
 * an app or proxy sends nearly always, and for which http_parser's reading (status, body length, end of the message,
 * next message on the same connection) is certain. Anything else returns "not mine", and the caller runs the full
 * parser over that whole message: so the scanner can be stricter than the parser, never looser, and the two never
 * disagree on where a message ends. */
#ifndef RINGMESH_HTTP1_SCAN_H
#define RINGMESH_HTTP1_SCAN_H

#include <stddef.h>
#include <stdint.h>

/** The scanner looks at most this many bytes for a head's end (a longer head goes to the full parser, whose own
 *  limit is far above it). */
#define RM_HTTP1_SCAN_MAX_HEAD (16 * 1024)

/** 1 when c is a tchar of RFC 9110 5.6.2 (a byte of a token: a field name, a method), 0 otherwise. */
static inline int rm_http1_is_tchar(uint8_t c)
{
    uint8_t lower = (uint8_t)(c | 0x20);
    if ((lower >= 'a' && lower <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return 1;
    default:
        return 0;
    }
}

/** What the scanner read from a response head it recognised. */
typedef struct st_rm_http1_resp_head_t {
    size_t head_len;         /* bytes of the head, its final empty line included */
    uint16_t status;         /* 200..599, never 204 or 304 */
    uint64_t content_length; /* body bytes that follow the head */
} rm_http1_resp_head_t;

/** Scans p[0, n) for a whole response head of this exact shape:
 *    "HTTP/1.1" SP 3DIGIT SP reason CRLF, status 200..599 but not 204 or 304 (those and 1xx have special framing);
 *    field lines "name:" value CRLF, name a token (RFC 9110 5.6.2), value of HTAB, SP, visible characters and
 *    obs-text (no CR, LF, NUL or other control), no line starting with SP or HTAB (obs-fold);
 *    exactly one Content-Length, of 1 to 15 digits with only SP around them;
 *    no Transfer-Encoding, nor any field whose name starts with "transfer-encoding" (http_parser takes those for
 *    one); Connection and Proxy-Connection, when present, exactly "keep-alive" (any case);
 *    an empty line (CRLF) ending the head within RM_HTTP1_SCAN_MAX_HEAD bytes.
 *  Returns 1 with *out filled; 0 when p does not start with such a head or does not hold all of it (bare LF, a
 *  missing or repeated Content-Length, chunked, close, a head split across reads: the caller parses the message with
 *  http_parser instead). The caller keeps the cases that depend on the request (HEAD, CONNECT, Upgrade). */
int rm_http1_scan_response_head(const uint8_t *p, size_t n, rm_http1_resp_head_t *out);

/** Where one field of a scanned request head sits, as offsets into the head. */
typedef struct st_rm_http1_scan_field_t {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len; /* leading SP/HTAB skipped, trailing kept, as http_parser gives it */
} rm_http1_scan_field_t;

/** What the scanner read from a request head it recognised. */
typedef struct st_rm_http1_req_head_t {
    size_t head_len; /* bytes of the head, its final empty line included */
    unsigned method; /* an enum http_method of http_parser.h */
    uint32_t target_off, target_len;
    uint64_t content_length; /* body bytes that follow the head (0 without Content-Length) */
    size_t num_fields;
} rm_http1_req_head_t;

/** Scans p[0, n) for a whole request head of this exact shape:
 *    method SP target SP "HTTP/1.1" CRLF, method one of GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, target
 *    starting with "/" and made of visible ASCII other than "#";
 *    at most `max_fields` field lines as rm_http1_scan_response_head() takes them (token name, colon, value of
 *    HTAB, SP, visible characters and obs-text, CRLF, no obs-fold);
 *    at most one Content-Length (1 to 15 digits, only SP around them) and one Host; no Transfer-Encoding (nor a
 *    name starting with "transfer-encoding", as for responses), Upgrade or Expect;
 *    Connection and Proxy-Connection, when present, exactly "keep-alive";
 *    an empty line ending the head within RM_HTTP1_SCAN_MAX_HEAD bytes.
 *  Returns 1 with *out and fields[0, out->num_fields) filled; 0 otherwise (the caller parses the request with
 *  http_parser, which answers whatever is wrong with it). */
int rm_http1_scan_request_head(const uint8_t *p, size_t n, rm_http1_req_head_t *out, rm_http1_scan_field_t *fields,
                               size_t max_fields);

#endif
