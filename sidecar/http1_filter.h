/* The HTTP/1.x policy filter: bytes in, bytes out, no I/O (inbound; outbound it observes, http_filter.h).
 *
 * The filter sits between the client (the mTLS peer) and the local app. It parses the client's requests with
 * http_parser (HTTP_REQUEST), calls the policy hook (http_filter.h) once per request when its head is complete,
 * and then:
 *   - allowed: forwards the request's bytes exactly as received (head, body, chunked framing, trailers), except the
 *     request target when normalizing its path changed it (http_filter.h): the request line then carries the
 *     normalized target in origin-form; and the fields the hook set (rm_http_decision_t.set): the head's fields of
 *     the same name are dropped and the set ones end the head, "name: value" CRLF each. The head is held until it
 *     is complete; the body streams through as it arrives.
 *   - denied: drops the head and the whole body (Content-Length or chunked) and answers
 *     "HTTP/1.1 403 Forbidden" with body "RBAC: access denied" (no body when the request was HEAD).
 * Responses reach the client in request order: the app's responses are parsed (HTTP_RESPONSE) against a queue of
 * the requests forwarded or denied, and a 403 is inserted right after the app's final response to the request
 * before it (1xx interim responses are not final; responses to HEAD, 204 and 304 have no body).
 *
 * Limits and answers that end the connection:
 *   - a request head (request line, headers and the empty line, plus any empty lines before it) of more than
 *     RM_HTTP1_MAX_HEAD_SIZE bytes or with more than RM_HTTP1_MAX_HEADERS fields: 431, then close;
 *   - a request target that cannot be normalized (a path holding %00): 400, then close;
 *   - a malformed request (anything http_parser rejects, including Content-Length with Transfer-Encoding and a
 *     Transfer-Encoding whose last coding is not chunked; also two Host fields, a field name that is not a token,
 *     a head whose final CR is not followed by LF, a head line starting with SP or HTAB: obs-fold or whitespace
 *     before the first field, RFC 9112 5.2 and 2.2): 400, then close;
 *   - a denied request with "Connection: close", or HTTP/1.0 without "Connection: keep-alive": the 403 carries
 *     "connection: close", then close;
 *   - a denied request with "Expect: 100-continue" and a body: 403 (never 100) with "connection: close", because
 *     a client that got a final answer may or may not send the body and the next request cannot be found safely.
 *     Body bytes the client sends anyway are dropped.
 * These answers too wait for the app's responses to earlier requests. Once one is queued the filter takes no more
 * requests (rm_http1_filter_client_finished) and drops what the client sends; the call that appends it to
 * to_client returns nonzero (see below). After an allowed request that asks to close, the filter takes no more
 * requests either; the app is expected to close.
 *
 * Upgrade and CONNECT: the request is decided like any other. If allowed, it is forwarded and whatever the client
 * sends after it is held until the app's final response to it: 101 (Upgrade) or 2xx (CONNECT) switches both
 * directions to pass-through for the rest of the connection and releases the held bytes to the app; any other
 * final response means no switch, and the held bytes are parsed as the next requests (so a refused upgrade never
 * lets requests past the policy). If denied, 403 as usual and parsing goes on.
 *
 * Return values of rm_http1_filter_from_client and rm_http1_filter_from_app:
 *   0                         keep going;
 *   RM_HTTP1_FILTER_CLOSE (1) the last answer (a 403 with "connection: close") is in to_client: send to_client,
 *                             then close the connection;
 *   -EPROTO                   a 400 is in to_client; or the app sent a malformed response or a 101 nobody asked
 *                             for; or the body of a request the app has already begun to receive is malformed
 *                             (nothing is answered then): send to_client, then close;
 *   -EMSGSIZE                 a 431 is in to_client: send to_client, then close;
 *   -ENOMEM                   allocation failed: close.
 * A nonzero result is sticky: later calls return it again and append nothing.
 *
 * Output: to_app and to_client are the caller's buffers; the filter only appends to them. Bytes appended to
 * to_client by either function must reach the client in the order the calls appended them (pass the same buffer,
 * or write each one out before the next call). The app's bytes are passed on as they arrive, so a response with
 * no length framing (ends at the app's EOF) needs no EOF call; no answer can follow it.
 *
 * Memory: buffers grow as needed and are reused for the next request; nothing is allocated per request once they
 * have grown. Bytes held inside the filter are reported by rm_http1_filter_buffered for back-pressure. */
