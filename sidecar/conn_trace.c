/* Spans on the request path (conn_trace.h). */
#include "conn_trace.h"

#include "ringmesh/http_path.h"
#include "ringmesh/trace_context.h"
#include "trace_export.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct {
    uint8_t used;
    char trace_hex[33];
    rm_span_t span;
} slot_t;

struct st_rm_conn_trace_t {
    slot_t slots[RM_CONN_TRACE_SLOTS];
    /* the header fields of the last forwarded request (http_filter.h: valid until the hook's next call) */
    char traceparent[RM_TRACEPARENT_LEN + 1];
    char tracestate[RM_TRACESTATE_MAX_LEN + 1];
    char b3[32 + 1 + 16 + 2 + 1 + 16 + 1];
    char b3_trace[33], b3_span[17], b3_parent[17];
};

/* What rm_conn_trace_request_id worked out for the request being decided on this thread, so that the span keeps the
 * trace id the decision log wrote, and the decision conn_authz noted for it. */
typedef struct {
    const rm_http_request_t *req; /* NULL: nothing pending */
    const char *path;
    const rm_http_header_t *headers;
    size_t num_headers;
    uint32_t stream_id;
    rm_trace_incoming_t in;
    uint8_t new_trace_id[16];
    char hex[33];
    uint8_t has_decision;
    char decision[16];
    char policy[256];
} pending_t;

static __thread pending_t pending;

static uint64_t now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int pending_is(const rm_http_request_t *req)
{
    return pending.req == req && pending.path == req->path && pending.headers == req->headers &&
           pending.num_headers == req->num_headers && pending.stream_id == req->stream_id;
}

/* The request's incoming context and, when it has none, the id of its new trace: from the pending record when the
 * decision log asked first, else worked out now. Returns 0, or an error when no id could be drawn. */
static int request_context(const rm_http_request_t *req, rm_trace_incoming_t *in, uint8_t trace_id[16])
{
    int was_pending = pending_is(req);
    pending.req = NULL; /* used once */
    rm_trace_extract(req->headers, req->num_headers, in);
    if (in->source != RM_TRACE_FROM_NONE) {
        memcpy(trace_id, in->parent.trace_id, 16);
        return 0;
    }
    /* no context: the trace the decision log already named, when it was this request's */
    if (was_pending && pending.in.source == RM_TRACE_FROM_NONE) {
        memcpy(trace_id, pending.new_trace_id, 16);
        return 0;
    }
    return rm_trace_random_ids(trace_id, NULL);
}

const char *rm_conn_trace_request_id(const rm_http_request_t *req)
{
    if (rm_trace_exporter() == NULL)
        return NULL; /* tracing off: the decision log reads the request's own fields */
    rm_trace_extract(req->headers, req->num_headers, &pending.in);
    if (pending.in.source != RM_TRACE_FROM_NONE) {
        memcpy(pending.new_trace_id, pending.in.parent.trace_id, 16);
    } else if (rm_trace_random_ids(pending.new_trace_id, NULL) != 0) {
        pending.req = NULL;
        return NULL;
    }
    pending.req = req;
    pending.path = req->path;
    pending.headers = req->headers;
    pending.num_headers = req->num_headers;
    pending.stream_id = req->stream_id;
    pending.has_decision = 0;
    rm_trace_hex(pending.new_trace_id, 16, pending.hex);
    return pending.hex;
}

void rm_conn_trace_note_decision(const rm_http_request_t *req, const char *decision, const char *ns, const char *name)
{
    if (!pending_is(req) || decision == NULL)
        return;
    snprintf(pending.decision, sizeof(pending.decision), "%s", decision);
    if (ns != NULL && name != NULL)
        snprintf(pending.policy, sizeof(pending.policy), "%s/%s", ns, name);
    else
        pending.policy[0] = '\0';
    pending.has_decision = 1;
}

static void set_header(rm_http_decision_t *out, const char *name, const char *value, size_t value_len)
{
    if (out->num_set >= RM_HTTP_MAX_SET_HEADERS)
        return;
    out->set[out->num_set].name = name;
    out->set[out->num_set].name_len = strlen(name);
    out->set[out->num_set].value = value;
    out->set[out->num_set].value_len = value_len;
    out->num_set++;
}

/* The forwarded request's context: traceparent, tracestate as received, and B3 rewritten when B3 came in, in that
 * order of importance, within RM_HTTP_MAX_SET_HEADERS fields. */
