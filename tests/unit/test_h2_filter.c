/* rm_h2_filter: a real nghttp2 client session and a real nghttp2 server session (the app), wired through the filter
 * in memory. The client's bytes go through rm_h2_filter_from_client to the app; the app's bytes go through
 * rm_h2_filter_from_app to the client. Hand-made frames and protocol errors: test_h2_filter_frames.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "h2_filter.h"
#include "h2_fixtures.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STREAMS 128
#define AUTHORITY   "app.example"

/* What the app saw of one stream. */
typedef struct {
    int32_t id;
    char headers[48 * 1024]; /* "name: value\n" each */
    char trailers[512];
    char path[256];
    size_t body_len;
    size_t resp_left, resp_len;
} app_stream_t;

/* What the client sent and received on one stream. */
typedef struct {
    int32_t id;
    char sent_headers[48 * 1024]; /* what the app must see, same format as app_stream_t.headers */
    int sent_headers_cut;
    const char *path;
    size_t body_total, body_left, data_sent;
    const nghttp2_nv *trailers;
    size_t num_trailers;
    char headers[1024];
    char body[64];
    size_t body_len, unconsumed;
    int headers_frames, data_frames, end_stream_on_headers, closed;
    uint32_t close_code;
} client_stream_t;

/* What the hook saw of one request. */
typedef struct {
    char method[16], path[256], host[64], headers[4096];
    int host_null;
    uint32_t stream_id;
    int http2, grpc;
} hook_call_t;

typedef struct {
    rm_h2_filter_t filter;
    nghttp2_session *client, *app;
    rm_bytebuf_t client_out, app_out, to_app, to_client;
    size_t chunk; /* bytes per filter call; 0: everything at once */
    int filter_ret, client_ret, app_ret;
    app_stream_t app_streams[MAX_STREAMS];
    size_t num_app_streams;
    client_stream_t client_streams[MAX_STREAMS];
    size_t num_client_streams;
    hook_call_t hook_calls[MAX_STREAMS];
    size_t num_hook_calls;
    size_t big_response;         /* body size of the app's answer to /big */
    uint8_t app_saw_frame[8192]; /* per stream ID: the app received a frame of that stream */
} world_t;

static app_stream_t *app_stream(world_t *w, int32_t id, int create)
{
    for (size_t i = 0; i < w->num_app_streams; i++)
        if (w->app_streams[i].id == id)
            return &w->app_streams[i];
    if (!create)
        return NULL;
    assert_true(w->num_app_streams < MAX_STREAMS);
    app_stream_t *s = &w->app_streams[w->num_app_streams++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    return s;
}

static client_stream_t *client_stream(world_t *w, int32_t id)
{
    for (size_t i = 0; i < w->num_client_streams; i++)
        if (w->client_streams[i].id == id)
            return &w->client_streams[i];
    return NULL;
}

/* ---- the policy hook: denies paths containing "deny" and requests with an x-deny field ---- */

static rm_http_verdict_t decide(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    (void)out;
    world_t *w = ctx;
    hook_call_t *c;
    int deny = 0;

    assert_true(w->num_hook_calls < MAX_STREAMS);
    c = &w->hook_calls[w->num_hook_calls++];
    memset(c, 0, sizeof(*c));
    snprintf(c->method, sizeof(c->method), "%.*s", (int)req->method_len, req->method);
    snprintf(c->path, sizeof(c->path), "%.*s", (int)req->path_len, req->path);
    c->host_null = req->host == NULL;
    if (req->host != NULL)
        snprintf(c->host, sizeof(c->host), "%.*s", (int)req->host_len, req->host);
    for (size_t i = 0; i < req->num_headers; i++) {
        const rm_http_header_t *h = &req->headers[i];
        try_append_field(c->headers, sizeof(c->headers), (const uint8_t *)h->name, h->name_len,
                         (const uint8_t *)h->value, h->value_len < 200 ? h->value_len : 200);
        if (h->name_len == 6 && memcmp(h->name, "x-deny", 6) == 0)
            deny = 1;
    }
    c->stream_id = req->stream_id;
    c->http2 = req->http2;
    c->grpc = req->grpc;
    if (memmem(req->path, req->path_len, "deny", 4) != NULL)
        deny = 1;
    return deny ? RM_HTTP_DENY : RM_HTTP_ALLOW;
}

/* ---- the app: answers every request once it has ended ---- */

static ssize_t app_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
    world_t *w = user;
    assert_int_equal(rm_bytebuf_append(&w->app_out, data, len), 0);
    return (ssize_t)len;
}

static int app_on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *user)
{
    world_t *w = user;
    assert_true(hd->stream_id < (int32_t)sizeof(w->app_saw_frame));
    w->app_saw_frame[hd->stream_id] = 1;
    return 0;
}

static int app_on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        app_stream(user, frame->hd.stream_id, 1);
    return 0;
}

