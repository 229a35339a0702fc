/* rm_h2_parse_digits(): the :status and grpc-status of the control-plane client and the gRPC health probe. A
 * grpc-status that is not 1-2 digits reads as UNKNOWN (2), never as OK (0), which atoi() made of "x" or "". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "grpc_h2.h"

static int digits(const char *s, size_t max, int bad)
{
    return rm_h2_parse_digits((const uint8_t *)s, strlen(s), max, bad);
}

static void test_numbers(void **state)
{
    (void)state;
    assert_int_equal(digits("0", 2, 2), 0);
    assert_int_equal(digits("7", 2, 2), 7);
    assert_int_equal(digits("14", 2, 2), 14);
    assert_int_equal(digits("200", 3, 0), 200);
    assert_int_equal(digits("503", 3, 0), 503);
}

static void test_not_numbers(void **state)
{
    (void)state;
    assert_int_equal(digits("", 2, 2), 2);
    assert_int_equal(digits("x", 2, 2), 2);
    assert_int_equal(digits("0x", 2, 2), 2);
    assert_int_equal(digits(" 0", 2, 2), 2);
    assert_int_equal(digits("-1", 2, 2), 2);
    assert_int_equal(digits("100", 2, 2), 2); /* too many digits, not 10 */
    assert_int_equal(digits("2000", 3, 0), 0);
    assert_int_equal(digits("20a", 3, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_not_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
