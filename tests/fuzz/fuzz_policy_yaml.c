/* rm_policy_load_yaml() and everything that runs on what it loads: rm_policy_lint(), an engine compiled from each
 * loaded policy alone and one from all of them, rm_authz_evaluate() on fixed TCP and HTTP requests, the decision's
 * words and log fields, selection and rm_peer_authn_resolve().
 *
 * Checked on every input:
 *  - the return value is the number of errors added to the findings; each finding names the file, a line of the
 *    text (or the one after it, where libyaml puts the end of the stream), a column and a message;
 *  - a loaded policy keeps the language's rules (names, match forms, ports, paths), and loading twice gives the
 *    same result;
 *  - lint reports an error exactly when two policies of one kind share namespace/name;
 *  - every loaded policy compiles (the engine refuses only what the loader refuses), with one compiled rule per
 *    rule and HTTP parsing asked for exactly when a rule has an HTTP-only field;
 *  - a decision is consistent in itself (reason, policy, rule, action, log flag), and the engine of all policies
 *    decides what the engines of single policies say: the first matching DENY rule in namespace/name order, else
 *    the first matching ALLOW rule when any ALLOW policy applies, dry-run and AUDIT policies likewise. This runs the
 *    principal index on fuzzed policies against the plain rule-by-rule evaluation. */
#include "fuzz.h"
#include "ringmesh/log.h"
#include "ringmesh/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_NAME           "fuzz.yaml"
#define MAX_ENGINE_POLICIES 64

/* ------------------------------------------------------------------ the requests */

typedef struct st_fixed_req_t {
    const char *principal, *src_ip, *dst_ip, *sni;
    uint16_t port;
    const char *method, *path, *host;
    const char *headers[4]; /* name, value, name, value */
    uint8_t http2;
} fixed_req_t;

static const fixed_req_t fixed_reqs[] = {
    {.src_ip = "10.0.0.1", .port = 80},
    {.principal = "spiffe://cluster.local/ns/default/sa/web",
     .src_ip = "192.168.1.10",
     .dst_ip = "10.96.0.1",
     .port = 8080,
     .sni = "web.default.svc"},
    {.principal = "spiffe://cluster.local/ns/foo/sa/bar",
     .src_ip = "10.1.2.3",
     .port = 8080,
     .method = "GET",
     .path = "/admin",
     .host = "web.default.svc:8080",
     .headers = {"x-user", "alice", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
    {.principal = "spiffe://cluster.local/ns/a/sa/x",
     .src_ip = "2001:db8::1",
     .port = 443,
     .method = "POST",
     .path = "/api/../admin?x=1",
     .host = "EXAMPLE.com",
     .headers = {"x-user", "bob"}},
    {.principal = "cluster.local/ns/default/sa/api",
     .port = 9090,
     .method = "PUT",
     .path = "/%2e%2e/api\\v1/x.png",
     .headers = {"x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"},
     .http2 = 1},
};
#define NUM_REQS (sizeof(fixed_reqs) / sizeof(fixed_reqs[0]))

typedef struct st_req_buf_t {
    rm_authz_attrs_t a;
    rm_http_request_t http;
    rm_http_header_t hdrs[2];
} req_buf_t;

static void make_attrs(const fixed_req_t *r, req_buf_t *b)
{
    memset(b, 0, sizeof(*b));
    b->a.principal = r->principal;
    if (r->src_ip != NULL) {
        RM_FUZZ_CHECK(rm_authz_ip_parse(r->src_ip, b->a.source_ip) == 0);
        b->a.have_source_ip = 1;
    }
    if (r->dst_ip != NULL) {
        RM_FUZZ_CHECK(rm_authz_ip_parse(r->dst_ip, b->a.destination_ip) == 0);
        b->a.have_destination_ip = 1;
    }
    b->a.destination_port = r->port;
    b->a.sni = r->sni;
    if (r->method == NULL)
        return;
    b->http.method = r->method;
    b->http.method_len = strlen(r->method);
    b->http.path = r->path;
    b->http.path_len = strlen(r->path);
    b->http.host = r->host;
    b->http.host_len = r->host != NULL ? strlen(r->host) : 0;
    for (size_t i = 0; i < 2 && r->headers[2 * i] != NULL; i++) {
        b->hdrs[i] = (rm_http_header_t){r->headers[2 * i], strlen(r->headers[2 * i]), r->headers[2 * i + 1],
                                        strlen(r->headers[2 * i + 1])};
        b->http.num_headers++;
    }
    b->http.headers = b->hdrs;
    b->http.http2 = r->http2;
    b->a.http = &b->http;
}

/* ------------------------------------------------------------------ the loaded model */

/* The number of lines of the input as libyaml counts them (CR LF, CR, LF, NEL, LS and PS end a line). */
static unsigned count_lines(const uint8_t *p, size_t n)
{
    unsigned lines = 1;

    for (size_t i = 0; i < n;) {
        size_t b = 0;
        if (p[i] == '\r')
            b = i + 1 < n && p[i + 1] == '\n' ? 2 : 1;
        else if (p[i] == '\n')
            b = 1;
        else if (i + 1 < n && p[i] == 0xc2 && p[i + 1] == 0x85)
            b = 2;
        else if (i + 2 < n && p[i] == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
            b = 3;
        lines += b != 0;
        i += b != 0 ? b : 1;
    }
    return lines;
}

static int dns_name(const char *s, int dots)
{
    size_t n = strlen(s);
    if (n == 0 || s[0] == '-' || s[n - 1] == '-' || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || (dots && s[i] == '.')))
            return 0;
    return 1;
}

/* "x", "x*", "*x" or "*" */
static int match_form(const char *v)
{
    size_t n = strlen(v);
    if (n == 0)
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (v[i] == '*')
            return 0;
    return n == 1 || !(v[0] == '*' && v[n - 1] == '*');
}

static int port_text(const char *v)
{
    char *end;
    unsigned long p = strtoul(v, &end, 10);
    return v[0] >= '0' && v[0] <= '9' && *end == '\0' && p >= 1 && p <= 65535;
}

/* an Istio path template: from '/', {*} and {**} whole segments, {**} the last operator, no other '*', '{', '}' */
static int path_template(const char *v)
{
    int after_any = 0;
    if (v[0] != '/')
        return 0;
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '{') {
            size_t len = strncmp(p, "{**}", 4) == 0 ? 4 : strncmp(p, "{*}", 3) == 0 ? 3 : 0;
            if (len == 0 || p[-1] != '/' || (p[len] != '/' && p[len] != '\0') || after_any)
                return 0;
            after_any = len == 4;
            p += len - 1;
        } else if (*p == '}' || *p == '*') {
            return 0;
        }
    }
    return 1;
}

