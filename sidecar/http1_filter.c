/* The inbound HTTP/1.x policy filter (see http1_filter.h).
 *
 * Both directions run http_parser and pause it in on_headers_complete (requests) and on_message_complete (both), so
 * that the caller of http_parser_execute learns where a head or a message ends in the input: the data callbacks
 * give pointers, the notify callbacks do not. A pause in on_headers_complete stops on the head's last LF, which the
 * parser reads again when resumed; a pause in on_message_complete stops right after the message's last byte. */
#include "http1_filter.h"
#include "http1_filter_internal.h"
#include "http1_scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RM__HTTP1_403_HEAD "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n"
_Static_assert(sizeof(RM_HTTP_DENIED_BODY) - 1 == 19, "the 403's content-length must match its body");
/* Envoy's jwt_authn answer to a refused token, without a body (the reason is in the proxy's log) */
#define RM__HTTP1_401_HEAD                                                                                             \
    "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nwww-authenticate: Bearer error=\"invalid_token\"\r\n"
_Static_assert(sizeof(RM__HTTP1_401_HEAD) >= sizeof(RM__HTTP1_403_HEAD), "the answer buffer fits both heads");
/* Rough size of one queued answer, for the back-pressure hint. */
#define RM__HTTP1_ANSWER_SIZE 128

static int request_on_url(http_parser *p, const char *at, size_t len);
static int request_on_header_field(http_parser *p, const char *at, size_t len);
static int request_on_header_value(http_parser *p, const char *at, size_t len);
static int request_on_headers_complete(http_parser *p);
static int request_on_body(http_parser *p, const char *at, size_t len);
static int request_on_message_complete(http_parser *p);
static int response_on_headers_complete(http_parser *p);
static int response_on_body(http_parser *p, const char *at, size_t len);
static int response_on_message_complete(http_parser *p);

static const http_parser_settings request_settings = {
    .on_url = request_on_url,
    .on_header_field = request_on_header_field,
    .on_header_value = request_on_header_value,
    .on_headers_complete = request_on_headers_complete,
    .on_body = request_on_body,
    .on_message_complete = request_on_message_complete,
};

static const http_parser_settings response_settings = {
    .on_headers_complete = response_on_headers_complete,
    .on_body = response_on_body,
    .on_message_complete = response_on_message_complete,
};

static void finish(rm_http1_filter_t *f, int result)
{
    if (!f->finished) {
        f->finished = 1;
        f->result = result;
    }
}

static void reset_head(rm_http1_filter_t *f)
{
    f->client_state = RM__HTTP1_CS_HEAD;
    f->req_parsed = 0; /* the parser is between requests: the scanner may take the next one */
    f->head.len = 0;
    f->fields.len = 0;
    f->url_len = 0;
    f->num_fields = 0;
    f->last_header_cb = 0;
    f->too_many_fields = 0;
    f->cur_flags = 0;
}

/* Request parser callbacks. They collect the head for the hook; in the body (trailers) they do nothing. */

int rm__http1_append_field_bytes(rm_http1_filter_t *f, const char *at, size_t len, int lower)
{
    if (rm_bytebuf_reserve(&f->fields, len) != 0) {
        f->nomem = 1;
        return -1;
    }
    uint8_t *dst = f->fields.base + f->fields.len;
    if (lower) {
        for (size_t i = 0; i != len; i++) {
            uint8_t c = (uint8_t)at[i];
            dst[i] = c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
        }
    } else {
        memcpy(dst, at, len);
    }
    f->fields.len += len;
    return 0;
}

static int request_on_url(http_parser *p, const char *at, size_t len)
{
    rm_http1_filter_t *f = p->data;
    if (f->client_state != RM__HTTP1_CS_HEAD)
        return 0;
    if (rm__http1_append_field_bytes(f, at, len, 0) != 0)
        return -1;
    f->url_len += (uint32_t)len;
    return 0;
}

static int request_on_header_field(http_parser *p, const char *at, size_t len)
{
    rm_http1_filter_t *f = p->data;
    rm__http1_field_t *field;

    if (f->client_state != RM__HTTP1_CS_HEAD)
        return 0;
    if (f->last_header_cb != RM__HTTP1_HEADER_CB_FIELD) {
        if (f->num_fields == RM_HTTP1_MAX_HEADERS) {
            f->too_many_fields = 1;
            return -1;
        }
        if (f->num_fields == f->fields_cap) {
            size_t cap = f->fields_cap * 2;
            rm__http1_field_t *index;
            rm_http_header_t *headers;
            if (cap > RM_HTTP1_MAX_HEADERS)
                cap = RM_HTTP1_MAX_HEADERS;
            if ((index = realloc(f->field_index, cap * sizeof(*index))) == NULL) {
                f->nomem = 1;
                return -1;
            }
            f->field_index = index;
            if ((headers = realloc(f->hook_headers, cap * sizeof(*headers))) == NULL) {
                f->nomem = 1;
                return -1;
            }
            f->hook_headers = headers;
            f->fields_cap = cap;
        }
        field = f->field_index + f->num_fields++;
        field->name_off = field->value_off = (uint32_t)f->fields.len;
        field->name_len = field->value_len = 0;
        f->last_header_cb = RM__HTTP1_HEADER_CB_FIELD;
    }
    field = f->field_index + f->num_fields - 1;
    if (rm__http1_append_field_bytes(f, at, len, 1) != 0)
        return -1;
    field->name_len += (uint32_t)len;
    return 0;
}

