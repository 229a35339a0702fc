/* HTTP/2 to the app for the inbound request server (req_in.h): the streams of a pooled request connection that
 * carry no ringmesh-orig-proto go to the app as streams of one HTTP/2 cleartext session (prior knowledge) on the
 * connection's own app side, c->up, connected when the first such stream comes and again after it failed or the app
 * closed it. The app's responses and trailers go back to the client's streams as they come, as fast as the
 * client's windows take them. */
#include "req_in-t.h"

#include "http1_codec.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Moves what the app's session holds for the stream along: held request bytes into its body, then its end. */
void rm__req_in_up_req_flush(rm__req_in_stream_t *st)
{
    rm__req_in_t *ri = st->ri;
    if (ri->app == NULL || st->app_sid <= 0 || st->req_body.eof)
        return;
    while (st->req_hold.len > 0) {
        long k = rm_h2s_body_write(ri->app, st->app_sid, &st->req_body, st->req_hold.base, st->req_hold.len);
        if (k <= 0)
            return;
        rm_bytebuf_consume(&st->req_hold, (size_t)k);
        (void)rm_h2s_consume(ri->srv, st->sid, (size_t)k);
    }
    if (st->req_end)
        (void)rm_h2s_body_end(ri->app, st->app_sid, &st->req_body, st->req_trailers, st->num_req_trailers);
}

/* Moves the response along: held bytes into the client's body, then its end (with the app's trailers). */
void rm__req_in_up_resp_flush(rm__req_in_stream_t *st)
{
    rm__req_in_t *ri = st->ri;
    if (st->answered || !st->resp_head || st->resp_end)
        return;
    while (st->resp_hold.len > 0) {
        long k = rm_h2s_body_write(ri->srv, st->sid, &st->resp_body, st->resp_hold.base, st->resp_hold.len);
        if (k <= 0)
            return;
        rm_bytebuf_consume(&st->resp_hold, (size_t)k);
        if (ri->app != NULL && st->app_sid > 0)
            (void)rm_h2s_consume(ri->app, st->app_sid, (size_t)k);
    }
    if (st->app_end) {
        st->resp_end = 1;
        (void)rm_h2s_body_end(ri->srv, st->sid, &st->resp_body, st->resp_trailers, st->num_resp_trailers);
    }
}

static int app_on_headers(rm_h2s_t *s, int32_t sid, void *sd, const rm_http_header_t *h, size_t n, int end)
{
    rm__req_in_stream_t *st = sd;
    rm__req_in_t *ri = rm_h2s_owner(s);
    (void)sid;
    if (st == NULL || st->answered)
        return 1;
    if (!st->resp_head) {
        int status = 0;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (rm__req_in_name_is(&h[i], ":status")) {
                for (size_t k = 0; k < h[i].value_len && k < 3; k++)
                    status = status * 10 + (h[i].value[k] - '0');
            } else if (h[i].name_len > 0 && h[i].name[0] != ':' &&
                       rm_h1c_classify(h[i].name, h[i].name_len, h[i].value, h[i].value_len, NULL, 0) ==
                           RM_H1C_FIELD_KEEP) {
                if (m + 1 < FWD_MAX)
                    ri->fwd[1 + m++] = h[i];
            }
        }
        if (status >= 100 && status < 200)
            return 0; /* interim: the final response follows */
        snprintf(ri->status, sizeof(ri->status), "%d", status);
        ri->fwd[0] = (rm_http_header_t){":status", 7, ri->status, strlen(ri->status)};
        st->ex.status = (uint16_t)status;
        rm__req_in_grpc_status(st, h, n);
        st->resp_head = 1;
        st->resp_end = (uint8_t)end;
        return rm_h2s_respond(ri->srv, st->sid, ri->fwd, m + 1, end ? NULL : &st->resp_body) != 0;
    }
    /* trailers */
    rm__req_in_grpc_status(st, h, n);
    if ((st->resp_trailers = rm__req_in_keep_fields(st, h, n, &st->num_resp_trailers)) == NULL)
        return 1;
    st->app_end = 1;
    rm__req_in_up_resp_flush(st);
    return 0;
}

