/* The registry's exposition (ringmesh/metrics.h): the shards merged, in Prometheus text 0.0.4 or OpenMetrics 1.0,
 * and what the admin server needs around it (Accept negotiation, content types, the older text rewritten as
 * OpenMetrics). */
#include "metrics_internal.h"
#include "ringmesh/textbuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ numbers and strings */

size_t rm_metrics_put_number(char *buf, size_t len, size_t o, double v, int canonical)
{
    char s[40];
    int p, exp;

    if (isnan(v))
        return rm_textf(buf, len, o, "NaN");
    if (isinf(v))
        return rm_textf(buf, len, o, v > 0 ? "+Inf" : "-Inf");
    /* the fewest significant digits that read back as v, then Go's %g choice between the two notations */
    for (p = 1; p < 17; p++) {
        snprintf(s, sizeof(s), "%.*e", p - 1, v);
        if (strtod(s, NULL) == v)
            break;
    }
    snprintf(s, sizeof(s), "%.*e", p - 1, v);
    exp = (int)strtol(strchr(s, 'e') + 1, NULL, 10);
    if (v == 0)
        exp = 0;
    if (exp < -4 || exp >= 6)
        return rm_textf(buf, len, o, "%s", s);
    snprintf(s, sizeof(s), "%.*f", p - 1 - exp > 0 ? p - 1 - exp : 0, v);
    return rm_textf(buf, len, o, "%s%s", s, canonical && strchr(s, '.') == NULL ? ".0" : "");
}

/* A label value: backslash, double quote and line feed escaped (both formats). */
static size_t put_label_value(char *buf, size_t len, size_t o, const char *v)
{
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\\')
            o = rm_textf(buf, len, o, "\\\\");
        else if (*p == '"')
            o = rm_textf(buf, len, o, "\\\"");
        else if (*p == '\n')
            o = rm_textf(buf, len, o, "\\n");
        else
            o = rm_textf(buf, len, o, "%c", *p);
    }
    return o;
}

/* HELP text: backslash and line feed escaped; OpenMetrics escapes double quotes too. */
static size_t put_help(char *buf, size_t len, size_t o, const char *v, rm_metrics_format_t fmt)
{
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\\')
            o = rm_textf(buf, len, o, "\\\\");
        else if (*p == '\n')
            o = rm_textf(buf, len, o, "\\n");
        else if (*p == '"' && fmt == RM_METRICS_OPENMETRICS)
            o = rm_textf(buf, len, o, "\\\"");
        else
            o = rm_textf(buf, len, o, "%c", *p);
    }
    return o;
}

/* "# HELP" and "# TYPE" of a family whose samples are named `name` (a counter's with "_total"). OpenMetrics names a
 * counter family without the suffix and puts TYPE first. */
static size_t put_meta(char *buf, size_t len, size_t o, const char *prefix, const char *name, const char *help,
                       rm_metric_kind_t kind, rm_metrics_format_t fmt)
{
    const char *type = kind == RM_METRIC_COUNTER ? "counter" : "histogram";
    int n = (int)strlen(name);
    if (fmt == RM_METRICS_OPENMETRICS) {
        if (kind == RM_METRIC_COUNTER)
            n -= 6;
        o = rm_textf(buf, len, o, "# TYPE %s%.*s %s\n# HELP %s%.*s ", prefix, n, name, type, prefix, n, name);
        o = put_help(buf, len, o, help, fmt);
        return rm_textf(buf, len, o, "\n");
    }
    o = rm_textf(buf, len, o, "# HELP %s%s ", prefix, name);
    o = put_help(buf, len, o, help, fmt);
    return rm_textf(buf, len, o, "\n# TYPE %s%s %s\n", prefix, name, type);
}

/* NAME{labels[,le="b"]} */
static size_t put_sample_name(char *buf, size_t len, size_t o, const char *prefix, const char *name, const char *suffix,
                              const rm_metric_def_t *d, const char *const *values, const char *le)
{
    o = rm_textf(buf, len, o, "%s%s%s", prefix, name, suffix);
    if (d->num_labels == 0 && le == NULL)
        return o;
    o = rm_textf(buf, len, o, "{");
    for (size_t i = 0; i < d->num_labels; i++) {
        o = rm_textf(buf, len, o, "%s%s=\"", i ? "," : "", d->labels[i]);
        o = put_label_value(buf, len, o, values[i]);
        o = rm_textf(buf, len, o, "\"");
    }
    if (le != NULL)
        o = rm_textf(buf, len, o, "%sle=\"%s\"", d->num_labels ? "," : "", le);
    return rm_textf(buf, len, o, "}");
}

/* ------------------------------------------------------------------ scrape */

