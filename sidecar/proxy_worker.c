/* Workers: one thread and one loop each, their own SO_REUSEPORT listening sockets, a periodic tick for timeouts,
 * and an eventfd through which the main thread asks them to drain or stop. */
#include "admin_server.h"
#include "dest_endpoints.h"
#include "mesh_metrics.h"
#include "proxy.h"
#include "req_balance.h"
#include "req_conn.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 250
/* Submissions are flushed when the SQ fills, and the CQ (twice as large) never drops (IORING_FEAT_NODROP), so the
 * ring bounds a batch, not the number of connections; a small ring keeps its pages out of the resident set. */
#define RING_ENTRIES 512

int rm_proxy_pick_backend(rm_proxy_t *p, rm_io_backend_kind_t want)
{
    rm_loop_t *probe;
    int ret;

    if (want == RM_IO_EPOLL) {
        p->backend = RM_IO_BACKEND_EPOLL;
        return 0;
    }
    ret = rm_loop_new(&probe, RM_IO_BACKEND_URING, 8);
    if (ret == 0) {
        rm_loop_free(probe);
        p->backend = RM_IO_BACKEND_URING;
        return 0;
    }
    if (want == RM_IO_URING) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "io_backend_unavailable");
        rm_log_str(&l, "io_backend", "io_uring");
        rm_log_err(&l, "error", ret);
        rm_log_str(&l, "msg", "ioBackend is io_uring but the kernel refused it; set ioBackend: auto or epoll");
        rm_log_end(&l);
        return ret;
    }
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "io_backend_fallback");
        rm_log_str(&l, "io_backend", "epoll");
        rm_log_err(&l, "reason", ret);
        rm_log_str(&l, "msg", "io_uring is not available (seccomp profile or kernel setting); using epoll");
        rm_log_end(&l);
    }
    p->backend = RM_IO_BACKEND_EPOLL;
    return 0;
}

int rm_proxy_pick_kernel_tls(rm_proxy_t *p, int want)
{
    int ret;
    atomic_store(&p->kernel_tls, 0);
    if (!want)
        return 0;
    if ((ret = rm_tls_ktls_probe()) != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "kernel_tls_unavailable");
        rm_log_err(&l, "reason", ret);
        rm_log_str(&l, "msg",
                   ret == -ENOENT
                       ? "the kernel has no TLS layer (CONFIG_TLS, module tls): TLS records stay in the proxy"
                       : "TLS records stay in the proxy");
        rm_log_end(&l);
        return ret;
    }
    atomic_store(&p->kernel_tls, 1);
    return 0;
}

uint64_t rm_proxy_raise_nofile(unsigned max_connections)
{
    struct rlimit rl;
    uint64_t need = 2 * (uint64_t)max_connections + 64; /* two sockets a connection, and the proxy's own */

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        /* many hosts start services with a soft limit of 1024 and a far higher hard one: take what is allowed */
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "nofile_limit_low");
        rm_log_uint(&l, "nofile", rl.rlim_cur);
        rm_log_uint(&l, "max_connections", max_connections);
        rm_log_uint(&l, "needed", need);
        rm_log_str(&l, "msg",
                   "RLIMIT_NOFILE is lower than maxConnections needs (two descriptors a connection): past about half "
                   "the limit, new connections wait in the backlog (accept_failed); raise the limit or lower "
                   "maxConnections");
        rm_log_end(&l);
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

static int open_listener(const rm_sockaddr_t *addr)
{
    int fd, one = 1, ret;
    fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto Fail;
    if (addr->ss.ss_family == AF_INET6) {
        /* "[::]:port" is dual stack: one listener catches both families' redirected connections */
        int zero = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0 || listen(fd, 4096) != 0)
        goto Fail;
    return fd;
Fail:
    ret = -errno;
    close(fd);
    return ret;
}

static void on_accept(rm_io_op_t *op, int res);

static void listener_arm(rm_listener_t *l)
{
    int ret;
    if (l->closed || rm_io_busy(&l->accept_op))
        return;
    if ((ret = rm_io_accept(l->w->loop, &l->h, &l->accept_op, on_accept)) != 0) {
        rm_log_line_t line;
        rm_log_begin(&line, RM_LOG_ERROR, "accept_submit_failed");
        rm_log_addr(&line, "listen", (struct sockaddr *)&l->addr.ss);
        rm_log_err(&line, "error", ret);
        rm_log_end(&line);
        l->retry_at_ms = rm_loop_now_ms(l->w->loop) + TICK_MS;
    }
}

