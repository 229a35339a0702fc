/* AuthorizationPolicy and PeerAuthentication documents: YAML text -> the model of ringmesh/policy.h.
 *
 * libyaml's document loader builds the node tree with a position for every node, so each finding names the file,
 * line, column and field path of the node at fault. A document with errors is left out whole and every error is
 * reported, not just the first: a team fixing a policy file wants the full list at once. Aliases are refused
 * (a policy has no use for them, and a reused node would be walked many times). */
#include "ringmesh/policy.h"
#include "ringmesh/error.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "ringmesh/config.h"

#define POLICY_FILE_MAX   (4u << 20)
#define POLICY_STRING_MAX 4096u
#define POLICY_PATH_MAX   512u
#define POLICY_NODES_MAX  200000u /* nodes per document: far above any real policy */

typedef struct st_loader_t {
    rm_policy_diags_t *diags;
    const char *file;
    yaml_document_t *doc;
    unsigned errors;
    int oom;
} loader_t;

/* ------------------------------------------------------------------ findings */

static char *dup_str(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

void rm_policy_diags_clear(rm_policy_diags_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->d[i].file);
        free(d->d[i].path);
        free(d->d[i].message);
    }
    free(d->d);
    memset(d, 0, sizeof(*d));
}

void rm_policy_diag_format(const rm_policy_diag_t *d, char *buf, size_t len)
{
    rm_config_format(buf, len, d->file, d->line, d->column, d->path, d->warning ? "warning: " : "", d->message);
}

static int diag_add(rm_policy_diags_t *diags, int warning, const char *file, unsigned line, unsigned column,
                    const char *path, const char *msg)
{
    rm_policy_diag_t *nd = realloc(diags->d, (diags->n + 1) * sizeof(*nd));
    if (nd == NULL)
        return -ENOMEM;
    diags->d = nd;
    rm_policy_diag_t *d = &diags->d[diags->n];
    d->warning = warning;
    d->file = dup_str(file);
    d->line = line;
    d->column = column;
    d->path = dup_str(path);
    d->message = dup_str(msg);
    if (d->message == NULL) {
        free(d->file);
        free(d->path);
        return -ENOMEM;
    }
    diags->n++;
    if (!warning)
        diags->num_errors++;
    return 0;
}

/* Messages quote values from the document: keep them printable and short. */
static const char *quoted(char *buf, size_t len, const char *s)
{
    size_t o = 0;
    buf[o++] = '"';
    for (; *s != '\0' && o + 5 < len; s++)
        buf[o++] = (unsigned char)*s >= 0x20 && *s != 0x7f && *s != '"' ? *s : '?';
    if (*s != '\0' && o + 4 < len)
        buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

__attribute__((format(printf, 5, 6))) static void report(loader_t *ld, int warning, const yaml_node_t *at,
                                                         const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (diag_add(ld->diags, warning, ld->file, at != NULL ? (unsigned)at->start_mark.line + 1 : 0,
                 at != NULL ? (unsigned)at->start_mark.column + 1 : 0, path, msg) != 0)
        ld->oom = 1;
    if (!warning)
        ld->errors++;
}

/* ------------------------------------------------------------------ node access */

static yaml_node_t *node(loader_t *ld, int id)
{
    return yaml_document_get_node(ld->doc, id);
}

static const char *type_word(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)n->data.scalar.value;
    return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

static int want_type(loader_t *ld, const yaml_node_t *n, yaml_node_type_t t, const char *path)
{
    if (n->type == t)
        return 1;
    report(ld, 0, n, path, "want %s, got %s",
           t == YAML_SCALAR_NODE     ? "a string"
           : t == YAML_SEQUENCE_NODE ? "a list"
                                     : "a mapping",
           type_word(n));
    return 0;
}

/* A mapping's keys: every key a plain string, none twice, none outside `known` (NULL: any key). */
static int check_keys(loader_t *ld, const yaml_node_t *map, const char *path, const char *const *known,
                      const char *unsupported_why)
{
    int ok = 1;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(ld, p->key);
        char q[160];
        if (k->type != YAML_SCALAR_NODE) {
            report(ld, 0, k, path, "keys must be strings, got %s", type_word(k));
            ok = 0;
            continue;
        }
        const char *ks = (const char *)k->data.scalar.value;
        for (yaml_node_pair_t *o = map->data.mapping.pairs.start; o < p; o++) {
            yaml_node_t *ok2 = node(ld, o->key);
            if (ok2->type == YAML_SCALAR_NODE && strcmp((const char *)ok2->data.scalar.value, ks) == 0) {
                report(ld, 0, k, path, "field %s appears twice", quoted(q, sizeof(q), ks));
                ok = 0;
            }
        }
        if (known == NULL)
            continue;
        int found = 0;
        for (size_t i = 0; known[i] != NULL && !found; i++)
            found = strcmp(known[i], ks) == 0;
        if (!found) {
            char list[512];
            size_t o = 0;
            for (size_t i = 0; known[i] != NULL && o < sizeof(list) - 1; i++) {
                int w = snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", known[i]);
                o += w > 0 ? (size_t)w : 0;
            }
            if (unsupported_why != NULL && strstr(unsupported_why, ks) != NULL)
                report(ld, 0, k, path, "field %s is not supported: %s", quoted(q, sizeof(q), ks), unsupported_why);
            else
                report(ld, 0, k, path, "unknown field %s (known: %s)", quoted(q, sizeof(q), ks), list);
            ok = 0;
        }
    }
    return ok;
}