static int app_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t name_len,
                         const uint8_t *value, size_t value_len, uint8_t flags, void *user)
{
    app_stream_t *st = app_stream(user, frame->hd.stream_id, 0);
    assert_non_null(st);
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
        append_field(st->trailers, sizeof(st->trailers), name, name_len, value, value_len);
        return 0;
    }
    append_field(st->headers, sizeof(st->headers), name, name_len, value, value_len);
    if (name_len == 5 && memcmp(name, ":path", 5) == 0)
        snprintf(st->path, sizeof(st->path), "%.*s", (int)value_len, (const char *)value);
    return 0;
}

static int app_on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                       void *user)
{
    app_stream_t *st = app_stream(user, stream_id, 0);
    assert_non_null(st);
    st->body_len += len;
    return 0;
}

static ssize_t app_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
                             nghttp2_data_source *source, void *user)
{
    app_stream_t *st = source->ptr;
    size_t n;

    if (st->resp_len != 0) { /* /big: a pattern */
        n = st->resp_left < length ? st->resp_left : length;
        memset(buf, 'b', n);
    } else {
        char text[300];
        int len = snprintf(text, sizeof(text), "ok %s %zu", st->path, st->body_len);
        n = (size_t)len;
        assert_true(n <= length);
        memcpy(buf, text, n);
        st->resp_left = n;
    }
    st->resp_left -= n;
    if (st->resp_left == 0)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void trace_value(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "trace=%.20s;%.20s;%.20s;%.20s;%.60s", path, path, path, path,
             "0123456789012345678901234567890123456789012345678901234567890123456789");
}

static int app_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    world_t *w = user;
    app_stream_t *st;

    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
        return 0;
    st = app_stream(w, frame->hd.stream_id, 0);
    assert_non_null(st);
    /* The same fields in every response (so the app's encoder indexes them) and large ones that change (so its
     * table fills up and evicts: a client decoder whose table differs in size or content would decode wrongly). */
    char trace[160];
    trace_value(trace, sizeof(trace), st->path);
    nghttp2_nv nva[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"x-app-server", (uint8_t *)"ringmesh-test-app/1.0", 12, 21, 0},
        {(uint8_t *)"x-app-path", (uint8_t *)st->path, 10, strlen(st->path), 0},
        {(uint8_t *)"cache-control", (uint8_t *)"private, max-age=0", 13, 18, 0},
        {(uint8_t *)"x-app-trace", (uint8_t *)trace, 11, strlen(trace), 0},
    };
    nghttp2_data_provider body = {.source.ptr = st, .read_callback = app_read_body};
    if (strcmp(st->path, "/big") == 0)
        st->resp_left = st->resp_len = w->big_response;
    assert_int_equal(nghttp2_submit_response(s, frame->hd.stream_id, nva, sizeof(nva) / sizeof(nva[0]), &body), 0);
    return 0;
}

/* ---- the client ---- */

static ssize_t client_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
    world_t *w = user;
    assert_int_equal(rm_bytebuf_append(&w->client_out, data, len), 0);
    return (ssize_t)len;
}

static int client_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t name_len,
                            const uint8_t *value, size_t value_len, uint8_t flags, void *user)
{
    client_stream_t *st = client_stream(user, frame->hd.stream_id);
    assert_non_null(st);
    append_field(st->headers, sizeof(st->headers), name, name_len, value, value_len);
    return 0;
}

static int client_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    client_stream_t *st;
    if (frame->hd.stream_id == 0)
        return 0;
    st = client_stream(user, frame->hd.stream_id);
    assert_non_null(st);
    if (frame->hd.type == NGHTTP2_HEADERS) {
        st->headers_frames++;
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0)
            st->end_stream_on_headers = 1;
    } else if (frame->hd.type == NGHTTP2_DATA) {
        st->data_frames++;
    }
    return 0;
}

static int client_on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                          void *user)
{
    client_stream_t *st = client_stream(user, stream_id);
    assert_non_null(st);
    if (st->body_len + len < sizeof(st->body))
        memcpy(st->body + st->body_len, data, len);
    st->body_len += len;
    st->unconsumed += len;
    return 0;
}

static int client_on_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *user)
{
    client_stream_t *st = client_stream(user, stream_id);
    if (st != NULL) {
        st->closed = 1;
        st->close_code = error_code;
    }
    return 0;
}

static int client_on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    if (frame->hd.type == NGHTTP2_DATA) {
        client_stream_t *st = client_stream(user, frame->hd.stream_id);
        assert_non_null(st);
        st->data_sent += frame->hd.length;
    }
    return 0;
}

static ssize_t client_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                                uint32_t *data_flags, nghttp2_data_source *source, void *user)
{
    client_stream_t *st = source->ptr;
    size_t n = st->body_left < length ? st->body_left : length;

    memset(buf, 'q', n);
    st->body_left -= n;
    if (st->body_left == 0) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->num_trailers != 0) {
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            assert_int_equal(nghttp2_submit_trailer(s, stream_id, st->trailers, st->num_trailers), 0);
        }
    }
    return (ssize_t)n;
}