static int cmp_series(const void *a, const void *b, void *arg)
{
    const rm_metric_series_t *x = *(rm_metric_series_t *const *)a, *y = *(rm_metric_series_t *const *)b;
    size_t n = *(const size_t *)arg;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

static double bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* One merged series: the values of `n` series with the same labels, summed. */
static size_t put_series(char *buf, size_t len, size_t o, const char *prefix, const rm_metric_def_t *d,
                         rm_metric_series_t *const *group, size_t n, rm_metrics_format_t fmt)
{
    const char *const *values = group[0]->values;
    if (d->kind == RM_METRIC_COUNTER) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v += atomic_load_explicit(&group[i]->v[0], memory_order_relaxed);
        o = put_sample_name(buf, len, o, prefix, d->name, "", d, values, NULL);
        return rm_textf(buf, len, o, " %llu\n", (unsigned long long)v);
    }
    uint64_t cum = 0;
    double sum = 0;
    char le[40];
    for (size_t b = 0; b <= d->num_bounds; b++) {
        for (size_t i = 0; i < n; i++)
            cum += atomic_load_explicit(&group[i]->v[b], memory_order_relaxed);
        if (b < d->num_bounds)
            rm_metrics_put_number(le, sizeof(le), 0, d->bounds[b], fmt == RM_METRICS_OPENMETRICS);
        else
            snprintf(le, sizeof(le), "+Inf");
        o = put_sample_name(buf, len, o, prefix, d->name, "_bucket", d, values, le);
        o = rm_textf(buf, len, o, " %llu\n", (unsigned long long)cum);
    }
    for (size_t i = 0; i < n; i++)
        sum += bits_to_double(atomic_load_explicit(&group[i]->v[d->num_bounds + 2], memory_order_relaxed));
    /* the count said is the +Inf bucket's: the series' own count is loaded at another moment while the owner
     * records, and the two must agree */
    o = put_sample_name(buf, len, o, prefix, d->name, "_sum", d, values, NULL);
    o = rm_textf(buf, len, o, " ");
    o = rm_metrics_put_number(buf, len, o, sum, 0);
    o = rm_textf(buf, len, o, "\n");
    o = put_sample_name(buf, len, o, prefix, d->name, "_count", d, values, NULL);
    return rm_textf(buf, len, o, " %llu\n", (unsigned long long)cum);
}

size_t rm_metrics_render(rm_metrics_t *m, const char *prefix, rm_metrics_format_t fmt, char *buf, size_t len, size_t o)
{
    rm_metric_series_t **all = NULL;
    size_t cap = 0, any = 0;
    uint64_t *folded = NULL;

    if ((folded = calloc(m->num_defs ? m->num_defs : 1, sizeof(*folded))) == NULL)
        return o;
    for (unsigned s = 0; s < m->num_shards; s++)
        pthread_mutex_lock(&m->shards[s].mutex);
    for (unsigned s = 0; s < m->num_shards; s++)
        for (size_t f = 0; f < m->num_defs; f++)
            cap += m->shards[s].families[f].num_series + 1;
    if ((all = malloc((cap ? cap : 1) * sizeof(*all))) == NULL)
        goto Exit;
    for (size_t f = 0; f < m->num_defs; f++) {
        const rm_metric_def_t *d = &m->defs[f];
        size_t n = 0;
        for (unsigned s = 0; s < m->num_shards; s++) {
            rm_metrics_family_shard_t *fs = &m->shards[s].families[f];
            folded[f] += atomic_load_explicit(&fs->folded, memory_order_relaxed);
            for (size_t b = 0; b < RM_METRICS_BUCKETS && fs->num_series > 0; b++)
                for (rm_metric_series_t *x = fs->chains[b]; x != NULL; x = x->next)
                    all[n++] = x;
            if (fs->overflow != NULL)
                all[n++] = fs->overflow;
        }
        if (n == 0)
            continue;
        any = 1;
        size_t nl = d->num_labels;
        qsort_r(all, n, sizeof(*all), cmp_series, &nl);
        o = put_meta(buf, len, o, prefix, d->name, d->help, d->kind, fmt);
        for (size_t i = 0, j; i < n; i = j) {
            for (j = i + 1; j < n && cmp_series(&all[i], &all[j], &nl) == 0; j++)
                ;
            o = put_series(buf, len, o, prefix, d, all + i, j - i, fmt);
        }
    }
    if (any) {
        static const char *const metric_label[] = {"metric"};
        const rm_metric_def_t fd = {RM_METRICS_FOLDED_NAME,
                                    "Recordings whose label set was new when the metric "
                                    "already had metrics.maxSeriesPerMetric series: counted in its overflow "
                                    "series (every label \"overflow\") instead.",
                                    RM_METRIC_COUNTER,
                                    metric_label,
                                    1,
                                    NULL,
                                    0};
        char full[256];
        o = put_meta(buf, len, o, "", fd.name, fd.help, fd.kind, fmt);
        for (size_t f = 0; f < m->num_defs; f++) {
            const char *v[1] = {full};
            snprintf(full, sizeof(full), "%s%s", prefix, m->defs[f].name);
            o = put_sample_name(buf, len, o, "", fd.name, "", &fd, v, NULL);
            o = rm_textf(buf, len, o, " %llu\n", (unsigned long long)folded[f]);
        }
    }
Exit:
    for (unsigned s = m->num_shards; s-- > 0;)
        pthread_mutex_unlock(&m->shards[s].mutex);
    free(all);
    free(folded);
    return o;
}

