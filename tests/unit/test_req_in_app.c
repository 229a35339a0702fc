/* The inbound request path's HTTP/1.1 app connections (sidecar/req_in_app.c) against a real app socket: a loopback
 * listener this test accepts on and answers by hand, the worker's loop driving the connections, and a stand-in for
 * the stream (the rm__req_in_app_* events of req_in.h, defined here) that records what it is told. Keep-alive reuse,
 * HEAD and 204 without a body, chunked and close-delimited responses, a chunked request body, the response taken in
 * small pieces (the client's window), a request sent once more when a reused connection is closed before
 * answering, an unreachable app (UF), and idle connections closed by the app or by the idle time. Both backends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http1_codec.h"
#include "proxy.h"
#include "req_in.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The stream as the app connections see it: what they told it. */
struct st_rm__req_in_stream_t {
    rm__app_conn_t *a;
    int status, no_body, ended, heads;
    const char *failed;
    char fields[1024]; /* "name: value\n" of the response head */
    char body[300000];
    size_t body_len;
    size_t take; /* at most this many bytes per body event (0: all) */
    int refuse;  /* take nothing: the client's window is full */
    size_t sent;
    int kicks;
};

int rm__req_in_app_head(rm__req_in_stream_t *st, int status, const rm_http_header_t *h, size_t n, int no_body)
{
    size_t off = 0;
    st->status = status;
    st->no_body = no_body;
    st->heads++;
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(st->fields + off, sizeof(st->fields) - off, "%.*s: %.*s\n", (int)h[i].name_len,
                                h[i].name, (int)h[i].value_len, h[i].value);
    return 0;
}

long rm__req_in_app_body(rm__req_in_stream_t *st, const uint8_t *p, size_t n)
{
    size_t k = st->refuse ? 0 : st->take != 0 && st->take < n ? st->take : n;
    assert_true(st->body_len + k <= sizeof(st->body));
    memcpy(st->body + st->body_len, p, k);
    st->body_len += k;
    return (long)k;
}

void rm__req_in_app_end(rm__req_in_stream_t *st, const rm_http_header_t *trailers, size_t n)
{
    (void)trailers, (void)n;
    st->ended++;
}

void rm__req_in_app_failed(rm__req_in_stream_t *st, const char *flag)
{
    st->a = NULL;
    st->failed = flag;
}

void rm__req_in_app_moved(rm__req_in_stream_t *st, rm__app_conn_t *a)
{
    st->a = a;
}

void rm__req_in_app_sent(rm__req_in_stream_t *st, size_t n)
{
    st->sent += n;
}

void rm__req_in_kick(rm__req_in_stream_t *st)
{
    st->kicks++;
}

/* ------------------------------------------------------------------ the app (this test) */

typedef struct {
    rm_loop_t *loop;
    rm_worker_t w;
    int lfd;
    rm_sockaddr_t addr;
} env_t;

