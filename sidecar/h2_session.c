/* An HTTP/2 session over the caller's bytes (h2_session.h), on nghttp2. Windows are given back by the caller
 * (rm_h2s_consume), not by nghttp2 on receipt, so the peer's sending speed follows how fast the other end of the
 * proxy takes the bytes. */
#include "h2_session.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/buffer_pool.h"

struct st_rm_h2s_t {
    nghttp2_session *ng;
    const rm_h2s_cbs_t *cbs;
    void *owner;
    int server;
    size_t open;
    uint64_t pings_acked;
    uint8_t goaway_sent, goaway_recv;
    const uint8_t *out_p; /* the rest of what nghttp2_session_mem_send gave, valid until it is called again */
    size_t out_len;
    /* the header block being received: fields pointing into bytes[]; over a limit, the block only marks `over` */
    rm_http_header_t fields[RM_H2S_MAX_FIELDS];
    size_t num_fields, used;
    int32_t block_sid;
    uint8_t over;
    nghttp2_nv nv[RM_H2S_MAX_FIELDS]; /* a header list being submitted (nghttp2 copies it) */
    char bytes[RM_H2S_MAX_HEADER_BYTES];
};

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    rm_h2s_t *s = user_data;
    (void)ng;
    s->num_fields = 0;
    s->used = 0;
    s->over = 0;
    s->block_sid = frame->hd.stream_id;
    if (s->server && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        s->open++;
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    rm_h2s_t *s = user_data;
    rm_http_header_t *h;
    (void)ng, (void)frame, (void)flags;
    if (s->over)
        return 0;
    if (s->num_fields == RM_H2S_MAX_FIELDS || sizeof(s->bytes) - s->used < namelen + valuelen) {
        s->over = 1;
        return 0;
    }
    h = &s->fields[s->num_fields++];
    memcpy(s->bytes + s->used, name, namelen);
    h->name = s->bytes + s->used;
    h->name_len = namelen;
    s->used += namelen;
    memcpy(s->bytes + s->used, value, valuelen);
    h->value = s->bytes + s->used;
    h->value_len = valuelen;
    s->used += valuelen;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    rm_h2s_t *s = user_data;
    int32_t sid = frame->hd.stream_id;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (s->over || sid != s->block_sid)
            return nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL) == 0
                       ? 0
                       : NGHTTP2_ERR_CALLBACK_FAILURE;
        if (s->cbs->on_headers(s, sid, nghttp2_session_get_stream_user_data(ng, sid), s->fields, s->num_fields, end) !=
            0)
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
        break;
    case NGHTTP2_DATA:
        if (end && s->cbs->on_end(s, sid, nghttp2_session_get_stream_user_data(ng, sid)) != 0)
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
        break;
    case NGHTTP2_GOAWAY:
        s->goaway_recv = 1;
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            s->pings_acked++;
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                         void *user_data)
{
    rm_h2s_t *s = user_data;
    (void)flags;
    if (s->cbs->on_data(s, sid, nghttp2_session_get_stream_user_data(ng, sid), data, len) != 0) {
        /* nobody will pass these bytes on: the window they took is given back here */
        nghttp2_session_consume(ng, sid, len);
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *user_data)
{
    rm_h2s_t *s = user_data;
    if (s->open > 0)
        s->open--;
    s->cbs->on_close(s, sid, nghttp2_session_get_stream_user_data(ng, sid), error_code);
    return 0;
}

static void body_release_if_empty(rm_h2s_body_t *b)
{
    if (b->buf != NULL && b->len == 0) {
        rm_buf_put(b->buf);
        b->buf = NULL;
        b->off = 0;
    }
}

static int fill_nv(rm_h2s_t *s, const rm_http_header_t *h, size_t n)
{
    if (n > RM_H2S_MAX_FIELDS)
        return NGHTTP2_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++) {
        s->nv[i].name = (uint8_t *)h[i].name; /* nghttp2 copies the list and never writes into it */
        s->nv[i].namelen = h[i].name_len;
        s->nv[i].value = (uint8_t *)h[i].value;
        s->nv[i].valuelen = h[i].value_len;
        s->nv[i].flags = NGHTTP2_NV_FLAG_NONE;
    }
    return 0;
}

