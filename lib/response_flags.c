/* Response flags (ringmesh/response_flags.h). */
#include "ringmesh/response_flags.h"

#include <string.h>

static const char *const names[] = {"UH", "UF", "UT", "URX", "UO", "NR", "UC", "DC", "LR"};

size_t rm_response_flags_format(unsigned flags, char *buf, size_t len)
{
    size_t o = 0;

    if (len == 0)
        return 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n;
        if ((flags & (1u << i)) == 0)
            continue;
        n = strlen(names[i]);
        if (o + (o > 0) + n + 1 > len)
            break;
        if (o > 0)
            buf[o++] = ',';
        memcpy(buf + o, names[i], n);
        o += n;
        buf[o] = '\0';
    }
    if (o == 0 && len >= 2) {
        buf[0] = '-';
        buf[1] = '\0';
        o = 1;
    }
    return o;
}

int rm_response_flags_status(unsigned flags)
{
    if (flags & RM_RF_NR)
        return 404;
    if (flags & RM_RF_UT)
        return 504;
    if (flags & (RM_RF_UH | RM_RF_UF | RM_RF_UO | RM_RF_UC | RM_RF_URX))
        return 503;
    return 0;
}

int rm_response_flags_grpc_status(unsigned flags)
{
    switch (rm_response_flags_status(flags)) {
    case 404:
        return 12;
    case 504:
        return 4;
    case 503:
        return 14;
    default:
        return 0;
    }
}