/* ------------------------------------------------------------------ negotiation */

/* The q of one media range's parameters ("; q=0.5; version=..."): 1 when absent, 0 when unreadable. */
static double range_q(const char *params, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (params[i] != ';')
            continue;
        size_t k = i + 1;
        while (k < n && (params[k] == ' ' || params[k] == '\t'))
            k++;
        if (k + 1 < n && (params[k] == 'q' || params[k] == 'Q') && params[k + 1] == '=') {
            char tmp[16];
            size_t l = 0;
            for (k += 2; k < n && l < sizeof(tmp) - 1 && params[k] != ';' && params[k] != ' '; k++)
                tmp[l++] = params[k];
            tmp[l] = '\0';
            char *end;
            double q = strtod(tmp, &end);
            return end != tmp && *end == '\0' && q >= 0 && q <= 1 ? q : 0;
        }
    }
    return 1;
}

rm_metrics_format_t rm_metrics_negotiate(const char *accept)
{
    double om = 0, text = 0;
    if (accept == NULL)
        return RM_METRICS_PROMETHEUS;
    for (const char *p = accept; *p != '\0';) {
        size_t n = strcspn(p, ",");
        const char *r = p;
        while (r < p + n && (*r == ' ' || *r == '\t'))
            r++;
        size_t tl = strcspn(r, ";, \t");
        if (tl > (size_t)(p + n - r))
            tl = (size_t)(p + n - r);
        double q = range_q(r + tl, (size_t)(p + n - (r + tl)));
        if (tl == 28 && strncasecmp(r, "application/openmetrics-text", 28) == 0) {
            if (q > om)
                om = q;
        } else if ((tl == 10 && strncasecmp(r, "text/plain", 10) == 0) ||
                   (tl == 6 && strncasecmp(r, "text/*", 6) == 0) || (tl == 3 && strncmp(r, "*/*", 3) == 0)) {
            if (q > text)
                text = q;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return om > 0 && om >= text ? RM_METRICS_OPENMETRICS : RM_METRICS_PROMETHEUS;
}

const char *rm_metrics_content_type(rm_metrics_format_t fmt)
{
    return fmt == RM_METRICS_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                         : "text/plain; version=0.0.4; charset=utf-8";
}

/* ------------------------------------------------------------------ older text as OpenMetrics */

/* The type the text declares for `name` ("# TYPE name T"), or NULL; *tl its length. */
static const char *declared_type(const char *in, size_t n, const char *name, size_t nl, size_t *tl)
{
    for (const char *p = in; p < in + n;) {
        const char *e = memchr(p, '\n', (size_t)(in + n - p));
        size_t l = e != NULL ? (size_t)(e - p) : (size_t)(in + n - p);
        if (l > 7 + nl && memcmp(p, "# TYPE ", 7) == 0 && memcmp(p + 7, name, nl) == 0 && p[7 + nl] == ' ') {
            *tl = l - 8 - nl;
            return p + 8 + nl;
        }
        p += l + 1;
    }
    return NULL;
}

size_t rm_metrics_text_to_openmetrics(const char *in, size_t n, char *buf, size_t len, size_t o)
{
    for (const char *p = in; p < in + n;) {
        const char *e = memchr(p, '\n', (size_t)(in + n - p));
        size_t l = e != NULL ? (size_t)(e - p) : (size_t)(in + n - p);
        int help = l > 7 && memcmp(p, "# HELP ", 7) == 0, type = l > 7 && memcmp(p, "# TYPE ", 7) == 0;
        if (help || type) {
            const char *name = p + 7, *rest;
            size_t nl = strcspn(name, " \n"), tl = 0;
            if (nl > l - 7)
                nl = l - 7;
            rest = name + nl < p + l ? name + nl + 1 : p + l;
            const char *t = declared_type(in, n, name, nl, &tl);
            int counter = t != NULL && tl == 7 && memcmp(t, "counter", 7) == 0;
            int total = nl > 6 && memcmp(name + nl - 6, "_total", 6) == 0;
            size_t shown = counter && total ? nl - 6 : nl;
            if (type) {
                const char *ty = t != NULL ? t : "unknown";
                size_t tyl = t != NULL ? tl : 7;
                if ((tyl == 7 && memcmp(ty, "untyped", 7) == 0) || (counter && !total)) {
                    ty = "unknown";
                    tyl = 7;
                }
                o = rm_textf(buf, len, o, "# TYPE %.*s %.*s\n", (int)shown, name, (int)tyl, ty);
            } else {
                /* the text escaped backslash and line feed already; OpenMetrics wants double quotes escaped too */
                o = rm_textf(buf, len, o, "# HELP %.*s ", (int)shown, name);
                for (const char *c = rest; c < p + l; c++)
                    o = *c == '"' ? rm_textf(buf, len, o, "\\\"") : rm_textf(buf, len, o, "%c", *c);
                o = rm_textf(buf, len, o, "\n");
            }
        } else if (l > 0 && p[0] != '#') {
            o = rm_textf(buf, len, o, "%.*s\n", (int)l, p);
        }
        p += l + 1;
    }
    return o;
}
