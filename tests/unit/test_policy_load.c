/* The policy loader (lib/policy_yaml.c): every finding of a document with its exact file, line, column and field
 * path, the error kinds, PeerAuthentication, empty and foreign documents, the model it builds, and loading a path. */
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

static const char multi_yaml[] =            /* line numbers on the right */
    "apiVersion: security.istio.io/v1\n"    /* 1 */
    "kind: AuthorizationPolicy\n"           /* 2 */
    "metadata:\n"                           /* 3 */
    "  name: good-one\n"                    /* 4 */
    "  namespace: ns1\n"                    /* 5 */
    "spec:\n"                               /* 6 */
    "  rules:\n"                            /* 7 */
    "  - {}\n"                              /* 8 */
    "---\n"                                 /* 9 */
    "apiVersion: security.istio.io/v1\n"    /* 10 */
    "kind: AuthorizationPolicy\n"           /* 11 */
    "metadata:\n"                           /* 12 */
    "  name: bad\n"                         /* 13 */
    "  namespace: ns1\n"                    /* 14 */
    "spec:\n"                               /* 15 */
    "  action: ALLOW\n"                     /* 16 */
    "  rules:\n"                            /* 17 */
    "  - to:\n"                             /* 18 */
    "    - operation:\n"                    /* 19 */
    "        ports: [\"80\"]\n"             /* 20 */
    "  - to:\n"                             /* 21 */
    "    - operation:\n"                    /* 22 */
    "        ports: [\"http\"]\n"           /* 23 */
    "        methodz: [GET]\n"              /* 24 */
    "    from:\n"                           /* 25 */
    "    - source:\n"                       /* 26 */
    "        ipBlocks: [\"10.0.0.0/33\"]\n" /* 27 */
    "        principals: [\"a*b\"]\n"       /* 28 */
    "    when:\n"                           /* 29 */
    "    - key: request.auth.claims[]\n"    /* 30 */
    "      values: [\"x\"]\n"               /* 31 */
    "---\n"                                 /* 32 */
    "apiVersion: v1\n"                      /* 33 */
    "kind: ConfigMap\n"                     /* 34 */
    "metadata:\n"                           /* 35 */
    "  name: skipped\n"                     /* 36 */
    "---\n"                                 /* 37 */
    "apiVersion: ringmesh.io/v1alpha1\n"    /* 38 */
    "kind: AuthorizationPolicy\n"           /* 39 */
    "metadata:\n"                           /* 40 */
    "  name: good-two\n"                    /* 41 */
    "spec:\n"                               /* 42 */
    "  action: DENY\n"                      /* 43 */
    "  rules:\n"                            /* 44 */
    "  - from:\n"                           /* 45 */
    "    - source:\n"                       /* 46 */
    "        namespaces: [evil]\n";         /* 47 */

static void check_multi_errors(const rm_policy_diags_t *diags, size_t first)
{
    const char *f = "multi.yaml";
    expect_diag(&diags->d[first + 0], 0, f, 23, 17, "spec.rules[1].to[0].operation.ports[0]",
                "\"http\" is not a port number (1-65535)");
    expect_diag(
        &diags->d[first + 1], 0, f, 24, 9, "spec.rules[1].to[0].operation",
        "unknown field \"methodz\": did you mean \"methods\"? (known: hosts, notHosts, ports, notPorts, methods, "
        "notMethods, paths, notPaths)");
    expect_diag(&diags->d[first + 2], 0, f, 27, 20, "spec.rules[1].from[0].source.ipBlocks[0]",
                "\"10.0.0.0/33\" is not an IP address or CIDR block");
    expect_diag(&diags->d[first + 3], 0, f, 28, 22, "spec.rules[1].from[0].source.principals[0]",
                "\"a*b\": '*' may only be the first or the last character (prefix \"x*\", suffix \"*x\", presence "
                "\"*\")");
    expect_diag(&diags->d[first + 4], 0, f, 30, 12, "spec.rules[1].when[0].key",
                "\"request.auth.claims[]\": want request.auth.claims[NAME] or request.auth.claims[NAME][NESTED]... "
                "with non-empty names");
}

