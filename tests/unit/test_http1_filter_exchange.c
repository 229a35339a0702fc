/* rm_http1_filter: every request the hook saw is reported once when its exchange ends (status, body bytes both ways,
 * the filter's own answers), and the fields the hook sets replace those of the same name in the forwarded head. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http1_filter.h"

#define MAX_RECORDS 32

typedef struct {
    rm_http1_filter_t f;
    rm_bytebuf_t to_app, to_client;
    uint64_t next_cookie;
    const char *set_name[2], *set_value[2]; /* fields the hook sets on allowed requests */
    size_t num_set;
    rm_http_exchange_t records[MAX_RECORDS];
    size_t num_records;
} harness_t;

/* Denies paths starting with /deny; gives each request the cookie 1, 2, 3... */
static rm_http_verdict_t decide(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    harness_t *h = ctx;
    assert_int_equal(out->cookie, 0);
    assert_int_equal(out->num_set, 0);
    out->cookie = ++h->next_cookie;
    for (size_t i = 0; i < h->num_set; i++) {
        out->set[i].name = h->set_name[i];
        out->set[i].name_len = strlen(h->set_name[i]);
        out->set[i].value = h->set_value[i];
        out->set[i].value_len = strlen(h->set_value[i]);
    }
    out->num_set = h->num_set;
    return req->path_len >= 5 && memcmp(req->path, "/deny", 5) == 0 ? RM_HTTP_DENY : RM_HTTP_ALLOW;
}

static void done(void *ctx, const rm_http_exchange_t *ex)
{
    harness_t *h = ctx;
    assert_true(h->num_records < MAX_RECORDS);
    for (size_t i = 0; i < h->num_records; i++)
        assert_true(h->records[i].cookie != ex->cookie); /* once per exchange */
    h->records[h->num_records++] = *ex;
}

static harness_t *h_new(void)
{
    harness_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    assert_int_equal(rm_http1_filter_init(&h->f, decide, done, h), 0);
    return h;
}

static void h_free(harness_t *h)
{
    rm_http1_filter_dispose(&h->f);
    rm_bytebuf_free(&h->to_app);
    rm_bytebuf_free(&h->to_client);
    free(h);
}

static int h_client(harness_t *h, const char *s)
{
    return rm_http1_filter_from_client(&h->f, (const uint8_t *)s, strlen(s), &h->to_app, &h->to_client);
}

static int h_app(harness_t *h, const char *s)
{
    return rm_http1_filter_from_app(&h->f, (const uint8_t *)s, strlen(s), &h->to_app, &h->to_client);
}

/* Feeds the app's bytes one at a time: the reports must not depend on how they are split. */
static int h_app_bytewise(harness_t *h, const char *s)
{
    for (size_t i = 0; s[i] != '\0'; i++) {
        int r = rm_http1_filter_from_app(&h->f, (const uint8_t *)s + i, 1, &h->to_app, &h->to_client);
        if (r != 0)
            return r;
    }
    return 0;
}

static void assert_record(const rm_http_exchange_t *r, uint64_t cookie, unsigned status, uint64_t req_bytes,
                          uint64_t resp_bytes, int by_proxy, int complete)
{
    assert_int_equal(r->cookie, cookie);
    assert_int_equal(r->stream_id, 0);
    assert_int_equal(r->status, status);
    assert_int_equal(r->grpc_status, -1);
    assert_int_equal(r->request_bytes, req_bytes);
    assert_int_equal(r->response_bytes, resp_bytes);
    assert_int_equal(r->answered_by_proxy, by_proxy);
    assert_int_equal(r->complete, complete);
}

static void assert_buf(const rm_bytebuf_t *b, const char *expect)
{
    assert_int_equal(b->len, strlen(expect));
    assert_memory_equal(b->base, expect, b->len);
}

