/* The per-request balancer (ringmesh/lb.h): a slow endpoint gets few requests and an idle fast one more, the peak
 * of the latency counts at once and decays, a new endpoint stands at the default RTT, the two candidates are
 * distinct and the choice is deterministic for a seed. Time is simulated: no clock is read. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ringmesh/lb.h"

#define MS 1000000ull

static const rm_lb_ewma_cfg_t cfg = {.decay_ns = 10000 * MS, .default_rtt_ns = 30 * MS};

/* A request in flight in the simulation: to which endpoint, sent when, answered when. */
typedef struct st_flight_t {
    int ep;
    uint64_t sent, due;
} flight_t;

/* Sends one request every millisecond for `n` ms to 3 endpoints answering in lat[i] ns, completing in time order
 * those due before each send; counts where each went. */
static void simulate(const uint64_t lat[3], unsigned n, unsigned counts[3])
{
    rm_lb_ewma_t eps[3];
    rm_lb_ewma_t *stats[3] = {&eps[0], &eps[1], &eps[2]};
    static flight_t flights[4096];
    size_t num_flights = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ull;

    memset(eps, 0, sizeof(eps));
    memset(counts, 0, 3 * sizeof(counts[0]));
    for (unsigned t = 0; t < n; t++) {
        uint64_t now = (uint64_t)t * MS;
        for (size_t i = 0; i < num_flights;) {
            if (flights[i].due <= now) {
                rm_lb_ewma_done(&eps[flights[i].ep], &cfg, flights[i].sent, flights[i].due);
                flights[i] = flights[--num_flights];
            } else {
                i++;
            }
        }
        int ep = rm_lb_ewma_pick(stats, 3, &cfg, now, &rng);
        assert_true(ep >= 0 && ep < 3);
        assert_true(num_flights < sizeof(flights) / sizeof(flights[0]));
        rm_lb_ewma_start(&eps[ep]);
        flights[num_flights++] = (flight_t){ep, now, now + lat[ep]};
        counts[ep]++;
    }
}

static void test_slow_gets_fewer(void **state)
{
    (void)state;
    const uint64_t lat[3] = {200 * MS, 2 * MS, 2 * MS};
    unsigned counts[3];
    simulate(lat, 20000, counts);
    assert_int_equal(counts[0] + counts[1] + counts[2], 20000);
    /* uniform would give the slow one a third; P2C on latency and load gives it a small share */
    assert_true(counts[0] * 20 < counts[1]);
    assert_true(counts[0] * 20 < counts[2]);
    /* the two fast ones share the rest about evenly */
    assert_true(counts[1] * 10 > counts[2] * 8 && counts[2] * 10 > counts[1] * 8);
}

static void test_equal_endpoints_share(void **state)
{
    (void)state;
    const uint64_t lat[3] = {5 * MS, 5 * MS, 5 * MS};
    unsigned counts[3];
    simulate(lat, 30000, counts);
    for (int i = 0; i < 3; i++)
        assert_true(counts[i] > 8000 && counts[i] < 12000);
}