#ifndef RINGMESH_HTTP1_FILTER_H
#define RINGMESH_HTTP1_FILTER_H

#include <stddef.h>
#include <stdint.h>
#include <http_parser.h>

#include "http_filter.h"
#include "ringmesh/bytebuf.h"

/** Maximum bytes in one request head, request line and final empty line included. */
#define RM_HTTP1_MAX_HEAD_SIZE (64 * 1024)
/** Maximum header fields in one request head. */
#define RM_HTTP1_MAX_HEADERS 100
/** Returned when the filter's last answer is queued and the connection must close once to_client is sent. */
#define RM_HTTP1_FILTER_CLOSE 1

/** One request or answer waiting for its turn in the client's response stream (private). */
typedef struct st_rm__http1_pending_t {
    uint8_t kind;           /* RM__HTTP1_PENDING_* in http1_filter.c */
    uint8_t flags;          /* RM__HTTP1_PF_* in http1_filter.c */
    uint32_t seq;           /* which request it is (rm_http1_filter_t.req_seq) */
    uint64_t cookie;        /* the hook's cookie, for the exchange's report */
    uint64_t request_bytes; /* body bytes of the request received so far */
} rm__http1_pending_t;

/** Where one header field of the current head sits in rm_http1_filter_t.fields (private). */
typedef struct st_rm__http1_field_t {
    uint32_t name_off, name_len, value_off, value_len;
} rm__http1_field_t;

/** One connection's filter. The caller embeds or allocates it; every member is private. */
typedef struct st_rm_http1_filter_t {
    rm_http_decide_cb decide;
    rm_http_done_cb done;
    void *decide_ctx;
    rm_http_decision_t decision; /* the hook's answer for the head being decided */
    uint32_t req_seq;            /* seq of the last request queued */
    uint16_t resp_status;        /* final status of the response being received, 0 before its head */
    uint8_t ended;               /* rm_http1_filter_end ran: nothing more is reported */
    uint64_t resp_bytes;         /* body bytes of the response being received */
    http_parser req_parser, resp_parser;
    /* client side */
    uint8_t client_state;    /* RM__HTTP1_CS_* */
    uint8_t client_event;    /* set by the request parser's callbacks, read after it pauses */
    uint8_t last_header_cb;  /* 0 none, 1 field, 2 value: tells a new field from the continuation of one */
    uint8_t too_many_fields; /* a callback stopped the parser at the (RM_HTTP1_MAX_HEADERS + 1)th field */
    uint8_t nomem;
    uint8_t cur_flags;       /* RM__HTTP1_PF_* of the request being received */
    uint8_t upgrade_answer;  /* the app's answer to an allowed upgrade: 0 pending, 1 switched, 2 refused */
    uint8_t app_passthrough; /* the app switched protocols: its bytes go to the client as they are */
    rm_bytebuf_t head;       /* raw bytes of the request head being received */
    rm_bytebuf_t fields;     /* request target, then lower-cased names and values, of the head being received */
    uint32_t url_len;        /* the request target is fields[0, url_len) */
    uint8_t path_mode;       /* rm_path_normalization_t */
    rm_bytebuf_t target;     /* the normalized request target of the head being decided */
    rm__http1_field_t *field_index;
    rm_http_header_t *hook_headers;
    size_t num_fields, fields_cap;
    rm_bytebuf_t held; /* what the client sent after an allowed upgrade, until the app answers it */
    /* the queue of requests forwarded or denied, oldest first (a ring) */
    rm__http1_pending_t *pending;
    size_t pending_head, pending_len, pending_cap, pending_answers;
    /* app side */
    uint8_t app_event;
    uint8_t observe;     /* rm_http1_filter_set_observe: responses may be framed by the fast scanner */
    uint8_t resp_fast;   /* the response being received was recognised by the scanner: resp_left body bytes to go */
    uint8_t resp_parsed; /* the response parser is inside a message (the scanner waits for its end) */
    uint8_t resp_nofast; /* a message the parser ended leaves it closed: the scanner never runs again */
    uint64_t resp_left;
    uint8_t req_fast;   /* the request being received was recognised by the scanner: req_left body bytes to go */
    uint8_t req_parsed; /* the request parser is inside a request (the scanner waits for its end) */
    uint64_t req_left;
    uint8_t finished; /* the result in `result` is final */
    int result;
} rm_http1_filter_t;

