/* Peak-EWMA power of two choices (ringmesh/lb.h). The decay is exp(-elapsed / decay): an estimate left alone for
 * one decay time keeps 37 % of its weight, so an endpoint that slowed down and recovered is trusted again within a
 * few decay times, and one no request went to for a while looks cheap enough to be tried again. */
#include "ringmesh/lb.h"

#include <math.h>

static double decay_weight(const rm_lb_ewma_cfg_t *cfg, uint64_t stamp_ns, uint64_t now_ns)
{
    uint64_t tau = cfg->decay_ns != 0 ? cfg->decay_ns : RM_LB_EWMA_DEFAULT_DECAY_NS;
    if (now_ns <= stamp_ns)
        return 1.0;
    return exp(-(double)(now_ns - stamp_ns) / (double)tau);
}

double rm_lb_ewma_rtt(const rm_lb_ewma_t *e, const rm_lb_ewma_cfg_t *cfg, uint64_t now_ns)
{
    if (!e->measured)
        return (double)(cfg->default_rtt_ns != 0 ? cfg->default_rtt_ns : RM_LB_EWMA_DEFAULT_DEFAULT_RTT_NS);
    return e->rtt_ns * decay_weight(cfg, e->stamp_ns, now_ns);
}

double rm_lb_ewma_load(const rm_lb_ewma_t *e, const rm_lb_ewma_cfg_t *cfg, uint64_t now_ns)
{
    return rm_lb_ewma_rtt(e, cfg, now_ns) * ((double)e->pending + 1.0);
}

void rm_lb_ewma_start(rm_lb_ewma_t *e)
{
    if (e->pending != UINT32_MAX)
        e->pending++;
}

void rm_lb_ewma_cancel(rm_lb_ewma_t *e)
{
    if (e->pending > 0)
        e->pending--;
}

void rm_lb_ewma_done(rm_lb_ewma_t *e, const rm_lb_ewma_cfg_t *cfg, uint64_t sent_ns, uint64_t now_ns)
{
    double rtt = now_ns > sent_ns ? (double)(now_ns - sent_ns) : 0.0;
    double est = rm_lb_ewma_rtt(e, cfg, now_ns);

    rm_lb_ewma_cancel(e);
    if (rtt > est) {
        e->rtt_ns = rtt; /* the peak: a slower answer counts at once */
    } else {
        double w = e->measured ? decay_weight(cfg, e->stamp_ns, now_ns) : 0.0;
        /* est already carries the decay since the last update: blend the undecayed estimate with the new sample */
        e->rtt_ns = e->measured ? e->rtt_ns * w + rtt * (1.0 - w) : rtt;
    }
    e->measured = 1;
    if (now_ns > e->stamp_ns)
        e->stamp_ns = now_ns;
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

int rm_lb_ewma_pick(rm_lb_ewma_t *const *stats, size_t n, const rm_lb_ewma_cfg_t *cfg, uint64_t now_ns, uint64_t *rng)
{
    size_t a, b;
    if (n == 0)
        return -1;
    if (n == 1)
        return 0;
    a = (size_t)(xorshift64(rng) % n);
    b = (size_t)(xorshift64(rng) % (n - 1));
    if (b >= a)
        b++; /* two distinct candidates, each pair equally likely */
    return rm_lb_ewma_load(stats[b], cfg, now_ns) < rm_lb_ewma_load(stats[a], cfg, now_ns) ? (int)b : (int)a;
}