/* ---- the world ---- */

typedef struct {
    const nghttp2_settings_entry *app_settings;
    size_t num_app_settings;
    const nghttp2_settings_entry *client_settings;
    size_t num_client_settings;
    int32_t client_window;       /* connection window the client grants at the start (0: the initial 65535) */
    size_t client_deflate_table; /* the client's HPACK encoder's own limit (0: nghttp2's 4096) */
} world_opts_t;

static world_t *world_new(const world_opts_t *opts)
{
    static const world_opts_t defaults = {.client_window = 1 << 20};
    world_t *w = calloc(1, sizeof(*w));
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;

    if (opts == NULL)
        opts = &defaults;
    assert_non_null(w);
    assert_int_equal(rm_h2_filter_init(&w->filter, decide, NULL, w), 0);

    assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_send_callback(cbs, app_send);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, app_on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, app_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, app_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, app_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, app_on_frame_recv);
    assert_int_equal(nghttp2_session_server_new(&w->app, cbs, w), 0);
    nghttp2_session_callbacks_del(cbs);
    assert_int_equal(nghttp2_submit_settings(w->app, 0, opts->app_settings, opts->num_app_settings), 0);

    assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_send_callback(cbs, client_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, client_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, client_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, client_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, client_on_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, client_on_frame_send);
    assert_int_equal(nghttp2_option_new(&opt), 0);
    nghttp2_option_set_max_send_header_block_length(opt, 1 << 20); /* the filter's limit is the one under test */
    /* Window is given back only after a whole mem_recv, so a peer that sends past the window is caught. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (opts->client_deflate_table != 0)
        nghttp2_option_set_max_deflate_dynamic_table_size(opt, opts->client_deflate_table);
    assert_int_equal(nghttp2_session_client_new2(&w->client, cbs, w, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    assert_int_equal(nghttp2_submit_settings(w->client, 0, opts->client_settings, opts->num_client_settings), 0);
    if (opts->client_window != 0)
        assert_int_equal(nghttp2_session_set_local_window_size(w->client, 0, 0, opts->client_window), 0);
    return w;
}

static void world_free(world_t *w)
{
    nghttp2_session_del(w->client);
    nghttp2_session_del(w->app);
    rm_h2_filter_dispose(&w->filter);
    rm_bytebuf_free(&w->client_out);
    rm_bytebuf_free(&w->app_out);
    rm_bytebuf_free(&w->to_app);
    rm_bytebuf_free(&w->to_client);
    free(w);
}

/* Runs both sessions and the filter until nothing moves. */
static void pump(world_t *w)
{
    for (int round = 0; round < 100000; round++) {
        int moved = 0;
        if (w->client_ret == 0 && nghttp2_session_want_write(w->client))
            w->client_ret = nghttp2_session_send(w->client);
        if (w->client_out.len != 0) {
            size_t step = w->chunk != 0 ? w->chunk : w->client_out.len;
            for (size_t off = 0; off < w->client_out.len && w->filter_ret == 0; off += step) {
                size_t n = w->client_out.len - off < step ? w->client_out.len - off : step;
                w->filter_ret =
                    rm_h2_filter_from_client(&w->filter, w->client_out.base + off, n, &w->to_app, &w->to_client);
            }
            w->client_out.len = 0;
            moved = 1;
        }
        if (w->to_app.len != 0) {
            if (w->app_ret == 0) {
                ssize_t n = nghttp2_session_mem_recv(w->app, w->to_app.base, w->to_app.len);
                if (n < 0)
                    w->app_ret = (int)n;
            }
            w->to_app.len = 0;
            moved = 1;
        }
        if (w->app_ret == 0 && nghttp2_session_want_write(w->app))
            w->app_ret = nghttp2_session_send(w->app);
        if (w->app_out.len != 0) {
            size_t step = w->chunk != 0 ? w->chunk : w->app_out.len;
            for (size_t off = 0; off < w->app_out.len && w->filter_ret == 0; off += step) {
                size_t n = w->app_out.len - off < step ? w->app_out.len - off : step;
                w->filter_ret = rm_h2_filter_from_app(&w->filter, w->app_out.base + off, n, &w->to_client);
            }
            w->app_out.len = 0;
            moved = 1;
        }
        if (w->to_client.len != 0) {
            if (w->client_ret == 0) {
                ssize_t n = nghttp2_session_mem_recv(w->client, w->to_client.base, w->to_client.len);
                if (n < 0)
                    w->client_ret = (int)n;
                for (size_t i = 0; i < w->num_client_streams && w->client_ret == 0; i++) {
                    client_stream_t *st = &w->client_streams[i];
                    if (st->unconsumed != 0)
                        w->client_ret = nghttp2_session_consume(w->client, st->id, st->unconsumed);
                    st->unconsumed = 0;
                }
            }
            w->to_client.len = 0;
            moved = 1;
        }
        if (!moved && (w->client_ret != 0 || !nghttp2_session_want_write(w->client)) &&
            (w->app_ret != 0 || !nghttp2_session_want_write(w->app)))
            break;
    }
    assert_int_equal(w->filter_ret, 0);
    assert_int_equal(w->client_ret, 0);
    assert_int_equal(w->app_ret, 0);
}

