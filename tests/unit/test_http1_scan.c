/* The observe-mode response scanner (http1_scan.h) and the filter's fast path over it (rm_http1_filter_set_observe):
 * the scanner takes only the plainest response heads and refuses every framing it is not sure of, and a filter in
 * observe mode passes on, reports and returns exactly what one without it does, however the app's bytes are split. */
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
#include "http1_scan.h"

#define NGINX_HEAD                                                                                                     \
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 20:00:00 GMT\r\nContent-Type: text/plain\r\n"   \
    "Content-Length: 5\r\nConnection: keep-alive\r\n\r\n"

static int scan(const char *s, rm_http1_resp_head_t *out)
{
    return rm_http1_scan_response_head((const uint8_t *)s, strlen(s), out);
}

static void test_scan_plain_head(void **state)
{
    (void)state;
    rm_http1_resp_head_t h;
    assert_int_equal(scan(NGINX_HEAD "hello", &h), 1);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.content_length, 5);
    assert_int_equal(h.head_len, strlen(NGINX_HEAD));
    assert_int_equal(scan("HTTP/1.1 503 \r\ncontent-length:   0  \r\n\r\n", &h), 1);
    assert_int_equal(h.status, 503);
    assert_int_equal(h.content_length, 0);
    assert_int_equal(scan("HTTP/1.1 404 Not Found\r\nX-A: \xc3\xa9\t v\r\nCONNECTION: Keep-Alive\r\n"
                          "Content-Length: 123456789012345\r\n\r\n",
                          &h),
                     1);
    assert_int_equal(h.content_length, 123456789012345ULL);
    /* every proper prefix is not a whole head */
    for (size_t n = 0; n < strlen(NGINX_HEAD); n++)
        assert_int_equal(rm_http1_scan_response_head((const uint8_t *)NGINX_HEAD, n, &h), 0);
}

/* Everything whose framing is not the plain one goes to the full parser. */
static void test_scan_refuses_other_framing(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "HTTP/1.1 100 Continue\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
        "HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",                                                    /* until the app closes */
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",                      /* chunked */
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n", /* TE and CL */
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n",          /* duplicate CL */
        "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 5\t\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length:\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 1234567890123456\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length : 5\r\n\r\n",                /* SP before the colon */
        "HTTP/1.1 200 OK\r\nx-a: 1\r\n b\r\ncontent-length: 5\r\n\r\n", /* obs-fold */
        "HTTP/1.1 200 OK\r\n content-length: 5\r\n\r\n",                /* whitespace before the first field */
        "HTTP/1.1 200 OK\ncontent-length: 5\r\n\r\n",                   /* bare LF */
        "HTTP/1.1 200 OK\r\ncontent-length: 5\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\n",
        "HTTP/1.1 200 OK\r\nx-a: a\rb\r\ncontent-length: 5\r\n\r\n", /* bare CR */
        "HTTP/1.1 200 OK\r\nx-a: a\x01\r\ncontent-length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: keep-alive, upgrade\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nproxy-connection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx\r\ncontent-length: 5\r\n\r\n", /* no colon */
        "HTTP/1.1 200 OK\r\n: v\r\ncontent-length: 5\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
        "HTTP/1.1 2000 OK\r\ncontent-length: 5\r\n\r\n",
        "HTTP/1.1 200\r\ncontent-length: 5\r\n\r\n",
        /* http_parser notes a Transfer-Encoding as soon as a name starts with one, and then refuses the length */
        "HTTP/1.1 200 OK\r\nTransfer-Encodingx: a\r\ncontent-length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding-id: 1\r\n\r\n",
    };
    rm_http1_resp_head_t h;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (scan(refused[i], &h) != 0)
            fail_msg("the scanner took case %zu: %s", i, refused[i]);
    }
    /* a head longer than the scanner looks */
    size_t big = RM_HTTP1_SCAN_MAX_HEAD + 64;
    char *s = malloc(big + 1);
    assert_non_null(s);
    memset(s, 'a', big);
    memcpy(s, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-long: ", 44);
    memcpy(s + big - 4, "\r\n\r\n", 4);
    s[big] = 0;
    assert_int_equal(scan(s, &h), 0);
    free(s);
}

