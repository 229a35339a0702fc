/* The route matching engine (ringmesh/route.h): one table per Service, every (route, rule, match) ordered once by
 * the Gateway API's precedence, so that a request takes the first entry that matches it; nothing is allocated per
 * request.
 *
 * HTTPRoute precedence: an Exact path, then RegularExpression paths (where the API leaves the place to the
 * implementation: before prefixes, so that a catch-all "/" cannot hide them; a longer expression first), then
 * PathPrefix, a longer prefix before a shorter; then a match with a method; then more header matches; then more
 * query parameter matches. GRPCRoute: a longer service name, then a longer method name, then
 * more header matches. Ties go to the older route (creationTimestamp), then "namespace/name" in alphabetical
 * order, then the first rule and match in list order. */
#include "ringmesh/route.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct st_table_route_t {
    const rm_route_t *route;
    uint32_t *ports; /* the Service ports its parentRefs name; none: every port */
    size_t num_ports;
} table_route_t;

typedef struct st_cand_t {
    const table_route_t *tr;
    size_t route_order, rule_index, match_index;
    const rm_route_match_t *m;
} cand_t;

struct st_rm_route_table_t {
    table_route_t *routes; /* in the API's tie order */
    size_t num_routes;
    cand_t *http, *grpc;
    size_t num_http, num_grpc;
};

static int path_class(const rm_route_match_t *m)
{
    return m->path_type == RM_ROUTE_PATH_EXACT ? 0 : m->path_type == RM_ROUTE_PATH_REGEX ? 1 : 2;
}

static size_t slen(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

static int cmp_size_desc(size_t a, size_t b)
{
    return a > b ? -1 : a < b ? 1 : 0;
}

static int cmp_tail(const cand_t *a, const cand_t *b)
{
    if (a->route_order != b->route_order)
        return a->route_order < b->route_order ? -1 : 1;
    if (a->rule_index != b->rule_index)
        return a->rule_index < b->rule_index ? -1 : 1;
    return a->match_index < b->match_index ? -1 : a->match_index > b->match_index;
}

static int cmp_http(const void *pa, const void *pb)
{
    const cand_t *a = pa, *b = pb;
    int c;
    if ((c = path_class(a->m) - path_class(b->m)) != 0)
        return c;
    if (a->m->path_type != RM_ROUTE_PATH_EXACT && (c = cmp_size_desc(slen(a->m->path), slen(b->m->path))) != 0)
        return c;
    if ((c = (a->m->method == NULL) - (b->m->method == NULL)) != 0)
        return c;
    if ((c = cmp_size_desc(a->m->num_headers, b->m->num_headers)) != 0)
        return c;
    if ((c = cmp_size_desc(a->m->num_query, b->m->num_query)) != 0)
        return c;
    return cmp_tail(a, b);
}

static int cmp_grpc(const void *pa, const void *pb)
{
    const cand_t *a = pa, *b = pb;
    int c;
    if ((c = cmp_size_desc(slen(a->m->grpc_service), slen(b->m->grpc_service))) != 0)
        return c;
    if ((c = cmp_size_desc(slen(a->m->grpc_method), slen(b->m->grpc_method))) != 0)
        return c;
    if ((c = cmp_size_desc(a->m->num_headers, b->m->num_headers)) != 0)
        return c;
    return cmp_tail(a, b);
}

static int cmp_route(const void *pa, const void *pb)
{
    return rm_route_compare(((const table_route_t *)pa)->route, ((const table_route_t *)pb)->route);
}

void rm_route_table_free(rm_route_table_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->num_routes; i++)
        free(t->routes[i].ports);
    free(t->routes);
    free(t->http);
    free(t->grpc);
    free(t);
}

