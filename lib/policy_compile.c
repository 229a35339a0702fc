/* Compiling policies into the engine: rules to groups, clauses and conditions in flat arrays, then each rule list's
 * index (policy_engine_internal.h says the layout); the engine's lifetime and accessors. */
#include "ringmesh/policy.h"
#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "policy_engine_internal.h"
#include "policy_yaml_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_compiler_t {
    rm_authz_engine_t *e;
    size_t cap_groups, cap_clauses, cap_conds, cap_smatches, cap_cidrs, cap_ports, cap_owned, cap_origins;
    cond_origin_t origin; /* where the conditions being added come from (want is set per condition) */
    char *err;
    size_t errlen;
    int ret;
    const char *policy_ns; /* the namespace of the policy being compiled: serviceAccounts without one name it */
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

static int add_smatch(compiler_t *c, const char *v, attr_t attr)
{
    GROW(c, smatches, num_smatches, cap_smatches);
    smatch_t *m = &c->e->smatches[c->e->num_smatches];
    size_t len = strlen(v);
    if (attr == ATTR_PRINCIPAL && len > 0 && v[0] != '*') {
        v = rm__policy_strip_spiffe(v);
        len = strlen(v);
    }
    if (attr == ATTR_PATH && strpbrk(v, "{}") != NULL) {
        m->kind = SM_TEMPLATE, m->s = v, m->len = (uint32_t)len;
    } else if (len == 1 && v[0] == '*') {
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
    cd.http_only = attr == ATTR_HOST || attr == ATTR_METHOD || attr == ATTR_PATH || attr == ATTR_HEADER ||
                   attr >= ATTR_REQ_PRINCIPAL;
    if (cd.http_only)
        c->e->needs_http = 1;
    if (header != NULL) {
        char *h = strdup(header);
        if (h == NULL)
            return c->ret = -ENOMEM;
        for (char *p = h; *p && attr == ATTR_HEADER; p++) /* claim names keep their case */
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if ((cd.header = own(c, h)) == NULL)
            return c->ret;
        cd.header_len = strlen(h);
    }
    if (attr == ATTR_REMOTE_IP)
        c->e->needs_remote_ip = 1;
    if (attr == ATTR_SERVICE_ACCOUNT || attr == ATTR_TRUST_DOMAIN)
        c->e->needs_peer_parts = 1;
    switch (attr) {
    case ATTR_SOURCE_IP:
    case ATTR_DEST_IP:
    case ATTR_REMOTE_IP:
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
            for (size_t k = 1; k + 1 < len && !(attr == ATTR_PATH && strpbrk(v, "{}") != NULL); k++)
                if (v[k] == '*')
                    return compile_error(c, "%s: \"%s\": '*' only first or last", what, v);
            if (attr == ATTR_SERVICE_ACCOUNT) {
                const char *k = own(c, rm__policy_service_account_key(v, c->policy_ns));
                if (k == NULL || (ret = add_smatch(c, k, attr)) != 0)
                    return c->ret != 0 ? c->ret : ret;
            } else if (attr == ATTR_PRINCIPAL && c->e->opts.trust_domain != NULL) {
                if ((ret = add_principal_smatches(c, v)) != 0)
                    return ret;
            } else if ((ret = add_smatch(c, v, attr)) != 0) {
                return ret;
            }
        }
        cd.count = (uint32_t)(c->e->num_smatches - cd.first);
        break;
    }
    if (attr == ATTR_SOURCE_IP || attr == ATTR_DEST_IP || attr == ATTR_DEST_PORT || attr == ATTR_REMOTE_IP)
        cd.count = (uint32_t)values->n;
    if (c->e->num_conds >= c->cap_origins) {
        cond_origin_t *np = realloc(c->e->cond_origins, c->cap_conds * sizeof(*np));
        if (np == NULL)
            return c->ret = -ENOMEM;
        c->e->cond_origins = np;
        c->cap_origins = c->cap_conds;
    }
    c->e->cond_origins[c->e->num_conds] = c->origin;
    c->e->cond_origins[c->e->num_conds].want = values;
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
        {"source.ip", ATTR_SOURCE_IP},
        {"source.namespace", ATTR_NAMESPACE},
        {"source.principal", ATTR_PRINCIPAL},
        {"destination.ip", ATTR_DEST_IP},
        {"destination.port", ATTR_DEST_PORT},
        {"connection.sni", ATTR_SNI},
        {"remote.ip", ATTR_REMOTE_IP},
        {"source.serviceAccount", ATTR_SERVICE_ACCOUNT},
        {"source.trustDomain", ATTR_TRUST_DOMAIN},
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
    if (strncmp(key, "request.auth.", 13) == 0) {
        const char *why;
        if (!rm__request_auth_key_ok(key, &why))
            return -1;
        if (strncmp(key + 13, "claims[", 7) == 0)
            *attr = ATTR_REQ_CLAIM, *header = key + 20; /* "a][b]" */
        else
            *attr = key[13] == 'p' && key[14] == 'r' && key[15] == 'i' ? ATTR_REQ_PRINCIPAL
                    : key[13] == 'a'                                   ? ATTR_REQ_AUDIENCE
                                                                       : ATTR_REQ_PRESENTER;
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

    c->policy_ns = p->namespace_;
    cr.groups.first = (uint32_t)c->e->num_groups;
    if (r->num_from > 0) {
        if ((ret = begin_group(c)) != 0)
            return ret;
        for (size_t i = 0; i < r->num_from; i++) {
            const rm_authz_source_t *s = &r->from[i];
            snprintf(what, sizeof(what), "%s/%s rules[%zu].from[%zu]", p->namespace_, p->name, ri, i);
            c->origin = (cond_origin_t){.part = RM_AUTHZ_PART_FROM, .part_index = (uint16_t)i};
            if ((ret = begin_clause(c)) != 0 ||
                (ret = add_list_cond(c, ATTR_PRINCIPAL, &s->principals, &s->not_principals, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_NAMESPACE, &s->namespaces, &s->not_namespaces, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_SOURCE_IP, &s->ip_blocks, &s->not_ip_blocks, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_SERVICE_ACCOUNT, &s->service_accounts, &s->not_service_accounts, what)) !=
                    0 ||
                (ret = add_list_cond(c, ATTR_TRUST_DOMAIN, &s->trust_domains, &s->not_trust_domains, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_REMOTE_IP, &s->remote_ip_blocks, &s->not_remote_ip_blocks, what)) != 0 ||
                (ret = add_list_cond(c, ATTR_REQ_PRINCIPAL, &s->request_principals, &s->not_request_principals,
                                     what)) != 0)
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
            c->origin = (cond_origin_t){.part = RM_AUTHZ_PART_TO, .part_index = (uint16_t)i};
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
        c->origin = (cond_origin_t){.part = RM_AUTHZ_PART_WHEN, .part_index = (uint16_t)i, .key = w->key};
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
            ok = e->smatches[cd->first + v].kind != SM_ANY && e->smatches[cd->first + v].kind != SM_TEMPLATE;
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

/* The index key of value v of a rule's key condition. */
static void value_key(const rm_authz_engine_t *e, const cond_t *cd, uint32_t v, int key, uint32_t *tag, const void **kp,
                      uint32_t *len, uint64_t *h)
{
    if (key == KEY_SOURCE_IP) {
        *kp = e->cidr_keys + (size_t)(cd->first + v) * CIDR_KEY;
        *len = CIDR_KEY;
        *tag = (uint32_t)key << 2 | SM_PREFIX;
        *h = rm__policy_hash_key(*kp, CIDR_KEY, *tag);
        return;
    }
    const smatch_t *m = &e->smatches[cd->first + v];
    *kp = m->s;
    *len = m->len;
    *tag = (uint32_t)key << 2 | m->kind;
    *h = rm__policy_hash_key(m->s, m->len, *tag);
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
                        index_slot_t *sl = rm__policy_slot_find(l, tag, kp, len, h);
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
                        const rm_authz_engine_opts_t *opts,
                        char *err, // NOLINT(readability-non-const-parameter): written through the compiler's c.err
                        size_t errlen)
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
        rm__policy_cidr_key(c.e->cidr_keys + i * CIDR_KEY, c.e->cidrs[i].addr, c.e->cidrs[i].prefix);
    for (int li = 0; li < LIST_COUNT; li++)
        if ((ret = build_index(&c, &c.e->lists[li], list_action[li] != RM_AUTHZ_ALLOW)) != 0)
            goto Exit;
    if ((ret = rm__policy_collect_headers(c.e)) != 0)
        goto Exit;
    if (c.e->opts.log_allowed)
        c.e->needs_http = 1; /* allowed requests are logged one by one */
    if (c.e->needs_remote_ip && c.e->opts.num_trusted_proxies > 0)
        c.e->needs_http = 1; /* remote.ip is read from each request's X-Forwarded-For */
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
    free(e->cond_origins);
    free(e->tested_headers);
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