static int32_t submit(world_t *w, const char *method, const char *path, const nghttp2_nv *extra, size_t num_extra,
                      size_t body_len, const nghttp2_nv *trailers, size_t num_trailers)
{
    nghttp2_nv nva[64];
    size_t n = 0;
    client_stream_t *st;
    nghttp2_data_provider body;

    assert_true(num_extra + 4 <= sizeof(nva) / sizeof(nva[0]));
    assert_true(w->num_client_streams < MAX_STREAMS);
    st = &w->client_streams[w->num_client_streams];
    memset(st, 0, sizeof(*st));
    nva[n++] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0};
    nva[n++] = (nghttp2_nv){(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0};
    nva[n++] = (nghttp2_nv){(uint8_t *)":authority", (uint8_t *)AUTHORITY, 10, sizeof(AUTHORITY) - 1, 0};
    nva[n++] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0};
    for (size_t i = 0; i < num_extra; i++)
        nva[n++] = extra[i];
    for (size_t i = 0; i < n && !st->sent_headers_cut; i++)
        if (try_append_field(st->sent_headers, sizeof(st->sent_headers), nva[i].name, nva[i].namelen, nva[i].value,
                             nva[i].valuelen) != 0)
            st->sent_headers_cut = 1; /* too large to compare: the request must not reach the app anyway */
    st->path = path;
    st->body_total = st->body_left = body_len;
    st->trailers = trailers;
    st->num_trailers = num_trailers;
    body.source.ptr = st;
    body.read_callback = client_read_body;
    st->id = nghttp2_submit_request(w->client, NULL, nva, n, body_len != 0 || num_trailers != 0 ? &body : NULL, NULL);
    assert_true(st->id > 0);
    w->num_client_streams++;
    return st->id;
}

#define NVS(n, v)                                                                                                      \
    {                                                                                                                  \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                                                \
    }

static void assert_allowed(world_t *w, int32_t id, size_t body_len)
{
    client_stream_t *st = client_stream(w, id);
    app_stream_t *as = app_stream(w, id, 0);
    char expect[1024], trace[160];

    assert_non_null(st);
    assert_non_null(as);
    assert_false(st->sent_headers_cut);
    assert_string_equal(as->headers, st->sent_headers); /* the app decoded exactly what the client sent */
    assert_int_equal(as->body_len, body_len);
    trace_value(trace, sizeof(trace), st->path);
    snprintf(expect, sizeof(expect),
             ":status: 200\nx-app-server: ringmesh-test-app/1.0\nx-app-path: %s\ncache-control: private, "
             "max-age=0\nx-app-trace: %s\n",
             st->path, trace);
    assert_string_equal(st->headers, expect); /* the client decoded exactly what the app sent */
    snprintf(expect, sizeof(expect), "ok %s %zu", st->path, body_len);
    assert_int_equal(st->body_len, strlen(expect));
    assert_memory_equal(st->body, expect, st->body_len);
    assert_true(st->closed);
    assert_int_equal(st->close_code, NGHTTP2_NO_ERROR);
}

static void assert_denied_403(world_t *w, int32_t id)
{
    client_stream_t *st = client_stream(w, id);
    assert_non_null(st);
    assert_null(app_stream(w, id, 0));
    assert_false(w->app_saw_frame[id]); /* not a single frame of the stream reached the app */
    assert_string_equal(st->headers, ":status: 403\ncontent-type: text/plain\ncontent-length: 19\n");
    assert_int_equal(st->body_len, 19);
    assert_memory_equal(st->body, "RBAC: access denied", 19);
    assert_int_equal(st->headers_frames, 1);
    assert_int_equal(st->end_stream_on_headers, 0);
    assert_int_equal(st->data_frames, 1);
    assert_true(st->closed);
    assert_int_equal(st->close_code, NGHTTP2_NO_ERROR);
}

static void assert_denied_grpc(world_t *w, int32_t id)
{
    client_stream_t *st = client_stream(w, id);
    assert_non_null(st);
    assert_null(app_stream(w, id, 0));
    assert_false(w->app_saw_frame[id]); /* not a single frame of the stream reached the app */
    assert_string_equal(st->headers,
                        ":status: 200\ncontent-type: application/grpc\ngrpc-status: 7\ngrpc-message: RBAC: access "
                        "denied\n");
    assert_int_equal(st->headers_frames, 1); /* trailers-only: one HEADERS frame ... */
    assert_int_equal(st->end_stream_on_headers, 1);
    assert_int_equal(st->data_frames, 0); /* ... and nothing else */
    assert_true(st->closed);
    assert_int_equal(st->close_code, NGHTTP2_NO_ERROR);
}

