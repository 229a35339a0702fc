/* Circuit breaking (ringmesh/circuit.h). */
#include "ringmesh/circuit.h"

#include "ringmesh/response_flags.h"

#include <stddef.h>

uint32_t rm_circuit_limit(const rm_circuit_limits_t *limits, rm_circuit_kind_t kind)
{
    switch (kind) {
    case RM_CIRCUIT_CONNECTION:
        return limits->max_connections;
    case RM_CIRCUIT_PENDING:
        return limits->max_pending;
    case RM_CIRCUIT_REQUEST:
        return limits->max_requests;
    default:
        return limits->max_retries;
    }
}

static int full(const rm_circuit_limits_t *limits, const rm_circuit_counts_t *c, rm_circuit_kind_t kind)
{
    uint32_t max = limits != NULL ? rm_circuit_limit(limits, kind) : 0;
    return max != 0 && c->open[kind] >= max;
}

unsigned rm_circuit_acquire(const rm_circuit_limits_t *dest_limits, rm_circuit_counts_t *dest,
                            const rm_circuit_limits_t *ep_limits, rm_circuit_counts_t *ep, rm_circuit_kind_t kind,
                            rm_circuit_token_t *tok)
{
    *tok = (rm_circuit_token_t){0};
    if (full(dest_limits, dest, kind)) {
        dest->overflow[kind]++;
        return RM_RF_UO;
    }
    if (ep != NULL && full(ep_limits, ep, kind)) {
        ep->overflow[kind]++;
        return RM_RF_UO;
    }
    dest->open[kind]++;
    if (ep != NULL)
        ep->open[kind]++;
    *tok = (rm_circuit_token_t){.dest = dest, .ep = ep, .kind = kind};
    return 0;
}

void rm_circuit_release(rm_circuit_token_t *tok)
{
    if (tok->dest != NULL && tok->dest->open[tok->kind] > 0)
        tok->dest->open[tok->kind]--;
    if (tok->ep != NULL && tok->ep->open[tok->kind] > 0)
        tok->ep->open[tok->kind]--;
    *tok = (rm_circuit_token_t){0};
}
