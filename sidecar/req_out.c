/* The outbound request path (docs/traffic-management.md, "Requests"): an app's HTTP/1.x connection to an in-mesh
 * destination with endpoints is served by the proxy itself. Each request is planned (req_out_plan.h: route, filters,
 * endpoint by EWMA P2C, the HTTP/2 header list) and sent as a stream on the worker's pooled connections to that
 * endpoint (req_conn.h); its response is written back as HTTP/1.1 (http1_codec.h). One request at a time per app
 * connection: pipelined requests wait in the pipe, answered in order.
 *
 * The request body is read from the app only as fast as the stream's body buffer takes it, and the response body
 * only as fast as the app takes it (the stream's window is given back as bytes reach the app's pipe): no unbounded
 * buffering either way. */
#include "conn_observe.h"
#include "http1_codec.h"
#include "proxy_conn-t.h"
#include "req_conn.h"
#include "req_out.h"
#include "req_out_plan.h"
#include "ringmesh/bytebuf.h"
#include "ringmesh/log.h"
#include "ringmesh/retry.h"

#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FIELDS        RM_H2S_MAX_FIELDS
#define ARENA_BYTES       8192
#define NAMES_BYTES       8192
#define OUT_HIGH          (256 * 1024)  /* response bytes held for the app past which no more window is given back */
#define RETRY_UNSENT      3             /* endpoints one request tries when its bytes were never taken */
#define UNSENT_PENALTY_NS 1000000000ull /* an endpoint whose connection failed counts as this slow */

typedef enum { PH_HEAD = 0, PH_BODY, PH_WAIT, PH_CLOSING } phase_t;

struct st_rm_req_out_t {
    rm_req_user_t user;
    rm_conn_t *c;
    const rm_destination_t *dest;
    http_parser parser;
    phase_t phase;
    /* the request */
    uint8_t *head; /* a pool buffer: the head's copy, which the parsed fields point into */
    size_t head_len;
    rm_http_header_t fields[MAX_FIELDS];
    size_t num_fields;
    const char *url;
    size_t url_len;
    uint8_t field_over, parsed_head, message_done, is_head_method, close_after, has_body, body_started;
    uint8_t expect_continue, by_proxy, reported, lf_fed;
    rm_req_stream_t *st;
    rm_sockaddr_t ep_addr;
    uint8_t ep_known;
    uint64_t sent_ns;
    uint64_t deadline_ms;              /* the request's timeout; 0: none */
    const rm_route_filter_t *resp_mod; /* the rule's ResponseHeaderModifier (in c->snap), NULL: none */
    rm_retry_policy_t policy;          /* the rule's retry over traffic.retry */
    uint32_t retries;                  /* retries of the request after a response the policy retries */
    uint8_t retry_pending;             /* the response was dropped: the request goes again */
    rm_sockaddr_t tried[4];            /* endpoints the request went to */
    unsigned num_tried;
    unsigned attempts;
    uint64_t cookie, req_bytes, resp_bytes;
    /* the response */
    rm_bytebuf_t out;  /* bytes for the app not yet in its pipe */
    size_t unconsumed; /* body bytes in `out` whose window is not given back yet */
    int status;
    rm_h1c_body_t framing;
    uint8_t resp_head, resp_done, resp_cut, resp_close;
    rm_req_stream_end_t end_how;
    uint8_t ended;
    /* the plan's room */
    rm_req_out_room_t room;
    char arena[ARENA_BYTES];
    rm_http_header_t arena_headers[MAX_FIELDS];
    rm_http_header_t h2[MAX_FIELDS + RM_HTTP_MAX_SET_HEADERS + 8];
    char names[NAMES_BYTES];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static rm_req_pools_t *worker_pools(rm_conn_t *c)
{
    rm_worker_t *w = c->w;
    if (w->req_pools == NULL) {
        rm_req_pools_cfg_t pc = {.connect_timeout_ms = rm__conn_cfg(c)->connect_timeout_ms};
        w->req_pools = rm_req_pools_new(w->loop, &pc, &w->stats.handshakes);
    }
    return w->req_pools;
}

static rm_req_lb_t *worker_lb(rm_worker_t *w)
{
    if (w->req_lb == NULL && (w->req_lb = calloc(1, sizeof(*w->req_lb))) != NULL) {
        w->req_lb->cfg = (rm_lb_ewma_cfg_t){RM_LB_EWMA_DEFAULT_DECAY_NS, RM_LB_EWMA_DEFAULT_DEFAULT_RTT_NS};
        w->req_lb->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)w->index + 1);
    }
    return w->req_lb;
}

