/* A scalar written where a mapping is expected, as a shorthand for one of its keys (ringmesh/yaml_load.h). */
#include "ringmesh/yaml_load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One open collection while looking for the path: a mapping (its key, when the next node is the key's value) or a
 * sequence (never on a path of keys). */
typedef struct {
    int is_sequence, want_key;
    size_t base_len; /* the path's length at the collection */
} frame_t;

/* Finds the value node at `path` in the first document of data[0..len). Returns 1 with the scalar's byte span in
 * *begin / *end when it is a plain or quoted scalar, 0 when the path is absent or is not such a scalar, -EINVAL when
 * the text does not parse, -ENOMEM. */
static int find_scalar(const char *data, size_t len, const char *path, size_t *begin, size_t *end)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    frame_t frames[RM_YAML_DEPTH_MAX];
    char cur[RM_YAML_PATH_MAX] = "";
    size_t depth = 0, cur_len = 0;
    int ret = 0, done = 0;

    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            ret = -EINVAL;
            break;
        }
        frame_t *top = depth > 0 ? &frames[depth - 1] : NULL;
        int is_node = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
                      ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_ALIAS_EVENT;
        if (ev.type == YAML_DOCUMENT_END_EVENT || ev.type == YAML_STREAM_END_EVENT) {
            done = 1;
        } else if (is_node && top != NULL && !top->is_sequence && top->want_key) {
            /* a key: the path of the value that follows */
            const char *k = ev.type == YAML_SCALAR_EVENT ? (const char *)ev.data.scalar.value : "?";
            size_t kl = strlen(k);
            if (top->base_len + 4 + kl < sizeof(cur)) {
                cur_len = top->base_len;
                if (cur_len > 0)
                    cur[cur_len++] = '.';
                memcpy(cur + cur_len, k, kl + 1);
                cur_len += kl;
            }
            top->want_key = 0;
            if (ev.type != YAML_SCALAR_EVENT)
                done = 1; /* a key that is not a string: pass 1 reports it */
        } else if (is_node) {
            int at = top != NULL && !top->is_sequence && strcmp(cur, path) == 0;
            if (at && ev.type == YAML_SCALAR_EVENT && ev.data.scalar.style != YAML_LITERAL_SCALAR_STYLE &&
                ev.data.scalar.style != YAML_FOLDED_SCALAR_STYLE && ev.start_mark.line == ev.end_mark.line) {
                *begin = ev.start_mark.index;
                *end = ev.end_mark.index;
                ret = 1;
                done = 1;
            } else if (at) {
                done = 1; /* a collection (the long form) or a multi-line scalar: libcyaml reads it as it is */
            } else if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
                if (depth == RM_YAML_DEPTH_MAX) {
                    done = 1;
                } else {
                    if (top != NULL && top->is_sequence) {
                        /* an entry: "[]" matches no path of keys */
                        cur_len = top->base_len;
                        memcpy(cur + cur_len, "[]", 3);
                        cur_len += 2;
                    }
                    frame_t *f = &frames[depth++];
                    f->is_sequence = ev.type == YAML_SEQUENCE_START_EVENT;
                    f->want_key = 1;
                    f->base_len = cur_len;
                }
            } else if (top != NULL && !top->is_sequence) {
                top->want_key = 1; /* a scalar value: the next node is a key */
            }
        } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            if (depth > 0)
                depth--;
            if (depth > 0) {
                frame_t *parent = &frames[depth - 1];
                cur_len = parent->base_len;
                cur[cur_len] = '\0';
                parent->want_key = 1;
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return ret;
}

int rm_yaml_scalar_shorthand(const char *data, size_t len, const char *path, const char *key, char **out,
                             size_t *out_len)
{
    size_t begin = 0, end = 0, kl = strlen(key), n;
    char *t;
    int ret;

    *out = NULL;
    *out_len = 0;
    if ((ret = find_scalar(data, len, path, &begin, &end)) <= 0)
        return ret == -ENOMEM ? ret : 0;
    /* data[0, begin) "{" key ": " scalar "}" data[end, len): the scalar's line gains the braces, no line moves */
    n = len + kl + 4;
    if ((t = malloc(n + 1)) == NULL)
        return -ENOMEM;
    memcpy(t, data, begin);
    t[begin] = '{';
    memcpy(t + begin + 1, key, kl);
    memcpy(t + begin + 1 + kl, ": ", 2);
    memcpy(t + begin + 3 + kl, data + begin, end - begin);
    t[end + 3 + kl] = '}';
    memcpy(t + end + 4 + kl, data + end, len - end);
    t[n] = '\0';
    *out = t;
    *out_len = n;
    return 0;
}
