/* HTTPRoute and GRPCRoute objects -> rm_route_t (ringmesh/route.h): the object, its metadata, parentRefs,
 * hostnames, rules and their matches, with the Gateway API's validation. Filters, backendRefs, timeouts and retry
 * are read by route_filters.c. */
#include "route_internal.h"

#include "ringmesh/error.h"
#include "ringmesh/yaml_load.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define MAX_PARENTS   32u
#define MAX_HOSTNAMES 16u
#define MAX_RULES     16u
#define MAX_MATCHES   64u
#define MAX_KV        16u

int rm_route_is_route_kind(const char *kind)
{
    return kind != NULL && (strcmp(kind, "HTTPRoute") == 0 || strcmp(kind, "GRPCRoute") == 0);
}

/* RFC 3339 as the API server writes it ("2024-05-02T10:14:03Z"), fractions and offsets allowed. */
static int parse_timestamp(const char *s, int64_t *out)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    int64_t off = 0;
    if (p == NULL)
        return -1;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
               p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
        off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
        if (*p == '+')
            off = -off;
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    *out = (int64_t)timegm(&tm) + off;
    return 0;
}

static int read_metadata(route_ctx_t *ctx, const json_t *obj, rm_route_t *r)
{
    const json_t *md;
    char *ts = NULL, q[96];
    int ret;

    if ((ret = rm__route_get_map(ctx, obj, "metadata", "", &md)) != 0)
        return ret;
    if (md == NULL)
        return rm__route_fail(ctx, "metadata", "is required (a route needs metadata.name)");
    if ((ret = rm__route_get_str(ctx, md, "name", "metadata", 253, 1, &r->name)) != 0)
        return ret;
    if (!rm__route_is_dns_subdomain(r->name))
        return rm__route_fail(ctx, "metadata.name", "%s is not a DNS-1123 subdomain",
                              rm_yaml_quoted(q, sizeof(q), r->name));
    if ((ret = rm__route_get_str(ctx, md, "namespace", "metadata", 63, 0, &r->namespace_)) != 0)
        return ret;
    if (r->namespace_ == NULL && (r->namespace_ = strdup("default")) == NULL)
        return -ENOMEM;
    if (!rm__route_is_dns_label(r->namespace_))
        return rm__route_fail(ctx, "metadata.namespace", "%s is not a DNS-1123 label",
                              rm_yaml_quoted(q, sizeof(q), r->namespace_));
    ctx->namespace_ = r->namespace_;
    if ((ret = rm__route_get_str(ctx, md, "creationTimestamp", "metadata", 64, 0, &ts)) != 0)
        return ret;
    if (ts != NULL && parse_timestamp(ts, &r->created) != 0)
        ret = rm__route_fail(ctx, "metadata.creationTimestamp", "%s is not an RFC 3339 time",
                             rm_yaml_quoted(q, sizeof(q), ts));
    free(ts);
    return ret;
}