static void test_idle_fast_wins(void **state)
{
    (void)state;
    rm_lb_ewma_t busy = {0}, idle = {0};
    rm_lb_ewma_t *stats[2] = {&busy, &idle};
    uint64_t rng = 7;
    /* both measured at 5 ms; busy has 4 requests in flight */
    rm_lb_ewma_start(&busy);
    rm_lb_ewma_done(&busy, &cfg, 0, 5 * MS);
    rm_lb_ewma_start(&idle);
    rm_lb_ewma_done(&idle, &cfg, 0, 5 * MS);
    for (int i = 0; i < 4; i++)
        rm_lb_ewma_start(&busy);
    assert_int_equal(busy.pending, 4);
    assert_int_equal(idle.pending, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(rm_lb_ewma_pick(stats, 2, &cfg, 6 * MS, &rng), 1);
    /* once the busy one drains and the idle one gets busier, the choice turns */
    for (int i = 0; i < 4; i++)
        rm_lb_ewma_cancel(&busy);
    for (int i = 0; i < 3; i++)
        rm_lb_ewma_start(&idle);
    for (int i = 0; i < 100; i++)
        assert_int_equal(rm_lb_ewma_pick(stats, 2, &cfg, 6 * MS, &rng), 0);
}

static void test_peak_then_decay(void **state)
{
    (void)state;
    rm_lb_ewma_t e = {0};
    /* never measured: the default RTT */
    assert_true(fabs(rm_lb_ewma_rtt(&e, &cfg, 0) - 30.0 * MS) < 1.0);
    rm_lb_ewma_start(&e);
    rm_lb_ewma_done(&e, &cfg, 0, 10 * MS);
    assert_true(fabs(rm_lb_ewma_rtt(&e, &cfg, 10 * MS) - 10.0 * MS) < 1.0);
    /* a slower answer is taken whole at once */
    rm_lb_ewma_start(&e);
    rm_lb_ewma_done(&e, &cfg, 10 * MS, 110 * MS);
    assert_true(fabs(rm_lb_ewma_rtt(&e, &cfg, 110 * MS) - 100.0 * MS) < 1.0);
    /* a faster one moves it down by the decay since the last update only (1 s of 10 s: about 9.5 %) */
    rm_lb_ewma_start(&e);
    rm_lb_ewma_done(&e, &cfg, 1109 * MS, 1110 * MS);
    double w = exp(-0.1);
    assert_true(fabs(rm_lb_ewma_rtt(&e, &cfg, 1110 * MS) - (100.0 * MS * w + 1.0 * MS * (1 - w))) < 1.0);
    /* left alone for one decay time, an estimate keeps exp(-1) of itself */
    double before = rm_lb_ewma_rtt(&e, &cfg, 1110 * MS);
    assert_true(fabs(rm_lb_ewma_rtt(&e, &cfg, 11110 * MS) - before * exp(-1.0)) < 1.0);
    /* load is the estimate times (pending + 1) */
    rm_lb_ewma_start(&e);
    rm_lb_ewma_start(&e);
    assert_true(fabs(rm_lb_ewma_load(&e, &cfg, 1110 * MS) - 3.0 * before) < 1.0);
    /* pending never goes below 0 */
    rm_lb_ewma_cancel(&e);
    rm_lb_ewma_cancel(&e);
    rm_lb_ewma_cancel(&e);
    assert_int_equal(e.pending, 0);
}

static void test_new_endpoint_at_default(void **state)
{
    (void)state;
    rm_lb_ewma_t fast = {0}, slow = {0}, fresh = {0};
    uint64_t rng = 99;
    rm_lb_ewma_start(&fast);
    rm_lb_ewma_done(&fast, &cfg, 0, 1 * MS);
    rm_lb_ewma_start(&slow);
    rm_lb_ewma_done(&slow, &cfg, 0, 100 * MS);
    rm_lb_ewma_t *a[2] = {&fast, &fresh};
    rm_lb_ewma_t *b[2] = {&slow, &fresh};
    assert_int_equal(rm_lb_ewma_pick(a, 2, &cfg, 100 * MS, &rng), 0);
    assert_int_equal(rm_lb_ewma_pick(b, 2, &cfg, 100 * MS, &rng), 1);
}

static void test_distinct_and_deterministic(void **state)
{
    (void)state;
    rm_lb_ewma_t eps[5] = {{0}};
    rm_lb_ewma_t *stats[5] = {&eps[0], &eps[1], &eps[2], &eps[3], &eps[4]};
    uint64_t r1 = 12345, r2 = 12345;
    unsigned seen[5] = {0};
    assert_int_equal(rm_lb_ewma_pick(stats, 0, &cfg, 0, &r1), -1);
    assert_int_equal(rm_lb_ewma_pick(stats, 1, &cfg, 0, &r1), 0);
    r1 = 12345;
    for (int i = 0; i < 1000; i++) {
        int x = rm_lb_ewma_pick(stats, 5, &cfg, 0, &r1);
        assert_int_equal(x, rm_lb_ewma_pick(stats, 5, &cfg, 0, &r2));
        seen[x]++;
    }
    /* equal loads: the first drawn wins, and every candidate is drawn */
    for (int i = 0; i < 5; i++)
        assert_true(seen[i] > 100);
    /* with one endpoint far cheaper, it wins whenever it is drawn: about 2/n of the picks, never less than 1/n */
    rm_lb_ewma_start(&eps[0]);
    rm_lb_ewma_done(&eps[0], &cfg, 0, 1);
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < 1000; i++)
        seen[rm_lb_ewma_pick(stats, 5, &cfg, 1, &r1)]++;
    assert_true(seen[0] > 330 && seen[0] < 470);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_gets_fewer),         cmocka_unit_test(test_equal_endpoints_share),
        cmocka_unit_test(test_idle_fast_wins),          cmocka_unit_test(test_peak_then_decay),
        cmocka_unit_test(test_new_endpoint_at_default), cmocka_unit_test(test_distinct_and_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
