/* The proxy's YAML configuration loader (sidecar/proxy_config_schema.c, sidecar/proxy_config.c) on its values and
 * lookups: environment overrides, socket addresses, durations, finding a destination, per-port modes, empty
 * collections and the path normalization setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy_config.h"
#include "ringmesh/error.h"
#include "proxy_config_fixtures.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static void test_env_overrides(void **state)
{
    char err[256];
    rm_proxy_config_t *cfg = load_ok(DATA_DIR "minimal.yaml");

    unsetenv("RINGMESH_IO_BACKEND");
    unsetenv("RINGMESH_WORKERS");
    unsetenv("RINGMESH_LOG_LEVEL");
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->io_backend, RM_IO_AUTO);
    assert_int_equal(cfg->workers, 1);
    assert_string_equal(cfg->log_level, "info");

    setenv("RINGMESH_IO_BACKEND", "epoll", 1);
    setenv("RINGMESH_WORKERS", "8", 1);
    setenv("RINGMESH_LOG_LEVEL", "warn", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->io_backend, RM_IO_EPOLL);
    assert_int_equal(cfg->workers, 8);
    assert_string_equal(cfg->log_level, "warn");

    setenv("RINGMESH_IO_BACKEND", "io_uring", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->io_backend, RM_IO_URING);

    /* "default" and "" leave the backend alone (the e2e runner sets "default" for single-backend tests) */
    setenv("RINGMESH_IO_BACKEND", "default", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->io_backend, RM_IO_URING);
    setenv("RINGMESH_IO_BACKEND", "", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->io_backend, RM_IO_URING);

    /* a bad value fails and changes nothing, not even the variables that were fine */
    setenv("RINGMESH_IO_BACKEND", "epoll", 1);
    setenv("RINGMESH_WORKERS", "65", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "RINGMESH_WORKERS: \"65\" is not a whole number in 1..64");
    assert_int_equal(cfg->io_backend, RM_IO_URING);
    assert_int_equal(cfg->workers, 8);
    setenv("RINGMESH_WORKERS", "2", 1);

    setenv("RINGMESH_IO_BACKEND", "EPOLL", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "RINGMESH_IO_BACKEND: \"EPOLL\" is not an I/O backend");
    setenv("RINGMESH_IO_BACKEND", "auto", 1);

    setenv("RINGMESH_LOG_LEVEL", "trace", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "RINGMESH_LOG_LEVEL: \"trace\" is not a log level");
    assert_string_equal(cfg->log_level, "warn");
    assert_int_equal(cfg->workers, 8);

    setenv("RINGMESH_LOG_LEVEL", "error", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->io_backend, RM_IO_AUTO);
    assert_int_equal(cfg->workers, 2);
    assert_string_equal(cfg->log_level, "error");

    /* kernel TLS: auto or off; anything else fails and changes nothing */
    setenv("RINGMESH_KERNEL_TLS", "off", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->kernel_tls, 0);
    setenv("RINGMESH_KERNEL_TLS", "yes", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "RINGMESH_KERNEL_TLS: \"yes\" is not a kernel TLS setting (want auto or off)");
    assert_int_equal(cfg->kernel_tls, 0);
    setenv("RINGMESH_KERNEL_TLS", "auto", 1);
    assert_int_equal(rm_proxy_config_apply_env(cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->kernel_tls, 1);
    unsetenv("RINGMESH_KERNEL_TLS");

    unsetenv("RINGMESH_IO_BACKEND");
    unsetenv("RINGMESH_WORKERS");
    unsetenv("RINGMESH_LOG_LEVEL");
    rm_proxy_config_free(cfg);
}