static int app_on_data(rm_h2s_t *s, int32_t sid, void *sd, const uint8_t *p, size_t n)
{
    rm__req_in_stream_t *st = sd;
    long k = 0;
    if (st == NULL || st->answered)
        return 1;
    st->ex.response_bytes += n;
    if (st->resp_hold.len == 0 && (k = rm_h2s_body_write(st->ri->srv, st->sid, &st->resp_body, p, n)) < 0)
        return 1;
    if (k > 0)
        (void)rm_h2s_consume(s, sid, (size_t)k);
    if ((size_t)k < n && rm_bytebuf_append(&st->resp_hold, p + k, n - (size_t)k) != 0)
        return 1;
    return 0;
}

static int app_on_end(rm_h2s_t *s, int32_t sid, void *sd)
{
    rm__req_in_stream_t *st = sd;
    (void)s, (void)sid;
    if (st == NULL)
        return 0;
    st->app_end = 1;
    rm__req_in_up_resp_flush(st);
    return 0;
}

static void app_on_close(rm_h2s_t *s, int32_t sid, void *sd, uint32_t error_code)
{
    rm__req_in_stream_t *st = sd;
    (void)s, (void)sid;
    if (st == NULL)
        return;
    st->app_sid = 0;
    rm_h2s_body_clear(s, &st->req_body);
    if (!st->srv_closed && !st->answered && !(st->app_end || st->resp_end)) {
        /* reset by the app, or its connection went away: before a response, 503 UC; during one, a reset */
        if (!st->resp_head) {
            rm__req_in_answer(st, 503, -1, "upstream connect error or disconnect/reset before headers", "UC", NULL);
        } else {
            st->ex.response_flag = "UC";
            (void)rm_h2s_reset(st->ri->srv, st->sid, error_code != 0 ? error_code : NGHTTP2_INTERNAL_ERROR);
        }
    }
    if (st->srv_closed)
        rm__req_in_stream_free(st);
}

static void app_on_body_room(rm_h2s_t *s, int32_t sid, void *sd)
{
    (void)s, (void)sid;
    if (sd != NULL)
        rm__req_in_up_req_flush(sd);
}

static const rm_h2s_cbs_t app_cbs = {app_on_headers, app_on_data, app_on_end, app_on_close, app_on_body_room};

