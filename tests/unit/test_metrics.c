/* The metrics registry (ringmesh/metrics.h): both exposition formats byte for byte on a small fixed input, label
 * and HELP escaping, canonical numbers, shards merged while two threads record and a third scrapes, the series
 * limit and its overflow series with the folded counter, expiry, Accept negotiation and the older text rewritten
 * as OpenMetrics. Time is the caller's clock: the tests pass their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const two_labels[] = {"code", "peer"};
static const double small_bounds[] = {0.5, 1, 1e6};
static const rm_metric_def_t defs[] = {
    {"requests_total", "Requests \"seen\", by code\\peer.", RM_METRIC_COUNTER, two_labels, 2, NULL, 0},
    {"size_bytes", "Sizes.", RM_METRIC_HISTOGRAM, two_labels, 2, small_bounds, 3},
};

static char page[16384];

static const char *render(rm_metrics_t *m, rm_metrics_format_t fmt)
{
    size_t n = rm_metrics_render(m, "t_", fmt, page, sizeof(page), 0);
    assert_true(n < sizeof(page) - 1);
    page[n] = '\0';
    return page;
}

static void test_formats_byte_exact(void **state)
{
    rm_metrics_t *m;
    assert_int_equal(rm_metrics_new(&m, defs, 2, 2), 0);
    const char *a[] = {"200", "x"}, *b[] = {"503", "say \"hi\"\\\n"};
    rm_metrics_add(rm_metrics_shard(m, 0), 0, a, 2, 1);
    rm_metrics_add(rm_metrics_shard(m, 1), 0, a, 3, 1); /* same labels, other shard: summed */
    rm_metrics_add(rm_metrics_shard(m, 1), 0, b, 1, 1);
    rm_metrics_observe(rm_metrics_shard(m, 0), 1, a, 0.5, 1);  /* on a bound: in it */
    rm_metrics_observe(rm_metrics_shard(m, 1), 1, a, 0.75, 1); /* (0.5, 1] */
    rm_metrics_observe(rm_metrics_shard(m, 1), 1, a, 2e6, 1);  /* +Inf */
    assert_string_equal(render(m, RM_METRICS_PROMETHEUS),
                        "# HELP t_requests_total Requests \"seen\", by code\\\\peer.\n"
                        "# TYPE t_requests_total counter\n"
                        "t_requests_total{code=\"200\",peer=\"x\"} 5\n"
                        "t_requests_total{code=\"503\",peer=\"say \\\"hi\\\"\\\\\\n\"} 1\n"
                        "# HELP t_size_bytes Sizes.\n"
                        "# TYPE t_size_bytes histogram\n"
                        "t_size_bytes_bucket{code=\"200\",peer=\"x\",le=\"0.5\"} 1\n"
                        "t_size_bytes_bucket{code=\"200\",peer=\"x\",le=\"1\"} 2\n"
                        "t_size_bytes_bucket{code=\"200\",peer=\"x\",le=\"1e+06\"} 2\n"
                        "t_size_bytes_bucket{code=\"200\",peer=\"x\",le=\"+Inf\"} 3\n"
                        "t_size_bytes_sum{code=\"200\",peer=\"x\"} 2.00000125e+06\n"
                        "t_size_bytes_count{code=\"200\",peer=\"x\"} 3\n"
                        "# HELP ringmesh_metrics_series_folded_total Recordings whose label set was new when the "
                        "metric already had metrics.maxSeriesPerMetric series: counted in its overflow series (every "
                        "label \"overflow\") instead.\n"
                        "# TYPE ringmesh_metrics_series_folded_total counter\n"
                        "ringmesh_metrics_series_folded_total{metric=\"t_requests_total\"} 0\n"
                        "ringmesh_metrics_series_folded_total{metric=\"t_size_bytes\"} 0\n");
    assert_string_equal(render(m, RM_METRICS_OPENMETRICS),
                        "# TYPE t_requests counter\n"
                        "# HELP t_requests Requests \\\"seen\\\", by code\\\\peer.\n"
                        "t_requests_total{code=\"200\",peer=\"x\"} 5\n"
                        "t_requests_total{code=\"503\",peer=\"say \\\"hi\\\"\\\\\\n\"} 1\n"
                        "# TYPE t_size_bytes histogram\n"
                        "# HELP t_size_bytes Sizes.\n"
                        "t_size_bytes_bucket{code=\"200\",peer=\"x\",le=\"0.5\"} 1\n"
                        "t_size_bytes_bucket{code=\"200\",peer=\"x\",le=\"1.0\"} 2\n"
                        "t_size_bytes_bucket{code=\"200\",peer=\"x\",le=\"1e+06\"} 2\n"
                        "t_size_bytes_bucket{code=\"200\",peer=\"x\",le=\"+Inf\"} 3\n"
                        "t_size_bytes_sum{code=\"200\",peer=\"x\"} 2.00000125e+06\n"
                        "t_size_bytes_count{code=\"200\",peer=\"x\"} 3\n"
                        "# TYPE ringmesh_metrics_series_folded counter\n"
                        "# HELP ringmesh_metrics_series_folded Recordings whose label set was new when the "
                        "metric already had metrics.maxSeriesPerMetric series: counted in its overflow series (every "
                        "label \\\"overflow\\\") instead.\n"
                        "ringmesh_metrics_series_folded_total{metric=\"t_requests_total\"} 0\n"
                        "ringmesh_metrics_series_folded_total{metric=\"t_size_bytes\"} 0\n");
    rm_metrics_free(m);
}