static yaml_node_t *map_get(loader_t *ld, const yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(ld, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return node(ld, p->value);
    }
    return NULL;
}

/* Field paths are for messages: one cut short at POLICY_PATH_MAX is still useful, so truncation is intended. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static void child_path(char *out, const char *path, const char *key)
{
    snprintf(out, POLICY_PATH_MAX, "%s%s%s", path, path[0] ? "." : "", key);
}

static void index_path(char *out, const char *path, size_t i)
{
    snprintf(out, POLICY_PATH_MAX, "%s[%zu]", path, i);
}

/* A scalar as a new string; NULL (with a finding) when it is not one or is too long. */
static char *scalar(loader_t *ld, const yaml_node_t *n, const char *path)
{
    if (!want_type(ld, n, YAML_SCALAR_NODE, path))
        return NULL;
    if (n->data.scalar.length > POLICY_STRING_MAX) {
        report(ld, 0, n, path, "value longer than %u bytes", POLICY_STRING_MAX);
        return NULL;
    }
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL) {
        report(ld, 0, n, path, "value contains a NUL character");
        return NULL;
    }
    char *s = strdup((const char *)n->data.scalar.value);
    if (s == NULL)
        ld->oom = 1;
    return s;
}

static void strlist_clear(rm_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* ------------------------------------------------------------------ value checks */

/* Istio's string match forms: "x", "x*", "*x", "*". A '*' anywhere else is an error, as in Istio. */
static int check_match_form(loader_t *ld, const yaml_node_t *n, const char *path, const char *v)
{
    size_t len = strlen(v);
    char q[160];
    if (len == 0) {
        report(ld, 0, n, path, "empty value: write \"*\" to match any value");
        return 0;
    }
    for (size_t i = 1; i + 1 < len; i++) {
        if (v[i] == '*') {
            report(ld, 0, n, path,
                   "%s: '*' may only be the first or the last character (prefix \"x*\", suffix \"*x\", "
                   "presence \"*\")",
                   quoted(q, sizeof(q), v));
            return 0;
        }
    }
    if (len >= 2 && v[0] == '*' && v[len - 1] == '*') {
        report(ld, 0, n, path, "%s: a value cannot be both a prefix and a suffix match", quoted(q, sizeof(q), v));
        return 0;
    }
    return 1;
}

int rm_authz_ip_parse(const char *s, uint8_t out[16])
{
    unsigned prefix;
    if (strchr(s, '/') != NULL || rm_config_parse_cidr(s, out, &prefix) != 0)
        return -EINVAL;
    return 0;
}

typedef enum { VAL_MATCH = 0, VAL_IP, VAL_PORT, VAL_METHOD, VAL_PATH, VAL_NAMESPACE } value_kind_t;

static int check_value(loader_t *ld, const yaml_node_t *n, const char *path, const char *v, value_kind_t kind)
{
    char q[160];
    uint8_t a[16];
    unsigned prefix;
    uint16_t port;
    switch (kind) {
    case VAL_IP:
        if (rm_config_parse_cidr(v, a, &prefix) != 0) {
            report(ld, 0, n, path, "%s is not an IP address or CIDR block", quoted(q, sizeof(q), v));
            return 0;
        }
        return 1;
    case VAL_PORT:
        if (rm_config_parse_port(v, &port) != 0) {
            report(ld, 0, n, path, "%s is not a port number (1-65535)", quoted(q, sizeof(q), v));
            return 0;
        }
        return 1;
    case VAL_PATH:
        if (!check_match_form(ld, n, path, v))
            return 0;
        if (v[0] != '/' && v[0] != '*') {
            report(ld, 0, n, path, "%s: a path must begin with '/' (or '*' for a suffix match)",
                   quoted(q, sizeof(q), v));
            return 0;
        }
        return 1;
    case VAL_METHOD:
    case VAL_NAMESPACE:
    case VAL_MATCH:
        return check_match_form(ld, n, path, v);
    }
    return 1;
}

/* A list of strings (a single scalar is refused, as in Istio's schema). Returns 1 when it was read cleanly. */
static int read_strlist(loader_t *ld, const yaml_node_t *n, const char *path, rm_strlist_t *out, value_kind_t kind)
{
    char ip[POLICY_PATH_MAX];
    int ok = 1;
    if (is_null(n))
        return 1;
    if (!want_type(ld, n, YAML_SEQUENCE_NODE, path))
        return 0;
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt == 0)
        return 1;
    if ((out->v = calloc(cnt, sizeof(char *))) == NULL) {
        ld->oom = 1;
        return 0;
    }
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *e = node(ld, n->data.sequence.items.start[i]);
        index_path(ip, path, i);
        char *s = scalar(ld, e, ip);
        if (s == NULL) {
            ok = 0;
            continue;
        }
        if (!check_value(ld, e, ip, s, kind)) {
            free(s);
            ok = 0;
            continue;
        }
        out->v[out->n++] = s;
    }
    return ok;
}

/* ------------------------------------------------------------------ the spec */

/* One list-valued field of a source or an operation. */
typedef struct st_list_field_t {
    const char *key;
    rm_strlist_t *list;
    value_kind_t kind;
} list_field_t;

/* Reads the list fields present in mapping n; *fields counts those with at least one entry. Returns 1 when all
 * were read cleanly. */
static int read_list_fields(loader_t *ld, const yaml_node_t *n, const char *path, const list_field_t *f, size_t num,
                            int *fields)
{
    char cp[POLICY_PATH_MAX];
    int ok = 1;
    for (size_t i = 0; i < num; i++) {
        yaml_node_t *v = map_get(ld, n, f[i].key);
        if (v == NULL)
            continue;
        child_path(cp, path, f[i].key);
        if (!read_strlist(ld, v, cp, f[i].list, f[i].kind))
            ok = 0;
        if (f[i].list->n > 0)
            (*fields)++;
    }
    return ok;
}

