/* A pooled request connection (ringmesh/h2) served by the inbound proxy itself (req_in.h): an HTTP/2 server session
 * with the client proxy on c->down; per stream, the request decided as every inbound request is, its ringmesh-*
 * fields removed, and sent on to the app as HTTP/1.1 (req_in_app.c) or as a stream of one HTTP/2 cleartext session
 * on c->up (req_in_up.c), connected when a stream first needs it.
 *
 * Back-pressure: a stream's receive window is given back to the client (rm_h2s_consume) only as its body bytes go
 * out towards the app, and the app's response is read only as fast as the client's window takes it; what one side
 * gave and the other could not take yet is held per stream, at most one window's worth.
 *
 * A stream object lives from its request's headers until the client's stream is closed and, for HTTP/2 to the app,
 * the app's stream too (the app session may still read the request body from it until then). */
#include "req_in-t.h"

#include "conn_observe.h"
#include "h2_session.h"
#include "http1_codec.h"
#include "ringmesh/bytebuf.h"
#include "ringmesh/http_path.h"
#include "ringmesh/tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ helpers */

static int is_mesh_field(const rm_http_header_t *h)
{
    size_t n = sizeof(RM_H1C_MESH_PREFIX) - 1;
    return h->name_len >= n && strncasecmp(h->name, RM_H1C_MESH_PREFIX, n) == 0;
}

static int content_type_is_grpc(const char *v, size_t len)
{
    static const char grpc[] = "application/grpc";
    size_t n = sizeof(grpc) - 1;
    return len >= n && strncasecmp(v, grpc, n) == 0 && (len == n || v[n] == '+' || v[n] == ';');
}

/* Copies `n` fields into the stream's trailer memory; returns the copy (valid until the stream is freed) or NULL. */
rm_http_header_t *rm__req_in_keep_fields(rm__req_in_stream_t *st, const rm_http_header_t *h, size_t n, size_t *out_n)
{
    size_t strings = 0, off;
    rm_http_header_t *copy;
    uint8_t *base;
    for (size_t i = 0; i < n; i++)
        strings += h[i].name_len + h[i].value_len;
    strings = (strings + 15) & ~(size_t)15;
    /* one allocation of its own per trailer block: the other block's pointers stay valid */
    if ((base = malloc(strings + n * sizeof(*copy) + 1)) == NULL)
        return NULL;
    if (rm_bytebuf_append(&st->tmem, &base, sizeof(base)) != 0) {
        free(base);
        return NULL;
    }
    copy = (rm_http_header_t *)(void *)(base + strings);
    off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(base + off, h[i].name, h[i].name_len);
        copy[i].name = (const char *)base + off;
        copy[i].name_len = h[i].name_len;
        off += h[i].name_len;
        memcpy(base + off, h[i].value, h[i].value_len);
        copy[i].value = (const char *)base + off;
        copy[i].value_len = h[i].value_len;
        off += h[i].value_len;
    }
    *out_n = n;
    return copy;
}

/* Frees what the stream holds and the stream (not linked any more). */
static void stream_release(rm__req_in_stream_t *st)
{
    rm__req_in_t *ri = st->ri;
    rm_h2s_body_clear(ri->srv, &st->resp_body);
    rm_h2s_body_clear(ri->app, &st->req_body);
    rm_bytebuf_free(&st->req_hold);
    rm_bytebuf_free(&st->resp_hold);
    for (size_t i = 0; i + sizeof(void *) <= st->tmem.len; i += sizeof(void *)) {
        void *p;
        memcpy(&p, st->tmem.base + i, sizeof(p));
        free(p);
    }
    rm_bytebuf_free(&st->tmem);
    free(st);
}

void rm__req_in_stream_free(rm__req_in_stream_t *st)
{
    rm__req_in_t *ri = st->ri;
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        ri->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    stream_release(st);
}