/* The token table against RFC 9110 5.6.2's list, every byte. */
static void test_tchar_every_byte(void **state)
{
    (void)state;
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (unsigned c = 0; c < 256; c++) {
        int want = c != 0 && memchr(tchar, (int)c, sizeof(tchar) - 1) != NULL;
        if (rm_http1_is_tchar((uint8_t)c) != want)
            fail_msg("byte 0x%02x: %d", c, !want);
    }
}

/* Every byte at every offset of a reason phrase, a field name, a field value and a request target (the scanner reads
 * values eight bytes at a time and classes bytes from a table): taken exactly when RFC 9110 allows the byte there,
 * and names and keep-alive told apart from every byte that differs from them but in case. */
static int value_byte(unsigned c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* buf = a, then v[0, n), then b; returns the length */
static size_t join3(char *buf, const char *a, const char *v, size_t n, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    memcpy(buf, a, la);
    memcpy(buf + la, v, n);
    memcpy(buf + la + n, b, lb);
    return la + n + lb;
}

static void test_scan_every_byte_everywhere(void **state)
{
    (void)state;
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    rm_http1_resp_head_t h;
    rm_http1_req_head_t rh;
    rm_http1_scan_field_t fields[8];
    char buf[256];
    for (unsigned c = 0; c < 256; c++) {
        int tch = c != 0 && memchr(tchar, (int)c, sizeof(tchar) - 1) != NULL;
        for (int at = 0; at < 17; at++) {
            char v[17];
            memset(v, 'v', 17);
            v[at] = (char)c;
            /* in a field value (the value's first byte: leading OWS is fine too) */
            size_t n = join3(buf, "HTTP/1.1 200 OK\r\nx-a: ", v, 17, "\r\ncontent-length: 0\r\n\r\n");
            int got = rm_http1_scan_response_head((const uint8_t *)buf, n, &h);
            if (got != value_byte(c))
                fail_msg("value byte 0x%02x at %d: %d", c, at, got);
            /* in a reason phrase */
            n = join3(buf, "HTTP/1.1 200 ", v, 17, "\r\ncontent-length: 0\r\n\r\n");
            got = rm_http1_scan_response_head((const uint8_t *)buf, n, &h);
            if (got != value_byte(c))
                fail_msg("reason byte 0x%02x at %d: %d", c, at, got);
            /* in a request's field value */
            n = join3(buf, "GET / HTTP/1.1\r\nhost: h\r\nx-a: ", v, 17, "\r\n\r\n");
            got = rm_http1_scan_request_head((const uint8_t *)buf, n, &rh, fields, 8);
            if (got != value_byte(c))
                fail_msg("request value byte 0x%02x at %d: %d", c, at, got);
        }
        if (c == 0)
            continue; /* a NUL ends the strings below */
        /* in a field name (a colon there ends the name: "x" with the value "a: v") */
        int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nx%ca: v\r\ncontent-length: 0\r\n\r\n", (int)c);
        int got = rm_http1_scan_response_head((const uint8_t *)buf, (size_t)n, &h);
        if (got != (tch || c == ':'))
            fail_msg("name byte 0x%02x: %d", c, got);
        /* in a request target */
        n = snprintf(buf, sizeof(buf), "GET /a%cb HTTP/1.1\r\nhost: h\r\n\r\n", (int)c);
        got = rm_http1_scan_request_head((const uint8_t *)buf, (size_t)n, &rh, fields, 8);
        if (got != (c > 0x20 && c < 0x7f && c != '#'))
            fail_msg("target byte 0x%02x: %d", c, got);
        /* the last byte of "content-length" and of "keep-alive": only the letter, in either case, is it */
        n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\ncontent-lengt%c: 0\r\n\r\n", (int)c);
        got = rm_http1_scan_response_head((const uint8_t *)buf, (size_t)n, &h);
        if (got != (c == 'h' || c == 'H'))
            fail_msg("content-lengt + 0x%02x: %d", c, got);
        n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nconnection: keep-aliv%c\r\ncontent-length: 0\r\n\r\n",
                     (int)c);
        got = rm_http1_scan_response_head((const uint8_t *)buf, (size_t)n, &h);
        if (got != (c == 'e' || c == 'E'))
            fail_msg("keep-aliv + 0x%02x: %d", c, got);
        /* and the first byte of a name of eight bytes or more, compared a word at a time */
        n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%content-length: 0\r\ncontent-length: 0\r\n\r\n", (int)c);
        got = rm_http1_scan_response_head((const uint8_t *)buf, (size_t)n, &h);
        if (got != (tch && c != 'c' && c != 'C'))
            fail_msg("0x%02x + ontent-length: %d", c, got);
    }
}

