/* What the exporter's files share (trace_export.c: queue, thread, HTTP; trace_export_otlp.c: encoding, lists).
 * Unit tests include it to reach the encoder and the list parser. */
#ifndef RINGMESH_TRACE_EXPORT_INTERNAL_H
#define RINGMESH_TRACE_EXPORT_INTERNAL_H

#include "trace_export.h"

#include <stddef.h>
#include <stdint.h>

/** The instrumentation scope's version in exported spans. */
#define RM__TRACE_SCOPE_VERSION "0.1.0"

/** The resource's attributes (strings the caller owns). */
typedef struct st_rm__trace_resource_t {
    char **keys, **values;
    size_t num;
} rm__trace_resource_t;

/** Encodes spans[0, n) with resource `res` as one OTLP ExportTraceServiceRequest into a new buffer *out (free()
 *  it) of *len bytes. Returns 0 or -ENOMEM (then *out is NULL). */
int rm__trace_encode(const rm_span_t *spans, size_t n, const rm__trace_resource_t *res, uint8_t **out, size_t *len);

/** Takes one key and value of a list (both malloc'ed, percent-decoded; the callee owns them). */
typedef void (*rm__trace_kv_cb)(void *ctx, char *key, char *value);
/** Parses an OTEL_* list ("k=v,k2=v2", whitespace around keys and values dropped, values percent-decoded) calling
 *  `cb` per entry. Returns 0; -EINVAL when an entry is malformed (no '=' or an empty key: it is skipped, the others
 *  are taken, and *bad / *bad_len point at the first such entry in `s`); -ENOMEM. */
int rm__trace_kv_list_parse(const char *s, rm__trace_kv_cb cb, void *ctx, const char **bad, size_t *bad_len);

/** The value of a hex digit, or -1. */
int rm__trace_hexval(char c);

#endif
