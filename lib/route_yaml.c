/* Route documents in YAML files (rm_route_load_yaml, ringmesh/route.h): each document becomes a JSON value with the
 * position of every node recorded under its field path, so that the one route reader (route_json.c) serves files
 * and API objects alike and a file's error still names the line and column. Documents of other kinds are passed
 * over: a configuration file may mix routes with Services and policies. */
#include "route_internal.h"

#include "ringmesh/error.h"
#include "ringmesh/yaml_load.h"
#include "ringmesh/yaml_pos_map.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

typedef struct st_conv_t {
    yaml_document_t *doc;
    rm_yaml_pos_map_t *map;
    unsigned char *seen; /* per node: an alias reaches a node a second time, and aliases are refused */
    char error[256];
    rm_yaml_pos_t error_pos;
} conv_t;

static rm_yaml_pos_t node_pos(const yaml_node_t *n)
{
    return (rm_yaml_pos_t){(unsigned)n->start_mark.line + 1, (unsigned)n->start_mark.column + 1};
}

/* A plain scalar as YAML 1.2's core schema reads it, for the fields the routes have: null, booleans, decimal
 * integers; everything else (and every quoted scalar) is a string. */
static json_t *scalar_value(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
            strcmp(s, "NULL") == 0)
            return json_null();
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
            return json_true();
        if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
            return json_false();
        size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
        if (len > i && len - i <= 18 && strspn(s + i, "0123456789") == len - i)
            return json_integer(strtoll(s, NULL, 10));
    }
    return json_stringn(s, len);
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by RM_YAML_DEPTH_MAX, and aliases (shared nodes) are refused
static json_t *convert(conv_t *c, yaml_node_t *n, const char *path, rm_yaml_pos_t key_pos, unsigned depth)
{
    json_t *out = NULL;
    char cp[ROUTE_PATH_MAX];

    if (depth > RM_YAML_DEPTH_MAX) {
        snprintf(c->error, sizeof(c->error), "nesting deeper than %u levels", RM_YAML_DEPTH_MAX);
        c->error_pos = node_pos(n);
        return NULL;
    }
    size_t idx = (size_t)(n - c->doc->nodes.start);
    if (c->seen[idx]) {
        snprintf(c->error, sizeof(c->error), "aliases are not accepted");
        c->error_pos = node_pos(n);
        return NULL;
    }
    c->seen[idx] = 1;
    if (rm_yaml_pos_map_add(c->map, path, key_pos.line != 0 ? key_pos : node_pos(n), node_pos(n)) < 0)
        return NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return scalar_value(n);
    case YAML_SEQUENCE_NODE:
        if ((out = json_array()) == NULL)
            return NULL;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            yaml_node_t *child = yaml_document_get_node(c->doc, *it);
            json_t *v;
            snprintf(cp, sizeof(cp), "%s[%zu]", path, (size_t)(it - n->data.sequence.items.start));
            if (child == NULL || (v = convert(c, child, cp, (rm_yaml_pos_t){0, 0}, depth + 1)) == NULL ||
                json_array_append_new(out, v) != 0)
                goto Fail;
        }
        return out;
    case YAML_MAPPING_NODE:
        if ((out = json_object()) == NULL)
            return NULL;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key), *v = yaml_document_get_node(c->doc, p->value);
            json_t *jv;
            if (k == NULL || v == NULL)
                goto Fail;
            if (k->type != YAML_SCALAR_NODE) {
                snprintf(c->error, sizeof(c->error), "a key must be a scalar");
                c->error_pos = node_pos(k);
                goto Fail;
            }
            const char *key = (const char *)k->data.scalar.value;
            if (json_object_get(out, key) != NULL) {
                snprintf(c->error, sizeof(c->error), "duplicate key \"%.64s\"", key);
                c->error_pos = node_pos(k);
                goto Fail;
            }
            if (path[0] == '\0')
                snprintf(cp, sizeof(cp), "%s", key);
            else
                snprintf(cp, sizeof(cp), "%s.%s", path, key);
            if ((jv = convert(c, v, cp, node_pos(k), depth + 1)) == NULL || json_object_set_new(out, key, jv) != 0)
                goto Fail;
        }
        return out;
    default:
        return json_null();
    }
