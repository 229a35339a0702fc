/* Kernel TLS: a session's record layer handed to the kernel after the handshake (rm_tls_ktls_*), over a real TCP
 * connection on loopback. One end hands its directions to the kernel, the other stays in wolfSSL, so every byte
 * the kernel seals is opened by wolfSSL and the other way round: wrong keys, IVs or sequence numbers fail there.
 *
 * Needs a kernel with a TLS layer (CONFIG_TLS, module tls). Without one every test is skipped, unless
 * RM_REQUIRE_KERNEL_TLS=1 (the virtual machine test, tests/e2e/test_kernel_tls_vm.sh, sets it), where it fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "ringmesh/tls.h"
#include "ringmesh/x509_issue.h"
#include "tls_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TD        "cluster.local"
#define CLIENT_ID "spiffe://cluster.local/ns/a/sa/client"
#define SERVER_ID "spiffe://cluster.local/ns/b/sa/server"

static rm_tls_ctx_t *client_ctx, *server_ctx;

/* One end of the connection: its socket and its session. */
typedef struct {
    int fd;
    rm_tls_t *tls;
} end_t;

static rm_tls_ctx_t *make_ctx(rm_x509_ca_t *ca, const char *ca_pem, size_t ca_len, const char *id, rm_tls_role_t role)
{
    rm_x509_issue_opts_t opts;
    char *cert, *key, err[256];
    size_t cert_len, key_len;
    rm_tls_ctx_t *ctx = NULL;
    rm_x509_issue_opts_init(&opts);
    assert_int_equal(rm_x509_issue_svid(ca, id, &opts, &cert, &cert_len, &key, &key_len), 0);
    rm_tls_ctx_config_t cfg = {cert, cert_len, key, key_len, ca_pem, ca_len, TD, NULL, NULL, 0, 0, 0};
    if (rm_tls_ctx_new(&ctx, role, &cfg, err, sizeof(err)) != 0)
        fail_msg("ctx: %s", err);
    free(cert);
    rm_x509_free_secret(key, key_len);
    return ctx;
}

static int group_setup(void **state)
{
    rm_x509_issue_opts_t opts;
    rm_x509_ca_t *ca;
    char *ca_pem, *ca_key;
    size_t ca_len, ca_key_len;
    (void)state;
    if (rm_tls_global_init() != 0)
        return -1;
    rm_x509_issue_opts_init(&opts);
    if (rm_x509_make_root_ca(TD, &opts, &ca_pem, &ca_len, &ca_key, &ca_key_len) != 0 ||
        rm_x509_ca_load_pem(&ca, ca_pem, ca_len, ca_key, ca_key_len) != 0)
        return -1;
    client_ctx = make_ctx(ca, ca_pem, ca_len, CLIENT_ID, RM_TLS_CLIENT);
    server_ctx = make_ctx(ca, ca_pem, ca_len, SERVER_ID, RM_TLS_SERVER);
    rm_x509_ca_free(ca);
    free(ca_pem);
    rm_x509_free_secret(ca_key, ca_key_len);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rm_tls_ctx_unref(client_ctx);
    rm_tls_ctx_unref(server_ctx);
    return 0;
}