static rm_retry_budget_t *worker_budget(rm_conn_t *c)
{
    rm_worker_t *w = c->w;
    if (w->req_budget == NULL && (w->req_budget = calloc(1, sizeof(*w->req_budget))) != NULL)
        rm_retry_budget_init(w->req_budget, &rm__conn_cfg(c)->traffic.budget, w->proxy->num_workers);
    return w->req_budget;
}

static uint32_t draw(rm_worker_t *w)
{
    uint64_t x = w->ep_rng != 0 ? w->ep_rng : 88172645463325252ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->ep_rng = x;
    return (uint32_t)(x >> 32);
}

/* ------------------------------------------------------------------ parsing the app's request */

static int on_url(http_parser *p, const char *at, size_t len)
{
    rm_req_out_t *r = p->data;
    r->url = at;
    r->url_len = len;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    rm_req_out_t *r = p->data;
    if (r->num_fields == MAX_FIELDS) {
        r->field_over = 1;
        return 1;
    }
    r->fields[r->num_fields++] = (rm_http_header_t){.name = at, .name_len = len, .value = "", .value_len = 0};
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    rm_req_out_t *r = p->data;
    if (r->num_fields > 0) {
        r->fields[r->num_fields - 1].value = at;
        r->fields[r->num_fields - 1].value_len = len;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    rm_req_out_t *r = p->data;
    r->parsed_head = 1;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    rm_req_out_t *r = p->data;
    /* the caller fed at most what the stream's buffer has room for: all of it fits */
    long n = r->st != NULL ? rm_req_stream_write(r->st, (const uint8_t *)at, len) : (long)len;
    if (n < 0 || (size_t)n != len)
        return 1;
    r->req_bytes += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    rm_req_out_t *r = p->data;
    r->message_done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------ the stream's events */

static void write_out(rm_req_out_t *r, const void *p, size_t n)
{
    if (rm_bytebuf_append(&r->out, p, n) != 0)
        r->resp_cut = 1; /* no memory: the app's connection is cut rather than given a wrong response */
}

static void ev_head(rm_req_user_t *u, const rm_http_header_t *h, size_t n, int trailers, int end)
{
    rm_req_out_t *r = rm_container_of(u, rm_req_out_t, user);
    if (r->retry_pending)
        return; /* a response being dropped for a retry */
    if (!trailers && !r->resp_head) {
        int has_length = 0;
        r->status = 0;
        for (size_t i = 0; i < n; i++) {
            if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0)
                for (size_t k = 0; k < h[i].value_len && k < 3; k++)
                    r->status = r->status * 10 + (h[i].value[k] - '0');
            else if (h[i].name_len == 14 && memcmp(h[i].name, "content-length", 14) == 0)
                has_length = 1;
        }
        if (r->retries < r->policy.attempts && r->status >= 500 && !r->has_body) {
            /* a response the policy retries (503 by default, idempotent methods): dropped, the request goes again */
            rm_attempt_t a = {
                .result = RM_ATTEMPT_RESPONSE, .status = r->status, .grpc_status = -1, .body_replayable = 1};
            rm_retry_decision_t d;
            const char *m = http_method_str((enum http_method)r->parser.method);
            rm_retry_decide(&r->policy, m, strlen(m), 0, r->retries, &a, worker_budget(r->c),
                            (int64_t)rm_loop_now_ms(r->c->w->loop),
                            r->deadline_ms != 0 ? (int64_t)r->deadline_ms : RM_DEADLINE_NONE, draw(r->c->w), &d);
            if (d.retry) {
                r->retry_pending = 1;
                return;
            }
        }
        r->resp_head = 1;
        if (r->ep_known && worker_lb(r->c->w) != NULL) {
            rm_req_lb_t *lb = r->c->w->req_lb;
            /* from when a connection took it: a connection's own setup is not the endpoint's latency */
            uint64_t sent = r->st != NULL && r->st->submitted_ns != 0 ? r->st->submitted_ns : r->sent_ns;
            rm_lb_ewma_done(rm_req_lb_estimate(lb, &r->ep_addr), &lb->cfg, sent, now_ns());
            r->ep_known = 0;
        }
        if (r->resp_mod != NULL) {
            /* the rule's ResponseHeaderModifier, in the plan's arena (the request's fields are no longer needed) */
            const rm_http_header_t *mod;
            size_t num_mod;
            r->room.arena.used = r->room.arena.headers_used = 0;
            if (rm_route_apply_headers(r->resp_mod, h, n, &r->room.arena, &mod, &num_mod) == 0)
                h = mod, n = num_mod;
        }
        r->framing = rm_h1c_response_framing(r->status, r->is_head_method, has_length, r->parser.http_minor);
        if (r->framing == RM_H1C_BODY_CLOSE)
            r->resp_close = 1;
        if (rm_bytebuf_reserve(&r->out, RM_H2S_MAX_HEADER_BYTES + 1024) != 0) {
            r->resp_cut = 1;
            return;
        }
        int len = rm_h1c_write_response_head(r->status, h, n, r->framing, r->parser.http_minor,
                                             r->close_after || r->resp_close, (char *)r->out.base + r->out.len,
                                             r->out.cap - r->out.len);
        if (len < 0) {
            r->resp_cut = 1;
            return;
        }
        r->out.len += (size_t)len;
        if (end) {
            if (r->framing == RM_H1C_BODY_CHUNKED)
                write_out(r, "0\r\n\r\n", 5);
            r->resp_done = 1;
        }
        return;
    }
    if (trailers && r->resp_head && !r->resp_done) {
        if (r->framing == RM_H1C_BODY_CHUNKED) {
            char buf[8192];
            int len = rm_h1c_write_last_chunk(h, n, buf, sizeof(buf));
            if (len < 0)
                len = rm_h1c_write_last_chunk(NULL, 0, buf, sizeof(buf));
            write_out(r, buf, (size_t)len);
        }
        r->resp_done = 1;
    }
}

static int ev_data(rm_req_user_t *u, const uint8_t *p, size_t n)
{
    rm_req_out_t *r = rm_container_of(u, rm_req_out_t, user);
    if (r->retry_pending)
        return 0; /* dropped (its window goes back when the stream is cancelled) */
    r->resp_bytes += n;
    r->unconsumed += n;
    if (r->framing == RM_H1C_BODY_NONE || n == 0)
        return 0;
    if (r->framing == RM_H1C_BODY_CHUNKED) {
        char head[24];
        write_out(r, head, rm_h1c_chunk_head(n, head));
        write_out(r, p, n);
        write_out(r, "\r\n", 2);
    } else {
        write_out(r, p, n);
    }
    return 0;
}

static void ev_end(rm_req_user_t *u)
{
    rm_req_out_t *r = rm_container_of(u, rm_req_out_t, user);
    if (r->retry_pending || !r->resp_head || r->resp_done)
        return;
    if (r->framing == RM_H1C_BODY_CHUNKED)
        write_out(r, "0\r\n\r\n", 5);
    r->resp_done = 1;
}

static void ev_close(rm_req_user_t *u, rm_req_stream_end_t how, uint32_t code)
{
    rm_req_out_t *r = rm_container_of(u, rm_req_out_t, user);
    (void)code;
    r->st = NULL;
    r->ended = 1;
    r->end_how = how;
}

static void ev_kick(rm_req_user_t *u)
{
    rm_req_out_t *r = rm_container_of(u, rm_req_out_t, user);
    r->c->t.ops->progress(&r->c->t);
}

static const rm_req_stream_ops_t stream_ops = {ev_head, ev_data, ev_end, ev_close, ev_kick};

/* ------------------------------------------------------------------ one request */

static void report_request(rm_req_out_t *r, rm_http_decision_t *dec)
{
    rm_http_request_t req = {
        .method = http_method_str((enum http_method)r->parser.method),
        .path = r->url,
        .path_len = r->url_len,
    };
    req.method_len = strlen(req.method);
    req.headers = r->fields;
    req.num_headers = r->num_fields;
    for (size_t i = 0; i < r->num_fields; i++)
        if (r->fields[i].name_len == 4 && strncasecmp(r->fields[i].name, "host", 4) == 0) {
            req.host = r->fields[i].value;
            req.host_len = r->fields[i].value_len;
        }
    memset(dec, 0, sizeof(*dec));
    rm__conn_observe_request(r->c, &req, RM_HTTP_ALLOW, dec);
    r->cookie = dec->cookie;
}

static void report_exchange(rm_req_out_t *r, int by_proxy, int complete)
{
    if (!r->reported)
        return;
    r->reported = 0;
    rm_http_exchange_t ex = {
        .cookie = r->cookie,
        .status = (uint16_t)r->status,
        .grpc_status = -1,
        .request_bytes = r->req_bytes,
        .response_bytes = r->resp_bytes,
        .answered_by_proxy = (uint8_t)by_proxy,
        .complete = (uint8_t)complete,
    };
    if (r->c->obs.req != NULL)
        r->c->obs.req->mcache.base_ready = 0; /* the next request may go to another pod */
    rm__conn_observe_exchange(r->c, &ex);
}

/* The proxy answers the request itself (no route, no endpoint, a bad request, a failed upstream). */
static void answer_local(rm_req_out_t *r, int status, const char *flag, const rm_req_out_plan_t *plan)
{
    rm_req_out_plan_t local = {.kind = RM_REQ_OUT_LOCAL, .status = status, .flag = flag};
    char buf[1024];
    if (plan == NULL)
        plan = &local;
    if (!r->message_done)
        r->close_after = 1; /* the rest of its body is not read */
    int len = rm_req_out_local_response(plan, r->parser.http_minor, r->close_after, buf, sizeof(buf));
    if (len > 0)
        write_out(r, buf, (size_t)len);
    r->status = plan->status;
    r->resp_head = r->resp_done = 1;
    r->by_proxy = 1;
    if (plan->flag != NULL) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_DEBUG, "request_local_answer");
        rm__conn_log_fields(r->c, &l);
        rm_log_int(&l, "status", plan->status);
        rm_log_str(&l, "response_flags", plan->flag);
        rm_log_end(&l);
    }
}