enum { K_MATCH, K_PORT, K_PATH, K_IP, K_SERVICE_ACCOUNT };

static void check_list(const rm_strlist_t *l, int kind)
{
    RM_FUZZ_CHECK(l->n == 0 || l->v != NULL);
    for (size_t i = 0; i < l->n; i++) {
        const char *v = l->v[i];
        RM_FUZZ_CHECK(v != NULL && v[0] != '\0');
        switch (kind) {
        case K_PORT:
            RM_FUZZ_CHECK(port_text(v));
            break;
        case K_PATH:
            if (strpbrk(v, "{}") != NULL)
                RM_FUZZ_CHECK(path_template(v));
            else
                RM_FUZZ_CHECK(match_form(v) && (v[0] == '/' || v[0] == '*'));
            break;
        case K_SERVICE_ACCOUNT: /* "NS/SA" or "SA", exactly */
            RM_FUZZ_CHECK(strchr(v, '*') == NULL && (strchr(v, '/') == NULL || strchr(v, '/') == strrchr(v, '/')));
            break;
        case K_MATCH:
            RM_FUZZ_CHECK(match_form(v));
            break;
        default:
            break; /* CIDR blocks: the compile checks them */
        }
    }
}

/* 1 when the rule has a field only HTTP has */
static int check_rule(const rm_authz_rule_t *r)
{
    int http = 0;
    RM_FUZZ_CHECK(r->num_from == 0 || r->from != NULL);
    RM_FUZZ_CHECK(r->num_to == 0 || r->to != NULL);
    RM_FUZZ_CHECK(r->num_when == 0 || r->when != NULL);
    for (size_t i = 0; i < r->num_from; i++) {
        const rm_authz_source_t *s = &r->from[i];
        check_list(&s->principals, K_MATCH);
        check_list(&s->not_principals, K_MATCH);
        check_list(&s->namespaces, K_MATCH);
        check_list(&s->not_namespaces, K_MATCH);
        check_list(&s->ip_blocks, K_IP);
        check_list(&s->not_ip_blocks, K_IP);
        check_list(&s->service_accounts, K_SERVICE_ACCOUNT);
        check_list(&s->not_service_accounts, K_SERVICE_ACCOUNT);
        check_list(&s->trust_domains, K_MATCH);
        check_list(&s->not_trust_domains, K_MATCH);
        check_list(&s->remote_ip_blocks, K_IP);
        check_list(&s->not_remote_ip_blocks, K_IP);
        /* serviceAccounts never with principals or namespaces (Istio's rule) */
        RM_FUZZ_CHECK(s->service_accounts.n + s->not_service_accounts.n == 0 ||
                      s->principals.n + s->not_principals.n + s->namespaces.n + s->not_namespaces.n == 0);
        /* a source sets at least one field */
        RM_FUZZ_CHECK(s->principals.n + s->not_principals.n + s->namespaces.n + s->not_namespaces.n + s->ip_blocks.n +
                          s->not_ip_blocks.n + s->service_accounts.n + s->not_service_accounts.n + s->trust_domains.n +
                          s->not_trust_domains.n + s->remote_ip_blocks.n + s->not_remote_ip_blocks.n >
                      0);
    }
    for (size_t i = 0; i < r->num_to; i++) {
        const rm_authz_operation_t *o = &r->to[i];
        check_list(&o->hosts, K_MATCH);
        check_list(&o->not_hosts, K_MATCH);
        check_list(&o->ports, K_PORT);
        check_list(&o->not_ports, K_PORT);
        check_list(&o->methods, K_MATCH);
        check_list(&o->not_methods, K_MATCH);
        check_list(&o->paths, K_PATH);
        check_list(&o->not_paths, K_PATH);
        size_t h = o->hosts.n + o->not_hosts.n + o->methods.n + o->not_methods.n + o->paths.n + o->not_paths.n;
        RM_FUZZ_CHECK(h + o->ports.n + o->not_ports.n > 0);
        http |= h > 0;
    }
    for (size_t i = 0; i < r->num_when; i++) {
        const rm_authz_condition_t *c = &r->when[i];
        RM_FUZZ_CHECK(c->key != NULL);
        RM_FUZZ_CHECK(c->values.n + c->not_values.n > 0);
        int kind = strcmp(c->key, "destination.port") == 0                                     ? K_PORT
                   : strcmp(c->key, "source.ip") == 0 || strcmp(c->key, "destination.ip") == 0 ? K_IP
                                                                                               : K_MATCH;
        check_list(&c->values, kind);
        check_list(&c->not_values, kind);
        http |= strncmp(c->key, "request.headers[", 16) == 0;
    }
    return http;
}

