/* Trace context (ringmesh/trace_context.h): W3C traceparent and tracestate, B3 multi and single header, which one a
 * request's headers yield, and the random ids. Tables of valid, invalid and edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ringmesh/trace_context.h"

#define TP_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP_SPAN  "00f067aa0ba902b7"

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    rm_trace_hex(b, n, out);
}

static void test_traceparent_table(void **state)
{
    static const struct {
        const char *value;
        int ok;
        int sampled;
    } cases[] = {
        {"00-" TP_TRACE "-" TP_SPAN "-01", 1, 1},
        {"00-" TP_TRACE "-" TP_SPAN "-00", 1, 0},
        {"00-" TP_TRACE "-" TP_SPAN "-03", 1, 1}, /* unknown flag bits are ignored */
        {"00-" TP_TRACE "-" TP_SPAN "-02", 1, 0},
        {"01-" TP_TRACE "-" TP_SPAN "-01", 1, 1},                              /* a later version, same length */
        {"cc-" TP_TRACE "-" TP_SPAN "-01-what-the-future-will-be-like", 1, 1}, /* a later version with more */
        {"cc-" TP_TRACE "-" TP_SPAN "-01x", 0, 0},                             /* ... but only after a '-' */
        {"00-" TP_TRACE "-" TP_SPAN "-01-", 0, 0},                             /* version 00 is exactly 55 characters */
        {"ff-" TP_TRACE "-" TP_SPAN "-01", 0, 0},                              /* version ff is invalid */
        {"00-00000000000000000000000000000000-" TP_SPAN "-01", 0, 0},          /* all-zero trace id */
        {"00-" TP_TRACE "-0000000000000000-01", 0, 0},                         /* all-zero parent id */
        {"00-4BF92F3577B34DA6A3CE929D0E0E4736-" TP_SPAN "-01", 0, 0},          /* upper-case hex */
        {"00-" TP_TRACE "-00F067AA0BA902B7-01", 0, 0},
        {"0A-" TP_TRACE "-" TP_SPAN "-01", 0, 0},
        {"00-" TP_TRACE "-" TP_SPAN "-0g", 0, 0},
        {"00_" TP_TRACE "-" TP_SPAN "-01", 0, 0},
        {"00-" TP_TRACE "_" TP_SPAN "-01", 0, 0},
        {"00-" TP_TRACE "-" TP_SPAN "_01", 0, 0},
        {"00-" TP_TRACE "-" TP_SPAN "-1", 0, 0}, /* short */
        {"00-4bf92f3577b34da6a3ce929d0e0e473-" TP_SPAN "-01", 0, 0},
        {"", 0, 0},
        {" 00-" TP_TRACE "-" TP_SPAN "-01", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rm_span_context_t c;
        int r = rm_traceparent_parse(cases[i].value, strlen(cases[i].value), &c);
        if ((r == 0) != cases[i].ok)
            fail_msg("traceparent \"%s\": got %d, want %s", cases[i].value, r, cases[i].ok ? "valid" : "invalid");
        if (r == 0) {
            char t[33], s[17];
            hex_of(c.trace_id, 16, t);
            hex_of(c.span_id, 8, s);
            assert_string_equal(t, TP_TRACE);
            assert_string_equal(s, TP_SPAN);
            assert_int_equal(c.flags, cases[i].sampled ? RM_TRACE_FLAG_SAMPLED : 0);
        }
    }
}

static void test_traceparent_format_round_trip(void **state)
{
    rm_span_context_t c, back;
    char out[RM_TRACEPARENT_LEN + 1];
    const char *in = "00-" TP_TRACE "-" TP_SPAN "-01";
    assert_int_equal(rm_traceparent_parse(in, strlen(in), &c), 0);
    rm_traceparent_format(&c, out);
    assert_string_equal(out, in);
    c.flags = 0;
    rm_traceparent_format(&c, out);
    assert_string_equal(out, "00-" TP_TRACE "-" TP_SPAN "-00");
    /* a later version is written back as version 00 with only the sampled flag */
    const char *later = "cc-" TP_TRACE "-" TP_SPAN "-03-extra";
    assert_int_equal(rm_traceparent_parse(later, strlen(later), &back), 0);
    rm_traceparent_format(&back, out);
    assert_string_equal(out, in);
}

