/* Durations as written in ringmesh's YAML and flags: "250ms", "5s", "2m", "1h", "1h30m" (Go's
 * time.ParseDuration without fractions or negative values). */
#ifndef RINGMESH_DURATION_H
#define RINGMESH_DURATION_H

#include <stdint.h>

/** Parses a duration (and plain "0") into milliseconds; at most UINT32_MAX ms (about 49 days).
 *  Returns 0 or -1. */
int rm_duration_parse_ms(const char *s, uint32_t *out_ms);

/** The same for longer durations: at most `max_ms` (at most about 3e16 ms). Returns 0 or -1. */
int rm_duration_parse_ms_max(const char *s, uint64_t max_ms, uint64_t *out_ms);

#endif
