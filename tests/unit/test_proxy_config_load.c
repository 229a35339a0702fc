/* The proxy's YAML configuration loader (sidecar/proxy_config_schema.c, sidecar/proxy_config.c) on whole files: a
 * full and a minimal configuration, every refused file with its position, listen overlaps, I/O errors, hostile
 * inputs and positions in large files. */
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

static void test_full_config(void **state)
{
    rm_proxy_config_t *cfg = load_ok(DATA_DIR "full.yaml");

    assert_string_equal(cfg->path, DATA_DIR "full.yaml");
    assert_string_equal(cfg->trust_domain, "mesh.example");
    assert_string_equal(cfg->cert_file, "/etc/ringmesh/svid.pem");
    assert_string_equal(cfg->key_file, "/etc/ringmesh/svid.key");
    assert_string_equal(cfg->bundle_file, "/etc/ringmesh/bundle.pem");

    assert_int_equal(cfg->outbound_enabled, 1);
    assert_addr(&cfg->outbound_listen, AF_INET6, "::1", 25001);
    assert_int_equal(cfg->inbound_enabled, 1);
    assert_addr(&cfg->inbound_listen, AF_INET, "0.0.0.0", 25006);
    assert_int_equal(cfg->inbound_mode, RM_MTLS_PERMISSIVE);
    assert_int_equal(cfg->num_port_modes, 2);
    assert_int_equal(cfg->port_modes[0].port, 9000);
    assert_int_equal(cfg->port_modes[0].mode, RM_MTLS_DISABLE);
    assert_int_equal(cfg->port_modes[1].port, 9001);
    assert_int_equal(cfg->port_modes[1].mode, RM_MTLS_STRICT);

    assert_int_equal(cfg->num_destinations, 2);
    assert_addr(&cfg->destinations[0].addr, AF_INET, "198.19.0.10", 8080);
    assert_int_equal(cfg->destinations[0].num_identities, 1);
    assert_string_equal(cfg->destinations[0].identities[0], "spiffe://mesh.example/ns/shop/sa/orders");
    assert_addr(&cfg->destinations[1].addr, AF_INET6, "2001:db8::7", 443);
    assert_int_equal(cfg->destinations[1].num_identities, 2);
    assert_string_equal(cfg->destinations[1].identities[0], "spiffe://mesh.example/ns/shop/sa/payments");
    assert_string_equal(cfg->destinations[1].identities[1], "spiffe://mesh.example/ns/shop/sa/payments-canary");

    assert_int_equal(cfg->num_listeners, 2);
    assert_string_equal(cfg->listeners[0].name, "orders");
    assert_int_equal(cfg->listeners[0].kind, RM_LISTENER_UPSTREAM);
    assert_addr(&cfg->listeners[0].listen, AF_INET, "127.0.0.1", 9100);
    assert_addr(&cfg->listeners[0].target, AF_INET, "127.0.0.1", 9443);
    assert_int_equal(cfg->listeners[0].num_identities, 1);
    assert_string_equal(cfg->listeners[0].identities[0], "spiffe://mesh.example/ns/shop/sa/orders");
    assert_string_equal(cfg->listeners[1].name, "in");
    assert_int_equal(cfg->listeners[1].kind, RM_LISTENER_INBOUND);
    assert_addr(&cfg->listeners[1].listen, AF_INET, "0.0.0.0", 9443);
    assert_addr(&cfg->listeners[1].target, AF_INET, "127.0.0.1", 8080);
    assert_int_equal(cfg->listeners[1].mode, RM_MTLS_PERMISSIVE);
    assert_int_equal(cfg->listeners[1].num_identities, 0);

    assert_int_equal(cfg->admin_enabled, 0);
    assert_addr(&cfg->admin_listen, AF_INET, "127.0.0.1", 25021);
    assert_int_equal(cfg->workers, 4);
    assert_int_equal(cfg->io_backend, RM_IO_EPOLL);
    assert_int_equal(cfg->kernel_tls, 0);
    assert_int_equal(cfg->max_connections, 1024);
    assert_int_equal(cfg->connect_timeout_ms, 750);
    assert_int_equal(cfg->idle_timeout_ms, 120000);
    assert_int_equal(cfg->drain_timeout_ms, 0);
    assert_int_equal(cfg->handshake_timeout_ms, 3000);
    assert_int_equal(cfg->connection_log, 0);
    assert_int_equal(cfg->access_log, 0);
    assert_string_equal(cfg->log_level, "debug");

    rm_proxy_config_free(cfg);
}

