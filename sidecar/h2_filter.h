/* The HTTP/2 (and gRPC) policy filter: bytes in, bytes out, no I/O (inbound; outbound it observes, http_filter.h).
 *
 * Used when the client's first bytes on the plaintext side are the HTTP/2 connection preface (prior-knowledge h2c;
 * rm_h2_filter_sniff tells). The filter works on frames; it does not terminate HTTP/2:
 *   - client -> app: the preface and every frame pass through unchanged, except header blocks and connection-level
 *     WINDOW_UPDATEs (see "Flow control" below). Every header block (HEADERS + CONTINUATION, trailers included) is
 *     decoded with the filter's HPACK decoder, which follows the client's encoder, and, when forwarded, encoded
 *     again with the filter's own HPACK encoder, which the app's decoder follows. So a block the app must not see is
 *     simply not encoded again and both HPACK contexts stay in step. Forwarded blocks go out as HEADERS (+ CONTINUATION
 * frames of at most 16384 bytes) with END_HEADERS and END_STREAM as received, no padding, no priority.
 *   - the policy hook (http_filter.h) is called once per new stream when its header block is complete (not for
 *     trailers), with :path normalized (http_filter.h). Allowed: the block is forwarded, :path re-encoded as the
 *     normalized target when normalizing changed it, and with the fields the hook set (rm_http_decision_t.set) in
 *     place of the block's fields of the same names, after the others. A :path that cannot be normalized (%00) is
 * answered
 *     ":status 400" (no body), followed by RST_STREAM(NO_ERROR) when the request was not complete yet. Denied: the
 * client gets the answer from the filter (gRPC: trailers-only, grpc-status 7; otherwise 403 with body
 * RM_HTTP_DENIED_BODY, see "Flow control" below), followed by RST_STREAM(NO_ERROR) when the request was not complete
 * yet; the app never hears of the stream. A request whose decoded header list is over RM_H2_FILTER_MAX_HEADER_LIST
 * bytes (name + value + 32 per field) is answered 431 without calling the hook; a malformed request (no :method, a
 * duplicate, unknown or late pseudo-header, an invalid name or value, :authority and host that differ) gets
 * RST_STREAM(PROTOCOL_ERROR). Oversized trailers of an allowed stream reset it on both sides (CANCEL to the app,
 * ENHANCE_YOUR_CALM to the client).
 *   - every later client frame of a refused stream is dropped (DATA, trailers, RST_STREAM, WINDOW_UPDATE,
 *     PRIORITY). The payload of each dropped DATA frame, padding included, is handed back to the client with a
 *     connection-level WINDOW_UPDATE, since the app never will.
 *   - app -> client: bytes pass through unchanged as they arrive; the filter only finds frame boundaries and reads
 *     the app's SETTINGS. Its own frames (answers, WINDOW_UPDATEs) are inserted only between two app frames, never
 *     inside a HEADERS/PUSH_PROMISE..CONTINUATION sequence, and not before the app's first SETTINGS frame; until
 *     then they wait inside the filter. The answers' header blocks never touch the client's HPACK decoder state.
 *
 * Exchanges (http_filter.h): an allowed stream is followed in a table of RM_H2_FILTER_MAX_EXCHANGES entries until
 * the app ends its response (END_STREAM: complete), or either end resets it, the app's GOAWAY leaves it out, or
 * the connection ends (rm_h2_filter_end): complete = 0. When the table is full, a new stream pushes out the oldest,
 * reported with complete = 0. The app's header blocks are decoded for :status (1xx skipped) and grpc-status
 * (headers or trailers) with an inflater that follows the app's encoder; the app's bytes still pass unchanged (a
 * block it cannot decode only stops the statuses from being read). A refused stream is reported at once with the
 * filter's answer (answered_by_proxy): 403, or 200 with grpc-status 7, or 400; not a stream refused before the hook
 * (431, malformed). Body bytes are DATA payload without padding.
 *
 * Refused streams are remembered without growing: a stream above the highest allowed one and at most the highest
 * one seen is refused by construction; the others are kept in a ring of RM_H2_FILTER_DENIED_RING IDs, freed when
 * the client ends or resets the stream and otherwise overwritten oldest first. A late frame of a stream that has
 * left the ring goes to the app, which sees a frame on a closed stream.
 *
 * Flow control: the 403's 19 body bytes use the client's connection receive window, which the app also counts on.
 * So that the app can never overrun that window, the filter holds back up to RM_H2_FILTER_WINDOW_RESERVE bytes of
 * the client's large (>= 16384) connection WINDOW_UPDATEs from the app and pays bodies out of that reserve. When the
 * reserve (or the client's initial stream window) is too small, the 403 goes without body, "content-length: 0".
 *
 * Return values of rm_h2_filter_from_client and rm_h2_filter_from_app: 0, or a negative error after which the
 * caller closes the connection:
 *   -EPROTO    the client broke HTTP/2 (bad preface, frame, frame size or HPACK data; a GOAWAY is then appended to
 *              to_client when one can go there at once), or the app did (its first frame is not SETTINGS, it has
 *              more than 16 SETTINGS frames the client has not acknowledged): send to_client, then close;
 *   -ENOBUFS   more than RM_H2_FILTER_MAX_PENDING bytes of the filter's frames wait for an app frame boundary;
 *   -ENOMEM    allocation failed.
 * A negative result is sticky: later calls return it again and append nothing.
 *
 * Output: to_app and to_client are the caller's buffers; the filter only appends to them. Bytes appended to
 * to_client by either function must reach the client in the order the calls appended them (pass the same buffer,
 * or write each one out before the next call).
 *
 * Memory: buffers grow as needed and are reused; nothing is allocated per request once they have grown, apart from
 * the HPACK dynamic table entries nghttp2 allocates. */
