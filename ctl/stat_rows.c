/* The series a stat table reads from a /metrics page, their increase between two scrapes, the rows, and the
 * quantile math (Prometheus' histogram_quantile, so that --admin and --prometheus agree on the same data). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stat.h"

const char *const rm_stat_prefixes[RM_STAT_NUM_PREFIXES] = {"ringmesh_", "istio_"};

static const char *const metric_names[RM_STAT_NUM_METRICS] = {
    "requests_total",
    "request_duration_milliseconds_bucket",
    "tcp_connections_opened_total",
    "tcp_connections_closed_total",
};

/* ---- a scrape ---------------------------------------------------------------------------------------------- */

typedef struct st_scrape_ctx_t {
    rm_stat_scrape_t *s;
    char *err;
    size_t errlen;
} scrape_ctx_t;

static const char *label_of(const rm_expo_sample_t *x, const char *name)
{
    size_t i;

    for (i = 0; i != x->num_labels; ++i)
        if (strcmp(x->labels[i].name, name) == 0)
            return x->labels[i].value;
    return NULL;
}

static const char *known(const char *v)
{
    return v != NULL && *v != '\0' ? v : "unknown";
}

static int by_label_name(const void *a, const void *b)
{
    return strcmp((*(const rm_expo_label_t *const *)a)->name, (*(const rm_expo_label_t *const *)b)->name);
}

/* The series' identity: its full name, then every label in name order, each value prefixed by its length so that
 * no value can be mistaken for a separator. */
static char *series_key(const rm_expo_sample_t *x)
{
    const rm_expo_label_t *sorted[RM_EXPO_MAX_LABELS] = {0};
    size_t i, len = strlen(x->name) + 1, off;
    char *key;

    for (i = 0; i != x->num_labels; ++i) {
        sorted[i] = &x->labels[i];
        len += strlen(x->labels[i].name) + strlen(x->labels[i].value) + 24;
    }
    qsort(sorted, x->num_labels, sizeof(sorted[0]), by_label_name);
    if ((key = malloc(len)) == NULL)
        return NULL;
    off = (size_t)snprintf(key, len, "%s", x->name);
    for (i = 0; i != x->num_labels; ++i)
        off += (size_t)snprintf(key + off, len - off, "\n%s=%zu:%s", sorted[i]->name, strlen(sorted[i]->value),
                                sorted[i]->value);
    return key;
}

static uint8_t request_flags(const rm_expo_sample_t *x)
{
    const char *protocol = known(label_of(x, "request_protocol")), *code = known(label_of(x, "response_code")),
               *grpc = known(label_of(x, "grpc_response_status")),
               *security = known(label_of(x, "connection_security_policy"));
    int is_grpc = strcmp(protocol, "grpc") == 0;
    uint8_t flags = 0;

    if (is_grpc) {
        if (strcmp(grpc, "0") == 0)
            flags |= RM_STAT_SUCCESS;
    } else if (strlen(code) == 3 && code[0] >= '1' && code[0] <= '4' && code[1] >= '0' && code[1] <= '9' &&
               code[2] >= '0' && code[2] <= '9') {
        flags |= RM_STAT_SUCCESS;
    }
    if (strcmp(code, "403") == 0 || (is_grpc && strcmp(grpc, "7") == 0))
        flags |= RM_STAT_DENY;
    if (strcmp(security, "mutual_tls") == 0)
        flags |= RM_STAT_MTLS;
    return flags;
}

static int on_sample(void *ctx, const rm_expo_sample_t *x)
{
    scrape_ctx_t *c = ctx;
    rm_stat_scrape_t *s = c->s;
    rm_stat_series_t *n;
    const char *reporter, *base = NULL, *le;
    size_t p, m;

    for (p = 0; p != RM_STAT_NUM_PREFIXES && base == NULL; ++p)
        if (strncmp(x->name, rm_stat_prefixes[p], strlen(rm_stat_prefixes[p])) == 0)
            base = x->name + strlen(rm_stat_prefixes[p]);
    if (base == NULL)
        return 0;
    --p;
    for (m = 0; m != RM_STAT_NUM_METRICS; ++m)
        if (strcmp(base, metric_names[m]) == 0)
            break;
    if (m == RM_STAT_NUM_METRICS || (reporter = label_of(x, "reporter")) == NULL ||
        strcmp(reporter, "destination") != 0)
        return 0;
    if (s->num == s->cap) {
        size_t cap = s->cap != 0 ? s->cap * 2 : 256;
        rm_stat_series_t *grown = realloc(s->series, cap * sizeof(*grown));
        if (grown == NULL)
            goto NoMemory;
        s->series = grown;
        s->cap = cap;
    }
    n = &s->series[s->num];
    memset(n, 0, sizeof(*n));
    n->metric = (uint8_t)m;
    n->prefix = (uint8_t)p;
    n->value = x->value;
    n->line = x->line;
    if (m == RM_STAT_DURATION_BUCKET) {
        char *end;
        if ((le = label_of(x, "le")) == NULL) {
            snprintf(c->err, c->errlen, "line %zu: the bucket '%s' has no 'le' label", x->line, x->name);
            return -1;
        }
        n->le = strtod(le, &end);
        if (*le == '\0' || *end != '\0' || isnan(n->le)) {
            snprintf(c->err, c->errlen, "line %zu: the bucket bound le=\"%s\" of '%s' is not a number", x->line, le,
                     x->name);
            return -1;
        }
    } else if (m == RM_STAT_REQUESTS) {
        n->flags = request_flags(x);
    }
    if ((n->key = series_key(x)) == NULL ||
        (n->namespace = strdup(known(label_of(x, "destination_workload_namespace")))) == NULL ||
        (n->workload = strdup(known(label_of(x, "destination_workload")))) == NULL) {
        free(n->key);
        free(n->namespace);
        goto NoMemory;
    }
    s->timestamped = (s->num == 0 || s->timestamped) && x->has_timestamp;
    if (x->has_timestamp && (s->num == 0 || x->timestamp_ms > s->timestamp_ms))
        s->timestamp_ms = x->timestamp_ms;
    ++s->per_prefix[p];
    ++s->num;
    return 0;

NoMemory:
    snprintf(c->err, c->errlen, "line %zu: out of memory", x->line);
    return -1;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const rm_stat_series_t *)a)->key, ((const rm_stat_series_t *)b)->key);
}