static void propagate(rm_conn_trace_t *t, const rm_trace_incoming_t *in, const rm_span_context_t *ctx,
                      rm_http_decision_t *out)
{
    int has_parent = in->source != RM_TRACE_FROM_NONE, sampled = (ctx->flags & RM_TRACE_FLAG_SAMPLED) != 0;
    rm_traceparent_format(ctx, t->traceparent);
    set_header(out, "traceparent", t->traceparent, RM_TRACEPARENT_LEN);
    if (in->source == RM_TRACE_FROM_W3C && in->tracestate_len > 0) {
        memcpy(t->tracestate, in->tracestate, in->tracestate_len);
        set_header(out, "tracestate", t->tracestate, in->tracestate_len);
    }
    if (!in->has_b3_single && !in->has_b3_multi)
        return; /* no B3 came: none goes */
    /* B3 ids: a 64-bit B3 trace id stays 64-bit for the apps that sent it */
    size_t tn = in->b3_trace_id_64 ? 16 : 32;
    rm_trace_hex(in->b3_trace_id_64 ? ctx->trace_id + 8 : ctx->trace_id, tn / 2, t->b3_trace);
    rm_trace_hex(ctx->span_id, 8, t->b3_span);
    if (has_parent)
        rm_trace_hex(in->parent.span_id, 8, t->b3_parent);
    if (in->has_b3_single) {
        size_t n = 0;
        memcpy(t->b3, t->b3_trace, tn);
        n = tn;
        t->b3[n++] = '-';
        memcpy(t->b3 + n, t->b3_span, 16);
        n += 16;
        t->b3[n++] = '-';
        t->b3[n++] = in->b3_debug ? 'd' : sampled ? '1' : '0';
        if (has_parent) {
            t->b3[n++] = '-';
            memcpy(t->b3 + n, t->b3_parent, 16);
            n += 16;
        }
        t->b3[n] = '\0';
        set_header(out, "b3", t->b3, n);
    }
    if (in->has_b3_multi) {
        if (in->source != RM_TRACE_FROM_B3_MULTI)
            set_header(out, "x-b3-traceid", t->b3_trace, tn);
        set_header(out, "x-b3-spanid", t->b3_span, 16);
        if (has_parent)
            set_header(out, "x-b3-parentspanid", t->b3_parent, 16);
        set_header(out, "x-b3-sampled", sampled ? "1" : "0", 1);
    }
}