#ifndef RINGMESH_H2_FILTER_H
#define RINGMESH_H2_FILTER_H

#include <stddef.h>
#include <stdint.h>
#include <nghttp2/nghttp2.h>

#include "http_filter.h"
#include "ringmesh/bytebuf.h"

/** Maximum decoded size of one header block: the sum over its fields of name + value + 32 (RFC 9113 6.5.2). */
#define RM_H2_FILTER_MAX_HEADER_LIST (64 * 1024)
/** Refused stream IDs remembered besides those above the highest allowed stream. */
#define RM_H2_FILTER_DENIED_RING 64
/** Connection window held back from the app to pay for 403 bodies. */
#define RM_H2_FILTER_WINDOW_RESERVE 1024
/** Maximum bytes of the filter's own frames waiting for an app frame boundary. */
#define RM_H2_FILTER_MAX_PENDING (256 * 1024)
/** SETTINGS frames of the app the client may leave unacknowledged. */
#define RM_H2_FILTER_MAX_UNACKED_SETTINGS 16
/** Allowed streams whose exchanges are followed at once. */
#define RM_H2_FILTER_MAX_EXCHANGES 128

/** One allowed stream whose exchange is followed (private); stream 0 marks a free entry. */
typedef struct st_rm__h2_exchange_t {
    uint32_t stream;
    uint16_t status;
    int16_t grpc_status;
    uint64_t cookie, request_bytes, response_bytes;
} rm__h2_exchange_t;

