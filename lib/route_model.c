/* The route model (ringmesh/route.h): the reader's shared checks of single values, freeing, lists of routes and the
 * order the Gateway API gives routes on ties. */
#include "route_internal.h"

#include "ringmesh/error.h"
#include "ringmesh/yaml_load.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Field paths are for messages: one cut short is still useful, so truncation is intended. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

int rm__route_fail(route_ctx_t *ctx, const char *path, const char *fmt, ...)
{
    va_list ap;
    snprintf(ctx->err->field, sizeof(ctx->err->field), "%s", path != NULL ? path : "");
    va_start(ap, fmt);
    vsnprintf(ctx->err->reason, sizeof(ctx->err->reason), fmt, ap);
    va_end(ap);
    return RM_ERR_CONFIG_VALUE;
}

const char *rm__route_child(char *buf, const char *path, const char *key)
{
    if (path[0] == '\0')
        snprintf(buf, ROUTE_PATH_MAX, "%s", key);
    else
        snprintf(buf, ROUTE_PATH_MAX, "%s.%s", path, key);
    return buf;
}

const char *rm__route_index(char *buf, const char *path, size_t i)
{
    snprintf(buf, ROUTE_PATH_MAX, "%s[%zu]", path, i);
    return buf;
}

int rm__route_check_keys(route_ctx_t *ctx, const json_t *obj, const char *path, const char *const *known)
{
    const char *key;
    json_t *v;
    char cp[ROUTE_PATH_MAX], q[96], list[512];

    json_object_foreach((json_t *)obj, key, v)
    {
        size_t i;
        (void)v;
        for (i = 0; known[i] != NULL; i++)
            if (strcmp(key, known[i]) == 0)
                break;
        if (known[i] != NULL)
            continue;
        list[0] = '\0';
        for (i = 0; known[i] != NULL; i++) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? ", " : "", known[i]);
        }
        return rm__route_fail(ctx, rm__route_child(cp, path, key), "unknown key %s (known keys: %s)",
                              rm_yaml_quoted(q, sizeof(q), key), list);
    }
    return 0;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "a mapping";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

int rm__route_get_str(route_ctx_t *ctx, const json_t *obj, const char *key, const char *path, size_t max, int required,
                      char **out)
{
    const json_t *v = json_object_get(obj, key);
    char cp[ROUTE_PATH_MAX];
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return rm__route_fail(ctx, path[0] != '\0' ? path : key, "%s is required", key);
        return 0;
    }
    rm__route_child(cp, path, key);
    if (!json_is_string(v))
        return rm__route_fail(ctx, cp, "must be a string, not %s", json_kind(v));
    if (json_string_length(v) > max)
        return rm__route_fail(ctx, cp, "is longer than %zu characters", max);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return rm__route_fail(ctx, cp, "holds a NUL character");
    if (required && json_string_length(v) == 0)
        return rm__route_fail(ctx, cp, "must not be empty");
    if ((*out = strdup(json_string_value(v))) == NULL)
        return -ENOMEM;
    return 0;
}

int rm__route_get_int(route_ctx_t *ctx, const json_t *obj, const char *key, const char *path, int64_t min, int64_t max,
                      int64_t *out, int *present)
{
    const json_t *v = json_object_get(obj, key);
    char cp[ROUTE_PATH_MAX], q[96];
    int64_t x = 0;
    *present = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    rm__route_child(cp, path, key);
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        if (n == 0 || n > 10 || strspn(s, "0123456789") != n)
            return rm__route_fail(ctx, cp, "%s is not a whole number", rm_yaml_quoted(q, sizeof(q), s));
        x = strtoll(s, NULL, 10);
    } else {
        return rm__route_fail(ctx, cp, "must be a whole number, not %s", json_kind(v));
    }
    if (x < min || x > max)
        return rm__route_fail(ctx, cp, "%lld is out of range (want %lld..%lld)", (long long)x, (long long)min,
                              (long long)max);
    *out = x;
    *present = 1;
    return 0;
}

