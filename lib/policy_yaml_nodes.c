/* The policy loader's findings and its checked access to libyaml's node tree (policy_yaml_internal.h): every
 * finding names the file, line, column and field path of the node at fault, in lib/config's one line form. */
#include "policy_yaml_internal.h"

#include "ringmesh/config.h"
#include "ringmesh/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ findings */

char *rm__policy_dup_str(const char *s)
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

int rm__policy_diag_add(rm_policy_diags_t *diags, int warning, const char *file, unsigned line, unsigned column,
                        const char *path, const char *msg)
{
    rm_policy_diag_t *nd = realloc(diags->d, (diags->n + 1) * sizeof(*nd));
    if (nd == NULL)
        return -ENOMEM;
    diags->d = nd;
    rm_policy_diag_t *d = &diags->d[diags->n];
    d->warning = warning;
    d->file = rm__policy_dup_str(file);
    d->line = line;
    d->column = column;
    d->path = rm__policy_dup_str(path);
    d->message = rm__policy_dup_str(msg);
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
const char *rm__policy_quoted(char *buf, size_t len, const char *s)
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

void rm__policy_report(loader_t *ld, int warning, const yaml_node_t *at, const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rm__policy_diag_add(ld->diags, warning, ld->file, at != NULL ? (unsigned)at->start_mark.line + 1 : 0,
                            at != NULL ? (unsigned)at->start_mark.column + 1 : 0, path, msg) != 0)
        ld->oom = 1;
    if (!warning)
        ld->errors++;
}

/* ------------------------------------------------------------------ node access */

yaml_node_t *rm__policy_node(loader_t *ld, int id)
{
    return yaml_document_get_node(ld->doc, id);
}

const char *rm__policy_type_word(const yaml_node_t *n)
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

int rm__policy_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)n->data.scalar.value;
    return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

int rm__policy_want_type(loader_t *ld, const yaml_node_t *n, yaml_node_type_t t, const char *path)
{
    if (n->type == t)
        return 1;
    rm__policy_report(ld, 0, n, path, "want %s, got %s",
                      t == YAML_SCALAR_NODE     ? "a string"
                      : t == YAML_SEQUENCE_NODE ? "a list"
                                                : "a mapping",
                      rm__policy_type_word(n));
    return 0;
}

/* A mapping's keys: every key a plain string, none twice, none outside `known` (NULL: any key). */
int rm__policy_check_keys(loader_t *ld, const yaml_node_t *map, const char *path, const char *const *known,
                          const char *unsupported_why)
{
    int ok = 1;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = rm__policy_node(ld, p->key);
        char q[160];
        if (k->type != YAML_SCALAR_NODE) {
            rm__policy_report(ld, 0, k, path, "keys must be strings, got %s", rm__policy_type_word(k));
            ok = 0;
            continue;
        }
        const char *ks = (const char *)k->data.scalar.value;
        for (yaml_node_pair_t *o = map->data.mapping.pairs.start; o < p; o++) {
            yaml_node_t *ok2 = rm__policy_node(ld, o->key);
            if (ok2->type == YAML_SCALAR_NODE && strcmp((const char *)ok2->data.scalar.value, ks) == 0) {
                rm__policy_report(ld, 0, k, path, "field %s appears twice", rm__policy_quoted(q, sizeof(q), ks));
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
                rm__policy_report(ld, 0, k, path, "field %s is not supported: %s", rm__policy_quoted(q, sizeof(q), ks),
                                  unsupported_why);
            else if (rm__policy_did_you_mean(ks, known) != NULL)
                rm__policy_report(ld, 0, k, path, "unknown field %s: did you mean \"%s\"? (known: %s)",
                                  rm__policy_quoted(q, sizeof(q), ks), rm__policy_did_you_mean(ks, known), list);
            else
                rm__policy_report(ld, 0, k, path, "unknown field %s (known: %s)", rm__policy_quoted(q, sizeof(q), ks),
                                  list);
            ok = 0;
        }
    }
    return ok;
}

yaml_node_t *rm__policy_map_get(loader_t *ld, const yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = rm__policy_node(ld, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return rm__policy_node(ld, p->value);
    }
    return NULL;
}

