/* YAML <-> JSON for whole manifests (ringmesh/yaml_json.h): libyaml's event parser and emitter, jansson values. */
#include "ringmesh/yaml_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---------------------------------------------------------------------------------------------------------
 * Reading.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_reader_t {
    yaml_parser_t parser;
    char *err;
    size_t errlen;
} reader_t;

static int reader_fail(reader_t *r, const yaml_mark_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reader_fail(reader_t *r, const yaml_mark_t *m, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->errlen != 0)
        snprintf(r->err, r->errlen, "%zu:%zu: %s", m->line + 1, m->column + 1, msg);
    return code;
}

static int next_event(reader_t *r, yaml_event_t *ev)
{
    if (yaml_parser_parse(&r->parser, ev))
        return 0;
    if (r->errlen != 0)
        snprintf(r->err, r->errlen, "%zu:%zu: YAML syntax error: %s", r->parser.problem_mark.line + 1,
                 r->parser.problem_mark.column + 1, r->parser.problem != NULL ? r->parser.problem : "unknown");
    return -EINVAL;
}

static int all_match(const char *s, const char *set)
{
    return *s != '\0' && s[strspn(s, set)] == '\0';
}

/* A plain scalar as the core schema resolves it. */
static json_t *resolve_plain(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const trues[] = {"true", "True", "TRUE"};
    static const char *const falses[] = {"false", "False", "FALSE"};
    const char *d = s;
    char *end;

    for (size_t i = 0; i < 5; i++)
        if (strcmp(s, nulls[i]) == 0)
            return json_null();
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, trues[i]) == 0)
            return json_true();
        if (strcmp(s, falses[i]) == 0)
            return json_false();
    }
    if (*d == '-' || *d == '+')
        d++;
    if (all_match(d, "0123456789")) {
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno == 0 && *end == '\0')
            return json_integer(v);
        return json_real(strtod(s, NULL));
    }
    if ((strncmp(s, "0o", 2) == 0 && all_match(s + 2, "01234567")) ||
        (strncmp(s, "0x", 2) == 0 && all_match(s + 2, "0123456789abcdefABCDEF"))) {
        errno = 0;
        long long v = strtoll(s + 2, &end, s[1] == 'o' ? 8 : 16);
        if (errno == 0 && *end == '\0')
            return json_integer(v);
        return json_string(s);
    }
    if (strcmp(d, ".inf") == 0 || strcmp(d, ".Inf") == 0 || strcmp(d, ".INF") == 0 || strcmp(s, ".nan") == 0 ||
        strcmp(s, ".NaN") == 0 || strcmp(s, ".NAN") == 0)
        return json_string(s); /* JSON has no infinity or NaN: kept as the text */
    /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    {
        const char *p = d;
        size_t digits = strspn(p, "0123456789");
        int ok = 1;
        p += digits;
        if (*p == '.') {
            size_t frac = strspn(p + 1, "0123456789");
            if (digits == 0 && frac == 0)
                ok = 0;
            p += 1 + frac;
        } else if (digits == 0) {
            ok = 0;
        }
        if (ok && (*p == 'e' || *p == 'E')) {
            p++;
            if (*p == '-' || *p == '+')
                p++;
            size_t ex = strspn(p, "0123456789");
            if (ex == 0)
                ok = 0;
            p += ex;
        }
        if (ok && *p == '\0' && p != d)
            return json_real(strtod(s, NULL));
    }
    return json_string(s);
}

static json_t *scalar_value(reader_t *r, const yaml_event_t *ev, int *ret)
{
    const char *s = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    json_t *v;

    if (strlen(s) != ev->data.scalar.length) {
        *ret = reader_fail(r, &ev->start_mark, -EINVAL, "%s", "a scalar holds a NUL character");
        return NULL;
    }
    /* !!int, !!float, !!bool and !!null must resolve to that type; a plain untagged scalar resolves as YAML 1.2's
     * core schema does; !!str, other tags and quoted scalars are strings */
    if (tag != NULL && strncmp(tag, "tag:yaml.org,2002:", 18) == 0 &&
        (strcmp(tag + 18, "int") == 0 || strcmp(tag + 18, "float") == 0 || strcmp(tag + 18, "bool") == 0 ||
         strcmp(tag + 18, "null") == 0)) {
        v = resolve_plain(s);
        const char *want = tag + 18;
        int okt = (strcmp(want, "null") == 0 && json_is_null(v)) || (strcmp(want, "bool") == 0 && json_is_boolean(v)) ||
                  (strcmp(want, "int") == 0 && json_is_integer(v)) || (strcmp(want, "float") == 0 && json_is_number(v));
        if (!okt) {
            json_decref(v);
            *ret = reader_fail(r, &ev->start_mark, -EINVAL, "the value is not what its tag !!%s says", want);
            return NULL;
        }
    } else if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && tag == NULL)
        v = resolve_plain(s);
    else
        v = json_string(s);
    if (v == NULL)
        *ret = -ENOMEM; /* or not UTF-8, which libyaml has already refused */
    return v;
}

