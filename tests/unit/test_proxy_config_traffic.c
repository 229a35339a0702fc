/* The proxy file's `traffic:` section (sidecar/proxy_config_traffic.c): requestBalancing off by default, the request
 * path's knobs at their defaults when the section is absent, every key read, and a bad value refused with file, line,
 * column and the field `traffic.<key>`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy_config.h"
#include "ringmesh/error.h"
#include "proxy_config_fixtures.h"

#include <stdio.h>
#include <string.h>

/* No traffic section: the request path is off and every knob has ringmesh/traffic_config.h's default. */
static void test_traffic_absent(void **state)
{
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("traffic_absent.yaml", TLS_OK));
    rm_traffic_config_t want;

    rm_traffic_config_defaults(&want);
    assert_int_equal(cfg->request_balancing, 0);
    assert_memory_equal(&cfg->traffic, &want, sizeof(want));
    rm_proxy_config_free(cfg);

    /* an empty section is the same */
    cfg = load_ok(write_tmp_str("traffic_empty.yaml", TLS_OK "traffic:\n"));
    assert_int_equal(cfg->request_balancing, 0);
    assert_memory_equal(&cfg->traffic, &want, sizeof(want));
    rm_proxy_config_free(cfg);
    (void)state;
}

/* Every key of the section lands in its field. */
static void test_traffic_all_keys(void **state)
{
    static const char text[] = TLS_OK "traffic:\n"
                                      "  requestBalancing: true\n"
                                      "  retryBudget: {ratio: 0.5, minRetriesPerSecond: 3, window: 5s}\n"
                                      "  retry:\n"
                                      "    attempts: 4\n"
                                      "    codes: [502, 503]\n"
                                      "    grpcStatuses: [unavailable, internal]\n"
                                      "    backoff: 10ms\n"
                                      "    maxBackoff: 1s\n"
                                      "    bufferLimit: 1024\n"
                                      "  outlierDetection:\n"
                                      "    consecutive5xxErrors: 7\n"
                                      "    consecutiveGatewayErrors: 3\n"
                                      "    baseEjectionTime: 20s\n"
                                      "    maxEjectionTime: 2m\n"
                                      "    maxEjectionPercent: 50\n"
                                      "    interval: 5s\n"
                                      "  circuitBreaker:\n"
                                      "    maxConnections: 11\n"
                                      "    maxPendingRequests: 12\n"
                                      "    maxRequests: 13\n"
                                      "    maxRetries: 14\n"
                                      "    perEndpoint: {maxConnections: 21, maxPendingRequests: 22, maxRequests: 23, "
                                      "maxRetries: 24}\n"
                                      "  requestTimeout: 15s\n"
                                      "  idleTimeout: 1m\n";
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("traffic_all.yaml", text));
    const rm_traffic_config_t *t = &cfg->traffic;

    assert_int_equal(cfg->request_balancing, 1);
    assert_int_equal(t->budget.ratio_permille, 500);
    assert_int_equal(t->budget.min_per_second, 3);
    assert_int_equal(t->budget.window_ms, 5000);
    assert_int_equal(t->retry.attempts, 4);
    assert_int_equal(t->retry.num_codes, 2);
    assert_int_equal(t->retry.codes[0], 502);
    assert_int_equal(t->retry.codes[1], 503);
    assert_int_equal(t->retry.grpc_statuses, (1u << 14) | (1u << 13));
    assert_int_equal(t->retry.backoff_ms, 10);
    assert_int_equal(t->retry.max_backoff_ms, 1000);
    assert_int_equal(t->retry.buffer_limit, 1024);
    assert_int_equal(t->outlier.consecutive_5xx, 7);
    assert_int_equal(t->outlier.consecutive_gateway, 3);
    assert_int_equal(t->outlier.base_ejection_ms, 20000);
    assert_int_equal(t->outlier.max_ejection_ms, 120000);
    assert_int_equal(t->outlier.max_ejection_percent, 50);
    assert_int_equal(t->outlier.interval_ms, 5000);
    assert_int_equal(t->destination.max_connections, 11);
    assert_int_equal(t->destination.max_pending, 12);
    assert_int_equal(t->destination.max_requests, 13);
    assert_int_equal(t->destination.max_retries, 14);
    assert_int_equal(t->endpoint.max_connections, 21);
    assert_int_equal(t->endpoint.max_pending, 22);
    assert_int_equal(t->endpoint.max_requests, 23);
    assert_int_equal(t->endpoint.max_retries, 24);
    assert_int_equal(t->request_timeout_ms, 15000);
    assert_int_equal(t->idle_timeout_ms, 60000);
    rm_proxy_config_free(cfg);

    cfg = load_ok(write_tmp_str("traffic_off.yaml", TLS_OK "traffic: {requestBalancing: false}\n"));
    assert_int_equal(cfg->request_balancing, 0);
    rm_proxy_config_free(cfg);

    /* an empty list replaces the default: nothing is retried on a status */
    cfg = load_ok(write_tmp_str("traffic_no_codes.yaml", TLS_OK "traffic: {retry: {codes: [], grpcStatuses: []}}\n"));
    assert_int_equal(cfg->traffic.retry.num_codes, 0);
    assert_int_equal(cfg->traffic.retry.grpc_statuses, 0);
    rm_proxy_config_free(cfg);
    (void)state;
}

/* A bad value is refused at its position with its field path and the reason. */
static void test_traffic_errors(void **state)
{
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"traffic:\n  requestBalancing: maybe\n", "traffic.requestBalancing"},
        {"traffic:\n  retryBudget:\n    ratio: 1.5\n", "traffic.retryBudget.ratio: "},
        {"traffic:\n  retry:\n    attempts: 11\n", "traffic.retry.attempts: "},
        {"traffic:\n  retry:\n    codes: [200]\n", "traffic.retry.codes"},
        {"traffic:\n  retry:\n    grpcStatuses: [sometimes]\n", "traffic.retry.grpcStatuses"},
        {"traffic:\n  outlierDetection:\n    maxEjectionPercent: 101\n",
         "traffic.outlierDetection.maxEjectionPercent: "},
        {"traffic:\n  circuitBreaker:\n    perEndpoint:\n      maxRequests: -1\n",
         "traffic.circuitBreaker.perEndpoint.maxRequests: "},
        {"traffic:\n  requestTimeout: soon\n", "traffic.requestTimeout: "},
        {"traffic:\n  retry:\n    backoff: 1s\n    maxBackoff: 10ms\n", "maxBackoff"},
        {"traffic:\n  retries: 3\n", "retries"},
    };
    char text[1024], err[1024], name[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", TLS_OK, bad[i].yaml);
        snprintf(name, sizeof(name), "traffic_bad%zu.yaml", i);
        const char *path = write_tmp_str(name, text);
        load_fail(path, i + 1 == sizeof(bad) / sizeof(bad[0]) ? RM_ERR_CONFIG_PARSE : RM_ERR_CONFIG_VALUE, err,
                  sizeof(err));
        assert_has_position(path, err);
        assert_contains(err, bad[i].want);
    }
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traffic_absent),
        cmocka_unit_test(test_traffic_all_keys),
        cmocka_unit_test(test_traffic_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
