/* The per-request balancer: power of two choices on a peak-EWMA of response latency times the requests in flight
 * (the balancer Linkerd and Finagle call "peak EWMA"). docs/traffic-management.md, "Requests", says how the proxy
 * uses it.
 *
 * Each endpoint has an rm_lb_ewma_t the caller owns (one per endpoint and worker thread: no locks, no atomics).
 * Its cost is a latency estimate that jumps up at once to any slower response (the peak) and decays towards faster
 * ones, and towards zero while no response arrives, with the time constant `decay_ns`; the load the choice compares
 * is that estimate times (requests in flight + 1). An endpoint never measured starts at `default_rtt_ns`, so a new
 * endpoint is tried soon but not flooded.
 *
 * Everything here is pure: the caller passes the clock (nanoseconds of any monotonic clock) and the random state;
 * nothing allocates or does I/O. */
#ifndef RINGMESH_LB_H
#define RINGMESH_LB_H

#include <stddef.h>
#include <stdint.h>

/** Defaults: Linkerd's decay of 10 s and its default RTT of 30 ms. */
#define RM_LB_EWMA_DEFAULT_DECAY_NS       10000000000ull
#define RM_LB_EWMA_DEFAULT_DEFAULT_RTT_NS 30000000ull

/** How the estimates move. decay_ns 0 is taken as the default. */
typedef struct st_rm_lb_ewma_cfg_t {
    uint64_t decay_ns;       /* time constant of the decay */
    uint64_t default_rtt_ns; /* the estimate of an endpoint never measured */
} rm_lb_ewma_cfg_t;

/** One endpoint's estimate. The all-zero value is an endpoint never measured with nothing in flight. */
typedef struct st_rm_lb_ewma_t {
    double rtt_ns;     /* the estimate at stamp_ns (valid once measured) */
    uint64_t stamp_ns; /* when rtt_ns was last updated */
    uint32_t pending;  /* requests sent to the endpoint and not answered yet */
    uint8_t measured;  /* rtt_ns holds a measurement; else default_rtt_ns stands in */
} rm_lb_ewma_t;

/** The endpoint's latency estimate at `now_ns`, decayed since its last update (not changing it). */
double rm_lb_ewma_rtt(const rm_lb_ewma_t *e, const rm_lb_ewma_cfg_t *cfg, uint64_t now_ns);

/** The load the choice compares: rm_lb_ewma_rtt times (pending + 1). */
double rm_lb_ewma_load(const rm_lb_ewma_t *e, const rm_lb_ewma_cfg_t *cfg, uint64_t now_ns);

/** A request was sent to the endpoint: one more in flight. */
void rm_lb_ewma_start(rm_lb_ewma_t *e);

/** A request sent at `sent_ns` got its response (or failed) at `now_ns`: one fewer in flight (never below 0), and
 *  the latency now_ns - sent_ns goes into the estimate (taken whole when above the decayed estimate: the peak). */
void rm_lb_ewma_done(rm_lb_ewma_t *e, const rm_lb_ewma_cfg_t *cfg, uint64_t sent_ns, uint64_t now_ns);

/** The same without a latency: the request was cancelled before any answer, only the in-flight count drops. */
void rm_lb_ewma_cancel(rm_lb_ewma_t *e);

/** Power of two choices among the `n` candidates stats[0 .. n): draws two distinct ones at random with `*rng`
 *  (xorshift64 state, never 0) and returns the index of the one with the lower rm_lb_ewma_load (the first drawn on
 *  a tie); with one candidate, 0. Returns -1 when n is 0. Which endpoints are candidates (ready and not
 *  terminating, else serving and terminating) is the caller's choice. */
int rm_lb_ewma_pick(rm_lb_ewma_t *const *stats, size_t n, const rm_lb_ewma_cfg_t *cfg, uint64_t now_ns, uint64_t *rng);

#endif
