/* Principals and the mesh's trust domains (lib/policy_trust_domain.c and its uses): Istio's expansion of a
 * principal naming cluster.local, the trust domain or an alias, case by case; decisions of an engine compiled with
 * a trust domain and aliases (principals, notPrincipals, source.principal, the rule index; source.namespaces
 * untouched); the WorkloadPolicy fields on the wire; MeshConfig spec.trustDomainAliases in the control plane and
 * authorization.trustDomainAliases in the proxy's file, with their errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_model.h"
#include "proxy_authz.h"
#include "proxy_config.h"
#include "source.h"
#include "ringmesh/error.h"
#include "ringmesh/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ expansion */

typedef struct st_expand_case_t {
    int line;
    const char *td;
    const char *aliases[3];
    const char *principal;
    const char *want[4]; /* in order; NULL-terminated */
} expand_case_t;

static const expand_case_t expand_cases[] = {
    /* cluster.local stands for the mesh's own trust domain */
    {__LINE__, "cluster.local", {NULL}, "cluster.local/ns/a/sa/x", {"cluster.local/ns/a/sa/x"}},
    {__LINE__, "example.org", {NULL}, "cluster.local/ns/a/sa/x", {"example.org/ns/a/sa/x"}},
    {__LINE__, "example.org", {NULL}, "spiffe://cluster.local/ns/a/sa/x", {"example.org/ns/a/sa/x"}},
    /* and for every alias, after the trust domain */
    {__LINE__, "new.td", {"old.td", NULL}, "cluster.local/ns/a/sa/x", {"new.td/ns/a/sa/x", "old.td/ns/a/sa/x"}},
    /* a principal in the trust domain or an alias stands for all of them */
    {__LINE__, "new.td", {"old.td", NULL}, "old.td/ns/a/sa/x", {"new.td/ns/a/sa/x", "old.td/ns/a/sa/x"}},
    {__LINE__, "new.td", {"old.td", NULL}, "new.td/ns/a/sa/x", {"new.td/ns/a/sa/x", "old.td/ns/a/sa/x"}},
    {__LINE__, "new.td", {"old.td", "new.td", NULL}, "old.td/ns/a/sa/x", {"new.td/ns/a/sa/x", "old.td/ns/a/sa/x"}},
    /* a service-account pattern keeps its pattern in each */
    {__LINE__, "new.td", {"old.td", NULL}, "cluster.local/ns/a/sa/*", {"new.td/ns/a/sa/*", "old.td/ns/a/sa/*"}},
    /* another trust domain, "*" as the trust domain, fewer segments, "*": as written */
    {__LINE__, "new.td", {"old.td", NULL}, "other.td/ns/a/sa/x", {"other.td/ns/a/sa/x"}},
    {__LINE__, "new.td", {NULL}, "*/ns/a/sa/x", {"*/ns/a/sa/x"}},
    {__LINE__, "new.td", {NULL}, "cluster.local/ns/a/*", {"cluster.local/ns/a/*"}},
    {__LINE__, "new.td", {NULL}, "spiffe://cluster.local/ns/a/*", {"spiffe://cluster.local/ns/a/*"}},
    {__LINE__, "new.td", {NULL}, "*", {"*"}},
    {__LINE__, "new.td", {NULL}, "ns/a/sa/x", {"ns/a/sa/x"}},
    /* trust-domain patterns: "*x" stays a pattern where it matches, else becomes the name; "x*" becomes the names */
    {__LINE__, "new-td", {"old-td", NULL}, "*-td/ns/a/sa/x", {"*-td/ns/a/sa/x"}},
    {__LINE__, "new-td", {"legacy", NULL}, "*-td/ns/a/sa/x", {"*-td/ns/a/sa/x", "legacy/ns/a/sa/x"}},
    {__LINE__, "new-td", {"old-td", NULL}, "new*/ns/a/sa/x", {"new-td/ns/a/sa/x", "old-td/ns/a/sa/x"}},
    {__LINE__, "new-td", {NULL}, "zzz*/ns/a/sa/x", {"zzz*/ns/a/sa/x"}},
};

