/* The proxy's side of authorization: the WorkloadPolicy wire form (encode/decode), compiling what the control plane
 * pushed (and the NACK reason when it does not compile), decision counters across policy changes, the metrics text,
 * and policies from a directory for proxies without a control plane. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy_authz.h"
#include "ringmesh/error.h"

static const char FULL[] = "apiVersion: security.istio.io/v1\n"
                           "kind: AuthorizationPolicy\n"
                           "metadata:\n"
                           "  name: full\n"
                           "  namespace: shop\n"
                           "  annotations: {ringmesh.io/dry-run: \"true\", ringmesh.io/log-allowed: \"true\"}\n"
                           "spec:\n"
                           "  action: DENY\n"
                           "  rules:\n"
                           "  - from:\n"
                           "    - source: {principals: [a], notPrincipals: [b], namespaces: [c], notNamespaces: [d],\n"
                           "               ipBlocks: [10.0.0.0/8], notIpBlocks: [10.1.0.0/16]}\n"
                           "    to:\n"
                           "    - operation: {hosts: [h], notHosts: [nh], ports: ['80'], notPorts: ['81'],\n"
                           "                  methods: [GET], notMethods: [PUT], paths: [/p], notPaths: [/np]}\n"
                           "    when:\n"
                           "    - {key: 'request.headers[x-a]', values: [v], notValues: [nv]}\n"
                           "---\n"
                           "apiVersion: security.istio.io/v1\n"
                           "kind: AuthorizationPolicy\n"
                           "metadata: {name: allow-all, namespace: shop}\n"
                           "spec: {rules: [{}, {from: [{source: {namespaces: [web]}}]}]}\n";

static void load(rm_policy_set_t *set, const char *text)
{
    rm_policy_diags_t diags = {0};
    assert_int_equal(rm_policy_load_yaml(set, text, strlen(text), "t.yaml", 1, &diags), 0);
    rm_policy_diags_clear(&diags);
}

static void encode_set(const rm_policy_set_t *set, const rm_workload_policy_t *wp, uint8_t **out, size_t *len)
{
    const rm_authz_policy_t *list[8];
    assert_true(set->num_policies <= 8);
    for (size_t i = 0; i < set->num_policies; i++)
        list[i] = &set->policies[i];
    assert_int_equal(rm_workload_policy_encode(list, set->num_policies, wp, out, len), 0);
}

static void test_round_trip(void **state)
{
    rm_policy_set_t set = {0}, back = {0};
    rm_peer_port_mode_t ports[] = {{9090, RM_PEER_MTLS_DISABLE}};
    rm_workload_policy_t wp = {.opts = {.default_action = RM_AUTHZ_ALLOW, .log_allowed = 1, .log_allowed_sample = 0.25},
                               .inbound_mode = RM_PEER_MTLS_PERMISSIVE,
                               .port_modes = ports,
                               .num_port_modes = 1},
                         wp2;
    uint8_t *a, *b;
    size_t alen, blen;
    char err[256];

    load(&set, FULL);
    encode_set(&set, &wp, &a, &alen);
    assert_int_equal(rm_workload_policy_decode(a, alen, &back, &wp2, err, sizeof(err)), 0);
    /* every field survives: the decoded set encodes to the same bytes */
    encode_set(&back, &wp2, &b, &blen);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_int_equal(back.num_policies, 2);
    assert_string_equal(back.policies[0].name, "full");
    assert_int_equal(back.policies[0].action, RM_AUTHZ_DENY);
    assert_true(back.policies[0].dry_run);
    assert_true(back.policies[0].log_allowed);
    assert_string_equal(back.policies[0].rules[0].when[0].not_values.v[0], "nv");
    assert_int_equal(back.policies[1].num_rules, 2);
    assert_int_equal(wp2.opts.default_action, RM_AUTHZ_ALLOW);
    assert_true(wp2.opts.log_allowed);
    assert_true(wp2.opts.log_allowed_sample == 0.25);
    assert_int_equal(wp2.inbound_mode, RM_PEER_MTLS_PERMISSIVE);
    assert_int_equal(wp2.num_port_modes, 1);
    assert_int_equal(wp2.port_modes[0].port, 9090);
    assert_int_equal(wp2.port_modes[0].mode, RM_PEER_MTLS_DISABLE);
    free(a);
    free(b);
    rm_workload_policy_clear(&wp2);
    rm_policy_set_clear(&set);
    rm_policy_set_clear(&back);
}

