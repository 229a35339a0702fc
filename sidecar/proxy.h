/* ringmesh-proxy's core: workers, listeners and the proxied connection.
 *
 * A connection lives on one worker from accept to close. It joins two sockets: `down`, the accepted one, and `up`,
 * the one the proxy connects. Outbound (and explicit upstream listeners) put TLS on `up`; inbound (and explicit
 * inbound listeners) put TLS on `down`. Plaintext flows through two pipes, down->up and up->down. */
#ifndef RINGMESH_PROXY_H
#define RINGMESH_PROXY_H

#include "io_loop.h"
#include "proxy_config.h"
#include "ringmesh/buffer_pool.h"
#include "ringmesh/tls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define RM_PIPE_SIZE RM_BUF_SIZE /* pipes hold pool buffers, see ringmesh/buffer_pool.h */

/** Everything a connection needs that can change at run time, published as one immutable, reference-counted
 *  object: a connection keeps the snapshot it started with until it closes. */
typedef struct st_rm_snapshot_t {
    atomic_int refs;
    rm_proxy_config_t *cfg;
    rm_tls_ctx_t *client_ctx; /* NULL when no TLS material is configured */
    rm_tls_ctx_t *server_ctx;
} rm_snapshot_t;

void rm_snapshot_ref(rm_snapshot_t *s);
void rm_snapshot_unref(rm_snapshot_t *s);

/** Counters a worker keeps without locks; /metrics adds them up across workers. */
typedef struct st_rm_worker_stats_t {
    atomic_uint_fast64_t accepted, closed, active, rejected_peer, rejected_plaintext, rejected_limit, connect_failed,
        handshakes, bytes_down_to_up, bytes_up_to_down;
} rm_worker_stats_t;

typedef enum {
    RM_LISTENER_KIND_OUTBOUND = 0,
    RM_LISTENER_KIND_INBOUND,
    RM_LISTENER_KIND_EXPLICIT_UPSTREAM,
    RM_LISTENER_KIND_EXPLICIT_INBOUND,
    RM_LISTENER_KIND_ADMIN,
} rm_listener_kind_internal_t;

typedef struct st_rm_worker_t rm_worker_t;
typedef struct st_rm_proxy_t rm_proxy_t;

typedef struct st_rm_listener_t {
    rm_worker_t *w;
    rm_listener_kind_internal_t kind;
    const rm_listener_config_t *explicit_cfg; /* explicit listeners only */
    rm_sockaddr_t addr;
    rm_io_handle_t h;
    rm_io_op_t accept_op;
    int closed;
    uint64_t retry_at_ms; /* accept paused after EMFILE/ENFILE */
} rm_listener_t;

typedef struct st_rm_conn_t rm_conn_t;

struct st_rm_worker_t {
    rm_proxy_t *proxy;
    unsigned index;
    pthread_t thread;
    rm_loop_t *loop;
    rm_listener_t *listeners;
    size_t num_listeners;
    rm_conn_t *conns;      /* open connections, doubly linked */
    rm_conn_t *free_conns; /* recycled connection objects (and their pipe buffers) */
    size_t num_free;
    size_t num_conns;
    rm_io_handle_t wake_h; /* eventfd: the main thread's "look at the flags" */
    rm_io_op_t wake_op;
    uint64_t wake_buf;
    uint64_t next_tick_ms;
    uint64_t drain_deadline_ms;
    uint64_t limit_logged_ms;
    struct st_rm_admin_conn_t *admin_conns; /* worker 0 serves the admin port */
    unsigned num_admin_conns;
    int draining, stopping;
    int trim_pending; /* connections closed since memory was last given back */
    rm_worker_stats_t stats;
};

struct st_rm_proxy_t {
    _Atomic(rm_snapshot_t *) snap;
    rm_worker_t *workers;
    unsigned num_workers;
    rm_io_backend_t backend;
    atomic_uint num_conns; /* across workers, for maxConnections */
    atomic_int draining;
    atomic_int stopping;
    atomic_int workers_running;
};

/** Resolves the configured backend (AUTO tries io_uring, falls back to epoll and logs why). Returns 0 or -errno. */
int rm_proxy_pick_backend(rm_proxy_t *p, rm_io_backend_kind_t want);
/** Creates the workers' loops and listening sockets (SO_REUSEPORT, one per worker per listener). Returns 0 or a
 *  negative errno after logging which address failed. */
int rm_proxy_setup(rm_proxy_t *p, rm_snapshot_t *snap);
/** Starts the worker threads. */
int rm_proxy_start(rm_proxy_t *p);
/** Asks every worker to stop accepting and drain (open connections finish, cut at drainTimeout). */
void rm_proxy_drain(rm_proxy_t *p);
/** Asks every worker to stop now, cutting open connections. */
void rm_proxy_stop(rm_proxy_t *p);
/** Waits for every worker to exit and frees them. */
void rm_proxy_join(rm_proxy_t *p);
/** Open connections across all workers. */
unsigned rm_proxy_open_connections(rm_proxy_t *p);

/** Worker internals shared by proxy_worker.c and proxy_conn.c. */
rm_snapshot_t *rm__proxy_snapshot(rm_proxy_t *p); /* returns a new ref */
void rm__conn_accepted(rm_listener_t *l, int fd);
void rm__conn_tick(rm_conn_t *c, uint64_t now_ms);
void rm__conn_drain_cut(rm_conn_t *c);
/** The next connection in a worker's open or free list. */
rm_conn_t *rm__conn_next(rm_conn_t *c);
/** Frees a recycled connection object for good. */
void rm__conn_release(rm_conn_t *c);

#endif
