/* A strict parser of the Prometheus text exposition format, version 0.0.4: what a proxy's /metrics answers.
 * Strict because a table computed from a page that was misread would be wrong without saying so: anything the
 * format does not allow is an error naming the line. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stat.h"

typedef struct st_expo_line_t {
    const char *p, *end; /* the rest of the line, without its line feed */
    size_t number;
    char *scratch; /* names and unescaped values, NUL-terminated, one line at a time */
    size_t used, cap;
    char *err;
    size_t errlen;
} expo_line_t;

static int line_error(expo_line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int line_error(expo_line_t *l, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(l->err, l->errlen, "line %zu: ", l->number);

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < l->errlen)
        vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int is_name_start(char c, int colon_ok)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
}

static int is_name_char(char c, int colon_ok)
{
    return is_name_start(c, colon_ok) || (c >= '0' && c <= '9');
}

static void skip_blanks(expo_line_t *l)
{
    while (l->p != l->end && (*l->p == ' ' || *l->p == '\t'))
        ++l->p;
}

/* Copies `len` bytes to the scratch area, NUL-terminated; the area holds a whole line plus a NUL per token. */
static char *scratch_put(expo_line_t *l, const char *s, size_t len)
{
    char *out = l->scratch + l->used;

    memcpy(out, s, len);
    out[len] = '\0';
    l->used += len + 1;
    return out;
}

/* A metric name (colons allowed) or a label name (not): the name, or NULL with the error set. */
static const char *read_name(expo_line_t *l, int colon_ok, const char *what)
{
    const char *start = l->p;

    if (l->p == l->end || !is_name_start(*l->p, colon_ok)) {
        const char *stop = l->p;
        while (stop != l->end && *stop != ' ' && *stop != '\t' && *stop != '{' && *stop != '=')
            ++stop;
        if (stop == l->p)
            line_error(l, "expected a %s", what);
        else
            line_error(l, "'%.*s' is not a valid %s", (int)(stop - l->p), l->p, what);
        return NULL;
    }
    while (l->p != l->end && is_name_char(*l->p, colon_ok))
        ++l->p;
    return scratch_put(l, start, (size_t)(l->p - start));
}

/* A quoted label value, unescaped into the scratch area. */
static const char *read_label_value(expo_line_t *l, const char *label)
{
    char *out = l->scratch + l->used, *w = out;

    if (l->p == l->end || *l->p != '"') {
        line_error(l, "the value of label '%s' is not quoted", label);
        return NULL;
    }
    for (++l->p;; ++l->p) {
        if (l->p == l->end) {
            line_error(l, "the value of label '%s' is not closed", label);
            return NULL;
        }
        if (*l->p == '"')
            break;
        if (*l->p != '\\') {
            *w++ = *l->p;
            continue;
        }
        if (++l->p == l->end) {
            line_error(l, "the value of label '%s' is not closed", label);
            return NULL;
        }
        switch (*l->p) {
        case '\\':
            *w++ = '\\';
            break;
        case '"':
            *w++ = '"';
            break;
        case 'n':
            *w++ = '\n';
            break;
        default:
            line_error(l, "the value of label '%s' has the escape '\\%c' (only \\\\, \\\" and \\n are allowed)", label,
                       *l->p);
            return NULL;
        }
    }
    ++l->p; /* the closing quote */
    *w = '\0';
    l->used += (size_t)(w - out) + 1;
    return out;
}

static int read_labels(expo_line_t *l, rm_expo_label_t *labels, size_t *num)
{
    ++l->p; /* '{' */
    for (;;) {
        const char *name, *value;
        size_t i;

        skip_blanks(l);
        if (l->p != l->end && *l->p == '}')
            break;
        if (*num == RM_EXPO_MAX_LABELS)
            return line_error(l, "more than %d labels", RM_EXPO_MAX_LABELS);
        if ((name = read_name(l, 0, "label name")) == NULL)
            return -1;
        skip_blanks(l);
        if (l->p == l->end || *l->p != '=')
            return line_error(l, "expected '=' after label name '%s'", name);
        ++l->p;
        skip_blanks(l);
        if ((value = read_label_value(l, name)) == NULL)
            return -1;
        for (i = 0; i != *num; ++i)
            if (strcmp(labels[i].name, name) == 0)
                return line_error(l, "label '%s' is given twice", name);
        labels[*num].name = name;
        labels[*num].value = value;
        ++*num;
        skip_blanks(l);
        if (l->p != l->end && *l->p == ',') {
            ++l->p;
            continue;
        }
        if (l->p == l->end || *l->p != '}')
            return line_error(l, "expected ',' or '}' after the value of label '%s'", name);
        break;
    }
    ++l->p; /* '}' */
    return 0;
}

/* The next blank-separated token: [start, l->p). */
static size_t read_token(expo_line_t *l, const char **start)
{
    *start = l->p;
    while (l->p != l->end && *l->p != ' ' && *l->p != '\t')
        ++l->p;
    return (size_t)(l->p - *start);
}