static void test_minimal_defaults(void **state)
{
    rm_proxy_config_t *cfg = load_ok(DATA_DIR "minimal.yaml");

    assert_string_equal(cfg->trust_domain, "cluster.local");
    assert_string_equal(cfg->cert_file, "/etc/ringmesh/svid.pem");
    assert_int_equal(cfg->outbound_enabled, 1);
    assert_addr(&cfg->outbound_listen, AF_INET6, "::", 15001);
    assert_int_equal(cfg->inbound_enabled, 1);
    assert_addr(&cfg->inbound_listen, AF_INET6, "::", 15006);
    assert_int_equal(cfg->inbound_mode, RM_MTLS_STRICT);
    assert_int_equal(cfg->num_port_modes, 0);
    assert_null(cfg->port_modes);
    assert_int_equal(cfg->num_destinations, 0);
    assert_int_equal(cfg->num_listeners, 0);
    assert_int_equal(cfg->admin_enabled, 1);
    assert_addr(&cfg->admin_listen, AF_INET, "127.0.0.1", 15021);
    assert_int_equal(cfg->workers, 1);
    assert_int_equal(cfg->io_backend, RM_IO_AUTO);
    assert_int_equal(cfg->kernel_tls, 1);
    assert_int_equal(cfg->max_connections, 4096);
    assert_int_equal(cfg->connect_timeout_ms, 5000);
    assert_int_equal(cfg->idle_timeout_ms, 3600000);
    assert_int_equal(cfg->drain_timeout_ms, 5000);
    assert_int_equal(cfg->handshake_timeout_ms, 10000);
    assert_int_equal(cfg->connection_log, 1);
    assert_int_equal(cfg->access_log, 0); /* the access log is off unless asked for */
    assert_true(cfg->access_log_sample == 1);
    assert_null(cfg->workload_name);
    assert_string_equal(cfg->log_level, "info");
    assert_int_equal(rm_proxy_config_port_mode(cfg, 8080), RM_MTLS_STRICT);

    rm_proxy_config_free(cfg);
}

static void test_tls_optional_without_mtls(void **state)
{
    rm_proxy_config_t *cfg = load_ok(DATA_DIR "no_tls.yaml");
    assert_null(cfg->cert_file);
    assert_null(cfg->key_file);
    assert_null(cfg->bundle_file);
    assert_int_equal(cfg->outbound_enabled, 0);
    assert_int_equal(cfg->inbound_mode, RM_MTLS_DISABLE);
    rm_proxy_config_free(cfg);

    /* one port with mTLS is enough to need the files again */
    char err[1024];
    load_fail(write_tmp_str("empty_cert.yaml", "tls:\n  certFile: \"\"\n"), RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, "empty_cert.yaml:2:13: tls.certFile: must not be empty");

    const char *p = write_tmp_str("port_needs_tls.yaml", "outbound:\n"
                                                         "  enabled: false\n"
                                                         "inbound:\n"
                                                         "  mode: DISABLE\n"
                                                         "  portModes:\n"
                                                         "    - port: 9000\n"
                                                         "      mode: PERMISSIVE\n");
    load_fail(p, RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, "port_needs_tls.yaml:1:1: tls.certFile: is required because inbound capture has a port");
}

/* One bad file per rule: the message must name the file, the line and column of the offending node, the field
 * path, and what is wrong. */
