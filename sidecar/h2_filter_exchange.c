/* Following the exchanges of an HTTP/2 filter (h2_filter.h, "Exchanges"): the table of allowed streams, their body
 * byte counts, and the app's header blocks decoded for :status and grpc-status. Nothing here changes a byte that
 * passes: a failure to decode only stops the statuses from being read. */
#include "h2_filter.h"

#include <errno.h>
#include <string.h>

#define HPACK_DEFAULT_TABLE_SIZE 4096

static void report(rm_h2_filter_t *f, const rm_http_exchange_t *ex)
{
    if (f->done != NULL && !f->ended)
        f->done(f->decide_ctx, ex);
}

int rm__h2_exchange_init(rm_h2_filter_t *f)
{
    f->app_table_size = f->app_table_target = HPACK_DEFAULT_TABLE_SIZE;
    return nghttp2_hd_inflate_new(&f->app_inflater) == 0 ? 0 : -ENOMEM;
}

void rm__h2_exchange_dispose(rm_h2_filter_t *f)
{
    if (f->app_inflater != NULL)
        nghttp2_hd_inflate_del(f->app_inflater);
    f->app_inflater = NULL;
    rm_bytebuf_free(&f->a_frame);
}

rm__h2_exchange_t *rm__h2_exchange_find(rm_h2_filter_t *f, uint32_t stream)
{
    if (stream == 0 || f->num_exchanges == 0)
        return NULL;
    for (size_t i = 0; i < RM_H2_FILTER_MAX_EXCHANGES; i++)
        if (f->exchanges[i].stream == stream)
            return f->exchanges + i;
    return NULL;
}

void rm__h2_exchange_finish(rm_h2_filter_t *f, rm__h2_exchange_t *ex, int complete)
{
    rm_http_exchange_t r = {
        .cookie = ex->cookie,
        .stream_id = ex->stream,
        .status = ex->status,
        .grpc_status = ex->grpc_status,
        .request_bytes = ex->request_bytes,
        .response_bytes = ex->response_bytes,
        .complete = (uint8_t)complete,
    };
    ex->stream = 0;
    f->num_exchanges--;
    report(f, &r);
}

void rm__h2_exchange_start(rm_h2_filter_t *f, uint32_t stream, uint64_t cookie)
{
    rm__h2_exchange_t *slot = NULL, *oldest = NULL;

    if (f->ended)
        return;
    for (size_t i = 0; i < RM_H2_FILTER_MAX_EXCHANGES; i++) {
        rm__h2_exchange_t *e = f->exchanges + i;
        if (e->stream == 0) {
            slot = e;
            break;
        }
        if (oldest == NULL || e->stream < oldest->stream)
            oldest = e;
    }
    if (slot == NULL) {
        /* more streams at once than followed: the oldest is given up */
        rm__h2_exchange_finish(f, oldest, 0);
        slot = oldest;
    }
    *slot = (rm__h2_exchange_t){.stream = stream, .grpc_status = -1, .cookie = cookie};
    f->num_exchanges++;
}

void rm__h2_exchange_answered(rm_h2_filter_t *f, uint64_t cookie, uint16_t status, int16_t grpc_status,
                              uint64_t response_bytes)
{
    rm_http_exchange_t r = {
        .cookie = cookie,
        .stream_id = f->block_stream,
        .status = status,
        .grpc_status = grpc_status,
        .response_bytes = response_bytes,
        .answered_by_proxy = 1,
        .complete = 1,
    };
    report(f, &r);
}

void rm__h2_exchange_client_table_size(rm_h2_filter_t *f, uint32_t size)
{
    /* the app's encoder may use up to the largest size the client allowed; a smaller limit only makes the encoder
     * say so with a size update, which a larger limit accepts too */
    if (size > f->app_table_target)
        f->app_table_target = size;
}

