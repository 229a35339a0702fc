/* rm_openssl_process_init(): a thread that has used OpenSSL and ends after exit() has begun (as gRPC's detached
 * threads may, in ringmesh-control) frees its per-thread state. With OpenSSL's own exit-time cleanup, which runs
 * before such a thread ends and deletes the key of that state, the thread's error state (904 bytes in OpenSSL 3.0)
 * was lost: LeakSanitizer reported it, now and then, at the control plane's exit.
 *
 * Every OpenSSL allocation goes through counting functions (CRYPTO_set_mem_functions, before OpenSSL allocates
 * anything), which count what the worker thread still holds. The worker is let go and joined by an exit handler
 * registered before OpenSSL's (exit handlers run in reverse order: ours runs after OpenSSL's cleanup, when there
 * is one); that handler fails the test when the ended thread still holds memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "openssl_defaults.h"

#define MAX_BLOCKS 64

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int worker_used_openssl, worker_may_end;
static pthread_t worker;
static int worker_started;
static __thread int in_worker;
static void *worker_blocks[MAX_BLOCKS]; /* what the worker allocated and nobody freed yet */

static void remember(void *p)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < MAX_BLOCKS; i++) {
        if (worker_blocks[i] == NULL) {
            worker_blocks[i] = p;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
}

static void forget(void *p)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < MAX_BLOCKS; i++) {
        if (worker_blocks[i] == p)
            worker_blocks[i] = NULL;
    }
    pthread_mutex_unlock(&mu);
}

static size_t worker_blocks_held(void)
{
    size_t n = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < MAX_BLOCKS; i++)
        n += worker_blocks[i] != NULL;
    pthread_mutex_unlock(&mu);
    return n;
}

static void *count_malloc(size_t n, const char *file, int line)
{
    void *p = malloc(n);
    (void)file, (void)line;
    if (p != NULL && in_worker)
        remember(p);
    return p;
}

static void *count_realloc(void *old, size_t n, const char *file, int line)
{
    void *p;
    (void)file, (void)line;
    if (old != NULL)
        forget(old);
    p = realloc(old, n);
    if (p != NULL && in_worker)
        remember(p);
    return p;
}

static void count_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    if (p != NULL)
        forget(p);
    free(p);
}

static void *worker_main(void *arg)
{
    (void)arg;
    in_worker = 1;
    ERR_raise(ERR_LIB_USER, 1); /* the thread's error state: allocated here, kept until the thread ends */
    ERR_clear_error();
    pthread_mutex_lock(&mu);
    worker_used_openssl = 1;
    pthread_cond_broadcast(&cond);
    while (!worker_may_end)
        pthread_cond_wait(&cond, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Runs at exit, after OpenSSL's cleanup when OpenSSL registered one. */
static void end_worker_and_check(void)
{
    size_t held;
    if (!worker_started)
        return;
    pthread_mutex_lock(&mu);
    worker_may_end = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
    pthread_join(worker, NULL);
    held = worker_blocks_held();
    if (held != 0) {
        printf("FAIL: a thread that ended during exit still holds %zu block(s) OpenSSL allocated for it\n", held);
        fflush(stdout);
        _exit(1);
    }
    printf("ok: the thread that ended during exit freed what OpenSSL allocated for it\n");
    fflush(stdout);
}

static void test_thread_ending_at_exit_frees_its_state(void **state)
{
    (void)state;
    assert_int_equal(rm_openssl_process_init(), 0);
    /* OpenSSL's global state (the error strings) made here, so that the worker allocates only its own */
    ERR_raise(ERR_LIB_USER, 1);
    ERR_clear_error();
    assert_int_equal(pthread_create(&worker, NULL, worker_main, NULL), 0);
    worker_started = 1;
    pthread_mutex_lock(&mu);
    while (!worker_used_openssl)
        pthread_cond_wait(&cond, &mu);
    pthread_mutex_unlock(&mu);
    assert_true(worker_blocks_held() > 0); /* the worker holds its state while it lives */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_ending_at_exit_frees_its_state),
    };
    /* before OpenSSL allocates anything, and before OpenSSL can register its exit handler */
    if (CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free) != 1) {
        printf("FAIL: OpenSSL allocated before main\n");
        return 1;
    }
    if (atexit(end_worker_and_check) != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
