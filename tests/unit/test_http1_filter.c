/* rm_http1_filter: allowed requests pass byte for byte, denied ones get an in-order 403, whatever the splits. */
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

#define FORBIDDEN "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n\r\nRBAC: access denied"
#define FORBIDDEN_CLOSE                                                                                                \
    "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n"            \
    "RBAC: access denied"
#define FORBIDDEN_HEAD "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n\r\n"
#define BAD_REQUEST    "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
#define TOO_LARGE      "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

/* The hook records every request it sees as text and denies paths starting with /deny. */
typedef struct {
    size_t calls;
    rm_bytebuf_t log;
} hook_log_t;

static void log_printf(hook_log_t *log, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    assert_int_equal(rm_bytebuf_reserve(&log->log, (size_t)n + 1), 0);
    va_start(ap, fmt);
    vsnprintf((char *)log->log.base + log->log.len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    log->log.len += (size_t)n;
}

static rm_http_verdict_t decide(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    (void)out;
    hook_log_t *log = ctx;
    log->calls++;
    log_printf(log, "%.*s %.*s host=%.*s\n", (int)req->method_len, req->method, (int)req->path_len, req->path,
               req->host != NULL ? (int)req->host_len : 1, req->host != NULL ? req->host : "-");
    for (size_t i = 0; i != req->num_headers; i++)
        log_printf(log, " %.*s: [%.*s]\n", (int)req->headers[i].name_len, req->headers[i].name,
                   (int)req->headers[i].value_len, req->headers[i].value);
    assert_int_equal(req->http2, 0);
    return req->path_len >= 5 && memcmp(req->path, "/deny", 5) == 0 ? RM_HTTP_DENY : RM_HTTP_ALLOW;
}

typedef struct {
    rm_http1_filter_t f;
    hook_log_t log;
    rm_bytebuf_t to_app, to_client;
} harness_t;

static harness_t *h_new(void)
{
    harness_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    assert_int_equal(rm_http1_filter_init(&h->f, decide, NULL, &h->log), 0);
    return h;
}

static void h_free(harness_t *h)
{
    rm_http1_filter_dispose(&h->f);
    rm_bytebuf_free(&h->to_app);
    rm_bytebuf_free(&h->to_client);
    rm_bytebuf_free(&h->log.log);
    free(h);
}

static int h_client_n(harness_t *h, const void *p, size_t n)
{
    return rm_http1_filter_from_client(&h->f, p, n, &h->to_app, &h->to_client);
}

static int h_client(harness_t *h, const char *s)
{
    return h_client_n(h, s, strlen(s));
}

static int h_app_n(harness_t *h, const void *p, size_t n)
{
    return rm_http1_filter_from_app(&h->f, p, n, &h->to_app, &h->to_client);
}

static int h_app(harness_t *h, const char *s)
{
    return h_app_n(h, s, strlen(s));
}

/* Feeds one byte per call; returns the first nonzero result (or 0). */
static int h_client_bytewise(harness_t *h, const char *s)
{
    int ret = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        int r = h_client_n(h, s + i, 1);
        if (ret == 0)
            ret = r;
    }
    return ret;
}

static int h_app_bytewise(harness_t *h, const char *s)
{
    int ret = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        int r = h_app_n(h, s + i, 1);
        if (ret == 0)
            ret = r;
    }
    return ret;
}

static void assert_buf(const rm_bytebuf_t *b, const char *expect)
{
    char *copy = malloc(b->len + 1);
    assert_non_null(copy);
    if (b->len != 0)
        memcpy(copy, b->base, b->len);
    copy[b->len] = '\0';
    assert_string_equal(copy, expect);
    assert_int_equal(b->len, strlen(expect));
    free(copy);
}

static void test_allow_forwards_bytes_unchanged(void **state)
{
    static const char reqs[] = "GET /a?x=1 HTTP/1.1\r\nHost: svc\r\n\r\n"
                               "POST /b HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello"
                               "\r\n" /* stray empty line between requests, as some clients send */
                               "PUT /c HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5;name=val\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n";
    harness_t *h = h_new();

    assert_int_equal(h_client(h, reqs), 0);
    assert_buf(&h->to_app, reqs);
    assert_buf(&h->to_client, "");
    assert_int_equal(h->log.calls, 3);
    assert_buf(&h->log.log, "GET /a?x=1 host=svc\n host: [svc]\n"
                            "POST /b host=svc\n host: [svc]\n content-length: [5]\n"
                            "PUT /c host=svc\n host: [svc]\n transfer-encoding: [chunked]\n");
    assert_int_equal(rm_http1_filter_buffered(&h->f), 0);
    assert_int_equal(rm_http1_filter_client_finished(&h->f), 0);
    h_free(h);
}

