/* The authorization policy engine (lib/policy_yaml.c, lib/policy_engine.c, lib/policy_log.c): loader findings with
 * their exact place, Istio's AuthorizationPolicy semantics case by case, the path decided on, the principal index
 * against a reference evaluator on random policy sets, selection and PeerAuthentication precedence, lint, and the
 * decision log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

/* ------------------------------------------------------------------ helpers */

#define AP_HEAD "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
/* a policy document up to "spec:\n  action: X\n"; rules follow at two spaces */
#define POLICY(ns, name, action)                                                                                       \
    AP_HEAD "metadata:\n  name: " name "\n  namespace: " ns "\nspec:\n  action: " action "\n"
#define ALLOW_ALL(ns) POLICY(ns, "allow-all", "ALLOW") "  rules:\n  - {}\n---\n"

#define SA_AX "spiffe://cluster.local/ns/a/sa/x"
#define SA_AZ "spiffe://cluster.local/ns/a/sa/z"
#define SA_BY "spiffe://cluster.local/ns/b/sa/y"
#define SA_CW "spiffe://cluster.local/ns/c/sa/w"
#define SA_DW "spiffe://cluster.local/ns/d/sa/w"

static void print_diags(const rm_policy_diags_t *diags)
{
    char buf[1200];
    for (size_t i = 0; i < diags->n; i++) {
        rm_policy_diag_format(&diags->d[i], buf, sizeof(buf));
        print_message("  %s\n", buf);
    }
}

/* Loads a text that must be free of findings. */
static void load_ok(rm_policy_set_t *set, const char *yaml)
{
    rm_policy_diags_t diags = {0};
    int ret = rm_policy_load_yaml(set, yaml, strlen(yaml), "test.yaml", 1, &diags);
    if (ret != 0 || diags.n != 0) {
        print_diags(&diags);
        rm_policy_diags_clear(&diags);
        fail_msg("policy text refused (%d)", ret);
    }
    rm_policy_diags_clear(&diags);
}

static rm_authz_engine_t *compile_set(const rm_policy_set_t *set, rm_authz_action_t default_action)
{
    const rm_authz_policy_t *ptrs[64];
    rm_authz_engine_opts_t opts = {.default_action = default_action};
    rm_authz_engine_t *e = NULL;
    char err[512] = "";
    assert_true(set->num_policies <= 64);
    for (size_t i = 0; i < set->num_policies; i++)
        ptrs[i] = &set->policies[i];
    int ret = rm_authz_engine_new(&e, ptrs, set->num_policies, &opts, err, sizeof(err));
    if (ret != 0)
        fail_msg("compile: %d %s", ret, err);
    return e;
}

static const rm_authz_policy_t *find_policy(const rm_policy_set_t *set, const char *ns, const char *name)
{
    for (size_t i = 0; i < set->num_policies; i++)
        if (strcmp(set->policies[i].namespace_, ns) == 0 && strcmp(set->policies[i].name, name) == 0)
            return &set->policies[i];
    fail_msg("no policy %s/%s", ns, name);
    return NULL;
}

/* A request as the tables write it. `method` set: an HTTP request; else TCP. Port 0 means 8080. */
typedef struct st_req_t {
    const char *principal, *src_ip, *dst_ip, *sni;
    uint16_t port;
    const char *method, *path, *host;
    const char *headers[6]; /* name, value, name, value, ... */
} req_t;

typedef struct st_req_buf_t {
    rm_authz_attrs_t a;
    rm_http_request_t http;
    rm_http_header_t hdrs[3];
} req_buf_t;

static const rm_authz_attrs_t *make_attrs(const req_t *r, req_buf_t *b)
{
    memset(b, 0, sizeof(*b));
    b->a.principal = r->principal;
    if (r->src_ip != NULL) {
        assert_int_equal(rm_authz_ip_parse(r->src_ip, b->a.source_ip), 0);
        b->a.have_source_ip = 1;
    }
    if (r->dst_ip != NULL) {
        assert_int_equal(rm_authz_ip_parse(r->dst_ip, b->a.destination_ip), 0);
        b->a.have_destination_ip = 1;
    }
    b->a.destination_port = r->port != 0 ? r->port : 8080;
    b->a.sni = r->sni;
    if (r->method != NULL) {
        const char *path = r->path != NULL ? r->path : "/";
        b->http.method = r->method;
        b->http.method_len = strlen(r->method);
        b->http.path = path;
        b->http.path_len = strlen(path);
        b->http.host = r->host;
        b->http.host_len = r->host != NULL ? strlen(r->host) : 0;
        for (size_t i = 0; i < 3 && r->headers[2 * i] != NULL; i++) {
            b->hdrs[i].name = r->headers[2 * i];
            b->hdrs[i].name_len = strlen(r->headers[2 * i]);
            b->hdrs[i].value = r->headers[2 * i + 1];
            b->hdrs[i].value_len = strlen(r->headers[2 * i + 1]);
            b->http.num_headers++;
        }
        b->http.headers = b->hdrs;
        b->a.http = &b->http;
    }
    return &b->a;
}

static void expect_diag(const rm_policy_diag_t *d, int warning, const char *file, unsigned line, unsigned column,
                        const char *path, const char *message)
{
    assert_int_equal(d->warning, warning);
    assert_string_equal(d->file, file);
    assert_int_equal(d->line, line);
    assert_int_equal(d->column, column);
    assert_string_equal(d->path, path);
    assert_string_equal(d->message, message);
}

/* ------------------------------------------------------------------ 1. loader findings */

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
    "    - key: request.auth.claims[iss]\n" /* 30 */
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
    expect_diag(&diags->d[first + 1], 0, f, 24, 9, "spec.rules[1].to[0].operation",
                "unknown field \"methodz\" (known: hosts, notHosts, ports, notPorts, methods, notMethods, paths, "
                "notPaths)");
    expect_diag(&diags->d[first + 2], 0, f, 27, 20, "spec.rules[1].from[0].source.ipBlocks[0]",
                "\"10.0.0.0/33\" is not an IP address or CIDR block");
    expect_diag(&diags->d[first + 3], 0, f, 28, 22, "spec.rules[1].from[0].source.principals[0]",
                "\"a*b\": '*' may only be the first or the last character (prefix \"x*\", suffix \"*x\", presence "
                "\"*\")");
    expect_diag(&diags->d[first + 4], 0, f, 30, 12, "spec.rules[1].when[0].key",
                "\"request.auth.claims[iss]\": not supported: this key needs request authentication (JWT) or a "
                "trusted X-Forwarded-For");
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
                "\"ConfigMap\" is not a policy kind (AuthorizationPolicy, PeerAuthentication)");
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
                                "        requestPrincipals: [\"*\"]\n"             /* 14 */
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
    /* duplicate key, wrong types, requestPrincipals */
    expect_diag(&diags.d[0], 0, f, 9, 7, "spec.selector.matchLabels", "field \"app\" appears twice");
    expect_diag(&diags.d[1], 0, f, 13, 21, "spec.rules[0].from[0].source.namespaces", "want a list, got a scalar");
    expect_diag(&diags.d[2], 0, f, 14, 28, "spec.rules[0].from[0].source.requestPrincipals",
                "not supported: requestPrincipals needs request authentication (JWT) or a trusted X-Forwarded-For, "
                "which the mesh does not provide");
    expect_diag(&diags.d[3], 0, f, 15, 9, "spec.rules[0].to", "want a list, got a mapping");
    /* bad apiVersion, missing name, CUSTOM, provider */
    expect_diag(&diags.d[4], 0, f, 17, 13, "apiVersion",
                "\"security.istio.io/v1beta2\": want ringmesh.io/v1alpha1, security.istio.io/v1 or "
                "security.istio.io/v1beta1");
    expect_diag(&diags.d[5], 0, f, 20, 3, "metadata", "metadata.name is required");
    expect_diag(&diags.d[6], 0, f, 22, 11, "spec.action", "the CUSTOM action (external authorizer) is not supported");
    expect_diag(&diags.d[7], 0, f, 24, 5, "spec.provider",
                "the CUSTOM action and external providers are not supported");
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
                                       "    - key: remote.ip\n"                                          /* 15 */
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
                "\"remote.ip\": not supported: this key needs request authentication (JWT) or a trusted "
                "X-Forwarded-For");
    expect_diag(&diags.d[6], 0, f, 17, 12, "spec.rules[0].when[6].key",
                "\"foo\": unknown key (supported: request.headers[NAME], source.ip, source.namespace, "
                "source.principal, destination.ip, destination.port, connection.sni)");
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
                "\"Deployment\" is not a policy kind (AuthorizationPolicy, PeerAuthentication)");
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

/* ------------------------------------------------------------------ 2. evaluation semantics */

#define POL     RM_AUTHZ_REASON_POLICY
#define NOMATCH RM_AUTHZ_REASON_NO_ALLOW_MATCH
#define DDENY   RM_AUTHZ_REASON_DEFAULT_DENY
#define DALLOW  RM_AUTHZ_REASON_DEFAULT_ALLOW

typedef struct st_eval_case_t {
    int line;
    const char *yaml;
    uint8_t default_allow;
    req_t req;
    uint8_t allow;
    rm_authz_reason_t reason;
    const char *policy; /* "namespace/name" that decided, NULL when none */
    int rule;
} eval_case_t;

/* source fields */
static const char y_principals[] =
    POLICY("a", "p", "ALLOW") "  rules:\n"
                              "  - from: [{source: {principals: [\"cluster.local/ns/a/sa/x\"]}}]\n"
                              "  - from: [{source: {principals: [\"" SA_BY "\"]}}]\n";
static const char y_principal_forms[] =
    POLICY("a", "p", "ALLOW") "  rules:\n"
                              "  - from: [{source: {principals: [\"cluster.local/ns/a/*\"]}}]\n"
                              "  - from: [{source: {principals: [\"spiffe://cluster.local/ns/p/*\"]}}]\n"
                              "  - from: [{source: {principals: [\"*/sa/y\"]}}]\n"
                              "  - from: [{source: {principals: [\"*\"]}}]\n";