static void test_sockaddr_parse(void **state)
{
    rm_sockaddr_t a;

    assert_int_equal(rm_sockaddr_parse("127.0.0.1:9000", &a), 0);
    assert_addr(&a, AF_INET, "127.0.0.1", 9000);
    assert_int_equal(rm_sockaddr_parse("[::]:15001", &a), 0);
    assert_addr(&a, AF_INET6, "::", 15001);
    assert_int_equal(rm_sockaddr_parse("[2001:db8::1]:1", &a), 0);
    assert_addr(&a, AF_INET6, "2001:db8::1", 1);
    assert_int_equal(rm_sockaddr_parse("[::ffff:10.0.0.1]:65535", &a), 0);
    assert_addr(&a, AF_INET6, "::ffff:10.0.0.1", 65535);
    assert_int_equal(rm_sockaddr_parse("8080", &a), 0);
    assert_addr(&a, AF_INET, "0.0.0.0", 8080);
    assert_int_equal(rm_sockaddr_parse("0.0.0.0:1", &a), 0);
    assert_addr(&a, AF_INET, "0.0.0.0", 1);

    static const char *const bad[] = {
        "",
        "0",
        "65536",
        "99999",
        "123456",
        "-1",
        "+80",
        " 80",
        "80 ",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:99999",
        "127.0.0.1:8o",
        "127.0.0.1:80:80",
        "256.0.0.1:80",
        "1.2.3:80",
        "::1:80",
        "[::1]",
        "[::1]80",
        "[::1]:",
        "[::1]:0",
        "[::1:80",
        "::]:80",
        "[1.2.3.4]:80",
        "[fe80::1%lo]:80",
        "localhost:80",
        "[]:80",
        ":80",
        "0x7f000001:80",
        "127.0.0.1:0x50",
        "[::1]:80x",
        "[aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa]:80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&a, 0x5a, sizeof(a));
        if (rm_sockaddr_parse(bad[i], &a) != -1)
            fail_msg("\"%s\" parsed as an address", bad[i]);
    }
    assert_int_equal(rm_sockaddr_parse(NULL, &a), -1);
}

static void test_duration_parse(void **state)
{
    static const struct {
        const char *s;
        uint32_t ms;
    } good[] = {
        {"0", 0},
        {"0ms", 0},
        {"0s", 0},
        {"1ms", 1},
        {"250ms", 250},
        {"5s", 5000},
        {"2m", 120000},
        {"1h", 3600000},
        {"1m30s", 90000},
        {"1h1m1s1ms", 3661001},
        {"1193h", 4294800000u},
        {"4294967295ms", 4294967295u},
        {"007s", 7000},
    };
    static const char *const bad[] = {
        "",
        "5",
        "s",
        "ms",
        "5 s",
        " 5s",
        "5s ",
        "-5s",
        "+5s",
        "1.5s",
        "5S",
        "5sec",
        "5us",
        "5ns",
        "5d",
        "1h-1m",
        "1hh",
        "5msx",
        "4294967296ms",
        "1194h",
        "1193h3m",
        "99999999999999999999s",
        "0x10s",
        "ms5",
        "5m5",
    };
    uint32_t ms;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ms = 12345;
        if (rm_duration_parse_ms(good[i].s, &ms) != 0)
            fail_msg("\"%s\" did not parse", good[i].s);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 12345;
        if (rm_duration_parse_ms(bad[i], &ms) != -1)
            fail_msg("\"%s\" parsed as a duration", bad[i]);
        assert_int_equal(ms, 12345);
    }
    assert_int_equal(rm_duration_parse_ms(NULL, &ms), -1);
}

