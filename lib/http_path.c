/* Request-target normalization (see ringmesh/http_path.h). Three passes over the path, each in place in `out`:
 * decode, resolve dot segments, merge slashes. Each pass writes at most what it reads, so none overtakes its own
 * input. */
#include "ringmesh/http_path.h"

#include <errno.h>
#include <string.h>

static const char *const mode_names[] = {
    [RM_PATH_NORMALIZATION_BASE] = "BASE",
    [RM_PATH_NORMALIZATION_NONE] = "NONE",
    [RM_PATH_NORMALIZATION_MERGE_SLASHES] = "MERGE_SLASHES",
    [RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES] = "DECODE_AND_MERGE_SLASHES",
};

const char *rm_path_normalization_name(rm_path_normalization_t mode)
{
    return (unsigned)mode < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[mode] : "unknown";
}

int rm_path_normalization_parse(const char *s, rm_path_normalization_t *out)
{
    for (unsigned i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
        if (s != NULL && strcmp(s, mode_names[i]) == 0) {
            *out = (rm_path_normalization_t)i;
            return 0;
        }
    return -EINVAL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 32) >= 'a' && (c | 32) <= 'f')
        return (c | 32) - 'a' + 10;
    return -1;
}

/* RFC 3986 2.3 */
static int is_unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

/* Where the authority of an absolute-form target ("scheme://authority/...") begins, or NULL when `s` does not start
 * with a scheme (RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )) followed by "://". */
static const char *after_scheme(const char *s, const char *end)
{
    const char *q = s;
    if (q == end || !((*q | 32) >= 'a' && (*q | 32) <= 'z'))
        return NULL;
    while (q < end &&
           (((*q | 32) >= 'a' && (*q | 32) <= 'z') || (*q >= '0' && *q <= '9') || *q == '+' || *q == '-' || *q == '.'))
        q++;
    // cppcheck-suppress knownConditionTrueFalse ; the loop also stops before `end`, at the first other character
    if (end - q < 3 || memcmp(q, "://", 3) != 0)
        return NULL;
    return q + 3;
}

/* Whether putting hex digit `d` after out[0, o) would make a "%XX" that was not in the request ("%%34%31" must
 * not become "%41", which an app decoding once more would read as "A"): decoding is done once, and its result is
 * never an escape to decode again. */
static int completes_escape(const char *out, size_t o, char d)
{
    if (hex_value(d) < 0)
        return 0;
    return (o >= 1 && out[o - 1] == '%') || (o >= 2 && out[o - 2] == '%' && hex_value(out[o - 1]) >= 0);
}

/* Pass 1: percent-decoding of the characters the mode decodes (once: a decoded byte is never read again as part of
 * an escape), '\' to '/'. Returns the length written, or -EINVAL on %00 or a NUL byte. */
static long decode_path(rm_path_normalization_t mode, const char *p, const char *end, char *out, const char **error)
{
    size_t o = 0;
    while (p < end) {
        char c = *p;
        if (c == '%' && end - p >= 3) {
            int hi = hex_value(p[1]), lo = hex_value(p[2]);
            if (hi >= 0 && lo >= 0) {
                int d = hi * 16 + lo;
                if (d == 0) {
                    *error = "the path holds a percent-encoded NUL (%00)";
                    return -EINVAL;
                }
                if ((is_unreserved(d) && !completes_escape(out, o, (char)d)) ||
                    (mode == RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES && (d == '/' || d == '\\'))) {
                    c = (char)d;
                } else {
                    memcpy(out + o, p, 3); /* kept as received, "%25" included: no double decoding */
                    o += 3;
                    p += 3;
                    continue;
                }
                p += 3;
                goto Put;
            }
        }
        if (c == '\0') {
            *error = "the path holds a NUL byte";
            return -EINVAL;
        }
        p++;
    Put:
        out[o++] = c == '\\' ? '/' : c;
    }
    return (long)o;
}

/* Pass 2: RFC 3986 5.2.4 on a path that is empty or starts with '/', segment by segment. "." is dropped, ".."
 * drops it and the segment before; either one at the end leaves the path ending in '/'. */
static size_t remove_dot_segments(char *s, size_t n)
{
    size_t i = 0, o = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && s[j] != '/')
            j++;
        const char *seg = s + i + 1;
        size_t seg_len = j - i - 1;
        int last = j == n;
        if (seg_len == 1 && seg[0] == '.') {
            if (last)
                s[o++] = '/';
        } else if (seg_len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (o > 0 && s[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            if (last)
                s[o++] = '/';
        } else {
            memmove(s + o, s + i, j - i);
            o += j - i;
        }
        i = j;
    }
    return o;
}

/* Pass 3: runs of '/' become one. */
static size_t merge_slashes(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '/' && o > 0 && s[o - 1] == '/'))
            s[o++] = s[i];
    return o;
}

/* Whether s[0, len) holds none of the bytes of `set`. */
static int holds_none_of(const char *s, size_t len, const char *set)
{
    for (size_t i = 0; i < len; i++)
        if (strchr(set, s[i]) != NULL)
            return 0;
    return 1;
}

int rm_http_path_normalize(rm_path_normalization_t mode, const char *target, size_t len, char *out, size_t cap,
                           rm_http_target_t *t)
{
    const char *end = target + len, *path = target, *path_end, *query_end;
    long n;

    memset(t, 0, sizeof(*t));
    if (cap < len + 1)
        return -ENOBUFS;
    for (path_end = target; path_end < end && *path_end != '?' && *path_end != '#'; path_end++)
        ;
    for (query_end = path_end; query_end < end && *query_end != '#'; query_end++)
        ;
    if (mode == RM_PATH_NORMALIZATION_NONE) {
        memcpy(out, target, len);
        t->len = len;
        t->path_len = (size_t)(path_end - target);
        return 0;
    }
    if (len == 0 || target[0] != '/') {
        const char *authority = after_scheme(target, path_end);
        if (authority != NULL) {
            /* absolute-form: the path starts at the first '/' after the authority (none: empty, which becomes "/") */
            path = memchr(authority, '/', (size_t)(path_end - authority));
            if (path == NULL)
                path = path_end;
        } else if ((len == 1 && target[0] == '*') || holds_none_of(target, len, "/\\?#%")) {
            /* asterisk-form, authority-form (CONNECT) or nothing (HTTP/2 CONNECT has no :path): no path */
            memcpy(out, target, len);
            t->len = t->path_len = len;
            return 0;
        } else {
            t->error = "the request target is not in origin, absolute, asterisk or authority form";
            return -EINVAL;
        }
    }
    if ((n = decode_path(mode, path, path_end, out, &t->error)) < 0)
        return (int)n;
    t->path_len = remove_dot_segments(out, (size_t)n);
    if (mode == RM_PATH_NORMALIZATION_MERGE_SLASHES || mode == RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES)
        t->path_len = merge_slashes(out, t->path_len);
    if (t->path_len == 0)
        out[t->path_len++] = '/';
    memcpy(out + t->path_len, path_end, (size_t)(query_end - path_end));
    t->len = t->path_len + (size_t)(query_end - path_end);
    t->changed = t->len != len || memcmp(out, target, len) != 0;
    return 0;
}
