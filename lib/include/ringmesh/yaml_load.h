/* The two passes every YAML configuration loader makes (the proxy's configuration file, the control plane's mesh
 * and service documents), so that an error names the file, line, column and field path.
 *
 * Pass 1, rm_yaml_walk: libyaml's events, recording where every node is in a position map and refusing what the
 * loaders never accept (aliases, keys that are not scalars, duplicate keys, nesting deeper than RM_YAML_DEPTH_MAX).
 * Pass 2: libcyaml fills the loader's structures; its log is captured with rm_yaml_cyaml_log, and when it fails,
 * rm_yaml_report_cyaml_error turns the captured message and backtrace into one error with a path and position.
 *
 * Field paths read "spec.ports[1].name"; keys that had to be altered to be printed (control characters, longer
 * than RM_YAML_PATH_KEY_MAX, empty) are written as rm_yaml_path_key writes them in both passes, so paths compare. */
#ifndef RINGMESH_YAML_LOAD_H
#define RINGMESH_YAML_LOAD_H

#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stddef.h>
#include <yaml.h>

#include "ringmesh/yaml_pos_map.h"

#define RM_YAML_DEPTH_MAX          16u   /* the schemas need 4 levels; deeper documents are refused */
#define RM_YAML_PATH_KEY_MAX       128u  /* keys longer than this are shortened in field paths */
#define RM_YAML_PATH_MAX           4096u /* > RM_YAML_DEPTH_MAX * (RM_YAML_PATH_KEY_MAX + 4 + 24) */
#define RM_YAML_MSG_MAX            768u
#define RM_YAML_CAPTURE_FRAMES_MAX 16

/** How a loader reports an error: `code` at `pos` of its file, for field `path`; returns `code`. */
typedef int (*rm_yaml_report_fn)(void *arg, int code, rm_yaml_pos_t pos, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/** Copies at most `max` bytes of `src` for a message: control characters become '?', and a cut is marked with
 *  "...". Returns nonzero when the copy differs from `src`. */
int rm_yaml_sanitize(char *dst, size_t dstlen, const char *src, size_t max);

/** A key as it appears in a field path (an empty key as ""). Returns nonzero when the path form is not the key
 *  itself, so that two different keys may share it. */
int rm_yaml_path_key(char *dst, size_t dstlen, const char *key);

/** Writes `s` double-quoted for a message: at most 64 characters of it, control characters and quotes escaped. */
const char *rm_yaml_quoted(char *buf, size_t buflen, const char *s);

/** Length in bytes of the line break at data[i], as libyaml counts them (CR LF, CR, LF, NEL, LS, PS), or 0. */
size_t rm_yaml_line_break_len(const char *data, size_t len, size_t i);

/** "a scalar", "a sequence", "a mapping" or "nothing", for messages. */
const char *rm_yaml_event_kind(yaml_event_type_t t);

/** libyaml's failure to parse data[0..len) as one message ("YAML syntax error: PROBLEM (CONTEXT at line N)", a
 *  reader error with the offending byte) in msg; returns where it is (a reader error's offset made a position). */
rm_yaml_pos_t rm_yaml_syntax_error(const yaml_parser_t *parser, const char *data, size_t len, char *msg, size_t msglen);

/* ---------------------------------------------------------------------------------------------------------
 * Pass 1.
 * ------------------------------------------------------------------------------------------------------- */

#define RM_YAML_WALK_SKIP 1 /* from the root callback: do not walk this document's node */

typedef struct st_rm_yaml_walk_ops_t {
    void *arg;
    rm_yaml_report_fn report;
    /** A document begins at `pos`. Sets *map to where its nodes' positions go. Returns 0 or a reported error. */
    int (*document)(void *arg, rm_yaml_pos_t pos, rm_yaml_pos_map_t **map);
    /** The document's top node. Returns 0 to walk it, RM_YAML_WALK_SKIP to pass over it (a scalar only), or a
     *  reported error. */
    int (*root)(void *arg, const yaml_event_t *ev, rm_yaml_pos_t pos);
    /** Optional: a scalar value set directly in the top mapping, with its key. Returns 0 or a reported error. */
    int (*top_scalar)(void *arg, const char *key, const char *value, rm_yaml_pos_t pos);
} rm_yaml_walk_ops_t;

/** Walks every document of data[0..len). Returns 0 or the first error, reported through ops->report with
 *  RM_ERR_CONFIG_PARSE (YAML syntax with libyaml's own wording, aliases, non-scalar or duplicate keys, depth). */
int rm_yaml_walk(const char *data, size_t len, const rm_yaml_walk_ops_t *ops);

/** A scalar shorthand for a mapping, as in `accessLog: true` for `accessLog: {enabled: true}`: when the value at
 *  field path `path` (keys only, "spec.accessLog") of the first document of data[0..len) is a one-line plain or
 *  quoted scalar, sets *out to a copy of the text (NUL-terminated, *out_len bytes, the caller frees it) where that
 *  scalar is written as the flow mapping {KEY: scalar}, for pass 2. No line of the text moves, so pass 1's
 *  positions stay right. Leaves *out NULL when the path is absent, a collection, or the text does not parse (pass 1
 *  reports that). Returns 0 or -ENOMEM. */
int rm_yaml_scalar_shorthand(const char *data, size_t len, const char *path, const char *key, char **out,
                             size_t *out_len);

/* ---------------------------------------------------------------------------------------------------------
 * Pass 2.
 * ------------------------------------------------------------------------------------------------------- */

#define RM_YAML_STRING_MAX 4096u /* longest scalar a raw document accepts (file paths are at most PATH_MAX) */

/* Raw documents hold every scalar as a string, so that conversion errors are the loader's to word. */
#define RM_CYAML_OPT_NULL (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL)
/** An optional string field. */
#define RM_CYAML_STR(key, type, member)                                                                                \
    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_OPTIONAL, type, member, 0, RM_YAML_STRING_MAX)
