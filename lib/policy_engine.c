/* The authorization engine: policies compiled to flat arrays, decided without allocation.
 *
 * A rule compiles to groups that must all match; a group to clauses of which one must match; a clause to
 * conditions that must all match. `from` is one group (a clause per source), `to` another (a clause per
 * operation), each `when` a group of one clause. A condition tests one attribute against a list of string
 * matchers, CIDR blocks or ports, possibly negated.
 *
 * Rules are kept in decision order (DENY rules, ALLOW rules, AUDIT rules; policies by namespace/name, rules in
 * their order). So that a workload with a thousand rules still decides in well under a microsecond
 * (bench/policy_bench), each list is indexed: a rule is filed under the values of one attribute it cannot match
 * without (principal, namespace, path, source IP or a request header; see "The index" below). A decision looks at
 * the rules that are not indexed and at those filed under the request's values, each candidate list only up to the
 * best match so far, so the first match in decision order decides as if every rule had been tried. */
#include "ringmesh/policy.h"
#include "ringmesh/config.h"
#include "ringmesh/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADER_JOIN_MAX 8192 /* bytes of a repeated header's values joined with "," (docs/authorization.md) */

typedef enum {
    ATTR_PRINCIPAL = 0,
    ATTR_NAMESPACE,
    ATTR_SOURCE_IP,
    ATTR_DEST_IP,
    ATTR_DEST_PORT,
    ATTR_SNI,
    ATTR_HOST,
    ATTR_METHOD,
    ATTR_PATH,
    ATTR_HEADER,
} attr_t;

typedef enum { SM_EXACT = 0, SM_PREFIX, SM_SUFFIX, SM_ANY } smatch_kind_t;

typedef struct st_smatch_t {
    const char *s;
    uint32_t len;
    uint8_t kind;
} smatch_t;

typedef struct st_cidr_t {
    uint8_t addr[16];
    uint8_t prefix; /* of the 128 bits */
    uint8_t v4;     /* written as an IPv4 block: matches IPv4 peers only (and an IPv6 block IPv6 peers only) */
} cidr_t;

typedef struct st_cond_t {
    uint8_t attr, negate, http_only;
    const char *header; /* lower case, ATTR_HEADER only */
    size_t header_len;
    uint32_t first, count; /* into smatches, cidrs or ports per attr */
} cond_t;

typedef struct st_span_t {
    uint32_t first, count;
} span_t;

typedef struct st_crule_t {
    span_t groups;
    const rm_authz_policy_t *policy;
    int index; /* in the policy */
    uint8_t action, dry_run;
} crule_t;

/* The index. A rule is found by one key attribute: one that it cannot match without, because every clause of one of
 * its groups has a positive condition on that attribute (principal, namespace, path, source IP or a request header)
 * whose values the index can look up (exact, prefix and suffix strings, CIDR blocks; not "*"). Its keys are those
 * values. A decision looks up the request's value of each attribute: exactly, and for each prefix and suffix length
 * (and CIDR prefix length) that keys of the list have, so the number of lengths per attribute is capped. */
#define MAX_INDEXED_HEADERS 4
#define MAX_KEY_LENGTHS     16

enum {
    KEY_PRINCIPAL = 0,
    KEY_NAMESPACE,
    KEY_PATH,
    KEY_SOURCE_IP,
    KEY_HEADER, /* KEY_HEADER + k: the list's k-th indexed header name */
    KEY_COUNT = KEY_HEADER + MAX_INDEXED_HEADERS,
};

typedef struct st_key_lengths_t {
    uint16_t v[MAX_KEY_LENGTHS]; /* ascending */
    uint8_t n;
} key_lengths_t;

typedef struct st_key_attr_t {
    uint8_t used, has_exact;
    key_lengths_t prefix, suffix; /* KEY_SOURCE_IP: the CIDR prefix lengths, in prefix */
    const char *header;           /* KEY_HEADER + k: the name, lower case */
    size_t header_len;
} key_attr_t;

typedef struct st_index_slot_t {
    const void *key;   /* NULL: empty slot. A CIDR's key is its masked address and its prefix length (17 bytes). */
    uint32_t len, tag; /* tag: key attribute << 2 | match kind */
    uint64_t hash;
    span_t rules; /* into index_rules: ascending rule numbers */
} index_slot_t;

typedef struct st_rule_list_t {
    uint32_t first, count; /* into rules */
    uint32_t *unindexed;   /* ascending, into rules */
    uint32_t num_unindexed;
    uint32_t *http_keyed; /* DENY and AUDIT rules found by path or header: on a connection that is not HTTP they
                           * apply (their HTTP-only fields count as matching), so they are looked at in turn */
    uint32_t num_http_keyed;
    index_slot_t *slots; /* open addressing, size a power of two (0: no index) */
    uint32_t num_slots;
    key_attr_t keys[KEY_COUNT];
    uint32_t num_policies, num_enforced_policies; /* policies of this action (dry-run included / not) */
    const rm_authz_policy_t *first_dry_policy;
} rule_list_t;

enum { LIST_DENY = 0, LIST_ALLOW, LIST_AUDIT, LIST_COUNT };

struct st_rm_authz_engine_t {
    rm_authz_engine_opts_t opts;
    crule_t *rules;
    size_t num_rules;
    span_t *groups;
    size_t num_groups;
    span_t *clauses;
    size_t num_clauses;
    cond_t *conds;
    size_t num_conds;
    smatch_t *smatches;
    size_t num_smatches;
    cidr_t *cidrs;
    size_t num_cidrs;
    uint16_t *ports;
    size_t num_ports;
    uint8_t *cidr_keys; /* per CIDR: its index key (CIDR_KEY bytes) */
    uint32_t *index_rules;
    size_t num_index_rules;
    char **owned; /* strings made at compile time (stripped principals, lower-cased names) */
    size_t num_owned;
    rule_list_t lists[LIST_COUNT];
    int needs_http;
};

/* ------------------------------------------------------------------ compile */

typedef struct st_compiler_t {
    rm_authz_engine_t *e;
    size_t cap_groups, cap_clauses, cap_conds, cap_smatches, cap_cidrs, cap_ports, cap_owned;
    char *err;
    size_t errlen;
    int ret;
} compiler_t;

#define GROW(c, arr, num, cap)                                                                                         \
    do {                                                                                                               \
        if ((c)->e->num >= (c)->cap) {                                                                                 \
            size_t ncap = (c)->cap ? (c)->cap * 2 : 64;                                                                \
            void *np = realloc((c)->e->arr, ncap * sizeof(*(c)->e->arr));                                              \
            if (np == NULL) {                                                                                          \
                (c)->ret = -ENOMEM;                                                                                    \
                return -ENOMEM;                                                                                        \
            }                                                                                                          \
            (c)->e->arr = np;                                                                                          \
            (c)->cap = ncap;                                                                                           \
        }                                                                                                              \
    } while (0)

__attribute__((format(printf, 2, 3))) static int compile_error(compiler_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c->err != NULL && c->errlen > 0)
        vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    c->ret = RM_ERR_POLICY_INVALID;
    return RM_ERR_POLICY_INVALID;
}

static const char *own(compiler_t *c, char *s)
{
    if (s == NULL) {
        c->ret = -ENOMEM;
        return NULL;
    }
    if (c->e->num_owned >= c->cap_owned) {
        size_t ncap = c->cap_owned ? c->cap_owned * 2 : 16;
        char **np = realloc(c->e->owned, ncap * sizeof(*np));
        if (np == NULL) {
            free(s);
            c->ret = -ENOMEM;
            return NULL;
        }
        c->e->owned = np;
        c->cap_owned = ncap;
    }
    c->e->owned[c->e->num_owned++] = s;
    return s;
}

/* Principals are compared without "spiffe://", so Istio's "cluster.local/ns/x/sa/y" and a full SPIFFE ID both
 * work. */