static const char *const source_keys[] = {
    "principals",        "notPrincipals",        "namespaces",     "notNamespaces",     "ipBlocks", "notIpBlocks",
    "requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks", NULL};

static int read_source(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_source_t *s)
{
    char cp[POLICY_PATH_MAX];
    int ok = 1, fields = 0;
    list_field_t f[] = {
        {"principals", &s->principals, VAL_MATCH},     {"notPrincipals", &s->not_principals, VAL_MATCH},
        {"namespaces", &s->namespaces, VAL_NAMESPACE}, {"notNamespaces", &s->not_namespaces, VAL_NAMESPACE},
        {"ipBlocks", &s->ip_blocks, VAL_IP},           {"notIpBlocks", &s->not_ip_blocks, VAL_IP},
    };
    if (!want_type(ld, n, YAML_MAPPING_NODE, path))
        return 0;
    for (const char *const *k = source_keys + 6; *k != NULL; k++) {
        yaml_node_t *v = map_get(ld, n, *k);
        if (v != NULL) {
            child_path(cp, path, *k);
            report(ld, 0, v, cp,
                   "not supported: %s needs request authentication (JWT) or a trusted X-Forwarded-For, which the "
                   "mesh does not provide",
                   *k);
            ok = 0;
        }
    }
    if (!check_keys(ld, n, path, source_keys, NULL))
        ok = 0;
    if (!read_list_fields(ld, n, path, f, sizeof(f) / sizeof(f[0]), &fields))
        ok = 0;
    if (ok && fields == 0) {
        report(ld, 0, n, path, "a source must set at least one field (a rule without `from` matches every source)");
        ok = 0;
    }
    return ok;
}

static const char *const operation_keys[] = {"hosts",      "notHosts", "ports",    "notPorts", "methods",
                                             "notMethods", "paths",    "notPaths", NULL};

static int read_operation(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_operation_t *o)
{
    int ok = 1, fields = 0;
    list_field_t f[] = {
        {"hosts", &o->hosts, VAL_MATCH},      {"notHosts", &o->not_hosts, VAL_MATCH},
        {"ports", &o->ports, VAL_PORT},       {"notPorts", &o->not_ports, VAL_PORT},
        {"methods", &o->methods, VAL_METHOD}, {"notMethods", &o->not_methods, VAL_METHOD},
        {"paths", &o->paths, VAL_PATH},       {"notPaths", &o->not_paths, VAL_PATH},
    };
    if (!want_type(ld, n, YAML_MAPPING_NODE, path))
        return 0;
    if (!check_keys(ld, n, path, operation_keys, NULL))
        ok = 0;
    if (!read_list_fields(ld, n, path, f, sizeof(f) / sizeof(f[0]), &fields))
        ok = 0;
    if (ok && fields == 0) {
        report(ld, 0, n, path, "an operation must set at least one field (a rule without `to` matches every request)");
        ok = 0;
    }
    return ok;
}

/* The `when` keys the mesh can evaluate, with the kind of their values. */
static int condition_key_kind(const char *key, value_kind_t *kind, const char **why)
{
    static const struct {
        const char *key;
        value_kind_t kind;
    } keys[] = {
        {"source.ip", VAL_IP},      {"source.namespace", VAL_NAMESPACE}, {"source.principal", VAL_MATCH},
        {"destination.ip", VAL_IP}, {"destination.port", VAL_PORT},      {"connection.sni", VAL_MATCH},
    };
    *why = NULL;
    size_t hl = strlen("request.headers[");
    if (strncmp(key, "request.headers[", hl) == 0) {
        size_t len = strlen(key);
        if (len < hl + 2 || key[len - 1] != ']') {
            *why = "want request.headers[NAME] with a header name";
            return 0;
        }
        for (size_t i = hl; i < len - 1; i++) {
            unsigned char c = (unsigned char)key[i];
            if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~:", c) != NULL)) {
                *why = "the header name has a character that no header name has";
                return 0;
            }
        }
        *kind = VAL_MATCH;
        return 1;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].key, key) == 0) {
            *kind = keys[i].kind;
            return 1;
        }
    }
    if (strncmp(key, "request.auth.", 13) == 0 || strcmp(key, "remote.ip") == 0 ||
        strncmp(key, "experimental.", 13) == 0) {
        *why = "not supported: this key needs request authentication (JWT) or a trusted X-Forwarded-For";
        return 0;
    }
    *why = "unknown key (supported: request.headers[NAME], source.ip, source.namespace, source.principal, "
           "destination.ip, destination.port, connection.sni)";
    return 0;
}