static void test_find_destination(void **state)
{
    rm_proxy_config_t *cfg = load_ok(DATA_DIR "full.yaml");
    const rm_destination_t *d;

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "198.19.0.10", &sin.sin_addr);
    d = rm_proxy_config_find_destination(cfg, (struct sockaddr *)&sin);
    assert_ptr_equal(d, &cfg->destinations[0]);

    /* what an IPv6 socket on a dual-stack listener reports for an IPv4 peer */
    struct sockaddr_in6 mapped = {.sin6_family = AF_INET6, .sin6_port = htons(8080)};
    inet_pton(AF_INET6, "::ffff:198.19.0.10", &mapped.sin6_addr);
    d = rm_proxy_config_find_destination(cfg, (struct sockaddr *)&mapped);
    assert_ptr_equal(d, &cfg->destinations[0]);

    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
    d = rm_proxy_config_find_destination(cfg, (struct sockaddr *)&sin6);
    assert_ptr_equal(d, &cfg->destinations[1]);

    /* near misses: wrong port, wrong address, the IPv4-compatible (not mapped) form, wrong family */
    sin.sin_port = htons(8081);
    assert_null(rm_proxy_config_find_destination(cfg, (struct sockaddr *)&sin));
    sin.sin_port = htons(8080);
    inet_pton(AF_INET, "198.19.0.11", &sin.sin_addr);
    assert_null(rm_proxy_config_find_destination(cfg, (struct sockaddr *)&sin));
    mapped.sin6_port = htons(443);
    assert_null(rm_proxy_config_find_destination(cfg, (struct sockaddr *)&mapped));
    mapped.sin6_port = htons(8080);
    inet_pton(AF_INET6, "::198.19.0.10", &mapped.sin6_addr);
    assert_null(rm_proxy_config_find_destination(cfg, (struct sockaddr *)&mapped));
    inet_pton(AF_INET6, "2001:db8::8", &sin6.sin6_addr);
    assert_null(rm_proxy_config_find_destination(cfg, (struct sockaddr *)&sin6));
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    assert_null(rm_proxy_config_find_destination(cfg, (struct sockaddr *)&sun));
    assert_null(rm_proxy_config_find_destination(cfg, NULL));
    rm_proxy_config_free(cfg);

    /* a destination written as v4-mapped IPv6 matches a plain IPv4 peer */
    char text[1024];
    snprintf(text, sizeof(text),
             "%sdestinations:\n  - address: \"[::ffff:198.19.0.20]:80\"\n"
             "    identities: [spiffe://cluster.local/ns/a/sa/b]\n",
             TLS_OK);
    cfg = load_ok(write_tmp_str("mapped_dest.yaml", text));
    inet_pton(AF_INET, "198.19.0.20", &sin.sin_addr);
    sin.sin_port = htons(80);
    assert_ptr_equal(rm_proxy_config_find_destination(cfg, (struct sockaddr *)&sin), &cfg->destinations[0]);
    rm_proxy_config_free(cfg);
}

static void test_port_mode(void **state)
{
    rm_proxy_config_t *cfg = load_ok(DATA_DIR "full.yaml");
    assert_int_equal(rm_proxy_config_port_mode(cfg, 9000), RM_MTLS_DISABLE);
    assert_int_equal(rm_proxy_config_port_mode(cfg, 9001), RM_MTLS_STRICT);
    assert_int_equal(rm_proxy_config_port_mode(cfg, 9002), RM_MTLS_PERMISSIVE);
    assert_int_equal(rm_proxy_config_port_mode(cfg, 8999), RM_MTLS_PERMISSIVE);
    rm_proxy_config_free(cfg);
    rm_proxy_config_free(NULL);
}

static void test_empty_collections(void **state)
{
    char text[1024];
    /* null and empty collections mean "none", as in Kubernetes manifests */
    snprintf(text, sizeof(text), "%s%s", TLS_OK,
             "destinations: []\nlisteners:\ninbound:\n  portModes: []\noutbound: {}\nadmin:\n");
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("empty_collections.yaml", text));
    assert_int_equal(cfg->num_destinations, 0);
    assert_int_equal(cfg->num_listeners, 0);
    assert_int_equal(cfg->num_port_modes, 0);
    assert_int_equal(cfg->outbound_enabled, 1);
    assert_int_equal(cfg->admin_enabled, 1);
    rm_proxy_config_free(cfg);

    /* quoted numbers and booleans are read the same as plain ones */
    snprintf(text, sizeof(text), "%s%s", TLS_OK, "workers: \"3\"\nconnectionLog: 'false'\nconnectTimeout: \"1m30s\"\n");
    cfg = load_ok(write_tmp_str("quoted.yaml", text));
    assert_int_equal(cfg->workers, 3);
    assert_int_equal(cfg->connection_log, 0);
    assert_int_equal(cfg->connect_timeout_ms, 90000);
    /* the metrics section is absent: Istio-style names off, 2000 series per metric, series expire after 10m */
    assert_int_equal(cfg->metrics_istio_names, 0);
    assert_int_equal(cfg->metrics_max_series, 2000);
    assert_int_equal(cfg->metrics_expiry_ms, 600000);
    rm_proxy_config_free(cfg);

    snprintf(text, sizeof(text), "%s%s", TLS_OK,
             "metrics: {istioNames: true, maxSeriesPerMetric: 0, seriesExpiry: 90s}\n");
    cfg = load_ok(write_tmp_str("metrics.yaml", text));
    assert_int_equal(cfg->metrics_istio_names, 1);
    assert_int_equal(cfg->metrics_max_series, 0);
    assert_int_equal(cfg->metrics_expiry_ms, 90000);
    rm_proxy_config_free(cfg);
}

