/* A route rule's filters, backendRefs, timeouts and retry (ringmesh/route.h), with the Gateway API's validation
 * and the mesh's "not supported" for what it does not do (RequestMirror, ExtensionRef, filters on a backendRef,
 * backends in another namespace). */
#include "route_internal.h"

#include "ringmesh/error.h"
#include "ringmesh/yaml_load.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define MAX_FILTERS   16u
#define MAX_BACKENDS  16u
#define MAX_MODIFIERS 16u
#define MAX_CODES     32u

static int read_header_list(route_ctx_t *ctx, const json_t *mod, const char *key, const char *path,
                            rm_route_header_t **out, size_t *num)
{
    static const char *const keys[] = {"name", "value", NULL};
    const json_t *list;
    char lp[ROUTE_PATH_MAX], p[ROUTE_PATH_MAX], q[96];
    int ret;

    if ((ret = rm__route_get_list(ctx, mod, key, path, MAX_MODIFIERS, &list)) != 0 || list == NULL)
        return ret;
    if ((*out = calloc(json_array_size(list), sizeof(**out))) == NULL)
        return -ENOMEM;
    rm__route_child(lp, path, key);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *e = json_array_get(list, i);
        rm_route_header_t *h = &(*out)[i];
        rm__route_index(p, lp, i);
        if (!json_is_object(e))
            return rm__route_fail(ctx, p, "must be a mapping (name, value)");
        if ((ret = rm__route_check_keys(ctx, e, p, keys)) != 0)
            return ret;
        *num = i + 1;
        if ((ret = rm__route_get_str(ctx, e, "name", p, 256, 1, &h->name)) != 0 ||
            (ret = rm__route_get_str(ctx, e, "value", p, 4096, 1, &h->value)) != 0)
            return ret;
        if (!rm__route_is_token(h->name))
            return rm__route_fail(ctx, p, "name %s is not a header name", rm_yaml_quoted(q, sizeof(q), h->name));
        for (char *c = h->name; *c != '\0'; c++)
            *c = (char)tolower((unsigned char)*c);
        for (size_t j = 0; j < i; j++)
            if (strcmp((*out)[j].name, h->name) == 0)
                return rm__route_fail(ctx, p, "header %s is also in %s[%zu]", h->name, lp, j);
    }
    return 0;
}

static int read_header_modifier(route_ctx_t *ctx, const json_t *mod, const char *path, rm_route_filter_t *f)
{
    static const char *const keys[] = {"set", "add", "remove", NULL};
    const json_t *list;
    char lp[ROUTE_PATH_MAX], p[ROUTE_PATH_MAX], q[96];
    int ret;

    if ((ret = rm__route_check_keys(ctx, mod, path, keys)) != 0 ||
        (ret = read_header_list(ctx, mod, "set", path, &f->set, &f->num_set)) != 0 ||
        (ret = read_header_list(ctx, mod, "add", path, &f->add, &f->num_add)) != 0 ||
        (ret = rm__route_get_list(ctx, mod, "remove", path, MAX_MODIFIERS, &list)) != 0 || list == NULL)
        return ret;
    if ((f->remove = calloc(json_array_size(list), sizeof(char *))) == NULL)
        return -ENOMEM;
    rm__route_child(lp, path, "remove");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *s = json_string_value(json_array_get(list, i));
        rm__route_index(p, lp, i);
        if (s == NULL || !rm__route_is_token(s))
            return rm__route_fail(ctx, p, "%s is not a header name",
                                  s != NULL ? rm_yaml_quoted(q, sizeof(q), s) : "a collection");
        if ((f->remove[i] = strdup(s)) == NULL)
            return -ENOMEM;
        f->num_remove = i + 1;
        for (char *c = f->remove[i]; *c != '\0'; c++)
            *c = (char)tolower((unsigned char)*c);
        for (size_t j = 0; j < i; j++)
            if (strcmp(f->remove[j], f->remove[i]) == 0)
                return rm__route_fail(ctx, p, "header %s is also in %s[%zu]", f->remove[i], lp, j);
    }
    return 0;
}

/* path of a RequestRedirect or URLRewrite: ReplaceFullPath or ReplacePrefixMatch, the latter only for a rule with
 * exactly one match, a PathPrefix one (the API's rule). */