int rm_route_table_build(const rm_route_t *const *routes, size_t num, const char *namespace_, const char *name,
                         rm_route_table_t **out)
{
    rm_route_table_t *t = calloc(1, sizeof(*t));
    size_t nh = 0, ng = 0;
    int ret = -ENOMEM;

    if (t == NULL || (num > 0 && (t->routes = calloc(num, sizeof(*t->routes))) == NULL))
        goto Exit;
    for (size_t i = 0; i < num; i++) {
        const rm_route_t *r = routes[i];
        table_route_t *tr = &t->routes[t->num_routes];
        int all_ports = 0;
        if (!rm_route_has_parent(r, namespace_, name))
            continue;
        tr->route = r;
        if ((tr->ports = calloc(r->num_parents, sizeof(*tr->ports))) == NULL)
            goto Exit;
        t->num_routes++;
        for (size_t p = 0; p < r->num_parents; p++) {
            if (strcmp(r->parents[p].namespace_, namespace_) != 0 || strcmp(r->parents[p].name, name) != 0)
                continue;
            if (r->parents[p].port == 0)
                all_ports = 1;
            else
                tr->ports[tr->num_ports++] = r->parents[p].port;
        }
        if (all_ports)
            tr->num_ports = 0;
        for (size_t k = 0; k < r->num_rules; k++)
            *(r->kind == RM_ROUTE_GRPC ? &ng : &nh) += r->rules[k].num_matches;
    }
    if (t->num_routes > 1)
        qsort(t->routes, t->num_routes, sizeof(*t->routes), cmp_route);
    if ((nh > 0 && (t->http = calloc(nh, sizeof(*t->http))) == NULL) ||
        (ng > 0 && (t->grpc = calloc(ng, sizeof(*t->grpc))) == NULL))
        goto Exit;
    for (size_t i = 0; i < t->num_routes; i++) {
        const rm_route_t *r = t->routes[i].route;
        cand_t *list = r->kind == RM_ROUTE_GRPC ? t->grpc : t->http;
        size_t *n = r->kind == RM_ROUTE_GRPC ? &t->num_grpc : &t->num_http;
        if (list == NULL) /* no match of this kind was counted: the route has none */
            continue;
        for (size_t k = 0; k < r->num_rules; k++)
            for (size_t m = 0; m < r->rules[k].num_matches; m++) {
                cand_t *c = &list[(*n)++];
                *c = (cand_t){.tr = &t->routes[i],
                              .route_order = i,
                              .rule_index = k,
                              .match_index = m,
                              .m = &r->rules[k].matches[m]};
            }
    }
    if (t->num_http > 1)
        qsort(t->http, t->num_http, sizeof(*t->http), cmp_http);
    if (t->num_grpc > 1)
        qsort(t->grpc, t->num_grpc, sizeof(*t->grpc), cmp_grpc);
    *out = t;
    t = NULL;
    ret = 0;
Exit:
    rm_route_table_free(t);
    return ret;
}

size_t rm_route_table_num_routes(const rm_route_table_t *t)
{
    return t != NULL ? t->num_routes : 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * One request.
 * ------------------------------------------------------------------------------------------------------- */

/* Whether the compiled expression matches s[0..len): POSIX regexec needs a NUL-terminated string, so the text is
 * copied to the stack; text longer than RM_ROUTE_REQ_TARGET_MAX never matches. */
static int regex_full(const void *re, const char *s, size_t len)
{
    char buf[RM_ROUTE_REQ_TARGET_MAX + 1];
    if (len > RM_ROUTE_REQ_TARGET_MAX || memchr(s, '\0', len) != NULL)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return regexec(re, buf, 0, NULL, 0) == 0;
}

static int value_match(rm_route_value_type_t type, const char *want, const void *re, const char *s, size_t len)
{
    if (type == RM_ROUTE_VALUE_REGEX)
        return regex_full(re, s, len);
    return strlen(want) == len && memcmp(want, s, len) == 0;
}

static int path_match(const rm_route_match_t *m, const char *path, size_t len)
{
    size_t plen;
    switch (m->path_type) {
    case RM_ROUTE_PATH_EXACT:
        return strlen(m->path) == len && memcmp(m->path, path, len) == 0;
    case RM_ROUTE_PATH_PREFIX:
        if (strcmp(m->path, "/") == 0)
            return 1;
        /* whole segments: "/foo" matches "/foo" and "/foo/bar", not "/foobar" */
        plen = strlen(m->path);
        return len >= plen && memcmp(m->path, path, plen) == 0 && (len == plen || path[plen] == '/');
    case RM_ROUTE_PATH_REGEX:
        return regex_full(m->path_re, path, len);
    default:
        return 0;
    }
}

static int headers_match(const rm_route_match_t *m, const rm_http_request_t *req)
{
    for (size_t i = 0; i < m->num_headers; i++) {
        const rm_route_kv_match_t *kv = &m->headers[i];
        size_t nlen = strlen(kv->name);
        int found = 0;
        for (size_t h = 0; h < req->num_headers && !found; h++) {
            const rm_http_header_t *rh = &req->headers[h];
            if (rh->name_len == nlen && strncasecmp(rh->name, kv->name, nlen) == 0 &&
                value_match(kv->type, kv->value, kv->re, rh->value, rh->value_len))
                found = 1;
        }
        if (!found)
            return 0;
    }
    return 1;
}

/* The first value of query parameter `name` in query[0..len) (after the '?'), as written (not decoded). */
static int query_find(const char *query, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = query, *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq != NULL ? eq : pe;
        if ((size_t)(ne - p) == nlen && memcmp(p, name, nlen) == 0) {
            *val = eq != NULL ? eq + 1 : pe;
            *vlen = (size_t)(pe - *val);
            return 1;
        }
        p = pe + 1;
    }
    return 0;
}