/* An accept succeeded after an episode of failures: says how long the listener could not take connections. */
static void accept_recovered(rm_listener_t *l)
{
    rm_log_line_t line;
    rm_log_begin(&line, RM_LOG_INFO, "accept_recovered");
    rm_log_addr(&line, "listen", (struct sockaddr *)&l->addr.ss);
    rm_log_uint(&line, "retries", l->starved_retries);
    rm_log_uint(&line, "paused_ms", rm_loop_now_ms(l->w->loop) - l->starved_since_ms);
    rm_log_end(&line);
    l->starved_since_ms = 0;
    l->starved_retries = 0;
}

static void on_accept(rm_io_op_t *op, int res)
{
    rm_listener_t *l = rm_container_of(op, rm_listener_t, accept_op);
    if (res >= 0 && l->starved_since_ms != 0)
        accept_recovered(l);
    if (res >= 0) {
        if (l->kind == RM_LISTENER_KIND_ADMIN) {
            rm__admin_accepted(l->w, res);
            listener_arm(l);
            return;
        }
        if (l->closed || l->w->draining) {
            close(res);
            return;
        }
        rm__conn_accepted(l, res);
        listener_arm(l);
        return;
    }
    if (res == -ECANCELED || l->closed)
        return;
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        /* Out of descriptors or memory: the connection stays in the backlog and accept is tried again a tick later
         * instead of at once (which would spin). One line per episode, not one per retry: a full descriptor table
         * lasts until connections close, and a line every tick would flood the log meanwhile. */
        atomic_fetch_add_explicit(&l->w->stats.accept_failed, 1, memory_order_relaxed);
        if (l->starved_since_ms == 0) {
            rm_log_line_t line;
            l->starved_since_ms = rm_loop_now_ms(l->w->loop);
            rm_log_begin(&line, RM_LOG_WARN, "accept_failed");
            rm_log_addr(&line, "listen", (struct sockaddr *)&l->addr.ss);
            rm_log_err(&line, "error", res);
            rm_log_uint(&line, "retry_ms", TICK_MS);
            rm_log_str(&line, "msg",
                       res == -EMFILE || res == -ENFILE
                           ? "out of file descriptors: new connections wait in the backlog; retrying every tick, "
                             "logged once until an accept succeeds (raise RLIMIT_NOFILE or lower maxConnections)"
                           : "out of memory: new connections wait in the backlog; retrying every tick, logged once "
                             "until an accept succeeds");
            rm_log_end(&line);
        } else {
            l->starved_retries++;
        }
        l->retry_at_ms = rm_loop_now_ms(l->w->loop) + TICK_MS;
        return;
    }
    listener_arm(l); /* ECONNABORTED and friends: the next one may be fine */
}

/* Closes the traffic listeners; the admin listener too when `with_admin` (at exit: while draining, readiness must
 * still answer 503). */
static void listeners_close(rm_worker_t *w, int with_admin)
{
    for (size_t i = 0; i < w->num_listeners; i++) {
        rm_listener_t *l = &w->listeners[i];
        if (l->closed || (l->kind == RM_LISTENER_KIND_ADMIN && !with_admin))
            continue;
        l->closed = 1;
        /* Stop listening now, not when the fd is closed: new connections are refused at once instead of
         * waiting unserved in the backlog (shutdown moves a listening socket to CLOSE and wakes accept). */
        shutdown(l->h.fd, SHUT_RDWR);
        rm_io_cancel(w->loop, &l->accept_op);
    }
}

static void on_wake(rm_io_op_t *op, int res);

static void wake_arm(rm_worker_t *w)
{
    rm_io_read(w->loop, &w->wake_h, &w->wake_op, &w->wake_buf, sizeof(w->wake_buf), on_wake);
}

static void on_wake(rm_io_op_t *op, int res)
{
    rm_worker_t *w = rm_container_of(op, rm_worker_t, wake_op);
    uint64_t now = rm_loop_now_ms(w->loop);
    if (atomic_load(&w->proxy->draining) && !w->draining) {
        w->draining = 1;
        w->drain_deadline_ms = now + rm_snapshot_current(w->proxy)->cfg->drain_timeout_ms;
        listeners_close(w, 0);
    }
    if (atomic_load(&w->proxy->stopping))
        w->stopping = 1;
    if (res != -ECANCELED && !w->stopping)
        wake_arm(w);
}

