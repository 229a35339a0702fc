/* rm_h2_filter and :path: the hook judges the normalized target, the app's HPACK decoder reads exactly that
 * target as :path, and a :path holding %00 is answered ":status 400" on its stream without reaching the app.
 * Frames are built and read with nghttp2's own HPACK encoder and decoder, each following one side's state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "h2_filter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

typedef struct {
    rm_h2_filter_t f;
    nghttp2_hd_deflater *client_enc; /* the client's encoder */
    nghttp2_hd_inflater *app_dec;    /* the app's decoder, fed what the filter forwards */
    nghttp2_hd_inflater *client_dec; /* the client's decoder, fed the filter's answers */
    rm_bytebuf_t to_app, to_client;
    size_t app_read, client_read; /* how much of to_app / to_client has been decoded */
    char seen[1024];              /* the hook's view: "path|" or "!error|" per request */
} harness_t;

static rm_http_verdict_t decide(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    (void)out;
    harness_t *h = ctx;
    size_t n = strlen(h->seen);
    if (req->path_error != NULL)
        snprintf(h->seen + n, sizeof(h->seen) - n, "!%s|", req->path_error);
    else
        snprintf(h->seen + n, sizeof(h->seen) - n, "%.*s|", (int)req->path_len, req->path);
    return req->path_len >= 3 && memcmp(req->path, "/ok", 3) == 0 ? RM_HTTP_ALLOW : RM_HTTP_DENY;
}

static harness_t *h_new(rm_path_normalization_t mode)
{
    static const uint8_t settings[9] = {0, 0, 0, NGHTTP2_SETTINGS, 0, 0, 0, 0, 0};
    harness_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    assert_int_equal(rm_h2_filter_init(&h->f, decide, NULL, h), 0);
    rm_h2_filter_set_path_normalization(&h->f, mode);
    assert_int_equal(nghttp2_hd_deflate_new(&h->client_enc, 4096), 0);
    assert_int_equal(nghttp2_hd_inflate_new(&h->app_dec), 0);
    assert_int_equal(nghttp2_hd_inflate_new(&h->client_dec), 0);
    /* the client's preface and SETTINGS; the app's SETTINGS, after which the filter may answer */
    assert_int_equal(
        rm_h2_filter_from_client(&h->f, (const uint8_t *)PREFACE, sizeof(PREFACE) - 1, &h->to_app, &h->to_client), 0);
    assert_int_equal(rm_h2_filter_from_client(&h->f, settings, sizeof(settings), &h->to_app, &h->to_client), 0);
    assert_int_equal(rm_h2_filter_from_app(&h->f, settings, sizeof(settings), &h->to_client), 0);
    h->app_read = sizeof(PREFACE) - 1;
    return h;
}

static void h_free(harness_t *h)
{
    rm_h2_filter_dispose(&h->f);
    nghttp2_hd_deflate_del(h->client_enc);
    nghttp2_hd_inflate_del(h->app_dec);
    nghttp2_hd_inflate_del(h->client_dec);
    rm_bytebuf_free(&h->to_app);
    rm_bytebuf_free(&h->to_client);
    free(h);
}

/* The client sends GET `path` on `stream` (HEADERS with END_STREAM and END_HEADERS). */
static void h_request(harness_t *h, uint32_t stream, const char *path)
{
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)":authority", (uint8_t *)"orders", 10, 6, 0},
        {(uint8_t *)"x-request", (uint8_t *)"1", 9, 1, 0},
    };
    uint8_t frame[1024];
    ssize_t n = nghttp2_hd_deflate_hd(h->client_enc, frame + 9, sizeof(frame) - 9, nva, 5);
    assert_true(n > 0);
    frame[0] = 0, frame[1] = (uint8_t)(n >> 8), frame[2] = (uint8_t)n;
    frame[3] = NGHTTP2_HEADERS;
    frame[4] = NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM;
    frame[5] = 0, frame[6] = 0, frame[7] = 0, frame[8] = (uint8_t)stream;
    assert_int_equal(rm_h2_filter_from_client(&h->f, frame, (size_t)n + 9, &h->to_app, &h->to_client), 0);
}

/* Decodes the next HEADERS frame in buf[*off..) with `dec`; returns its stream and writes the value of `name` to
 * out ("" when absent). Returns 0 when there is no further HEADERS frame. */