static const char y_not_principals[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - from: [{source: {notPrincipals: [\"cluster.local/ns/a/sa/x\"]}}]\n";
static const char y_namespaces[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                             "  - from: [{source: {namespaces: [a]}}]\n"
                                                             "  - from: [{source: {namespaces: [\"team-*\"]}}]\n";
static const char y_not_namespaces[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - from: [{source: {notNamespaces: [a]}}]\n";
static const char y_ip_blocks[] =
    POLICY("a", "p", "ALLOW") "  rules:\n"
                              "  - from: [{source: {ipBlocks: [\"10.0.0.0/8\", \"2001:db8::/32\"]}}]\n"
                              "  - from: [{source: {ipBlocks: [\"192.168.1.5\"]}}]\n"
                              "  - from: [{source: {ipBlocks: [\"172.16.2.0/23\"]}}]\n";
/* families never cross: an IPv6 block (even ::/0) does not match an IPv4 peer, nor 0.0.0.0/0 an IPv6 one */
static const char y_ip_families[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                              "  - from: [{source: {ipBlocks: [\"::/0\"]}}]\n"
                                                              "  - from: [{source: {ipBlocks: [\"0.0.0.0/0\"]}}]\n";
static const char y_not_ip_blocks[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - from: [{source: {notIpBlocks: [\"10.0.0.0/8\"]}}]\n";
static const char y_source_and[] =
    POLICY("a", "p", "ALLOW") "  rules:\n"
                              "  - from: [{source: {principals: [\"" SA_AX "\"], ipBlocks: [\"10.0.0.0/8\"]}}]\n";
static const char y_source_or[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                            "  - from:\n"
                                                            "    - source: {namespaces: [a]}\n"
                                                            "    - source: {ipBlocks: [\"10.0.0.0/8\"]}\n";

/* operation fields */
static const char y_hosts[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                        "  - to: [{operation: {hosts: [example.com]}}]\n"
                                                        "  - to: [{operation: {hosts: [\"*.svc.local\"]}}]\n"
                                                        "  - to: [{operation: {hosts: [\"api.test:8443\"]}}]\n"
                                                        "  - to: [{operation: {hosts: [\"pre*\"]}}]\n"
                                                        "  - to: [{operation: {hosts: [\"Any.Port:*\"]}}]\n";
static const char y_not_hosts[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - to: [{operation: {notHosts: [example.com]}}]\n";
static const char y_ports[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - to: [{operation: {ports: [\"8080\", \"8443\"]}}]\n";
static const char y_not_ports[] = POLICY("a", "p", "ALLOW") "  rules:\n  - to: [{operation: {notPorts: [\"22\"]}}]\n";
static const char y_methods[] = POLICY("a", "p", "ALLOW") "  rules:\n  - to: [{operation: {methods: [GET, HEAD]}}]\n";
static const char y_not_methods[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - to: [{operation: {notMethods: [DELETE]}}]\n";
static const char y_paths[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                        "  - to: [{operation: {paths: [/admin]}}]\n"
                                                        "  - to: [{operation: {paths: [\"/api/*\"]}}]\n"
                                                        "  - to: [{operation: {paths: [\"*.png\"]}}]\n";
static const char y_any_path[] = POLICY("a", "p", "ALLOW") "  rules:\n  - to: [{operation: {paths: [\"*\"]}}]\n";
static const char y_not_paths[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - to: [{operation: {notPaths: [\"/private/*\"]}}]\n";
static const char y_to_or_and[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                            "  - from: [{source: {namespaces: [a]}}]\n"
                                                            "    to:\n"
                                                            "    - operation: {methods: [GET], paths: [/r]}\n"
                                                            "    - operation: {methods: [POST], paths: [/w]}\n";

/* when */
static const char y_when_header[] =
    POLICY("a", "p", "ALLOW") "  rules:\n"
                              "  - when: [{key: \"request.headers[X-User]\", values: [alice, \"adm*\"]}]\n";
static const char y_when_not_header[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - when: [{key: \"request.headers[x-user]\", notValues: [bob]}]\n";
/* a DENY on one exact header value, and on the values of a repeated header joined */
static const char y_deny_header[] = ALLOW_ALL("a")
    POLICY("a", "deny-admin", "DENY") "  rules:\n"
                                      "  - when: [{key: \"request.headers[x-token]\", values: [admin]}]\n"
                                      "  - when: [{key: \"request.headers[x-token]\", values: [\"guest,admin\"]}]\n";
static const char y_when_source_ip[] =
    POLICY("a", "p", "ALLOW") "  rules:\n"
                              "  - when: [{key: source.ip, values: [\"10.0.0.0/8\"], notValues: [\"10.9.0.0/16\"]}]\n";
static const char y_when_source_ns[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - when: [{key: source.namespace, values: [a]}]\n";
static const char y_when_source_principal[] =
    POLICY("a", "p", "ALLOW") "  rules:\n"
                              "  - when: [{key: source.principal, values: [\"cluster.local/ns/a/sa/x\"]}]\n"
                              "  - when: [{key: source.principal, values: [\"" SA_BY "\"]}]\n";
static const char y_when_dest_ip[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - when: [{key: destination.ip, values: [\"192.168.0.0/16\"]}]\n";
static const char y_when_dest_port[] =
    POLICY("a", "p", "ALLOW") "  rules:\n  - when: [{key: destination.port, values: [\"443\"]}]\n";
static const char y_when_sni[] =
    POLICY("a", "p", "ALLOW") "  rules:\n"
                              "  - when: [{key: connection.sni, values: [\"*.example.com\"]}]\n"
                              "  - when: [{key: connection.sni, notValues: [\"*\"]}]\n";
static const char y_when_and[] = POLICY("a", "p", "ALLOW") "  rules:\n"
                                                           "  - when:\n"
                                                           "    - {key: source.namespace, values: [a]}\n"
                                                           "    - {key: destination.port, values: [\"443\"]}\n";

/* actions and defaults */
static const char y_deny_over_allow[] =
    ALLOW_ALL("a") POLICY("a", "deny-b", "DENY") "  rules:\n  - from: [{source: {namespaces: [b]}}]\n";
static const char y_deny_order[] =
    POLICY("a", "z-deny", "DENY") "  rules:\n"
                                  "  - from: [{source: {namespaces: [zz]}}]\n"
                                  "  - from: [{source: {namespaces: [b]}}]\n"
                                  "---\n" POLICY("a", "b-deny", "DENY") "  rules:\n"
                                                                        "  - to: [{operation: {ports: [\"9\"]}}]\n"
                                                                        "  - from: [{source: {namespaces: [b]}}]\n";
static const char y_two_allows[] =
    POLICY("a", "p1", "ALLOW") "  rules:\n  - from: [{source: {namespaces: [a]}}]\n"
                               "---\n" POLICY("a", "p2", "ALLOW") "  rules:\n"
                                                                  "  - from: [{source: {namespaces: [b]}}]\n";
static const char y_deny_only[] = POLICY("a", "deny-b", "DENY") "  rules:\n  - from: [{source: {namespaces: [b]}}]\n";
static const char y_allow_nothing[] = AP_HEAD "metadata: {name: nothing, namespace: a}\nspec: {}\n";
static const char y_allow_no_rules[] = POLICY("a", "nothing", "ALLOW") "  rules: []\n";
static const char y_empty_rule[] = POLICY("a", "everything", "ALLOW") "  rules:\n  - {}\n";
static const char y_deny_empty_spec[] = AP_HEAD "metadata: {name: d, namespace: a}\nspec: {action: DENY}\n";
static const char y_deny_http_on_tcp[] =
    ALLOW_ALL("a") POLICY("a", "deny-http", "DENY") "  rules:\n"
                                                    "  - to: [{operation: {ports: [\"8080\"], methods: [POST]}}]\n"
                                                    "  - from: [{source: {namespaces: [c]}}]\n"
                                                    "    when: [{key: \"request.headers[x-debug]\", values: [\"1\"]}]\n"
                                                    "  - from: [{source: {namespaces: [d]}}]\n"
                                                    "    to: [{operation: {notMethods: [GET]}}]\n";

static const eval_case_t eval_cases[] = {
    /* principals: exact, with and without "spiffe://" on either side */
    {__LINE__, y_principals, 0, {.principal = SA_AX}, 1, POL, "a/p", 0},
    {__LINE__, y_principals, 0, {.principal = "cluster.local/ns/a/sa/x"}, 1, POL, "a/p", 0},
    {__LINE__, y_principals, 0, {.principal = SA_BY}, 1, POL, "a/p", 1},
    {__LINE__, y_principals, 0, {.principal = "cluster.local/ns/b/sa/y"}, 1, POL, "a/p", 1},
    {__LINE__, y_principals, 0, {.principal = SA_AZ}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_principals, 0, {.principal = "spiffe://cluster.local/ns/a/sa/xx"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_principals, 0, {.principal = "spiffe://CLUSTER.local/ns/a/sa/x"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_principals, 0, {.principal = NULL}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_principals, 1, {.principal = NULL}, 0, NOMATCH, NULL, -1},
    /* prefix (with and without spiffe://), suffix, presence */
    {__LINE__, y_principal_forms, 0, {.principal = SA_AZ}, 1, POL, "a/p", 0},
    {__LINE__, y_principal_forms, 0, {.principal = "spiffe://cluster.local/ns/p/sa/q"}, 1, POL, "a/p", 1},
    {__LINE__, y_principal_forms, 0, {.principal = SA_BY}, 1, POL, "a/p", 2},
    {__LINE__, y_principal_forms, 0, {.principal = SA_CW}, 1, POL, "a/p", 3},
    {__LINE__, y_principal_forms, 0, {.principal = ""}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_principal_forms, 0, {.principal = NULL}, 0, NOMATCH, NULL, -1},
    /* notPrincipals: an absent principal matches the not-list */
    {__LINE__, y_not_principals, 0, {.principal = SA_AX}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_principals, 0, {.principal = SA_BY}, 1, POL, "a/p", 0},
    {__LINE__, y_not_principals, 0, {.principal = NULL}, 1, POL, "a/p", 0},
    /* namespaces come from the principal */
    {__LINE__, y_namespaces, 0, {.principal = SA_AX}, 1, POL, "a/p", 0},
    {__LINE__, y_namespaces, 0, {.principal = "spiffe://cluster.local/ns/team-blue/sa/s"}, 1, POL, "a/p", 1},
    {__LINE__, y_namespaces, 0, {.principal = SA_BY}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_namespaces, 0, {.principal = "spiffe://cluster.local/ns/ab/sa/s"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_namespaces, 0, {.principal = "spiffe://example.org/workload/a"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_namespaces, 0, {.principal = NULL}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_namespaces, 0, {.principal = SA_AX}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_namespaces, 0, {.principal = SA_BY}, 1, POL, "a/p", 0},
    {__LINE__, y_not_namespaces, 0, {.principal = NULL}, 1, POL, "a/p", 0},
    /* ipBlocks: CIDR (v4, v6, prefix inside an octet), single address */
    {__LINE__, y_ip_blocks, 0, {.src_ip = "10.1.2.3"}, 1, POL, "a/p", 0},
    {__LINE__, y_ip_blocks, 0, {.src_ip = "2001:db8::1"}, 1, POL, "a/p", 0},
    {__LINE__, y_ip_blocks, 0, {.src_ip = "2001:db9::1"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_ip_blocks, 0, {.src_ip = "192.168.1.5"}, 1, POL, "a/p", 1},
    {__LINE__, y_ip_blocks, 0, {.src_ip = "192.168.1.6"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_ip_blocks, 0, {.src_ip = "172.16.3.200"}, 1, POL, "a/p", 2},
    {__LINE__, y_ip_blocks, 0, {.src_ip = "172.16.4.1"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_ip_blocks, 0, {.src_ip = "11.0.0.1"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_ip_blocks, 0, {.src_ip = NULL}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_ip_families, 0, {.src_ip = "10.1.2.3"}, 1, POL, "a/p", 1},
    {__LINE__, y_ip_families, 0, {.src_ip = "2001:db8::1"}, 1, POL, "a/p", 0},
    {__LINE__, y_ip_families, 0, {.src_ip = "::ffff:10.1.2.3"}, 1, POL, "a/p", 1},
    {__LINE__, y_not_ip_blocks, 0, {.src_ip = "10.200.0.1"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_ip_blocks, 0, {.src_ip = "11.0.0.1"}, 1, POL, "a/p", 0},
    {__LINE__, y_not_ip_blocks, 0, {.src_ip = NULL}, 1, POL, "a/p", 0},
    /* fields of a source all match; sources of a rule any */
    {__LINE__, y_source_and, 0, {.principal = SA_AX, .src_ip = "10.0.0.1"}, 1, POL, "a/p", 0},
    {__LINE__, y_source_and, 0, {.principal = SA_AX, .src_ip = "11.0.0.1"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_source_and, 0, {.principal = SA_BY, .src_ip = "10.0.0.1"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_source_or, 0, {.principal = SA_BY, .src_ip = "10.0.0.1"}, 1, POL, "a/p", 0},
    {__LINE__, y_source_or, 0, {.principal = SA_AX, .src_ip = "11.0.0.1"}, 1, POL, "a/p", 0},
    {__LINE__, y_source_or, 0, {.principal = SA_BY, .src_ip = "11.0.0.1"}, 0, NOMATCH, NULL, -1},
    /* hosts: case-insensitive against the authority as sent, port included (Istio), suffix and prefix */
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "example.com"}, 1, POL, "a/p", 0},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "EXAMPLE.Com"}, 1, POL, "a/p", 0},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "example.com:8080"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "a.svc.local:80"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "a.svc.local"}, 1, POL, "a/p", 1},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "any.port:8443"}, 1, POL, "a/p", 4},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "any.port"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "A.SVC.LOCAL"}, 1, POL, "a/p", 1},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "api.test:8443"}, 1, POL, "a/p", 2},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "api.test"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "api.test:9443"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "prefix.io"}, 1, POL, "a/p", 3},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = "other.com"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_hosts, 0, {.method = "GET", .host = NULL}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_hosts, 0, {.principal = SA_AX}, 0, NOMATCH, NULL, -1}, /* TCP: an ALLOW HTTP rule never matches */
    {__LINE__, y_not_hosts, 0, {.method = "GET", .host = "Example.com"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_hosts, 0, {.method = "GET", .host = "Example.com:80"}, 1, POL, "a/p", 0},
    {__LINE__, y_not_hosts, 0, {.method = "GET", .host = "other.com"}, 1, POL, "a/p", 0},
    {__LINE__, y_not_hosts, 0, {.method = "GET", .host = NULL}, 1, POL, "a/p", 0},
    {__LINE__, y_not_hosts, 0, {.port = 80}, 0, NOMATCH, NULL, -1},
    /* ports are not HTTP-only */
    {__LINE__, y_ports, 0, {.port = 8080}, 1, POL, "a/p", 0},
    {__LINE__, y_ports, 0, {.port = 9090}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_ports, 0, {.port = 8443, .method = "GET"}, 1, POL, "a/p", 0},
    {__LINE__, y_not_ports, 0, {.port = 22}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_ports, 0, {.port = 80}, 1, POL, "a/p", 0},
    /* methods are case-sensitive */
    {__LINE__, y_methods, 0, {.method = "GET"}, 1, POL, "a/p", 0},
    {__LINE__, y_methods, 0, {.method = "HEAD"}, 1, POL, "a/p", 0},
    {__LINE__, y_methods, 0, {.method = "POST"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_methods, 0, {.method = "get"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_methods, 0, {.port = 80}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_methods, 0, {.method = "DELETE"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_methods, 0, {.method = "GET"}, 1, POL, "a/p", 0},
    {__LINE__, y_not_methods, 0, {.port = 80}, 0, NOMATCH, NULL, -1},
    /* paths: exact, prefix, suffix, presence */
    {__LINE__, y_paths, 0, {.method = "GET", .path = "/admin"}, 1, POL, "a/p", 0},
    {__LINE__, y_paths, 0, {.method = "GET", .path = "/admin/x"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_paths, 0, {.method = "GET", .path = "/api/v1"}, 1, POL, "a/p", 1},
    {__LINE__, y_paths, 0, {.method = "GET", .path = "/api"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_paths, 0, {.method = "GET", .path = "/img/a.png"}, 1, POL, "a/p", 2},
    {__LINE__, y_paths, 0, {.method = "GET", .path = "/img/a.png.txt"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_paths, 0, {.port = 80}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_any_path, 0, {.method = "GET", .path = "/anything"}, 1, POL, "a/p", 0},
    {__LINE__, y_any_path, 0, {.port = 80}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_paths, 0, {.method = "GET", .path = "/private/a"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_not_paths, 0, {.method = "GET", .path = "/public"}, 1, POL, "a/p", 0},
    /* operations of a rule any; from, to and when all */
    {__LINE__, y_to_or_and, 0, {.principal = SA_AX, .method = "GET", .path = "/r"}, 1, POL, "a/p", 0},
    {__LINE__, y_to_or_and, 0, {.principal = SA_AX, .method = "POST", .path = "/w"}, 1, POL, "a/p", 0},
    {__LINE__, y_to_or_and, 0, {.principal = SA_AX, .method = "POST", .path = "/r"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_to_or_and, 0, {.principal = SA_BY, .method = "GET", .path = "/r"}, 0, NOMATCH, NULL, -1},
    /* when: request.headers (name case-insensitive; a repeated header is its values joined with ","), notValues
     * with the header absent */
    {__LINE__, y_when_header, 0, {.method = "GET", .headers = {"x-user", "alice"}}, 1, POL, "a/p", 0},
    {__LINE__, y_when_header, 0, {.method = "GET", .headers = {"x-user", "admin"}}, 1, POL, "a/p", 0},
    {__LINE__, y_when_header, 0, {.method = "GET", .headers = {"x-user", "bob"}}, 0, NOMATCH, NULL, -1},
    {__LINE__,
     y_when_header,
     0,
     {.method = "GET", .headers = {"x-user", "bob", "x-user", "alice"}},
     0,
     NOMATCH,
     NULL,
     -1},
    {__LINE__,
     y_when_header,
     0,
     {.method = "GET", .headers = {"x-user", "alice", "x-user", "alice"}},
     0,
     NOMATCH,
     NULL,
     -1},
    {__LINE__, y_when_header, 0, {.method = "GET", .headers = {"x-user", "admin", "X-User", "bob"}}, 1, POL, "a/p", 0},
    {__LINE__, y_when_header, 0, {.method = "GET", .headers = {"x-other", "alice"}}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_header, 0, {.method = "GET"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_header, 0, {.port = 80}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_not_header, 0, {.method = "GET", .headers = {"x-user", "bob"}}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_not_header, 0, {.method = "GET", .headers = {"x-user", "alice"}}, 1, POL, "a/p", 0},
    {__LINE__, y_when_not_header, 0, {.method = "GET"}, 1, POL, "a/p", 0},
    {__LINE__,
     y_when_not_header,
     0,
     {.method = "GET", .headers = {"x-user", "alice", "x-user", "bob"}},
     1,
     POL,
     "a/p",
     0},
    /* a DENY on an exact value is not matched by that value sent next to another one; the joined value is */
    {__LINE__, y_deny_header, 0, {.method = "GET", .headers = {"x-token", "admin"}}, 0, POL, "a/deny-admin", 0},
    {__LINE__,
     y_deny_header,
     0,
     {.method = "GET", .headers = {"x-token", "admin", "x-token", "guest"}},
     1,
     POL,
     "a/allow-all",
     0},
    {__LINE__,
     y_deny_header,
     0,
     {.method = "GET", .headers = {"x-token", "guest", "x-a", "1", "x-token", "admin"}},
     0,
     POL,
     "a/deny-admin",
     1},
    /* when: source.ip with values and notValues in one condition */
    {__LINE__, y_when_source_ip, 0, {.src_ip = "10.1.1.1"}, 1, POL, "a/p", 0},
    {__LINE__, y_when_source_ip, 0, {.src_ip = "10.9.1.1"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_source_ip, 0, {.src_ip = "11.1.1.1"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_source_ip, 0, {.src_ip = NULL}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_source_ns, 0, {.principal = SA_AX}, 1, POL, "a/p", 0},
    {__LINE__, y_when_source_ns, 0, {.principal = SA_BY}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_source_ns, 0, {.principal = NULL}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_source_principal, 0, {.principal = SA_AX}, 1, POL, "a/p", 0},
    {__LINE__, y_when_source_principal, 0, {.principal = SA_BY}, 1, POL, "a/p", 1},
    {__LINE__, y_when_source_principal, 0, {.principal = SA_CW}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_dest_ip, 0, {.dst_ip = "192.168.3.4"}, 1, POL, "a/p", 0},
    {__LINE__, y_when_dest_ip, 0, {.dst_ip = "10.0.0.1"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_dest_ip, 0, {.src_ip = "192.168.3.4"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_dest_port, 0, {.port = 443}, 1, POL, "a/p", 0},
    {__LINE__, y_when_dest_port, 0, {.port = 80}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_sni, 0, {.sni = "api.example.com"}, 1, POL, "a/p", 0},
    {__LINE__, y_when_sni, 0, {.sni = "example.org"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_sni, 0, {.sni = NULL}, 1, POL, "a/p", 1},
    {__LINE__, y_when_and, 0, {.principal = SA_AX, .port = 443}, 1, POL, "a/p", 0},
    {__LINE__, y_when_and, 0, {.principal = SA_AX, .port = 80}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_when_and, 0, {.principal = SA_BY, .port = 443}, 0, NOMATCH, NULL, -1},
    /* DENY before ALLOW */
    {__LINE__, y_deny_over_allow, 0, {.principal = SA_BY}, 0, POL, "a/deny-b", 0},
    {__LINE__, y_deny_over_allow, 0, {.principal = SA_AX}, 1, POL, "a/allow-all", 0},
    {__LINE__, y_deny_over_allow, 0, {.principal = NULL}, 1, POL, "a/allow-all", 0},
    /* the first DENY policy by namespace/name decides, whatever the file order */
    {__LINE__, y_deny_order, 1, {.principal = SA_BY}, 0, POL, "a/b-deny", 1},
    {__LINE__, y_deny_order, 1, {.principal = SA_AX, .port = 9}, 0, POL, "a/b-deny", 0},
    {__LINE__, y_deny_order, 1, {.principal = "spiffe://cluster.local/ns/zz/sa/q"}, 0, POL, "a/z-deny", 0},
    {__LINE__, y_two_allows, 0, {.principal = SA_BY}, 1, POL, "a/p2", 0},
    {__LINE__, y_two_allows, 0, {.principal = SA_AX}, 1, POL, "a/p1", 0},
    {__LINE__, y_two_allows, 1, {.principal = SA_CW}, 0, NOMATCH, NULL, -1},
    /* defaults: no ALLOW policy applies */
    {__LINE__, "", 0, {.principal = SA_AX}, 0, DDENY, NULL, -1},
    {__LINE__, "", 1, {.principal = SA_AX}, 1, DALLOW, NULL, -1},
    {__LINE__, y_deny_only, 0, {.principal = SA_AX}, 0, DDENY, NULL, -1},
    {__LINE__, y_deny_only, 1, {.principal = SA_AX}, 1, DALLOW, NULL, -1},
    {__LINE__, y_deny_only, 1, {.principal = SA_BY}, 0, POL, "a/deny-b", 0},
    {__LINE__, y_deny_empty_spec, 1, {.principal = SA_BY}, 1, DALLOW, NULL, -1},
    /* ALLOW with no rules allows nothing, even with defaultAction ALLOW; an empty rule matches everything */
    {__LINE__, y_allow_nothing, 1, {.principal = SA_AX}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_allow_nothing, 1, {.method = "GET"}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_allow_no_rules, 1, {.principal = SA_AX}, 0, NOMATCH, NULL, -1},
    {__LINE__, y_empty_rule, 0, {.principal = NULL}, 1, POL, "a/everything", 0},
    {__LINE__, y_empty_rule, 0, {.method = "DELETE", .path = "/x"}, 1, POL, "a/everything", 0},
    /* HTTP-only fields in DENY rules: on TCP they count as matching, not-fields included */
    {__LINE__, y_deny_http_on_tcp, 0, {.port = 8080}, 0, POL, "a/deny-http", 0},
    {__LINE__, y_deny_http_on_tcp, 0, {.port = 9090}, 1, POL, "a/allow-all", 0},
    {__LINE__, y_deny_http_on_tcp, 0, {.port = 8080, .method = "GET"}, 1, POL, "a/allow-all", 0},
    {__LINE__, y_deny_http_on_tcp, 0, {.port = 8080, .method = "POST"}, 0, POL, "a/deny-http", 0},
    {__LINE__, y_deny_http_on_tcp, 0, {.port = 80, .principal = SA_CW}, 0, POL, "a/deny-http", 1},
    {__LINE__, y_deny_http_on_tcp, 0, {.port = 80, .principal = SA_CW, .method = "GET"}, 1, POL, "a/allow-all", 0},
    {__LINE__,
     y_deny_http_on_tcp,
     0,
     {.port = 80, .principal = SA_CW, .method = "GET", .headers = {"x-debug", "1"}},
     0,
     POL,
     "a/deny-http",
     1},
    {__LINE__, y_deny_http_on_tcp, 0, {.port = 80, .principal = SA_DW}, 0, POL, "a/deny-http", 2},
    {__LINE__, y_deny_http_on_tcp, 0, {.port = 80, .principal = SA_DW, .method = "GET"}, 1, POL, "a/allow-all", 0},
    {__LINE__, y_deny_http_on_tcp, 0, {.port = 80, .principal = SA_DW, .method = "PUT"}, 0, POL, "a/deny-http", 2},
};

static void check_case(const char *yaml, int line, uint8_t default_allow, const req_t *req, uint8_t allow,
                       rm_authz_reason_t reason, const char *policy, int rule)
{
    rm_policy_set_t set = {0};
    req_buf_t rb;
    rm_authz_decision_t d;
    char got[600] = "-";

    load_ok(&set, yaml);
    rm_authz_engine_t *e = compile_set(&set, default_allow ? RM_AUTHZ_ALLOW : RM_AUTHZ_DENY);
    rm_authz_evaluate(e, make_attrs(req, &rb), 0.5, &d);
    if (d.policy != NULL)
        snprintf(got, sizeof(got), "%s/%s", d.policy->namespace_, d.policy->name);
    if (d.allow != allow || d.reason != reason || d.rule != rule || (policy == NULL) != (d.policy == NULL) ||
        (policy != NULL && strcmp(policy, got) != 0))
        fail_msg("case at line %d: got allow=%d reason=%s policy=%s rule=%d; want allow=%d reason=%s policy=%s "
                 "rule=%d",
                 line, d.allow, rm_authz_reason_word(d.reason), got, d.rule, allow, rm_authz_reason_word(reason),
                 policy != NULL ? policy : "-", rule);
    /* a denial is always logged; no dry-run or audit policy here */
    assert_int_equal(d.log, !d.allow);
    assert_int_equal(d.dry_run_differs, 0);
    assert_null(d.audit_policy);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

static void test_eval_table(void **state)
{
    for (size_t i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
        const eval_case_t *c = &eval_cases[i];
        check_case(c->yaml, c->line, c->default_allow, &c->req, c->allow, c->reason, c->policy, c->rule);
    }
}

/* A repeated header is joined into an 8 KiB buffer: when its joined values do not fit, a request whose decision
 * tests that header is denied as unevaluable, with the header named; one long field alone needs no joining. */
static void test_eval_repeated_header_too_long(void **state)
{
    static const char yaml[] = ALLOW_ALL("a")
        POLICY("a", "deny-admin", "DENY") "  rules:\n"
                                          "  - when: [{key: \"request.headers[x-token]\", values: [admin]}]\n";
    static char big[5000];
    rm_policy_set_t set = {0};
    req_buf_t rb;
    rm_authz_decision_t d;
    char why[512];

    memset(big, 'g', sizeof(big) - 1);
    load_ok(&set, yaml);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);

    req_t one = {.method = "GET", .headers = {"x-token", big}};
    rm_authz_evaluate(e, make_attrs(&one, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.reason, RM_AUTHZ_REASON_POLICY);

    req_t two = {.method = "GET", .headers = {"x-token", big, "x-token", big}};
    rm_authz_evaluate(e, make_attrs(&two, &rb), 0.5, &d);
    assert_int_equal(d.allow, 0);
    assert_int_equal(d.reason, RM_AUTHZ_REASON_HEADER_TOO_LONG);
    assert_null(d.policy);
    assert_int_equal(d.log, 1);
    assert_string_equal(d.header, "x-token");
    rm_authz_decision_explain(&d, why, sizeof(why));
    assert_string_equal(why,
                        "denied: the values of request header x-token joined with \",\" are longer than 8192 bytes");
    assert_string_equal(rm_authz_reason_word(d.reason), "repeated request header too long to evaluate");

    /* a header no policy tests may be as long as it likes */
    req_t other = {.method = "GET", .headers = {"x-other", big, "x-other", big, "x-token", "guest"}};
    rm_authz_evaluate(e, make_attrs(&other, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.reason, RM_AUTHZ_REASON_POLICY);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

static void test_eval_audit(void **state)
{
    static const char yaml[] = ALLOW_ALL("a")
        POLICY("a", "audit", "AUDIT") "  rules:\n"
                                      "  - to: [{operation: {paths: [/admin]}}]\n"
                                      "  - from: [{source: {namespaces: [b]}}]\n"
                                      "---\n" POLICY("a", "deny-c", "DENY") "  rules:\n"
                                                                            "  - from: [{source: {namespaces: [c]}}]\n";
    rm_policy_set_t set = {0};
    req_buf_t rb;
    rm_authz_decision_t d;
    char why[512];

    load_ok(&set, yaml);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    const rm_authz_policy_t *audit = find_policy(&set, "a", "audit"), *allow = find_policy(&set, "a", "allow-all");

    /* AUDIT marks, and does not change the decision */
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_BY, .method = "GET", .path = "/x"}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_ptr_equal(d.policy, allow);
    assert_ptr_equal(d.audit_policy, audit);
    assert_int_equal(d.audit_rule, 1);
    assert_int_equal(d.log, 1);
    assert_string_equal(rm_authz_decision_word(&d), "audit");
    rm_authz_decision_explain(&d, why, sizeof(why));
    assert_string_equal(why, "allowed by ALLOW policy a/allow-all rule 0; audited by a/audit rule 1");

    /* HTTP-only fields of an AUDIT rule count as matching on TCP */
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_AX}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_ptr_equal(d.audit_policy, audit);
    assert_int_equal(d.audit_rule, 0);
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_AX, .method = "GET", .path = "/x"}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_null(d.audit_policy);
    assert_int_equal(d.audit_rule, -1);
    assert_int_equal(d.log, 0);
    assert_string_equal(rm_authz_decision_word(&d), "allow");

    /* audited and denied */
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_CW, .method = "GET", .path = "/admin"}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 0);
    assert_ptr_equal(d.policy, find_policy(&set, "a", "deny-c"));
    assert_ptr_equal(d.audit_policy, audit);
    assert_int_equal(d.audit_rule, 0);
    assert_string_equal(rm_authz_decision_word(&d), "deny");

    /* an AUDIT policy alone is not an ALLOW policy: the default applies */
    rm_authz_engine_free(e);
    const rm_authz_policy_t *only = audit;
    assert_int_equal(
        rm_authz_engine_new(&e, &only, 1, &(rm_authz_engine_opts_t){.default_action = RM_AUTHZ_ALLOW}, NULL, 0), 0);
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_BY}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.reason, DALLOW);
    assert_ptr_equal(d.audit_policy, audit);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

static void test_eval_dry_run(void **state)
{
    static const char yaml[] =
        ALLOW_ALL("a") AP_HEAD "metadata:\n  name: dry-deny\n  namespace: a\n"
                               "  annotations: {ringmesh.io/dry-run: \"true\"}\n"
                               "spec:\n  action: DENY\n  rules:\n  - to: [{operation: {paths: [/admin]}}]\n";
    static const char yaml_allow[] = AP_HEAD "metadata:\n  name: dry-allow\n  namespace: a\n"
                                             "  annotations: {istio.io/dry-run: \"true\"}\n"
                                             "spec:\n  action: ALLOW\n  rules:\n"
                                             "  - from: [{source: {namespaces: [b]}}]\n"
                                             "  - from: [{source: {namespaces: [a]}}]\n";
    rm_policy_set_t set = {0};
    req_buf_t rb;
    rm_authz_decision_t d;
    char why[512];

    /* dry-run DENY: would deny, not enforced */
    load_ok(&set, yaml);
    const rm_authz_policy_t *dry = find_policy(&set, "a", "dry-deny");
    assert_int_equal(dry->dry_run, 1);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    rm_authz_evaluate(e, make_attrs(&(req_t){.method = "GET", .path = "/admin"}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_ptr_equal(d.policy, find_policy(&set, "a", "allow-all"));
    assert_int_equal(d.dry_run_differs, 1);
    assert_int_equal(d.dry_run_allow, 0);
    assert_ptr_equal(d.dry_run_policy, dry);
    assert_int_equal(d.dry_run_rule, 0);
    assert_int_equal(d.dry_run_reason, POL);
    assert_int_equal(d.log, 1);
    assert_string_equal(rm_authz_decision_word(&d), "would-deny");
    rm_authz_decision_explain(&d, why, sizeof(why));
    assert_string_equal(why, "allowed by ALLOW policy a/allow-all rule 0; dry-run policy a/dry-deny would deny it");
    rm_authz_evaluate(e, make_attrs(&(req_t){.method = "GET", .path = "/other"}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.dry_run_differs, 0);
    assert_null(d.dry_run_policy);
    assert_int_equal(d.log, 0);
    assert_string_equal(rm_authz_decision_word(&d), "allow");
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);

    /* dry-run ALLOW with defaultAction ALLOW: it would apply and deny what it does not match */
    load_ok(&set, yaml_allow);
    dry = &set.policies[0];
    e = compile_set(&set, RM_AUTHZ_ALLOW);
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_CW}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.reason, DALLOW);
    assert_int_equal(d.dry_run_differs, 1);
    assert_int_equal(d.dry_run_allow, 0);
    assert_int_equal(d.dry_run_reason, NOMATCH);
    assert_ptr_equal(d.dry_run_policy, dry);
    assert_int_equal(d.dry_run_rule, -1);
    assert_string_equal(rm_authz_decision_word(&d), "would-deny");
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_AX}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.dry_run_differs, 0);
    rm_authz_engine_free(e);

    /* ... and with defaultAction DENY: it would allow what it matches */
    e = compile_set(&set, RM_AUTHZ_DENY);
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_AX}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 0);
    assert_int_equal(d.reason, DDENY);
    assert_int_equal(d.dry_run_differs, 1);
    assert_int_equal(d.dry_run_allow, 1);
    assert_ptr_equal(d.dry_run_policy, dry);
    assert_int_equal(d.dry_run_rule, 1);
    assert_string_equal(rm_authz_decision_word(&d), "deny");
    rm_authz_decision_explain(&d, why, sizeof(why));
    assert_string_equal(why, "denied: no ALLOW policy selects this workload and the mesh's defaultAction is DENY "
                             "(default-deny); dry-run policy a/dry-allow would allow it");
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_CW}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 0);
    assert_int_equal(d.dry_run_differs, 0);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

static void test_eval_log_allowed(void **state)
{
    static const char yaml[] = AP_HEAD "metadata:\n  name: logged\n  namespace: a\n"
                                       "  annotations: {ringmesh.io/log-allowed: \"true\"}\n"
                                       "spec:\n  rules:\n  - from: [{source: {namespaces: [a]}}]\n"
                                       "---\n" POLICY("a", "quiet", "ALLOW") "  rules:\n  - {}\n";
    rm_policy_set_t set = {0};
    req_buf_t rb;
    rm_authz_decision_t d;
    const rm_authz_policy_t *ptrs[2];
    rm_authz_engine_t *e;

    load_ok(&set, yaml);
    ptrs[0] = &set.policies[0];
    ptrs[1] = &set.policies[1];
    assert_int_equal(rm_authz_engine_new(&e, ptrs, 2, NULL, NULL, 0), 0);
    assert_int_equal(rm_authz_engine_num_rules(e), 2);
    assert_int_equal(rm_authz_engine_needs_http(e), 0);
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_AX}, &rb), 0.99, &d);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.log, 1); /* the policy that allowed asks for it */
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_BY}, &rb), 0.0, &d);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.log, 0);
    rm_authz_engine_free(e);
    /* mesh-wide, sampled */
    rm_authz_engine_opts_t opts = {.default_action = RM_AUTHZ_DENY, .log_allowed = 1, .log_allowed_sample = 0.25};
    assert_int_equal(rm_authz_engine_new(&e, ptrs, 2, &opts, NULL, 0), 0);
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_BY}, &rb), 0.2, &d);
    assert_int_equal(d.log, 1);
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_BY}, &rb), 0.3, &d);
    assert_int_equal(d.log, 0);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

static void test_engine_refuses_invalid_model(void **state)
{
    char *bad_key[] = {"request.auth.claims[iss]"}, *vals[] = {"x"}, *bad_port[] = {"http"}, *mid[] = {"a*b"};
    rm_authz_condition_t cond = {.key = bad_key[0], .values = {vals, 1}};
    rm_authz_operation_t op = {.ports = {bad_port, 1}};
    rm_authz_source_t src = {.principals = {mid, 1}};
    rm_authz_rule_t rule = {.when = &cond, .num_when = 1};
    rm_authz_policy_t p = {.namespace_ = "a", .name = "p", .rules = &rule, .num_rules = 1};
    const rm_authz_policy_t *pp = &p;
    rm_authz_engine_t *e = NULL;
    char err[256];

    assert_int_equal(rm_authz_engine_new(&e, &pp, 1, NULL, err, sizeof(err)), RM_ERR_POLICY_INVALID);
    assert_null(e);
    assert_string_equal(err, "a/p rules[0].when[0]: unsupported key \"request.auth.claims[iss]\"");
    rule = (rm_authz_rule_t){.to = &op, .num_to = 1};
    assert_int_equal(rm_authz_engine_new(&e, &pp, 1, NULL, err, sizeof(err)), RM_ERR_POLICY_INVALID);
    assert_string_equal(err, "a/p rules[0].to[0]: \"http\" is not a port number");
    rule = (rm_authz_rule_t){.from = &src, .num_from = 1};
    assert_int_equal(rm_authz_engine_new(&e, &pp, 1, NULL, err, sizeof(err)), RM_ERR_POLICY_INVALID);
    assert_string_equal(err, "a/p rules[0].from[0]: \"a*b\": '*' only first or last");
}

/* Every header name the loader accepts compiles: the engine refuses only what the loader would have refused. */
static void test_engine_compiles_what_loader_accepts(void **state)
{
    char yaml[4096], name[1100];
    rm_policy_set_t set = {0};
    req_buf_t rb;
    rm_authz_decision_t d;

    memset(name, 'h', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(yaml, sizeof(yaml),
             POLICY("a", "p", "ALLOW") "  rules:\n  - when: [{key: \"request.headers[%s]\", values: [v]}]\n", name);
    load_ok(&set, yaml);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    rm_authz_evaluate(e, make_attrs(&(req_t){.method = "GET", .headers = {name, "v"}}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    rm_authz_evaluate(e, make_attrs(&(req_t){.method = "GET", .headers = {name, "w"}}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 0);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

/* ------------------------------------------------------------------ 3. the path decided on */

/* The engine matches the path it is given, up to the query or fragment, and cleans nothing up: the proxy's filters
 * and `policy check` normalize the target first (lib/http_path.c, tests/unit/test_http_path.c) and the proxy
 * forwards those same bytes, so a second clean-up here could only make the policy and the app disagree. */
static void test_eval_path_as_given(void **state)
{
    static const char yaml[] =
        ALLOW_ALL("a") POLICY("a", "deny-admin", "DENY") "  rules:\n"
                                                         "  - to:\n"
                                                         "    - operation:\n"
                                                         "        paths: [/admin, /a/b, \"/secret/*\"]\n";
    static const struct {
        const char *path;
        uint8_t deny;
    } cases[] = {
        {"/admin", 1},
        {"/a/b", 1},
        {"/secret/key", 1},
        {"/admin?x=1", 1},
        {"/admin#frag", 1},
        {"/admin?q=/../x", 1},
        {"/a/b?", 1},
        /* not normalized here: a caller that forwards these unchanged sees them decided as they are */
        {"/api/../admin", 0},
        {"/api/%2e%2e/admin", 0},
        {"/%61dmin", 0},
        {"/api\\..\\admin", 0},
        {"/admin/", 0},
        {"/ADMIN", 0},
        {"/administrator", 0},
    };
    rm_policy_set_t set = {0};
    req_buf_t rb;
    rm_authz_decision_t d;

    load_ok(&set, yaml);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    assert_int_equal(rm_authz_engine_needs_http(e), 1);
    const rm_authz_policy_t *deny = find_policy(&set, "a", "deny-admin");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rm_authz_evaluate(e, make_attrs(&(req_t){.method = "GET", .path = cases[i].path}, &rb), 0.5, &d);
        if (d.allow != !cases[i].deny || (cases[i].deny && d.policy != deny))
            fail_msg("path \"%s\": got allow=%d, want %s", cases[i].path, d.allow,
                     cases[i].deny ? "denied by a/deny-admin" : "allowed");
    }
    /* a long path is decided like any other (no buffer to outgrow) */
    size_t n = 9000;
    char *longp = malloc(n + 1);
    assert_non_null(longp);
    memset(longp, 'a', n);
    memcpy(longp, "/secret/", 8);
    longp[n] = '\0';
    rm_authz_evaluate(e, make_attrs(&(req_t){.method = "GET", .path = longp}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 0);
    assert_ptr_equal(d.policy, deny);
    free(longp);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

/* ------------------------------------------------------------------ 4. the principal index against a reference */

typedef struct st_rng_t {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rng_below(rng_t *r, size_t n)
{
    return (size_t)(rng_next(r) % n);
}

#define RNG_PICK(r, arr) ((arr)[rng_below((r), sizeof(arr) / sizeof((arr)[0]))])

/* Everything a generated set allocates, freed at once. */
typedef struct st_arena_t {
    void **p;
    size_t n, cap;
} arena_t;

static void *arena_alloc(arena_t *a, size_t size)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 256;
        a->p = realloc(a->p, a->cap * sizeof(*a->p));
        assert_non_null(a->p);
    }
    void *m = calloc(1, size != 0 ? size : 1);
    assert_non_null(m);
    a->p[a->n++] = m;
    return m;
}

static void arena_free(arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    free(a->p);
    memset(a, 0, sizeof(*a));
}

static char *arena_printf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *arena_printf(arena_t *a, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *s = arena_alloc(a, strlen(buf) + 1);
    memcpy(s, buf, strlen(buf));
    return s;
}

/* A list of 1..max entries from gen(). */
static void gen_list(arena_t *a, rng_t *r, rm_strlist_t *l, size_t max, char *(*gen)(arena_t *, rng_t *))
{
    l->n = 1 + rng_below(r, max);
    l->v = arena_alloc(a, l->n * sizeof(char *));
    for (size_t i = 0; i < l->n; i++)
        l->v[i] = gen(a, r);
}

/* 4 namespaces x 3 service accounts, written with or without "spiffe://" */
static char *gen_exact_principal(arena_t *a, rng_t *r)
{
    return arena_printf(a, "%scluster.local/ns/n%zu/sa/s%zu", rng_below(r, 2) ? "spiffe://" : "", rng_below(r, 4),
                        rng_below(r, 3));
}

static char *gen_loose_principal(arena_t *a, rng_t *r)
{
    switch (rng_below(r, 4)) {
    case 0:
        return arena_printf(a, "%scluster.local/ns/n%zu/*", rng_below(r, 2) ? "spiffe://" : "", rng_below(r, 4));
    case 1:
        return arena_printf(a, "*/sa/s%zu", rng_below(r, 3));
    case 2:
        return arena_printf(a, "*");
    default:
        return gen_exact_principal(a, r);
    }
}

static char *gen_namespace(arena_t *a, rng_t *r)
{
    static const char *const v[] = {"n0", "n1", "n2", "n3", "n*", "*2", "*"};
    return arena_printf(a, "%s", RNG_PICK(r, v));
}

static char *gen_ip_block(arena_t *a, rng_t *r)
{
    static const char *const v[] = {"10.0.0.0/8",     "10.1.0.0/16",   "10.1.2.3",
                                    "192.168.0.0/23", "2001:db8::/32", "0.0.0.0/0"};
    return arena_printf(a, "%s", RNG_PICK(r, v));
}

static char *gen_host(arena_t *a, rng_t *r)
{
    static const char *const v[] = {"svc.local", "*.svc.local", "api*", "Svc.Local:8080", "*", "svc.local:*"};
    return arena_printf(a, "%s", RNG_PICK(r, v));
}

static char *gen_port(arena_t *a, rng_t *r)
{
    static const char *const v[] = {"80", "443", "8080"};
    return arena_printf(a, "%s", RNG_PICK(r, v));
}

static char *gen_method(arena_t *a, rng_t *r)
{
    static const char *const v[] = {"GET", "POST", "P*", "*"};
    return arena_printf(a, "%s", RNG_PICK(r, v));
}

static char *gen_path(arena_t *a, rng_t *r)
{
    static const char *const v[] = {"/a", "/a/*", "*.png", "/b", "*"};
    return arena_printf(a, "%s", RNG_PICK(r, v));
}

static char *gen_header_value(arena_t *a, rng_t *r)
{
    static const char *const v[] = {"v1", "v2", "v*", "*", "*2", "v1,v2"};
    return arena_printf(a, "%s", RNG_PICK(r, v));
}

static void gen_source(arena_t *a, rng_t *r, rm_authz_source_t *s, int exact)
{
    if (exact) {
        gen_list(a, r, &s->principals, 3, gen_exact_principal);
    } else {
        switch (rng_below(r, 5)) {
        case 0:
            gen_list(a, r, &s->principals, 3, gen_loose_principal);
            break;
        case 1:
            gen_list(a, r, &s->not_principals, 2, gen_loose_principal);
            break;
        case 2:
            gen_list(a, r, &s->namespaces, 2, gen_namespace);
            break;
        case 3:
            gen_list(a, r, &s->ip_blocks, 2, gen_ip_block);
            break;
        default:
            gen_list(a, r, &s->not_namespaces, 2, gen_namespace);
            break;
        }
    }
    /* sometimes more fields in the same source (an indexed rule stays indexed) */
    if (rng_below(r, 4) == 0)
        gen_list(a, r, &s->not_principals, 2, gen_exact_principal);
    if (rng_below(r, 4) == 0)
        gen_list(a, r, &s->namespaces, 2, gen_namespace);
    if (rng_below(r, 6) == 0)
        gen_list(a, r, &s->not_ip_blocks, 1, gen_ip_block);
}

static void gen_operation(arena_t *a, rng_t *r, rm_authz_operation_t *o)
{
    static const struct {
        size_t off;
        char *(*gen)(arena_t *, rng_t *);
    } fields[] = {
        {offsetof(rm_authz_operation_t, hosts), gen_host},
        {offsetof(rm_authz_operation_t, not_hosts), gen_host},
        {offsetof(rm_authz_operation_t, ports), gen_port},
        {offsetof(rm_authz_operation_t, not_ports), gen_port},
        {offsetof(rm_authz_operation_t, methods), gen_method},
        {offsetof(rm_authz_operation_t, not_methods), gen_method},
        {offsetof(rm_authz_operation_t, paths), gen_path},
        {offsetof(rm_authz_operation_t, not_paths), gen_path},
    };
    size_t n = 1 + rng_below(r, 2);
    for (size_t i = 0; i < n; i++) {
        size_t f = rng_below(r, sizeof(fields) / sizeof(fields[0]));
        gen_list(a, r, (rm_strlist_t *)((char *)o + fields[f].off), 2, fields[f].gen);
    }
}

static void gen_condition(arena_t *a, rng_t *r, rm_authz_condition_t *c)
{
    rm_strlist_t *l = rng_below(r, 3) == 0 ? &c->not_values : &c->values;
    switch (rng_below(r, 5)) {
    case 0:
        c->key = arena_printf(a, "request.headers[X-K]");
        gen_list(a, r, l, 2, gen_header_value);
        break;
    case 1:
        c->key = arena_printf(a, "source.namespace");
        gen_list(a, r, l, 2, gen_namespace);
        break;
    case 2:
        c->key = arena_printf(a, "source.principal");
        gen_list(a, r, l, 2, gen_loose_principal);
        break;
    case 3:
        c->key = arena_printf(a, "destination.port");
        gen_list(a, r, l, 2, gen_port);
        break;
    default:
        c->key = arena_printf(a, "source.ip");
        gen_list(a, r, l, 2, gen_ip_block);
        break;
    }
}

static void gen_rule(arena_t *a, rng_t *r, rm_authz_rule_t *ru)
{
    size_t kind = rng_below(r, 20);
    if (kind < 9) { /* indexed: every source names exact principals */
        ru->num_from = 1 + rng_below(r, 3);
        ru->from = arena_alloc(a, ru->num_from * sizeof(*ru->from));
        for (size_t i = 0; i < ru->num_from; i++)
            gen_source(a, r, &ru->from[i], 1);
    } else if (kind < 15) { /* not indexed: some source without exact principals */
        ru->num_from = 1 + rng_below(r, 3);
        ru->from = arena_alloc(a, ru->num_from * sizeof(*ru->from));
        size_t loose = rng_below(r, ru->num_from);
        for (size_t i = 0; i < ru->num_from; i++)
            gen_source(a, r, &ru->from[i], i != loose && rng_below(r, 2));
    } /* else: no `from` */
    if (rng_below(r, 3) == 0) {
        ru->num_to = 1 + rng_below(r, 2);
        ru->to = arena_alloc(a, ru->num_to * sizeof(*ru->to));
        for (size_t i = 0; i < ru->num_to; i++)
            gen_operation(a, r, &ru->to[i]);
    }
    if (rng_below(r, 4) == 0) {
        ru->num_when = 1 + rng_below(r, 2);
        ru->when = arena_alloc(a, ru->num_when * sizeof(*ru->when));
        for (size_t i = 0; i < ru->num_when; i++)
            gen_condition(a, r, &ru->when[i]);
    }
}

typedef struct st_ref_req_t {
    const char *principal; /* NULL: plaintext */
    const char *src_ip;    /* NULL: unknown */
    uint16_t port;
    int http;
    const char *method, *path, *host, *xk; /* xk: the x-k header, NULL when absent */
} ref_req_t;

static const char *strip_scheme(const char *s)
{
    return strncmp(s, "spiffe://", 9) == 0 ? s + 9 : s;
}

/* Istio's string match, written plainly. */
static int ref_str(const char *pat, const char *v, int icase)
{
    size_t pl = strlen(pat), vl = strlen(v);
    int (*cmp)(const char *, const char *, size_t) = icase ? strncasecmp : strncmp;
    if (strcmp(pat, "*") == 0)
        return vl > 0;
    if (pat[pl - 1] == '*')
        return vl >= pl - 1 && cmp(v, pat, pl - 1) == 0;
    if (pat[0] == '*')
        return vl >= pl - 1 && cmp(v + vl - (pl - 1), pat + 1, pl - 1) == 0;
    return vl == pl && cmp(v, pat, pl) == 0;
}

static int ref_principal(const char *pat, const char *principal)
{
    return ref_str(strcmp(pat, "*") == 0 ? pat : strip_scheme(pat), strip_scheme(principal), 0);
}

static int ref_cidr(const char *block, const char *ip)
{
    uint8_t b[16] = {0}, x[16] = {0};
    char addr[64];
    unsigned prefix;
    const char *slash = strchr(block, '/');
    snprintf(addr, sizeof(addr), "%.*s", slash ? (int)(slash - block) : (int)strlen(block), block);
    int b6 = strchr(addr, ':') != NULL, x6 = strchr(ip, ':') != NULL;
    if (b6 != x6)
        return 0;
    assert_int_equal(inet_pton(b6 ? AF_INET6 : AF_INET, addr, b), 1);
    assert_int_equal(inet_pton(x6 ? AF_INET6 : AF_INET, ip, x), 1);
    prefix = slash ? (unsigned)atoi(slash + 1) : b6 ? 128 : 32;
    for (unsigned i = 0; i < prefix; i++)
        if (((b[i / 8] >> (7 - i % 8)) & 1) != ((x[i / 8] >> (7 - i % 8)) & 1))
            return 0;
    return 1;
}

static const char *ref_namespace(const char *principal, char *buf, size_t len)
{
    const char *ns = principal != NULL ? strstr(principal, "/ns/") : NULL;
    if (ns == NULL)
        return NULL;
    ns += 4;
    const char *end = strchr(ns, '/');
    snprintf(buf, len, "%.*s", end ? (int)(end - ns) : (int)strlen(ns), ns);
    return buf;
}

enum { F_STR, F_ICASE, F_PRINCIPAL, F_IP, F_PORT, F_HOST };

static int ref_one(int kind, const char *pat, const char *v)
{
    switch (kind) {
    case F_PRINCIPAL:
        return ref_principal(pat, v);
    case F_IP:
        return ref_cidr(pat, v);
    case F_PORT:
        return atoi(pat) == atoi(v);
    case F_HOST: /* the authority as sent, port included */
        return ref_str(pat, v, 1);
    default:
        return ref_str(pat, v, kind == F_ICASE);
    }
}

/* One field: the list matches when the attribute is present and an entry matches; the not-list when no entry
 * does (an absent attribute matches no entry). HTTP-only fields off HTTP: ALLOW fails, DENY/AUDIT passes. */
static int ref_field(const rm_strlist_t *pos, const rm_strlist_t *neg, const char *v, int kind, int http_only,
                     const ref_req_t *q, rm_authz_action_t action)
{
    if (pos->n == 0 && neg->n == 0)
        return 1;
    if (http_only && !q->http)
        return action != RM_AUTHZ_ALLOW;
    int any = 0;
    for (size_t i = 0; i < pos->n && v != NULL && !any; i++)
        any = ref_one(kind, pos->v[i], v);
    if (pos->n > 0 && !any)
        return 0;
    for (size_t i = 0; i < neg->n && v != NULL; i++)
        if (ref_one(kind, neg->v[i], v))
            return 0;
    return 1;
}

static int ref_rule(const rm_authz_rule_t *ru, const ref_req_t *q, rm_authz_action_t action)
{
    char nsbuf[64], portbuf[8];
    const char *ns = ref_namespace(q->principal, nsbuf, sizeof(nsbuf));
    snprintf(portbuf, sizeof(portbuf), "%u", q->port);
    if (ru->num_from > 0) {
        int any = 0;
        for (size_t i = 0; i < ru->num_from && !any; i++) {
            const rm_authz_source_t *s = &ru->from[i];
            any = ref_field(&s->principals, &s->not_principals, q->principal, F_PRINCIPAL, 0, q, action) &&
                  ref_field(&s->namespaces, &s->not_namespaces, ns, F_STR, 0, q, action) &&
                  ref_field(&s->ip_blocks, &s->not_ip_blocks, q->src_ip, F_IP, 0, q, action);
        }
        if (!any)
            return 0;
    }
    if (ru->num_to > 0) {
        int any = 0;
        for (size_t i = 0; i < ru->num_to && !any; i++) {
            const rm_authz_operation_t *o = &ru->to[i];
            any = ref_field(&o->hosts, &o->not_hosts, q->host, F_HOST, 1, q, action) &&
                  ref_field(&o->ports, &o->not_ports, portbuf, F_PORT, 0, q, action) &&
                  ref_field(&o->methods, &o->not_methods, q->method, F_STR, 1, q, action) &&
                  ref_field(&o->paths, &o->not_paths, q->path, F_STR, 1, q, action);
        }
        if (!any)
            return 0;
    }
    for (size_t i = 0; i < ru->num_when; i++) {
        const rm_authz_condition_t *c = &ru->when[i];
        int ok;
        if (strcmp(c->key, "request.headers[X-K]") == 0)
            ok = ref_field(&c->values, &c->not_values, q->xk, F_STR, 1, q, action);
        else if (strcmp(c->key, "source.namespace") == 0)
            ok = ref_field(&c->values, &c->not_values, ns, F_STR, 0, q, action);
        else if (strcmp(c->key, "source.principal") == 0)
            ok = ref_field(&c->values, &c->not_values, q->principal, F_PRINCIPAL, 0, q, action);
        else if (strcmp(c->key, "destination.port") == 0)
            ok = ref_field(&c->values, &c->not_values, portbuf, F_PORT, 0, q, action);
        else
            ok = ref_field(&c->values, &c->not_values, q->src_ip, F_IP, 0, q, action);
        if (!ok)
            return 0;
    }
    return 1;
}

typedef struct st_ref_decision_t {
    int allow;
    rm_authz_reason_t reason;
    const rm_authz_policy_t *policy;
    int rule;
} ref_decision_t;

/* The first matching rule of the policies of `action` in namespace/name order. */
static int ref_first(const rm_authz_policy_t *const *sorted, size_t n, rm_authz_action_t action, int with_dry,
                     const ref_req_t *q, ref_decision_t *d)
{
    for (size_t i = 0; i < n; i++) {
        const rm_authz_policy_t *p = sorted[i];
        if (p->action != action || (p->dry_run && !with_dry))
            continue;
        for (size_t r = 0; r < p->num_rules; r++)
            if (ref_rule(&p->rules[r], q, action)) {
                d->policy = p;
                d->rule = (int)r;
                return 1;
            }
    }
    return 0;
}

static void ref_decide(const rm_authz_policy_t *const *sorted, size_t n, int with_dry, int default_allow,
                       const ref_req_t *q, ref_decision_t *d)
{
    memset(d, 0, sizeof(*d));
    d->rule = -1;
    if (ref_first(sorted, n, RM_AUTHZ_DENY, with_dry, q, d)) {
        d->allow = 0;
        d->reason = POL;
        return;
    }
    size_t applying = 0;
    for (size_t i = 0; i < n; i++)
        applying += sorted[i]->action == RM_AUTHZ_ALLOW && (with_dry || !sorted[i]->dry_run);
    if (applying == 0) {
        d->allow = default_allow;
        d->reason = default_allow ? DALLOW : DDENY;
        return;
    }
    if (ref_first(sorted, n, RM_AUTHZ_ALLOW, with_dry, q, d)) {
        d->allow = 1;
        d->reason = POL;
        return;
    }
    d->allow = 0;
    d->reason = NOMATCH;
}

static int cmp_policy_ptr(const void *a, const void *b)
{
    const rm_authz_policy_t *x = *(const rm_authz_policy_t *const *)a, *y = *(const rm_authz_policy_t *const *)b;
    int c = strcmp(x->namespace_, y->namespace_);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static void gen_request(rng_t *r, ref_req_t *q)
{
    static char principal[128];
    static const char *const ips[] = {NULL, "10.1.2.3", "10.2.0.1", "192.168.1.9", "172.16.0.1", "2001:db8::5"};
    static const char *const methods[] = {"GET", "POST", "PUT"};
    static const char *const paths[] = {"/a", "/a/x", "/b", "/img/c.png", "/"};
    static const char *const hosts[] = {NULL, "svc.local", "x.svc.local:8080", "api.test", "SVC.LOCAL:8080"};
    /* "a,b": the request carries two x-k fields, a then b; Istio (Envoy) matches "a,b" */
    static const char *const xks[] = {NULL, "v1", "v2", "w", "v1,v2", "w,v1"};
    static const uint16_t ports[] = {80, 443, 8080, 9000};
    memset(q, 0, sizeof(*q));
    switch (rng_below(r, 6)) {
    case 0:
        q->principal = NULL;
        break;
    case 1:
        q->principal = "spiffe://cluster.local/ns/n9/sa/zz";
        break;
    case 2:
        q->principal = "spiffe://other.td/ns/n1/sa/s1";
        break;
    default:
        snprintf(principal, sizeof(principal), "spiffe://cluster.local/ns/n%zu/sa/s%zu", rng_below(r, 4),
                 rng_below(r, 3));
        q->principal = principal;
        break;
    }
    q->src_ip = RNG_PICK(r, ips);
    q->port = RNG_PICK(r, ports);
    if ((q->http = rng_below(r, 5) < 3)) {
        q->method = RNG_PICK(r, methods);
        q->path = RNG_PICK(r, paths);
        q->host = RNG_PICK(r, hosts);
        q->xk = RNG_PICK(r, xks);
    }
}

static void describe_set(const rm_authz_policy_t *const *sorted, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const rm_authz_policy_t *p = sorted[i];
        print_message("  %s/%s %s%s:\n", p->namespace_, p->name, rm_authz_action_name(p->action),
                      p->dry_run ? " (dry-run)" : "");
        for (size_t k = 0; k < p->num_rules; k++) {
            const rm_authz_rule_t *ru = &p->rules[k];
            print_message("    rule %zu:", k);
            for (size_t f = 0; f < ru->num_from; f++) {
                const rm_authz_source_t *s = &ru->from[f];
                print_message(" from[");
                for (size_t j = 0; j < s->principals.n; j++)
                    print_message(" p=%s", s->principals.v[j]);
                for (size_t j = 0; j < s->not_principals.n; j++)
                    print_message(" !p=%s", s->not_principals.v[j]);
                for (size_t j = 0; j < s->namespaces.n; j++)
                    print_message(" ns=%s", s->namespaces.v[j]);
                for (size_t j = 0; j < s->not_namespaces.n; j++)
                    print_message(" !ns=%s", s->not_namespaces.v[j]);
                for (size_t j = 0; j < s->ip_blocks.n; j++)
                    print_message(" ip=%s", s->ip_blocks.v[j]);
                for (size_t j = 0; j < s->not_ip_blocks.n; j++)
                    print_message(" !ip=%s", s->not_ip_blocks.v[j]);
                print_message(" ]");
            }
            print_message(" to=%zu when=%zu\n", ru->num_to, ru->num_when);
        }
    }
}

static void test_index_matches_reference(void **state)
{
    rng_t rng = {0x5eed1234abcdULL};
    size_t checked = 0, by_policy = 0, indexed_hits = 0;

    for (int iter = 0; iter < 400; iter++) {
        arena_t a = {0};
        size_t n = 1 + rng_below(&rng, 8);
        rm_authz_policy_t *ps = arena_alloc(&a, n * sizeof(*ps));
        const rm_authz_policy_t **ptrs = arena_alloc(&a, n * sizeof(*ptrs)),
                                **sorted = arena_alloc(&a, n * sizeof(*sorted));
        for (size_t i = 0; i < n; i++) {
            rm_authz_policy_t *p = &ps[i];
            size_t act = rng_below(&rng, 10);
            p->namespace_ = arena_printf(&a, "ns%zu", rng_below(&rng, 3));
            p->name = arena_printf(&a, "p%02zu", i);
            p->action = act < 4 ? RM_AUTHZ_DENY : act < 9 ? RM_AUTHZ_ALLOW : RM_AUTHZ_AUDIT;
            p->dry_run = rng_below(&rng, 10) == 0;
            p->num_rules = rng_below(&rng, 6);
            p->rules = arena_alloc(&a, p->num_rules * sizeof(*p->rules));
            for (size_t k = 0; k < p->num_rules; k++)
                gen_rule(&a, &rng, &p->rules[k]);
        }
        /* the engine takes them in any order */
        for (size_t i = 0; i < n; i++)
            ptrs[i] = sorted[i] = &ps[(i + (size_t)iter) % n];
        qsort(sorted, n, sizeof(*sorted), cmp_policy_ptr);
        int default_allow = (int)rng_below(&rng, 2);
        rm_authz_engine_opts_t opts = {.default_action = default_allow ? RM_AUTHZ_ALLOW : RM_AUTHZ_DENY};
        rm_authz_engine_t *e = NULL;
        char err[256];
        if (rm_authz_engine_new(&e, ptrs, n, &opts, err, sizeof(err)) != 0)
            fail_msg("set %d: %s", iter, err);

        for (int k = 0; k < 40; k++) {
            ref_req_t q;
            gen_request(&rng, &q);
            req_t req = {.principal = q.principal, .src_ip = q.src_ip, .port = q.port};
            char xk_first[8];
            if (q.http) {
                req.method = q.method, req.path = q.path, req.host = q.host;
                const char *comma = q.xk != NULL ? strchr(q.xk, ',') : NULL;
                if (comma != NULL) { /* two fields; another header between them */
                    snprintf(xk_first, sizeof(xk_first), "%.*s", (int)(comma - q.xk), q.xk);
                    req.headers[0] = "x-k", req.headers[1] = xk_first;
                    req.headers[2] = "x-other", req.headers[3] = "v1";
                    req.headers[4] = "X-K", req.headers[5] = comma + 1;
                } else if (q.xk != NULL) {
                    req.headers[0] = "x-k", req.headers[1] = q.xk;
                }
            }
            req_buf_t rb;
            rm_authz_decision_t d;
            ref_decision_t want, shadow, audit = {.rule = -1};
            rm_authz_evaluate(e, make_attrs(&req, &rb), 0.5, &d);
            ref_decide(sorted, n, 0, default_allow, &q, &want);
            ref_decide(sorted, n, 1, default_allow, &q, &shadow);
            ref_first(sorted, n, RM_AUTHZ_AUDIT, 1, &q, &audit);
            const rm_authz_policy_t *want_dry_policy = NULL;
            if (shadow.allow != want.allow) {
                want_dry_policy = shadow.policy;
                if (want_dry_policy == NULL || !want_dry_policy->dry_run) {
                    want_dry_policy = NULL;
                    for (size_t i = 0; i < n && want_dry_policy == NULL; i++)
                        if (sorted[i]->action == RM_AUTHZ_ALLOW && sorted[i]->dry_run)
                            want_dry_policy = sorted[i];
                }
            }
            if (d.allow != want.allow || d.reason != want.reason || d.policy != want.policy || d.rule != want.rule ||
                d.dry_run_differs != (shadow.allow != want.allow) ||
                (d.dry_run_differs && (d.dry_run_allow != shadow.allow || d.dry_run_rule != shadow.rule ||
                                       d.dry_run_reason != shadow.reason || d.dry_run_policy != want_dry_policy)) ||
                d.audit_policy != audit.policy || d.audit_rule != audit.rule) {
                describe_set(sorted, n);
                fail_msg("set %d request %d (principal %s ip %s port %u %s %s %s host %s x-k %s): engine allow=%d "
                         "reason=%d policy=%s rule=%d dry=%d audit=%s/%d; reference allow=%d reason=%d policy=%s "
                         "rule=%d dry=%d audit=%s/%d",
                         iter, k, q.principal ? q.principal : "-", q.src_ip ? q.src_ip : "-", q.port,
                         q.http ? "HTTP" : "TCP", q.method ? q.method : "", q.path ? q.path : "", q.host ? q.host : "-",
                         q.xk ? q.xk : "-", d.allow, d.reason, d.policy ? d.policy->name : "-", d.rule,
                         d.dry_run_differs, d.audit_policy ? d.audit_policy->name : "-", d.audit_rule, want.allow,
                         want.reason, want.policy ? want.policy->name : "-", want.rule, shadow.allow != want.allow,
                         audit.policy ? audit.policy->name : "-", audit.rule);
            }
            checked++;
            by_policy += want.policy != NULL;
            if (want.policy != NULL && want.policy->rules[want.rule].num_from > 0 &&
                want.policy->rules[want.rule].from[0].principals.n > 0)
                indexed_hits++;
        }
        rm_authz_engine_free(e);
        arena_free(&a);
    }
    /* the generator must reach both sides: decisions by a rule, and many of them by principal rules */
    assert_int_equal(checked, 400 * 40);
    assert_true(by_policy > checked / 4);
    assert_true(indexed_hits > checked / 20);
}

/* Many rules under a few principals, named again in the same rule and across sources: the first in order decides. */
static void test_index_many_rules(void **state)
{
    enum { NUM = 300, USERS = 50 };
    arena_t a = {0};
    rm_authz_policy_t p = {.namespace_ = "a", .name = "big", .action = RM_AUTHZ_ALLOW};
    const rm_authz_policy_t *pp = &p;
    rm_authz_engine_t *e;
    req_buf_t rb;
    rm_authz_decision_t d;

    /* rule i: from [{principals: [u(i%50)]}, {principals: [u(7i%50), u(i%50)]}], to port 2 when i%3 == 0; the last
     * rule: to port 1 only (not indexed) */
    p.num_rules = NUM + 1;
    p.rules = arena_alloc(&a, p.num_rules * sizeof(*p.rules));
    rm_authz_operation_t *port2 = arena_alloc(&a, sizeof(*port2)), *port1 = arena_alloc(&a, sizeof(*port1));
    port2->ports.n = port1->ports.n = 1;
    port2->ports.v = arena_alloc(&a, sizeof(char *));
    port1->ports.v = arena_alloc(&a, sizeof(char *));
    port2->ports.v[0] = arena_printf(&a, "2");
    port1->ports.v[0] = arena_printf(&a, "1");
    for (size_t i = 0; i < NUM; i++) {
        rm_authz_rule_t *ru = &p.rules[i];
        ru->num_from = 2;
        ru->from = arena_alloc(&a, 2 * sizeof(*ru->from));
        ru->from[0].principals.n = 1;
        ru->from[0].principals.v = arena_alloc(&a, sizeof(char *));
        ru->from[0].principals.v[0] = arena_printf(&a, "cluster.local/ns/a/sa/u%zu", i % USERS);
        ru->from[1].principals.n = 2;
        ru->from[1].principals.v = arena_alloc(&a, 2 * sizeof(char *));
        ru->from[1].principals.v[0] = arena_printf(&a, "spiffe://cluster.local/ns/a/sa/u%zu", i * 7 % USERS);
        ru->from[1].principals.v[1] = arena_printf(&a, "cluster.local/ns/a/sa/u%zu", i % USERS);
        if (i % 3 == 0) {
            ru->to = port2;
            ru->num_to = 1;
        }
    }
    p.rules[NUM].to = port1;
    p.rules[NUM].num_to = 1;
    assert_int_equal(rm_authz_engine_new(&e, &pp, 1, NULL, NULL, 0), 0);
    assert_int_equal(rm_authz_engine_num_rules(e), NUM + 1);
    for (size_t u = 0; u < USERS; u++) {
        char principal[64];
        snprintf(principal, sizeof(principal), "spiffe://cluster.local/ns/a/sa/u%zu", u);
        for (uint16_t port = 1; port <= 2; port++) {
            int want = NUM;
            for (size_t i = 0; i < NUM && want == NUM; i++)
                if ((i % USERS == u || i * 7 % USERS == u) && (i % 3 != 0 || port == 2))
                    want = (int)i;
            rm_authz_evaluate(e, make_attrs(&(req_t){.principal = principal, .port = port}, &rb), 0.5, &d);
            if (port == 1 || want != NUM) {
                assert_int_equal(d.allow, 1);
                assert_int_equal(d.rule, want);
            } else {
                assert_int_equal(d.allow, 0);
            }
        }
    }
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_AX, .port = 1}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.rule, NUM);
    rm_authz_evaluate(e, make_attrs(&(req_t){.principal = SA_AX, .port = 2}, &rb), 0.5, &d);
    assert_int_equal(d.allow, 0);
    assert_int_equal(d.reason, NOMATCH);
    rm_authz_evaluate(e, make_attrs(&(req_t){.port = 1}, &rb), 0.5, &d);
    assert_int_equal(d.rule, NUM);
    rm_authz_engine_free(e);
    arena_free(&a);
}

/* ------------------------------------------------------------------ 5. selection */

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

#define PA(ns, name, spec)                                                                                             \
    "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " name ", namespace: " ns "}\n"      \
    "spec: " spec "\n---\n"

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

/* ------------------------------------------------------------------ 6. lint */

static void test_lint(void **state)
{
    static const char yaml[] =
        POLICY("a", "dup", "ALLOW") "  rules:\n"                                                    /* 1-8 */
                                    "  - from: [{source: {principals: [x], notPrincipals: [x]}}]\n" /* 9 */
                                    "---\n"                                                         /* 10 */
        POLICY("a", "dup", "DENY") "  rules:\n"                                                     /* 11-18 */
                                   "  - to: [{operation: {methods: [GET]}}]\n"                      /* 19 */
                                   "---\n"                                                          /* 20 */
        POLICY("a", "http",
               "ALLOW") "  rules:\n" /* 21-28 */
                        "  - when: [{key: \"request.headers[x]\", values: [v], notValues: [\"*\"]}]\n"
                        "  - from: [{source: {ipBlocks: [\"10.0.0.0/8\"], notIpBlocks: [\"10.1.0.0/16\"]}}]\n"
                        "---\n"                     /* 31 */
        PA("a", "pa", "{mtls: {mode: STRICT}}")     /* 32-36 */
        PA("a", "pa", "{mtls: {mode: PERMISSIVE}}") /* 37-41 */
        PA("b", "pa", "{}")                         /* 42-46 */
        POLICY("b", "dup", "ALLOW");
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    const char *f = "test.yaml";

    load_ok(&set, yaml);
    assert_int_equal(rm_policy_lint(&set, &diags), 2);
    if (diags.n != 6)
        print_diags(&diags);
    assert_int_equal(diags.n, 6);
    assert_int_equal(diags.num_errors, 2);
    expect_diag(&diags.d[0], 1, f, 1, 1, "spec.rules[0].from[0].source",
                "\"x\" is in both principals and notPrincipals: this can never match");
    expect_diag(&diags.d[1], 0, f, 11, 1, "metadata.name",
                "AuthorizationPolicy a/dup is defined twice (first at test.yaml:1)");
    expect_diag(&diags.d[2], 1, f, 11, 1, "spec.rules[0]",
                "uses HTTP-only fields (hosts, methods, paths, request.headers): on a connection that is not HTTP this "
                "DENY rule applies as if they matched, to every connection its other fields match");
    expect_diag(&diags.d[3], 1, f, 21, 1, "spec.rules[0].when[0]",
                "\"v\" is in both values and notValues: this can never match");
    expect_diag(&diags.d[4], 1, f, 21, 1, "spec.rules[0]",
                "uses HTTP-only fields (hosts, methods, paths, request.headers): this ALLOW rule never matches a "
                "connection that is not HTTP");
    expect_diag(&diags.d[5], 0, f, 37, 1, "metadata.name",
                "PeerAuthentication a/pa is defined twice (first at test.yaml:32)");
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);

    /* a clean set: nothing */
    load_ok(&set, y_principals);
    assert_int_equal(rm_policy_lint(&set, &diags), 0);
    assert_int_equal(diags.n, 0);
    rm_policy_set_clear(&set);

    /* HTTP-only fields in a rule whose every operation names its ports: no warning; one operation without: warned */
    static const char scoped[] = POLICY(
        "a", "no-deletes",
        "DENY") "  rules:\n"
                "  - to: [{operation: {methods: [DELETE], ports: [\"8080\"]}}]\n"
                "---\n" POLICY(
                    "a", "readers",
                    "ALLOW") "  rules:\n"
                             "  - to: [{operation: {paths: [/x], ports: [\"8080\"]}}, {operation: {methods: [GET]}}]\n";
    load_ok(&set, scoped);
    assert_int_equal(rm_policy_lint(&set, &diags), 0);
    if (diags.n != 1)
        print_diags(&diags);
    assert_int_equal(diags.n, 1);
    expect_diag(&diags.d[0], 1, f, 11, 1, "spec.rules[0]",
                "uses HTTP-only fields (hosts, methods, paths, request.headers): this ALLOW rule never matches a "
                "connection that is not HTTP");
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

/* ------------------------------------------------------------------ 7. the log line */

static json_t *log_decision(const rm_authz_decision_t *d, const rm_authz_attrs_t *a, const char *workload)
{
    int fds[2];
    char buf[RM_LOG_LINE_MAX + 1];
    rm_log_line_t l;
    json_error_t jerr;

    assert_int_equal(pipe(fds), 0);
    rm_log_configure(RM_LOG_INFO, fds[1]);
    rm_log_begin(&l, RM_LOG_INFO, "authz");
    rm_authz_log_fields(&l, d, a, workload);
    rm_log_end(&l);
    rm_log_configure(RM_LOG_INFO, 1);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_int_equal(buf[n - 1], '\n');
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
    json_t *j = json_loads(buf, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON: %s: %s", jerr.text, buf);
    return j;
}

static void expect_json_str(json_t *j, const char *key, const char *want)
{
    json_t *v = json_object_get(j, key);
    if (want == NULL) {
        if (v != NULL && !json_is_null(v))
            fail_msg("\"%s\" should be absent or null", key);
        return;
    }
    if (!json_is_string(v))
        fail_msg("\"%s\" missing or not a string", key);
    assert_string_equal(json_string_value(v), want);
}

static void expect_json_int(json_t *j, const char *key, json_int_t want)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v))
        fail_msg("\"%s\" missing or not an integer", key);
    assert_int_equal(json_integer_value(v), want);
}

static void test_log_fields(void **state)
{
    static const char yaml[] =
        ALLOW_ALL("a") POLICY("a", "deny-admin", "DENY") "  rules:\n  - to: [{operation: {paths: [/admin]}}]\n";
    rm_policy_set_t set = {0}, none = {0};
    req_buf_t rb;
    rm_authz_decision_t d;
    const rm_authz_attrs_t *a;
    json_t *j;

    load_ok(&set, yaml);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);

    /* HTTP/1.1, denied by a rule, W3C trace context */
    a = make_attrs(&(req_t){.principal = SA_AX,
                            .src_ip = "10.1.2.3",
                            .dst_ip = "192.168.0.7",
                            .port = 8080,
                            .method = "GET",
                            .path = "/admin?x=1",
                            .host = "web.a:8080",
                            .headers = {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
                   &rb);
    rm_authz_evaluate(e, a, 0.5, &d);
    j = log_decision(&d, a, "a/web");
    expect_json_str(j, "event", "authz");
    expect_json_str(j, "decision", "deny");
    expect_json_str(j, "policy", "a/deny-admin");
    expect_json_int(j, "rule", 0);
    expect_json_str(j, "action", "DENY");
    expect_json_str(j, "reason", "denied by policy");
    expect_json_str(j, "explanation", "denied by DENY policy a/deny-admin rule 0");
    expect_json_str(j, "source_principal", SA_AX);
    expect_json_str(j, "source_namespace", "a");
    expect_json_str(j, "source_ip", "10.1.2.3");
    expect_json_str(j, "destination_workload", "a/web");
    expect_json_str(j, "destination_ip", "192.168.0.7");
    expect_json_int(j, "destination_port", 8080);
    expect_json_str(j, "protocol", "http1");
    expect_json_str(j, "method", "GET");
    expect_json_str(j, "path", "/admin?x=1"); /* as given: the target the app receives */
    expect_json_str(j, "host", "web.a:8080");
    expect_json_str(j, "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736");
    json_decref(j);

    /* HTTP/2, allowed, B3 trace id */
    a = make_attrs(&(req_t){.principal = SA_BY,
                            .port = 80,
                            .method = "POST",
                            .path = "/ok",
                            .headers = {"x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"}},
                   &rb);
    rb.http.http2 = 1;
    rm_authz_evaluate(e, a, 0.5, &d);
    j = log_decision(&d, a, NULL);
    expect_json_str(j, "decision", "allow");
    expect_json_str(j, "policy", "a/allow-all");
    expect_json_str(j, "reason", "allowed by policy");
    expect_json_str(j, "source_namespace", "b");
    expect_json_str(j, "protocol", "http2");
    expect_json_str(j, "trace_id", "80f198ee56343ba864fe8b2a57d3eff7");
    expect_json_str(j, "destination_workload", NULL);
    json_decref(j);
    rm_authz_engine_free(e);

    /* TCP, plaintext, default-deny: no policy, no principal, no HTTP fields */
    e = compile_set(&none, RM_AUTHZ_DENY);
    a = make_attrs(&(req_t){.src_ip = "2001:db8::5", .port = 5432}, &rb);
    rm_authz_evaluate(e, a, 0.5, &d);
    j = log_decision(&d, a, "a/db");
    expect_json_str(j, "decision", "deny");
    assert_true(json_is_null(json_object_get(j, "policy")));
    assert_null(json_object_get(j, "rule"));
    expect_json_str(j, "reason", "default-deny");
    assert_true(json_is_null(json_object_get(j, "source_principal")));
    assert_null(json_object_get(j, "source_namespace"));
    expect_json_str(j, "source_ip", "2001:db8::5");
    expect_json_int(j, "destination_port", 5432);
    expect_json_str(j, "protocol", "tcp");
    assert_null(json_object_get(j, "method"));
    assert_null(json_object_get(j, "trace_id"));
    json_decref(j);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
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
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_eval_repeated_header_too_long),
        cmocka_unit_test(test_eval_audit),
        cmocka_unit_test(test_eval_dry_run),
        cmocka_unit_test(test_eval_log_allowed),
        cmocka_unit_test(test_engine_refuses_invalid_model),
        cmocka_unit_test(test_engine_compiles_what_loader_accepts),
        cmocka_unit_test(test_eval_path_as_given),
        cmocka_unit_test(test_index_matches_reference),
        cmocka_unit_test(test_index_many_rules),
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_peer_authn_resolve),
        cmocka_unit_test(test_lint),
        cmocka_unit_test(test_log_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
