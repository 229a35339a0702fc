/* Outlier detection (ringmesh/outlier.h). The group keeps its ejected endpoints with their end times, so that it can
 * count them without reading endpoint records that may have been freed: an entry whose time has passed is dropped
 * when the group needs the count, an endpoint asked about after its time drops its own. */
#include "ringmesh/outlier.h"

#include <string.h>

void rm_outlier_group_init(rm_outlier_group_t *g, const rm_outlier_config_t *cfg)
{
    memset(g, 0, sizeof(*g));
    g->cfg = *cfg;
}

void rm_outlier_group_set_size(rm_outlier_group_t *g, size_t num_endpoints)
{
    g->num_endpoints = num_endpoints;
}

size_t rm_outlier_max_ejected(const rm_outlier_config_t *cfg, size_t num_endpoints)
{
    size_t n;
    if (num_endpoints < 2 || cfg->max_ejection_percent == 0)
        return 0;
    n = num_endpoints * cfg->max_ejection_percent / 100;
    if (n < 1)
        n = 1;
    if (n > num_endpoints - 1)
        n = num_endpoints - 1;
    return n > RM_OUTLIER_EJECTED_MAX ? RM_OUTLIER_EJECTED_MAX : n;
}

static void drop_entry(rm_outlier_group_t *g, size_t i)
{
    g->ejected[i] = g->ejected[--g->num_ejected];
}

void rm_outlier_forget(rm_outlier_group_t *g, const rm_outlier_ep_t *ep)
{
    for (size_t i = 0; i < g->num_ejected; i++)
        if (g->ejected[i].ep == ep) {
            drop_entry(g, i);
            return;
        }
}

static void sweep(rm_outlier_group_t *g, int64_t now_ms)
{
    for (size_t i = 0; i < g->num_ejected;)
        if (g->ejected[i].until <= now_ms)
            drop_entry(g, i);
        else
            i++;
}

int rm_outlier_is_ejected(rm_outlier_group_t *g, rm_outlier_ep_t *ep, int64_t now_ms)
{
    if (!ep->ejected)
        return 0;
    if (now_ms < ep->ejected_until)
        return 1;
    ep->ejected = 0;
    ep->healthy_since = ep->ejected_until;
    ep->consecutive_5xx = ep->consecutive_gateway = 0;
    rm_outlier_forget(g, ep);
    return 0;
}

static rm_outlier_reason_t eject(rm_outlier_group_t *g, rm_outlier_ep_t *ep, rm_outlier_reason_t why, int64_t now_ms)
{
    const rm_outlier_config_t *c = &g->cfg;
    uint64_t len;

    ep->consecutive_5xx = ep->consecutive_gateway = 0;
    sweep(g, now_ms);
    if (g->num_ejected >= rm_outlier_max_ejected(c, g->num_endpoints)) {
        g->ejections_skipped++;
        return RM_OUTLIER_NONE;
    }
    /* one healthy interval since the last ejection forgives one past ejection (Envoy decrements its multiplier at
     * each interval the host spends healthy) */
    if (ep->ejections > 0 && ep->healthy_since > 0 && c->interval_ms > 0 && now_ms > ep->healthy_since) {
        uint64_t forgiven = (uint64_t)(now_ms - ep->healthy_since) / c->interval_ms;
        ep->ejections = forgiven >= ep->ejections ? 0 : ep->ejections - (uint32_t)forgiven;
    }
    if (ep->ejections < UINT32_MAX)
        ep->ejections++;
    len = (uint64_t)c->base_ejection_ms * ep->ejections;
    if (len > c->max_ejection_ms)
        len = c->max_ejection_ms > c->base_ejection_ms ? c->max_ejection_ms : c->base_ejection_ms;
    ep->ejected = 1;
    ep->ejected_until = now_ms + (int64_t)len;
    g->ejected[g->num_ejected].ep = ep;
    g->ejected[g->num_ejected].until = ep->ejected_until;
    g->num_ejected++;
    g->ejections[why]++;
    return why;
}

rm_outlier_reason_t rm_outlier_report(rm_outlier_group_t *g, rm_outlier_ep_t *ep, rm_outlier_result_t result,
                                      int status, int64_t now_ms)
{
    const rm_outlier_config_t *c = &g->cfg;
    int is_5xx, is_gateway;

    if (rm_outlier_is_ejected(g, ep, now_ms))
        return RM_OUTLIER_NONE; /* late answers of an ejected endpoint change nothing */
    if (result != RM_OUTLIER_RESPONSE)
        status = result == RM_OUTLIER_TIMEOUT ? 504 : 503;
    is_5xx = status >= 500 && status <= 599;
    is_gateway = status >= 502 && status <= 504;
    if (!is_5xx) {
        ep->consecutive_5xx = ep->consecutive_gateway = 0;
        return RM_OUTLIER_NONE;
    }
    if (!is_gateway)
        ep->consecutive_gateway = 0;
    else if (ep->consecutive_gateway < UINT32_MAX)
        ep->consecutive_gateway++;
    if (ep->consecutive_5xx < UINT32_MAX)
        ep->consecutive_5xx++;
    if (c->consecutive_gateway > 0 && ep->consecutive_gateway >= c->consecutive_gateway)
        return eject(g, ep, RM_OUTLIER_GATEWAY, now_ms);
    if (c->consecutive_5xx > 0 && ep->consecutive_5xx >= c->consecutive_5xx)
        return eject(g, ep, RM_OUTLIER_5XX, now_ms);
    return RM_OUTLIER_NONE;
}
