/* HTTP/1.1 connections to the app for the inbound request path (req_in.h): per worker, kept alive and reused per
 * app address, one request at a time on each. A connection writes the request head and the body framed as the
 * stream said (content-length or chunked), parses the app's response (http_parser) and hands it to the stream,
 * reading the app only as fast as the client takes the response: bytes the client's window did not take are held
 * (at most one receive's worth) and no receive is made until they are out.
 *
 * An idle connection keeps a receive posted, so that an app closing it is seen and the connection dropped; a
 * request that meets a reused connection closed by the app before any byte of the response, and whose whole request
 * is still at hand (it had no body), is sent once more on a new connection. */
#include "req_in.h"

#include "http1_codec.h"
#include "ringmesh/bytebuf.h"

#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define APP_IDLE_MS    30000 /* an idle app connection is closed after this long */
#define APP_IDLE_MAX   64    /* idle app connections a worker keeps; more are closed */
#define APP_MAX_FIELDS 128   /* response header fields passed on; more fail the exchange */

typedef struct st_app_field_t {
    size_t name_off, name_len, value_off, value_len;
} app_field_t;

struct st_rm__app_conn_t {
    rm_side_owner_t t;
    rm_side_t side;
    rm_pipe_t in, out;
    rm_worker_t *w;
    rm__app_conn_t *prev, *next; /* the worker's app connections */
    rm_sockaddr_t target;
    rm__req_in_stream_t *st; /* the exchange in progress; NULL: idle */
    rm_bytebuf_t tx;         /* request bytes not in the out pipe yet */
    size_t tx_body;          /* of which the client's body bytes (given back once staged) */
    rm_bytebuf_t retry;      /* a bodiless request's head, for a send again on a new connection */
    rm_bytebuf_t hold;       /* response body bytes the client did not take yet */
    rm_bytebuf_t hdr;        /* the response's header names and values, lower-case names */
    app_field_t fields[APP_MAX_FIELDS];
    size_t num_fields;
    http_parser parser;
    uint8_t framing;       /* rm_h1c_body_t of the request body */
    uint8_t head_request;  /* the response to a HEAD has no body */
    uint8_t in_value;      /* the parser is in a header value */
    uint8_t resp_started;  /* response bytes arrived for this exchange */
    uint8_t resp_head;     /* the response head went to the stream */
    uint8_t resp_complete; /* the parser saw the response's end (handed on once hold is empty) */
    uint8_t keep_alive;    /* the app lets the connection be reused after this response */
    uint8_t failed;        /* closing for an error */
    uint8_t connecting, in_progress, cancelled;
    unsigned served; /* exchanges completed on it */
    uint64_t idle_since_ms;
};

static void app_progress(rm__app_conn_t *a);

static void app_free(rm__app_conn_t *a)
{
    rm_worker_t *w = a->w;
    rm_side_close(&a->side);
    rm_pipe_free(&a->in);
    rm_pipe_free(&a->out);
    rm_bytebuf_free(&a->tx);
    rm_bytebuf_free(&a->retry);
    rm_bytebuf_free(&a->hold);
    rm_bytebuf_free(&a->hdr);
    if (a->prev != NULL)
        a->prev->next = a->next;
    else
        w->app_conns = a->next;
    if (a->next != NULL)
        a->next->prev = a->prev;
    w->num_app_conns--;
    free(a);
}

/* Starts closing: nothing more moves; freed once nothing is in flight (app_progress). */
static void app_close(rm__app_conn_t *a)
{
    a->t.closing = 1;
    if (!a->cancelled) {
        a->cancelled = 1;
        rm_side_cancel(&a->side);
    }
}

/* The exchange failed. A request that can be sent again is, once, on a new connection; else the stream is told. */
static void app_fail(rm__app_conn_t *a, const char *flag)
{
    rm__req_in_stream_t *st = a->st;
    a->failed = 1;
    app_close(a);
    if (st == NULL)
        return;
    a->st = NULL;
    if (a->served > 0 && !a->resp_started && a->retry.len > 0) {
        rm__app_conn_t *again = rm__app_h1_send(a->w, &a->target, st, (const char *)a->retry.base, a->retry.len,
                                                RM_H1C_BODY_NONE, a->head_request, 1);
        if (again != NULL) {
            rm__req_in_app_moved(st, again);
            return;
        }
    }
    rm__req_in_app_failed(st, flag);
}