static void on_hs_reply(rm_io_op_t *op, int res);

static void hs_reply_arm(rm_worker_t *w)
{
    rm_io_read(w->loop, &w->hs_h, &w->hs_op, &w->hs_buf, sizeof(w->hs_buf), on_hs_reply);
}

/* Takes back the handshake steps the handshake threads finished and lets their connections go on. */
static void hs_reply_drain(rm_worker_t *w)
{
    rm_hs_job_t *j = rm_hs_reply_take(&w->hs_reply), *next;
    for (; j != NULL; j = next) {
        next = j->next; /* the callee may free the connection that holds j */
        rm__conn_handshake_back(j);
    }
}

static void on_hs_reply(rm_io_op_t *op, int res)
{
    rm_worker_t *w = rm_container_of(op, rm_worker_t, hs_op);
    hs_reply_drain(w);
    if (res != -ECANCELED && !w->stopping)
        hs_reply_arm(w);
}

static void worker_tick(rm_worker_t *w)
{
    uint64_t now = rm_loop_now_ms(w->loop);
    rm_conn_t *c, *next;

    for (size_t i = 0; i < w->num_listeners; i++) {
        rm_listener_t *l = &w->listeners[i];
        if (l->retry_at_ms != 0 && now >= l->retry_at_ms) {
            l->retry_at_ms = 0;
            listener_arm(l);
        }
    }
    rm__admin_tick(w, now, 0);
    rm_hs_guard_tick(w->proxy->hs_guard, now);
    /* on this worker's loop: the published snapshot stays valid for this iteration */
    rm_mesh_metrics_tick(w->proxy->metrics, w->metrics, atomic_load(&w->proxy->snap)->cfg, now);
    if (w->trim_pending && w->num_conns == 0) {
        /* Nothing open on this worker: give idle buffers and free heap pages back to the kernel, so that a burst
         * of connections does not stay in the resident set for the life of the process. */
        rm_buf_trim();
        malloc_trim(0);
        w->trim_pending = 0;
    } else if (w->sessions_released) {
        /* sessions freed after their records went to the kernel leave holes between the connections that stay:
         * whole free pages among them go back to the kernel, at most once a tick */
        malloc_trim(0);
    }
    w->sessions_released = 0;
    rm_buf_stats_t bs = rm_buf_stats();
    atomic_store_explicit(&w->stats.buf_in_use, bs.in_use, memory_order_relaxed);
    atomic_store_explicit(&w->stats.buf_idle, bs.idle, memory_order_relaxed);
    atomic_store_explicit(&w->stats.buf_large_in_use, bs.large_in_use, memory_order_relaxed);
    atomic_store_explicit(&w->stats.buf_large_idle, bs.large_idle, memory_order_relaxed);
    rm__app_pool_tick(w, now);
    int cut = w->draining && now >= w->drain_deadline_ms;
    for (c = w->conns; c != NULL; c = next) {
        next = rm__conn_next(c); /* the callee may free c */
        if (cut)
            rm__conn_drain_cut(c);
        else
            rm__conn_tick(c, now);
    }
    rm_req_pools_tick(w->req_pools, now);
}

