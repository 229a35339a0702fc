/* Fixtures shared by the policy engine's tests (test_policy_*.c): policy texts written with a few macros, loading a
 * text that must be clean, compiling a set, finding a policy, building a request's attributes from a table row, and
 * checking a loader finding. Every helper fails the running cmocka test on what it does not expect. */
#ifndef RM_TEST_POLICY_FIXTURES_H
#define RM_TEST_POLICY_FIXTURES_H

#include "ringmesh/policy.h"

#include <stdint.h>

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

/* a PeerAuthentication document, `spec` in flow style */
#define PA(ns, name, spec)                                                                                             \
    "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " name ", namespace: " ns "}\n"      \
    "spec: " spec "\n---\n"

/* an ALLOW policy a/p whose rule 0 names a principal without its scheme, rule 1 SA_BY */
#define Y_PRINCIPALS                                                                                                   \
    POLICY("a", "p", "ALLOW")                                                                                          \
    "  rules:\n"                                                                                                       \
    "  - from: [{source: {principals: [\"cluster.local/ns/a/sa/x\"]}}]\n"                                              \
    "  - from: [{source: {principals: [\"" SA_BY "\"]}}]\n"

/* the reasons a decision gives, short enough for a table */
#define POL     RM_AUTHZ_REASON_POLICY
#define NOMATCH RM_AUTHZ_REASON_NO_ALLOW_MATCH
#define DDENY   RM_AUTHZ_REASON_DEFAULT_DENY
#define DALLOW  RM_AUTHZ_REASON_DEFAULT_ALLOW

/* A request as the tables write it. `method` set: an HTTP request; else TCP. Port 0 means 8080. */
typedef struct st_req_t {
    const char *principal, *src_ip, *dst_ip, *sni;
    uint16_t port;
    const char *method, *path, *host;
    const char *headers[6]; /* name, value, name, value, ... */
} req_t;

/** Storage for the attributes make_attrs() builds; they point into it and into the req_t. */
typedef struct st_req_buf_t {
    rm_authz_attrs_t a;
    rm_http_request_t http;
    rm_http_header_t hdrs[3];
} req_buf_t;

/** Prints every finding as the loader formats it (cmocka's print_message). */
void print_diags(const rm_policy_diags_t *diags);

/** Loads a text (file name "test.yaml") into `set`; fails the test, printing the findings, unless it loads clean. */
void load_ok(rm_policy_set_t *set, const char *yaml);

/** Compiles every policy of `set` (at most 64) into an engine the caller frees; fails the test on refusal. */
rm_authz_engine_t *compile_set(const rm_policy_set_t *set, rm_authz_action_t default_action);

/** The policy `ns`/`name` of `set`; fails the test when there is none. */
const rm_authz_policy_t *find_policy(const rm_policy_set_t *set, const char *ns, const char *name);

/** Fills `b` from the row `r` and returns its attributes (valid while `b` and `r` are). */
const rm_authz_attrs_t *make_attrs(const req_t *r, req_buf_t *b);

/** Checks one finding: warning or error, file, line, column, field path and message, all exactly. */
void expect_diag(const rm_policy_diag_t *d, int warning, const char *file, unsigned line, unsigned column,
                 const char *path, const char *message);

#endif
