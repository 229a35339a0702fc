/* A route rule's filters applied to a request (ringmesh/route_apply.h). */
#include "ringmesh/route_apply.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int name_is(const rm_http_header_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

static int in_list(const rm_http_header_t *h, char *const *names, size_t num)
{
    for (size_t i = 0; i < num; i++)
        if (name_is(h, names[i]))
            return 1;
    return 0;
}

/* Appends a header to the list being built at the arena's first free entry (list[0..*num)). */
static int push(rm_route_arena_t *a, rm_http_header_t *list, size_t *num, const char *name, size_t name_len,
                const char *value, size_t value_len)
{
    if (a->headers_used + *num >= a->headers_cap)
        return -ENOSPC;
    list[(*num)++] = (rm_http_header_t){.name = name, .name_len = name_len, .value = value, .value_len = value_len};
    return 0;
}

int rm_route_apply_headers(const rm_route_filter_t *mod, const rm_http_header_t *in, size_t num_in,
                           rm_route_arena_t *arena, const rm_http_header_t **out, size_t *num_out)
{
    rm_http_header_t *list = arena->headers + arena->headers_used;
    size_t n = 0;
    int ret;

    for (size_t i = 0; i < num_in; i++) {
        const rm_http_header_t *h = &in[i];
        if (mod != NULL && in_list(h, mod->remove, mod->num_remove))
            continue;
        if (mod != NULL) {
            size_t k;
            for (k = 0; k < mod->num_set; k++)
                if (name_is(h, mod->set[k].name))
                    break;
            if (k < mod->num_set) {
                /* the first line of a set name carries the new value; later ones are dropped below */
                int seen = 0;
                for (size_t j = 0; j < n && !seen; j++)
                    seen = name_is(&list[j], mod->set[k].name);
                if (seen)
                    continue;
                if ((ret = push(arena, list, &n, mod->set[k].name, strlen(mod->set[k].name), mod->set[k].value,
                                strlen(mod->set[k].value))) != 0)
                    return ret;
                continue;
            }
        }
        if ((ret = push(arena, list, &n, h->name, h->name_len, h->value, h->value_len)) != 0)
            return ret;
    }
    if (mod != NULL) {
        for (size_t k = 0; k < mod->num_set; k++) {
            int seen = 0;
            for (size_t j = 0; j < n && !seen; j++)
                seen = name_is(&list[j], mod->set[k].name);
            if (!seen && (ret = push(arena, list, &n, mod->set[k].name, strlen(mod->set[k].name), mod->set[k].value,
                                     strlen(mod->set[k].value))) != 0)
                return ret;
        }
        for (size_t k = 0; k < mod->num_add; k++)
            if ((ret = push(arena, list, &n, mod->add[k].name, strlen(mod->add[k].name), mod->add[k].value,
                            strlen(mod->add[k].value))) != 0)
                return ret;
    }
    *out = list;
    *num_out = n;
    arena->headers_used += n;
    return 0;
}

/* Appends s[0..len) to the arena's bytes. */
static int put(rm_route_arena_t *a, const char *s, size_t len)
{
    if (len > a->cap - a->used)
        return -ENOSPC;
    memcpy(a->buf + a->used, s, len);
    a->used += len;
    return 0;
}

/* Writes the path a path modifier makes of `path` (without its query) into the arena, then the query `query` (with
 * its '?', may be empty). ReplacePrefixMatch: the matched prefix (whole segments, stored without its trailing '/',
 * "/" for the root) is replaced by the value without its trailing '/', and an empty result is "/". */
static int write_path(rm_route_arena_t *a, const rm_route_filter_t *f, const rm_route_match_t *m, const char *path,
                      size_t len, const char *query, size_t qlen)
{
    int ret;
    if (f->path_type == RM_ROUTE_REWRITE_PREFIX && m != NULL && m->path != NULL) {
        size_t plen = strcmp(m->path, "/") == 0 ? 0 : strlen(m->path), rlen = strlen(f->path);
        size_t start = a->used;
        if (plen > len) /* cannot happen for a request the match selected; keep the path as it is */
            plen = 0;
        while (rlen > 0 && f->path[rlen - 1] == '/')
            rlen--;
        if ((ret = put(a, f->path, rlen)) != 0 || (ret = put(a, path + plen, len - plen)) != 0)
            return ret;
        if (a->used == start && (ret = put(a, "/", 1)) != 0)
            return ret;
    } else if (f->path_type == RM_ROUTE_REWRITE_FULL) {
        if ((ret = put(a, f->path, strlen(f->path))) != 0)
            return ret;
    } else if ((ret = put(a, path, len)) != 0) {
        return ret;
    }
    return put(a, query, qlen);
}

/* The host of a Host / :authority value without its port ("[v6]:port", "name:port"). */
static size_t host_without_port(const char *h, size_t len)
{
    if (len > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', len);
        return close != NULL ? (size_t)(close - h) + 1 : len;
    }
    const char *colon = memchr(h, ':', len);
    return colon != NULL ? (size_t)(colon - h) : len;
}