static int parse_node(reader_t *r, yaml_event_t *ev, unsigned depth, json_t **out);

/* parse_collection, parse_node and emit_value recurse over the document's nesting, bounded by
 * RM_YAML_JSON_DEPTH_MAX (checked below). */
// NOLINTNEXTLINE(misc-no-recursion): bounded by RM_YAML_JSON_DEPTH_MAX
static int parse_collection(reader_t *r, yaml_event_t *start, unsigned depth, json_t **out)
{
    int is_map = start->type == YAML_MAPPING_START_EVENT;
    json_t *c = is_map ? json_object() : json_array();
    yaml_event_t ev, kev;
    int ret = 0;

    if (c == NULL)
        return -ENOMEM;
    if (depth >= RM_YAML_JSON_DEPTH_MAX) {
        ret = reader_fail(r, &start->start_mark, -EINVAL, "nesting deeper than %u levels", RM_YAML_JSON_DEPTH_MAX);
        goto Exit;
    }
    for (;;) {
        json_t *v = NULL;
        if ((ret = next_event(r, &kev)) != 0)
            goto Exit;
        if (kev.type == YAML_MAPPING_END_EVENT || kev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        if (!is_map) {
            ret = parse_node(r, &kev, depth + 1, &v);
            yaml_event_delete(&kev);
            if (ret != 0 || (ret = json_array_append_new(c, v) == 0 ? 0 : -ENOMEM) != 0)
                goto Exit;
            continue;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            ret = reader_fail(r, &kev.start_mark, -EINVAL, "%s", "a mapping key must be a scalar");
            yaml_event_delete(&kev);
            goto Exit;
        }
        const char *key = (const char *)kev.data.scalar.value;
        if (json_object_get(c, key) != NULL) {
            ret = reader_fail(r, &kev.start_mark, -EINVAL, "duplicate key \"%.64s\"", key);
            yaml_event_delete(&kev);
            goto Exit;
        }
        if ((ret = next_event(r, &ev)) != 0) {
            yaml_event_delete(&kev);
            goto Exit;
        }
        ret = parse_node(r, &ev, depth + 1, &v);
        yaml_event_delete(&ev);
        if (ret == 0 && json_object_set_new(c, key, v) != 0)
            ret = -ENOMEM;
        yaml_event_delete(&kev);
        if (ret != 0)
            goto Exit;
    }
    *out = c;
    c = NULL;

Exit:
    json_decref(c);
    return ret;
}

/* Converts the node that begins with `ev` (which the caller deletes). */
// NOLINTNEXTLINE(misc-no-recursion): bounded by RM_YAML_JSON_DEPTH_MAX
static int parse_node(reader_t *r, yaml_event_t *ev, unsigned depth, json_t **out)
{
    int ret = 0;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        *out = scalar_value(r, ev, &ret);
        return *out != NULL ? 0 : ret;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return parse_collection(r, ev, depth, out);
    case YAML_ALIAS_EVENT:
        return reader_fail(r, &ev->start_mark, -EINVAL, "%s", "aliases (*name) are not accepted");
    default:
        return reader_fail(r, &ev->start_mark, -EINVAL, "%s", "unexpected YAML event");
    }
}

