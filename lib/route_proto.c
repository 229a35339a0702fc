/* Routes <-> ringmesh.v1.Route (ringmesh/route_proto.h). Encoding borrows the route's strings and allocates the
 * messages from an arena freed at once after packing; decoding copies everything and checks what the sidecar
 * relies on (enums, regular expressions, weights), since a pushed message is input like any other. */
#include "route_internal.h"

#include "ringmesh/route_proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

void rm_route_arena_clear(rm_route_arena_t *a)
{
    for (size_t i = 0; i < a->num; i++)
        free(a->blocks[i]);
    free(a->blocks);
    memset(a, 0, sizeof(*a));
}

void *rm_route_arena_alloc(rm_route_arena_t *a, size_t n, size_t size)
{
    void *p;
    if (n == 0)
        return NULL;
    if (a->num == a->cap) {
        size_t cap = a->cap == 0 ? 32 : a->cap * 2;
        void **b = realloc(a->blocks, cap * sizeof(*b));
        if (b == NULL)
            return NULL;
        a->blocks = b;
        a->cap = cap;
    }
    if ((p = calloc(n, size)) != NULL)
        a->blocks[a->num++] = p;
    return p;
}

#define ALLOC(a, n, type) ((type *)rm_route_arena_alloc((a), (n), sizeof(type)))
#define S(s)              ((char *)((s) != NULL ? (s) : ""))

static int kv_to_proto(rm_route_arena_t *a, const rm_route_kv_match_t *kv, size_t n,
                       Ringmesh__V1__RouteValueMatch ***out)
{
    Ringmesh__V1__RouteValueMatch *m = ALLOC(a, n, Ringmesh__V1__RouteValueMatch);
    Ringmesh__V1__RouteValueMatch **l = ALLOC(a, n, Ringmesh__V1__RouteValueMatch *);
    if (n > 0 && (m == NULL || l == NULL))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        ringmesh__v1__route_value_match__init(&m[i]);
        m[i].type = (Ringmesh__V1__RouteValueType)kv[i].type;
        m[i].name = S(kv[i].name);
        m[i].value = S(kv[i].value);
        l[i] = &m[i];
    }
    *out = l;
    return 0;
}

static int headers_to_proto(rm_route_arena_t *a, const rm_route_header_t *h, size_t n, Ringmesh__V1__RouteHeader ***out)
{
    Ringmesh__V1__RouteHeader *m = ALLOC(a, n, Ringmesh__V1__RouteHeader);
    Ringmesh__V1__RouteHeader **l = ALLOC(a, n, Ringmesh__V1__RouteHeader *);
    if (n > 0 && (m == NULL || l == NULL))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        ringmesh__v1__route_header__init(&m[i]);
        m[i].name = S(h[i].name);
        m[i].value = S(h[i].value);
        l[i] = &m[i];
    }
    *out = l;
    return 0;
}