/* ---- tests ---- */

static void test_sniff(void **state)
{
    const char *magic = NGHTTP2_CLIENT_MAGIC;
    assert_int_equal(rm_h2_filter_sniff((const uint8_t *)magic, 24), 1);
    assert_int_equal(rm_h2_filter_sniff((const uint8_t *)magic, 10), -EAGAIN);
    assert_int_equal(rm_h2_filter_sniff((const uint8_t *)"GET / HTTP/1.1\r\n", 16), 0);
    assert_int_equal(rm_h2_filter_sniff((const uint8_t *)"PRI * HTTP/1.1", 14), 0);
}

static void test_allowed_get(void **state)
{
    world_t *w = world_new(NULL);
    static const nghttp2_nv extra[] = {NVS("user-agent", "test/1"), NVS("x-token", "guest"), NVS("x-custom", "a b"),
                                       NVS("x-token", "admin"), NVS("accept", "*/*")};
    int32_t id = submit(w, "GET", "/ok?x=1", extra, 5, 0, NULL, 0);

    pump(w);
    assert_allowed(w, id, 0);
    assert_int_equal(w->num_app_streams, 1);
    /* the hook saw the request as sent: a repeated field once per field, in order (the policy engine joins them) */
    assert_int_equal(w->num_hook_calls, 1);
    assert_string_equal(w->hook_calls[0].method, "GET");
    assert_string_equal(w->hook_calls[0].path, "/ok?x=1");
    assert_string_equal(w->hook_calls[0].host, AUTHORITY);
    assert_string_equal(w->hook_calls[0].headers,
                        "user-agent: test/1\nx-token: guest\nx-custom: a b\nx-token: admin\naccept: */*\n");
    assert_int_equal(w->hook_calls[0].stream_id, (uint32_t)id);
    assert_int_equal(w->hook_calls[0].http2, 1);
    assert_int_equal(w->hook_calls[0].grpc, 0);
    world_free(w);
}

/* With strip_mesh_fields (a ringmesh/h2 connection), the app gets every field but the ringmesh-* ones, in the
 * client's order, while the hook still sees them; without it they cross like any other field. */
static void test_mesh_fields_stripped(void **state)
{
    static const nghttp2_nv extra[] = {NVS("ringmesh-orig-proto", "HTTP/1.1"), NVS("x-keep", "1"),
                                       NVS("ringmesh-other", "forged"), NVS("accept", "*/*")};
    for (int strip = 0; strip <= 1; strip++) {
        world_t *w = world_new(NULL);
        if (strip)
            rm_h2_filter_strip_mesh_fields(&w->filter);
        int32_t id = submit(w, "GET", "/ok", extra, 4, 0, NULL, 0);
        pump(w);
        assert_int_equal(w->num_app_streams, 1);
        assert_int_equal(w->num_hook_calls, 1);
        assert_string_equal(w->hook_calls[0].headers,
                            "ringmesh-orig-proto: HTTP/1.1\nx-keep: 1\nringmesh-other: forged\naccept: */*\n");
        if (strip)
            assert_string_equal(app_stream(w, id, 0)->headers,
                                ":method: GET\n:scheme: http\n:authority: " AUTHORITY "\n:path: /ok\nx-keep: 1\n"
                                "accept: */*\n");
        else
            assert_allowed(w, id, 0);
        world_free(w);
    }
}

static void test_denied_get_gets_403(void **state)
{
    world_t *w = world_new(NULL);
    static const nghttp2_nv extra[] = {NVS("user-agent", "test/1")};
    int32_t denied = submit(w, "GET", "/deny/me", extra, 1, 0, NULL, 0);
    int32_t by_header;

    pump(w);
    assert_denied_403(w, denied);
    assert_int_equal(w->num_app_streams, 0);
    assert_int_equal(w->num_hook_calls, 1);

    /* the hook sees the header fields too; the connection still works afterwards */
    static const nghttp2_nv deny_field[] = {NVS("x-deny", "yes")};
    by_header = submit(w, "GET", "/fine", deny_field, 1, 0, NULL, 0);
    int32_t ok = submit(w, "GET", "/fine/too", extra, 1, 0, NULL, 0);
    pump(w);
    assert_denied_403(w, by_header);
    assert_allowed(w, ok, 0);
    assert_int_equal(w->num_app_streams, 1);
    assert_int_equal(w->num_hook_calls, 3);
    world_free(w);
}

