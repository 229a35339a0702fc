/* The trace sampler (ringmesh/trace_sampler.h): names and arguments as OTEL_TRACES_SAMPLER(_ARG) give them, the
 * ratio's bounds and its decision from the trace id, and the parent-based cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ringmesh/trace_sampler.h"

/* A trace id whose 56 low bits are `r`. */
static void trace_id_with(uint64_t r, uint8_t id[16])
{
    memset(id, 0xab, 16); /* the high bits do not count */
    for (int i = 15; i >= 9; i--, r >>= 8)
        id[i] = (uint8_t)r;
}

static void test_names_and_defaults(void **state)
{
    rm_trace_sampler_t s;
    const char *why;
    static const struct {
        const char *name;
        rm_sampler_root_t root;
        int parent_based;
    } names[] = {
        {"always_on", RM_SAMPLER_ALWAYS_ON, 0},
        {"always_off", RM_SAMPLER_ALWAYS_OFF, 0},
        {"traceidratio", RM_SAMPLER_TRACEIDRATIO, 0},
        {"parentbased_always_on", RM_SAMPLER_ALWAYS_ON, 1},
        {"parentbased_always_off", RM_SAMPLER_ALWAYS_OFF, 1},
        {"parentbased_traceidratio", RM_SAMPLER_TRACEIDRATIO, 1},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(rm_trace_sampler_set(&s, names[i].name, NULL, &why), 0);
        assert_int_equal(s.root, names[i].root);
        assert_int_equal(s.parent_based, names[i].parent_based);
        assert_string_equal(rm_trace_sampler_name(&s), names[i].name);
        assert_null(why);
    }
    /* unset or empty: parentbased_traceidratio, ratio 1.0 */
    assert_int_equal(rm_trace_sampler_set(&s, NULL, NULL, &why), 0);
    assert_string_equal(rm_trace_sampler_name(&s), "parentbased_traceidratio");
    assert_true(s.ratio == 1.0);
    assert_int_equal(rm_trace_sampler_set(&s, "", "", &why), 0);
    assert_string_equal(rm_trace_sampler_name(&s), "parentbased_traceidratio");
    /* unknown names and bad ratios: reported, the defaults used */
    assert_int_equal(rm_trace_sampler_set(&s, "jaeger_remote", NULL, &why), -22);
    assert_non_null(why);
    assert_string_equal(rm_trace_sampler_name(&s), "parentbased_traceidratio");
    assert_int_equal(rm_trace_sampler_set(&s, "ALWAYS_ON", NULL, &why), -22); /* the names are lower-case */
    static const char *const bad[] = {"1.5", "-0.1", "abc", "0.5x", "nan", "inf"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rm_trace_sampler_set(&s, "traceidratio", bad[i], &why), -22);
        assert_non_null(why);
        assert_true(s.ratio == 1.0);
    }
    assert_int_equal(rm_trace_sampler_set(&s, "traceidratio", "0.25", &why), 0);
    assert_true(s.ratio == 0.25);
    /* the argument means nothing to the other samplers */
    assert_int_equal(rm_trace_sampler_set(&s, "always_on", "not a number", &why), 0);
}

static void test_ratio_bounds(void **state)
{
    rm_trace_sampler_t s;
    const char *why;
    uint8_t id[16];
    const uint64_t max56 = ((uint64_t)1 << 56) - 1;

    assert_int_equal(rm_trace_sampler_set(&s, "traceidratio", "0", &why), 0);
    trace_id_with(max56, id);
    assert_false(rm_trace_sampler_decide(&s, id, 0, 0)); /* ratio 0: nothing, not even the largest R */
    assert_int_equal(rm_trace_sampler_set(&s, "traceidratio", "1", &why), 0);
    trace_id_with(0, id);
    assert_true(rm_trace_sampler_decide(&s, id, 0, 0)); /* ratio 1: everything, even R = 0 */

    /* ratio 0.5: threshold 2^55; R >= T is sampled */
    assert_int_equal(rm_trace_sampler_set(&s, "traceidratio", "0.5", &why), 0);
    assert_int_equal(s.threshold, (uint64_t)1 << 55);
    trace_id_with(((uint64_t)1 << 55) - 1, id);
    assert_false(rm_trace_sampler_decide(&s, id, 0, 0));
    trace_id_with((uint64_t)1 << 55, id);
    assert_true(rm_trace_sampler_decide(&s, id, 0, 0));
    /* only the 56 low bits count: the high byte of them (byte 8) is outside */
    trace_id_with(0, id);
    id[8] = 0xff;
    assert_false(rm_trace_sampler_decide(&s, id, 0, 0));

    /* monotonic: what a ratio samples, every larger ratio samples too; and about the ratio over many ids */
    static const char *const ratios[] = {"0.01", "0.1", "0.25", "0.5", "0.9"};
    int prev[4096] = {0};
    for (size_t k = 0; k < sizeof(ratios) / sizeof(ratios[0]); k++) {
        assert_int_equal(rm_trace_sampler_set(&s, "traceidratio", ratios[k], &why), 0);
        int count = 0;
        for (uint64_t i = 0; i < 4096; i++) {
            trace_id_with((i * 0x9e3779b97f4a7c15ULL) & max56, id); /* spread over the range */
            int d = rm_trace_sampler_decide(&s, id, 0, 0);
            if (prev[i])
                assert_true(d);
            prev[i] = d;
            count += d;
        }
        double share = count / 4096.0;
        if (share < s.ratio - 0.03 || share > s.ratio + 0.03)
            fail_msg("ratio %s sampled %.3f of the ids", ratios[k], share);
    }
}

static void test_parent_based(void **state)
{
    rm_trace_sampler_t s;
    const char *why;
    uint8_t id[16];
    trace_id_with(0, id); /* an id a ratio below 1 never samples */

    static const struct {
        const char *name, *arg;
        int root, parent_yes, parent_no;
    } cases[] = {
        {"parentbased_always_on", NULL, 1, 1, 0},
        {"parentbased_always_off", NULL, 0, 1, 0},
        {"parentbased_traceidratio", "0.5", 0, 1, 0},
        {"parentbased_traceidratio", NULL, 1, 1, 0},
        {"always_on", NULL, 1, 1, 1},
        {"always_off", NULL, 0, 0, 0},
        {"traceidratio", "0.5", 0, 0, 0},
        {"traceidratio", "1", 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(rm_trace_sampler_set(&s, cases[i].name, cases[i].arg, &why), 0);
        if (rm_trace_sampler_decide(&s, id, 0, 0) != cases[i].root ||
            rm_trace_sampler_decide(&s, id, 1, 1) != cases[i].parent_yes ||
            rm_trace_sampler_decide(&s, id, 1, 0) != cases[i].parent_no)
            fail_msg("%s %s: root/parent sampled/parent not sampled differ from %d/%d/%d", cases[i].name,
                     cases[i].arg ? cases[i].arg : "", cases[i].root, cases[i].parent_yes, cases[i].parent_no);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_defaults),
        cmocka_unit_test(test_ratio_bounds),
        cmocka_unit_test(test_parent_based),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
