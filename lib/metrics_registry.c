/* The metrics registry: families, shards, recording and expiry (ringmesh/metrics.h). The exposition is
 * metrics_expose.c's. */
#include "metrics_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_SERIES 2000
#define DEFAULT_EXPIRY_MS  (10u * 60 * 1000)

static const char *const overflow_values[RM_METRICS_MAX_LABELS] = {
    RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW,
    RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW,
    RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW,
    RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW,
    RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW, RM_METRICS_OVERFLOW};

static int valid_def(const rm_metric_def_t *d)
{
    size_t n = strlen(d->name);
    if (d->num_labels > RM_METRICS_MAX_LABELS || (d->num_labels > 0 && d->labels == NULL))
        return 0;
    if (d->kind == RM_METRIC_COUNTER)
        return n > 6 && strcmp(d->name + n - 6, "_total") == 0;
    if (d->num_bounds == 0 || d->num_bounds > RM_METRICS_MAX_BOUNDS || d->bounds == NULL)
        return 0;
    for (size_t i = 1; i < d->num_bounds; i++)
        if (!(d->bounds[i] > d->bounds[i - 1]))
            return 0;
    return 1;
}

int rm_metrics_new(rm_metrics_t **out, const rm_metric_def_t *defs, size_t num_defs, unsigned num_shards)
{
    rm_metrics_t *m = NULL;
    int ret = 0;

    *out = NULL;
    for (size_t i = 0; i < num_defs; i++)
        if (!valid_def(&defs[i]))
            return -EINVAL;
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return -ENOMEM;
    m->defs = defs;
    m->num_defs = num_defs;
    atomic_init(&m->max_series, DEFAULT_MAX_SERIES);
    atomic_init(&m->expiry_ms, DEFAULT_EXPIRY_MS);
    if ((m->num_series = calloc(num_defs ? num_defs : 1, sizeof(*m->num_series))) == NULL ||
        (m->shards = calloc(num_shards ? num_shards : 1, sizeof(*m->shards))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (unsigned s = 0; s < num_shards; s++) {
        rm_metrics_shard_t *sh = &m->shards[s];
        sh->m = m;
        if ((sh->families = calloc(num_defs ? num_defs : 1, sizeof(*sh->families))) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        pthread_mutex_init(&sh->mutex, NULL);
        atomic_init(&sh->generation, 0);
        m->num_shards++;
    }
    *out = m;
    m = NULL;
Exit:
    rm_metrics_free(m);
    return ret;
}

void rm_metrics_free(rm_metrics_t *m)
{
    if (m == NULL)
        return;
    for (unsigned s = 0; m->shards != NULL && s < m->num_shards; s++) {
        rm_metrics_shard_t *sh = &m->shards[s];
        for (size_t f = 0; sh->families != NULL && f < m->num_defs; f++) {
            rm_metrics_family_shard_t *fs = &sh->families[f];
            for (size_t b = 0; b < RM_METRICS_BUCKETS; b++) {
                for (rm_metric_series_t *x = fs->chains[b], *next; x != NULL; x = next) {
                    next = x->next;
                    free(x);
                }
            }
            free(fs->overflow);
        }
        free(sh->families);
        pthread_mutex_destroy(&sh->mutex);
    }
    free(m->shards);
    free(m->num_series);
    free(m);
}

rm_metrics_shard_t *rm_metrics_shard(rm_metrics_t *m, unsigned i)
{
    return i < m->num_shards ? &m->shards[i] : NULL;
}

void rm_metrics_set_limits(rm_metrics_t *m, size_t max_series, uint64_t expiry_ms)
{
    /* a new limit can give a label set that folded its own series: kept overflow pointers are to be looked up again */
    if (atomic_exchange_explicit(&m->max_series, max_series, memory_order_relaxed) != max_series)
        for (unsigned s = 0; s < m->num_shards; s++)
            atomic_fetch_add_explicit(&m->shards[s].generation, 1, memory_order_relaxed);
    atomic_store_explicit(&m->expiry_ms, expiry_ms, memory_order_relaxed);
}

/* FNV-1a over the values, each followed by a 0 byte so that ("ab","c") and ("a","bc") differ. */
static uint32_t hash_values(const char *const *values, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p != '\0'; p++)
            h = (h ^ *p) * 16777619u;
        h = (h ^ 0xffu) * 16777619u;
    }
    return h;
}

static int same_values(const char *const *a, const char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

/* One allocation: the header, the values, the label pointers, then the strings. */
static rm_metric_series_t *series_alloc(const rm_metric_def_t *d, const char *const *values, uint32_t hash)
{
    size_t nv = rm__metrics_num_values(d), strings = 0, off, ptrs = d->num_labels * sizeof(const char *);
    for (size_t i = 0; i < d->num_labels; i++)
        strings += strlen(values[i]) + 1;
    off = sizeof(rm_metric_series_t) + nv * sizeof(atomic_uint_fast64_t);
    rm_metric_series_t *x = malloc(off + ptrs + strings);
    if (x == NULL)
        return NULL;
    x->next = NULL;
    x->hash = hash;
    atomic_init(&x->last_ms, 0);
    for (size_t i = 0; i < nv; i++)
        atomic_init(&x->v[i], 0);
    x->values = (const char **)((char *)x + off);
    char *p = (char *)x + off + ptrs;
    for (size_t i = 0; i < d->num_labels; i++) {
        size_t l = strlen(values[i]) + 1;
        memcpy(p, values[i], l);
        x->values[i] = p;
        p += l;
    }
    return x;
}

/* The series of `values` in the shard: found without a lock (the caller owns the shard), else created and linked
 * under the mutex, else (limit reached, or no memory) the overflow series. NULL only when even that cannot be had.
 * A fold is counted by the recording (record_begin), not here. */
static rm_metric_series_t *find_series(rm_metrics_shard_t *sh, unsigned family, const char *const *values,
                                       uint64_t now_ms)
{
    rm_metrics_t *m = sh->m;
    const rm_metric_def_t *d = &m->defs[family];
    rm_metrics_family_shard_t *fs = &sh->families[family];
    uint32_t h = hash_values(values, d->num_labels);
    rm_metric_series_t *x;

    sh->lookups++;
    for (x = fs->chains[h % RM_METRICS_BUCKETS]; x != NULL; x = x->next)
        if (x->hash == h && same_values(x->values, values, d->num_labels))
            goto Found;
    uint64_t max = atomic_load_explicit(&m->max_series, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&m->num_series[family], 1, memory_order_relaxed) < max &&
        (x = series_alloc(d, values, h)) != NULL) {
        pthread_mutex_lock(&sh->mutex);
        x->next = fs->chains[h % RM_METRICS_BUCKETS];
        fs->chains[h % RM_METRICS_BUCKETS] = x;
        fs->num_series++;
        pthread_mutex_unlock(&sh->mutex);
        goto Found;
    }
    atomic_fetch_sub_explicit(&m->num_series[family], 1, memory_order_relaxed);
    if (fs->overflow == NULL) {
        if ((x = series_alloc(d, overflow_values, 0)) == NULL)
            return NULL;
        pthread_mutex_lock(&sh->mutex);
        fs->overflow = x;
        pthread_mutex_unlock(&sh->mutex);
    }
    x = fs->overflow;
Found:
    atomic_store_explicit(&x->last_ms, now_ms, memory_order_relaxed);
    return x;
}

/* The owner is the only writer: a relaxed load and store is an increment no reader can see torn. */
static inline void bump(atomic_uint_fast64_t *a, uint64_t v)
{
    atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + v, memory_order_relaxed);
}