/* Whether the request has been sent to `a` already. */
static int tried(const rm_req_out_t *r, const rm_sockaddr_t *a)
{
    for (unsigned i = 0; i < r->num_tried; i++)
        if (r->tried[i].len == a->len && memcmp(&r->tried[i].ss, &a->ss, a->len) == 0)
            return 1;
    return 0;
}

/* Plans the parsed request and opens its stream, or answers it. Returns 0 or an error that ends the connection. */
static int start_request(rm_req_out_t *r)
{
    rm_conn_t *c = r->c;
    rm_proxy_config_t *cfg = rm__conn_cfg(c);
    rm_req_out_plan_t plan;
    rm_http_decision_t dec;
    rm_req_lb_t *lb = worker_lb(c->w);
    int ret;

    rm_h1c_request_t app = {
        .method = http_method_str((enum http_method)r->parser.method),
        .target = r->url,
        .target_len = r->url_len,
        .headers = r->fields,
        .num_headers = r->num_fields,
        .minor = (uint8_t)r->parser.http_minor,
    };
    app.method_len = strlen(app.method);
    r->room.arena = (rm_route_arena_t){
        .buf = r->arena, .cap = sizeof(r->arena), .headers = r->arena_headers, .headers_cap = MAX_FIELDS};
    r->room.h2 = r->h2;
    r->room.h2_cap = MAX_FIELDS + 8;
    r->room.names = r->names;
    r->room.names_len = sizeof(r->names);
    if (lb == NULL)
        return -ENOMEM;
    /* a request sent again goes to an endpoint it has not tried, when a few draws find one (Envoy's previous_hosts) */
    for (unsigned draws = 0;; draws++) {
        if ((ret = rm_req_out_plan(r->dest, cfg->destinations, cfg->num_destinations, &app, draw(c->w), lb, now_ns(),
                                   &r->room, &plan)) != 0)
            return ret;
        if (plan.kind != RM_REQ_OUT_FORWARD || draws == 8 ||
            !tried(r, &plan.dest->endpoints->items[plan.endpoint].addr))
            break;
    }
    if (plan.kind == RM_REQ_OUT_FORWARD) {
        const rm_endpoint_t *ep = &plan.dest->endpoints->items[plan.endpoint];
        rm_conn_addr_set(&c->target, &ep->addr); /* the upstream host of the request's reports */
    }
    if (r->attempts == 0) {
        report_request(r, &dec);
        r->reported = 1;
        /* the rule's timeouts.request, else the proxy's requestTimeout; counted from the request's arrival */
        int64_t t = plan.rule != NULL && plan.rule->request_timeout_ms != RM_ROUTE_TIMEOUT_UNSET
                        ? plan.rule->request_timeout_ms
                        : (int64_t)cfg->traffic.request_timeout_ms;
        r->deadline_ms = t > 0 ? rm_loop_now_ms(c->w->loop) + (uint64_t)t : 0;
        rm_retry_policy_resolve(plan.rule, &cfg->traffic.retry, &r->policy);
        if (worker_budget(c) != NULL)
            rm_retry_budget_note_request(c->w->req_budget, (int64_t)rm_loop_now_ms(c->w->loop));
    } else
        memset(&dec, 0, sizeof(dec));
    if (plan.kind == RM_REQ_OUT_LOCAL) {
        answer_local(r, plan.status, plan.flag, &plan);
        return 0;
    }
    /* the fields the reports ask for (trace context) go with the request */
    size_t n = plan.num_h2;
    if (plan.h2 != r->h2) {
        memmove(r->h2, plan.h2, n * sizeof(*r->h2));
        plan.h2 = r->h2;
    }
    for (size_t i = 0; i < dec.num_set && n < sizeof(r->h2) / sizeof(r->h2[0]); i++)
        r->h2[n++] = (rm_http_header_t){dec.set[i].name, dec.set[i].name_len, dec.set[i].value, dec.set[i].value_len};
    /* 100-continue is answered here: the body follows at once on the stream */
    for (size_t i = 0; i < n; i++)
        if (r->h2[i].name_len == 6 && strncasecmp(r->h2[i].name, "expect", 6) == 0) {
            r->expect_continue = r->h2[i].value_len == 12 && strncasecmp(r->h2[i].value, "100-continue", 12) == 0;
            r->h2[i] = r->h2[--n];
            break;
        }
    r->resp_mod = plan.response_headers;
    const rm_endpoint_t *ep = &plan.dest->endpoints->items[plan.endpoint];
    rm_req_target_t t = {
        .addr = &ep->addr, .identity = ep->identity, .sni = plan.dest->sni, .ctx = c->snap->client_ctx};
    rm_req_pools_t *pools = worker_pools(c);
    if (pools == NULL)
        return -ENOMEM;
    r->user.ops = &stream_ops;
    r->ended = 0;
    r->st = rm_req_stream_open(pools, &t, r->h2, n, r->has_body, &r->user);
    rm_lb_ewma_start(rm_req_lb_estimate(lb, &ep->addr));
    r->ep_addr = ep->addr;
    r->ep_known = 1;
    r->sent_ns = now_ns();
    if (r->num_tried < sizeof(r->tried) / sizeof(r->tried[0]))
        r->tried[r->num_tried++] = ep->addr;
    if (r->st == NULL) {
        /* no connection could even be started: as if it had failed to connect */
        r->ended = 1;
        r->end_how = RM_REQ_STREAM_UNSENT;
        return 0;
    }
    if (r->expect_continue && r->attempts == 0 && r->parser.http_minor >= 1)
        write_out(r, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

/* The stream ended before its response did: another endpoint when nothing was taken, else 503. */
static int stream_failed(rm_req_out_t *r)
{
    rm_req_lb_t *lb = r->c->w->req_lb;
    r->ended = 0;
    if (r->ep_known && lb != NULL) {
        rm_lb_ewma_t *e = rm_req_lb_estimate(lb, &r->ep_addr);
        if (r->end_how == RM_REQ_STREAM_UNSENT || r->end_how == RM_REQ_STREAM_CONN_LOST)
            rm_lb_ewma_done(e, &lb->cfg, now_ns() - UNSENT_PENALTY_NS, now_ns());
        else
            rm_lb_ewma_cancel(e);
        r->ep_known = 0;
    }
    if (r->resp_head) {
        r->resp_cut = 1; /* part of the response is out: the app must not take it for a whole one */
        return 0;
    }
    if (r->end_how == RM_REQ_STREAM_UNSENT && !r->body_started && ++r->attempts < RETRY_UNSENT)
        return start_request(r);
    answer_local(r, 503, r->end_how == RM_REQ_STREAM_UNSENT ? "UF" : "UC", NULL);
    return 0;
}

static void request_reset(rm_req_out_t *r)
{
    if (r->head != NULL) {
        rm_buf_put(r->head);
        r->head = NULL;
    }
    r->head_len = r->num_fields = r->url_len = 0;
    r->url = NULL;
    r->field_over = r->parsed_head = r->message_done = r->is_head_method = r->has_body = r->body_started = 0;
    r->expect_continue = r->by_proxy = r->reported = r->ended = r->lf_fed = 0;
    r->attempts = 0;
    r->deadline_ms = 0;
    r->resp_mod = NULL;
    r->retries = 0;
    r->retry_pending = 0;
    r->num_tried = 0;
    r->cookie = r->req_bytes = r->resp_bytes = 0;
    r->status = 0;
    r->resp_head = r->resp_done = 0;
    r->phase = PH_HEAD;
}

/* Looks for a whole request head at the front of the app's pipe. Returns 1 when one was parsed (r->head holds it),
 * 0 when more bytes are needed, or an HTTP status to answer (400, 431). */
static int read_head(rm_req_out_t *r)
{
    rm_pipe_t *in = &r->c->d2u;
    const uint8_t *p = in->buf + in->off, *end;
    size_t n;

    if (in->len == 0)
        return 0;
    if ((end = memmem(p, in->len, "\r\n\r\n", 4)) == NULL) {
        if (in->off + in->len >= rm_buf_size(in->buf) && in->off == 0)
            return 431; /* a whole buffer and no end of head */
        return 0;
    }
    n = (size_t)(end - p) + 4;
    if ((r->head = rm_buf_get()) == NULL)
        return -ENOMEM;
    if (n > rm_buf_size(r->head))
        return 431;
    memcpy(r->head, p, n);
    r->head_len = n;
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    size_t k = http_parser_execute(&r->parser, &parser_settings, (const char *)r->head, n);
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_PAUSED || !r->parsed_head || k + 1 != n)
        return r->field_over ? 431 : 400;
    http_parser_pause(&r->parser, 0);
    r->is_head_method = r->parser.method == HTTP_HEAD;
    r->has_body =
        (r->parser.flags & F_CHUNKED) || (r->parser.content_length > 0 && r->parser.content_length != ULLONG_MAX);
    if (!http_should_keep_alive(&r->parser))
        r->close_after = 1;
    /* what the parser reads next is the head's last LF, in the app's pipe */
    in->bytes += n - 1;
    rm_pipe_consume(in, n - 1);
    return 1;
}

/* Feeds the app's pipe to the parser: the head's last LF, then body bytes as far as the stream takes them. Returns
 * 0 or an error. */
static int read_body(rm_req_out_t *r)
{
    rm_pipe_t *in = &r->c->d2u;
    while (!r->message_done && in->len > 0) {
        size_t room = r->st != NULL ? rm_req_stream_room(r->st) : 0;
        size_t feed = in->len < room ? in->len : room;
        if (!r->lf_fed)
            feed = 1; /* the head's last LF first: no body byte in it */
        if (feed == 0)
            return 0;
        size_t k = http_parser_execute(&r->parser, &parser_settings, (const char *)in->buf + in->off, feed);
        enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&r->parser, 0);
        } else if (e != HPE_OK || k != feed) {
            return -EPROTO;
        }
        if (r->lf_fed && k > 0)
            r->body_started = 1;
        r->lf_fed = 1;
        in->bytes += k;
        rm_pipe_consume(in, k);
        if (k == 0)
            return 0;
    }
    return 0;
}

