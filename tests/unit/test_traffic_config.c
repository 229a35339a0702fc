/* The proxy's traffic knobs (lib/traffic_config.c): the defaults (Linkerd's budget, Envoy's outlier detection and
 * limits), each key converted from its text, the refusals with their reasons, the list keys, and the checks across
 * keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "ringmesh/traffic_config.h"
#include "unit_asserts.h"

static void test_defaults(void **state)
{
    (void)state;
    rm_traffic_config_t c;
    rm_traffic_config_defaults(&c);
    assert_int_equal(c.budget.ratio_permille, 200);
    assert_int_equal(c.budget.min_per_second, 10);
    assert_int_equal(c.budget.window_ms, 10000);
    assert_int_equal(c.retry.attempts, 2);
    assert_int_equal(c.retry.num_codes, 1);
    assert_int_equal(c.retry.codes[0], 503);
    assert_int_equal(c.retry.grpc_statuses, 1u << 14);
    assert_int_equal(c.retry.buffer_limit, 65536);
    assert_int_equal(c.outlier.consecutive_5xx, 5);
    assert_int_equal(c.outlier.consecutive_gateway, 0);
    assert_int_equal(c.outlier.base_ejection_ms, 30000);
    assert_int_equal(c.outlier.max_ejection_percent, 10);
    assert_int_equal(c.destination.max_requests, 1024);
    assert_int_equal(c.endpoint.max_requests, 0);
    assert_int_equal(c.request_timeout_ms, 0);
    assert_int_equal(c.idle_timeout_ms, 300000);
}

static void test_keys(void **state)
{
    (void)state;
    rm_traffic_config_t c;
    char why[256] = "";
    static const struct {
        const char *key, *value;
    } ok[] = {
        {"retryBudget.ratio", "0.125"},
        {"retryBudget.minRetriesPerSecond", "3"},
        {"retryBudget.window", "30s"},
        {"retry.attempts", "5"},
        {"retry.backoff", "50ms"},
        {"retry.maxBackoff", "1s"},
        {"retry.bufferLimit", "1024"},
        {"outlierDetection.consecutive5xxErrors", "7"},
        {"outlierDetection.consecutiveGatewayErrors", "3"},
        {"outlierDetection.baseEjectionTime", "10s"},
        {"outlierDetection.maxEjectionTime", "2m"},
        {"outlierDetection.maxEjectionPercent", "50"},
        {"outlierDetection.interval", "5s"},
        {"circuitBreaker.maxConnections", "10"},
        {"circuitBreaker.maxPendingRequests", "11"},
        {"circuitBreaker.maxRequests", "12"},
        {"circuitBreaker.maxRetries", "13"},
        {"circuitBreaker.perEndpoint.maxConnections", "4"},
        {"circuitBreaker.perEndpoint.maxPendingRequests", "5"},
        {"circuitBreaker.perEndpoint.maxRequests", "6"},
        {"circuitBreaker.perEndpoint.maxRetries", "0"},
        {"requestTimeout", "15s"},
        {"idleTimeout", "0"},
    };
    rm_traffic_config_defaults(&c);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (rm_traffic_config_set(&c, ok[i].key, ok[i].value, why, sizeof(why)) != 0)
            fail_msg("%s: %s", ok[i].key, why);
    assert_int_equal(c.budget.ratio_permille, 125);
    assert_int_equal(c.budget.min_per_second, 3);
    assert_int_equal(c.budget.window_ms, 30000);
    assert_int_equal(c.retry.attempts, 5);
    assert_int_equal(c.retry.backoff_ms, 50);
    assert_int_equal(c.retry.max_backoff_ms, 1000);
    assert_int_equal(c.retry.buffer_limit, 1024);
    assert_int_equal(c.outlier.consecutive_5xx, 7);
    assert_int_equal(c.outlier.consecutive_gateway, 3);
    assert_int_equal(c.outlier.base_ejection_ms, 10000);
    assert_int_equal(c.outlier.max_ejection_ms, 120000);
    assert_int_equal(c.outlier.max_ejection_percent, 50);
    assert_int_equal(c.outlier.interval_ms, 5000);
    assert_int_equal(c.destination.max_connections, 10);
    assert_int_equal(c.destination.max_pending, 11);
    assert_int_equal(c.destination.max_requests, 12);
    assert_int_equal(c.destination.max_retries, 13);
    assert_int_equal(c.endpoint.max_connections, 4);
    assert_int_equal(c.endpoint.max_pending, 5);
    assert_int_equal(c.endpoint.max_requests, 6);
    assert_int_equal(c.endpoint.max_retries, 0);
    assert_int_equal(c.request_timeout_ms, 15000);
    assert_int_equal(c.idle_timeout_ms, 0);
    assert_int_equal(rm_traffic_config_check(&c, why, sizeof(why)), 0);

    static const char *const ratios[] = {"0", "1", "1.0", "0.2", "0.05", "1.000"};
    static const uint32_t permille[] = {0, 1000, 1000, 200, 50, 1000};
    for (size_t i = 0; i < sizeof(ratios) / sizeof(ratios[0]); i++) {
        assert_int_equal(rm_traffic_config_set(&c, "retryBudget.ratio", ratios[i], why, sizeof(why)), 0);
        assert_int_equal(c.budget.ratio_permille, permille[i]);
    }
}

static void test_refused(void **state)
{
    (void)state;
    rm_traffic_config_t c;
    char why[256];
    static const struct {
        const char *key, *value, *reason;
    } bad[] = {
        {"retryBudget.ratio", "1.5", "\"1.5\" is not a ratio 0..1 with at most 3 decimals"},
        {"retryBudget.ratio", "0.0001", "not a ratio"},
        {"retryBudget.ratio", "-0.1", "not a ratio"},
        {"retryBudget.ratio", "0.", "not a ratio"},
        {"retryBudget.ratio", "20%", "not a ratio"},
        {"retryBudget.window", "500ms", "\"500ms\" is not a duration 1s..60s"},
        {"retryBudget.window", "2m", "1s..60s"},
        {"retry.attempts", "11", "\"11\" is not a number 0..10"},
        {"retry.attempts", "-1", "0..10"},
        {"retry.attempts", "", "0..10"},
        {"retry.backoff", "soon", "\"soon\" is not a duration"},
        {"outlierDetection.maxEjectionPercent", "101", "a percentage 0..100"},
        {"circuitBreaker.maxRequests", "99999999999", "0..1000000"},
        {"outlierDetection.consecutive5xx", "5", "outlierDetection.consecutive5xx is not a traffic setting"},
        {"retryBudget", "0.2", "is not a traffic setting"},
    };
    rm_traffic_config_defaults(&c);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_code(rm_traffic_config_set(&c, bad[i].key, bad[i].value, why, sizeof(why)), RM_ERR_CONFIG_VALUE);
        assert_contains(why, bad[i].reason);
    }
    /* nothing refused changed anything */
    rm_traffic_config_t d;
    rm_traffic_config_defaults(&d);
    assert_memory_equal(&c, &d, sizeof(c));

    /* across keys */
    assert_int_equal(rm_traffic_config_set(&c, "retry.maxBackoff", "10ms", why, sizeof(why)), 0);
    assert_code(rm_traffic_config_check(&c, why, sizeof(why)), RM_ERR_CONFIG_VALUE);
    assert_contains(why, "retry.maxBackoff (10ms) is shorter than retry.backoff (25ms)");
    rm_traffic_config_defaults(&c);
    assert_int_equal(rm_traffic_config_set(&c, "outlierDetection.maxEjectionTime", "10s", why, sizeof(why)), 0);
    assert_code(rm_traffic_config_check(&c, why, sizeof(why)), RM_ERR_CONFIG_VALUE);
    assert_contains(why, "outlierDetection.maxEjectionTime");
}

