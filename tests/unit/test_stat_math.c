/* ringmeshctl stat's numbers: histogram quantiles against values worked out by hand with Prometheus'
 * histogram_quantile rules, and a table's rates from two scrapes of a proxy (increases, new series, counter resets,
 * timestamps, the reporter, the namespace filter, the ringmesh_/istio_ prefixes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "stat.h"
#include "unit_asserts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define assert_near(x, want)                                                                                           \
    do {                                                                                                               \
        double x_ = (x), w_ = (want);                                                                                  \
        if (!(fabs(x_ - w_) <= 1e-9 * (fabs(w_) + 1)))                                                                 \
            fail_msg("%s = %.17g, want %.17g", #x, x_, w_);                                                            \
    } while (0)

static double quantile(double q, const rm_stat_bucket_t *in, size_t n)
{
    rm_stat_bucket_t b[32];

    memcpy(b, in, n * sizeof(*b)); /* the function sorts and evens out in place */
    return rm_stat_quantile(q, b, n);
}

static void test_quantile_by_hand(void **state)
{
    /* 10 observations: 2 in (0,1], 4 in (1,5], 2 in (5,10], 2 above 10 */
    static const rm_stat_bucket_t b[] = {{1, 2}, {5, 6}, {10, 8}, {INFINITY, 10}};

    assert_near(quantile(0.5, b, 4), 4.0);   /* rank 5: in (1,5], 3rd of its 4: 1 + 4 * 3/4 */
    assert_near(quantile(0.1, b, 4), 0.5);   /* rank 1: in (0,1] from 0: 0 + 1 * 1/2 */
    assert_near(quantile(0.8, b, 4), 10.0);  /* rank 8: the top of (5,10]: 5 + 5 * 2/2 */
    assert_near(quantile(0.0, b, 4), 0.0);   /* rank 0: the bottom of the first bucket */
    assert_near(quantile(0.99, b, 4), 10.0); /* rank 9.9: in +Inf, answered by the highest finite bound */
    assert_near(quantile(0.85, b, 4), 10.0); /* rank 8.5: also in +Inf */
    assert_true(isinf(quantile(1.5, b, 4)) && quantile(1.5, b, 4) > 0);
    assert_true(isinf(quantile(-0.5, b, 4)) && quantile(-0.5, b, 4) < 0);
    assert_true(isnan(quantile(NAN, b, 4)));
}

static void test_quantile_istio_buckets(void **state)
{
    /* Istio's default duration buckets (ms); 3 requests took up to 1 ms, 1 up to 5 ms, 6 between 10 and 25 ms */
    static const double bounds[] = {0.5,  1,    5,     10,    25,    50,     100,    250,     500,     1000,
                                    2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000, INFINITY};
    rm_stat_bucket_t b[20];
    size_t i;

    for (i = 0; i != 20; ++i) {
        b[i].le = bounds[i];
        b[i].count = bounds[i] < 1 ? 0 : bounds[i] < 5 ? 3 : bounds[i] < 25 ? 4 : 10;
    }
    assert_near(quantile(0.5, b, 20), 12.5);                 /* rank 5 in (10,25]: 10 + 15 * (5-4)/6 */
    assert_near(quantile(0.99, b, 20), 24.75);               /* rank 9.9 in (10,25]: 10 + 15 * 5.9/6 */
    assert_near(quantile(0.25, b, 20), 0.5 + 0.5 * 2.5 / 3); /* rank 2.5 in (0.5,1] */
}

static void test_quantile_odd_inputs(void **state)
{
    /* unsorted, a bound twice (two series summed), and a +Inf bucket lower than the one before it */
    static const rm_stat_bucket_t odd[] = {{INFINITY, 5}, {5, 3}, {1, 1}, {5, 3}};
    static const rm_stat_bucket_t no_inf[] = {{1, 2}, {5, 6}};
    static const rm_stat_bucket_t empty[] = {{1, 0}, {INFINITY, 0}};
    static const rm_stat_bucket_t only_inf[] = {{INFINITY, 4}};
    static const rm_stat_bucket_t from_zero[] = {{0, 5}, {10, 10}, {INFINITY, 10}};

    /* (1,1), (5,6), (+Inf,6 after evening out): rank 3 in (1,5]: 1 + 4 * 2/5 */
    assert_near(quantile(0.5, odd, 4), 2.6);
    assert_true(isnan(quantile(0.5, no_inf, 2)));
    assert_true(isnan(quantile(0.5, empty, 2)));
    assert_true(isnan(quantile(0.5, only_inf, 1)));
    assert_true(isnan(rm_stat_quantile(0.5, NULL, 0)));
    assert_near(quantile(0.2, from_zero, 3), 0.0); /* a first bound <= 0 is returned as is */
    assert_near(quantile(0.75, from_zero, 3), 5.0);
}

