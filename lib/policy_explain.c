/* Why not allowed: the closest miss of a request that no ALLOW rule matched, and its words.
 *
 * The closest miss is the enforced ALLOW rule that matched the most fields (a field: one list of a source or an
 * operation, or the values / notValues of a `when`), ties going to the rule with fewer failed fields, then to the
 * first in decision order. Within a `from` or `to` with several entries, the entry that matched the most fields
 * counts. The field named is the first of that rule that failed, with the request's value that failed it.
 *
 * This runs only when the request is denied for want of an ALLOW match, and allocates nothing. So that a denial does
 * not sweep the caches an allowed request needs (a walk over a thousand rules would), it evaluates at most
 * MISS_BUDGET conditions: first the rules the index files under the request's own values (they already match their
 * most selective field) and the rules the index does not hold, then every ALLOW rule in decision order while the
 * budget lasts. Within the budget, which is every rule of a usual workload, the answer is exact; beyond it, the
 * decision says it is partial (miss_partial). */
#include "ringmesh/policy.h"
#include "policy_engine_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MISS_BUDGET 64 /* conditions evaluated at most, per denied request */

typedef struct st_tally_t {
    uint32_t matched, failed, first_failed; /* first_failed: a cond index, UINT32_MAX when none failed */
} tally_t;

/* 1 when `t` is a closer miss than `best` */
static int closer(const tally_t *t, const tally_t *best)
{
    return t->matched > best->matched || (t->matched == best->matched && t->failed < best->failed);
}

typedef struct st_search_t {
    const rm_authz_engine_t *e;
    eval_ctx_t *x;
    uint32_t budget;
    uint32_t best_rule; /* into e->rules, UINT32_MAX: none yet */
    tally_t best;
} search_t;

static void rule_tally(const rm_authz_engine_t *e, const crule_t *r, eval_ctx_t *x, tally_t *t)
{
    *t = (tally_t){.first_failed = UINT32_MAX};
    for (uint32_t gi = 0; gi < r->groups.count; gi++) {
        const span_t *g = &e->groups[r->groups.first + gi];
        tally_t gbest = {.first_failed = UINT32_MAX};
        for (uint32_t ci = 0; ci < g->count; ci++) {
            const span_t *cl = &e->clauses[g->first + ci];
            tally_t c = {.first_failed = UINT32_MAX};
            for (uint32_t k = 0; k < cl->count; k++) {
                if (rm__policy_cond_match(e, &e->conds[cl->first + k], x, r->action)) {
                    c.matched++;
                } else {
                    c.failed++;
                    if (c.first_failed == UINT32_MAX)
                        c.first_failed = cl->first + k;
                }
            }
            if (ci == 0 || closer(&c, &gbest))
                gbest = c;
        }
        t->matched += gbest.matched;
        t->failed += gbest.failed;
        if (t->first_failed == UINT32_MAX)
            t->first_failed = gbest.first_failed;
    }
}

/* The conditions rule `r` has: what tallying it costs. */
static uint32_t rule_cost(const rm_authz_engine_t *e, const crule_t *r)
{
    uint32_t n = 0;
    for (uint32_t gi = 0; gi < r->groups.count; gi++) {
        const span_t *g = &e->groups[r->groups.first + gi];
        for (uint32_t ci = 0; ci < g->count; ci++)
            n += e->clauses[g->first + ci].count;
    }
    return n;
}

/* Tallies rule `ri` within the budget; 0 when the budget is spent. Ties go to the first rule in decision order. */
static int consider(search_t *s, uint32_t ri)
{
    const crule_t *r = &s->e->rules[ri];
    tally_t t;
    if (r->dry_run || ri == s->best_rule)
        return 1;
    uint32_t cost = rule_cost(s->e, r);
    if (cost > s->budget)
        return 0;
    s->budget -= cost;
    rule_tally(s->e, r, s->x, &t);
    if (t.first_failed == UINT32_MAX)
        return 1; /* nothing failed: only a repeated header too long to join can get here, and that denies */
    if (s->best_rule == UINT32_MAX || closer(&t, &s->best) ||
        (t.matched == s->best.matched && t.failed == s->best.failed && ri < s->best_rule)) {
        s->best = t;
        s->best_rule = ri;
    }
    return 1;
}