static const char *strip_spiffe(const char *s)
{
    return strncmp(s, "spiffe://", 9) == 0 ? s + 9 : s;
}

static int add_smatch(compiler_t *c, const char *v, attr_t attr)
{
    GROW(c, smatches, num_smatches, cap_smatches);
    smatch_t *m = &c->e->smatches[c->e->num_smatches];
    size_t len = strlen(v);
    if (attr == ATTR_PRINCIPAL && len > 0 && v[0] != '*') {
        v = strip_spiffe(v);
        len = strlen(v);
    }
    if (len == 1 && v[0] == '*') {
        m->kind = SM_ANY, m->s = "", m->len = 0;
    } else if (len > 0 && v[len - 1] == '*') {
        m->kind = SM_PREFIX, m->s = v, m->len = (uint32_t)(len - 1);
        if (attr == ATTR_PRINCIPAL && strncmp(v, "spiffe://", 9) == 0)
            m->s += 9, m->len -= 9;
    } else if (len > 0 && v[0] == '*') {
        m->kind = SM_SUFFIX, m->s = v + 1, m->len = (uint32_t)(len - 1);
    } else {
        m->kind = SM_EXACT, m->s = v, m->len = (uint32_t)len;
    }
    c->e->num_smatches++;
    return 0;
}

/* A principal as the mesh's trust domains make it: one matcher per principal it stands for. */
static int add_principal_smatches(compiler_t *c, const char *v)
{
    char **alts;
    size_t n;
    int ret = 0;
    if (rm_authz_principal_expand(&c->e->opts, v, &alts, &n) != 0)
        return c->ret = -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s;
        if (ret != 0) {
            free(alts[i]);
            continue;
        }
        if ((s = own(c, alts[i])) == NULL) /* own() freed it */
            ret = c->ret;
        else
            ret = add_smatch(c, s, ATTR_PRINCIPAL);
    }
    free(alts);
    return ret;
}

static int add_cond(compiler_t *c, attr_t attr, int negate, const rm_strlist_t *values, const char *header,
                    const char *what)
{
    int ret;
    GROW(c, conds, num_conds, cap_conds);
    cond_t cd = {.attr = (uint8_t)attr, .negate = (uint8_t)negate};
    cd.http_only = attr == ATTR_HOST || attr == ATTR_METHOD || attr == ATTR_PATH || attr == ATTR_HEADER;
    if (cd.http_only)
        c->e->needs_http = 1;
    if (header != NULL) {
        char *h = strdup(header);
        if (h == NULL)
            return c->ret = -ENOMEM;
        for (char *p = h; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if ((cd.header = own(c, h)) == NULL)
            return c->ret;
        cd.header_len = strlen(h);
    }
    switch (attr) {
    case ATTR_SOURCE_IP:
    case ATTR_DEST_IP:
        cd.first = (uint32_t)c->e->num_cidrs;
        for (size_t i = 0; i < values->n; i++) {
            unsigned prefix;
            GROW(c, cidrs, num_cidrs, cap_cidrs);
            cidr_t *b = &c->e->cidrs[c->e->num_cidrs];
            if (rm_config_parse_cidr(values->v[i], b->addr, &prefix) != 0)
                return compile_error(c, "%s: \"%s\" is not an IP address or CIDR block", what, values->v[i]);
            b->prefix = (uint8_t)prefix;
            b->v4 = strchr(values->v[i], ':') == NULL;
            c->e->num_cidrs++;
        }
        break;
    case ATTR_DEST_PORT:
        cd.first = (uint32_t)c->e->num_ports;
        for (size_t i = 0; i < values->n; i++) {
            GROW(c, ports, num_ports, cap_ports);
            if (rm_config_parse_port(values->v[i], &c->e->ports[c->e->num_ports]) != 0)
                return compile_error(c, "%s: \"%s\" is not a port number", what, values->v[i]);
            c->e->num_ports++;
        }
        break;
    default:
        cd.first = (uint32_t)c->e->num_smatches;
        for (size_t i = 0; i < values->n; i++) {
            const char *v = values->v[i];
            size_t len = strlen(v);
            if (len == 0)
                return compile_error(c, "%s: empty value", what);
            for (size_t k = 1; k + 1 < len; k++)
                if (v[k] == '*')
                    return compile_error(c, "%s: \"%s\": '*' only first or last", what, v);
            if (attr == ATTR_PRINCIPAL && c->e->opts.trust_domain != NULL) {
                if ((ret = add_principal_smatches(c, v)) != 0)
                    return ret;
            } else if ((ret = add_smatch(c, v, attr)) != 0) {
                return ret;
            }
        }
        cd.count = (uint32_t)(c->e->num_smatches - cd.first);
        break;
    }
    if (attr == ATTR_SOURCE_IP || attr == ATTR_DEST_IP || attr == ATTR_DEST_PORT)
        cd.count = (uint32_t)values->n;
    c->e->conds[c->e->num_conds++] = cd;
    return 0;
}

static int add_list_cond(compiler_t *c, attr_t attr, const rm_strlist_t *pos, const rm_strlist_t *neg, const char *what)
{
    int ret;
    if (pos->n > 0 && (ret = add_cond(c, attr, 0, pos, NULL, what)) != 0)
        return ret;
    if (neg->n > 0 && (ret = add_cond(c, attr, 1, neg, NULL, what)) != 0)
        return ret;
    return 0;
}

static int begin_clause(compiler_t *c)
{
    GROW(c, clauses, num_clauses, cap_clauses);
    c->e->clauses[c->e->num_clauses].first = (uint32_t)c->e->num_conds;
    c->e->clauses[c->e->num_clauses].count = 0;
    c->e->num_clauses++;
    return 0;
}

static void end_clause(compiler_t *c)
{
    span_t *cl = &c->e->clauses[c->e->num_clauses - 1];
    cl->count = (uint32_t)c->e->num_conds - cl->first;
}

static int begin_group(compiler_t *c)
{
    GROW(c, groups, num_groups, cap_groups);
    c->e->groups[c->e->num_groups].first = (uint32_t)c->e->num_clauses;
    c->e->groups[c->e->num_groups].count = 0;
    c->e->num_groups++;
    return 0;
}

static void end_group(compiler_t *c)
{
    span_t *g = &c->e->groups[c->e->num_groups - 1];
    g->count = (uint32_t)c->e->num_clauses - g->first;
}

static int condition_attr(const char *key, attr_t *attr, const char **header)
{
    static const struct {
        const char *key;
        attr_t attr;
    } keys[] = {
        {"source.ip", ATTR_SOURCE_IP},    {"source.namespace", ATTR_NAMESPACE}, {"source.principal", ATTR_PRINCIPAL},
        {"destination.ip", ATTR_DEST_IP}, {"destination.port", ATTR_DEST_PORT}, {"connection.sni", ATTR_SNI},
    };
    *header = NULL;
    if (strncmp(key, "request.headers[", 16) == 0) {
        size_t len = strlen(key);
        if (len < 18 || key[len - 1] != ']')
            return -1;
        *attr = ATTR_HEADER;
        *header = key + 16; /* "name]": the ']' is cut off by the caller's copy */
        return 0;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].key, key) == 0) {
            *attr = keys[i].attr;
            return 0;
        }
    return -1;
}