void rm_h2_filter_end(rm_h2_filter_t *f)
{
    for (size_t i = 0; i < RM_H2_FILTER_MAX_EXCHANGES && f->num_exchanges != 0; i++)
        if (f->exchanges[i].stream != 0)
            rm__h2_exchange_finish(f, f->exchanges + i, 0);
    f->ended = 1;
}

void rm__h2_exchange_app_frame_begin(rm_h2_filter_t *f)
{
    const uint8_t *h = f->a_hdr;
    f->a_len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    f->a_stream = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) & 0x7fffffff;
    f->a_pad = 0;
    f->a_frame.len = 0;
}

static int collects(uint8_t type)
{
    return type == NGHTTP2_HEADERS || type == NGHTTP2_CONTINUATION || type == NGHTTP2_PUSH_PROMISE ||
           type == NGHTTP2_GOAWAY;
}

int rm__h2_exchange_app_payload(rm_h2_filter_t *f, const uint8_t *in, size_t n, uint32_t off)
{
    if (n == 0)
        return 0;
    if (off == 0 && (f->a_flags & NGHTTP2_FLAG_PADDED) != 0 &&
        (f->a_type == NGHTTP2_DATA || f->a_type == NGHTTP2_HEADERS || f->a_type == NGHTTP2_PUSH_PROMISE))
        f->a_pad = in[0];
    if (!collects(f->a_type) || (f->app_inflater == NULL && f->a_type != NGHTTP2_GOAWAY))
        return 0;
    if (f->a_type == NGHTTP2_GOAWAY && off >= 8)
        return 0; /* the last stream ID and the code are enough */
    return rm_bytebuf_append(&f->a_frame, in, n);
}

static int16_t parse_grpc_status(const uint8_t *v, size_t len)
{
    int value = 0;
    if (len == 0 || len > 4)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        value = value * 10 + (v[i] - '0');
    }
    return (int16_t)value;
}

/* Decodes one fragment of the app's current header block, noting :status and grpc-status for its exchange. */
static void inflate_app_fragment(rm_h2_filter_t *f, const uint8_t *in, size_t len, int last)
{
    static const uint8_t empty[1];
    rm__h2_exchange_t *ex = rm__h2_exchange_find(f, f->a_block_stream);

    if (f->app_inflater == NULL)
        return;
    if (in == NULL)
        in = empty;
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t n = nghttp2_hd_inflate_hd2(f->app_inflater, &nv, &flags, in, len, last);
        if (n < 0) {
            /* not in step with the app's encoder any more: stop reading statuses, keep passing bytes */
            nghttp2_hd_inflate_del(f->app_inflater);
            f->app_inflater = NULL;
            return;
        }
        in += n;
        len -= (size_t)n;
        if ((flags & NGHTTP2_HD_INFLATE_EMIT) != 0 && ex != NULL) {
            if (nv.namelen == 7 && memcmp(nv.name, ":status", 7) == 0 && nv.valuelen == 3) {
                unsigned status = (unsigned)(nv.value[0] - '0') * 100 + (unsigned)(nv.value[1] - '0') * 10 +
                                  (unsigned)(nv.value[2] - '0');
                if (status >= 200 && status <= 999 && ex->status == 0)
                    ex->status = (uint16_t)status; /* 1xx are interim */
            } else if (nv.namelen == 11 && memcmp(nv.name, "grpc-status", 11) == 0) {
                ex->grpc_status = parse_grpc_status(nv.value, nv.valuelen);
            }
        }
        if ((flags & NGHTTP2_HD_INFLATE_FINAL) != 0) {
            nghttp2_hd_inflate_end_headers(f->app_inflater);
            return;
        }
        if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && len == 0)
            return;
    }
}

/* The fragment of a HEADERS or PUSH_PROMISE payload: after the pad length, priority or promised stream, before the
 * padding; *p is NULL when the fragment is empty (an empty payload was never buffered, and a_frame.base may be NULL,
 * where no offset may be applied). Returns 0, or -1 when the frame is malformed (the client will say so). */