static void consider_slot(search_t *s, const rule_list_t *l, uint32_t tag, const void *key, size_t len)
{
    const index_slot_t *sl = rm__policy_slot_find(l, tag, key, len, rm__policy_hash_key(key, len, tag));
    for (uint32_t i = 0; sl->key != NULL && i < sl->rules.count; i++)
        if (!consider(s, s->e->index_rules[sl->rules.first + i]))
            return;
}

static void consider_string(search_t *s, const rule_list_t *l, int key, const char *v, size_t len)
{
    const key_attr_t *ka = &l->keys[key];
    uint32_t tag = (uint32_t)key << 2;
    if (ka->has_exact)
        consider_slot(s, l, tag, v, len);
    for (size_t i = 0; i < ka->prefix.n && ka->prefix.v[i] <= len; i++)
        consider_slot(s, l, tag | SM_PREFIX, v, ka->prefix.v[i]);
    for (size_t i = 0; i < ka->suffix.n && ka->suffix.v[i] <= len; i++)
        consider_slot(s, l, tag | SM_SUFFIX, v + len - ka->suffix.v[i], ka->suffix.v[i]);
}

/* The rules filed under the request's values (as a decision looks them up), and those not in the index. */
static void consider_candidates(search_t *s, const rule_list_t *l)
{
    const rm_authz_attrs_t *a = s->x->a;
    eval_ctx_t *x = s->x;
    for (uint32_t i = 0; i < l->num_unindexed; i++)
        if (!consider(s, l->unindexed[i]))
            return;
    if (l->num_slots == 0)
        return;
    if (x->principal != NULL && l->keys[KEY_PRINCIPAL].used)
        consider_string(s, l, KEY_PRINCIPAL, x->principal, x->principal_len);
    if (x->ns != NULL && l->keys[KEY_NAMESPACE].used)
        consider_string(s, l, KEY_NAMESPACE, x->ns, x->ns_len);
    if (a->have_source_ip && l->keys[KEY_SOURCE_IP].used) {
        uint8_t k[CIDR_KEY];
        const key_attr_t *ka = &l->keys[KEY_SOURCE_IP];
        for (size_t i = 0; i < ka->prefix.n; i++) {
            rm__policy_cidr_key(k, a->source_ip, ka->prefix.v[i]);
            consider_slot(s, l, (uint32_t)KEY_SOURCE_IP << 2 | SM_PREFIX, k, CIDR_KEY);
        }
    }
    if (a->http != NULL && x->path != NULL && l->keys[KEY_PATH].used)
        consider_string(s, l, KEY_PATH, x->path, x->path_len);
    /* the rules found by a request header are left to the walk in decision order: looking the header up again
     * would join its values into the buffer a condition may be reading */
}

static uint8_t miss_attr(uint8_t attr)
{
    switch ((attr_t)attr) {
    case ATTR_PRINCIPAL:
        return RM_AUTHZ_MISS_ATTR_PRINCIPAL;
    case ATTR_NAMESPACE:
        return RM_AUTHZ_MISS_ATTR_NAMESPACE;
    case ATTR_SOURCE_IP:
        return RM_AUTHZ_MISS_ATTR_SOURCE_IP;
    case ATTR_DEST_IP:
        return RM_AUTHZ_MISS_ATTR_DEST_IP;
    case ATTR_DEST_PORT:
        return RM_AUTHZ_MISS_ATTR_DEST_PORT;
    case ATTR_SNI:
        return RM_AUTHZ_MISS_ATTR_SNI;
    case ATTR_HOST:
        return RM_AUTHZ_MISS_ATTR_HOST;
    case ATTR_METHOD:
        return RM_AUTHZ_MISS_ATTR_METHOD;
    case ATTR_PATH:
        return RM_AUTHZ_MISS_ATTR_PATH;
    case ATTR_HEADER:
        return RM_AUTHZ_MISS_ATTR_HEADER;
    case ATTR_SERVICE_ACCOUNT:
        return RM_AUTHZ_MISS_ATTR_SERVICE_ACCOUNT;
    case ATTR_TRUST_DOMAIN:
        return RM_AUTHZ_MISS_ATTR_TRUST_DOMAIN;
    case ATTR_REMOTE_IP:
        return RM_AUTHZ_MISS_ATTR_REMOTE_IP;
    case ATTR_REQ_PRINCIPAL:
        return RM_AUTHZ_MISS_ATTR_REQUEST_PRINCIPAL;
    case ATTR_REQ_AUDIENCE:
    case ATTR_REQ_PRESENTER:
    case ATTR_REQ_CLAIM: /* a token's claims are not written back into a log line */
        return RM_AUTHZ_MISS_ATTR_OTHER;
    }
    return RM_AUTHZ_MISS_ATTR_OTHER;
}

