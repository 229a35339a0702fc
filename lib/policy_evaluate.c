/* Evaluating a request against a compiled engine: the hot path of every connection and request. Nothing here
 * allocates; a decision reads the arrays policy_compile.c wrote (policy_engine_internal.h). */
#include "ringmesh/policy.h"
#include "policy_engine_internal.h"

#include <string.h>
#include <strings.h>

static int smatch_one(const smatch_t *m, const char *s, size_t len, int icase)
{
    switch (m->kind) {
    case SM_TEMPLATE:
        return rm__policy_template_match(m->s, m->len, s, len);
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

int rm__policy_smatch_any(const rm_authz_engine_t *e, const cond_t *cd, const char *s, size_t len, int icase)
{
    return smatch_any(e, cd, s, len, icase);
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

/* 1 match, 0 no match, -1 attribute absent. Inlined into the decision's loop, as when it had one caller: the closest
 * miss's wrapper below is a second one. */
__attribute__((always_inline)) static inline int cond_positive(const rm_authz_engine_t *e, const cond_t *cd,
                                                               eval_ctx_t *x)
{
    const rm_authz_attrs_t *a = x->a;
    switch ((attr_t)cd->attr) {
    case ATTR_PRINCIPAL:
        return x->principal == NULL ? -1 : smatch_any(e, cd, x->principal, x->principal_len, 0);
    case ATTR_NAMESPACE:
        return x->ns == NULL ? -1 : smatch_any(e, cd, x->ns, x->ns_len, 0);
    case ATTR_SERVICE_ACCOUNT:
        return x->sa == NULL ? -1 : smatch_any(e, cd, x->sa, x->sa_len, 0);
    case ATTR_TRUST_DOMAIN:
        return x->td == NULL ? -1 : smatch_any(e, cd, x->td, x->td_len, 0);
    case ATTR_SOURCE_IP:
    case ATTR_DEST_IP:
    case ATTR_REMOTE_IP: {
        const uint8_t *ip = cd->attr == ATTR_SOURCE_IP ? a->source_ip
                            : cd->attr == ATTR_DEST_IP ? a->destination_ip
                                                       : x->remote_ip;
        if (cd->attr == ATTR_REMOTE_IP ? ip == NULL
                                       : !(cd->attr == ATTR_SOURCE_IP ? a->have_source_ip : a->have_destination_ip))
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
    case ATTR_REQ_PRINCIPAL:
    case ATTR_REQ_AUDIENCE:
    case ATTR_REQ_PRESENTER:
    case ATTR_REQ_CLAIM:
        return rm__request_auth_match(e, cd, a->request_auth);
    }
    return 0;
}

__attribute__((always_inline)) static inline int cond_match(const rm_authz_engine_t *e, const cond_t *cd, eval_ctx_t *x,
                                                            uint8_t action)
{
    if (cd->http_only && x->a->http == NULL)
        return action != RM_AUTHZ_ALLOW; /* Istio's rule for HTTP-only fields on a TCP connection */
    int r = cond_positive(e, cd, x);
    if (r < 0)
        r = 0;
    return cd->negate ? !r : r;
}

int rm__policy_cond_match(const rm_authz_engine_t *e, const cond_t *cd, eval_ctx_t *x, uint8_t action)
{
    return cond_match(e, cd, x, action);
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
    const index_slot_t *sl = rm__policy_slot_find(l, tag, key, len, rm__policy_hash_key(key, len, tag));
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
        probe(e, l, tag /* | SM_EXACT, which is 0 */, s, len, x, with_dry, best);
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
        rm__policy_cidr_key(k, ip, ka->prefix.v[i]);
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
    if (!with_dry)
        rm__policy_closest_miss(e, x, d); /* the no-match path only: an allowed request does not pay for it */
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
    x.sa = x.td = NULL;
    x.sa_len = x.td_len = 0;
    x.remote_ip = a->have_remote_ip ? a->remote_ip : a->have_source_ip ? a->source_ip : NULL;
    x.too_long_header = NULL;
    memset(d, 0, sizeof(*d));
    d->rule = d->dry_run_rule = d->audit_rule = -1;

    if (a->principal != NULL && a->principal[0] != '\0') {
        x.principal = rm__policy_strip_spiffe(a->principal);
        x.principal_len = strlen(x.principal);
        /* the namespace is the segment after "/ns/" in "<trust-domain>/ns/<ns>/sa/<sa>" */
        const char *ns = strstr(x.principal, "/ns/");
        if (ns != NULL) {
            ns += 4;
            const char *end = strchr(ns, '/');
            x.ns = ns;
            x.ns_len = end != NULL ? (size_t)(end - ns) : strlen(ns);
        }
        if (e->needs_peer_parts &&
            !rm__policy_principal_parts(x.principal, x.principal_len, &x.sa, &x.sa_len, &x.td, &x.td_len))
            x.sa = NULL;
    }
    /* remote.ip: what the caller knows, else the client X-Forwarded-For names behind the mesh's trusted proxies */
    if (!a->have_remote_ip && e->needs_remote_ip && a->http != NULL &&
        rm__policy_xff_remote_ip(a->http, e->opts.num_trusted_proxies, x.remote_ip_buf)) {
        x.remote_ip = x.remote_ip_buf;
        memcpy(d->remote_ip, x.remote_ip_buf, 16);
        d->have_remote_ip = 1;
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
        d->miss_policy = NULL;
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
    if (!d->allow || d->dry_run_differs || d->audit_policy != NULL ||
        ((e->opts.log_allowed || (d->policy != NULL && d->policy->log_allowed)) && sample < e->opts.log_allowed_sample))
        d->log = 1;
}