static int redirect(const rm_route_filter_t *f, const rm_route_match_t *m, const rm_http_request_t *req,
                    const char *path, size_t len, const char *query, size_t qlen, uint16_t service_port,
                    rm_route_arena_t *a, rm_route_applied_t *out)
{
    const char *scheme = f->scheme != NULL ? f->scheme : "http", *host;
    size_t host_len, start = a->used;
    unsigned port;
    char num[16];
    int ret;

    if (f->hostname != NULL) {
        host = f->hostname;
        host_len = strlen(host);
    } else if (req->host != NULL && req->host_len > 0) {
        host = req->host;
        host_len = host_without_port(req->host, req->host_len);
    } else {
        return -EINVAL;
    }
    /* the port: the filter's; else the scheme's well-known one when the filter names a scheme; else the port the
     * request was addressed to (a Gateway's listener port). Left out when it is the scheme's default. */
    port = f->port != 0 ? f->port : f->scheme != NULL ? (strcmp(scheme, "https") == 0 ? 443u : 80u) : service_port;
    if ((ret = put(a, scheme, strlen(scheme))) != 0 || (ret = put(a, "://", 3)) != 0 ||
        (ret = put(a, host, host_len)) != 0)
        return ret;
    if (port != 0 && !(strcmp(scheme, "http") == 0 && port == 80) && !(strcmp(scheme, "https") == 0 && port == 443)) {
        int n = snprintf(num, sizeof(num), ":%u", port);
        if ((ret = put(a, num, (size_t)n)) != 0)
            return ret;
    }
    if (f->path_type != RM_ROUTE_REWRITE_NONE)
        ret = write_path(a, f, m, path, len, query, qlen);
    else
        ret = put(a, req->path != NULL ? req->path : "/", req->path != NULL ? req->path_len : 1);
    if (ret != 0)
        return ret;
    out->redirect_status = f->status_code != 0 ? (int)f->status_code : 302;
    out->location = a->buf + start;
    out->location_len = a->used - start;
    return 0;
}

int rm_route_apply(const rm_route_rule_t *rule, size_t match_index, const rm_http_request_t *req, uint16_t service_port,
                   rm_route_arena_t *arena, rm_route_applied_t *out)
{
    const rm_route_filter_t *req_mod = NULL, *rewrite = NULL, *redir = NULL;
    const rm_route_match_t *m = match_index < rule->num_matches ? &rule->matches[match_index] : NULL;
    const char *path = req->path != NULL ? req->path : "/", *query;
    size_t len = req->path != NULL ? req->path_len : 1, qlen;
    int ret;

    *out = (rm_route_applied_t){.path = path,
                                .path_len = len,
                                .authority = req->host,
                                .authority_len = req->host != NULL ? req->host_len : 0,
                                .headers = req->headers,
                                .num_headers = req->num_headers};
    for (size_t i = 0; i < rule->num_filters; i++) {
        const rm_route_filter_t *f = &rule->filters[i];
        switch (f->type) {
        case RM_ROUTE_FILTER_REQUEST_HEADERS:
            req_mod = f;
            break;
        case RM_ROUTE_FILTER_RESPONSE_HEADERS:
            out->response_headers = f;
            break;
        case RM_ROUTE_FILTER_REDIRECT:
            redir = f;
            break;
        default:
            rewrite = f;
            break;
        }
    }
    query = memchr(path, '?', len);
    qlen = query != NULL ? (size_t)(path + len - query) : 0;
    if (query != NULL)
        len = (size_t)(query - path);
    else
        query = path + len;
    /* ReplacePrefixMatch needs the PathPrefix match that selected the rule (the reader allows it only then) */
    if (m == NULL || m->path_type != RM_ROUTE_PATH_PREFIX || m->path == NULL) {
        if (redir != NULL && redir->path_type == RM_ROUTE_REWRITE_PREFIX)
            return -EINVAL;
        if (rewrite != NULL && rewrite->path_type == RM_ROUTE_REWRITE_PREFIX)
            return -EINVAL;
    }
    if (redir != NULL)
        return redirect(redir, m, req, path, len, query, qlen, service_port, arena, out);
    if (rewrite != NULL && rewrite->path_type != RM_ROUTE_REWRITE_NONE) {
        size_t start = arena->used;
        if ((ret = write_path(arena, rewrite, m, path, len, query, qlen)) != 0)
            return ret;
        out->path = arena->buf + start;
        out->path_len = arena->used - start;
    }
    if (rewrite != NULL && rewrite->hostname != NULL) {
        out->authority = rewrite->hostname;
        out->authority_len = strlen(rewrite->hostname);
    }
    if (req_mod != NULL || (rewrite != NULL && rewrite->hostname != NULL)) {
        rm_http_header_t *list;
        if ((ret = rm_route_apply_headers(req_mod, req->headers, req->num_headers, arena,
                                          (const rm_http_header_t **)&list, &out->num_headers)) != 0)
            return ret;
        out->headers = list;
        if (rewrite != NULL && rewrite->hostname != NULL)
            for (size_t i = 0; i < out->num_headers; i++)
                if (name_is(&list[i], "host")) {
                    list[i].value = out->authority;
                    list[i].value_len = out->authority_len;
                }
    }
    return 0;
}