/** An optional sequence of strings, of at most `max` entries. */
#define RM_CYAML_STR_SEQ(key, type, member, max)                                                                       \
    CYAML_FIELD_SEQUENCE(key, RM_CYAML_OPT_NULL, type, member, &rm_yaml_cyaml_string_entry, 0, max)

/** A sequence entry that is a string (at most RM_YAML_STRING_MAX bytes). */
extern const cyaml_schema_value_t rm_yaml_cyaml_string_entry;

/** The libcyaml configuration of every loader: errors captured with rm_yaml_cyaml_log (set log_ctx to the
 *  capture), aliases refused. Copy it, set log_ctx, and free what it loaded with the same configuration. */
extern const cyaml_config_t rm_yaml_cyaml_config;

typedef struct st_rm_yaml_cyaml_frame_t {
    enum { RM_YAML_FRAME_MAPPING, RM_YAML_FRAME_FIELD, RM_YAML_FRAME_ENTRY } kind;
    char key[64];
    unsigned index;
    rm_yaml_pos_t pos;
} rm_yaml_cyaml_frame_t;

/** What libcyaml logged while loading one document. Zero it, set line_offset, and pass it as the log context. */
typedef struct st_rm_yaml_cyaml_capture_t {
    unsigned line_offset;          /* lines of the file before the document libcyaml was given */
    char message[RM_YAML_MSG_MAX]; /* the first error message, "Load: " removed */
    int have_message;
    rm_yaml_cyaml_frame_t frames[RM_YAML_CAPTURE_FRAMES_MAX]; /* innermost first, as libcyaml prints them */
    size_t num_frames;
} rm_yaml_cyaml_capture_t;

/** A cyaml_config_t log_fn collecting into the rm_yaml_cyaml_capture_t given as log_ctx. */
void rm_yaml_cyaml_log(cyaml_log_t level, void *arg, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));

/** Reports libcyaml's failure `cerr` as one RM_ERR_CONFIG_PARSE error: an unknown key with the keys known at that
 *  place (from `root_fields`, the schema's top mapping), a wrong node type or an overlong string in plain words,
 *  anything else as libcyaml worded it; at the position `map` recorded for the path, else `fallback`. The error goes
 *  to `fn` with `arg`. */
int rm_yaml_report_cyaml_error(const rm_yaml_cyaml_capture_t *cap, cyaml_err_t cerr,
                               const cyaml_schema_field_t *root_fields, const rm_yaml_pos_map_t *map,
                               rm_yaml_pos_t fallback, rm_yaml_report_fn fn, void *arg);

#endif
