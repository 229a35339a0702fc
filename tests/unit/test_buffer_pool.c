/* The per-thread buffer pool: buffers are reused, counted, capped when idle, each thread has its own, and a thread's
 * idle buffers are freed when it ends.
 *
 * The executable is linked with -Wl,--wrap=free: __wrap_free counts the frees the library makes on one watched
 * thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/buffer_pool.h"

#include <pthread.h>
#include <string.h>

void __real_free(void *p);
void __wrap_free(void *p);

static __thread int watched;   /* this thread's frees are counted */
static volatile int num_frees; /* read after pthread_join */

void __wrap_free(void *p)
{
    if (watched && p != NULL)
        ++num_frees;
    __real_free(p);
}

static void test_reuse_and_counts(void **state)
{
    rm_buf_stats_t s0 = rm_buf_stats();
    uint8_t *a = rm_buf_get(), *b = rm_buf_get();
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    memset(a, 0xaa, RM_BUF_SIZE); /* the whole size is usable (ASan/valgrind would flag less) */
    memset(b, 0xbb, RM_BUF_SIZE);
    assert_int_equal(rm_buf_stats().in_use, s0.in_use + 2);
    rm_buf_put(a);
    assert_int_equal(rm_buf_stats().in_use, s0.in_use + 1);
    assert_int_equal(rm_buf_stats().idle, s0.idle + 1);
    /* the most recently returned buffer comes back first (warm in cache) */
    assert_ptr_equal(rm_buf_get(), a);
    rm_buf_put(a);
    rm_buf_put(b);
    rm_buf_put(NULL);
    assert_int_equal(rm_buf_stats().in_use, s0.in_use);
}

static void test_idle_cap(void **state)
{
    uint8_t *bufs[RM_BUF_IDLE_MAX + 10];
    for (size_t i = 0; i < RM_BUF_IDLE_MAX + 10; i++)
        assert_non_null(bufs[i] = rm_buf_get());
    for (size_t i = 0; i < RM_BUF_IDLE_MAX + 10; i++)
        rm_buf_put(bufs[i]);
    /* a burst does not leave more than the cap behind */
    assert_int_equal(rm_buf_stats().idle, RM_BUF_IDLE_MAX);
    assert_int_equal(rm_buf_stats().in_use, 0);
}

static void test_trim_frees_idle_buffers(void **state)
{
    uint8_t *a = rm_buf_get(), *b = rm_buf_get();
    rm_buf_put(a);
    assert_true(rm_buf_stats().idle >= 1);
    rm_buf_trim();
    assert_int_equal(rm_buf_stats().idle, 0);
    assert_int_equal(rm_buf_stats().in_use, 1); /* a buffer in use is not touched */
    memset(b, 0x55, RM_BUF_SIZE);
    rm_buf_put(b);
    assert_int_equal(rm_buf_stats().idle, 1);
}

/* Large buffers: their own size, their own free list and idle cap, taken back by the same rm_buf_put, trimmed with
 * the small ones. */
static void test_large_buffers(void **state)
{
    rm_buf_trim();
    rm_buf_stats_t s0 = rm_buf_stats();
    uint8_t *small = rm_buf_get(), *large = rm_buf_get_large();
    assert_non_null(small);
    assert_non_null(large);
    assert_int_equal(rm_buf_size(small), RM_BUF_SIZE);
    assert_int_equal(rm_buf_size(large), RM_BUF_LARGE_SIZE);
    memset(large, 0x11, RM_BUF_LARGE_SIZE);
    assert_int_equal(rm_buf_stats().large_in_use, s0.large_in_use + 1);
    assert_int_equal(rm_buf_stats().in_use, s0.in_use + 1);
    rm_buf_put(large);
    rm_buf_put(small);
    assert_int_equal(rm_buf_stats().large_idle, 1);
    assert_int_equal(rm_buf_stats().idle, 1);
    /* each size comes back from its own list */
    assert_ptr_equal(rm_buf_get_large(), large);
    assert_ptr_equal(rm_buf_get(), small);
    rm_buf_put(small);

    uint8_t *bufs[RM_BUF_LARGE_IDLE_MAX + 4];
    bufs[0] = large;
    for (size_t i = 1; i < RM_BUF_LARGE_IDLE_MAX + 4; i++)
        assert_non_null(bufs[i] = rm_buf_get_large());
    for (size_t i = 0; i < RM_BUF_LARGE_IDLE_MAX + 4; i++)
        rm_buf_put(bufs[i]);
    assert_int_equal(rm_buf_stats().large_idle, RM_BUF_LARGE_IDLE_MAX);
    assert_int_equal(rm_buf_stats().large_in_use, 0);
    rm_buf_trim();
    assert_int_equal(rm_buf_stats().large_idle, 0);
    assert_int_equal(rm_buf_stats().idle, 0);

    /* freed outside the pool (a thread ending with buffers lent elsewhere) */
    uint8_t *stray = rm_buf_get_large();
    rm_buf_free(stray);
    rm_buf_free(NULL);
}

static void *other_thread(void *arg)
{
    rm_buf_stats_t *out = arg;
    uint8_t *b = rm_buf_get();
    *out = rm_buf_stats();
    rm_buf_put(b);
    return NULL;
}

static void *thread_leaving_idle_buffers(void *arg)
{
    (void)arg;
    watched = 1;
    uint8_t *small = rm_buf_get(), *large = rm_buf_get_large();
    if (small == NULL || large == NULL)
        return NULL;
    rm_buf_put(small);
    rm_buf_put(large);
    num_frees = 0; /* only what happens as the thread ends counts */
    return NULL;   /* both buffers idle in this thread's pool */
}

/* A thread that ends with idle buffers in its pool frees them as it ends (they were lost before). */
static void test_thread_exit_frees_idle(void **state)
{
    pthread_t t;
    (void)state;
    num_frees = -100;
    assert_int_equal(pthread_create(&t, NULL, thread_leaving_idle_buffers, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(num_frees, 2);
}

static void test_pools_are_per_thread(void **state)
{
    pthread_t t;
    rm_buf_stats_t theirs;
    uint8_t *mine = rm_buf_get();
    assert_int_equal(pthread_create(&t, NULL, other_thread, &theirs), 0);
    pthread_join(t, NULL);
    /* the other thread saw only its own buffer and none of this thread's idle ones */
    assert_int_equal(theirs.in_use, 1);
    assert_int_equal(theirs.idle, 0);
    rm_buf_put(mine);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_and_counts),        cmocka_unit_test(test_idle_cap),
        cmocka_unit_test(test_trim_frees_idle_buffers), cmocka_unit_test(test_large_buffers),
        cmocka_unit_test(test_pools_are_per_thread),    cmocka_unit_test(test_thread_exit_frees_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
