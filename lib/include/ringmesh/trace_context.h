/* Trace context: which trace and span a request belongs to, read from and written to HTTP header fields.
 *
 * Formats read and written:
 *   W3C Trace Context level 1   `traceparent: 00-<trace id, 32 hex>-<parent id, 16 hex>-<flags, 2 hex>` (lower-case
 *                               hex only; all-zero ids are invalid; version ff is invalid; a higher version is read
 *                               by its first 55 characters when what follows them starts with '-'), and
 *                               `tracestate` (comma-separated key=value members, at most 32, kept as received).
 *   B3 multi-header             `x-b3-traceid` (16 or 32 hex), `x-b3-spanid` (16 hex), `x-b3-parentspanid`,
 *                               `x-b3-sampled` (1, 0, and the older true, false), `x-b3-flags` (1: debug, sampled).
 *                               Hex is read in either case, as B3's own libraries do.
 *   B3 single header            `b3: <trace id>-<span id>[-<1|0|d>[-<parent span id>]]`, or only `b3: 0|1|d`.
 * Only the sampled flag (bit 0) of trace-flags has a meaning here; the other bits are not propagated (level 1).
 *
 * Nothing here allocates or takes a lock; ids come from rm_trace_random_ids, which refills a per-thread batch from
 * the OS's CSPRNG (getrandom) one system call per 128 ids. */
#ifndef RINGMESH_TRACE_CONTEXT_H
#define RINGMESH_TRACE_CONTEXT_H

#include "ringmesh/http_request.h"

#include <stddef.h>
#include <stdint.h>

#define RM_TRACE_FLAG_SAMPLED 0x01

/** Length of a formatted traceparent, without the NUL. */
#define RM_TRACEPARENT_LEN 55
/** tracestate: at most this many members and bytes are propagated (W3C: 32 members, 512 bytes kept at least). */
#define RM_TRACESTATE_MAX_MEMBERS 32
#define RM_TRACESTATE_MAX_LEN     512

/** One span's context: the trace, the span, the sampled flag. */
typedef struct st_rm_span_context_t {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags; /* RM_TRACE_FLAG_SAMPLED or 0 */
} rm_span_context_t;

/** Where an incoming context came from. */
typedef enum {
    RM_TRACE_FROM_NONE = 0, /* no usable context: a new trace starts */
    RM_TRACE_FROM_W3C,
    RM_TRACE_FROM_B3_MULTI,
    RM_TRACE_FROM_B3_SINGLE,
} rm_trace_source_t;

/** Whether the incoming context said if it is sampled. */
typedef enum {
    RM_TRACE_SAMPLING_DEFER = 0, /* B3 without a sampling state: the receiver decides */
    RM_TRACE_SAMPLING_YES,
    RM_TRACE_SAMPLING_NO,
} rm_trace_sampling_t;

/** What a request's header fields say of its trace (rm_trace_extract). */
typedef struct st_rm_trace_incoming_t {
    rm_trace_source_t source;
    rm_span_context_t parent; /* the caller's span (valid when source is not NONE) */
    rm_trace_sampling_t sampling;
    uint8_t b3_debug;       /* B3 debug flag (x-b3-flags: 1, or b3 sampling state d): sampled, and forwarded */
    uint8_t b3_trace_id_64; /* B3 trace id was 64-bit (the trace id's first 8 bytes are zero) */
    uint8_t has_b3_multi;   /* x-b3-* fields were present (whether or not they were read) */
    uint8_t has_b3_single;  /* a b3 field was present */
    size_t tracestate_len;  /* W3C only: the valid tracestate, joined and trimmed, in tracestate[] */
    char tracestate[RM_TRACESTATE_MAX_LEN + 1];
} rm_trace_incoming_t;

/** Parses one traceparent value. Returns 0 and fills `out` (flags: the sampled bit only), or -EINVAL. */
int rm_traceparent_parse(const char *s, size_t len, rm_span_context_t *out);
/** Writes "00-<trace>-<span>-<flags>" and a NUL into out[RM_TRACEPARENT_LEN + 1]. */
void rm_traceparent_format(const rm_span_context_t *ctx, char *out);

/** Appends the tracestate value s[0, len) (one header field; call again for the next field of the same name) to
 *  the list in out[0, *out_len) (capacity RM_TRACESTATE_MAX_LEN + 1), validated member by member, empty members and
 *  optional whitespace dropped, *members counting. Returns 0, or -EINVAL when a member is malformed, a key repeats,
 *  or there are more than 32 members: the whole tracestate must then be dropped. Members past 512 bytes are dropped
 *  from the end (members longer than 128 bytes first), as W3C allows. */
int rm_tracestate_append(char *out, size_t *out_len, size_t *members, const char *s, size_t len);

/** Parses x-b3-traceid (16 or 32 hex; 16 is put in the last 8 bytes, *is_64 set). Returns 0 or -EINVAL. */
int rm_b3_trace_id_parse(const char *s, size_t len, uint8_t out[16], uint8_t *is_64);
/** Parses a 16-hex B3 span id (not all zero). Returns 0 or -EINVAL. */
int rm_b3_span_id_parse(const char *s, size_t len, uint8_t out[8]);
/** Parses the value of a single `b3` header into `in` (source, parent, sampling, debug, b3_trace_id_64). A value
 *  that is only a sampling state leaves source NONE with the sampling set. Returns 0 or -EINVAL. */
int rm_b3_single_parse(const char *s, size_t len, rm_trace_incoming_t *in);

/** Reads a request's trace context: W3C traceparent (and its tracestate) first; else B3 single; else B3 multi.
 *  A malformed context is ignored (a new trace starts), as the formats say. Never fails. */
void rm_trace_extract(const rm_http_header_t *headers, size_t num_headers, rm_trace_incoming_t *in);

/** Writes `n` bytes of lower-case hex of b[0, n) and a NUL into out[2n + 1]. */
void rm_trace_hex(const uint8_t *b, size_t n, char *out);

/** Fills a new trace id (16 bytes, not all zero) and/or span id (8 bytes, not zero) from the calling thread's
 *  batch of CSPRNG output (either may be NULL). Returns 0, or a negative errno when the OS has no randomness to
 *  give (getrandom failed): the ids are then not written. */
int rm_trace_random_ids(uint8_t *trace_id, uint8_t *span_id);

#endif