static void check_labels(int has_selector, const rm_label_t *l, size_t n)
{
    RM_FUZZ_CHECK(n == 0 || (has_selector && l != NULL));
    for (size_t i = 0; i < n; i++)
        RM_FUZZ_CHECK(l[i].key != NULL && l[i].value != NULL);
}

static void check_set(const rm_policy_set_t *set, unsigned lines)
{
    RM_FUZZ_CHECK(set->num_policies == 0 || set->policies != NULL);
    for (size_t i = 0; i < set->num_policies; i++) {
        const rm_authz_policy_t *p = &set->policies[i];
        RM_FUZZ_CHECK(p->namespace_ != NULL && dns_name(p->namespace_, 0) && strlen(p->namespace_) <= 63);
        RM_FUZZ_CHECK(p->name != NULL && dns_name(p->name, 1) && strlen(p->name) <= 253);
        RM_FUZZ_CHECK(p->action == RM_AUTHZ_ALLOW || p->action == RM_AUTHZ_DENY || p->action == RM_AUTHZ_AUDIT);
        RM_FUZZ_CHECK(p->dry_run <= 1 && p->log_allowed <= 1);
        RM_FUZZ_CHECK(p->file != NULL && strcmp(p->file, FILE_NAME) == 0 && p->line >= 1 && p->line <= lines);
        RM_FUZZ_CHECK(p->num_rules == 0 || p->rules != NULL);
        check_labels(p->has_selector, p->match_labels, p->num_match_labels);
        for (size_t r = 0; r < p->num_rules; r++)
            check_rule(&p->rules[r]);
    }
    RM_FUZZ_CHECK(set->num_peer_authns == 0 || set->peer_authns != NULL);
    for (size_t i = 0; i < set->num_peer_authns; i++) {
        const rm_peer_authn_t *p = &set->peer_authns[i];
        RM_FUZZ_CHECK(p->namespace_ != NULL && dns_name(p->namespace_, 0));
        RM_FUZZ_CHECK(p->name != NULL && dns_name(p->name, 1));
        RM_FUZZ_CHECK(p->mode <= RM_PEER_MTLS_DISABLE);
        RM_FUZZ_CHECK(p->file != NULL && strcmp(p->file, FILE_NAME) == 0 && p->line >= 1 && p->line <= lines);
        check_labels(p->has_selector, p->match_labels, p->num_match_labels);
        RM_FUZZ_CHECK(p->num_port_modes == 0 || (p->port_modes != NULL && p->num_match_labels > 0));
        for (size_t k = 0; k < p->num_port_modes; k++)
            RM_FUZZ_CHECK(p->port_modes[k].port >= 1 && p->port_modes[k].mode <= RM_PEER_MTLS_DISABLE);
    }
}

