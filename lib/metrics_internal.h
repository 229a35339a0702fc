/* The registry's types, shared by metrics_registry.c (recording, expiry) and metrics_expose.c (scrape). */
#ifndef RINGMESH_METRICS_INTERNAL_H
#define RINGMESH_METRICS_INTERNAL_H

#include "ringmesh/metrics.h"

#include <pthread.h>
#include <stdatomic.h>

/* Chains per family per shard: a family holds at most max_series (2000 by default) label sets. */
#define RM_METRICS_BUCKETS 512

/* One label set in one shard. Written by the shard's owner only (relaxed stores); read by a scrape under the shard's
 * mutex. Counters use v[0]; histograms v[0..num_bounds] (per bucket, not cumulative, the last is +Inf), then
 * v[num_bounds + 1] the count and v[num_bounds + 2] the sum's bits (a double). The label strings follow. */
struct st_rm_metric_series_t {
    struct st_rm_metric_series_t *next; /* chain */
    uint32_t hash;
    atomic_uint_fast64_t last_ms;
    const char **values;
    atomic_uint_fast64_t v[];
};

typedef struct st_rm_metrics_family_shard_t {
    rm_metric_series_t *chains[RM_METRICS_BUCKETS];
    rm_metric_series_t *overflow; /* created at the first fold, never expired */
    atomic_uint_fast64_t folded;  /* recordings folded into the overflow series */
    size_t num_series;            /* in this shard, overflow excluded (owner and scrape under mutex) */
} rm_metrics_family_shard_t;

struct st_rm_metrics_shard_t {
    rm_metrics_t *m;
    pthread_mutex_t mutex; /* taken by the owner when it links or unlinks a series, and by a scrape */
    rm_metrics_family_shard_t *families;
    /* bumped whenever a series of the shard may have been freed or a fold may have become a series (expiry removed
     * one, the series limit changed): series pointers held across calls are valid while it is unchanged */
    atomic_uint_fast64_t generation;
    uint64_t lookups; /* label-set lookups by hash (owner only; tests read it to see the cache at work) */
};

struct st_rm_metrics_t {
    const rm_metric_def_t *defs;
    size_t num_defs;
    atomic_uint_fast64_t *num_series; /* per family, across shards */
    atomic_uint_fast64_t max_series, expiry_ms;
    rm_metrics_shard_t *shards;
    unsigned num_shards;
};

/** Number of values a series of family `d` holds. */
static inline size_t rm__metrics_num_values(const rm_metric_def_t *d)
{
    return d->kind == RM_METRIC_COUNTER ? 1 : d->num_bounds + 3;
}

#endif
