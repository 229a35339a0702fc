/* ringmeshctl stat's parser of the Prometheus text exposition format: every kind of line a /metrics page has,
 * label values unescaped, and each malformed line refused with its number and what is wrong with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "stat.h"
#include "unit_asserts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLES 16

/* What the callback saw, copied: "name{l=v,...}" with values as they were unescaped. */
typedef struct {
    char text[MAX_SAMPLES][512];
    double value[MAX_SAMPLES];
    int has_ts[MAX_SAMPLES];
    int64_t ts[MAX_SAMPLES];
    size_t line[MAX_SAMPLES];
    size_t num;
} seen_t;

static int collect(void *ctx, const rm_expo_sample_t *s)
{
    seen_t *seen = ctx;
    size_t i, off;

    assert_true(seen->num < MAX_SAMPLES);
    off = (size_t)snprintf(seen->text[seen->num], sizeof(seen->text[0]), "%s{", s->name);
    for (i = 0; i != s->num_labels; ++i)
        off += (size_t)snprintf(seen->text[seen->num] + off, sizeof(seen->text[0]) - off, "%s%s=%s", i ? "," : "",
                                s->labels[i].name, s->labels[i].value);
    snprintf(seen->text[seen->num] + off, sizeof(seen->text[0]) - off, "}");
    seen->value[seen->num] = s->value;
    seen->has_ts[seen->num] = s->has_timestamp;
    seen->ts[seen->num] = s->timestamp_ms;
    seen->line[seen->num] = s->line;
    ++seen->num;
    return 0;
}

static int parse(const char *text, seen_t *seen, char *err, size_t errlen)
{
    memset(seen, 0, sizeof(*seen));
    err[0] = '\0';
    return rm_expo_parse(text, strlen(text), collect, seen, err, errlen);
}

static void test_a_page(void **state)
{
    static const char page[] =
        "# HELP ringmesh_requests_total Requests, by \"who\" \\ and how.\n"
        "# TYPE ringmesh_requests_total counter\n"
        "ringmesh_requests_total{reporter=\"destination\",response_code=\"200\"} 1027\n"
        "\n"
        "# a comment of no kind\n"
        "ringmesh_requests_total{ reporter = \"source\" , response_code=\"503\", } 3 1700000000123\n"
        "   ringmesh_proxy_info 1\n"
        "# TYPE ringmesh_request_duration_milliseconds histogram\n"
        "ringmesh_request_duration_milliseconds_bucket{le=\"+Inf\"}\t1.5e3\n"
        "x:y_z{} -0.25 -17\n"
        "nan_value NaN\n"
        "inf_values{sign=\"plus\"} +Inf\n"
        "inf_values{sign=\"minus\"} -Inf\n"
        "# EOF\n";
    seen_t seen;
    char err[256];

    assert_int_equal(parse(page, &seen, err, sizeof(err)), 0);
    assert_int_equal(seen.num, 8);
    assert_string_equal(seen.text[0], "ringmesh_requests_total{reporter=destination,response_code=200}");
    assert_true(seen.value[0] == 1027 && !seen.has_ts[0] && seen.line[0] == 3);
    assert_string_equal(seen.text[1], "ringmesh_requests_total{reporter=source,response_code=503}");
    assert_true(seen.value[1] == 3 && seen.has_ts[1] && seen.ts[1] == 1700000000123 && seen.line[1] == 6);
    assert_string_equal(seen.text[2], "ringmesh_proxy_info{}");
    assert_string_equal(seen.text[3], "ringmesh_request_duration_milliseconds_bucket{le=+Inf}");
    assert_true(seen.value[3] == 1500);
    assert_string_equal(seen.text[4], "x:y_z{}");
    assert_true(seen.value[4] == -0.25 && seen.has_ts[4] && seen.ts[4] == -17);
    assert_true(isnan(seen.value[5]));
    assert_true(isinf(seen.value[6]) && seen.value[6] > 0);
    assert_true(isinf(seen.value[7]) && seen.value[7] < 0);
}

static void test_label_values_unescaped(void **state)
{
    seen_t seen;
    char err[256];

    assert_int_equal(
        parse("m{a=\"q\\\"uote\",b=\"back\\\\slash\",c=\"line\\nfeed\",d=\"{,}= \\\\n\"} 1\n", &seen, err, sizeof(err)),
        0);
    assert_int_equal(seen.num, 1);
    assert_string_equal(seen.text[0], "m{a=q\"uote,b=back\\slash,c=line\nfeed,d={,}= \\n}");
}