/** One connection's filter. The caller embeds or allocates it; every member is private. */
typedef struct st_rm_h2_filter_t {
    rm_http_decide_cb decide;
    rm_http_done_cb done;
    void *decide_ctx;
    rm_http_decision_t decision;   /* the hook's answer for the block being decided */
    nghttp2_hd_inflater *inflater; /* follows the client's HPACK encoder */
    nghttp2_hd_deflater *deflater; /* the app's HPACK decoder follows it */
    int result;                    /* 0, or the sticky negative error */
    uint32_t goaway_code;          /* HTTP/2 error code of the client's protocol violation, for the GOAWAY */
    /* client -> app framing */
    size_t preface_off;
    uint8_t c_hdr[9];
    size_t c_hdr_len;
    uint32_t c_len, c_stream, c_off; /* the frame being received and how much of its payload is in */
    uint8_t c_type, c_flags;
    uint8_t c_drop;       /* the DATA frame being received belongs to a refused stream */
    uint8_t c_pad;        /* pad length of the DATA frame being received (PADDED) */
    rm_bytebuf_t c_frame; /* payload of the non-DATA frame being received */
    uint32_t max_frame_size;
    /* streams */
    uint32_t last_stream, last_allowed;
    uint32_t denied[RM_H2_FILTER_DENIED_RING];
    size_t denied_next;
    /* the header block being received */
    uint32_t block_stream;
    uint8_t block_open, block_new, block_end_stream, block_drop, block_too_large;
    size_t block_size;
    rm_bytebuf_t fields;       /* where each decoded field of the block sits in `strings` */
    rm_bytebuf_t strings;      /* names and values of the block */
    rm_bytebuf_t nva;          /* nghttp2_nv[] to encode the block again */
    rm_bytebuf_t hook_headers; /* rm_http_header_t[] for the hook */
    rm_bytebuf_t encoded;      /* the block encoded for the app */
    rm_bytebuf_t target;       /* the normalized :path of the block being decided */
    uint8_t path_mode;         /* rm_path_normalization_t */
    uint8_t rewrite_path;      /* forward_block sends `target` as :path */
    uint8_t strip_mesh_fields; /* forwarded blocks leave out every ringmesh-* field */
    uint32_t inflate_table_size, inflate_table_target;
    /* flow control of the client's receive side */
    uint32_t client_initial_window; /* smallest SETTINGS_INITIAL_WINDOW_SIZE the client has sent */
    uint32_t reserve;               /* connection window the client granted and the app was not told of */
    /* app -> client framing */
    uint8_t a_hdr[9];
    size_t a_hdr_len;
    uint32_t a_left; /* payload bytes of the current app frame still to come */
    uint8_t a_type, a_flags;
    uint8_t a_preface_done, a_in_block;
    uint8_t a_setting[6];
    size_t a_setting_len;
    uint32_t a_table_size; /* SETTINGS_HEADER_TABLE_SIZE in the app's SETTINGS frame being received, or UINT32_MAX */
    uint32_t unacked[RM_H2_FILTER_MAX_UNACKED_SETTINGS]; /* their table sizes, oldest first (a ring) */
    size_t unacked_head, unacked_len;
    rm_bytebuf_t pending; /* the filter's frames waiting for an app frame boundary */
    /* exchanges, and the app's header blocks decoded for them */
    rm__h2_exchange_t exchanges[RM_H2_FILTER_MAX_EXCHANGES];
    size_t num_exchanges;
    nghttp2_hd_inflater *app_inflater; /* follows the app's HPACK encoder; NULL once it failed */
    rm_bytebuf_t a_frame; /* payload of the app's HEADERS, CONTINUATION, PUSH_PROMISE or GOAWAY being received */
    uint32_t app_table_size, app_table_target; /* its limit, and the largest the client has allowed */
    uint32_t a_stream, a_len;                  /* the app frame being received: stream and payload length */
    uint32_t a_block_stream;                   /* stream of the app's header block being received */
    uint8_t a_pad;                             /* the app frame's pad length (PADDED) */
    uint8_t a_block_end_stream;
    uint8_t ended; /* rm_h2_filter_end ran: nothing more is reported */
} rm_h2_filter_t;

/** Looks at the first bytes of a plaintext connection: 1 when they are the HTTP/2 client preface, 0 when they are
 *  not, -EAGAIN when they are a prefix of it and more bytes are needed. */
int rm_h2_filter_sniff(const uint8_t *in, size_t len);