static void test_expand(void **state)
{
    for (size_t i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++) {
        const expand_case_t *c = &expand_cases[i];
        size_t naliases = 0, nwant = 0, n;
        char **out;
        while (c->aliases[naliases] != NULL)
            naliases++;
        while (nwant < 4 && c->want[nwant] != NULL)
            nwant++;
        rm_authz_engine_opts_t opts = {.trust_domain = c->td,
                                       .trust_domain_aliases = (char *const *)c->aliases,
                                       .num_trust_domain_aliases = naliases};
        assert_int_equal(rm_authz_principal_expand(&opts, c->principal, &out, &n), 0);
        int ok = n == nwant;
        for (size_t k = 0; ok && k < n; k++)
            ok = strcmp(out[k], c->want[k]) == 0;
        if (!ok) {
            for (size_t k = 0; k < n; k++)
                print_message("  got[%zu] %s\n", k, out[k]);
            fail_msg("case at line %d: %s expanded to %zu principals, want %zu", c->line, c->principal, n, nwant);
        }
        for (size_t k = 0; k < n; k++)
            free(out[k]);
        free(out);
    }
    /* no trust domain: as written */
    rm_authz_engine_opts_t none = {0};
    char **out;
    size_t n;
    assert_int_equal(rm_authz_principal_expand(&none, "cluster.local/ns/a/sa/x", &out, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "cluster.local/ns/a/sa/x");
    free(out[0]);
    free(out);
}

/* ------------------------------------------------------------------ decisions */

#define AP(name, action)                                                                                               \
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " name                              \
    ", namespace: shop}\nspec:\n  action: " action "\n  rules:\n"

static const char POLICIES[] = AP(
    "allow-frontend",
    "ALLOW") "  - from: [{source: {principals: [\"cluster.local/ns/web/sa/frontend\"]}}]\n"
             "  - when: [{key: source.principal, values: [\"spiffe://cluster.local/ns/ops/sa/admin\"]}]\n"
             "  - from: [{source: {namespaces: [team]}}]\n"
             "---\n" AP("deny-outsiders", "DENY") "  - from: [{source: {notPrincipals: [\"cluster.local/ns/web/*\", "
                                                  "\"cluster.local/ns/ops/sa/admin\", "
                                                  "\"cluster.local/ns/web/sa/frontend\"], notNamespaces: [team]}}]\n";

static rm_authz_engine_t *compile(rm_policy_set_t *set, const char *td, const char *const *aliases, size_t n)
{
    rm_policy_diags_t diags = {0};
    const rm_authz_policy_t *ptrs[8];
    rm_authz_engine_t *e = NULL;
    char err[256] = "";
    assert_int_equal(rm_policy_load_yaml(set, POLICIES, strlen(POLICIES), "p.yaml", 1, &diags), 0);
    rm_policy_diags_clear(&diags);
    for (size_t i = 0; i < set->num_policies; i++)
        ptrs[i] = &set->policies[i];
    /* the strings are needed while compiling only: copies that are gone afterwards */
    char *td_copy = td != NULL ? strdup(td) : NULL, *alias_copy[4] = {NULL};
    for (size_t i = 0; i < n; i++)
        alias_copy[i] = strdup(aliases[i]);
    rm_authz_engine_opts_t opts = {.default_action = RM_AUTHZ_DENY,
                                   .trust_domain = td_copy,
                                   .trust_domain_aliases = alias_copy,
                                   .num_trust_domain_aliases = n};
    if (rm_authz_engine_new(&e, ptrs, set->num_policies, &opts, err, sizeof(err)) != 0)
        fail_msg("compile: %s", err);
    free(td_copy);
    for (size_t i = 0; i < n; i++)
        free(alias_copy[i]);
    return e;
}

/* "allow-frontend#N", "deny-outsiders#N" or "no-match" */
static const char *decide(const rm_authz_engine_t *e, const char *principal, char *buf, size_t len)
{
    rm_authz_attrs_t a = {.principal = principal, .destination_port = 8080};
    rm_authz_decision_t d;
    rm_authz_evaluate(e, &a, 0.5, &d);
    if (d.policy == NULL)
        snprintf(buf, len, "%s", d.reason == RM_AUTHZ_REASON_NO_ALLOW_MATCH ? "no-match" : "other");
    else
        snprintf(buf, len, "%s#%d", d.policy->name, d.rule);
    return buf;
}

