/* Circuit breaking (lib/circuit.c) and the response flags (lib/response_flags.c): limits per destination and per
 * endpoint, each kind on its own, the refusal counted where the limit was reached, tokens given back once, 0 as no
 * limit, a worker's share of the proxy's limits; the flags' text and the status a proxy answers with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/circuit.h"
#include "ringmesh/response_flags.h"

static void test_limits(void **state)
{
    (void)state;
    rm_circuit_limits_t dl = {.max_requests = 3, .max_pending = 1}, el = {.max_requests = 2};
    rm_circuit_counts_t dest = {0}, ep1 = {0}, ep2 = {0};
    rm_circuit_token_t t[6];

    /* endpoint 1 takes two requests, its third is refused by its own limit */
    assert_int_equal(rm_circuit_acquire(&dl, &dest, &el, &ep1, RM_CIRCUIT_REQUEST, &t[0]), 0);
    assert_int_equal(rm_circuit_acquire(&dl, &dest, &el, &ep1, RM_CIRCUIT_REQUEST, &t[1]), 0);
    assert_int_equal(rm_circuit_acquire(&dl, &dest, &el, &ep1, RM_CIRCUIT_REQUEST, &t[2]), RM_RF_UO);
    assert_null(t[2].dest);
    assert_int_equal(ep1.overflow[RM_CIRCUIT_REQUEST], 1);
    assert_int_equal(dest.overflow[RM_CIRCUIT_REQUEST], 0);
    /* endpoint 2 takes one; then the destination is full for everyone */
    assert_int_equal(rm_circuit_acquire(&dl, &dest, &el, &ep2, RM_CIRCUIT_REQUEST, &t[3]), 0);
    assert_int_equal(rm_circuit_acquire(&dl, &dest, &el, &ep2, RM_CIRCUIT_REQUEST, &t[4]), RM_RF_UO);
    assert_int_equal(dest.overflow[RM_CIRCUIT_REQUEST], 1);
    assert_int_equal(ep2.open[RM_CIRCUIT_REQUEST], 1);
    assert_int_equal(dest.open[RM_CIRCUIT_REQUEST], 3);
    /* other kinds count apart: a pending request before an endpoint is chosen (ep NULL) */
    assert_int_equal(rm_circuit_acquire(&dl, &dest, NULL, NULL, RM_CIRCUIT_PENDING, &t[5]), 0);
    rm_circuit_token_t p2;
    assert_int_equal(rm_circuit_acquire(&dl, &dest, NULL, NULL, RM_CIRCUIT_PENDING, &p2), RM_RF_UO);
    assert_int_equal(dest.overflow[RM_CIRCUIT_PENDING], 1);
    /* 0 is no limit */
    rm_circuit_token_t c[100];
    for (int i = 0; i < 100; i++)
        assert_int_equal(rm_circuit_acquire(&dl, &dest, &el, &ep1, RM_CIRCUIT_CONNECTION, &c[i]), 0);
    for (int i = 0; i < 100; i++)
        rm_circuit_release(&c[i]);
    assert_int_equal(dest.open[RM_CIRCUIT_CONNECTION], 0);

    /* giving back makes room; a second release of the same token changes nothing */
    rm_circuit_release(&t[0]);
    rm_circuit_release(&t[0]);
    rm_circuit_release(&t[2]); /* a refused token holds nothing */
    assert_int_equal(ep1.open[RM_CIRCUIT_REQUEST], 1);
    assert_int_equal(dest.open[RM_CIRCUIT_REQUEST], 2);
    assert_int_equal(rm_circuit_acquire(&dl, &dest, &el, &ep2, RM_CIRCUIT_REQUEST, &t[0]), 0);
    rm_circuit_release(&t[0]);
    rm_circuit_release(&t[1]);
    rm_circuit_release(&t[3]);
    rm_circuit_release(&t[5]);
    for (unsigned k = 0; k < RM_CIRCUIT_KINDS; k++) {
        assert_int_equal(dest.open[k], 0);
        assert_int_equal(ep1.open[k], 0);
        assert_int_equal(ep2.open[k], 0);
    }
}

static void test_per_worker(void **state)
{
    (void)state;
    rm_traffic_config_t cfg;
    rm_circuit_limits_t w;
    rm_traffic_config_defaults(&cfg);
    rm_circuit_limits_per_worker(&cfg.destination, 3, &w);
    assert_int_equal(w.max_connections, 342);
    assert_int_equal(w.max_retries, 342);
    rm_circuit_limits_per_worker(&cfg.endpoint, 2, &w);
    assert_int_equal(w.max_pending, 512);
    assert_int_equal(w.max_requests, 0); /* no limit stays no limit */
    rm_circuit_limits_t one = {.max_requests = 1};
    rm_circuit_limits_per_worker(&one, 8, &w);
    assert_int_equal(w.max_requests, 1);
    rm_circuit_limits_per_worker(&one, 0, &w);
    assert_int_equal(w.max_requests, 1);
}

static void test_flags(void **state)
{
    (void)state;
    char buf[RM_RESPONSE_FLAGS_MAX], small[4];
    assert_int_equal(rm_response_flags_format(0, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "-");
    rm_response_flags_format(RM_RF_URX | RM_RF_UF, buf, sizeof(buf));
    assert_string_equal(buf, "UF,URX");
    rm_response_flags_format(0x1ffu, buf, sizeof(buf));
    assert_string_equal(buf, "UH,UF,UT,URX,UO,NR,UC,DC,LR");
    rm_response_flags_format(RM_RF_UO | RM_RF_UT, small, sizeof(small));
    assert_string_equal(small, "UT"); /* cut short at a flag's end */
    assert_int_equal(rm_response_flags_status(RM_RF_NR), 404);
    assert_int_equal(rm_response_flags_status(RM_RF_UT | RM_RF_URX), 504);
    assert_int_equal(rm_response_flags_status(RM_RF_UO), 503);
    assert_int_equal(rm_response_flags_status(RM_RF_UH), 503);
    assert_int_equal(rm_response_flags_status(RM_RF_DC), 0);
    assert_int_equal(rm_response_flags_grpc_status(RM_RF_UF), 14);
    assert_int_equal(rm_response_flags_grpc_status(RM_RF_UT), 4);
    assert_int_equal(rm_response_flags_grpc_status(RM_RF_NR), 12);
    assert_int_equal(rm_response_flags_grpc_status(0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_per_worker),
        cmocka_unit_test(test_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
