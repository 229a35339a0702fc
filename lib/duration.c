#include "ringmesh/duration.h"

#include <string.h>

int rm_duration_parse_ms_max(const char *s, uint64_t max_ms, uint64_t *out_ms)
{
    uint64_t total = 0;
    const char *p = s;

    if (s == NULL || out_ms == NULL || *s == '\0')
        return -1;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    /* one or more <digits><unit> groups, as in Go's time.ParseDuration but without fractions: "1m30s" */
    while (*p != '\0') {
        uint64_t v = 0, unit;
        size_t digits = 0;
        for (; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits >= 12)
                return -1;
            v = v * 10 + (uint64_t)(*p - '0');
        }
        if (digits == 0)
            return -1;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60 * 1000;
            p++;
        } else if (*p == 'h') {
            unit = 3600 * 1000;
            p++;
        } else {
            return -1;
        }
        total += v * unit; /* v < 10^12 and unit <= 3.6e6: no 64-bit overflow before the check below */
        if (total > max_ms)
            return -1;
    }
    *out_ms = total;
    return 0;
}

int rm_duration_parse_ms(const char *s, uint32_t *out_ms)
{
    uint64_t v;

    if (out_ms == NULL || rm_duration_parse_ms_max(s, UINT32_MAX, &v) != 0)
        return -1;
    *out_ms = (uint32_t)v;
    return 0;
}