/* Moves what waits for the app into its pipe and gives the stream's window back for what went. */
static void flush_out(rm_req_out_t *r)
{
    if (r->out.len == 0 || rm_pipe_append_from(&r->c->u2d, &r->out) != 0)
        return;
    if (r->st != NULL && r->unconsumed > 0 && r->out.len < OUT_HIGH) {
        rm_req_stream_consume(r->st, r->unconsumed);
        r->unconsumed = 0;
    }
}

int rm__req_out_pump(rm_conn_t *c)
{
    rm_req_out_t *r = c->rq;
    int ret;

    for (unsigned guard = 0; guard < 64; guard++) {
        int moved = 0;
        if (r->phase == PH_HEAD) {
            if ((ret = read_head(r)) < 0)
                return ret;
            if (ret > 1) {
                rm_log_line_t l;
                rm_log_begin(&l, RM_LOG_INFO, "request_refused");
                rm__conn_log_fields(c, &l);
                rm_log_int(&l, "status", ret);
                rm_log_str(&l, "reason",
                           ret == 431 ? "request head larger than a buffer or over 128 fields"
                                      : "malformed HTTP/1.x request head");
                rm_log_end(&l);
                http_parser_init(&r->parser, HTTP_REQUEST);
                r->parser.http_major = 1;
                r->parser.http_minor = 1;
                r->message_done = 0;
                answer_local(r, ret, NULL, NULL);
                r->close_after = 1;
                r->phase = PH_WAIT;
                moved = 1;
            } else if (ret == 1) {
                r->phase = PH_BODY;
                if ((ret = start_request(r)) != 0)
                    return ret;
                moved = 1;
            } else if (c->d2u.src_eof) {
                r->phase = PH_CLOSING; /* the app closed between requests */
                moved = 1;
            }
        }
        if (r->phase == PH_BODY) {
            size_t before = c->d2u.len;
            if (r->resp_done && !r->message_done) {
                r->phase = PH_WAIT; /* answered before its body: the connection closes after the answer */
                r->close_after = 1;
            } else {
                if ((ret = read_body(r)) != 0)
                    return ret;
                if (r->message_done) {
                    if (r->st != NULL && r->has_body)
                        rm_req_stream_end(r->st);
                    r->phase = PH_WAIT;
                    moved = 1;
                } else if (c->d2u.src_eof && c->d2u.len == 0) {
                    /* the app went away in the middle of its request */
                    if (r->st != NULL)
                        rm_req_stream_cancel(r->st);
                    r->st = NULL;
                    rm__conn_abort(c, RM_CONN_CLOSE_EOF);
                    return 0;
                }
                moved |= before != c->d2u.len;
            }
        }
        if (r->retry_pending) {
            rm_req_lb_t *lb = c->w->req_lb;
            if (r->st != NULL)
                rm_req_stream_cancel(r->st);
            r->st = NULL;
            if (r->ep_known && lb != NULL) { /* the failed answer counts as a slow one */
                rm_lb_ewma_done(rm_req_lb_estimate(lb, &r->ep_addr), &lb->cfg, now_ns() - UNSENT_PENALTY_NS, now_ns());
                r->ep_known = 0;
            }
            r->retry_pending = r->ended = 0;
            r->status = 0;
            r->retries++;
            r->attempts++;
            if ((ret = start_request(r)) != 0)
                return ret;
            moved = 1;
        }
        if (r->ended && !r->resp_done) {
            if ((ret = stream_failed(r)) != 0)
                return ret;
            moved = 1;
        }
        flush_out(r);
        if (r->resp_cut) {
            if (r->st != NULL)
                rm_req_stream_cancel(r->st);
            r->st = NULL;
            report_exchange(r, 0, 0);
            rm__conn_abort(c, RM_CONN_CLOSE_RESET);
            return 0;
        }
        if (r->phase == PH_WAIT && r->resp_done && r->out.len == 0 && (r->message_done || r->close_after)) {
            /* the exchange is over once the app's pipe has it all */
            report_exchange(r, r->by_proxy, 1);
            if (r->st != NULL) {
                rm_req_stream_cancel(r->st); /* a response that ended before its request body did */
                r->st = NULL;
            }
            int close = r->close_after || r->resp_close;
            request_reset(r);
            r->phase = close ? PH_CLOSING : PH_HEAD;
            moved = 1;
        }
        if (!moved)
            break;
    }
    if (r->phase == PH_CLOSING && r->out.len == 0)
        c->u2d.src_eof = 1; /* FIN once the pipe is empty */
    /* compact the app's pipe when its data sits at the end of the buffer (a head cut by the buffer's end) */
    rm_pipe_t *in = &c->d2u;
    if (in->buf != NULL && !in->recv_busy && in->off > 0 && rm_pipe_room(in) == 0) {
        memmove(in->buf, in->buf + in->off, in->len);
        in->off = 0;
    }
    if (r->phase == PH_HEAD || r->phase == PH_BODY) {
        if ((ret = rm_side_fill(&c->down, 0)) != 0)
            return ret;
    }
    if ((ret = rm_side_drain(&c->down)) != 0)
        return ret;
    if (r->phase == PH_CLOSING && rm_side_direction_done(&c->down) && !rm_side_busy(&c->down)) {
        c->close_reason = RM_CONN_CLOSE_EOF;
        c->t.closing = 1;
    }
    return 0;
}