/* Runs rm_tracestate_append over the given fields; returns its result and the list. */
static int tracestate(const char *const *fields, size_t n, char *out, size_t *len)
{
    size_t members = 0;
    *len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int r = rm_tracestate_append(out, len, &members, fields[i], strlen(fields[i]));
        if (r != 0)
            return r;
    }
    return 0;
}

static void test_tracestate_table(void **state)
{
    static const struct {
        const char *field;
        const char *want; /* NULL: invalid */
    } cases[] = {
        {"rojo=00f067aa0ba902b7", "rojo=00f067aa0ba902b7"},
        {"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
        {" rojo=1 ,\tcongo=2 ", "rojo=1,congo=2"},                          /* optional whitespace */
        {"rojo=1,,congo=2,", "rojo=1,congo=2"},                             /* empty members */
        {"fw529a3039@dt=abc,a*b/c_d-e=v", "fw529a3039@dt=abc,a*b/c_d-e=v"}, /* multi-tenant and key characters */
        {"0tenant@sys=v", "0tenant@sys=v"},
        {"k=a value with spaces", "k=a value with spaces"},
        {"", ""},
        {"Rojo=1", NULL},                    /* upper-case key */
        {"1rojo=1", NULL},                   /* a simple key starts with a letter */
        {"rojo", NULL},                      /* no '=' */
        {"rojo=", NULL},                     /* empty value */
        {"rojo=a=b", NULL},                  /* '=' in a value */
        {"rojo=trailing ", "rojo=trailing"}, /* trailing space is OWS */
        {"@sys=v", NULL},
        {"t@=v", NULL},
        {"t@Sys=v", NULL},
        {"t@sys567890123456=v", NULL}, /* system id longer than 14 */
        {"rojo=1,rojo=2", NULL},       /* a key twice */
        {"k=\x7f", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[RM_TRACESTATE_MAX_LEN + 1];
        size_t len;
        int r = tracestate(&cases[i].field, 1, out, &len);
        if (cases[i].want == NULL) {
            if (r == 0)
                fail_msg("tracestate \"%s\": accepted as \"%s\", want invalid", cases[i].field, out);
        } else {
            if (r != 0)
                fail_msg("tracestate \"%s\": refused (%d)", cases[i].field, r);
            assert_string_equal(out, cases[i].want);
            assert_int_equal(len, strlen(cases[i].want));
        }
    }
}

static void test_tracestate_several_fields_and_limits(void **state)
{
    char out[RM_TRACESTATE_MAX_LEN + 1], field[4096];
    size_t len, o = 0;
    const char *two[] = {"a=1", "b=2,c=3"};
    assert_int_equal(tracestate(two, 2, out, &len), 0);
    assert_string_equal(out, "a=1,b=2,c=3");
    const char *dup[] = {"a=1", "a=2"};
    assert_int_not_equal(tracestate(dup, 2, out, &len), 0);

    /* 32 members pass, 33 do not */
    for (int i = 0; i < 32; i++)
        o += (size_t)snprintf(field + o, sizeof(field) - o, "%sk%d=v", i ? "," : "", i);
    const char *f32[] = {field};
    assert_int_equal(tracestate(f32, 1, out, &len), 0);
    assert_string_equal(out, field);
    snprintf(field + o, sizeof(field) - o, ",k32=v");
    assert_int_not_equal(tracestate(f32, 1, out, &len), 0);

    /* past 512 bytes: a member longer than 128 goes first, then the last ones */
    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    o = (size_t)snprintf(field, sizeof(field), "long=%s", big);
    for (int i = 0; i < 10; i++)
        o += (size_t)snprintf(field + o, sizeof(field) - o, ",m%d=%.*s", i, 40, big);
    assert_int_equal(tracestate(f32, 1, out, &len), 0);
    assert_true(len <= RM_TRACESTATE_MAX_LEN);
    assert_null(strstr(out, "long="));
    assert_non_null(strstr(out, "m0="));
    assert_non_null(strstr(out, "m9="));
    o = 0;
    for (int i = 0; i < 20; i++)
        o += (size_t)snprintf(field + o, sizeof(field) - o, "%sm%d=%.*s", i ? "," : "", i, 40, big);
    assert_int_equal(tracestate(f32, 1, out, &len), 0);
    assert_true(len <= RM_TRACESTATE_MAX_LEN);
    assert_non_null(strstr(out, "m0="));
    assert_null(strstr(out, "m19="));
    assert_int_equal(out[len], '\0');
}

static void test_b3_ids(void **state)
{
    uint8_t t[16], s[8], is64 = 9;
    char hex[33];
    assert_int_equal(rm_b3_trace_id_parse(TP_TRACE, 32, t, &is64), 0);
    assert_int_equal(is64, 0);
    hex_of(t, 16, hex);
    assert_string_equal(hex, TP_TRACE);
    assert_int_equal(rm_b3_trace_id_parse("A3CE929D0E0E4736", 16, t, &is64), 0); /* 64-bit, either case */
    assert_int_equal(is64, 1);
    hex_of(t, 16, hex);
    assert_string_equal(hex, "0000000000000000a3ce929d0e0e4736");
    assert_int_not_equal(rm_b3_trace_id_parse("0000000000000000", 16, t, &is64), 0);
    assert_int_not_equal(rm_b3_trace_id_parse("a3ce929d0e0e473", 15, t, &is64), 0);
    assert_int_not_equal(rm_b3_trace_id_parse("a3ce929d0e0e47xx", 16, t, &is64), 0);
    assert_int_not_equal(rm_b3_trace_id_parse(TP_TRACE "00", 34, t, &is64), 0);
    assert_int_equal(rm_b3_span_id_parse(TP_SPAN, 16, s), 0);
    assert_int_not_equal(rm_b3_span_id_parse("0000000000000000", 16, s), 0);
    assert_int_not_equal(rm_b3_span_id_parse("00f067aa0ba902b", 15, s), 0);
}

static void test_b3_single_table(void **state)
{
    static const struct {
        const char *value;
        int ok;
        rm_trace_source_t source;
        rm_trace_sampling_t sampling;
        int debug;
    } cases[] = {
        {TP_TRACE "-" TP_SPAN, 1, RM_TRACE_FROM_B3_SINGLE, RM_TRACE_SAMPLING_DEFER, 0},
        {TP_TRACE "-" TP_SPAN "-1", 1, RM_TRACE_FROM_B3_SINGLE, RM_TRACE_SAMPLING_YES, 0},
        {TP_TRACE "-" TP_SPAN "-0", 1, RM_TRACE_FROM_B3_SINGLE, RM_TRACE_SAMPLING_NO, 0},
        {TP_TRACE "-" TP_SPAN "-d", 1, RM_TRACE_FROM_B3_SINGLE, RM_TRACE_SAMPLING_YES, 1},
        {TP_TRACE "-" TP_SPAN "-1-05e3ac9a4f6e3b90", 1, RM_TRACE_FROM_B3_SINGLE, RM_TRACE_SAMPLING_YES, 0},
        {"a3ce929d0e0e4736-" TP_SPAN "-1", 1, RM_TRACE_FROM_B3_SINGLE, RM_TRACE_SAMPLING_YES, 0},
        {"0", 1, RM_TRACE_FROM_NONE, RM_TRACE_SAMPLING_NO, 0}, /* a sampling state alone */
        {"1", 1, RM_TRACE_FROM_NONE, RM_TRACE_SAMPLING_YES, 0},
        {"d", 1, RM_TRACE_FROM_NONE, RM_TRACE_SAMPLING_YES, 1},
        {"x", 0, 0, 0, 0},
        {"true", 0, 0, 0, 0},
        {TP_TRACE, 0, 0, 0, 0},
        {TP_TRACE "-", 0, 0, 0, 0},
        {TP_TRACE "-" TP_SPAN "-", 0, 0, 0, 0},
        {TP_TRACE "-" TP_SPAN "-2", 0, 0, 0, 0},
        {TP_TRACE "-" TP_SPAN "-11", 0, 0, 0, 0},
        {TP_TRACE "-" TP_SPAN "-1-", 0, 0, 0, 0},
        {TP_TRACE "-" TP_SPAN "-1-05e3ac9a4f6e3b9", 0, 0, 0, 0},
        {TP_TRACE "-0000000000000000-1", 0, 0, 0, 0},
        {"00000000000000000000000000000000-" TP_SPAN "-1", 0, 0, 0, 0},
        {TP_TRACE "-" TP_SPAN "x", 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rm_trace_incoming_t in;
        memset(&in, 0, sizeof(in));
        int r = rm_b3_single_parse(cases[i].value, strlen(cases[i].value), &in);
        if ((r == 0) != cases[i].ok)
            fail_msg("b3 \"%s\": got %d, want %s", cases[i].value, r, cases[i].ok ? "valid" : "invalid");
        if (r == 0) {
            if (in.source != cases[i].source || in.sampling != cases[i].sampling || in.b3_debug != cases[i].debug)
                fail_msg("b3 \"%s\": source %d sampling %d debug %d", cases[i].value, in.source, in.sampling,
                         in.b3_debug);
        }
    }
}

#define H(n, v)                                                                                                        \
    {                                                                                                                  \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                                             \
    }

static void test_extract_precedence(void **state)
{
    rm_trace_incoming_t in;
    char hex[33];

    /* W3C wins over B3; tracestate comes with it */
    rm_http_header_t both[] = {
        H("x-b3-traceid", "a3ce929d0e0e4736"),
        H("x-b3-spanid", "05e3ac9a4f6e3b90"),
        H("x-b3-sampled", "0"),
        H("traceparent", "00-" TP_TRACE "-" TP_SPAN "-01"),
        H("tracestate", "rojo=1"),
        H("tracestate", "congo=2"),
    };
    rm_trace_extract(both, 6, &in);
    assert_int_equal(in.source, RM_TRACE_FROM_W3C);
    assert_int_equal(in.sampling, RM_TRACE_SAMPLING_YES);
    assert_true(in.has_b3_multi);
    assert_string_equal(in.tracestate, "rojo=1,congo=2");
    hex_of(in.parent.trace_id, 16, hex);
    assert_string_equal(hex, TP_TRACE);

    /* an invalid traceparent falls back to B3, and its tracestate is not kept */
    rm_http_header_t bad_w3c[] = {
        H("traceparent", "00-" TP_TRACE "-0000000000000000-01"),
        H("tracestate", "rojo=1"),
        H("X-B3-TraceId", "a3ce929d0e0e4736"),
        H("x-b3-spanid", "05e3ac9a4f6e3b90"),
        H("x-b3-sampled", "1"),
    };
    rm_trace_extract(bad_w3c, 5, &in);
    assert_int_equal(in.source, RM_TRACE_FROM_B3_MULTI);
    assert_int_equal(in.sampling, RM_TRACE_SAMPLING_YES);
    assert_true(in.b3_trace_id_64);
    assert_int_equal(in.tracestate_len, 0);
    hex_of(in.parent.span_id, 8, hex);
    assert_string_equal(hex, "05e3ac9a4f6e3b90");

    /* two traceparent fields are one invalid value */
    rm_http_header_t two_tp[] = {H("traceparent", "00-" TP_TRACE "-" TP_SPAN "-01"),
                                 H("traceparent", "00-" TP_TRACE "-" TP_SPAN "-01")};
    rm_trace_extract(two_tp, 2, &in);
    assert_int_equal(in.source, RM_TRACE_FROM_NONE);

    /* an invalid tracestate is dropped whole, the traceparent is kept */
    rm_http_header_t bad_ts[] = {H("traceparent", "00-" TP_TRACE "-" TP_SPAN "-00"), H("tracestate", "ok=1,Bad=2")};
    rm_trace_extract(bad_ts, 2, &in);
    assert_int_equal(in.source, RM_TRACE_FROM_W3C);
    assert_int_equal(in.sampling, RM_TRACE_SAMPLING_NO);
    assert_int_equal(in.tracestate_len, 0);
    assert_string_equal(in.tracestate, "");

    /* single b3 wins over multi */
    rm_http_header_t single[] = {H("x-b3-traceid", "a3ce929d0e0e4736"), H("x-b3-spanid", "05e3ac9a4f6e3b90"),
                                 H("b3", TP_TRACE "-" TP_SPAN "-0")};
    rm_trace_extract(single, 3, &in);
    assert_int_equal(in.source, RM_TRACE_FROM_B3_SINGLE);
    assert_int_equal(in.sampling, RM_TRACE_SAMPLING_NO);
    assert_true(in.has_b3_single && in.has_b3_multi);

    /* B3 multi: debug flag, the older "true", a missing span id */
    rm_http_header_t debug[] = {H("x-b3-traceid", TP_TRACE), H("x-b3-spanid", TP_SPAN), H("x-b3-flags", "1")};
    rm_trace_extract(debug, 3, &in);
    assert_int_equal(in.source, RM_TRACE_FROM_B3_MULTI);
    assert_true(in.b3_debug);
    assert_int_equal(in.sampling, RM_TRACE_SAMPLING_YES);
    rm_http_header_t old_true[] = {H("x-b3-traceid", TP_TRACE), H("x-b3-spanid", TP_SPAN), H("x-b3-sampled", "true")};
    rm_trace_extract(old_true, 3, &in);
    assert_int_equal(in.sampling, RM_TRACE_SAMPLING_YES);
    rm_http_header_t deferred[] = {H("x-b3-traceid", TP_TRACE), H("x-b3-spanid", TP_SPAN)};
    rm_trace_extract(deferred, 2, &in);
    assert_int_equal(in.source, RM_TRACE_FROM_B3_MULTI);
    assert_int_equal(in.sampling, RM_TRACE_SAMPLING_DEFER);
    rm_http_header_t no_span[] = {H("x-b3-traceid", TP_TRACE), H("x-b3-sampled", "1")};
    rm_trace_extract(no_span, 2, &in);
    assert_int_equal(in.source, RM_TRACE_FROM_NONE);
    assert_int_equal(in.sampling, RM_TRACE_SAMPLING_YES); /* a sampling decision without ids */

    rm_http_header_t none[] = {H("user-agent", "curl")};
    rm_trace_extract(none, 1, &in);
    assert_int_equal(in.source, RM_TRACE_FROM_NONE);
    assert_false(in.has_b3_multi || in.has_b3_single);
}

static void test_random_ids(void **state)
{
    uint8_t t1[16], t2[16], s1[8], s2[8];
    static const uint8_t zero[16];
    /* more ids than one batch holds, so that a refill happens; no two alike, none zero */
    for (int i = 0; i < 300; i++) {
        assert_int_equal(rm_trace_random_ids(t1, s1), 0);
        assert_int_equal(rm_trace_random_ids(t2, s2), 0);
        assert_memory_not_equal(t1, t2, 16);
        assert_memory_not_equal(s1, s2, 8);
        assert_memory_not_equal(t1, zero, 16);
        assert_memory_not_equal(s1, zero, 8);
    }
    assert_int_equal(rm_trace_random_ids(NULL, s1), 0);
    assert_int_equal(rm_trace_random_ids(t1, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_table),
        cmocka_unit_test(test_traceparent_format_round_trip),
        cmocka_unit_test(test_tracestate_table),
        cmocka_unit_test(test_tracestate_several_fields_and_limits),
        cmocka_unit_test(test_b3_ids),
        cmocka_unit_test(test_b3_single_table),
        cmocka_unit_test(test_extract_precedence),
        cmocka_unit_test(test_random_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
