/* The growable byte buffer: the zero value, growth, consume, the sticky failure flag (allocation failure and size_t
 * overflow), text appends and hand-over. The module is included so that its allocations can be made to fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

/* Allocation failures on demand: fail_allocs > 0 makes that many of the next allocations fail. */
static int fail_allocs, num_allocs;

static void *fallible_realloc(void *p, size_t n)
{
    ++num_allocs;
    if (fail_allocs > 0) {
        --fail_allocs;
        return NULL;
    }
    return realloc(p, n);
}

static void *fallible_malloc(void *unused, size_t n)
{
    (void)unused;
    ++num_allocs;
    if (fail_allocs > 0) {
        --fail_allocs;
        return NULL;
    }
    return malloc(n);
}

#define realloc(p, n) fallible_realloc(p, n)
#define malloc(n)     fallible_malloc(NULL, n)
#include "bytebuf.c"
#undef realloc
#undef malloc

static void test_zero_value_is_empty(void **state)
{
    rm_bytebuf_t b = {0};
    (void)state;
    assert_int_equal(b.len, 0);
    assert_int_equal(rm_bytebuf_append(&b, NULL, 0), 0); /* nothing to add: no allocation */
    assert_null(b.base);
    rm_bytebuf_consume(&b, 10);
    assert_int_equal(b.len, 0);
    rm_bytebuf_free(&b); /* freeing the zero value is fine, and leaves it */
    assert_null(b.base);
    assert_int_equal(b.cap, 0);
    assert_null(rm_bytebuf_release(&b));
}

static void test_growth_keeps_content(void **state)
{
    rm_bytebuf_t b = {0};
    uint8_t chunk[100];
    size_t i, caps = 0, last_cap = 0;
    (void)state;

    for (i = 0; i != 100; ++i) {
        memset(chunk, (int)i, sizeof(chunk));
        assert_int_equal(rm_bytebuf_append(&b, chunk, sizeof(chunk)), 0);
        assert_true(b.len <= b.cap);
        if (b.cap != last_cap) {
            assert_true(last_cap == 0 ? b.cap == 256 : b.cap == 2 * last_cap); /* doubling, from 256 */
            last_cap = b.cap;
            ++caps;
        }
    }
    assert_int_equal(b.len, 10000);
    assert_int_equal(caps, 7); /* 256 .. 16384 */
    for (i = 0; i != 10000; ++i)
        assert_int_equal(b.base[i], (uint8_t)(i / 100));
    assert_int_equal(rm_bytebuf_reserve(&b, b.cap - b.len), 0); /* fits: capacity unchanged */
    assert_int_equal(b.cap, last_cap);
    assert_int_equal(rm_bytebuf_reserve(&b, 20000), 0); /* more than double: grows to what is asked, at least */
    assert_true(b.cap >= 30000);
    assert_int_equal(b.len, 10000);
    rm_bytebuf_free(&b);
}

static void test_consume(void **state)
{
    rm_bytebuf_t b = {0};
    size_t cap;
    (void)state;

    assert_int_equal(rm_bytebuf_append(&b, "0123456789", 10), 0);
    cap = b.cap;
    rm_bytebuf_consume(&b, 3);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.base, "3456789", 7);
    rm_bytebuf_consume(&b, 0);
    assert_memory_equal(b.base, "3456789", 7);
    rm_bytebuf_consume(&b, 7);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap); /* the storage stays for the next appends */
    assert_int_equal(rm_bytebuf_append(&b, "ab", 2), 0);
    rm_bytebuf_consume(&b, 99); /* more than there is: empties */
    assert_int_equal(b.len, 0);
    rm_bytebuf_free(&b);
}