static int read_path_modifier(route_ctx_t *ctx, const json_t *obj, const char *path, const rm_route_rule_t *rule,
                              rm_route_filter_t *f)
{
    static const char *const keys[] = {"type", "replaceFullPath", "replacePrefixMatch", NULL};
    const json_t *pm;
    char pp[ROUTE_PATH_MAX], cp[ROUTE_PATH_MAX], *type = NULL, *full = NULL, *prefix = NULL, q[96];
    int ret;

    if ((ret = rm__route_get_map(ctx, obj, "path", path, &pm)) != 0 || pm == NULL)
        return ret;
    rm__route_child(pp, path, "path");
    if ((ret = rm__route_check_keys(ctx, pm, pp, keys)) != 0 ||
        (ret = rm__route_get_str(ctx, pm, "type", pp, 32, 1, &type)) != 0 ||
        (ret = rm__route_get_str(ctx, pm, "replaceFullPath", pp, RM_ROUTE_PATH_MAX, 0, &full)) != 0 ||
        (ret = rm__route_get_str(ctx, pm, "replacePrefixMatch", pp, RM_ROUTE_PATH_MAX, 0, &prefix)) != 0)
        goto Exit;
    rm__route_child(cp, pp, "type");
    if (strcmp(type, "ReplaceFullPath") == 0) {
        if (full == NULL || prefix != NULL) {
            ret = rm__route_fail(ctx, pp, "type ReplaceFullPath takes replaceFullPath (and not replacePrefixMatch)");
            goto Exit;
        }
        f->path_type = RM_ROUTE_REWRITE_FULL;
        f->path = full;
        full = NULL;
    } else if (strcmp(type, "ReplacePrefixMatch") == 0) {
        if (prefix == NULL || full != NULL) {
            ret = rm__route_fail(ctx, pp, "type ReplacePrefixMatch takes replacePrefixMatch (and not replaceFullPath)");
            goto Exit;
        }
        if (rule->num_matches != 1 || rule->matches[0].path_type != RM_ROUTE_PATH_PREFIX) {
            ret = rm__route_fail(ctx, cp, "ReplacePrefixMatch needs a rule with exactly one match, of type PathPrefix");
            goto Exit;
        }
        f->path_type = RM_ROUTE_REWRITE_PREFIX;
        f->path = prefix;
        prefix = NULL;
    } else {
        ret = rm__route_fail(ctx, cp, "%s is not a path modifier (want ReplaceFullPath or ReplacePrefixMatch)",
                             rm_yaml_quoted(q, sizeof(q), type));
        goto Exit;
    }
    if (f->path[0] != '/')
        ret = rm__route_fail(ctx, pp, "%s must start with '/'", rm_yaml_quoted(q, sizeof(q), f->path));
Exit:
    free(type);
    free(full);
    free(prefix);
    return ret;
}

static int read_redirect(route_ctx_t *ctx, const json_t *obj, const char *path, const rm_route_rule_t *rule,
                         rm_route_filter_t *f, int rewrite)
{
    static const char *const redirect_keys[] = {"scheme", "hostname", "path", "port", "statusCode", NULL};
    static const char *const rewrite_keys[] = {"hostname", "path", NULL};
    char cp[ROUTE_PATH_MAX], q[96];
    int64_t v = 0;
    int have, ret;

    if ((ret = rm__route_check_keys(ctx, obj, path, rewrite ? rewrite_keys : redirect_keys)) != 0 ||
        (ret = rm__route_get_str(ctx, obj, "hostname", path, 253, 0, &f->hostname)) != 0)
        return ret;
    if (f->hostname != NULL && !rm__route_is_dns_subdomain(f->hostname))
        return rm__route_fail(ctx, rm__route_child(cp, path, "hostname"), "%s is not a hostname",
                              rm_yaml_quoted(q, sizeof(q), f->hostname));
    if ((ret = read_path_modifier(ctx, obj, path, rule, f)) != 0 || rewrite)
        return ret;
    if ((ret = rm__route_get_str(ctx, obj, "scheme", path, 16, 0, &f->scheme)) != 0)
        return ret;
    if (f->scheme != NULL && strcmp(f->scheme, "http") != 0 && strcmp(f->scheme, "https") != 0)
        return rm__route_fail(ctx, rm__route_child(cp, path, "scheme"), "%s is not a scheme (want http or https)",
                              rm_yaml_quoted(q, sizeof(q), f->scheme));
    if ((ret = rm__route_get_int(ctx, obj, "port", path, 1, 65535, &v, &have)) != 0)
        return ret;
    f->port = (uint32_t)v;
    v = 302;
    if ((ret = rm__route_get_int(ctx, obj, "statusCode", path, 0, 999, &v, &have)) != 0)
        return ret;
    if (v != 301 && v != 302)
        return rm__route_fail(ctx, rm__route_child(cp, path, "statusCode"),
                              "%lld is not a redirect status (301 or 302)", (long long)v);
    f->status_code = (uint32_t)v;
    return 0;
}

