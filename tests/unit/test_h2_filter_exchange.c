/* rm_h2_filter: every stream the hook saw is reported once when its exchange ends. A real nghttp2 client session
 * and a real nghttp2 server session (the app) talk through the filter in memory; the app answers by path. The app's
 * nghttp2 decoder reading the re-encoded blocks proves the HPACK contexts stay in step with the hook's fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "h2_filter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STREAMS 160
#define MAX_RECORDS 160

/* What the app saw of one stream and how it answers. */
typedef struct {
    int32_t id;
    char path[64];
    char headers[2048]; /* "name: value\n" each, as the app decoded them */
    size_t body_len;
    int grpc_code;   /* for /grpc...: the grpc-status to send */
    size_t resp_len; /* response body still to send */
    int trailers;    /* send grpc-status as trailers after the body */
    int answered;
} app_stream_t;

typedef struct {
    rm_h2_filter_t f;
    nghttp2_session *client, *app;
    rm_bytebuf_t to_app, to_client;
    app_stream_t streams[MAX_STREAMS];
    size_t num_streams;
    int hold;        /* the app answers /slow... only when the test says so */
    int app_answers; /* the filter may insert its own frames between the app's (refused streams) */
    const char *set_name[2], *set_value[2];
    size_t num_set;
    uint64_t next_cookie;
    uint32_t cookie_stream[MAX_RECORDS]; /* stream each cookie was given for */
    rm_http_exchange_t records[MAX_RECORDS];
    size_t num_records;
    size_t client_body[MAX_STREAMS]; /* response body bytes the client received, by stream index (id / 2) */
} world_t;

static app_stream_t *app_stream(world_t *w, int32_t id)
{
    for (size_t i = 0; i < w->num_streams; i++)
        if (w->streams[i].id == id)
            return &w->streams[i];
    assert_true(w->num_streams < MAX_STREAMS);
    app_stream_t *s = &w->streams[w->num_streams++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    return s;
}

/* ---- the hook and the reports ---- */

static rm_http_verdict_t decide(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    world_t *w = ctx;
    assert_int_equal(out->cookie, 0);
    assert_int_equal(out->num_set, 0);
    out->cookie = ++w->next_cookie;
    assert_true(out->cookie < MAX_RECORDS);
    w->cookie_stream[out->cookie] = req->stream_id;
    for (size_t i = 0; i < w->num_set; i++) {
        out->set[i].name = w->set_name[i];
        out->set[i].name_len = strlen(w->set_name[i]);
        out->set[i].value = w->set_value[i];
        out->set[i].value_len = strlen(w->set_value[i]);
    }
    out->num_set = w->num_set;
    return req->path_len >= 5 && memcmp(req->path, "/deny", 5) == 0 ? RM_HTTP_DENY : RM_HTTP_ALLOW;
}

static void done(void *ctx, const rm_http_exchange_t *ex)
{
    world_t *w = ctx;
    assert_true(w->num_records < MAX_RECORDS);
    assert_true(ex->cookie >= 1 && ex->cookie <= w->next_cookie);
    assert_int_equal(ex->stream_id, w->cookie_stream[ex->cookie]);
    for (size_t i = 0; i < w->num_records; i++)
        assert_true(w->records[i].cookie != ex->cookie); /* once per exchange */
    w->records[w->num_records++] = *ex;
}

static const rm_http_exchange_t *record_of(world_t *w, uint32_t stream)
{
    for (size_t i = 0; i < w->num_records; i++)
        if (w->records[i].stream_id == stream)
            return &w->records[i];
    fail_msg("no report for stream %u", stream);
    return NULL;
}

static void assert_record(const rm_http_exchange_t *r, unsigned status, int grpc, uint64_t req_bytes,
                          uint64_t resp_bytes, int by_proxy, int complete)
{
    assert_int_equal(r->status, status);
    assert_int_equal(r->grpc_status, grpc);
    assert_int_equal(r->request_bytes, req_bytes);
    assert_int_equal(r->response_bytes, resp_bytes);
    assert_int_equal(r->answered_by_proxy, by_proxy);
    assert_int_equal(r->complete, complete);
}

/* ---- the app (nghttp2 server) ---- */

static ssize_t app_read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                             nghttp2_data_source *source, void *user)
{
    app_stream_t *s = source->ptr;
    size_t n = s->resp_len < len ? s->resp_len : len;
    (void)user;
    memset(buf, 'r', n);
    s->resp_len -= n;
    if (s->resp_len == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->trailers) {
            char code[8];
            snprintf(code, sizeof(code), "%d", s->grpc_code);
            nghttp2_nv tr[] = {{(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), NGHTTP2_NV_FLAG_NONE},
                               {(uint8_t *)"grpc-message", (uint8_t *)"m", 12, 1, NGHTTP2_NV_FLAG_NONE}};
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            assert_int_equal(nghttp2_submit_trailer(session, id, tr, 2), 0);
        }
    }
    return (ssize_t)n;
}

