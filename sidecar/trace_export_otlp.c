/* The exporter's pieces that need no thread: span text, the OTLP encoding of a batch (protobuf-c over
 * proto/otlp/trace_export.proto), and the OTEL_* list variables (trace_export_internal.h). */
#include "trace_export_internal.h"

#include "otlp/trace_export.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const str_keys[RM_SPAN_NUM_STR] = {
    [RM_SPAN_METHOD] = "http.request.method",
    [RM_SPAN_PATH] = "url.path",
    [RM_SPAN_QUERY] = "url.query",
    [RM_SPAN_SCHEME] = "url.scheme",
    [RM_SPAN_ROUTE] = "http.route",
    [RM_SPAN_SERVER_ADDRESS] = "server.address",
    [RM_SPAN_CLIENT_ADDRESS] = "client.address",
    [RM_SPAN_PEER_ADDRESS] = "network.peer.address",
    [RM_SPAN_PROTOCOL_VERSION] = "network.protocol.version",
    [RM_SPAN_USER_AGENT] = "user_agent.original",
    [RM_SPAN_SOURCE_PRINCIPAL] = "ringmesh.source_principal",
    [RM_SPAN_DESTINATION_PRINCIPAL] = "ringmesh.destination_principal",
    [RM_SPAN_AUTHZ_DECISION] = "ringmesh.authz.decision",
    [RM_SPAN_AUTHZ_POLICY] = "ringmesh.authz.policy",
};

void rm_span_set_str(rm_span_t *s, rm_span_str_t a, const char *v, size_t n)
{
    size_t room = RM_SPAN_TEXT_MAX - s->text_len;
    if (v == NULL || a >= RM_SPAN_NUM_STR)
        return;
    if (n > room)
        n = room;
    memcpy(s->text + s->text_len, v, n);
    s->str_off[a] = s->text_len;
    s->str_len[a] = (uint16_t)n;
    s->text_len += (uint16_t)n;
}

size_t rm_span_name(const rm_span_t *s, char *out, size_t cap)
{
    size_t o = 0;
    const char *m = s->text + s->str_off[RM_SPAN_METHOD], *r = s->text + s->str_off[RM_SPAN_ROUTE];
    size_t mn = s->str_len[RM_SPAN_METHOD], rn = s->str_len[RM_SPAN_ROUTE];
    if (cap == 0)
        return 0;
    if (mn == 0) {
        m = "HTTP";
        mn = 4;
    }
    if (mn > cap - 1)
        mn = cap - 1;
    memcpy(out, m, mn);
    o = mn;
    if (rn > 0 && o + 1 < cap) {
        out[o++] = ' ';
        if (rn > cap - 1 - o)
            rn = cap - 1 - o;
        memcpy(out + o, r, rn);
        o += rn;
    }
    out[o] = '\0';
    return o;
}

/* A batch's protobuf objects live in one arena sized for the batch, allocated by the exporter thread per export.
 * The span's attribute strings, each with its NUL, share one buffer: together they are at most the span's text (a
 * buffer per attribute, each as large as the whole text, made a batch of 512 spans take 6 MB, which the exporter's
 * heap then kept). */
typedef struct {
    Ringmesh__Otlp__KeyValue kv[RM_SPAN_NUM_STR + 6];
    Ringmesh__Otlp__AnyValue av[RM_SPAN_NUM_STR + 6];
    Ringmesh__Otlp__KeyValue *kvp[RM_SPAN_NUM_STR + 6];
    char strs[RM_SPAN_TEXT_MAX + RM_SPAN_NUM_STR];
    char name[160];
    Ringmesh__Otlp__Status status;
    Ringmesh__Otlp__Span span;
} span_pb_t;

static void kv_str(span_pb_t *p, size_t *n, const char *key, char *v)
{
    ringmesh__otlp__key_value__init(&p->kv[*n]);
    ringmesh__otlp__any_value__init(&p->av[*n]);
    p->av[*n].value_case = RINGMESH__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    p->av[*n].string_value = v;
    p->kv[*n].key = (char *)key;
    p->kv[*n].value = &p->av[*n];
    p->kvp[*n] = &p->kv[*n];
    (*n)++;
}

static void kv_int(span_pb_t *p, size_t *n, const char *key, int64_t v)
{
    ringmesh__otlp__key_value__init(&p->kv[*n]);
    ringmesh__otlp__any_value__init(&p->av[*n]);
    p->av[*n].value_case = RINGMESH__OTLP__ANY_VALUE__VALUE_INT_VALUE;
    p->av[*n].int_value = v;
    p->kv[*n].key = (char *)key;
    p->kv[*n].value = &p->av[*n];
    p->kvp[*n] = &p->kv[*n];
    (*n)++;
}