static int request_on_header_value(http_parser *p, const char *at, size_t len)
{
    rm_http1_filter_t *f = p->data;
    rm__http1_field_t *field;

    if (f->client_state != RM__HTTP1_CS_HEAD || f->num_fields == 0)
        return 0;
    field = f->field_index + f->num_fields - 1;
    if (f->last_header_cb != RM__HTTP1_HEADER_CB_VALUE) {
        field->value_off = (uint32_t)f->fields.len;
        field->value_len = 0;
        f->last_header_cb = RM__HTTP1_HEADER_CB_VALUE;
    }
    if (rm__http1_append_field_bytes(f, at, len, 0) != 0)
        return -1;
    field->value_len += (uint32_t)len;
    return 0;
}

static int request_on_headers_complete(http_parser *p)
{
    rm_http1_filter_t *f = p->data;
    f->client_event = RM__HTTP1_EV_HEADERS_COMPLETE;
    http_parser_pause(p, 1);
    return 0;
}

/* The body of the request being received counts for its queued entry, while that is still queued (the newest). */
static int request_on_body(http_parser *p, const char *at, size_t len)
{
    rm_http1_filter_t *f = p->data;
    (void)at;
    if (f->pending_len != 0) {
        rm__http1_pending_t *tail = f->pending + (f->pending_head + f->pending_len - 1) % f->pending_cap;
        if (tail->seq == f->req_seq)
            tail->request_bytes += len;
    }
    return 0;
}

static int request_on_message_complete(http_parser *p)
{
    rm_http1_filter_t *f = p->data;
    f->client_event = RM__HTTP1_EV_MESSAGE_COMPLETE;
    http_parser_pause(p, 1);
    return 0;
}

/* Response parser callbacks. The oldest queued entry is the request being answered: every entry in front of it that
 * the filter answers itself has been sent already. */

static int response_on_headers_complete(http_parser *p)
{
    rm_http1_filter_t *f = p->data;
    const rm__http1_pending_t *req = f->pending_len != 0 ? f->pending + f->pending_head : NULL;
    unsigned status = p->status_code;

    f->resp_status = (uint16_t)status;
    f->resp_bytes = 0;
    if (req != NULL && (req->flags & RM__HTTP1_PF_CONNECT) != 0 && status / 100 == 2)
        return 2; /* a tunnel: no body, no further responses */
    /* 1xx, 204 and 304 never have a body, whatever Content-Length says (RFC 9112 6.3); nor has a HEAD response */
    if (status / 100 == 1 || status == 204 || status == 304 || (req != NULL && (req->flags & RM__HTTP1_PF_HEAD) != 0))
        return 1;
    return 0;
}

static int response_on_body(http_parser *p, const char *at, size_t len)
{
    rm_http1_filter_t *f = p->data;
    (void)at;
    f->resp_bytes += len;
    return 0;
}

static int response_on_message_complete(http_parser *p)
{
    rm_http1_filter_t *f = p->data;
    f->app_event = RM__HTTP1_EV_MESSAGE_COMPLETE;
    http_parser_pause(p, 1);
    return 0;
}

/* The queue of requests in the order their responses are due. */

/* Queues an entry; a hooked one (RM__HTTP1_PF_HOOKED) becomes the request whose body is counted. */
static int pending_push(rm_http1_filter_t *f, uint8_t kind, uint8_t flags, uint64_t cookie)
{
    if (f->pending_len == f->pending_cap) {
        size_t cap = f->pending_cap * 2;
        rm__http1_pending_t *ring;
        if ((ring = malloc(cap * sizeof(*ring))) == NULL)
            return -ENOMEM;
        for (size_t i = 0; i != f->pending_len; i++)
            ring[i] = f->pending[(f->pending_head + i) % f->pending_cap];
        free(f->pending);
        f->pending = ring;
        f->pending_head = 0;
        f->pending_cap = cap;
    }
    rm__http1_pending_t *e = f->pending + (f->pending_head + f->pending_len) % f->pending_cap;
    e->kind = kind;
    e->flags = flags;
    e->cookie = cookie;
    e->request_bytes = 0;
    e->seq = ++f->req_seq;
    f->pending_len++;
    if (kind != RM__HTTP1_PENDING_FORWARDED)
        f->pending_answers++;
    return 0;
}

static rm__http1_pending_t pending_pop(rm_http1_filter_t *f)
{
    rm__http1_pending_t e = f->pending[f->pending_head];
    f->pending_head = (f->pending_head + 1) % f->pending_cap;
    f->pending_len--;
    if (e.kind != RM__HTTP1_PENDING_FORWARDED)
        f->pending_answers--;
    return e;
}

/* Reports the end of a queued entry's exchange, when the hook saw its request. */
static void report(rm_http1_filter_t *f, const rm__http1_pending_t *e, uint16_t status, uint64_t response_bytes,
                   int by_proxy, int complete)
{
    if (f->done == NULL || f->ended || (e->flags & RM__HTTP1_PF_HOOKED) == 0)
        return;
    rm_http_exchange_t ex = {
        .cookie = e->cookie,
        .status = status,
        .grpc_status = -1,
        .request_bytes = e->request_bytes,
        .response_bytes = response_bytes,
        .answered_by_proxy = (uint8_t)by_proxy,
        .complete = (uint8_t)complete,
    };
    f->done(f->decide_ctx, &ex);
}

