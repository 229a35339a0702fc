/* rm_http1_filter and request paths: the hook judges the normalized target and the app receives exactly that
 * target (request line rebuilt, query kept, fragment dropped); %00 is answered 400 without reaching the app. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http1_filter.h"

#define BAD_REQUEST "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

/* The hook remembers the targets it judged ("path" or "!error") and allows only paths starting with /ok. */
typedef struct {
    rm_http1_filter_t f;
    rm_bytebuf_t to_app, to_client;
    char seen[1024];
    size_t calls;
} harness_t;

static rm_http_verdict_t decide(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    (void)out;
    harness_t *h = ctx;
    size_t n = strlen(h->seen);
    h->calls++;
    if (req->path_error != NULL)
        snprintf(h->seen + n, sizeof(h->seen) - n, "!%s|", req->path_error);
    else
        snprintf(h->seen + n, sizeof(h->seen) - n, "%.*s|", (int)req->path_len, req->path);
    return req->path_len >= 3 && memcmp(req->path, "/ok", 3) == 0 ? RM_HTTP_ALLOW : RM_HTTP_DENY;
}

static harness_t *h_new(rm_path_normalization_t mode)
{
    harness_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    assert_int_equal(rm_http1_filter_init(&h->f, decide, NULL, h), 0);
    if (mode != RM_PATH_NORMALIZATION_BASE)
        rm_http1_filter_set_path_normalization(&h->f, mode);
    return h;
}

static void h_free(harness_t *h)
{
    rm_http1_filter_dispose(&h->f);
    rm_bytebuf_free(&h->to_app);
    rm_bytebuf_free(&h->to_client);
    free(h);
}

/* Feeds `s` whole, or one byte per call when `bytewise`; returns the first nonzero result. */
static int h_client(harness_t *h, const char *s, int bytewise)
{
    size_t len = strlen(s);
    if (!bytewise)
        return rm_http1_filter_from_client(&h->f, (const uint8_t *)s, len, &h->to_app, &h->to_client);
    int ret = 0;
    for (size_t i = 0; i < len; i++) {
        int r = rm_http1_filter_from_client(&h->f, (const uint8_t *)s + i, 1, &h->to_app, &h->to_client);
        if (ret == 0)
            ret = r;
    }
    return ret;
}

static void assert_buf(const rm_bytebuf_t *b, const char *want)
{
    if (b->len != strlen(want) || memcmp(b->base, want, b->len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)b->len, b->base != NULL ? (const char *)b->base : "", want);
}

static const struct {
    const char *request_line_target, *app_target, *hook_saw;
} rewrites[] = {
    /* the bypass: with only /ok allowed, each of these is /ok for the hook and for the app */
    {"/admin/../ok", "/ok", "/ok|"},
    {"/admin/%2e%2e/ok", "/ok", "/ok|"},
    {"/admin\\..\\ok", "/ok", "/ok|"},
    {"/admin/%2E%2e/ok?user=a%2e&next=/../x", "/ok?user=a%2e&next=/../x", "/ok?user=a%2e&next=/../x|"},
    {"/ok/x#frag", "/ok/x", "/ok/x|"},
    {"http://orders.shop/admin/../ok?q=1", "/ok?q=1", "/ok?q=1|"},
    {"/ok/%252e%252e/x", "/ok/%252e%252e/x", "/ok/%252e%252e/x|"}, /* unchanged: forwarded byte for byte */
};

static void test_allowed_request_reaches_app_normalized(void **state)
{
    (void)state;
    char in[512], want[512];
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        for (size_t i = 0; i < sizeof(rewrites) / sizeof(rewrites[0]); i++) {
            harness_t *h = h_new(RM_PATH_NORMALIZATION_BASE);
            snprintf(in, sizeof(in),
                     "\r\nGET %s HTTP/1.1\r\nHost: orders\r\nContent-Length: 4\r\n\r\nbody"
                     "GET /ok HTTP/1.1\r\nHost: orders\r\n\r\n",
                     rewrites[i].request_line_target);
            snprintf(want, sizeof(want),
                     "\r\nGET %s HTTP/1.1\r\nHost: orders\r\nContent-Length: 4\r\n\r\nbody"
                     "GET /ok HTTP/1.1\r\nHost: orders\r\n\r\n",
                     rewrites[i].app_target);
            assert_int_equal(h_client(h, in, bytewise), 0);
            assert_buf(&h->to_app, want);
            assert_int_equal(h->to_client.len, 0);
            char seen[600];
            snprintf(seen, sizeof(seen), "%s/ok|", rewrites[i].hook_saw);
            assert_string_equal(h->seen, seen);
            h_free(h);
        }
    }
}