static int read_condition(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_condition_t *c)
{
    static const char *const keys[] = {"key", "values", "notValues", NULL};
    char cp[POLICY_PATH_MAX], q[160];
    int ok = 1;
    value_kind_t kind = VAL_MATCH;
    const char *why;
    if (!want_type(ld, n, YAML_MAPPING_NODE, path))
        return 0;
    if (!check_keys(ld, n, path, keys, NULL))
        ok = 0;
    yaml_node_t *k = map_get(ld, n, "key");
    child_path(cp, path, "key");
    if (k == NULL) {
        report(ld, 0, n, path, "a condition needs a key");
        return 0;
    }
    if ((c->key = scalar(ld, k, cp)) == NULL)
        return 0;
    if (!condition_key_kind(c->key, &kind, &why)) {
        report(ld, 0, k, cp, "%s: %s", quoted(q, sizeof(q), c->key), why);
        ok = 0;
    }
    yaml_node_t *v = map_get(ld, n, "values"), *nv = map_get(ld, n, "notValues");
    if (v != NULL) {
        child_path(cp, path, "values");
        if (!read_strlist(ld, v, cp, &c->values, kind))
            ok = 0;
    }
    if (nv != NULL) {
        child_path(cp, path, "notValues");
        if (!read_strlist(ld, nv, cp, &c->not_values, kind))
            ok = 0;
    }
    if (ok && c->values.n == 0 && c->not_values.n == 0) {
        report(ld, 0, n, path, "a condition needs values or notValues");
        ok = 0;
    }
    return ok;
}

/* Reads a list of single-key wrappers ({source: ...} / {operation: ...}) */
static int read_wrapped_list(loader_t *ld, const yaml_node_t *n, const char *path, const char *inner, void **out,
                             size_t *num, size_t elem_size,
                             int (*read)(loader_t *, const yaml_node_t *, const char *, void *))
{
    char ep[POLICY_PATH_MAX], ip[POLICY_PATH_MAX];
    const char *keys[] = {inner, NULL};
    int ok = 1;
    if (is_null(n))
        return 1;
    if (!want_type(ld, n, YAML_SEQUENCE_NODE, path))
        return 0;
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt == 0)
        return 1;
    uint8_t *arr = calloc(cnt, elem_size);
    if (arr == NULL) {
        ld->oom = 1;
        return 0;
    }
    *out = arr;
    *num = cnt;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *e = node(ld, n->data.sequence.items.start[i]);
        index_path(ep, path, i);
        if (!want_type(ld, e, YAML_MAPPING_NODE, ep)) {
            ok = 0;
            continue;
        }
        if (!check_keys(ld, e, ep, keys, NULL))
            ok = 0;
        yaml_node_t *v = map_get(ld, e, inner);
        child_path(ip, ep, inner);
        if (v == NULL || is_null(v)) {
            report(ld, 0, e, ep, "`%s` must be set", inner);
            ok = 0;
            continue;
        }
        if (!read(ld, v, ip, arr + i * elem_size))
            ok = 0;
    }
    return ok;
}

static int read_source_v(loader_t *ld, const yaml_node_t *n, const char *p, void *o)
{
    return read_source(ld, n, p, o);
}

static int read_operation_v(loader_t *ld, const yaml_node_t *n, const char *p, void *o)
{
    return read_operation(ld, n, p, o);
}

static int read_rule(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_rule_t *r)
{
    static const char *const keys[] = {"from", "to", "when", NULL};
    char cp[POLICY_PATH_MAX], ep[POLICY_PATH_MAX];
    int ok = 1;
    if (is_null(n))
        return 1; /* "- {}" written as "-": an empty rule, which matches everything */
    if (!want_type(ld, n, YAML_MAPPING_NODE, path))
        return 0;
    if (!check_keys(ld, n, path, keys, NULL))
        ok = 0;
    yaml_node_t *v;
    if ((v = map_get(ld, n, "from")) != NULL) {
        child_path(cp, path, "from");
        if (!read_wrapped_list(ld, v, cp, "source", (void **)&r->from, &r->num_from, sizeof(rm_authz_source_t),
                               read_source_v))
            ok = 0;
    }
    if ((v = map_get(ld, n, "to")) != NULL) {
        child_path(cp, path, "to");
        if (!read_wrapped_list(ld, v, cp, "operation", (void **)&r->to, &r->num_to, sizeof(rm_authz_operation_t),
                               read_operation_v))
            ok = 0;
    }
    if ((v = map_get(ld, n, "when")) != NULL && !is_null(v)) {
        child_path(cp, path, "when");
        if (!want_type(ld, v, YAML_SEQUENCE_NODE, cp))
            return 0;
        size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (cnt > 0) {
            if ((r->when = calloc(cnt, sizeof(*r->when))) == NULL) {
                ld->oom = 1;
                return 0;
            }
            r->num_when = cnt;
            for (size_t i = 0; i < cnt; i++) {
                index_path(ep, cp, i);
                if (!read_condition(ld, node(ld, v->data.sequence.items.start[i]), ep, &r->when[i]))
                    ok = 0;
            }
        }
    }
    return ok;
}

static int read_labels(loader_t *ld, const yaml_node_t *n, const char *path, rm_label_t **out, size_t *num)
{
    char cp[POLICY_PATH_MAX];
    int ok = 1;
    if (is_null(n))
        return 1;
    if (!want_type(ld, n, YAML_MAPPING_NODE, path) || !check_keys(ld, n, path, NULL, NULL))
        return 0;
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (cnt == 0)
        return 1;
    if ((*out = calloc(cnt, sizeof(rm_label_t))) == NULL) {
        ld->oom = 1;
        return 0;
    }
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_pair_t *p = n->data.mapping.pairs.start + i;
        yaml_node_t *k = node(ld, p->key), *v = node(ld, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return 0;
        child_path(cp, path, (const char *)k->data.scalar.value);
        char *vs = scalar(ld, v, cp);
        if (vs == NULL) {
            ok = 0;
            continue;
        }
        (*out)[*num].key = strdup((const char *)k->data.scalar.value);
        (*out)[*num].value = vs;
        if ((*out)[*num].key == NULL)
            ld->oom = 1;
        (*num)++;
    }
    return ok;
}