static int append_answer(const rm__http1_pending_t *e, rm_bytebuf_t *to_client)
{
    static const char bad_request[] = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                      too_big[] = "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
                                  "connection: close\r\n\r\n";
    char buf[sizeof(RM__HTTP1_401_HEAD) + 64];
    size_t n = 0;

    switch (e->kind) {
    case RM__HTTP1_PENDING_BAD_REQUEST:
        return rm_bytebuf_append(to_client, bad_request, sizeof(bad_request) - 1);
    case RM__HTTP1_PENDING_HEAD_TOO_BIG:
        return rm_bytebuf_append(to_client, too_big, sizeof(too_big) - 1);
    default:
        break;
    }
#define APPEND_LITERAL(s) (memcpy(buf + n, s, sizeof(s) - 1), n += sizeof(s) - 1)
    int unauthenticated = e->kind == RM__HTTP1_PENDING_UNAUTHENTICATED;
    if (unauthenticated)
        APPEND_LITERAL(RM__HTTP1_401_HEAD);
    else
        APPEND_LITERAL(RM__HTTP1_403_HEAD);
    if ((e->flags & RM__HTTP1_PF_CLOSE) != 0) {
        APPEND_LITERAL("connection: close\r\n");
    } else if ((e->flags & RM__HTTP1_PF_HTTP10) != 0) {
        APPEND_LITERAL("connection: keep-alive\r\n");
    }
    APPEND_LITERAL("\r\n");
    if ((e->flags & RM__HTTP1_PF_HEAD) == 0 && !unauthenticated)
        APPEND_LITERAL(RM_HTTP_DENIED_BODY);
#undef APPEND_LITERAL
    return rm_bytebuf_append(to_client, buf, n);
}

/* Sends the answers at the front of the queue, up to the first request the app has yet to answer. */
static int send_due_answers(rm_http1_filter_t *f, rm_bytebuf_t *to_client)
{
    while (!f->finished && f->pending_len != 0 && f->pending[f->pending_head].kind != RM__HTTP1_PENDING_FORWARDED) {
        int ret = append_answer(f->pending + f->pending_head, to_client);
        if (ret != 0)
            return ret;
        rm__http1_pending_t e = pending_pop(f);
        if (e.kind == RM__HTTP1_PENDING_DENIED)
            report(f, &e, 403, (e.flags & RM__HTTP1_PF_HEAD) != 0 ? 0 : sizeof(RM_HTTP_DENIED_BODY) - 1, 1, 1);
        else if (e.kind == RM__HTTP1_PENDING_UNAUTHENTICATED)
            report(f, &e, 401, 0, 1, 1);
        else
            report(f, &e, e.kind == RM__HTTP1_PENDING_BAD_REQUEST ? 400 : 431, 0, 1, 1);
        if (e.kind == RM__HTTP1_PENDING_BAD_REQUEST) {
            finish(f, -EPROTO);
        } else if (e.kind == RM__HTTP1_PENDING_HEAD_TOO_BIG) {
            finish(f, -EMSGSIZE);
        } else if ((e.flags & RM__HTTP1_PF_CLOSE) != 0) {
            finish(f, RM_HTTP1_FILTER_CLOSE);
        }
    }
    return 0;
}

/* Queues a 400 or 431 that ends the connection. */
static int queue_error_answer(rm_http1_filter_t *f, uint8_t kind, rm_bytebuf_t *to_client)
{
    int ret;
    f->client_state = RM__HTTP1_CS_DONE;
    f->head.len = 0;
    if ((ret = pending_push(f, kind, RM__HTTP1_PF_CLOSE, 0)) != 0)
        return ret;
    return send_due_answers(f, to_client);
}

static size_t trim_trailing_ows(const char *s, size_t len)
{
    while (len != 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return len;
}

/* RFC 9110 5.6.2 tchar. The library, built without HTTP_PARSER_STRICT, lets spaces into field names, and
 * "Transfer-Encoding : chunked" would then frame the body for the filter but maybe not for the app. */
static int is_token(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i != len; i++)
        if (!rm_http1_is_tchar((uint8_t)s[i]))
            return 0;
    return 1;
}

static int value_is(const char *s, size_t len, const char *lower)
{
    size_t n = strlen(lower);
    if (len != n)
        return 0;
    for (size_t i = 0; i != n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (c != lower[i])
            return 0;
    }
    return 1;
}

/* Where the request target sits in f->head: after any empty lines, the method and the spaces that follow it. The
 * bytes there must be the target the parser reported; anything else returns -1 and is refused, so the target the
 * policy judged is the one replaced. */
static long target_offset(const rm_http1_filter_t *f)
{
    const uint8_t *h = f->head.base;
    size_t n = f->head.len, i = 0;
    while (i < n && (h[i] == '\r' || h[i] == '\n'))
        i++;
    while (i < n && h[i] != ' ')
        i++;
    while (i < n && h[i] == ' ')
        i++;
    // cppcheck-suppress knownConditionTrueFalse ; the loops above stop at the target, before the head's end
    if (n - i <= f->url_len || memcmp(h + i, f->fields.base, f->url_len) != 0 || h[i + f->url_len] != ' ')
        return -1;
    return (long)i;
}