static void check_diags(const rm_policy_diags_t *diags, size_t from, unsigned lines, int loader)
{
    char small[24], big[2048];
    for (size_t i = from; i < diags->n; i++) {
        const rm_policy_diag_t *d = &diags->d[i];
        RM_FUZZ_CHECK(d->message != NULL && d->message[0] != '\0' && d->path != NULL);
        RM_FUZZ_CHECK(d->warning == 0 || d->warning == 1);
        if (loader) {
            RM_FUZZ_CHECK(!d->warning);
            RM_FUZZ_CHECK(d->file != NULL && strcmp(d->file, FILE_NAME) == 0);
            RM_FUZZ_CHECK(d->line >= 1 && d->line <= lines + 1 && d->column >= 1);
        }
        memset(small, 'x', sizeof(small));
        rm_policy_diag_format(d, small, sizeof(small));
        RM_FUZZ_CHECK(memchr(small, '\0', sizeof(small)) != NULL);
        rm_policy_diag_format(d, big, sizeof(big));
        RM_FUZZ_CHECK(strncmp(big, FILE_NAME ":", sizeof(FILE_NAME)) == 0 || !loader);
    }
}

static int cmp_policy_ptr(const void *a, const void *b)
{
    const rm_authz_policy_t *x = *(const rm_authz_policy_t *const *)a, *y = *(const rm_authz_policy_t *const *)b;
    int c = strcmp(x->namespace_, y->namespace_);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static size_t count_duplicates(const rm_policy_set_t *set)
{
    size_t dups = 0;
    for (size_t i = 0; i < set->num_policies; i++)
        for (size_t k = 0; k < i; k++)
            dups += strcmp(set->policies[i].namespace_, set->policies[k].namespace_) == 0 &&
                    strcmp(set->policies[i].name, set->policies[k].name) == 0;
    for (size_t i = 0; i < set->num_peer_authns; i++)
        for (size_t k = 0; k < i; k++)
            dups += strcmp(set->peer_authns[i].namespace_, set->peer_authns[k].namespace_) == 0 &&
                    strcmp(set->peer_authns[i].name, set->peer_authns[k].name) == 0;
    return dups;
}

/* ------------------------------------------------------------------ decisions */

static int log_fd = -1;

/* What holds for any decision of any engine. */
static void check_decision(const rm_authz_decision_t *d, const rm_authz_attrs_t *a)
{
    char why[48], *big = malloc(4096);
    RM_FUZZ_CHECK(big != NULL);
    RM_FUZZ_CHECK(d->allow <= 1 && d->dry_run_differs <= 1 && d->log <= 1);
    RM_FUZZ_CHECK((d->reason == RM_AUTHZ_REASON_POLICY) == (d->policy != NULL));
    if (d->policy != NULL) {
        RM_FUZZ_CHECK(d->rule >= 0 && (size_t)d->rule < d->policy->num_rules);
        RM_FUZZ_CHECK(!d->policy->dry_run);
        RM_FUZZ_CHECK(d->policy->action == (d->allow ? RM_AUTHZ_ALLOW : RM_AUTHZ_DENY));
    } else {
        RM_FUZZ_CHECK(d->rule == -1);
        RM_FUZZ_CHECK(d->allow == (d->reason == RM_AUTHZ_REASON_DEFAULT_ALLOW));
    }
    if (d->audit_policy != NULL)
        RM_FUZZ_CHECK(d->audit_policy->action == RM_AUTHZ_AUDIT && d->audit_rule >= 0 &&
                      (size_t)d->audit_rule < d->audit_policy->num_rules);
    else
        RM_FUZZ_CHECK(d->audit_rule == -1);
    if (d->dry_run_differs) {
        RM_FUZZ_CHECK(d->dry_run_allow == !d->allow);
        RM_FUZZ_CHECK(d->dry_run_policy != NULL && d->dry_run_policy->dry_run);
    }
    if (!d->allow || d->dry_run_differs || d->audit_policy != NULL)
        RM_FUZZ_CHECK(d->log);
    const char *w = rm_authz_decision_word(d);
    RM_FUZZ_CHECK(strcmp(w, "allow") == 0 || strcmp(w, "deny") == 0 || strcmp(w, "would-deny") == 0 ||
                  strcmp(w, "would-allow") == 0 || strcmp(w, "audit") == 0);
    memset(why, 'x', sizeof(why));
    rm_authz_decision_explain(d, why, sizeof(why));
    RM_FUZZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL);
    rm_authz_decision_explain(d, big, 4096);
    RM_FUZZ_CHECK(big[0] != '\0');
    free(big);
    rm_log_line_t *l = malloc(sizeof(*l));
    RM_FUZZ_CHECK(l != NULL);
    rm_log_begin(l, RM_LOG_INFO, "authz");
    rm_authz_log_fields(l, d, a, "default/web");
    rm_log_end(l);
    free(l);
}