static void test_empty_registry_writes_nothing(void **state)
{
    rm_metrics_t *m;
    assert_int_equal(rm_metrics_new(&m, defs, 2, 1), 0);
    assert_string_equal(render(m, RM_METRICS_PROMETHEUS), "");
    rm_metrics_free(m);
}

static void test_bad_definitions(void **state)
{
    rm_metrics_t *m;
    static const double unsorted[] = {2, 1};
    const rm_metric_def_t no_total = {"requests", "", RM_METRIC_COUNTER, two_labels, 2, NULL, 0};
    const rm_metric_def_t bad_bounds = {"h", "", RM_METRIC_HISTOGRAM, two_labels, 2, unsorted, 2};
    assert_int_equal(rm_metrics_new(&m, &no_total, 1, 1), -22);
    assert_int_equal(rm_metrics_new(&m, &bad_bounds, 1, 1), -22);
    assert_null(m);
}

static void test_canonical_numbers(void **state)
{
    static const struct {
        double v;
        const char *canonical, *plain;
    } cases[] = {
        {0, "0.0", "0"},
        {0.5, "0.5", "0.5"},
        {1, "1.0", "1"},
        {25, "25.0", "25"},
        {100000, "100000.0", "100000"},
        {1e6, "1e+06", "1e+06"},
        {1.8e6, "1.8e+06", "1.8e+06"},
        {3.6e6, "3.6e+06", "3.6e+06"},
        {1e-5, "1e-05", "1e-05"},
        {0.0001, "0.0001", "0.0001"},
        {1e23, "1e+23", "1e+23"},
        {0.1, "0.1", "0.1"},
    };
    char b[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        b[rm_metrics_put_number(b, sizeof(b), 0, cases[i].v, 1)] = '\0';
        assert_string_equal(b, cases[i].canonical);
        b[rm_metrics_put_number(b, sizeof(b), 0, cases[i].v, 0)] = '\0';
        assert_string_equal(b, cases[i].plain);
    }
}

/* Past the limit a new label set goes to the overflow series and is counted as folded; known ones still record. */
static void test_fold_past_limit(void **state)
{
    rm_metrics_t *m;
    char peer[16];
    const char *v[] = {"200", peer};
    assert_int_equal(rm_metrics_new(&m, defs, 2, 2), 0);
    rm_metrics_set_limits(m, 3, 0);
    for (int i = 0; i < 3; i++) {
        snprintf(peer, sizeof(peer), "p%d", i);
        rm_metrics_add(rm_metrics_shard(m, i % 2), 0, v, 1, 1);
    }
    for (int i = 3; i < 8; i++) { /* five new label sets, over two shards */
        snprintf(peer, sizeof(peer), "p%d", i);
        rm_metrics_add(rm_metrics_shard(m, i % 2), 0, v, 10, 1);
    }
    snprintf(peer, sizeof(peer), "p0");
    rm_metrics_add(rm_metrics_shard(m, 0), 0, v, 1, 1); /* known: not folded */
    render(m, RM_METRICS_PROMETHEUS);
    assert_non_null(strstr(page, "t_requests_total{code=\"200\",peer=\"p0\"} 2\n"));
    assert_non_null(strstr(page, "t_requests_total{code=\"200\",peer=\"p2\"} 1\n"));
    assert_null(strstr(page, "peer=\"p3\""));
    assert_non_null(strstr(page, "t_requests_total{code=\"overflow\",peer=\"overflow\"} 50\n"));
    assert_non_null(strstr(page, "ringmesh_metrics_series_folded_total{metric=\"t_requests_total\"} 5\n"));
    assert_non_null(strstr(page, "ringmesh_metrics_series_folded_total{metric=\"t_size_bytes\"} 0\n"));
    rm_metrics_free(m);
}