static void span_to_pb(const rm_span_t *s, span_pb_t *p)
{
    Ringmesh__Otlp__Span *o = &p->span;
    size_t n = 0, used = 0;

    ringmesh__otlp__span__init(o);
    o->trace_id.data = (uint8_t *)s->trace_id;
    o->trace_id.len = 16;
    o->span_id.data = (uint8_t *)s->span_id;
    o->span_id.len = 8;
    if (s->has_parent) {
        o->parent_span_id.data = (uint8_t *)s->parent_span_id;
        o->parent_span_id.len = 8;
    }
    rm_span_name(s, p->name, sizeof(p->name));
    o->name = p->name;
    o->kind = s->kind == RM_SPAN_KIND_CLIENT ? RINGMESH__OTLP__SPAN__SPAN_KIND__SPAN_KIND_CLIENT
                                             : RINGMESH__OTLP__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    o->start_time_unix_nano = s->start_ns;
    o->end_time_unix_nano = s->end_ns;
    o->flags = s->flags;
    for (int a = 0; a < RM_SPAN_NUM_STR; a++) {
        if (s->str_len[a] == 0)
            continue;
        char *v = p->strs + used; /* str_len's sum is at most text_len <= RM_SPAN_TEXT_MAX */
        memcpy(v, s->text + s->str_off[a], s->str_len[a]);
        v[s->str_len[a]] = '\0';
        used += (size_t)s->str_len[a] + 1;
        kv_str(p, &n, str_keys[a], v);
    }
    if (s->server_port != 0)
        kv_int(p, &n, "server.port", s->server_port);
    if (s->peer_port != 0)
        kv_int(p, &n, "network.peer.port", s->peer_port);
    if (s->status_code != 0)
        kv_int(p, &n, "http.response.status_code", s->status_code);
    if (s->grpc_status >= 0)
        kv_int(p, &n, "rpc.grpc.status_code", s->grpc_status);
    o->attributes = p->kvp;
    o->n_attributes = n;
    if (s->error) {
        ringmesh__otlp__status__init(&p->status);
        p->status.code = RINGMESH__OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        o->status = &p->status;
    }
}

int rm__trace_encode(const rm_span_t *spans, size_t n, const rm__trace_resource_t *res, uint8_t **out, size_t *len)
{
    int ret = 0;
    span_pb_t *pb = NULL;
    Ringmesh__Otlp__Span **sp = NULL;
    Ringmesh__Otlp__KeyValue *rkv = NULL, **rkvp = NULL;
    Ringmesh__Otlp__AnyValue *rav = NULL;
    Ringmesh__Otlp__Resource resource = RINGMESH__OTLP__RESOURCE__INIT;
    Ringmesh__Otlp__InstrumentationScope scope = RINGMESH__OTLP__INSTRUMENTATION_SCOPE__INIT;
    Ringmesh__Otlp__ScopeSpans ss = RINGMESH__OTLP__SCOPE_SPANS__INIT, *ssp = &ss;
    Ringmesh__Otlp__ResourceSpans rs = RINGMESH__OTLP__RESOURCE_SPANS__INIT, *rsp = &rs;
    Ringmesh__Otlp__ExportTraceServiceRequest req = RINGMESH__OTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT;

    *out = NULL;
    if ((pb = calloc(n > 0 ? n : 1, sizeof(*pb))) == NULL || (sp = calloc(n > 0 ? n : 1, sizeof(*sp))) == NULL ||
        (rkv = calloc(res->num + 1, sizeof(*rkv))) == NULL || (rkvp = calloc(res->num + 1, sizeof(*rkvp))) == NULL ||
        (rav = calloc(res->num + 1, sizeof(*rav))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < n; i++) {
        span_to_pb(&spans[i], &pb[i]);
        sp[i] = &pb[i].span;
    }
    for (size_t i = 0; i < res->num; i++) {
        ringmesh__otlp__key_value__init(&rkv[i]);
        ringmesh__otlp__any_value__init(&rav[i]);
        rav[i].value_case = RINGMESH__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
        rav[i].string_value = res->values[i];
        rkv[i].key = res->keys[i];
        rkv[i].value = &rav[i];
        rkvp[i] = &rkv[i];
    }
    resource.attributes = rkvp;
    resource.n_attributes = res->num;
    scope.name = "ringmesh-proxy";
    scope.version = RM__TRACE_SCOPE_VERSION;
    ss.scope = &scope;
    ss.spans = sp;
    ss.n_spans = n;
    rs.resource = &resource;
    rs.scope_spans = &ssp;
    rs.n_scope_spans = 1;
    req.resource_spans = &rsp;
    req.n_resource_spans = 1;
    *len = ringmesh__otlp__export_trace_service_request__get_packed_size(&req);
    if ((*out = malloc(*len > 0 ? *len : 1)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    ringmesh__otlp__export_trace_service_request__pack(&req, *out);
Exit:
    free(pb);
    free(sp);
    free(rkv);
    free(rkvp);
    free(rav);
    return ret;
}

/* Percent-decodes s[0, n) into a new string (W3C Baggage's value encoding, used by the OTEL_* list variables). */
static char *percent_decode(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    size_t o = 0;
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = rm__trace_hexval(s[i + 1])) >= 0 &&
            (lo = rm__trace_hexval(s[i + 2])) >= 0) {
            d[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    return d;
}

int rm__trace_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void trim(const char **a, const char **b)
{
    while (*a < *b && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t'))
        (*b)--;
}

int rm__trace_kv_list_parse(const char *s, rm__trace_kv_cb cb, void *ctx, const char **bad, size_t *bad_len)
{
    int ret = 0;
    const char *p = s, *end = s + strlen(s);
    *bad = NULL;
    *bad_len = 0;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *e = comma != NULL ? comma : end;
        const char *a = p, *b = e, *eq = memchr(p, '=', (size_t)(e - p));
        trim(&a, &b);
        if (a < b) {
            const char *ka = a, *kb = eq != NULL ? eq : b, *va = eq != NULL ? eq + 1 : b, *vb = b;
            trim(&ka, &kb);
            trim(&va, &vb);
            if (eq == NULL || ka == kb) {
                if (*bad == NULL) {
                    *bad = a;
                    *bad_len = (size_t)(b - a);
                }
                ret = -EINVAL;
            } else {
                char *k = percent_decode(ka, (size_t)(kb - ka)), *v = percent_decode(va, (size_t)(vb - va));
                if (k == NULL || v == NULL) {
                    free(k);
                    free(v);
                    return -ENOMEM;
                }
                cb(ctx, k, v); /* takes both */
            }
        }
        p = e + (comma != NULL);
    }
    return ret;
}
