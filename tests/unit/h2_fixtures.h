/* Fixtures shared by the HTTP/2 filter's tests (test_h2_filter*.c): header fields written as text to compare. */
#ifndef RM_TEST_H2_FIXTURES_H
#define RM_TEST_H2_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

/** Appends "name: value\n" to the NUL-terminated `dst` of `cap` bytes. Returns 0, or -1 (dst unchanged) when it does
 * not fit. */
int try_append_field(char *dst, size_t cap, const uint8_t *name, size_t name_len, const uint8_t *value,
                     size_t value_len);

/** try_append_field() that fails the running test when the field does not fit. */
void append_field(char *dst, size_t cap, const uint8_t *name, size_t name_len, const uint8_t *value, size_t value_len);

#endif