static void *worker_main(void *arg)
{
    rm_worker_t *w = arg;
    sigset_t all;
    int ret;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);          /* signals are the main thread's */
    pthread_setname_np(pthread_self(), "rm-worker"); /* for top -H and the benchmarks' CPU shares */
    if ((ret = rm_loop_attach_thread(w->loop)) != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "loop_failed");
        rm_log_uint(&l, "worker", w->index);
        rm_log_err(&l, "error", ret);
        rm_log_end(&l);
        atomic_fetch_sub(&w->proxy->workers_running, 1);
        return NULL;
    }
    for (size_t i = 0; i < w->num_listeners; i++)
        listener_arm(&w->listeners[i]);
    wake_arm(w);
    hs_reply_arm(w);
    w->next_tick_ms = rm_loop_now_ms(w->loop) + TICK_MS;

    while (!w->stopping && !(w->draining && w->num_conns == 0)) {
        uint64_t now = rm_loop_now_ms(w->loop);
        int timeout = w->next_tick_ms > now ? (int)(w->next_tick_ms - now) : 0;
        int r = rm_loop_run_once(w->loop, timeout);
        atomic_fetch_add_explicit(&w->epoch, 1, memory_order_release);
        if (r < 0) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_ERROR, "loop_failed");
            rm_log_uint(&l, "worker", w->index);
            rm_log_err(&l, "error", r);
            rm_log_end(&l);
            break;
        }
        now = rm_loop_now_ms(w->loop);
        if (now >= w->next_tick_ms) {
            worker_tick(w);
            w->next_tick_ms = now + TICK_MS;
        }
    }
    /* Cut whatever is left and let every op complete before the loop goes away. */
    listeners_close(w, 1);
    rm__admin_tick(w, rm_loop_now_ms(w->loop), 1);
    for (rm_conn_t *c = w->conns, *next; c != NULL; c = next) {
        next = rm__conn_next(c);
        rm__conn_drain_cut(c);
    }
    rm_req_pools_shutdown(w->req_pools);
    rm_io_cancel(w->loop, &w->wake_op);
    rm_io_cancel(w->loop, &w->hs_op);
    for (int i = 0; i < 1000; i++) {
        hs_reply_drain(w); /* the reply op is cancelled: handshake steps still out are taken here */
        int busy = rm__app_pool_cut(w) != 0 || w->num_conns != 0 || w->num_admin_conns != 0 ||
                   rm_io_busy(&w->wake_op) || rm_io_busy(&w->hs_op) || rm_req_pools_busy(w->req_pools);
        for (size_t j = 0; j < w->num_listeners; j++)
            busy |= rm_io_busy(&w->listeners[j].accept_op);
        if (!busy)
            break;
        rm_loop_run_once(w->loop, 10);
    }
    rm_buf_trim(); /* the thread's pool dies with it */
    atomic_store(&w->exited, 1);
    atomic_fetch_sub(&w->proxy->workers_running, 1);
    return NULL;
}

int rm_proxy_setup(rm_proxy_t *p, rm_snapshot_t *snap)
{
    rm_proxy_config_t *cfg = snap->cfg;
    int ret;

    /* The proxy keeps the first snapshot for its whole life (explicit listeners point into its configuration);
     * the published pointer holds a reference of its own. */
    rm_snapshot_ref(snap);
    p->base_snap = snap;
    atomic_store(&p->snap, snap);
    pthread_mutex_init(&p->publish_lock, NULL);
    p->num_workers = cfg->workers;
    if ((p->workers = calloc(p->num_workers, sizeof(*p->workers))) == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < p->num_workers; i++)
        p->workers[i].hs_reply.efd = -1;
    if ((ret = rm_hs_guard_new(&p->hs_guard)) != 0)
        return ret;
    if ((ret = rm_mesh_metrics_new(&p->metrics, p->num_workers)) != 0)
        return ret;
    for (unsigned i = 0; i < p->num_workers; i++) {
        rm_worker_t *w = &p->workers[i];
        size_t n = 0;
        int efd;
        w->proxy = p;
        w->index = i;
        w->metrics = rm_metrics_shard(p->metrics, i);
        if ((ret = rm_loop_new(&w->loop, p->backend, RING_ENTRIES)) != 0)
            return ret;
        if ((efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
            return -errno;
        if ((ret = rm_loop_add(w->loop, &w->wake_h, efd)) != 0)
            return ret;
        if ((ret = rm_hs_reply_init(&w->hs_reply)) != 0 || (ret = rm_loop_add(w->loop, &w->hs_h, w->hs_reply.efd)) != 0)
            return ret;
        w->listeners = calloc(3 + cfg->num_listeners, sizeof(*w->listeners));
        w->ep_load = calloc(1, sizeof(*w->ep_load));
        if (w->listeners == NULL || w->ep_load == NULL)
            return -ENOMEM;
        /* the endpoint choice's draws: any nonzero state will do, different per worker and per run */
        w->ep_rng = ((uint64_t)time(NULL) << 20) ^ ((uint64_t)getpid() << 8) ^ (i + 1) ^ 0x9e3779b97f4a7c15ULL;
        if (w->ep_rng == 0)
            w->ep_rng = 1;
        if (cfg->outbound_enabled) {
            w->listeners[n].kind = RM_LISTENER_KIND_OUTBOUND;
            w->listeners[n++].addr = cfg->outbound_listen;
        }
        if (cfg->inbound_enabled) {
            w->listeners[n].kind = RM_LISTENER_KIND_INBOUND;
            w->listeners[n++].addr = cfg->inbound_listen;
        }
        if (cfg->admin_enabled && i == 0) {
            w->listeners[n].kind = RM_LISTENER_KIND_ADMIN;
            w->listeners[n++].addr = cfg->admin_listen;
        }
        for (size_t j = 0; j < cfg->num_listeners; j++) {
            rm_listener_config_t *lc = &cfg->listeners[j];
            w->listeners[n].kind = lc->kind == RM_LISTENER_UPSTREAM ? RM_LISTENER_KIND_EXPLICIT_UPSTREAM
                                                                    : RM_LISTENER_KIND_EXPLICIT_INBOUND;
            w->listeners[n].explicit_cfg = lc;
            w->listeners[n++].addr = lc->listen;
        }
        w->num_listeners = n;
        for (size_t j = 0; j < n; j++) {
            rm_listener_t *l = &w->listeners[j];
            int fd = open_listener(&l->addr);
            l->w = w;
            if (fd < 0) {
                rm_log_line_t line;
                rm_log_begin(&line, RM_LOG_ERROR, "listen_failed");
                rm_log_addr(&line, "listen", (struct sockaddr *)&l->addr.ss);
                rm_log_err(&line, "error", fd);
                rm_log_end(&line);
                l->closed = 1;
                return fd;
            }
            if ((ret = rm_loop_add(w->loop, &l->h, fd)) != 0)
                return ret;
        }
    }
    return 0;
}

int rm_proxy_start(rm_proxy_t *p)
{
    const rm_proxy_config_t *cfg = p->base_snap->cfg;
    int ret;

    /* inbound handshakes are computed apart from the workers, at a lower priority (handshake_pool.h) */
    if (cfg->handshake_threads > 0 &&
        (ret = rm_hs_pool_start(&p->hs_pool, cfg->handshake_threads, cfg->handshake_priority)) != 0)
        return ret;
    for (unsigned i = 0; i < p->num_workers; i++) {
        atomic_fetch_add(&p->workers_running, 1);
        ret = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (ret != 0) {
            atomic_fetch_sub(&p->workers_running, 1);
            return -ret;
        }
    }
    return 0;
}

static void wake_all(rm_proxy_t *p)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < p->num_workers; i++) {
        ssize_t r = write(p->workers[i].wake_h.fd, &one, sizeof(one));
        (void)r; /* a full eventfd counter still wakes the reader */
    }
}

