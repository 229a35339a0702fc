/* The handshake guard (sidecar/handshake_guard.c): the bound on handshakes in progress, the back-off of addresses
 * whose handshakes keep failing, and the refusal logs (one line at the start of a burst, then a summary a second that
 * says how many). The clock is the test's: no waiting. Log lines go to a pipe read back here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "handshake_guard.h"
#include "ringmesh/log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int log_pipe[2];

static int setup(void **state)
{
    (void)state;
    if (pipe2(log_pipe, O_NONBLOCK) != 0)
        return -1;
    rm_log_configure(RM_LOG_DEBUG, log_pipe[1]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_log_configure(RM_LOG_INFO, 1);
    close(log_pipe[0]);
    close(log_pipe[1]);
    return 0;
}

/* What was logged since the last call (at most one pipe's worth). */
static const char *logged(void)
{
    static char buf[65536];
    ssize_t n = read(log_pipe[0], buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static unsigned count_of(const char *text, const char *needle)
{
    unsigned n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static rm_sockaddr_t addr4(const char *ip, uint16_t port)
{
    rm_sockaddr_t a;
    struct sockaddr_in *s = (struct sockaddr_in *)&a.ss;
    memset(&a, 0, sizeof(a));
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
    a.len = sizeof(*s);
    return a;
}

static void test_pending_limit(void **state)
{
    rm_hs_limits_t lim = {.max_pending = 3, .backoff_failures = 0, .window_ms = 1000, .backoff_ms = 1000};
    rm_sockaddr_t a = addr4("198.18.0.1", 1000);
    rm_hs_guard_t *g;
    (void)state;

    assert_int_equal(rm_hs_guard_new(&g), 0);
    (void)logged();
    for (int i = 0; i < 3; i++)
        assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 10), RM_HS_ADMIT);
    assert_int_equal(rm_hs_guard_stats(g).pending, 3);
    /* a fourth while three are in progress: refused, and the first of the burst is logged at once */
    assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 11), RM_HS_REFUSE_PENDING);
    const char *out = logged();
    assert_non_null(strstr(out, "\"event\":\"handshake_refused\""));
    assert_non_null(strstr(out, "\"cause\":\"pending_limit\""));
    assert_non_null(strstr(out, "\"peer_addr\":\"198.18.0.1:1000\""));
    /* 99 more refusals in the same burst: no line each */
    for (int i = 0; i < 99; i++)
        assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 12), RM_HS_REFUSE_PENDING);
    assert_string_equal(logged(), "");
    /* the tick within a second of the first line says nothing; a second later, one line that counts them */
    rm_hs_guard_tick(g, 500);
    assert_string_equal(logged(), "");
    rm_hs_guard_tick(g, 1011);
    out = logged();
    assert_int_equal(count_of(out, "\"event\":\"handshakes_refused\""), 1);
    assert_non_null(strstr(out, "\"pending_limit\":99"));
    assert_non_null(strstr(out, "\"backoff\":0"));
    /* a second without refusals ends the burst quietly; the next refusal is logged at once again */
    rm_hs_guard_tick(g, 2100);
    assert_string_equal(logged(), "");
    assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 2200), RM_HS_REFUSE_PENDING);
    assert_int_equal(count_of(logged(), "\"event\":\"handshake_refused\""), 1);
    /* one ends (it failed: the address stays unknown): room for one more */
    rm_hs_guard_end(g, &lim, &a, 1, 2300);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 2301), RM_HS_ADMIT);
    rm_hs_guard_stats_t s = rm_hs_guard_stats(g);
    assert_int_equal(s.pending, 3);
    assert_int_equal(s.refused_pending, 101);
    assert_int_equal(s.refused_backoff, 0);
    assert_int_equal(s.backoffs, 0); /* backoff_failures 0: failures never back an address off */
    for (int i = 0; i < 3; i++)
        rm_hs_guard_end(g, &lim, &a, 1, 2400);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 2500), RM_HS_ADMIT);
    assert_int_equal(rm_hs_guard_stats(g).backoffs, 0);

    /* a known peer (its last handshake completed) is admitted past the bound, and counts while in progress */
    rm_sockaddr_t known = addr4("198.18.0.2", 2000), unknown = addr4("198.18.0.3", 3000);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &known, 2600), RM_HS_ADMIT);
    rm_hs_guard_end(g, &lim, &known, 0, 2601);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 2602), RM_HS_ADMIT);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 2603), RM_HS_ADMIT);
    assert_int_equal(rm_hs_guard_stats(g).pending, 3);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &unknown, 2604), RM_HS_REFUSE_PENDING);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &known, 2605), RM_HS_ADMIT_TRUSTED);
    assert_int_equal(rm_hs_guard_stats(g).pending, 4);
    /* once it fails, it is unknown again and waits for room like any other */
    rm_hs_guard_end(g, &lim, &known, 1, 2606);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &known, 2607), RM_HS_REFUSE_PENDING);
    rm_hs_guard_free(g);
    (void)logged();
}