static int read_parents(route_ctx_t *ctx, const json_t *spec, rm_route_t *r)
{
    static const char *const keys[] = {"group", "kind", "namespace", "name", "sectionName", "port", NULL};
    const json_t *list;
    char p[ROUTE_PATH_MAX], q[96];
    int ret;

    if ((ret = rm__route_get_list(ctx, spec, "parentRefs", "spec", MAX_PARENTS, &list)) != 0)
        return ret;
    if (list == NULL)
        return rm__route_fail(ctx, "spec.parentRefs",
                              "is required: the mesh takes routes attached to a Service (group \"\", kind Service)");
    if ((r->parents = calloc(json_array_size(list), sizeof(*r->parents))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *ref = json_array_get(list, i);
        rm_route_parent_t *pr = &r->parents[i];
        char *group = NULL, *kind = NULL, *section = NULL;
        int64_t port = 0;
        int have_port;

        rm__route_index(p, "spec.parentRefs", i);
        if (!json_is_object(ref))
            return rm__route_fail(ctx, p, "must be a mapping (group, kind, namespace, name, port)");
        if ((ret = rm__route_check_keys(ctx, ref, p, keys)) != 0)
            return ret;
        r->num_parents = i + 1;
        if ((ret = rm__route_get_str(ctx, ref, "group", p, 253, 0, &group)) == 0 &&
            (ret = rm__route_get_str(ctx, ref, "kind", p, 63, 0, &kind)) == 0)
            ret = rm__route_get_str(ctx, ref, "sectionName", p, 253, 0, &section);
        if (ret == 0) {
            /* the API's defaults are group gateway.networking.k8s.io and kind Gateway */
            const char *g = group != NULL ? group : RM_ROUTE_API_GROUP, *k = kind != NULL ? kind : "Gateway";
            char cp[ROUTE_PATH_MAX];
            if (strcmp(g, "") != 0 || strcmp(k, "Service") != 0)
                ret = rm__route_fail(ctx,
                                     kind != NULL    ? rm__route_child(cp, p, "kind")
                                     : group != NULL ? rm__route_child(cp, p, "group")
                                                     : p,
                                     "not supported: a parentRef to %s%s%s (the mesh attaches routes to a Service: "
                                     "group \"\", kind Service)",
                                     g, g[0] != '\0' ? "/" : "", k);
            else if (section != NULL)
                ret = rm__route_fail(ctx, rm__route_child(cp, p, "sectionName"),
                                     "not supported for a Service parent: name the Service's port with port");
        }
        free(group);
        free(kind);
        free(section);
        if (ret != 0)
            return ret;
        if ((ret = rm__route_get_str(ctx, ref, "name", p, 63, 1, &pr->name)) != 0)
            return ret;
        if (!rm__route_is_dns_label(pr->name))
            return rm__route_fail(ctx, p, "name %s is not a Service name (a DNS-1123 label)",
                                  rm_yaml_quoted(q, sizeof(q), pr->name));
        if ((ret = rm__route_get_str(ctx, ref, "namespace", p, 63, 0, &pr->namespace_)) != 0)
            return ret;
        /* read_metadata() has set the route's namespace (defaulted) */
        if (pr->namespace_ != NULL && r->namespace_ != NULL && strcmp(pr->namespace_, r->namespace_) != 0) {
            char cp[ROUTE_PATH_MAX];
            return rm__route_fail(ctx, rm__route_child(cp, p, "namespace"),
                                  "not supported: a route in namespace %s for a Service of namespace %s (a consumer "
                                  "route); put the route in the Service's namespace",
                                  r->namespace_, pr->namespace_);
        }
        if (pr->namespace_ == NULL &&
            (pr->namespace_ = strdup(r->namespace_ != NULL ? r->namespace_ : "default")) == NULL)
            return -ENOMEM;
        if ((ret = rm__route_get_int(ctx, ref, "port", p, 1, 65535, &port, &have_port)) != 0)
            return ret;
        pr->port = (uint32_t)port;
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->parents[j].name, pr->name) == 0 && r->parents[j].port == pr->port)
                return rm__route_fail(ctx, p, "the same parent as spec.parentRefs[%zu]", j);
    }
    return 0;
}