/* The exchange is over for the client: logged at debug level and reported (conn_observe.h), once. */
static void stream_report(rm__req_in_stream_t *st, int complete)
{
    rm_conn_t *c = st->ri->c;
    if (st->reported)
        return;
    st->reported = 1;
    st->ex.stream_id = (uint32_t)st->sid;
    st->ex.complete = (uint8_t)complete;
    if (rm_log_enabled(RM_LOG_DEBUG)) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_DEBUG, "http_exchange");
        rm__conn_log_fields(c, &l);
        rm_log_str(&l, "protocol", st->h1 ? "http2-to-http1" : "http2");
        rm_log_uint(&l, "stream", st->ex.stream_id);
        rm_log_uint(&l, "status", st->ex.status);
        rm_log_int(&l, "grpc_status", st->ex.grpc_status);
        rm_log_uint(&l, "request_bytes", st->ex.request_bytes);
        rm_log_uint(&l, "response_bytes", st->ex.response_bytes);
        rm_log_bool(&l, "answered_by_proxy", st->ex.answered_by_proxy);
        if (st->ex.response_flag != NULL)
            rm_log_str(&l, "response_flag", st->ex.response_flag);
        rm_log_bool(&l, "complete", st->ex.complete);
        rm_log_end(&l);
    }
    rm__conn_observe_exchange(c, &st->ex);
}

void rm__req_in_grpc_status(rm__req_in_stream_t *st, const rm_http_header_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rm__req_in_name_is(&h[i], "grpc-status")) {
            int v = 0;
            for (size_t k = 0; k < h[i].value_len && k < 4; k++)
                v = v * 10 + (h[i].value[k] - '0');
            st->ex.grpc_status = (int16_t)v;
        }
}

/* Answers the stream from the proxy: `status` with a short text body, or for gRPC a trailers-only response with
 * `grpc_status` (>= 0). `flag`: the response flag of an answer for the app (NULL for a policy's). */