/* By key, then by line: the copies of a series given twice are next to each other, the first one first. */
static int by_key_line(const void *a, const void *b)
{
    const rm_stat_series_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c != 0 ? c : x->line < y->line ? -1 : x->line > y->line;
}

int rm_stat_scrape_parse(rm_stat_scrape_t *s, const char *text, size_t len, char *err, size_t errlen)
{
    scrape_ctx_t c = {.s = s, .err = err, .errlen = errlen};
    const rm_stat_series_t *again = NULL, *first = NULL;
    size_t i;

    if (rm_expo_parse(text, len, on_sample, &c, err, errlen) != 0)
        return -1;
    if (s->num > 1)
        qsort(s->series, s->num, sizeof(s->series[0]), by_key_line);
    s->sorted = 1;
    /* the repetition that comes first in the page is the one reported */
    for (i = 1; i < s->num; ++i) {
        if (strcmp(s->series[i - 1].key, s->series[i].key) == 0 && (again == NULL || s->series[i].line < again->line)) {
            again = &s->series[i];
            first = &s->series[i - 1];
        }
    }
    if (again != NULL) {
        snprintf(err, errlen, "line %zu: the series '%.*s' is given again (same name and labels as on line %zu)",
                 again->line, (int)strcspn(again->key, "\n"), again->key, first->line);
        return -1;
    }
    return 0;
}

void rm_stat_scrape_free(rm_stat_scrape_t *s)
{
    size_t i;

    for (i = 0; i != s->num; ++i) {
        free(s->series[i].key);
        free(s->series[i].namespace);
        free(s->series[i].workload);
    }
    free(s->series);
    memset(s, 0, sizeof(*s));
}

rm_stat_prefix_t rm_stat_scrape_prefix(const rm_stat_scrape_t *s)
{
    if (s->per_prefix[RM_STAT_PREFIX_RINGMESH] == 0 && s->per_prefix[RM_STAT_PREFIX_ISTIO] != 0)
        return RM_STAT_PREFIX_ISTIO;
    return RM_STAT_PREFIX_RINGMESH;
}

/* ---- rows -------------------------------------------------------------------------------------------------- */