static int read_value(expo_line_t *l, const char *metric, double *value)
{
    const char *tok;
    size_t len = read_token(l, &tok);
    char buf[64], *endp;

    if (len == 0)
        return line_error(l, "no value after '%s'", metric);
    if (len >= sizeof(buf) || memchr(tok, 'x', len) != NULL || memchr(tok, 'X', len) != NULL)
        return line_error(l, "the value '%.*s' of '%s' is not a number", (int)len, tok, metric);
    memcpy(buf, tok, len);
    buf[len] = '\0';
    errno = 0;
    *value = strtod(buf, &endp);
    if (endp != buf + len || (errno == ERANGE && fabs(*value) > 1.0))
        return line_error(l, "the value '%s' of '%s' is not a number", buf, metric);
    return 0;
}

static int read_timestamp(expo_line_t *l, int64_t *ts)
{
    const char *tok, *d;
    size_t len = read_token(l, &tok);
    int64_t v = 0;

    d = tok;
    if (len != 0 && *d == '-')
        ++d;
    if (d == tok + len || tok + len - d > 18)
        return line_error(l, "the timestamp '%.*s' is not an integer of milliseconds", (int)len, tok);
    for (; d != tok + len; ++d) {
        if (*d < '0' || *d > '9')
            return line_error(l, "the timestamp '%.*s' is not an integer of milliseconds", (int)len, tok);
        v = v * 10 + (*d - '0');
    }
    *ts = *tok == '-' ? -v : v;
    return 0;
}

/* "# HELP name text", "# TYPE name type" or any other comment. */
static int read_comment(expo_line_t *l)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    const char *kw, *name, *type;
    size_t len, i;

    ++l->p; /* '#' */
    skip_blanks(l);
    len = read_token(l, &kw);
    if (!((len == 4 && memcmp(kw, "HELP", 4) == 0) || (len == 4 && memcmp(kw, "TYPE", 4) == 0)))
        return 0;
    skip_blanks(l);
    if ((name = read_name(l, 1, "metric name")) == NULL)
        return -1;
    if (l->p != l->end && *l->p != ' ' && *l->p != '\t')
        return line_error(l, "unexpected '%c' after the metric name '%s' of %.4s", *l->p, name, kw);
    if (kw[0] == 'H')
        return 0; /* help text is free */
    skip_blanks(l);
    len = read_token(l, &type);
    skip_blanks(l);
    for (i = 0; i != sizeof(types) / sizeof(types[0]); ++i)
        if (len == strlen(types[i]) && memcmp(type, types[i], len) == 0 && l->p == l->end)
            return 0;
    return line_error(l, "the TYPE of '%s' is '%.*s', not one of counter, gauge, histogram, summary, untyped", name,
                      (int)(l->end - type), type);
}

static int read_sample(expo_line_t *l, rm_expo_sample_t *s, rm_expo_label_t *labels)
{
    s->labels = labels;
    s->num_labels = 0;
    s->has_timestamp = 0;
    s->timestamp_ms = 0;
    s->line = l->number;
    if ((s->name = read_name(l, 1, "metric name")) == NULL)
        return -1;
    if (l->p != l->end && *l->p == '{' && read_labels(l, labels, &s->num_labels) != 0)
        return -1;
    if (l->p != l->end && *l->p != ' ' && *l->p != '\t')
        return line_error(l, "unexpected '%c' after '%s'%s", *l->p, s->name, s->num_labels != 0 ? "{...}" : "");
    skip_blanks(l);
    if (read_value(l, s->name, &s->value) != 0)
        return -1;
    skip_blanks(l);
    if (l->p == l->end)
        return 0;
    if (read_timestamp(l, &s->timestamp_ms) != 0)
        return -1;
    s->has_timestamp = 1;
    skip_blanks(l);
    if (l->p != l->end)
        return line_error(l, "unexpected '%.*s' after the timestamp", (int)(l->end - l->p), l->p);
    return 0;
}

int rm_expo_parse(const char *text, size_t len, rm_expo_sample_cb cb, void *ctx, char *err, size_t errlen)
{
    expo_line_t l = {.err = err, .errlen = errlen};
    rm_expo_label_t labels[RM_EXPO_MAX_LABELS];
    const char *p = text, *end = text + len;
    int ret = 0;

    if (errlen != 0)
        err[0] = '\0';
    while (p != end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t need;

        ++l.number;
        if (nl == NULL) {
            ret = line_error(&l, "the last line has no line feed (the page was cut short?)");
            goto Exit;
        }
        if (memchr(p, '\0', (size_t)(nl - p)) != NULL) {
            ret = line_error(&l, "a NUL byte");
            goto Exit;
        }
        /* the line's bytes, plus a NUL for the name and for each label's name and value */
        need = (size_t)(nl - p) + 2 * RM_EXPO_MAX_LABELS + 2;
        if (l.scratch == NULL || need > l.cap) {
            char *grown = realloc(l.scratch, need);
            if (grown == NULL) {
                ret = line_error(&l, "out of memory");
                goto Exit;
            }
            l.scratch = grown;
            l.cap = need;
        }
        l.used = 0;
        l.p = p;
        l.end = nl;
        p = nl + 1;
        skip_blanks(&l);
        if (l.p == l.end)
            continue;
        if (*l.p == '#') {
            if ((ret = read_comment(&l)) != 0)
                goto Exit;
            continue;
        }
        rm_expo_sample_t s;
        if ((ret = read_sample(&l, &s, labels)) != 0 || (ret = cb(ctx, &s)) != 0)
            goto Exit;
    }

Exit:
    free(l.scratch);
    return ret;
}