static void test_bad_push_is_refused_with_reason(void **state)
{
    rm_policy_set_t set = {0};
    rm_workload_policy_t wp = {0};
    rm_authz_t *a = NULL;
    uint8_t *bytes;
    size_t len;
    char err[512];
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff};

    /* not a message */
    assert_int_equal(rm_authz_new(garbage, sizeof(garbage), "shop/x", "v1", &a, err, sizeof(err)),
                     RM_ERR_POLICY_INVALID);
    assert_null(a);
    assert_non_null(strstr(err, "not a valid message"));

    /* a value the loader would have refused (what a broken or hostile control plane could send): the proxy names
     * the policy, rule and value in its NACK */
    load(&set, FULL);
    free(set.policies[0].rules[0].to[0].ports.v[0]);
    set.policies[0].rules[0].to[0].ports.v[0] = strdup("http");
    encode_set(&set, &wp, &bytes, &len);
    assert_int_equal(rm_authz_new(bytes, len, "shop/x", "v2", &a, err, sizeof(err)), RM_ERR_POLICY_INVALID);
    assert_null(a);
    assert_non_null(strstr(err, "shop/full rules[0].to[0]"));
    assert_non_null(strstr(err, "\"http\" is not a port number"));
    free(bytes);

    /* a sample rate out of range */
    free(set.policies[0].rules[0].to[0].ports.v[0]);
    set.policies[0].rules[0].to[0].ports.v[0] = strdup("80");
    wp.opts.log_allowed_sample = 2;
    encode_set(&set, &wp, &bytes, &len);
    assert_int_equal(rm_authz_new(bytes, len, "shop/x", "v3", &a, err, sizeof(err)), RM_ERR_POLICY_INVALID);
    assert_non_null(strstr(err, "log_allowed_sample"));
    free(bytes);
    rm_policy_set_clear(&set);
}

static rm_authz_t *compile(const char *text, const char *version)
{
    rm_policy_set_t set = {0};
    rm_workload_policy_t wp = {.opts = {.default_action = RM_AUTHZ_DENY}};
    rm_authz_t *a = NULL;
    uint8_t *bytes;
    size_t len;
    char err[256];
    load(&set, text);
    encode_set(&set, &wp, &bytes, &len);
    assert_int_equal(rm_authz_new(bytes, len, "shop/orders-1", version, &a, err, sizeof(err)), 0);
    free(bytes);
    rm_policy_set_clear(&set);
    return a;
}

static void decide(rm_authz_t *a, const char *principal, rm_authz_decision_t *d)
{
    rm_authz_attrs_t at = {.principal = principal, .destination_port = 7070};
    rm_authz_evaluate(a->engine, &at, 0.5, d);
    rm_authz_count(a, d);
}

static const char TWO[] = "apiVersion: security.istio.io/v1\n"
                          "kind: AuthorizationPolicy\n"
                          "metadata: {name: deny-evil, namespace: shop}\n"
                          "spec: {action: DENY, rules: [{from: [{source: {namespaces: [evil]}}]}]}\n"
                          "---\n"
                          "apiVersion: security.istio.io/v1\n"
                          "kind: AuthorizationPolicy\n"
                          "metadata: {name: allow-web, namespace: shop}\n"
                          "spec: {rules: [{from: [{source: {namespaces: [web]}}]}]}\n";

static const char CHANGED[] = "apiVersion: security.istio.io/v1\n"
                              "kind: AuthorizationPolicy\n"
                              "metadata: {name: allow-web, namespace: shop}\n"
                              "spec: {rules: [{from: [{source: {namespaces: [web]}}]}]}\n";

static void test_counters_and_metrics(void **state)
{
    rm_authz_t *a = compile(TWO, "v1"), *b;
    rm_authz_decision_t d;
    char page[8192];
    size_t n;

    decide(a, "spiffe://cluster.local/ns/evil/sa/x", &d);
    decide(a, "spiffe://cluster.local/ns/evil/sa/y", &d);
    decide(a, "spiffe://cluster.local/ns/web/sa/x", &d);
    decide(a, "spiffe://cluster.local/ns/other/sa/x", &d);
    n = rm_authz_metrics(a, page, sizeof(page), 0);
    assert_true(n < sizeof(page));
    page[n] = '\0';
    assert_non_null(strstr(page, "# TYPE ringmesh_proxy_authz_decisions_total counter\n"));
    assert_non_null(strstr(
        page, "ringmesh_proxy_authz_decisions_total{decision=\"deny\",policy=\"shop/deny-evil\",rule=\"0\"} 2\n"));
    assert_non_null(strstr(
        page, "ringmesh_proxy_authz_decisions_total{decision=\"allow\",policy=\"shop/allow-web\",rule=\"0\"} 1\n"));
    assert_non_null(strstr(page, "ringmesh_proxy_authz_decisions_total{decision=\"deny\",policy=\"\",rule=\"\"} 1\n"));

    /* a change that drops deny-evil: allow-web keeps its count, deny-evil's is gone with it */
    b = compile(CHANGED, "v2");
    rm_authz_inherit_counters(b, a);
    decide(b, "spiffe://cluster.local/ns/web/sa/z", &d);
    n = rm_authz_metrics(b, page, sizeof(page), 0);
    page[n] = '\0';
    assert_non_null(strstr(
        page, "ringmesh_proxy_authz_decisions_total{decision=\"allow\",policy=\"shop/allow-web\",rule=\"0\"} 2\n"));
    assert_null(strstr(page, "deny-evil"));
    assert_non_null(strstr(page, "ringmesh_proxy_authz_decisions_total{decision=\"deny\",policy=\"\",rule=\"\"} 1\n"));
    assert_string_equal(b->version, "v2");
    assert_string_equal(b->workload, "shop/orders-1");

    /* a connection that started before the change still decides on the old set: its decisions count in the cells
     * the new set shows (they used to be lost once the counts had been copied over) */
    decide(a, "spiffe://cluster.local/ns/web/sa/late", &d);
    decide(a, "spiffe://cluster.local/ns/other/sa/late", &d);
    rm_authz_unref(a);
    n = rm_authz_metrics(b, page, sizeof(page), 0);
    page[n] = '\0';
    assert_non_null(strstr(
        page, "ringmesh_proxy_authz_decisions_total{decision=\"allow\",policy=\"shop/allow-web\",rule=\"0\"} 3\n"));
    assert_non_null(strstr(page, "ringmesh_proxy_authz_decisions_total{decision=\"deny\",policy=\"\",rule=\"\"} 2\n"));
    rm_authz_unref(b);
}

