/* The handshake guard: the pending bound, the table of failing addresses, the refusal summaries. */
#include "handshake_guard.h"

#include "conn_addr.h"
#include "ringmesh/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Addresses with recent failures: open addressing over a fixed table, a short probe; when every slot of the probe
 * is taken, the one least recently touched gives way (a flood from more addresses than the table holds is then
 * bounded by maxPending alone). */
#define TABLE_SLOTS  2048u
#define PROBE        8u
#define LOG_EVERY_MS 1000u

typedef struct st_slot_t {
    uint8_t ip[16];
    uint8_t used;
    uint8_t known;     /* completed a handshake, no failure since */
    uint32_t failures; /* within the window that began at window_start_ms */
    uint64_t window_start_ms;
    uint64_t backoff_until_ms; /* 0: not backing off */
    uint64_t touched_ms;
} slot_t;

struct st_rm_hs_guard_t {
    pthread_mutex_t lock;
    uint64_t pending;
    rm_hs_guard_stats_t stats;
    /* the refusals not logged yet, the time of the last line, whether a burst is going on */
    uint64_t unlogged_pending, unlogged_backoff, last_log_ms;
    uint64_t last_scan_ms; /* when backing_off was last counted */
    rm_sockaddr_t last_peer;
    int in_burst;
    slot_t slots[TABLE_SLOTS];
};

int rm_hs_guard_new(rm_hs_guard_t **out)
{
    rm_hs_guard_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    pthread_mutex_init(&g->lock, NULL);
    *out = g;
    return 0;
}

void rm_hs_guard_free(rm_hs_guard_t *g)
{
    if (g == NULL)
        return;
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static uint32_t hash_ip(const uint8_t ip[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip[i]) * 16777619u;
    return h;
}

/* The address's slot; with `create`, one is made (taking the least recently touched of the probe when all are
 * used). NULL when the address has none (or is not IP). */
static slot_t *find_slot(rm_hs_guard_t *g, const rm_sockaddr_t *peer, int create, uint64_t now_ms)
{
    uint8_t ip[16], have;
    slot_t *victim = NULL;

    rm_sockaddr_ip16(peer, ip, &have);
    if (!have)
        return NULL;
    uint32_t h = hash_ip(ip);
    for (uint32_t i = 0; i < PROBE; i++) {
        slot_t *s = &g->slots[(h + i) % TABLE_SLOTS];
        if (s->used && memcmp(s->ip, ip, 16) == 0)
            return s;
        if (!s->used) {
            if (victim == NULL || victim->used)
                victim = s;
        } else if (victim == NULL || (victim->used && s->touched_ms < victim->touched_ms)) {
            victim = s;
        }
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->ip, ip, 16);
    victim->used = 1;
    victim->touched_ms = now_ms;
    return victim;
}

static void log_first_refusal(const rm_hs_limits_t *lim, const rm_sockaddr_t *peer, rm_hs_verdict_t v)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_WARN, "handshake_refused");
    rm_log_addr(&l, "peer_addr", peer->len != 0 ? (const struct sockaddr *)&peer->ss : NULL);
    rm_log_str(&l, "cause", v == RM_HS_REFUSE_PENDING ? "pending_limit" : "backoff");
    if (v == RM_HS_REFUSE_PENDING) {
        rm_log_uint(&l, "max_pending", lim->max_pending);
        rm_log_str(&l, "reason", "handshakes.maxPending handshakes are in progress: closed before its handshake");
    } else {
        rm_log_str(&l, "reason",
                   "its address's handshakes kept failing and it is backing off: closed before its "
                   "handshake");
    }
    rm_log_str(&l, "msg", "further refusals are counted in one handshakes_refused line a second while they go on");
    rm_log_end(&l);
}

rm_hs_verdict_t rm_hs_guard_admit(rm_hs_guard_t *g, const rm_hs_limits_t *lim, const rm_sockaddr_t *peer,
                                  uint64_t now_ms)
{
    rm_hs_verdict_t v = RM_HS_ADMIT;
    int log_now = 0;

    if (g == NULL)
        return RM_HS_ADMIT;
    pthread_mutex_lock(&g->lock);
    if (lim->backoff_failures != 0) {
        slot_t *s = find_slot(g, peer, 0, now_ms);
        if (s != NULL && s->backoff_until_ms != 0) {
            if (now_ms < s->backoff_until_ms)
                v = RM_HS_REFUSE_BACKOFF;
            else
                s->backoff_until_ms = 0; /* over: the next failures count afresh */
        }
    }
    if (v == RM_HS_ADMIT) {
        const slot_t *s = find_slot(g, peer, 0, now_ms);
        if (s != NULL && s->known)
            v = RM_HS_ADMIT_TRUSTED; /* a known peer is not kept out by a flood that fills the bound */
    }
    if (v == RM_HS_ADMIT && g->pending >= lim->max_pending)
        v = RM_HS_REFUSE_PENDING;
    if (v == RM_HS_ADMIT || v == RM_HS_ADMIT_TRUSTED) {
        g->pending++;
        g->stats.pending = g->pending;
    } else {
        if (v == RM_HS_REFUSE_PENDING) {
            g->stats.refused_pending++;
            g->unlogged_pending++;
        } else {
            g->stats.refused_backoff++;
            g->unlogged_backoff++;
        }
        g->last_peer = *peer;
        if (!g->in_burst) {
            /* the first of a burst says at once what is happening; the line counts it */
            g->in_burst = 1;
            g->last_log_ms = now_ms;
            if (v == RM_HS_REFUSE_PENDING)
                g->unlogged_pending--;
            else
                g->unlogged_backoff--;
            log_now = 1;
        }
    }
    pthread_mutex_unlock(&g->lock);
    if (log_now)
        log_first_refusal(lim, peer, v);
    return v;
}

