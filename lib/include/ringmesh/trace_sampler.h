/* The trace sampler: whether a span that starts is recorded and exported, as the OpenTelemetry SDK's built-in
 * samplers decide it (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG):
 *   always_on, always_off              every span / none;
 *   traceidratio                       a share of traces (the argument, 0..1), decided from the trace id alone, so
 *                                      that every proxy of a trace decides the same: the trace id's 56 low bits R
 *                                      against the threshold T = (1 - ratio) * 2^56, sampled when R >= T;
 *   parentbased_always_on,             a span with a parent follows the parent's sampled flag; a root span is
 *   parentbased_always_off,            decided by always_on, always_off, or traceidratio;
 *   parentbased_traceidratio           (the default, with the argument 1.0 when none is given).
 * An unknown sampler name or a ratio that is not a number in [0, 1] is reported and the default is used, as the
 * SDK's environment variable specification requires (configuration must not stop the proxy from starting). */
#ifndef RINGMESH_TRACE_SAMPLER_H
#define RINGMESH_TRACE_SAMPLER_H

#include <stdint.h>

typedef enum {
    RM_SAMPLER_ALWAYS_ON = 0,
    RM_SAMPLER_ALWAYS_OFF,
    RM_SAMPLER_TRACEIDRATIO,
} rm_sampler_root_t;

typedef struct st_rm_trace_sampler_t {
    rm_sampler_root_t root; /* how a span without a parent is decided */
    uint8_t parent_based;   /* a span with a parent follows it */
    double ratio;           /* traceidratio's argument */
    uint64_t threshold;     /* (1 - ratio) * 2^56, computed by rm_trace_sampler_set */
} rm_trace_sampler_t;

/** Sets `s` from the values of OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (either may be NULL or empty: the
 *  defaults). Returns 0; or -EINVAL after setting what could be read (an unknown name: the default sampler; a bad
 *  argument: 1.0), with *why saying what was wrong in words, for the caller's warning. */
int rm_trace_sampler_set(rm_trace_sampler_t *s, const char *name, const char *arg, const char **why);

/** The sampler's name, as OTEL_TRACES_SAMPLER spells it. */
const char *rm_trace_sampler_name(const rm_trace_sampler_t *s);

/** Decides a span of trace `trace_id`. `has_parent`: the span continues a context received; `parent_sampled`: that
 *  context's sampled flag. Returns 1 to record and export, 0 not to. */
int rm_trace_sampler_decide(const rm_trace_sampler_t *s, const uint8_t trace_id[16], int has_parent,
                            int parent_sampled);

#endif