/* ------------------------------------------------------------------ the response */

static rm__app_conn_t *of_parser(http_parser *p)
{
    return rm_container_of(p, rm__app_conn_t, parser);
}

static int on_message_begin(http_parser *p)
{
    rm__app_conn_t *a = of_parser(p);
    a->num_fields = 0;
    a->hdr.len = 0;
    a->in_value = 0;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    rm__app_conn_t *a = of_parser(p);
    if (!a->in_value && a->num_fields > 0) { /* the rest of the same name */
        app_field_t *f = &a->fields[a->num_fields - 1];
        if (rm_bytebuf_append(&a->hdr, at, len) != 0)
            return -1;
        f->name_len += len;
        f->value_off = a->hdr.len;
        return 0;
    }
    if (a->num_fields == APP_MAX_FIELDS)
        return -1;
    a->in_value = 0;
    app_field_t *f = &a->fields[a->num_fields++];
    f->name_off = a->hdr.len;
    f->name_len = len;
    if (rm_bytebuf_append(&a->hdr, at, len) != 0)
        return -1;
    f->value_off = a->hdr.len;
    f->value_len = 0;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    rm__app_conn_t *a = of_parser(p);
    if (a->num_fields == 0)
        return -1;
    a->in_value = 1;
    if (rm_bytebuf_append(&a->hdr, at, len) != 0)
        return -1;
    a->fields[a->num_fields - 1].value_len += len;
    /* the next field's name starts a new field */
    return 0;
}

/* The fields as a header list: names lower-cased in place, `connection`-named and connection-specific ones out. */
static size_t app_header_list(rm__app_conn_t *a, rm_http_header_t *out, size_t max)
{
    char *base = (char *)a->hdr.base;
    const char *conn = NULL;
    size_t conn_len = 0, n = 0;
    for (size_t i = 0; i < a->num_fields; i++) {
        char *name = base + a->fields[i].name_off;
        for (size_t k = 0; k < a->fields[i].name_len; k++)
            if (name[k] >= 'A' && name[k] <= 'Z')
                name[k] = (char)(name[k] + ('a' - 'A'));
        if (a->fields[i].name_len == 10 && memcmp(name, "connection", 10) == 0) {
            conn = base + a->fields[i].value_off;
            conn_len = a->fields[i].value_len;
        }
    }
    for (size_t i = 0; i < a->num_fields && n < max; i++) {
        const char *name = base + a->fields[i].name_off, *value = base + a->fields[i].value_off;
        if (rm_h1c_classify(name, a->fields[i].name_len, value, a->fields[i].value_len, conn, conn_len) !=
            RM_H1C_FIELD_KEEP)
            continue;
        out[n++] = (rm_http_header_t){name, a->fields[i].name_len, value, a->fields[i].value_len};
    }
    return n;
}

static int on_headers_complete(http_parser *p)
{
    rm__app_conn_t *a = of_parser(p);
    rm_http_header_t h[APP_MAX_FIELDS];
    int status = p->status_code, no_body;
    a->in_value = 0;
    if (status >= 100 && status < 200)
        return 0; /* an interim response: not passed on, the final one follows */
    if (a->st == NULL)
        return -1;
    no_body = a->head_request || status == 204 || status == 304;
    size_t n = app_header_list(a, h, APP_MAX_FIELDS);
    if (rm__req_in_app_head(a->st, status, h, n, no_body) != 0)
        return -1;
    a->resp_head = 1;
    return a->head_request ? 1 : 0; /* 1: no body follows the head (http_parser's rule for HEAD) */
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    rm__app_conn_t *a = of_parser(p);
    long took = 0;
    if (a->st == NULL)
        return -1;
    if (a->hold.len == 0 && (took = rm__req_in_app_body(a->st, (const uint8_t *)at, len)) < 0)
        return -1;
    if ((size_t)took < len && rm_bytebuf_append(&a->hold, at + took, len - (size_t)took) != 0)
        return -1;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    rm__app_conn_t *a = of_parser(p);
    if (p->status_code >= 100 && p->status_code < 200)
        return 0;
    a->resp_complete = 1;
    a->keep_alive = (uint8_t)http_should_keep_alive(p);
    http_parser_pause(p, 1); /* one response per request: anything after it is not ours */
    return 0;
}

