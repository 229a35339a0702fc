/* The HTTP/2 session of the request path (sidecar/h2_session.h), a client and a server session joined in memory:
 * a request body larger than the flow-control windows crosses whole, a reader that does not consume stops the
 * sender at the window (and resumes it), trailers arrive, the peer's stream limit and GOAWAY stop new streams while
 * the open ones finish, an oversized header block resets only its stream, PING is answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h2_session.h"

#define H(n, v)                                                                                                        \
    {                                                                                                                  \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                                             \
    }
#define MAX_STREAMS 8

typedef struct st_stream_t {
    int32_t sid;
    uint8_t used, got_end, closed;
    uint32_t close_code;
    size_t body_bytes;
    uint64_t body_sum;
    char path[64];
    int status;
    char grpc_status[8];
    rm_h2s_body_t out;
} stream_t;

typedef struct st_peer_t {
    rm_h2s_t *s;
    int server;
    int consume; /* consume received bytes at once */
    stream_t streams[MAX_STREAMS];
    size_t unconsumed[MAX_STREAMS];
} peer_t;

static const rm_http_header_t resp_trailers[] = {H("grpc-status", "0")};
static const uint8_t ok_body[] = "ok";

static stream_t *stream_of(peer_t *p, void *stream_data)
{
    (void)p;
    return stream_data;
}

static void respond(peer_t *p, stream_t *st)
{
    static const rm_http_header_t head[] = {H(":status", "200"), H("content-type", "application/grpc")};
    assert_int_equal(rm_h2s_respond(p->s, st->sid, head, 2, &st->out), 0);
    assert_int_equal(rm_h2s_body_write(p->s, st->sid, &st->out, ok_body, 2), 2);
    assert_int_equal(rm_h2s_body_end(p->s, st->sid, &st->out, resp_trailers, 1), 0);
}

static int on_headers(rm_h2s_t *s, int32_t sid, void *stream_data, const rm_http_header_t *h, size_t n, int end)
{
    peer_t *p = rm_h2s_owner(s);
    stream_t *st = stream_of(p, stream_data);
    if (st == NULL) { /* server: a new request */
        size_t i = 0;
        while (i < MAX_STREAMS - 1 && p->streams[i].used)
            i++;
        assert_false(p->streams[i].used);
        st = &p->streams[i];
        memset(st, 0, sizeof(*st));
        st->used = 1;
        st->sid = sid;
        assert_int_equal(rm_h2s_set_stream_data(s, sid, st), 0);
    }
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == 5 && memcmp(h[i].name, ":path", 5) == 0 && h[i].value_len < sizeof(st->path))
            memcpy(st->path, h[i].value, h[i].value_len);
        if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0)
            st->status = atoi(h[i].value);
        if (h[i].name_len == 11 && memcmp(h[i].name, "grpc-status", 11) == 0 && h[i].value_len < 8)
            memcpy(st->grpc_status, h[i].value, h[i].value_len);
    }
    if (end) {
        st->got_end = 1;
        if (p->server)
            respond(p, st);
    }
    return 0;
}

static int on_data(rm_h2s_t *s, int32_t sid, void *stream_data, const uint8_t *d, size_t n)
{
    peer_t *p = rm_h2s_owner(s);
    stream_t *st = stream_of(p, stream_data);
    assert_non_null(st);
    for (size_t i = 0; i < n; i++)
        st->body_sum = st->body_sum * 31 + d[i];
    st->body_bytes += n;
    if (p->consume)
        assert_int_equal(rm_h2s_consume(s, sid, n), 0);
    else
        p->unconsumed[st - p->streams] += n;
    return 0;
}

static int on_end(rm_h2s_t *s, int32_t sid, void *stream_data)
{
    peer_t *p = rm_h2s_owner(s);
    stream_t *st = stream_of(p, stream_data);
    (void)sid;
    st->got_end = 1;
    if (p->server) /* the server answers once the request is whole */
        respond(p, st);
    return 0;
}

static void on_close(rm_h2s_t *s, int32_t sid, void *stream_data, uint32_t code)
{
    stream_t *st = stream_data;
    (void)sid;
    if (st != NULL) {
        st->closed = 1;
        st->close_code = code;
        rm_h2s_body_clear(s, &st->out);
    }
}

static const rm_h2s_cbs_t cbs = {on_headers, on_data, on_end, on_close, NULL};

