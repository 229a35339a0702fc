/* The OpenTelemetry SDK's built-in samplers (ringmesh/trace_sampler.h). */
#include "ringmesh/trace_sampler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TWO_POW_56 72057594037927936.0 /* 2^56 */

/* The threshold of a ratio: sampled when the trace id's 56 low bits are at least this. ratio 1 gives 0 (all),
 * ratio 0 gives 2^56 (none: R < 2^56 always). */
static uint64_t ratio_threshold(double ratio)
{
    double t = (1.0 - ratio) * TWO_POW_56;
    if (t <= 0)
        return 0;
    if (t >= TWO_POW_56)
        return (uint64_t)1 << 56;
    uint64_t u = (uint64_t)t; /* rounded up: a ratio never samples more than it says */
    return (double)u < t ? u + 1 : u;
}

static const struct {
    const char *name;
    rm_sampler_root_t root;
    uint8_t parent_based;
} samplers[] = {
    {"always_on", RM_SAMPLER_ALWAYS_ON, 0},
    {"always_off", RM_SAMPLER_ALWAYS_OFF, 0},
    {"traceidratio", RM_SAMPLER_TRACEIDRATIO, 0},
    {"parentbased_always_on", RM_SAMPLER_ALWAYS_ON, 1},
    {"parentbased_always_off", RM_SAMPLER_ALWAYS_OFF, 1},
    {"parentbased_traceidratio", RM_SAMPLER_TRACEIDRATIO, 1},
};

int rm_trace_sampler_set(rm_trace_sampler_t *s, const char *name, const char *arg, const char **why)
{
    int ret = 0;
    *why = NULL;
    /* the default: parentbased_traceidratio with ratio 1.0 */
    s->root = RM_SAMPLER_TRACEIDRATIO;
    s->parent_based = 1;
    s->ratio = 1.0;
    if (name != NULL && name[0] != '\0') {
        size_t i;
        for (i = 0; i < sizeof(samplers) / sizeof(samplers[0]); i++)
            if (strcmp(name, samplers[i].name) == 0)
                break;
        if (i == sizeof(samplers) / sizeof(samplers[0])) {
            *why = "unknown sampler (always_on, always_off, traceidratio, parentbased_always_on, "
                   "parentbased_always_off or parentbased_traceidratio): using parentbased_traceidratio";
            ret = -EINVAL;
        } else {
            s->root = samplers[i].root;
            s->parent_based = samplers[i].parent_based;
        }
    }
    /* the argument only means something to the ratio samplers; others ignore it, as the SDK does */
    if (s->root == RM_SAMPLER_TRACEIDRATIO && arg != NULL && arg[0] != '\0') {
        char *end;
        errno = 0;
        double r = strtod(arg, &end);
        if (errno != 0 || *end != '\0' || end == arg || !(r >= 0.0 && r <= 1.0)) {
            if (ret == 0)
                *why = "the ratio is not a number from 0 to 1: using 1.0";
            ret = -EINVAL;
        } else {
            s->ratio = r;
        }
    }
    s->threshold = ratio_threshold(s->ratio);
    return ret;
}

const char *rm_trace_sampler_name(const rm_trace_sampler_t *s)
{
    for (size_t i = 0; i < sizeof(samplers) / sizeof(samplers[0]); i++)
        if (samplers[i].root == s->root && samplers[i].parent_based == s->parent_based)
            return samplers[i].name;
    return "unknown";
}

int rm_trace_sampler_decide(const rm_trace_sampler_t *s, const uint8_t trace_id[16], int has_parent, int parent_sampled)
{
    if (s->parent_based && has_parent)
        return parent_sampled != 0;
    switch (s->root) {
    case RM_SAMPLER_ALWAYS_ON:
        return 1;
    case RM_SAMPLER_ALWAYS_OFF:
        return 0;
    case RM_SAMPLER_TRACEIDRATIO: {
        uint64_t r = 0;
        for (int i = 9; i < 16; i++) /* the 56 least significant bits: bytes 9..15, big-endian */
            r = r << 8 | trace_id[i];
        return r >= s->threshold;
    }
    }
    return 0;
}