Fail:
    json_decref(out);
    return NULL;
}

/* The position of `field`, or of the nearest enclosing node recorded. */
static rm_yaml_pos_t field_pos(const rm_yaml_pos_map_t *map, const char *field, rm_yaml_pos_t fallback)
{
    char p[RM_ROUTE_FIELD_MAX];
    snprintf(p, sizeof(p), "%s", field);
    for (;;) {
        const rm_yaml_node_t *e = rm_yaml_pos_map_find(map, p);
        if (e != NULL)
            return e->key;
        char *cut = strrchr(p, '.'), *br = strrchr(p, '[');
        if (br != NULL && (cut == NULL || br > cut))
            cut = br;
        if (cut == NULL)
            return fallback;
        *cut = '\0';
    }
}

int rm_route_load_yaml(rm_route_list_t *list, const char *data, size_t len, const char *shown, rm_config_error_t *err)
{
    yaml_parser_t parser;
    int ret = 0;

    if (!yaml_parser_initialize(&parser))
        return rm_config_error_set(err, RM_ERR_CONFIG_IO, shown, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    for (;;) {
        yaml_document_t doc;
        rm_yaml_pos_map_t map = {0};
        conv_t c = {.doc = &doc, .map = &map};
        json_t *obj = NULL;
        yaml_node_t *root;

        if (!yaml_parser_load(&parser, &doc)) {
            char msg[RM_YAML_MSG_MAX];
            rm_yaml_pos_t pos = rm_yaml_syntax_error(&parser, data, len, msg, sizeof(msg));
            ret = rm_config_error_set(err, RM_ERR_CONFIG_PARSE, shown, pos, NULL, "%s", msg);
            break;
        }
        if ((root = yaml_document_get_root_node(&doc)) == NULL) {
            yaml_document_delete(&doc);
            break; /* the end of the stream */
        }
        rm_yaml_pos_t doc_pos = node_pos(root);
        if (root->type == YAML_MAPPING_NODE) {
            if ((c.seen = calloc((size_t)(doc.nodes.top - doc.nodes.start), 1)) != NULL)
                obj = convert(&c, root, "", (rm_yaml_pos_t){0, 0}, 0);
            free(c.seen);
            if (obj == NULL)
                ret = c.error[0] != '\0'
                          ? rm_config_error_set(err, RM_ERR_CONFIG_PARSE, shown, c.error_pos, NULL, "%s", c.error)
                          : rm_config_error_set(err, RM_ERR_CONFIG_IO, shown, doc_pos, NULL, "out of memory");
        }
        const char *kind = obj != NULL ? json_string_value(json_object_get(obj, "kind")) : NULL;
        if (ret == 0 && rm_route_is_route_kind(kind)) {
            rm_route_error_t rerr;
            rm_route_t *r = NULL;
            int rc = rm_route_from_json(obj, &r, &rerr);
            if (rc == 0)
                rc = rm_route_list_push(list, r, shown, doc_pos.line); /* takes r, also on failure */
            if (rc == -ENOMEM)
                ret = rm_config_error_set(err, RM_ERR_CONFIG_IO, shown, doc_pos, NULL, "out of memory");
            else if (rc != 0)
                ret = rm_config_error_set(err, RM_ERR_CONFIG_VALUE, shown, field_pos(&map, rerr.field, doc_pos),
                                          rerr.field, "%s", rerr.reason);
        }
        json_decref(obj);
        rm_yaml_pos_map_dispose(&map);
        yaml_document_delete(&doc);
        if (ret != 0)
            break;
    }
    yaml_parser_delete(&parser);
    return ret;
}