/* A connected pair of TCP sockets on 127.0.0.1, blocking. */
static void tcp_pair(int *a, int *b)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *a = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *b = accept(l, NULL, NULL);
    assert_true(*b >= 0);
    close(l);
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Sends everything the session has in its output window. */
static void flush(end_t *e)
{
    const uint8_t *p;
    size_t n;
    for (rm_tls_out_data(e->tls, &p, &n); n > 0; rm_tls_out_data(e->tls, &p, &n)) {
        ssize_t w = send(e->fd, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        rm_tls_out_consume(e->tls, (size_t)w);
    }
}

/* Receives at most `max` bytes (0: as many as fit) into the session's input window; waits up to 5 s for them.
 * Returns the bytes received (0 at EOF). */
static size_t feed(end_t *e, size_t max)
{
    uint8_t *p;
    size_t n;
    struct pollfd pfd = {.fd = e->fd, .events = POLLIN};
    assert_int_equal(rm_tls_in_space(e->tls, &p, &n), 0);
    if (max != 0 && n > max)
        n = max;
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    ssize_t r = recv(e->fd, p, n, MSG_DONTWAIT);
    assert_true(r >= 0);
    rm_tls_in_commit(e->tls, (size_t)r);
    return (size_t)r;
}

static int has_input(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

/* Both ends' handshakes, in user space. */
/* The pair connect_pair() made last and close_pair() has not closed: attach_or_skip() closes it before skipping
 * (skip() leaves the test function, which would leak it). */
static end_t *live_c, *live_s;

static void connect_pair(end_t *c, end_t *s)
{
    const char *expected[] = {SERVER_ID};
    live_c = c, live_s = s;
    tcp_pair(&c->fd, &s->fd);
    assert_int_equal(rm_tls_new(&c->tls, client_ctx, expected, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&s->tls, server_ctx, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 100 && !(cdone && sdone); i++) {
        int r;
        if (!cdone) {
            r = rm_tls_handshake(c->tls);
            assert_true(r == 0 || r == RM_ERR_TLS_WANT_IO);
            cdone = r == 0;
            flush(c);
        }
        if (!sdone) {
            r = rm_tls_handshake(s->tls);
            assert_true(r == 0 || r == RM_ERR_TLS_WANT_IO);
            sdone = r == 0;
            flush(s);
        }
        if (!cdone && has_input(c->fd))
            feed(c, 0);
        if (!sdone) {
            struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
            if (poll(&pfd, 1, 100) == 1)
                feed(s, 0);
        }
    }
    assert_true(cdone && sdone);
    assert_string_equal(rm_tls_peer_id(s->tls), CLIENT_ID);
    assert_string_equal(rm_tls_version(c->tls), "TLSv1.3");
}

static void close_pair(end_t *c, end_t *s)
{
    live_c = live_s = NULL;
    rm_tls_free(c->tls);
    rm_tls_free(s->tls);
    close(c->fd);
    close(s->fd);
}

/* Attaches the kernel's TLS layer, or skips (fails under RM_REQUIRE_KERNEL_TLS=1) when the kernel has none. */
static void attach_or_skip(int fd)
{
    int r = rm_tls_ktls_attach(fd);
    if (r == -ENOENT || r == -EOPNOTSUPP) {
        const char *req = getenv("RM_REQUIRE_KERNEL_TLS");
        if (req != NULL && strcmp(req, "1") == 0)
            fail_msg("this kernel has no TLS layer (%s)", strerror(-r));
        if (live_c != NULL)
            close_pair(live_c, live_s);
        skip();
    }
    assert_int_equal(r, 0);
}

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 31u + seed) ^ (i >> 9));
}

/* Writes n bytes through a user-space session and sends its records. */
static void tls_send_all(end_t *e, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int w = rm_tls_write(e->tls, p, n);
        if (w == RM_ERR_TLS_WANT_IO) {
            flush(e);
            continue;
        }
        assert_true(w > 0);
        p += w, n -= (size_t)w;
    }
    flush(e);
}

/* Reads exactly n bytes of plaintext through a user-space session. */
static void tls_recv_all(end_t *e, uint8_t *p, size_t n)
{
    while (n > 0) {
        int r = rm_tls_read(e->tls, p, n);
        if (r == RM_ERR_TLS_WANT_IO) {
            assert_true(feed(e, 0) > 0);
            continue;
        }
        assert_true(r > 0);
        p += r, n -= (size_t)r;
    }
}

/* Plaintext on a socket whose direction the kernel has. */
static void sock_send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        p += w, n -= (size_t)w;
    }
}

static void sock_recv_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0)
            fail_msg("recv: %zd (%s)", r, strerror(errno));
        p += r, n -= (size_t)r;
    }
}

#define BULK (1u << 20)

/* One end hands both directions to the kernel; a megabyte each way, then close_notify each way. `kernel` is c or s;
 * `peer` the one that stays in wolfSSL. Some records go through user space first, so the sequence numbers handed
 * over are not zero. */