void rm__req_in_answer(rm__req_in_stream_t *st, int status, int grpc_status, const char *text, const char *flag,
                       const char *www_authenticate)
{
    rm__req_in_t *ri = st->ri;
    char code[12], grpc[12], len[24];
    rm_http_header_t h[6];
    size_t n = 0, text_len = strlen(text);

    st->answered = 1;
    st->ex.answered_by_proxy = flag == NULL;
    st->ex.response_flag = flag;
    if (st->resp_head) {
        (void)rm_h2s_reset(ri->srv, st->sid, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    st->resp_head = 1;
    snprintf(code, sizeof(code), "%d", grpc_status >= 0 ? 200 : status);
    h[n++] = (rm_http_header_t){":status", 7, code, strlen(code)};
    if (grpc_status >= 0) {
        snprintf(grpc, sizeof(grpc), "%d", grpc_status);
        h[n++] = (rm_http_header_t){"content-type", 12, "application/grpc", 16};
        h[n++] = (rm_http_header_t){"grpc-status", 11, grpc, strlen(grpc)};
        h[n++] = (rm_http_header_t){"grpc-message", 12, text, text_len};
        st->ex.status = 200;
        st->ex.grpc_status = (int16_t)grpc_status;
        st->resp_end = 1;
        (void)rm_h2s_respond(ri->srv, st->sid, h, n, NULL);
        return;
    }
    snprintf(len, sizeof(len), "%zu", text_len);
    h[n++] = (rm_http_header_t){"content-type", 12, "text/plain", 10};
    h[n++] = (rm_http_header_t){"content-length", 14, len, strlen(len)};
    if (www_authenticate != NULL)
        h[n++] = (rm_http_header_t){"www-authenticate", 16, www_authenticate, strlen(www_authenticate)};
    st->ex.status = (uint16_t)status;
    if (rm_h2s_respond(ri->srv, st->sid, h, n, &st->resp_body) != 0 ||
        rm_h2s_body_write(ri->srv, st->sid, &st->resp_body, (const uint8_t *)text, text_len) != (long)text_len) {
        (void)rm_h2s_reset(ri->srv, st->sid, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    st->ex.response_bytes = text_len;
    st->resp_end = 1;
    (void)rm_h2s_body_end(ri->srv, st->sid, &st->resp_body, NULL, 0);
}

/* ------------------------------------------------------------------ HTTP/1.1 exchanges (req_in_app.c) */

int rm__req_in_app_head(rm__req_in_stream_t *st, int status, const rm_http_header_t *h, size_t n, int no_body)
{
    rm__req_in_t *ri = st->ri;
    size_t m = 0;
    if (st->answered || st->srv_closed)
        return -ECANCELED;
    snprintf(ri->status, sizeof(ri->status), "%d", status);
    ri->fwd[m++] = (rm_http_header_t){":status", 7, ri->status, strlen(ri->status)};
    for (size_t i = 0; i < n && m < FWD_MAX; i++)
        ri->fwd[m++] = h[i];
    st->ex.status = (uint16_t)status;
    st->resp_head = 1;
    st->resp_end = (uint8_t)no_body;
    return rm_h2s_respond(ri->srv, st->sid, ri->fwd, m, no_body ? NULL : &st->resp_body);
}

long rm__req_in_app_body(rm__req_in_stream_t *st, const uint8_t *p, size_t n)
{
    long k;
    if (st->answered || st->srv_closed || st->resp_end)
        return (long)n; /* nobody to give them to: dropped */
    if ((k = rm_h2s_body_write(st->ri->srv, st->sid, &st->resp_body, p, n)) > 0)
        st->ex.response_bytes += (uint64_t)k;
    return k;
}

void rm__req_in_app_end(rm__req_in_stream_t *st, const rm_http_header_t *trailers, size_t n)
{
    if (st->answered || st->srv_closed || st->resp_end)
        return;
    st->resp_end = 1;
    (void)rm_h2s_body_end(st->ri->srv, st->sid, &st->resp_body, trailers, n);
}

void rm__req_in_app_failed(rm__req_in_stream_t *st, const char *flag)
{
    st->a = NULL;
    if (st->srv_closed || st->answered || st->resp_end)
        return;
    if (st->resp_head)
        (void)rm_h2s_reset(st->ri->srv, st->sid, NGHTTP2_INTERNAL_ERROR);
    else
        rm__req_in_answer(st, 503, -1,
                          flag[1] == 'F'
                              ? "upstream connect error or disconnect/reset before headers. reset reason: connection "
                                "failure"
                              : "upstream connect error or disconnect/reset before headers",
                          flag, NULL);
    st->ex.response_flag = flag;
}

void rm__req_in_app_moved(rm__req_in_stream_t *st, rm__app_conn_t *a)
{
    st->a = a;
}

void rm__req_in_app_sent(rm__req_in_stream_t *st, size_t n)
{
    if (!st->srv_closed)
        (void)rm_h2s_consume(st->ri->srv, st->sid, n);
}

void rm__req_in_kick(rm__req_in_stream_t *st)
{
    rm_conn_t *c = st->ri->c;
    c->t.ops->progress(&c->t);
}

/* ------------------------------------------------------------------ the client's side */

/* The path normalization of the policies in force (as conn_l7.c tells the filters). */
static rm_path_normalization_t path_mode(rm__req_in_t *ri)
{
    rm_conn_t *c = ri->c;
    if (ri->observe)
        return RM_PATH_NORMALIZATION_NONE;
    rm_snapshot_t *now = rm_snapshot_current(c->w->proxy);
    rm_authz_t *az = now->authz != NULL || now->authz_required ? now->authz : c->snap->authz;
    return az != NULL ? az->wp.path_normalization : RM_PATH_NORMALIZATION_BASE;
}

/* A new request on stream `sid`: decided, then sent on to the app or answered. Returns nonzero to reset the
 * stream (a malformed request). */
static int request_new(rm__req_in_t *ri, int32_t sid, const rm_http_header_t *h, size_t n, int end)
{
    rm_conn_t *c = ri->c;
    rm_http_request_t req;
    rm_http_decision_t d;
    rm_http_target_t target;
    rm__req_in_stream_t *st;
    const char *scheme = "http", *host = NULL;
    size_t scheme_len = 4, host_len = 0, nh = 0, m = 0;
    int h1 = 0, has_length = 0, head_request, ret;

    memset(&req, 0, sizeof(req));
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len > 0 && h[i].name[0] == ':') {
            if (rm__req_in_name_is(&h[i], ":method"))
                req.method = h[i].value, req.method_len = h[i].value_len;
            else if (rm__req_in_name_is(&h[i], ":path"))
                req.path = h[i].value, req.path_len = h[i].value_len;
            else if (rm__req_in_name_is(&h[i], ":authority"))
                req.host = h[i].value, req.host_len = h[i].value_len;
            else if (rm__req_in_name_is(&h[i], ":scheme"))
                scheme = h[i].value, scheme_len = h[i].value_len;
            else
                return 1; /* :protocol (extended CONNECT) is not carried */
            continue;
        }
        if (rm__req_in_name_is(&h[i], "host")) {
            host = h[i].value, host_len = h[i].value_len;
        } else if (rm__req_in_name_is(&h[i], "content-type")) {
            req.grpc = (uint8_t)content_type_is_grpc(h[i].value, h[i].value_len);
        } else if (rm__req_in_name_is(&h[i], "content-length")) {
            has_length = 1;
        } else if (rm__req_in_name_is(&h[i], RM_H1C_ORIG_PROTO)) {
            h1 = h[i].value_len >= 7 && memcmp(h[i].value, "HTTP/1.", 7) == 0;
        }
        ri->reqh[nh++] = h[i]; /* policy sees the request as it came, ringmesh-* fields included */
    }
    if (req.method == NULL || req.path == NULL)
        return 1;
    if (host != NULL) {
        if (req.host != NULL && (req.host_len != host_len || strncasecmp(req.host, host, host_len) != 0))
            return 1;
        req.host = host, req.host_len = host_len;
    }
    req.headers = ri->reqh;
    req.num_headers = nh;
    req.stream_id = (uint32_t)sid;
    req.http2 = 1;

    if ((st = calloc(1, sizeof(*st))) == NULL)
        return 1;
    st->ri = ri;
    st->sid = sid;
    st->h1 = (uint8_t)h1;
    st->req_end = (uint8_t)end;
    st->ex.grpc_status = -1;
    st->next = ri->streams;
    if (ri->streams != NULL)
        ri->streams->prev = st;
    ri->streams = st;
    (void)rm_h2s_set_stream_data(ri->srv, sid, st);

    /* the :path the policy judges is the one the app gets */
    ri->target.len = 0;
    if (rm_bytebuf_reserve(&ri->target, req.path_len + 1) != 0)
        return 1;
    memset(&d, 0, sizeof(d));
    ret =
        rm_http_path_normalize(path_mode(ri), req.path, req.path_len, (char *)ri->target.base, ri->target.cap, &target);
    if (ret != 0) {
        req.path_error = target.error != NULL ? target.error : "the request target cannot be normalized";
        (void)rm__conn_decide_request(c, &req, &d); /* for the log; the answer is 400 whatever it says */
        st->ex.cookie = d.cookie;
        rm__req_in_answer(st, 400, -1, "Bad Request", NULL, NULL);
        return 0;
    }
    req.path = (const char *)ri->target.base;
    req.path_len = target.len;
    rm_http_verdict_t verdict =
        ri->observe ? rm__conn_observe_decide(c, &req, &d) : rm__conn_decide_request(c, &req, &d);
    st->ex.cookie = d.cookie;
    if (verdict == RM_HTTP_UNAUTHENTICATED) {
        rm__req_in_answer(st, 401, req.grpc ? 16 : -1, "Jwt is not in the form of Header.Payload.Signature", NULL,
                          "Bearer error=\"invalid_token\"");
        return 0;
    }
    if (verdict != RM_HTTP_ALLOW) {
        rm__req_in_answer(st, 403, req.grpc ? 7 : -1, RM_HTTP_DENIED_BODY, NULL, NULL);
        return 0;
    }

    /* the fields that go on: not the proxies' own, not one the hook sets, then the hook's */
    if (d.num_set > RM_HTTP_MAX_SET_HEADERS)
        d.num_set = RM_HTTP_MAX_SET_HEADERS;
    head_request = req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0;
    if (!h1) {
        ri->fwd[m++] = (rm_http_header_t){":method", 7, req.method, req.method_len};
        ri->fwd[m++] = (rm_http_header_t){":scheme", 7, scheme, scheme_len};
        if (req.host != NULL)
            ri->fwd[m++] = (rm_http_header_t){":authority", 10, req.host, req.host_len};
        ri->fwd[m++] = (rm_http_header_t){":path", 5, req.path, req.path_len};
    }
    for (size_t i = 0; i < nh; i++) {
        int set = 0;
        if (is_mesh_field(&ri->reqh[i]))
            continue;
        for (size_t k = 0; k < d.num_set && !set; k++)
            set = d.set[k].name_len == ri->reqh[i].name_len &&
                  memcmp(d.set[k].name, ri->reqh[i].name, ri->reqh[i].name_len) == 0;
        if (!set && m < FWD_MAX)
            ri->fwd[m++] = ri->reqh[i];
    }
    for (size_t k = 0; k < d.num_set && m < FWD_MAX; k++)
        if (d.set[k].value != NULL &&
            rm_http_set_field_valid(d.set[k].name, d.set[k].name_len, d.set[k].value, d.set[k].value_len))
            ri->fwd[m++] = (rm_http_header_t){d.set[k].name, d.set[k].name_len, d.set[k].value, d.set[k].value_len};

    if (!h1)
        return rm__req_in_up_open(st, m, end);

    /* HTTP/1.1 to the app */
    rm_h1c_body_t framing = rm_h1c_request_framing(end, has_length);
    int len;
    ri->head.len = 0;
    if (rm_bytebuf_reserve(&ri->head, 65536) != 0)
        return 1;
    len = rm_h1c_write_request_head(req.method, req.method_len, req.path, req.path_len, req.host,
                                    req.host != NULL ? req.host_len : 0, ri->fwd, m, framing, (char *)ri->head.base,
                                    ri->head.cap);
    if (len < 0) {
        rm__req_in_answer(st, 431, -1, "Request Header Fields Too Large", NULL, NULL);
        return 0;
    }
    rm_sockaddr_t app_addr = rm_conn_addr_get(&c->target);
    st->a = rm__app_h1_send(c->w, &app_addr, st, (const char *)ri->head.base, (size_t)len, framing, head_request, 0);
    if (st->a == NULL)
        rm__req_in_answer(st, 503, -1, "upstream connect error", "UF", NULL);
    return 0;
}

static int srv_on_headers(rm_h2s_t *s, int32_t sid, void *sd, const rm_http_header_t *h, size_t n, int end)
{
    rm__req_in_t *ri = rm_h2s_owner(s);
    rm__req_in_stream_t *st = sd;
    if (st == NULL)
        return request_new(ri, sid, h, n, end);
    /* the request's trailers */
    st->req_end = 1;
    if (st->answered)
        return 0;
    if (st->h1)
        return st->a != NULL && rm__app_h1_end(st->a, h, n) != 0;
    if ((st->req_trailers = rm__req_in_keep_fields(st, h, n, &st->num_req_trailers)) == NULL)
        return 1;
    rm__req_in_up_req_flush(st);
    return 0;
}

static int srv_on_data(rm_h2s_t *s, int32_t sid, void *sd, const uint8_t *p, size_t n)
{
    rm__req_in_stream_t *st = sd;
    rm__req_in_t *ri = rm_h2s_owner(s);
    long k = 0;
    if (st == NULL || st->answered || (st->h1 && st->a == NULL) || (!st->h1 && st->app_sid <= 0)) {
        (void)rm_h2s_consume(s, sid, n); /* dropped */
        return 0;
    }
    st->ex.request_bytes += n;
    if (st->h1)
        return rm__app_h1_body(st->a, p, n) != 0; /* given back as it goes out (rm__req_in_app_sent) */
    if (st->req_hold.len == 0 && (k = rm_h2s_body_write(ri->app, st->app_sid, &st->req_body, p, n)) < 0)
        return 1;
    if (k > 0)
        (void)rm_h2s_consume(s, sid, (size_t)k);
    if ((size_t)k < n && rm_bytebuf_append(&st->req_hold, p + k, n - (size_t)k) != 0)
        return 1;
    return 0;
}

static int srv_on_end(rm_h2s_t *s, int32_t sid, void *sd)
{
    rm__req_in_stream_t *st = sd;
    (void)s, (void)sid;
    if (st == NULL)
        return 0;
    st->req_end = 1;
    if (st->answered)
        return 0;
    if (st->h1)
        return st->a != NULL && rm__app_h1_end(st->a, NULL, 0) != 0;
    rm__req_in_up_req_flush(st);
    return 0;
}

static void srv_on_close(rm_h2s_t *s, int32_t sid, void *sd, uint32_t error_code)
{
    rm__req_in_stream_t *st = sd;
    (void)sid;
    if (st == NULL)
        return;
    st->srv_closed = 1;
    stream_report(st, error_code == 0 && st->resp_end);
    rm_h2s_body_clear(s, &st->resp_body);
    if (st->a != NULL) {
        rm__app_conn_t *a = st->a;
        st->a = NULL;
        rm__app_h1_detach(a, error_code == 0 && st->resp_end);
    }
    if (!st->h1 && st->app_sid > 0) {
        rm__req_in_up_drop(st); /* freed once the app's stream closes too */
        return;
    }
    rm__req_in_stream_free(st);
}

static void srv_on_body_room(rm_h2s_t *s, int32_t sid, void *sd)
{
    rm__req_in_stream_t *st = sd;
    (void)s, (void)sid;
    if (st == NULL)
        return;
    if (st->h1) {
        if (st->a != NULL)
            rm__app_h1_resume(st->a);
    } else {
        rm__req_in_up_resp_flush(st);
    }
}

static const rm_h2s_cbs_t srv_cbs = {srv_on_headers, srv_on_data, srv_on_end, srv_on_close, srv_on_body_room};

/* ------------------------------------------------------------------ the connection */

int rm__req_in_wanted(rm_conn_t *c)
{
    return c->dir == RM_CONN_DIR_INBOUND && c->explicit_cfg == NULL && c->mode == RM_CONN_MODE_MTLS &&
           c->down.tls != NULL && c->down.ready && rm_tls_alpn_h2(c->down.tls);
}

int rm__req_in_start(rm_conn_t *c)
{
    rm__req_in_t *ri = calloc(1, sizeof(*ri));
    rm_h2s_settings_t settings = {
        .max_concurrent_streams = 100, .initial_window = 256 * 1024, .session_window = 1024 * 1024};
    if (ri == NULL)
        return -ENOMEM;
    ri->c = c;
    ri->observe = c->snap->authz == NULL && !c->snap->authz_required;
    if ((ri->srv = rm_h2s_new(1, &srv_cbs, &settings, ri)) == NULL) {
        free(ri);
        return -ENOMEM;
    }
    c->req_in = ri;
    c->authz_state = ri->observe ? RM_CONN_AUTHZ_OFF : RM_CONN_AUTHZ_HTTP;
    c->down.tx = &ri->client_out; /* a TLS side: its sends copy into the session, nothing is in flight from a pipe */
    if (c->up.h.fd >= 0 || c->up_connecting) {
        /* PERMISSIVE connected to the app before the client's bytes showed TLS: that connection is not the app
         * session's; closed, the app session gets its own when a stream needs it */
        ri->up_stale = 1;
        ri->up_closing = 1;
        rm_side_cancel(&c->up);
    }
    c->deadline_ms = 0;
    rm__conn_observe_opened(c);
    return 0;
}

int rm__req_in_pump(rm_conn_t *c)
{
    rm__req_in_t *ri = c->req_in;
    int ret;

    /* the client's bytes */
    if ((ret = rm_side_fill(&c->down, 1)) != 0)
        return ret;
    while (c->d2u.len > 0 && !ri->client_gone) {
        long r = rm_h2s_feed(ri->srv, c->d2u.buf + c->d2u.off, c->d2u.len);
        ri->client_bytes += c->d2u.len;
        rm_pipe_consume(&c->d2u, c->d2u.len);
        if (r < 0) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_WARN, "http_connection_ended");
            rm__conn_log_fields(c, &l);
            rm_log_str(&l, "protocol", "http2");
            rm_log_str(&l, "from", "client");
            rm_log_str(&l, "reason", nghttp2_strerror((int)r));
            rm_log_end(&l);
            ri->client_gone = 1;
        }
        if ((ret = rm_side_fill(&c->down, 1)) != 0)
            return ret;
    }
    if (c->d2u.len > 0)
        rm_pipe_consume(&c->d2u, c->d2u.len);
    if (c->d2u.src_eof && !ri->client_gone)
        ri->client_gone = 1;
    if (c->w->draining && !ri->goaway && !ri->client_gone) {
        /* the proxy drains: the client's proxy takes no new stream here, the open ones finish, then the close */
        ri->goaway = 1;
        (void)rm_h2s_goaway(ri->srv);
    }

    /* the app's HTTP/2 session */
    if ((ret = rm__req_in_up_pump(ri)) != 0)
        return ret;

    /* the client's session out: the pipe is the TLS side's, whose sends copy it into records at once */
    while (rm_h2s_want_write(ri->srv) && rm_pipe_room(&ri->client_out) > 0) {
        long n;
        if ((ret = rm_pipe_reserve(&ri->client_out)) != 0)
            return ret;
        if (ri->client_out.len == 0)
            ri->client_out.off = 0;
        n = rm_h2s_output(ri->srv, ri->client_out.buf + ri->client_out.off + ri->client_out.len,
                          rm_pipe_room(&ri->client_out));
        if (n <= 0) {
            rm_pipe_release_if_empty(&ri->client_out);
            if (n < 0)
                ri->client_gone = 1;
            break;
        }
        ri->client_out.len += (size_t)n;
        if ((ret = rm_side_drain(&c->down)) != 0)
            return ret;
    }
    /* what the output of the client's session made the app's session say */
    if ((ret = rm__req_in_up_pump(ri)) != 0)
        return ret;
    /* the end: the client is gone (or the session is over) and nothing is left to send */
    if ((ri->client_gone || !rm_h2s_alive(ri->srv)) && !rm_h2s_want_write(ri->srv) && ri->client_out.len == 0)
        ri->client_out.src_eof = 1;
    if ((ret = rm_side_drain(&c->down)) != 0)
        return ret;
    if (ri->client_out.src_eof && rm_side_direction_done(&c->down)) {
        c->close_reason = RM_CONN_CLOSE_EOF;
        c->t.closing = 1;
    }
    return 0;
}

void rm__req_in_free(rm_conn_t *c)
{
    rm__req_in_t *ri = c->req_in;
    if (ri == NULL)
        return;
    rm__req_in_stream_t *st = ri->streams, *next;
    ri->streams = NULL;
    for (; st != NULL; st = next) {
        next = st->next;
        stream_report(st, 0);
        if (st->a != NULL) {
            rm__app_conn_t *a = st->a;
            st->a = NULL;
            rm__app_h1_detach(a, 0);
        }
        stream_release(st);
    }
    rm_h2s_free(ri->srv);
    rm_h2s_free(ri->app);
    rm_pipe_free(&ri->client_out);
    rm_pipe_free(&ri->app_in);
    rm_pipe_free(&ri->app_out);
    rm_bytebuf_free(&ri->target);
    rm_bytebuf_free(&ri->head);
    /* the connection's counts (its log, access log and TCP metrics): the client's bytes each way */
    c->d2u.bytes += ri->client_bytes;
    c->u2d.bytes += ri->client_out.bytes;
    free(ri);
    c->req_in = NULL;
    /* the sides' pipes are the connection's own again (only closing is left) */
    c->down.tx = &c->u2d;
    c->up.rx = &c->u2d;
    c->up.tx = &c->d2u;
}
