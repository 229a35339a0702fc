/* rm_h2_filter on hand-made frames: protocol errors a client can make and the GOAWAY they get, bad prefaces on
 * either side, answers the filter writes itself waiting for the app's frame boundary, refused streams being
 * remembered, and an empty header block from the app. The frames go in as bytes; what comes out is decoded here (HPACK
 * with nghttp2's inflater). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "h2_filter.h"
#include "h2_fixtures.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t frame(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream, const void *payload)
{
    p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
    p[3] = type, p[4] = flags;
    p[5] = (uint8_t)(stream >> 24), p[6] = (uint8_t)(stream >> 16), p[7] = (uint8_t)(stream >> 8),
    p[8] = (uint8_t)stream;
    if (len != 0 && payload != NULL)
        memcpy(p + 9, payload, len);
    return 9 + len;
}

static rm_http_verdict_t allow_all(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    (void)out;
    (void)ctx, (void)req;
    return RM_HTTP_ALLOW;
}

/* Feeds preface + empty SETTINGS, then `bad`; the app has sent its SETTINGS. Returns the filter's result. */
static int feed_bad(const uint8_t *bad, size_t len, uint32_t *goaway_code)
{
    rm_h2_filter_t f;
    rm_bytebuf_t to_app = {0}, to_client = {0};
    uint8_t buf[64];
    size_t n;
    int ret;

    assert_int_equal(rm_h2_filter_init(&f, allow_all, NULL, NULL), 0);
    n = frame(buf, 0, NGHTTP2_SETTINGS, 0, 0, NULL);
    assert_int_equal(rm_h2_filter_from_app(&f, buf, n, &to_client), 0);
    assert_int_equal(rm_h2_filter_from_client(&f, (const uint8_t *)NGHTTP2_CLIENT_MAGIC, 24, &to_app, &to_client), 0);
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    size_t app_len = to_app.len, client_len = to_client.len;
    ret = rm_h2_filter_from_client(&f, bad, len, &to_app, &to_client);
    if (ret != 0)
        assert_int_equal(to_app.len, app_len); /* nothing of the bad frame reached the app */
    *goaway_code = UINT32_MAX;
    if (to_client.len == client_len + 17) {
        const uint8_t *g = to_client.base + client_len;
        assert_int_equal(g[3], NGHTTP2_GOAWAY);
        *goaway_code = (uint32_t)g[13] << 24 | (uint32_t)g[14] << 16 | (uint32_t)g[15] << 8 | g[16];
    } else {
        assert_int_equal(to_client.len, client_len);
    }
    /* sticky */
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), ret);
    assert_int_equal(rm_h2_filter_from_app(&f, buf, n, &to_client), ret);
    rm_h2_filter_dispose(&f);
    rm_bytebuf_free(&to_app);
    rm_bytebuf_free(&to_client);
    return ret;
}