static int compile_rule(compiler_t *c, const rm_authz_policy_t *p, size_t ri)
{
    const rm_authz_rule_t *r = &p->rules[ri];
    crule_t cr = {.policy = p, .index = (int)ri, .action = (uint8_t)p->action, .dry_run = p->dry_run};
    char what[600];
    int ret;

    cr.groups.first = (uint32_t)c->e->num_groups;
    if (r->num_from > 0) {
        if ((ret = begin_group(c)) != 0)
            return ret;
        for (size_t i = 0; i < r->num_from; i++) {
            const rm_authz_source_t *s = &r->from[i];
            snprintf(what, sizeof(what), "%s/%s rules[%zu].from[%zu]", p->namespace_, p->name, ri, i);
            if ((ret = begin_clause(c)) != 0 ||
                (ret = add_list_cond(c, ATTR_PRINCIPAL, &s->principals, &s->not_principals, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_NAMESPACE, &s->namespaces, &s->not_namespaces, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_SOURCE_IP, &s->ip_blocks, &s->not_ip_blocks, what)) != 0)
                return ret;
            end_clause(c);
        }
        end_group(c);
    }
    if (r->num_to > 0) {
        if ((ret = begin_group(c)) != 0)
            return ret;
        for (size_t i = 0; i < r->num_to; i++) {
            const rm_authz_operation_t *o = &r->to[i];
            snprintf(what, sizeof(what), "%s/%s rules[%zu].to[%zu]", p->namespace_, p->name, ri, i);
            if ((ret = begin_clause(c)) != 0 ||
                (ret = add_list_cond(c, ATTR_HOST, &o->hosts, &o->not_hosts, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_DEST_PORT, &o->ports, &o->not_ports, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_METHOD, &o->methods, &o->not_methods, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_PATH, &o->paths, &o->not_paths, what)) != 0)
                return ret;
            end_clause(c);
        }
        end_group(c);
    }
    for (size_t i = 0; i < r->num_when; i++) {
        const rm_authz_condition_t *w = &r->when[i];
        attr_t attr;
        const char *hdr;
        snprintf(what, sizeof(what), "%s/%s rules[%zu].when[%zu]", p->namespace_, p->name, ri, i);
        if (w->key == NULL || condition_attr(w->key, &attr, &hdr) != 0)
            return compile_error(c, "%s: unsupported key \"%s\"", what, w->key != NULL ? w->key : "");
        /* the name without its ']', of any length the loader accepts */
        if (hdr != NULL && (hdr = own(c, strndup(hdr, strlen(hdr) - 1))) == NULL)
            return c->ret;
        if ((ret = begin_group(c)) != 0 || (ret = begin_clause(c)) != 0)
            return ret;
        if (w->values.n > 0 && (ret = add_cond(c, attr, 0, &w->values, hdr, what)) != 0)
            return ret;
        if (w->not_values.n > 0 && (ret = add_cond(c, attr, 1, &w->not_values, hdr, what)) != 0)
            return ret;
        end_clause(c);
        end_group(c);
    }
    cr.groups.count = (uint32_t)c->e->num_groups - cr.groups.first;
    c->e->rules[c->e->num_rules++] = cr;
    return 0;
}

#define CIDR_KEY 17 /* bytes: the address masked to the prefix, then the prefix length */

/* A key's hash, eight bytes at a time: a decision hashes the request's values once per key length. */
static uint64_t hash_key(const void *key, size_t len, uint32_t tag)
{
    const uint8_t *p = key;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len << 8 | tag), w;
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    for (w = 0; len > 0; len--)
        w = w << 8 | p[len - 1];
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

static void cidr_key(uint8_t out[CIDR_KEY], const uint8_t addr[16], unsigned prefix)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
        out[i] = bits >= 8 ? addr[i] : (uint8_t)(addr[i] & (0xff00 >> bits));
    }
    out[16] = (uint8_t)prefix;
}

static const uint8_t key_cond_attr[KEY_HEADER + 1] = {ATTR_PRINCIPAL, ATTR_NAMESPACE, ATTR_PATH, ATTR_SOURCE_IP,
                                                      ATTR_HEADER};

/* The clause's positive condition on key attribute `key` (for a header, on the header `header`) whose values can
 * all be looked up; NULL if it has none. */
static const cond_t *clause_key_cond(const rm_authz_engine_t *e, const span_t *cl, int key, const char *header)
{
    uint8_t attr = key_cond_attr[key < KEY_HEADER ? key : KEY_HEADER];
    for (uint32_t k = 0; k < cl->count; k++) {
        const cond_t *cd = &e->conds[cl->first + k];
        int ok = cd->attr == attr && !cd->negate && cd->count > 0;
        if (ok && attr == ATTR_HEADER)
            ok = header != NULL && strcmp(cd->header, header) == 0;
        for (uint32_t v = 0; ok && attr != ATTR_SOURCE_IP && v < cd->count; v++)
            ok = e->smatches[cd->first + v].kind != SM_ANY;
        if (ok)
            return cd;
    }
    return NULL;
}

static int lengths_add(key_lengths_t *l, uint16_t v)
{
    size_t i = 0;
    while (i < l->n && l->v[i] < v)
        i++;
    if (i < l->n && l->v[i] == v)
        return 0;
    if (l->n >= MAX_KEY_LENGTHS)
        return -1;
    memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof(l->v[0]));
    l->v[i] = v;
    l->n++;
    return 0;
}

/* Whether group `g` finds its rule by key attribute `key` within the list's limits: *ka is the key attribute with
 * this rule's lengths added, *score how selective it is likely to be (lower is better). */
static int key_option(const rm_authz_engine_t *e, const span_t *g, int key, const char *header, key_attr_t *ka,
                      int *score)
{
    static const int rank[KEY_HEADER + 1] = {0, 1, 2, 4, 3};
    int loose = 0;
    if (g->count == 0)
        return 0;
    for (uint32_t ci = 0; ci < g->count; ci++) {
        const cond_t *cd = clause_key_cond(e, &e->clauses[g->first + ci], key, header);
        if (cd == NULL)
            return 0;
        for (uint32_t v = 0; v < cd->count; v++) {
            if (key == KEY_SOURCE_IP) {
                if (lengths_add(&ka->prefix, e->cidrs[cd->first + v].prefix) != 0)
                    return 0;
                continue;
            }
            const smatch_t *m = &e->smatches[cd->first + v];
            if (m->kind == SM_EXACT)
                ka->has_exact = 1;
            else if (m->len > UINT16_MAX ||
                     lengths_add(m->kind == SM_PREFIX ? &ka->prefix : &ka->suffix, (uint16_t)m->len) != 0)
                return 0;
            else
                loose = 1;
        }
    }
    *score = rank[key < KEY_HEADER ? key : KEY_HEADER] + (loose ? 5 : 0);
    return 1;
}

/* The key attribute for header `name`: the one already indexing it, else a free one; -1 when all are taken. */
static int header_key(const rule_list_t *l, const char *name)
{
    for (int k = KEY_HEADER; k < KEY_COUNT; k++)
        if (!l->keys[k].used || strcmp(l->keys[k].header, name) == 0)
            return k;
    return -1;
}

/* The most selective way to find rule `r` of list `l`: *key and *group (-1: none); commits its lengths. */
static void choose_key(const rm_authz_engine_t *e, rule_list_t *l, const crule_t *r, int *key, uint32_t *group)
{
    key_attr_t best_ka, ka;
    int best = -1, best_score = 0, score;
    for (uint32_t gi = 0; gi < r->groups.count; gi++) {
        const span_t *g = &e->groups[r->groups.first + gi];
        for (int k = 0; k < KEY_HEADER; k++) {
            ka = l->keys[k];
            if (key_option(e, g, k, NULL, &ka, &score) && (best < 0 || score < best_score))
                best = k, best_score = score, best_ka = ka, *group = r->groups.first + gi;
        }
        if (g->count == 0)
            continue;
        /* a header: the names the first clause tests */
        const span_t *cl = &e->clauses[g->first];
        for (uint32_t ck = 0; ck < cl->count; ck++) {
            const cond_t *cd = &e->conds[cl->first + ck];
            int k;
            if (cd->attr != ATTR_HEADER || cd->negate || (k = header_key(l, cd->header)) < 0)
                continue;
            ka = l->keys[k];
            if (key_option(e, g, k, cd->header, &ka, &score) && (best < 0 || score < best_score)) {
                best = k, best_score = score, best_ka = ka, *group = r->groups.first + gi;
                best_ka.header = cd->header;
                best_ka.header_len = cd->header_len;
            }
        }
    }
    *key = best;
    if (best >= 0) {
        best_ka.used = 1;
        l->keys[best] = best_ka;
    }
}