/* A series not recorded into for the expiry goes away, and frees its place under the limit. */
static void test_expiry(void **state)
{
    rm_metrics_t *m;
    const char *old[] = {"200", "gone"}, *fresh[] = {"200", "here"}, *later[] = {"200", "later"};
    assert_int_equal(rm_metrics_new(&m, defs, 2, 1), 0);
    rm_metrics_set_limits(m, 2, 1000);
    rm_metrics_shard_t *sh = rm_metrics_shard(m, 0);
    rm_metrics_add(sh, 0, old, 1, 100);
    rm_metrics_observe(sh, 1, old, 3, 100);
    rm_metrics_add(sh, 0, fresh, 1, 100);
    rm_metrics_add(sh, 0, fresh, 1, 900);
    assert_int_equal(rm_metrics_expire(sh, 1099), 0);
    assert_int_equal(rm_metrics_expire(sh, 1100), 2); /* "gone" in both families */
    render(m, RM_METRICS_PROMETHEUS);
    assert_null(strstr(page, "gone"));
    assert_null(strstr(page, "# TYPE t_size_bytes")); /* its only series went */
    assert_non_null(strstr(page, "peer=\"here\"} 2\n"));
    rm_metrics_add(sh, 0, later, 1, 1200); /* the freed place is taken, nothing folds */
    render(m, RM_METRICS_PROMETHEUS);
    assert_non_null(strstr(page, "peer=\"later\"} 1\n"));
    assert_non_null(strstr(page, "{metric=\"t_requests_total\"} 0\n"));
    assert_int_equal(rm_metrics_expire(sh, 5000), 2);
    rm_metrics_free(m);
}

/* A kept series (rm_metrics_series) records as rm_metrics_add / _observe would, recordings into the overflow series
 * through it count as folded, and the generation changes when a kept pointer may be stale: expiry removed a series,
 * or a new limit may give a folded label set its own series. */
static void test_kept_series(void **state)
{
    rm_metrics_t *m;
    const char *a[] = {"200", "a"}, *b[] = {"200", "b"};
    assert_int_equal(rm_metrics_new(&m, defs, 2, 1), 0);
    rm_metrics_set_limits(m, 1, 1000);
    rm_metrics_shard_t *sh = rm_metrics_shard(m, 0);
    uint64_t gen = rm_metrics_generation(sh);
    rm_metric_series_t *xa = rm_metrics_series(sh, 0, a, 10), *xb = rm_metrics_series(sh, 0, b, 10);
    rm_metric_series_t *ha = rm_metrics_series(sh, 1, a, 10);
    assert_non_null(xa);
    assert_non_null(xb);
    assert_ptr_not_equal(xa, xb); /* b is past the limit: the overflow series */
    for (int i = 0; i < 3; i++) {
        rm_metrics_series_add(sh, 0, xa, 2, 10);
        rm_metrics_series_add(sh, 0, xb, 1, 10);
    }
    rm_metrics_series_observe(sh, 1, ha, 0.75, 10);
    rm_metrics_series_add(sh, 1, ha, 1, 10); /* a histogram is not a counter: nothing */
    rm_metrics_add(sh, 0, a, 1, 10);
    render(m, RM_METRICS_PROMETHEUS);
    assert_non_null(strstr(page, "t_requests_total{code=\"200\",peer=\"a\"} 7\n"));
    assert_non_null(strstr(page, "t_requests_total{code=\"overflow\",peer=\"overflow\"} 3\n"));
    assert_non_null(strstr(page, "ringmesh_metrics_series_folded_total{metric=\"t_requests_total\"} 3\n"));
    assert_non_null(strstr(page, "t_size_bytes_bucket{code=\"200\",peer=\"a\",le=\"1\"} 1\n"));
    assert_non_null(strstr(page, "t_size_bytes_count{code=\"200\",peer=\"a\"} 1\n"));
    assert_int_equal(rm_metrics_generation(sh), gen);
    rm_metrics_set_limits(m, 1, 1000); /* the same limits: nothing changes */
    assert_int_equal(rm_metrics_generation(sh), gen);
    rm_metrics_set_limits(m, 2, 1000);
    assert_int_not_equal(rm_metrics_generation(sh), gen);
    gen = rm_metrics_generation(sh);
    assert_int_equal(rm_metrics_expire(sh, 500), 0);
    assert_int_equal(rm_metrics_generation(sh), gen);
    assert_int_equal(rm_metrics_expire(sh, 2000), 2);
    assert_int_not_equal(rm_metrics_generation(sh), gen);
    rm_metrics_free(m);
}