int rm__route_get_list(route_ctx_t *ctx, const json_t *obj, const char *key, const char *path, size_t max,
                       const json_t **out)
{
    const json_t *v = json_object_get(obj, key);
    char cp[ROUTE_PATH_MAX];
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    rm__route_child(cp, path, key);
    if (!json_is_array(v))
        return rm__route_fail(ctx, cp, "must be a list, not %s", json_kind(v));
    if (json_array_size(v) > max)
        return rm__route_fail(ctx, cp, "has %zu entries (at most %zu allowed)", json_array_size(v), max);
    *out = json_array_size(v) > 0 ? v : NULL;
    return 0;
}

int rm__route_get_map(route_ctx_t *ctx, const json_t *obj, const char *key, const char *path, const json_t **out)
{
    const json_t *v = json_object_get(obj, key);
    char cp[ROUTE_PATH_MAX];
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return rm__route_fail(ctx, rm__route_child(cp, path, key), "must be a mapping, not %s", json_kind(v));
    *out = v;
    return 0;
}

int rm__route_is_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

int rm__route_is_dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (const char *p = s; *p != '\0';) {
        const char *dot = strchr(p, '.');
        size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);
        char label[64];
        if (l == 0 || l > 63)
            return 0;
        memcpy(label, p, l);
        label[l] = '\0';
        if (!rm__route_is_dns_label(label))
            return 0;
        p += l;
        if (*p == '.' && *++p == '\0')
            return 0;
    }
    return 1;
}

int rm__route_is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return 0;
    return 1;
}

int rm__route_regex(route_ctx_t *ctx, const char *path, const char *expr, void **out)
{
    size_t n = strlen(expr) + 7;
    char *anchored = malloc(n), q[96], msg[160];
    regex_t *re = calloc(1, sizeof(*re));
    int rc;

    *out = NULL;
    if (anchored == NULL || re == NULL) {
        free(anchored);
        free(re);
        return -ENOMEM;
    }
    snprintf(anchored, n, "^(%s)$", expr);
    rc = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) {
        regerror(rc, re, msg, sizeof(msg));
        free(re);
        return rm__route_fail(ctx, path, "%s is not a POSIX extended regular expression: %s",
                              rm_yaml_quoted(q, sizeof(q), expr), msg);
    }
    *out = re;
    return 0;
}

void rm__route_regex_free(void *re)
{
    if (re != NULL) {
        regfree(re);
        free(re);
    }
}

int rm__route_duration(route_ctx_t *ctx, const char *path, const char *s, int64_t *ms)
{
    const char *p = s;
    int64_t total = 0;
    int groups = 0;
    char q[96];

    while (*p != '\0') {
        size_t digits = strspn(p, "0123456789");
        int64_t v = 0, unit;
        if (digits == 0 || digits > 5 || ++groups > 4)
            goto Bad;
        for (size_t i = 0; i < digits; i++)
            v = v * 10 + (p[i] - '0');
        p += digits;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else {
            goto Bad;
        }
        total += v * unit;
    }
    if (groups == 0)
        goto Bad;
    *ms = total;
    return 0;
Bad:
    return rm__route_fail(ctx, path,
                          "%s is not a Gateway API duration (one to four groups of at most 5 digits and a unit h, m, "
                          "s or ms, such as 10s or 1m30s)",
                          rm_yaml_quoted(q, sizeof(q), s));
}

/* ---------------------------------------------------------------------------------------------------------
 * Freeing.
 * ------------------------------------------------------------------------------------------------------- */

static void kv_clear(rm_route_kv_match_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].value);
        rm__route_regex_free(m[i].re);
    }
    free(m);
}

