/* The endpoint choice (sidecar/dest_endpoints.h): power of two choices on open connections, never a not-ready or
 * terminating endpoint while a ready one exists, serving terminating endpoints as the fallback, the tried ones left
 * out, deterministic for a seed; and the per-worker load table. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dest_endpoints.h"

#define MAX_EPS 8

typedef struct st_fixture_t {
    rm_endpoint_t items[MAX_EPS];
    rm_dest_endpoints_t e;
} fixture_t;

/* Endpoints 198.18.1.(10+i):8080; conds[i] is "R" ready, "N" not ready, "T" serving and terminating, "X" neither. */
static void make(fixture_t *f, const char *conds)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; conds[i] != '\0'; i++) {
        char a[32];
        snprintf(a, sizeof(a), "198.18.1.%zu:8080", 10 + i);
        assert_int_equal(rm_sockaddr_parse(a, &f->items[i].addr), 0);
        f->items[i].ready = conds[i] == 'R';
        f->items[i].serving = conds[i] == 'R' || conds[i] == 'T';
        f->items[i].terminating = conds[i] == 'T' || conds[i] == 'X';
        f->e.num++;
    }
    f->e.items = f->items;
    assert_int_equal(rm_dest_endpoints_index(&f->e), 0);
}

static void unmake(fixture_t *f)
{
    free(f->e.candidates);
}

static void test_less_loaded_wins(void **state)
{
    (void)state;
    fixture_t f;
    rm_endpoint_load_t *load = calloc(1, sizeof(*load));
    uint64_t rng = 42;
    size_t counts[2] = {0};

    make(&f, "RR");
    /* with two candidates both are drawn every time: the one with fewer open connections is chosen, always */
    for (int k = 0; k < 5; k++)
        rm_endpoint_load_inc(load, &f.items[0].addr);
    rm_endpoint_load_inc(load, &f.items[1].addr);
    for (int k = 0; k < 100; k++)
        counts[rm_endpoint_pick(&f.e, load, NULL, 0, &rng)]++;
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 100);

    /* counting each pick as an open connection spreads them evenly */
    memset(load, 0, sizeof(*load));
    unmake(&f);
    make(&f, "RRR");
    size_t spread[3] = {0};
    for (int k = 0; k < 60; k++) {
        int i = rm_endpoint_pick(&f.e, load, NULL, 0, &rng);
        spread[i]++;
        rm_endpoint_load_inc(load, &f.items[i].addr);
    }
    for (int i = 0; i < 3; i++) {
        assert_true(spread[i] >= 18 && spread[i] <= 22);
        assert_int_equal(rm_endpoint_load_get(load, &f.items[i].addr), spread[i]);
    }
    /* closing counts down, never below zero */
    for (size_t k = 0; k < spread[0] + 3; k++)
        rm_endpoint_load_dec(load, &f.items[0].addr);
    assert_int_equal(rm_endpoint_load_get(load, &f.items[0].addr), 0);
    unmake(&f);
    free(load);
}

static void test_never_not_ready_or_terminating(void **state)
{
    (void)state;
    fixture_t f;
    rm_endpoint_load_t *load = calloc(1, sizeof(*load));
    uint64_t rng = 7;

    /* the ready endpoint is loaded, the others idle: still it is the only one chosen */
    make(&f, "NRTX");
    assert_int_equal(f.e.cls, RM_ENDPOINT_ELIGIBLE_READY);
    for (int k = 0; k < 50; k++)
        rm_endpoint_load_inc(load, &f.items[1].addr);
    for (int k = 0; k < 200; k++)
        assert_int_equal(rm_endpoint_pick(&f.e, load, NULL, 0, &rng), 1);
    /* tried already: nothing else is a candidate */
    int tried[1] = {1};
    assert_int_equal(rm_endpoint_pick(&f.e, load, tried, 1, &rng), -1);
    unmake(&f);

    /* a ready endpoint flagged terminating is not ready */
    make(&f, "N");
    f.items[0].ready = 1;
    f.items[0].terminating = 1;
    assert_int_equal(rm_dest_endpoints_index(&f.e), 0);
    assert_int_equal(f.e.cls, RM_ENDPOINT_ELIGIBLE_NONE);
    assert_int_equal(rm_endpoint_pick(&f.e, load, NULL, 0, &rng), -1);
    unmake(&f);

    /* none ready: the serving terminating ones (Kubernetes' fallback), never the not-serving ones */
    memset(load, 0, sizeof(*load));
    make(&f, "NTXT");
    assert_int_equal(f.e.cls, RM_ENDPOINT_ELIGIBLE_TERMINATING);
    size_t counts[4] = {0};
    for (int k = 0; k < 200; k++)
        counts[rm_endpoint_pick(&f.e, load, NULL, 0, &rng)]++;
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[2], 0);
    assert_true(counts[1] > 0 && counts[3] > 0);
    unmake(&f);

    make(&f, "NX");
    assert_int_equal(rm_endpoint_pick(&f.e, load, NULL, 0, &rng), -1);
    unmake(&f);
    assert_int_equal(rm_endpoint_pick(NULL, load, NULL, 0, &rng), -1);
    free(load);
}