/** Initialises `f` (any prior content is ignored). `decide` is called once per new stream with `ctx`; anything but
 *  RM_HTTP_ALLOW denies. `done` (may be NULL) is called with `ctx` once per stream decide was called for, when its
 *  exchange ends (see "Exchanges" above). Returns 0, -EINVAL (decide is NULL) or -ENOMEM; on failure nothing needs
 *  disposing. */
int rm_h2_filter_init(rm_h2_filter_t *f, rm_http_decide_cb decide, rm_http_done_cb done, void *ctx);

/** The connection is ending: reports every exchange still open with complete = 0. Later calls, and later input,
 *  report nothing. */
void rm_h2_filter_end(rm_h2_filter_t *f);

/** Frees what the filter holds (reports nothing). The filter can be initialised again. */
void rm_h2_filter_dispose(rm_h2_filter_t *f);

/** How the :path of the streams decided from now on is normalized (BASE after init). */
void rm_h2_filter_set_path_normalization(rm_h2_filter_t *f, rm_path_normalization_t mode);
/** From now on, the header blocks forwarded to the app leave out every field named ringmesh-* (the proxies' own
 *  fields on a pooled request connection, docs/traffic-management.md "Requests"). */
void rm_h2_filter_strip_mesh_fields(rm_h2_filter_t *f);

/** Takes `len` bytes the client sent, starting with the preface. Appends what the app must get to to_app and the
 *  filter's own frames to to_client (or keeps them until an app frame boundary). The decide hook is called from
 *  here. Returns as described at the top. */
int rm_h2_filter_from_client(rm_h2_filter_t *f, const uint8_t *in, size_t len, rm_bytebuf_t *to_app,
                             rm_bytebuf_t *to_client);

/** Takes `len` bytes the app sent. Appends them to to_client, with the filter's waiting frames inserted at the
 *  first app frame boundary where they may go. Returns as described at the top. */
int rm_h2_filter_from_app(rm_h2_filter_t *f, const uint8_t *in, size_t len, rm_bytebuf_t *to_client);

/* Private to h2_filter.c and h2_filter_exchange.c: following the exchanges. */
/** Creates the app's inflater. Returns 0 or -ENOMEM. */
int rm__h2_exchange_init(rm_h2_filter_t *f);
/** Frees what following the exchanges holds. */
void rm__h2_exchange_dispose(rm_h2_filter_t *f);
/** An allowed stream starts (its block is forwarded). */
void rm__h2_exchange_start(rm_h2_filter_t *f, uint32_t stream, uint64_t cookie);
/** The open exchange of `stream`, or NULL. */
rm__h2_exchange_t *rm__h2_exchange_find(rm_h2_filter_t *f, uint32_t stream);
/** Reports and forgets an open exchange. */
void rm__h2_exchange_finish(rm_h2_filter_t *f, rm__h2_exchange_t *ex, int complete);
/** Reports a stream the filter answered itself (after the hook). */
void rm__h2_exchange_answered(rm_h2_filter_t *f, uint64_t cookie, uint16_t status, int16_t grpc_status,
                              uint64_t response_bytes);
/** The client allowed the app's encoder a dynamic table of `size` bytes (SETTINGS_HEADER_TABLE_SIZE). */
void rm__h2_exchange_client_table_size(rm_h2_filter_t *f, uint32_t size);
/** A new app frame: its header is in a_hdr (type, flags, length already read). */
void rm__h2_exchange_app_frame_begin(rm_h2_filter_t *f);
/** `n` bytes of the app frame's payload, at offset `off`. Returns 0 or -ENOMEM. */
int rm__h2_exchange_app_payload(rm_h2_filter_t *f, const uint8_t *in, size_t n, uint32_t off);
/** The app frame is complete. */
void rm__h2_exchange_app_frame_end(rm_h2_filter_t *f);

/** Bytes held inside the filter (a partial client frame, frames waiting for an app frame boundary): a
 *  back-pressure hint; stop reading from the client while it is large. */
size_t rm_h2_filter_buffered(const rm_h2_filter_t *f);

#endif
