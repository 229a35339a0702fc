/* A registry of labelled counters and histograms, recorded per worker without locks and exposed to Prometheus.
 *
 * A registry holds a fixed set of families (rm_metric_def_t: name, help, kind, label names, histogram bounds) and one
 * shard per recording thread. A thread records only into its own shard: on a label set the shard already holds this
 * takes no lock and allocates nothing (the shard's owner is its only writer, values are relaxed atomics that a scrape
 * may read at any time). A label set new to the shard is allocated once, under the shard's mutex, which only the
 * scrape also takes; so is the removal of a series that expired. A scrape merges the shards: the same label set in
 * several shards is one series whose values are summed.
 *
 * Cardinality: a family holds at most `max_series` label sets across all shards. Past that, a recording with a new
 * label set goes to the family's overflow series (every label value "overflow") and is counted in
 * ringmesh_metrics_series_folded_total{metric}. A series not recorded into for `expiry_ms` is removed by its shard's
 * owner (rm_metrics_expire), so that the series of peers that went away vanish.
 *
 * A recorder that hits the same label set request after request (a connection's) keeps the series pointer
 * (rm_metrics_series) and checks the shard's generation before each use: expiry, the only thing that frees a series
 * while the registry lives, runs on the owner's thread and changes the generation, so a kept pointer is never used
 * after its series is freed. */
#ifndef RINGMESH_METRICS_H
#define RINGMESH_METRICS_H

#include <stddef.h>
#include <stdint.h>

/** Most labels a family may have. */
#define RM_METRICS_MAX_LABELS 24
/** Most bucket bounds a histogram family may have (+Inf not counted). */
#define RM_METRICS_MAX_BOUNDS 32
/** Label value of every label of the overflow series. */
#define RM_METRICS_OVERFLOW "overflow"
/** The family that counts folded recordings (always with this prefix). */
#define RM_METRICS_FOLDED_NAME "ringmesh_metrics_series_folded_total"

typedef enum { RM_METRIC_COUNTER = 0, RM_METRIC_HISTOGRAM } rm_metric_kind_t;

/** One family. Strings and arrays are not copied: they must outlive the registry (static tables). Counter names end
 *  in "_total"; names are given without the prefix rm_metrics_render() puts in front. */
typedef struct st_rm_metric_def_t {
    const char *name;
    const char *help;
    rm_metric_kind_t kind;
    const char *const *labels;
    size_t num_labels;
    const double *bounds; /* histograms: strictly increasing upper bounds, +Inf implied */
    size_t num_bounds;
} rm_metric_def_t;

typedef enum { RM_METRICS_PROMETHEUS = 0, RM_METRICS_OPENMETRICS } rm_metrics_format_t;

typedef struct st_rm_metrics_t rm_metrics_t;
typedef struct st_rm_metrics_shard_t rm_metrics_shard_t;
/** One label set of one family in one shard (opaque). */
typedef struct st_rm_metric_series_t rm_metric_series_t;

/** Creates a registry of `num_defs` families and `num_shards` shards, with max_series 2000 and expiry 10 minutes.
 *  Returns 0, -EINVAL (a def with too many labels or bounds, or a counter not named *_total) or -ENOMEM. */
int rm_metrics_new(rm_metrics_t **out, const rm_metric_def_t *defs, size_t num_defs, unsigned num_shards);
/** Frees the registry and every series. No thread may be recording or scraping. */
void rm_metrics_free(rm_metrics_t *m);
/** Shard `i` (< num_shards): the one thread that records into it must be the only one. */
rm_metrics_shard_t *rm_metrics_shard(rm_metrics_t *m, unsigned i);
/** Sets the series limit per family (0: no new series at all, everything folds) and the expiry (0: never). Any
 *  thread, at any time; new recordings see the new values. */
void rm_metrics_set_limits(rm_metrics_t *m, size_t max_series, uint64_t expiry_ms);