/* Moves bytes both ways until neither session has any to send (bounded). */
static void pump(peer_t *a, peer_t *b)
{
    static uint8_t buf[16384];
    for (int i = 0; i < 10000; i++) {
        long n1 = rm_h2s_output(a->s, buf, sizeof(buf));
        assert_true(n1 >= 0);
        if (n1 > 0)
            assert_int_equal(rm_h2s_feed(b->s, buf, (size_t)n1), n1);
        long n2 = rm_h2s_output(b->s, buf, sizeof(buf));
        assert_true(n2 >= 0);
        if (n2 > 0)
            assert_int_equal(rm_h2s_feed(a->s, buf, (size_t)n2), n2);
        if (n1 == 0 && n2 == 0)
            return;
    }
    fail_msg("the sessions never went quiet");
}

static void setup_pair(peer_t *cli, peer_t *srv, uint32_t max_streams)
{
    rm_h2s_settings_t ss = {.max_concurrent_streams = max_streams};
    memset(cli, 0, sizeof(*cli));
    memset(srv, 0, sizeof(*srv));
    cli->consume = srv->consume = 1;
    srv->server = 1;
    cli->s = rm_h2s_new(0, &cbs, NULL, cli);
    srv->s = rm_h2s_new(1, &cbs, &ss, srv);
    assert_non_null(cli->s);
    assert_non_null(srv->s);
    pump(cli, srv);
}

static void teardown_pair(peer_t *cli, peer_t *srv)
{
    for (int i = 0; i < MAX_STREAMS; i++) {
        rm_h2s_body_clear(cli->s, &cli->streams[i].out);
        rm_h2s_body_clear(srv->s, &srv->streams[i].out);
    }
    rm_h2s_free(cli->s);
    rm_h2s_free(srv->s);
}

static int32_t open_request(peer_t *cli, stream_t *st, const char *path, int with_body)
{
    rm_http_header_t h[] = {
        H(":method", "POST"), H(":scheme", "http"), H(":authority", "svc"), {":path", 5, path, strlen(path)}};
    memset(st, 0, sizeof(*st));
    st->used = 1;
    st->sid = rm_h2s_request(cli->s, h, 4, with_body ? &st->out : NULL, st);
    assert_true(st->sid > 0);
    return st->sid;
}

/* Writes n pattern bytes to the stream's body, pumping while the buffer is full; bounded. */
static void send_body(peer_t *cli, peer_t *srv, stream_t *st, size_t n, uint64_t *sum)
{
    static uint8_t chunk[4096];
    size_t sent = 0;
    for (int guard = 0; sent < n && guard < 100000; guard++) {
        size_t k = n - sent < sizeof(chunk) ? n - sent : sizeof(chunk);
        for (size_t i = 0; i < k; i++)
            chunk[i] = (uint8_t)((sent + i) * 7);
        long w = rm_h2s_body_write(cli->s, st->sid, &st->out, chunk, k);
        assert_true(w >= 0);
        for (long i = 0; i < w; i++)
            *sum = *sum * 31 + chunk[i];
        sent += (size_t)w;
        if ((size_t)w < k)
            pump(cli, srv);
    }
    assert_int_equal(sent, n);
}

static void test_large_body_and_trailers(void **state)
{
    (void)state;
    peer_t cli, srv;
    stream_t *st = &cli.streams[0];
    uint64_t sum = 0;
    setup_pair(&cli, &srv, 0);
    open_request(&cli, st, "/big", 1);
    send_body(&cli, &srv, st, 1 << 20, &sum);
    assert_int_equal(rm_h2s_body_end(cli.s, st->sid, &st->out, NULL, 0), 0);
    pump(&cli, &srv);
    assert_string_equal(srv.streams[0].path, "/big");
    assert_int_equal(srv.streams[0].body_bytes, 1 << 20);
    assert_true(srv.streams[0].body_sum == sum);
    assert_int_equal(st->status, 200);
    assert_int_equal(st->body_bytes, 2);
    assert_string_equal(st->grpc_status, "0");
    assert_true(st->closed);
    assert_int_equal(st->close_code, 0);
    assert_int_equal(rm_h2s_open_streams(cli.s), 0);
    assert_int_equal(rm_h2s_open_streams(srv.s), 0);
    teardown_pair(&cli, &srv);
}