/* Field paths are for messages: one cut short at POLICY_PATH_MAX is still useful, so truncation is intended. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

void rm__policy_child_path(char *out, const char *path, const char *key)
{
    snprintf(out, POLICY_PATH_MAX, "%s%s%s", path, path[0] ? "." : "", key);
}

void rm__policy_index_path(char *out, const char *path, size_t i)
{
    snprintf(out, POLICY_PATH_MAX, "%s[%zu]", path, i);
}

/* A scalar as a new string; NULL (with a finding) when it is not one or is too long. */
char *rm__policy_scalar(loader_t *ld, const yaml_node_t *n, const char *path)
{
    if (!rm__policy_want_type(ld, n, YAML_SCALAR_NODE, path))
        return NULL;
    if (n->data.scalar.length > POLICY_STRING_MAX) {
        rm__policy_report(ld, 0, n, path, "value longer than %u bytes", POLICY_STRING_MAX);
        return NULL;
    }
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL) {
        rm__policy_report(ld, 0, n, path, "value contains a NUL character");
        return NULL;
    }
    char *s = strdup((const char *)n->data.scalar.value);
    if (s == NULL)
        ld->oom = 1;
    return s;
}

void rm__policy_strlist_clear(rm_strlist_t *l)
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
        rm__policy_report(ld, 0, n, path, "empty value: write \"*\" to match any value");
        return 0;
    }
    for (size_t i = 1; i + 1 < len; i++) {
        if (v[i] == '*') {
            rm__policy_report(ld, 0, n, path,
                              "%s: '*' may only be the first or the last character (prefix \"x*\", suffix \"*x\", "
                              "presence \"*\")",
                              rm__policy_quoted(q, sizeof(q), v));
            return 0;
        }
    }
    if (len >= 2 && v[0] == '*' && v[len - 1] == '*') {
        rm__policy_report(ld, 0, n, path, "%s: a value cannot be both a prefix and a suffix match",
                          rm__policy_quoted(q, sizeof(q), v));
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

static int check_value(loader_t *ld, const yaml_node_t *n, const char *path, const char *v, value_kind_t kind)
{
    char q[160];
    uint8_t a[16];
    unsigned prefix;
    uint16_t port;
    switch (kind) {
    case VAL_IP:
        if (rm_config_parse_cidr(v, a, &prefix) != 0) {
            rm__policy_report(ld, 0, n, path, "%s is not an IP address or CIDR block",
                              rm__policy_quoted(q, sizeof(q), v));
            return 0;
        }
        return 1;
    case VAL_PORT:
        if (rm_config_parse_port(v, &port) != 0) {
            rm__policy_report(ld, 0, n, path, "%s is not a port number (1-65535)", rm__policy_quoted(q, sizeof(q), v));
            return 0;
        }
        return 1;
    case VAL_SERVICE_ACCOUNT:
        return rm__policy_check_service_account(ld, n, path, v);
    case VAL_PATH:
        if (strpbrk(v, "{}") != NULL)
            return rm__policy_check_path_template(ld, n, path, v);
        if (!check_match_form(ld, n, path, v))
            return 0;
        if (v[0] != '/' && v[0] != '*') {
            rm__policy_report(ld, 0, n, path, "%s: a path must begin with '/' (or '*' for a suffix match)",
                              rm__policy_quoted(q, sizeof(q), v));
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

int rm__policy_list_len(loader_t *ld, const yaml_node_t *n, const char *path, size_t *cnt)
{
    *cnt = 0;
    if (rm__policy_is_null(n))
        return 1;
    if (!rm__policy_want_type(ld, n, YAML_SEQUENCE_NODE, path))
        return 0;
    *cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    return 1;
}

/* A list of strings (a single scalar is refused, as in Istio's schema). Returns 1 when it was read cleanly. */
int rm__policy_read_strlist(loader_t *ld, const yaml_node_t *n, const char *path, rm_strlist_t *out, value_kind_t kind)
{
    char ip[POLICY_PATH_MAX];
    int ok = 1;
    size_t cnt;
    if (!rm__policy_list_len(ld, n, path, &cnt))
        return 0;
    if (cnt == 0)
        return 1;
    if ((out->v = calloc(cnt, sizeof(char *))) == NULL) {
        ld->oom = 1;
        return 0;
    }
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *e = rm__policy_node(ld, n->data.sequence.items.start[i]);
        rm__policy_index_path(ip, path, i);
        char *s = rm__policy_scalar(ld, e, ip);
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
