/* The per-request endpoint choice (sidecar/req_balance.h): only ready, not terminating endpoints while there are
 * any, serving terminating ones as the fallback, none is -1; a slow endpoint gets few requests; the per-worker
 * table keeps the estimates of endpoints with requests in flight when it fills. Time is simulated. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "req_balance.h"

#define MAX_EPS 8
#define MS      1000000ull

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

static rm_req_lb_t *new_table(void)
{
    rm_req_lb_t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->rng = 42;
    return t;
}

static void test_candidates_only(void **state)
{
    (void)state;
    fixture_t f;
    rm_req_lb_t *t = new_table();
    unsigned seen[MAX_EPS] = {0};
    make(&f, "RNTRX");
    for (int i = 0; i < 400; i++) {
        int x = rm_req_lb_pick(t, &f.e, 0);
        assert_true(x == 0 || x == 3);
        seen[x]++;
    }
    assert_true(seen[0] > 100 && seen[3] > 100);
    free(f.e.candidates);
    make(&f, "TNT");
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < 400; i++) {
        int x = rm_req_lb_pick(t, &f.e, 0);
        assert_true(x == 0 || x == 2);
        seen[x]++;
    }
    assert_true(seen[0] > 100 && seen[2] > 100);
    free(f.e.candidates);
    make(&f, "NX");
    assert_int_equal(rm_req_lb_pick(t, &f.e, 0), -1);
    free(f.e.candidates);
    free(t);
}

static void test_slow_endpoint_gets_few(void **state)
{
    (void)state;
    fixture_t f;
    rm_req_lb_t *t = new_table();
    static const uint64_t lat[3] = {150 * MS, 3 * MS, 3 * MS};
    static struct {
        int ep;
        uint64_t sent, due;
    } fl[4096];
    size_t nf = 0;
    unsigned counts[3] = {0};
    make(&f, "RRR");
    for (unsigned ms = 0; ms < 10000; ms++) {
        uint64_t now = (uint64_t)ms * MS;
        for (size_t i = 0; i < nf;) {
            if (fl[i].due <= now) {
                rm_lb_ewma_done(rm_req_lb_estimate(t, &f.items[fl[i].ep].addr), &t->cfg, fl[i].sent, fl[i].due);
                fl[i] = fl[--nf];
            } else {
                i++;
            }
        }
        int x = rm_req_lb_pick(t, &f.e, now);
        assert_true(x >= 0 && x < 3 && nf < 4096);
        rm_lb_ewma_start(rm_req_lb_estimate(t, &f.items[x].addr));
        fl[nf].ep = x, fl[nf].sent = now, fl[nf].due = now + lat[x], nf++;
        counts[x]++;
    }
    assert_true(counts[0] * 20 < counts[1] && counts[0] * 20 < counts[2]);
    free(f.e.candidates);
    free(t);
}

static void test_table_fills(void **state)
{
    (void)state;
    rm_req_lb_t *t = new_table();
    rm_sockaddr_t held, a;
    assert_int_equal(rm_sockaddr_parse("198.18.9.9:80", &held), 0);
    rm_lb_ewma_start(rm_req_lb_estimate(t, &held));
    rm_lb_ewma_start(rm_req_lb_estimate(t, &held));
    for (unsigned i = 0; i < 5000; i++) {
        char s[32];
        snprintf(s, sizeof(s), "198.19.%u.%u:80", (i >> 8) & 255, i & 255);
        assert_int_equal(rm_sockaddr_parse(s, &a), 0);
        rm_lb_ewma_t *e = rm_req_lb_estimate(t, &a);
        assert_non_null(e);
        assert_int_equal(e->pending, 0);
    }
    /* the endpoint with requests in flight kept its count through every compaction */
    assert_int_equal(rm_req_lb_estimate(t, &held)->pending, 2);
    assert_true(t->used <= RM_REQ_LB_SLOTS * 3 / 4);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_candidates_only),
        cmocka_unit_test(test_slow_endpoint_gets_few),
        cmocka_unit_test(test_table_fills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
