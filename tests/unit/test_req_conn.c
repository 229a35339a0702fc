/* The request path's pooled HTTP/2 connections (sidecar/req_conn.h) against a real loopback socket: a server in the
 * test (an HTTP/2 session in the server role, h2_session.h, over a nonblocking socket) answers on the same thread
 * between the loop's rounds. Plain HTTP/2 (no TLS context): what is checked is the pool, not the handshake.
 *   - sequential requests share one connection, and responses larger in all than the connection's receive window
 *     keep arriving although the user never consumes them before their streams close (the connection's window of
 *     a closed stream's unread bytes is given back);
 *   - a connect refused ends the stream UNSENT (safe to send elsewhere), and the connection is gone;
 *   - a cancelled stream reaches the server as a reset, and the connection goes on serving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "h2_session.h"
#include "io_loop.h"
#include "req_conn.h"
#include "ringmesh/buffer_pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_BYTES 20000 /* seven of these are more than the connection's 64 KiB receive window */
#define MAX_SRV    16

/* ------------------------------------------------------------------ the server */

typedef struct {
    int lfd, fd;
    rm_h2s_t *s;
    int accepted, requests, resets;
    int32_t sids[MAX_SRV];
    rm_h2s_body_t bodies[MAX_SRV];
    uint8_t answer; /* answer requests at once */
    uint8_t body[BODY_BYTES];
} server_t;

static int srv_on_headers(rm_h2s_t *s, int32_t sid, void *sd, const rm_http_header_t *h, size_t n, int end)
{
    server_t *v = rm_h2s_owner(s);
    (void)sd, (void)h, (void)n, (void)end;
    int i = v->requests++;
    assert_true(i < MAX_SRV);
    v->sids[i] = sid;
    if (!v->answer)
        return 0;
    static const rm_http_header_t resp[] = {{":status", 7, "200", 3}, {"content-length", 14, "20000", 5}};
    assert_int_equal(rm_h2s_respond(s, sid, resp, 2, &v->bodies[i]), 0);
    return 0;
}

static int srv_on_data(rm_h2s_t *s, int32_t sid, void *sd, const uint8_t *p, size_t n)
{
    (void)p, (void)sd;
    rm_h2s_consume(s, sid, n);
    return 0;
}

static int srv_on_end(rm_h2s_t *s, int32_t sid, void *sd)
{
    (void)s, (void)sid, (void)sd;
    return 0;
}

static void srv_on_close(rm_h2s_t *s, int32_t sid, void *sd, uint32_t code)
{
    server_t *v = rm_h2s_owner(s);
    (void)sd;
    if (code != 0)
        v->resets++;
    for (int i = 0; i < v->requests; i++)
        if (v->sids[i] == sid)
            rm_h2s_body_clear(s, &v->bodies[i]);
}

static const rm_h2s_cbs_t srv_cbs = {srv_on_headers, srv_on_data, srv_on_end, srv_on_close, NULL};

/* One round of the server: accept, read, send what its session has. */
static void server_poll(server_t *v)
{
    uint8_t buf[32768];
    ssize_t r;
    if (v->fd < 0) {
        if ((v->fd = accept4(v->lfd, NULL, NULL, SOCK_NONBLOCK)) < 0)
            return;
        v->accepted++;
        assert_non_null(v->s = rm_h2s_new(1, &srv_cbs, NULL, v));
    }
    while ((r = recv(v->fd, buf, sizeof(buf), 0)) > 0)
        assert_true(rm_h2s_feed(v->s, buf, (size_t)r) == r);
    for (;;) {
        long n = rm_h2s_output(v->s, buf, sizeof(buf));
        assert_true(n >= 0);
        if (n == 0)
            break;
        assert_int_equal(send(v->fd, buf, (size_t)n, MSG_NOSIGNAL), n);
    }
}

