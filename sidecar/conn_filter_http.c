/* The HTTP/1.1 and HTTP/2 filters (http1_filter.c, h2_filter.c) as connection filters (conn_filter.h). */
#include "conn_filter.h"
#include "h2_filter.h"
#include "http1_filter.h"

#include <errno.h>
#include <string.h>

_Static_assert(RM_CONN_FILTER_CLOSE == RM_HTTP1_FILTER_CLOSE, "the filters' closing answer is the table's");

/* Why a filter ended the exchange, in the words of its contract (http1_filter.h, h2_filter.h). */
static const char *http_reason(int http2, int r, int app)
{
    if (r == RM_HTTP1_FILTER_CLOSE)
        return "the answer to a denied request closes the connection (connection: close)";
    if (r == -EMSGSIZE)
        return "request head over 64 KiB or 100 header fields: answered 431";
    if (r == -ENOBUFS)
        return "answers to denied streams waited too long for a frame boundary of the app";
    if (r == -EPROTO && http2)
        return app ? "the app broke HTTP/2" : "the client broke HTTP/2 (frame, size or HPACK data): answered GOAWAY";
    if (r == -EPROTO)
        return app ? "the app sent a malformed response" : "malformed request (or request body): answered 400";
    return "the HTTP filter failed";
}

/* An HTTP/1.x request line ("METHOD target HTTP/1.x"). Needs the whole line before saying yes, so that a protocol
 * whose first word happens to look like a method is not taken for HTTP. */
static rm_conn_sniff_t http1_sniff(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n && i < 24 && p[i] >= 'A' && p[i] <= 'Z'; i++)
        ;
    /* all letters so far (at most 24): the byte after them decides, so that a method of 24 letters is judged the
     * same whether its first read ends on its last letter or later */
    if (i == n)
        return RM_CONN_SNIFF_NEED_MORE;
    if (i == 0 || p[i] != ' ')
        return RM_CONN_SNIFF_NO;
    const uint8_t *lf = memchr(p + i, '\n', n - i);
    if (lf == NULL)
        return RM_CONN_SNIFF_NEED_MORE;
    size_t line = (size_t)(lf - p);
    if (line > 0 && p[line - 1] == '\r')
        line--;
    if (line >= i + 11 && memcmp(p + line - 9, " HTTP/1.", 8) == 0) /* "... HTTP/1.x" */
        return RM_CONN_SNIFF_YES;
    return RM_CONN_SNIFF_NO;
}

static int http1_init(void *state, rm_http_decide_cb decide, rm_http_done_cb done, void *ctx)
{
    return rm_http1_filter_init(state, decide, done, ctx);
}

static void http1_end(void *state, int app_ended)
{
    rm_http1_filter_end(state, app_ended);
}

static void http1_set_path_normalization(void *state, rm_path_normalization_t mode)
{
    rm_http1_filter_set_path_normalization(state, mode);
}

static void http1_set_observe(void *state)
{
    rm_http1_filter_set_observe(state);
}

static int http1_from_client(void *state, const uint8_t *in, size_t len, rm_bytebuf_t *to_app, rm_bytebuf_t *to_client)
{
    return rm_http1_filter_from_client(state, in, len, to_app, to_client);
}

static int http1_from_app(void *state, const uint8_t *in, size_t len, rm_bytebuf_t *to_app, rm_bytebuf_t *to_client)
{
    return rm_http1_filter_from_app(state, in, len, to_app, to_client);
}

static const char *http1_reason(int result, int from_app)
{
    return http_reason(0, result, from_app);
}

static void http1_dispose(void *state)
{
    rm_http1_filter_dispose(state);
}

const rm_conn_filter_ops_t rm_conn_filter_http1 = {
    .name = "http1",
    .sniff = http1_sniff,
    .size = sizeof(rm_http1_filter_t),
    .init = http1_init,
    .set_path_normalization = http1_set_path_normalization,
    .set_observe = http1_set_observe,
    .from_client = http1_from_client,
    .from_app = http1_from_app,
    .reason = http1_reason,
    .end = http1_end,
    .dispose = http1_dispose,
};

/* The HTTP/2 connection preface. */
static rm_conn_sniff_t h2_sniff(const uint8_t *p, size_t n)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t m = n < sizeof(preface) - 1 ? n : sizeof(preface) - 1;
    if (memcmp(p, preface, m) != 0)
        return RM_CONN_SNIFF_NO;
    return m == sizeof(preface) - 1 ? RM_CONN_SNIFF_YES : RM_CONN_SNIFF_NEED_MORE;
}

static int h2_init(void *state, rm_http_decide_cb decide, rm_http_done_cb done, void *ctx)
{
    return rm_h2_filter_init(state, decide, done, ctx);
}

static void h2_end(void *state, int app_ended)
{
    (void)app_ended; /* HTTP/2 frames every response: the connection's end completes none */
    rm_h2_filter_end(state);
}

static void h2_set_path_normalization(void *state, rm_path_normalization_t mode)
{
    rm_h2_filter_set_path_normalization(state, mode);
}

static int h2_from_client(void *state, const uint8_t *in, size_t len, rm_bytebuf_t *to_app, rm_bytebuf_t *to_client)
{
    return rm_h2_filter_from_client(state, in, len, to_app, to_client);
}

/* HTTP/2 never sends the app anything because of what the app sent */
static int h2_from_app(void *state, const uint8_t *in, size_t len, rm_bytebuf_t *to_app, rm_bytebuf_t *to_client)
{
    return rm_h2_filter_from_app(state, in, len, to_client);
}

static const char *h2_reason(int result, int from_app)
{
    return http_reason(1, result, from_app);
}

static void h2_dispose(void *state)
{
    rm_h2_filter_dispose(state);
}

const rm_conn_filter_ops_t rm_conn_filter_http2 = {
    .name = "http2",
    .sniff = h2_sniff,
    .size = sizeof(rm_h2_filter_t),
    .init = h2_init,
    .set_path_normalization = h2_set_path_normalization,
    .from_client = h2_from_client,
    .from_app = h2_from_app,
    .reason = h2_reason,
    .end = h2_end,
    .dispose = h2_dispose,
};

/* At most one of them claims any bytes (the preface's first line is no HTTP/1.x request line): the order is free. */
const rm_conn_filter_ops_t *const rm_conn_filters[] = {&rm_conn_filter_http2, &rm_conn_filter_http1, NULL};