static void test_lists(void **state)
{
    (void)state;
    rm_traffic_config_t c;
    char why[256];
    static const char *const codes[] = {"502", "503", "504"};
    static const char *const grpc[] = {"unavailable", "resource-exhausted", "13"};
    static const char *const bad_code[] = {"503", "200"};
    static const char *const bad_grpc[] = {"unavailable", "UNAVAILABLE"};
    rm_traffic_config_defaults(&c);
    assert_int_equal(rm_traffic_config_set_list(&c, "retry.codes", codes, 3, why, sizeof(why)), 0);
    assert_int_equal(c.retry.num_codes, 3);
    assert_int_equal(c.retry.codes[2], 504);
    assert_int_equal(rm_traffic_config_set_list(&c, "retry.grpcStatuses", grpc, 3, why, sizeof(why)), 0);
    assert_int_equal(c.retry.grpc_statuses, (1u << 14) | (1u << 8) | (1u << 13));
    assert_int_equal(rm_traffic_config_set_list(&c, "retry.grpcStatuses", NULL, 0, why, sizeof(why)), 0);
    assert_int_equal(c.retry.grpc_statuses, 0);
    assert_code(rm_traffic_config_set_list(&c, "retry.codes", bad_code, 2, why, sizeof(why)), RM_ERR_CONFIG_VALUE);
    assert_contains(why, "[1] \"200\" is not an HTTP status 400..599");
    assert_int_equal(c.retry.num_codes, 3); /* a refused list leaves the one before it */
    assert_int_equal(c.retry.codes[0], 502);
    assert_code(rm_traffic_config_set_list(&c, "retry.grpcStatuses", bad_grpc, 2, why, sizeof(why)),
                RM_ERR_CONFIG_VALUE);
    assert_contains(why, "[1] \"UNAVAILABLE\" is not a gRPC status");
    assert_code(rm_traffic_config_set_list(&c, "retry.attempts", codes, 1, why, sizeof(why)), RM_ERR_CONFIG_VALUE);
    assert_contains(why, "retry.attempts is not a traffic list setting");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