typedef struct {
    const char *file;
    int code;
    const char *expect;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"bad_listener_target.yaml", RM_ERR_CONFIG_VALUE,
     "bad_listener_target.yaml:15:13: listeners[1].target: \"127.0.0.1:99999\" is not an address (want ip:port, "
     "[ip6]:port or port)"},
    {"bad_syntax.yaml", RM_ERR_CONFIG_PARSE, "bad_syntax.yaml:4:2: "},
    {"bad_unknown_key.yaml", RM_ERR_CONFIG_PARSE,
     "bad_unknown_key.yaml:7:3: outbound.lsiten: unknown key \"lsiten\" (known keys: enabled, listen)"},
    {"bad_unknown_listener_key.yaml", RM_ERR_CONFIG_PARSE,
     "bad_unknown_listener_key.yaml:13:5: listeners[1].targets: unknown key \"targets\" (known keys: name, type, "
     "listen, target, mode, identities)"},
    {"bad_duplicate_key.yaml", RM_ERR_CONFIG_PARSE,
     "bad_duplicate_key.yaml:7:1: workers: duplicate key (first set at line 5)"},
    {"bad_type.yaml", RM_ERR_CONFIG_PARSE, "bad_type.yaml:2:6: tls: want a mapping, got a scalar"},
    {"bad_listen.yaml", RM_ERR_CONFIG_VALUE, "bad_listen.yaml:6:11: outbound.listen: \"[::1]15001\" is not an address"},
    {"bad_duration.yaml", RM_ERR_CONFIG_VALUE, "bad_duration.yaml:7:19: handshakeTimeout: \"10\" is not a duration"},
    {"bad_mode.yaml", RM_ERR_CONFIG_VALUE,
     "bad_mode.yaml:6:9: inbound.mode: \"strict\" is not an mTLS mode (want STRICT, PERMISSIVE or DISABLE)"},
    {"bad_port_mode.yaml", RM_ERR_CONFIG_VALUE,
     "bad_port_mode.yaml:9:13: inbound.portModes[1].port: \"70000\" is not a whole number in 1..65535"},
    {"bad_identity.yaml", RM_ERR_CONFIG_VALUE,
     "bad_identity.yaml:9:9: destinations[0].identities[1]: \"https://cluster.local/ns/shop/sa/orders\" is not a "
     "SPIFFE ID: "},
    {"bad_identity_no_path.yaml", RM_ERR_CONFIG_VALUE,
     "bad_identity_no_path.yaml:8:9: destinations[0].identities[0]: \"spiffe://cluster.local\" names a trust "
     "domain, not a workload (it has no path)"},
    {"bad_identity_trust_domain.yaml", RM_ERR_CONFIG_VALUE,
     "bad_identity_trust_domain.yaml:11:18: listeners[0].identities[0]: \"spiffe://cluster.local/ns/shop/sa/orders\" "
     "is not in trust domain \"prod.example\""},
    {"bad_duplicate_listen.yaml", RM_ERR_CONFIG_VALUE,
     "bad_duplicate_listen.yaml:12:13: listeners[1].listen: 127.0.0.1:9443 overlaps listeners[0].listen "
     "(0.0.0.0:9443)"},
    {"bad_listen_admin.yaml", RM_ERR_CONFIG_VALUE,
     "bad_listen_admin.yaml:8:13: listeners[0].listen: 127.0.0.1:15021 overlaps admin.listen (127.0.0.1:15021)"},
    {"bad_missing_identities.yaml", RM_ERR_CONFIG_VALUE,
     "bad_missing_identities.yaml:6:5: listeners[0].identities: is required for upstream listeners"},
    {"bad_missing_target.yaml", RM_ERR_CONFIG_VALUE,
     "bad_missing_target.yaml:6:5: listeners[0].target: is required for inbound listeners"},
    {"bad_missing_tls.yaml", RM_ERR_CONFIG_VALUE,
     "bad_missing_tls.yaml:4:3: tls.keyFile: is required because outbound capture is enabled"},
    {"bad_workers.yaml", RM_ERR_CONFIG_VALUE, "bad_workers.yaml:5:10: workers: \"65\" is not a whole number in 1..64"},
    {"bad_trust_domain.yaml", RM_ERR_CONFIG_VALUE,
     "bad_trust_domain.yaml:1:14: trustDomain: \"Cluster.Local\" is not a SPIFFE trust domain: "},
    {"bad_bool.yaml", RM_ERR_CONFIG_VALUE,
     "bad_bool.yaml:6:12: admin.enabled: \"yes\" is not a boolean (want true or false)"},
    {"bad_alias.yaml", RM_ERR_CONFIG_PARSE,
     "bad_alias.yaml:4:15: tls.bundleFile: YAML aliases (*svid) are not supported"},
    {"bad_two_documents.yaml", RM_ERR_CONFIG_PARSE,
     "bad_two_documents.yaml:5:1: (document): the file holds more than one YAML document"},
    {"bad_destination_duplicate.yaml", RM_ERR_CONFIG_VALUE,
     "bad_destination_duplicate.yaml:8:14: destinations[1].address: same address as destinations[0]"},
};

static void test_bad_files(void **state)
{
    char path[512], err[1024];
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        snprintf(path, sizeof(path), DATA_DIR "%s", bad_cases[i].file);
        memset(err, 'x', sizeof(err));
        load_fail(path, bad_cases[i].code, err, sizeof(err));
        assert_has_position(path, err);
        /* the message starts with the path exactly as given */
        assert_int_equal(strncmp(err, path, strlen(path)), 0);
        assert_contains(err, bad_cases[i].expect);
    }
}

