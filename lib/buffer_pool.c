#include "ringmesh/buffer_pool.h"

#include <pthread.h>
#include <stdlib.h>

/* Each buffer is preceded by a header saying which pool it belongs to; it keeps the buffer 16-byte aligned. An idle
 * buffer is linked into its pool's free list by its header, so the list points at the start of every block it
 * holds (a leak checker then sees idle buffers as reachable, not as possibly lost). */
typedef struct buf_hdr {
    size_t large;
    struct buf_hdr *next; /* while idle */
} buf_hdr_t;

typedef struct {
    buf_hdr_t *free_list;
    size_t idle, in_use;
} pool_t;

static __thread pool_t pools[2]; /* [0] small, [1] large */

static const size_t pool_size[2] = {RM_BUF_SIZE, RM_BUF_LARGE_SIZE};
static const size_t pool_idle_max[2] = {RM_BUF_IDLE_MAX, RM_BUF_LARGE_IDLE_MAX};

/* A thread that has allocated a buffer frees its idle ones when it ends: a key whose destructor trims the pool,
 * set (to any non-NULL value) on the thread's first allocation. The main thread's pool is not trimmed at exit(). */
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_ok;
static __thread int exit_armed;

static void trim_at_thread_exit(void *unused)
{
    (void)unused;
    rm_buf_trim();
}

static void make_exit_key(void)
{
    exit_key_ok = pthread_key_create(&exit_key, trim_at_thread_exit) == 0;
}

static void arm_thread_exit(void)
{
    if (exit_armed)
        return;
    exit_armed = 1;
    pthread_once(&exit_key_once, make_exit_key);
    if (exit_key_ok)
        (void)pthread_setspecific(exit_key, &exit_armed); /* ENOMEM: the pool stays until exit, as before */
}

static buf_hdr_t *hdr_of(const uint8_t *buf)
{
    return (buf_hdr_t *)(buf - sizeof(buf_hdr_t));
}

static uint8_t *get(unsigned large)
{
    pool_t *p = &pools[large];
    buf_hdr_t *h = p->free_list;
    if (h != NULL) {
        p->free_list = h->next;
        p->idle--;
    } else {
        arm_thread_exit();
        if ((h = malloc(sizeof(buf_hdr_t) + pool_size[large])) == NULL)
            return NULL;
        h->large = large;
    }
    h->next = NULL;
    p->in_use++;
    // cppcheck-suppress memleak ; the block is handed out as h + 1 and found again by rm_buf_put() as buf - 1
    return (uint8_t *)(h + 1);
}

uint8_t *rm_buf_get(void)
{
    return get(0);
}

uint8_t *rm_buf_get_large(void)
{
    return get(1);
}

size_t rm_buf_size(const uint8_t *buf)
{
    return pool_size[hdr_of(buf)->large];
}

void rm_buf_put(uint8_t *buf)
{
    if (buf == NULL)
        return;
    buf_hdr_t *h = hdr_of(buf);
    pool_t *p = &pools[h->large];
    p->in_use--;
    if (p->idle >= pool_idle_max[h->large]) {
        free(h);
        return;
    }
    h->next = p->free_list;
    p->free_list = h;
    p->idle++;
}

void rm_buf_free(uint8_t *buf)
{
    if (buf != NULL)
        free(hdr_of(buf));
}

void rm_buf_trim(void)
{
    for (unsigned i = 0; i < 2; i++) {
        while (pools[i].free_list != NULL) {
            buf_hdr_t *h = pools[i].free_list;
            pools[i].free_list = h->next;
            free(h);
        }
        pools[i].idle = 0;
    }
}

rm_buf_stats_t rm_buf_stats(void)
{
    rm_buf_stats_t s = {pools[0].in_use, pools[0].idle, pools[1].in_use, pools[1].idle};
    return s;
}