void rm_hs_guard_end(rm_hs_guard_t *g, const rm_hs_limits_t *lim, const rm_sockaddr_t *peer, int failed,
                     uint64_t now_ms)
{
    uint64_t failures = 0;
    int started = 0;

    if (g == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    if (g->pending > 0)
        g->pending--;
    g->stats.pending = g->pending;
    {
        slot_t *s = find_slot(g, peer, !failed || lim->backoff_failures != 0, now_ms);
        if (s != NULL && !failed) {
            /* a handshake that succeeds clears its address's failures and makes it known */
            s->known = 1;
            s->failures = 0;
            s->touched_ms = now_ms;
        } else if (s != NULL && lim->backoff_failures == 0) {
            s->known = 0;
            s->touched_ms = now_ms;
        } else if (s != NULL) {
            s->known = 0;
            s->touched_ms = now_ms;
            if (s->failures == 0 || now_ms - s->window_start_ms >= lim->window_ms) {
                s->window_start_ms = now_ms;
                s->failures = 0;
            }
            if (++s->failures >= lim->backoff_failures && s->backoff_until_ms == 0) {
                failures = s->failures;
                s->failures = 0;
                s->backoff_until_ms = now_ms + lim->backoff_ms;
                if (s->backoff_until_ms == 0)
                    s->backoff_until_ms = 1;
                g->stats.backoffs++;
                started = 1;
            }
        }
    }
    pthread_mutex_unlock(&g->lock);
    if (started) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "handshake_backoff");
        rm_log_addr(&l, "peer_addr", peer->len != 0 ? (const struct sockaddr *)&peer->ss : NULL);
        rm_log_uint(&l, "failures", failures);
        rm_log_uint(&l, "window_ms", lim->window_ms);
        rm_log_uint(&l, "backoff_ms", lim->backoff_ms);
        rm_log_str(&l, "reason",
                   "handshakes from this address failed handshakes.backoffAfterFailures times within "
                   "handshakes.failureWindow: its new connections are closed before any handshake "
                   "for handshakes.backoff");
        rm_log_end(&l);
    }
}

void rm_hs_guard_tick(rm_hs_guard_t *g, uint64_t now_ms)
{
    uint64_t np, nb, backing = 0;
    rm_sockaddr_t peer;
    rm_log_line_t l;

    if (g == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    if (now_ms - g->last_scan_ms >= LOG_EVERY_MS) {
        g->last_scan_ms = now_ms;
        for (uint32_t i = 0; i < TABLE_SLOTS; i++)
            backing += g->slots[i].used && g->slots[i].backoff_until_ms > now_ms;
        g->stats.backing_off = backing;
    }
    backing = g->stats.backing_off;
    if (!g->in_burst || now_ms - g->last_log_ms < LOG_EVERY_MS) {
        pthread_mutex_unlock(&g->lock);
        return;
    }
    np = g->unlogged_pending;
    nb = g->unlogged_backoff;
    peer = g->last_peer;
    g->unlogged_pending = g->unlogged_backoff = 0;
    g->last_log_ms = now_ms;
    if (np == 0 && nb == 0)
        g->in_burst = 0; /* a second without refusals: the burst is over, the next refusal is logged at once */
    pthread_mutex_unlock(&g->lock);
    if (np == 0 && nb == 0)
        return;
    rm_log_begin(&l, RM_LOG_WARN, "handshakes_refused");
    rm_log_uint(&l, "pending_limit", np);
    rm_log_uint(&l, "backoff", nb);
    rm_log_uint(&l, "addresses_backing_off", backing);
    rm_log_addr(&l, "last_peer_addr", peer.len != 0 ? (const struct sockaddr *)&peer.ss : NULL);
    rm_log_str(&l, "msg",
               "connections closed before their handshake since the last line (pending_limit: "
               "handshakes.maxPending were in progress; backoff: their address was backing off)");
    rm_log_end(&l);
}

rm_hs_guard_stats_t rm_hs_guard_stats(rm_hs_guard_t *g)
{
    rm_hs_guard_stats_t s = {0, 0, 0, 0, 0};
    if (g == NULL)
        return s;
    pthread_mutex_lock(&g->lock);
    s = g->stats;
    pthread_mutex_unlock(&g->lock);
    return s;
}