void rm__policy_closest_miss(const rm_authz_engine_t *e, eval_ctx_t *x, rm_authz_decision_t *d)
{
    const rule_list_t *l = &e->lists[LIST_ALLOW];
    search_t s = {.e = e, .x = x, .budget = MISS_BUDGET, .best_rule = UINT32_MAX};
    const char *too_long = x->too_long_header;
    uint32_t ri;

    d->miss_policy = NULL;
    consider_candidates(&s, l);
    for (ri = l->first; ri < l->first + l->count; ri++)
        if (!consider(&s, ri))
            break;
    /* a repeated header too long to join that only this search read does not change the decision's reason */
    x->too_long_header = too_long;
    if (s.best_rule == UINT32_MAX)
        return;
    const crule_t *best_rule = &e->rules[s.best_rule];
    const tally_t best = s.best;
    const cond_t *cd = &e->conds[best.first_failed];
    const cond_origin_t *o = &e->cond_origins[best.first_failed];
    d->miss_partial = ri < l->first + l->count;
    d->miss_policy = best_rule->policy;
    d->miss_rule = best_rule->index;
    d->miss_want = o->want;
    d->miss_key = o->key;
    d->miss_header = cd->attr == ATTR_HEADER ? cd->header : NULL;
    d->miss_part = o->part;
    d->miss_part_index = o->part_index;
    d->miss_attr = miss_attr(cd->attr);
    d->miss_negated = cd->negate;
    d->miss_not_http = cd->http_only && x->a->http == NULL;
    d->miss_matched = (uint16_t)(best.matched > UINT16_MAX ? UINT16_MAX : best.matched);
    d->miss_fields = (uint16_t)(best.matched + best.failed > UINT16_MAX ? UINT16_MAX : best.matched + best.failed);
}

/* The field's name in its source or operation: Istio's spelling. */
static const char *field_name(const rm_authz_decision_t *d)
{
    static const char *const names[][2] = {
        [RM_AUTHZ_MISS_ATTR_PRINCIPAL] = {"principals", "notPrincipals"},
        [RM_AUTHZ_MISS_ATTR_NAMESPACE] = {"namespaces", "notNamespaces"},
        [RM_AUTHZ_MISS_ATTR_SOURCE_IP] = {"ipBlocks", "notIpBlocks"},
        [RM_AUTHZ_MISS_ATTR_DEST_IP] = {"destination.ip", "destination.ip"},
        [RM_AUTHZ_MISS_ATTR_DEST_PORT] = {"ports", "notPorts"},
        [RM_AUTHZ_MISS_ATTR_SNI] = {"connection.sni", "connection.sni"},
        [RM_AUTHZ_MISS_ATTR_HOST] = {"hosts", "notHosts"},
        [RM_AUTHZ_MISS_ATTR_METHOD] = {"methods", "notMethods"},
        [RM_AUTHZ_MISS_ATTR_PATH] = {"paths", "notPaths"},
        [RM_AUTHZ_MISS_ATTR_HEADER] = {"request.headers", "request.headers"},
        [RM_AUTHZ_MISS_ATTR_SERVICE_ACCOUNT] = {"serviceAccounts", "notServiceAccounts"},
        [RM_AUTHZ_MISS_ATTR_TRUST_DOMAIN] = {"trustDomains", "notTrustDomains"},
        [RM_AUTHZ_MISS_ATTR_REMOTE_IP] = {"remoteIpBlocks", "notRemoteIpBlocks"},
        [RM_AUTHZ_MISS_ATTR_REQUEST_PRINCIPAL] = {"requestPrincipals", "notRequestPrincipals"},
    };
    if (d->miss_part == RM_AUTHZ_PART_WHEN)
        return d->miss_negated ? "notValues" : "values";
    if (d->miss_attr < sizeof(names) / sizeof(names[0]))
        return names[d->miss_attr][d->miss_negated ? 1 : 0];
    return "field";
}

const char *rm_authz_closest_miss_field(const rm_authz_decision_t *d, char *buf, size_t len)
{
    static const char *const parts[] = {"from", "to", "when"}, *const kinds[] = {".source", ".operation", ""};
    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (d->miss_policy != NULL && d->miss_part <= RM_AUTHZ_PART_WHEN)
        snprintf(buf, len, "%s[%u]%s.%s", parts[d->miss_part], (unsigned)d->miss_part_index, kinds[d->miss_part],
                 field_name(d));
    return buf;
}