/* Whether the field line at line[0, len) is one of those the hook set (its name, before the colon, matched without
 * regard to case). */
static int line_is_set_field(const uint8_t *line, size_t len, const rm_http_decision_t *d)
{
    const uint8_t *colon = memchr(line, ':', len);
    size_t name_len = colon != NULL ? (size_t)(colon - line) : 0;
    for (size_t i = 0; i != d->num_set; i++) {
        size_t j = 0;
        if (d->set[i].name_len != name_len)
            continue;
        while (j != name_len && (line[j] >= 'A' && line[j] <= 'Z' ? line[j] - 'A' + 'a' : line[j]) == d->set[i].name[j])
            j++;
        if (j == name_len)
            return 1;
    }
    return 0;
}

/* Appends the head to to_app: its request target replaced by f->target when normalizing changed it, and the
 * hook's set fields in place of the head's fields of the same names (http1_filter.h). */
/* Whether a field of the head (f->field_index, names lower-cased) has the name of one of the hook's set fields. */
static int head_has_set_field(const rm_http1_filter_t *f, const rm_http_decision_t *d)
{
    for (size_t k = 0; k != d->num_set; k++)
        for (size_t i = 0; i != f->num_fields; i++)
            if (f->field_index[i].name_len == d->set[k].name_len &&
                memcmp(f->fields.base + f->field_index[i].name_off, d->set[k].name, d->set[k].name_len) == 0)
                return 1;
    return 0;
}

static int forward_head(rm_http1_filter_t *f, long target_off, int changed, int scanned, rm_bytebuf_t *to_app)
{
    const rm_http_decision_t *d = &f->decision;
    const uint8_t *h = f->head.base, *lf;
    size_t n = f->head.len, rest = (size_t)target_off + f->url_len, pos, extra = 0;
    int ret;

    if (!changed && d->num_set == 0)
        return rm_bytebuf_append(to_app, h, n);
    for (size_t i = 0; i != d->num_set; i++)
        extra += d->set[i].name_len + d->set[i].value_len + 4;
    if ((ret = rm_bytebuf_reserve(to_app, n + f->target.len + extra)) != 0)
        return ret;
    if (scanned && !changed && !head_has_set_field(f, d)) {
        /* a scanned head ends with its empty line "\r\n" and keeps all its fields: the set ones go before it */
        rm_bytebuf_append(to_app, h, n - 2);
        pos = n - 2;
        goto Set;
    }
    /* the request line */
    lf = memchr(h + rest, '\n', n - rest);
    pos = lf != NULL ? (size_t)(lf - h) + 1 : n;
    if (changed) {
        rm_bytebuf_append(to_app, h, (size_t)target_off);
        rm_bytebuf_append(to_app, f->target.base, f->target.len);
        rm_bytebuf_append(to_app, h + rest, pos - rest);
    } else {
        rm_bytebuf_append(to_app, h, pos);
    }
    /* the field lines up to the empty one that ends the head (no line is folded: route_client_bytes refuses it) */
    while (pos < n && h[pos] != '\r' && h[pos] != '\n') {
        lf = memchr(h + pos, '\n', n - pos);
        size_t end = lf != NULL ? (size_t)(lf - h) + 1 : n;
        if (!line_is_set_field(h + pos, end - pos, d))
            rm_bytebuf_append(to_app, h + pos, end - pos);
        pos = end;
    }
Set:
    for (size_t i = 0; i != d->num_set; i++) {
        if (d->set[i].value == NULL)
            continue; /* removed */
        rm_bytebuf_append(to_app, d->set[i].name, d->set[i].name_len);
        rm_bytebuf_append(to_app, ": ", 2);
        rm_bytebuf_append(to_app, d->set[i].value, d->set[i].value_len);
        rm_bytebuf_append(to_app, "\r\n", 2);
    }
    return rm_bytebuf_append(to_app, h + pos, n - pos);
}

/* Keeps the hook's set fields that may go on the wire (rm_http_set_field_valid). */
static void keep_valid_set_fields(rm_http_decision_t *d)
{
    size_t kept = 0;
    if (d->num_set > RM_HTTP_MAX_SET_HEADERS)
        d->num_set = RM_HTTP_MAX_SET_HEADERS;
    for (size_t i = 0; i != d->num_set; i++)
        if (rm_http_set_field_valid(d->set[i].name, d->set[i].name_len, d->set[i].value, d->set[i].value_len))
            d->set[kept++] = d->set[i];
    d->num_set = kept;
}

void rm_http1_filter_set_path_normalization(rm_http1_filter_t *f, rm_path_normalization_t mode)
{
    f->path_mode = (uint8_t)mode;
}

/* The head is complete (and in f->head): normalizes the target, asks the hook, then forwards the head or queues
 * the 403 (400 when the target cannot be normalized). */

static rm__http1_head_info_t parser_head_info(const http_parser *p)
{
    rm__http1_head_info_t hi = {
        .method = p->method,
        .upgrade = (uint8_t)p->upgrade,
        .http10 = p->http_major == 0 || (p->http_major == 1 && p->http_minor == 0),
        .keep_alive = (uint8_t)http_should_keep_alive(p),
        .chunked = (p->flags & F_CHUNKED) != 0,
        .has_length = p->content_length != UINT64_MAX,
        .content_length = p->content_length,
    };
    return hi;
}