static void test_decisions(void **state)
{
    static const char *const aliases[] = {"old.example"};
    static const struct {
        int line;
        int mesh; /* 0: cluster.local; 1: example.org; 2: example.org with alias old.example; 3: none given */
        const char *principal, *want;
    } cases[] = {
        /* the mesh is cluster.local: as before */
        {__LINE__, 0, "spiffe://cluster.local/ns/web/sa/frontend", "allow-frontend#0"},
        {__LINE__, 0, "spiffe://cluster.local/ns/ops/sa/admin", "allow-frontend#1"},
        {__LINE__, 0, "spiffe://cluster.local/ns/evil/sa/x", "deny-outsiders#0"},
        {__LINE__, 0, "spiffe://cluster.local/ns/team/sa/y", "allow-frontend#2"},
        {__LINE__, 0, "spiffe://example.org/ns/web/sa/frontend", "deny-outsiders#0"},
        /* example.org: cluster.local in the policies stands for it, and no longer for cluster.local itself */
        {__LINE__, 1, "spiffe://example.org/ns/web/sa/frontend", "allow-frontend#0"},
        {__LINE__, 1, "spiffe://example.org/ns/ops/sa/admin", "allow-frontend#1"},
        /* (the notPrincipals prefix cluster.local/ns/web/ then "*" is kept as written: not denied, not allowed) */
        {__LINE__, 1, "spiffe://cluster.local/ns/web/sa/frontend", "no-match"},
        {__LINE__, 1, "spiffe://cluster.local/ns/ops/sa/admin", "deny-outsiders#0"},
        {__LINE__, 1, "spiffe://old.example/ns/web/sa/frontend", "deny-outsiders#0"},
        /* a prefix with fewer segments keeps its trust domain: web's other accounts are outsiders here */
        {__LINE__, 1, "spiffe://example.org/ns/web/sa/other", "deny-outsiders#0"},
        /* source.namespaces does not look at the trust domain */
        {__LINE__, 1, "spiffe://example.org/ns/team/sa/y", "allow-frontend#2"},
        {__LINE__, 1, "spiffe://anything.test/ns/team/sa/y", "allow-frontend#2"},
        /* with the alias, a peer of the old trust domain is the same workload */
        {__LINE__, 2, "spiffe://example.org/ns/web/sa/frontend", "allow-frontend#0"},
        {__LINE__, 2, "spiffe://old.example/ns/web/sa/frontend", "allow-frontend#0"},
        {__LINE__, 2, "spiffe://old.example/ns/ops/sa/admin", "allow-frontend#1"},
        {__LINE__, 2, "spiffe://old.example/ns/evil/sa/x", "deny-outsiders#0"},
        {__LINE__, 2, "spiffe://cluster.local/ns/web/sa/frontend", "no-match"},
        {__LINE__, 2, "spiffe://cluster.local/ns/ops/sa/admin", "deny-outsiders#0"},
        /* no trust domain given: principals as written */
        {__LINE__, 3, "spiffe://cluster.local/ns/web/sa/frontend", "allow-frontend#0"},
        {__LINE__, 3, "spiffe://example.org/ns/web/sa/frontend", "deny-outsiders#0"},
    };
    rm_authz_engine_t *engines[4];
    rm_policy_set_t sets[4] = {{0}};
    char got[128];

    engines[0] = compile(&sets[0], "cluster.local", NULL, 0);
    engines[1] = compile(&sets[1], "example.org", NULL, 0);
    engines[2] = compile(&sets[2], "example.org", aliases, 1);
    engines[3] = compile(&sets[3], NULL, NULL, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (strcmp(decide(engines[cases[i].mesh], cases[i].principal, got, sizeof(got)), cases[i].want) != 0)
            fail_msg("case at line %d: %s decided by %s, want %s", cases[i].line, cases[i].principal, got,
                     cases[i].want);
    for (int i = 0; i < 4; i++) {
        rm_authz_engine_free(engines[i]);
        rm_policy_set_clear(&sets[i]);
    }
}

/* Many exact principals, so that the rules are found through the principal index: the expanded names are keys. */
static void test_index(void **state)
{
    char yaml[64 * 1024], got[128];
    size_t o = 0;
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, AP("many", "ALLOW"));
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(yaml + o, sizeof(yaml) - o,
                              "  - from: [{source: {principals: [\"cluster.local/ns/n%d/sa/s\"]}}]\n", i);
    assert_int_equal(rm_policy_load_yaml(&set, yaml, o, "many.yaml", 1, &diags), 0);
    const rm_authz_policy_t *p = &set.policies[0];
    char *aliases[] = {"old.example"};
    rm_authz_engine_opts_t opts = {
        .trust_domain = "new.example", .trust_domain_aliases = aliases, .num_trust_domain_aliases = 1};
    rm_authz_engine_t *e = NULL;
    char err[128];
    assert_int_equal(rm_authz_engine_new(&e, &p, 1, &opts, err, sizeof(err)), 0);
    assert_string_equal(decide(e, "spiffe://new.example/ns/n150/sa/s", got, sizeof(got)), "many#150");
    assert_string_equal(decide(e, "spiffe://old.example/ns/n7/sa/s", got, sizeof(got)), "many#7");
    assert_string_equal(decide(e, "spiffe://cluster.local/ns/n7/sa/s", got, sizeof(got)), "no-match");
    assert_string_equal(decide(e, "spiffe://new.example/ns/n7/sa/t", got, sizeof(got)), "no-match");
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
    rm_policy_diags_clear(&diags);
}