static void on_up_connect(rm_io_op_t *op, int res)
{
    rm_side_t *s = rm_container_of(op, rm_side_t, conn_op);
    rm_conn_t *c = rm_container_of(s, rm_conn_t, up);
    c->t.pending--;
    if (!c->t.closing && c->req_in != NULL) {
        if (res != 0) {
            rm__req_in_up_failed(c, res);
        } else {
            int one = 1;
            setsockopt(s->h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            s->ready = 1;
        }
    }
    c->t.ops->progress(&c->t);
}

/* The stream goes to the app as a stream of the connection's HTTP/2 session with it (opened on first need). */
int rm__req_in_up_open(rm__req_in_stream_t *st, size_t n, int end)
{
    rm__req_in_t *ri = st->ri;
    rm_conn_t *c = ri->c;
    int32_t sid;
    (void)c;
    if (ri->app == NULL && (ri->app = rm_h2s_new(0, &app_cbs, NULL, ri)) == NULL)
        return -ENOMEM;
    if (!rm_h2s_can_open(ri->app) && rm_h2s_open_streams(ri->app) > 0) {
        rm__req_in_answer(st, 503, -1, "upstream overflow", "UO", NULL);
        return 0;
    }
    sid = rm_h2s_request(ri->app, ri->fwd, n, end ? NULL : &st->req_body, st);
    if (sid <= 0) {
        rm__req_in_answer(st, 503, -1, "upstream request refused", "UC", NULL);
        return 0;
    }
    st->app_sid = sid;
    return 0;
}

/* The stream no longer wants the app's stream: it is reset, and nothing of it points to the stream any more. */
void rm__req_in_up_drop(rm__req_in_stream_t *st)
{
    rm__req_in_t *ri = st->ri;
    if (ri->app == NULL || st->app_sid <= 0)
        return;
    (void)rm_h2s_reset(ri->app, st->app_sid, NGHTTP2_CANCEL);
}

/* Fails every stream on the app's session and forgets the session; c->up is closed once nothing is in flight. */
static void up_fail_all(rm__req_in_t *ri, const char *flag)
{
    rm__req_in_stream_t *next;
    for (rm__req_in_stream_t *st = ri->streams; st != NULL; st = next) {
        next = st->next;
        if (st->h1 || st->app_sid <= 0)
            continue;
        st->app_sid = 0;
        rm_h2s_body_clear(ri->app, &st->req_body);
        if (!st->srv_closed && !st->resp_end && !st->answered) {
            if (!st->resp_head) {
                rm__req_in_answer(st, 503, -1, "upstream connect error or disconnect/reset before headers", flag, NULL);
            } else {
                st->ex.response_flag = "UC";
                (void)rm_h2s_reset(ri->srv, st->sid, NGHTTP2_INTERNAL_ERROR);
            }
        }
        if (st->srv_closed)
            rm__req_in_stream_free(st);
    }
    rm_h2s_free(ri->app);
    ri->app = NULL;
    if (ri->up_open) {
        ri->up_open = 0;
        ri->up_closing = 1;
        rm_side_cancel(&ri->c->up);
    }
}

void rm__req_in_up_failed(rm_conn_t *c, int err)
{
    rm__req_in_t *ri = c->req_in;
    rm_log_line_t l;
    if (ri == NULL || !ri->up_open)
        return;
    rm_log_begin(&l, RM_LOG_WARN, "upstream_connect_failed");
    rm__conn_log_fields(c, &l);
    rm_log_addr(&l, "upstream", (struct sockaddr *)&c->target.ss);
    rm_log_err(&l, "error", err);
    rm_log_end(&l);
    atomic_fetch_add_explicit(&c->w->stats.connect_failed, 1, memory_order_relaxed);
    up_fail_all(ri, "UF");
}

void rm__req_in_up_error(rm_conn_t *c, int err)
{
    rm__req_in_t *ri = c->req_in;
    (void)err;
    if (ri == NULL || !ri->up_open)
        return;
    up_fail_all(ri, "UC");
}

/* Moves the app's HTTP/2 session both ways over c->up. Returns 0 or an error that ends the connection. */
int rm__req_in_up_pump(rm__req_in_t *ri)
{
    rm_conn_t *c = ri->c;
    int ret;
    if (ri->up_closing) {
        if (rm_side_busy(&c->up))
            return 0;
        rm_side_close(&c->up);
        rm_pipe_free(&ri->app_in);
        rm_pipe_free(&ri->app_out);
        memset(&ri->app_in, 0, sizeof(ri->app_in));
        memset(&ri->app_out, 0, sizeof(ri->app_out));
        rm_side_init(&c->up, &c->t, &ri->app_in, &ri->app_out);
        ri->up_closing = 0;
        ri->up_stale = 0;
        c->up.ready = 0;
    }
    if (ri->app != NULL && !ri->up_open) {
        /* the first stream for the app since its connection was (re)made: connect */
        rm_side_init(&c->up, &c->t, &ri->app_in, &ri->app_out);
        if (rm_side_connect(&c->up, (const struct sockaddr *)&c->target.ss, c->target.len, on_up_connect) != 0) {
            ri->up_open = 1;
            up_fail_all(ri, "UF");
            return 0;
        }
        ri->up_open = 1;
    }
    if (ri->app == NULL || !c->up.ready)
        return 0;
    if (rm_side_fill(&c->up, 0) != 0) {
        up_fail_all(ri, "UC");
        return 0;
    }
    if (ri->app_in.len > 0) {
        long r = rm_h2s_feed(ri->app, ri->app_in.buf + ri->app_in.off, ri->app_in.len);
        rm_pipe_consume(&ri->app_in, ri->app_in.len);
        if (r < 0) {
            up_fail_all(ri, "UC");
            return 0;
        }
        if (rm_side_fill(&c->up, 0) != 0) {
            up_fail_all(ri, "UC");
            return 0;
        }
    }
    if (ri->app_in.src_eof && ri->app_in.len == 0) {
        up_fail_all(ri, "UC"); /* the app closed its side: the next stream connects again */
        return 0;
    }
    if (ri->app_out.len == 0 && !rm_io_busy(&c->up.wr_op) && rm_h2s_want_write(ri->app)) {
        long n;
        if ((ret = rm_pipe_reserve(&ri->app_out)) != 0)
            return ret;
        ri->app_out.off = 0;
        n = rm_h2s_output(ri->app, ri->app_out.buf, rm_pipe_room(&ri->app_out));
        if (n < 0) {
            up_fail_all(ri, "UC");
            return 0;
        }
        ri->app_out.len = (size_t)n;
        rm_pipe_release_if_empty(&ri->app_out);
    }
    if (rm_side_drain(&c->up) != 0) {
        up_fail_all(ri, "UC");
        return 0;
    }
    return 0;
}
