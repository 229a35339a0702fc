/* Assertions several unit tests share, on top of cmocka's (include <cmocka.h> and ringmesh/error.h first). */
#ifndef RM_TEST_UNIT_ASSERTS_H
#define RM_TEST_UNIT_ASSERTS_H

#include <string.h>

/** `expr` returns exactly `code`; the failure names both as numbers and as rm_strerror() text. */
#define assert_code(expr, code)                                                                                        \
    do {                                                                                                               \
        int ret_ = (expr);                                                                                             \
        if (ret_ != (code))                                                                                            \
            fail_msg("%s: got %d (%s), want %d (%s)", #expr, ret_, rm_strerror(ret_), (code), rm_strerror(code));      \
    } while (0)

/** The string `hay` contains `needle`; the failure shows both. */
#define assert_contains(hay, needle)                                                                                   \
    do {                                                                                                               \
        if (strstr((hay), (needle)) == NULL)                                                                           \
            fail_msg("\"%s\" not found in:\n%s", (needle), (hay));                                                     \
    } while (0)

#endif