/* A recording into `x` of family `family` of kind `kind`: 1 to go on (its time is noted, a fold counted), 0 when
 * the family is not of that kind. */
static inline int record_begin(rm_metrics_shard_t *sh, unsigned family, rm_metric_kind_t kind, rm_metric_series_t *x,
                               uint64_t now_ms)
{
    if (x == NULL || family >= sh->m->num_defs || sh->m->defs[family].kind != kind)
        return 0;
    if (x == sh->families[family].overflow)
        atomic_fetch_add_explicit(&sh->families[family].folded, 1, memory_order_relaxed);
    else if (atomic_load_explicit(&x->last_ms, memory_order_relaxed) != now_ms)
        atomic_store_explicit(&x->last_ms, now_ms, memory_order_relaxed);
    return 1;
}

rm_metric_series_t *rm_metrics_series(rm_metrics_shard_t *sh, unsigned family, const char *const *values,
                                      uint64_t now_ms)
{
    if (family >= sh->m->num_defs)
        return NULL;
    return find_series(sh, family, values, now_ms);
}

uint64_t rm_metrics_generation(const rm_metrics_shard_t *sh)
{
    return atomic_load_explicit(&sh->generation, memory_order_relaxed);
}

void rm_metrics_series_add(rm_metrics_shard_t *sh, unsigned family, rm_metric_series_t *x, uint64_t v, uint64_t now_ms)
{
    if (record_begin(sh, family, RM_METRIC_COUNTER, x, now_ms))
        bump(&x->v[0], v);
}