/* The slot of a key, or the empty slot where it goes. */
static index_slot_t *slot_find(const rule_list_t *l, uint32_t tag, const void *key, size_t len, uint64_t h)
{
    uint32_t mask = l->num_slots - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        index_slot_t *sl = &l->slots[i];
        if (sl->key == NULL || (sl->hash == h && sl->tag == tag && sl->len == len && memcmp(sl->key, key, len) == 0))
            return sl;
    }
}

/* The index key of value v of a rule's key condition. */
static void value_key(const rm_authz_engine_t *e, const cond_t *cd, uint32_t v, int key, uint32_t *tag, const void **kp,
                      uint32_t *len, uint64_t *h)
{
    if (key == KEY_SOURCE_IP) {
        *kp = e->cidr_keys + (size_t)(cd->first + v) * CIDR_KEY;
        *len = CIDR_KEY;
        *tag = (uint32_t)key << 2 | SM_PREFIX;
        *h = hash_key(*kp, CIDR_KEY, *tag);
        return;
    }
    const smatch_t *m = &e->smatches[cd->first + v];
    *kp = m->s;
    *len = m->len;
    *tag = (uint32_t)key << 2 | m->kind;
    *h = hash_key(m->s, m->len, *tag);
}

static int build_index(compiler_t *c, rule_list_t *l, int http_only_matches_off_http)
{
    rm_authz_engine_t *e = c->e;
    int8_t *rkey = calloc(l->count + 1, 1);
    uint32_t *rgroup = calloc(l->count + 1, sizeof(uint32_t)), *counts = NULL;
    size_t num_keys = 0;
    if (rkey == NULL || rgroup == NULL)
        goto NoMem;
    if ((l->unindexed = calloc(l->count + 1, sizeof(uint32_t))) == NULL ||
        (l->http_keyed = calloc(l->count + 1, sizeof(uint32_t))) == NULL)
        goto NoMem;
    for (uint32_t i = 0; i < l->count; i++) {
        int key;
        choose_key(e, l, &e->rules[l->first + i], &key, &rgroup[i]);
        rkey[i] = (int8_t)key;
        if (key < 0) {
            l->unindexed[l->num_unindexed++] = l->first + i;
            continue;
        }
        if (http_only_matches_off_http && (key == KEY_PATH || key >= KEY_HEADER))
            l->http_keyed[l->num_http_keyed++] = l->first + i;
        const span_t *g = &e->groups[rgroup[i]];
        for (uint32_t ci = 0; ci < g->count; ci++)
            num_keys += clause_key_cond(e, &e->clauses[g->first + ci], key, l->keys[key].header)->count;
    }
    if (num_keys > 0) {
        uint32_t ns = 16;
        while (ns < num_keys * 2)
            ns *= 2;
        if ((l->slots = calloc(ns, sizeof(*l->slots))) == NULL)
            goto NoMem;
        l->num_slots = ns;
        /* pass 1: count rules per key; pass 2: fill. A rule with the same key twice is listed once. */
        for (int pass = 0; pass < 2; pass++) {
            for (uint32_t i = 0; i < l->count; i++) {
                if (rkey[i] < 0)
                    continue;
                const span_t *g = &e->groups[rgroup[i]];
                for (uint32_t ci = 0; ci < g->count; ci++) {
                    const cond_t *cd = clause_key_cond(e, &e->clauses[g->first + ci], rkey[i], l->keys[rkey[i]].header);
                    for (uint32_t v = 0; v < cd->count; v++) {
                        uint32_t tag, len;
                        const void *kp;
                        uint64_t h;
                        value_key(e, cd, v, rkey[i], &tag, &kp, &len, &h);
                        index_slot_t *sl = slot_find(l, tag, kp, len, h);
                        if (sl->key == NULL)
                            sl->key = kp, sl->len = len, sl->tag = tag, sl->hash = h;
                        if (pass == 0) {
                            sl->rules.count++;
                        } else {
                            uint32_t *arr = e->index_rules + sl->rules.first;
                            uint32_t *n = &counts[sl - l->slots];
                            if (*n == 0 || arr[*n - 1] != l->first + i)
                                arr[(*n)++] = l->first + i;
                        }
                    }
                }
            }
            if (pass == 0) {
                size_t total = 0;
                for (uint32_t s = 0; s < ns; s++) {
                    l->slots[s].rules.first = (uint32_t)(e->num_index_rules + total);
                    total += l->slots[s].rules.count;
                }
                uint32_t *ir = realloc(e->index_rules, (e->num_index_rules + total + 1) * sizeof(uint32_t));
                if (ir == NULL || (counts = calloc(ns, sizeof(uint32_t))) == NULL) {
                    if (ir != NULL)
                        e->index_rules = ir;
                    goto NoMem;
                }
                e->index_rules = ir;
                e->num_index_rules += total;
            }
        }
        for (uint32_t s = 0; s < ns; s++)
            l->slots[s].rules.count = counts[s];
    }
    free(counts);
    free(rkey);
    free(rgroup);
    return 0;
NoMem:
    free(counts);
    free(rkey);
    free(rgroup);
    return c->ret = -ENOMEM;
}

static int cmp_policy(const void *a, const void *b)
{
    const rm_authz_policy_t *x = *(const rm_authz_policy_t *const *)a, *y = *(const rm_authz_policy_t *const *)b;
    int r = strcmp(x->namespace_, y->namespace_);
    return r != 0 ? r : strcmp(x->name, y->name);
}