int rm__route_read_filters(route_ctx_t *ctx, const json_t *rule, const char *path, rm_route_rule_t *out)
{
    static const char *const http_keys[] = {"type",
                                            "requestHeaderModifier",
                                            "responseHeaderModifier",
                                            "requestMirror",
                                            "requestRedirect",
                                            "urlRewrite",
                                            "extensionRef",
                                            "cors",
                                            NULL};
    static const char *const grpc_keys[] = {"type",          "requestHeaderModifier", "responseHeaderModifier",
                                            "requestMirror", "extensionRef",          NULL};
    static const struct {
        const char *type, *field;
        rm_route_filter_type_t t;
        int http_only;
    } types[] = {
        {"RequestHeaderModifier", "requestHeaderModifier", RM_ROUTE_FILTER_REQUEST_HEADERS, 0},
        {"ResponseHeaderModifier", "responseHeaderModifier", RM_ROUTE_FILTER_RESPONSE_HEADERS, 0},
        {"RequestRedirect", "requestRedirect", RM_ROUTE_FILTER_REDIRECT, 1},
        {"URLRewrite", "urlRewrite", RM_ROUTE_FILTER_URL_REWRITE, 1},
    };
    const json_t *list;
    char lp[ROUTE_PATH_MAX], p[ROUTE_PATH_MAX], cp[ROUTE_PATH_MAX], q[96];
    int ret;

    if ((ret = rm__route_get_list(ctx, rule, "filters", path, MAX_FILTERS, &list)) != 0 || list == NULL)
        return ret;
    if ((out->filters = calloc(json_array_size(list), sizeof(*out->filters))) == NULL)
        return -ENOMEM;
    rm__route_child(lp, path, "filters");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *e = json_array_get(list, i), *body;
        rm_route_filter_t *f = &out->filters[i];
        char *type = NULL;
        size_t k;

        rm__route_index(p, lp, i);
        if (!json_is_object(e))
            return rm__route_fail(ctx, p, "must be a mapping (type and its field)");
        if ((ret = rm__route_check_keys(ctx, e, p, ctx->kind == RM_ROUTE_HTTP ? http_keys : grpc_keys)) != 0 ||
            (ret = rm__route_get_str(ctx, e, "type", p, 64, 1, &type)) != 0)
            return ret;
        out->num_filters = i + 1;
        for (k = 0; k < sizeof(types) / sizeof(types[0]); k++)
            if (strcmp(type, types[k].type) == 0 && (ctx->kind == RM_ROUTE_HTTP || !types[k].http_only))
                break;
        rm__route_child(cp, p, "type");
        if (k == sizeof(types) / sizeof(types[0])) {
            if (strcmp(type, "RequestMirror") == 0 || strcmp(type, "ExtensionRef") == 0 || strcmp(type, "CORS") == 0)
                ret = rm__route_fail(ctx, cp, "not supported by the mesh: filter %s", type);
            else
                ret = rm__route_fail(ctx, cp, "%s is not a filter type of a%s (want %s)",
                                     rm_yaml_quoted(q, sizeof(q), type),
                                     ctx->kind == RM_ROUTE_HTTP ? "n HTTPRoute" : " GRPCRoute",
                                     ctx->kind == RM_ROUTE_HTTP ? "RequestHeaderModifier, ResponseHeaderModifier, "
                                                                  "RequestRedirect or URLRewrite"
                                                                : "RequestHeaderModifier or ResponseHeaderModifier");
            free(type);
            return ret;
        }
        free(type);
        f->type = types[k].t;
        for (size_t j = 0; j < i; j++)
            if (out->filters[j].type == f->type)
                return rm__route_fail(ctx, cp, "a rule takes one %s filter (also %s[%zu])", types[k].type, lp, j);
        /* the field named for the type is required, and no other */
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)e, key, v)
        {
            (void)v;
            if (strcmp(key, "type") != 0 && strcmp(key, types[k].field) != 0)
                return rm__route_fail(ctx, rm__route_child(cp, p, key), "does not go with type %s (it takes %s)",
                                      types[k].type, types[k].field);
        }
        if ((ret = rm__route_get_map(ctx, e, types[k].field, p, &body)) != 0)
            return ret;
        if (body == NULL)
            return rm__route_fail(ctx, p, "type %s needs %s", types[k].type, types[k].field);
        rm__route_child(cp, p, types[k].field);
        if (f->type == RM_ROUTE_FILTER_REQUEST_HEADERS || f->type == RM_ROUTE_FILTER_RESPONSE_HEADERS)
            ret = read_header_modifier(ctx, body, cp, f);
        else
            ret = read_redirect(ctx, body, cp, out, f, f->type == RM_ROUTE_FILTER_URL_REWRITE);
        if (ret != 0)
            return ret;
    }
    for (size_t i = 0; i < out->num_filters; i++)
        for (size_t j = 0; j < out->num_filters; j++)
            if (out->filters[i].type == RM_ROUTE_FILTER_REDIRECT && out->filters[j].type == RM_ROUTE_FILTER_URL_REWRITE)
                return rm__route_fail(ctx, rm__route_index(p, lp, j),
                                      "a rule cannot both redirect and rewrite (RequestRedirect is %s[%zu])", lp, i);
    return 0;
}