static void test_sticky_failure_on_allocation(void **state)
{
    rm_bytebuf_t b = {0};
    uint8_t big[300];
    int allocs;
    (void)state;

    memset(big, 'x', sizeof(big));
    assert_int_equal(rm_bytebuf_append(&b, "head", 4), 0);
    fail_allocs = 1;
    assert_int_equal(rm_bytebuf_append(&b, big, sizeof(big)), -ENOMEM); /* needs to grow: fails */
    assert_int_equal(b.failed, 1);
    /* later appends do nothing, even those that would fit, and try no allocation */
    allocs = num_allocs;
    assert_int_equal(rm_bytebuf_append(&b, "tail", 4), -ENOMEM);
    assert_int_equal(rm_bytebuf_append_byte(&b, '!'), -ENOMEM);
    assert_int_equal(rm_bytebuf_appendf(&b, "%d", 42), -ENOMEM);
    assert_int_equal(rm_bytebuf_append(&b, big, sizeof(big)), -ENOMEM);
    assert_int_equal(rm_bytebuf_reserve(&b, 0), -ENOMEM);
    assert_int_equal(num_allocs, allocs);
    /* what was there before the failure is still there */
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.base, "head", 4);
    assert_null(rm_bytebuf_release(&b)); /* a failed buffer hands nothing over */
    assert_int_equal(b.failed, 0);
    assert_int_equal(rm_bytebuf_append(&b, "again", 5), 0); /* the zero value again */
    rm_bytebuf_free(&b);
}

static void test_sticky_failure_on_size_overflow(void **state)
{
    rm_bytebuf_t b = {0};
    int allocs = num_allocs;
    (void)state;

    assert_int_equal(rm_bytebuf_append(&b, "abc", 3), 0);
    allocs = num_allocs;
    assert_int_equal(rm_bytebuf_reserve(&b, SIZE_MAX), -ENOMEM);     /* len + extra overflows size_t */
    assert_int_equal(rm_bytebuf_reserve(&b, SIZE_MAX - 2), -ENOMEM); /* already failed */
    assert_int_equal(num_allocs, allocs);                            /* never asked for memory */
    assert_int_equal(b.failed, 1);
    assert_int_equal(b.len, 3);
    rm_bytebuf_free(&b);
    assert_int_equal(b.failed, 0);

    /* the biggest size that does not overflow is asked of the allocator once; its refusal sticks too (the refusal
     * is simulated: a real request of 2^64 bytes is itself reported as an error by AddressSanitizer and valgrind) */
    assert_int_equal(rm_bytebuf_append(&b, "abc", 3), 0);
    allocs = num_allocs;
    fail_allocs = 1;
    assert_int_equal(rm_bytebuf_reserve(&b, SIZE_MAX - 3), -ENOMEM);
    assert_int_equal(num_allocs, allocs + 1);
    assert_int_equal(b.failed, 1);
    assert_int_equal(rm_bytebuf_reserve(&b, 1), -ENOMEM);
    assert_int_equal(num_allocs, allocs + 1);
    rm_bytebuf_free(&b);
}

static void test_text(void **state)
{
    rm_bytebuf_t b = {0};
    char long_text[1000];
    (void)state;

    assert_int_equal(rm_bytebuf_appendf(&b, "%s=%d;", "a", 1), 0); /* into the zero value */
    assert_int_equal(b.len, 4);
    assert_string_equal((char *)b.base, "a=1;");
    memset(long_text, 'y', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    assert_int_equal(rm_bytebuf_appendf(&b, "%s", long_text), 0); /* does not fit: grows, formats again */
    assert_int_equal(b.len, 4 + 999);
    assert_int_equal(b.base[b.len], '\0');
    assert_int_equal(strncmp((char *)b.base + 4, long_text, 999), 0);
    assert_int_equal(rm_bytebuf_append(&b, "z", 1), 0);
    assert_int_equal(rm_bytebuf_terminate(&b), 0);
    assert_int_equal(b.len, 4 + 999 + 1);
    assert_int_equal(b.base[b.len], '\0');
    rm_bytebuf_free(&b);
}

static void test_release_and_wipe(void **state)
{
    rm_bytebuf_t b = {.wipe = 1};
    uint8_t *p;
    size_t i;
    (void)state;

    for (i = 0; i != 1000; ++i)
        assert_int_equal(rm_bytebuf_append_byte(&b, (uint8_t)i), 0); /* grows by copy, not realloc */
    for (i = 0; i != 1000; ++i)
        assert_int_equal(b.base[i], (uint8_t)i);
    p = rm_bytebuf_release(&b);
    assert_non_null(p);
    assert_null(b.base);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.wipe, 1); /* the owner's choice stays */
    assert_int_equal(p[999], (uint8_t)999);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_value_is_empty),
        cmocka_unit_test(test_growth_keeps_content),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_sticky_failure_on_allocation),
        cmocka_unit_test(test_sticky_failure_on_size_overflow),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_release_and_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