static const char *header_value(const rm_http_request_t *req, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->num_headers; i++) {
        const rm_http_header_t *h = &req->headers[i];
        if (h->name_len == n && strncasecmp(h->name, name, n) == 0) {
            *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

/* An address attribute and its port. */
static void span_addr(rm_span_t *s, rm_span_str_t a, const struct sockaddr *sa, uint16_t *port)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        if (port != NULL)
            *port = ntohs(v4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
        if (port != NULL)
            *port = ntohs(v6->sin6_port);
    } else {
        return;
    }
    rm_span_set_str(s, a, ip, strlen(ip));
}

/* The span's attributes from the request (OpenTelemetry's HTTP semantic conventions, and ringmesh's own). */
static void span_start(rm_span_t *s, const rm_conn_trace_info_t *info, const char *noted_decision,
                       const char *noted_policy)
{
    const rm_http_request_t *req = info->req;
    size_t n;
    const char *v;

    rm_span_set_str(s, RM_SPAN_METHOD, req->method, req->method_len);
    const char *q = memchr(req->path, '?', req->path_len);
    size_t pn = q != NULL ? (size_t)(q - req->path) : req->path_len;
    rm_span_set_str(s, RM_SPAN_PATH, req->path, pn);
    if (q != NULL && req->path_len > pn + 1) { /* a credential in the query is never exported */
        char red[RM_SPAN_TEXT_MAX + 1];
        size_t rn = rm_http_target_redact(q, req->path_len - pn, red, sizeof(red));
        rm_span_set_str(s, RM_SPAN_QUERY, red + 1, rn - 1);
    }
    rm_span_set_str(s, RM_SPAN_SCHEME, "http", 4);
    if (req->host != NULL && req->host_len > 0) {
        /* server.address is the host the client asked for; server.port its port when it names one */
        const char *h = req->host, *colon = NULL;
        size_t hn = req->host_len;
        if (h[0] == '[') {
            const char *rb = memchr(h, ']', hn);
            if (rb != NULL) {
                colon = rb + 1 < h + hn && rb[1] == ':' ? rb + 1 : NULL;
                rm_span_set_str(s, RM_SPAN_SERVER_ADDRESS, h + 1, (size_t)(rb - h - 1));
            }
        } else {
            colon = memchr(h, ':', hn);
            rm_span_set_str(s, RM_SPAN_SERVER_ADDRESS, h, colon != NULL ? (size_t)(colon - h) : hn);
        }
        if (colon != NULL) {
            unsigned port = 0;
            for (const char *p = colon + 1; p < h + hn && *p >= '0' && *p <= '9' && port <= 65535; p++)
                port = port * 10 + (unsigned)(*p - '0');
            if (port > 0 && port <= 65535)
                s->server_port = (uint16_t)port;
        }
    }
    if (info->outbound) {
        span_addr(s, RM_SPAN_PEER_ADDRESS, info->peer_addr, &s->peer_port);
        if (s->server_port == 0)
            s->server_port = s->peer_port; /* no port in the authority: the one connected to */
    } else {
        span_addr(s, RM_SPAN_CLIENT_ADDRESS, info->client_addr != NULL ? info->client_addr : info->peer_addr, NULL);
        span_addr(s, RM_SPAN_PEER_ADDRESS, info->peer_addr, &s->peer_port);
    }
    rm_span_set_str(s, RM_SPAN_PROTOCOL_VERSION, req->http2 ? "2" : "1.1", req->http2 ? 1 : 3);
    if ((v = header_value(req, "user-agent", &n)) != NULL)
        rm_span_set_str(s, RM_SPAN_USER_AGENT, v, n);
    if (info->source_principal != NULL)
        rm_span_set_str(s, RM_SPAN_SOURCE_PRINCIPAL, info->source_principal, strlen(info->source_principal));
    if (info->destination_principal != NULL)
        rm_span_set_str(s, RM_SPAN_DESTINATION_PRINCIPAL, info->destination_principal,
                        strlen(info->destination_principal));
    const char *d = info->authz_decision != NULL     ? info->authz_decision
                    : noted_decision != NULL         ? noted_decision
                    : info->verdict == RM_HTTP_ALLOW ? "allow"
                                                     : "deny";
    const char *p = info->authz_policy != NULL ? info->authz_policy : noted_policy;
    rm_span_set_str(s, RM_SPAN_AUTHZ_DECISION, d, strlen(d));
    if (p != NULL && p[0] != '\0')
        rm_span_set_str(s, RM_SPAN_AUTHZ_POLICY, p, strlen(p));
    s->grpc_status = -1;
}

uint32_t rm_conn_trace_request(rm_conn_trace_t **table, const rm_conn_trace_info_t *info, rm_http_decision_t *out)
{
    rm_trace_exporter_t *x = rm_trace_exporter();
    rm_trace_incoming_t in;
    rm_span_context_t ctx;
    uint32_t cookie = 0;

    if (x == NULL)
        return 0;
    if (*table == NULL && (*table = calloc(1, sizeof(**table))) == NULL)
        return 0; /* no memory for the table: the request goes as it came */
    rm_conn_trace_t *t = *table;
    /* the decision noted for this request (conn_authz), before request_context forgets the pending record */
    char noted_decision[sizeof(pending.decision)], noted_policy[sizeof(pending.policy)];
    int noted = pending_is(info->req) && pending.has_decision;
    if (noted) {
        memcpy(noted_decision, pending.decision, sizeof(noted_decision));
        memcpy(noted_policy, pending.policy, sizeof(noted_policy));
    }
    if (request_context(info->req, &in, ctx.trace_id) != 0 || rm_trace_random_ids(NULL, ctx.span_id) != 0)
        return 0;
    int has_parent = in.source != RM_TRACE_FROM_NONE;
    int sampled;
    if (in.b3_debug)
        sampled = 1;
    else if (has_parent && in.sampling != RM_TRACE_SAMPLING_DEFER)
        sampled =
            rm_trace_sampler_decide(rm_trace_export_sampler(x), ctx.trace_id, 1, in.sampling == RM_TRACE_SAMPLING_YES);
    else /* a new trace, or B3 that left the decision to the receiver: the root sampler decides */
        sampled = rm_trace_sampler_decide(rm_trace_export_sampler(x), ctx.trace_id, 0, 0);
    ctx.flags = sampled ? RM_TRACE_FLAG_SAMPLED : 0;
    propagate(t, &in, &ctx, out);
    if (!sampled)
        return 0;
    for (uint32_t i = 0; i < RM_CONN_TRACE_SLOTS; i++) {
        slot_t *sl = &t->slots[i];
        if (sl->used)
            continue;
        rm_span_t *s = &sl->span;
        memset(s, 0, offsetof(rm_span_t, text));
        memcpy(s->trace_id, ctx.trace_id, 16);
        memcpy(s->span_id, ctx.span_id, 8);
        if (has_parent) {
            memcpy(s->parent_span_id, in.parent.span_id, 8);
            s->has_parent = 1;
        }
        s->kind = info->outbound ? RM_SPAN_KIND_CLIENT : RM_SPAN_KIND_SERVER;
        s->flags = ctx.flags;
        s->start_ns = now_unix_ns();
        span_start(s, info, noted ? noted_decision : NULL, noted ? noted_policy : NULL);
        rm_trace_hex(ctx.trace_id, 16, sl->trace_hex);
        sl->used = 1;
        cookie = i + 1;
        break;
    }
    if (cookie == 0) {
        /* every slot holds an open exchange: the request keeps its context, the span is lost (and counted) */
        rm_trace_export_count_dropped();
    }
    return cookie;
}

/* Status ERROR, as OpenTelemetry's conventions say: a server span for 5xx (and for gRPC's server-side error codes),
 * a client span for 4xx and 5xx (and any gRPC code but OK); an exchange with no response is an error on both. */
static int span_error(const rm_span_t *s, const rm_http_exchange_t *ex)
{
    int client = s->kind == RM_SPAN_KIND_CLIENT;
    if (ex->status == 0)
        return 1;
    if (ex->grpc_status > 0) {
        if (client)
            return 1;
        switch (ex->grpc_status) {
        case 2:  /* UNKNOWN */
        case 4:  /* DEADLINE_EXCEEDED */
        case 12: /* UNIMPLEMENTED */
        case 13: /* INTERNAL */
        case 14: /* UNAVAILABLE */
        case 15: /* DATA_LOSS */
            return 1;
        default:
            return 0;
        }
    }
    return ex->status >= 500 || (client && ex->status >= 400);
}

static void slot_finish(slot_t *sl, const rm_http_exchange_t *ex)
{
    rm_trace_exporter_t *x = rm_trace_exporter();
    rm_span_t *s = &sl->span;
    s->end_ns = now_unix_ns();
    s->status_code = ex->status;
    s->grpc_status = ex->grpc_status;
    s->error = (uint8_t)span_error(s, ex);
    if (x != NULL)
        rm_trace_export_submit(x, s);
    sl->used = 0;
}

void rm_conn_trace_exchange(rm_conn_trace_t *table, uint32_t cookie, const rm_http_exchange_t *ex)
{
    if (table == NULL || cookie == 0 || cookie > RM_CONN_TRACE_SLOTS || !table->slots[cookie - 1].used)
        return;
    slot_finish(&table->slots[cookie - 1], ex);
}

void rm_conn_trace_destination(rm_conn_trace_t *table, uint32_t cookie, const char *principal)
{
    if (table == NULL || cookie == 0 || cookie > RM_CONN_TRACE_SLOTS || !table->slots[cookie - 1].used ||
        principal == NULL)
        return;
    rm_span_set_str(&table->slots[cookie - 1].span, RM_SPAN_DESTINATION_PRINCIPAL, principal, strlen(principal));
}

const char *rm_conn_trace_id(rm_conn_trace_t *table, uint32_t cookie)
{
    if (table == NULL || cookie == 0 || cookie > RM_CONN_TRACE_SLOTS || !table->slots[cookie - 1].used)
        return NULL;
    return table->slots[cookie - 1].trace_hex;
}

void rm_conn_trace_free(rm_conn_trace_t *table)
{
    if (table == NULL)
        return;
    for (size_t i = 0; i < RM_CONN_TRACE_SLOTS; i++) {
        if (table->slots[i].used) {
            rm_http_exchange_t cut = {.grpc_status = -1};
            slot_finish(&table->slots[i], &cut);
        }
    }
    free(table);
}