int rm__http1_decide_request(rm_http1_filter_t *f, const rm__http1_head_info_t *p, rm_bytebuf_t *to_app,
                             rm_bytebuf_t *to_client)
{
    const char *base = (const char *)f->fields.base;
    rm_http_request_t req = {0};
    int expect_continue = 0, transfer_encoding = 0, has_body, ret;
    uint8_t flags = 0;
    rm_http_target_t target;
    long target_off;

    req.method = http_method_str((enum http_method)p->method);
    req.method_len = strlen(req.method);
    req.path = base;
    req.path_len = f->url_len;
    for (size_t i = 0; i != f->num_fields; i++) {
        const rm__http1_field_t *field = f->field_index + i;
        rm_http_header_t *h = f->hook_headers + i;
        h->name = base + field->name_off;
        h->name_len = field->name_len;
        h->value = base + field->value_off;
        h->value_len = trim_trailing_ows(h->value, field->value_len);
        if (!p->scanned && !is_token(h->name, h->name_len)) /* the scanner took tokens only */
            return queue_error_answer(f, RM__HTTP1_PENDING_BAD_REQUEST, to_client);
        if (h->name_len == 4 && memcmp(h->name, "host", 4) == 0) {
            if (req.host != NULL)
                return queue_error_answer(f, RM__HTTP1_PENDING_BAD_REQUEST, to_client); /* RFC 9112 3.2 */
            req.host = h->value;
            req.host_len = h->value_len;
        } else if (h->name_len == 6 && memcmp(h->name, "expect", 6) == 0) {
            expect_continue |= value_is(h->value, h->value_len, "100-continue");
        } else if (h->name_len >= 17 && memcmp(h->name, "transfer-encoding", 17) == 0) {
            /* http_parser counts any name that starts with these 17 bytes ("Transfer-Encodingx") as a
             * Transfer-Encoding (it notes one as soon as the name's start matches): so does the filter */
            transfer_encoding = 1;
        }
    }
    /* a request body whose length cannot be known (RFC 9112 6.3): the library would reject it only after
     * on_headers_complete, when the head has gone to the app (and the connection could only be cut) */
    if (transfer_encoding && !p->chunked)
        return queue_error_answer(f, RM__HTTP1_PENDING_BAD_REQUEST, to_client);
    req.headers = f->hook_headers;
    req.num_headers = f->num_fields;

    if (p->method == HTTP_HEAD)
        flags |= RM__HTTP1_PF_HEAD;
    if (p->method == HTTP_CONNECT)
        flags |= RM__HTTP1_PF_CONNECT;
    if (p->upgrade)
        flags |= RM__HTTP1_PF_UPGRADE;
    if (p->http10)
        flags |= RM__HTTP1_PF_HTTP10;
    if (!p->keep_alive)
        flags |= RM__HTTP1_PF_CLOSE;
    has_body = p->chunked || (p->has_length && p->content_length != 0);

    /* the target the hook judges is the one the app gets */
    f->target.len = 0;
    if ((ret = rm_bytebuf_reserve(&f->target, (size_t)f->url_len + 1)) != 0)
        return ret;
    ret = rm_http_path_normalize((rm_path_normalization_t)f->path_mode, base, f->url_len, (char *)f->target.base,
                                 f->target.cap, &target);
    target_off = target_offset(f);
    if (ret != 0 || target_off < 0) {
        req.path_error = target_off < 0 ? "the request target is not where the request line puts it"
                         : target.error ? target.error
                                        : "the request target cannot be normalized";
        memset(&f->decision, 0, sizeof(f->decision));
        f->decide(f->decide_ctx, &req, &f->decision); /* for the log; the answer is 400 whatever it says */
        f->client_state = RM__HTTP1_CS_DONE;
        f->head.len = 0;
        if ((ret = pending_push(f, RM__HTTP1_PENDING_BAD_REQUEST, flags | RM__HTTP1_PF_CLOSE | RM__HTTP1_PF_HOOKED,
                                f->decision.cookie)) != 0)
            return ret;
        return send_due_answers(f, to_client);
    }
    f->target.len = target.len;
    req.path = (const char *)f->target.base;
    req.path_len = target.len;

    memset(&f->decision, 0, sizeof(f->decision));
    flags |= RM__HTTP1_PF_HOOKED;
    rm_http_verdict_t verdict = f->decide(f->decide_ctx, &req, &f->decision);
    if (verdict == RM_HTTP_ALLOW) {
        keep_valid_set_fields(&f->decision);
        if ((ret = pending_push(f, RM__HTTP1_PENDING_FORWARDED, flags, f->decision.cookie)) != 0)
            return ret;
        if ((ret = forward_head(f, target_off, target.changed, p->scanned, to_app)) != 0)
            return ret;
        f->cur_flags = flags;
        f->upgrade_answer = RM__HTTP1_UPGRADE_PENDING;
        f->client_state = RM__HTTP1_CS_BODY_FORWARD;
    } else {
        if (expect_continue && has_body)
            flags |= RM__HTTP1_PF_CLOSE;
        if ((ret = pending_push(
                 f, verdict == RM_HTTP_UNAUTHENTICATED ? RM__HTTP1_PENDING_UNAUTHENTICATED : RM__HTTP1_PENDING_DENIED,
                 flags, f->decision.cookie)) != 0)
            return ret;
        f->cur_flags = flags;
        /* after a closing 403 nothing the client sends matters: stop parsing now */
        f->client_state = (flags & RM__HTTP1_PF_CLOSE) != 0 ? RM__HTTP1_CS_DONE : RM__HTTP1_CS_BODY_DROP;
        if ((ret = send_due_answers(f, to_client)) != 0)
            return ret;
    }
    f->head.len = 0;
    return 0;
}