static void check_multi_loaded(const rm_policy_set_t *set)
{
    assert_int_equal(set->num_policies, 2);
    const rm_authz_policy_t *p = &set->policies[0];
    assert_string_equal(p->namespace_, "ns1");
    assert_string_equal(p->name, "good-one");
    assert_int_equal(p->action, RM_AUTHZ_ALLOW);
    assert_int_equal(p->num_rules, 1);
    assert_int_equal(p->rules[0].num_from + p->rules[0].num_to + p->rules[0].num_when, 0);
    assert_string_equal(p->file, "multi.yaml");
    assert_int_equal(p->line, 1);
    p = &set->policies[1];
    assert_string_equal(p->namespace_, "default");
    assert_string_equal(p->name, "good-two");
    assert_int_equal(p->action, RM_AUTHZ_DENY);
    assert_int_equal(p->line, 38);
    assert_int_equal(p->num_rules, 1);
    assert_int_equal(p->rules[0].num_from, 1);
    assert_int_equal(p->rules[0].from[0].namespaces.n, 1);
    assert_string_equal(p->rules[0].from[0].namespaces.v[0], "evil");
}

static void test_load_every_error_of_a_document(void **state)
{
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    char buf[1200];

    /* every finding of the bad document, in text order; the valid documents around it load; ConfigMap skipped */
    assert_int_equal(rm_policy_load_yaml(&set, multi_yaml, strlen(multi_yaml), "multi.yaml", 0, &diags), 5);
    if (diags.n != 5)
        print_diags(&diags);
    assert_int_equal(diags.n, 5);
    assert_int_equal(diags.num_errors, 5);
    check_multi_errors(&diags, 0);
    check_multi_loaded(&set);
    rm_policy_diag_format(&diags.d[0], buf, sizeof(buf));
    assert_string_equal(
        buf, "multi.yaml:23:17: spec.rules[1].to[0].operation.ports[0]: \"http\" is not a port number (1-65535)");
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
    assert_null(set.policies);
    assert_int_equal(set.num_policies, 0);

    /* strict kinds: the ConfigMap is an error too, at its kind */
    assert_int_equal(rm_policy_load_yaml(&set, multi_yaml, strlen(multi_yaml), "multi.yaml", 1, &diags), 6);
    assert_int_equal(diags.n, 6);
    check_multi_errors(&diags, 0);
    expect_diag(&diags.d[5], 0, "multi.yaml", 34, 7, "kind",
                "\"ConfigMap\" is not a policy kind (AuthorizationPolicy, PeerAuthentication, RequestAuthentication)");
    check_multi_loaded(&set);
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

static const char more_yaml[] = "apiVersion: security.istio.io/v1\n"               /* 1 */
                                "kind: AuthorizationPolicy\n"                      /* 2 */
                                "metadata:\n"                                      /* 3 */
                                "  name: types\n"                                  /* 4 */
                                "spec:\n"                                          /* 5 */
                                "  selector:\n"                                    /* 6 */
                                "    matchLabels:\n"                               /* 7 */
                                "      app: web\n"                                 /* 8 */
                                "      app: api\n"                                 /* 9 */
                                "  rules:\n"                                       /* 10 */
                                "  - from:\n"                                      /* 11 */
                                "    - source:\n"                                  /* 12 */
                                "        namespaces: a\n"                          /* 13 */
                                "        requestPrincipals: [\"a*b\"]\n"           /* 14 */
                                "    to: {operation: {}}\n"                        /* 15 */
                                "---\n"                                            /* 16 */
                                "apiVersion: security.istio.io/v1beta2\n"          /* 17 */
                                "kind: AuthorizationPolicy\n"                      /* 18 */
                                "metadata:\n"                                      /* 19 */
                                "  namespace: ns1\n"                               /* 20 */
                                "spec:\n"                                          /* 21 */
                                "  action: CUSTOM\n"                               /* 22 */
                                "  provider:\n"                                    /* 23 */
                                "    name: ext\n"                                  /* 24 */
                                "---\n"                                            /* 25 */
                                "apiVersion: security.istio.io/v1\n"               /* 26 */
                                "kind: AuthorizationPolicy\n"                      /* 27 */
                                "metadata:\n"                                      /* 28 */
                                "  name: ok\n"                                     /* 29 */
                                "  annotations: {ringmesh.io/dry-run: \"true\"}\n" /* 30 */
                                "spec: {}\n"                                       /* 31 */
                                "---\n"                                            /* 32 */
                                "apiVersion: security.istio.io/v1\n"               /* 33 */
                                "kind: AuthorizationPolicy\n"                      /* 34 */
                                "metadata:\n"                                      /* 35 */
                                "  name: Bad_Name\n"                               /* 36 */
                                "  annotations: {ringmesh.io/dry-run: \"yes\"}\n"  /* 37 */
                                "spec:\n"                                          /* 38 */
                                "  action: REJECT\n"                               /* 39 */
                                "  rules: {from: []}\n"                            /* 40 */
                                "  target: x\n";                                   /* 41 */

static void test_load_error_kinds(void **state)
{
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    const char *f = "more.yaml";

    assert_int_equal(rm_policy_load_yaml(&set, more_yaml, strlen(more_yaml), f, 0, &diags), 13);
    if (diags.n != 13)
        print_diags(&diags);
    assert_int_equal(diags.n, 13);
    /* duplicate key, wrong types, a requestPrincipals pattern */
    expect_diag(&diags.d[0], 0, f, 9, 7, "spec.selector.matchLabels", "field \"app\" appears twice");
    expect_diag(&diags.d[1], 0, f, 13, 21, "spec.rules[0].from[0].source.namespaces", "want a list, got a scalar");
    expect_diag(&diags.d[2], 0, f, 14, 29, "spec.rules[0].from[0].source.requestPrincipals[0]",
                "\"a*b\": '*' may only be the first or the last character (prefix \"x*\", suffix \"*x\", presence "
                "\"*\")");
    expect_diag(&diags.d[3], 0, f, 15, 9, "spec.rules[0].to", "want a list, got a mapping");
    /* bad apiVersion, missing name, CUSTOM, provider */
    expect_diag(&diags.d[4], 0, f, 17, 13, "apiVersion",
                "\"security.istio.io/v1beta2\": want ringmesh.io/v1alpha1, security.istio.io/v1 or "
                "security.istio.io/v1beta1");
    expect_diag(&diags.d[5], 0, f, 20, 3, "metadata", "metadata.name is required");
    expect_diag(&diags.d[6], 0, f, 22, 11, "spec.action",
                "the CUSTOM action is not supported: ringmesh has no external authorization (ext_authz) provider; "
                "decide in the app or with ALLOW/DENY rules");
    expect_diag(&diags.d[7], 0, f, 24, 5, "spec.provider",
                "provider is not supported: it names the external authorizer of the CUSTOM action, and ringmesh has "
                "no external authorization (ext_authz)");
    /* name, annotation, action, rules type, unknown spec field */
    expect_diag(&diags.d[8], 0, f, 36, 9, "metadata.name",
                "\"Bad_Name\" is not a DNS subdomain name (lower-case letters, digits, '-', '.')");
    expect_diag(&diags.d[9], 0, f, 37, 38, "metadata.annotations.ringmesh.io/dry-run",
                "want \"true\" or \"false\", got \"yes\"");
    expect_diag(&diags.d[10], 0, f, 39, 11, "spec.action", "\"REJECT\" is not an action (ALLOW, DENY or AUDIT)");
    expect_diag(&diags.d[11], 0, f, 40, 10, "spec.rules", "want a list, got a mapping");
    expect_diag(&diags.d[12], 0, f, 41, 3, "spec",
                "unknown field \"target\" (known: selector, action, rules, targetRef, targetRefs, provider)");
    /* only the valid document: ALLOW with no rules, dry-run */
    assert_int_equal(set.num_policies, 1);
    assert_string_equal(set.policies[0].name, "ok");
    assert_string_equal(set.policies[0].namespace_, "default");
    assert_int_equal(set.policies[0].action, RM_AUTHZ_ALLOW);
    assert_int_equal(set.policies[0].num_rules, 0);
    assert_int_equal(set.policies[0].dry_run, 1);
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

static const char alias_yaml[] = "apiVersion: security.istio.io/v1\n"             /* 1 */
                                 "kind: AuthorizationPolicy\n"                    /* 2 */
                                 "metadata: {name: anchored}\n"                   /* 3 */
                                 "spec:\n"                                        /* 4 */
                                 "  rules:\n"                                     /* 5 */
                                 "  - from: &src [{source: {namespaces: [a]}}]\n" /* 6 */
                                 "  - from: *src\n"                               /* 7 */
                                 "---\n"                                          /* 8 */
                                 "apiVersion: security.istio.io/v1\n"             /* 9 */
                                 "kind: AuthorizationPolicy\n"                    /* 10 */
                                 "metadata: {name: before-error}\n"               /* 11 */
                                 "---\n"                                          /* 12 */
                                 "kind: AuthorizationPolicy\n"                    /* 13 */
                                 "metadata: {name: [unclosed}\n"                  /* 14 */
                                 "---\n"                                          /* 15 */
                                 "apiVersion: security.istio.io/v1\n"             /* 16 */
                                 "kind: AuthorizationPolicy\n"                    /* 17 */
                                 "metadata: {name: after-error}\n";               /* 18 */

/* metadata.name is a DNS-1123 subdomain (lib/config's rule, the control plane's too): labels joined by dots, so an
 * empty label or one that ends in '-' is refused, while a dotted name is fine. */
static void test_load_name_is_a_dns_subdomain(void **state)
{
    static const char yaml[] = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                               "metadata: {name: a..b, namespace: shop}\n"
                               "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                               "metadata: {name: a-.b, namespace: shop}\n"
                               "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                               "metadata: {name: allow.v2-x, namespace: shop}\n";
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};

    (void)state;
    assert_int_equal(rm_policy_load_yaml(&set, yaml, strlen(yaml), "names.yaml", 0, &diags), 2);
    assert_int_equal(diags.n, 2);
    expect_diag(&diags.d[0], 0, "names.yaml", 3, 18, "metadata.name",
                "\"a..b\" is not a DNS subdomain name (lower-case letters, digits, '-', '.')");
    expect_diag(&diags.d[1], 0, "names.yaml", 7, 18, "metadata.name",
                "\"a-.b\" is not a DNS subdomain name (lower-case letters, digits, '-', '.')");
    assert_int_equal(set.num_policies, 1);
    assert_string_equal(set.policies[0].name, "allow.v2-x");
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

/* A byte that is not UTF-8 is a reader error: placed at its own line and column (libyaml names only its offset),
 * in the words every ringmesh loader uses for YAML syntax. */
static void test_load_reader_error_position(void **state)
{
    static const char yaml[] = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: \xff}\n";
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};

    (void)state;
    assert_int_equal(rm_policy_load_yaml(&set, yaml, strlen(yaml), "bytes.yaml", 0, &diags), 1);
    assert_int_equal(diags.n, 1);
    expect_diag(&diags.d[0], 0, "bytes.yaml", 3, 18, "", "YAML syntax error: invalid leading UTF-8 octet (#xFF)");
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

static void test_load_alias_and_syntax_error(void **state)
{
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};

    assert_int_equal(rm_policy_load_yaml(&set, alias_yaml, strlen(alias_yaml), "alias.yaml", 0, &diags), 2);
    assert_int_equal(diags.n, 2);
    expect_diag(&diags.d[0], 0, "alias.yaml", 1, 1, "", "aliases (*name) are not allowed in policies");
    /* the position of the offending '}'; nothing after a syntax error is read */
    expect_diag(&diags.d[1], 0, "alias.yaml", 14, 27, "",
                "YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 14)");
    assert_int_equal(set.num_policies, 1);
    assert_string_equal(set.policies[0].name, "before-error");
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

static void test_load_when_and_values(void **state)
{
    static const char yaml[] = AP_HEAD "metadata: {name: w}\n"                                           /* 1-3 */
                                       "spec:\n"                                                         /* 4 */
                                       "  rules:\n"                                                      /* 5 */
                                       "  - when:\n"                                                     /* 6 */
                                       "    - key: request.headers[]\n"                                  /* 7 */
                                       "      values: [a]\n"                                             /* 8 */
                                       "    - key: source.ip\n"                                          /* 9 */
                                       "      values: [\"300.1.1.1\"]\n"                                 /* 10 */
                                       "    - key: destination.port\n"                                   /* 11 */
                                       "      notValues: [\"0\"]\n"                                      /* 12 */
                                       "    - key: connection.sni\n"                                     /* 13 */
                                       "    - values: [x]\n"                                             /* 14 */
                                       "    - key: experimental.envoy.filters.a[b]\n"                    /* 15 */
                                       "      values: [\"1.2.3.4\"]\n"                                   /* 16 */
                                       "    - key: foo\n"                                                /* 17 */
                                       "      values: [\"\"]\n"                                          /* 18 */
                                       "  - to: [{operation: {paths: [admin], methods: [\"*GET*\"]}}]\n" /* 19 */
                                       "    from: [{source: {}}, {}]\n";                                 /* 20 */
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    const char *f = "w.yaml";

    assert_int_equal(rm_policy_load_yaml(&set, yaml, strlen(yaml), f, 0, &diags), 12);
    if (diags.n != 12)
        print_diags(&diags);
    assert_int_equal(diags.n, 12);
    expect_diag(&diags.d[0], 0, f, 7, 12, "spec.rules[0].when[0].key",
                "\"request.headers[]\": want request.headers[NAME] with a header name");
    expect_diag(&diags.d[1], 0, f, 10, 16, "spec.rules[0].when[1].values[0]",
                "\"300.1.1.1\" is not an IP address or CIDR block");
    expect_diag(&diags.d[2], 0, f, 12, 19, "spec.rules[0].when[2].notValues[0]",
                "\"0\" is not a port number (1-65535)");
    expect_diag(&diags.d[3], 0, f, 13, 7, "spec.rules[0].when[3]", "a condition needs values or notValues");
    expect_diag(&diags.d[4], 0, f, 14, 7, "spec.rules[0].when[4]", "a condition needs a key");
    expect_diag(&diags.d[5], 0, f, 15, 12, "spec.rules[0].when[5].key",
                "\"experimental.envoy.filters.a[b]\": not supported: experimental.envoy.filters.* reads Envoy filter "
                "metadata, which the ringmesh proxy does not have");
    expect_diag(&diags.d[6], 0, f, 17, 12, "spec.rules[0].when[6].key",
                "\"foo\": unknown key (supported: request.headers[NAME], source.ip, remote.ip, source.namespace, "
                "source.principal, source.serviceAccount, source.trustDomain, destination.ip, destination.port, "
                "connection.sni, request.auth.principal, request.auth.audiences, request.auth.presenter, "
                "request.auth.claims[NAME])");
    expect_diag(&diags.d[7], 0, f, 18, 16, "spec.rules[0].when[6].values[0]",
                "empty value: write \"*\" to match any value");
    expect_diag(&diags.d[8], 0, f, 19, 31, "spec.rules[1].to[0].operation.paths[0]",
                "\"admin\": a path must begin with '/' (or '*' for a suffix match)");
    expect_diag(&diags.d[9], 0, f, 19, 49, "spec.rules[1].to[0].operation.methods[0]",
                "\"*GET*\": a value cannot be both a prefix and a suffix match");
    expect_diag(&diags.d[10], 0, f, 20, 21, "spec.rules[1].from[0].source",
                "a source must set at least one field (a rule without `from` matches every source)");
    expect_diag(&diags.d[11], 0, f, 20, 26, "spec.rules[1].from[1]", "`source` must be set");
    assert_int_equal(set.num_policies, 0);
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

static void test_load_peer_authentication(void **state)
{
    static const char yaml[] = "apiVersion: security.istio.io/v1\n"      /* 1 */
                               "kind: PeerAuthentication\n"              /* 2 */
                               "metadata: {name: pa, namespace: a}\n"    /* 3 */
                               "spec:\n"                                 /* 4 */
                               "  mtls: {mode: STRICTER}\n"              /* 5 */
                               "  portLevelMtls:\n"                      /* 6 */
                               "    \"80\": {mode: DISABLE}\n"           /* 7 */
                               "    http: {mode: STRICT}\n"              /* 8 */
                               "---\n"                                   /* 9 */
                               "apiVersion: security.istio.io/v1beta1\n" /* 10 */
                               "kind: PeerAuthentication\n"              /* 11 */
                               "metadata: {name: good, namespace: a}\n"  /* 12 */
                               "spec:\n"                                 /* 13 */
                               "  selector: {matchLabels: {app: web}}\n" /* 14 */
                               "  mtls: {mode: PERMISSIVE}\n"            /* 15 */
                               "  portLevelMtls:\n"                      /* 16 */
                               "    8080: {mode: DISABLE}\n";            /* 17 */
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    const char *f = "pa.yaml";

    assert_int_equal(rm_policy_load_yaml(&set, yaml, strlen(yaml), f, 0, &diags), 3);
    if (diags.n != 3)
        print_diags(&diags);
    assert_int_equal(diags.n, 3);
    expect_diag(&diags.d[0], 0, f, 5, 16, "spec.mtls.mode",
                "\"STRICTER\" is not a mode (STRICT, PERMISSIVE, DISABLE or UNSET)");
    expect_diag(&diags.d[1], 0, f, 7, 5, "spec.portLevelMtls", "portLevelMtls needs a workload selector with labels");
    expect_diag(&diags.d[2], 0, f, 8, 5, "spec.portLevelMtls.http", "\"http\" is not a port number (1-65535)");
    assert_int_equal(set.num_policies, 0);
    assert_int_equal(set.num_peer_authns, 1);
    const rm_peer_authn_t *p = &set.peer_authns[0];
    assert_string_equal(p->namespace_, "a");
    assert_string_equal(p->name, "good");
    assert_int_equal(p->has_selector, 1);
    assert_int_equal(p->num_match_labels, 1);
    assert_string_equal(p->match_labels[0].key, "app");
    assert_string_equal(p->match_labels[0].value, "web");
    assert_int_equal(p->mode, RM_PEER_MTLS_PERMISSIVE);
    assert_int_equal(p->num_port_modes, 1);
    assert_int_equal(p->port_modes[0].port, 8080);
    assert_int_equal(p->port_modes[0].mode, RM_PEER_MTLS_DISABLE);
    assert_int_equal(p->line, 10);
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

/* Empty documents ("---" with nothing after it, a file of comments) are not policies and not errors. */
static void test_load_empty_documents(void **state)
{
    static const char yaml[] = "# policies\n---\n---\n" POLICY("a", "p", "DENY") "---\n# end\n";
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};

    assert_int_equal(rm_policy_load_yaml(&set, yaml, strlen(yaml), "e.yaml", 1, &diags), 0);
    print_diags(&diags);
    assert_int_equal(diags.n, 0);
    assert_int_equal(set.num_policies, 1);
    assert_int_equal(set.policies[0].action, RM_AUTHZ_DENY);
    rm_policy_set_clear(&set);
    assert_int_equal(rm_policy_load_yaml(&set, "", 0, "e.yaml", 1, &diags), 0);
    assert_int_equal(rm_policy_load_yaml(&set, "# nothing\n", 10, "e.yaml", 1, &diags), 0);
    assert_int_equal(diags.n, 0);
    assert_int_equal(set.num_policies, 0);
}

/* A document of another kind is skipped whatever it holds (anchors and aliases are common in such files). */
static void test_load_other_kinds_skipped(void **state)
{
    static const char yaml[] = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: &l {app: web}}\n"
                               "spec:\n  selector: {matchLabels: *l}\n  unknown: [1, 2]\n"
                               "---\n" POLICY("a", "p", "ALLOW") "  rules: [{}]\n";
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};

    assert_int_equal(rm_policy_load_yaml(&set, yaml, strlen(yaml), "k.yaml", 0, &diags), 0);
    print_diags(&diags);
    assert_int_equal(diags.n, 0);
    assert_int_equal(set.num_policies, 1);
    rm_policy_set_clear(&set);
    /* strict: the kind is the one finding */
    assert_int_equal(rm_policy_load_yaml(&set, yaml, strlen(yaml), "k.yaml", 1, &diags), 1);
    assert_int_equal(diags.n, 1);
    expect_diag(&diags.d[0], 0, "k.yaml", 2, 7, "kind",
                "\"Deployment\" is not a policy kind (AuthorizationPolicy, PeerAuthentication, RequestAuthentication)");
    assert_int_equal(set.num_policies, 1);
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

static void test_load_model(void **state)
{
    static const char yaml[] =
        AP_HEAD "metadata:\n  name: full\n  namespace: ns1\n"
                "  annotations: {ringmesh.io/log-allowed: \"true\", istio.io/dry-run: \"false\"}\n"
                "spec:\n"
                "  selector: {matchLabels: {app: web, version: v1}}\n"
                "  action: AUDIT\n"
                "  rules:\n"
                "  - from:\n"
                "    - source:\n"
                "        principals: [\"cluster.local/ns/a/sa/x\", \"*\"]\n"
                "        notPrincipals: [\"x*\"]\n"
                "        namespaces: [a]\n"
                "        notNamespaces: [\"*b\"]\n"
                "        ipBlocks: [\"10.0.0.0/8\", \"2001:db8::/32\"]\n"
                "        notIpBlocks: [\"10.1.1.1\"]\n"
                "    to:\n"
                "    - operation:\n"
                "        hosts: [example.com]\n"
                "        notHosts: [\"*.evil\"]\n"
                "        ports: [80, \"443\"]\n"
                "        notPorts: [\"22\"]\n"
                "        methods: [GET]\n"
                "        notMethods: [DELETE]\n"
                "        paths: [\"/a/*\"]\n"
                "        notPaths: [\"*.png\"]\n"
                "    when:\n"
                "    - key: request.headers[x-user]\n"
                "      values: [alice]\n"
                "      notValues: [bob]\n"
                "  -\n";
    rm_policy_set_t set = {0};
    load_ok(&set, yaml);
    assert_int_equal(set.num_policies, 1);
    const rm_authz_policy_t *p = &set.policies[0];
    assert_int_equal(p->action, RM_AUTHZ_AUDIT);
    assert_int_equal(p->log_allowed, 1);
    assert_int_equal(p->dry_run, 0);
    assert_int_equal(p->has_selector, 1);
    assert_int_equal(p->num_match_labels, 2);
    assert_string_equal(p->match_labels[1].key, "version");
    assert_string_equal(p->match_labels[1].value, "v1");
    assert_int_equal(p->num_rules, 2);
    const rm_authz_rule_t *r = &p->rules[0];
    assert_int_equal(r->num_from, 1);
    assert_int_equal(r->num_to, 1);
    assert_int_equal(r->num_when, 1);
    const rm_authz_source_t *s = &r->from[0];
    assert_int_equal(s->principals.n, 2);
    assert_string_equal(s->principals.v[1], "*");
    assert_string_equal(s->not_principals.v[0], "x*");
    assert_string_equal(s->namespaces.v[0], "a");
    assert_string_equal(s->not_namespaces.v[0], "*b");
    assert_string_equal(s->ip_blocks.v[1], "2001:db8::/32");
    assert_string_equal(s->not_ip_blocks.v[0], "10.1.1.1");
    const rm_authz_operation_t *o = &r->to[0];
    assert_string_equal(o->hosts.v[0], "example.com");
    assert_string_equal(o->not_hosts.v[0], "*.evil");
    assert_int_equal(o->ports.n, 2);
    assert_string_equal(o->ports.v[0], "80");
    assert_string_equal(o->not_ports.v[0], "22");
    assert_string_equal(o->methods.v[0], "GET");
    assert_string_equal(o->not_methods.v[0], "DELETE");
    assert_string_equal(o->paths.v[0], "/a/*");
    assert_string_equal(o->not_paths.v[0], "*.png");
    assert_string_equal(r->when[0].key, "request.headers[x-user]");
    assert_string_equal(r->when[0].values.v[0], "alice");
    assert_string_equal(r->when[0].not_values.v[0], "bob");
    /* "-" alone: an empty rule */
    assert_int_equal(p->rules[1].num_from + p->rules[1].num_to + p->rules[1].num_when, 0);
    rm_policy_set_clear(&set);
}

static void test_load_path(void **state)
{
    char dir[] = "/tmp/rm-test-policy-XXXXXX", path[128];
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    static const char *const names[] = {"b.yaml", "a.yml", "c.txt"};
    static const char *const texts[] = {POLICY("x", "from-b", "DENY"), POLICY("x", "from-a", "DENY"),
                                        POLICY("x", "from-c", "DENY")};

    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(texts[i], fp);
        fclose(fp);
    }
    /* *.yaml and *.yml in name order, other files ignored */
    assert_int_equal(rm_policy_load_path(&set, dir, 0, &diags), 0);
    assert_int_equal(diags.n, 0);
    assert_int_equal(set.num_policies, 2);
    assert_string_equal(set.policies[0].name, "from-a");
    assert_string_equal(set.policies[1].name, "from-b");
    snprintf(path, sizeof(path), "%s/a.yml", dir);
    assert_string_equal(set.policies[0].file, path);
    rm_policy_set_clear(&set);
    /* a missing path: a negative errno and a finding naming it */
    snprintf(path, sizeof(path), "%s/none.yaml", dir);
    assert_int_equal(rm_policy_load_path(&set, path, 0, &diags), -ENOENT);
    assert_int_equal(diags.n, 1);
    assert_string_equal(diags.d[0].file, path);
    assert_int_equal(diags.num_errors, 1);
    rm_policy_diags_clear(&diags);
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_every_error_of_a_document),
        cmocka_unit_test(test_load_error_kinds),
        cmocka_unit_test(test_load_alias_and_syntax_error),
        cmocka_unit_test(test_load_reader_error_position),
        cmocka_unit_test(test_load_name_is_a_dns_subdomain),
        cmocka_unit_test(test_load_when_and_values),
        cmocka_unit_test(test_load_peer_authentication),
        cmocka_unit_test(test_load_empty_documents),
        cmocka_unit_test(test_load_other_kinds_skipped),
        cmocka_unit_test(test_load_model),
        cmocka_unit_test(test_load_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
