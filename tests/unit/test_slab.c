/* The slab of long-lived objects (lib/slab.c): zeroed objects of every size class, kept apart from malloc's heap in
 * chunks of their own, given back from any thread, empty chunks unmapped but the last of a class, sizes out of range
 * refused. What the slab holds is read from rm_slab_stats; an object's chunk is its address rounded down to
 * RM_SLAB_CHUNK. In a build with AddressSanitizer the slab is malloc (ringmesh/slab.h): the chunk test is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/slab.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_OF(p) ((uintptr_t)(p) & ~(uintptr_t)(RM_SLAB_CHUNK - 1))

/* Every size from 1 to RM_SLAB_MAX: zeroed, writable to its last byte, 16-byte aligned, and accounted. */
static void test_every_size(void **state)
{
    (void)state;
    rm_slab_stats_t s0 = rm_slab_stats();
    for (size_t n = 1; n <= RM_SLAB_MAX; n += n < 600 ? 1 : 37) {
        uint8_t *p = rm_slab_alloc(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xa5, n);
        assert_true(rm_slab_stats().in_use >= s0.in_use + n);
        rm_slab_free(p);
        assert_int_equal(rm_slab_stats().in_use, s0.in_use);
    }
    /* a slot given back and taken again comes back zeroed */
    uint8_t *a = rm_slab_alloc(100);
    memset(a, 0xff, 100);
    rm_slab_free(a);
    uint8_t *b = rm_slab_alloc(100);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(b[i], 0);
    rm_slab_free(b);
}

static void test_out_of_range(void **state)
{
    (void)state;
    assert_null(rm_slab_alloc(0));
    assert_null(rm_slab_alloc(RM_SLAB_MAX + 1));
    rm_slab_free(NULL);
    char big[RM_SLAB_MAX + 8];
    memset(big, 'x', sizeof(big));
    assert_null(rm_slab_strndup(big, RM_SLAB_MAX)); /* RM_SLAB_MAX characters and the NUL do not fit */
    char *s = rm_slab_strndup(big, RM_SLAB_MAX - 1);
    assert_non_null(s);
    assert_int_equal(strlen(s), RM_SLAB_MAX - 1);
    rm_slab_free(s);
    s = rm_slab_strndup("spiffe://cluster.local/ns/a/sa/b", 9); /* at most n bytes */
    assert_string_equal(s, "spiffe://");
    rm_slab_free(s);
    s = rm_slab_strndup("short", 100); /* or up to the string's end */
    assert_string_equal(s, "short");
    rm_slab_free(s);
}

/* Objects of one size are packed into shared chunks, never next to malloc's blocks; a chunk that empties is
 * unmapped when its class has another, and the last one stays. */
static void test_chunks(void **state)
{
    (void)state;
#if defined(RM_SLAB_IS_MALLOC)
    skip(); /* the slab is malloc in an AddressSanitizer build */
#endif
    enum { N = 2000, SIZE = 1344 }; /* a size of its class (64-byte steps above 512): 42 chunks of 48 */
    void **p = calloc(N, sizeof(*p));
    rm_slab_stats_t s0 = rm_slab_stats();
    size_t distinct = 0;
    for (size_t i = 0; i < N; i++) {
        assert_non_null(p[i] = rm_slab_alloc(SIZE));
        if (i == 0 || CHUNK_OF(p[i]) != CHUNK_OF(p[i - 1]))
            distinct++;
        void *m = malloc(SIZE); /* a heap block taken in between lands in no chunk of the slab */
        assert_true(CHUNK_OF(m) != CHUNK_OF(p[i]));
        free(m);
    }
    size_t per_chunk = (RM_SLAB_CHUNK - 64) / SIZE;
    assert_int_equal(distinct, (N + per_chunk - 1) / per_chunk);
    assert_true(rm_slab_stats().mapped >= s0.mapped + (N / per_chunk) * RM_SLAB_CHUNK);
    for (size_t i = 0; i < N; i++)
        rm_slab_free(p[i]);
    /* every chunk of this class went back but one */
    assert_int_equal(rm_slab_stats().in_use, s0.in_use);
    assert_true(rm_slab_stats().mapped <= s0.mapped + RM_SLAB_CHUNK);
    free(p);
}

/* Taken on one thread, given back on another (a handshake thread sets the peer's ID, the worker frees it). */
enum { THREADS = 4, PER_THREAD = 3000 };
static void *take(void *arg)
{
    void **out = arg;
    for (size_t i = 0; i < PER_THREAD; i++) {
        out[i] = rm_slab_alloc(16 + (i % 7) * 40);
        if (out[i] != NULL)
            memset(out[i], (int)i, 16);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    void **objs = calloc(THREADS * PER_THREAD, sizeof(*objs));
    size_t in_use0 = rm_slab_stats().in_use;
    for (size_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, take, objs + i * PER_THREAD), 0);
    for (size_t i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (size_t i = 0; i < THREADS * PER_THREAD; i++) {
        assert_non_null(objs[i]);
        assert_int_equal(((uint8_t *)objs[i])[15], (uint8_t)(i % PER_THREAD));
        for (size_t j = 0; j < i % 64 && j < i; j++) /* no two objects share a slot */
            assert_ptr_not_equal(objs[i], objs[i - j - 1]);
        rm_slab_free(objs[i]);
    }
    assert_int_equal(rm_slab_stats().in_use, in_use0);
    free(objs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