static int query_match(const rm_route_match_t *m, const char *query, size_t len)
{
    for (size_t i = 0; i < m->num_query; i++) {
        const rm_route_kv_match_t *kv = &m->query[i];
        const char *v;
        size_t vlen;
        if (query == NULL || !query_find(query, len, kv->name, &v, &vlen) ||
            !value_match(kv->type, kv->value, kv->re, v, vlen))
            return 0;
    }
    return 1;
}

static int port_ok(const table_route_t *tr, uint16_t port)
{
    if (tr->num_ports == 0 || port == 0)
        return 1;
    for (size_t i = 0; i < tr->num_ports; i++)
        if (tr->ports[i] == port)
            return 1;
    return 0;
}

static void choose(const cand_t *c, rm_route_choice_t *out)
{
    out->route = c->tr->route;
    out->rule_index = c->rule_index;
    out->rule = &c->tr->route->rules[c->rule_index];
    out->match_index = c->match_index;
}

/* gRPC's :path is "/package.Service/Method". */
static int grpc_select(const rm_route_table_t *t, uint16_t port, const rm_http_request_t *req, const char *path,
                       size_t len, rm_route_choice_t *out)
{
    const char *slash;
    if (len < 3 || path[0] != '/' || (slash = memchr(path + 1, '/', len - 1)) == NULL)
        return -ENOENT;
    const char *svc = path + 1, *method = slash + 1;
    size_t svc_len = (size_t)(slash - svc), method_len = (size_t)(path + len - method);
    for (size_t i = 0; i < t->num_grpc; i++) {
        const cand_t *c = &t->grpc[i];
        const rm_route_match_t *m = c->m;
        if (!port_ok(c->tr, port))
            continue;
        if (m->grpc_service != NULL && !value_match(m->grpc_type, m->grpc_service, m->grpc_service_re, svc, svc_len))
            continue;
        if (m->grpc_method != NULL && !value_match(m->grpc_type, m->grpc_method, m->grpc_method_re, method, method_len))
            continue;
        if (!headers_match(m, req))
            continue;
        choose(c, out);
        return 0;
    }
    return -ENOENT;
}

int rm_route_select(const rm_route_table_t *t, uint16_t port, const rm_http_request_t *req, rm_route_choice_t *out)
{
    const char *path = req->path != NULL ? req->path : "/", *query = NULL;
    size_t len = req->path != NULL ? req->path_len : 1, qlen = 0;
    const char *q = memchr(path, '?', len);

    if (q != NULL) {
        query = q + 1;
        qlen = (size_t)(path + len - query);
        len = (size_t)(q - path);
    }
    if (req->grpc && grpc_select(t, port, req, path, len, out) == 0)
        return 0;
    for (size_t i = 0; i < t->num_http; i++) {
        const cand_t *c = &t->http[i];
        const rm_route_match_t *m = c->m;
        if (!port_ok(c->tr, port) || !path_match(m, path, len))
            continue;
        if (m->method != NULL && (strlen(m->method) != req->method_len || req->method == NULL ||
                                  memcmp(m->method, req->method, req->method_len) != 0))
            continue;
        if (!headers_match(m, req) || !query_match(m, query, qlen))
            continue;
        choose(c, out);
        return 0;
    }
    return -ENOENT;
}

const rm_route_backend_t *rm_route_pick_backend(const rm_route_rule_t *rule, uint32_t random)
{
    uint64_t x;
    if (rule->total_weight == 0)
        return NULL;
    /* maps [0, 2^32) onto [0, total) evenly, without the bias of a modulo */
    x = ((uint64_t)random * rule->total_weight) >> 32;
    for (size_t i = 0; i < rule->num_backends; i++) {
        if (x < rule->backends[i].weight)
            return &rule->backends[i];
        x -= rule->backends[i].weight;
    }
    return NULL;
}