/* ------------------------------------------------------------------ on the wire */

static void test_workload_policy_fields(void **state)
{
    char *aliases[] = {"old.example", "older.example"};
    rm_workload_policy_t wp = {.opts = {.default_action = RM_AUTHZ_DENY,
                                        .trust_domain = "example.org",
                                        .trust_domain_aliases = aliases,
                                        .num_trust_domain_aliases = 2}};
    rm_workload_policy_t back;
    rm_policy_set_t set = {0};
    uint8_t *bytes;
    size_t len;
    char err[256];

    assert_int_equal(rm_workload_policy_encode(NULL, 0, &wp, &bytes, &len), 0);
    assert_int_equal(rm_workload_policy_decode(bytes, len, &set, &back, err, sizeof(err)), 0);
    assert_string_equal(back.opts.trust_domain, "example.org");
    assert_int_equal(back.opts.num_trust_domain_aliases, 2);
    assert_string_equal(back.opts.trust_domain_aliases[0], "old.example");
    assert_string_equal(back.opts.trust_domain_aliases[1], "older.example");
    rm_workload_policy_clear(&back);
    rm_policy_set_clear(&set);
    free(bytes);

    /* none: principals as written */
    wp.opts.trust_domain = NULL;
    wp.opts.num_trust_domain_aliases = 0;
    assert_int_equal(rm_workload_policy_encode(NULL, 0, &wp, &bytes, &len), 0);
    assert_int_equal(rm_workload_policy_decode(bytes, len, &set, &back, err, sizeof(err)), 0);
    assert_null(back.opts.trust_domain);
    assert_int_equal(back.opts.num_trust_domain_aliases, 0);
    rm_workload_policy_clear(&back);
    free(bytes);

    /* what is not a trust domain is refused, for the NACK */
    char *bad[] = {"Old.Example"};
    wp.opts.trust_domain = "example.org";
    wp.opts.trust_domain_aliases = bad;
    wp.opts.num_trust_domain_aliases = 1;
    assert_int_equal(rm_workload_policy_encode(NULL, 0, &wp, &bytes, &len), 0);
    assert_int_equal(rm_workload_policy_decode(bytes, len, &set, &back, err, sizeof(err)), RM_ERR_POLICY_INVALID);
    if (strstr(err, "trust_domain_aliases entry \"Old.Example\" is not a SPIFFE trust domain") == NULL)
        fail_msg("unexpected message: %s", err);
    free(bytes);
}

/* ------------------------------------------------------------------ configuration */

static char tmp[64];