static ssize_t body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length, uint32_t *data_flags,
                         nghttp2_data_source *source, void *user_data)
{
    rm_h2s_t *s = user_data;
    rm_h2s_body_t *b = source->ptr;
    size_t n = b->len < length ? b->len : length;

    if (n > 0) {
        memcpy(buf, b->buf + b->off, n);
        b->off += n;
        b->len -= n;
        body_release_if_empty(b);
    }
    if (b->len == 0 && b->eof) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (b->trailers != NULL && b->num_trailers > 0) {
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (fill_nv(s, b->trailers, b->num_trailers) != 0 ||
                nghttp2_submit_trailer(ng, sid, s->nv, b->num_trailers) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
        }
        b->eof_sent = 1;
    } else if (n == 0) {
        b->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > 0 && s->cbs->on_body_room != NULL && !b->eof)
        s->cbs->on_body_room(s, sid, nghttp2_session_get_stream_user_data(ng, sid));
    return (ssize_t)n;
}

rm_h2s_t *rm_h2s_new(int server, const rm_h2s_cbs_t *cbs, const rm_h2s_settings_t *settings, void *owner)
{
    rm_h2s_t *s = calloc(1, sizeof(*s));
    nghttp2_session_callbacks *ncb = NULL;
    nghttp2_option *opt = NULL;
    uint32_t streams =
        settings != NULL && settings->max_concurrent_streams != 0 ? settings->max_concurrent_streams : 100;
    uint32_t window = settings != NULL && settings->initial_window != 0 ? settings->initial_window : 65535;
    uint32_t session_window = settings != NULL && settings->session_window != 0 ? settings->session_window : 65535;
    nghttp2_settings_entry iv[2] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, streams},
                                    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window}};
    int ok = 0;

    if (s == NULL || nghttp2_session_callbacks_new(&ncb) != 0 || nghttp2_option_new(&opt) != 0)
        goto Exit;
    s->cbs = cbs;
    s->owner = owner;
    s->server = server;
    nghttp2_session_callbacks_set_on_begin_headers_callback(ncb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(ncb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(ncb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(ncb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(ncb, on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    if ((server ? nghttp2_session_server_new2(&s->ng, ncb, s, opt)
                : nghttp2_session_client_new2(&s->ng, ncb, s, opt)) != 0)
        goto Exit;
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        (session_window > 65535 &&
         nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)session_window) != 0))
        goto Exit;
    ok = 1;
Exit:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(ncb);
    if (!ok && s != NULL) {
        nghttp2_session_del(s->ng);
        free(s);
        s = NULL;
    }
    return s;
}

void rm_h2s_free(rm_h2s_t *s)
{
    if (s == NULL)
        return;
    nghttp2_session_del(s->ng);
    free(s);
}

void *rm_h2s_owner(rm_h2s_t *s)
{
    return s->owner;
}

long rm_h2s_feed(rm_h2s_t *s, const uint8_t *p, size_t n)
{
    return (long)nghttp2_session_mem_recv(s->ng, p, n);
}

long rm_h2s_output(rm_h2s_t *s, uint8_t *out, size_t room)
{
    size_t done = 0;
    while (done < room) {
        size_t k;
        if (s->out_len == 0) {
            ssize_t got = nghttp2_session_mem_send(s->ng, &s->out_p);
            if (got < 0)
                return (long)got;
            if (got == 0)
                break;
            s->out_len = (size_t)got;
        }
        k = s->out_len < room - done ? s->out_len : room - done;
        memcpy(out + done, s->out_p, k);
        s->out_p += k;
        s->out_len -= k;
        done += k;
    }
    return (long)done;
}

int rm_h2s_want_write(rm_h2s_t *s)
{
    return s->out_len > 0 || nghttp2_session_want_write(s->ng);
}

int rm_h2s_alive(rm_h2s_t *s)
{
    return s->out_len > 0 || nghttp2_session_want_read(s->ng) || nghttp2_session_want_write(s->ng);
}

int rm_h2s_can_open(rm_h2s_t *s)
{
    return !s->server && !s->goaway_recv && !s->goaway_sent &&
           s->open < nghttp2_session_get_remote_settings(s->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

size_t rm_h2s_open_streams(rm_h2s_t *s)
{
    return s->open;
}

int32_t rm_h2s_request(rm_h2s_t *s, const rm_http_header_t *h, size_t n, rm_h2s_body_t *body, void *stream_data)
{
    nghttp2_data_provider dp = {.source.ptr = body, .read_callback = body_read};
    int32_t sid;
    int ret;
    if ((ret = fill_nv(s, h, n)) != 0)
        return ret;
    sid = nghttp2_submit_request(s->ng, NULL, s->nv, n, body != NULL ? &dp : NULL, stream_data);
    if (sid > 0)
        s->open++;
    return sid;
}

int rm_h2s_set_stream_data(rm_h2s_t *s, int32_t sid, void *stream_data)
{
    return nghttp2_session_set_stream_user_data(s->ng, sid, stream_data);
}

int rm_h2s_respond(rm_h2s_t *s, int32_t sid, const rm_http_header_t *h, size_t n, rm_h2s_body_t *body)
{
    nghttp2_data_provider dp = {.source.ptr = body, .read_callback = body_read};
    int ret;
    if ((ret = fill_nv(s, h, n)) != 0)
        return ret;
    return nghttp2_submit_response(s->ng, sid, s->nv, n, body != NULL ? &dp : NULL);
}

static int body_resume(rm_h2s_t *s, int32_t sid, rm_h2s_body_t *b)
{
    if (!b->deferred)
        return 0;
    b->deferred = 0;
    return nghttp2_session_resume_data(s->ng, sid);
}

long rm_h2s_body_write(rm_h2s_t *s, int32_t sid, rm_h2s_body_t *b, const uint8_t *p, size_t n)
{
    size_t cap, room, k;
    int ret;
    if (b->eof)
        return NGHTTP2_ERR_INVALID_STATE;
    if (b->buf == NULL && (b->buf = rm_buf_get()) == NULL)
        return -ENOMEM;
    cap = rm_buf_size(b->buf);
    if (b->off > 0 && b->off + b->len == cap) { /* full at the end: move the rest to the front */
        memmove(b->buf, b->buf + b->off, b->len);
        b->off = 0;
    }
    room = cap - b->off - b->len;
    k = n < room ? n : room;
    memcpy(b->buf + b->off + b->len, p, k);
    b->len += k;
    body_release_if_empty(b);
    if (k > 0 && (ret = body_resume(s, sid, b)) != 0)
        return ret;
    return (long)k;
}

int rm_h2s_body_end(rm_h2s_t *s, int32_t sid, rm_h2s_body_t *b, const rm_http_header_t *trailers, size_t n)
{
    b->eof = 1;
    b->trailers = trailers;
    b->num_trailers = trailers != NULL ? n : 0;
    return body_resume(s, sid, b);
}

void rm_h2s_body_clear(rm_h2s_t *s, rm_h2s_body_t *b)
{
    (void)s;
    if (b->buf != NULL)
        rm_buf_put(b->buf);
    b->buf = NULL;
    b->off = b->len = 0;
}

int rm_h2s_consume(rm_h2s_t *s, int32_t sid, size_t n)
{
    /* also for a stream that is gone (reset, closed): nghttp2 then gives the connection's window back alone */
    return nghttp2_session_consume(s->ng, sid, n);
}

int rm_h2s_reset(rm_h2s_t *s, int32_t sid, uint32_t error_code)
{
    return nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, sid, error_code);
}

int rm_h2s_goaway(rm_h2s_t *s)
{
    s->goaway_sent = 1;
    return nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
                                 NGHTTP2_NO_ERROR, NULL, 0);
}

int rm_h2s_ping(rm_h2s_t *s)
{
    return nghttp2_submit_ping(s->ng, NGHTTP2_FLAG_NONE, NULL);
}

uint64_t rm_h2s_pings_acked(rm_h2s_t *s)
{
    return s->pings_acked;
}

int rm_h2s_goaway_received(rm_h2s_t *s)
{
    return s->goaway_recv;
}