static void test_syntax_error_line(void **state)
{
    char err[1024];
    load_fail(DATA_DIR "bad_syntax.yaml", RM_ERR_CONFIG_PARSE, err, sizeof(err));
    /* the dedented key ends "tls", so the error belongs to the top-level mapping */
    assert_contains(err, "bad_syntax.yaml:4:2: (document): YAML syntax error: did not find expected key (while "
                         "parsing a block mapping at line 1)");

    const char *p = write_tmp_str("unclosed.yaml", "workers: 2\n"
                                                   "destinations:\n"
                                                   "  - address: 198.19.0.1:80\n"
                                                   "    identities: [\"spiffe://cluster.local/ns/a/sa/b\"\n"
                                                   "logLevel: info\n");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_has_position(p, err);
    assert_contains(err, "YAML syntax error");
    assert_contains(err, "unclosed.yaml:5:");
}

static void test_unknown_top_level_key(void **state)
{
    char err[1024];
    const char *p = write_tmp_str("typo.yaml", "trustDomian: cluster.local\n");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "typo.yaml:1:1: trustDomian: unknown key \"trustDomian\" (known keys: trustDomain, tls, ");
}

static void test_value_errors_generated(void **state)
{
    static const struct {
        const char *yaml;
        const char *expect;
    } cases[] = {
        {"ioBackend: kqueue\n", "gen.yaml:5:12: ioBackend: \"kqueue\" is not an I/O backend"},
        {"kernelTls: on\n", "gen.yaml:5:12: kernelTls: \"on\" is not a kernel TLS setting (want auto or off)"},
        {"logLevel: verbose\n", "gen.yaml:5:11: logLevel: \"verbose\" is not a log level"},
        {"authorization: {defaultAction: DENY}\n", "gen.yaml:5:16: authorization.policyDir: is required"},
        {"authorization: {policyDir: /p, defaultAction: deny}\n",
         "gen.yaml:5:47: authorization.defaultAction: \"deny\" is not DENY or ALLOW"},
        {"workers: 0\n", "gen.yaml:5:10: workers: \"0\" is not a whole number in 1..64"},
        {"workers: -1\n", "gen.yaml:5:10: workers: \"-1\" is not a whole number in 1..64"},
        {"maxConnections: 0\n", "gen.yaml:5:17: maxConnections: \"0\" is not a whole number"},
        {"connectTimeout: 0\n", "gen.yaml:5:17: connectTimeout: must be longer than 0"},
        {"idleTimeout: 5 s\n", "gen.yaml:5:14: idleTimeout: \"5 s\" is not a duration"},
        {"drainTimeout: 1193h3m\n", "gen.yaml:5:15: drainTimeout: \"1193h3m\" is not a duration"},
        {"connectionLog: 1\n", "gen.yaml:5:16: connectionLog: \"1\" is not a boolean"},
        {"accessLog: {enabled: 1}\n", "gen.yaml:5:22: accessLog.enabled: \"1\" is not a boolean"},
        {"accessLog: {sampleRate: 1.5}\n", "gen.yaml:5:25: accessLog.sampleRate: \"1.5\" is not a fraction in [0, 1]"},
        {"accessLog: maybe\n", "gen.yaml:5:12: accessLog.enabled: \"maybe\" is not a boolean"},
        {"accessLog: [true]\n", "gen.yaml:5:12: accessLog: want a mapping, got a sequence"},
        {"metrics: {enabled: true}\naccessLog: 1 # a comment\n",
         "gen.yaml:6:12: accessLog.enabled: \"1\" is not a boolean"},
        {"metrics: {istioNames: yes}\n", "gen.yaml:5:23: metrics.istioNames: \"yes\" is not a boolean"},
        {"metrics: {enabled: maybe}\n", "gen.yaml:5:20: metrics.enabled: \"maybe\" is not a boolean"},
        {"metrics:\n  maxSeriesPerMetric: -5\n",
         "gen.yaml:6:23: metrics.maxSeriesPerMetric: \"-5\" is not a whole number in 0..1000000"},
        {"metrics:\n  seriesExpiry: 10 minutes\n",
         "gen.yaml:6:17: metrics.seriesExpiry: \"10 minutes\" is not a duration"},
        {"metrics:\n  prefix: istio_\n", "gen.yaml:6:3: metrics.prefix: unknown key \"prefix\""},
        {"trustDomain: \"\"\n", "gen.yaml:5:14: trustDomain: \"\" is not a SPIFFE trust domain"},
        {"inbound:\n  portModes:\n    - mode: STRICT\n", "gen.yaml:7:7: inbound.portModes[0].port: is required"},
        {"inbound:\n  portModes:\n    - port: 80\n      mode: STRICT\n    - port: 80\n      mode: DISABLE\n",
         "gen.yaml:9:13: inbound.portModes[1].port: port 80 already has a mode"},
        {"listeners:\n  - type: inbound\n    listen: 9443\n    target: 127.0.0.1:80\n",
         "gen.yaml:6:5: listeners[0].name: is required"},
        {"listeners:\n  - name: a b\n    type: inbound\n    listen: 9443\n    target: 127.0.0.1:80\n",
         "gen.yaml:6:11: listeners[0].name: \"a b\" is not a name"},
        {"listeners:\n  - name: a\n    type: outbound\n    listen: 9443\n    target: 127.0.0.1:80\n",
         "gen.yaml:7:11: listeners[0].type: \"outbound\" is not a listener type (want upstream or inbound)"},
        {"listeners:\n  - name: a\n    type: inbound\n    listen: 9443\n    target: 9444\n",
         "gen.yaml:9:13: listeners[0].target: \"9444\" needs an explicit IP address"},
        {"listeners:\n  - name: a\n    type: upstream\n    listen: 9443\n    target: 127.0.0.1:1\n    mode: STRICT\n"
         "    identities: [spiffe://cluster.local/a]\n",
         "gen.yaml:10:11: listeners[0].mode: applies to inbound listeners only"},
        {"listeners:\n  - name: a\n    type: inbound\n    listen: 9443\n    target: 127.0.0.1:1\n"
         "  - name: a\n    type: inbound\n    listen: 9444\n    target: 127.0.0.1:2\n",
         "gen.yaml:10:11: listeners[1].name: \"a\" is also the name of listeners[0]"},
        {"destinations:\n  - address: 198.19.0.1:80\n", "gen.yaml:6:5: destinations[0].identities: is required"},
        {"destinations:\n  - identities: [spiffe://cluster.local/a]\n",
         "gen.yaml:6:5: destinations[0].address: is required"},
        {"destinations:\n  - address: 198.19.0.1:80\n    identities: [spiffe://cluster.local/a, "
         "spiffe://cluster.local/a]\n",
         "gen.yaml:7:44: destinations[0].identities[1]: \"spiffe://cluster.local/a\" is listed twice"},
        /* [::] is dual-stack: it takes IPv4 addresses on the same port too */
        {"outbound:\n  listen: 9000\ninbound:\n  listen: \"[::]:9000\"\n",
         "gen.yaml:8:11: inbound.listen: [::]:9000 overlaps outbound.listen (0.0.0.0:9000)"},
        {"tls:\n  certFile: x\n", "gen.yaml:5:1: tls: duplicate key (first set at line 1)"},
        {"admin:\n  listen: \"\"\n", "gen.yaml:6:11: admin.listen: \"\" is not an address"},
        {"listeners: {}\n", "gen.yaml:5:12: listeners: want a sequence, got a mapping"},
    };
    char err[1024], text[2048];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", TLS_OK, cases[i].yaml);
        const char *p = write_tmp_str("gen.yaml", text);
        rm_proxy_config_t *cfg = NULL;
        int ret = rm_proxy_config_load(p, &cfg, err, sizeof(err));
        if (ret == 0)
            fail_msg("case %zu loaded but should fail: %s", i, cases[i].yaml);
        assert_true(ret == RM_ERR_CONFIG_VALUE || ret == RM_ERR_CONFIG_PARSE);
        assert_null(cfg);
        assert_has_position(p, err);
        assert_contains(err, cases[i].expect);
    }
}