static void test_backoff(void **state)
{
    rm_hs_limits_t lim = {.max_pending = 100, .backoff_failures = 5, .window_ms = 10000, .backoff_ms = 3000};
    rm_sockaddr_t bad = addr4("198.18.0.66", 4000), bad_other_port = addr4("198.18.0.66", 4001);
    rm_sockaddr_t good = addr4("198.18.0.7", 5000);
    rm_hs_guard_t *g;
    (void)state;

    assert_int_equal(rm_hs_guard_new(&g), 0);
    (void)logged();
    /* four failures: not yet */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rm_hs_guard_admit(g, &lim, &bad, 100 + i), RM_HS_ADMIT);
        rm_hs_guard_end(g, &lim, &bad, 1, 100 + i);
    }
    assert_string_equal(logged(), "");
    assert_int_equal(rm_hs_guard_admit(g, &lim, &bad, 200), RM_HS_ADMIT);
    rm_hs_guard_end(g, &lim, &bad, 1, 200); /* the fifth: backs off, one line naming the address */
    const char *out = logged();
    assert_int_equal(count_of(out, "\"event\":\"handshake_backoff\""), 1);
    assert_non_null(strstr(out, "\"peer_addr\":\"198.18.0.66:4000\""));
    assert_non_null(strstr(out, "\"failures\":5"));
    /* every port of that address is refused; another address is not */
    assert_int_equal(rm_hs_guard_admit(g, &lim, &bad_other_port, 300), RM_HS_REFUSE_BACKOFF);
    assert_non_null(strstr(logged(), "\"cause\":\"backoff\""));
    assert_int_equal(rm_hs_guard_admit(g, &lim, &good, 301), RM_HS_ADMIT);
    rm_hs_guard_end(g, &lim, &good, 0, 302);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &good, 303), RM_HS_ADMIT_TRUSTED);
    rm_hs_guard_end(g, &lim, &good, 0, 304);
    for (int i = 0; i < 10; i++)
        assert_int_equal(rm_hs_guard_admit(g, &lim, &bad, 400 + i), RM_HS_REFUSE_BACKOFF);
    rm_hs_guard_tick(g, 1400);
    out = logged();
    assert_non_null(strstr(out, "\"backoff\":10"));
    assert_non_null(strstr(out, "\"addresses_backing_off\":1"));
    assert_int_equal(rm_hs_guard_stats(g).backing_off, 1);
    /* the back-off is over at 200 + 3000: admitted again, and its failures count afresh */
    assert_int_equal(rm_hs_guard_admit(g, &lim, &bad, 3199), RM_HS_REFUSE_BACKOFF);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &bad, 3200), RM_HS_ADMIT);
    rm_hs_guard_end(g, &lim, &bad, 1, 3200);
    assert_int_equal(rm_hs_guard_admit(g, &lim, &bad, 3201), RM_HS_ADMIT);
    /* a success forgets the address's failures (and makes it known until its next failure) */
    rm_hs_guard_end(g, &lim, &bad, 0, 3202);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rm_hs_guard_admit(g, &lim, &bad, 3300 + i), i == 0 ? RM_HS_ADMIT_TRUSTED : RM_HS_ADMIT);
        rm_hs_guard_end(g, &lim, &bad, 1, 3300 + i);
    }
    assert_int_equal(rm_hs_guard_admit(g, &lim, &bad, 3400), RM_HS_ADMIT);
    rm_hs_guard_end(g, &lim, &bad, 0, 3400);
    rm_hs_guard_stats_t s = rm_hs_guard_stats(g);
    assert_int_equal(s.backoffs, 1);
    assert_int_equal(s.refused_backoff, 12);
    assert_int_equal(s.pending, 0);
    rm_hs_guard_free(g);
    (void)logged();
}