/* control.keepaliveTime/keepaliveTimeout: 60s and 20s by default; a keepalive under 30s, which the control plane would
 * answer with GOAWAY too_many_pings, is refused with its position and field. */
static void test_control_keepalive(void **state)
{
    static const char control[] = "control:\n"
                                  "  address: 127.0.0.1:15012\n"
                                  "  bootstrapBundleFile: /etc/ringmesh/root-cert.pem\n"
                                  "  tokenFile: /var/run/secrets/token\n"
                                  "  stateDir: /var/lib/ringmesh\n";
    char text[1024], err[512];
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("keepalive_default.yaml", control));
    assert_int_equal(cfg->control->keepalive_time_ms, 60000);
    assert_int_equal(cfg->control->keepalive_timeout_ms, 20000);
    rm_proxy_config_free(cfg);

    snprintf(text, sizeof(text), "%s  keepaliveTime: 45s\n  keepaliveTimeout: 3s\n", control);
    cfg = load_ok(write_tmp_str("keepalive_set.yaml", text));
    assert_int_equal(cfg->control->keepalive_time_ms, 45000);
    assert_int_equal(cfg->control->keepalive_timeout_ms, 3000);
    rm_proxy_config_free(cfg);

    snprintf(text, sizeof(text), "%s  keepaliveTime: 10s\n", control);
    const char *path = write_tmp_str("keepalive_short.yaml", text);
    load_fail(path, RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_has_position(path, err);
    assert_contains(err, "control.keepaliveTime: must be at least 30s");

    snprintf(text, sizeof(text), "%s  keepaliveTimeout: 0s\n", control);
    path = write_tmp_str("keepalive_zero.yaml", text);
    load_fail(path, RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, "control.keepaliveTimeout");
    (void)state;
}

/* authorization.pathNormalization.normalization: Istio's four names, BASE when absent; anything else is refused
 * with file, line, column and field. */