/* The request's last byte has been passed on or dropped: what comes next. */
void rm__http1_request_done(rm_http1_filter_t *f)
{
    uint8_t flags = f->cur_flags;

    if (f->client_state == RM__HTTP1_CS_BODY_FORWARD && (flags & RM__HTTP1_PF_UPGRADE) != 0) {
        switch (f->upgrade_answer) {
        case RM__HTTP1_UPGRADE_SWITCHED:
            f->client_state = RM__HTTP1_CS_PASSTHROUGH;
            return;
        case RM__HTTP1_UPGRADE_PENDING:
            f->client_state = RM__HTTP1_CS_UPGRADE_WAIT;
            return;
        default:
            break;
        }
    }
    if (f->client_state == RM__HTTP1_CS_BODY_FORWARD && (flags & RM__HTTP1_PF_CLOSE) != 0) {
        f->client_state = RM__HTTP1_CS_DONE;
        return;
    }
    /* the parser stops for good after an upgrade request; it was refused or denied, so parse on afresh */
    if (f->req_parser.upgrade)
        http_parser_init(&f->req_parser, HTTP_REQUEST);
    reset_head(f);
}

/* A line of the head that starts with SP or HTAB: a field value folded onto it (obs-fold), or whitespace before the
 * first field. RFC 9112 5.2 lets a server reject the first with 400 or unfold it, and 2.2 the second; the library
 * takes both as part of the value, and an app may read them differently, so the filter rejects them. `prev` is the
 * head's byte before src (0 at its start). */
static int starts_folded_line(uint8_t prev, const uint8_t *src, size_t len)
{
    const uint8_t *p = src, *end = src + len;
    if (len != 0 && prev == '\n' && (src[0] == ' ' || src[0] == '\t'))
        return 1;
    while (p != end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (++p == end)
            break;
        if (*p == ' ' || *p == '\t')
            return 1;
    }
    return 0;
}

/* Passes the bytes the parser has consumed to where the client side's state sends them. */
static int route_client_bytes(rm_http1_filter_t *f, const uint8_t *src, size_t len, rm_bytebuf_t *to_app,
                              rm_bytebuf_t *to_client)
{
    int ret;

    switch (f->client_state) {
    case RM__HTTP1_CS_HEAD:
        if (f->head.len + len > RM_HTTP1_MAX_HEAD_SIZE)
            return queue_error_answer(f, RM__HTTP1_PENDING_HEAD_TOO_BIG, to_client);
        if (starts_folded_line(f->head.len != 0 ? f->head.base[f->head.len - 1] : 0, src, len))
            return queue_error_answer(f, RM__HTTP1_PENDING_BAD_REQUEST, to_client);
        if ((ret = rm_bytebuf_append(&f->head, src, len)) != 0)
            return ret;
        return 0;
    case RM__HTTP1_CS_BODY_FORWARD:
        return rm_bytebuf_append(to_app, src, len);
    default:
        return 0;
    }
}

/* Runs the client's bytes through the request parser. Returns 0 or a negative error that ends the connection. */
static int client_feed(rm_http1_filter_t *f, const uint8_t *in, size_t len, rm_bytebuf_t *to_app,
                       rm_bytebuf_t *to_client)
{
    size_t pos = 0, routed = 0; /* parsed up to pos; in[0, routed) passed on or dropped */
    int ret = 0;

    while (!f->finished) {
        switch (f->client_state) {
        case RM__HTTP1_CS_PASSTHROUGH:
            return rm_bytebuf_append(to_app, in + routed, len - routed);
        case RM__HTTP1_CS_UPGRADE_WAIT:
            return rm_bytebuf_append(&f->held, in + routed, len - routed);
        case RM__HTTP1_CS_DONE:
            return 0;
        default:
            break;
        }
        if (pos == len)
            break;
        if (routed == pos) {
            size_t used;
            if ((ret = rm__http1_fast_request(f, in + pos, len - pos, &used, to_app, to_client)) != 0)
                return ret;
            if (used != 0) {
                pos = routed = pos + used;
                continue;
            }
        }

        f->client_event = RM__HTTP1_EV_NONE;
        f->req_parsed = 1;
        size_t n = http_parser_execute(&f->req_parser, &request_settings, (const char *)in + pos, len - pos);
        enum http_errno err = HTTP_PARSER_ERRNO(&f->req_parser);
        size_t end = pos + n, route_end = end;
        int event = RM__HTTP1_EV_NONE;

        if (err == HPE_PAUSED) {
            http_parser_pause(&f->req_parser, 0);
            event = f->client_event;
            if (event == RM__HTTP1_EV_HEADERS_COMPLETE) {
                /* stopped on the head's last LF: the head includes it, the parser reads it again. The library is
                 * built without HTTP_PARSER_STRICT and takes any byte after the final CR: reject that here. */
                if (end >= len || in[end] != '\n')
                    return queue_error_answer(f, RM__HTTP1_PENDING_BAD_REQUEST, to_client);
                route_end = end + 1;
            }
        } else if (err == HPE_OK && end != len) {
            return -EPROTO; /* the parser stops early only after an upgrade, and that pauses first */
        }
        if (route_end > routed) {
            if ((ret = route_client_bytes(f, in + routed, route_end - routed, to_app, to_client)) != 0)
                return ret;
            routed = route_end;
            if (f->client_state == RM__HTTP1_CS_DONE)
                return 0; /* the head was too large */
        }
        pos = end;

        if (err == HPE_PAUSED) {
            if (event == RM__HTTP1_EV_HEADERS_COMPLETE) {
                rm__http1_head_info_t hi = parser_head_info(&f->req_parser);
                if ((ret = rm__http1_decide_request(f, &hi, to_app, to_client)) != 0)
                    return ret;
            } else if (event == RM__HTTP1_EV_MESSAGE_COMPLETE) {
                rm__http1_request_done(f);
            }
        } else if (err != HPE_OK) {
            if (f->nomem)
                return -ENOMEM;
            switch (f->client_state) {
            case RM__HTTP1_CS_HEAD:
                return queue_error_answer(f,
                                          f->too_many_fields || err == HPE_HEADER_OVERFLOW
                                              ? RM__HTTP1_PENDING_HEAD_TOO_BIG
                                              : RM__HTTP1_PENDING_BAD_REQUEST,
                                          to_client);
            case RM__HTTP1_CS_BODY_DROP:
                return queue_error_answer(f, RM__HTTP1_PENDING_BAD_REQUEST, to_client);
            default:
                return -EPROTO; /* the app has part of this request: nothing sane to answer */
            }
        }
    }
    return 0;
}