static uint32_t next_headers(nghttp2_hd_inflater *dec, const rm_bytebuf_t *buf, size_t *off, const char *name,
                             char *out, size_t cap)
{
    out[0] = '\0';
    while (*off + 9 <= buf->len) {
        const uint8_t *p = buf->base + *off;
        size_t len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
        uint32_t stream = (uint32_t)(p[5] & 0x7f) << 24 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 8 | p[8];
        assert_true(*off + 9 + len <= buf->len);
        *off += 9 + len;
        if (p[3] != NGHTTP2_HEADERS)
            continue;
        const uint8_t *in = p + 9;
        size_t left = len;
        for (;;) {
            nghttp2_nv nv;
            int flags = 0;
            ssize_t r = nghttp2_hd_inflate_hd2(dec, &nv, &flags, in, left, 1);
            assert_true(r >= 0);
            in += r;
            left -= (size_t)r;
            if ((flags & NGHTTP2_HD_INFLATE_EMIT) != 0 && nv.namelen == strlen(name) &&
                memcmp(nv.name, name, nv.namelen) == 0)
                snprintf(out, cap, "%.*s", (int)nv.valuelen, nv.value);
            if ((flags & NGHTTP2_HD_INFLATE_FINAL) != 0) {
                nghttp2_hd_inflate_end_headers(dec);
                break;
            }
        }
        return stream;
    }
    return 0;
}

static void test_app_gets_the_normalized_path(void **state)
{
    (void)state;
    static const struct {
        const char *sent, *app;
    } cases[] = {
        {"/admin/../ok", "/ok"},
        {"/admin/%2e%2e/ok", "/ok"},
        {"/admin\\..\\ok", "/ok"},
        {"/admin/%2E%2e/ok?next=/../x&q=%2e#frag", "/ok?next=/../x&q=%2e"},
        {"/ok", "/ok"},
        {"/ok/%252e%252e", "/ok/%252e%252e"},
        {"/ok//a%2Fb", "/ok//a%2Fb"},
    };
    harness_t *h = h_new(RM_PATH_NORMALIZATION_BASE);
    char path[256], want_seen[1024] = "";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t stream = (uint32_t)(2 * i + 1);
        h_request(h, stream, cases[i].sent);
        /* the same HPACK state carries every request: a rewritten :path does not put the app out of step */
        assert_int_equal(next_headers(h->app_dec, &h->to_app, &h->app_read, ":path", path, sizeof(path)), stream);
        assert_string_equal(path, cases[i].app);
        size_t n = strlen(want_seen);
        snprintf(want_seen + n, sizeof(want_seen) - n, "%s|", cases[i].app);
    }
    assert_string_equal(h->seen, want_seen);
    assert_int_equal(next_headers(h->client_dec, &h->to_client, &h->client_read, ":status", path, sizeof(path)), 0);
    h_free(h);
}

static void test_denied_after_normalizing(void **state)
{
    (void)state;
    harness_t *h = h_new(RM_PATH_NORMALIZATION_BASE);
    char status[16];
    size_t app_len = h->to_app.len;
    h_request(h, 1, "/ok/%2e%2e/admin");
    assert_string_equal(h->seen, "/admin|");
    assert_int_equal(h->to_app.len, app_len);
    assert_int_equal(next_headers(h->client_dec, &h->to_client, &h->client_read, ":status", status, sizeof(status)), 1);
    assert_string_equal(status, "403");
    h_free(h);
}

static void test_nul_gets_400(void **state)
{
    (void)state;
    harness_t *h = h_new(RM_PATH_NORMALIZATION_BASE);
    char status[16], path[64];
    size_t app_len = h->to_app.len;
    h_request(h, 1, "/ok%00");
    assert_string_equal(h->seen, "!the path holds a percent-encoded NUL (%00)|");
    assert_int_equal(h->to_app.len, app_len); /* the app never hears of stream 1 */
    assert_int_equal(next_headers(h->client_dec, &h->to_client, &h->client_read, ":status", status, sizeof(status)), 1);
    assert_string_equal(status, "400");
    /* the connection goes on */
    h_request(h, 3, "/ok/./x");
    assert_int_equal(next_headers(h->app_dec, &h->to_app, &h->app_read, ":path", path, sizeof(path)), 3);
    assert_string_equal(path, "/ok/x");
    h_free(h);
}

static void test_modes(void **state)
{
    (void)state;
    static const struct {
        rm_path_normalization_t mode;
        const char *sent, *app;
    } cases[] = {
        {RM_PATH_NORMALIZATION_NONE, "/ok/../admin", "/ok/../admin"},
        {RM_PATH_NORMALIZATION_NONE, "/ok%00", "/ok%00"},
        {RM_PATH_NORMALIZATION_MERGE_SLASHES, "//ok//a%2Fb", "/ok/a%2Fb"},
        {RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES, "//ok//a%2Fb%5cc", "/ok/a/b/c"},
        {RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES, "/admin%2F..%2Fok", "/ok"},
    };
    char path[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        harness_t *h = h_new(cases[i].mode);
        h_request(h, 1, cases[i].sent);
        assert_int_equal(next_headers(h->app_dec, &h->to_app, &h->app_read, ":path", path, sizeof(path)), 1);
        assert_string_equal(path, cases[i].app);
        h_free(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_gets_the_normalized_path),
        cmocka_unit_test(test_denied_after_normalizing),
        cmocka_unit_test(test_nul_gets_400),
        cmocka_unit_test(test_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
