/* The control plane's metrics parts (control/control_histogram.c, control/control_metrics.c, the refusal causes of
 * control/identity_service.c): bucket placement at and around the bounds, the cumulative exposition, the sources'
 * error kinds, and the cause a Sign refusal is counted under for a request that never reaches the attestor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_histogram.h"
#include "control_metrics.h"
#include "identity_service.h"
#include "ringmesh/error.h"
#include "ringmesh/v1/identity.pb-c.h"
#include "unit_asserts.h"

/* The value of series `series` (name{labels}) in an exposition, or -1 when it is absent. */
static double series_value(const char *page, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = page; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static void test_histogram_buckets(void **state)
{
    rm_control_histogram_t h = {0};
    char page[4096];
    size_t len;

    (void)state;
    rm_control_histogram_observe(&h, 0.001);  /* on a bound: in that bucket (le is inclusive) */
    rm_control_histogram_observe(&h, -1);     /* a clock step backwards counts as 0 */
    rm_control_histogram_observe(&h, 0.0011); /* just above: the next one */
    rm_control_histogram_observe(&h, 30);     /* the last bound */
    rm_control_histogram_observe(&h, 31);     /* above every bound: +Inf only */
    assert_int_equal(h.count, 5);
    len = rm_control_histogram_render(page, sizeof(page), 0, "x", "type=\"a\"", &h);
    assert_true(len < sizeof(page));
    page[len] = '\0';
    assert_true(series_value(page, "x_bucket{type=\"a\",le=\"0.001\"}") == 2);
    assert_true(series_value(page, "x_bucket{type=\"a\",le=\"0.0025\"}") == 3);
    assert_true(series_value(page, "x_bucket{type=\"a\",le=\"10\"}") == 3);
    assert_true(series_value(page, "x_bucket{type=\"a\",le=\"30\"}") == 4);
    assert_true(series_value(page, "x_bucket{type=\"a\",le=\"+Inf\"}") == 5);
    assert_true(series_value(page, "x_count{type=\"a\"}") == 5);
    assert_true(series_value(page, "x_sum{type=\"a\"}") > 61.0020 && series_value(page, "x_sum{type=\"a\"}") < 61.0022);
    /* 14 bounds and +Inf, then sum and count */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += page[i] == '\n';
    assert_int_equal(lines, RM_CONTROL_HIST_NUM_BOUNDS + 3);

    /* without labels */
    len = rm_control_histogram_render(page, sizeof(page), 0, "y", "", &h);
    page[len] = '\0';
    assert_true(series_value(page, "y_bucket{le=\"+Inf\"}") == 5);
    assert_true(series_value(page, "y_count") == 5);
}

static void test_histogram_cut(void **state)
{
    rm_control_histogram_t h = {0};
    char page[64];

    (void)state;
    /* a page too small is cut at its end, never written past */
    assert_int_equal(rm_control_histogram_render(page, sizeof(page), 0, "x", "", &h), sizeof(page));
}

static void test_source_error_kinds(void **state)
{
    (void)state;
    assert_int_equal(rm_source_error_kind_of(RM_ERR_CONFIG_PARSE), RM_SOURCE_ERR_PARSE);
    assert_int_equal(rm_source_error_kind_of(RM_ERR_CONFIG_IO), RM_SOURCE_ERR_IO);
    assert_int_equal(rm_source_error_kind_of(RM_ERR_CONFIG_VALUE), RM_SOURCE_ERR_VALIDATION);
    assert_int_equal(rm_source_error_kind_of(RM_ERR_SVID_TRUST_DOMAIN), RM_SOURCE_ERR_VALIDATION);
    assert_string_equal(rm_source_error_kind_name(RM_SOURCE_ERR_RELIST), "relist");
    assert_string_equal(rm_source_error_kind_name(RM_SOURCE_ERR_OBJECT_REFUSED), "object_refused");

    uint64_t before = rm_control_source_errors(RM_CONTROL_SOURCE_KUBERNETES, RM_SOURCE_ERR_WATCH_FAILED);
    rm_control_source_error(RM_CONTROL_SOURCE_KUBERNETES, RM_SOURCE_ERR_WATCH_FAILED);
    rm_control_source_error(RM_CONTROL_SOURCE_KUBERNETES, RM_SOURCE_ERR_WATCH_FAILED);
    rm_control_source_error(RM_CONTROL_NUM_SOURCES, RM_SOURCE_ERR_WATCH_FAILED);         /* out of range: ignored */
    rm_control_source_error(RM_CONTROL_SOURCE_KUBERNETES, (rm_source_error_kind_t)1000); /* likewise */
    assert_int_equal(rm_control_source_errors(RM_CONTROL_SOURCE_KUBERNETES, RM_SOURCE_ERR_WATCH_FAILED), before + 2);
    assert_int_equal(rm_control_source_errors(RM_CONTROL_SOURCE_FILE, RM_SOURCE_ERR_WATCH_FAILED), 0);
}

/* Refusals decided before the attestor or the CA is asked: the cause is set with the status. */
static void test_sign_refusal_causes(void **state)
{
    Ringmesh__V1__SignRequest sr = RINGMESH__V1__SIGN_REQUEST__INIT;
    rm_sign_result_t res;
    uint8_t buf[256];
    size_t len;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};

    (void)state;
    rm_identity_sign(NULL, NULL, 0, "ipv4:127.0.0.1:1", garbage, sizeof(garbage), &res);
    assert_int_equal(res.grpc_status, 3);
    assert_int_equal(res.outcome, RM_SIGN_REQUEST_INVALID);
    assert_string_equal(rm_sign_outcome_name(res.outcome), "request_invalid");

    sr.csr_pem = "-----BEGIN CERTIFICATE REQUEST-----";
    len = ringmesh__v1__sign_request__pack(&sr, buf);
    rm_identity_sign(NULL, NULL, 0, "ipv4:127.0.0.1:1", buf, len, &res);
    assert_int_equal(res.grpc_status, 16);
    assert_int_equal(res.outcome, RM_SIGN_TOKEN_MISSING);
    assert_string_equal(rm_sign_outcome_name(res.outcome), "token_missing");

    assert_string_equal(rm_sign_outcome_name(RM_SIGN_TOKEN_REVIEW_FAILED), "token_review_failed");
    assert_string_equal(rm_sign_outcome_name(RM_SIGN_CSR_INVALID), "csr_invalid");
    assert_string_equal(rm_sign_outcome_name(RM_SIGN_ISSUED), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_histogram_cut),
        cmocka_unit_test(test_source_error_kinds),
        cmocka_unit_test(test_sign_refusal_causes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
