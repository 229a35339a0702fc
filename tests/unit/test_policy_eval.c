/* Istio's AuthorizationPolicy semantics in the engine (lib/policy_engine.c), case by case from a table: sources,
 * operations, conditions, DENY over ALLOW, AUDIT, dry runs, what the engine refuses, and the path decided on. */
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
static const char y_principals[] = Y_PRINCIPALS;
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
    char *bad_key[] = {"request.auth.claims[]"}, *vals[] = {"x"}, *bad_port[] = {"http"}, *mid[] = {"a*b"};
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
    assert_string_equal(err, "a/p rules[0].when[0]: unsupported key \"request.auth.claims[]\"");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_eval_repeated_header_too_long),
        cmocka_unit_test(test_eval_audit),
        cmocka_unit_test(test_eval_dry_run),
        cmocka_unit_test(test_eval_log_allowed),
        cmocka_unit_test(test_engine_refuses_invalid_model),
        cmocka_unit_test(test_engine_compiles_what_loader_accepts),
        cmocka_unit_test(test_eval_path_as_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