static int rule_to_proto(rm_route_arena_t *a, const rm_route_rule_t *r, Ringmesh__V1__RouteRule *m)
{
    Ringmesh__V1__RouteMatch *mt = ALLOC(a, r->num_matches, Ringmesh__V1__RouteMatch);
    Ringmesh__V1__RouteFilter *f = ALLOC(a, r->num_filters, Ringmesh__V1__RouteFilter);
    Ringmesh__V1__RouteBackend *b = ALLOC(a, r->num_backends, Ringmesh__V1__RouteBackend);

    ringmesh__v1__route_rule__init(m);
    m->name = S(r->name);
    m->request_timeout_ms = r->request_timeout_ms;
    m->backend_request_timeout_ms = r->backend_request_timeout_ms;
    m->n_matches = r->num_matches;
    m->n_filters = r->num_filters;
    m->n_backends = r->num_backends;
    m->matches = ALLOC(a, r->num_matches, Ringmesh__V1__RouteMatch *);
    m->filters = ALLOC(a, r->num_filters, Ringmesh__V1__RouteFilter *);
    m->backends = ALLOC(a, r->num_backends, Ringmesh__V1__RouteBackend *);
    if ((r->num_matches > 0 && (mt == NULL || m->matches == NULL)) ||
        (r->num_filters > 0 && (f == NULL || m->filters == NULL)) ||
        (r->num_backends > 0 && (b == NULL || m->backends == NULL)))
        return -ENOMEM;
    for (size_t i = 0; i < r->num_matches; i++) {
        const rm_route_match_t *x = &r->matches[i];
        ringmesh__v1__route_match__init(&mt[i]);
        mt[i].path_type = (Ringmesh__V1__RoutePathType)x->path_type;
        mt[i].path = S(x->path);
        mt[i].method = S(x->method);
        mt[i].grpc_type = (Ringmesh__V1__RouteValueType)x->grpc_type;
        mt[i].grpc_service = S(x->grpc_service);
        mt[i].grpc_method = S(x->grpc_method);
        mt[i].n_headers = x->num_headers;
        mt[i].n_query_params = x->num_query;
        if (kv_to_proto(a, x->headers, x->num_headers, &mt[i].headers) != 0 ||
            kv_to_proto(a, x->query, x->num_query, &mt[i].query_params) != 0)
            return -ENOMEM;
        m->matches[i] = &mt[i];
    }
    for (size_t i = 0; i < r->num_filters; i++) {
        const rm_route_filter_t *x = &r->filters[i];
        ringmesh__v1__route_filter__init(&f[i]);
        f[i].type = (Ringmesh__V1__RouteFilterType)x->type;
        f[i].n_set = x->num_set;
        f[i].n_add = x->num_add;
        f[i].n_remove = x->num_remove;
        f[i].remove = x->remove;
        f[i].scheme = S(x->scheme);
        f[i].hostname = S(x->hostname);
        f[i].path_type = (Ringmesh__V1__RouteRewrite)x->path_type;
        f[i].path = S(x->path);
        f[i].port = x->port;
        f[i].status_code = x->status_code;
        if (headers_to_proto(a, x->set, x->num_set, &f[i].set) != 0 ||
            headers_to_proto(a, x->add, x->num_add, &f[i].add) != 0)
            return -ENOMEM;
        m->filters[i] = &f[i];
    }
    for (size_t i = 0; i < r->num_backends; i++) {
        ringmesh__v1__route_backend__init(&b[i]);
        b[i].namespace_ = S(r->backends[i].namespace_);
        b[i].name = S(r->backends[i].name);
        b[i].port = r->backends[i].port;
        b[i].weight = r->backends[i].weight;
        m->backends[i] = &b[i];
    }
    if (r->retry.set) {
        if ((m->retry = ALLOC(a, 1, Ringmesh__V1__RouteRetry)) == NULL)
            return -ENOMEM;
        ringmesh__v1__route_retry__init(m->retry);
        m->retry->attempts = r->retry.attempts;
        m->retry->backoff_ms = r->retry.backoff_ms;
        m->retry->n_codes = r->retry.num_codes;
        m->retry->codes = r->retry.codes;
    }
    return 0;
}