/* ---- rates from two scrapes ---- */

/* a destination series' labels, left open for the rest */
#define OPEN(ns, wl)                                                                                                   \
    "{reporter=\"destination\",destination_workload_namespace=\"" ns "\",destination_workload=\"" wl "\","
#define SHOP OPEN("shop", "orders") "request_protocol=\"http\","
#define GRPC                                                                                                           \
    OPEN("shop", "orders")                                                                                             \
    "request_protocol=\"grpc\",response_code=\"200\",connection_security_policy=\"mutual_"                             \
    "tls\","

static const char before_page[] =
    "# TYPE ringmesh_requests_total counter\n"
    "ringmesh_requests_total" SHOP "response_code=\"200\",connection_security_policy=\"mutual_tls\"} 100\n"
    "ringmesh_requests_total" SHOP "response_code=\"503\",connection_security_policy=\"mutual_tls\"} 10\n"
    "ringmesh_requests_total" SHOP "response_code=\"403\",connection_security_policy=\"none\"} 5\n"
    "ringmesh_requests_total" SHOP "response_code=\"204\",connection_security_policy=\"mutual_tls\"} 30\n"
    "ringmesh_requests_total" GRPC "grpc_response_status=\"0\"} 50\n"
    "ringmesh_requests_total" GRPC "grpc_response_status=\"7\"} 2\n"
    "ringmesh_requests_total{reporter=\"source\",destination_workload_namespace=\"shop\","
    "destination_workload=\"orders\",response_code=\"200\"} 1000\n"
    "istio_requests_total" SHOP "response_code=\"200\"} 7\n"
    "ringmesh_requests_total" OPEN(
        "web", "front\\\"end") "response_code=\"200\"} 1\n"
                               "ringmesh_request_duration_milliseconds_bucket" SHOP "le=\"5\"} 10\n"
                               "ringmesh_request_duration_milliseconds_bucket" SHOP "le=\"25\"} 20\n"
                               "ringmesh_request_duration_milliseconds_bucket" SHOP "le=\"+Inf\"} 20\n"
                               "ringmesh_tcp_connections_opened_total" OPEN(
                                   "shop", "orders") "request_protocol=\"tcp\"} 10\n"
                                                     "ringmesh_tcp_connections_closed_total" OPEN(
                                                         "shop", "orders") "request_protocol=\"tcp\"} 4\n";

/* 2 s later: +100 ok over mTLS, +10 503s, +10 403s without mTLS, the 204 series reset to 6 (a restart), +20 gRPC
 * OK, +10 gRPC PERMISSION_DENIED, a new series of 4 201s; the source reporter's counts never matter. */
static const char after_page[] =
    "ringmesh_requests_total" SHOP "response_code=\"200\",connection_security_policy=\"mutual_tls\"} 200\n"
    "ringmesh_requests_total" SHOP "response_code=\"503\",connection_security_policy=\"mutual_tls\"} 20\n"
    "ringmesh_requests_total" SHOP "response_code=\"403\",connection_security_policy=\"none\"} 15\n"
    "ringmesh_requests_total" SHOP "response_code=\"204\",connection_security_policy=\"mutual_tls\"} 6\n"
    "ringmesh_requests_total" GRPC "grpc_response_status=\"0\"} 70\n"
    "ringmesh_requests_total" GRPC "grpc_response_status=\"7\"} 12\n"
    "ringmesh_requests_total" SHOP "response_code=\"201\",connection_security_policy=\"none\"} 4\n"
    "ringmesh_requests_total{reporter=\"source\",destination_workload_namespace=\"shop\","
    "destination_workload=\"orders\",response_code=\"200\"} 5000\n"
    "istio_requests_total" SHOP "response_code=\"200\"} 9999\n"
    "ringmesh_requests_total" OPEN(
        "web", "front\\\"end") "response_code=\"200\"} 3\n"
                               "ringmesh_request_duration_milliseconds_bucket" SHOP "le=\"5\"} 90\n"
                               "ringmesh_request_duration_milliseconds_bucket" SHOP "le=\"25\"} 180\n"
                               "ringmesh_request_duration_milliseconds_bucket" SHOP "le=\"+Inf\"} 180\n"
                               "ringmesh_tcp_connections_opened_total" OPEN(
                                   "shop", "orders") "request_protocol=\"tcp\"} 15\n"
                                                     "ringmesh_tcp_connections_closed_total" OPEN(
                                                         "shop", "orders") "request_protocol=\"tcp\"} 12\n";