static void test_window(void **state)
{
    rm_hs_limits_t lim = {.max_pending = 100, .backoff_failures = 3, .window_ms = 1000, .backoff_ms = 5000};
    rm_sockaddr_t a = addr4("198.18.0.9", 1);
    rm_hs_guard_t *g;
    (void)state;

    assert_int_equal(rm_hs_guard_new(&g), 0);
    /* three failures, each more than a window after the first of its window: never three in one window */
    for (int i = 0; i < 9; i++) {
        uint64_t now = 10000 + (uint64_t)i * 600;
        assert_int_equal(rm_hs_guard_admit(g, &lim, &a, now), RM_HS_ADMIT);
        rm_hs_guard_end(g, &lim, &a, 1, now);
    }
    assert_int_equal(rm_hs_guard_stats(g).backoffs, 0);
    /* three within one window: backed off */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 20000 + i), RM_HS_ADMIT);
        rm_hs_guard_end(g, &lim, &a, 1, 20000 + i);
    }
    assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 20010), RM_HS_REFUSE_BACKOFF);
    assert_int_equal(rm_hs_guard_stats(g).backoffs, 1);
    rm_hs_guard_free(g);
    (void)logged();
}

/* More failing addresses than the table holds: it never grows, the newest ones still back off, and the guard keeps
 * answering for every address. */
static void test_many_addresses(void **state)
{
    rm_hs_limits_t lim = {.max_pending = 100, .backoff_failures = 1, .window_ms = 1000, .backoff_ms = 100000};
    rm_hs_guard_t *g;
    (void)state;

    assert_int_equal(rm_hs_guard_new(&g), 0);
    for (unsigned i = 0; i < 20000; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        rm_sockaddr_t a = addr4(ip, 7);
        assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 1000 + i), RM_HS_ADMIT);
        rm_hs_guard_end(g, &lim, &a, 1, 1000 + i);
        assert_int_equal(rm_hs_guard_admit(g, &lim, &a, 1000 + i), RM_HS_REFUSE_BACKOFF);
        if (i % 1000 == 0)
            (void)logged(); /* keep the pipe from filling */
    }
    assert_int_equal(rm_hs_guard_stats(g).backoffs, 20000);
    assert_int_equal(rm_hs_guard_stats(g).pending, 0);
    rm_hs_guard_free(g);
    (void)logged();
}

static void test_null_guard(void **state)
{
    rm_hs_limits_t lim = {.max_pending = 1, .backoff_failures = 1, .window_ms = 1, .backoff_ms = 1};
    rm_sockaddr_t a = addr4("198.18.0.1", 1);
    (void)state;
    assert_int_equal(rm_hs_guard_admit(NULL, &lim, &a, 1), RM_HS_ADMIT);
    rm_hs_guard_end(NULL, &lim, &a, 1, 1);
    rm_hs_guard_tick(NULL, 1);
    assert_int_equal(rm_hs_guard_stats(NULL).pending, 0);
    rm_hs_guard_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_limit),  cmocka_unit_test(test_backoff),    cmocka_unit_test(test_window),
        cmocka_unit_test(test_many_addresses), cmocka_unit_test(test_null_guard),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