static void exchange(end_t *kernel, end_t *peer)
{
    uint8_t *out, *in, hello[5];
    size_t need = 1;

    /* a few records in user space both ways */
    tls_send_all(kernel, (const uint8_t *)"ping!", 5);
    tls_recv_all(peer, hello, 5);
    assert_memory_equal(hello, "ping!", 5);
    tls_send_all(peer, (const uint8_t *)"pong!", 5);
    tls_recv_all(kernel, hello, 5);
    assert_memory_equal(hello, "pong!", 5);

    attach_or_skip(kernel->fd);
    out = malloc(BULK), in = malloc(BULK); /* after the skip, which would leak them */
    assert_non_null(out);
    assert_non_null(in);
    pattern(out, BULK, 7);
    assert_int_equal(rm_tls_ktls_start_tx(kernel->tls, kernel->fd), 0);
    assert_int_equal(rm_tls_ktls_start_rx(kernel->tls, kernel->fd, &need), 0);
    assert_int_equal(need, 0);
    rm_tls_ktls_release(kernel->tls);
    assert_string_equal(rm_tls_version(kernel->tls), "TLSv1.3");

    /* kernel -> wolfSSL: the kernel seals */
    sock_send_all(kernel->fd, out, BULK);
    tls_recv_all(peer, in, BULK);
    assert_memory_equal(in, out, BULK);
    /* wolfSSL -> kernel: the kernel opens */
    pattern(out, BULK, 11);
    tls_send_all(peer, out, BULK);
    memset(in, 0, BULK);
    sock_recv_all(kernel->fd, in, BULK);
    assert_memory_equal(in, out, BULK);

    /* close_notify from the kernel's side ends the peer's stream... */
    assert_int_equal(rm_tls_ktls_close_notify(kernel->fd), 0);
    int r;
    while ((r = rm_tls_read(peer->tls, in, BULK)) == RM_ERR_TLS_WANT_IO)
        assert_true(feed(peer, 0) > 0);
    assert_int_equal(r, 0);
    /* ...and the peer's close_notify is a control record the kernel hands back with EIO */
    assert_int_equal(rm_tls_close_notify(peer->tls), 0);
    flush(peer);
    assert_int_equal(recv(kernel->fd, in, BULK, 0), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(rm_tls_ktls_read_control(kernel->tls, kernel->fd), 0);
    assert_string_equal(rm_tls_peer_alert(kernel->tls), "close_notify");
    free(out);
    free(in);
}

static void test_client_in_kernel(void **state)
{
    end_t c, s;
    (void)state;
    connect_pair(&c, &s);
    exchange(&c, &s);
    close_pair(&c, &s);
}

static void test_server_in_kernel(void **state)
{
    end_t c, s;
    (void)state;
    connect_pair(&c, &s);
    exchange(&s, &c);
    close_pair(&c, &s);
}

/* The receiving direction moves only at a record boundary: with part of a record in the session, start_rx asks
 * for exactly its rest, and the records after it are the kernel's. */
static void test_rx_waits_for_record_boundary(void **state)
{
    end_t c, s;
    uint8_t buf[3000], want[3000];
    size_t need;
    (void)state;
    connect_pair(&c, &s);
    attach_or_skip(s.fd);
    pattern(want, sizeof(want), 3);
    /* three records of 1000 bytes each (28 bytes of header, type and tag on top) */
    for (int i = 0; i < 3; i++)
        tls_send_all(&c, want + i * 1000, 1000);
    /* the server takes the first record and 100 bytes of the second */
    size_t rec = 5 + 1000 + 1 + 16, got = 0;
    while (got < rec + 100)
        got += feed(&s, rec + 100 - got);
    assert_int_equal(rm_tls_read(s.tls, buf, sizeof(buf)), 1000);
    assert_int_equal(rm_tls_read(s.tls, buf + 1000, sizeof(buf)), RM_ERR_TLS_WANT_IO);
    assert_int_equal(rm_tls_ktls_start_rx(s.tls, s.fd, &need), RM_ERR_TLS_WANT_IO);
    assert_int_equal(need, rec - 100);
    /* the rest of the second record, exactly */
    for (got = 0; got < need;)
        got += feed(&s, need - got);
    assert_int_equal(rm_tls_read(s.tls, buf + 1000, sizeof(buf)), 1000);
    assert_int_equal(rm_tls_ktls_start_rx(s.tls, s.fd, &need), 0);
    /* the third record is opened by the kernel, with sequence number 2 */
    sock_recv_all(s.fd, buf + 2000, 1000);
    assert_memory_equal(buf, want, sizeof(want));
    close_pair(&c, &s);
}

/* Output still waiting in the session keeps the sending direction where it is. */
static void test_tx_waits_for_output(void **state)
{
    end_t c, s;
    uint8_t buf[4];
    (void)state;
    connect_pair(&c, &s);
    attach_or_skip(c.fd);
    assert_true(rm_tls_write(c.tls, (const uint8_t *)"abcd", 4) == 4);
    assert_int_equal(rm_tls_ktls_start_tx(c.tls, c.fd), RM_ERR_TLS_WANT_IO);
    flush(&c);
    assert_int_equal(rm_tls_ktls_start_tx(c.tls, c.fd), 0);
    sock_send_all(c.fd, (const uint8_t *)"efgh", 4);
    tls_recv_all(&s, buf, 4);
    assert_memory_equal(buf, "abcd", 4);
    tls_recv_all(&s, buf, 4);
    assert_memory_equal(buf, "efgh", 4);
    close_pair(&c, &s);
}

/* A connected pair whose client receives through the kernel. */
static void connect_client_rx_in_kernel(end_t *c, end_t *s)
{
    size_t need;
    connect_pair(c, s);
    attach_or_skip(c->fd);
    assert_int_equal(rm_tls_ktls_start_rx(c->tls, c->fd, &need), 0);
}

/* Sends the server's next record and expects the client's receive to stop at it with EIO (not application data). */
static void expect_control_record(end_t *c, end_t *s)
{
    uint8_t buf[64];
    flush(s);
    assert_int_equal(recv(c->fd, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, EIO);
}

/* What the kernel cannot do is refused, not misread: a KeyUpdate (the kernel cannot change keys). */
static void test_key_update_refused(void **state)
{
    end_t c, s;
    (void)state;
    connect_client_rx_in_kernel(&c, &s);
    assert_int_equal(rm__tls_key_update(s.tls), 0);
    expect_control_record(&c, &s);
    assert_int_equal(rm_tls_ktls_read_control(c.tls, c.fd), RM_ERR_TLS_PROTOCOL);
    close_pair(&c, &s);
}

/* A NewSessionTicket (other servers send them; ringmesh never resumes) is read and dropped; the data after it
 * comes through. */
static void test_ticket_dropped(void **state)
{
    end_t c, s;
    uint8_t buf[64];
    (void)state;
    connect_client_rx_in_kernel(&c, &s);
    assert_int_equal(rm__tls_send_ticket(s.tls), 0);
    tls_send_all(&s, (const uint8_t *)"after the ticket", 16); /* flushes the ticket first */
    expect_control_record(&c, &s);
    assert_int_equal(rm_tls_ktls_read_control(c.tls, c.fd), RM_ERR_TLS_WANT_IO);
    sock_recv_all(c.fd, buf, 16);
    assert_memory_equal(buf, "after the ticket", 16);
    close_pair(&c, &s);
}

/* A record that fails authentication is refused by the kernel, never returned as data. */
static void test_forged_record_refused(void **state)
{
    end_t c, s;
    uint8_t rec[5 + 40], buf[64];
    (void)state;
    connect_client_rx_in_kernel(&c, &s);
    rec[0] = 0x17, rec[1] = 0x03, rec[2] = 0x03, rec[3] = 0, rec[4] = 40; /* application_data, 40 bytes */
    pattern(rec + 5, 40, 5);
    sock_send_all(s.fd, rec, sizeof(rec)); /* straight onto the wire, not sealed by the session */
    assert_int_equal(recv(c.fd, buf, sizeof(buf), 0), -1);
    assert_int_equal(errno, EBADMSG);
    close_pair(&c, &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_in_kernel),
        cmocka_unit_test(test_server_in_kernel),
        cmocka_unit_test(test_rx_waits_for_record_boundary),
        cmocka_unit_test(test_tx_waits_for_output),
        cmocka_unit_test(test_key_update_refused),
        cmocka_unit_test(test_ticket_dropped),
        cmocka_unit_test(test_forged_record_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