static void scrape(rm_stat_scrape_t *s, const char *page)
{
    char err[256] = "";

    memset(s, 0, sizeof(*s));
    if (rm_stat_scrape_parse(s, page, strlen(page), err, sizeof(err)) != 0)
        fail_msg("%s", err);
}

static void test_rates_from_two_scrapes(void **state)
{
    rm_stat_scrape_t before, after;
    rm_stat_table_t t = {0};
    const rm_stat_row_t *r;

    scrape(&before, before_page);
    scrape(&after, after_page);
    assert_int_equal(rm_stat_scrape_prefix(&after), RM_STAT_PREFIX_RINGMESH);
    assert_int_equal(rm_stat_table_add_scrapes(&t, &before, &after, 2000, NULL), 0);
    rm_stat_table_finish(&t);
    assert_int_equal(t.num, 2);

    r = &t.rows[0];
    assert_string_equal(r->namespace, "shop");
    assert_string_equal(r->workload, "orders");
    /* 100 + 10 + 10 + 6 + 20 + 10 + 4 = 160 requests in 2 s */
    assert_near(r->requests, 160);
    assert_near(r->req_rate, 80);
    /* failed: the 10 503s and the 10 gRPC 7s (a gRPC answer is judged by its grpc-status, not its HTTP 200) */
    assert_near(r->success_rate, 70);
    /* the 10 403s and the 10 gRPC PERMISSION_DENIED */
    assert_near(r->deny_rate, 10);
    /* all but the 10 403s and the 4 201s */
    assert_near(r->mtls_rate, 73);
    /* opened 15, closed 12: 3 open (the totals, not their increase) */
    assert_near(r->tcp_open, 3);
    /* bucket increases 80, 160, 160: the median (rank 80) is 5; p99 (rank 158.4) in (5,25]: 5 + 20 * 78.4/80 */
    assert_near(r->p50_ms, 5);
    assert_near(r->p99_ms, 24.6);

    r = &t.rows[1];
    assert_string_equal(r->namespace, "web");
    assert_string_equal(r->workload, "front\"end");
    assert_near(r->requests, 2);
    assert_near(r->req_rate, 1);
    assert_true(isnan(r->p50_ms));
    rm_stat_table_free(&t);
    rm_stat_scrape_free(&before);
    rm_stat_scrape_free(&after);
}

static void test_namespace_filter(void **state)
{
    rm_stat_scrape_t before, after;
    rm_stat_table_t t = {0};

    scrape(&before, before_page);
    scrape(&after, after_page);
    assert_int_equal(rm_stat_table_add_scrapes(&t, &before, &after, 2000, "web"), 0);
    rm_stat_table_finish(&t);
    assert_int_equal(t.num, 1);
    assert_string_equal(t.rows[0].workload, "front\"end");
    rm_stat_table_free(&t);
    rm_stat_scrape_free(&before);
    rm_stat_scrape_free(&after);
}

/* Two proxies of one workload add up; timestamps on the samples give the time between the scrapes. */
static void test_replicas_and_timestamps(void **state)
{
    static const char a1[] = "istio_requests_total" SHOP "response_code=\"200\"} 10 1000000\n",
                      a2[] = "istio_requests_total" SHOP "response_code=\"200\"} 40 1005000\n",
                      b1[] = "istio_requests_total" SHOP "response_code=\"500\"} 0\n",
                      b2[] = "istio_requests_total" SHOP "response_code=\"500\"} 20\n";
    rm_stat_scrape_t s[4];
    rm_stat_table_t t = {0};

    scrape(&s[0], a1);
    scrape(&s[1], a2);
    scrape(&s[2], b1);
    scrape(&s[3], b2);
    assert_true(s[1].timestamped && s[1].timestamp_ms == 1005000 && !s[3].timestamped);
    assert_int_equal(rm_stat_scrape_prefix(&s[1]), RM_STAT_PREFIX_ISTIO); /* only istio_ names: those */
    /* the first proxy's samples say 5 s apart, whatever was measured; the second's were measured 2 s apart */
    assert_int_equal(rm_stat_table_add_scrapes(&t, &s[0], &s[1], 2000, NULL), 0);
    assert_int_equal(rm_stat_table_add_scrapes(&t, &s[2], &s[3], 2000, NULL), 0);
    rm_stat_table_finish(&t);
    assert_int_equal(t.num, 1);
    assert_near(t.rows[0].requests, 50);
    assert_near(t.rows[0].req_rate, 30.0 / 5 + 20.0 / 2);
    assert_near(t.rows[0].success_rate, 6);
    rm_stat_table_free(&t);
    for (int i = 0; i != 4; ++i)
        rm_stat_scrape_free(&s[i]);
}