static const char *write_file(const char *name, const char *text)
{
    static char path[160];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void test_proxy_config(void **state)
{
    static const char tls[] = "tls: {certFile: /c.pem, keyFile: /k.pem, bundleFile: /b.pem}\n"
                              "trustDomain: example.org\n";
    char text[1024], err[1024];
    rm_proxy_config_t *cfg = NULL;

    snprintf(text, sizeof(text),
             "%sauthorization:\n  policyDir: /p\n  trustDomainAliases: [old.example, cluster.local]\n", tls);
    const char *p = write_file("proxy.yaml", text);
    if (rm_proxy_config_load(p, &cfg, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(cfg->trust_domain, "example.org");
    assert_int_equal(cfg->num_authz_trust_domain_aliases, 2);
    assert_string_equal(cfg->authz_trust_domain_aliases[0], "old.example");
    assert_string_equal(cfg->authz_trust_domain_aliases[1], "cluster.local");
    rm_proxy_config_free(cfg);

    snprintf(text, sizeof(text), "%sauthorization:\n  policyDir: /p\n  trustDomainAliases: [old.example, \"Bad_TD\"]\n",
             tls);
    p = write_file("proxy.yaml", text);
    cfg = NULL;
    assert_int_equal(rm_proxy_config_load(p, &cfg, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_null(cfg);
    char want[256];
    snprintf(want, sizeof(want), "%s:5:37: authorization.trustDomainAliases[1]: \"Bad_TD\" is not a SPIFFE trust domain", p);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\"\nwant \"%s...\"", err, want);
    unlink(p);
}

static void test_proxy_policies_from_files(void **state)
{
    char dir[128], err[512];
    rm_authz_t *a = NULL;
    char *aliases[] = {"old.example"};
    snprintf(dir, sizeof(dir), "%s/policies", tmp);
    mkdir(dir, 0700);
    snprintf(dir, sizeof(dir), "policies/p.yaml");
    write_file(dir, POLICIES);
    snprintf(dir, sizeof(dir), "%s/policies", tmp);
    assert_int_equal(rm_authz_from_path(dir, 0, 0, "example.org", aliases, 1, "host", &a, err, sizeof(err)), 0);
    char got[128];
    assert_string_equal(decide(a->engine, "spiffe://old.example/ns/web/sa/frontend", got, sizeof(got)),
                        "allow-frontend#0");
    assert_string_equal(decide(a->engine, "spiffe://cluster.local/ns/ops/sa/admin", got, sizeof(got)),
                        "deny-outsiders#0");
    rm_authz_unref(a);
    unlink(write_file("policies/p.yaml", ""));
    rmdir(dir);
}

static void test_mesh_config(void **state)
{
    static const char head[] = "apiVersion: ringmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec:\n"
                               "  trustDomain: example.org\n";
    char text[512], err[1024], want[256];
    rm_mesh_model_t *m = NULL;

    snprintf(text, sizeof(text), "%s  trustDomainAliases: [old.example, cluster.local]\n", head);
    write_file("mesh.yaml", text);
    if (rm_mesh_model_load_dir(tmp, &m, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(m->settings.trust_domain, "example.org");
    assert_int_equal(m->settings.num_trust_domain_aliases, 2);
    assert_string_equal(m->settings.trust_domain_aliases[0], "old.example");
    assert_string_equal(m->settings.trust_domain_aliases[1], "cluster.local");
    char *version = strdup(m->version);
    rm_mesh_model_unref(m);

    /* the aliases are part of the content: another list is another version */
    snprintf(text, sizeof(text), "%s  trustDomainAliases: [old.example]\n", head);
    write_file("mesh.yaml", text);
    assert_int_equal(rm_mesh_model_load_dir(tmp, &m, err, sizeof(err)), 0);
    assert_string_not_equal(m->version, version);
    free(version);
    rm_mesh_model_unref(m);

    snprintf(text, sizeof(text), "%s  trustDomainAliases:\n    - old.example\n    - \"spiffe://old\"\n", head);
    const char *p = write_file("mesh.yaml", text);
    m = NULL;
    assert_int_equal(rm_mesh_model_load_dir(tmp, &m, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_null(m);
    snprintf(want, sizeof(want), "%s:8:7: spec.trustDomainAliases[1]: \"spiffe://old\" is not a SPIFFE trust domain",
             p);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\"\nwant \"%s...\"", err, want);
    unlink(p);
}

static int setup(void **state)
{
    snprintf(tmp, sizeof(tmp), "/tmp/rm-test-td-XXXXXX");
    return mkdtemp(tmp) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/proxy.yaml", tmp);
    unlink(path);
    snprintf(path, sizeof(path), "%s/mesh.yaml", tmp);
    unlink(path);
    rmdir(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand),       cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_index),        cmocka_unit_test(test_workload_policy_fields),
        cmocka_unit_test(test_proxy_config), cmocka_unit_test(test_proxy_policies_from_files),
        cmocka_unit_test(test_mesh_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