/* accessLog: true|false is short for accessLog: {enabled: true|false} (sample rate 1), quoted or plain, in block or
 * flow style; the long form still takes a sample rate, and positions after the shorthand stay right. */
static void test_access_log_shorthand(void **state)
{
    static const struct {
        const char *yaml;
        int on;
        double sample;
    } cases[] = {
        {"accessLog: true\n", 1, 1},
        {"accessLog: false\n", 0, 1},
        {"accessLog: \"true\"\n", 1, 1},
        {"accessLog: 'false'   # off\n", 0, 1},
        {"{outbound: {enabled: false}, inbound: {enabled: false}, accessLog: true, workers: 2}\n", 1, 1},
        {"accessLog: {enabled: true, sampleRate: 0.25}\n", 1, 0.25},
        {"accessLog:\n  enabled: true\n", 1, 1},
    };
    char text[2048], err[1024];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", i == 4 ? "" : TLS_OK, cases[i].yaml);
        rm_proxy_config_t *cfg = load_ok(write_tmp_str("shorthand.yaml", text));
        assert_int_equal(cfg->access_log, cases[i].on);
        assert_true(cfg->access_log_sample == cases[i].sample);
        rm_proxy_config_free(cfg);
    }
    /* an error after the shorthand names its own line and column */
    snprintf(text, sizeof(text), "%saccessLog: true\nworkers: 0\n", TLS_OK);
    load_fail(write_tmp_str("shorthand_err.yaml", text), RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, "shorthand_err.yaml:6:10: workers: \"0\" is not a whole number");
}

