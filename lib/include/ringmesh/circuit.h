/* Circuit breaking: limits on what one destination, and one endpoint of it, may have at once: connections,
 * requests waiting for a connection or a stream (pending), requests in flight, retries in flight. Admitting
 * something counts it in both the destination's and the endpoint's counts and returns a token that gives it back;
 * a limit reached refuses with the response flag UO and counts the refusal.
 *
 * Counts are per worker and thread-confined (no atomics): the limits a worker applies are its share of the
 * proxy's (rm_circuit_limits_per_worker in ringmesh/traffic_config.h). Nothing allocates. */
#ifndef RINGMESH_CIRCUIT_H
#define RINGMESH_CIRCUIT_H

#include <stdint.h>

#include "ringmesh/traffic_config.h"

typedef enum {
    RM_CIRCUIT_CONNECTION = 0,
    RM_CIRCUIT_PENDING = 1,
    RM_CIRCUIT_REQUEST = 2,
    RM_CIRCUIT_RETRY = 3,
} rm_circuit_kind_t;

#define RM_CIRCUIT_KINDS 4u

/** What a destination or an endpoint holds now, and how often a limit refused (for metrics: `overflow` only grows).
 *  The all-zero value is empty. */
typedef struct st_rm_circuit_counts_t {
    uint32_t open[RM_CIRCUIT_KINDS];
    uint64_t overflow[RM_CIRCUIT_KINDS];
} rm_circuit_counts_t;

/** What one admission holds: give it back with rm_circuit_release(). The all-zero value holds nothing. */
typedef struct st_rm_circuit_token_t {
    rm_circuit_counts_t *dest, *ep;
    rm_circuit_kind_t kind;
} rm_circuit_token_t;

/** Admits one `kind` in `dest` (limits `dest_limits`) and in `ep` (limits `ep_limits`; `ep` NULL: the destination
 *  alone, e.g. a request pending before an endpoint is chosen). Returns 0 with *tok holding it, or RM_RF_UO with
 *  *tok empty and the refusal counted in the overflow of the counts whose limit was reached. */
unsigned rm_circuit_acquire(const rm_circuit_limits_t *dest_limits, rm_circuit_counts_t *dest,
                            const rm_circuit_limits_t *ep_limits, rm_circuit_counts_t *ep, rm_circuit_kind_t kind,
                            rm_circuit_token_t *tok);

/** Gives back what *tok holds and empties it (so a second call does nothing). */
void rm_circuit_release(rm_circuit_token_t *tok);

/** The limit of `kind` in `limits`; 0: none. */
uint32_t rm_circuit_limit(const rm_circuit_limits_t *limits, rm_circuit_kind_t kind);

#endif