/* Two recording threads, each on its own shard with the same label sets and some of its own, while a third scrapes:
 * every scrape parses, counters never go down, and the final scrape has the exact sums. */
#define ROUNDS 20000
static atomic_int recorders_done;

struct recorder {
    rm_metrics_t *m;
    unsigned shard;
};

static void *record_thread(void *arg)
{
    struct recorder *r = arg;
    rm_metrics_shard_t *sh = rm_metrics_shard(r->m, r->shard);
    char own[16];
    const char *shared[] = {"200", "both"}, *mine[] = {"200", own};
    for (int i = 0; i < ROUNDS; i++) {
        rm_metrics_add(sh, 0, shared, 1, 1);
        rm_metrics_observe(sh, 1, shared, 0.75, 1);
        snprintf(own, sizeof(own), "s%u-%d", r->shard, i % 50); /* new label sets early on: inserts under load */
        rm_metrics_add(sh, 0, mine, 1, 1);
    }
    atomic_fetch_add(&recorders_done, 1);
    return NULL;
}

static unsigned long long value_of(const char *text, const char *series)
{
    const char *p = strstr(text, series);
    return p != NULL ? strtoull(p + strlen(series), NULL, 10) : 0;
}

static void test_merge_while_recording(void **state)
{
    rm_metrics_t *m;
    pthread_t t[2];
    struct recorder r[2];
    static char scrape[65536];
    unsigned long long last = 0;
    int scrapes = 0;

    assert_int_equal(rm_metrics_new(&m, defs, 2, 2), 0);
    atomic_store(&recorders_done, 0);
    for (unsigned i = 0; i < 2; i++) {
        r[i] = (struct recorder){m, i};
        assert_int_equal(pthread_create(&t[i], NULL, record_thread, &r[i]), 0);
    }
    /* bounded: the recorders finish after ROUNDS each; at most this many scrapes meanwhile */
    for (int i = 0; i < 100000 && atomic_load(&recorders_done) < 2; i++) {
        size_t n = rm_metrics_render(m, "t_", RM_METRICS_PROMETHEUS, scrape, sizeof(scrape), 0);
        assert_true(n < sizeof(scrape) - 1);
        scrape[n] = '\0';
        unsigned long long v = value_of(scrape, "t_requests_total{code=\"200\",peer=\"both\"} ");
        assert_true(v >= last);
        last = v;
        unsigned long long inf = value_of(scrape, "t_size_bytes_bucket{code=\"200\",peer=\"both\",le=\"+Inf\"} ");
        assert_int_equal(inf, value_of(scrape, "t_size_bytes_count{code=\"200\",peer=\"both\"} "));
        scrapes++;
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    size_t n = rm_metrics_render(m, "t_", RM_METRICS_PROMETHEUS, scrape, sizeof(scrape), 0);
    scrape[n] = '\0';
    assert_int_equal(value_of(scrape, "t_requests_total{code=\"200\",peer=\"both\"} "), 2 * ROUNDS);
    assert_int_equal(value_of(scrape, "t_size_bytes_bucket{code=\"200\",peer=\"both\",le=\"1\"} "), 2 * ROUNDS);
    assert_int_equal(value_of(scrape, "t_requests_total{code=\"200\",peer=\"s0-7\"} "), ROUNDS / 50);
    assert_int_equal(value_of(scrape, "t_requests_total{code=\"200\",peer=\"s1-49\"} "), ROUNDS / 50);
    /* one line per label set: the two shards' "both" series came out merged */
    const char *first = strstr(scrape, "peer=\"both\"} ");
    assert_non_null(first);
    assert_null(strstr(first + 1, "t_requests_total{code=\"200\",peer=\"both\"}"));
    print_message("%d scrapes while recording\n", scrapes);
    rm_metrics_free(m);
}

static void test_negotiate(void **state)
{
    /* what Prometheus 2.x sends when it prefers OpenMetrics */
    assert_int_equal(rm_metrics_negotiate("application/openmetrics-text;version=1.0.0,application/"
                                          "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/"
                                          "*;q=0.1"),
                     RM_METRICS_OPENMETRICS);
    assert_int_equal(rm_metrics_negotiate("text/plain;version=0.0.4;q=1,*/*;q=0.1"), RM_METRICS_PROMETHEUS);
    assert_int_equal(rm_metrics_negotiate("application/openmetrics-text; q=0"), RM_METRICS_PROMETHEUS);
    assert_int_equal(rm_metrics_negotiate("text/plain;q=0.9, Application/OpenMetrics-Text;q=0.5"),
                     RM_METRICS_PROMETHEUS);
    assert_int_equal(rm_metrics_negotiate("Application/OpenMetrics-Text"), RM_METRICS_OPENMETRICS);
    assert_int_equal(rm_metrics_negotiate("*/*"), RM_METRICS_PROMETHEUS);
    assert_int_equal(rm_metrics_negotiate(""), RM_METRICS_PROMETHEUS);
    assert_int_equal(rm_metrics_negotiate(NULL), RM_METRICS_PROMETHEUS);
    assert_string_equal(rm_metrics_content_type(RM_METRICS_OPENMETRICS),
                        "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert_string_equal(rm_metrics_content_type(RM_METRICS_PROMETHEUS), "text/plain; version=0.0.4; charset=utf-8");
}

static void test_text_to_openmetrics(void **state)
{
    static const char in[] = "# HELP a_total Things \"done\".\n"
                             "# TYPE a_total counter\n"
                             "a_total{k=\"v\"} 3\n"
                             "\n"
                             "# a comment\n"
                             "# HELP g A gauge.\n"
                             "# TYPE g gauge\n"
                             "g 1.5\n"
                             "# TYPE u untyped\n"
                             "u 2\n"
                             "# TYPE c counter\n"
                             "c 4\n";
    char out[1024];
    size_t n = rm_metrics_text_to_openmetrics(in, sizeof(in) - 1, out, sizeof(out), 0);
    out[n] = '\0';
    assert_string_equal(out, "# HELP a Things \\\"done\\\".\n"
                             "# TYPE a counter\n"
                             "a_total{k=\"v\"} 3\n"
                             "# HELP g A gauge.\n"
                             "# TYPE g gauge\n"
                             "g 1.5\n"
                             "# TYPE u unknown\n"
                             "u 2\n"
                             "# TYPE c unknown\n"
                             "c 4\n");
}

/* A page too small is cut at its length, and says so by the offset. */
static void test_cut_page(void **state)
{
    rm_metrics_t *m;
    char small[32];
    const char *a[] = {"200", "x"};
    assert_int_equal(rm_metrics_new(&m, defs, 2, 1), 0);
    rm_metrics_add(rm_metrics_shard(m, 0), 0, a, 1, 1);
    assert_int_equal(rm_metrics_render(m, "t_", RM_METRICS_PROMETHEUS, small, sizeof(small), 0), sizeof(small));
    rm_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_byte_exact), cmocka_unit_test(test_empty_registry_writes_nothing),
        cmocka_unit_test(test_bad_definitions),    cmocka_unit_test(test_canonical_numbers),
        cmocka_unit_test(test_fold_past_limit),    cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_kept_series),        cmocka_unit_test(test_merge_while_recording),
        cmocka_unit_test(test_negotiate),          cmocka_unit_test(test_text_to_openmetrics),
        cmocka_unit_test(test_cut_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