/* What one policy's own engine says about a request. rule -2: matched, rule unknown. */
typedef struct st_single_t {
    int matched, rule;
} single_t;

static single_t single_decision(const rm_authz_policy_t *p, const rm_authz_decision_t *d)
{
    single_t s = {0, -1};
    if (p->action == RM_AUTHZ_AUDIT) {
        RM_FUZZ_CHECK(d->reason == RM_AUTHZ_REASON_DEFAULT_ALLOW && !d->dry_run_differs);
        RM_FUZZ_CHECK(d->audit_policy == NULL || d->audit_policy == p);
        if (d->audit_policy != NULL)
            s.matched = 1, s.rule = d->audit_rule;
    } else if (!p->dry_run) {
        RM_FUZZ_CHECK(!d->dry_run_differs);
        if (d->reason == RM_AUTHZ_REASON_POLICY) {
            RM_FUZZ_CHECK(d->policy == p);
            s.matched = 1, s.rule = d->rule;
        } else {
            RM_FUZZ_CHECK(d->reason == (p->action == RM_AUTHZ_DENY ? RM_AUTHZ_REASON_DEFAULT_ALLOW
                                                                   : RM_AUTHZ_REASON_NO_ALLOW_MATCH));
        }
    } else {
        /* dry-run: enforced, nothing applies (defaultAction ALLOW); the shadow decision tells */
        RM_FUZZ_CHECK(d->reason == RM_AUTHZ_REASON_DEFAULT_ALLOW && d->allow);
        if (p->action == RM_AUTHZ_DENY) {
            if (d->dry_run_differs)
                s.matched = 1, s.rule = d->dry_run_rule;
        } else if (!d->dry_run_differs) {
            s.matched = 1, s.rule = -2;
        }
    }
    RM_FUZZ_CHECK(!s.matched || s.rule == -2 || (s.rule >= 0 && (size_t)s.rule < p->num_rules));
    return s;
}

typedef struct st_expect_t {
    int allow;
    rm_authz_reason_t reason;
    const rm_authz_policy_t *policy;
    int rule;
} expect_t;