static int read_selector(loader_t *ld, const yaml_node_t *spec, int *has, rm_label_t **labels, size_t *num)
{
    static const char *const keys[] = {"matchLabels", NULL};
    yaml_node_t *sel = map_get(ld, spec, "selector");
    if (sel == NULL || is_null(sel))
        return 1;
    *has = 1;
    if (!want_type(ld, sel, YAML_MAPPING_NODE, "spec.selector"))
        return 0;
    int ok = check_keys(ld, sel, "spec.selector", keys, NULL);
    yaml_node_t *ml = map_get(ld, sel, "matchLabels");
    if (ml != NULL && !read_labels(ld, ml, "spec.selector.matchLabels", labels, num))
        ok = 0;
    return ok;
}

static int read_bool_annotation(loader_t *ld, const yaml_node_t *ann, const char *key, uint8_t *out)
{
    char cp[POLICY_PATH_MAX], q[64];
    yaml_node_t *v = map_get(ld, ann, key);
    if (v == NULL)
        return 1;
    child_path(cp, "metadata.annotations", key);
    if (v->type != YAML_SCALAR_NODE || (strcmp((const char *)v->data.scalar.value, "true") != 0 &&
                                        strcmp((const char *)v->data.scalar.value, "false") != 0)) {
        report(ld, 0, v, cp, "want \"true\" or \"false\", got %s",
               v->type == YAML_SCALAR_NODE ? quoted(q, sizeof(q), (const char *)v->data.scalar.value) : type_word(v));
        return 0;
    }
    *out = strcmp((const char *)v->data.scalar.value, "true") == 0;
    return 1;
}

/* metadata: name (required), namespace (default "default"), annotations; other keys (labels, uid, ...) are
 * Kubernetes' and ignored. */
static int read_metadata(loader_t *ld, const yaml_node_t *root, char **ns, char **name, uint8_t *dry_run,
                         uint8_t *log_allowed)
{
    char q[160];
    int ok = 1;
    yaml_node_t *md = map_get(ld, root, "metadata");
    if (md == NULL) {
        report(ld, 0, root, "metadata", "metadata.name is required");
        return 0;
    }
    if (!want_type(ld, md, YAML_MAPPING_NODE, "metadata") || !check_keys(ld, md, "metadata", NULL, NULL))
        return 0;
    yaml_node_t *n = map_get(ld, md, "name");
    if (n == NULL) {
        report(ld, 0, md, "metadata", "metadata.name is required");
        ok = 0;
    } else if ((*name = scalar(ld, n, "metadata.name")) != NULL && !rm_config_dns_subdomain_ok(*name)) {
        report(ld, 0, n, "metadata.name", "%s is not a DNS subdomain name (lower-case letters, digits, '-', '.')",
               quoted(q, sizeof(q), *name));
        ok = 0;
    } else if (*name == NULL) {
        ok = 0;
    }
    n = map_get(ld, md, "namespace");
    if (n == NULL) {
        *ns = strdup("default");
    } else if ((*ns = scalar(ld, n, "metadata.namespace")) != NULL && !rm_config_dns_label_ok(*ns, strlen(*ns))) {
        report(ld, 0, n, "metadata.namespace", "%s is not a namespace name (DNS label)", quoted(q, sizeof(q), *ns));
        ok = 0;
    } else if (*ns == NULL) {
        ok = 0;
    }
    yaml_node_t *ann = map_get(ld, md, "annotations");
    if (ann != NULL && !is_null(ann)) {
        if (!want_type(ld, ann, YAML_MAPPING_NODE, "metadata.annotations"))
            return 0;
        if (dry_run != NULL && (!read_bool_annotation(ld, ann, "ringmesh.io/dry-run", dry_run) ||
                                !read_bool_annotation(ld, ann, "istio.io/dry-run", dry_run)))
            ok = 0;
        if (log_allowed != NULL && !read_bool_annotation(ld, ann, "ringmesh.io/log-allowed", log_allowed))
            ok = 0;
    }
    return ok;
}

static void rule_clear(rm_authz_rule_t *r)
{
    for (size_t i = 0; i < r->num_from; i++) {
        rm_authz_source_t *s = &r->from[i];
        strlist_clear(&s->principals), strlist_clear(&s->not_principals), strlist_clear(&s->namespaces);
        strlist_clear(&s->not_namespaces), strlist_clear(&s->ip_blocks), strlist_clear(&s->not_ip_blocks);
    }
    free(r->from);
    for (size_t i = 0; i < r->num_to; i++) {
        rm_authz_operation_t *o = &r->to[i];
        strlist_clear(&o->hosts), strlist_clear(&o->not_hosts), strlist_clear(&o->ports);
        strlist_clear(&o->not_ports), strlist_clear(&o->methods), strlist_clear(&o->not_methods);
        strlist_clear(&o->paths), strlist_clear(&o->not_paths);
    }
    free(r->to);
    for (size_t i = 0; i < r->num_when; i++) {
        free(r->when[i].key);
        strlist_clear(&r->when[i].values);
        strlist_clear(&r->when[i].not_values);
    }
    free(r->when);
    memset(r, 0, sizeof(*r));
}

static void labels_free(rm_label_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].key);
        free(l[i].value);
    }
    free(l);
}

void rm__authz_policy_clear(rm_authz_policy_t *p)
{
    free(p->namespace_);
    free(p->name);
    labels_free(p->match_labels, p->num_match_labels);
    for (size_t i = 0; i < p->num_rules; i++)
        rule_clear(&p->rules[i]);
    free(p->rules);
    free(p->file);
    memset(p, 0, sizeof(*p));
}