/** Adds `v` to counter family `family` for the label set `values` (num_labels strings, not kept). `now_ms` is the
 *  caller's clock, for expiry. Only the shard's owner calls this. */
void rm_metrics_add(rm_metrics_shard_t *sh, unsigned family, const char *const *values, uint64_t v, uint64_t now_ms);
/** Records observation `v` (>= 0) in histogram family `family`. As rm_metrics_add. */
void rm_metrics_observe(rm_metrics_shard_t *sh, unsigned family, const char *const *values, double v, uint64_t now_ms);
/** The series of `values` in family `family` of the shard, found or created as rm_metrics_add would (the overflow
 *  series past the limit), for a caller that records into the same label set again and again: it keeps the pointer
 *  and records with rm_metrics_series_add / _observe, with no hash lookup and no string compare. The pointer stays
 *  valid while rm_metrics_generation(sh) returns what it returned before this call; after a change, look the label
 *  set up again. Only the shard's owner calls this. NULL when not even the overflow series could be allocated. */
rm_metric_series_t *rm_metrics_series(rm_metrics_shard_t *sh, unsigned family, const char *const *values,
                                      uint64_t now_ms);
/** The shard's generation: changes whenever a series pointer of the shard may have become invalid (expiry removed
 *  one) or a label set that folded may now get its own series (the series limit changed). Owner thread. */
uint64_t rm_metrics_generation(const rm_metrics_shard_t *sh);
/** rm_metrics_add into a series rm_metrics_series returned for the same shard and family (a counter). A recording
 *  into the overflow series counts as folded, as rm_metrics_add's would. */
void rm_metrics_series_add(rm_metrics_shard_t *sh, unsigned family, rm_metric_series_t *x, uint64_t v, uint64_t now_ms);
/** rm_metrics_observe into a series rm_metrics_series returned for the same shard and family (a histogram). */
void rm_metrics_series_observe(rm_metrics_shard_t *sh, unsigned family, rm_metric_series_t *x, double v,
                               uint64_t now_ms);

/** Removes the shard's series last recorded into `expiry_ms` or more before `now_ms`. Only the shard's owner calls
 *  this. Returns how many were removed. */
size_t rm_metrics_expire(rm_metrics_shard_t *sh, uint64_t now_ms);

/** Appends every family that has series, merged across shards and sorted by label values, then the folded counter,
 *  in format `fmt` at buf[o..len) (rm_textf's contract: the offset stops at len when cut). Family names get
 *  `prefix` in front ("ringmesh_" or "istio_"). Does not write OpenMetrics' "# EOF". Takes every shard's mutex in
 *  turn; allocates a sorting array (on failure, writes nothing and returns o). */
size_t rm_metrics_render(rm_metrics_t *m, const char *prefix, rm_metrics_format_t fmt, char *buf, size_t len, size_t o);

/** The format an HTTP Accept header value asks for: OpenMetrics when it lists application/openmetrics-text with a
 *  q above 0 and not below any text/plain or wildcard range's, Prometheus text otherwise (also for NULL). */
rm_metrics_format_t rm_metrics_negotiate(const char *accept);
/** The Content-Type of a format's exposition. */
const char *rm_metrics_content_type(rm_metrics_format_t fmt);
/** Rewrites Prometheus text (`in`, `n` bytes) as OpenMetrics at buf[o..len): counters' metadata named without
 *  "_total" (their samples keep it), "untyped" as "unknown", HELP escaped as OpenMetrics says, comments and blank
 *  lines dropped. A counter whose name lacks "_total" becomes "unknown". Returns the new offset. */
size_t rm_metrics_text_to_openmetrics(const char *in, size_t n, char *buf, size_t len, size_t o);
/** Writes `v` as OpenMetrics' canonical number (Go's %g, shortest round trip, with ".0" added when it has neither a
 *  point nor an exponent; "+Inf") when `canonical`, else without the ".0". Returns rm_textf's offset. */
size_t rm_metrics_put_number(char *buf, size_t len, size_t o, double v, int canonical);

#endif