int rm__route_read_backends(route_ctx_t *ctx, const json_t *rule, const char *path, rm_route_rule_t *out)
{
    static const char *const keys[] = {"group", "kind", "name", "namespace", "port", "weight", "filters", NULL};
    const json_t *list;
    char lp[ROUTE_PATH_MAX], p[ROUTE_PATH_MAX], cp[ROUTE_PATH_MAX], q[96];
    int ret;

    if ((ret = rm__route_get_list(ctx, rule, "backendRefs", path, MAX_BACKENDS, &list)) != 0 || list == NULL)
        return ret;
    if ((out->backends = calloc(json_array_size(list), sizeof(*out->backends))) == NULL)
        return -ENOMEM;
    rm__route_child(lp, path, "backendRefs");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *e = json_array_get(list, i);
        rm_route_backend_t *b = &out->backends[i];
        char *group = NULL, *kind = NULL;
        int64_t v = 0;
        int have;

        rm__route_index(p, lp, i);
        if (!json_is_object(e))
            return rm__route_fail(ctx, p, "must be a mapping (name, port, weight)");
        if ((ret = rm__route_check_keys(ctx, e, p, keys)) != 0)
            return ret;
        out->num_backends = i + 1;
        if (json_object_get(e, "filters") != NULL)
            return rm__route_fail(ctx, rm__route_child(cp, p, "filters"),
                                  "not supported by the mesh: filters on a backendRef (put them on the rule)");
        if ((ret = rm__route_get_str(ctx, e, "group", p, 253, 0, &group)) == 0 &&
            (ret = rm__route_get_str(ctx, e, "kind", p, 63, 0, &kind)) == 0 &&
            ((group != NULL && group[0] != '\0') || (kind != NULL && strcmp(kind, "Service") != 0)))
            ret = rm__route_fail(ctx, rm__route_child(cp, p, kind != NULL ? "kind" : "group"),
                                 "not supported: a backendRef to %s%s%s (the mesh sends to Services: group \"\", "
                                 "kind Service)",
                                 group != NULL ? group : "", group != NULL && group[0] != '\0' ? "/" : "",
                                 kind != NULL ? kind : "Service");
        free(group);
        free(kind);
        if (ret != 0 || (ret = rm__route_get_str(ctx, e, "name", p, 63, 1, &b->name)) != 0)
            return ret;
        if (!rm__route_is_dns_label(b->name))
            return rm__route_fail(ctx, rm__route_child(cp, p, "name"), "%s is not a Service name (a DNS-1123 label)",
                                  rm_yaml_quoted(q, sizeof(q), b->name));
        if ((ret = rm__route_get_str(ctx, e, "namespace", p, 63, 0, &b->namespace_)) != 0)
            return ret;
        if (b->namespace_ != NULL && strcmp(b->namespace_, ctx->namespace_) != 0)
            return rm__route_fail(ctx, rm__route_child(cp, p, "namespace"),
                                  "not supported: a backend in namespace %s for a route of namespace %s (the mesh "
                                  "reads no ReferenceGrant)",
                                  b->namespace_, ctx->namespace_);
        if (b->namespace_ == NULL && (b->namespace_ = strdup(ctx->namespace_)) == NULL)
            return -ENOMEM;
        if ((ret = rm__route_get_int(ctx, e, "port", p, 1, 65535, &v, &have)) != 0)
            return ret;
        if (!have)
            return rm__route_fail(ctx, p, "port is required for a Service backend");
        b->port = (uint32_t)v;
        v = 1;
        if ((ret = rm__route_get_int(ctx, e, "weight", p, 0, RM_ROUTE_WEIGHT_MAX, &v, &have)) != 0)
            return ret;
        b->weight = (uint32_t)v;
        out->total_weight += b->weight;
    }
    return 0;
}