void rm__peer_authn_clear(rm_peer_authn_t *p)
{
    free(p->namespace_);
    free(p->name);
    labels_free(p->match_labels, p->num_match_labels);
    free(p->port_modes);
    free(p->file);
    memset(p, 0, sizeof(*p));
}

void rm_policy_set_clear(rm_policy_set_t *set)
{
    for (size_t i = 0; i < set->num_policies; i++)
        rm__authz_policy_clear(&set->policies[i]);
    free(set->policies);
    for (size_t i = 0; i < set->num_peer_authns; i++)
        rm__peer_authn_clear(&set->peer_authns[i]);
    free(set->peer_authns);
    memset(set, 0, sizeof(*set));
}

static int read_authz(loader_t *ld, const yaml_node_t *root, rm_authz_policy_t *p)
{
    static const char *const spec_keys[] = {"selector", "action", "rules", "targetRef", "targetRefs", "provider", NULL};
    char cp[POLICY_PATH_MAX], q[160];
    int ok = read_metadata(ld, root, &p->namespace_, &p->name, &p->dry_run, &p->log_allowed);
    yaml_node_t *spec = map_get(ld, root, "spec");
    if (spec == NULL || is_null(spec))
        return ok; /* no spec: ALLOW with no rules, Istio's "allow nothing" */
    if (!want_type(ld, spec, YAML_MAPPING_NODE, "spec"))
        return 0;
    if (!check_keys(ld, spec, "spec", spec_keys, NULL))
        ok = 0;
    yaml_node_t *v;
    if ((v = map_get(ld, spec, "targetRef")) != NULL || (v = map_get(ld, spec, "targetRefs")) != NULL) {
        report(ld, 0, v, "spec", "targetRef/targetRefs (Gateway API attachment) is not supported: use selector");
        ok = 0;
    }
    if ((v = map_get(ld, spec, "provider")) != NULL) {
        report(ld, 0, v, "spec.provider", "the CUSTOM action and external providers are not supported");
        ok = 0;
    }
    if (!read_selector(ld, spec, &p->has_selector, &p->match_labels, &p->num_match_labels))
        ok = 0;
    p->action = RM_AUTHZ_ALLOW;
    if ((v = map_get(ld, spec, "action")) != NULL && !is_null(v)) {
        char *a = scalar(ld, v, "spec.action");
        if (a == NULL) {
            ok = 0;
        } else if (strcmp(a, "ALLOW") == 0) {
            p->action = RM_AUTHZ_ALLOW;
        } else if (strcmp(a, "DENY") == 0) {
            p->action = RM_AUTHZ_DENY;
        } else if (strcmp(a, "AUDIT") == 0) {
            p->action = RM_AUTHZ_AUDIT;
        } else if (strcmp(a, "CUSTOM") == 0) {
            report(ld, 0, v, "spec.action", "the CUSTOM action (external authorizer) is not supported");
            ok = 0;
        } else {
            report(ld, 0, v, "spec.action", "%s is not an action (ALLOW, DENY or AUDIT)", quoted(q, sizeof(q), a));
            ok = 0;
        }
        free(a);
    }
    if ((v = map_get(ld, spec, "rules")) != NULL && !is_null(v)) {
        if (!want_type(ld, v, YAML_SEQUENCE_NODE, "spec.rules"))
            return 0;
        size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (cnt > 0) {
            if ((p->rules = calloc(cnt, sizeof(*p->rules))) == NULL) {
                ld->oom = 1;
                return 0;
            }
            p->num_rules = cnt;
            for (size_t i = 0; i < cnt; i++) {
                index_path(cp, "spec.rules", i);
                if (!read_rule(ld, node(ld, v->data.sequence.items.start[i]), cp, &p->rules[i]))
                    ok = 0;
            }
        }
    }
    return ok;
}

static int read_mtls_mode(loader_t *ld, const yaml_node_t *mtls, const char *path, rm_peer_mtls_mode_t *out)
{
    static const char *const keys[] = {"mode", NULL};
    char cp[POLICY_PATH_MAX], q[160];
    *out = RM_PEER_MTLS_UNSET;
    if (is_null(mtls))
        return 1;
    if (!want_type(ld, mtls, YAML_MAPPING_NODE, path) || !check_keys(ld, mtls, path, keys, NULL))
        return 0;
    yaml_node_t *m = map_get(ld, mtls, "mode");
    if (m == NULL)
        return 1;
    child_path(cp, path, "mode");
    char *s = scalar(ld, m, cp);
    if (s == NULL)
        return 0;
    int ok = 1;
    if (strcmp(s, "STRICT") == 0)
        *out = RM_PEER_MTLS_STRICT;
    else if (strcmp(s, "PERMISSIVE") == 0)
        *out = RM_PEER_MTLS_PERMISSIVE;
    else if (strcmp(s, "DISABLE") == 0)
        *out = RM_PEER_MTLS_DISABLE;
    else if (strcmp(s, "UNSET") == 0)
        *out = RM_PEER_MTLS_UNSET;
    else {
        report(ld, 0, m, cp, "%s is not a mode (STRICT, PERMISSIVE, DISABLE or UNSET)", quoted(q, sizeof(q), s));
        ok = 0;
    }
    free(s);
    return ok;
}