/** Initialises `f` (any prior content is ignored). `decide` is called once per request with `ctx`; anything but
 *  RM_HTTP_ALLOW denies. `done` (may be NULL) is called with `ctx` once per request decide was called for, when its
 *  exchange ends (http_filter.h): on the app's final response (1xx skipped; HEAD, 204 and 304 without body;
 *  Content-Length, chunked or until the app's EOF, see rm_http1_filter_end), on a 101 or CONNECT 2xx (the filter
 *  steps aside then), when the filter's own answer (403, 400) is appended to to_client (answered_by_proxy), or
 *  with complete = 0 by rm_http1_filter_end. request_bytes counts the request's body bytes received until then
 *  (chunk framing excluded). Returns 0, -EINVAL (decide is NULL) or -ENOMEM; on failure nothing needs disposing. */
int rm_http1_filter_init(rm_http1_filter_t *f, rm_http_decide_cb decide, rm_http_done_cb done, void *ctx);

/** The connection is ending. With `app_ended` (the app finished sending and everything it sent went through
 *  rm_http1_filter_from_app), a response that ends with the connection completes first. Then every exchange still
 *  open is reported with complete = 0. Later calls, and later input, report nothing. */
void rm_http1_filter_end(rm_http1_filter_t *f, int app_ended);

/** Frees what the filter holds (reports nothing). The filter can be initialised again. */
void rm_http1_filter_dispose(rm_http1_filter_t *f);

/** How the request targets of the requests decided from now on are normalized (BASE after init). */
void rm_http1_filter_set_path_normalization(rm_http1_filter_t *f, rm_path_normalization_t mode);

/** Observe mode (the hook allows every request and only the exchanges are reported): from now on, a response head
 *  of the plainest shape (http1_scan.h) is read by a fast scanner and its body skipped by its Content-Length,
 *  instead of running http_parser over them; every other response still goes through http_parser. What the filter
 *  passes on, reports and returns is the same either way. Call it before the first
 *  bytes; never in policy mode, whose answers it does not change anyway but whose strictness it is not meant for.
 *  Requests likewise: a head of the plainest shape (rm_http1_scan_request_head) is read by the scanner, which
 *  fills what the hook is given exactly as the parser's callbacks would, and its body is forwarded by count; any
 *  other request goes through http_parser, so the checks and answers (400, 431) stay those of the parser path. */
void rm_http1_filter_set_observe(rm_http1_filter_t *f);

/** Takes `len` bytes the client sent. Appends what the app must get to to_app and the filter's own answers
 *  (403, 400, 431) to to_client. The decide hook is called from here. Returns as described at the top. */
int rm_http1_filter_from_client(rm_http1_filter_t *f, const uint8_t *in, size_t len, rm_bytebuf_t *to_app,
                                rm_bytebuf_t *to_client);

/** Takes `len` bytes the app sent. Appends what the client must get to to_client: the app's bytes, with the
 *  filter's held answers inserted after the responses they wait for. When the app's answer to an upgrade is in,
 *  appends to to_app the client bytes held until then (all of them on a switch; on a refusal the requests among
 *  them are filtered as from_client would, which may call the decide hook). Returns as described at the top. */
int rm_http1_filter_from_app(rm_http1_filter_t *f, const uint8_t *in, size_t len, rm_bytebuf_t *to_app,
                             rm_bytebuf_t *to_client);

/** 1 once both directions are pass-through (after an allowed Upgrade answered 101 or CONNECT answered 2xx): the
 *  caller may then copy bytes without calling the filter. 0 otherwise. */
int rm_http1_filter_passthrough(const rm_http1_filter_t *f);

/** 1 once the filter takes no more requests from the client: an answer that closes the connection is queued, the
 *  last allowed request asked to close, or the result is final. The caller may stop reading from the client. */
int rm_http1_filter_client_finished(const rm_http1_filter_t *f);

/** Bytes held inside the filter (an incomplete request head, client bytes held during an upgrade, queued
 *  answers): a back-pressure hint; stop reading from the client while it is large. */
size_t rm_http1_filter_buffered(const rm_http1_filter_t *f);

#endif