static void test_denied_grpc_gets_permission_denied(void **state)
{
    world_t *w = world_new(NULL);
    static const nghttp2_nv grpc[] = {NVS("content-type", "application/grpc"), NVS("te", "trailers"),
                                      NVS("grpc-timeout", "5S")};
    static const nghttp2_nv grpc_proto[] = {NVS("content-type", "application/grpc+proto"), NVS("te", "trailers")};
    int32_t id = submit(w, "POST", "/pkg.Denied/deny", grpc, 3, 5 + 100, NULL, 0);
    int32_t id2 = submit(w, "POST", "/pkg.Denied/denyToo", grpc_proto, 2, 0, NULL, 0);
    int32_t ok = submit(w, "POST", "/pkg.Svc/Call", grpc, 3, 5 + 10, NULL, 0);

    pump(w);
    assert_denied_grpc(w, id);
    assert_denied_grpc(w, id2);
    assert_allowed(w, ok, 15);
    assert_int_equal(w->num_app_streams, 1); /* the app never saw the denied streams */
    assert_int_equal(w->num_hook_calls, 3);
    assert_int_equal(w->hook_calls[0].grpc, 1);
    assert_int_equal(w->hook_calls[1].grpc, 1);
    assert_string_equal(w->hook_calls[0].method, "POST");
    assert_string_equal(w->hook_calls[0].path, "/pkg.Denied/deny");
    world_free(w);
}

/* Many streams, allowed and denied in turn, with repeated fields (indexed by the client's encoder), fields that
 * change per request (so entries are evicted) and trailers, then more allowed requests: each one must reach the app
 * exactly as sent, and each response the client exactly as the app sent it. */
static void run_interleaved(world_t *w, int rounds)
{
    static char paths[MAX_STREAMS][64], values[MAX_STREAMS][64];
    static const char long_value[] = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
                                     "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";
    /* trailers with a value of their own each time: the client's encoder inserts them, on denied streams too */
    static nghttp2_nv trailers[MAX_STREAMS][2];
    static char checksums[MAX_STREAMS][32];
    int32_t ids[MAX_STREAMS];
    int kinds[MAX_STREAMS]; /* 0 allowed, 1 denied 403, 2 denied gRPC */
    size_t bodies[MAX_STREAMS];
    size_t n = 0, allowed = 0, base_streams = w->num_app_streams, base_calls = w->num_hook_calls;

    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < 12; i++, n++) {
            int kind = n % 3 == 1 ? 1 : n % 5 == 2 ? 2 : 0;
            nghttp2_nv extra[] = {
                NVS("user-agent", "ringmesh-test-client/1.0 (interleaved)"),
                NVS("x-tenant", "acme-corporation-production"),
                {(uint8_t *)"x-long", (uint8_t *)long_value, 6, sizeof(long_value) - 1 - (n % 7), 0},
                {(uint8_t *)"x-request-id", (uint8_t *)values[n], 12, 0, 0},
                kind == 2 ? (nghttp2_nv)NVS("content-type", "application/grpc")
                          : (nghttp2_nv)NVS("content-type", "text/plain"),
                NVS("authorization", "Bearer secret-token-never-indexed"),
            };
            snprintf(values[n], sizeof(values[n]), "req-%zu-%08zx", n, n * 2654435761u);
            extra[3].valuelen = strlen(values[n]);
            snprintf(paths[n], sizeof(paths[n]), kind != 0 ? "/deny/%zu" : "/ok/%zu", n);
            bodies[n] = n % 4 == 0 ? 0 : 100 * n;
            kinds[n] = kind;
            snprintf(checksums[n], sizeof(checksums[n]), "sum-%zu", n * 7919);
            trailers[n][0] =
                (nghttp2_nv){(uint8_t *)"x-checksum", (uint8_t *)checksums[n], 10, strlen(checksums[n]), 0};
            trailers[n][1] = (nghttp2_nv)NVS("x-trailer-static", "same-every-time");
            ids[n] =
                submit(w, "POST", paths[n], extra, 6, bodies[n], n % 4 == 3 ? trailers[n] : NULL, n % 4 == 3 ? 2 : 0);
        }
        pump(w);
    }
    for (size_t i = 0; i < 6; i++, n++) {
        nghttp2_nv extra[] = {NVS("user-agent", "ringmesh-test-client/1.0 (interleaved)"),
                              NVS("x-tenant", "acme-corporation-production")};
        snprintf(paths[n], sizeof(paths[n]), "/after/%zu", n);
        kinds[n] = 0;
        bodies[n] = 0;
        ids[n] = submit(w, "GET", paths[n], extra, 2, 0, NULL, 0);
    }
    pump(w);

    for (size_t i = 0; i < n; i++) {
        if (kinds[i] == 0) {
            allowed++;
            assert_allowed(w, ids[i], bodies[i]);
            if (i % 4 == 3 && i < n - 6) {
                char expect[128];
                snprintf(expect, sizeof(expect), "x-checksum: %s\nx-trailer-static: same-every-time\n", checksums[i]);
                assert_string_equal(app_stream(w, ids[i], 0)->trailers, expect);
            }
        } else if (kinds[i] == 1) {
            assert_denied_403(w, ids[i]);
        } else {
            assert_denied_grpc(w, ids[i]);
        }
    }
    assert_int_equal(w->num_app_streams - base_streams, allowed);
    assert_int_equal(w->num_hook_calls - base_calls, n);
}