/* The hook judges the normalized path: /ok/../admin is /admin, denied, and never reaches the app. */
static void test_denied_after_normalizing(void **state)
{
    (void)state;
    harness_t *h = h_new(RM_PATH_NORMALIZATION_BASE);
    assert_int_equal(
        h_client(h, "GET /ok/../admin HTTP/1.1\r\nHost: a\r\n\r\nGET /ok/%2e%2e/admin HTTP/1.1\r\n\r\n", 0), 0);
    assert_int_equal(h->to_app.len, 0);
    assert_string_equal(h->seen, "/admin|/admin|");
    assert_non_null(memmem(h->to_client.base, h->to_client.len, "403 Forbidden", 13));
    h_free(h);
}

static void test_nul_gets_400(void **state)
{
    (void)state;
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        harness_t *h = h_new(RM_PATH_NORMALIZATION_BASE);
        assert_int_equal(h_client(h, "GET /ok%00/x HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\n\r\n", bytewise),
                         -EPROTO);
        assert_int_equal(h->to_app.len, 0);
        assert_buf(&h->to_client, BAD_REQUEST);
        assert_int_equal(h->calls, 1); /* told, for the log; nothing after the 400 is parsed */
        assert_string_equal(h->seen, "!the path holds a percent-encoded NUL (%00)|");
        h_free(h);
    }
    /* after an allowed request, the 400 waits for the app's answer to it */
    harness_t *h = h_new(RM_PATH_NORMALIZATION_BASE);
    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\n\r\nGET /%00 HTTP/1.1\r\n\r\n", 0), 0);
    assert_buf(&h->to_app, "GET /ok HTTP/1.1\r\n\r\n");
    assert_int_equal(h->to_client.len, 0);
    assert_int_equal(rm_http1_filter_from_app(&h->f, (const uint8_t *)"HTTP/1.1 204 No Content\r\n\r\n", 27, &h->to_app,
                                              &h->to_client),
                     -EPROTO);
    assert_buf(&h->to_client, "HTTP/1.1 204 No Content\r\n\r\n" BAD_REQUEST);
    h_free(h);
}

static void test_modes(void **state)
{
    (void)state;
    static const struct {
        rm_path_normalization_t mode;
        const char *in, *app;
    } cases[] = {
        {RM_PATH_NORMALIZATION_NONE, "GET /ok/../admin#f HTTP/1.1\r\n\r\n", "GET /ok/../admin#f HTTP/1.1\r\n\r\n"},
        {RM_PATH_NORMALIZATION_NONE, "GET /ok%00 HTTP/1.1\r\n\r\n", "GET /ok%00 HTTP/1.1\r\n\r\n"},
        {RM_PATH_NORMALIZATION_BASE, "GET /ok//x%2Fy HTTP/1.1\r\n\r\n", "GET /ok//x%2Fy HTTP/1.1\r\n\r\n"},
        {RM_PATH_NORMALIZATION_MERGE_SLASHES, "GET //ok//x%2Fy HTTP/1.1\r\n\r\n", "GET /ok/x%2Fy HTTP/1.1\r\n\r\n"},
        {RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES, "GET /ok//x%2Fy HTTP/1.1\r\n\r\n",
         "GET /ok/x/y HTTP/1.1\r\n\r\n"},
        {RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES, "GET /admin%2f..%2fok HTTP/1.1\r\n\r\n",
         "GET /ok HTTP/1.1\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        harness_t *h = h_new(cases[i].mode);
        assert_int_equal(h_client(h, cases[i].in, 0), 0);
        assert_buf(&h->to_app, cases[i].app);
        h_free(h);
    }
    /* the mode can change between requests; each request uses the one in force when it is decided */
    harness_t *h = h_new(RM_PATH_NORMALIZATION_NONE);
    assert_int_equal(h_client(h, "GET /ok/a/.. HTTP/1.1\r\n\r\n", 0), 0);
    rm_http1_filter_set_path_normalization(&h->f, RM_PATH_NORMALIZATION_BASE);
    assert_int_equal(h_client(h, "GET /ok/a/.. HTTP/1.1\r\n\r\n", 0), 0);
    assert_buf(&h->to_app, "GET /ok/a/.. HTTP/1.1\r\n\r\nGET /ok/ HTTP/1.1\r\n\r\n");
    h_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_request_reaches_app_normalized),
        cmocka_unit_test(test_denied_after_normalizing),
        cmocka_unit_test(test_nul_gets_400),
        cmocka_unit_test(test_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