static void test_allowed_body_streams(void **state)
{
    harness_t *h = h_new();

    /* an incomplete head is held, and nothing reaches the app */
    assert_int_equal(h_client(h, "POST /up HTTP/1.1\r\nHost: svc\r\nContent-Le"), 0);
    assert_buf(&h->to_app, "");
    assert_true(rm_http1_filter_buffered(&h->f) > 0);
    /* the head completes: it goes out with the part of the body that came with it, before the body is complete */
    assert_int_equal(h_client(h, "ngth: 10\r\n\r\n0123"), 0);
    assert_buf(&h->to_app, "POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\n0123");
    assert_int_equal(rm_http1_filter_buffered(&h->f), 0);
    assert_int_equal(h_client(h, "4567"), 0);
    assert_buf(&h->to_app, "POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\n01234567");
    /* the body's end, then a denied request in the same read: the body is not parsed as a request */
    assert_int_equal(h_client(h, "89GET /deny HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
    assert_buf(&h->to_app, "POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\n0123456789");
    assert_int_equal(h->log.calls, 2);
    assert_buf(&h->to_client, "");
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 0);
    assert_buf(&h->to_client, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" FORBIDDEN);
    h_free(h);
}

static void test_deny_answers_403(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "GET /deny/x HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
    assert_buf(&h->to_app, "");
    assert_buf(&h->to_client, FORBIDDEN);
    assert_int_equal(rm_http1_filter_client_finished(&h->f), 0);
    /* the connection is still usable */
    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
    assert_buf(&h->to_app, "GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n");
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 0);
    assert_buf(&h->to_client, FORBIDDEN "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    assert_int_equal(h->log.calls, 2);
    h_free(h);
}

static void test_denied_head_gets_no_body(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "HEAD /deny HTTP/1.1\r\nHost: svc\r\n\r\nGET /deny HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
    assert_buf(&h->to_client, FORBIDDEN_HEAD FORBIDDEN);
    assert_buf(&h->to_app, "");
    h_free(h);
}

static void test_pipelined_allow_deny_allow(void **state)
{
    static const char resp1[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none",
                      resp3[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n";
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "GET /1 HTTP/1.1\r\nHost: svc\r\n\r\n"
                                 "POST /deny HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\n\r\nbody"
                                 "GET /3 HTTP/1.1\r\nHost: svc\r\n\r\n"),
                     0);
    assert_buf(&h->to_app, "GET /1 HTTP/1.1\r\nHost: svc\r\n\r\nGET /3 HTTP/1.1\r\nHost: svc\r\n\r\n");
    /* the 403 waits for the first response */
    assert_buf(&h->to_client, "");
    assert_true(rm_http1_filter_buffered(&h->f) > 0);
    /* most of the first response: still waiting */
    assert_int_equal(h_app_n(h, resp1, sizeof(resp1) - 2), 0);
    assert_buf(&h->to_client, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\non");
    /* its last byte and the third response in one read: the 403 goes between them */
    char rest[256];
    snprintf(rest, sizeof(rest), "e%s", resp3);
    assert_int_equal(h_app(h, rest), 0);
    assert_buf(&h->to_client, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none" FORBIDDEN
                              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n");
    assert_int_equal(rm_http1_filter_buffered(&h->f), 0);
    h_free(h);
}

/* A mixed conversation whose outcome must not depend on how the bytes are split. */
static const char mixed_client[] =
    "GET /a HTTP/1.1\r\nHost: x\r\nX-Case: AbC\r\n\r\n"
    "POST /deny/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: t\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nworld"
    "HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n"
    "GET /deny/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    "PUT /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
    "GET /e HTTP/1.1\r\nHost: x\r\n\r\n";
static const char mixed_app[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                "HTTP/1.1 100 Continue\r\n\r\n"
                                "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
                                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
                                "HTTP/1.1 204 No Content\r\n\r\n"
                                "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n";
static const char mixed_to_app[] =
    "GET /a HTTP/1.1\r\nHost: x\r\nX-Case: AbC\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nworld"
    "HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n"
    "PUT /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
    "GET /e HTTP/1.1\r\nHost: x\r\n\r\n";
static const char mixed_to_client[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" FORBIDDEN "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" FORBIDDEN "HTTP/1.1 204 No Content\r\n\r\n"
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n";
static const char mixed_log[] = "GET /a host=x\n host: [x]\n x-case: [AbC]\n"
                                "POST /deny/1 host=x\n host: [x]\n transfer-encoding: [chunked]\n"
                                "POST /b host=x\n host: [x]\n content-length: [5]\n expect: [100-continue]\n"
                                "HEAD /c host=x\n host: [x]\n"
                                "GET /deny/2 host=x\n host: [x]\n content-length: [3]\n"
                                "PUT /d host=x\n host: [x]\n transfer-encoding: [chunked]\n"
                                "GET /e host=x\n host: [x]\n";

static void assert_mixed_outcome(harness_t *h)
{
    assert_buf(&h->to_app, mixed_to_app);
    assert_buf(&h->to_client, mixed_to_client);
    assert_buf(&h->log.log, mixed_log);
    assert_int_equal(h->log.calls, 7);
}

/* How much of mixed_app the app may have sent, given what it has received: it never answers a request before the
 * request's head reached it. */
static size_t mixed_app_limit(const rm_bytebuf_t *to_app)
{
    static const char *const requests[] = {"GET /a", "POST /b", "HEAD /c", "PUT /d", "GET /e"},
                             *const responses[] = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "HTTP/1.1 100 ",
                                                   "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", "HTTP/1.1 204 ",
                                                   "HTTP/1.1 304 "};
    size_t limit = 0;

    for (size_t i = 0; i != 5; i++) {
        const char *head_end = strstr(strstr(mixed_to_app, requests[i]), "\r\n\r\n") + 4;
        if (to_app->len < (size_t)(head_end - mixed_to_app))
            break;
        limit = i + 1 < 5 ? (size_t)(strstr(mixed_app, responses[i + 1]) - mixed_app) : sizeof(mixed_app) - 1;
    }
    return limit;
}

static void test_any_split_same_result(void **state)
{
    harness_t *h;

    /* in one piece each */
    h = h_new();
    assert_int_equal(h_client(h, mixed_client), 0);
    assert_int_equal(h_app(h, mixed_app), 0);
    assert_mixed_outcome(h);
    h_free(h);

    /* one byte at a time */
    h = h_new();
    assert_int_equal(h_client_bytewise(h, mixed_client), 0);
    assert_int_equal(h_app_bytewise(h, mixed_app), 0);
    assert_mixed_outcome(h);
    h_free(h);

    /* the client's bytes split in two at every position */
    for (size_t cut = 1; cut < sizeof(mixed_client) - 1; cut++) {
        h = h_new();
        assert_int_equal(h_client_n(h, mixed_client, cut), 0);
        assert_int_equal(h_client(h, mixed_client + cut), 0);
        assert_int_equal(h_app(h, mixed_app), 0);
        assert_mixed_outcome(h);
        h_free(h);
    }

    /* the app's bytes split in two at every position */
    for (size_t cut = 1; cut < sizeof(mixed_app) - 1; cut++) {
        h = h_new();
        assert_int_equal(h_client(h, mixed_client), 0);
        assert_int_equal(h_app_n(h, mixed_app, cut), 0);
        assert_int_equal(h_app(h, mixed_app + cut), 0);
        assert_mixed_outcome(h);
        h_free(h);
    }

    /* random pieces, both directions interleaved (answers then leave from either call, in the same order) */
    srand(12345);
    for (int round = 0; round < 200; round++) {
        size_t c = 0, a = 0, nc = sizeof(mixed_client) - 1, na = sizeof(mixed_app) - 1;
        h = h_new();
        while (c < nc || a < na) {
            if (c < nc && (a == na || rand() % 2 == 0)) {
                size_t n = 1 + (size_t)rand() % 40;
                n = n > nc - c ? nc - c : n;
                assert_int_equal(h_client_n(h, mixed_client + c, n), 0);
                c += n;
            } else {
                size_t limit = mixed_app_limit(&h->to_app), n = 1 + (size_t)rand() % 40;
                if (a == limit)
                    continue;
                n = n > limit - a ? limit - a : n;
                assert_int_equal(h_app_n(h, mixed_app + a, n), 0);
                a += n;
            }
        }
        assert_mixed_outcome(h);
        h_free(h);
    }
}

static void test_denied_chunked_body_skipped(void **state)
{
    harness_t *h = h_new();

    /* the chunk data looks like a request: it must be dropped, not parsed */
    assert_int_equal(h_client(h, "POST /deny HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "23\r\nGET /smuggled HTTP/1.1\r\nHost: s\r\n\r\n\r\n"
                                 "3;x=y\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
                                 "GET /next HTTP/1.1\r\nHost: svc\r\n\r\n"),
                     0);
    assert_buf(&h->to_app, "GET /next HTTP/1.1\r\nHost: svc\r\n\r\n");
    assert_buf(&h->to_client, FORBIDDEN);
    assert_int_equal(h->log.calls, 2);
    assert_buf(&h->log.log, "POST /deny host=svc\n host: [svc]\n transfer-encoding: [chunked]\n"
                            "GET /next host=svc\n host: [svc]\n");
    h_free(h);
}

static void test_denied_content_length_body_skipped(void **state)
{
    static const char smuggle[] = "GET /smuggled HTTP/1.1\r\nHost: s\r\n\r\n";
    char req[512];
    harness_t *h = h_new();

    snprintf(req, sizeof(req), "POST /deny HTTP/1.1\r\nHost: svc\r\nContent-Length: %zu\r\n\r\n%s", strlen(smuggle),
             smuggle);
    /* the head, then the body in two reads, then the next request */
    assert_int_equal(h_client_n(h, req, strlen(req) - 10), 0);
    assert_int_equal(h_client(h, req + strlen(req) - 10), 0);
    assert_int_equal(h_client(h, "DELETE /next HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
    assert_buf(&h->to_app, "DELETE /next HTTP/1.1\r\nHost: svc\r\n\r\n");
    assert_buf(&h->to_client, FORBIDDEN);
    assert_int_equal(h->log.calls, 2);
    h_free(h);
}

static void test_head_response_has_no_body(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "HEAD /big HTTP/1.1\r\nHost: svc\r\n\r\nGET /deny HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
    assert_buf(&h->to_client, "");
    /* Content-Length says what a GET would get; no body follows a HEAD response, so the 403 comes right after */
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), 0);
    assert_buf(&h->to_client, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" FORBIDDEN);
    h_free(h);
}

static void test_204_304_have_no_body(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "DELETE /a HTTP/1.1\r\nHost: svc\r\n\r\nGET /b HTTP/1.1\r\nHost: svc\r\n\r\n"
                                 "GET /deny HTTP/1.1\r\nHost: svc\r\n\r\n"),
                     0);
    /* whatever Content-Length says (RFC 9112 6.3) */
    assert_int_equal(h_app(h, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"), 0);
    assert_buf(&h->to_client, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n");
    assert_int_equal(h_app(h, "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"), 0);
    assert_buf(&h->to_client, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
                              "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n" FORBIDDEN);
    h_free(h);
}

static void test_interim_100_continue_is_not_final(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "POST /up HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
                     0);
    assert_buf(&h->to_app, "POST /up HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_int_equal(h_app(h, "HTTP/1.1 100 Continue\r\n\r\n"), 0);
    assert_int_equal(h_client(h, "dataGET /deny HTTP/1.1\r\nHost: svc\r\n\r\n"), 0);
    /* the 100 was not the answer to the POST: the 403 still waits */
    assert_buf(&h->to_client, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(h_app(h, "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), 0);
    assert_buf(&h->to_client, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                              "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n" FORBIDDEN);
    h_free(h);
}

static void test_denied_expect_continue(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(
        h_client(h, "PUT /deny HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
        RM_HTTP1_FILTER_CLOSE);
    /* no 100, a 403 that closes; the body sent anyway is dropped */
    assert_buf(&h->to_client, FORBIDDEN_CLOSE);
    assert_int_equal(h_client(h, "hello"), RM_HTTP1_FILTER_CLOSE);
    assert_buf(&h->to_app, "");
    assert_buf(&h->to_client, FORBIDDEN_CLOSE);
    h_free(h);

    /* without a body there is nothing to misread: the connection stays */
    h = h_new();
    assert_int_equal(h_client(h, "GET /deny HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\n\r\n"), 0);
    assert_buf(&h->to_client, FORBIDDEN);
    h_free(h);
}

static void test_headers_lowercased_and_split(void **state)
{
    static const char req[] = "GET /p?q=1&r=%20 HTTP/1.1\r\n"
                              "Host: Example.COM\r\n"
                              "X-Mixed-CASE-Name: Value One\r\n"
                              "x-dup: 1\r\n"
                              "X-DUP: 2\r\n"
                              "Empty:\r\n"
                              "Trailing-Space: v w  \r\n"
                              "AUTHORIZATION: Bearer abc.def\r\n"
                              "\r\n";
    static const char expect[] = "GET /p?q=1&r=%20 host=Example.COM\n"
                                 " host: [Example.COM]\n"
                                 " x-mixed-case-name: [Value One]\n"
                                 " x-dup: [1]\n"
                                 " x-dup: [2]\n"
                                 " empty: []\n"
                                 " trailing-space: [v w]\n"
                                 " authorization: [Bearer abc.def]\n";

    for (size_t cut = 0; cut < sizeof(req) - 1; cut++) {
        harness_t *h = h_new();
        assert_int_equal(h_client_n(h, req, cut), 0);
        assert_int_equal(h->log.calls, 0);
        assert_int_equal(h_client(h, req + cut), 0);
        assert_int_equal(h->log.calls, 1);
        assert_buf(&h->log.log, expect);
        assert_buf(&h->to_app, req);
        h_free(h);
    }
    harness_t *h = h_new();
    assert_int_equal(h_client_bytewise(h, req), 0);
    assert_buf(&h->log.log, expect);
    assert_buf(&h->to_app, req);
    h_free(h);
}

/* Builds a head of exactly `size` bytes with one big header. */
static char *build_head(size_t size)
{
    static const char start[] = "GET / HTTP/1.1\r\nHost: svc\r\nX-Big: ", end[] = "\r\n\r\n";
    char *s = malloc(size + 1);
    assert_non_null(s);
    size_t fill = size - (sizeof(start) - 1) - (sizeof(end) - 1);
    memcpy(s, start, sizeof(start) - 1);
    memset(s + sizeof(start) - 1, 'a', fill);
    memcpy(s + sizeof(start) - 1 + fill, end, sizeof(end));
    return s;
}

static void test_oversized_head_431(void **state)
{
    /* at the limit: allowed */
    char *head = build_head(RM_HTTP1_MAX_HEAD_SIZE);
    harness_t *h = h_new();
    assert_int_equal(h_client(h, head), 0);
    assert_int_equal(h->to_app.len, RM_HTTP1_MAX_HEAD_SIZE);
    assert_buf(&h->to_client, "");
    h_free(h);
    free(head);

    /* one byte more, in one piece or in small ones: 431, nothing for the app, and the end */
    head = build_head(RM_HTTP1_MAX_HEAD_SIZE + 1);
    h = h_new();
    assert_int_equal(h_client(h, head), -EMSGSIZE);
    assert_buf(&h->to_client, TOO_LARGE);
    assert_buf(&h->to_app, "");
    assert_int_equal(h->log.calls, 0);
    assert_int_equal(h_client(h, "GET / HTTP/1.1\r\n\r\n"), -EMSGSIZE);
    assert_buf(&h->to_client, TOO_LARGE);
    h_free(h);

    h = h_new();
    int ret = 0;
    for (size_t off = 0; off < RM_HTTP1_MAX_HEAD_SIZE + 1 && ret == 0; off += 1000) {
        size_t n = RM_HTTP1_MAX_HEAD_SIZE + 1 - off < 1000 ? RM_HTTP1_MAX_HEAD_SIZE + 1 - off : 1000;
        ret = h_client_n(h, head + off, n);
    }
    assert_int_equal(ret, -EMSGSIZE);
    assert_buf(&h->to_client, TOO_LARGE);
    assert_buf(&h->to_app, "");
    assert_true(rm_http1_filter_client_finished(&h->f));
    h_free(h);
    free(head);

    /* an endless head is cut off long before it ends */
    h = h_new();
    char chunk[4096];
    memset(chunk, 'b', sizeof(chunk));
    assert_int_equal(h_client(h, "GET / HTTP/1.1\r\nX-Endless: "), 0);
    ret = 0;
    for (int i = 0; i < 100 && ret == 0; i++)
        ret = h_client_n(h, chunk, sizeof(chunk));
    assert_int_equal(ret, -EMSGSIZE);
    assert_true(rm_http1_filter_buffered(&h->f) <= RM_HTTP1_MAX_HEAD_SIZE + 1024);
    h_free(h);
}

static void test_too_many_headers_431(void **state)
{
    rm_bytebuf_t req = {0};
    harness_t *h;

    /* RM_HTTP1_MAX_HEADERS fields pass */
    assert_int_equal(rm_bytebuf_append(&req, "GET / HTTP/1.1\r\n", 16), 0);
    for (int i = 0; i < RM_HTTP1_MAX_HEADERS; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "X-H%d: %d\r\n", i, i);
        assert_int_equal(rm_bytebuf_append(&req, line, (size_t)n), 0);
    }
    assert_int_equal(rm_bytebuf_append(&req, "\r\n", 2), 0);
    h = h_new();
    assert_int_equal(h_client_n(h, req.base, req.len), 0);
    assert_int_equal(h->log.calls, 1);
    assert_int_equal(h->to_app.len, req.len);
    h_free(h);

    /* one more: 431 */
    req.len -= 2;
    assert_int_equal(rm_bytebuf_append(&req, "X-One-More: 1\r\n\r\n", 17), 0);
    h = h_new();
    assert_int_equal(h_client_n(h, req.base, req.len), -EMSGSIZE);
    assert_buf(&h->to_client, TOO_LARGE);
    assert_buf(&h->to_app, "");
    assert_int_equal(h->log.calls, 0);
    h_free(h);
    rm_bytebuf_free(&req);
}

static void test_garbage_400(void **state)
{
    static const char *const bad[] = {
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",                                         /* a TLS ClientHello */
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", /* CL and TE */
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\n\r\n",
        "BREW /pot HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\rX",
        "\x7fGET / HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        harness_t *h = h_new();
        assert_int_equal(h_client(h, bad[i]), -EPROTO);
        assert_buf(&h->to_client, BAD_REQUEST);
        assert_buf(&h->to_app, "");
        assert_true(rm_http1_filter_client_finished(&h->f));
        h_free(h);
    }

    /* a denied request's malformed body: its 403, then the 400 */
    harness_t *h = h_new();
    assert_int_equal(h_client(h, "POST /deny HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
                     -EPROTO);
    assert_buf(&h->to_client, FORBIDDEN BAD_REQUEST);
    h_free(h);

    /* an allowed request's malformed body: the app has its head, so nothing is answered */
    h = h_new();
    assert_int_equal(h_client(h, "POST /ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), -EPROTO);
    assert_buf(&h->to_client, "");
    h_free(h);
}

/* A field folded onto a second line (obs-fold, RFC 9112 5.2), or whitespace before the first field (2.2): 400 and
 * nothing for the app, however the bytes are split; spaces and tabs inside a line are no fold. */
static void test_obs_fold_400(void **state)
{
    static const char *const folded[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n\tb\r\nX-B: c\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A:\r\n  b\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\nX-A: a\n b\n\n",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(folded) / sizeof(folded[0]); i++) {
        size_t len = strlen(folded[i]);
        for (size_t cut = 0; cut <= len; cut++) {
            harness_t *h = h_new();
            int r = h_client_n(h, folded[i], cut);
            if (r == 0)
                r = h_client_n(h, folded[i] + cut, len - cut);
            assert_int_equal(r, -EPROTO);
            assert_buf(&h->to_client, BAD_REQUEST);
            assert_buf(&h->to_app, "");
            assert_int_equal(h->log.calls, 0);
            assert_true(rm_http1_filter_client_finished(&h->f));
            h_free(h);
        }
        harness_t *h = h_new();
        assert_int_equal(h_client_bytewise(h, folded[i]), -EPROTO);
        assert_buf(&h->to_client, BAD_REQUEST);
        assert_buf(&h->to_app, "");
        h_free(h);
    }

    /* after an allowed request, a folded one: the first goes on, the 400 waits for its response */
    harness_t *h = h_new();
    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /ok2 HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n"), 0);
    assert_buf(&h->to_app, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(h->log.calls, 1);
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), -EPROTO);
    assert_buf(&h->to_client, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" BAD_REQUEST);
    h_free(h);

    /* spaces and tabs within a line pass, and so do a body's bytes after a line break */
    static const char fine[] = "POST / HTTP/1.1\r\nHost: a\r\nX-A: a \t b\r\nContent-Length: 4\r\n\r\n\n \n\t";
    h = h_new();
    assert_int_equal(h_client(h, fine), 0);
    assert_buf(&h->to_app, fine);
    assert_int_equal(h->log.calls, 1);
    h_free(h);
}

static void test_error_answer_waits_its_turn(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\nNOT HTTP AT ALL\r\n\r\n"), 0);
    assert_true(rm_http1_filter_client_finished(&h->f));
    assert_buf(&h->to_client, "");
    assert_int_equal(h_client(h, "GET /ok2 HTTP/1.1\r\nHost: a\r\n\r\n"), 0); /* ignored */
    assert_buf(&h->to_app, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), -EPROTO);
    assert_buf(&h->to_client, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" BAD_REQUEST);
    h_free(h);
}

static void test_connection_close_on_denied(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "GET /deny HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                                 "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"),
                     RM_HTTP1_FILTER_CLOSE);
    assert_buf(&h->to_client, FORBIDDEN_CLOSE);
    assert_buf(&h->to_app, "");
    assert_int_equal(h->log.calls, 1);
    assert_true(rm_http1_filter_client_finished(&h->f));
    /* sticky */
    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"), RM_HTTP1_FILTER_CLOSE);
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\n\r\n"), RM_HTTP1_FILTER_CLOSE);
    assert_buf(&h->to_client, FORBIDDEN_CLOSE);
    assert_buf(&h->to_app, "");
    h_free(h);

    /* HTTP/1.0 closes unless it asks to keep alive, and then is told so */
    h = h_new();
    assert_int_equal(h_client(h, "GET /deny HTTP/1.0\r\n\r\n"), RM_HTTP1_FILTER_CLOSE);
    assert_buf(&h->to_client, FORBIDDEN_CLOSE);
    h_free(h);
    h = h_new();
    assert_int_equal(h_client(h, "GET /deny HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    assert_buf(&h->to_client, "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n"
                              "connection: keep-alive\r\n\r\nRBAC: access denied");
    h_free(h);

    /* the closing 403 waits for the response before it; the call that sends it says so */
    h = h_new();
    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /deny HTTP/1.1\r\nConnection: close\r\n\r\n"),
                     0);
    assert_true(rm_http1_filter_client_finished(&h->f));
    assert_buf(&h->to_client, "");
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), RM_HTTP1_FILTER_CLOSE);
    assert_buf(&h->to_client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" FORBIDDEN_CLOSE);
    h_free(h);
}

static void test_allowed_connection_close_ends_requests(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                                 "GET /deny HTTP/1.1\r\nHost: a\r\n\r\n"),
                     0);
    assert_buf(&h->to_app, "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_buf(&h->to_client, "");
    assert_int_equal(h->log.calls, 1);
    assert_true(rm_http1_filter_client_finished(&h->f));
    h_free(h);
}

static const char ws_request[] = "GET /chat HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

static void test_upgrade_allowed_passthrough(void **state)
{
    static const char switching[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    harness_t *h = h_new();
    char buf[1024];

    /* the request and a frame sent before the answer, in one read: the frame is held */
    snprintf(buf, sizeof(buf), "%s\x81\x05hello", ws_request);
    assert_int_equal(h_client(h, buf), 0);
    assert_buf(&h->to_app, ws_request);
    assert_int_equal(rm_http1_filter_passthrough(&h->f), 0);
    assert_int_equal(rm_http1_filter_buffered(&h->f), 7);
    /* 101 and the app's first frame in one read */
    snprintf(buf, sizeof(buf), "%s\x81\x02hi", switching);
    assert_int_equal(h_app(h, buf), 0);
    assert_buf(&h->to_client, buf);
    assert_int_equal(rm_http1_filter_passthrough(&h->f), 1);
    snprintf(buf, sizeof(buf), "%s\x81\x05hello", ws_request);
    assert_buf(&h->to_app, buf);
    /* from now on nothing is parsed or decided */
    assert_int_equal(h_client(h, "GET /deny HTTP/1.1\r\n\r\n"), 0);
    snprintf(buf, sizeof(buf), "%s\x81\x05helloGET /deny HTTP/1.1\r\n\r\n", ws_request);
    assert_buf(&h->to_app, buf);
    assert_int_equal(h->log.calls, 1);
    assert_int_equal(h_app_n(h, "\x00\xff garbage", 10), 0);
    assert_int_equal(h->to_client.len, sizeof(switching) - 1 + 4 + 10);
    h_free(h);
}

static void test_upgrade_answered_before_request_body_ends(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h, "GET /ws HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Content-Length: 4\r\n\r\nab"),
                     0);
    assert_int_equal(h_app(h, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
                     0);
    assert_int_equal(rm_http1_filter_passthrough(&h->f), 0);
    /* the body's end, then the new protocol */
    assert_int_equal(h_client(h, "cdGET /deny HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(rm_http1_filter_passthrough(&h->f), 1);
    assert_buf(&h->to_app, "GET /ws HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Content-Length: 4\r\n\r\nabcdGET /deny HTTP/1.1\r\n\r\n");
    assert_int_equal(h->log.calls, 1);
    h_free(h);
}

static void test_upgrade_refused_keeps_filtering(void **state)
{
    harness_t *h = h_new();
    char buf[1024];

    /* an h2c upgrade the app ignores: what followed it is HTTP/1.1 again and goes through the policy */
    snprintf(buf, sizeof(buf),
             "GET /h HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
             "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
             "GET /deny HTTP/1.1\r\nHost: svc\r\n\r\nGET /fine HTTP/1.1\r\nHost: svc\r\n\r\n");
    assert_int_equal(h_client(h, buf), 0);
    assert_int_equal(h->log.calls, 1);
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 0);
    assert_int_equal(rm_http1_filter_passthrough(&h->f), 0);
    assert_int_equal(h->log.calls, 3);
    assert_buf(&h->to_client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" FORBIDDEN);
    assert_buf(&h->to_app, "GET /h HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                           "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
                           "GET /fine HTTP/1.1\r\nHost: svc\r\n\r\n");
    assert_int_equal(rm_http1_filter_buffered(&h->f), 0);
    h_free(h);
}

static void test_upgrade_denied(void **state)
{
    harness_t *h = h_new();

    assert_int_equal(h_client(h,
                              "GET /deny/ws HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                              "GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n"),
                     0);
    assert_buf(&h->to_client, FORBIDDEN);
    assert_buf(&h->to_app, "GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n");
    assert_int_equal(rm_http1_filter_passthrough(&h->f), 0);
    assert_int_equal(h->log.calls, 2);
    h_free(h);
}

static void test_connect_tunnel(void **state)
{
    harness_t *h = h_new();

    static const char req[] = "CONNECT db.svc:5432 HTTP/1.1\r\nHost: db.svc:5432\r\n\r\n\x00\x01\x02";
    assert_int_equal(h_client_n(h, req, sizeof(req) - 1), 0);
    assert_buf(&h->log.log, "CONNECT db.svc:5432 host=db.svc:5432\n host: [db.svc:5432]\n");
    assert_int_equal(h_app(h, "HTTP/1.1 200 Connection Established\r\n\r\nPGSQL"), 0);
    assert_int_equal(rm_http1_filter_passthrough(&h->f), 1);
    assert_buf(&h->to_client, "HTTP/1.1 200 Connection Established\r\n\r\nPGSQL");
    assert_int_equal(h->to_app.len, strlen("CONNECT db.svc:5432 HTTP/1.1\r\nHost: db.svc:5432\r\n\r\n") + 3);
    assert_memory_equal(h->to_app.base + h->to_app.len - 3, "\x00\x01\x02", 3);
    h_free(h);
}

/* Once its buffers have grown, the filter serves more requests without allocating: they stay where they are. */
static void test_buffers_reused(void **state)
{
    static const char round[] = "POST /a HTTP/1.1\r\nHost: svc\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nhi"
                                "GET /deny HTTP/1.1\r\nHost: svc\r\nX-B: 2\r\n\r\n";
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    harness_t *h = h_new();

    assert_int_equal(h_client(h, round), 0);
    assert_int_equal(h_app(h, resp), 0);
    const void *head = h->f.head.base, *fields = h->f.fields.base, *pending = h->f.pending;
    size_t head_cap = h->f.head.cap, fields_cap = h->f.fields.cap, pending_cap = h->f.pending_cap;
    for (int i = 0; i < 1000; i++) {
        h->to_app.len = h->to_client.len = 0;
        assert_int_equal(h_client(h, round), 0);
        assert_int_equal(h_app(h, resp), 0);
        assert_buf(&h->to_client, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" FORBIDDEN);
    }
    assert_ptr_equal(h->f.head.base, head);
    assert_ptr_equal(h->f.fields.base, fields);
    assert_ptr_equal(h->f.pending, pending);
    assert_int_equal(h->f.head.cap, head_cap);
    assert_int_equal(h->f.fields.cap, fields_cap);
    assert_int_equal(h->f.pending_cap, pending_cap);
    assert_int_equal(h->log.calls, 2002);
    h_free(h);
}

static void test_app_errors(void **state)
{
    harness_t *h = h_new();

    /* not HTTP */
    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(h_app(h, "SSH-2.0-OpenSSH\r\n"), -EPROTO);
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\n\r\n"), -EPROTO);
    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"), -EPROTO);
    h_free(h);

    /* switching protocols nobody asked for must not open a way around the policy */
    h = h_new();
    assert_int_equal(h_client(h, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(h_app(h, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"),
                     -EPROTO);
    assert_int_equal(rm_http1_filter_passthrough(&h->f), 0);
    h_free(h);

    assert_int_equal(rm_http1_filter_init(&(rm_http1_filter_t){0}, NULL, NULL, NULL), -EINVAL);
}

/* Random bytes and mutated requests: every result is one the header allows, and valgrind sees no fault. */
static void test_hostile_input_never_crashes(void **state)
{
    uint8_t buf[512];
    srand(777);
    for (int round = 0; round < 2000; round++) {
        harness_t *h = h_new();
        size_t n = sizeof(mixed_client) - 1 < sizeof(buf) ? sizeof(mixed_client) - 1 : sizeof(buf);
        memcpy(buf, mixed_client, n);
        for (int m = 0; m < 1 + round % 8; m++)
            buf[(size_t)rand() % n] = (uint8_t)rand();
        size_t off = 0;
        while (off < n) {
            size_t piece = 1 + (size_t)rand() % 64;
            piece = piece > n - off ? n - off : piece;
            int ret = h_client_n(h, buf + off, piece);
            assert_true(ret == 0 || ret == RM_HTTP1_FILTER_CLOSE || ret == -EPROTO || ret == -EMSGSIZE);
            ret = h_app_n(h, buf + off, piece);
            assert_true(ret == 0 || ret == RM_HTTP1_FILTER_CLOSE || ret == -EPROTO || ret == -EMSGSIZE);
            off += piece;
        }
        h_free(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_forwards_bytes_unchanged),
        cmocka_unit_test(test_allowed_body_streams),
        cmocka_unit_test(test_deny_answers_403),
        cmocka_unit_test(test_denied_head_gets_no_body),
        cmocka_unit_test(test_pipelined_allow_deny_allow),
        cmocka_unit_test(test_any_split_same_result),
        cmocka_unit_test(test_denied_chunked_body_skipped),
        cmocka_unit_test(test_denied_content_length_body_skipped),
        cmocka_unit_test(test_head_response_has_no_body),
        cmocka_unit_test(test_204_304_have_no_body),
        cmocka_unit_test(test_interim_100_continue_is_not_final),
        cmocka_unit_test(test_denied_expect_continue),
        cmocka_unit_test(test_headers_lowercased_and_split),
        cmocka_unit_test(test_oversized_head_431),
        cmocka_unit_test(test_too_many_headers_431),
        cmocka_unit_test(test_garbage_400),
        cmocka_unit_test(test_obs_fold_400),
        cmocka_unit_test(test_error_answer_waits_its_turn),
        cmocka_unit_test(test_connection_close_on_denied),
        cmocka_unit_test(test_allowed_connection_close_ends_requests),
        cmocka_unit_test(test_upgrade_allowed_passthrough),
        cmocka_unit_test(test_upgrade_answered_before_request_body_ends),
        cmocka_unit_test(test_upgrade_refused_keeps_filtering),
        cmocka_unit_test(test_upgrade_denied),
        cmocka_unit_test(test_connect_tunnel),
        cmocka_unit_test(test_buffers_reused),
        cmocka_unit_test(test_app_errors),
        cmocka_unit_test(test_hostile_input_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