#define NV(n, v)                                                                                                       \
    {                                                                                                                  \
        (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE                                     \
    }

/* The answers, by path: /ok/N (200, N body bytes), /nf (404, no body), /grpc/C (gRPC, code C in trailers),
 * /grpconly/C (trailers-only), /reset (RST_STREAM), /partial (200 headers, then nothing). */
static void app_answer(world_t *w, app_stream_t *s)
{
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = app_read_body};
    char len_buf[16], code[8];

    s->answered = 1;
    if (strncmp(s->path, "/ok/", 4) == 0) {
        s->resp_len = (size_t)atoi(s->path + 4);
        nghttp2_nv nv[] = {NV(":status", "200"), NV("x-app", "a")};
        assert_int_equal(nghttp2_submit_response(w->app, s->id, nv, 2, s->resp_len != 0 ? &prd : NULL), 0);
    } else if (strcmp(s->path, "/nf") == 0) {
        nghttp2_nv nv[] = {NV(":status", "404")};
        assert_int_equal(nghttp2_submit_response(w->app, s->id, nv, 1, NULL), 0);
    } else if (strncmp(s->path, "/grpc/", 6) == 0) {
        s->grpc_code = atoi(s->path + 6);
        s->resp_len = 7;
        s->trailers = 1;
        nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
        assert_int_equal(nghttp2_submit_response(w->app, s->id, nv, 2, &prd), 0);
    } else if (strncmp(s->path, "/grpconly/", 10) == 0) {
        snprintf(code, sizeof(code), "%d", atoi(s->path + 10));
        nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc"), NV("grpc-status", code)};
        assert_int_equal(nghttp2_submit_response(w->app, s->id, nv, 3, NULL), 0);
    } else if (strcmp(s->path, "/reset") == 0) {
        assert_int_equal(nghttp2_submit_rst_stream(w->app, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR), 0);
    } else if (strcmp(s->path, "/partial") == 0) {
        snprintf(len_buf, sizeof(len_buf), "%d", 100);
        nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", len_buf)};
        assert_int_equal(nghttp2_submit_headers(w->app, NGHTTP2_FLAG_NONE, s->id, NULL, nv, 2, NULL), 0);
    } else {
        fail_msg("no answer for %s", s->path);
    }
}

static int app_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                         const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    world_t *w = user;
    app_stream_t *s = app_stream(w, frame->hd.stream_id);
    size_t off = strlen(s->headers);
    (void)session, (void)flags;
    if (namelen == 5 && memcmp(name, ":path", 5) == 0 && valuelen < sizeof(s->path))
        memcpy(s->path, value, valuelen);
    snprintf(s->headers + off, sizeof(s->headers) - off, "%.*s: %.*s\n", (int)namelen, name, (int)valuelen, value);
    return 0;
}

static int app_on_data(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
    (void)session, (void)flags, (void)data;
    app_stream((world_t *)user, id)->body_len += len;
    return 0;
}

static int app_on_frame(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    world_t *w = user;
    (void)session;
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        app_stream_t *s = app_stream(w, frame->hd.stream_id);
        if (!s->answered && !(w->hold && strncmp(s->path, "/slow", 5) == 0))
            app_answer(w, s);
    }
    return 0;
}

/* ---- the client (nghttp2 client) ---- */

static int client_on_data(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                          void *user)
{
    (void)session, (void)flags, (void)data;
    ((world_t *)user)->client_body[(size_t)id / 2 % MAX_STREAMS] += len;
    return 0;
}

