/* Handshake threads: where the expensive steps of inbound TLS handshakes run (the key exchange and the signature
 * over the ClientHello, the verification of the client's chain), apart from the workers that move established
 * traffic and at a lower CPU priority, so that a flood of handshakes cannot take the workers' CPU.
 *
 * Only the computation moves: the connection, its sockets and its I/O stay on their worker. A worker hands a job
 * (the session, which holds the bytes received) to the pool when nothing of the session is in flight; a thread runs
 * rm_tls_handshake() on it and gives the job back to the worker's reply queue, whose eventfd wakes the worker; the
 * worker then sends what the session wrote and goes on as with a step it ran itself. Between submit and reply the
 * session belongs to the pool's thread: the worker does not touch it. */
#ifndef RINGMESH_HANDSHAKE_POOL_H
#define RINGMESH_HANDSHAKE_POOL_H

#include "proxy_config.h"
#include "ringmesh/tls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct st_rm_hs_reply_t rm_hs_reply_t;

/** One handshake step to run; embedded in its owner (the connection). */
typedef struct st_rm_hs_job_t {
    rm_tls_t *tls;        /* set by the owner at submit */
    rm_hs_reply_t *reply; /* where it comes back */
    int result;           /* rm_tls_handshake()'s result, set by the thread */
    atomic_int cancelled; /* set by the owner: the thread skips the step (result RM_ERR_TLS_CLOSED) */
    uint8_t busy;         /* the owner's: submitted, not back yet */
    uint8_t done;         /* the owner's: back, the result not taken yet */
    uint8_t admitted;     /* the owner's: counts as pending in the handshake guard */
    uint8_t known;        /* the owner's: the guard knows the peer's address (its handshakes stay on the worker) */
    struct st_rm_hs_job_t *next;
} rm_hs_job_t;

/** A worker's queue of jobs that came back: the pool's threads append and write the eventfd; the worker takes them
 *  all (rm_hs_reply_take) when the eventfd is readable. */
struct st_rm_hs_reply_t {
    pthread_mutex_t lock;
    rm_hs_job_t *head, *tail;
    int efd; /* eventfd, made by rm_hs_reply_init */
};

/** Makes the queue and its eventfd (nonblocking). Returns 0 or -errno. */
int rm_hs_reply_init(rm_hs_reply_t *r);
/** Closes the eventfd; only once no job of the queue is in flight. */
void rm_hs_reply_dispose(rm_hs_reply_t *r);
/** The jobs that came back, oldest first, linked by `next` (the queue is emptied); NULL when none. */
rm_hs_job_t *rm_hs_reply_take(rm_hs_reply_t *r);

typedef struct st_rm_hs_pool_t rm_hs_pool_t;

/** Starts `threads` (>= 1) threads named rm-handshake at `prio` (a priority that cannot be set is logged, and the
 *  thread runs at the workers' own). Returns 0 or -errno (nothing started). */
int rm_hs_pool_start(rm_hs_pool_t **out, unsigned threads, rm_handshake_priority_t prio);
/** Hands a job to the threads. The job's tls and reply are set; its output window must be held already
 *  (rm_tls_out_reserve), so that no buffer is taken from the thread's pool. */
void rm_hs_pool_submit(rm_hs_pool_t *p, rm_hs_job_t *job);
/** Jobs waiting for a thread now. */
unsigned rm_hs_pool_queued(rm_hs_pool_t *p);
/** The threads' signature verification counters (rm_tls_thread_verify_stats), added up. */
rm_tls_verify_stats_t rm_hs_pool_verify_stats(rm_hs_pool_t *p);
/** Stops the threads (jobs still queued come back cancelled) and frees the pool. NULL is fine. */
void rm_hs_pool_stop(rm_hs_pool_t *p);

#endif