/* The app's answer to an allowed Upgrade or CONNECT is in: switch, or go back to parsing the held bytes. */
static int upgrade_answered(rm_http1_filter_t *f, int switched, uint8_t flags, rm_bytebuf_t *to_app,
                            rm_bytebuf_t *to_client)
{
    rm_bytebuf_t held;
    int ret;

    if (switched)
        f->app_passthrough = 1;
    if (f->client_state != RM__HTTP1_CS_UPGRADE_WAIT) {
        /* the request's body is still coming: rm__http1_request_done() acts on the answer */
        f->upgrade_answer = switched ? RM__HTTP1_UPGRADE_SWITCHED : RM__HTTP1_UPGRADE_REFUSED;
        return 0;
    }
    if (switched) {
        f->client_state = RM__HTTP1_CS_PASSTHROUGH;
        ret = rm_bytebuf_append(to_app, f->held.base, f->held.len);
        f->held.len = 0;
        return ret;
    }
    if ((flags & RM__HTTP1_PF_CLOSE) != 0) {
        f->client_state = RM__HTTP1_CS_DONE;
        f->held.len = 0;
        return 0;
    }
    http_parser_init(&f->req_parser, HTTP_REQUEST);
    reset_head(f);
    /* parse the held bytes; they may end in another upgrade that refills f->held */
    held = f->held;
    f->held = (rm_bytebuf_t){0};
    ret = client_feed(f, held.base, held.len, to_app, to_client);
    if (f->held.base == NULL) {
        held.len = 0;
        f->held = held;
    } else {
        rm_bytebuf_free(&held);
    }
    return ret;
}

/* The app finished a response with `status` (`parser_upgrade`: the parser saw it switch protocols): was it final,
 * and what may follow it. */
int rm__http1_response_done(rm_http1_filter_t *f, unsigned status, int parser_upgrade, rm_bytebuf_t *to_app,
                            rm_bytebuf_t *to_client)
{
    const rm__http1_pending_t *front = f->pending_len != 0 ? f->pending + f->pending_head : NULL;
    int upgrade = front != NULL && (front->flags & RM__HTTP1_PF_UPGRADE) != 0, switched = 0, ret;

    if (status / 100 == 1) {
        if (status == 101 && upgrade) {
            switched = 1;
        } else if (parser_upgrade) {
            return -EPROTO; /* switching protocols without being asked to */
        } else {
            f->resp_status = 0; /* interim */
            return 0;
        }
    } else if (upgrade && (front->flags & RM__HTTP1_PF_CONNECT) != 0 && status / 100 == 2) {
        switched = 1;
    }
    if (front == NULL)
        return 0; /* a response nobody asked for: passed on, nothing to pop */

    rm__http1_pending_t answered = pending_pop(f);
    report(f, &answered, (uint16_t)status, f->resp_bytes, 0, 1);
    f->resp_status = 0;
    f->resp_bytes = 0;
    if ((ret = send_due_answers(f, to_client)) != 0)
        return ret;
    if (upgrade)
        return upgrade_answered(f, switched, answered.flags, to_app, to_client);
    return 0;
}

