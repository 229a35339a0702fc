/* The retry policy and request timeouts (lib/retry_policy.c): which outcomes are retried for which methods, never
 * after a response started or once the body is gone, the attempts, the route's codes over the defaults, gRPC
 * statuses, the jittered exponential backoff, the request's deadline and the budget; then the timeouts of a rule
 * (request, backendRequest, 0 disabling) over the proxy's defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/response_flags.h"
#include "ringmesh/retry.h"

#include <string.h>

static rm_traffic_config_t cfg;
static rm_retry_policy_t pol;

static int setup(void **state)
{
    (void)state;
    rm_traffic_config_defaults(&cfg);
    rm_retry_policy_resolve(NULL, &cfg.retry, &pol);
    return 0;
}

/* The decision for one outcome of a request with `method`, no budget, no deadline. */
static rm_retry_decision_t decide(const rm_retry_policy_t *p, const char *method, int grpc, uint32_t done,
                                  rm_attempt_t a)
{
    rm_retry_decision_t d;
    rm_retry_decide(p, method, strlen(method), grpc, done, &a, NULL, 1000, RM_DEADLINE_NONE, 0x80000000u, &d);
    return d;
}

#define RESPONSE(st)                                                                                                   \
    (rm_attempt_t)                                                                                                     \
    {                                                                                                                  \
        .result = RM_ATTEMPT_RESPONSE, .status = (st), .grpc_status = -1, .body_replayable = 1                         \
    }
#define FAILED(r)                                                                                                      \
    (rm_attempt_t)                                                                                                     \
    {                                                                                                                  \
        .result = (r), .grpc_status = -1, .body_replayable = 1                                                         \
    }

static void test_idempotent_methods(void **state)
{
    (void)state;
    static const char *const yes[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    static const char *const no[] = {"POST", "PATCH", "CONNECT", "get", "GETS", "", "DELET"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(rm_retry_method_idempotent(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(rm_retry_method_idempotent(no[i], strlen(no[i])));
    assert_false(rm_retry_method_idempotent(NULL, 0));
}

static void test_outcomes_by_method(void **state)
{
    (void)state;
    rm_retry_decision_t d;

    /* a 503 (the default code): GET yes, POST no, and the app's response is passed on without a flag */
    d = decide(&pol, "GET", 0, 0, RESPONSE(503));
    assert_int_equal(d.retry, 1);
    assert_int_equal(d.reason, RM_RETRY_GO);
    d = decide(&pol, "POST", 0, 0, RESPONSE(503));
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.reason, RM_RETRY_NOT_IDEMPOTENT);
    assert_int_equal(d.flags, 0);
    /* a status not in the codes, and a success */
    assert_int_equal(decide(&pol, "GET", 0, 0, RESPONSE(500)).reason, RM_RETRY_NOT_RETRYABLE);
    assert_int_equal(decide(&pol, "GET", 0, 0, RESPONSE(200)).retry, 0);
    assert_int_equal(decide(&pol, "GET", 0, 0, RESPONSE(200)).flags, 0);

    /* never reached the app: retried whatever the method */
    d = decide(&pol, "POST", 0, 0, FAILED(RM_ATTEMPT_CONNECT_FAILED));
    assert_int_equal(d.retry, 1);
    d = decide(&pol, "POST", 0, 0, FAILED(RM_ATTEMPT_REFUSED));
    assert_int_equal(d.retry, 1);
    /* may have reached it: idempotent methods only, and the request ends with the failure's flag */
    d = decide(&pol, "POST", 0, 0, FAILED(RM_ATTEMPT_RESET));
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.reason, RM_RETRY_NOT_IDEMPOTENT);
    assert_int_equal(d.flags, RM_RF_UC);
    assert_int_equal(decide(&pol, "PUT", 0, 0, FAILED(RM_ATTEMPT_RESET)).retry, 1);
    d = decide(&pol, "PATCH", 0, 0, FAILED(RM_ATTEMPT_TIMEOUT));
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.flags, RM_RF_UT);
    assert_int_equal(decide(&pol, "GET", 0, 0, FAILED(RM_ATTEMPT_TIMEOUT)).retry, 1);
}

static void test_never_after_start_or_without_body(void **state)
{
    (void)state;
    rm_attempt_t a = RESPONSE(503);
    rm_retry_decision_t d;
    a.response_started = 1;
    d = decide(&pol, "GET", 0, 0, a);
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.reason, RM_RETRY_STARTED);
    a = FAILED(RM_ATTEMPT_RESET);
    a.response_started = 1;
    assert_int_equal(decide(&pol, "GET", 0, 0, a).reason, RM_RETRY_STARTED);
    /* the body went out and was not kept: not even a connect failure is retried */
    a = FAILED(RM_ATTEMPT_CONNECT_FAILED);
    a.body_replayable = 0;
    d = decide(&pol, "GET", 0, 0, a);
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.reason, RM_RETRY_BODY);
    assert_int_equal(d.flags, RM_RF_UF);
}

