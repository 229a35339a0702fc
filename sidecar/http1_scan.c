/* The fast response-head scanner of observe mode (see http1_scan.h). */
#include "http1_scan.h"

#include <http_parser.h>
#include <string.h>

/* Byte classes, one table lookup per byte. */
#define CL_TCHAR  0x01 /* a token's byte (RFC 9110 5.6.2) */
#define CL_VALUE  0x02 /* a field value's or reason phrase's byte: HTAB, SP, VCHAR or obs-text */
#define CL_TARGET 0x04 /* a byte the scanner takes in a request target: visible ASCII other than "#" */

/* byte_class[c]: the classes of byte c (tests/unit/test_http1_scan.c checks the table against the definitions) */
static const uint8_t byte_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 7, 6, 3, 7,
    7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* p[0, n) holds only value bytes (CL_VALUE). Eight bytes at a time: a word without a byte below 0x20 or equal to
 * 0x7f is all value bytes (obs-text, 0x80 and up, is too); a word with one (HTAB is the only such value byte) is
 * looked at byte by byte. */
static int all_value_bytes(const uint8_t *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, del;
        memcpy(&x, p + i, 8);
        del = x ^ (ones * 0x7f);
        if ((((x - ones * 0x20) & ~x) | ((del - ones) & ~del)) & highs) {
            for (size_t k = i; k != i + 8; k++)
                if (!(byte_class[p[k]] & CL_VALUE))
                    return 0;
        }
    }
    for (; i != n; i++)
        if (!(byte_class[p[i]] & CL_VALUE))
            return 0;
    return 1;
}

/* s[0, len) equals the lower-case literal `lit` without regard to case; the length is compared first, at no cost,
 * so that most fields are told apart without a loop */
#define name_is(s, len, lit) ((len) == sizeof(lit) - 1 && name_eq((s), (lit), sizeof(lit) - 1))

/* s[0, n), bytes of a token or a field value (CL_TCHAR or CL_VALUE), equals the lower-case `name` of letters and "-"
 * without regard to case. For such a byte c, c | 0x20 is that letter or "-" only when c is it in either case (CR,
 * the one other byte that would map onto "-", is neither), so eight bytes are compared at once. */
static int name_eq(const uint8_t *s, const char *name, size_t n)
{
    const uint64_t lower = 0x2020202020202020u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t a, b;
        memcpy(&a, s + i, 8);
        memcpy(&b, name + i, 8);
        if ((a | lower) != b)
            return 0;
    }
    for (; i != n; i++)
        if ((uint8_t)(s[i] | 0x20) != (uint8_t)name[i])
            return 0;
    return 1;
}

/* the name s[0, len) starts with "transfer-encoding" (any case): http_parser takes every such name for a
 * Transfer-Encoding (it notes one as soon as the name's first 17 bytes match, "Transfer-Encodingx" included), so
 * the scanner leaves them all to it */
static int name_is_transfer_encoding(const uint8_t *s, size_t len)
{
    return len >= 17 && name_eq(s, "transfer-encoding", 17);
}

