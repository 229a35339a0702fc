/* The types the files of the inbound request server share (req_in.c: the client's session and the streams;
 * req_in_up.c: HTTP/2 to the app on the connection's own app side). Nothing else includes this file. */
#ifndef RINGMESH_REQ_IN_T_H
#define RINGMESH_REQ_IN_T_H

#include "h2_session.h"
#include "req_in.h"
#include "ringmesh/bytebuf.h"

#define FWD_MAX (RM_H2S_MAX_FIELDS + RM_HTTP_MAX_SET_HEADERS + 8)

struct st_rm__req_in_stream_t {
    rm__req_in_t *ri;
    rm__req_in_stream_t *prev, *next;
    int32_t sid;     /* on the client's session */
    int32_t app_sid; /* HTTP/2 to the app: on the app's session (0: not opened, or closed) */
    rm__app_conn_t *a;
    uint8_t h1;              /* HTTP/1.1 to the app */
    uint8_t answered;        /* the proxy answered (denied, or the app failed): the request's body is dropped */
    uint8_t req_end;         /* the client ended its request */
    uint8_t resp_head;       /* a response head went to the client */
    uint8_t resp_end;        /* the response's end went to the client */
    uint8_t app_end;         /* the app ended its response (h2): sent once resp_hold is out */
    uint8_t srv_closed;      /* the client's stream is closed */
    uint8_t reported;        /* the exchange was reported */
    rm_h2s_body_t resp_body; /* to the client */
    rm_h2s_body_t req_body;  /* to the app (h2) */
    rm_bytebuf_t req_hold;   /* request body bytes the app's session did not take yet (h2) */
    rm_bytebuf_t resp_hold;  /* response body bytes the client's session did not take yet (h2) */
    rm_bytebuf_t tmem;       /* copies of trailers (strings, then the field array) kept until the stream closes */
    rm_http_header_t *req_trailers, *resp_trailers;
    size_t num_req_trailers, num_resp_trailers;
    rm_http_exchange_t ex;
};

struct st_rm__req_in_t {
    rm_conn_t *c;
    rm_h2s_t *srv; /* with the client proxy */
    rm_h2s_t *app; /* HTTP/2 to the app on c->up; NULL until a stream needs it */
    rm_pipe_t client_out, app_in, app_out;
    rm__req_in_stream_t *streams;
    uint8_t up_stale;      /* c->up was opened before this path began (PERMISSIVE): closed, then opened anew */
    uint8_t up_closing;    /* c->up is being closed (failed, or stale): reopened by a later stream */
    uint8_t up_open;       /* c->up connected (or connecting) for the app session */
    uint8_t observe;       /* no policy on this proxy: requests are only observed */
    uint8_t client_gone;   /* the client's session ended (error, EOF): no more streams */
    uint8_t goaway;        /* a GOAWAY went out: the worker drains */
    uint64_t client_bytes; /* what the client sent (plaintext), for the connection's counts */
    char status[4];
    rm_bytebuf_t target, head;
    rm_http_header_t reqh[RM_H2S_MAX_FIELDS];
    rm_http_header_t fwd[FWD_MAX];
};

/* req_in.c */
/** 1 when the field's name is `lit` (names are lower-case). */
static inline int rm__req_in_name_is(const rm_http_header_t *h, const char *lit)
{
    size_t n = strlen(lit);
    return h->name_len == n && memcmp(h->name, lit, n) == 0;
}
/** Copies `n` fields into memory the stream keeps until it is freed. Returns the copy (*out_n its count) or NULL
 *  when out of memory. */
rm_http_header_t *rm__req_in_keep_fields(rm__req_in_stream_t *st, const rm_http_header_t *h, size_t n, size_t *out_n);
/** Takes the grpc-status of a header block (response headers or trailers) into the stream's exchange. */
void rm__req_in_grpc_status(rm__req_in_stream_t *st, const rm_http_header_t *h, size_t n);
/** Answers the stream from the proxy: `status` with the text as body, or (grpc_status >= 0) a gRPC trailers-only
 *  response; `flag` is the response flag of an answer for the app (NULL: a policy's or a protocol answer). A stream
 *  whose response head already went out is reset instead. */
void rm__req_in_answer(rm__req_in_stream_t *st, int status, int grpc_status, const char *text, const char *flag,
                       const char *www_authenticate);
/** Unlinks and frees the stream (its bodies, held bytes and trailer copies). */
void rm__req_in_stream_free(rm__req_in_stream_t *st);

/* req_in_up.c */
/** Sends the stream's request (ri->fwd[0, n), pseudo-headers first) as a stream of the app's HTTP/2 session, made
 *  on first need (the app side connects from rm__req_in_up_pump). Answers 503 itself when the session cannot take
 *  it. Returns 0 or -ENOMEM. */
int rm__req_in_up_open(rm__req_in_stream_t *st, size_t n, int end);
/** The client's stream is over: the app's stream is reset (the stream object is freed once the app's closes). */
void rm__req_in_up_drop(rm__req_in_stream_t *st);
/** Request body bytes held back go into the app's stream, then its end (with trailers). */
void rm__req_in_up_req_flush(rm__req_in_stream_t *st);
/** Response body bytes held back go to the client, then its end (with the app's trailers). */
void rm__req_in_up_resp_flush(rm__req_in_stream_t *st);
/** Moves the app's HTTP/2 session over c->up both ways, connecting or reconnecting it. Returns 0 or an error that
 *  ends the connection. */
int rm__req_in_up_pump(rm__req_in_t *ri);

#endif