/* Twin filters, one in observe mode, fed the same bytes. */
#define MAX_RECORDS 16
typedef struct {
    rm_http1_filter_t f;
    rm_bytebuf_t to_app, to_client;
    uint64_t next_cookie;
    rm_http_exchange_t records[MAX_RECORDS];
    size_t num_records;
    rm_bytebuf_t seen; /* what the hook was given: method, path, host and fields of each request */
} side_t;

static void seen_add(side_t *s, const char *p, size_t n)
{
    assert_int_equal(rm_bytebuf_append(&s->seen, p, n), 0);
    assert_int_equal(rm_bytebuf_append(&s->seen, "|", 1), 0);
}

static rm_http_verdict_t allow(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    side_t *s = ctx;
    seen_add(s, req->method, req->method_len);
    seen_add(s, req->path, req->path_len);
    seen_add(s, req->host != NULL ? req->host : "(none)", req->host != NULL ? req->host_len : 6);
    for (size_t i = 0; i < req->num_headers; i++) {
        seen_add(s, req->headers[i].name, req->headers[i].name_len);
        seen_add(s, req->headers[i].value, req->headers[i].value_len);
    }
    seen_add(s, req->path_error != NULL ? "error" : "ok", req->path_error != NULL ? 5 : 2);
    out->cookie = ++s->next_cookie;
    return RM_HTTP_ALLOW;
}

static void done(void *ctx, const rm_http_exchange_t *ex)
{
    side_t *s = ctx;
    assert_true(s->num_records < MAX_RECORDS);
    s->records[s->num_records++] = *ex;
}

typedef struct {
    const char *name, *requests, *responses;
    int app_ends;   /* the app closes after its bytes */
    int fast_heads; /* the scanner must have framed at least one response */
} scenario_t;

/* Runs `sc` through a filter, the app's bytes split at `split`; returns the filter's last result. */
static int run(side_t *s, const scenario_t *sc, int observe, size_t split, int *fast_seen)
{
    const uint8_t *r = (const uint8_t *)sc->responses;
    size_t n = strlen(sc->responses);
    int ret;

    memset(s, 0, sizeof(*s));
    assert_int_equal(rm_http1_filter_init(&s->f, allow, done, s), 0);
    if (observe)
        rm_http1_filter_set_observe(&s->f);
    /* the requests cut at the same place (modulo their length), so that heads split across reads are tried too */
    size_t rn = strlen(sc->requests), rsplit = split % (rn + 1);
    ret = rm_http1_filter_from_client(&s->f, (const uint8_t *)sc->requests, rsplit, &s->to_app, &s->to_client);
    ret = rm_http1_filter_from_client(&s->f, (const uint8_t *)sc->requests + rsplit, rn - rsplit, &s->to_app,
                                      &s->to_client);
    if (split > n)
        split = n;
    (void)ret;
    ret = rm_http1_filter_from_app(&s->f, r, split, &s->to_app, &s->to_client);
    *fast_seen |= s->f.resp_fast;
    ret = rm_http1_filter_from_app(&s->f, r + split, n - split, &s->to_app, &s->to_client);
    rm_http1_filter_end(&s->f, sc->app_ends);
    return ret;
}

