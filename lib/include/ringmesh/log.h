/* JSON-lines logging on stdout: one object per line, fields "ts", "level", "event", then the event's own.
 *
 * A line is built in a stack buffer and written with one write(2), so lines from different threads never
 * interleave. Nothing here allocates. Values are escaped per RFC 8259; a line longer than the buffer is
 * cut at a field boundary and marked with "truncated":true. */
#ifndef RINGMESH_LOG_H
#define RINGMESH_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { RM_LOG_DEBUG = 0, RM_LOG_INFO, RM_LOG_WARN, RM_LOG_ERROR } rm_log_level_t;

#define RM_LOG_LINE_MAX 4096
#define RM_LOG_NEST_MAX 4 /* objects and arrays open at once */

/** A line under construction. Start with rm_log_begin(), add fields, finish with rm_log_end(). */
typedef struct st_rm_log_line_t {
    char buf[RM_LOG_LINE_MAX];
    size_t len;
    int truncated;
    int active; /* 0 when the level is filtered out: the field functions then do nothing */
    /* objects and arrays open inside the line (rm_log_object_begin, rm_log_array_begin): their closing brackets,
     * innermost last, and whether the next field is the first of the innermost one (no comma before it) */
    char nest[RM_LOG_NEST_MAX];
    uint8_t depth;
    uint8_t first;
} rm_log_line_t;

/** Sets the lowest level written (default INFO) and the output fd (default 1). Not thread-safe: call at start. */
void rm_log_configure(rm_log_level_t min_level, int fd);
/** Parses "debug", "info", "warn", "error". Returns 0 or -1. */
int rm_log_level_parse(const char *s, rm_log_level_t *out);
/** Returns nonzero when `level` would be written. */
int rm_log_enabled(rm_log_level_t level);

void rm_log_begin(rm_log_line_t *l, rm_log_level_t level, const char *event);
void rm_log_str(rm_log_line_t *l, const char *key, const char *val);
void rm_log_strn(rm_log_line_t *l, const char *key, const char *val, size_t len);
void rm_log_int(rm_log_line_t *l, const char *key, int64_t val);
void rm_log_uint(rm_log_line_t *l, const char *key, uint64_t val);
void rm_log_bool(rm_log_line_t *l, const char *key, int val);
/** Adds "error": rm_strerror(err) and "errno"/"code": err. */
void rm_log_err(rm_log_line_t *l, const char *key, int err);
/** Adds a sockaddr as "ip:port" or "[ip6]:port". */
struct sockaddr;
void rm_log_addr(rm_log_line_t *l, const char *key, const struct sockaddr *sa);
/** Opens an object (`"key":{`) or an array (`"key":[`) as the line's next field (or, inside an array, as its next
 *  element when key is NULL); the fields added until the matching *_end go inside it. Nesting deeper than
 *  RM_LOG_NEST_MAX is ignored (the fields then go to the enclosing level); on truncation rm_log_end closes what is
 *  open, so the line stays valid JSON. */
void rm_log_object_begin(rm_log_line_t *l, const char *key);
void rm_log_object_end(rm_log_line_t *l);
void rm_log_array_begin(rm_log_line_t *l, const char *key);
void rm_log_array_end(rm_log_line_t *l);
/** Adds a string element to the array open innermost. */
void rm_log_array_strn(rm_log_line_t *l, const char *val, size_t len);
/** Terminates and writes the line (closing what is still open). */
void rm_log_end(rm_log_line_t *l);

/** One-call form for lines with only a message: {"ts","level","event","msg"}. */
void rm_log_msg(rm_log_level_t level, const char *event, const char *msg);

#endif
