/* ringmesh-proxy's core: workers, listeners and the proxied connection.
 *
 * A connection lives on one worker from accept to close. It joins two sockets: `down`, the accepted one, and `up`,
 * the one the proxy connects. Outbound (and explicit upstream listeners) put TLS on `up`; inbound (and explicit
 * inbound listeners) put TLS on `down`. Plaintext flows through two pipes, down->up and up->down. */
#ifndef RINGMESH_PROXY_H
#define RINGMESH_PROXY_H

#include "handshake_guard.h"
#include "handshake_pool.h"
#include "io_loop.h"
#include "proxy_authz.h"
#include "proxy_config.h"
#include "ringmesh/buffer_pool.h"
#include "ringmesh/metrics.h"
#include "ringmesh/tls.h"
#include "ringmesh/xds.h"
#include "snapshot.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* An SVID with less than this fraction of its lifetime left and no new one is warned about (svid_expiring). */
#define RM_SVID_EXPIRY_WARN_FRACTION 0.1

/** Counters a worker keeps without locks; /metrics adds them up across workers. */
typedef struct st_rm_worker_stats_t {
    atomic_uint_fast64_t accepted, closed, active, rejected_peer, rejected_plaintext, rejected_limit, connect_failed,
        handshakes, bytes_down_to_up, bytes_up_to_down;
    /* accepts that failed for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) */
    atomic_uint_fast64_t accept_failed;
    /* mTLS connections refused because this proxy had no SVID to present (none yet, or its own had expired) */
    atomic_uint_fast64_t rejected_no_svid;
    /* the worker thread's rm_tls_thread_verify_stats(), published after every handshake that ends */
    atomic_uint_fast64_t sig_computed, sig_remembered;
    /* connections whose TLS records the kernel sealed and opened (both directions handed over), and hand-overs that
     * failed */
    atomic_uint_fast64_t ktls_conns, ktls_failed;
    /* the worker thread's rm_buf_stats(), published every tick */
    atomic_uint_fast64_t buf_in_use, buf_idle, buf_large_in_use, buf_large_idle;
    /* outbound connections sent to a chosen endpoint; other endpoints tried after a failed connect or a refused
     * identity; connections refused because no endpoint of their service port was ready (conn_endpoint.c) */
    atomic_uint_fast64_t endpoint_conns, endpoint_retries, endpoint_unavailable;
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
    /* an episode of failed accepts (out of descriptors or memory): when it began (0: none) and the retries since; the
     * first failure is logged, then nothing until an accept succeeds again */
    uint64_t starved_since_ms;
    uint64_t starved_retries;
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
    rm_hs_reply_t hs_reply; /* handshake steps the handshake threads give back (its eventfd is hs_h's) */
    rm_io_handle_t hs_h;
    rm_io_op_t hs_op;
    uint64_t hs_buf;
    uint64_t next_tick_ms;
    uint64_t drain_deadline_ms;
    uint64_t limit_logged_ms;
    struct st_rm_admin_conn_t *admin_conns; /* worker 0 serves the admin port */
    unsigned num_admin_conns;
    int draining, stopping;
    int trim_pending;                        /* connections closed since memory was last given back */
    int sessions_released;                   /* TLS sessions freed after a kernel TLS hand-over since the last tick */
    uint64_t rng;                            /* state of the sampling of allowed-decision logs */
    uint64_t ep_rng;                         /* state of the endpoint choice's draws (dest_endpoints.h), never 0 */
    struct st_rm_endpoint_load_t *ep_load;   /* open outbound connections per endpoint address, this worker's */
    struct st_rm_req_pools_t *req_pools;     /* the request path's pooled HTTP/2 connections (req_conn.h), lazily */
    struct st_rm_req_lb_t *req_lb;           /* the request path's latency estimates (req_balance.h), lazily */
    struct st_rm_retry_budget_t *req_budget; /* the request path's retry budget (ringmesh/retry.h), lazily */
    struct st_rm__app_conn_t *app_conns;     /* HTTP/1.1 connections to the app of pooled requests (req_in.h) */
    size_t num_app_conns;
    rm_worker_stats_t stats;
    rm_metrics_shard_t *metrics; /* this worker's shard of the proxy's request and connection metrics */
    atomic_uint_fast64_t epoch;  /* loop iterations: a change means no bare snapshot pointer survives from before */
    atomic_int exited;
};

/** What the control-plane client reports, for /metrics (written by the control thread, read by worker 0). */
typedef struct st_rm_control_stats_t {
    atomic_int enabled;
    atomic_int connected;                            /* the discovery stream is up */
    atomic_uint_fast64_t accepted[RM_XDS_NUM_TYPES]; /* pushes accepted, per resource type (ringmesh/xds.h order) */
    atomic_uint_fast64_t rejected[RM_XDS_NUM_TYPES]; /* pushes NACKed */
    atomic_uint_fast64_t svid_renewals;              /* SVIDs obtained */
    atomic_uint_fast64_t svid_failures;              /* Sign calls that failed */
    atomic_int_fast64_t svid_not_after;              /* of the SVID held, 0 when none */
    atomic_int svid_expiring;                        /* 1 while near expiry without a renewal */
} rm_control_stats_t;