int rm_authz_engine_new(rm_authz_engine_t **out, const rm_authz_policy_t *const *policies, size_t num,
                        const rm_authz_engine_opts_t *opts, char *err, size_t errlen)
{
    static const rm_authz_action_t list_action[LIST_COUNT] = {RM_AUTHZ_DENY, RM_AUTHZ_ALLOW, RM_AUTHZ_AUDIT};
    compiler_t c = {.err = err, .errlen = errlen};
    const rm_authz_policy_t **sorted = NULL;
    size_t total_rules = 0;
    int ret;

    if ((c.e = calloc(1, sizeof(*c.e))) == NULL)
        return -ENOMEM;
    if (opts != NULL)
        c.e->opts = *opts;
    if (c.e->opts.log_allowed_sample <= 0 || c.e->opts.log_allowed_sample > 1)
        c.e->opts.log_allowed_sample = 1;
    if ((sorted = malloc((num + 1) * sizeof(*sorted))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < num; i++) {
        sorted[i] = policies[i];
        total_rules += policies[i]->num_rules;
    }
    qsort(sorted, num, sizeof(*sorted), cmp_policy);
    if ((c.e->rules = calloc(total_rules + 1, sizeof(crule_t))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (int li = 0; li < LIST_COUNT; li++) {
        rule_list_t *l = &c.e->lists[li];
        l->first = (uint32_t)c.e->num_rules;
        for (size_t i = 0; i < num; i++) {
            const rm_authz_policy_t *p = sorted[i];
            if (p->action != list_action[li])
                continue;
            l->num_policies++;
            if (!p->dry_run)
                l->num_enforced_policies++;
            else if (l->first_dry_policy == NULL)
                l->first_dry_policy = p;
            for (size_t r = 0; r < p->num_rules; r++)
                if ((ret = compile_rule(&c, p, r)) != 0)
                    goto Exit;
        }
        l->count = (uint32_t)c.e->num_rules - l->first;
    }
    if ((c.e->cidr_keys = malloc(c.e->num_cidrs * CIDR_KEY + 1)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < c.e->num_cidrs; i++)
        cidr_key(c.e->cidr_keys + i * CIDR_KEY, c.e->cidrs[i].addr, c.e->cidrs[i].prefix);
    for (int li = 0; li < LIST_COUNT; li++)
        if ((ret = build_index(&c, &c.e->lists[li], list_action[li] != RM_AUTHZ_ALLOW)) != 0)
            goto Exit;
    if (c.e->opts.log_allowed)
        c.e->needs_http = 1; /* allowed requests are logged one by one */
    ret = 0;
    /* the caller's trust domain strings were needed to compile only */
    c.e->opts.trust_domain = NULL;
    c.e->opts.trust_domain_aliases = NULL;
    c.e->opts.num_trust_domain_aliases = 0;
Exit:
    free(sorted);
    if (ret != 0) {
        rm_authz_engine_free(c.e);
        return ret;
    }
    *out = c.e;
    return 0;
}

void rm_authz_engine_free(rm_authz_engine_t *e)
{
    if (e == NULL)
        return;
    for (int li = 0; li < LIST_COUNT; li++) {
        free(e->lists[li].unindexed);
        free(e->lists[li].http_keyed);
        free(e->lists[li].slots);
    }
    for (size_t i = 0; i < e->num_owned; i++)
        free(e->owned[i]);
    free(e->owned);
    free(e->rules);
    free(e->groups);
    free(e->clauses);
    free(e->conds);
    free(e->smatches);
    free(e->cidrs);
    free(e->ports);
    free(e->cidr_keys);
    free(e->index_rules);
    free(e);
}

size_t rm_authz_engine_num_rules(const rm_authz_engine_t *e)
{
    return e->num_rules;
}

int rm_authz_engine_needs_http(const rm_authz_engine_t *e)
{
    return e->needs_http;
}

/* ------------------------------------------------------------------ evaluate */

typedef struct st_eval_ctx_t {
    const rm_authz_attrs_t *a;
    const char *principal; /* without "spiffe://" */
    size_t principal_len;
    const char *ns;
    size_t ns_len;
    const char *path; /* the request path, without query or fragment (normalized by the caller) */
    size_t path_len;
    /* A header sent more than once is matched as Envoy matches it: its values joined with ",". Conditions join into
     * cond_header_buf, the index lookups into key_header_buf (a lookup evaluates conditions while it still reads its
     * key). A joined value that does not fit makes the request unevaluable: too_long_header names the header. */
    const char *too_long_header;
    char cond_header_buf[HEADER_JOIN_MAX];
    char key_header_buf[HEADER_JOIN_MAX];
} eval_ctx_t;

static int smatch_one(const smatch_t *m, const char *s, size_t len, int icase)
{
    switch (m->kind) {
    case SM_ANY:
        return len > 0;
    case SM_EXACT:
        return len == m->len && (icase ? strncasecmp(s, m->s, len) == 0 : memcmp(s, m->s, len) == 0);
    case SM_PREFIX:
        return len >= m->len && (icase ? strncasecmp(s, m->s, m->len) == 0 : memcmp(s, m->s, m->len) == 0);
    case SM_SUFFIX:
        return len >= m->len &&
               (icase ? strncasecmp(s + len - m->len, m->s, m->len) == 0 : memcmp(s + len - m->len, m->s, m->len) == 0);
    }
    return 0;
}

static int smatch_any(const rm_authz_engine_t *e, const cond_t *cd, const char *s, size_t len, int icase)
{
    for (uint32_t i = 0; i < cd->count; i++)
        if (smatch_one(&e->smatches[cd->first + i], s, len, icase))
            return 1;
    return 0;
}

static int cidr_match(const cidr_t *b, const uint8_t ip[16])
{
    /* IPv4 addresses are held as ::ffff:a.b.c.d; as in Envoy, an IPv6 block (even ::/0) never matches an IPv4
     * peer, nor an IPv4 block an IPv6 one */
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (b->v4 != (memcmp(ip, v4mapped, 12) == 0))
        return 0;
    unsigned full = b->prefix / 8, rest = b->prefix % 8;
    if (memcmp(b->addr, ip, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (b->addr[full] & mask) == (ip[full] & mask);
}

/* Host values match the authority as sent (Host or :authority), port included, case-insensitively: Istio's hosts
 * and notHosts. "example.com" does not match "example.com:8080"; "example.com:*" does. */
static int host_match(const rm_authz_engine_t *e, const cond_t *cd, const char *h, size_t len)
{
    return smatch_any(e, cd, h, len, 1);
}

/* The value of header `name` as Envoy's header matchers see it: the value of its only field, or the values of all
 * its fields in order joined with "," (into buf, HEADER_JOIN_MAX bytes). Returns 1, 0 when the request has no such
 * field, or -1 when the joined value does not fit (x->too_long_header is then set and the request is denied). */
static int header_value(eval_ctx_t *x, const char *name, size_t name_len, char *buf, const char **v, size_t *len)
{
    const rm_http_request_t *r = x->a->http;
    size_t n = 0, o = 0;
    for (size_t i = 0; i < r->num_headers; i++) {
        const rm_http_header_t *h = &r->headers[i];
        if (h->name_len != name_len || strncasecmp(h->name, name, name_len) != 0)
            continue;
        if (n++ == 0) {
            *v = h->value, *len = h->value_len;
            continue;
        }
        if (n == 2) { /* a second field: from here on the values are joined in buf */
            if (*len > HEADER_JOIN_MAX)
                goto TooLong;
            memcpy(buf, *v, *len);
            o = *len;
        }
        if (h->value_len + 1 > HEADER_JOIN_MAX - o)
            goto TooLong;
        buf[o++] = ',';
        memcpy(buf + o, h->value, h->value_len);
        o += h->value_len;
    }
    if (n == 0)
        return 0;
    if (n > 1)
        *v = buf, *len = o;
    return 1;
TooLong:
    x->too_long_header = name;
    return -1;
}

/* 1 match, 0 no match, -1 attribute absent */
static int cond_positive(const rm_authz_engine_t *e, const cond_t *cd, eval_ctx_t *x)
{
    const rm_authz_attrs_t *a = x->a;
    switch ((attr_t)cd->attr) {
    case ATTR_PRINCIPAL:
        return x->principal == NULL ? -1 : smatch_any(e, cd, x->principal, x->principal_len, 0);
    case ATTR_NAMESPACE:
        return x->ns == NULL ? -1 : smatch_any(e, cd, x->ns, x->ns_len, 0);
    case ATTR_SOURCE_IP:
    case ATTR_DEST_IP: {
        const uint8_t *ip = cd->attr == ATTR_SOURCE_IP ? a->source_ip : a->destination_ip;
        if (!(cd->attr == ATTR_SOURCE_IP ? a->have_source_ip : a->have_destination_ip))
            return -1;
        for (uint32_t i = 0; i < cd->count; i++)
            if (cidr_match(&e->cidrs[cd->first + i], ip))
                return 1;
        return 0;
    }
    case ATTR_DEST_PORT:
        for (uint32_t i = 0; i < cd->count; i++)
            if (e->ports[cd->first + i] == a->destination_port)
                return 1;
        return 0;
    case ATTR_SNI:
        return a->sni == NULL ? -1 : smatch_any(e, cd, a->sni, strlen(a->sni), 1);
    case ATTR_HOST:
        return a->http->host == NULL ? -1 : host_match(e, cd, a->http->host, a->http->host_len);
    case ATTR_METHOD:
        return smatch_any(e, cd, a->http->method, a->http->method_len, 0);
    case ATTR_PATH:
        return smatch_any(e, cd, x->path, x->path_len, 0);
    case ATTR_HEADER: {
        const char *v;
        size_t len;
        int r = header_value(x, cd->header, cd->header_len, x->cond_header_buf, &v, &len);
        return r <= 0 ? -1 : smatch_any(e, cd, v, len, 0);
    }
    }
    return 0;
}

static int cond_match(const rm_authz_engine_t *e, const cond_t *cd, eval_ctx_t *x, uint8_t action)
{
    if (cd->http_only && x->a->http == NULL)
        return action != RM_AUTHZ_ALLOW; /* Istio's rule for HTTP-only fields on a TCP connection */
    int r = cond_positive(e, cd, x);
    if (r < 0)
        r = 0;
    return cd->negate ? !r : r;
}

static int rule_match(const rm_authz_engine_t *e, const crule_t *r, eval_ctx_t *x)
{
    for (uint32_t gi = 0; gi < r->groups.count; gi++) {
        const span_t *g = &e->groups[r->groups.first + gi];
        int any = 0;
        for (uint32_t ci = 0; ci < g->count && !any; ci++) {
            const span_t *cl = &e->clauses[g->first + ci];
            int all = 1;
            for (uint32_t k = 0; k < cl->count && all; k++)
                all = cond_match(e, &e->conds[cl->first + k], x, r->action);
            any = all;
        }
        if (!any)
            return 0;
    }
    return 1;
}

/* Looks at the rules of `list` below *best in order; the first that matches becomes *best. */
static void scan_rules(const rm_authz_engine_t *e, const uint32_t *list, uint32_t n, eval_ctx_t *x, int with_dry,
                       uint32_t *best)
{
    for (uint32_t i = 0; i < n && list[i] < *best; i++) {
        const crule_t *r = &e->rules[list[i]];
        if (r->dry_run && !with_dry)
            continue;
        if (rule_match(e, r, x)) {
            *best = list[i];
            return;
        }
    }
}

static void probe(const rm_authz_engine_t *e, const rule_list_t *l, uint32_t tag, const void *key, size_t len,
                  eval_ctx_t *x, int with_dry, uint32_t *best)
{
    const index_slot_t *sl = slot_find(l, tag, key, len, hash_key(key, len, tag));
    if (sl->key != NULL)
        scan_rules(e, e->index_rules + sl->rules.first, sl->rules.count, x, with_dry, best);
}

/* The rules keyed by the value s of key attribute `key`: exactly, by each prefix length and each suffix length. */
static void lookup_string(const rm_authz_engine_t *e, const rule_list_t *l, int key, const char *s, size_t len,
                          eval_ctx_t *x, int with_dry, uint32_t *best)
{
    const key_attr_t *ka = &l->keys[key];
    uint32_t tag = (uint32_t)key << 2;
    if (ka->has_exact)
        probe(e, l, tag | SM_EXACT, s, len, x, with_dry, best);
    for (size_t i = 0; i < ka->prefix.n && ka->prefix.v[i] <= len; i++)
        probe(e, l, tag | SM_PREFIX, s, ka->prefix.v[i], x, with_dry, best);
    for (size_t i = 0; i < ka->suffix.n && ka->suffix.v[i] <= len; i++)
        probe(e, l, tag | SM_SUFFIX, s + len - ka->suffix.v[i], ka->suffix.v[i], x, with_dry, best);
}

static void lookup_ip(const rm_authz_engine_t *e, const rule_list_t *l, const uint8_t ip[16], eval_ctx_t *x,
                      int with_dry, uint32_t *best)
{
    const key_attr_t *ka = &l->keys[KEY_SOURCE_IP];
    uint8_t k[CIDR_KEY];
    for (size_t i = 0; i < ka->prefix.n; i++) {
        cidr_key(k, ip, ka->prefix.v[i]);
        probe(e, l, (uint32_t)KEY_SOURCE_IP << 2 | SM_PREFIX, k, CIDR_KEY, x, with_dry, best);
    }
}

/* The first matching rule of a list in decision order, skipping dry-run rules unless `with_dry`; -1 if none. The
 * unindexed rules and the rules found under each of the request's keys are looked at list by list, each up to the
 * best match so far: the first match of the union is the least of the first matches. */
static int64_t list_first_match(const rm_authz_engine_t *e, const rule_list_t *l, eval_ctx_t *x, int with_dry)
{
    const rm_authz_attrs_t *a = x->a;
    uint32_t best = UINT32_MAX;
    if (l->count == 0)
        return -1;
    scan_rules(e, l->unindexed, l->num_unindexed, x, with_dry, &best);
    if (l->num_slots > 0) {
        if (x->principal != NULL && l->keys[KEY_PRINCIPAL].used)
            lookup_string(e, l, KEY_PRINCIPAL, x->principal, x->principal_len, x, with_dry, &best);
        if (x->ns != NULL && l->keys[KEY_NAMESPACE].used)
            lookup_string(e, l, KEY_NAMESPACE, x->ns, x->ns_len, x, with_dry, &best);
        if (a->have_source_ip && l->keys[KEY_SOURCE_IP].used)
            lookup_ip(e, l, a->source_ip, x, with_dry, &best);
        if (a->http == NULL) {
            scan_rules(e, l->http_keyed, l->num_http_keyed, x, with_dry, &best);
        } else {
            if (x->path != NULL && l->keys[KEY_PATH].used)
                lookup_string(e, l, KEY_PATH, x->path, x->path_len, x, with_dry, &best);
            for (int k = KEY_HEADER; k < KEY_COUNT && l->keys[k].used; k++) {
                const key_attr_t *ka = &l->keys[k];
                const char *v;
                size_t len;
                if (header_value(x, ka->header, ka->header_len, x->key_header_buf, &v, &len) > 0)
                    lookup_string(e, l, k, v, len, x, with_dry, &best);
            }
        }
    }
    return best == UINT32_MAX ? -1 : (int64_t)best;
}

/* The path a request is decided on: the target up to its query or fragment. The caller normalizes the target
 * first (rm_http_path_normalize) and forwards the same bytes, so the engine never cleans a path up itself: a
 * second, different clean-up here is how a policy and the app would come to see two different paths. */
static void request_path(eval_ctx_t *x, const char *p, size_t len)
{
    size_t n = 0;
    while (n < len && p[n] != '?' && p[n] != '#')
        n++;
    x->path = p;
    x->path_len = n;
}

static void set_policy(rm_authz_decision_t *d, const rm_authz_engine_t *e, int64_t ri)
{
    d->reason = RM_AUTHZ_REASON_POLICY;
    d->policy = e->rules[ri].policy;
    d->rule = e->rules[ri].index;
}

/* DENY, then ALLOW, then the default, with or without the dry-run policies. */
static void decide(const rm_authz_engine_t *e, eval_ctx_t *x, int with_dry, rm_authz_decision_t *d)
{
    int64_t ri;
    d->policy = NULL;
    d->rule = -1;
    if ((ri = list_first_match(e, &e->lists[LIST_DENY], x, with_dry)) >= 0) {
        d->allow = 0;
        set_policy(d, e, ri);
        return;
    }
    const rule_list_t *al = &e->lists[LIST_ALLOW];
    uint32_t applying = with_dry ? al->num_policies : al->num_enforced_policies;
    if (applying == 0) {
        d->allow = e->opts.default_action == RM_AUTHZ_ALLOW;
        d->reason = d->allow ? RM_AUTHZ_REASON_DEFAULT_ALLOW : RM_AUTHZ_REASON_DEFAULT_DENY;
        return;
    }
    if ((ri = list_first_match(e, al, x, with_dry)) >= 0) {
        d->allow = 1;
        set_policy(d, e, ri);
        return;
    }
    d->allow = 0;
    d->reason = RM_AUTHZ_REASON_NO_ALLOW_MATCH;
}

void rm_authz_evaluate(const rm_authz_engine_t *e, const rm_authz_attrs_t *a, double sample, rm_authz_decision_t *d)
{
    eval_ctx_t x;
    x.a = a;
    x.principal = NULL;
    x.principal_len = 0;
    x.ns = NULL;
    x.ns_len = 0;
    x.path = NULL;
    x.path_len = 0;
    x.too_long_header = NULL;
    memset(d, 0, sizeof(*d));
    d->rule = d->dry_run_rule = d->audit_rule = -1;

    if (a->principal != NULL && a->principal[0] != '\0') {
        x.principal = strip_spiffe(a->principal);
        x.principal_len = strlen(x.principal);
        /* the namespace is the segment after "/ns/" in "<trust-domain>/ns/<ns>/sa/<sa>" */
        const char *ns = strstr(x.principal, "/ns/");
        if (ns != NULL) {
            ns += 4;
            const char *end = strchr(ns, '/');
            x.ns = ns;
            x.ns_len = end != NULL ? (size_t)(end - ns) : strlen(ns);
        }
    }
    if (a->http != NULL && e->needs_http) {
        if (a->http->path == NULL) {
            d->allow = 0;
            d->reason = RM_AUTHZ_REASON_UNEVALUABLE;
            d->log = 1;
            return;
        }
        request_path(&x, a->http->path, a->http->path_len);
    }

    decide(e, &x, 0, d);
    if (x.too_long_header != NULL) {
        /* a repeated header the enforced policies test is longer than the engine joins: deny rather than guess */
        d->allow = 0;
        d->reason = RM_AUTHZ_REASON_HEADER_TOO_LONG;
        d->policy = NULL;
        d->rule = -1;
        d->header = x.too_long_header;
        d->log = 1;
        return;
    }
    if (e->lists[LIST_DENY].num_enforced_policies != e->lists[LIST_DENY].num_policies ||
        e->lists[LIST_ALLOW].num_enforced_policies != e->lists[LIST_ALLOW].num_policies) {
        rm_authz_decision_t shadow = {0};
        decide(e, &x, 1, &shadow);
        if (shadow.allow != d->allow) {
            d->dry_run_differs = 1;
            d->dry_run_allow = shadow.allow;
            d->dry_run_reason = shadow.reason;
            d->dry_run_rule = shadow.rule;
            d->dry_run_policy = shadow.policy;
            if (shadow.policy == NULL || !shadow.policy->dry_run)
                d->dry_run_policy = e->lists[LIST_ALLOW].first_dry_policy; /* a dry-run ALLOW policy now applies */
        }
    }
    int64_t ai = list_first_match(e, &e->lists[LIST_AUDIT], &x, 1);
    if (ai >= 0) {
        d->audit_policy = e->rules[ai].policy;
        d->audit_rule = e->rules[ai].index;
    }
    if (!d->allow || d->dry_run_differs || d->audit_policy != NULL)
        d->log = 1;
    else if ((e->opts.log_allowed || (d->policy != NULL && d->policy->log_allowed)) &&
             sample < e->opts.log_allowed_sample)
        d->log = 1;
}

const char *rm_authz_decision_word(const rm_authz_decision_t *d)
{
    if (d->allow && d->dry_run_differs)
        return "would-deny";
    if (!d->allow)
        return "deny";
    if (d->audit_policy != NULL)
        return "audit";
    return "allow";
}

const char *rm_authz_reason_word(rm_authz_reason_t r)
{
    switch (r) {
    case RM_AUTHZ_REASON_POLICY:
        return "policy";
    case RM_AUTHZ_REASON_DEFAULT_DENY:
        return "default-deny";
    case RM_AUTHZ_REASON_DEFAULT_ALLOW:
        return "default-allow";
    case RM_AUTHZ_REASON_NO_ALLOW_MATCH:
        return "no ALLOW policy matched";
    case RM_AUTHZ_REASON_UNEVALUABLE:
        return "invalid-path";
    case RM_AUTHZ_REASON_HEADER_TOO_LONG:
        return "repeated request header too long to evaluate";
    }
    return "unknown";
}

const char *rm_authz_action_name(rm_authz_action_t a)
{
    return a == RM_AUTHZ_ALLOW ? "ALLOW" : a == RM_AUTHZ_DENY ? "DENY" : "AUDIT";
}

void rm_authz_decision_explain(const rm_authz_decision_t *d, char *buf, size_t len)
{
    size_t o = 0;
    int n;
    if (d->reason == RM_AUTHZ_REASON_POLICY && d->policy != NULL)
        n = snprintf(buf, len, "%s by %s policy %s/%s rule %d", d->allow ? "allowed" : "denied",
                     rm_authz_action_name(d->policy->action), d->policy->namespace_, d->policy->name, d->rule);
    else if (d->reason == RM_AUTHZ_REASON_DEFAULT_DENY)
        n = snprintf(buf, len,
                     "denied: no ALLOW policy selects this workload and the mesh's defaultAction is DENY "
                     "(default-deny)");
    else if (d->reason == RM_AUTHZ_REASON_DEFAULT_ALLOW)
        n = snprintf(buf, len, "allowed: no policy selects this workload and the mesh's defaultAction is ALLOW");
    else if (d->reason == RM_AUTHZ_REASON_NO_ALLOW_MATCH)
        n = snprintf(buf, len,
                     "denied: ALLOW policies select this workload and none of their rules matched (no "
                     "ALLOW policy matched)");
    else if (d->reason == RM_AUTHZ_REASON_UNEVALUABLE)
        n = snprintf(buf, len, "denied: the request path is missing or cannot be normalized (answered 400)");
    else if (d->reason == RM_AUTHZ_REASON_HEADER_TOO_LONG && d->header != NULL)
        n = snprintf(buf, len, "denied: the values of request header %s joined with \",\" are longer than %d bytes",
                     d->header, HEADER_JOIN_MAX);
    else
        n = snprintf(buf, len, "denied: %s", rm_authz_reason_word(d->reason));
    o = n > 0 ? (size_t)n : 0;
    if (o < len && d->dry_run_differs) {
        if (d->dry_run_policy != NULL)
            n = snprintf(buf + o, len - o, "; dry-run policy %s/%s would %s it", d->dry_run_policy->namespace_,
                         d->dry_run_policy->name, d->dry_run_allow ? "allow" : "deny");
        else
            n = snprintf(buf + o, len - o, "; dry-run policies would %s it", d->dry_run_allow ? "allow" : "deny");
        o += n > 0 ? (size_t)n : 0;
    }
    if (o < len && d->audit_policy != NULL)
        snprintf(buf + o, len - o, "; audited by %s/%s rule %d", d->audit_policy->namespace_, d->audit_policy->name,
                 d->audit_rule);
}

/* ------------------------------------------------------------------ selection */

static int labels_match(const rm_label_t *want, size_t nwant, const rm_workload_t *w)
{
    for (size_t i = 0; i < nwant; i++) {
        int found = 0;
        for (size_t k = 0; k < w->num_labels && !found; k++)
            found = strcmp(w->labels[k].key, want[i].key) == 0 && strcmp(w->labels[k].value, want[i].value) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

static int selects(const char *pns, int has_selector, const rm_label_t *ml, size_t nml, const char *root,
                   const rm_workload_t *w)
{
    int in_root = root != NULL && strcmp(pns, root) == 0;
    if (in_root && !has_selector)
        return 1;
    if (!in_root && strcmp(pns, w->namespace_) != 0)
        return 0;
    return !has_selector || labels_match(ml, nml, w);
}

int rm_authz_policy_selects(const rm_authz_policy_t *p, const char *root_namespace, const rm_workload_t *w)
{
    return selects(p->namespace_, p->has_selector, p->match_labels, p->num_match_labels, root_namespace, w);
}

int rm_peer_authn_selects(const rm_peer_authn_t *p, const char *root_namespace, const rm_workload_t *w)
{
    return selects(p->namespace_, p->has_selector, p->match_labels, p->num_match_labels, root_namespace, w);
}

rm_peer_mtls_mode_t rm_peer_authn_resolve(const rm_policy_set_t *set, const char *root_namespace,
                                          const rm_workload_t *w, rm_peer_port_mode_t *port_modes, size_t max_ports,
                                          size_t *num_ports)
{
    /* the first by namespace/name at each level, so every replica and every run pick the same one */
    const rm_peer_authn_t *level[3] = {NULL, NULL, NULL}; /* mesh, namespace, workload */
    for (size_t i = 0; i < set->num_peer_authns; i++) {
        const rm_peer_authn_t *p = &set->peer_authns[i];
        int lv;
        int in_root = root_namespace != NULL && strcmp(p->namespace_, root_namespace) == 0;
        int wl = p->has_selector && p->num_match_labels > 0;
        if (!rm_peer_authn_selects(p, root_namespace, w))
            continue;
        if (wl && strcmp(p->namespace_, w->namespace_) != 0)
            continue; /* workload-level policies apply in their own namespace only */
        lv = wl ? 2 : in_root && strcmp(w->namespace_, root_namespace) != 0 ? 0 : 1;
        if (level[lv] == NULL || strcmp(p->name, level[lv]->name) < 0)
            level[lv] = p;
    }
    rm_peer_mtls_mode_t mode = RM_PEER_MTLS_UNSET;
    for (int lv = 0; lv < 3; lv++)
        if (level[lv] != NULL && level[lv]->mode != RM_PEER_MTLS_UNSET)
            mode = level[lv]->mode;
    if (num_ports != NULL)
        *num_ports = 0;
    if (level[2] != NULL && port_modes != NULL && num_ports != NULL) {
        for (size_t i = 0; i < level[2]->num_port_modes && *num_ports < max_ports; i++)
            if (level[2]->port_modes[i].mode != RM_PEER_MTLS_UNSET)
                port_modes[(*num_ports)++] = level[2]->port_modes[i];
    }
    return mode;
}

/* ------------------------------------------------------------------ lint */

static int add_finding(rm_policy_diags_t *diags, int warning, const char *file, unsigned line, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int add_finding(rm_policy_diags_t *diags, int warning, const char *file, unsigned line, const char *path,
                       const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rm_policy_diag_t *nd = realloc(diags->d, (diags->n + 1) * sizeof(*nd));
    if (nd == NULL)
        return -ENOMEM;
    diags->d = nd;
    nd[diags->n] = (rm_policy_diag_t){.warning = warning,
                                      .file = file != NULL ? strdup(file) : NULL,
                                      .line = line,
                                      .column = 1,
                                      .path = strdup(path),
                                      .message = strdup(msg)};
    diags->n++;
    if (!warning)
        diags->num_errors++;
    return 0;
}

static const char *overlap(const rm_strlist_t *a, const rm_strlist_t *b)
{
    for (size_t i = 0; i < a->n; i++)
        for (size_t k = 0; k < b->n; k++)
            if (strcmp(a->v[i], b->v[k]) == 0 || strcmp(b->v[k], "*") == 0)
                return a->v[i];
    return NULL;
}

static void lint_pair(rm_policy_diags_t *diags, const rm_authz_policy_t *p, const char *path, const char *field,
                      const rm_strlist_t *pos, const rm_strlist_t *neg)
{
    const char *v = overlap(pos, neg);
    if (v != NULL)
        add_finding(diags, 1, p->file, p->line, path, "\"%s\" is in both %s and not%c%s: this can never match", v,
                    field, field[0] - 32, field + 1);
}

int rm_policy_lint(const rm_policy_set_t *set, rm_policy_diags_t *diags)
{
    size_t before = diags->num_errors;
    char path[256];
    for (size_t i = 0; i < set->num_policies; i++) {
        const rm_authz_policy_t *p = &set->policies[i];
        for (size_t k = 0; k < i; k++) {
            const rm_authz_policy_t *q = &set->policies[k];
            if (strcmp(p->namespace_, q->namespace_) == 0 && strcmp(p->name, q->name) == 0)
                add_finding(diags, 0, p->file, p->line, "metadata.name",
                            "AuthorizationPolicy %s/%s is defined twice (first at %s:%u)", p->namespace_, p->name,
                            q->file != NULL ? q->file : "-", q->line);
        }
        for (size_t r = 0; r < p->num_rules; r++) {
            const rm_authz_rule_t *ru = &p->rules[r];
            int http = 0;
            for (size_t f = 0; f < ru->num_from; f++) {
                const rm_authz_source_t *s = &ru->from[f];
                snprintf(path, sizeof(path), "spec.rules[%zu].from[%zu].source", r, f);
                lint_pair(diags, p, path, "principals", &s->principals, &s->not_principals);
                lint_pair(diags, p, path, "namespaces", &s->namespaces, &s->not_namespaces);
                lint_pair(diags, p, path, "ipBlocks", &s->ip_blocks, &s->not_ip_blocks);
            }
            for (size_t t = 0; t < ru->num_to; t++) {
                const rm_authz_operation_t *o = &ru->to[t];
                snprintf(path, sizeof(path), "spec.rules[%zu].to[%zu].operation", r, t);
                lint_pair(diags, p, path, "hosts", &o->hosts, &o->not_hosts);
                lint_pair(diags, p, path, "ports", &o->ports, &o->not_ports);
                lint_pair(diags, p, path, "methods", &o->methods, &o->not_methods);
                lint_pair(diags, p, path, "paths", &o->paths, &o->not_paths);
                if (o->hosts.n || o->not_hosts.n || o->methods.n || o->not_methods.n || o->paths.n || o->not_paths.n)
                    http = 1;
            }
            for (size_t w = 0; w < ru->num_when; w++) {
                snprintf(path, sizeof(path), "spec.rules[%zu].when[%zu]", r, w);
                const char *v = overlap(&ru->when[w].values, &ru->when[w].not_values);
                if (v != NULL)
                    add_finding(diags, 1, p->file, p->line, path,
                                "\"%s\" is in both values and notValues: this can never match", v);
                if (ru->when[w].key != NULL && strncmp(ru->when[w].key, "request.headers[", 16) == 0)
                    http = 1;
            }
            /* a rule whose every operation names its ports says which traffic it is about: no warning then */
            int ports_named = ru->num_to > 0;
            for (size_t t = 0; t < ru->num_to; t++)
                if (ru->to[t].ports.n == 0)
                    ports_named = 0;
            if (http && !ports_named) {
                snprintf(path, sizeof(path), "spec.rules[%zu]", r);
                if (p->action == RM_AUTHZ_ALLOW)
                    add_finding(diags, 1, p->file, p->line, path,
                                "uses HTTP-only fields (hosts, methods, paths, request.headers): this ALLOW rule never "
                                "matches a connection that is not HTTP");
                else
                    add_finding(diags, 1, p->file, p->line, path,
                                "uses HTTP-only fields (hosts, methods, paths, request.headers): on a connection that "
                                "is not HTTP this %s rule applies as if they matched, to every connection its other "
                                "fields match",
                                rm_authz_action_name(p->action));
            }
        }
    }
    for (size_t i = 0; i < set->num_peer_authns; i++) {
        const rm_peer_authn_t *p = &set->peer_authns[i];
        for (size_t k = 0; k < i; k++) {
            const rm_peer_authn_t *q = &set->peer_authns[k];
            if (strcmp(p->namespace_, q->namespace_) == 0 && strcmp(p->name, q->name) == 0)
                add_finding(diags, 0, p->file, p->line, "metadata.name",
                            "PeerAuthentication %s/%s is defined twice (first at %s:%u)", p->namespace_, p->name,
                            q->file != NULL ? q->file : "-", q->line);
        }
    }
    return (int)(diags->num_errors - before);
}
