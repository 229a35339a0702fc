#include "ringmesh/textbuf.h"

#include <stdarg.h>
#include <stdio.h>

size_t rm_textf(char *buf, size_t len, size_t o, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (o >= len)
        return o;
    va_start(ap, fmt);
    n = vsnprintf(buf + o, len - o, fmt, ap);
    va_end(ap);
    if (n < 0)
        return o;
    return o + (size_t)n < len ? o + (size_t)n : len;
}