/* Label values that look like the key's own separators still make distinct series. */
static void test_series_keys(void **state)
{
    static const char p1[] = "ringmesh_requests_total" SHOP "x=\"1\\ny=2:3\"} 5\n"
                             "ringmesh_requests_total" SHOP "x=\"1\",y=\"3\"} 7\n",
                      p2[] = "ringmesh_requests_total" SHOP "x=\"1\\ny=2:3\"} 6\n"
                             "ringmesh_requests_total" SHOP "x=\"1\",y=\"3\"} 9\n";
    rm_stat_scrape_t a, b;
    rm_stat_table_t t = {0};

    scrape(&a, p1);
    scrape(&b, p2);
    assert_int_equal(rm_stat_table_add_scrapes(&t, &a, &b, 1000, NULL), 0);
    assert_near(t.rows[0].requests, 3);
    rm_stat_table_free(&t);
    rm_stat_scrape_free(&a);
    rm_stat_scrape_free(&b);
}

static void test_bad_bucket(void **state)
{
    static const char no_le[] = "ringmesh_request_duration_milliseconds_bucket" SHOP "x=\"1\"} 5\n",
                      bad_le[] = "a 1\nringmesh_request_duration_milliseconds_bucket" SHOP "le=\"fast\"} 5\n";
    rm_stat_scrape_t s = {0};
    char err[256];

    assert_int_equal(rm_stat_scrape_parse(&s, no_le, strlen(no_le), err, sizeof(err)), -1);
    assert_string_equal(err, "line 1: the bucket 'ringmesh_request_duration_milliseconds_bucket' has no 'le' label");
    rm_stat_scrape_free(&s);
    assert_int_equal(rm_stat_scrape_parse(&s, bad_le, strlen(bad_le), err, sizeof(err)), -1);
    assert_string_equal(err, "line 2: the bucket bound le=\"fast\" of 'ringmesh_request_duration_milliseconds_bucket' "
                             "is not a number");
    rm_stat_scrape_free(&s);
}

/* A series given twice in one page would have its increase taken between two different samples: the same page
 * scraped twice would count requests that never happened. The page is refused, naming both lines. */
static void test_series_given_twice(void **state)
{
    static const char twice[] = "ringmesh_requests_total" SHOP "response_code=\"201\"} 4\n"
                                "ringmesh_requests_total" SHOP "response_code=\"200\"} 7\n"
                                "# the labels in another order are the same series\n"
                                "ringmesh_requests_total{response_code=\"201\",request_protocol=\"http\","
                                "destination_workload=\"orders\",destination_workload_namespace=\"shop\","
                                "reporter=\"destination\"} 8\n"
                                "ringmesh_requests_total" SHOP "response_code=\"200\"} 7\n",
                      other_reporter[] = "ringmesh_requests_total" SHOP "response_code=\"201\"} 4\n"
                                         "ringmesh_requests_total{reporter=\"source\"} 4\n"
                                         "ringmesh_requests_total{reporter=\"source\"} 5\n";
    rm_stat_scrape_t s = {0}, again = {0};
    rm_stat_table_t t = {0};
    char err[256] = "";

    assert_int_equal(rm_stat_scrape_parse(&s, twice, strlen(twice), err, sizeof(err)), -1);
    assert_string_equal(err, "line 4: the series 'ringmesh_requests_total' is given again (same name and labels as "
                             "on line 1)");
    rm_stat_scrape_free(&s);

    /* series the table does not read are not its concern */
    scrape(&s, other_reporter);
    scrape(&again, other_reporter);
    assert_int_equal(rm_stat_table_add_scrapes(&t, &s, &again, 1000, NULL), 0);
    assert_int_equal(t.num, 1);
    assert_near(t.rows[0].requests, 0);
    rm_stat_table_free(&t);
    rm_stat_scrape_free(&s);
    rm_stat_scrape_free(&again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantile_by_hand),    cmocka_unit_test(test_quantile_istio_buckets),
        cmocka_unit_test(test_quantile_odd_inputs), cmocka_unit_test(test_rates_from_two_scrapes),
        cmocka_unit_test(test_namespace_filter),    cmocka_unit_test(test_replicas_and_timestamps),
        cmocka_unit_test(test_series_keys),         cmocka_unit_test(test_bad_bucket),
        cmocka_unit_test(test_series_given_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