void rm_proxy_drain(rm_proxy_t *p)
{
    atomic_store(&p->draining, 1);
    wake_all(p);
}

void rm_proxy_stop(rm_proxy_t *p)
{
    atomic_store(&p->stopping, 1);
    wake_all(p);
}

unsigned rm_proxy_open_connections(rm_proxy_t *p)
{
    return atomic_load(&p->num_conns);
}

void rm_proxy_join(rm_proxy_t *p)
{
    for (unsigned i = 0; i < p->num_workers; i++)
        pthread_join(p->workers[i].thread, NULL);
    /* after the workers: steps still queued come back cancelled into queues that still exist */
    rm_hs_pool_stop(p->hs_pool);
    p->hs_pool = NULL;
    for (unsigned i = 0; i < p->num_workers; i++) {
        rm_worker_t *w = &p->workers[i];
        for (size_t j = 0; j < w->num_listeners; j++) {
            if (w->listeners[j].h.fd > 0) {
                rm_loop_del(w->loop, &w->listeners[j].h);
                close(w->listeners[j].h.fd);
            }
        }
        free(w->listeners);
        free(w->ep_load);
        w->ep_load = NULL;
        rm_req_pools_free(w->req_pools);
        w->req_pools = NULL;
        free(w->req_lb);
        w->req_lb = NULL;
        free(w->req_budget);
        w->req_budget = NULL;
        rm_loop_del(w->loop, &w->wake_h);
        close(w->wake_h.fd);
        if (w->hs_reply.efd >= 0) {
            rm_loop_del(w->loop, &w->hs_h);
            rm_hs_reply_dispose(&w->hs_reply);
        }
        while (w->free_conns != NULL) {
            rm_conn_t *c = w->free_conns;
            w->free_conns = rm__conn_next(c);
            rm__conn_release(c);
        }
        rm_loop_free(w->loop);
    }
    free(p->workers);
    p->workers = NULL;
    p->num_workers = 0;
    rm_metrics_free(p->metrics);
    p->metrics = NULL;
    rm_hs_guard_free(p->hs_guard);
    p->hs_guard = NULL;
    rm_snapshot_unref(atomic_exchange(&p->snap, NULL)); /* the publication reference */
    rm_snapshot_unref(p->base_snap);
    p->base_snap = NULL;
    p->workers = NULL;
}
