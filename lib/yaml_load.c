/* The two passes of the YAML configuration loaders: see ringmesh/yaml_load.h. */
#include "ringmesh/yaml_load.h"

#include "ringmesh/error.h"

#include <stdio.h>
#include <string.h>

int rm_yaml_sanitize(char *dst, size_t dstlen, const char *src, size_t max)
{
    size_t i, n = strlen(src);
    size_t keep = n > max ? max : n;
    int lossy = 0;
    if (keep + 4 > dstlen)
        keep = dstlen - 4;
    for (i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x20 || c == 0x7f) {
            dst[i] = '?';
            lossy = 1;
        } else {
            dst[i] = (char)c;
        }
    }
    if (keep < n) {
        memcpy(dst + i, "...", 3);
        i += 3;
        lossy = 1;
    }
    dst[i] = '\0';
    return lossy;
}

int rm_yaml_path_key(char *dst, size_t dstlen, const char *key)
{
    if (key[0] == '\0') {
        snprintf(dst, dstlen, "\"\"");
        return 1;
    }
    return rm_yaml_sanitize(dst, dstlen, key, RM_YAML_PATH_KEY_MAX);
}

const char *rm_yaml_quoted(char *buf, size_t buflen, const char *s)
{
    size_t o = 0, i;

    buf[o++] = '"';
    for (i = 0; s[i] != '\0' && o + 8 < buflen && i < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, buflen - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    if (s[i] != '\0' && o + 4 < buflen) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

size_t rm_yaml_line_break_len(const char *data, size_t len, size_t i)
{
    const unsigned char *p = (const unsigned char *)data + i;
    size_t left = len - i;

    if (p[0] == '\r')
        return left >= 2 && p[1] == '\n' ? 2 : 1;
    if (p[0] == '\n')
        return 1;
    if (left >= 2 && p[0] == 0xc2 && p[1] == 0x85)
        return 2;
    if (left >= 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
        return 3;
    return 0;
}

const char *rm_yaml_event_kind(yaml_event_type_t t)
{
    switch (t) {
    case YAML_SCALAR_EVENT:
        return "a scalar";
    case YAML_SEQUENCE_START_EVENT:
        return "a sequence";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    default:
        return "nothing";
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 1.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_walk_frame_t {
    int is_sequence;
    size_t base_len; /* path length of the collection itself */
    size_t index;    /* sequences: next entry's index */
    int want_key;    /* mappings: the next scalar is a key */
    rm_yaml_pos_t key_pos;
    int key_lossy;
    int key_kept; /* the top mapping: `key` holds the whole current key */
    char key[RM_YAML_PATH_KEY_MAX + 1];
} walk_frame_t;

__attribute__((format(printf, 4, 5))) static int walk_error(const rm_yaml_walk_ops_t *ops, rm_yaml_pos_t pos,
                                                            const char *path, const char *fmt, ...)
{
    va_list ap;
    int ret;
    va_start(ap, fmt);
    ret = ops->report(ops->arg, RM_ERR_CONFIG_PARSE, pos, path, fmt, ap);
    va_end(ap);
    return ret;
}

static rm_yaml_pos_t mark_pos(yaml_mark_t m)
{
    rm_yaml_pos_t p = {(unsigned)m.line + 1, (unsigned)m.column + 1};
    return p;
}

/* Line and column (in bytes) of byte `offset`, for libyaml's reader errors, which name an offset. */
static rm_yaml_pos_t offset_pos(const char *data, size_t len, size_t offset)
{
    rm_yaml_pos_t p = {1, 1};
    for (size_t i = 0; i < offset && i < len;) {
        size_t b = rm_yaml_line_break_len(data, len, i);
        if (b != 0) {
            p.line++;
            p.col = 1;
            i += b;
        } else {
            p.col++;
            i++;
        }
    }
    return p;
}

rm_yaml_pos_t rm_yaml_syntax_error(const yaml_parser_t *parser, const char *data, size_t len, char *msg, size_t msglen)
{
    char detail[160] = "";
    rm_yaml_pos_t at = mark_pos(parser->problem_mark);

    if (parser->error == YAML_READER_ERROR) {
        at = offset_pos(data, len, parser->problem_offset);
        if (parser->problem_value != -1)
            snprintf(detail, sizeof(detail), " (#x%02X)", (unsigned)parser->problem_value);
    } else if (parser->context != NULL) {
        snprintf(detail, sizeof(detail), " (%s at line %u)", parser->context, (unsigned)parser->context_mark.line + 1);
    }
    snprintf(msg, msglen, "YAML syntax error: %s%s", parser->problem != NULL ? parser->problem : "unknown", detail);
    return at;
}

static int syntax_error(const rm_yaml_walk_ops_t *ops, const yaml_parser_t *parser, const char *data, size_t len,
                        const char *path)
{
    char msg[RM_YAML_MSG_MAX];
    rm_yaml_pos_t at = rm_yaml_syntax_error(parser, data, len, msg, sizeof(msg));
    return walk_error(ops, at, path, "%s", msg);
}

int rm_yaml_walk(const char *data, size_t len, const rm_yaml_walk_ops_t *ops)
{
    yaml_parser_t parser;
    yaml_event_t event;
    walk_frame_t frames[RM_YAML_DEPTH_MAX];
    rm_yaml_pos_map_t *map = NULL;
    size_t depth = 0, path_len = 0;
    char path[RM_YAML_PATH_MAX] = "";
    int have_event = 0, done = 0, ret = 0;

    if (!yaml_parser_initialize(&parser))
        return walk_error(ops, (rm_yaml_pos_t){0, 0}, "", "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

    while (!done) {
        if (!yaml_parser_parse(&parser, &event)) {
            ret = syntax_error(ops, &parser, data, len, path);
            goto Exit;
        }
        have_event = 1;
        rm_yaml_pos_t pos = mark_pos(event.start_mark);

        switch (event.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if ((ret = ops->document(ops->arg, pos, &map)) != 0)
                goto Exit;
            depth = 0;
            path_len = 0;
            path[0] = '\0';
            break;
        case YAML_ALIAS_EVENT: {
            char anchor[80];
            rm_yaml_sanitize(anchor, sizeof(anchor), (const char *)event.data.alias.anchor, 64);
            ret = walk_error(ops, pos, path, "YAML aliases (*%s) are not supported", anchor);
            goto Exit;
        }
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            walk_frame_t *top = depth > 0 ? &frames[depth - 1] : NULL;
            rm_yaml_pos_t key_pos = pos;
            int lossy_key = 0, top_value = 0;
            if (top == NULL) {
                if ((ret = ops->root(ops->arg, &event, pos)) == RM_YAML_WALK_SKIP && event.type == YAML_SCALAR_EVENT) {
                    ret = 0;
                    break;
                }
                if (ret != 0)
                    goto Exit;
            } else if (!top->is_sequence && top->want_key) {
                char key[RM_YAML_PATH_KEY_MAX + 8];
                const char *k = (const char *)event.data.scalar.value;
                if (event.type != YAML_SCALAR_EVENT) {
                    ret = walk_error(ops, pos, path, "mapping keys must be plain strings, not %s",
                                     rm_yaml_event_kind(event.type));
                    goto Exit;
                }
                int lossy = rm_yaml_path_key(key, sizeof(key), k);
                path_len += (size_t)snprintf(path + path_len, sizeof(path) - path_len, "%s%s",
                                             top->base_len > 0 ? "." : "", key);
                if (path_len >= sizeof(path))
                    path_len = sizeof(path) - 1;
                top->want_key = 0;
                top->key_pos = pos;
                top->key_lossy = lossy || strlen(k) != event.data.scalar.length;
                top->key_kept = depth == 1 && !top->key_lossy && event.data.scalar.length < sizeof(top->key);
                if (top->key_kept)
                    memcpy(top->key, k, event.data.scalar.length + 1);
                break;
            } else if (!top->is_sequence) {
                key_pos = top->key_pos;
                lossy_key = top->key_lossy;
                top_value = depth == 1 && top->key_kept;
            } else {
                path_len += (size_t)snprintf(path + path_len, sizeof(path) - path_len, "[%zu]", top->index++);
            }
            if (path_len >= sizeof(path))
                path_len = sizeof(path) - 1;

            int added = rm_yaml_pos_map_add(map, path, key_pos, pos);
            if (added < 0) {
                ret = walk_error(ops, pos, path, "out of memory");
                goto Exit;
            }
            if (added == 1 && !lossy_key) {
                rm_yaml_pos_t first = rm_yaml_pos_map_find(map, path)->key;
                ret = walk_error(ops, key_pos, path, "duplicate key (first set at line %u)", first.line);
                goto Exit;
            }
            if (top_value && event.type == YAML_SCALAR_EVENT && ops->top_scalar != NULL &&
                (ret = ops->top_scalar(ops->arg, top->key, (const char *)event.data.scalar.value, pos)) != 0)
                goto Exit;
            if (event.type != YAML_SCALAR_EVENT) {
                if (depth == RM_YAML_DEPTH_MAX) {
                    ret = walk_error(ops, pos, path, "nested deeper than %u levels", RM_YAML_DEPTH_MAX);
                    goto Exit;
                }
                walk_frame_t *f = &frames[depth++];
                memset(f, 0, offsetof(walk_frame_t, key)); /* `key` is read only while key_kept */
                f->is_sequence = event.type == YAML_SEQUENCE_START_EVENT;
                f->base_len = path_len;
                f->want_key = 1;
                break;
            }
        }
            /* a scalar value is complete: return to the parent collection */
            /* fallthrough */
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (event.type != YAML_SCALAR_EVENT && depth > 0)
                depth--;
            if (depth > 0) {
                walk_frame_t *parent = &frames[depth - 1];
                path_len = parent->base_len;
                path[path_len] = '\0';
                parent->want_key = 1;
            }
            break;
        default:
            break;
        }
        yaml_event_delete(&event);
        have_event = 0;
    }

Exit:
    if (have_event)
        yaml_event_delete(&event);
    yaml_parser_delete(&parser);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 2.
 * ------------------------------------------------------------------------------------------------------- */

const cyaml_schema_value_t rm_yaml_cyaml_string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, RM_YAML_STRING_MAX),
};

const cyaml_config_t rm_yaml_cyaml_config = {
    .log_fn = rm_yaml_cyaml_log,
    .mem_fn = cyaml_mem,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_NO_ALIAS,
};

void rm_yaml_cyaml_log(cyaml_log_t level, void *arg, const char *fmt, va_list args)
{
    rm_yaml_cyaml_capture_t *cap = arg;
    char line[RM_YAML_MSG_MAX];
    rm_yaml_cyaml_frame_t f;
    unsigned long l, c;
    unsigned idx;

    if (cap == NULL || level < CYAML_LOG_ERROR)
        return;
    vsnprintf(line, sizeof(line), fmt, args);
    line[strcspn(line, "\n")] = '\0';
    memset(&f, 0, sizeof(f));

    /* libcyaml's own backtrace lines, whose numbers it printed itself */
    // NOLINTBEGIN(cert-err34-c)
    if (sscanf(line, "  in mapping field '%63[^']' (line: %lu, column: %lu)", f.key, &l, &c) == 3) {
        f.kind = RM_YAML_FRAME_FIELD;
    } else if (sscanf(line, "  in sequence entry '%u' (line: %lu, column: %lu)", &idx, &l, &c) == 3) {
        f.kind = RM_YAML_FRAME_ENTRY;
        f.index = idx > 0 ? idx - 1 : 0; /* libcyaml prints the count of entries begun so far */
    } else if (sscanf(line, "  in mapping (line: %lu, column: %lu)", &l, &c) == 2) {
        // NOLINTEND(cert-err34-c)
        f.kind = RM_YAML_FRAME_MAPPING;
    } else {
        if (!cap->have_message && strcmp(line, "Load: Backtrace:") != 0) {
            const char *m = strncmp(line, "Load: ", 6) == 0 ? line + 6 : line;
            snprintf(cap->message, sizeof(cap->message), "%s", m);
            cap->have_message = 1;
        }
        return;
    }
    f.pos.line = (unsigned)l + cap->line_offset;
    f.pos.col = (unsigned)c;
    if (cap->num_frames < RM_YAML_CAPTURE_FRAMES_MAX)
        cap->frames[cap->num_frames++] = f;
}

/* The field list of the mapping at `path` ("", "spec", "listeners[3]") under `fields`, or NULL. */
static const cyaml_schema_field_t *schema_fields_at(const cyaml_schema_field_t *fields, const char *path)
{
    const char *p = path;

    while (*p != '\0') {
        if (*p == '.')
            p++;
        size_t n = strcspn(p, ".[");
        const cyaml_schema_field_t *f = NULL;
        for (const cyaml_schema_field_t *i = fields; i->key != NULL; i++)
            if (strlen(i->key) == n && memcmp(i->key, p, n) == 0)
                f = i;
        if (f == NULL)
            return NULL;
        p += n;
        const cyaml_schema_value_t *v = &f->value;
        if (v->type == CYAML_SEQUENCE) {
            if (*p != '[')
                return NULL;
            p += strcspn(p, "]");
            if (*p == ']')
                p++;
            v = v->sequence.entry;
        }
        if (v->type != CYAML_MAPPING)
            return NULL;
        fields = v->mapping.fields;
    }
    return fields;
}

static const char *cyaml_type_word(const char *s)
{
    static const struct {
        const char *from, *to;
    } words[] = {
        {"MAPPING", "a mapping"}, {"SEQUENCE", "a sequence"},        {"STRING", "a scalar"},
        {"SCALAR", "a scalar"},   {"MAPPING_START", "a mapping"},    {"SEQUENCE_START", "a sequence"},
        {"ALIAS", "an alias"},    {"MAPPING_END", "end of mapping"}, {"SEQUENCE_END", "end of sequence"},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(s, words[i].from) == 0)
            return words[i].to;
    return s;
}

__attribute__((format(printf, 5, 6))) static int report(rm_yaml_report_fn fn, void *arg, rm_yaml_pos_t pos,
                                                        const char *path, const char *fmt, ...)
{
    va_list ap;
    int ret;
    va_start(ap, fmt);
    ret = fn(arg, RM_ERR_CONFIG_PARSE, pos, path, fmt, ap);
    va_end(ap);
    return ret;
}

int rm_yaml_report_cyaml_error(const rm_yaml_cyaml_capture_t *cap, cyaml_err_t cerr,
                               const cyaml_schema_field_t *root_fields, const rm_yaml_pos_map_t *map,
                               rm_yaml_pos_t fallback, rm_yaml_report_fn fn, void *arg)
{
    char path[RM_YAML_PATH_MAX] = "", key[RM_YAML_PATH_KEY_MAX + 8], want[64], got[64], other[RM_YAML_MSG_MAX];
    size_t len = 0;
    rm_yaml_pos_t pos = fallback;
    const char *msg = cap->have_message ? cap->message : cyaml_strerror(cerr);
    const rm_yaml_node_t *e;
    unsigned limit;

    /* the backtrace lists the innermost frame first; the path is built from the outermost */
    for (size_t i = cap->num_frames; i-- > 0;) {
        const rm_yaml_cyaml_frame_t *f = &cap->frames[i];
        if (f->kind == RM_YAML_FRAME_FIELD)
            len += (size_t)snprintf(path + len, sizeof(path) - len, "%s%s", len > 0 ? "." : "", f->key);
        else if (f->kind == RM_YAML_FRAME_ENTRY)
            len += (size_t)snprintf(path + len, sizeof(path) - len, "[%u]", f->index);
        if (len >= sizeof(path))
            len = sizeof(path) - 1;
        if (f->pos.line != 0)
            pos = f->pos;
    }

    if (strncmp(msg, "Unexpected key: ", 16) == 0) {
        char known[RM_YAML_MSG_MAX / 2] = "", q[96];
        size_t klen = 0;
        const cyaml_schema_field_t *fields = schema_fields_at(root_fields, path);
        for (const cyaml_schema_field_t *f = fields; f != NULL && f->key != NULL && klen < sizeof(known); f++)
            klen += (size_t)snprintf(known + klen, sizeof(known) - klen, "%s%s", klen > 0 ? ", " : "", f->key);
        rm_yaml_path_key(key, sizeof(key), msg + 16);
        snprintf(path + len, sizeof(path) - len, "%s%s", len > 0 ? "." : "", key);
        if ((e = rm_yaml_pos_map_find(map, path)) != NULL)
            pos = e->key;
        return report(fn, arg, pos, path, "unknown key %s (known keys: %s)", rm_yaml_quoted(q, sizeof(q), msg + 16),
                      known);
    }
    if ((e = rm_yaml_pos_map_find(map, path)) != NULL)
        pos = e->value;
    if (sscanf(msg, "Expecting %63s got event: %63s", want, got) == 2) {
        want[strcspn(want, ",")] = '\0';
        return report(fn, arg, pos, path, "want %s, got %s", cyaml_type_word(want), cyaml_type_word(got));
    }
    // NOLINTNEXTLINE(cert-err34-c): libcyaml's message, with the limit it was given
    if (sscanf(msg, "STRING length > %u", &limit) == 1)
        return report(fn, arg, pos, path, "longer than %u characters", limit);
    /* anything else is passed on as libcyaml worded it, minus control characters from the document */
    rm_yaml_sanitize(other, sizeof(other), msg, 256);
    return report(fn, arg, pos, path, "%s", other);
}
