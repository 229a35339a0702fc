/* The retry budget (lib/retry_budget.c): the minimum per second alone, the ratio of the window's requests, slots
 * that age out of the sliding window, the minimum shared between workers, and a storm of failing requests whose
 * retries stay within ratio x requests + minimum x window. Time is passed in: nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/retry.h"

/* How many retries the budget grants in a row at `now`, up to `max`. */
static unsigned drain(rm_retry_budget_t *b, int64_t now, unsigned max)
{
    unsigned n = 0;
    while (n < max && rm_retry_budget_withdraw(b, now))
        n++;
    return n;
}

static void test_minimum_alone(void **state)
{
    (void)state;
    rm_retry_budget_config_t cfg = {.ratio_permille = 200, .min_per_second = 10, .window_ms = 10000};
    rm_retry_budget_t b;
    rm_retry_budget_init(&b, &cfg, 1);
    /* no request at all: 10 per second over a 10 s window */
    assert_int_equal(drain(&b, 1000, 1000), 100);
    assert_int_equal(b.refused, 1);
    assert_int_equal(rm_retry_budget_withdraw(&b, 5000), 0);
    /* the window moves on: the slot of t=1s leaves it at t=11s and its 100 retries with it */
    assert_int_equal(drain(&b, 11000, 1000), 100);
}

static void test_ratio(void **state)
{
    (void)state;
    rm_retry_budget_config_t cfg = {.ratio_permille = 200, .min_per_second = 0, .window_ms = 10000};
    rm_retry_budget_t b;
    rm_retry_budget_init(&b, &cfg, 1);
    assert_int_equal(rm_retry_budget_withdraw(&b, 0), 0); /* nothing to retry a share of */
    for (int i = 0; i < 100; i++)
        rm_retry_budget_note_request(&b, 0);
    assert_int_equal(drain(&b, 500, 1000), 20);
    /* 5 more requests make room for exactly one more retry */
    for (int i = 0; i < 5; i++)
        rm_retry_budget_note_request(&b, 600);
    assert_int_equal(drain(&b, 700, 1000), 1);
    /* t=10.5 s: the requests and retries of the first slot (t in [0, 1 s)) have left the window together */
    assert_int_equal(drain(&b, 10500, 1000), 0);
    for (int i = 0; i < 10; i++)
        rm_retry_budget_note_request(&b, 10500);
    assert_int_equal(drain(&b, 10600, 1000), 2);
    /* a jump far ahead empties everything */
    assert_int_equal(drain(&b, 1000000, 1000), 0);
    assert_int_equal(b.sum_requests, 0);
    assert_int_equal(b.sum_retries, 0);
}

static void test_workers_share_the_minimum(void **state)
{
    (void)state;
    rm_retry_budget_config_t cfg = {.ratio_permille = 0, .min_per_second = 10, .window_ms = 10000};
    rm_retry_budget_t b;
    rm_retry_budget_init(&b, &cfg, 2);
    assert_int_equal(drain(&b, 0, 1000), 50);
    rm_retry_budget_init(&b, &cfg, 3); /* 10 / 3 rounded up */
    assert_int_equal(drain(&b, 0, 1000), 40);
}

/* An outage: every request fails and asks for two retries, 100 requests per second for 60 s. The retries granted
 * in any window never pass 0.2 x the window's requests + 10/s x 10 s. */
static void test_storm_is_bounded(void **state)
{
    (void)state;
    rm_retry_budget_config_t cfg = {.ratio_permille = 200, .min_per_second = 10, .window_ms = 10000};
    rm_retry_budget_t b;
    uint64_t granted = 0, requests = 0;
    rm_retry_budget_init(&b, &cfg, 1);
    for (int64_t t = 0; t < 60000; t += 10) {
        rm_retry_budget_note_request(&b, t);
        requests++;
        granted += (uint64_t)rm_retry_budget_withdraw(&b, t);
        granted += (uint64_t)rm_retry_budget_withdraw(&b, t);
        assert_true(b.sum_retries * 1000 <= 200 * b.sum_requests + 10 * 10000);
    }
    assert_int_equal(requests, 6000);
    /* over 60 s: at most 6 windows' worth, far below the 12,000 retries asked */
    assert_true(granted <= 6 * (200 * 1000 / 1000 + 100));
    assert_true(granted >= 5 * (200 * 1000 / 1000)); /* and the ratio is granted, not starved */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimum_alone),
        cmocka_unit_test(test_ratio),
        cmocka_unit_test(test_workers_share_the_minimum),
        cmocka_unit_test(test_storm_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