static void test_attempts_and_flags(void **state)
{
    (void)state;
    rm_retry_decision_t d;
    assert_int_equal(pol.attempts, 2);
    assert_int_equal(decide(&pol, "GET", 0, 1, RESPONSE(503)).retry, 1);
    d = decide(&pol, "GET", 0, 2, RESPONSE(503));
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.reason, RM_RETRY_EXHAUSTED);
    assert_int_equal(d.flags, RM_RF_URX);
    d = decide(&pol, "POST", 0, 2, FAILED(RM_ATTEMPT_CONNECT_FAILED));
    assert_int_equal(d.flags, RM_RF_UF | RM_RF_URX);
    char text[RM_RESPONSE_FLAGS_MAX];
    rm_response_flags_format(d.flags, text, sizeof(text));
    assert_string_equal(text, "UF,URX");
}

static void test_grpc_statuses(void **state)
{
    (void)state;
    rm_attempt_t a = RESPONSE(200);
    a.grpc_status = 14; /* UNAVAILABLE, trailers-only */
    assert_int_equal(decide(&pol, "POST", 1, 0, a).retry, 1);
    a.grpc_status = 2; /* UNKNOWN */
    assert_int_equal(decide(&pol, "POST", 1, 0, a).reason, RM_RETRY_NOT_RETRYABLE);
    a.grpc_status = 14; /* a grpc-status on a request that is not gRPC means nothing */
    assert_int_equal(decide(&pol, "POST", 0, 0, a).retry, 0);
    /* a gRPC call answered by an HTTP 503 without grpc-status (not from a gRPC server): UNAVAILABLE, retried; a 500
     * is UNKNOWN and a 200 without status is no failure */
    a = RESPONSE(503);
    assert_int_equal(decide(&pol, "POST", 1, 0, a).retry, 1);
    assert_int_equal(decide(&pol, "POST", 0, 0, a).reason, RM_RETRY_NOT_IDEMPOTENT);
    a = RESPONSE(500);
    assert_int_equal(decide(&pol, "POST", 1, 0, a).reason, RM_RETRY_NOT_RETRYABLE);
    a = RESPONSE(200);
    assert_int_equal(decide(&pol, "POST", 1, 0, a).reason, RM_RETRY_NOT_RETRYABLE);
    a.grpc_status = 14;
    a.response_started = 1; /* in trailers after a body: the response has started */
    assert_int_equal(decide(&pol, "POST", 1, 0, a).reason, RM_RETRY_STARTED);
}

static const char *const route_yaml = "apiVersion: gateway.networking.k8s.io/v1\n"
                                      "kind: HTTPRoute\n"
                                      "metadata: {name: r, namespace: shop}\n"
                                      "spec:\n"
                                      "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
                                      "  rules:\n"
                                      "  - retry: {attempts: 4, codes: [500, 502], backoff: 100ms}\n"
                                      "    timeouts: {request: 10s, backendRequest: 2s}\n"
                                      "  - retry: {attempts: 0}\n"
                                      "    timeouts: {request: 0s}\n"
                                      "  - backendRefs: []\n";

static void test_route_over_defaults(void **state)
{
    (void)state;
    rm_route_list_t list = {0};
    rm_config_error_t err = {0};
    rm_retry_policy_t p;
    rm_retry_decision_t d;

    assert_int_equal(rm_route_load_yaml(&list, route_yaml, strlen(route_yaml), "r.yaml", &err), 0);
    const rm_route_rule_t *r0 = &list.routes[0]->rules[0], *r1 = &list.routes[0]->rules[1],
                          *r2 = &list.routes[0]->rules[2];
    rm_retry_policy_resolve(r0, &cfg.retry, &p);
    assert_int_equal(p.attempts, 4);
    assert_int_equal(p.backoff_ms, 100);
    assert_int_equal(p.max_backoff_ms, 1000);
    /* the rule's codes: retried for every method, and only those */
    d = decide(&p, "POST", 0, 3, RESPONSE(502));
    assert_int_equal(d.retry, 1);
    assert_true(d.delay_ms >= 1 && d.delay_ms <= 1000);
    assert_int_equal(decide(&p, "GET", 0, 0, RESPONSE(503)).retry, 0);
    assert_int_equal(decide(&p, "POST", 0, 4, RESPONSE(500)).flags, RM_RF_URX);
    rm_retry_policy_resolve(r1, &cfg.retry, &p);
    assert_int_equal(p.attempts, 0);
    d = decide(&p, "GET", 0, 0, FAILED(RM_ATTEMPT_CONNECT_FAILED));
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.flags, RM_RF_UF | RM_RF_URX);
    rm_retry_policy_resolve(r2, &cfg.retry, &p); /* no retry: the defaults */
    assert_int_equal(p.attempts, 2);
    assert_int_equal(p.route_codes, 0);

    /* timeouts: the rule's, then its 0 disabling the proxy's default, then the default */
    rm_request_timeouts_t t;
    cfg.request_timeout_ms = 15000;
    rm_request_timeouts_resolve(r0, &cfg, 1000, &t);
    assert_int_equal(t.deadline_ms, 11000);
    assert_int_equal(rm_request_attempt_deadline(&t, 1000), 3000);
    assert_int_equal(rm_request_attempt_deadline(&t, 9500), 11000); /* the request's deadline covers retries */
    assert_int_equal(rm_request_idle_deadline(&t, 5000), 5000 + 300000);
    rm_request_timeouts_resolve(r1, &cfg, 1000, &t);
    assert_true(t.deadline_ms == RM_DEADLINE_NONE);
    assert_true(rm_request_attempt_deadline(&t, 1000) == RM_DEADLINE_NONE);
    rm_request_timeouts_resolve(r2, &cfg, 1000, &t);
    assert_int_equal(t.deadline_ms, 16000);
    rm_request_timeouts_resolve(NULL, &cfg, 0, &t);
    assert_int_equal(t.deadline_ms, 15000);
    cfg.idle_timeout_ms = 0;
    rm_request_timeouts_resolve(NULL, &cfg, 0, &t);
    assert_true(rm_request_idle_deadline(&t, 5) == RM_DEADLINE_NONE);
    rm_traffic_config_defaults(&cfg);
    rm_route_list_clear(&list);
}

