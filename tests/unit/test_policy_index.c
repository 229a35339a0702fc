/* The engine's principal index (lib/policy_engine.c) against a plain reference evaluator on random policy sets and
 * requests, and on sets with many rules. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_matches_reference),
        cmocka_unit_test(test_index_many_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