int rm__req_out_take(rm_conn_t *c, const rm_conn_filter_ops_t *f)
{
    rm_req_out_t *r;

    if (f != &rm_conn_filter_http1)
        return 1;
    /* Upgrade and CONNECT stay on the connection's own path: peek at the first head */
    const rm_pipe_t *in = &c->d2u;
    const uint8_t *p = in->buf + in->off, *end = memmem(p, in->len, "\r\n\r\n", 4);
    if (end == NULL && rm_pipe_room(in) > 0 && !in->src_eof)
        return 2; /* more of the head first */
    if (end != NULL) {
        size_t n = (size_t)(end - p);
        if ((n >= 8 && memcmp(p, "CONNECT ", 8) == 0) || memmem(p, n, "\nUpgrade:", 9) != NULL ||
            memmem(p, n, "\nupgrade:", 9) != NULL)
            return 1;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return -ENOMEM;
    r->c = c;
    r->dest = c->rq_dest;
    r->user.ops = &stream_ops;
    r->phase = PH_HEAD;
    c->rq = r;
    c->authz_state = RM_CONN_AUTHZ_OFF;
    c->deadline_ms = 0;
    if (!c->obs.opened)
        rm__conn_observe_opened(c);
    return 0;
}

int rm__req_out_tick(rm_conn_t *c, uint64_t now_ms)
{
    rm_req_out_t *r = c->rq;
    if (r->deadline_ms == 0 || now_ms < r->deadline_ms || r->resp_done || r->phase == PH_HEAD)
        return 0;
    r->deadline_ms = 0;
    if (r->st != NULL)
        rm_req_stream_cancel(r->st);
    r->st = NULL;
    r->ended = 0;
    if (r->ep_known && c->w->req_lb != NULL) {
        rm_lb_ewma_cancel(rm_req_lb_estimate(c->w->req_lb, &r->ep_addr));
        r->ep_known = 0;
    }
    if (r->resp_head)
        r->resp_cut = 1; /* part of the response is out: the app's connection is reset */
    else
        answer_local(r, 504, "UT", NULL);
    return 1;
}

void rm__req_out_free(rm_conn_t *c)
{
    rm_req_out_t *r = c->rq;
    if (r == NULL)
        return;
    if (r->st != NULL) {
        rm_req_stream_cancel(r->st);
        report_exchange(r, 0, 0);
    }
    if (r->ep_known && c->w->req_lb != NULL)
        rm_lb_ewma_cancel(rm_req_lb_estimate(c->w->req_lb, &r->ep_addr));
    rm_req_user_unlink(c->w->req_pools, &r->user);
    if (r->head != NULL)
        rm_buf_put(r->head);
    rm_bytebuf_free(&r->out);
    free(r);
    c->rq = NULL;
}