static void test_listen_overlap_rules(void **state)
{
    char text[2048];
    /* different ports, and 0.0.0.0 vs a specific IPv6 address, do not overlap */
    snprintf(text, sizeof(text), "%s%s", TLS_OK,
             "outbound:\n  listen: 0.0.0.0:9000\ninbound:\n  listen: \"[::1]:9000\"\n"
             "admin:\n  listen: 127.0.0.1:9001\n");
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("overlap_ok.yaml", text));
    rm_proxy_config_free(cfg);

    /* a disabled endpoint takes no address */
    snprintf(text, sizeof(text), "%s%s", TLS_OK,
             "admin:\n  enabled: false\nlisteners:\n  - name: h\n    type: inbound\n    listen: 127.0.0.1:15021\n"
             "    target: 127.0.0.1:80\n");
    cfg = load_ok(write_tmp_str("overlap_disabled.yaml", text));
    assert_int_equal(cfg->num_listeners, 1);
    rm_proxy_config_free(cfg);

    /* a v4-mapped address is the same socket as its IPv4 form */
    char err[1024];
    snprintf(text, sizeof(text), "%s%s", TLS_OK,
             "admin:\n  listen: \"[::ffff:127.0.0.1]:9100\"\nlisteners:\n  - name: h\n    type: inbound\n"
             "    listen: 127.0.0.1:9100\n    target: 127.0.0.1:80\n");
    load_fail(write_tmp_str("overlap_mapped.yaml", text), RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, "overlap_mapped.yaml:10:13: listeners[0].listen: 127.0.0.1:9100 overlaps admin.listen");
}

static void test_too_many_identities(void **state)
{
    char text[4096], err[1024];
    size_t n =
        (size_t)snprintf(text, sizeof(text), "%sdestinations:\n  - address: 198.19.0.1:80\n    identities:\n", TLS_OK);
    for (int i = 0; i <= RM_MAX_IDENTITIES; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "      - spiffe://cluster.local/ns/a/sa/s%d\n", i);
    load_fail(write_tmp_str("many_ids.yaml", text), RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, "many_ids.yaml:8:7: destinations[0].identities: has 17 entries; at most 16 are allowed");

    /* exactly the maximum is fine */
    n = (size_t)snprintf(text, sizeof(text), "%sdestinations:\n  - address: 198.19.0.1:80\n    identities:\n", TLS_OK);
    for (int i = 0; i < RM_MAX_IDENTITIES; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "      - spiffe://cluster.local/ns/a/sa/s%d\n", i);
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("max_ids.yaml", text));
    assert_int_equal(cfg->destinations[0].num_identities, RM_MAX_IDENTITIES);
    assert_string_equal(cfg->destinations[0].identities[15], "spiffe://cluster.local/ns/a/sa/s15");
    rm_proxy_config_free(cfg);
}

static void test_io_errors(void **state)
{
    char err[1024];
    load_fail(DATA_DIR "does-not-exist.yaml", RM_ERR_CONFIG_IO, err, sizeof(err));
    assert_contains(err, "does-not-exist.yaml: cannot open: ");
    load_fail(tmp_dir, RM_ERR_CONFIG_IO, err, sizeof(err));
    assert_contains(err, "not a regular file");

    /* a file over the size limit is refused without parsing */
    size_t big = (4u << 20) + 1;
    char *buf = malloc(big);
    assert_non_null(buf);
    memset(buf, '#', big);
    const char *p = write_tmp("huge.yaml", buf, big);
    free(buf);
    load_fail(p, RM_ERR_CONFIG_IO, err, sizeof(err));
    assert_contains(err, "larger than");
    unlink(p);

    /* a small error buffer still gets a terminated prefix of the message */
    char tiny[12];
    memset(tiny, 'x', sizeof(tiny));
    load_fail(DATA_DIR "bad_workers.yaml", RM_ERR_CONFIG_VALUE, tiny, sizeof(tiny));
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    rm_proxy_config_t *cfg = NULL;
    assert_int_equal(rm_proxy_config_load(DATA_DIR "bad_workers.yaml", &cfg, NULL, 0), RM_ERR_CONFIG_VALUE);
    assert_null(cfg);
}