static void headers_clear(rm_route_header_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

void rm__route_filter_clear(rm_route_filter_t *f)
{
    headers_clear(f->set, f->num_set);
    headers_clear(f->add, f->num_add);
    for (size_t i = 0; i < f->num_remove; i++)
        free(f->remove[i]);
    free(f->remove);
    free(f->scheme);
    free(f->hostname);
    free(f->path);
    memset(f, 0, sizeof(*f));
}

static void rule_clear(rm_route_rule_t *rule)
{
    for (size_t m = 0; m < rule->num_matches; m++) {
        rm_route_match_t *mt = &rule->matches[m];
        free(mt->path);
        rm__route_regex_free(mt->path_re);
        free(mt->method);
        free(mt->grpc_service);
        free(mt->grpc_method);
        rm__route_regex_free(mt->grpc_service_re);
        rm__route_regex_free(mt->grpc_method_re);
        kv_clear(mt->headers, mt->num_headers);
        kv_clear(mt->query, mt->num_query);
    }
    free(rule->matches);
    for (size_t f = 0; f < rule->num_filters; f++)
        rm__route_filter_clear(&rule->filters[f]);
    free(rule->filters);
    for (size_t b = 0; b < rule->num_backends; b++) {
        free(rule->backends[b].namespace_);
        free(rule->backends[b].name);
    }
    free(rule->backends);
    free(rule->retry.codes);
    free(rule->name);
}

void rm_route_free(rm_route_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->num_rules; i++)
        rule_clear(&r->rules[i]);
    free(r->rules);
    for (size_t i = 0; i < r->num_parents; i++) {
        free(r->parents[i].namespace_);
        free(r->parents[i].name);
    }
    free(r->parents);
    for (size_t i = 0; i < r->num_hostnames; i++)
        free(r->hostnames[i]);
    free(r->hostnames);
    free(r->namespace_);
    free(r->name);
    free(r);
}

/* ---------------------------------------------------------------------------------------------------------
 * Lists.
 * ------------------------------------------------------------------------------------------------------- */

int rm_route_list_push(rm_route_list_t *list, rm_route_t *r, const char *file, unsigned line)
{
    char *f = NULL;
    if (list->num == list->cap) {
        size_t cap = list->cap == 0 ? 8 : list->cap * 2;
        rm_route_t **routes = realloc(list->routes, cap * sizeof(*routes));
        if (routes != NULL)
            list->routes = routes;
        char **files = routes != NULL ? realloc(list->files, cap * sizeof(*files)) : NULL;
        if (files != NULL)
            list->files = files;
        unsigned *lines = files != NULL ? realloc(list->lines, cap * sizeof(*lines)) : NULL;
        if (lines == NULL) {
            rm_route_free(r);
            return -ENOMEM;
        }
        list->lines = lines;
        list->cap = cap;
    }
    if ((f = strdup(file != NULL ? file : "")) == NULL) {
        rm_route_free(r);
        return -ENOMEM;
    }
    list->routes[list->num] = r;
    list->files[list->num] = f;
    list->lines[list->num] = line;
    list->num++;
    return 0;
}

int rm_route_list_check(const rm_route_list_t *list, rm_config_error_t *err)
{
    for (size_t i = 0; i < list->num; i++) {
        const rm_route_t *a = list->routes[i];
        for (size_t j = 0; j < i; j++) {
            const rm_route_t *b = list->routes[j];
            if (a->kind == b->kind && strcmp(a->namespace_, b->namespace_) == 0 && strcmp(a->name, b->name) == 0)
                return rm_config_error_set(err, RM_ERR_CONFIG_VALUE, list->files[i], (rm_yaml_pos_t){list->lines[i], 1},
                                           "metadata.name", "%s %s/%s is also defined at %s:%u",
                                           a->kind == RM_ROUTE_GRPC ? "GRPCRoute" : "HTTPRoute", a->namespace_, a->name,
                                           list->files[j], list->lines[j]);
        }
    }
    return 0;
}

void rm_route_list_clear(rm_route_list_t *list)
{
    for (size_t i = 0; i < list->num; i++) {
        rm_route_free(list->routes[i]);
        free(list->files[i]);
    }
    free(list->routes);
    free(list->files);
    free(list->lines);
    memset(list, 0, sizeof(*list));
}

int rm_route_has_parent(const rm_route_t *r, const char *namespace_, const char *name)
{
    for (size_t i = 0; i < r->num_parents; i++)
        if (strcmp(r->parents[i].namespace_, namespace_) == 0 && strcmp(r->parents[i].name, name) == 0)
            return 1;
    return 0;
}

int rm_route_compare(const rm_route_t *a, const rm_route_t *b)
{
    char ka[320], kb[320];
    int c;
    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    /* "{namespace}/{name}" as one string: '-' sorts before '/', so comparing the parts one by one would differ */
    snprintf(ka, sizeof(ka), "%s/%s", a->namespace_, a->name);
    snprintf(kb, sizeof(kb), "%s/%s", b->namespace_, b->name);
    if ((c = strcmp(ka, kb)) != 0)
        return c;
    return (int)a->kind - (int)b->kind;
}
