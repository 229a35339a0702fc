/* rm_h2_grpc_message_next(): how the control-plane client cuts the DATA of a call into gRPC messages. A call that
 * has received nothing has no buffer at all (NULL): asking it for a message is "need more", with no pointer formed
 * from NULL (the client asks on every poll, from the response headers on). Prefixes split anywhere wait for the
 * rest; a compressed or oversized message is refused by its prefix, before its body arrives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "grpc_h2.h"

static void test_nothing_received(void **state)
{
    const uint8_t *msg = NULL;
    uint32_t len = 7;
    const char *why = NULL;
    (void)state;
    assert_int_equal(rm_h2_grpc_message_next(NULL, 0, 0, &msg, &len, &why), 0);
    assert_null(msg);
    assert_int_equal(len, 7);
    assert_null(why);
}

static void test_prefix_and_body_in_pieces(void **state)
{
    static const uint8_t two[] = {0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0};
    const uint8_t *msg = NULL;
    uint32_t len = 0;
    const char *why = NULL;
    (void)state;
    for (size_t have = 0; have < 8; have++) /* the first message cut anywhere before its end */
        assert_int_equal(rm_h2_grpc_message_next(two, have, 0, &msg, &len, &why), 0);
    assert_int_equal(rm_h2_grpc_message_next(two, 8, 0, &msg, &len, &why), 1);
    assert_ptr_equal(msg, two + 5);
    assert_int_equal(len, 3);
    /* the second, empty, message: whole once its prefix is */
    for (size_t have = 8; have < sizeof(two); have++)
        assert_int_equal(rm_h2_grpc_message_next(two, have, 8, &msg, &len, &why), 0);
    assert_int_equal(rm_h2_grpc_message_next(two, sizeof(two), 8, &msg, &len, &why), 1);
    assert_ptr_equal(msg, two + sizeof(two));
    assert_int_equal(len, 0);
    assert_int_equal(rm_h2_grpc_message_next(two, sizeof(two), sizeof(two), &msg, &len, &why), 0);
    assert_null(why);
}

static void test_refused_prefixes(void **state)
{
    static const uint8_t compressed[] = {1, 0, 0, 0, 1};
    static const uint8_t huge[] = {0, 0x01, 0x00, 0x00, 0x01}; /* 16 MiB + 1 */
    static const uint8_t largest[] = {0, 0x01, 0x00, 0x00, 0x00};
    const uint8_t *msg = NULL;
    uint32_t len = 0;
    const char *why = NULL;
    (void)state;
    assert_int_equal(rm_h2_grpc_message_next(compressed, sizeof(compressed), 0, &msg, &len, &why), -1);
    assert_string_equal(why, "compressed message (not negotiated)");
    why = NULL;
    assert_int_equal(rm_h2_grpc_message_next(huge, sizeof(huge), 0, &msg, &len, &why), -1);
    assert_string_equal(why, "message larger than 16 MiB");
    why = NULL;
    /* 16 MiB exactly is taken: it waits for its body */
    assert_int_equal(rm_h2_grpc_message_next(largest, sizeof(largest), 0, &msg, &len, &why), 0);
    assert_null(why);
    assert_null(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_received),
        cmocka_unit_test(test_prefix_and_body_in_pieces),
        cmocka_unit_test(test_refused_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