/* the value s[0, len), without the OWS around it, is exactly "keep-alive" (any case) */
static int value_is_keep_alive(const uint8_t *s, size_t len)
{
    while (len != 0 && (s[0] == ' ' || s[0] == '\t'))
        s++, len--;
    while (len != 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return name_is(s, len, "keep-alive");
}

/* 1 to 15 digits with only SP around them, as http_parser reads a Content-Length; -1 otherwise */
static int64_t content_length_of(const uint8_t *s, size_t len)
{
    size_t i = 0, digits = 0;
    int64_t v = 0;
    while (i != len && s[i] == ' ')
        i++;
    for (; i != len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (digits == 15)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    while (i != len && s[i] == ' ')
        i++;
    return digits == 0 || i != len ? -1 : v;
}

int rm_http1_scan_response_head(const uint8_t *p, size_t n, rm_http1_resp_head_t *out)
{
    const uint8_t *lf;
    size_t pos, end;
    int64_t cl = -1;
    unsigned status;

    if (n > RM_HTTP1_SCAN_MAX_HEAD)
        n = RM_HTTP1_SCAN_MAX_HEAD;
    /* the status line */
    if (n < 15 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[9] < '2' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
        p[11] < '0' || p[11] > '9' || p[12] != ' ')
        return 0;
    status = (unsigned)(p[9] - '0') * 100 + (unsigned)(p[10] - '0') * 10 + (unsigned)(p[11] - '0');
    if (status == 204 || status == 304)
        return 0;
    if ((lf = memchr(p + 13, '\n', n - 13)) == NULL)
        return 0;
    end = (size_t)(lf - p);
    if (p[end - 1] != '\r')
        return 0;
    if (!all_value_bytes(p + 13, end - 1 - 13))
        return 0;
    pos = end + 1;

    /* the field lines, up to the empty one */
    for (;;) {
        if (pos + 2 > n)
            return 0;
        if (p[pos] == '\r') {
            if (p[pos + 1] != '\n')
                return 0;
            pos += 2;
            break;
        }
        if ((lf = memchr(p + pos, '\n', n - pos)) == NULL)
            return 0;
        end = (size_t)(lf - p);
        if (end == pos || p[end - 1] != '\r')
            return 0;
        /* the line is p[pos, end - 1): name ":" value */
        size_t name_end = pos;
        while (name_end != end - 1 && (byte_class[p[name_end]] & CL_TCHAR))
            name_end++;
        if (name_end == pos || name_end == end - 1 || p[name_end] != ':')
            return 0; /* an empty name, a non-token byte in it (SP, HTAB: also obs-fold), or no colon */
        const uint8_t *value = p + name_end + 1;
        size_t value_len = end - 1 - (name_end + 1), name_len = name_end - pos;
        if (!all_value_bytes(value, value_len))
            return 0;
        if (name_is(p + pos, name_len, "content-length")) {
            if (cl >= 0 || (cl = content_length_of(value, value_len)) < 0)
                return 0;
        } else if (name_is_transfer_encoding(p + pos, name_len)) {
            return 0;
        } else if (name_is(p + pos, name_len, "connection") || name_is(p + pos, name_len, "proxy-connection")) {
            if (!value_is_keep_alive(value, value_len))
                return 0;
        }
        pos = end + 1;
    }
    if (cl < 0)
        return 0;
    out->head_len = pos;
    out->status = (uint16_t)status;
    out->content_length = (uint64_t)cl;
    return 1;
}

/* The methods the request scanner takes (others, CONNECT first of all, go to the parser). */
static const struct {
    const char *name;
    size_t len;
    unsigned method;
} scan_methods[] = {
    {"GET", 3, HTTP_GET},   {"POST", 4, HTTP_POST},       {"PUT", 3, HTTP_PUT},     {"DELETE", 6, HTTP_DELETE},
    {"HEAD", 4, HTTP_HEAD}, {"OPTIONS", 7, HTTP_OPTIONS}, {"PATCH", 5, HTTP_PATCH},
};

int rm_http1_scan_request_head(const uint8_t *p, size_t n, rm_http1_req_head_t *out, rm_http1_scan_field_t *fields,
                               size_t max_fields)
{
    const uint8_t *lf;
    size_t pos, end, i, num_fields = 0;
    int64_t cl = -1;
    int host = 0;

    if (n > RM_HTTP1_SCAN_MAX_HEAD)
        n = RM_HTTP1_SCAN_MAX_HEAD;
    /* the request line */
    for (i = 0; i != sizeof(scan_methods) / sizeof(scan_methods[0]); i++)
        if (n > scan_methods[i].len && memcmp(p, scan_methods[i].name, scan_methods[i].len) == 0 &&
            p[scan_methods[i].len] == ' ')
            break;
    if (i == sizeof(scan_methods) / sizeof(scan_methods[0]))
        return 0;
    out->method = scan_methods[i].method;
    pos = scan_methods[i].len + 1;
    if (pos == n || p[pos] != '/')
        return 0;
    out->target_off = (uint32_t)pos;
    while (pos != n && (byte_class[p[pos]] & CL_TARGET))
        pos++;
    out->target_len = (uint32_t)(pos - out->target_off);
    if (n - pos < 11 || memcmp(p + pos, " HTTP/1.1\r\n", 11) != 0)
        return 0;
    pos += 11;

    /* the field lines, up to the empty one */
    for (;;) {
        if (pos + 2 > n)
            return 0;
        if (p[pos] == '\r') {
            if (p[pos + 1] != '\n')
                return 0;
            pos += 2;
            break;
        }
        if ((lf = memchr(p + pos, '\n', n - pos)) == NULL)
            return 0;
        end = (size_t)(lf - p);
        if (end == pos || p[end - 1] != '\r' || num_fields == max_fields)
            return 0;
        size_t name_end = pos;
        while (name_end != end - 1 && (byte_class[p[name_end]] & CL_TCHAR))
            name_end++;
        if (name_end == pos || name_end == end - 1 || p[name_end] != ':')
            return 0;
        size_t value_off = name_end + 1, value_end = end - 1, name_len = name_end - pos;
        if (!all_value_bytes(p + value_off, value_end - value_off))
            return 0;
        const uint8_t *name = p + pos, *value;
        while (value_off != value_end && (p[value_off] == ' ' || p[value_off] == '\t'))
            value_off++;
        value = p + value_off;
        if (name_is(name, name_len, "content-length")) {
            if (cl >= 0 || (cl = content_length_of(value, value_end - value_off)) < 0)
                return 0;
        } else if (name_is(name, name_len, "host")) {
            if (host++)
                return 0;
        } else if (name_is_transfer_encoding(name, name_len) || name_is(name, name_len, "upgrade") ||
                   name_is(name, name_len, "expect")) {
            return 0;
        } else if (name_is(name, name_len, "connection") || name_is(name, name_len, "proxy-connection")) {
            if (!value_is_keep_alive(value, value_end - value_off))
                return 0;
        }
        fields[num_fields].name_off = (uint32_t)pos;
        fields[num_fields].name_len = (uint32_t)name_len;
        fields[num_fields].value_off = (uint32_t)value_off;
        fields[num_fields].value_len = (uint32_t)(value_end - value_off);
        num_fields++;
        pos = end + 1;
    }
    out->head_len = pos;
    out->content_length = cl < 0 ? 0 : (uint64_t)cl;
    out->num_fields = num_fields;
    return 1;
}