void rm_metrics_series_observe(rm_metrics_shard_t *sh, unsigned family, rm_metric_series_t *x, double v,
                               uint64_t now_ms)
{
    const rm_metric_def_t *d = &sh->m->defs[family < sh->m->num_defs ? family : 0];
    size_t b;
    if (!(v >= 0) || !record_begin(sh, family, RM_METRIC_HISTOGRAM, x, now_ms))
        return;
    for (b = 0; b < d->num_bounds && v > d->bounds[b]; b++)
        ;
    bump(&x->v[b], 1);
    bump(&x->v[d->num_bounds + 1], 1);
    /* the sum is a double kept in the bits of a 64-bit atomic */
    uint64_t bits = atomic_load_explicit(&x->v[d->num_bounds + 2], memory_order_relaxed);
    double sum;
    memcpy(&sum, &bits, sizeof(sum));
    sum += v;
    memcpy(&bits, &sum, sizeof(bits));
    atomic_store_explicit(&x->v[d->num_bounds + 2], bits, memory_order_relaxed);
}

void rm_metrics_add(rm_metrics_shard_t *sh, unsigned family, const char *const *values, uint64_t v, uint64_t now_ms)
{
    if (family >= sh->m->num_defs || sh->m->defs[family].kind != RM_METRIC_COUNTER)
        return;
    rm_metrics_series_add(sh, family, find_series(sh, family, values, now_ms), v, now_ms);
}

void rm_metrics_observe(rm_metrics_shard_t *sh, unsigned family, const char *const *values, double v, uint64_t now_ms)
{
    if (family >= sh->m->num_defs || sh->m->defs[family].kind != RM_METRIC_HISTOGRAM || !(v >= 0))
        return;
    rm_metrics_series_observe(sh, family, find_series(sh, family, values, now_ms), v, now_ms);
}

size_t rm_metrics_expire(rm_metrics_shard_t *sh, uint64_t now_ms)
{
    rm_metrics_t *m = sh->m;
    uint64_t expiry = atomic_load_explicit(&m->expiry_ms, memory_order_relaxed);
    size_t removed = 0;

    if (expiry == 0)
        return 0;
    for (size_t f = 0; f < m->num_defs; f++) {
        rm_metrics_family_shard_t *fs = &sh->families[f];
        if (fs->num_series == 0)
            continue;
        for (size_t b = 0; b < RM_METRICS_BUCKETS; b++) {
            rm_metric_series_t **pp = &fs->chains[b];
            while (*pp != NULL) {
                rm_metric_series_t *x = *pp;
                uint64_t last = atomic_load_explicit(&x->last_ms, memory_order_relaxed);
                if (now_ms < last || now_ms - last < expiry) {
                    pp = &x->next;
                    continue;
                }
                /* a scrape may be walking this chain: unlink and free only while it cannot */
                pthread_mutex_lock(&sh->mutex);
                *pp = x->next;
                fs->num_series--;
                pthread_mutex_unlock(&sh->mutex);
                atomic_fetch_sub_explicit(&m->num_series[f], 1, memory_order_relaxed);
                /* before the free: a series pointer kept across calls (rm_metrics_series) is now suspect */
                atomic_fetch_add_explicit(&sh->generation, 1, memory_order_relaxed);
                free(x);
                removed++;
            }
        }
    }
    return removed;
}