/* Pipelined requests, answered in order with each kind of framing; 1xx is not final; HEAD, 204, 304 have no body. */
static void test_pipelined_statuses_and_bytes(void **state)
{
    (void)state;
    harness_t *h = h_new();
    assert_int_equal(h_client(h, "GET /a HTTP/1.1\r\nHost: s\r\n\r\n"
                                 "POST /b HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"
                                 "PUT /c HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nT: 1\r\n\r\n"
                                 "HEAD /d HTTP/1.1\r\nHost: s\r\n\r\n"
                                 "GET /e HTTP/1.1\r\nHost: s\r\n\r\n"
                                 "GET /f HTTP/1.1\r\nHost: s\r\n\r\n"),
                     0);
    assert_int_equal(h->num_records, 0); /* nothing has been answered yet */
    assert_int_equal(h_app_bytewise(h, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"), 0);
    assert_int_equal(h->num_records, 1);
    assert_int_equal(h_app_bytewise(h, "HTTP/1.1 100 Continue\r\n\r\n"
                                       "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       "a\r\n0123456789\r\n2\r\nab\r\n0\r\n\r\n"),
                     0);
    assert_int_equal(h->num_records, 2);
    assert_int_equal(h_app(h, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
                              "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" /* HEAD: no body follows */
                              "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
                              "HTTP/1.1 304 Not Modified\r\n\r\n"),
                     0);
    assert_int_equal(h->num_records, 6);
    assert_record(&h->records[0], 1, 200, 0, 3, 0, 1);
    assert_record(&h->records[1], 2, 201, 5, 12, 0, 1);
    assert_record(&h->records[2], 3, 500, 7, 0, 0, 1);
    assert_record(&h->records[3], 4, 200, 0, 0, 0, 1);
    assert_record(&h->records[4], 5, 204, 0, 0, 0, 1);
    assert_record(&h->records[5], 6, 304, 0, 0, 0, 1);
    rm_http1_filter_end(&h->f, 1);
    assert_int_equal(h->num_records, 6); /* nothing was left open */
    h_free(h);
}

/* The filter's own answers are reported as such, in their turn: 403 (no body for HEAD), 400 for a path it refuses. */
static void test_denied_reported_as_answered_by_proxy(void **state)
{
    (void)state;
    harness_t *h = h_new();
    assert_int_equal(h_client(h, "GET /a HTTP/1.1\r\nHost: s\r\n\r\n"
                                 "POST /deny HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\n\r\nbody"
                                 "HEAD /deny/h HTTP/1.1\r\nHost: s\r\n\r\n"),
                     0);
    assert_int_equal(h->num_records, 0); /* the 403s wait for the app's answer to /a */
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 0);
    assert_int_equal(h->num_records, 3);
    assert_record(&h->records[0], 1, 200, 0, 2, 0, 1);
    assert_record(&h->records[1], 2, 403, 4, 19, 1, 1); /* the dropped body still counts as received */
    assert_record(&h->records[2], 3, 403, 0, 0, 1, 1);
    assert_int_equal(h_client(h, "GET /x%00y HTTP/1.1\r\nHost: s\r\n\r\n"), -EPROTO);
    assert_int_equal(h->num_records, 4);
    assert_record(&h->records[3], 4, 400, 0, 0, 1, 1);
    rm_http1_filter_end(&h->f, 0);
    assert_int_equal(h->num_records, 4);
    h_free(h);
}

/* A request refused before the hook (431, malformed) is not an exchange the hook saw: nothing is reported. */
static void test_refused_before_hook_not_reported(void **state)
{
    (void)state;
    harness_t *h = h_new();
    assert_int_equal(h_client(h, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), -EPROTO);
    rm_http1_filter_end(&h->f, 1);
    assert_int_equal(h->next_cookie, 0);
    assert_int_equal(h->num_records, 0);
    h_free(h);
}

/* The connection ends in the middle of a response: the exchange is reported incomplete, once, with what came. */
static void test_close_mid_response(void **state)
{
    (void)state;
    harness_t *h = h_new();
    assert_int_equal(h_client(h, "GET /a HTTP/1.1\r\nHost: s\r\n\r\nGET /b HTTP/1.1\r\nHost: s\r\n\r\n"
                                 "GET /deny HTTP/1.1\r\nHost: s\r\n\r\n"),
                     0);
    assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"), 0);
    assert_int_equal(h->num_records, 0);
    rm_http1_filter_end(&h->f, 1); /* the app's EOF does not complete a Content-Length body */
    assert_int_equal(h->num_records, 3);
    assert_record(&h->records[0], 1, 200, 0, 5, 0, 0);
    assert_record(&h->records[1], 2, 0, 0, 0, 0, 0);
    assert_record(&h->records[2], 3, 0, 0, 0, 1, 0); /* the 403 never went out */
    rm_http1_filter_end(&h->f, 1);
    (void)h_app(h, "56789");             /* whatever it returns, nothing more is reported */
    assert_int_equal(h->num_records, 3); /* exactly once */
    h_free(h);
}

/* A response without length framing ends with the app's sending: complete when the app ended, not when the
 * connection was cut. */
static void test_read_until_close(void **state)
{
    (void)state;
    for (int app_ended = 0; app_ended <= 1; app_ended++) {
        harness_t *h = h_new();
        assert_int_equal(h_client(h, "GET /a HTTP/1.1\r\nHost: s\r\n\r\n"), 0);
        assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"), 0);
        assert_int_equal(h->num_records, 0);
        rm_http1_filter_end(&h->f, app_ended);
        assert_int_equal(h->num_records, 1);
        assert_record(&h->records[0], 1, 200, 0, 13, 0, app_ended);
        h_free(h);
    }
}

/* An allowed upgrade is reported when the app answers it; the filter then steps aside. */
static void test_upgrade_reported_when_answered(void **state)
{
    (void)state;
    harness_t *h = h_new();
    assert_int_equal(h_client(h, "GET /ws HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
                     0);
    assert_int_equal(h_app(h, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
                     0);
    assert_int_equal(h->num_records, 1);
    assert_record(&h->records[0], 1, 101, 0, 0, 0, 1);
    assert_int_equal(h_client(h, "GET /not-a-request HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(h_app(h, "anything"), 0);
    assert_true(rm_http1_filter_passthrough(&h->f));
    rm_http1_filter_end(&h->f, 1);
    assert_int_equal(h->num_records, 1);
    assert_int_equal(h->next_cookie, 1);
    h_free(h);
}

/* An h2c upgrade and a CONNECT tunnel: each reported when the app answers it; the bytes after it pass, unparsed. */
static void test_h2c_upgrade_and_connect_reported(void **state)
{
    (void)state;
    harness_t *h = h_new();
    assert_int_equal(h_client(h, "GET / HTTP/1.1\r\nHost: s\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                                 "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"),
                     0);
    assert_int_equal(h_app(h, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                              "\x00\x00\x00\x04\x00\x00\x00\x00\x00"),
                     0);
    assert_int_equal(h->num_records, 1);
    assert_record(&h->records[0], 1, 101, 0, 0, 0, 1);
    assert_true(rm_http1_filter_passthrough(&h->f));
    h_free(h);

    h = h_new();
    assert_int_equal(h_client(h, "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nstartup"), 0);
    assert_int_equal(h->num_records, 0);
    assert_int_equal(h_app(h, "HTTP/1.1 200 Connection Established\r\n\r\nauth-ok"), 0);
    assert_int_equal(h->num_records, 1);
    assert_record(&h->records[0], 1, 200, 0, 0, 0, 1);
    assert_buf(&h->to_app, "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nstartup");
    rm_http1_filter_end(&h->f, 1);
    assert_int_equal(h->num_records, 1);
    h_free(h);
}

/* The hook's fields replace those of the same name (whatever their case) and are added when absent; the rest of the
 * head, the body and the next request pass as they were. */
static void test_set_headers_replace_and_add(void **state)
{
    (void)state;
    harness_t *h = h_new();
    h->set_name[0] = "traceparent";
    h->set_value[0] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    h->set_name[1] = "x-added";
    h->set_value[1] = "yes";
    h->num_set = 2;
    assert_int_equal(h_client(h, "POST /a?q=1 HTTP/1.1\r\nHost: s\r\nTraceParent: old\r\nContent-Length: 2\r\n"
                                 "X-Other: keep\r\ntraceparent: old2\r\n\r\nhi"
                                 "GET /b HTTP/1.1\nHost: s\n\n"),
                     0);
    assert_buf(&h->to_app,
               "POST /a?q=1 HTTP/1.1\r\nHost: s\r\nContent-Length: 2\r\nX-Other: keep\r\n"
               "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nx-added: yes\r\n\r\nhi"
               "GET /b HTTP/1.1\nHost: s\n"
               "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nx-added: yes\r\n\n");
    h_free(h);

    /* a field that could split the head is never written */
    h = h_new();
    h->set_name[0] = "x-bad";
    h->set_value[0] = "a\r\nInjected: 1";
    h->set_name[1] = "Upper";
    h->set_value[1] = "v";
    h->num_set = 2;
    assert_int_equal(h_client(h, "GET / HTTP/1.1\r\nHost: s\r\n\r\n"), 0);
    assert_buf(&h->to_app, "GET / HTTP/1.1\r\nHost: s\r\n\r\n");
    h_free(h);
}

/* Denied requests never reach the app, set fields or not. */
static void test_set_headers_not_on_denied(void **state)
{
    (void)state;
    harness_t *h = h_new();
    h->set_name[0] = "traceparent";
    h->set_value[0] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    h->num_set = 1;
    assert_int_equal(h_client(h, "GET /deny HTTP/1.1\r\nHost: s\r\n\r\n"), 0);
    assert_int_equal(h->to_app.len, 0);
    assert_int_equal(h->num_records, 1);
    assert_record(&h->records[0], 1, 403, 0, 19, 1, 1);
    h_free(h);
}

/* Many exchanges on one connection: the queue is reused, not grown per request. */
static void test_many_exchanges_reuse_queue(void **state)
{
    (void)state;
    harness_t *h = h_new();
    size_t cap = 0;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(h_client(h, "GET /a HTTP/1.1\r\nHost: s\r\n\r\n"), 0);
        assert_int_equal(h_app(h, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"), 0);
        assert_int_equal(h->num_records, 1);
        assert_record(&h->records[0], (uint64_t)i + 1, 200, 0, 1, 0, 1);
        h->num_records = 0;
        if (i == 0)
            cap = h->f.pending_cap;
        assert_int_equal(h->f.pending_cap, cap);
    }
    h_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_statuses_and_bytes),
        cmocka_unit_test(test_denied_reported_as_answered_by_proxy),
        cmocka_unit_test(test_refused_before_hook_not_reported),
        cmocka_unit_test(test_close_mid_response),
        cmocka_unit_test(test_read_until_close),
        cmocka_unit_test(test_upgrade_reported_when_answered),
        cmocka_unit_test(test_h2c_upgrade_and_connect_reported),
        cmocka_unit_test(test_set_headers_replace_and_add),
        cmocka_unit_test(test_set_headers_not_on_denied),
        cmocka_unit_test(test_many_exchanges_reuse_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
