/* The fixed-bucket histogram (control_histogram.h). */
#include "control_histogram.h"

#include "ringmesh/textbuf.h"

static const double bounds[RM_CONTROL_HIST_NUM_BOUNDS] = RM_CONTROL_HIST_BOUNDS;

void rm_control_histogram_observe(rm_control_histogram_t *h, double seconds)
{
    size_t i = 0;

    if (!(seconds > 0)) /* also NaN */
        seconds = 0;
    while (i < RM_CONTROL_HIST_NUM_BOUNDS && seconds > bounds[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

size_t rm_control_histogram_render(char *buf, size_t len, size_t o, const char *name, const char *labels,
                                   const rm_control_histogram_t *h)
{
    const char *sep = labels[0] != '\0' ? "," : "";
    uint64_t cumulative = 0;

    for (size_t i = 0; i <= RM_CONTROL_HIST_NUM_BOUNDS; i++) {
        cumulative += h->buckets[i];
        if (i < RM_CONTROL_HIST_NUM_BOUNDS)
            o = rm_textf(buf, len, o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                         (unsigned long long)cumulative);
        else
            o = rm_textf(buf, len, o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                         (unsigned long long)cumulative);
    }
    if (labels[0] != '\0')
        o = rm_textf(buf, len, o, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels,
                     (unsigned long long)h->count);
    else
        o = rm_textf(buf, len, o, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
    return o;
}
