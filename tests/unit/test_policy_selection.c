/* Which policies apply to a workload (selectors, the root namespace) and PeerAuthentication precedence
 * (lib/policy_engine.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy_fixtures.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void test_selection(void **state)
{
    static const char yaml[] =
        AP_HEAD "metadata: {name: mesh, namespace: istio-system}\nspec: {}\n---\n" AP_HEAD
                "metadata: {name: mesh-web, namespace: istio-system}\nspec: {selector: {matchLabels: {app: web}}}\n"
                "---\n" AP_HEAD "metadata: {name: ns-a, namespace: a}\nspec: {}\n---\n" AP_HEAD
                "metadata: {name: a-web-v1, namespace: a}\n"
                "spec: {selector: {matchLabels: {app: web, version: v1}}}\n---\n" AP_HEAD
                "metadata: {name: a-any, namespace: a}\nspec: {selector: {}}\n";
    static const rm_label_t web_v1[] = {{"tier", "x"}, {"version", "v1"}, {"app", "web"}}, web[] = {{"app", "web"}},
                            api[] = {{"app", "api"}}, web2[] = {{"app", "web2"}, {"version", "v1"}};
    static const struct {
        rm_workload_t w;
        const char *root;
        uint8_t want[5]; /* mesh, mesh-web, ns-a, a-web-v1, a-any */
    } cases[] = {
        {{"a", web_v1, 3}, "istio-system", {1, 1, 1, 1, 1}},
        {{"a", web, 1}, "istio-system", {1, 1, 1, 0, 1}},
        {{"a", web2, 2}, "istio-system", {1, 0, 1, 0, 1}},
        {{"a", NULL, 0}, "istio-system", {1, 0, 1, 0, 1}},
        {{"b", web, 1}, "istio-system", {1, 1, 0, 0, 0}},
        {{"b", api, 1}, "istio-system", {1, 0, 0, 0, 0}},
        {{"istio-system", api, 1}, "istio-system", {1, 0, 0, 0, 0}},
        {{"istio-system", web, 1}, "istio-system", {1, 1, 0, 0, 0}},
        /* no root namespace: those are policies of a namespace like any other */
        {{"b", web, 1}, NULL, {0, 0, 0, 0, 0}},
        {{"istio-system", web, 1}, NULL, {1, 1, 0, 0, 0}},
        {{"a", web_v1, 3}, NULL, {0, 0, 1, 1, 1}},
    };
    rm_policy_set_t set = {0};

    load_ok(&set, yaml);
    assert_int_equal(set.num_policies, 5);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (size_t k = 0; k < 5; k++)
            if (rm_authz_policy_selects(&set.policies[k], cases[i].root, &cases[i].w) != cases[i].want[k])
                fail_msg("case %zu: policy %s: want %d", i, set.policies[k].name, cases[i].want[k]);
    rm_policy_set_clear(&set);
}

static void test_peer_authn_resolve(void **state)
{
    static const char yaml[] =
        PA("istio-system", "mesh", "{mtls: {mode: STRICT}}") PA("a", "ns-a", "{mtls: {mode: PERMISSIVE}}")
            PA("a", "a-web",
               "{selector: {matchLabels: {app: web}}, portLevelMtls: {8080: {mode: DISABLE}, 9090: {mode: UNSET}, "
               "8443: {mode: STRICT}}}") PA("a", "a-db", "{selector: {matchLabels: {app: db}}, mtls: {mode: DISABLE}}")
                PA("c", "ns-c", "{mtls: {}}") PA("d", "z-second", "{mtls: {mode: DISABLE}}")
                    PA("d", "a-first", "{mtls: {mode: PERMISSIVE}}")
                        PA("istio-system", "root-web", "{selector: {matchLabels: {app: web}}, mtls: {mode: DISABLE}}");
    static const rm_label_t web[] = {{"app", "web"}}, db[] = {{"app", "db"}}, other[] = {{"app", "other"}};
    rm_policy_set_t set = {0}, empty = {0};
    rm_peer_port_mode_t ports[4];
    size_t np = 99;

    load_ok(&set, yaml);
    assert_int_equal(set.num_peer_authns, 8);
    const char *root = "istio-system";
    /* mesh level */
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"b", web, 1}, ports, 4, &np),
                     RM_PEER_MTLS_STRICT);
    assert_int_equal(np, 0);
    /* namespace over mesh */
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"a", other, 1}, ports, 4, &np),
                     RM_PEER_MTLS_PERMISSIVE);
    assert_int_equal(np, 0);
    /* workload over namespace; an UNSET workload mode inherits; port-level modes, UNSET ones left out */
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"a", web, 1}, ports, 4, &np),
                     RM_PEER_MTLS_PERMISSIVE);
    assert_int_equal(np, 2);
    assert_int_equal(ports[0].port, 8080);
    assert_int_equal(ports[0].mode, RM_PEER_MTLS_DISABLE);
    assert_int_equal(ports[1].port, 8443);
    assert_int_equal(ports[1].mode, RM_PEER_MTLS_STRICT);
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"a", web, 1}, ports, 1, &np),
                     RM_PEER_MTLS_PERMISSIVE);
    assert_int_equal(np, 1);
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"a", web, 1}, NULL, 0, &np),
                     RM_PEER_MTLS_PERMISSIVE);
    assert_int_equal(np, 0);
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"a", db, 1}, ports, 4, &np),
                     RM_PEER_MTLS_DISABLE);
    /* an UNSET namespace mode inherits the mesh's */
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"c", NULL, 0}, ports, 4, &np),
                     RM_PEER_MTLS_STRICT);
    /* two at one level: the first by name, whatever the file order */
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"d", NULL, 0}, ports, 4, &np),
                     RM_PEER_MTLS_PERMISSIVE);
    /* a root-namespace policy with a selector is workload-level for the root namespace's workloads only */
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"istio-system", web, 1}, ports, 4, &np),
                     RM_PEER_MTLS_DISABLE);
    assert_int_equal(rm_peer_authn_resolve(&set, root, &(rm_workload_t){"istio-system", other, 1}, ports, 4, &np),
                     RM_PEER_MTLS_STRICT);
    /* no root namespace: no mesh level */
    assert_int_equal(rm_peer_authn_resolve(&set, NULL, &(rm_workload_t){"b", web, 1}, ports, 4, &np),
                     RM_PEER_MTLS_UNSET);
    assert_int_equal(rm_peer_authn_resolve(&empty, root, &(rm_workload_t){"a", web, 1}, ports, 4, &np),
                     RM_PEER_MTLS_UNSET);
    assert_int_equal(np, 0);
    rm_policy_set_clear(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_peer_authn_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
