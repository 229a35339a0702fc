/* Trace context (ringmesh/trace_context.h): rm_trace_extract() over header fields, and each parser on its own.
 *
 * The input is header lines "name: value\n" (names folded to lower case as the filters fold them). Every field is
 * also given alone to the parser of its name, on an exactly sized copy (a read past the value is a heap overflow).
 * Invariants: what parses formats back to an equal context (traceparent), a kept tracestate is NUL-terminated, at
 * most 512 bytes and reads back to itself, and a context extracted is never all-zero. */
#include <ctype.h>
#include <string.h>

#include "fuzz.h"
#include "ringmesh/trace_context.h"

#define MAX_FIELDS 32

static int all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static void check_traceparent(const char *v, size_t n)
{
    char *copy = (char *)rm_fuzz_memdup((const uint8_t *)v, n);
    rm_span_context_t c, again;
    char out[RM_TRACEPARENT_LEN + 1];
    if (rm_traceparent_parse(copy, n, &c) == 0) {
        RM_FUZZ_CHECK(!all_zero(c.trace_id, 16) && !all_zero(c.span_id, 8));
        RM_FUZZ_CHECK((c.flags & ~RM_TRACE_FLAG_SAMPLED) == 0);
        rm_traceparent_format(&c, out);
        RM_FUZZ_CHECK(strlen(out) == RM_TRACEPARENT_LEN);
        RM_FUZZ_CHECK(rm_traceparent_parse(out, RM_TRACEPARENT_LEN, &again) == 0);
        RM_FUZZ_CHECK(memcmp(&c, &again, sizeof(c)) == 0);
        RM_FUZZ_CHECK(memcmp(out + 3, copy + 3, 49) == 0); /* the ids are the ones received */
    }
    free(copy);
}

static void check_tracestate(const char *v, size_t n)
{
    char *copy = (char *)rm_fuzz_memdup((const uint8_t *)v, n);
    char out[RM_TRACESTATE_MAX_LEN + 1], again[RM_TRACESTATE_MAX_LEN + 1];
    size_t len = 0, members = 0, len2 = 0, members2 = 0;
    out[0] = '\0';
    if (rm_tracestate_append(out, &len, &members, copy, n) == 0) {
        RM_FUZZ_CHECK(len <= RM_TRACESTATE_MAX_LEN && out[len] == '\0' && strlen(out) == len);
        RM_FUZZ_CHECK(members <= RM_TRACESTATE_MAX_MEMBERS);
        again[0] = '\0';
        RM_FUZZ_CHECK(rm_tracestate_append(again, &len2, &members2, out, len) == 0);
        RM_FUZZ_CHECK(len2 == len && memcmp(again, out, len) == 0);
    }
    free(copy);
}

static void check_b3(const char *v, size_t n)
{
    char *copy = (char *)rm_fuzz_memdup((const uint8_t *)v, n);
    rm_trace_incoming_t in;
    memset(&in, 0, sizeof(in));
    if (rm_b3_single_parse(copy, n, &in) == 0) {
        if (in.source == RM_TRACE_FROM_B3_SINGLE)
            RM_FUZZ_CHECK(!all_zero(in.parent.trace_id, 16) && !all_zero(in.parent.span_id, 8));
        else
            RM_FUZZ_CHECK(in.source == RM_TRACE_FROM_NONE && in.sampling != RM_TRACE_SAMPLING_DEFER);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = (char *)rm_fuzz_memdup(data, size);
    rm_http_header_t fields[MAX_FIELDS];
    size_t num = 0, i = 0;
    static rm_trace_incoming_t in;

    while (i < size && num < MAX_FIELDS) {
        char *line = text + i, *nl = memchr(line, '\n', size - i), *end = nl != NULL ? nl : text + size;
        char *colon = memchr(line, ':', (size_t)(end - line));
        i = (size_t)(end - text) + 1;
        if (colon == NULL)
            continue;
        for (char *p = line; p < colon; p++)
            *p = (char)tolower((unsigned char)*p);
        const char *value = colon + 1;
        while (value < end && *value == ' ')
            value++;
        fields[num++] = (rm_http_header_t){line, (size_t)(colon - line), value, (size_t)(end - value)};
    }
    for (size_t k = 0; k < num; k++) {
        const rm_http_header_t *h = &fields[k];
        if (h->name_len == 11 && memcmp(h->name, "traceparent", 11) == 0)
            check_traceparent(h->value, h->value_len);
        else if (h->name_len == 10 && memcmp(h->name, "tracestate", 10) == 0)
            check_tracestate(h->value, h->value_len);
        else if (h->name_len == 2 && memcmp(h->name, "b3", 2) == 0)
            check_b3(h->value, h->value_len);
    }
    rm_trace_extract(fields, num, &in);
    RM_FUZZ_CHECK(in.tracestate_len <= RM_TRACESTATE_MAX_LEN && in.tracestate[in.tracestate_len] == '\0');
    if (in.source != RM_TRACE_FROM_NONE)
        RM_FUZZ_CHECK(!all_zero(in.parent.trace_id, 16) && !all_zero(in.parent.span_id, 8));
    if (in.source != RM_TRACE_FROM_W3C)
        RM_FUZZ_CHECK(in.tracestate_len == 0);
    free(text);
    return 0;
}