static int read_hostnames(route_ctx_t *ctx, const json_t *spec, rm_route_t *r)
{
    const json_t *list;
    char p[ROUTE_PATH_MAX], q[96];
    int ret;
    if ((ret = rm__route_get_list(ctx, spec, "hostnames", "spec", MAX_HOSTNAMES, &list)) != 0 || list == NULL)
        return ret;
    if ((r->hostnames = calloc(json_array_size(list), sizeof(char *))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *v = json_array_get(list, i);
        const char *s = json_string_value(v);
        rm__route_index(p, "spec.hostnames", i);
        if (s == NULL || !rm__route_is_dns_subdomain(strncmp(s, "*.", 2) == 0 ? s + 2 : s))
            return rm__route_fail(ctx, p, "%s is not a hostname (a DNS-1123 subdomain, \"*.\" allowed in front)",
                                  s != NULL ? rm_yaml_quoted(q, sizeof(q), s) : "a collection");
        if ((r->hostnames[i] = strdup(s)) == NULL)
            return -ENOMEM;
        r->num_hostnames = i + 1;
    }
    return 0;
}

/* headers or queryParams of a match: names once each (case-insensitively for headers), values exact or regex. */
static int read_kv(route_ctx_t *ctx, const json_t *m, const char *key, const char *path, int header,
                   rm_route_kv_match_t **out, size_t *num)
{
    static const char *const keys[] = {"type", "name", "value", NULL};
    const json_t *list;
    char p[ROUTE_PATH_MAX], cp[ROUTE_PATH_MAX], lp[ROUTE_PATH_MAX], q[96];
    int ret;

    if ((ret = rm__route_get_list(ctx, m, key, path, MAX_KV, &list)) != 0 || list == NULL)
        return ret;
    if ((*out = calloc(json_array_size(list), sizeof(**out))) == NULL)
        return -ENOMEM;
    rm__route_child(lp, path, key);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *e = json_array_get(list, i);
        rm_route_kv_match_t *kv = &(*out)[i];
        char *type = NULL;
        rm__route_index(p, lp, i);
        if (!json_is_object(e))
            return rm__route_fail(ctx, p, "must be a mapping (type, name, value)");
        if ((ret = rm__route_check_keys(ctx, e, p, keys)) != 0)
            return ret;
        *num = i + 1;
        if ((ret = rm__route_get_str(ctx, e, "type", p, 32, 0, &type)) != 0)
            return ret;
        kv->type = type == NULL || strcmp(type, "Exact") == 0 ? RM_ROUTE_VALUE_EXACT
                   : strcmp(type, "RegularExpression") == 0   ? RM_ROUTE_VALUE_REGEX
                                                              : 0;
        if (kv->type == 0) {
            ret = rm__route_fail(ctx, rm__route_child(cp, p, "type"),
                                 "%s is not a match type (want Exact or RegularExpression)",
                                 rm_yaml_quoted(q, sizeof(q), type));
            free(type);
            return ret;
        }
        free(type);
        if ((ret = rm__route_get_str(ctx, e, "name", p, 256, 1, &kv->name)) != 0 ||
            (ret = rm__route_get_str(ctx, e, "value", p, header ? 4096 : 1024, 1, &kv->value)) != 0)
            return ret;
        if (!rm__route_is_token(kv->name))
            return rm__route_fail(ctx, rm__route_child(cp, p, "name"), "%s is not a %s name",
                                  rm_yaml_quoted(q, sizeof(q), kv->name), header ? "header" : "query parameter");
        if (header)
            for (char *c = kv->name; *c != '\0'; c++)
                *c = (char)tolower((unsigned char)*c);
        for (size_t j = 0; j < i; j++)
            if (strcmp((*out)[j].name, kv->name) == 0)
                return rm__route_fail(ctx, rm__route_child(cp, p, "name"), "%s is also matched by %s[%zu]",
                                      rm_yaml_quoted(q, sizeof(q), kv->name), lp, j);
        if (kv->type == RM_ROUTE_VALUE_REGEX &&
            (ret = rm__route_regex(ctx, rm__route_child(cp, p, "value"), kv->value, &kv->re)) != 0)
            return ret;
    }
    return 0;
}