int rm_http1_filter_init(rm_http1_filter_t *f, rm_http_decide_cb decide, rm_http_done_cb done, void *ctx)
{
    memset(f, 0, sizeof(*f));
    if (decide == NULL)
        return -EINVAL;
    f->decide = decide;
    f->done = done;
    f->decide_ctx = ctx;
    http_parser_init(&f->req_parser, HTTP_REQUEST);
    f->req_parser.data = f;
    http_parser_init(&f->resp_parser, HTTP_RESPONSE);
    f->resp_parser.data = f;
    f->pending_cap = 8;
    f->fields_cap = 16;
    f->pending = malloc(f->pending_cap * sizeof(*f->pending));
    f->field_index = malloc(f->fields_cap * sizeof(*f->field_index));
    f->hook_headers = malloc(f->fields_cap * sizeof(*f->hook_headers));
    if (f->pending == NULL || f->field_index == NULL || f->hook_headers == NULL) {
        rm_http1_filter_dispose(f);
        return -ENOMEM;
    }
    reset_head(f);
    return 0;
}

void rm_http1_filter_end(rm_http1_filter_t *f, int app_ended)
{
    if (f->ended)
        return;
    /* a response without length framing ends with the app's sending: tell the parser (a zero-length execute) */
    if (app_ended && !f->app_passthrough && f->pending_len != 0 &&
        f->pending[f->pending_head].kind == RM__HTTP1_PENDING_FORWARDED &&
        HTTP_PARSER_ERRNO(&f->resp_parser) == HPE_OK) {
        f->app_event = RM__HTTP1_EV_NONE;
        http_parser_execute(&f->resp_parser, &response_settings, NULL, 0);
        if (f->app_event == RM__HTTP1_EV_MESSAGE_COMPLETE && f->resp_status / 100 != 1) {
            rm__http1_pending_t e = pending_pop(f);
            report(f, &e, f->resp_status, f->resp_bytes, 0, 1);
        }
    }
    /* the rest never got a whole response: the first may have its status, the answers were not sent */
    for (int first = 1; f->pending_len != 0; first = 0) {
        rm__http1_pending_t e = pending_pop(f);
        int forwarded = e.kind == RM__HTTP1_PENDING_FORWARDED;
        report(f, &e, first && forwarded && f->resp_status / 100 != 1 ? f->resp_status : 0,
               first && forwarded ? f->resp_bytes : 0, !forwarded, 0);
    }
    f->ended = 1;
}

void rm_http1_filter_dispose(rm_http1_filter_t *f)
{
    rm_bytebuf_free(&f->head);
    rm_bytebuf_free(&f->fields);
    rm_bytebuf_free(&f->target);
    rm_bytebuf_free(&f->held);
    free(f->field_index);
    free(f->hook_headers);
    free(f->pending);
    memset(f, 0, sizeof(*f));
}

int rm_http1_filter_from_client(rm_http1_filter_t *f, const uint8_t *in, size_t len, rm_bytebuf_t *to_app,
                                rm_bytebuf_t *to_client)
{
    int ret;

    if (f->finished || len == 0)
        return f->finished ? f->result : 0;
    if ((ret = client_feed(f, in, len, to_app, to_client)) != 0)
        finish(f, ret);
    return f->finished ? f->result : 0;
}

int rm_http1_filter_from_app(rm_http1_filter_t *f, const uint8_t *in, size_t len, rm_bytebuf_t *to_app,
                             rm_bytebuf_t *to_client)
{
    size_t pos = 0;
    int ret = 0;

    while (!f->finished && pos != len) {
        if (f->app_passthrough) {
            if ((ret = rm_bytebuf_append(to_client, in + pos, len - pos)) != 0)
                goto Exit;
            break;
        }
        size_t used;
        if ((ret = rm__http1_fast_response(f, in + pos, len - pos, &used, to_app, to_client)) != 0)
            goto Exit;
        if (used != 0) {
            pos += used;
            continue;
        }
        f->app_event = RM__HTTP1_EV_NONE;
        size_t n = http_parser_execute(&f->resp_parser, &response_settings, (const char *)in + pos, len - pos);
        enum http_errno err = HTTP_PARSER_ERRNO(&f->resp_parser);
        if ((ret = rm_bytebuf_append(to_client, in + pos, n)) != 0)
            goto Exit;
        pos += n;
        f->resp_parsed = 1;
        if (err == HPE_PAUSED) {
            http_parser_pause(&f->resp_parser, 0);
            if (f->app_event == RM__HTTP1_EV_MESSAGE_COMPLETE) {
                /* the parser is between messages again. After one that closes, a parser built with HTTP_PARSER_STRICT
                 * refuses whatever follows: the scanner stays off then, so as never to take what the parser would not
                 */
                f->resp_parsed = 0;
                if (!http_should_keep_alive(&f->resp_parser))
                    f->resp_nofast = 1;
                if ((ret = rm__http1_response_done(f, f->resp_parser.status_code, f->resp_parser.upgrade, to_app,
                                                   to_client)) != 0)
                    goto Exit;
            }
        } else if (err != HPE_OK || pos != len) {
            ret = -EPROTO;
            goto Exit;
        }
    }

Exit:
    if (ret != 0)
        finish(f, ret);
    return f->finished ? f->result : 0;
}

int rm_http1_filter_passthrough(const rm_http1_filter_t *f)
{
    return f->client_state == RM__HTTP1_CS_PASSTHROUGH && f->app_passthrough;
}

int rm_http1_filter_client_finished(const rm_http1_filter_t *f)
{
    return f->finished || f->client_state == RM__HTTP1_CS_DONE;
}

size_t rm_http1_filter_buffered(const rm_http1_filter_t *f)
{
    return f->head.len + f->held.len + f->pending_answers * RM__HTTP1_ANSWER_SIZE;
}