/* Hostile inputs: each must fail cleanly with a positioned message, never crash or leak. */
static void test_nasty_inputs(void **state)
{
    char err[1024];
    const char *p;

    p = write_tmp_str("empty.yaml", "");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "empty.yaml:1:1: (document): the file is empty");

    p = write_tmp_str("comments.yaml", "# nothing here\n\n# still nothing\n");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "comments.yaml:1:1: (document): the file is empty");

    p = write_tmp_str("dashes.yaml", "---\n");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "(document): the top level must be a mapping of settings, not an empty document");

    p = write_tmp_str("scalar.yaml", "\n\nhello world\n");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "scalar.yaml:3:1: (document): the top level must be a mapping of settings, not a scalar");

    p = write_tmp_str("list.yaml", "- workers: 1\n- workers: 2\n");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "list.yaml:1:1: (document): the top level must be a mapping of settings, not a sequence");

    p = write_tmp_str("complex_key.yaml", "? [a, b]\n: c\n");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "complex_key.yaml:1:3: (document): mapping keys must be plain strings, not a sequence");

    /* a very long value: over libcyaml's string limit */
    size_t n = 200000;
    char *buf = malloc(n + 64);
    assert_non_null(buf);
    memcpy(buf, "logLevel: ", 10);
    memset(buf + 10, 'a', n);
    memcpy(buf + 10 + n, "\n", 2);
    p = write_tmp_str("long_value.yaml", buf);
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "long_value.yaml:1:11: logLevel: longer than 4096 characters");

    /* a key longer than YAML's 1024-character limit for implicit keys is no key at all */
    memset(buf, 'k', n);
    memcpy(buf + n, ": 1\n", 5);
    p = write_tmp_str("longer_key.yaml", buf);
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_has_position(p, err);

    /* a long key: unknown, and shown shortened */
    memset(buf, 'k', 1000);
    memcpy(buf + 1000, ": 1\n", 5);
    p = write_tmp_str("long_key.yaml", buf);
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "long_key.yaml:1:1: kkkk");
    assert_contains(err, "...: unknown key \"kkkk");
    assert_true(strlen(err) < 800);

    /* keys that only look alike in a message are not duplicates of each other, nor of the document */
    p = write_tmp_str("empty_key.yaml", "\"\": 1\n");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "empty_key.yaml:1:1: \"\": unknown key \"\" (known keys: trustDomain, ");
    p = write_tmp_str("ctl_keys.yaml", "\"a\\x01\": 1\n\"a\\x02\": 2\n");
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "ctl_keys.yaml:1:1: a?: unknown key \"a\\x01\"");

    /* a long value that is within the string limit but not a valid setting */
    snprintf(buf, n, "%sworkers: ", TLS_OK);
    memset(buf + strlen(buf), '9', 3000);
    strcpy(buf + strlen(TLS_OK) + 9 + 3000, "\n");
    p = write_tmp_str("long_number.yaml", buf);
    load_fail(p, RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, "long_number.yaml:5:10: workers: \"9999");
    assert_contains(err, "...\" is not a whole number in 1..64");

    /* deep nesting, flow and block */
    n = 0;
    n += (size_t)snprintf(buf, 64, "tls: ");
    for (int i = 0; i < 10000; i++)
        buf[n++] = '[';
    for (int i = 0; i < 10000; i++)
        buf[n++] = ']';
    buf[n++] = '\n';
    buf[n] = '\0';
    p = write_tmp_str("deep_flow.yaml", buf);
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "deep_flow.yaml:1:");
    assert_contains(err, "nested deeper than 16 levels");

    n = 0;
    for (int i = 0; i < 200; i++) {
        for (int j = 0; j < i; j++)
            buf[n++] = ' ';
        n += (size_t)snprintf(buf + n, 16, "k%d:\n", i);
    }
    buf[n] = '\0';
    p = write_tmp_str("deep_block.yaml", buf);
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "deep_block.yaml:17:17: k0.k1.k2.");
    assert_contains(err, "nested deeper than 16 levels");
    free(buf);

    /* NUL bytes and other binary garbage */
    static const char nul[] = "workers: 1\nlog\0Level: info\n";
    p = write_tmp("nul.yaml", nul, sizeof(nul) - 1);
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "nul.yaml:2:4: ");
    assert_contains(err, "YAML syntax error: control characters are not allowed (#x00)");
    /* lines ended by CR alone (or NEL, LS, PS) are lines to libyaml, and so to the position of a reader error */
    static const char cr[] = "workers: 1\rconnectionLog: true\rlog\0Level: info\r";
    p = write_tmp("cr.yaml", cr, sizeof(cr) - 1);
    load_fail(p, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "cr.yaml:3:4: ");

    unsigned seed = 12345;
    unsigned char garbage[4096];
    for (int round = 0; round < 64; round++) {
        for (size_t i = 0; i < sizeof(garbage); i++) {
            seed = seed * 1103515245u + 12345u;
            garbage[i] = (unsigned char)(seed >> 16);
        }
        p = write_tmp("garbage.yaml", garbage, sizeof(garbage) >> (round % 8));
        rm_proxy_config_t *cfg = NULL;
        int ret = rm_proxy_config_load(p, &cfg, err, sizeof(err));
        assert_true(ret == RM_ERR_CONFIG_PARSE || ret == RM_ERR_CONFIG_VALUE);
        assert_null(cfg);
        assert_has_position(p, err);
    }

    /* printable garbage shaped like YAML */
    static const char *const shapes[] = {
        ":\n",
        "- - -\n",
        "{{{{\n",
        "a: [}\n",
        "a: b: c\n",
        "\"\n",
        "&a\n",
        "!!binary x\n",
        "tls: !!map {}\n",
        "? \n",
        "%YAML 9.9\n---\na: 1\n",
        "\t\tworkers: 1\n",
        "workers: 1\n  bad: 2\n",
        "*x\n",
        "[1, 2]: 3\n",
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        p = write_tmp_str("shape.yaml", shapes[i]);
        rm_proxy_config_t *cfg = NULL;
        int ret = rm_proxy_config_load(p, &cfg, err, sizeof(err));
        if (ret != RM_ERR_CONFIG_PARSE && ret != RM_ERR_CONFIG_VALUE)
            fail_msg("shape %zu (%s): ret %d: %s", i, shapes[i], ret, err);
        assert_null(cfg);
        assert_has_position(p, err);
    }
}