static const char *const http_methods[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                           "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL};

/* A path value the Gateway API accepts for Exact and PathPrefix: absolute, no "//", "/./", "/../", "%2f", "#". */
static int path_value_ok(const char *v)
{
    size_t n = strlen(v);
    if (v[0] != '/' || strstr(v, "//") != NULL || strstr(v, "/./") != NULL || strstr(v, "/../") != NULL ||
        strcasestr(v, "%2f") != NULL || strchr(v, '#') != NULL || strchr(v, '?') != NULL)
        return 0;
    if ((n >= 2 && strcmp(v + n - 2, "/.") == 0) || (n >= 3 && strcmp(v + n - 3, "/..") == 0))
        return 0;
    return 1;
}

static int read_http_path(route_ctx_t *ctx, const json_t *m, const char *p, rm_route_match_t *mt)
{
    static const char *const keys[] = {"type", "value", NULL};
    const json_t *pm;
    char *type = NULL, pp[ROUTE_PATH_MAX], cp[ROUTE_PATH_MAX], q[96];
    int ret;

    if ((ret = rm__route_get_map(ctx, m, "path", p, &pm)) != 0)
        return ret;
    mt->path_type = RM_ROUTE_PATH_PREFIX;
    if (pm == NULL)
        return (mt->path = strdup("/")) == NULL ? -ENOMEM : 0;
    rm__route_child(pp, p, "path");
    if ((ret = rm__route_check_keys(ctx, pm, pp, keys)) != 0 ||
        (ret = rm__route_get_str(ctx, pm, "type", pp, 32, 0, &type)) != 0)
        return ret;
    if (type != NULL) {
        mt->path_type = strcmp(type, "Exact") == 0               ? RM_ROUTE_PATH_EXACT
                        : strcmp(type, "PathPrefix") == 0        ? RM_ROUTE_PATH_PREFIX
                        : strcmp(type, "RegularExpression") == 0 ? RM_ROUTE_PATH_REGEX
                                                                 : RM_ROUTE_PATH_NONE;
        if (mt->path_type == RM_ROUTE_PATH_NONE)
            ret = rm__route_fail(ctx, rm__route_child(cp, pp, "type"),
                                 "%s is not a path match type (want Exact, PathPrefix or RegularExpression)",
                                 rm_yaml_quoted(q, sizeof(q), type));
        free(type);
        if (ret != 0)
            return ret;
    }
    if ((ret = rm__route_get_str(ctx, pm, "value", pp, RM_ROUTE_PATH_MAX, 0, &mt->path)) != 0)
        return ret;
    if (mt->path == NULL && (mt->path = strdup("/")) == NULL)
        return -ENOMEM;
    rm__route_child(cp, pp, "value");
    if (mt->path_type == RM_ROUTE_PATH_REGEX)
        return rm__route_regex(ctx, cp, mt->path, &mt->path_re);
    if (!path_value_ok(mt->path))
        return rm__route_fail(ctx, cp,
                              "%s is not a path to match: it must start with '/' and hold no \"//\", \"/./\", "
                              "\"/../\", \"%%2f\", '#' or '?'",
                              rm_yaml_quoted(q, sizeof(q), mt->path));
    /* a prefix matches whole segments, so "/foo/" and "/foo" are the same prefix */
    size_t n = strlen(mt->path);
    if (mt->path_type == RM_ROUTE_PATH_PREFIX && n > 1 && mt->path[n - 1] == '/')
        mt->path[n - 1] = '\0';
    return 0;
}

static int read_grpc_method(route_ctx_t *ctx, const json_t *m, const char *p, rm_route_match_t *mt)
{
    static const char *const keys[] = {"type", "service", "method", NULL};
    const json_t *gm;
    char *type = NULL, mp[ROUTE_PATH_MAX], cp[ROUTE_PATH_MAX], q[96];
    int ret;

    mt->grpc_type = RM_ROUTE_VALUE_EXACT;
    if ((ret = rm__route_get_map(ctx, m, "method", p, &gm)) != 0 || gm == NULL)
        return ret;
    rm__route_child(mp, p, "method");
    if ((ret = rm__route_check_keys(ctx, gm, mp, keys)) != 0 ||
        (ret = rm__route_get_str(ctx, gm, "type", mp, 32, 0, &type)) != 0)
        return ret;
    if (type != NULL && strcmp(type, "Exact") != 0 && strcmp(type, "RegularExpression") != 0)
        ret = rm__route_fail(ctx, rm__route_child(cp, mp, "type"),
                             "%s is not a method match type (want Exact or RegularExpression)",
                             rm_yaml_quoted(q, sizeof(q), type));
    else if (type != NULL && strcmp(type, "RegularExpression") == 0)
        mt->grpc_type = RM_ROUTE_VALUE_REGEX;
    free(type);
    if (ret != 0 || (ret = rm__route_get_str(ctx, gm, "service", mp, 1024, 0, &mt->grpc_service)) != 0 ||
        (ret = rm__route_get_str(ctx, gm, "method", mp, 1024, 0, &mt->grpc_method)) != 0)
        return ret;
    if (mt->grpc_service == NULL && mt->grpc_method == NULL)
        return rm__route_fail(ctx, mp, "needs service, method or both");
    if (mt->grpc_type == RM_ROUTE_VALUE_REGEX) {
        if (mt->grpc_service != NULL && (ret = rm__route_regex(ctx, rm__route_child(cp, mp, "service"),
                                                               mt->grpc_service, &mt->grpc_service_re)) != 0)
            return ret;
        if (mt->grpc_method != NULL &&
            (ret = rm__route_regex(ctx, rm__route_child(cp, mp, "method"), mt->grpc_method, &mt->grpc_method_re)) != 0)
            return ret;
        return 0;
    }
    if (mt->grpc_service != NULL) {
        const char *s = mt->grpc_service + (mt->grpc_service[0] == '.');
        int ok = *s != '\0';
        for (const char *c = s; ok && *c != '\0'; c++)
            ok = isalnum((unsigned char)*c) || *c == '_' || (*c == '.' && c[1] != '.' && c[1] != '\0');
        if (!ok || isdigit((unsigned char)*s))
            return rm__route_fail(ctx, rm__route_child(cp, mp, "service"),
                                  "%s is not a gRPC service name (dot-separated identifiers, such as pkg.Service)",
                                  rm_yaml_quoted(q, sizeof(q), mt->grpc_service));
    }
    if (mt->grpc_method != NULL) {
        const char *s = mt->grpc_method;
        int ok = !isdigit((unsigned char)*s);
        for (const char *c = s; ok && *c != '\0'; c++)
            ok = isalnum((unsigned char)*c) || *c == '_';
        if (!ok)
            return rm__route_fail(ctx, rm__route_child(cp, mp, "method"), "%s is not a gRPC method name",
                                  rm_yaml_quoted(q, sizeof(q), mt->grpc_method));
    }
    return 0;
}

static int read_matches(route_ctx_t *ctx, const json_t *rule, const char *path, rm_route_rule_t *out)
{
    static const char *const http_keys[] = {"path", "headers", "queryParams", "method", NULL};
    static const char *const grpc_keys[] = {"method", "headers", NULL};
    const json_t *list;
    char p[ROUTE_PATH_MAX], lp[ROUTE_PATH_MAX], cp[ROUTE_PATH_MAX], q[96];
    size_t n;
    int ret;

    if ((ret = rm__route_get_list(ctx, rule, "matches", path, MAX_MATCHES, &list)) != 0)
        return ret;
    n = list != NULL ? json_array_size(list) : 1; /* none: one match of every request */
    if ((out->matches = calloc(n, sizeof(*out->matches))) == NULL)
        return -ENOMEM;
    rm__route_child(lp, path, "matches");
    for (size_t i = 0; i < n; i++) {
        const json_t *m = list != NULL ? json_array_get(list, i) : NULL;
        rm_route_match_t *mt = &out->matches[i];
        json_t *empty = NULL;

        out->num_matches = i + 1;
        rm__route_index(p, lp, i);
        if (m == NULL)
            m = empty = json_object();
        if (m == NULL)
            return -ENOMEM;
        if (!json_is_object(m))
            ret = rm__route_fail(ctx, p, "must be a mapping");
        else if (ctx->kind == RM_ROUTE_HTTP) {
            if ((ret = rm__route_check_keys(ctx, m, p, http_keys)) == 0 && (ret = read_http_path(ctx, m, p, mt)) == 0 &&
                (ret = read_kv(ctx, m, "headers", p, 1, &mt->headers, &mt->num_headers)) == 0 &&
                (ret = read_kv(ctx, m, "queryParams", p, 0, &mt->query, &mt->num_query)) == 0 &&
                (ret = rm__route_get_str(ctx, m, "method", p, 16, 0, &mt->method)) == 0 && mt->method != NULL) {
                size_t k;
                for (k = 0; http_methods[k] != NULL && strcmp(http_methods[k], mt->method) != 0; k++)
                    ;
                if (http_methods[k] == NULL)
                    ret = rm__route_fail(ctx, rm__route_child(cp, p, "method"),
                                         "%s is not a method the API names (GET, HEAD, POST, PUT, DELETE, CONNECT, "
                                         "OPTIONS, TRACE, PATCH)",
                                         rm_yaml_quoted(q, sizeof(q), mt->method));
            }
        } else {
            if ((ret = rm__route_check_keys(ctx, m, p, grpc_keys)) == 0 && (ret = read_grpc_method(ctx, m, p, mt)) == 0)
                ret = read_kv(ctx, m, "headers", p, 1, &mt->headers, &mt->num_headers);
        }
        json_decref(empty);
        if (ret != 0)
            return ret;
    }
    return 0;
}

static int read_rules(route_ctx_t *ctx, const json_t *spec, rm_route_t *r)
{
    static const char *const http_keys[] = {
        "name", "matches", "filters", "backendRefs", "timeouts", "retry", "sessionPersistence", NULL};
    static const char *const grpc_keys[] = {"name", "matches", "filters", "backendRefs", "sessionPersistence", NULL};
    const json_t *list;
    char p[ROUTE_PATH_MAX], cp[ROUTE_PATH_MAX], q[96];
    size_t n;
    int ret;

    if ((ret = rm__route_get_list(ctx, spec, "rules", "spec", MAX_RULES, &list)) != 0)
        return ret;
    n = list != NULL ? json_array_size(list) : 1; /* none: one rule of every request, with no backend */
    if ((r->rules = calloc(n, sizeof(*r->rules))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *rule = list != NULL ? json_array_get(list, i) : NULL;
        rm_route_rule_t *out = &r->rules[i];
        json_t *empty = NULL;

        r->num_rules = i + 1;
        out->request_timeout_ms = out->backend_request_timeout_ms = RM_ROUTE_TIMEOUT_UNSET;
        out->retry.attempts = -1;
        out->retry.backoff_ms = -1;
        rm__route_index(p, "spec.rules", i);
        if (rule == NULL)
            rule = empty = json_object();
        if (rule == NULL)
            return -ENOMEM;
        if (!json_is_object(rule))
            ret = rm__route_fail(ctx, p, "must be a mapping");
        else if ((ret = rm__route_check_keys(ctx, rule, p, ctx->kind == RM_ROUTE_HTTP ? http_keys : grpc_keys)) == 0 &&
                 json_object_get(rule, "sessionPersistence") != NULL)
            ret = rm__route_fail(ctx, rm__route_child(cp, p, "sessionPersistence"), "not supported by the mesh");
        if (ret == 0 && (ret = rm__route_get_str(ctx, rule, "name", p, 253, 0, &out->name)) == 0 && out->name != NULL &&
            !rm__route_is_dns_label(out->name))
            ret = rm__route_fail(ctx, rm__route_child(cp, p, "name"), "%s is not a DNS-1123 label",
                                 rm_yaml_quoted(q, sizeof(q), out->name));
        if (ret == 0 && (ret = read_matches(ctx, rule, p, out)) == 0 &&
            (ret = rm__route_read_filters(ctx, rule, p, out)) == 0 &&
            (ret = rm__route_read_backends(ctx, rule, p, out)) == 0)
            ret = rm__route_read_timeouts(ctx, rule, p, out);
        json_decref(empty);
        if (ret != 0)
            return ret;
        if (out->name != NULL)
            for (size_t j = 0; j < i; j++)
                if (r->rules[j].name != NULL && strcmp(r->rules[j].name, out->name) == 0)
                    return rm__route_fail(ctx, rm__route_child(cp, p, "name"), "spec.rules[%zu] has this name too", j);
    }
    return 0;
}

int rm_route_from_json(const json_t *obj, rm_route_t **out, rm_route_error_t *err)
{
    static const char *const top_keys[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
    static const char *const spec_keys[] = {"parentRefs", "hostnames", "rules", NULL};
    route_ctx_t ctx = {.err = err};
    rm_route_t *r = NULL;
    const json_t *spec;
    char *api = NULL, *kind = NULL, q[96];
    int ret;

    memset(err, 0, sizeof(*err));
    *out = NULL;
    if (!json_is_object(obj)) {
        ret = rm__route_fail(&ctx, "", "a route must be a mapping (apiVersion, kind, metadata, spec)");
        goto Exit;
    }
    if ((ret = rm__route_check_keys(&ctx, obj, "", top_keys)) != 0 ||
        (ret = rm__route_get_str(&ctx, obj, "apiVersion", "", 128, 1, &api)) != 0 ||
        (ret = rm__route_get_str(&ctx, obj, "kind", "", 64, 1, &kind)) != 0)
        goto Exit;
    if (strcmp(kind, "HTTPRoute") == 0) {
        ctx.kind = RM_ROUTE_HTTP;
    } else if (strcmp(kind, "GRPCRoute") == 0) {
        ctx.kind = RM_ROUTE_GRPC;
    } else {
        ret = rm__route_fail(&ctx, "kind", "%s is not a route kind (want HTTPRoute or GRPCRoute)",
                             rm_yaml_quoted(q, sizeof(q), kind));
        goto Exit;
    }
    if (strcmp(api, RM_ROUTE_API_VERSION) != 0) {
        ret = rm__route_fail(&ctx, "apiVersion", "%s is not a version this reader takes (want %s)",
                             rm_yaml_quoted(q, sizeof(q), api), RM_ROUTE_API_VERSION);
        goto Exit;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    r->kind = ctx.kind;
    if ((ret = read_metadata(&ctx, obj, r)) != 0 || (ret = rm__route_get_map(&ctx, obj, "spec", "", &spec)) != 0)
        goto Exit;
    if (spec == NULL) {
        ret = rm__route_fail(&ctx, "spec", "is required (parentRefs, rules)");
        goto Exit;
    }
    if ((ret = rm__route_check_keys(&ctx, spec, "spec", spec_keys)) != 0 || (ret = read_parents(&ctx, spec, r)) != 0 ||
        (ret = read_hostnames(&ctx, spec, r)) != 0 || (ret = read_rules(&ctx, spec, r)) != 0)
        goto Exit;
    *out = r;
    r = NULL;

Exit:
    if (ret == -ENOMEM)
        rm__route_fail(&ctx, "", "out of memory");
    rm_route_free(r);
    free(api);
    free(kind);
    return ret;
}
