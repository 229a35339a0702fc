/* Outlier detection (lib/outlier.c): consecutive 5xx and gateway failures eject an endpoint, a success in between
 * starts the count again, the ejection lasts base x ejections (capped, forgiven by healthy intervals), ends when
 * its time has passed, and never takes more than the allowed share of the endpoints. Time is passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/outlier.h"

static const rm_outlier_config_t defaults = {.consecutive_5xx = 5,
                                             .consecutive_gateway = 0,
                                             .base_ejection_ms = 30000,
                                             .max_ejection_ms = 300000,
                                             .max_ejection_percent = 10,
                                             .interval_ms = 10000};

/* Reports `n` responses with `status`; returns the reason of the last report. */
static rm_outlier_reason_t report_n(rm_outlier_group_t *g, rm_outlier_ep_t *ep, int n, int status, int64_t now)
{
    rm_outlier_reason_t r = RM_OUTLIER_NONE;
    for (int i = 0; i < n; i++)
        r = rm_outlier_report(g, ep, RM_OUTLIER_RESPONSE, status, now);
    return r;
}

static void test_max_ejected(void **state)
{
    (void)state;
    rm_outlier_config_t c = defaults;
    assert_int_equal(rm_outlier_max_ejected(&c, 0), 0);
    assert_int_equal(rm_outlier_max_ejected(&c, 1), 0); /* nothing to fail over to */
    assert_int_equal(rm_outlier_max_ejected(&c, 2), 1); /* 10 % of 2 rounds to 0: at least one */
    assert_int_equal(rm_outlier_max_ejected(&c, 3), 1);
    assert_int_equal(rm_outlier_max_ejected(&c, 20), 2);
    assert_int_equal(rm_outlier_max_ejected(&c, 25), 2);
    c.max_ejection_percent = 100; /* never all */
    assert_int_equal(rm_outlier_max_ejected(&c, 3), 2);
    c.max_ejection_percent = 50;
    assert_int_equal(rm_outlier_max_ejected(&c, 3), 1);
    c.max_ejection_percent = 0;
    assert_int_equal(rm_outlier_max_ejected(&c, 5), 0);
    c.max_ejection_percent = 100;
    assert_int_equal(rm_outlier_max_ejected(&c, 1000), RM_OUTLIER_EJECTED_MAX);
}

static void test_consecutive_5xx(void **state)
{
    (void)state;
    rm_outlier_group_t g;
    rm_outlier_ep_t a = {0}, b = {0};
    rm_outlier_group_init(&g, &defaults);
    rm_outlier_group_set_size(&g, 3);

    /* four failures, a success, four more: never five in a row */
    assert_int_equal(report_n(&g, &a, 4, 503, 0), RM_OUTLIER_NONE);
    assert_int_equal(report_n(&g, &a, 1, 200, 0), RM_OUTLIER_NONE);
    assert_int_equal(report_n(&g, &a, 4, 500, 0), RM_OUTLIER_NONE);
    /* a 4xx is not a failure of the endpoint: it resets too */
    assert_int_equal(report_n(&g, &a, 1, 404, 0), RM_OUTLIER_NONE);
    assert_int_equal(report_n(&g, &a, 4, 500, 0), RM_OUTLIER_NONE);
    assert_false(rm_outlier_is_ejected(&g, &a, 0));
    /* the fifth in a row; connection failures count as 503s */
    assert_int_equal(rm_outlier_report(&g, &a, RM_OUTLIER_CONNECT_FAILED, 0, 100), RM_OUTLIER_5XX);
    assert_true(rm_outlier_is_ejected(&g, &a, 100));
    assert_true(rm_outlier_is_ejected(&g, &a, 30099));
    assert_int_equal(g.ejections[RM_OUTLIER_5XX], 1);
    assert_int_equal(g.num_ejected, 1);
    /* the time passes: back, counters from zero, the group's count down */
    assert_false(rm_outlier_is_ejected(&g, &a, 30100));
    assert_int_equal(g.num_ejected, 0);
    assert_int_equal(report_n(&g, &a, 4, 503, 30100), RM_OUTLIER_NONE);
    assert_false(rm_outlier_is_ejected(&g, &b, 30100));

    /* resets and timeouts count too */
    for (int i = 0; i < 4; i++)
        assert_int_equal(rm_outlier_report(&g, &b, i % 2 ? RM_OUTLIER_RESET : RM_OUTLIER_TIMEOUT, 0, 40000),
                         RM_OUTLIER_NONE);
    assert_int_equal(rm_outlier_report(&g, &b, RM_OUTLIER_RESET, 0, 40000), RM_OUTLIER_5XX);
}