rm_stat_row_t *rm_stat_table_row(rm_stat_table_t *t, const char *ns, const char *workload)
{
    rm_stat_row_t *r;
    size_t i;

    for (i = 0; i != t->num; ++i)
        if (strcmp(t->rows[i].namespace, ns) == 0 && strcmp(t->rows[i].workload, workload) == 0)
            return &t->rows[i];
    if (t->num == t->cap) {
        size_t cap = t->cap != 0 ? t->cap * 2 : 16;
        rm_stat_row_t *grown = realloc(t->rows, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        t->rows = grown;
        t->cap = cap;
    }
    r = &t->rows[t->num];
    memset(r, 0, sizeof(*r));
    r->p50_ms = r->p99_ms = NAN;
    if ((r->namespace = strdup(ns)) == NULL || (r->workload = strdup(workload)) == NULL) {
        free(r->namespace);
        return NULL;
    }
    ++t->num;
    return r;
}

static int row_add_bucket(rm_stat_row_t *r, double le, double rate)
{
    size_t i;

    for (i = 0; i != r->num_buckets; ++i) {
        if (r->buckets[i].le == le) {
            r->buckets[i].count += rate;
            return 0;
        }
    }
    if (r->num_buckets == r->cap_buckets) {
        size_t cap = r->cap_buckets != 0 ? r->cap_buckets * 2 : 32;
        rm_stat_bucket_t *grown = realloc(r->buckets, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        r->buckets = grown;
        r->cap_buckets = cap;
    }
    r->buckets[r->num_buckets].le = le;
    r->buckets[r->num_buckets].count = rate;
    ++r->num_buckets;
    return 0;
}

int rm_stat_table_add_scrapes(rm_stat_table_t *t, rm_stat_scrape_t *before, rm_stat_scrape_t *after,
                              uint64_t elapsed_ms, const char *ns)
{
    rm_stat_prefix_t prefix = rm_stat_scrape_prefix(after);
    double seconds;
    size_t i;

    if (before->timestamped && after->timestamped && after->timestamp_ms > before->timestamp_ms)
        elapsed_ms = (uint64_t)(after->timestamp_ms - before->timestamp_ms);
    seconds = (double)(elapsed_ms != 0 ? elapsed_ms : 1) / 1000.0;
    if (!before->sorted && before->num != 0) {
        qsort(before->series, before->num, sizeof(before->series[0]), by_key);
        before->sorted = 1;
    }
    for (i = 0; i != after->num; ++i) {
        const rm_stat_series_t *a = &after->series[i], *b;
        rm_stat_row_t *r;
        double delta, rate;

        if (a->prefix != prefix || (ns != NULL && strcmp(a->namespace, ns) != 0))
            continue;
        if ((r = rm_stat_table_row(t, a->namespace, a->workload)) == NULL)
            return -ENOMEM;
        if (a->metric == RM_STAT_TCP_OPENED) {
            r->tcp_open += a->value;
            continue;
        }
        if (a->metric == RM_STAT_TCP_CLOSED) {
            r->tcp_open -= a->value;
            continue;
        }
        /* a counter: its increase; a series new since `before` started from zero in between */
        b = before->num != 0 ? bsearch(a, before->series, before->num, sizeof(*b), by_key) : NULL;
        delta = b == NULL || a->value < b->value ? a->value : a->value - b->value;
        rate = delta / seconds;
        if (a->metric == RM_STAT_DURATION_BUCKET) {
            if (row_add_bucket(r, a->le, rate) != 0)
                return -ENOMEM;
            continue;
        }
        r->requests += delta;
        r->req_rate += rate;
        if (a->flags & RM_STAT_SUCCESS)
            r->success_rate += rate;
        if (a->flags & RM_STAT_DENY)
            r->deny_rate += rate;
        if (a->flags & RM_STAT_MTLS)
            r->mtls_rate += rate;
    }
    return 0;
}

static int by_row_name(const void *a, const void *b)
{
    const rm_stat_row_t *x = a, *y = b;
    int c = strcmp(x->namespace, y->namespace);

    return c != 0 ? c : strcmp(x->workload, y->workload);
}

void rm_stat_table_finish(rm_stat_table_t *t)
{
    size_t i;

    if (t->num != 0)
        qsort(t->rows, t->num, sizeof(t->rows[0]), by_row_name);
    for (i = 0; i != t->num; ++i) {
        rm_stat_row_t *r = &t->rows[i];
        if (r->num_buckets == 0)
            continue;
        r->p50_ms = rm_stat_quantile(0.5, r->buckets, r->num_buckets);
        r->p99_ms = rm_stat_quantile(0.99, r->buckets, r->num_buckets);
    }
}

void rm_stat_table_free(rm_stat_table_t *t)
{
    size_t i;

    for (i = 0; i != t->num; ++i) {
        free(t->rows[i].namespace);
        free(t->rows[i].workload);
        free(t->rows[i].buckets);
    }
    free(t->rows);
    memset(t, 0, sizeof(*t));
}

/* ---- histogram_quantile -------------------------------------------------------------------------------------- */

static int by_bound(const void *a, const void *b)
{
    double x = ((const rm_stat_bucket_t *)a)->le, y = ((const rm_stat_bucket_t *)b)->le;

    return x < y ? -1 : x > y ? 1 : 0;
}

double rm_stat_quantile(double q, rm_stat_bucket_t *b, size_t n)
{
    double rank, observations, start = 0, count, max = -INFINITY;
    size_t i, k;

    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (n == 0)
        return NAN;
    qsort(b, n, sizeof(b[0]), by_bound);
    if (!isinf(b[n - 1].le) || b[n - 1].le < 0)
        return NAN;
    /* buckets with the same bound (from several series) are one bucket */
    for (i = 1, k = 0; i != n; ++i) {
        if (b[i].le == b[k].le)
            b[k].count += b[i].count;
        else
            b[++k] = b[i];
    }
    n = k + 1;
    /* cumulative counts never decrease; rates computed at different instants may, and are evened out upwards */
    for (i = 0; i != n; ++i) {
        if (b[i].count < max)
            b[i].count = max;
        else
            max = b[i].count;
    }
    if (n < 2 || (observations = b[n - 1].count) == 0)
        return NAN;
    rank = q * observations;
    for (i = 0; i != n - 1 && b[i].count < rank; ++i) /* the first bucket holding the rank */
        ;
    if (i == n - 1)
        return b[n - 2].le; /* in the +Inf bucket: the highest finite bound is all that is known */
    if (i == 0 && b[0].le <= 0)
        return b[0].le;
    count = b[i].count;
    if (i > 0) {
        start = b[i - 1].le;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (b[i].le - start) * (rank / count);
}