static int read_peer_authn(loader_t *ld, const yaml_node_t *root, rm_peer_authn_t *p)
{
    static const char *const spec_keys[] = {"selector", "mtls", "portLevelMtls", NULL};
    char cp[POLICY_PATH_MAX], q[160];
    int ok = read_metadata(ld, root, &p->namespace_, &p->name, NULL, NULL);
    yaml_node_t *spec = map_get(ld, root, "spec");
    if (spec == NULL || is_null(spec))
        return ok;
    if (!want_type(ld, spec, YAML_MAPPING_NODE, "spec"))
        return 0;
    if (!check_keys(ld, spec, "spec", spec_keys, NULL))
        ok = 0;
    if (!read_selector(ld, spec, &p->has_selector, &p->match_labels, &p->num_match_labels))
        ok = 0;
    yaml_node_t *v;
    if ((v = map_get(ld, spec, "mtls")) != NULL && !read_mtls_mode(ld, v, "spec.mtls", &p->mode))
        ok = 0;
    if ((v = map_get(ld, spec, "portLevelMtls")) != NULL && !is_null(v)) {
        if (!want_type(ld, v, YAML_MAPPING_NODE, "spec.portLevelMtls") ||
            !check_keys(ld, v, "spec.portLevelMtls", NULL, NULL))
            return 0;
        if (!p->has_selector || p->num_match_labels == 0) {
            report(ld, 0, v, "spec.portLevelMtls", "portLevelMtls needs a workload selector with labels");
            ok = 0;
        }
        size_t cnt = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (cnt > 0 && (p->port_modes = calloc(cnt, sizeof(*p->port_modes))) == NULL) {
            ld->oom = 1;
            return 0;
        }
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_pair_t *pr = v->data.mapping.pairs.start + i;
            yaml_node_t *k = node(ld, pr->key);
            if (k->type != YAML_SCALAR_NODE)
                continue;
            const char *ks = (const char *)k->data.scalar.value;
            child_path(cp, "spec.portLevelMtls", ks);
            uint16_t port;
            if (rm_config_parse_port(ks, &port) != 0) {
                report(ld, 0, k, cp, "%s is not a port number (1-65535)", quoted(q, sizeof(q), ks));
                ok = 0;
                continue;
            }
            rm_peer_mtls_mode_t mode;
            if (!read_mtls_mode(ld, node(ld, pr->value), cp, &mode)) {
                ok = 0;
                continue;
            }
            p->port_modes[p->num_port_modes].port = port;
            p->port_modes[p->num_port_modes].mode = mode;
            p->num_port_modes++;
        }
    }
    return ok;
}

static int api_version_ok(const char *v)
{
    return strcmp(v, "ringmesh.io/v1alpha1") == 0 || strcmp(v, "security.istio.io/v1") == 0 ||
           strcmp(v, "security.istio.io/v1beta1") == 0;
}

/* Walks a document's nodes once to bound its size and refuse aliases (a node reachable twice). */
static int check_shape(loader_t *ld)
{
    size_t num = (size_t)(ld->doc->nodes.top - ld->doc->nodes.start);
    if (num > POLICY_NODES_MAX) {
        report(ld, 0, yaml_document_get_root_node(ld->doc), "", "document has more than %u nodes", POLICY_NODES_MAX);
        return 0;
    }
    uint8_t *seen = calloc(num + 1, 1);
    if (seen == NULL) {
        ld->oom = 1;
        return 0;
    }
    int ok = 1;
    seen[1] = 1; /* the root */
    for (size_t i = 0; i < num && ok; i++) {
        yaml_node_t *n = ld->doc->nodes.start + i;
        if (n->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top && ok; it++)
                if (seen[*it]++)
                    ok = 0;
        } else if (n->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top && ok; p++)
                if (seen[p->key]++ || seen[p->value]++)
                    ok = 0;
        }
    }
    free(seen);
    if (!ok)
        report(ld, 0, yaml_document_get_root_node(ld->doc), "", "aliases (*name) are not allowed in policies");
    return ok;
}

/* Makes room for one more element of `size` bytes after the n in *arr and returns it, zeroed; NULL (oom set) when
 * out of memory, *arr unchanged. */
static void *grow_slot(loader_t *ld, void **arr, size_t n, size_t size)
{
    uint8_t *np = realloc(*arr, (n + 1) * size);
    if (np == NULL) {
        ld->oom = 1;
        return NULL;
    }
    *arr = np;
    memset(np + n * size, 0, size);
    return np + n * size;
}