static void side_free(side_t *s)
{
    rm_http1_filter_dispose(&s->f);
    rm_bytebuf_free(&s->to_app);
    rm_bytebuf_free(&s->to_client);
    rm_bytebuf_free(&s->seen);
}

static void assert_same(const side_t *a, const side_t *b, const char *name, size_t split)
{
    if (a->to_client.len != b->to_client.len || a->to_app.len != b->to_app.len ||
        (a->to_client.len != 0 && memcmp(a->to_client.base, b->to_client.base, a->to_client.len) != 0) ||
        (a->to_app.len != 0 && memcmp(a->to_app.base, b->to_app.base, a->to_app.len) != 0))
        fail_msg("%s, split at %zu: the bytes passed on differ", name, split);
    if (a->seen.len != b->seen.len || (a->seen.len != 0 && memcmp(a->seen.base, b->seen.base, a->seen.len) != 0))
        fail_msg("%s, split at %zu: the hook was given different requests: %.*s against %.*s", name, split,
                 (int)a->seen.len, (const char *)a->seen.base, (int)b->seen.len, (const char *)b->seen.base);
    if (a->num_records != b->num_records)
        fail_msg("%s, split at %zu: %zu exchanges against %zu", name, split, a->num_records, b->num_records);
    for (size_t i = 0; i < a->num_records; i++) {
        const rm_http_exchange_t *x = a->records + i, *y = b->records + i;
        if (x->cookie != y->cookie || x->status != y->status || x->request_bytes != y->request_bytes ||
            x->response_bytes != y->response_bytes || x->complete != y->complete ||
            x->answered_by_proxy != y->answered_by_proxy)
            fail_msg("%s, split at %zu: exchange %zu differs (status %u/%u, bytes %llu/%llu, complete %u/%u)", name,
                     split, i, x->status, y->status, (unsigned long long)x->response_bytes,
                     (unsigned long long)y->response_bytes, x->complete, y->complete);
    }
}