static void test_skip_tried(void **state)
{
    (void)state;
    fixture_t f;
    rm_endpoint_load_t *load = calloc(1, sizeof(*load));
    uint64_t rng = 99;

    make(&f, "RNRRR");
    int tried[2] = {2, 4};
    size_t counts[5] = {0};
    for (int k = 0; k < 300; k++)
        counts[rm_endpoint_pick(&f.e, load, tried, 2, &rng)]++;
    assert_int_equal(counts[1], 0);
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[4], 0);
    assert_true(counts[0] > 0 && counts[3] > 0);
    int all[3] = {0, 3, 2};
    assert_int_equal(rm_endpoint_pick(&f.e, load, all, 3, &rng), 4);
    unmake(&f);
    free(load);
}

static void test_deterministic_for_a_seed(void **state)
{
    (void)state;
    fixture_t f;
    rm_endpoint_load_t *load = calloc(1, sizeof(*load));
    int first[64], second[64];
    uint64_t rng;

    make(&f, "RRRRRRRR");
    rng = 12345;
    for (int k = 0; k < 64; k++)
        first[k] = rm_endpoint_pick(&f.e, load, NULL, 0, &rng);
    rng = 12345;
    for (int k = 0; k < 64; k++)
        second[k] = rm_endpoint_pick(&f.e, load, NULL, 0, &rng);
    assert_memory_equal(first, second, sizeof(first));
    /* and every endpoint is drawn at some point */
    int seen[8] = {0};
    for (int k = 0; k < 64; k++)
        seen[first[k]] = 1;
    for (int i = 0; i < 8; i++)
        assert_true(seen[i]);
    unmake(&f);
    free(load);
}

/* Addresses no connection holds any more leave the table when it fills up; held ones keep their counts. */
static void test_load_table_churn(void **state)
{
    (void)state;
    rm_endpoint_load_t *load = calloc(1, sizeof(*load));
    rm_sockaddr_t held, a;
    char s[32];

    assert_int_equal(rm_sockaddr_parse("198.18.9.9:80", &held), 0);
    rm_endpoint_load_inc(load, &held);
    rm_endpoint_load_inc(load, &held);
    for (unsigned i = 0; i < 10 * RM_ENDPOINT_LOAD_SLOTS; i++) {
        snprintf(s, sizeof(s), "198.19.%u.%u:80", (i >> 8) & 255, i & 255);
        assert_int_equal(rm_sockaddr_parse(s, &a), 0);
        rm_endpoint_load_inc(load, &a);
        assert_int_equal(rm_endpoint_load_get(load, &a), 1);
        rm_endpoint_load_dec(load, &a);
    }
    assert_int_equal(rm_endpoint_load_get(load, &held), 2);
    assert_true(load->used < RM_ENDPOINT_LOAD_SLOTS);
    free(load);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_less_loaded_wins), cmocka_unit_test(test_never_not_ready_or_terminating),
        cmocka_unit_test(test_skip_tried),       cmocka_unit_test(test_deterministic_for_a_seed),
        cmocka_unit_test(test_load_table_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
