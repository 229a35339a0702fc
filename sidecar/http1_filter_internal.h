/* What the files of the HTTP/1.x filter share (http1_filter.c: the parser path and the queue; http1_filter_observe.c:
 * observe mode's fast path over the scanner of http1_scan.h). Nothing outside them includes this file. */
#ifndef RINGMESH_HTTP1_FILTER_INTERNAL_H
#define RINGMESH_HTTP1_FILTER_INTERNAL_H

#include "http1_filter.h"

/* What the client side is doing. */
enum {
    RM__HTTP1_CS_HEAD = 0,     /* receiving a request head (held in f->head) */
    RM__HTTP1_CS_BODY_FORWARD, /* streaming an allowed request's body to the app */
    RM__HTTP1_CS_BODY_DROP,    /* dropping a denied request's body */
    RM__HTTP1_CS_UPGRADE_WAIT, /* an allowed upgrade was forwarded; holding what follows until the app answers */
    RM__HTTP1_CS_PASSTHROUGH,  /* the protocol was switched: everything goes to the app */
    RM__HTTP1_CS_DONE,         /* no more requests: everything is dropped */
};

enum {
    RM__HTTP1_EV_NONE = 0,
    RM__HTTP1_EV_HEADERS_COMPLETE,
    RM__HTTP1_EV_MESSAGE_COMPLETE,
};

/* Kinds of queued entries: a request the app will answer, or one the filter answers itself. */
enum {
    RM__HTTP1_PENDING_FORWARDED = 0,
    RM__HTTP1_PENDING_DENIED,
    RM__HTTP1_PENDING_UNAUTHENTICATED, /* 401: the request's JWT was refused (RequestAuthentication) */
    RM__HTTP1_PENDING_BAD_REQUEST,     /* 400 */
    RM__HTTP1_PENDING_HEAD_TOO_BIG,    /* 431 */
};

/* Flags of a queued entry (and of the request being received). */
#define RM__HTTP1_PF_HEAD    0x01 /* HEAD request: the response has no body */
#define RM__HTTP1_PF_CLOSE   0x02 /* the connection ends after this request's response */
#define RM__HTTP1_PF_HTTP10  0x04 /* HTTP/1.0 request: keep-alive must be said explicitly */
#define RM__HTTP1_PF_UPGRADE 0x08 /* Upgrade or CONNECT: the protocol may switch after the response */
#define RM__HTTP1_PF_CONNECT 0x10 /* CONNECT: a 2xx response starts a tunnel */
#define RM__HTTP1_PF_HOOKED  0x20 /* the hook was called for it: its exchange is reported */

#define RM__HTTP1_HEADER_CB_FIELD 1
#define RM__HTTP1_HEADER_CB_VALUE 2

#define RM__HTTP1_UPGRADE_PENDING  0
#define RM__HTTP1_UPGRADE_SWITCHED 1
#define RM__HTTP1_UPGRADE_REFUSED  2

/* What a request head's framing says, read by http_parser or by the scanner (rm__http1_fast_request). */
typedef struct {
    unsigned method; /* enum http_method */
    uint8_t upgrade, http10, keep_alive, chunked, has_length;
    /* read by the scanner: the field names are tokens, and the head is the request line, one CRLF-ended line per
     * field and an empty CRLF line (http1_scan.h) */
    uint8_t scanned;
    uint64_t content_length;
} rm__http1_head_info_t;

/** Appends at[0, len) to f->fields, lower-cased with `lower`. Returns 0, or -1 with f->nomem set. */
int rm__http1_append_field_bytes(rm_http1_filter_t *f, const char *at, size_t len, int lower);
/** The head in f->head (target and fields in f->fields, f->field_index) is complete, its framing in *p: normalizes
 *  the target, asks the hook, then forwards the head or queues the answer. Returns 0 or an error. */
int rm__http1_decide_request(rm_http1_filter_t *f, const rm__http1_head_info_t *p, rm_bytebuf_t *to_app,
                             rm_bytebuf_t *to_client);
/** The request's last byte has been passed on or dropped: sets what the client side does next. */
void rm__http1_request_done(rm_http1_filter_t *f);
/** The app finished a response with `status` (`parser_upgrade`: the parser saw it switch protocols): reports it,
 *  sends the answers due after it, acts on an upgrade's answer. Returns 0 or an error. */
int rm__http1_response_done(rm_http1_filter_t *f, unsigned status, int parser_upgrade, rm_bytebuf_t *to_app,
                            rm_bytebuf_t *to_client);
/** Observe mode: the client's bytes at in[0, len) through the scanner (http1_filter_observe.c). *used: bytes taken,
 *  0 when the parser must take them. Returns 0 or an error. */
int rm__http1_fast_request(rm_http1_filter_t *f, const uint8_t *in, size_t len, size_t *used, rm_bytebuf_t *to_app,
                           rm_bytebuf_t *to_client);
/** Observe mode: the app's bytes at in[0, len) through the scanner; as rm__http1_fast_request. */
int rm__http1_fast_response(rm_http1_filter_t *f, const uint8_t *in, size_t len, size_t *used, rm_bytebuf_t *to_app,
                            rm_bytebuf_t *to_client);

#endif
