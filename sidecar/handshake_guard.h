/* The guard in front of inbound TLS handshakes: a bound on the handshakes in progress across the proxy, and a short
 * back-off for source addresses whose handshakes keep failing. Both refuse a connection before any cryptography, so
 * that a flood of failed handshakes costs the proxy an accept and a close each rather than a key exchange and a
 * signature.
 *
 * Refusals are logged without a line per connection: the first of a burst at once ("handshake_refused", with its
 * cause and peer), the rest counted and reported by rm_hs_guard_tick() in one "handshakes_refused" line a second
 * while they go on, which says how many of each cause. A back-off that starts is one "handshake_backoff" line naming
 * the address. One guard serves every worker (a mutex; it is taken only when a handshake starts or ends, never for
 * established traffic). A NULL guard admits everything and counts nothing. Clock values are the callers' (milliseconds,
 * any monotonic origin), so it can be tested without waiting. */
#ifndef RINGMESH_HANDSHAKE_GUARD_H
#define RINGMESH_HANDSHAKE_GUARD_H

#include "proxy_config.h"

#include <stdint.h>

/** The guard's settings (from the configuration of the connection's snapshot). */
typedef struct st_rm_hs_limits_t {
    unsigned max_pending;      /* handshakes in progress at once, >= 1 */
    unsigned backoff_failures; /* failures within window_ms that start a back-off; 0: no back-off */
    uint32_t window_ms;
    uint32_t backoff_ms;
} rm_hs_limits_t;

/** The guard's answer for a handshake about to start. */
typedef enum {
    RM_HS_ADMIT = 0,      /* go on: it counts as pending until rm_hs_guard_end() */
    RM_HS_ADMIT_TRUSTED,  /* go on, as a known peer: its address completed a handshake and has not failed since; the
                           * pending bound does not apply (it still counts as pending) */
    RM_HS_REFUSE_PENDING, /* max_pending handshakes are in progress */
    RM_HS_REFUSE_BACKOFF, /* its source address is backing off */
} rm_hs_verdict_t;

/** Counters for /metrics. */
typedef struct st_rm_hs_guard_stats_t {
    uint64_t pending;         /* handshakes in progress now */
    uint64_t refused_pending; /* refused because max_pending were in progress */
    uint64_t refused_backoff; /* refused because their source address was backing off */
    uint64_t backoffs;        /* back-offs started */
    uint64_t backing_off;     /* addresses backing off (counted at most once a second, by rm_hs_guard_tick) */
} rm_hs_guard_stats_t;

typedef struct st_rm_hs_guard_t rm_hs_guard_t;

/** Makes an empty guard (a fixed table of recently failing addresses: no allocation later). Returns 0 or -ENOMEM. */
int rm_hs_guard_new(rm_hs_guard_t **out);
void rm_hs_guard_free(rm_hs_guard_t *g);
/** Decides on a handshake from `peer` (its address; the port is ignored) at `now_ms`. A refusal is counted and
 *  logged as the header says; the caller closes the connection without a handshake. */
rm_hs_verdict_t rm_hs_guard_admit(rm_hs_guard_t *g, const rm_hs_limits_t *lim, const rm_sockaddr_t *peer,
                                  uint64_t now_ms);
/** An admitted handshake ended: completed (`failed` 0), or refused, timed out or cut (`failed` 1). A failure counts
 *  towards its address's back-off and makes it unknown again; a success forgets the address's failures and makes
 *  it known (RM_HS_ADMIT_TRUSTED), while the table keeps it. */
void rm_hs_guard_end(rm_hs_guard_t *g, const rm_hs_limits_t *lim, const rm_sockaddr_t *peer, int failed,
                     uint64_t now_ms);
/** Logs the refusals counted since the last line, at most one line a second; call it every tick of any worker. */
void rm_hs_guard_tick(rm_hs_guard_t *g, uint64_t now_ms);
rm_hs_guard_stats_t rm_hs_guard_stats(rm_hs_guard_t *g);

#endif