static int env_open(env_t *e, rm_io_backend_t backend)
{
    const char *vg = getenv("RM_UNDER_VALGRIND");
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int ret;

    memset(e, 0, sizeof(*e));
    if (backend == RM_IO_BACKEND_URING && vg != NULL && strcmp(vg, "1") == 0) {
        fprintf(stderr, "under valgrind: the io_uring half of this test is skipped\n");
        return 0;
    }
    if ((ret = rm_loop_new(&e->loop, backend, 64)) != 0 && backend == RM_IO_BACKEND_URING) {
        fprintf(stderr, "io_uring unavailable here (%s): its half of this test is skipped\n", strerror(-ret));
        return 0;
    }
    assert_int_equal(ret, 0);
    assert_int_equal(rm_loop_attach_thread(e->loop), 0);
    e->w.loop = e->loop;
    e->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(e->lfd >= 0);
    assert_int_equal(bind(e->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(e->lfd, 16), 0);
    assert_int_equal(getsockname(e->lfd, (struct sockaddr *)&sin, &len), 0);
    memcpy(&e->addr.ss, &sin, sizeof(sin));
    e->addr.len = sizeof(sin);
    return 1;
}

static void env_close(env_t *e)
{
    for (int i = 0; i < 500 && rm__app_pool_cut(&e->w) != 0; i++)
        assert_true(rm_loop_run_once(e->loop, 10) >= 0);
    assert_int_equal(e->w.num_app_conns, 0);
    close(e->lfd);
    rm_loop_free(e->loop);
    rm_buf_trim();
}

/* Runs the loop (at most 500 rounds of 10 ms) until *flag is nonzero. */
static void run_until(env_t *e, const int *flag)
{
    for (int i = 0; i < 500 && !*flag; i++)
        assert_true(rm_loop_run_once(e->loop, 10) >= 0);
    assert_true(*flag);
}

/* Accepts the app's next connection (the loop runs meanwhile): the fd, blocking. */
static int app_accept(env_t *e)
{
    for (int i = 0; i < 500; i++) {
        int fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        assert_int_equal(errno, EAGAIN);
        assert_true(rm_loop_run_once(e->loop, 10) >= 0);
    }
    fail_msg("the app saw no connection");
    return -1;
}

/* 1 when a connection waits to be accepted. */
static int app_pending(env_t *e)
{
    struct pollfd p = {.fd = e->lfd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* Reads what the proxy sent on fd until it ends with `tail` (the loop runs meanwhile); returns it, NUL-terminated. */
static char *app_read(env_t *e, int fd, const char *tail, char *buf, size_t cap)
{
    size_t got = 0, tl = strlen(tail);
    for (int i = 0; i < 1000; i++) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        buf[got] = '\0';
        if (got >= tl && memcmp(buf + got - tl, tail, tl) == 0)
            return buf;
        assert_true(rm_loop_run_once(e->loop, 10) >= 0);
    }
    fail_msg("the app did not get '%s': got '%s'", tail, buf);
    return NULL;
}

/* Sends all of s[0, n) to the proxy, running the loop while the socket is full. */
static void app_write_n(env_t *e, int fd, const char *s, size_t n)
{
    size_t off = 0;
    for (int i = 0; i < 5000 && off < n; i++) {
        ssize_t k = send(fd, s + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0)
            off += (size_t)k;
        else
            assert_true(rm_loop_run_once(e->loop, 1) >= 0);
    }
    assert_int_equal(off, n);
}

static void app_write(env_t *e, int fd, const char *s)
{
    app_write_n(e, fd, s, strlen(s));
}

static rm__app_conn_t *send_get(env_t *e, rm__req_in_stream_t *st, const char *method, const char *path, int fresh)
{
    char head[256];
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nhost: app\r\n\r\n", method, path);
    memset(st, 0, sizeof(*st));
    st->a = rm__app_h1_send(&e->w, &e->addr, st, head, (size_t)n, RM_H1C_BODY_NONE, strcmp(method, "HEAD") == 0, fresh);
    assert_non_null(st->a);
    return st->a;
}

/* ------------------------------------------------------------------ cases */

static void keep_alive(rm_io_backend_t backend)
{
    env_t e;
    rm__req_in_stream_t *st = calloc(1, sizeof(*st));
    char buf[4096];
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Probe: Kept\r\nConnection: keep-alive\r\n"
                               "Keep-Alive: timeout=5\r\n\r\nhello";
    if (!env_open(&e, backend)) {
        free(st);
        skip();
    }
    send_get(&e, st, "GET", "/one", 0);
    int fd = app_accept(&e);
    assert_string_equal(app_read(&e, fd, "\r\n\r\n", buf, sizeof(buf)), "GET /one HTTP/1.1\r\nhost: app\r\n\r\n");
    app_write(&e, fd, resp);
    run_until(&e, &st->ended);
    assert_int_equal(st->status, 200);
    assert_false(st->no_body);
    /* names lower-case, connection-specific fields left out */
    assert_string_equal(st->fields, "content-length: 5\nx-probe: Kept\n");
    assert_int_equal(st->body_len, 5);
    assert_memory_equal(st->body, "hello", 5);
    rm__app_h1_detach(st->a, 1);
    assert_int_equal(e.w.num_app_conns, 1);

    /* the second request goes on the same connection: no new one */
    rm__app_conn_t *first = st->a;
    assert_ptr_equal(send_get(&e, st, "GET", "/two", 0), first);
    assert_string_equal(app_read(&e, fd, "\r\n\r\n", buf, sizeof(buf)), "GET /two HTTP/1.1\r\nhost: app\r\n\r\n");
    assert_false(app_pending(&e));
    app_write(&e, fd, resp);
    run_until(&e, &st->ended);
    assert_int_equal(st->body_len, 5);
    rm__app_h1_detach(st->a, 1);

    /* HEAD and 204: no body, whatever content-length says; the connection stays reusable */
    send_get(&e, st, "HEAD", "/h", 0);
    app_read(&e, fd, "\r\n\r\n", buf, sizeof(buf));
    app_write(&e, fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    run_until(&e, &st->ended);
    assert_true(st->no_body);
    assert_int_equal(st->body_len, 0);
    rm__app_h1_detach(st->a, 1);
    send_get(&e, st, "GET", "/204", 0);
    app_read(&e, fd, "\r\n\r\n", buf, sizeof(buf));
    app_write(&e, fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
    run_until(&e, &st->ended);
    assert_int_equal(st->status, 204); /* the interim 100 is not passed on */
    assert_int_equal(st->heads, 1);
    assert_true(st->no_body);
    rm__app_h1_detach(st->a, 1);
    assert_false(app_pending(&e));
    assert_int_equal(e.w.num_app_conns, 1);

    /* the app closes the idle connection: it is dropped, the next request opens a new one */
    close(fd);
    for (int i = 0; i < 500 && e.w.num_app_conns != 0; i++)
        assert_true(rm_loop_run_once(e.loop, 10) >= 0);
    assert_int_equal(e.w.num_app_conns, 0);
    send_get(&e, st, "GET", "/three", 0);
    fd = app_accept(&e);
    app_read(&e, fd, "\r\n\r\n", buf, sizeof(buf));
    app_write(&e, fd, resp);
    run_until(&e, &st->ended);
    rm__app_h1_detach(st->a, 1);
    /* idle past its time: closed by the tick */
    rm__app_pool_tick(&e.w, rm_loop_now_ms(e.loop) + 3600 * 1000);
    for (int i = 0; i < 500 && e.w.num_app_conns != 0; i++)
        assert_true(rm_loop_run_once(e.loop, 10) >= 0);
    assert_int_equal(e.w.num_app_conns, 0);
    close(fd);
    env_close(&e);
    free(st);
}

static void bodies(rm_io_backend_t backend)
{
    env_t e;
    rm__req_in_stream_t *st = calloc(1, sizeof(*st));
    char buf[4096];
    static const char head[] = "POST /up HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n";
    if (!env_open(&e, backend)) {
        free(st);
        skip();
    }
    /* a chunked request body, given back as it goes out */
    st->a = rm__app_h1_send(&e.w, &e.addr, st, head, sizeof(head) - 1, RM_H1C_BODY_CHUNKED, 0, 0);
    assert_non_null(st->a);
    assert_int_equal(rm__app_h1_body(st->a, (const uint8_t *)"hello", 5), 0);
    assert_int_equal(rm__app_h1_body(st->a, (const uint8_t *)"world!", 6), 0);
    assert_int_equal(rm__app_h1_end(st->a, NULL, 0), 0);
    int fd = app_accept(&e);
    assert_string_equal(app_read(&e, fd, "0\r\n\r\n", buf, sizeof(buf)),
                        "POST /up HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n");
    assert_int_equal(st->sent, 11);

    /* a chunked response taken 1,000 bytes at a time, the window full in between */
    static char big[250000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    st->take = 1000;
    app_write(&e, fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t off = 0; off < sizeof(big); off += 50000) {
        char ch[32];
        int n = snprintf(ch, sizeof(ch), "%x\r\n", 50000);
        app_write_n(&e, fd, ch, (size_t)n);
        app_write_n(&e, fd, big + off, 50000);
        app_write(&e, fd, "\r\n");
    }
    app_write(&e, fd, "0\r\n\r\n");
    for (int i = 0; i < 2000 && !st->ended; i++) {
        st->refuse = i % 2; /* every other round the client's window is full */
        if (!st->refuse)
            rm__app_h1_resume(st->a);
        assert_true(rm_loop_run_once(e.loop, 1) >= 0);
    }
    assert_true(st->ended);
    assert_int_equal(st->body_len, sizeof(big));
    assert_memory_equal(st->body, big, sizeof(big));
    assert_null(strstr(st->fields, "transfer-encoding"));
    rm__app_h1_detach(st->a, 1);

    /* close-delimited: ends at the app's close, and that connection is not reused */
    send_get(&e, st, "GET", "/close", 0);
    app_read(&e, fd, "\r\n\r\n", buf, sizeof(buf));
    app_write(&e, fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
    shutdown(fd, SHUT_WR);
    run_until(&e, &st->ended);
    assert_int_equal(st->body_len, 13);
    assert_memory_equal(st->body, "until the end", 13);
    rm__app_h1_detach(st->a, 1);
    close(fd);
    for (int i = 0; i < 500 && e.w.num_app_conns != 0; i++)
        assert_true(rm_loop_run_once(e.loop, 10) >= 0);
    assert_int_equal(e.w.num_app_conns, 0);
    env_close(&e);
    free(st);
}

static void failures(rm_io_backend_t backend)
{
    env_t e;
    rm__req_in_stream_t *st = calloc(1, sizeof(*st));
    char buf[4096];
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (!env_open(&e, backend)) {
        free(st);
        skip();
    }
    /* one exchange, then the app takes the next request on that connection and closes without answering: sent once
     * more on a new connection */
    send_get(&e, st, "GET", "/a", 0);
    int fd = app_accept(&e);
    app_read(&e, fd, "\r\n\r\n", buf, sizeof(buf));
    app_write(&e, fd, resp);
    run_until(&e, &st->ended);
    rm__app_h1_detach(st->a, 1);
    rm__app_conn_t *old = send_get(&e, st, "GET", "/again", 0);
    app_read(&e, fd, "\r\n\r\n", buf, sizeof(buf));
    close(fd);
    fd = app_accept(&e);
    assert_string_equal(app_read(&e, fd, "\r\n\r\n", buf, sizeof(buf)), "GET /again HTTP/1.1\r\nhost: app\r\n\r\n");
    assert_ptr_not_equal(st->a, old);
    app_write(&e, fd, resp);
    run_until(&e, &st->ended);
    assert_null(st->failed);
    assert_int_equal(st->status, 200);
    rm__app_h1_detach(st->a, 1);

    /* a fresh connection cut before the answer: not sent again, UC */
    send_get(&e, st, "GET", "/cut", 1);
    int fd2 = app_accept(&e);
    app_read(&e, fd2, "\r\n\r\n", buf, sizeof(buf));
    close(fd2);
    for (int i = 0; i < 500 && st->failed == NULL; i++)
        assert_true(rm_loop_run_once(e.loop, 10) >= 0);
    assert_string_equal(st->failed, "UC");
    assert_false(app_pending(&e));

    /* the app's port closed: UF */
    close(fd);
    close(e.lfd);
    e.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* for env_close */
    memset(st, 0, sizeof(*st));
    st->a = rm__app_h1_send(&e.w, &e.addr, st, "GET / HTTP/1.1\r\n\r\n", 18, RM_H1C_BODY_NONE, 0, 0);
    assert_non_null(st->a);
    for (int i = 0; i < 500 && st->failed == NULL; i++)
        assert_true(rm_loop_run_once(e.loop, 10) >= 0);
    assert_string_equal(st->failed, "UF");
    env_close(&e);
    free(st);
}

#define BOTH(name)                                                                                                     \
    static void test_##name##_epoll(void **state)                                                                      \
    {                                                                                                                  \
        (void)state;                                                                                                   \
        name(RM_IO_BACKEND_EPOLL);                                                                                     \
    }                                                                                                                  \
    static void test_##name##_io_uring(void **state)                                                                   \
    {                                                                                                                  \
        (void)state;                                                                                                   \
        name(RM_IO_BACKEND_URING);                                                                                     \
    }
BOTH(keep_alive)
BOTH(bodies)
BOTH(failures)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive_epoll), cmocka_unit_test(test_keep_alive_io_uring),
        cmocka_unit_test(test_bodies_epoll),     cmocka_unit_test(test_bodies_io_uring),
        cmocka_unit_test(test_failures_epoll),   cmocka_unit_test(test_failures_io_uring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