static int stop_at_first(void *ctx, const rm_expo_sample_t *s)
{
    ++*(int *)ctx;
    return 42;
}

/* a callback's non-zero answer ends the parse and is what it returns */
static void test_callback_stops(void **state)
{
    char err[64] = "";
    int calls = 0;

    assert_int_equal(rm_expo_parse("a 1\nb 2\n", 8, stop_at_first, &calls, err, sizeof(err)), 42);
    assert_int_equal(calls, 1);
}

static void expect_error(const char *text, const char *want)
{
    seen_t seen;
    char err[256];

    if (parse(text, &seen, err, sizeof(err)) != -1)
        fail_msg("accepted: %s", text);
    if (strcmp(err, want) != 0)
        fail_msg("for %s\n got: %s\nwant: %s", text, err, want);
}

static void test_errors_name_the_line(void **state)
{
    expect_error("a{x=\"v} 1\n", "line 1: the value of label 'x' is not closed");
    expect_error("a{x=\"\\t\"} 1\n",
                 "line 1: the value of label 'x' has the escape '\\t' (only \\\\, \\\" and \\n are allowed)");
    expect_error("a{x=v} 1\n", "line 1: the value of label 'x' is not quoted");
    expect_error("a{x=\"1\",x=\"2\"} 1\n", "line 1: label 'x' is given twice");
    expect_error("a{x=\"1\" y=\"2\"} 1\n", "line 1: expected ',' or '}' after the value of label 'x'");
    expect_error("a{x} 1\n", "line 1: expected '=' after label name 'x'");
    expect_error("a{1x=\"v\"} 1\n", "line 1: '1x' is not a valid label name");
    expect_error("a{x:y=\"v\"} 1\n", "line 1: expected '=' after label name 'x'");
    expect_error("1abc 2\n", "line 1: '1abc' is not a valid metric name");
    expect_error("ok 1\n\nb 12abc\n", "line 3: the value '12abc' of 'b' is not a number");
    expect_error("b 0x10\n", "line 1: the value '0x10' of 'b' is not a number");
    expect_error("b\n", "line 1: no value after 'b'");
    expect_error("b{x=\"y\"}1\n", "line 1: unexpected '1' after 'b'{...}");
    expect_error("b 1 12.5\n", "line 1: the timestamp '12.5' is not an integer of milliseconds");
    expect_error("b 1 2 3\n", "line 1: unexpected '3' after the timestamp");
    expect_error("# TYPE b countr\n", "line 1: the TYPE of 'b' is 'countr', not one of counter, gauge, histogram, "
                                      "summary, untyped");
    expect_error("# TYPE b counter extra\n", "line 1: the TYPE of 'b' is 'counter extra', not one of counter, "
                                             "gauge, histogram, summary, untyped");
    expect_error("# HELP 9b help\n", "line 1: '9b' is not a valid metric name");
    expect_error("a 1\nb 2", "line 2: the last line has no line feed (the page was cut short?)");
    expect_error("a 1\r\n", "line 1: the value '1\r' of 'a' is not a number");
}

static void test_too_many_labels(void **state)
{
    char text[4096], err[256];
    size_t off = (size_t)snprintf(text, sizeof(text), "m{");
    seen_t seen;
    int i;

    for (i = 0; i <= RM_EXPO_MAX_LABELS; ++i)
        off += (size_t)snprintf(text + off, sizeof(text) - off, "l%d=\"v\",", i);
    snprintf(text + off, sizeof(text) - off, "} 1\n");
    assert_int_equal(parse(text, &seen, err, sizeof(err)), -1);
    assert_string_equal(err, "line 1: more than 64 labels");
}

static void test_nul_byte(void **state)
{
    static const char text[] = "a 1\nb\0 1\n";
    seen_t seen = {0};
    char err[256];

    assert_int_equal(rm_expo_parse(text, sizeof(text) - 1, collect, &seen, err, sizeof(err)), -1);
    assert_string_equal(err, "line 2: a NUL byte");
    assert_int_equal(seen.num, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_page),          cmocka_unit_test(test_label_values_unescaped),
        cmocka_unit_test(test_callback_stops),  cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_too_many_labels), cmocka_unit_test(test_nul_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