int rm__route_read_timeouts(route_ctx_t *ctx, const json_t *rule, const char *path, rm_route_rule_t *out)
{
    static const char *const tkeys[] = {"request", "backendRequest", NULL};
    static const char *const rkeys[] = {"codes", "attempts", "backoff", NULL};
    const json_t *t, *r, *codes;
    char tp[ROUTE_PATH_MAX], cp[ROUTE_PATH_MAX], *s = NULL;
    int ret;

    if ((ret = rm__route_get_map(ctx, rule, "timeouts", path, &t)) != 0)
        return ret;
    if (t != NULL) {
        rm__route_child(tp, path, "timeouts");
        if ((ret = rm__route_check_keys(ctx, t, tp, tkeys)) != 0)
            return ret;
        if ((ret = rm__route_get_str(ctx, t, "request", tp, 64, 0, &s)) == 0 && s != NULL)
            ret = rm__route_duration(ctx, rm__route_child(cp, tp, "request"), s, &out->request_timeout_ms);
        free(s);
        s = NULL;
        if (ret != 0)
            return ret;
        if ((ret = rm__route_get_str(ctx, t, "backendRequest", tp, 64, 0, &s)) == 0 && s != NULL)
            ret =
                rm__route_duration(ctx, rm__route_child(cp, tp, "backendRequest"), s, &out->backend_request_timeout_ms);
        free(s);
        s = NULL;
        if (ret != 0)
            return ret;
        if (out->request_timeout_ms > 0 && out->backend_request_timeout_ms >= 0 &&
            (out->backend_request_timeout_ms == 0 || out->backend_request_timeout_ms > out->request_timeout_ms))
            return rm__route_fail(ctx, rm__route_child(cp, tp, "backendRequest"),
                                  "must not be longer than timeouts.request");
    }
    if ((ret = rm__route_get_map(ctx, rule, "retry", path, &r)) != 0 || r == NULL)
        return ret;
    rm__route_child(tp, path, "retry");
    if ((ret = rm__route_check_keys(ctx, r, tp, rkeys)) != 0)
        return ret;
    out->retry.set = 1;
    int64_t v = 0;
    int have;
    if ((ret = rm__route_get_int(ctx, r, "attempts", tp, 0, 1000, &v, &have)) != 0)
        return ret;
    if (have)
        out->retry.attempts = (int)v;
    if ((ret = rm__route_get_str(ctx, r, "backoff", tp, 64, 0, &s)) == 0 && s != NULL)
        ret = rm__route_duration(ctx, rm__route_child(cp, tp, "backoff"), s, &out->retry.backoff_ms);
    free(s);
    if (ret != 0 || (ret = rm__route_get_list(ctx, r, "codes", tp, MAX_CODES, &codes)) != 0 || codes == NULL)
        return ret;
    if ((out->retry.codes = calloc(json_array_size(codes), sizeof(uint32_t))) == NULL)
        return -ENOMEM;
    char lp[ROUTE_PATH_MAX];
    rm__route_child(lp, tp, "codes");
    for (size_t i = 0; i < json_array_size(codes); i++) {
        const json_t *c = json_array_get(codes, i);
        json_int_t x = json_is_integer(c) ? json_integer_value(c) : 0;
        if (x < 400 || x > 599)
            return rm__route_fail(ctx, rm__route_index(cp, lp, i), "must be an HTTP status in 400..599");
        out->retry.codes[i] = (uint32_t)x;
        out->retry.num_codes = i + 1;
    }
    return 0;
}