static int listen_loopback(rm_sockaddr_t *a)
{
    struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
    socklen_t len = sizeof(*in);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memset(a, 0, sizeof(*a));
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)in, sizeof(*in)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)in, &len), 0);
    a->len = len;
    return fd;
}

/* ------------------------------------------------------------------ the user */

typedef struct {
    rm_req_user_t user;
    rm_req_stream_t *st;
    int status, heads, ends, closes, kicks;
    size_t data;
    rm_req_stream_end_t how;
} user_t;

static void u_head(rm_req_user_t *u, const rm_http_header_t *h, size_t n, int trailers, int end)
{
    user_t *x = rm_container_of(u, user_t, user);
    (void)trailers, (void)end;
    x->heads++;
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0)
            x->status = atoi(h[i].value);
}

static int u_data(rm_req_user_t *u, const uint8_t *p, size_t n)
{
    user_t *x = rm_container_of(u, user_t, user);
    (void)p;
    x->data += n; /* never consumed: the pool gives the connection's window back when the stream closes */
    return 0;
}

static void u_end(rm_req_user_t *u)
{
    rm_container_of(u, user_t, user)->ends++;
}

static void u_close(rm_req_user_t *u, rm_req_stream_end_t how, uint32_t code)
{
    user_t *x = rm_container_of(u, user_t, user);
    (void)code;
    x->closes++;
    x->how = how;
    x->st = NULL;
}

static void u_kick(rm_req_user_t *u)
{
    rm_container_of(u, user_t, user)->kicks++;
}

static const rm_req_stream_ops_t user_ops = {u_head, u_data, u_end, u_close, u_kick};

static const rm_http_header_t req_h[] = {
    {":method", 7, "GET", 3}, {":scheme", 7, "http", 4}, {":authority", 10, "orders", 6}, {":path", 5, "/", 1}};

static void run(rm_loop_t *loop, server_t *v, const int *done)
{
    for (int i = 0; i < 500 && !*done; i++) {
        assert_true(rm_loop_run_once(loop, 5) >= 0);
        if (v != NULL)
            server_poll(v);
    }
    assert_true(*done);
}

/* body_writer: the server's bodies go out as the window allows (rm_h2s_body_write copies what fits) */
static void server_write_bodies(server_t *v, size_t *written)
{
    for (int i = 0; i < v->requests; i++) {
        rm_h2s_body_t *b = &v->bodies[i];
        if (b->eof)
            continue;
        long k = rm_h2s_body_write(v->s, v->sids[i], b, v->body + written[i], BODY_BYTES - written[i]);
        assert_true(k >= 0);
        written[i] += (size_t)k;
        if (written[i] == BODY_BYTES)
            assert_int_equal(rm_h2s_body_end(v->s, v->sids[i], b, NULL, 0), 0);
    }
}