static void test_protocol_errors(void **state)
{
    uint8_t buf[20000];
    uint32_t code;
    size_t n;

    /* HPACK garbage: index 0x7f + huge continuation */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};
    n = frame(buf, sizeof(garbage), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, garbage);
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);
    assert_int_equal(code, NGHTTP2_COMPRESSION_ERROR);

    /* an index past the tables */
    static const uint8_t bad_index[] = {0xbe};
    n = frame(buf, 1, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, bad_index);
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);
    assert_int_equal(code, NGHTTP2_COMPRESSION_ERROR);

    /* CONTINUATION without HEADERS */
    static const uint8_t get[] = {0x82, 0x84, 0x86}; /* :method GET, :path /, :scheme http */
    n = frame(buf, 3, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, 1, get);
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);
    assert_int_equal(code, NGHTTP2_PROTOCOL_ERROR);

    /* HEADERS without END_HEADERS, then something else than its CONTINUATION */
    n = frame(buf, 3, NGHTTP2_HEADERS, 0, 1, get);
    n += frame(buf + n, 8, NGHTTP2_PING, 0, 0, "12345678");
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);
    assert_int_equal(code, NGHTTP2_PROTOCOL_ERROR);

    /* DATA on stream 0, HEADERS on an even stream, PUSH_PROMISE from a client */
    n = frame(buf, 3, NGHTTP2_DATA, 0, 0, "abc");
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);
    n = frame(buf, 3, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 2, get);
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);
    n = frame(buf, 3, NGHTTP2_PUSH_PROMISE, NGHTTP2_FLAG_END_HEADERS, 1, get);
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);

    /* a frame over SETTINGS_MAX_FRAME_SIZE (the app left it at 16384) */
    memset(buf, 0, sizeof(buf));
    n = frame(buf, 16385, NGHTTP2_DATA, 0, 1, NULL);
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);
    assert_int_equal(code, NGHTTP2_FRAME_SIZE_ERROR);

    /* padding longer than the frame */
    static const uint8_t padded[] = {0x10, 0x82};
    n = frame(buf, 2, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_PADDED, 1, padded);
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);

    /* WINDOW_UPDATE of the wrong size */
    n = frame(buf, 3, NGHTTP2_WINDOW_UPDATE, 0, 0, "abc");
    assert_int_equal(feed_bad(buf, n, &code), -EPROTO);
    assert_int_equal(code, NGHTTP2_FRAME_SIZE_ERROR);

    /* the valid request after the same setup goes through (the harness itself is sound) */
    n = frame(buf, 3, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, get);
    assert_int_equal(feed_bad(buf, n, &code), 0);
    assert_int_equal(code, UINT32_MAX);
}

static void test_bad_preface_and_bad_server_preface(void **state)
{
    rm_h2_filter_t f;
    rm_bytebuf_t to_app = {0}, to_client = {0};
    uint8_t buf[32];
    size_t n;

    assert_int_equal(rm_h2_filter_init(&f, allow_all, NULL, NULL), 0);
    assert_int_equal(rm_h2_filter_from_client(&f, (const uint8_t *)"PRI * HTTP/2.0\r\n", 16, &to_app, &to_client), 0);
    assert_int_equal(rm_h2_filter_from_client(&f, (const uint8_t *)"\r\nXX", 4, &to_app, &to_client), -EPROTO);
    assert_int_equal(rm_h2_filter_from_client(&f, (const uint8_t *)"\r\n", 2, &to_app, &to_client), -EPROTO);
    assert_int_equal(to_client.len, 0);
    rm_h2_filter_dispose(&f);

    /* the app's first frame must be SETTINGS */
    assert_int_equal(rm_h2_filter_init(&f, allow_all, NULL, NULL), 0);
    n = frame(buf, 8, NGHTTP2_PING, 0, 0, "12345678");
    assert_int_equal(rm_h2_filter_from_app(&f, buf, n, &to_client), -EPROTO);
    rm_h2_filter_dispose(&f);

    assert_int_equal(rm_h2_filter_init(&f, NULL, NULL, NULL), -EINVAL);
    rm_bytebuf_free(&to_app);
    rm_bytebuf_free(&to_client);
}

static rm_http_verdict_t deny_all(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    (void)out;
    (void)ctx, (void)req;
    return RM_HTTP_DENY;
}

/* Walks the frames in `b` from `off`: "type:stream " each, into `out`. */
static void frame_list(const rm_bytebuf_t *b, size_t off, char *out, size_t cap)
{
    out[0] = 0;
    while (off + 9 <= b->len) {
        const uint8_t *h = b->base + off;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2], used = strlen(out);
        uint32_t stream = (uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8];
        snprintf(out + used, cap - used, "%u:%u ", h[3], stream);
        off += 9 + len;
    }
    assert_int_equal(off, b->len); /* whole frames only */
}

/* Decodes one header block with `inflater` into out ("name: value\n" each). */
static void inflate_block(nghttp2_hd_inflater *inflater, const uint8_t *in, size_t len, char *out, size_t cap)
{
    out[0] = 0;
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t n = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, in, len, 1);
        assert_true(n >= 0);
        in += n, len -= (size_t)n;
        if (flags & NGHTTP2_HD_INFLATE_EMIT)
            append_field(out, cap, nv.name, nv.namelen, nv.value, nv.valuelen);
        if (flags & NGHTTP2_HD_INFLATE_FINAL)
            break;
    }
    nghttp2_hd_inflate_end_headers(inflater);
}