typedef struct {
    size_t left;
} req_body_t;

static ssize_t client_read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                                nghttp2_data_source *source, void *user)
{
    req_body_t *b = source->ptr;
    size_t n = b->left < len ? b->left : len;
    (void)session, (void)id, (void)user;
    memset(buf, 'q', n);
    b->left -= n;
    if (b->left == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Sends a request; `body` bytes of body (POST) or none (GET). Returns the stream ID. */
static int32_t request(world_t *w, const char *path, req_body_t *body, const nghttp2_nv *extra, size_t num_extra)
{
    nghttp2_nv nv[8] = {NV(":method", body != NULL ? "POST" : "GET"), NV(":scheme", "http"), NV(":path", path),
                        NV(":authority", "app.example")};
    size_t n = 4;
    for (size_t i = 0; i < num_extra; i++)
        nv[n++] = extra[i];
    nghttp2_data_provider prd = {.source.ptr = body, .read_callback = client_read_body};
    int32_t id = nghttp2_submit_request(w->client, NULL, nv, n, body != NULL ? &prd : NULL, NULL);
    assert_true(id > 0);
    return id;
}

/* Moves bytes both ways through the filter until neither end has anything to say (bounded). */
static void pump(world_t *w)
{
    for (int round = 0; round < 1000; round++) {
        const uint8_t *data;
        ssize_t n;
        int moved = 0;
        while ((n = nghttp2_session_mem_send(w->client, &data)) > 0) {
            assert_int_equal(rm_h2_filter_from_client(&w->f, data, (size_t)n, &w->to_app, &w->to_client), 0);
            moved = 1;
        }
        assert_true(n == 0);
        if (w->to_app.len != 0) {
            assert_int_equal(nghttp2_session_mem_recv(w->app, w->to_app.base, w->to_app.len), (ssize_t)w->to_app.len);
            w->to_app.len = 0;
            moved = 1;
        }
        while ((n = nghttp2_session_mem_send(w->app, &data)) > 0) {
            size_t before = w->to_client.len;
            assert_int_equal(rm_h2_filter_from_app(&w->f, data, (size_t)n, &w->to_client), 0);
            if (!w->app_answers) { /* the app's bytes pass unchanged */
                assert_int_equal(w->to_client.len - before, (size_t)n);
                assert_memory_equal(w->to_client.base + before, data, (size_t)n);
            }
            moved = 1;
        }
        assert_true(n == 0);
        if (w->to_client.len != 0) {
            assert_int_equal(nghttp2_session_mem_recv(w->client, w->to_client.base, w->to_client.len),
                             (ssize_t)w->to_client.len);
            w->to_client.len = 0;
            moved = 1;
        }
        if (!moved)
            return;
    }
    fail_msg("the sessions never went quiet");
}

static world_t *world_new(void)
{
    world_t *w = calloc(1, sizeof(*w));
    nghttp2_session_callbacks *cb;
    assert_non_null(w);
    assert_int_equal(rm_h2_filter_init(&w->f, decide, done, w), 0);
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, app_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, app_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, app_on_frame);
    assert_int_equal(nghttp2_session_server_new(&w->app, cb, w), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, client_on_data);
    assert_int_equal(nghttp2_session_client_new(&w->client, cb, w), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(w->client, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    nghttp2_settings_entry s[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 200}};
    assert_int_equal(nghttp2_submit_settings(w->app, NGHTTP2_FLAG_NONE, s, 1), 0);
    return w; /* nghttp2's client sends the preface with its first bytes */
}

static void world_free(world_t *w)
{
    nghttp2_session_del(w->client);
    nghttp2_session_del(w->app);
    rm_h2_filter_dispose(&w->f);
    rm_bytebuf_free(&w->to_app);
    rm_bytebuf_free(&w->to_client);
    free(w);
}

/* ---- the tests ---- */

/* Statuses and body bytes both ways, padding excluded; a response without body; the app's HPACK state (x-app is
 * indexed after the first response) followed across responses. */
static void test_statuses_and_bytes(void **state)
{
    (void)state;
    world_t *w = world_new();
    req_body_t body = {1000};
    int32_t a = request(w, "/ok/300", &body, NULL, 0);
    pump(w);
    int32_t b = request(w, "/nf", NULL, NULL, 0), c = request(w, "/ok/20000", NULL, NULL, 0);
    pump(w);
    assert_int_equal(w->num_records, 3);
    assert_record(record_of(w, (uint32_t)a), 200, -1, 1000, 300, 0, 1);
    assert_record(record_of(w, (uint32_t)b), 404, -1, 0, 0, 0, 1);
    assert_record(record_of(w, (uint32_t)c), 200, -1, 0, 20000, 0, 1);
    assert_int_equal(w->client_body[(size_t)c / 2], 20000);
    rm_h2_filter_end(&w->f);
    assert_int_equal(w->num_records, 3);
    world_free(w);
}

/* grpc-status in trailers and in a trailers-only response, many times over (the app's encoder indexes it). */
static void test_grpc_status_headers_and_trailers(void **state)
{
    (void)state;
    world_t *w = world_new();
    nghttp2_nv ct[] = {NV("content-type", "application/grpc")};
    for (int i = 0; i < 5; i++) {
        char p1[32], p2[32];
        snprintf(p1, sizeof(p1), "/grpc/%d", i);
        snprintf(p2, sizeof(p2), "/grpconly/%d", 10 + i);
        req_body_t body = {5};
        int32_t x = request(w, p1, &body, ct, 1), y = request(w, p2, NULL, ct, 1);
        pump(w);
        assert_record(record_of(w, (uint32_t)x), 200, i, 5, 7, 0, 1);
        assert_record(record_of(w, (uint32_t)y), 200, 10 + i, 0, 0, 0, 1);
    }
    assert_int_equal(w->num_records, 10);
    world_free(w);
}

/* Concurrent streams answered out of order are each reported when their own response ends. */
static void test_concurrent_out_of_order(void **state)
{
    (void)state;
    world_t *w = world_new();
    w->hold = 1;
    int32_t s1 = request(w, "/slow1", NULL, NULL, 0), s2 = request(w, "/slow2", NULL, NULL, 0),
            s3 = request(w, "/slow3", NULL, NULL, 0);
    pump(w);
    assert_int_equal(w->num_records, 0);
    const int32_t order[3] = {s3, s1, s2};
    const char *const statuses[3] = {"201", "202", "203"};
    for (int i = 0; i < 3; i++) {
        nghttp2_nv nv[] = {NV(":status", statuses[i])};
        assert_int_equal(nghttp2_submit_response(w->app, order[i], nv, 1, NULL), 0);
        pump(w);
        assert_int_equal(w->num_records, (size_t)i + 1);
        assert_int_equal(w->records[i].stream_id, (uint32_t)order[i]);
        assert_record(&w->records[i], (unsigned)(201 + i), -1, 0, 0, 0, 1);
    }
    world_free(w);
}

/* Streams reset by either end are reported incomplete, once. */
static void test_resets(void **state)
{
    (void)state;
    world_t *w = world_new();
    int32_t a = request(w, "/reset", NULL, NULL, 0);
    pump(w);
    assert_int_equal(w->num_records, 1);
    assert_record(record_of(w, (uint32_t)a), 0, -1, 0, 0, 0, 0);
    w->hold = 1;
    req_body_t body = {100};
    int32_t b = request(w, "/slow", &body, NULL, 0);
    pump(w);
    assert_int_equal(nghttp2_submit_rst_stream(w->client, NGHTTP2_FLAG_NONE, b, NGHTTP2_CANCEL), 0);
    pump(w);
    assert_int_equal(w->num_records, 2);
    assert_record(record_of(w, (uint32_t)b), 0, -1, 100, 0, 0, 0);
    rm_h2_filter_end(&w->f);
    assert_int_equal(w->num_records, 2);
    world_free(w);
}

/* The connection ends in the middle of a response: reported incomplete with the status that came, once. */
static void test_end_mid_response(void **state)
{
    (void)state;
    world_t *w = world_new();
    int32_t a = request(w, "/partial", NULL, NULL, 0), b = request(w, "/ok/5", NULL, NULL, 0);
    pump(w);
    assert_int_equal(w->num_records, 1);
    assert_record(record_of(w, (uint32_t)b), 200, -1, 0, 5, 0, 1);
    rm_h2_filter_end(&w->f);
    assert_int_equal(w->num_records, 2);
    assert_record(record_of(w, (uint32_t)a), 200, -1, 0, 0, 0, 0);
    rm_h2_filter_end(&w->f);
    assert_int_equal(w->num_records, 2);
    world_free(w);
}

/* Refused streams are reported at once as the filter's answers: 403 (body when the window allows), gRPC 7, 400. */
static void test_denied_answered_by_proxy(void **state)
{
    (void)state;
    world_t *w = world_new();
    nghttp2_nv ct[] = {NV("content-type", "application/grpc")};
    w->app_answers = 1;
    int32_t a = request(w, "/deny", NULL, NULL, 0);
    pump(w);
    int32_t b = request(w, "/deny/g", NULL, ct, 1), c = request(w, "/x%00", NULL, NULL, 0);
    pump(w);
    assert_int_equal(w->num_records, 3);
    const rm_http_exchange_t *r = record_of(w, (uint32_t)a);
    assert_int_equal(r->status, 403);
    assert_true(r->response_bytes == 19 || r->response_bytes == 0);
    assert_int_equal(r->response_bytes, w->client_body[(size_t)a / 2]); /* what the client got */
    assert_int_equal(r->answered_by_proxy, 1);
    assert_record(record_of(w, (uint32_t)b), 200, 7, 0, 0, 1, 1);
    assert_record(record_of(w, (uint32_t)c), 400, -1, 0, 0, 1, 1);
    assert_int_equal(w->num_streams, 0); /* the app never heard of them */
    world_free(w);
}

/* The hook's fields replace a field of the same name and are added when absent; the app's nghttp2 decoder reads
 * every block, later ones included, so the HPACK contexts are in step. */
static void test_set_headers_replace_and_add(void **state)
{
    (void)state;
    world_t *w = world_new();
    static const char *const tp[2] = {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                      "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00"};
    w->set_name[0] = "traceparent";
    w->set_name[1] = "x-added";
    w->set_value[1] = "yes";
    w->num_set = 2;
    for (int i = 0; i < 4; i++) {
        nghttp2_nv extra[] = {NV("traceparent", "old"), NV("x-keep", "k")};
        w->set_value[0] = tp[i % 2];
        int32_t id = request(w, "/ok/1", NULL, extra, i % 2 == 0 ? 2 : 0);
        pump(w);
        app_stream_t *s = app_stream(w, id);
        char want[512];
        snprintf(
            want, sizeof(want),
            ":method: GET\n:scheme: http\n:path: /ok/1\n:authority: app.example\n%straceparent: %s\nx-added: yes\n",
            i % 2 == 0 ? "x-keep: k\n" : "", tp[i % 2]);
        assert_string_equal(s->headers, want);
        assert_record(record_of(w, (uint32_t)id), 200, -1, 0, 1, 0, 1);
    }
    world_free(w);
}

/* More streams at once than the table holds: the oldest is given up (reported incomplete), each exactly once. */
static void test_table_full_gives_up_oldest(void **state)
{
    (void)state;
    world_t *w = world_new();
    int32_t first = 0;
    w->hold = 1;
    for (int i = 0; i < RM_H2_FILTER_MAX_EXCHANGES + 1; i++) {
        int32_t id = request(w, "/slow", NULL, NULL, 0);
        if (i == 0)
            first = id;
        if (i % 50 == 0)
            pump(w);
    }
    pump(w);
    assert_int_equal(w->num_records, 1);
    assert_int_equal(w->records[0].stream_id, (uint32_t)first);
    assert_int_equal(w->records[0].complete, 0);
    rm_h2_filter_end(&w->f);
    assert_int_equal(w->num_records, RM_H2_FILTER_MAX_EXCHANGES + 1);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statuses_and_bytes),
        cmocka_unit_test(test_grpc_status_headers_and_trailers),
        cmocka_unit_test(test_concurrent_out_of_order),
        cmocka_unit_test(test_resets),
        cmocka_unit_test(test_end_mid_response),
        cmocka_unit_test(test_denied_answered_by_proxy),
        cmocka_unit_test(test_set_headers_replace_and_add),
        cmocka_unit_test(test_table_full_gives_up_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
