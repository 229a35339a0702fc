/* The handshake threads and their queues. The queue is a list under a mutex: it is taken twice per handshake step
 * that moves (submit, reply), never for established traffic. */
#include "handshake_pool.h"

#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NICE_LOW 19

typedef struct st_hs_thread_t {
    struct st_rm_hs_pool_t *pool;
    pthread_t thread;
    int started;
    atomic_uint_fast64_t sig_computed, sig_remembered;
} hs_thread_t;

struct st_rm_hs_pool_t {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    rm_hs_job_t *head, *tail;
    unsigned queued;
    int stopping;
    rm_handshake_priority_t prio;
    unsigned num_threads;
    hs_thread_t threads[];
};

int rm_hs_reply_init(rm_hs_reply_t *r)
{
    r->head = r->tail = NULL;
    if ((r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return -errno;
    pthread_mutex_init(&r->lock, NULL);
    return 0;
}

void rm_hs_reply_dispose(rm_hs_reply_t *r)
{
    if (r->efd >= 0)
        close(r->efd);
    r->efd = -1;
    pthread_mutex_destroy(&r->lock);
}

rm_hs_job_t *rm_hs_reply_take(rm_hs_reply_t *r)
{
    rm_hs_job_t *j;
    pthread_mutex_lock(&r->lock);
    j = r->head;
    r->head = r->tail = NULL;
    pthread_mutex_unlock(&r->lock);
    return j;
}

static void reply_put(rm_hs_job_t *job)
{
    rm_hs_reply_t *r = job->reply;
    uint64_t one = 1;
    job->next = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->tail != NULL)
        r->tail->next = job;
    else
        r->head = job;
    r->tail = job;
    pthread_mutex_unlock(&r->lock);
    ssize_t n = write(r->efd, &one, sizeof(one));
    (void)n; /* a full counter still wakes the worker */
}

/* Lowers the calling thread's priority: nice applies to one thread when given its TID (Linux). */
static void set_priority(rm_handshake_priority_t prio)
{
    int ret = 0;
    const char *what = NULL;
    if (prio == RM_HANDSHAKE_PRIORITY_LOW) {
        what = "nice 19";
        if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), NICE_LOW) != 0)
            ret = -errno;
    } else if (prio == RM_HANDSHAKE_PRIORITY_IDLE) {
        struct sched_param sp = {0};
        what = "SCHED_IDLE";
        if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
            ret = -errno;
    }
    if (ret != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "handshake_priority_failed");
        rm_log_str(&l, "priority", what);
        rm_log_err(&l, "error", ret);
        rm_log_str(&l, "effect", "handshakes run at the workers' priority");
        rm_log_end(&l);
    }
}

static void *hs_thread_main(void *arg)
{
    hs_thread_t *t = arg;
    rm_hs_pool_t *p = t->pool;

    pthread_setname_np(pthread_self(), "rm-handshake");
    set_priority(p->prio);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->head == NULL)
            break; /* stopping and nothing left */
        rm_hs_job_t *job = p->head;
        p->head = job->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        int stopping = p->stopping;
        pthread_mutex_unlock(&p->lock);
        if (stopping || atomic_load_explicit(&job->cancelled, memory_order_acquire)) {
            job->result = RM_ERR_TLS_CLOSED;
        } else {
            job->result = rm_tls_handshake(job->tls);
            rm_tls_verify_stats_t v = rm_tls_thread_verify_stats();
            atomic_store_explicit(&t->sig_computed, v.computed, memory_order_relaxed);
            atomic_store_explicit(&t->sig_remembered, v.remembered, memory_order_relaxed);
        }
        reply_put(job);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int rm_hs_pool_start(rm_hs_pool_t **out, unsigned threads, rm_handshake_priority_t prio)
{
    rm_hs_pool_t *p = calloc(1, sizeof(*p) + threads * sizeof(hs_thread_t));
    int ret;

    if (p == NULL)
        return -ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->prio = prio;
    p->num_threads = threads;
    for (unsigned i = 0; i < threads; i++) {
        p->threads[i].pool = p;
        if ((ret = pthread_create(&p->threads[i].thread, NULL, hs_thread_main, &p->threads[i])) != 0) {
            rm_hs_pool_stop(p);
            return -ret;
        }
        p->threads[i].started = 1;
    }
    *out = p;
    return 0;
}

void rm_hs_pool_submit(rm_hs_pool_t *p, rm_hs_job_t *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail != NULL)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    p->queued++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

unsigned rm_hs_pool_queued(rm_hs_pool_t *p)
{
    unsigned n;
    pthread_mutex_lock(&p->lock);
    n = p->queued;
    pthread_mutex_unlock(&p->lock);
    return n;
}

rm_tls_verify_stats_t rm_hs_pool_verify_stats(rm_hs_pool_t *p)
{
    rm_tls_verify_stats_t v = {0, 0};
    for (unsigned i = 0; p != NULL && i < p->num_threads; i++) {
        v.computed += atomic_load_explicit(&p->threads[i].sig_computed, memory_order_relaxed);
        v.remembered += atomic_load_explicit(&p->threads[i].sig_remembered, memory_order_relaxed);
    }
    return v;
}

void rm_hs_pool_stop(rm_hs_pool_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->num_threads; i++)
        if (p->threads[i].started)
            pthread_join(p->threads[i].thread, NULL);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