/* Decodes the block of the HEADERS frame at `off`, and checks that it would leave a client's decoder as it was: no
 * entry inserted, no dynamic table size update. */
static void decode_answer(const rm_bytebuf_t *b, size_t off, char *out, size_t cap)
{
    const uint8_t *h = b->base + off;
    size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
    nghttp2_hd_inflater *inflater;
    char again[512];

    assert_int_equal(h[3], NGHTTP2_HEADERS);
    assert_int_equal(h[4] & (NGHTTP2_FLAG_PADDED | NGHTTP2_FLAG_PRIORITY), 0);
    assert_int_equal(nghttp2_hd_inflate_new(&inflater), 0);
    inflate_block(inflater, h + 9, len, out, cap);
    assert_int_equal(nghttp2_hd_inflate_get_num_table_entries(inflater), 61); /* the static table only */
    nghttp2_hd_inflate_del(inflater);

    /* A decoder held to a 100-byte table rejects any size update above 100, 4096 included. */
    static const uint8_t shrink[] = {0x20}; /* the update to 0 that the lower limit asks for first */
    assert_int_equal(nghttp2_hd_inflate_new(&inflater), 0);
    assert_int_equal(nghttp2_hd_inflate_change_table_size(inflater, 100), 0);
    inflate_block(inflater, shrink, sizeof(shrink), again, sizeof(again));
    inflate_block(inflater, h + 9, len, again, sizeof(again));
    assert_string_equal(again, out);
    nghttp2_hd_inflate_del(inflater);
}

