/* Unit tests for the proxy's configuration taken from an environment variable (ringmesh-proxy --config-env NAME,
 * sidecar/proxy_config_schema.c): the same loader as a file, with messages naming "$NAME:LINE:COLUMN: FIELD". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy_config.h"
#include "ringmesh/error.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAR "RM_TEST_PROXY_CONFIG"

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("message \"%s\"\n  does not contain \"%s\"", haystack, needle);
}

/* A pod's configuration, as the injector writes it: control plane, admin on every address, explicit values. */
static void test_loads_like_a_file(void **state)
{
    rm_proxy_config_t *cfg = NULL;
    char err[1024] = "";
    setenv(VAR,
           "trustDomain: example.org\n"
           "control:\n"
           "  address: ringmesh-control.ringmesh-system.svc:15012\n"
           "  bootstrapBundleFile: /etc/ringmesh/root-cert/root-cert.pem\n"
           "  tokenFile: /var/run/secrets/ringmesh/token/token\n"
           "  stateDir: /var/lib/ringmesh\n"
           "  node: {labelsFile: /etc/ringmesh/podinfo/labels}\n"
           "admin:\n"
           "  listen: \"0.0.0.0:15021\"\n"
           "drainTimeout: 7s\n",
           1);
    int ret = rm_proxy_config_load_env(VAR, &cfg, err, sizeof(err));
    if (ret != 0)
        fail_msg("load failed (%d): %s", ret, err);
    assert_string_equal(cfg->path, "$" VAR);
    assert_string_equal(cfg->trust_domain, "example.org");
    assert_non_null(cfg->control);
    assert_string_equal(cfg->control->state_dir, "/var/lib/ringmesh");
    assert_string_equal(cfg->control->node_labels_file, "/etc/ringmesh/podinfo/labels");
    assert_int_equal(cfg->drain_timeout_ms, 7000);
    const struct sockaddr_in *a = (const struct sockaddr_in *)&cfg->admin_listen.ss;
    assert_int_equal(a->sin_family, AF_INET);
    assert_int_equal(a->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(ntohs(a->sin_port), 15021);
    /* defaults as for a file */
    assert_int_equal(cfg->inbound_mode, RM_MTLS_STRICT);
    assert_int_equal(cfg->workers, 1);
    rm_proxy_config_free(cfg);
    unsetenv(VAR);
}

/* Errors are positioned in the variable's text and name the variable where a file's name would be. */
static void test_positioned_errors(void **state)
{
    static const struct {
        const char *yaml, *expect;
        int code;
    } bad[] = {
        {"admin:\n  listen: nowhere\n", "$" VAR ":2:11: admin.listen: \"nowhere\" is not an address",
         RM_ERR_CONFIG_VALUE},
        {"workers: 2\nbogus: 1\n", "$" VAR ":2:1: bogus: unknown key", RM_ERR_CONFIG_PARSE},
        {"outbound: {enabled: [\n", "$" VAR ":", RM_ERR_CONFIG_PARSE},
        {"", "$" VAR, RM_ERR_CONFIG_PARSE},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rm_proxy_config_t *sentinel = (rm_proxy_config_t *)(uintptr_t)0x1, *cfg = sentinel;
        char err[1024] = "";
        setenv(VAR, bad[i].yaml, 1);
        int ret = rm_proxy_config_load_env(VAR, &cfg, err, sizeof(err));
        if (ret != bad[i].code)
            fail_msg("case %zu: want %d, got %d: %s", i, bad[i].code, ret, err);
        assert_ptr_equal(cfg, sentinel);
        assert_contains(err, bad[i].expect);
        assert_true(strncmp(err, "$" VAR, strlen("$" VAR)) == 0);
    }
    unsetenv(VAR);
}

static void test_unset_and_bad_names(void **state)
{
    rm_proxy_config_t *cfg = NULL;
    char err[1024] = "", longname[200];
    unsetenv(VAR);
    assert_int_equal(rm_proxy_config_load_env(VAR, &cfg, err, sizeof(err)), RM_ERR_CONFIG_IO);
    assert_null(cfg);
    assert_string_equal(err, "$" VAR ": the environment variable is not set");

    assert_int_equal(rm_proxy_config_load_env("A=B", &cfg, err, sizeof(err)), RM_ERR_CONFIG_IO);
    assert_contains(err, "not an environment variable name");
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(rm_proxy_config_load_env(longname, &cfg, err, sizeof(err)), RM_ERR_CONFIG_IO);
    assert_contains(err, "not an environment variable name");
    assert_int_equal(rm_proxy_config_load_env("", &cfg, err, sizeof(err)), RM_ERR_CONFIG_IO);
    assert_null(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_like_a_file),
        cmocka_unit_test(test_positioned_errors),
        cmocka_unit_test(test_unset_and_bad_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