static void test_interleaved_keeps_hpack_in_step(void **state)
{
    world_t *w = world_new(NULL);
    run_interleaved(w, 3);
    world_free(w);
}

/* The app shrinks its HPACK table to 0 (the filter's encoder must announce it) or grows it (the client's encoder
 * may then use more than 4096 bytes, which the filter's decoder must accept). */
static void test_app_header_table_size_followed(void **state)
{
    static const nghttp2_settings_entry zero[] = {{NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 0}};
    static const nghttp2_settings_entry small[] = {{NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 512}};
    static const nghttp2_settings_entry large[] = {{NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 65536}};
    const world_opts_t cases[] = {
        {.app_settings = zero, .num_app_settings = 1, .client_window = 1 << 20},
        {.app_settings = small, .num_app_settings = 1, .client_window = 1 << 20},
        {.app_settings = large, .num_app_settings = 1, .client_window = 1 << 20, .client_deflate_table = 65536},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        world_t *w = world_new(&cases[i]);
        run_interleaved(w, 2);
        world_free(w);
    }
}

/* Bodies of denied streams, more than the connection window in total, must not stall the connection: the filter
 * hands their window back. */
static void test_denied_large_bodies_hand_window_back(void **state)
{
    world_t *w = world_new(NULL);
    int32_t d1 = submit(w, "POST", "/deny/upload/1", NULL, 0, 60000, NULL, 0);
    pump(w);
    int32_t d2 = submit(w, "POST", "/deny/upload/2", NULL, 0, 60000, NULL, 0);
    pump(w);
    int32_t ok = submit(w, "POST", "/upload", NULL, 0, 60000, NULL, 0);
    pump(w);

    assert_denied_403(w, d1);
    assert_denied_403(w, d2);
    /* the client sent more than the initial connection window on streams the app never saw */
    assert_true(client_stream(w, d1)->data_sent + client_stream(w, d2)->data_sent > 65535);
    assert_allowed(w, ok, 60000);
    assert_int_equal(w->num_app_streams, 1);
    world_free(w);
}

/* Bodies sent in the same flight as the denied request's HEADERS, and a stream started after, all at once. */
static void test_denied_body_in_flight(void **state)
{
    world_t *w = world_new(NULL);
    int32_t d1 = submit(w, "PUT", "/deny/a", NULL, 0, 40000, NULL, 0);
    int32_t d2 = submit(w, "PUT", "/deny/b", NULL, 0, 40000, NULL, 0);
    int32_t ok = submit(w, "PUT", "/ok/c", NULL, 0, 40000, NULL, 0);
    pump(w);
    assert_denied_403(w, d1);
    assert_denied_403(w, d2);
    assert_allowed(w, ok, 40000);
    world_free(w);
}

static void test_bytes_one_at_a_time(void **state)
{
    world_t *w = world_new(NULL);
    static const nghttp2_nv grpc[] = {NVS("content-type", "application/grpc")};
    static const nghttp2_nv trailers[] = {NVS("x-checksum", "abc123")};
    w->chunk = 1;
    int32_t a = submit(w, "GET", "/ok/1", NULL, 0, 0, NULL, 0);
    int32_t b = submit(w, "GET", "/deny/2", NULL, 0, 0, NULL, 0);
    int32_t c = submit(w, "POST", "/pkg.S/deny", grpc, 1, 3000, NULL, 0);
    int32_t d = submit(w, "POST", "/ok/4", NULL, 0, 20000, trailers, 1);
    pump(w);
    assert_allowed(w, a, 0);
    assert_denied_403(w, b);
    assert_denied_grpc(w, c);
    assert_allowed(w, d, 20000);
    assert_string_equal(app_stream(w, d, 0)->trailers, "x-checksum: abc123\n");
    run_interleaved(w, 1);
    world_free(w);
}

/* A header block over 16384 bytes encoded: the filter forwards it as HEADERS + CONTINUATION. */
static void test_large_header_block_forwarded(void **state)
{
    world_t *w = world_new(NULL);
    static char values[8][5001];
    nghttp2_nv extra[8];
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 5000; j++)
            values[i][j] = (char)('!' + (j * 7 + i * 13) % 90); /* compresses poorly */
        values[i][5000] = 0;
        extra[i] = (nghttp2_nv){(uint8_t *)"x-big", (uint8_t *)values[i], 5, 5000, 0};
    }
    int32_t id = submit(w, "GET", "/ok/big-headers", extra, 8, 0, NULL, 0);
    pump(w);
    assert_allowed(w, id, 0);
    world_free(w);
}