/** Reads of changed files in a proxy without a control plane (file_sources.c), for /metrics. */
enum { RM_FILE_SOURCE_SVID, RM_FILE_SOURCE_POLICIES, RM_FILE_NUM_SOURCES };
typedef struct st_rm_file_stats_t {
    atomic_uint_fast64_t accepted[RM_FILE_NUM_SOURCES]; /* taken for new connections */
    atomic_uint_fast64_t rejected[RM_FILE_NUM_SOURCES]; /* failed a check: what was in force stayed */
} rm_file_stats_t;

struct st_rm_proxy_t {
    _Atomic(rm_snapshot_t *) snap;
    rm_control_stats_t control;
    rm_file_stats_t files;
    rm_snapshot_t *base_snap; /* the first snapshot: explicit listeners point into its configuration */
    pthread_mutex_t publish_lock;
    atomic_int ready;        /* 0 until the control plane has given an SVID and the first configuration */
    atomic_int svid_expired; /* 1 from svid_expired until a new SVID is in force (control plane or files) */
    rm_worker_t *workers;
    unsigned num_workers;
    rm_io_backend_t backend;
    atomic_uint num_conns; /* across workers, for maxConnections */
    atomic_int draining;
    atomic_int stopping;
    atomic_int workers_running;
    atomic_int
        kernel_tls; /* hand finished handshakes' record layers to the kernel (kernelTls, and the kernel has it) */
    struct st_rm_app_health_t *app_health; /* the app's probes (app_health.h), NULL without RINGMESH_APP_PROBERS */
    rm_metrics_t *metrics;                 /* Istio's standard metrics (mesh_metrics.h), one shard per worker */
    rm_hs_pool_t *hs_pool;   /* the handshake threads (handshakes.threads); NULL: handshakes run on the workers */
    rm_hs_guard_t *hs_guard; /* handshakes.maxPending and the back-off of failing addresses */
};

/** Raises the soft RLIMIT_NOFILE to the hard one, and logs nofile_limit_low when that is still less than
 *  `max_connections` needs. Returns the soft limit now in force (0 when it cannot be read). */
uint64_t rm_proxy_raise_nofile(unsigned max_connections);
/** Resolves the configured backend (AUTO tries io_uring, falls back to epoll and logs why). Returns 0 or -errno. */
int rm_proxy_pick_backend(rm_proxy_t *p, rm_io_backend_kind_t want);
/** Decides whether finished handshakes hand their record layers to the kernel: `want` (kernelTls: auto) and the
 *  kernel has a TLS layer, tried once on a loopback connection. Logs kernel_tls_unavailable when wanted and not
 *  there. Returns 0 when it is on, else the reason (-errno) or 0 when not wanted. */
int rm_proxy_pick_kernel_tls(rm_proxy_t *p, int want);
/** Creates the workers' loops and listening sockets (SO_REUSEPORT, one per worker per listener). Takes over the
 *  caller's reference on `snap` (released by rm_proxy_join()). Returns 0 or a negative errno after logging which
 *  address failed. */
int rm_proxy_setup(rm_proxy_t *p, rm_snapshot_t *snap);
/** Starts the worker threads. */
int rm_proxy_start(rm_proxy_t *p);
/** Asks every worker to stop accepting and drain (open connections finish, cut at drainTimeout). */
void rm_proxy_drain(rm_proxy_t *p);
/** Asks every worker to stop now, cutting open connections. */
void rm_proxy_stop(rm_proxy_t *p);
/** Waits for every worker to exit, frees them and drops the proxy's snapshots. */
void rm_proxy_join(rm_proxy_t *p);
/** Open connections across all workers. */
unsigned rm_proxy_open_connections(rm_proxy_t *p);

/** What a worker asks of the connection module (proxy_conn.c); the connection module never calls the worker. */
void rm__conn_accepted(rm_listener_t *l, int fd);
void rm__conn_tick(rm_conn_t *c, uint64_t now_ms);
void rm__conn_drain_cut(rm_conn_t *c);
/** A handshake step came back from the handshake threads (the worker took it from its reply queue). */
void rm__conn_handshake_back(rm_hs_job_t *job);
/** Closes the worker's idle HTTP/1.1 app connections of pooled requests older than their idle time (req_in_app.c). */
void rm__app_pool_tick(rm_worker_t *w, uint64_t now_ms);
/** Closes every app connection of the worker (it is stopping). Returns how many are still closing. */
size_t rm__app_pool_cut(rm_worker_t *w);
/** The next connection in a worker's open or free list. */
rm_conn_t *rm__conn_next(rm_conn_t *c);
/** Frees a recycled connection object for good. */
void rm__conn_release(rm_conn_t *c);

#endif