static void test_back_pressure(void **state)
{
    (void)state;
    peer_t cli, srv;
    stream_t *st = &cli.streams[0];
    static uint8_t chunk[4096];
    size_t written = 0;
    setup_pair(&cli, &srv, 0);
    srv.consume = 0;
    open_request(&cli, st, "/slow", 1);
    /* the reader takes nothing: the sender stops at the 65,535-byte window with one buffer of its own held */
    for (int i = 0; i < 200; i++) {
        long w = rm_h2s_body_write(cli.s, st->sid, &st->out, chunk, sizeof(chunk));
        assert_true(w >= 0);
        written += (size_t)w;
        pump(&cli, &srv);
    }
    assert_int_equal(srv.streams[0].body_bytes, 65535);
    assert_true(written < 65535 + 2 * 16384 + 1024);
    assert_int_equal(rm_h2s_body_write(cli.s, st->sid, &st->out, chunk, sizeof(chunk)), 0);
    /* once it passes the bytes on, more come */
    assert_int_equal(rm_h2s_consume(srv.s, srv.streams[0].sid, srv.unconsumed[0]), 0);
    srv.unconsumed[0] = 0;
    pump(&cli, &srv);
    assert_true(srv.streams[0].body_bytes > 65535);
    teardown_pair(&cli, &srv);
}

static void test_stream_limit_and_goaway(void **state)
{
    (void)state;
    peer_t cli, srv;
    uint64_t sum = 0;
    setup_pair(&cli, &srv, 2);
    assert_true(rm_h2s_can_open(cli.s));
    open_request(&cli, &cli.streams[0], "/1", 1);
    assert_true(rm_h2s_can_open(cli.s));
    open_request(&cli, &cli.streams[1], "/2", 1);
    assert_false(rm_h2s_can_open(cli.s)); /* the server's SETTINGS said 2 */
    send_body(&cli, &srv, &cli.streams[0], 10, &sum);
    send_body(&cli, &srv, &cli.streams[1], 10, &sum);
    pump(&cli, &srv);
    /* the server goes away: no new streams, the open ones finish */
    assert_int_equal(rm_h2s_goaway(srv.s), 0);
    pump(&cli, &srv);
    assert_true(rm_h2s_goaway_received(cli.s));
    assert_int_equal(rm_h2s_body_end(cli.s, cli.streams[1].sid, &cli.streams[1].out, NULL, 0), 0);
    pump(&cli, &srv);
    assert_false(rm_h2s_can_open(cli.s));
    assert_int_equal(cli.streams[1].status, 200);
    assert_true(cli.streams[1].closed);
    assert_int_equal(cli.streams[1].close_code, 0);
    assert_int_equal(rm_h2s_body_end(cli.s, cli.streams[0].sid, &cli.streams[0].out, NULL, 0), 0);
    pump(&cli, &srv);
    assert_int_equal(cli.streams[0].status, 200);
    assert_int_equal(cli.streams[0].close_code, 0);
    teardown_pair(&cli, &srv);
}

static void test_oversized_block_and_ping(void **state)
{
    (void)state;
    peer_t cli, srv;
    static char big[2000];
    rm_http_header_t h[4 + 30] = {H(":method", "GET"), H(":scheme", "http"), H(":authority", "svc"), H(":path", "/x")};
    stream_t *st = &cli.streams[0];
    setup_pair(&cli, &srv, 0);
    memset(big, 'v', sizeof(big));
    for (int i = 0; i < 30; i++)
        h[4 + i] = (rm_http_header_t){"x-big", 5, big, sizeof(big)};
    memset(st, 0, sizeof(*st));
    st->sid = rm_h2s_request(cli.s, h, 34, NULL, st);
    assert_true(st->sid > 0);
    pump(&cli, &srv);
    assert_true(st->closed);
    assert_int_equal(st->close_code, 8 /* CANCEL */);
    assert_int_equal(srv.streams[0].used, 0); /* the server's owner never saw it */
    /* the session lives on */
    open_request(&cli, &cli.streams[1], "/after", 0);
    pump(&cli, &srv);
    assert_int_equal(cli.streams[1].status, 200);
    assert_int_equal(rm_h2s_ping(cli.s), 0);
    pump(&cli, &srv);
    assert_int_equal(rm_h2s_pings_acked(cli.s), 1);
    assert_true(rm_h2s_alive(cli.s));
    teardown_pair(&cli, &srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_body_and_trailers),
        cmocka_unit_test(test_back_pressure),
        cmocka_unit_test(test_stream_limit_and_goaway),
        cmocka_unit_test(test_oversized_block_and_ping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
