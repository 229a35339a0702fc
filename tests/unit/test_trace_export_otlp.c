/* The exporter's pieces without a thread (trace_export_internal.h): the OTEL_* list variables, span text and names,
 * and the OTLP encoding of a batch (read back with the generated decoder; the independent decoder is the test
 * collector's, in tests/e2e/test_trace_export.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "otlp/trace_export.pb-c.h"
#include "trace_export_internal.h"

/* The largest calloc since the last reset (linked with -Wl,--wrap=calloc, tests/CMakeLists.txt): what an export
 * makes its heap hold. */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static size_t largest_calloc;
void *__wrap_calloc(size_t n, size_t size)
{
    if (size != 0 && n <= SIZE_MAX / size && n * size > largest_calloc)
        largest_calloc = n * size;
    return __real_calloc(n, size);
}

typedef struct {
    char out[512];
    size_t n;
} kv_seen_t;

static void collect(void *ctx, char *k, char *v)
{
    kv_seen_t *s = ctx;
    s->n++;
    size_t o = strlen(s->out);
    snprintf(s->out + o, sizeof(s->out) - o, "[%s]=[%s];", k, v);
    free(k);
    free(v);
}

static void test_kv_lists(void **state)
{
    static const struct {
        const char *in, *want, *bad;
    } cases[] = {
        {"a=1,b=2", "[a]=[1];[b]=[2];", NULL},
        {" a = 1 , b=2 ", "[a]=[1];[b]=[2];", NULL},
        {"Authorization=Bearer%20abc%3D%3d", "[Authorization]=[Bearer abc==];", NULL},
        {"k=%zz,j=%4", "[k]=[%zz];[j]=[%4];", NULL}, /* not an escape: kept */
        {"a=1,,b=", "[a]=[1];[b]=[];", NULL},
        {"", "", NULL},
        {"a=1,novalue,b=2", "[a]=[1];[b]=[2];", "novalue"},
        {"=v,c=3", "[c]=[3];", "=v"},
        {"service.name=orders,k8s.pod.name=o-1", "[service.name]=[orders];[k8s.pod.name]=[o-1];", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kv_seen_t seen = {.out = "", .n = 0};
        const char *bad;
        size_t bad_len;
        int r = rm__trace_kv_list_parse(cases[i].in, collect, &seen, &bad, &bad_len);
        if (strcmp(seen.out, cases[i].want) != 0)
            fail_msg("\"%s\": got %s, want %s", cases[i].in, seen.out, cases[i].want);
        if (cases[i].bad == NULL) {
            assert_int_equal(r, 0);
        } else {
            assert_int_equal(r, -22);
            assert_int_equal(bad_len, strlen(cases[i].bad));
            assert_memory_equal(bad, cases[i].bad, bad_len);
        }
    }
}

static void test_span_text_and_name(void **state)
{
    rm_span_t s;
    char name[32], big[RM_SPAN_TEXT_MAX + 100];
    memset(&s, 0, sizeof(s));
    assert_int_equal(rm_span_name(&s, name, sizeof(name)), 4);
    assert_string_equal(name, "HTTP"); /* no method known */
    rm_span_set_str(&s, RM_SPAN_METHOD, "POST", 4);
    rm_span_name(&s, name, sizeof(name));
    assert_string_equal(name, "POST");
    rm_span_set_str(&s, RM_SPAN_ROUTE, "/orders/{id}", 12);
    rm_span_name(&s, name, sizeof(name));
    assert_string_equal(name, "POST /orders/{id}");
    rm_span_name(&s, name, 8);
    assert_string_equal(name, "POST /o"); /* cut to the room */
    /* the text is bounded: a value past the room is cut, the next ones are empty */
    memset(big, 'x', sizeof(big));
    rm_span_set_str(&s, RM_SPAN_PATH, big, sizeof(big));
    assert_int_equal(s.text_len, RM_SPAN_TEXT_MAX);
    assert_int_equal(s.str_len[RM_SPAN_PATH], RM_SPAN_TEXT_MAX - 16);
    rm_span_set_str(&s, RM_SPAN_USER_AGENT, "curl", 4);
    assert_int_equal(s.str_len[RM_SPAN_USER_AGENT], 0);
}

static void test_encode(void **state)
{
    rm_span_t spans[2];
    memset(spans, 0, sizeof(spans));
    for (int i = 0; i < 2; i++) {
        memset(spans[i].trace_id, 0x11, 16);
        memset(spans[i].span_id, 0x20 + i, 8);
        spans[i].kind = i == 0 ? RM_SPAN_KIND_CLIENT : RM_SPAN_KIND_SERVER;
        spans[i].start_ns = 1000;
        spans[i].end_ns = 2000 + (uint64_t)i;
        spans[i].grpc_status = -1;
        rm_span_set_str(&spans[i], RM_SPAN_METHOD, "GET", 3);
    }
    spans[1].has_parent = 1;
    memset(spans[1].parent_span_id, 0x20, 8);
    spans[1].status_code = 503;
    spans[1].grpc_status = 14;
    spans[1].error = 1;
    spans[1].server_port = 8080;
    char *keys[] = {"service.name", "k8s.pod.name"}, *values[] = {"orders", "orders-1"};
    rm__trace_resource_t res = {keys, values, 2};
    uint8_t *buf;
    size_t len;
    assert_int_equal(rm__trace_encode(spans, 2, &res, &buf, &len), 0);
    Ringmesh__Otlp__ExportTraceServiceRequest *r = ringmesh__otlp__export_trace_service_request__unpack(NULL, len, buf);
    assert_non_null(r);
    assert_int_equal(r->n_resource_spans, 1);
    Ringmesh__Otlp__ResourceSpans *rs = r->resource_spans[0];
    assert_int_equal(rs->resource->n_attributes, 2);
    assert_string_equal(rs->resource->attributes[1]->value->string_value, "orders-1");
    assert_string_equal(rs->scope_spans[0]->scope->name, "ringmesh-proxy");
    assert_int_equal(rs->scope_spans[0]->n_spans, 2);
    Ringmesh__Otlp__Span *c = rs->scope_spans[0]->spans[0], *sv = rs->scope_spans[0]->spans[1];
    assert_int_equal(c->kind, RINGMESH__OTLP__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
    assert_int_equal(c->parent_span_id.len, 0); /* a root span has no parent field */
    assert_null(c->status);
    assert_int_equal(c->n_attributes, 1);
    assert_int_equal(sv->kind, RINGMESH__OTLP__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    assert_int_equal(sv->parent_span_id.len, 8);
    assert_memory_equal(sv->parent_span_id.data, c->span_id.data, 8);
    assert_int_equal(sv->end_time_unix_nano, 2001);
    assert_string_equal(sv->name, "GET");
    assert_non_null(sv->status);
    assert_int_equal(sv->status->code, RINGMESH__OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    int seen = 0;
    for (size_t i = 0; i < sv->n_attributes; i++) {
        const Ringmesh__Otlp__KeyValue *kv = sv->attributes[i];
        if (strcmp(kv->key, "http.response.status_code") == 0 && kv->value->int_value == 503)
            seen |= 1;
        if (strcmp(kv->key, "rpc.grpc.status_code") == 0 && kv->value->int_value == 14)
            seen |= 2;
        if (strcmp(kv->key, "server.port") == 0 && kv->value->int_value == 8080)
            seen |= 4;
    }
    assert_int_equal(seen, 7);
    ringmesh__otlp__export_trace_service_request__free_unpacked(r, NULL);
    free(buf);
}

/* A full batch (512 spans, the default OTEL_BSP_MAX_EXPORT_BATCH_SIZE) whose spans have every string attribute, their
 * text filled to the end (the last ones cut): every value comes back as set, and the encoding's working memory is
 * a few KiB per span, not a text-sized buffer per attribute (that was 11 KiB per span, 6 MB per batch, which the
 * exporter thread's heap then kept). */
#define FULL_BATCH 512
static void test_encode_full_batch(void **state)
{
    rm_span_t *spans = calloc(FULL_BATCH, sizeof(*spans));
    char v[RM_SPAN_NUM_STR][80];
    assert_non_null(spans);
    for (int a = 0; a < RM_SPAN_NUM_STR; a++)
        snprintf(v[a], sizeof(v[a]), "attribute-%02d-%s", a,
                 "0123456789012345678901234567890123456789012345678901234567890123");
    for (int i = 0; i < FULL_BATCH; i++) {
        memset(spans[i].trace_id, 0x11, 16);
        memset(spans[i].span_id, 1 + i % 200, 8);
        spans[i].kind = RM_SPAN_KIND_SERVER;
        spans[i].grpc_status = -1;
        for (int a = 0; a < RM_SPAN_NUM_STR; a++)
            rm_span_set_str(&spans[i], (rm_span_str_t)a, v[a], strlen(v[a]));
    }
    assert_int_equal(spans[0].text_len, RM_SPAN_TEXT_MAX); /* full: the last attributes were cut */
    rm__trace_resource_t res = {NULL, NULL, 0};
    uint8_t *buf;
    size_t len;
    largest_calloc = 0;
    assert_int_equal(rm__trace_encode(spans, FULL_BATCH, &res, &buf, &len), 0);
    assert_true(largest_calloc / FULL_BATCH <= 4096);
    Ringmesh__Otlp__ExportTraceServiceRequest *r = ringmesh__otlp__export_trace_service_request__unpack(NULL, len, buf);
    assert_non_null(r);
    assert_int_equal(r->resource_spans[0]->scope_spans[0]->n_spans, FULL_BATCH);
    for (int i = 0; i < FULL_BATCH; i += 97) {
        const Ringmesh__Otlp__Span *sp = r->resource_spans[0]->scope_spans[0]->spans[i];
        size_t k = 0;
        for (int a = 0; a < RM_SPAN_NUM_STR; a++) {
            if (spans[i].str_len[a] == 0)
                continue;
            assert_true(k < sp->n_attributes);
            const char *got = sp->attributes[k++]->value->string_value;
            assert_int_equal(strlen(got), spans[i].str_len[a]);
            assert_memory_equal(got, v[a], spans[i].str_len[a]);
        }
    }
    ringmesh__otlp__export_trace_service_request__free_unpacked(r, NULL);
    free(buf);
    free(spans);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_lists),
        cmocka_unit_test(test_span_text_and_name),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_full_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