/* Answers wait for the app's first SETTINGS and are never put inside an app frame or header block. */
static void test_answers_wait_for_app_frame_boundary(void **state)
{
    rm_h2_filter_t f;
    rm_bytebuf_t to_app = {0}, to_client = {0};
    uint8_t buf[256], window[4] = {0, 1, 0, 0};
    char list[256], fields[512];
    size_t n, mark;
    /* :method GET, :scheme http, :path /deny (literal, not indexed) */
    static const uint8_t denied_get[] = {0x82, 0x86, 0x04, 0x05, '/', 'd', 'e', 'n', 'y'};
    /* :method POST, :scheme http, :path /, content-type application/grpc */
    static const uint8_t denied_grpc[] = {0x83, 0x86, 0x84, 0x0f, 0x10, 0x10, 'a', 'p', 'p', 'l', 'i',
                                          'c',  'a',  't',  'i',  'o',  'n',  '/', 'g', 'r', 'p', 'c'};
    static const uint8_t settings[] = {0, 1, 0, 0, 0x10, 0}; /* HEADER_TABLE_SIZE 4096 */

    assert_int_equal(rm_h2_filter_init(&f, deny_all, NULL, NULL), 0);
    assert_int_equal(rm_h2_filter_from_client(&f, (const uint8_t *)NGHTTP2_CLIENT_MAGIC, 24, &to_app, &to_client), 0);
    n = frame(buf, 0, NGHTTP2_SETTINGS, 0, 0, NULL);
    n += frame(buf + n, 4, NGHTTP2_WINDOW_UPDATE, 0, 0, window); /* 65536: room for one body */
    n += frame(buf + n, sizeof(denied_get), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
               denied_get);
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    assert_int_equal(to_client.len, 0); /* no server preface yet */
    assert_true(rm_h2_filter_buffered(&f) > 0);
    frame_list(&to_app, 24, list, sizeof(list));
    assert_string_equal(list, "4:0 8:0 ");               /* SETTINGS and WINDOW_UPDATE (less the reserve), no HEADERS */
    assert_int_equal(to_app.base[to_app.len - 2], 0xfc); /* 65536 - 1024 */

    /* the app's SETTINGS, in two pieces: the answer follows it, not inside */
    n = frame(buf, sizeof(settings), NGHTTP2_SETTINGS, 0, 0, settings);
    assert_int_equal(rm_h2_filter_from_app(&f, buf, 5, &to_client), 0);
    assert_int_equal(to_client.len, 5);
    assert_int_equal(rm_h2_filter_from_app(&f, buf + 5, n - 5, &to_client), 0);
    frame_list(&to_client, 0, list, sizeof(list));
    assert_string_equal(list, "4:0 1:1 0:1 ");
    assert_int_equal(rm_h2_filter_buffered(&f), 0);
    decode_answer(&to_client, n, fields, sizeof(fields));
    assert_string_equal(fields, ":status: 403\ncontent-type: text/plain\ncontent-length: 19\n");
    assert_memory_equal(to_client.base + to_client.len - 19, "RBAC: access denied", 19);

    /* the app is inside a header block (HEADERS without END_HEADERS): the next answer waits for its end */
    mark = to_client.len;
    n = frame(buf, 1, NGHTTP2_HEADERS, 0, 1, "\x88");
    assert_int_equal(rm_h2_filter_from_app(&f, buf, n, &to_client), 0);
    n = frame(buf, sizeof(denied_grpc), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 3, denied_grpc);
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    assert_int_equal(to_client.len, mark + 10);
    n = frame(buf, 1, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, 1, "\x88");
    assert_int_equal(rm_h2_filter_from_app(&f, buf, n, &to_client), 0);
    frame_list(&to_client, mark, list, sizeof(list));
    assert_string_equal(list, "1:1 9:1 1:3 3:3 "); /* trailers-only answer, then RST_STREAM(NO_ERROR) */
    decode_answer(&to_client, mark + 20, fields, sizeof(fields));
    assert_string_equal(fields,
                        ":status: 200\ncontent-type: application/grpc\ngrpc-status: 7\ngrpc-message: RBAC: access "
                        "denied\n");

    /* a DATA frame of the app in progress: the WINDOW_UPDATE for dropped data waits for its end */
    mark = to_client.len;
    n = frame(buf, 10, NGHTTP2_DATA, 0, 1, "0123456789");
    assert_int_equal(rm_h2_filter_from_app(&f, buf, 12, &to_client), 0);
    size_t m = frame(buf + n, 5, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 3, "abcde");
    assert_int_equal(rm_h2_filter_from_client(&f, buf + n, m, &to_app, &to_client), 0);
    assert_int_equal(to_client.len, mark + 12);
    assert_int_equal(rm_h2_filter_from_app(&f, buf + 12, n - 12, &to_client), 0);
    frame_list(&to_client, mark, list, sizeof(list));
    assert_string_equal(list, "0:1 8:0 ");
    assert_int_equal(to_client.base[to_client.len - 1], 5);

    /* later frames of the refused stream never reach the app */
    mark = to_app.len;
    n = frame(buf, 4, NGHTTP2_WINDOW_UPDATE, 0, 3, window);
    n += frame(buf + n, 4, NGHTTP2_RST_STREAM, 0, 3, "\0\0\0\x08");
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    assert_int_equal(to_app.len, mark);

    rm_h2_filter_dispose(&f);
    rm_bytebuf_free(&to_app);
    rm_bytebuf_free(&to_client);
}

static rm_http_verdict_t deny_path(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    (void)out;
    (void)ctx;
    return memmem(req->path, req->path_len, "deny", 4) != NULL ? RM_HTTP_DENY : RM_HTTP_ALLOW;
}

/* A refused stream below an allowed one is remembered in the ring; refused streams the client has ended leave it,
 * so many of them do not push out one whose body is still coming. */