int rm_route_to_proto(const rm_route_t *r, rm_route_arena_t *a, Ringmesh__V1__Route **out)
{
    Ringmesh__V1__Route *m = ALLOC(a, 1, Ringmesh__V1__Route);
    Ringmesh__V1__RouteParent *p = ALLOC(a, r->num_parents, Ringmesh__V1__RouteParent);
    Ringmesh__V1__RouteRule *rules = ALLOC(a, r->num_rules, Ringmesh__V1__RouteRule);

    if (m == NULL || (r->num_parents > 0 && p == NULL) || (r->num_rules > 0 && rules == NULL))
        return -ENOMEM;
    ringmesh__v1__route__init(m);
    m->kind = (Ringmesh__V1__RouteKind)r->kind;
    m->namespace_ = S(r->namespace_);
    m->name = S(r->name);
    m->created = r->created;
    m->n_hostnames = r->num_hostnames;
    m->hostnames = r->hostnames;
    m->n_parents = r->num_parents;
    m->n_rules = r->num_rules;
    m->parents = ALLOC(a, r->num_parents, Ringmesh__V1__RouteParent *);
    m->rules = ALLOC(a, r->num_rules, Ringmesh__V1__RouteRule *);
    if ((r->num_parents > 0 && m->parents == NULL) || (r->num_rules > 0 && m->rules == NULL))
        return -ENOMEM;
    for (size_t i = 0; i < r->num_parents; i++) {
        ringmesh__v1__route_parent__init(&p[i]);
        p[i].namespace_ = S(r->parents[i].namespace_);
        p[i].name = S(r->parents[i].name);
        p[i].port = r->parents[i].port;
        m->parents[i] = &p[i];
    }
    for (size_t i = 0; i < r->num_rules; i++) {
        if (rule_to_proto(a, &r->rules[i], &rules[i]) != 0)
            return -ENOMEM;
        m->rules[i] = &rules[i];
    }
    *out = m;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Decoding.
 * ------------------------------------------------------------------------------------------------------- */

/* A copy of a pushed string; "" becomes NULL when `empty_null` (the message's "absent"). */
static int dup_str(const char *s, int empty_null, char **out)
{
    *out = NULL;
    if (s == NULL || (empty_null && s[0] == '\0'))
        return 0;
    return (*out = strdup(s)) == NULL ? -ENOMEM : 0;
}

static int kv_from_proto(route_ctx_t *ctx, const char *path, Ringmesh__V1__RouteValueMatch *const *m, size_t n,
                         rm_route_kv_match_t **out, size_t *num)
{
    char p[ROUTE_PATH_MAX];
    int ret;
    if (n == 0)
        return 0;
    if ((*out = calloc(n, sizeof(**out))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rm_route_kv_match_t *kv = &(*out)[i];
        *num = i + 1;
        rm__route_index(p, path, i);
        if (m[i]->type != RINGMESH__V1__ROUTE_VALUE_TYPE__ROUTE_VALUE_EXACT &&
            m[i]->type != RINGMESH__V1__ROUTE_VALUE_TYPE__ROUTE_VALUE_REGEX)
            return rm__route_fail(ctx, p, "unknown match type %d", (int)m[i]->type);
        kv->type = (rm_route_value_type_t)m[i]->type;
        if ((ret = dup_str(m[i]->name, 0, &kv->name)) != 0 || (ret = dup_str(m[i]->value, 0, &kv->value)) != 0)
            return ret;
        if (kv->name == NULL || kv->name[0] == '\0' || kv->value == NULL)
            return rm__route_fail(ctx, p, "a match without a name or value");
        if (kv->type == RM_ROUTE_VALUE_REGEX && (ret = rm__route_regex(ctx, p, kv->value, &kv->re)) != 0)
            return ret;
    }
    return 0;
}

static int match_from_proto(route_ctx_t *ctx, const char *p, const Ringmesh__V1__RouteMatch *m, rm_route_match_t *x)
{
    char cp[ROUTE_PATH_MAX];
    int ret;
    x->path_type = (rm_route_path_type_t)m->path_type;
    if ((ret = dup_str(m->path, 1, &x->path)) != 0 || (ret = dup_str(m->method, 1, &x->method)) != 0 ||
        (ret = dup_str(m->grpc_service, 1, &x->grpc_service)) != 0 ||
        (ret = dup_str(m->grpc_method, 1, &x->grpc_method)) != 0)
        return ret;
    if (ctx->kind == RM_ROUTE_HTTP) {
        if (x->path_type < RM_ROUTE_PATH_EXACT || x->path_type > RM_ROUTE_PATH_REGEX || x->path == NULL ||
            (x->path_type != RM_ROUTE_PATH_REGEX && x->path[0] != '/'))
            return rm__route_fail(ctx, p, "an HTTP match without a valid path");
        if (x->path_type == RM_ROUTE_PATH_REGEX && (ret = rm__route_regex(ctx, p, x->path, &x->path_re)) != 0)
            return ret;
    } else {
        x->path_type = RM_ROUTE_PATH_NONE;
        x->grpc_type = m->grpc_type == RINGMESH__V1__ROUTE_VALUE_TYPE__ROUTE_VALUE_REGEX ? RM_ROUTE_VALUE_REGEX
                                                                                         : RM_ROUTE_VALUE_EXACT;
        if (x->grpc_type == RM_ROUTE_VALUE_REGEX &&
            ((x->grpc_service != NULL && (ret = rm__route_regex(ctx, p, x->grpc_service, &x->grpc_service_re)) != 0) ||
             (x->grpc_method != NULL && (ret = rm__route_regex(ctx, p, x->grpc_method, &x->grpc_method_re)) != 0)))
            return ret;
    }
    if ((ret = kv_from_proto(ctx, rm__route_child(cp, p, "headers"), m->headers, m->n_headers, &x->headers,
                             &x->num_headers)) != 0)
        return ret;
    return kv_from_proto(ctx, rm__route_child(cp, p, "query_params"), m->query_params, m->n_query_params, &x->query,
                         &x->num_query);
}

static int headers_from_proto(Ringmesh__V1__RouteHeader *const *h, size_t n, rm_route_header_t **out, size_t *num)
{
    int ret;
    if (n == 0)
        return 0;
    if ((*out = calloc(n, sizeof(**out))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        *num = i + 1;
        if ((ret = dup_str(h[i]->name, 0, &(*out)[i].name)) != 0 ||
            (ret = dup_str(h[i]->value, 0, &(*out)[i].value)) != 0)
            return ret;
    }
    return 0;
}

static int rule_from_proto(route_ctx_t *ctx, const char *p, const Ringmesh__V1__RouteRule *m, rm_route_rule_t *x)
{
    char cp[ROUTE_PATH_MAX];
    int ret;

    x->request_timeout_ms = m->request_timeout_ms;
    x->backend_request_timeout_ms = m->backend_request_timeout_ms;
    x->retry.attempts = -1;
    x->retry.backoff_ms = -1;
    if ((ret = dup_str(m->name, 1, &x->name)) != 0)
        return ret;
    if (m->n_matches == 0)
        return rm__route_fail(ctx, p, "a rule without matches");
    if ((x->matches = calloc(m->n_matches, sizeof(*x->matches))) == NULL ||
        (m->n_filters > 0 && (x->filters = calloc(m->n_filters, sizeof(*x->filters))) == NULL) ||
        (m->n_backends > 0 && (x->backends = calloc(m->n_backends, sizeof(*x->backends))) == NULL))
        return -ENOMEM;
    for (size_t i = 0; i < m->n_matches; i++) {
        x->num_matches = i + 1;
        if ((ret = match_from_proto(ctx, rm__route_index(cp, p, i), m->matches[i], &x->matches[i])) != 0)
            return ret;
    }
    for (size_t i = 0; i < m->n_filters; i++) {
        const Ringmesh__V1__RouteFilter *f = m->filters[i];
        rm_route_filter_t *y = &x->filters[i];
        x->num_filters = i + 1;
        if (f->type < RINGMESH__V1__ROUTE_FILTER_TYPE__ROUTE_FILTER_REQUEST_HEADERS ||
            f->type > RINGMESH__V1__ROUTE_FILTER_TYPE__ROUTE_FILTER_URL_REWRITE || f->path_type > 2)
            return rm__route_fail(ctx, p, "filters[%zu]: unknown filter type %d", i, (int)f->type);
        y->type = (rm_route_filter_type_t)f->type;
        y->path_type = (rm_route_rewrite_t)f->path_type;
        y->port = f->port;
        y->status_code = f->status_code;
        if ((ret = headers_from_proto(f->set, f->n_set, &y->set, &y->num_set)) != 0 ||
            (ret = headers_from_proto(f->add, f->n_add, &y->add, &y->num_add)) != 0 ||
            (ret = dup_str(f->scheme, 1, &y->scheme)) != 0 || (ret = dup_str(f->hostname, 1, &y->hostname)) != 0 ||
            (ret = dup_str(f->path, 1, &y->path)) != 0)
            return ret;
        if (f->n_remove > 0) {
            if ((y->remove = calloc(f->n_remove, sizeof(char *))) == NULL)
                return -ENOMEM;
            for (size_t j = 0; j < f->n_remove; j++) {
                y->num_remove = j + 1;
                if ((ret = dup_str(f->remove[j], 0, &y->remove[j])) != 0)
                    return ret;
            }
        }
    }
    for (size_t i = 0; i < m->n_backends; i++) {
        const Ringmesh__V1__RouteBackend *b = m->backends[i];
        rm_route_backend_t *y = &x->backends[i];
        x->num_backends = i + 1;
        if ((ret = dup_str(b->namespace_, 0, &y->namespace_)) != 0 || (ret = dup_str(b->name, 0, &y->name)) != 0)
            return ret;
        if (b->weight > RM_ROUTE_WEIGHT_MAX || b->port == 0 || b->port > 65535 || y->name == NULL || y->name[0] == '\0')
            return rm__route_fail(ctx, p, "backends[%zu]: weight %u, port %u or name out of range", i, b->weight,
                                  b->port);
        y->port = b->port;
        y->weight = b->weight;
        x->total_weight += b->weight;
    }
    if (m->retry != NULL) {
        x->retry.set = 1;
        x->retry.attempts = m->retry->attempts;
        x->retry.backoff_ms = m->retry->backoff_ms;
        if (m->retry->n_codes > 0) {
            if ((x->retry.codes = calloc(m->retry->n_codes, sizeof(uint32_t))) == NULL)
                return -ENOMEM;
            memcpy(x->retry.codes, m->retry->codes, m->retry->n_codes * sizeof(uint32_t));
            x->retry.num_codes = m->retry->n_codes;
        }
    }
    return 0;
}

int rm_route_from_proto(const Ringmesh__V1__Route *m, rm_route_t **out, char *err, size_t errlen)
{
    rm_route_error_t rerr = {0};
    route_ctx_t ctx = {.err = &rerr};
    rm_route_t *r = calloc(1, sizeof(*r));
    char p[ROUTE_PATH_MAX];
    int ret = -ENOMEM;

    *out = NULL;
    if (r == NULL)
        goto Exit;
    if (m->kind != RINGMESH__V1__ROUTE_KIND__ROUTE_KIND_HTTP && m->kind != RINGMESH__V1__ROUTE_KIND__ROUTE_KIND_GRPC) {
        ret = rm__route_fail(&ctx, "kind", "unknown route kind %d", (int)m->kind);
        goto Exit;
    }
    r->kind = ctx.kind = (rm_route_kind_t)m->kind;
    r->created = m->created;
    if ((ret = dup_str(m->namespace_, 0, &r->namespace_)) != 0 || (ret = dup_str(m->name, 0, &r->name)) != 0)
        goto Exit;
    if (r->namespace_ == NULL || r->name == NULL || r->namespace_[0] == '\0' || r->name[0] == '\0') {
        ret = rm__route_fail(&ctx, "name", "a route without a namespace or name");
        goto Exit;
    }
    ret = -ENOMEM;
    if ((m->n_parents > 0 && (r->parents = calloc(m->n_parents, sizeof(*r->parents))) == NULL) ||
        (m->n_hostnames > 0 && (r->hostnames = calloc(m->n_hostnames, sizeof(char *))) == NULL) ||
        (m->n_rules > 0 && (r->rules = calloc(m->n_rules, sizeof(*r->rules))) == NULL))
        goto Exit;
    for (size_t i = 0; i < m->n_parents; i++) {
        r->num_parents = i + 1;
        if ((ret = dup_str(m->parents[i]->namespace_, 0, &r->parents[i].namespace_)) != 0 ||
            (ret = dup_str(m->parents[i]->name, 0, &r->parents[i].name)) != 0)
            goto Exit;
        if (r->parents[i].namespace_ == NULL || r->parents[i].name == NULL || m->parents[i]->port > 65535) {
            ret = rm__route_fail(&ctx, rm__route_index(p, "parents", i), "a parent without a name or a valid port");
            goto Exit;
        }
        r->parents[i].port = m->parents[i]->port;
    }
    for (size_t i = 0; i < m->n_hostnames; i++) {
        r->num_hostnames = i + 1;
        if ((ret = dup_str(m->hostnames[i], 0, &r->hostnames[i])) != 0)
            goto Exit;
    }
    for (size_t i = 0; i < m->n_rules; i++) {
        r->num_rules = i + 1;
        if ((ret = rule_from_proto(&ctx, rm__route_index(p, "rules", i), m->rules[i], &r->rules[i])) != 0)
            goto Exit;
    }
    *out = r;
    r = NULL;
    ret = 0;
Exit:
    if (ret == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    else if (ret != 0) {
        snprintf(err, errlen, "route %s/%s: %s: %s", m->namespace_ != NULL ? m->namespace_ : "",
                 m->name != NULL ? m->name : "", rerr.field, rerr.reason);
        ret = -EINVAL;
    }
    rm_route_free(r);
    return ret;
}