static int put_ip(const uint8_t ip[16], char *buf, size_t len)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char s[INET6_ADDRSTRLEN];
    if (memcmp(ip, v4mapped, 12) == 0)
        inet_ntop(AF_INET, ip + 12, s, sizeof(s));
    else
        inet_ntop(AF_INET6, ip, s, sizeof(s));
    snprintf(buf, len, "%s", s);
    return 1;
}

static int put_strn(const char *s, size_t n, char *buf, size_t len)
{
    snprintf(buf, len, "%.*s", (int)(n > (size_t)INT32_MAX ? INT32_MAX : n), s);
    return 1;
}

/* a header's values in order joined with "," (what the engine matched), truncated to fit */
static int put_header(const rm_http_request_t *r, const char *name, char *buf, size_t len)
{
    size_t o = 0, name_len = strlen(name);
    int found = 0;
    for (size_t i = 0; i < r->num_headers && o + 1 < len; i++) {
        const rm_http_header_t *h = &r->headers[i];
        if (h->name_len != name_len || strncasecmp(h->name, name, name_len) != 0)
            continue;
        if (found++ > 0)
            buf[o++] = ',';
        size_t n = h->value_len < len - 1 - o ? h->value_len : len - 1 - o;
        memcpy(buf + o, h->value, n);
        o += n;
    }
    buf[o] = '\0';
    return found > 0;
}

int rm_authz_closest_miss_got(const rm_authz_decision_t *d, const rm_authz_attrs_t *a, char *buf, size_t len)
{
    const rm_http_request_t *r = a->http;
    int ret = 0;
    if (len == 0)
        return 0;
    buf[0] = '\0';
    if (d->miss_policy == NULL || d->miss_not_http)
        return 0;
    switch (d->miss_attr) {
    case RM_AUTHZ_MISS_ATTR_PRINCIPAL:
    case RM_AUTHZ_MISS_ATTR_NAMESPACE: {
        if (a->principal == NULL || a->principal[0] == '\0')
            break;
        const char *p = a->principal, *ns;
        if (d->miss_attr == RM_AUTHZ_MISS_ATTR_PRINCIPAL) {
            ret = put_strn(p, strlen(p), buf, len);
            break;
        }
        if ((ns = strstr(p, "/ns/")) == NULL)
            break;
        ns += 4;
        const char *end = strchr(ns, '/');
        ret = put_strn(ns, end != NULL ? (size_t)(end - ns) : strlen(ns), buf, len);
        break;
    }
    case RM_AUTHZ_MISS_ATTR_SOURCE_IP:
        ret = a->have_source_ip ? put_ip(a->source_ip, buf, len) : 0;
        break;
    case RM_AUTHZ_MISS_ATTR_SERVICE_ACCOUNT:
    case RM_AUTHZ_MISS_ATTR_TRUST_DOMAIN: {
        const char *p = a->principal, *sa;
        if (p == NULL || p[0] == '\0')
            break;
        if (strncmp(p, "spiffe://", 9) == 0)
            p += 9;
        if ((sa = strstr(p, "/ns/")) == NULL)
            break;
        if (d->miss_attr == RM_AUTHZ_MISS_ATTR_TRUST_DOMAIN) {
            ret = put_strn(p, (size_t)(sa - p), buf, len);
            break;
        }
        /* "ns/NS/sa/SA" as "NS/SA", the form serviceAccounts are written in */
        const char *ns = sa + 4, *rest = strstr(ns, "/sa/");
        if (rest == NULL)
            break;
        snprintf(buf, len, "%.*s/%s", (int)(rest - ns), ns, rest + 4);
        ret = 1;
        break;
    }
    case RM_AUTHZ_MISS_ATTR_REQUEST_PRINCIPAL:
        ret = a->request_auth != NULL && a->request_auth->principal != NULL
                  ? put_strn(a->request_auth->principal, strlen(a->request_auth->principal), buf, len)
                  : 0;
        break;
    case RM_AUTHZ_MISS_ATTR_REMOTE_IP:
        if (d->have_remote_ip)
            ret = put_ip(d->remote_ip, buf, len);
        else if (a->have_remote_ip)
            ret = put_ip(a->remote_ip, buf, len);
        else
            ret = a->have_source_ip ? put_ip(a->source_ip, buf, len) : 0;
        break;
    case RM_AUTHZ_MISS_ATTR_DEST_IP:
        ret = a->have_destination_ip ? put_ip(a->destination_ip, buf, len) : 0;
        break;
    case RM_AUTHZ_MISS_ATTR_DEST_PORT:
        snprintf(buf, len, "%u", (unsigned)a->destination_port);
        ret = 1;
        break;
    case RM_AUTHZ_MISS_ATTR_SNI:
        ret = a->sni != NULL ? put_strn(a->sni, strlen(a->sni), buf, len) : 0;
        break;
    case RM_AUTHZ_MISS_ATTR_HOST:
        ret = r != NULL && r->host != NULL ? put_strn(r->host, r->host_len, buf, len) : 0;
        break;
    case RM_AUTHZ_MISS_ATTR_METHOD:
        ret = r != NULL ? put_strn(r->method, r->method_len, buf, len) : 0;
        break;
    case RM_AUTHZ_MISS_ATTR_PATH:
        if (r != NULL && r->path != NULL) {
            size_t n = 0;
            while (n < r->path_len && r->path[n] != '?' && r->path[n] != '#')
                n++;
            ret = put_strn(r->path, n, buf, len);
        }
        break;
    case RM_AUTHZ_MISS_ATTR_HEADER:
        ret = r != NULL && d->miss_header != NULL ? put_header(r, d->miss_header, buf, len) : 0;
        if (ret && rm_authz_header_secret(d->miss_header, strlen(d->miss_header)))
            snprintf(buf, len, "(a credential: not shown)"); /* never into a log or a terminal */
        break;
    }
    if (!ret)
        buf[0] = '\0';
    return ret;
}