static void test_refused_stream_remembered(void **state)
{
    rm_h2_filter_t f;
    rm_bytebuf_t to_app = {0}, to_client = {0};
    uint8_t buf[64];
    size_t n, mark;
    static const uint8_t post_deny[] = {0x83, 0x86, 0x04, 0x05, '/', 'd', 'e', 'n', 'y'};
    static const uint8_t post_ok[] = {0x83, 0x86, 0x04, 0x03, '/', 'o', 'k'};
    uint32_t stream = 3;

    assert_int_equal(rm_h2_filter_init(&f, deny_path, NULL, NULL), 0);
    n = frame(buf, 0, NGHTTP2_SETTINGS, 0, 0, NULL);
    assert_int_equal(rm_h2_filter_from_app(&f, buf, n, &to_client), 0);
    assert_int_equal(rm_h2_filter_from_client(&f, (const uint8_t *)NGHTTP2_CLIENT_MAGIC, 24, &to_app, &to_client), 0);
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    n = frame(buf, sizeof(post_deny), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, post_deny);
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    for (int i = 0; i < RM_H2_FILTER_DENIED_RING + 6; i++, stream += 2) {
        n = frame(buf, sizeof(post_deny), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, stream, post_deny);
        n += frame(buf + n, 1, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, stream, "x");
        assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    }
    mark = to_app.len;
    n = frame(buf, sizeof(post_ok), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, stream,
              post_ok);
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    assert_true(to_app.len > mark); /* allowed: forwarded */
    mark = to_app.len;
    n = frame(buf, 3, NGHTTP2_DATA, 0, 1, "abc");
    n += frame(buf + n, 5, NGHTTP2_PRIORITY, 0, 1, "\0\0\0\0\x10");
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    assert_int_equal(to_app.len, mark); /* stream 1 is still known as refused */
    rm_h2_filter_dispose(&f);
    rm_bytebuf_free(&to_app);
    rm_bytebuf_free(&to_client);
}

static void record_exchange(void *ctx, const rm_http_exchange_t *ex)
{
    rm_http_exchange_t *out = ctx;
    assert_int_equal(out->status, 0); /* reported once */
    *out = *ex;
}

/* The app answers with a HEADERS frame whose payload is empty (an empty header block, which no bytes before it were
 * buffered for), then with its real header block: the filter passes both on as they are, reads the empty block
 * without touching a buffer it never had (UndefinedBehaviorSanitizer stopped at a null pointer plus 0 there), and
 * stays in step with the app's HPACK encoder to report the status that follows. Found by fuzz_h2_filter. */
static void test_empty_app_header_block(void **state)
{
    rm_h2_filter_t f;
    rm_bytebuf_t to_app = {0}, to_client = {0};
    rm_http_exchange_t ex = {0};
    uint8_t buf[64];
    size_t n, mark;
    static const uint8_t get[] = {0x82, 0x86, 0x84}; /* :method GET, :scheme http, :path / */
    (void)state;

    assert_int_equal(rm_h2_filter_init(&f, allow_all, record_exchange, &ex), 0);
    n = frame(buf, 0, NGHTTP2_SETTINGS, 0, 0, NULL);
    assert_int_equal(rm_h2_filter_from_app(&f, buf, n, &to_client), 0);
    assert_int_equal(rm_h2_filter_from_client(&f, (const uint8_t *)NGHTTP2_CLIENT_MAGIC, 24, &to_app, &to_client), 0);
    n += frame(buf + n, sizeof(get), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, get);
    assert_int_equal(rm_h2_filter_from_client(&f, buf, n, &to_app, &to_client), 0);
    assert_true(to_app.len > 24 + 9); /* allowed: forwarded */

    mark = to_client.len;
    n = frame(buf, 0, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, NULL);
    assert_int_equal(rm_h2_filter_from_app(&f, buf, n, &to_client), 0);
    assert_int_equal(to_client.len, mark + 9);
    assert_memory_equal(to_client.base + mark, buf, 9);
    assert_int_equal(ex.status, 0); /* no status yet, the stream goes on */

    n = frame(buf, 1, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, "\x88"); /* 200 */
    assert_int_equal(rm_h2_filter_from_app(&f, buf, n, &to_client), 0);
    assert_int_equal(to_client.len, mark + 9 + n);
    assert_memory_equal(to_client.base + mark + 9, buf, n);
    assert_int_equal(ex.status, 200);
    assert_int_equal(ex.complete, 1);
    rm_h2_filter_dispose(&f);
    rm_bytebuf_free(&to_app);
    rm_bytebuf_free(&to_client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_bad_preface_and_bad_server_preface),
        cmocka_unit_test(test_answers_wait_for_app_frame_boundary),
        cmocka_unit_test(test_refused_stream_remembered),
        cmocka_unit_test(test_empty_app_header_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