/* The decision over all policies from the single-policy ones, as policy.h states it. */
static void expect_decision(const rm_authz_policy_t *const *sorted, const single_t *m, size_t n, int with_dry,
                            expect_t *x)
{
    memset(x, 0, sizeof(*x));
    x->rule = -1;
    for (size_t i = 0; i < n; i++)
        if (sorted[i]->action == RM_AUTHZ_DENY && (with_dry || !sorted[i]->dry_run) && m[i].matched) {
            *x = (expect_t){0, RM_AUTHZ_REASON_POLICY, sorted[i], m[i].rule};
            return;
        }
    size_t applying = 0;
    for (size_t i = 0; i < n; i++)
        applying += sorted[i]->action == RM_AUTHZ_ALLOW && (with_dry || !sorted[i]->dry_run);
    if (applying == 0) {
        x->allow = 1;
        x->reason = RM_AUTHZ_REASON_DEFAULT_ALLOW;
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (sorted[i]->action == RM_AUTHZ_ALLOW && (with_dry || !sorted[i]->dry_run) && m[i].matched) {
            *x = (expect_t){1, RM_AUTHZ_REASON_POLICY, sorted[i], m[i].rule};
            return;
        }
    x->reason = RM_AUTHZ_REASON_NO_ALLOW_MATCH;
}

static void check_engines(const rm_policy_set_t *set, int unique)
{
    const rm_authz_engine_opts_t opts = {.default_action = RM_AUTHZ_ALLOW};
    size_t n = set->num_policies < MAX_ENGINE_POLICIES ? set->num_policies : MAX_ENGINE_POLICIES;
    const rm_authz_policy_t **sorted = malloc((n + 1) * sizeof(*sorted));
    rm_authz_engine_t **single = calloc(n + 1, sizeof(*single)), *all = NULL;
    single_t *m = calloc(n + 1, sizeof(*m));
    req_buf_t rb;
    rm_authz_decision_t d;
    char err[256];

    RM_FUZZ_CHECK(sorted != NULL && single != NULL && m != NULL);
    for (size_t i = 0; i < n; i++)
        sorted[i] = &set->policies[i];
    qsort(sorted, n, sizeof(*sorted), cmp_policy_ptr);
    for (size_t i = 0; i < n; i++) {
        const rm_authz_policy_t *p = sorted[i];
        int http = 0;
        for (size_t r = 0; r < p->num_rules; r++)
            http |= check_rule(&p->rules[r]);
        err[0] = '\0';
        int ret = rm_authz_engine_new(&single[i], &sorted[i], 1, &opts, err, sizeof(err));
        if (ret != 0)
            fprintf(stderr, "%s/%s does not compile: %d %s\n", p->namespace_, p->name, ret, err);
        RM_FUZZ_CHECK(ret == 0);
        RM_FUZZ_CHECK(rm_authz_engine_num_rules(single[i]) == p->num_rules);
        RM_FUZZ_CHECK(rm_authz_engine_needs_http(single[i]) == http);
    }
    /* the given order does not matter: hand them over reversed */
    const rm_authz_policy_t **rev = malloc((n + 1) * sizeof(*rev));
    RM_FUZZ_CHECK(rev != NULL);
    for (size_t i = 0; i < n; i++)
        rev[i] = sorted[n - 1 - i];
    RM_FUZZ_CHECK(rm_authz_engine_new(&all, rev, n, &opts, NULL, 0) == 0);
    free(rev);

    for (size_t q = 0; q < NUM_REQS; q++) {
        make_attrs(&fixed_reqs[q], &rb);
        for (size_t i = 0; i < n; i++) {
            rm_authz_evaluate(single[i], &rb.a, 0.5, &d);
            check_decision(&d, &rb.a);
            m[i] = single_decision(sorted[i], &d);
        }
        rm_authz_evaluate(all, &rb.a, 0.5, &d);
        check_decision(&d, &rb.a);
        expect_t want, shadow;
        expect_decision(sorted, m, n, 0, &want);
        expect_decision(sorted, m, n, 1, &shadow);
        RM_FUZZ_CHECK(d.allow == want.allow && d.reason == want.reason);
        RM_FUZZ_CHECK(d.dry_run_differs == (shadow.allow != want.allow));
        if (d.dry_run_differs)
            RM_FUZZ_CHECK(d.dry_run_reason == shadow.reason);
        const rm_authz_policy_t *audit = NULL;
        int audit_rule = -1;
        for (size_t i = 0; i < n && audit == NULL; i++)
            if (sorted[i]->action == RM_AUTHZ_AUDIT && m[i].matched)
                audit = sorted[i], audit_rule = m[i].rule;
        RM_FUZZ_CHECK((d.audit_policy != NULL) == (audit != NULL));
        if (unique) {
            /* which policy and rule: determined when no two policies share namespace/name */
            RM_FUZZ_CHECK(d.policy == want.policy && d.rule == want.rule);
            if (d.dry_run_differs && shadow.rule != -2)
                RM_FUZZ_CHECK(d.dry_run_rule == shadow.rule);
            RM_FUZZ_CHECK(d.audit_policy == audit && d.audit_rule == audit_rule);
        }
    }
    for (size_t i = 0; i < n; i++)
        rm_authz_engine_free(single[i]);
    rm_authz_engine_free(all);
    free(single);
    free(sorted);
    free(m);
}

static void check_selection(const rm_policy_set_t *set)
{
    static const rm_label_t labels[] = {{"app", "web"}, {"version", "v1"}};
    static const rm_workload_t workloads[] = {{"default", labels, 2}, {"istio-system", labels, 1}, {"a", NULL, 0}};
    rm_peer_port_mode_t ports[4];
    size_t np;

    for (size_t w = 0; w < sizeof(workloads) / sizeof(workloads[0]); w++) {
        for (size_t i = 0; i < set->num_policies; i++) {
            int s = rm_authz_policy_selects(&set->policies[i], "istio-system", &workloads[w]);
            RM_FUZZ_CHECK(s == 0 || s == 1);
            /* a policy of the workload's own namespace without selector always selects it */
            if (!set->policies[i].has_selector && strcmp(set->policies[i].namespace_, workloads[w].namespace_) == 0)
                RM_FUZZ_CHECK(s == 1);
        }
        np = 99;
        rm_peer_mtls_mode_t mode = rm_peer_authn_resolve(set, "istio-system", &workloads[w], ports, 4, &np);
        RM_FUZZ_CHECK(mode <= RM_PEER_MTLS_DISABLE && np <= 4);
        for (size_t k = 0; k < np; k++)
            RM_FUZZ_CHECK(ports[k].mode != RM_PEER_MTLS_UNSET && ports[k].mode <= RM_PEER_MTLS_DISABLE);
        if (set->num_peer_authns == 0)
            RM_FUZZ_CHECK(mode == RM_PEER_MTLS_UNSET && np == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *text = rm_fuzz_memdup(data, size); /* exactly `size` bytes: an over-read is caught */
    rm_policy_set_t set = {0}, again = {0};
    rm_policy_diags_t diags = {0}, diags2 = {0};
    unsigned lines = count_lines(data, size);

    if (log_fd < 0) {
        log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        RM_FUZZ_CHECK(log_fd >= 0);
        rm_log_configure(RM_LOG_INFO, log_fd);
    }

    int ret = rm_policy_load_yaml(&set, (const char *)text, size, FILE_NAME, 0, &diags);
    RM_FUZZ_CHECK(ret >= 0);
    RM_FUZZ_CHECK((size_t)ret == diags.num_errors && diags.n == diags.num_errors);
    check_diags(&diags, 0, lines, 1);
    check_set(&set, lines);

    /* the same text again, strict about kinds: the same policies, at least as many errors */
    int ret2 = rm_policy_load_yaml(&again, (const char *)text, size, FILE_NAME, 1, &diags2);
    RM_FUZZ_CHECK(ret2 >= ret && (size_t)ret2 == diags2.num_errors);
    RM_FUZZ_CHECK(again.num_policies == set.num_policies && again.num_peer_authns == set.num_peer_authns);
    for (size_t i = 0; i < set.num_policies; i++)
        RM_FUZZ_CHECK(strcmp(again.policies[i].name, set.policies[i].name) == 0 &&
                      again.policies[i].num_rules == set.policies[i].num_rules &&
                      again.policies[i].line == set.policies[i].line);
    rm_policy_set_clear(&again);
    rm_policy_diags_clear(&diags2);

    /* lint: an error exactly when a namespace/name is defined twice */
    size_t before = diags.n, dups = count_duplicates(&set);
    int lint = rm_policy_lint(&set, &diags);
    RM_FUZZ_CHECK(lint >= 0 && (size_t)lint == diags.num_errors - (size_t)ret);
    RM_FUZZ_CHECK((size_t)lint == dups);
    check_diags(&diags, before, lines, 0);

    check_engines(&set, dups == 0);
    check_selection(&set);

    rm_policy_diags_clear(&diags);
    RM_FUZZ_CHECK(diags.n == 0 && diags.d == NULL);
    rm_policy_set_clear(&set);
    RM_FUZZ_CHECK(set.num_policies == 0 && set.policies == NULL);
    free(text);
    return 0;
}