/* Over RM_H2_FILTER_MAX_HEADER_LIST: 431 without asking the hook, and the connection goes on. */
static void test_oversized_headers_get_431(void **state)
{
    world_t *w = world_new(NULL);
    static char value[10001];
    nghttp2_nv extra[8];
    memset(value, 'v', 10000);
    for (int i = 0; i < 8; i++)
        extra[i] = (nghttp2_nv){(uint8_t *)"x-huge", (uint8_t *)value, 6, 10000, 0};
    static const nghttp2_nv small[] = {NVS("x-tenant", "acme-corporation-production")};
    int32_t big = submit(w, "GET", "/ok/huge", extra, 8, 0, NULL, 0);
    int32_t ok = submit(w, "GET", "/ok/after-huge", small, 1, 0, NULL, 0);
    pump(w);
    client_stream_t *st = client_stream(w, big);
    assert_string_equal(st->headers, ":status: 431\ncontent-length: 0\n");
    assert_int_equal(st->end_stream_on_headers, 1);
    assert_true(st->closed);
    assert_null(app_stream(w, big, 0));
    assert_false(w->app_saw_frame[big]);
    assert_allowed(w, ok, 0);
    assert_int_equal(w->num_hook_calls, 1);
    world_free(w);
}

/* A request the policy cannot judge safely is reset, without asking the hook. :authority and host that differ: */
static void test_malformed_request_reset(void **state)
{
    world_t *w = world_new(NULL);
    static const nghttp2_nv conflicting[] = {NVS("host", "other.example")};
    static const nghttp2_nv same[] = {NVS("host", "APP.example")};
    int32_t bad = submit(w, "GET", "/ok/conflict", conflicting, 1, 0, NULL, 0);
    int32_t good = submit(w, "GET", "/ok/same-host", same, 1, 0, NULL, 0);
    pump(w);
    client_stream_t *st = client_stream(w, bad);
    assert_true(st->closed);
    assert_int_equal(st->close_code, NGHTTP2_PROTOCOL_ERROR);
    assert_null(app_stream(w, bad, 0));
    assert_false(w->app_saw_frame[bad]);
    assert_allowed(w, good, 0);
    assert_int_equal(w->num_hook_calls, 1);
    assert_string_equal(w->hook_calls[0].host, "APP.example");
    world_free(w);
}

/* Without window to spare on the client's side (no connection WINDOW_UPDATE from it yet), the 403 goes without
 * body rather than risk the client's flow-control limit. */
static void test_no_client_window_403_without_body(void **state)
{
    world_opts_t opts = {.client_window = 0};
    world_t *w = world_new(&opts);
    int32_t id = submit(w, "GET", "/deny", NULL, 0, 0, NULL, 0);
    pump(w);
    client_stream_t *st = client_stream(w, id);
    assert_string_equal(st->headers, ":status: 403\ncontent-type: text/plain\ncontent-length: 0\n");
    assert_int_equal(st->end_stream_on_headers, 1);
    assert_int_equal(st->body_len, 0);
    assert_true(st->closed);
    assert_int_equal(st->close_code, NGHTTP2_NO_ERROR);
    world_free(w);
}

/* The 403 bodies use the client's connection window; the app must never be told of more window than the client
 * has left, or a response that fills the window would overrun it (the client would fail the connection). */
static void test_answer_bodies_never_overrun_client_window(void **state)
{
    static const nghttp2_settings_entry client_settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
    world_opts_t opts = {.client_settings = client_settings, .num_client_settings = 1, .client_window = 131072};
    world_t *w = world_new(&opts);
    int32_t denied[50], big;

    w->big_response = 400000;
    for (int i = 0; i < 50; i++)
        denied[i] = submit(w, "GET", "/deny", NULL, 0, 0, NULL, 0);
    pump(w);
    for (int i = 0; i < 50; i++)
        assert_denied_403(w, denied[i]);
    big = submit(w, "GET", "/big", NULL, 0, 0, NULL, 0);
    pump(w);
    client_stream_t *st = client_stream(w, big);
    assert_int_equal(st->body_len, 400000);
    assert_true(st->closed);
    assert_int_equal(st->close_code, NGHTTP2_NO_ERROR);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_allowed_get),
        cmocka_unit_test(test_mesh_fields_stripped),
        cmocka_unit_test(test_denied_get_gets_403),
        cmocka_unit_test(test_denied_grpc_gets_permission_denied),
        cmocka_unit_test(test_interleaved_keeps_hpack_in_step),
        cmocka_unit_test(test_app_header_table_size_followed),
        cmocka_unit_test(test_denied_large_bodies_hand_window_back),
        cmocka_unit_test(test_denied_body_in_flight),
        cmocka_unit_test(test_bytes_one_at_a_time),
        cmocka_unit_test(test_large_header_block_forwarded),
        cmocka_unit_test(test_oversized_headers_get_431),
        cmocka_unit_test(test_malformed_request_reset),
        cmocka_unit_test(test_no_client_window_403_without_body),
        cmocka_unit_test(test_answer_bodies_never_overrun_client_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