static int load_document(loader_t *ld, rm_policy_set_t *set, int strict_kinds)
{
    char q[160];
    yaml_node_t *root = yaml_document_get_root_node(ld->doc);
    if (root == NULL || is_null(root))
        return 0; /* empty document (a "---" followed by nothing or comments) */
    if (root->type != YAML_MAPPING_NODE) {
        report(ld, 0, root, "", "a document must be a mapping (apiVersion, kind, metadata, spec), not %s",
               type_word(root));
        return 0;
    }
    yaml_node_t *kind = map_get(ld, root, "kind"), *api = map_get(ld, root, "apiVersion");
    const char *ks = kind != NULL && kind->type == YAML_SCALAR_NODE ? (const char *)kind->data.scalar.value : NULL;
    int is_authz = ks != NULL && strcmp(ks, "AuthorizationPolicy") == 0;
    int is_peer = ks != NULL && strcmp(ks, "PeerAuthentication") == 0;
    if (!is_authz && !is_peer) {
        if (strict_kinds)
            report(ld, 0, kind != NULL ? kind : root, "kind",
                   "%s is not a policy kind (AuthorizationPolicy, "
                   "PeerAuthentication)",
                   ks != NULL ? quoted(q, sizeof(q), ks) : "missing kind");
        return 0;
    }
    if (!check_shape(ld)) /* policies only: documents of other kinds may use aliases */
        return 0;
    static const char *const root_keys[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
    int ok = check_keys(ld, root, "", root_keys, NULL);
    if (api == NULL || api->type != YAML_SCALAR_NODE || !api_version_ok((const char *)api->data.scalar.value)) {
        report(ld, 0, api != NULL ? api : root, "apiVersion",
               "%s: want ringmesh.io/v1alpha1, security.istio.io/v1 or security.istio.io/v1beta1",
               api != NULL && api->type == YAML_SCALAR_NODE ? quoted(q, sizeof(q), (const char *)api->data.scalar.value)
                                                            : "missing apiVersion");
        ok = 0;
    }
    /* the document is read straight into a new last slot, which counts only once the document is valid */
    unsigned line = (unsigned)root->start_mark.line + 1;
    if (is_authz) {
        rm_authz_policy_t *p = grow_slot(ld, (void **)&set->policies, set->num_policies, sizeof(*p));
        if (p == NULL)
            return 0;
        if (!read_authz(ld, root, p) || !ok || ld->oom) {
            rm__authz_policy_clear(p);
            return 0;
        }
        p->file = dup_str(ld->file);
        p->line = line;
        set->num_policies++;
    } else {
        rm_peer_authn_t *p = grow_slot(ld, (void **)&set->peer_authns, set->num_peer_authns, sizeof(*p));
        if (p == NULL)
            return 0;
        if (!read_peer_authn(ld, root, p) || !ok || ld->oom) {
            rm__peer_authn_clear(p);
            return 0;
        }
        p->file = dup_str(ld->file);
        p->line = line;
        set->num_peer_authns++;
    }
    return 1;
}

static int cmp_diag(const void *a, const void *b)
{
    const rm_policy_diag_t *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    return 0;
}

int rm_policy_load_yaml(rm_policy_set_t *set, const char *text, size_t len, const char *file, int strict_kinds,
                        rm_policy_diags_t *diags)
{
    yaml_parser_t parser;
    loader_t ld = {.diags = diags, .file = file};
    unsigned docs = 0;
    size_t first_diag = diags->n;

    if (len > POLICY_FILE_MAX) {
        report(&ld, 0, NULL, "", "file larger than %u bytes", POLICY_FILE_MAX);
        return (int)ld.errors;
    }
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            char msg[512];
            snprintf(msg, sizeof(msg), "YAML syntax error: %s%s%s", parser.problem ? parser.problem : "unknown",
                     parser.context ? " " : "", parser.context ? parser.context : "");
            if (diag_add(diags, 0, file, (unsigned)parser.problem_mark.line + 1,
                         (unsigned)parser.problem_mark.column + 1, "", msg) != 0)
                ld.oom = 1;
            ld.errors++;
            break;
        }
        if (yaml_document_get_root_node(&doc) == NULL) {
            yaml_document_delete(&doc);
            break; /* end of stream */
        }
        ld.doc = &doc;
        load_document(&ld, set, strict_kinds);
        yaml_document_delete(&doc);
        if (++docs > 10000 || ld.oom)
            break;
    }
    yaml_parser_delete(&parser);
    /* findings in the order of the text, whatever order the fields were checked in */
    if (diags->n > first_diag)
        qsort(diags->d + first_diag, diags->n - first_diag, sizeof(*diags->d), cmp_diag);
    return ld.oom ? -ENOMEM : (int)ld.errors;
}

int rm_policy_file_name(const char *n)
{
    size_t l = strlen(n);
    if (n[0] == '.')
        return 0;
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_file(rm_policy_set_t *set, const char *path, int strict_kinds, rm_policy_diags_t *diags)
{
    char *data = NULL;
    size_t len = 0;
    int ret = rm_file_read(path, POLICY_FILE_MAX, &data, &len);
    if (ret != 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot read: %s", ret == -EFBIG ? "file too large" : strerror(-ret));
        if (diag_add(diags, 0, path, 0, 0, "", msg) != 0)
            return -ENOMEM;
        return ret;
    }
    ret = rm_policy_load_yaml(set, data, len, path, strict_kinds, diags);
    free(data);
    return ret;
}

int rm_policy_load_path(rm_policy_set_t *set, const char *path, int strict_kinds, rm_policy_diags_t *diags)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int err = -errno;
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot read: %s", strerror(errno));
        diag_add(diags, 0, path, 0, 0, "", msg);
        return err;
    }
    if (!S_ISDIR(st.st_mode))
        return load_file(set, path, strict_kinds, diags);

    DIR *d = opendir(path);
    if (d == NULL)
        return -errno;
    char **names = NULL;
    size_t n = 0;
    int ret = 0, errors = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!rm_policy_file_name(de->d_name))
            continue;
        char **nn = realloc(names, (n + 1) * sizeof(*nn));
        if (nn == NULL || (nn[n] = strdup(de->d_name)) == NULL) {
            names = nn != NULL ? nn : names;
            ret = -ENOMEM;
            break;
        }
        names = nn;
        n++;
    }
    closedir(d);
    if (ret == 0) {
        qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
            char full[4096];
            snprintf(full, sizeof(full), "%s/%s", path, names[i]);
            struct stat fst;
            if (stat(full, &fst) != 0 || !S_ISREG(fst.st_mode))
                continue;
            int r = load_file(set, full, strict_kinds, diags);
            if (r < 0) {
                ret = r;
                if (r == -ENOMEM)
                    break;
            } else {
                errors += r;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret < 0 ? ret : errors;
}
