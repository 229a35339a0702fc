/* A histogram with fixed bucket bounds, for the control plane's push-to-answer latency: a plain struct that whoever
 * holds it guards (the gRPC server keeps one per resource type under its counters' mutex), rendered in the
 * Prometheus text format. Deliberately tiny and self-contained; the proxy's labelled per-worker series are another
 * matter (lib/metrics). */
#ifndef RINGMESH_CONTROL_HISTOGRAM_H
#define RINGMESH_CONTROL_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

/** Upper bounds, in seconds, of the push-to-answer histogram's buckets (+Inf implied): 1 ms to 30 s. */
#define RM_CONTROL_HIST_BOUNDS                                                                                         \
    {                                                                                                                  \
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30                                     \
    }
#define RM_CONTROL_HIST_NUM_BOUNDS 14

/** Observations per bucket (not cumulative: buckets[i] counts values in (bound[i-1], bound[i]], the last one those
 *  above the last bound), their count and their sum. The all-zero value is an empty histogram. */
typedef struct st_rm_control_histogram_t {
    uint64_t buckets[RM_CONTROL_HIST_NUM_BOUNDS + 1];
    uint64_t count;
    double sum;
} rm_control_histogram_t;

/** Records one observation of `seconds` (negative values count as 0). */
void rm_control_histogram_observe(rm_control_histogram_t *h, double seconds);

/** Appends the series of one labelled histogram (`labels`: `type="destinations"`, without braces; "" for none) named
 *  `name` to buf[o..len): cumulative _bucket series with le, then _sum and _count. Returns the new offset
 *  (rm_textf()'s contract: output that does not fit is cut). */
size_t rm_control_histogram_render(char *buf, size_t len, size_t o, const char *name, const char *labels,
                                   const rm_control_histogram_t *h);

#endif