static int block_fragment(rm_h2_filter_t *f, const uint8_t **p, size_t *len)
{
    size_t skip = (f->a_flags & NGHTTP2_FLAG_PADDED) != 0 ? 1 : 0, pad = skip ? f->a_pad : 0;
    if (f->a_type == NGHTTP2_HEADERS && (f->a_flags & NGHTTP2_FLAG_PRIORITY) != 0)
        skip += 5;
    if (f->a_type == NGHTTP2_PUSH_PROMISE)
        skip += 4;
    if (f->a_frame.len < skip + pad)
        return -1;
    *len = f->a_frame.len - skip - pad;
    *p = *len != 0 ? f->a_frame.base + skip : NULL;
    return 0;
}

/* The app's header block is complete: a block that ends the stream ends its exchange. */
static void app_block_done(rm_h2_filter_t *f)
{
    rm__h2_exchange_t *ex;
    if (f->a_block_end_stream && (ex = rm__h2_exchange_find(f, f->a_block_stream)) != NULL)
        rm__h2_exchange_finish(f, ex, 1);
}

void rm__h2_exchange_app_frame_end(rm_h2_filter_t *f)
{
    rm__h2_exchange_t *ex;
    const uint8_t *p;
    size_t len;

    switch (f->a_type) {
    case NGHTTP2_DATA:
        if ((ex = rm__h2_exchange_find(f, f->a_stream)) == NULL)
            return;
        len = (f->a_flags & NGHTTP2_FLAG_PADDED) != 0 ? 1 + (size_t)f->a_pad : 0;
        ex->response_bytes += f->a_len > len ? f->a_len - len : 0;
        if ((f->a_flags & NGHTTP2_FLAG_END_STREAM) != 0)
            rm__h2_exchange_finish(f, ex, 1);
        return;
    case NGHTTP2_HEADERS:
    case NGHTTP2_PUSH_PROMISE:
        if (f->app_inflater != NULL && f->app_table_size != f->app_table_target) {
            if (nghttp2_hd_inflate_change_table_size(f->app_inflater, f->app_table_target) == 0)
                f->app_table_size = f->app_table_target;
        }
        /* a pushed response's block is decoded to stay in step, and counts for no exchange */
        f->a_block_stream = f->a_type == NGHTTP2_HEADERS ? f->a_stream : 0;
        f->a_block_end_stream = f->a_type == NGHTTP2_HEADERS && (f->a_flags & NGHTTP2_FLAG_END_STREAM) != 0;
        if (f->app_inflater != NULL && block_fragment(f, &p, &len) == 0)
            inflate_app_fragment(f, p, len, (f->a_flags & NGHTTP2_FLAG_END_HEADERS) != 0);
        if ((f->a_flags & NGHTTP2_FLAG_END_HEADERS) != 0)
            app_block_done(f);
        return;
    case NGHTTP2_CONTINUATION:
        inflate_app_fragment(f, f->a_frame.base, f->a_frame.len, (f->a_flags & NGHTTP2_FLAG_END_HEADERS) != 0);
        if ((f->a_flags & NGHTTP2_FLAG_END_HEADERS) != 0)
            app_block_done(f);
        return;
    case NGHTTP2_RST_STREAM:
        if ((ex = rm__h2_exchange_find(f, f->a_stream)) != NULL)
            rm__h2_exchange_finish(f, ex, 0);
        return;
    case NGHTTP2_GOAWAY:
        if (f->a_stream == 0 && f->a_frame.len >= 4) {
            /* the streams above the last one the app processed never will be */
            const uint8_t *b = f->a_frame.base;
            uint32_t last = ((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]) & 0x7fffffff;
            for (size_t i = 0; i < RM_H2_FILTER_MAX_EXCHANGES && f->num_exchanges != 0; i++)
                if (f->exchanges[i].stream > last)
                    rm__h2_exchange_finish(f, f->exchanges + i, 0);
        }
        return;
    default:
        return;
    }
}