static const http_parser_settings app_parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Hands held body bytes on while the client takes them, then the end. Returns 1 when the exchange is over. */
static int app_deliver(rm__app_conn_t *a)
{
    if (a->st == NULL)
        return 0;
    while (a->hold.len > 0) {
        long took = rm__req_in_app_body(a->st, a->hold.base, a->hold.len);
        if (took < 0) {
            app_fail(a, "UC");
            return 0;
        }
        if (took == 0)
            return 0;
        rm_bytebuf_consume(&a->hold, (size_t)took);
    }
    if (!a->resp_complete)
        return 0;
    rm__req_in_stream_t *st = a->st;
    rm__req_in_app_end(st, NULL, 0);
    return 1;
}

/* Parses what the app sent. Bytes that come while no exchange is in progress, or after a response, end the
 * connection: an app has nothing to say unasked. */
static void app_parse(rm__app_conn_t *a)
{
    if (a->in.len > 0) {
        if (a->st == NULL) {
            app_fail(a, "UC");
            return;
        }
        if (a->resp_complete) { /* more than the response: the connection is not reused */
            a->keep_alive = 0;
            rm_pipe_consume(&a->in, a->in.len);
            return;
        }
        a->resp_started = 1;
        size_t got =
            http_parser_execute(&a->parser, &app_parser_settings, (const char *)a->in.buf + a->in.off, a->in.len);
        enum http_errno e = HTTP_PARSER_ERRNO(&a->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            app_fail(a, "UC");
            return;
        }
        if (got < a->in.len)
            a->keep_alive = 0; /* bytes after the response */
        rm_pipe_consume(&a->in, a->in.len);
    }
    if (a->in.src_eof && a->st != NULL && !a->resp_complete) {
        /* the app closed: the end of a close-delimited body, or a cut */
        if (a->resp_started)
            http_parser_execute(&a->parser, &app_parser_settings, NULL, 0);
        if (!a->resp_complete) {
            app_fail(a, "UC");
            return;
        }
        a->keep_alive = 0;
    }
}

/* ------------------------------------------------------------------ progress */

/* Moves request bytes into the out pipe when it is free (a send in flight reads a buffer that does not move). Returns
 * 0 or -ENOMEM. */
static int app_stage(rm__app_conn_t *a)
{
    int ret;
    if (a->out.len != 0 || rm_io_busy(&a->side.wr_op) || a->tx.len == 0)
        return 0;
    if ((ret = rm_pipe_append_from(&a->out, &a->tx)) != 0)
        return ret;
    if (a->tx.len == 0 && a->tx_body > 0 && a->st != NULL) {
        size_t body = a->tx_body;
        a->tx_body = 0;
        rm__req_in_app_sent(a->st, body);
    }
    return 0;
}

/* Stages and sends what the request has for the app, once connected. Returns 0 or an error (nothing failed yet: the
 * caller decides). */
static int app_send(rm__app_conn_t *a)
{
    int ret;
    if (!a->side.ready || a->t.closing)
        return 0;
    if ((ret = app_stage(a)) != 0)
        return ret;
    return rm_side_drain(&a->side);
}

/* The exchange is over and the stream let go: back to idle, or closed. */
static void app_idle(rm__app_conn_t *a)
{
    size_t idle = 0;
    a->st = NULL;
    a->served++;
    if (!a->keep_alive || a->in.len > 0 || a->tx.len > 0 || a->out.len > 0) {
        app_close(a);
        return;
    }
    for (rm__app_conn_t *o = a->w->app_conns; o != NULL; o = o->next)
        idle += o->st == NULL && !o->t.closing;
    if (idle > APP_IDLE_MAX) {
        app_close(a);
        return;
    }
    a->idle_since_ms = rm_loop_now_ms(a->w->loop);
    a->resp_started = a->resp_head = a->resp_complete = 0;
    a->hold.len = 0;
    a->retry.len = 0;
}