static void test_growing_and_forgiven(void **state)
{
    (void)state;
    rm_outlier_group_t g;
    rm_outlier_ep_t a = {0};
    int64_t now = 1000;
    static const int64_t want[] = {30000, 60000, 90000, 120000, 150000, 180000, 210000, 240000, 270000, 300000, 300000};
    rm_outlier_group_init(&g, &defaults);
    rm_outlier_group_set_size(&g, 2);
    /* ejected again as soon as it is back: each ejection is one base longer, up to the maximum */
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(report_n(&g, &a, 5, 503, now), RM_OUTLIER_5XX);
        assert_int_equal(a.ejected_until - now, want[i]);
        assert_true(rm_outlier_is_ejected(&g, &a, a.ejected_until - 1));
        now = a.ejected_until;
        assert_false(rm_outlier_is_ejected(&g, &a, now));
    }
    /* healthy for 95 s: 9 intervals forgive 9 of its 11 ejections; the next lasts 3 bases */
    now += 95000;
    assert_int_equal(report_n(&g, &a, 5, 503, now), RM_OUTLIER_5XX);
    assert_int_equal(a.ejected_until - now, 90000);
    now = a.ejected_until + 3600000; /* an hour later: all forgiven */
    assert_false(rm_outlier_is_ejected(&g, &a, now));
    assert_int_equal(report_n(&g, &a, 5, 503, now), RM_OUTLIER_5XX);
    assert_int_equal(a.ejected_until - now, 30000);
}

static void test_share_is_bounded(void **state)
{
    (void)state;
    rm_outlier_group_t g;
    rm_outlier_ep_t ep[3] = {{0}};
    rm_outlier_group_init(&g, &defaults);
    rm_outlier_group_set_size(&g, 3);
    assert_int_equal(report_n(&g, &ep[0], 5, 503, 0), RM_OUTLIER_5XX);
    /* 10 % of 3: one at a time. The second failing endpoint stays, counted as skipped */
    assert_int_equal(report_n(&g, &ep[1], 5, 503, 10), RM_OUTLIER_NONE);
    assert_false(rm_outlier_is_ejected(&g, &ep[1], 10));
    assert_int_equal(g.ejections_skipped, 1);
    /* once the first is back (even if nobody asked about it), the second can go */
    assert_int_equal(report_n(&g, &ep[1], 5, 503, 30000), RM_OUTLIER_5XX);
    assert_int_equal(g.num_ejected, 1);
    assert_true(rm_outlier_is_ejected(&g, &ep[1], 30000));
    /* an endpoint that leaves the destination no longer holds a place */
    rm_outlier_forget(&g, &ep[1]);
    assert_int_equal(report_n(&g, &ep[2], 5, 503, 30001), RM_OUTLIER_5XX);
    /* a single endpoint is never ejected */
    rm_outlier_group_t one;
    rm_outlier_ep_t only = {0};
    rm_outlier_group_init(&one, &defaults);
    rm_outlier_group_set_size(&one, 1);
    assert_int_equal(report_n(&one, &only, 50, 503, 0), RM_OUTLIER_NONE);
    assert_false(rm_outlier_is_ejected(&one, &only, 0));
    assert_int_equal(one.ejections_skipped, 10);
}

static void test_gateway_detector(void **state)
{
    (void)state;
    rm_outlier_config_t c = defaults;
    rm_outlier_group_t g;
    rm_outlier_ep_t a = {0}, b = {0};
    c.consecutive_gateway = 3;
    c.consecutive_5xx = 0; /* off */
    rm_outlier_group_init(&g, &c);
    rm_outlier_group_set_size(&g, 10);
    /* 500 is a 5xx but not a gateway failure: it breaks the gateway run */
    assert_int_equal(report_n(&g, &a, 2, 502, 0), RM_OUTLIER_NONE);
    assert_int_equal(report_n(&g, &a, 1, 500, 0), RM_OUTLIER_NONE);
    assert_int_equal(report_n(&g, &a, 2, 504, 0), RM_OUTLIER_NONE);
    assert_int_equal(report_n(&g, &a, 20, 500, 0), RM_OUTLIER_NONE); /* the 5xx detector is off */
    assert_int_equal(rm_outlier_report(&g, &b, RM_OUTLIER_CONNECT_FAILED, 0, 0), RM_OUTLIER_NONE);
    assert_int_equal(report_n(&g, &b, 1, 503, 0), RM_OUTLIER_NONE);
    assert_int_equal(rm_outlier_report(&g, &b, RM_OUTLIER_TIMEOUT, 0, 0), RM_OUTLIER_GATEWAY);
    assert_int_equal(g.ejections[RM_OUTLIER_GATEWAY], 1);
    assert_int_equal(g.ejections[RM_OUTLIER_5XX], 0);
    /* failures reported for an ejected endpoint (answers in flight) change nothing */
    assert_int_equal(report_n(&g, &b, 10, 503, 1), RM_OUTLIER_NONE);
    assert_int_equal(b.ejections, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_ejected),          cmocka_unit_test(test_consecutive_5xx),
        cmocka_unit_test(test_growing_and_forgiven), cmocka_unit_test(test_share_is_bounded),
        cmocka_unit_test(test_gateway_detector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
