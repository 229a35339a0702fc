#include "ringmesh/log.h"
#include "ringmesh/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static rm_log_level_t log_min_level = RM_LOG_INFO;
static int log_fd = 1;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void rm_log_configure(rm_log_level_t min_level, int fd)
{
    log_min_level = min_level;
    log_fd = fd;
}

int rm_log_level_parse(const char *s, rm_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (rm_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

int rm_log_enabled(rm_log_level_t level)
{
    return level >= log_min_level;
}

/* Room kept back for the closing `,"truncated":true}\n`. */
#define LOG_RESERVE (24 + RM_LOG_NEST_MAX)

static void put_raw(rm_log_line_t *l, const char *s, size_t n)
{
    if (l->truncated)
        return;
    if (l->len + n > sizeof(l->buf) - LOG_RESERVE) {
        l->truncated = 1;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_escaped(rm_log_line_t *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[RM_LOG_LINE_MAX];
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof(tmp) - 8; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            tmp[o++] = '\\', tmp[o++] = '"';
            break;
        case '\\':
            tmp[o++] = '\\', tmp[o++] = '\\';
            break;
        case '\n':
            tmp[o++] = '\\', tmp[o++] = 'n';
            break;
        case '\r':
            tmp[o++] = '\\', tmp[o++] = 'r';
            break;
        case '\t':
            tmp[o++] = '\\', tmp[o++] = 't';
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                tmp[o++] = '\\', tmp[o++] = 'u', tmp[o++] = '0', tmp[o++] = '0';
                tmp[o++] = hex[c >> 4], tmp[o++] = hex[c & 15];
            } else {
                /* bytes >= 0x80 pass through: callers log UTF-8 or already-validated ASCII */
                tmp[o++] = (char)c;
            }
        }
    }
    put_raw(l, tmp, o);
}

/* A field is written whole or not at all: on overflow the line goes back to where the field began. */
static size_t field_begin(rm_log_line_t *l)
{
    return l->len;
}

static void field_end(rm_log_line_t *l, size_t start)
{
    if (l->truncated)
        l->len = start;
}

/* The separator before a field or element: none first inside an object or array. A NULL key (an array element) has
 * no name. */
static void put_key(rm_log_line_t *l, const char *key)
{
    if (!l->first)
        put_raw(l, ",", 1);
    l->first = 0;
    if (key == NULL)
        return;
    put_raw(l, "\"", 1);
    put_escaped(l, key, strlen(key));
    put_raw(l, "\":", 2);
}

static void nest_begin(rm_log_line_t *l, const char *key, char open, char close)
{
    if (!l->active || l->depth == RM_LOG_NEST_MAX)
        return;
    size_t start = field_begin(l);
    uint8_t first = l->first;
    put_key(l, key);
    put_raw(l, &open, 1);
    if (l->truncated) { /* not opened: nothing to close */
        l->len = start;
        l->first = first;
        return;
    }
    l->nest[l->depth++] = close;
    l->first = 1;
}

static void nest_end(rm_log_line_t *l)
{
    if (!l->active || l->depth == 0)
        return;
    l->depth--;
    l->buf[l->len++] = l->nest[l->depth]; /* even when truncated: room kept back (LOG_RESERVE) */
    l->first = 0;
}

void rm_log_object_begin(rm_log_line_t *l, const char *key)
{
    nest_begin(l, key, '{', '}');
}

void rm_log_object_end(rm_log_line_t *l)
{
    nest_end(l);
}

void rm_log_array_begin(rm_log_line_t *l, const char *key)
{
    nest_begin(l, key, '[', ']');
}

void rm_log_array_end(rm_log_line_t *l)
{
    nest_end(l);
}

void rm_log_array_strn(rm_log_line_t *l, const char *val, size_t len)
{
    rm_log_strn(l, NULL, val, len);
}

void rm_log_begin(rm_log_line_t *l, rm_log_level_t level, const char *event)
{
    l->len = 0;
    l->truncated = 0;
    l->depth = 0;
    l->first = 0;
    l->active = rm_log_enabled(level);
    if (!l->active)
        return;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    l->len = (size_t)snprintf(
        l->buf, sizeof(l->buf), "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"level\":\"%s\"", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000, level_names[level]);
    rm_log_str(l, "event", event);
}

void rm_log_strn(rm_log_line_t *l, const char *key, const char *val, size_t len)
{
    if (!l->active)
        return;
    size_t start = field_begin(l);
    put_key(l, key);
    put_raw(l, "\"", 1);
    put_escaped(l, val, len);
    put_raw(l, "\"", 1);
    field_end(l, start);
}

void rm_log_str(rm_log_line_t *l, const char *key, const char *val)
{
    if (val == NULL) {
        if (!l->active)
            return;
        size_t start = field_begin(l);
        put_key(l, key);
        put_raw(l, "null", 4);
        field_end(l, start);
        return;
    }
    rm_log_strn(l, key, val, strlen(val));
}

void rm_log_int(rm_log_line_t *l, const char *key, int64_t val)
{
    if (!l->active)
        return;
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, val);
    size_t start = field_begin(l);
    put_key(l, key);
    put_raw(l, tmp, (size_t)n);
    field_end(l, start);
}

void rm_log_uint(rm_log_line_t *l, const char *key, uint64_t val)
{
    if (!l->active)
        return;
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, val);
    size_t start = field_begin(l);
    put_key(l, key);
    put_raw(l, tmp, (size_t)n);
    field_end(l, start);
}

void rm_log_bool(rm_log_line_t *l, const char *key, int val)
{
    if (!l->active)
        return;
    size_t start = field_begin(l);
    put_key(l, key);
    if (val)
        put_raw(l, "true", 4);
    else
        put_raw(l, "false", 5);
    field_end(l, start);
}

void rm_log_err(rm_log_line_t *l, const char *key, int err)
{
    rm_log_str(l, key, rm_strerror(err));
    rm_log_int(l, "code", err);
}

void rm_log_addr(rm_log_line_t *l, const char *key, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN + 10];
    int n;
    if (sa == NULL) {
        rm_log_str(l, key, NULL);
        return;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        n = snprintf(out, sizeof(out), "%s:%u", ip, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        n = snprintf(out, sizeof(out), "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else {
        n = snprintf(out, sizeof(out), "family-%d", sa->sa_family);
    }
    rm_log_strn(l, key, out, (size_t)n);
}

void rm_log_end(rm_log_line_t *l)
{
    if (!l->active)
        return;
    while (l->depth > 0) /* room kept back: LOG_RESERVE */
        l->buf[l->len++] = l->nest[--l->depth];
    if (l->truncated) {
        memcpy(l->buf + l->len, ",\"truncated\":true", 17);
        l->len += 17;
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    const char *p = l->buf;
    size_t left = l->len;
    while (left > 0) {
        ssize_t w = write(log_fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break; /* nowhere left to report a failing log */
        }
        p += w;
        left -= (size_t)w;
    }
    l->active = 0;
}

void rm_log_msg(rm_log_level_t level, const char *event, const char *msg)
{
    rm_log_line_t l;
    rm_log_begin(&l, level, event);
    rm_log_str(&l, "msg", msg);
    rm_log_end(&l);
}