static void app_progress(rm__app_conn_t *a)
{
    rm__req_in_stream_t *kick = a->st; /* told last: its progress may end the exchange */

    a->in_progress++;
    if (!a->t.closing && a->side.ready) {
        if (app_send(a) != 0)
            app_fail(a, "UC");
        if (!a->t.closing)
            app_parse(a);
        if (!a->t.closing)
            (void)app_deliver(a); /* at the end, the stream detaches from its own progress */
        if (!a->t.closing && a->hold.len == 0 && !a->in.src_eof && rm_side_fill(&a->side, 0) != 0)
            app_fail(a, "UC");
        if (!a->t.closing && a->st == NULL && a->in.src_eof)
            app_close(a); /* the app closed an idle connection */
    }
    if (a->st != NULL)
        kick = a->st;
    a->in_progress--;
    if (a->t.closing && a->t.pending == 0 && a->st == NULL && a->in_progress == 0)
        app_free(a);
    if (kick != NULL)
        rm__req_in_kick(kick);
}

static void app_side_progress(rm_side_owner_t *o)
{
    app_progress(rm_container_of(o, rm__app_conn_t, t));
}

static void app_side_error(rm_side_owner_t *o, rm_side_t *s, rm_side_error_t kind, int err)
{
    rm__app_conn_t *a = rm_container_of(o, rm__app_conn_t, t);
    (void)s, (void)kind, (void)err;
    app_fail(a, "UC");
}

static void app_side_ktls(rm_side_owner_t *o, rm_side_t *s, const char *failed_step, int err)
{
    (void)o, (void)s, (void)failed_step, (void)err;
}

static const rm_side_owner_ops_t app_side_ops = {app_side_progress, app_side_error, app_side_ktls};

static void on_app_connect(rm_io_op_t *op, int res)
{
    rm_side_t *s = rm_container_of(op, rm_side_t, conn_op);
    rm__app_conn_t *a = rm_container_of(s, rm__app_conn_t, side);
    rm__req_in_stream_t *st = NULL;
    a->t.pending--;
    a->connecting = 0;
    if (!a->t.closing && res != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "app_connect_failed");
        rm_log_addr(&l, "app", (struct sockaddr *)&a->target.ss);
        rm_log_err(&l, "error", res);
        rm_log_end(&l);
        atomic_fetch_add_explicit(&a->w->stats.connect_failed, 1, memory_order_relaxed);
        st = a->st;
        a->st = NULL;
        a->failed = 1;
        app_close(a);
        if (st != NULL)
            rm__req_in_app_failed(st, "UF");
    } else if (!a->t.closing) {
        int one = 1;
        setsockopt(s->h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        s->ready = 1;
    }
    app_progress(a);
    if (st != NULL)
        rm__req_in_kick(st);
}

/* ------------------------------------------------------------------ the stream's side */

static int same_target(const rm_sockaddr_t *x, const rm_sockaddr_t *y)
{
    return x->len == y->len && memcmp(&x->ss, &y->ss, x->len) == 0;
}

rm__app_conn_t *rm__app_h1_send(rm_worker_t *w, const rm_sockaddr_t *target, rm__req_in_stream_t *st, const char *head,
                                size_t head_len, int framing, int head_request, int fresh)
{
    rm__app_conn_t *a = NULL;

    for (rm__app_conn_t *o = fresh ? NULL : w->app_conns; o != NULL; o = o->next)
        if (o->st == NULL && !o->t.closing && !o->in.src_eof && same_target(&o->target, target)) {
            a = o; /* the most recently used first: the list is kept in that order */
            break;
        }
    if (a == NULL) {
        if ((a = calloc(1, sizeof(*a))) == NULL)
            return NULL;
        a->w = w;
        a->target = *target;
        a->t.loop = w->loop;
        a->t.ops = &app_side_ops;
        a->t.last_active_ms = rm_loop_now_ms(w->loop);
        rm_side_init(&a->side, &a->t, &a->in, &a->out);
        if (rm_side_connect(&a->side, (const struct sockaddr *)&a->target.ss, a->target.len, on_app_connect) != 0) {
            free(a);
            return NULL;
        }
        a->connecting = 1; /* counted in t.pending by rm_side_connect */
        a->next = w->app_conns;
        if (w->app_conns != NULL)
            w->app_conns->prev = a;
        w->app_conns = a;
        w->num_app_conns++;
    } else if (a != w->app_conns) { /* to the front: the one used last is reused first, the others age out */
        a->prev->next = a->next;
        if (a->next != NULL)
            a->next->prev = a->prev;
        a->prev = NULL;
        a->next = w->app_conns;
        w->app_conns->prev = a;
        w->app_conns = a;
    }
    a->st = st;
    a->framing = (uint8_t)framing;
    a->head_request = (uint8_t)head_request;
    a->resp_started = a->resp_head = a->resp_complete = a->keep_alive = 0;
    a->hold.len = a->tx.len = a->retry.len = 0;
    a->tx_body = 0;
    http_parser_init(&a->parser, HTTP_RESPONSE);
    if (rm_bytebuf_append(&a->tx, head, head_len) != 0 ||
        (framing == RM_H1C_BODY_NONE && rm_bytebuf_append(&a->retry, head, head_len) != 0)) {
        a->st = NULL;
        app_close(a);
        return NULL;
    }
    /* a connection already there sends at once; a new one once connected (its progress) */
    if (app_send(a) != 0) {
        a->st = NULL;
        app_close(a);
        return NULL;
    }
    return a;
}