int rm_yaml_to_json(const char *data, size_t len, json_t **docs, char *err, size_t errlen)
{
    reader_t r = {.err = err, .errlen = errlen};
    yaml_event_t ev;
    json_t *all = json_array();
    int ret = 0, done = 0;

    if (errlen != 0)
        err[0] = '\0';
    if (all == NULL)
        return -ENOMEM;
    if (!yaml_parser_initialize(&r.parser)) {
        json_decref(all);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)data, len);
    while (!done) {
        if ((ret = next_event(&r, &ev)) != 0)
            goto Exit;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT: {
            yaml_event_t root, end;
            json_t *v = NULL;
            if ((ret = next_event(&r, &root)) != 0)
                break;
            ret = parse_node(&r, &root, 0, &v);
            yaml_event_delete(&root);
            if (ret == 0 && json_array_append_new(all, v) != 0)
                ret = -ENOMEM;
            if (ret == 0 && (ret = next_event(&r, &end)) == 0)
                yaml_event_delete(&end); /* DOCUMENT-END */
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (ret != 0)
            goto Exit;
    }
    *docs = all;
    all = NULL;

Exit:
    yaml_parser_delete(&r.parser);
    json_decref(all);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * Writing.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_writer_t {
    char *buf;
    size_t len, cap;
    int oom;
} writer_t;

static int write_handler(void *data, unsigned char *p, size_t n)
{
    writer_t *w = data;
    if (w->buf == NULL || w->len + n + 1 > w->cap) {
        size_t cap = w->cap == 0 ? 4096 : w->cap;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (b == NULL) {
            w->oom = 1;
            return 0;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    w->buf[w->len] = '\0';
    return 1;
}

/* Whether a reader (YAML 1.2 core, or YAML 1.1 as Go's libraries read it) would take plain `s` as a non-string. */
static int needs_quotes(const char *s)
{
    static const char *const yaml11[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no", "No",
                                         "NO", "on", "On",  "ON",  "off", "Off", "OFF", "=",  "<<"};
    json_t *v = resolve_plain(s);
    int quote = v == NULL || !json_is_string(v);
    json_decref(v);
    for (size_t i = 0; !quote && i < sizeof(yaml11) / sizeof(yaml11[0]); i++)
        quote = strcmp(s, yaml11[i]) == 0;
    /* YAML 1.1 numbers with '_' separators, sexagesimals and dates: quote anything that starts like a number */
    if (!quote && (s[0] == '.' || s[0] == '+' || s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        quote = strspn(s, "0123456789+-.:_eExXoO") == strlen(s);
    return quote;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, int plain_ok, int literal)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = literal ? YAML_LITERAL_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain_ok, 1, style))
        return -ENOMEM;
    return yaml_emitter_emit(e, &ev) ? 0 : -EINVAL;
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by RM_YAML_JSON_DEPTH_MAX * 4
static int emit_value(yaml_emitter_t *e, const json_t *v, unsigned depth)
{
    yaml_event_t ev;
    char num[64];
    int ret;

    if (depth > RM_YAML_JSON_DEPTH_MAX * 4)
        return -EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *item;
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return -EINVAL;
        json_object_foreach((json_t *)v, key, item)
        {
            if ((ret = emit_scalar(e, key, !needs_quotes(key), 0)) != 0 || (ret = emit_value(e, item, depth + 1)) != 0)
                return ret;
        }
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev) ? 0 : -EINVAL;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return -EINVAL;
        json_array_foreach(v, i, item) if ((ret = emit_value(e, item, depth + 1)) != 0) return ret;
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev) ? 0 : -EINVAL;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
            return -EINVAL; /* a NUL inside */
        size_t n = strlen(s);
        /* a literal block keeps the text as it is, unless it has spaces a block would lose at a line's end */
        int literal = strchr(s, '\n') != NULL && strstr(s, " \n") == NULL && n > 0 && s[0] != ' ' && s[n - 1] == '\n';
        return emit_scalar(e, s, !needs_quotes(s), literal);
    }
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(e, num, 1, 0);
    case JSON_REAL: {
        double d = json_real_value(v);
        if (!isfinite(d))
            return -EINVAL;
        snprintf(num, sizeof(num), "%.17g", d);
        if (strspn(num, "-0123456789") == strlen(num))
            strcat(num, ".0");
        return emit_scalar(e, num, 1, 0);
    }
    case JSON_TRUE:
        return emit_scalar(e, "true", 1, 0);
    case JSON_FALSE:
        return emit_scalar(e, "false", 1, 0);
    case JSON_NULL:
        return emit_scalar(e, "null", 1, 0);
    }
    return -EINVAL;
}

int rm_json_to_yaml(const json_t *docs, char **out, size_t *outlen)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    writer_t w = {0};
    size_t i;
    json_t *doc;
    int ret = 0;

    if (!json_is_array(docs))
        return -EINVAL;
    if (!yaml_emitter_initialize(&e))
        return -ENOMEM;
    yaml_emitter_set_output(&e, write_handler, &w);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_emitter_set_indent(&e, 2);
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || !yaml_emitter_emit(&e, &ev)) {
        ret = -ENOMEM;
        goto Exit;
    }
    json_array_foreach(docs, i, doc)
    {
        if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0) || !yaml_emitter_emit(&e, &ev)) {
            ret = -EINVAL;
            goto Exit;
        }
        if ((ret = emit_value(&e, doc, 0)) != 0)
            goto Exit;
        if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&e, &ev)) {
            ret = -EINVAL;
            goto Exit;
        }
    }
    if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&e, &ev) || !yaml_emitter_flush(&e)) {
        ret = -EINVAL;
        goto Exit;
    }
    if (w.buf == NULL && write_handler(&w, (unsigned char *)"", 0) == 0)
        ret = -ENOMEM;

Exit:
    yaml_emitter_delete(&e);
    if (ret == 0 && w.oom)
        ret = -ENOMEM;
    if (ret != 0) {
        free(w.buf);
        return ret;
    }
    *out = w.buf;
    *outlen = w.len;
    return 0;
}