static void test_path_normalization(void **state)
{
    static const struct {
        const char *value;
        rm_path_normalization_t want;
    } ok[] = {
        {NULL, RM_PATH_NORMALIZATION_BASE},
        {"BASE", RM_PATH_NORMALIZATION_BASE},
        {"NONE", RM_PATH_NORMALIZATION_NONE},
        {"MERGE_SLASHES", RM_PATH_NORMALIZATION_MERGE_SLASHES},
        {"DECODE_AND_MERGE_SLASHES", RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES},
    };
    char text[1024], err[1024];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (ok[i].value != NULL)
            snprintf(text, sizeof(text),
                     "%sauthorization:\n  policyDir: /p\n  pathNormalization: {normalization: %s}\n", TLS_OK,
                     ok[i].value);
        else
            snprintf(text, sizeof(text), "%sauthorization:\n  policyDir: /p\n", TLS_OK);
        rm_proxy_config_t *cfg = load_ok(write_tmp_str("norm.yaml", text));
        assert_int_equal(cfg->authz_path_normalization, ok[i].want);
        rm_proxy_config_free(cfg);
    }
    static const struct {
        const char *yaml, *expect;
    } bad[] = {
        {"  pathNormalization: {normalization: base}\n",
         "norm.yaml:7:38: authorization.pathNormalization.normalization: \"base\" is not BASE, MERGE_SLASHES, "
         "DECODE_AND_MERGE_SLASHES or NONE"},
        {"  pathNormalization: {normalization: DEFAULT}\n",
         "norm.yaml:7:38: authorization.pathNormalization.normalization: \"DEFAULT\" is not BASE"},
        {"  pathNormalization: BASE\n", "norm.yaml:7:22: authorization.pathNormalization: want a mapping"},
        {"  pathNormalization: {mode: BASE}\n", "authorization.pathNormalization.mode: unknown key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "%sauthorization:\n  policyDir: /p\n%s", TLS_OK, bad[i].yaml);
        const char *p = write_tmp_str("norm.yaml", text);
        rm_proxy_config_t *cfg = NULL;
        int ret = rm_proxy_config_load(p, &cfg, err, sizeof(err));
        assert_true(ret == RM_ERR_CONFIG_VALUE || ret == RM_ERR_CONFIG_PARSE);
        assert_null(cfg);
        assert_contains(err, bad[i].expect);
    }
}

/* authorization.numTrustedProxies: 0 when absent, 0..64, anything else refused with its place */
static void test_num_trusted_proxies(void **state)
{
    char text[1024], err[1024];
    snprintf(text, sizeof(text), "%sauthorization:\n  policyDir: /p\n", TLS_OK);
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("ntp.yaml", text));
    assert_int_equal(cfg->authz_num_trusted_proxies, 0);
    rm_proxy_config_free(cfg);
    snprintf(text, sizeof(text), "%sauthorization:\n  policyDir: /p\n  numTrustedProxies: 2\n", TLS_OK);
    cfg = load_ok(write_tmp_str("ntp.yaml", text));
    assert_int_equal(cfg->authz_num_trusted_proxies, 2);
    rm_proxy_config_free(cfg);
    snprintf(text, sizeof(text), "%sauthorization:\n  policyDir: /p\n  numTrustedProxies: 65\n", TLS_OK);
    cfg = NULL;
    assert_int_equal(rm_proxy_config_load(write_tmp_str("ntp.yaml", text), &cfg, err, sizeof(err)),
                     RM_ERR_CONFIG_VALUE);
    assert_null(cfg);
    assert_contains(err, "ntp.yaml:7:22: authorization.numTrustedProxies: \"65\" is not a whole number in 0..64");
}

/* authorization.logAttributes: off when absent; a boolean; anything else refused with its field. */
static void test_log_attributes(void **state)
{
    char text[1024], err[1024];
    snprintf(text, sizeof(text), "%sauthorization:\n  policyDir: /p\n", TLS_OK);
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("attrs.yaml", text));
    assert_int_equal(cfg->authz_log_attributes, 0);
    rm_proxy_config_free(cfg);
    snprintf(text, sizeof(text), "%sauthorization:\n  policyDir: /p\n  logAttributes: true\n", TLS_OK);
    cfg = load_ok(write_tmp_str("attrs.yaml", text));
    assert_int_equal(cfg->authz_log_attributes, 1);
    rm_proxy_config_free(cfg);
    snprintf(text, sizeof(text), "%sauthorization:\n  policyDir: /p\n  logAttributes: sometimes\n", TLS_OK);
    cfg = NULL;
    assert_int_not_equal(rm_proxy_config_load(write_tmp_str("attrs.yaml", text), &cfg, err, sizeof(err)), 0);
    assert_null(cfg);
    assert_contains(err, "authorization.logAttributes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_normalization),  cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_sockaddr_parse),      cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_find_destination),    cmocka_unit_test(test_port_mode),
        cmocka_unit_test(test_empty_collections),   cmocka_unit_test(test_control_keepalive),
        cmocka_unit_test(test_num_trusted_proxies), cmocka_unit_test(test_log_attributes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
