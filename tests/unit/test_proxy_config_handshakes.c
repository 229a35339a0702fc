/* The proxy file's `handshakes` settings (sidecar/proxy_config_handshakes.c): defaults, values, and refusals that
 * name the file, line and field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy_config.h"
#include "ringmesh/error.h"
#include "proxy_config_fixtures.h"

#include <stdio.h>

static void test_defaults(void **state)
{
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("hs_defaults.yaml", TLS_OK));
    assert_int_equal(cfg->handshake_threads, 1);
    assert_int_equal(cfg->handshake_priority, RM_HANDSHAKE_PRIORITY_LOW);
    assert_int_equal(cfg->max_pending_handshakes, 128);
    assert_int_equal(cfg->handshake_backoff_failures, 20);
    assert_int_equal(cfg->handshake_failure_window_ms, 10000);
    assert_int_equal(cfg->handshake_backoff_ms, 10000);
    rm_proxy_config_free(cfg);
    (void)state;
}

static void test_values(void **state)
{
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("hs_values.yaml", TLS_OK "handshakes:\n"
                                                                            "  threads: 2\n"
                                                                            "  priority: idle\n"
                                                                            "  maxPending: 16\n"
                                                                            "  backoffAfterFailures: 0\n"
                                                                            "  failureWindow: 1m\n"
                                                                            "  backoff: 30s\n"));
    assert_int_equal(cfg->handshake_threads, 2);
    assert_int_equal(cfg->handshake_priority, RM_HANDSHAKE_PRIORITY_IDLE);
    assert_int_equal(cfg->max_pending_handshakes, 16);
    assert_int_equal(cfg->handshake_backoff_failures, 0);
    assert_int_equal(cfg->handshake_failure_window_ms, 60000);
    assert_int_equal(cfg->handshake_backoff_ms, 30000);
    rm_proxy_config_free(cfg);

    /* threads: 0 puts handshakes back on the workers */
    cfg = load_ok(write_tmp_str("hs_zero.yaml", TLS_OK "handshakes: {threads: 0, priority: normal}\n"));
    assert_int_equal(cfg->handshake_threads, 0);
    assert_int_equal(cfg->handshake_priority, RM_HANDSHAKE_PRIORITY_NORMAL);
    rm_proxy_config_free(cfg);
    (void)state;
}

static void test_refusals(void **state)
{
    static const struct {
        const char *yaml, *message;
    } cases[] = {
        {"handshakes: {maxPending: 0}\n", "handshakes.maxPending"},
        {"handshakes: {threads: 17}\n", "handshakes.threads"},
        {"handshakes: {priority: high}\n", "handshakes.priority: \"high\" is not a handshake priority"},
        {"handshakes: {failureWindow: 0s}\n", "handshakes.failureWindow: must be longer than 0"},
        {"handshakes: {backoff: soon}\n", "handshakes.backoff"},
        {"handshakes: {maxInFlight: 3}\n", "maxInFlight"},
    };
    char err[512], text[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", TLS_OK, cases[i].yaml);
        const char *path = write_tmp_str("hs_bad.yaml", text);
        load_fail(path, i == 5 ? RM_ERR_CONFIG_PARSE : RM_ERR_CONFIG_VALUE, err, sizeof(err));
        assert_has_position(path, err);
        assert_contains(err, cases[i].message);
    }
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