/* A large file: many destinations, an error in the last one still gets its own line. */
static void test_large_file_positions(void **state)
{
    const int count = 3000;
    size_t cap = (size_t)count * 128 + 1024, n;
    char *buf = malloc(cap), err[1024];
    assert_non_null(buf);

    n = (size_t)snprintf(buf, cap, "%sdestinations:\n", TLS_OK);
    for (int i = 0; i < count; i++)
        n += (size_t)snprintf(buf + n, cap - n,
                              "  - address: 198.18.%d.%d:%d\n    identities: [spiffe://cluster.local/s%d]\n", i / 250,
                              i % 250 + 1, 1000 + i, i);
    rm_proxy_config_t *cfg = load_ok(write_tmp_str("large.yaml", buf));
    assert_int_equal(cfg->num_destinations, (size_t)count);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1000 + count - 1)};
    inet_pton(AF_INET, "198.18.11.250", &sin.sin_addr);
    const rm_destination_t *d = rm_proxy_config_find_destination(cfg, (struct sockaddr *)&sin);
    assert_non_null(d);
    assert_string_equal(d->identities[0], "spiffe://cluster.local/s2999");
    rm_proxy_config_free(cfg);

    /* break the last entry's identity: line = 5 + 2 * count (header is 5 lines, 2 lines per entry) */
    char *last = strstr(buf + n - 80, "spiffe://cluster.local/s2999");
    assert_non_null(last);
    memcpy(last, "spiffy:/", 8);
    load_fail(write_tmp_str("large_bad.yaml", buf), RM_ERR_CONFIG_VALUE, err, sizeof(err));
    char expect[128];
    snprintf(expect, sizeof(expect), "large_bad.yaml:%d:18: destinations[%d].identities[0]: ", 5 + 2 * count,
             count - 1);
    assert_contains(err, expect);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_tls_optional_without_mtls),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_syntax_error_line),
        cmocka_unit_test(test_unknown_top_level_key),
        cmocka_unit_test(test_value_errors_generated),
        cmocka_unit_test(test_access_log_shorthand),
        cmocka_unit_test(test_listen_overlap_rules),
        cmocka_unit_test(test_too_many_identities),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_nasty_inputs),
        cmocka_unit_test(test_large_file_positions),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