int rm__app_h1_body(rm__app_conn_t *a, const uint8_t *p, size_t n)
{
    char ch[24];
    int ret = 0;
    if (n == 0)
        return 0;
    if (a->framing == RM_H1C_BODY_CHUNKED) {
        size_t k = rm_h1c_chunk_head(n, ch);
        ret = rm_bytebuf_append(&a->tx, ch, k);
    }
    if (ret == 0)
        ret = rm_bytebuf_append(&a->tx, p, n);
    if (ret == 0 && a->framing == RM_H1C_BODY_CHUNKED)
        ret = rm_bytebuf_append(&a->tx, "\r\n", 2);
    if (ret != 0)
        return ret;
    a->tx_body += n;
    return app_send(a);
}

int rm__app_h1_end(rm__app_conn_t *a, const rm_http_header_t *trailers, size_t n)
{
    if (a->framing == RM_H1C_BODY_CHUNKED) {
        char buf[4096];
        int len = rm_h1c_write_last_chunk(trailers, n, buf, sizeof(buf));
        if (len < 0)
            len = rm_h1c_write_last_chunk(NULL, 0, buf, sizeof(buf)); /* trailers too large for the app: left out */
        if (len < 0 || rm_bytebuf_append(&a->tx, buf, (size_t)len) != 0)
            return -ENOMEM;
        return app_send(a);
    }
    return 0;
}

void rm__app_h1_resume(rm__app_conn_t *a)
{
    /* from the stream's own progress: hand what is held on now, and receive again from the connection's */
    if (a->st == NULL || a->t.closing || a->hold.len == 0)
        return;
    if (app_deliver(a))
        return;
    if (a->hold.len == 0 && !a->t.closing && a->side.ready && !a->in.src_eof)
        (void)rm_side_fill(&a->side, 0);
}

void rm__app_h1_detach(rm__app_conn_t *a, int clean)
{
    if (a->st == NULL)
        return;
    if (clean && a->resp_complete && a->hold.len == 0 && !a->failed && !a->t.closing) {
        app_idle(a);
    } else {
        a->st = NULL;
        app_close(a);
    }
    if (a->t.closing && a->t.pending == 0 && a->in_progress == 0)
        app_free(a);
}

void rm__app_pool_tick(rm_worker_t *w, uint64_t now_ms)
{
    for (rm__app_conn_t *a = w->app_conns, *next; a != NULL; a = next) {
        next = a->next;
        if (a->st == NULL && !a->t.closing && now_ms - a->idle_since_ms >= APP_IDLE_MS) {
            app_close(a);
            if (a->t.pending == 0)
                app_free(a);
        }
    }
}

size_t rm__app_pool_cut(rm_worker_t *w)
{
    for (rm__app_conn_t *a = w->app_conns, *next; a != NULL; a = next) {
        next = a->next;
        if (a->st != NULL) {
            rm__req_in_stream_t *st = a->st;
            a->st = NULL;
            rm__req_in_app_failed(st, "UC");
        }
        app_close(a);
        if (a->t.pending == 0)
            app_free(a);
    }
    return w->num_app_conns;
}