static void test_backoff(void **state)
{
    (void)state;
    /* full jitter over [0, (2^n - 1) x base], capped, never below 1 ms */
    assert_int_equal(rm_retry_backoff_ms(25, 250, 1, 0), 1);
    assert_int_equal(rm_retry_backoff_ms(25, 250, 1, UINT32_MAX), 25);
    assert_int_equal(rm_retry_backoff_ms(25, 250, 2, UINT32_MAX), 75);
    assert_int_equal(rm_retry_backoff_ms(25, 250, 3, UINT32_MAX), 175);
    assert_int_equal(rm_retry_backoff_ms(25, 250, 4, UINT32_MAX), 250);
    assert_int_equal(rm_retry_backoff_ms(25, 250, 40, UINT32_MAX), 250);
    assert_int_equal(rm_retry_backoff_ms(100, 1000, 2, 0x80000000u), 150);
    assert_int_equal(rm_retry_backoff_ms(0, 250, 3, UINT32_MAX), 1);
    /* spread: over evenly spaced draws, the first retry's waits cover the range */
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t i = 0; i < 64; i++) {
        uint32_t d = rm_retry_backoff_ms(25, 250, 1, i * (UINT32_MAX / 63));
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_int_equal(lo, 1);
    assert_int_equal(hi, 25);
}

static void test_deadline_and_budget(void **state)
{
    (void)state;
    rm_attempt_t a = RESPONSE(503);
    rm_retry_decision_t d;
    rm_retry_budget_t b;
    rm_retry_budget_config_t bc = {.ratio_permille = 0, .min_per_second = 1, .window_ms = 1000};

    /* the wait (UINT32_MAX draw: 25 ms) would end at the deadline: no retry */
    rm_retry_decide(&pol, "GET", 3, 0, 0, &a, NULL, 1000, 1025, UINT32_MAX, &d);
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.reason, RM_RETRY_DEADLINE);
    rm_retry_decide(&pol, "GET", 3, 0, 0, &a, NULL, 1000, 1026, UINT32_MAX, &d);
    assert_int_equal(d.retry, 1);
    assert_int_equal(d.delay_ms, 25);

    /* a budget of one retry per second: the first takes it, the second is refused with URX */
    rm_retry_budget_init(&b, &bc, 1);
    rm_retry_decide(&pol, "GET", 3, 0, 0, &a, &b, 1000, RM_DEADLINE_NONE, 1, &d);
    assert_int_equal(d.retry, 1);
    rm_retry_decide(&pol, "GET", 3, 0, 0, &a, &b, 1000, RM_DEADLINE_NONE, 1, &d);
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.reason, RM_RETRY_BUDGET);
    assert_int_equal(d.flags, RM_RF_URX);
    assert_int_equal(b.refused, 1);
    /* an outcome that is not retried takes nothing from the budget */
    a.status = 200;
    rm_retry_decide(&pol, "GET", 3, 0, 0, &a, &b, 1000, RM_DEADLINE_NONE, 1, &d);
    assert_int_equal(b.refused, 1);
    assert_int_equal(b.sum_retries, 1);
}

static void test_goaway(void **state)
{
    (void)state;
    assert_true(rm_retry_goaway_refused(5, 7));
    assert_false(rm_retry_goaway_refused(7, 7));
    assert_false(rm_retry_goaway_refused(9, 7));
    assert_true(rm_retry_goaway_refused(0, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idempotent_methods),
        cmocka_unit_test_setup(test_outcomes_by_method, setup),
        cmocka_unit_test_setup(test_never_after_start_or_without_body, setup),
        cmocka_unit_test_setup(test_attempts_and_flags, setup),
        cmocka_unit_test_setup(test_grpc_statuses, setup),
        cmocka_unit_test_setup(test_route_over_defaults, setup),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test_setup(test_deadline_and_budget, setup),
        cmocka_unit_test(test_goaway),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