/* "[a, b]", cut with "..." when it does not fit */
static void want_text(const rm_strlist_t *w, char *buf, size_t len)
{
    size_t o = 0;
    int n = snprintf(buf, len, "[");
    o = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; w != NULL && i < w->n && o < len; i++) {
        n = snprintf(buf + o, len - o, "%s%s", i > 0 ? ", " : "", w->v[i]);
        o += n > 0 ? (size_t)n : 0;
    }
    if (o < len)
        snprintf(buf + o, len - o, "]");
    else if (len > 4)
        memcpy(buf + len - 4, "...", 4);
}

/* what the request lacked, in words */
static const char *absent_text(const rm_authz_decision_t *d)
{
    if (d->miss_not_http)
        return "the connection is not HTTP";
    switch (d->miss_attr) {
    case RM_AUTHZ_MISS_ATTR_PRINCIPAL:
    case RM_AUTHZ_MISS_ATTR_NAMESPACE:
        return "the peer has no mTLS identity";
    case RM_AUTHZ_MISS_ATTR_SNI:
        return "the connection sent no SNI";
    case RM_AUTHZ_MISS_ATTR_HOST:
        return "the request has no host";
    case RM_AUTHZ_MISS_ATTR_HEADER:
        return "the request has no such header";
    case RM_AUTHZ_MISS_ATTR_SOURCE_IP:
    case RM_AUTHZ_MISS_ATTR_DEST_IP:
        return "the address is not known";
    }
    return "the request has no value for it";
}

void rm_authz_closest_miss_explain(const rm_authz_decision_t *d, const rm_authz_attrs_t *a, char *buf, size_t len)
{
    char want[512], got[512], key[320] = "";
    if (len == 0)
        return;
    buf[0] = '\0';
    if (d->miss_policy == NULL)
        return;
    want_text(d->miss_want, want, sizeof(want));
    int have = rm_authz_closest_miss_got(d, a, got, sizeof(got));
    const char *name = field_name(d);
    if (d->miss_part == RM_AUTHZ_PART_WHEN && d->miss_key != NULL)
        snprintf(key, sizeof(key), "when[%u] %s ", (unsigned)d->miss_part_index, d->miss_key);
    if (!have)
        snprintf(buf, len, "%s/%s rule %d: %s%s %s did not match: %s", d->miss_policy->namespace_, d->miss_policy->name,
                 d->miss_rule, key, name, want, absent_text(d));
    else
        snprintf(buf, len, "%s/%s rule %d: %s%s %s %s %s", d->miss_policy->namespace_, d->miss_policy->name,
                 d->miss_rule, key, name, want, d->miss_negated ? "matched" : "did not match", got);
}
