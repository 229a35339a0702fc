/* HTTP/1.x <-> HTTP/2 mapping (http1_codec.h). The connection-specific fields are RFC 9113 section 8.2.2's list; a
 * field the Connection header nominates is connection-specific too (RFC 9110 section 7.6.1). The proxies' own
 * ringmesh-* fields never cross from or to an app, so an app cannot forge what one proxy tells the other. */
#include "http1_codec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define LIT(s) s, sizeof(s) - 1

static int lc_char(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int name_is(const char *name, size_t len, const char *lit, size_t lit_len)
{
    return len == lit_len && strncasecmp(name, lit, len) == 0;
}

static int has_mesh_prefix(const char *name, size_t len)
{
    return len >= sizeof(RM_H1C_MESH_PREFIX) - 1 && strncasecmp(name, LIT(RM_H1C_MESH_PREFIX)) == 0;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* 1 when the comma-separated list `list` holds the token name[0, len) (case-insensitive, whitespace trimmed). */
static int list_has_token(const char *list, size_t list_len, const char *name, size_t len)
{
    size_t i = 0;
    while (list != NULL && i < list_len) {
        size_t start, end;
        while (i < list_len && (is_ows(list[i]) || list[i] == ','))
            i++;
        start = i;
        while (i < list_len && list[i] != ',')
            i++;
        end = i;
        while (end > start && is_ows(list[end - 1]))
            end--;
        if (end > start && name_is(list + start, end - start, name, len))
            return 1;
    }
    return 0;
}

/* 1 for a connection-specific field of RFC 9113 section 8.2.2 (te only when not exactly "trailers"). */
static int connection_specific(const char *name, size_t len, const char *value, size_t value_len)
{
    if (name_is(name, len, LIT("te"))) {
        while (value_len > 0 && is_ows(value[value_len - 1]))
            value_len--;
        while (value_len > 0 && is_ows(value[0]))
            value++, value_len--;
        return !name_is(value, value_len, LIT("trailers"));
    }
    return name_is(name, len, LIT("connection")) || name_is(name, len, LIT("keep-alive")) ||
           name_is(name, len, LIT("proxy-connection")) || name_is(name, len, LIT("transfer-encoding")) ||
           name_is(name, len, LIT("upgrade"));
}

rm_h1c_field_t rm_h1c_classify(const char *name, size_t name_len, const char *value, size_t value_len,
                               const char *connection, size_t connection_len)
{
    if (name_is(name, name_len, LIT("host")))
        return RM_H1C_FIELD_AUTHORITY;
    if (connection_specific(name, name_len, value, value_len) || has_mesh_prefix(name, name_len) ||
        list_has_token(connection, connection_len, name, name_len))
        return RM_H1C_FIELD_DROP;
    return RM_H1C_FIELD_KEEP;
}

static void set(rm_http_header_t *h, const char *name, size_t name_len, const char *value, size_t value_len)
{
    h->name = name;
    h->name_len = name_len;
    h->value = value;
    h->value_len = value_len;
}

int rm_h1c_request_to_h2(const rm_h1c_request_t *req, rm_http_header_t *out, size_t max, char *names, size_t names_len)
{
    const rm_http_header_t *host = NULL;
    const char *conn = NULL;
    size_t conn_len = 0, n = 0, used = 0;

    for (size_t i = 0; i < req->num_headers; i++) {
        const rm_http_header_t *h = &req->headers[i];
        if (name_is(h->name, h->name_len, LIT("host"))) {
            if (host != NULL)
                return -EINVAL;
            host = h;
        } else if (name_is(h->name, h->name_len, LIT("connection")) && conn == NULL) {
            conn = h->value; /* a second Connection field is dropped without naming more */
            conn_len = h->value_len;
        }
    }
    if (host == NULL && req->minor >= 1)
        return -EINVAL;
    if (max < 5)
        return -ENOSPC;
    set(&out[n++], LIT(":method"), req->method, req->method_len);
    set(&out[n++], LIT(":scheme"), LIT("http"));
    if (host != NULL)
        set(&out[n++], LIT(":authority"), host->value, host->value_len);
    set(&out[n++], LIT(":path"), req->target, req->target_len);
    if (req->minor >= 1)
        set(&out[n++], LIT(RM_H1C_ORIG_PROTO), LIT("HTTP/1.1"));
    else
        set(&out[n++], LIT(RM_H1C_ORIG_PROTO), LIT("HTTP/1.0"));
    for (size_t i = 0; i < req->num_headers; i++) {
        const rm_http_header_t *h = &req->headers[i];
        if (rm_h1c_classify(h->name, h->name_len, h->value, h->value_len, conn, conn_len) != RM_H1C_FIELD_KEEP)
            continue;
        if (n == max || names_len - used < h->name_len)
            return -ENOSPC;
        for (size_t k = 0; k < h->name_len; k++)
            names[used + k] = (char)lc_char((unsigned char)h->name[k]);
        set(&out[n++], names + used, h->name_len, h->value, h->value_len);
        used += h->name_len;
    }
    return (int)n;
}

rm_h1c_body_t rm_h1c_response_framing(int status, int head_request, int has_length, int client_minor)
{
    if (head_request || (status >= 100 && status < 200) || status == 204 || status == 304)
        return RM_H1C_BODY_NONE;
    if (has_length)
        return RM_H1C_BODY_LENGTH;
    return client_minor >= 1 ? RM_H1C_BODY_CHUNKED : RM_H1C_BODY_CLOSE;
}

rm_h1c_body_t rm_h1c_request_framing(int end_stream, int has_length)
{
    if (end_stream)
        return RM_H1C_BODY_NONE;
    return has_length ? RM_H1C_BODY_LENGTH : RM_H1C_BODY_CHUNKED;
}

const char *rm_h1c_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

/* A bounded writer: once a write does not fit, every later one is refused and the result is -ENOSPC. */
typedef struct st_writer_t {
    char *buf;
    size_t len, off;
    int full;
} writer_t;

static writer_t writer(char *buf, size_t len)
{
    writer_t w;
    w.buf = buf;
    w.len = len;
    w.off = 0;
    w.full = 0;
    return w;
}

static void put(writer_t *w, const char *s, size_t n)
{
    if (w->full || w->len - w->off < n) {
        w->full = 1;
        return;
    }
    memcpy(w->buf + w->off, s, n);
    w->off += n;
}

static void put_field(writer_t *w, const char *name, size_t name_len, const char *value, size_t value_len)
{
    put(w, name, name_len);
    put(w, LIT(": "));
    put(w, value, value_len);
    put(w, LIT("\r\n"));
}

static int finish(writer_t *w)
{
    return w->full ? -ENOSPC : (int)w->off;
}

/* Whether a field of an HTTP/2 message crosses to an HTTP/1.1 peer: no pseudo-headers, nothing connection-specific,
 * and the content-length only when the framing keeps it. */
static int crosses_to_h1(const rm_http_header_t *h, int keep_length)
{
    if (h->name_len > 0 && h->name[0] == ':')
        return 0;
    if (connection_specific(h->name, h->name_len, h->value, h->value_len))
        return 0;
    if (name_is(h->name, h->name_len, LIT("content-length")))
        return keep_length;
    return 1;
}

int rm_h1c_write_response_head(int status, const rm_http_header_t *headers, size_t num, rm_h1c_body_t framing,
                               int client_minor, int close, char *buf, size_t len)
{
    writer_t w = writer(buf, len);
    char line[64];
    const char *reason = rm_h1c_reason(status);
    /* HEAD and 304 describe the body they would have had; a 1xx or 204 has none to describe */
    int keep_length = framing == RM_H1C_BODY_LENGTH || (framing == RM_H1C_BODY_NONE && status != 204 && status >= 200);
    int n = snprintf(line, sizeof(line), "HTTP/1.%d %03d %s\r\n", client_minor >= 1 ? 1 : 0, status, reason);

    if (n < 0 || (size_t)n >= sizeof(line) || status < 100 || status > 999)
        return -EINVAL;
    put(&w, line, (size_t)n);
    for (size_t i = 0; i < num; i++)
        if (crosses_to_h1(&headers[i], keep_length))
            put_field(&w, headers[i].name, headers[i].name_len, headers[i].value, headers[i].value_len);
    if (framing == RM_H1C_BODY_CHUNKED)
        put(&w, LIT("transfer-encoding: chunked\r\n"));
    if (close || framing == RM_H1C_BODY_CLOSE)
        put(&w, LIT("connection: close\r\n"));
    put(&w, LIT("\r\n"));
    return finish(&w);
}

int rm_h1c_write_request_head(const char *method, size_t method_len, const char *path, size_t path_len,
                              const char *authority, size_t authority_len, const rm_http_header_t *headers, size_t num,
                              rm_h1c_body_t framing, char *buf, size_t len)
{
    writer_t w = writer(buf, len);
    put(&w, method, method_len);
    put(&w, LIT(" "));
    put(&w, path, path_len);
    put(&w, LIT(" HTTP/1.1\r\n"));
    if (authority != NULL)
        put_field(&w, LIT("host"), authority, authority_len);
    for (size_t i = 0; i < num; i++) {
        const rm_http_header_t *h = &headers[i];
        if (!crosses_to_h1(h, framing == RM_H1C_BODY_LENGTH) || has_mesh_prefix(h->name, h->name_len) ||
            (authority != NULL && name_is(h->name, h->name_len, LIT("host"))))
            continue;
        put_field(&w, h->name, h->name_len, h->value, h->value_len);
    }
    if (framing == RM_H1C_BODY_CHUNKED)
        put(&w, LIT("transfer-encoding: chunked\r\n"));
    put(&w, LIT("\r\n"));
    return finish(&w);
}

size_t rm_h1c_chunk_head(size_t size, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0, o = 0;
    do {
        tmp[n++] = hex[size & 15];
        size >>= 4;
    } while (size != 0);
    while (n > 0)
        buf[o++] = tmp[--n];
    buf[o++] = '\r';
    buf[o++] = '\n';
    return o;
}

int rm_h1c_write_last_chunk(const rm_http_header_t *trailers, size_t num, char *buf, size_t len)
{
    writer_t w = writer(buf, len);
    put(&w, LIT("0\r\n"));
    for (size_t i = 0; i < num; i++)
        if (crosses_to_h1(&trailers[i], 0))
            put_field(&w, trailers[i].name, trailers[i].name_len, trailers[i].value, trailers[i].value_len);
    put(&w, LIT("\r\n"));
    return finish(&w);
}
