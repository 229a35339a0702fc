/* Outlier detection (Envoy's consecutive-failure detectors): an endpoint whose responses fail several times in a row
 * is ejected, taken out of the balancer's candidates, for base ejection time x the number of times it has been
 * ejected (growing with each ejection, up to the maximum ejection time, and forgiven by one for each healthy
 * interval), never more than a share of the endpoints at once. Un-ejection happens when the time has passed, the
 * next time the endpoint is looked at.
 *
 * State is the caller's: an rm_outlier_ep_t in each endpoint's per-worker record, an rm_outlier_group_t per
 * destination and worker. Thread-confined, no allocation, no locks; the monotonic time (ms) is passed in. */
#ifndef RINGMESH_OUTLIER_H
#define RINGMESH_OUTLIER_H

#include <stddef.h>
#include <stdint.h>

#include "ringmesh/traffic_config.h"

/** Most endpoints one group holds ejected at once, whatever the percentage (a cap on the group's memory). */
#define RM_OUTLIER_EJECTED_MAX 64u

/** One endpoint's record. The all-zero value is a healthy endpoint never ejected. */
typedef struct st_rm_outlier_ep_t {
    uint32_t consecutive_5xx, consecutive_gateway;
    uint32_t ejections;    /* the multiplier of the next ejection's length, before forgiveness */
    uint8_t ejected;       /* 1 until ejected_until passes and the endpoint is looked at again */
    int64_t ejected_until; /* monotonic ms */
    int64_t healthy_since; /* when its last ejection ended; 0: never ejected */
} rm_outlier_ep_t;

/** Why an endpoint was ejected (also the index of the group's counters). */
typedef enum {
    RM_OUTLIER_NONE = 0,
    RM_OUTLIER_5XX = 1,     /* consecutive5xxErrors */
    RM_OUTLIER_GATEWAY = 2, /* consecutiveGatewayErrors */
} rm_outlier_reason_t;

/** A destination's view, per worker. Counters are for metrics and only grow. */
typedef struct st_rm_outlier_group_t {
    rm_outlier_config_t cfg;
    size_t num_endpoints; /* the candidates the balancer has for this destination now */
    size_t num_ejected;
    struct {
        const rm_outlier_ep_t *ep; /* compared, never read through: an entry outlives a forgotten endpoint */
        int64_t until;
    } ejected[RM_OUTLIER_EJECTED_MAX];
    uint64_t ejections[3];      /* by reason (index RM_OUTLIER_5XX, RM_OUTLIER_GATEWAY) */
    uint64_t ejections_skipped; /* a detector fired but the maximum share was already ejected */
} rm_outlier_group_t;

/** What one attempt to an endpoint came to. */
typedef enum {
    RM_OUTLIER_RESPONSE = 0,       /* response headers with `status` */
    RM_OUTLIER_CONNECT_FAILED = 1, /* counted as a 503 (Envoy's default for local failures) */
    RM_OUTLIER_RESET = 2,          /* reset before the response: a 503 */
    RM_OUTLIER_TIMEOUT = 3,        /* the attempt timed out: a 504 */
} rm_outlier_result_t;

/** Sets up a group with `cfg` (copied) and no endpoints. */
void rm_outlier_group_init(rm_outlier_group_t *g, const rm_outlier_config_t *cfg);

/** Tells the group how many endpoints the destination has now (after a push); the share that may be ejected is
 *  computed from it. */
void rm_outlier_group_set_size(rm_outlier_group_t *g, size_t num_endpoints);

/** How many of `num_endpoints` may be ejected at once: max_ejection_percent of them rounded down, but at least one
 *  when there are two or more (and the percentage is not 0), and never all of them (none of a single endpoint). */
size_t rm_outlier_max_ejected(const rm_outlier_config_t *cfg, size_t num_endpoints);

/** Whether `ep` is ejected at `now_ms`. An ejection whose time has passed ends here (the endpoint's counters start
 *  again from zero). A comparison in the common case: cheap enough for every pick of the balancer. */
int rm_outlier_is_ejected(rm_outlier_group_t *g, rm_outlier_ep_t *ep, int64_t now_ms);

/** Records an attempt's outcome for `ep` at `now_ms`. A status >= 500 (and every failure of the connection) counts
 *  towards consecutive5xxErrors; 502, 503, 504 and failures of the connection towards consecutiveGatewayErrors;
 *  anything else resets the counters it does not count towards. When a detector reaches its threshold, the
 *  endpoint is ejected unless the group already holds its maximum share. Returns the reason the endpoint was
 *  ejected now, or RM_OUTLIER_NONE. */
rm_outlier_reason_t rm_outlier_report(rm_outlier_group_t *g, rm_outlier_ep_t *ep, rm_outlier_result_t result,
                                      int status, int64_t now_ms);

/** Forgets `ep` (an endpoint that left the destination): it no longer counts among the ejected. */
void rm_outlier_forget(rm_outlier_group_t *g, const rm_outlier_ep_t *ep);

#endif