static void test_sequential_requests_share_one_connection(void **state)
{
    rm_loop_t *loop;
    server_t *v = calloc(1, sizeof(*v));
    size_t written[MAX_SRV] = {0};
    rm_sockaddr_t addr;
    (void)state;
    assert_int_equal(rm_loop_new(&loop, RM_IO_BACKEND_EPOLL, 64), 0);
    assert_int_equal(rm_loop_attach_thread(loop), 0);
    v->fd = -1;
    v->answer = 1;
    v->lfd = listen_loopback(&addr);
    rm_req_pools_cfg_t cfg = {.connect_timeout_ms = 5000};
    rm_req_pools_t *p = rm_req_pools_new(loop, &cfg, NULL);
    assert_non_null(p);
    rm_req_target_t t = {.addr = &addr, .identity = "spiffe://cluster.local/ns/shop/sa/orders"};

    for (int k = 0; k < 12; k++) {
        user_t u = {.user = {.ops = &user_ops}};
        assert_non_null(u.st = rm_req_stream_open(p, &t, req_h, 4, 0, &u.user));
        for (int i = 0; i < 1000 && u.closes == 0; i++) {
            assert_true(rm_loop_run_once(loop, 5) >= 0);
            server_poll(v);
            server_write_bodies(v, written);
            server_poll(v);
        }
        assert_int_equal(u.closes, 1);
        assert_int_equal(u.how, RM_REQ_STREAM_DONE);
        assert_int_equal(u.status, 200);
        assert_int_equal(u.data, BODY_BYTES);
        assert_int_equal(u.ends, 1);
        rm_req_user_unlink(p, &u.user);
    }
    assert_int_equal(v->accepted, 1);
    rm_req_pools_stats_t s = rm_req_pools_stats(p);
    assert_int_equal(s.conns_opened, 1);
    assert_int_equal(s.streams, 12);

    /* a cancelled stream is a reset at the server; the connection serves on */
    v->answer = 0;
    user_t c = {.user = {.ops = &user_ops}};
    assert_non_null(c.st = rm_req_stream_open(p, &t, req_h, 4, 0, &c.user));
    int before = v->requests;
    for (int i = 0; i < 200 && v->requests == before; i++) {
        assert_true(rm_loop_run_once(loop, 5) >= 0);
        server_poll(v);
    }
    assert_int_equal(v->requests, before + 1);
    rm_req_stream_cancel(c.st);
    for (int i = 0; i < 200 && v->resets == 0; i++) {
        assert_true(rm_loop_run_once(loop, 5) >= 0);
        server_poll(v);
    }
    assert_int_equal(v->resets, 1);
    assert_int_equal(c.closes, 0); /* a cancelled stream tells its user nothing more */
    rm_req_user_unlink(p, &c.user);

    rm_req_pools_shutdown(p);
    for (int i = 0; i < 200 && rm_req_pools_busy(p); i++)
        assert_true(rm_loop_run_once(loop, 5) >= 0);
    assert_false(rm_req_pools_busy(p));
    rm_req_pools_free(p);
    for (int i = 0; i < MAX_SRV; i++)
        rm_h2s_body_clear(v->s, &v->bodies[i]);
    rm_h2s_free(v->s);
    close(v->fd);
    close(v->lfd);
    free(v);
    rm_loop_free(loop);
    rm_buf_trim();
}

static void test_connect_refused_is_unsent(void **state)
{
    rm_loop_t *loop;
    rm_sockaddr_t addr;
    (void)state;
    assert_int_equal(rm_loop_new(&loop, RM_IO_BACKEND_EPOLL, 64), 0);
    assert_int_equal(rm_loop_attach_thread(loop), 0);
    close(listen_loopback(&addr)); /* a port nobody listens on */
    rm_req_pools_cfg_t cfg = {.connect_timeout_ms = 5000};
    rm_req_pools_t *p = rm_req_pools_new(loop, &cfg, NULL);
    rm_req_target_t t = {.addr = &addr, .identity = "spiffe://cluster.local/ns/shop/sa/orders"};
    user_t u = {.user = {.ops = &user_ops}};
    assert_non_null(u.st = rm_req_stream_open(p, &t, req_h, 4, 0, &u.user));
    run(loop, NULL, &u.closes);
    assert_int_equal(u.how, RM_REQ_STREAM_UNSENT);
    assert_int_equal(u.heads, 0);
    assert_int_equal(u.kicks, 1);
    for (int i = 0; i < 200 && rm_req_pools_busy(p); i++)
        assert_true(rm_loop_run_once(loop, 5) >= 0);
    assert_false(rm_req_pools_busy(p)); /* the failed connection is gone */
    rm_req_pools_stats_t s = rm_req_pools_stats(p);
    assert_int_equal(s.conns_failed, 1);
    assert_int_equal(s.streams_unsent, 1);
    rm_req_pools_free(p);
    rm_loop_free(loop);
    rm_buf_trim();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_requests_share_one_connection),
        cmocka_unit_test(test_connect_refused_is_unsent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