static const char DRY[] = "apiVersion: security.istio.io/v1\n"
                          "kind: AuthorizationPolicy\n"
                          "metadata: {name: allow-all, namespace: shop}\n"
                          "spec: {rules: [{}]}\n"
                          "---\n"
                          "apiVersion: security.istio.io/v1\n"
                          "kind: AuthorizationPolicy\n"
                          "metadata: {name: trial, namespace: shop, annotations: {ringmesh.io/dry-run: \"true\"}}\n"
                          "spec: {action: DENY, rules: [{from: [{source: {namespaces: [evil]}}]},\n"
                          "                             {from: [{source: {namespaces: [web]}}]}]}\n";

/* A request a dry-run policy would deny is counted as would-deny under that policy and rule (the one an operator
 * weighs enforcing), not under the policy that allowed it. */
static void test_would_deny_counted_for_dry_run_policy(void **state)
{
    rm_authz_t *a = compile(DRY, "v1");
    rm_authz_decision_t d;
    char page[8192];
    size_t n;

    decide(a, "spiffe://cluster.local/ns/web/sa/x", &d);
    assert_true(d.allow && d.dry_run_differs);
    decide(a, "spiffe://cluster.local/ns/web/sa/y", &d);
    decide(a, "spiffe://cluster.local/ns/other/sa/x", &d);
    n = rm_authz_metrics(a, page, sizeof(page), 0);
    assert_true(n < sizeof(page));
    page[n] = '\0';
    assert_non_null(strstr(
        page, "ringmesh_proxy_authz_decisions_total{decision=\"would-deny\",policy=\"shop/trial\",rule=\"1\"} 2\n"));
    assert_non_null(strstr(
        page, "ringmesh_proxy_authz_decisions_total{decision=\"allow\",policy=\"shop/allow-all\",rule=\"0\"} 1\n"));
    assert_null(strstr(page, "decision=\"would-deny\",policy=\"shop/allow-all\""));
    rm_authz_unref(a);
}

static void test_from_path(void **state)
{
    char dir[] = "/tmp/rm-test-authz-XXXXXX", path[256], err[512];
    rm_authz_t *a = NULL;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/p.yaml", dir);
    assert_non_null(f = fopen(path, "w"));
    fputs(TWO, f);
    fclose(f);
    assert_int_equal(rm_authz_from_path(dir, 0, 0, NULL, NULL, 0, 0, "host", &a, err, sizeof(err)), 0);
    assert_int_equal(a->set.num_policies, 2);
    assert_int_equal(a->wp.opts.default_action, RM_AUTHZ_DENY);
    rm_authz_unref(a);
    a = NULL;

    /* an invalid policy: the first error, with file, line, column and field */
    assert_non_null(f = fopen(path, "w"));
    fputs("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: y}\n"
          "spec: {rules: [{to: [{operation: {ports: ['0']}}]}]}\n",
          f);
    fclose(f);
    assert_int_equal(rm_authz_from_path(dir, 1, 0, NULL, NULL, 0, 0, "host", &a, err, sizeof(err)),
                     RM_ERR_POLICY_INVALID);
    assert_null(a);
    assert_non_null(strstr(err, "p.yaml:4:"));
    assert_non_null(strstr(err, "spec.rules[0].to[0].operation.ports[0]: \"0\" is not a port number"));
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_push_is_refused_with_reason),
        cmocka_unit_test(test_counters_and_metrics),
        cmocka_unit_test(test_would_deny_counted_for_dry_run_policy),
        cmocka_unit_test(test_from_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