static void test_observe_same_as_parser(void **state)
{
    (void)state;
    static const scenario_t scenarios[] = {
        {"pipelined", "GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
         NGINX_HEAD "hello"
                    "HTTP/1.1 404 NF\r\ncontent-length: 0\r\n\r\n"
                    "HTTP/1.1 500 E\r\ncontent-length: 3\r\n\r\nabc",
         1, 1},
        {"interim then final", "POST /a HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nhi",
         "HTTP/1.1 100 Continue\r\n\r\n" NGINX_HEAD "hello", 1, 1},
        {"head request", "HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
         "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n" NGINX_HEAD "hello", 1, 1},
        {"chunked then plain", "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
         "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" NGINX_HEAD "hello", 1, 1},
        {"close then more bytes", "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
         "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx" NGINX_HEAD "hello", 1, 0},
        {"duplicate length", "GET /a HTTP/1.1\r\n\r\n",
         "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxy", 1, 0},
        {"length and chunked", "GET /a HTTP/1.1\r\n\r\n",
         "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 1, 0},
        {"obs-fold", "GET /a HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nx-a: 1\r\n 2\r\ncontent-length: 1\r\n\r\nx", 1, 0},
        {"no request", "", NGINX_HEAD "hello", 1, 0},
        {"more responses than requests", "GET /a HTTP/1.1\r\n\r\n", NGINX_HEAD "hello" NGINX_HEAD "hello", 1, 1},
        {"cut in the body", "GET /a HTTP/1.1\r\n\r\n", NGINX_HEAD "hel", 1, 1},
        {"until close", "GET /a HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\nabcdef", 1, 0},
        {"upgrade refused",
         "GET /a HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
         NGINX_HEAD "hello" NGINX_HEAD "hello", 1, 1},
        {"upgrade switched", "GET /a HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nraw",
         "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n" NGINX_HEAD "hello", 1,
         0},
        {"connect", "CONNECT h:443 HTTP/1.1\r\nhost: h:443\r\n\r\n",
         "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n" NGINX_HEAD, 1, 0},
        {"unasked 101", "GET /a HTTP/1.1\r\n\r\n",
         NGINX_HEAD "hello"
                    "HTTP/1.1 101 S\r\nupgrade: x\r\n\r\n",
         1, 1},
        {"junk after a response", "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
         NGINX_HEAD "hello"
                    "HTTP/1.1 20",
         1, 1},
        {"request bodies and fields",
         "POST /p?q=1 HTTP/1.1\r\nHost:  orders \r\nX-Empty:\r\nX-Ws: \t a b \t\r\n"
         "Content-Length: 4\r\n\r\nbodyPUT /u HTTP/1.1\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n"
         "DELETE //a/../b HTTP/1.1\r\nUser-Agent: t\r\n\r\n",
         NGINX_HEAD "hello" NGINX_HEAD "hello" NGINX_HEAD "hello", 1, 1},
        {"chunked request",
         "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /n HTTP/1.1\r\n\r\n",
         NGINX_HEAD "hello" NGINX_HEAD "hello", 1, 1},
        {"request asking to close", "GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
         NGINX_HEAD "hello", 1, 1},
        {"http/1.0 request", "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.1\r\n\r\n", NGINX_HEAD "hello", 1, 1},
        {"obs-fold request", "GET /a HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n", NGINX_HEAD "hello", 1, 0},
        {"two hosts", "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", NGINX_HEAD "hello", 1, 0},
        {"length and chunked request",
         "POST /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n",
         NGINX_HEAD "hello", 1, 0},
        {"duplicate request length", "POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         NGINX_HEAD "hello", 1, 0},
        {"bare LF request", "GET /a HTTP/1.1\nHost: a\n\nGET /b HTTP/1.1\r\n\r\n", NGINX_HEAD "hello", 1, 1},
        {"space in a field name", "GET /a HTTP/1.1\r\nContent-Length : 5\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
         NGINX_HEAD "hello", 1, 0},
        {"nul in the target", "GET /a%00b HTTP/1.1\r\n\r\n", NGINX_HEAD "hello", 1, 0},
        {"fragment and odd target", "GET /a#f HTTP/1.1\r\n\r\nGET * HTTP/1.1\r\n\r\nOPTIONS / HTTP/1.1\r\n\r\n",
         NGINX_HEAD "hello" NGINX_HEAD "hello" NGINX_HEAD "hello", 1, 1},
        {"bad request after a response", "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
         NGINX_HEAD "hello", 1, 1},
        /* a name that starts with "transfer-encoding" is one for http_parser (found by fuzz_http1_scan) */
        {"transfer-encoding prefix in a pipelined request",
         "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\ntransfer-encodingr-Agent: t/1\r\n\r\n"
         "MHTTP/1.1 200 OK\r\n",
         NGINX_HEAD "hello", 1, 1},
        {"transfer-encoding prefix and length in a request",
         "POST /a HTTP/1.1\r\nTransfer-Encoding-X: 1\r\nContent-Length: 1\r\n\r\nx", NGINX_HEAD "hello", 1, 0},
        {"transfer-encoding prefix and chunked in a request",
         "POST /a HTTP/1.1\r\nTransfer-Encodings: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
         "GET /b HTTP/1.1\r\n\r\n",
         NGINX_HEAD "hello" NGINX_HEAD "hello", 1, 1},
        {"transfer-encoding prefix in a response", "GET /a HTTP/1.1\r\n\r\n",
         "HTTP/1.1 200 OK\r\nTransfer-Encodingx: a\r\ncontent-length: 1\r\n\r\nx", 1, 0},
    };
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        const scenario_t *sc = scenarios + i;
        int fast_seen = 0;
        for (size_t split = 0; split <= strlen(sc->responses); split++) {
            side_t *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
            int unused = 0;
            assert_non_null(a);
            assert_non_null(b);
            int ra = run(a, sc, 0, split, &unused), rb = run(b, sc, 1, split, &fast_seen);
            if (ra != rb)
                fail_msg("%s, split at %zu: result %d against %d", sc->name, split, ra, rb);
            assert_same(a, b, sc->name, split);
            side_free(a);
            side_free(b);
            free(a);
            free(b);
        }
        if (sc->fast_heads && !fast_seen)
            fail_msg("%s: the scanner never framed a response", sc->name);
    }
}

/* The fast path is taken where it can be: a request or response framed by the scanner leaves the parser untouched. */
static void test_observe_skips_parser(void **state)
{
    (void)state;
    side_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(rm_http1_filter_init(&s->f, allow, done, s), 0);
    rm_http1_filter_set_observe(&s->f);
    static const char req[] = "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", resp[] = NGINX_HEAD "he";
    assert_int_equal(rm_http1_filter_from_client(&s->f, (const uint8_t *)req, strlen(req), &s->to_app, &s->to_client),
                     0);
    assert_int_equal(rm_http1_filter_from_app(&s->f, (const uint8_t *)resp, strlen(resp), &s->to_app, &s->to_client),
                     0);
    assert_int_equal(s->f.req_parsed, 0);
    assert_int_equal(s->f.req_parser.nread, 0); /* http_parser saw neither request */
    assert_int_equal(s->to_app.len, strlen(req));
    assert_int_equal(s->f.resp_fast, 1);
    assert_int_equal(s->f.resp_parsed, 0);
    assert_int_equal(s->f.resp_left, 3);
    assert_int_equal(s->f.resp_parser.nread, 0); /* http_parser saw none of it */
    assert_int_equal(rm_http1_filter_from_app(&s->f, (const uint8_t *)"llo", 3, &s->to_app, &s->to_client), 0);
    assert_int_equal(s->num_records, 1);
    assert_int_equal(s->records[0].status, 200);
    assert_int_equal(s->records[0].response_bytes, 5);
    assert_int_equal(s->records[0].complete, 1);
    assert_int_equal(s->f.resp_fast, 0);
    side_free(s);
    free(s);
}

/* A request with a field whose name only starts with "transfer-encoding" ("Transfer-Encodingx") and no chunked
 * coding: http_parser takes the field for a Transfer-Encoding and refuses the request once its head is complete. The
 * filter refuses it first, with a 400 and before any of it reaches the app, with or without observe mode; the
 * requests before it are forwarded. */
static void test_transfer_encoding_prefix_refused(void **state)
{
    (void)state;
    static const char first[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char req[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nTransfer-Encodingx: t\r\n\r\n";
    for (int observe = 0; observe != 2; observe++) {
        side_t *s = calloc(1, sizeof(*s));
        assert_non_null(s);
        assert_int_equal(rm_http1_filter_init(&s->f, allow, done, s), 0);
        if (observe)
            rm_http1_filter_set_observe(&s->f);
        assert_int_equal(
            rm_http1_filter_from_client(&s->f, (const uint8_t *)req, strlen(req), &s->to_app, &s->to_client), 0);
        assert_int_equal(s->to_app.len, strlen(first)); /* only the first request */
        assert_memory_equal(s->to_app.base, first, strlen(first));
        assert_int_equal(s->next_cookie, 1);   /* the hook saw only the first */
        assert_int_equal(s->to_client.len, 0); /* the 400 waits for the first answer */
        assert_int_equal(rm_http1_filter_from_app(&s->f, (const uint8_t *)NGINX_HEAD "hello",
                                                  strlen(NGINX_HEAD "hello"), &s->to_app, &s->to_client),
                         -EPROTO);
        assert_true(s->to_client.len > strlen(NGINX_HEAD "hello") + 12);
        assert_memory_equal(s->to_client.base + strlen(NGINX_HEAD "hello"), "HTTP/1.1 400", 12);
        assert_int_equal(s->num_records, 1); /* the refused request never reached the hook: nothing to report */
        assert_int_equal(s->records[0].status, 200);
        side_free(s);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tchar_every_byte),
        cmocka_unit_test(test_scan_plain_head),
        cmocka_unit_test(test_scan_every_byte_everywhere),
        cmocka_unit_test(test_scan_refuses_other_framing),
        cmocka_unit_test(test_observe_same_as_parser),
        cmocka_unit_test(test_observe_skips_parser),
        cmocka_unit_test(test_transfer_encoding_prefix_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
