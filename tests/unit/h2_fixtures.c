/* Fixtures shared by the HTTP/2 filter's tests: see h2_fixtures.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "h2_fixtures.h"

#include <stdio.h>
#include <string.h>

int try_append_field(char *dst, size_t cap, const uint8_t *name, size_t name_len, const uint8_t *value,
                     size_t value_len)
{
    size_t len = strlen(dst);
    if (name_len + value_len + 3 >= cap - len)
        return -1;
    snprintf(dst + len, cap - len, "%.*s: %.*s\n", (int)name_len, (const char *)name, (int)value_len,
             (const char *)value);
    return 0;
}

void append_field(char *dst, size_t cap, const uint8_t *name, size_t name_len, const uint8_t *value, size_t value_len)
{
    assert_int_equal(try_append_field(dst, cap, name, name_len, value, value_len), 0);
}
