/* Growable byte buffer: doubles its capacity, from 256 bytes, so appends are amortised O(1). */
#include "ringmesh/bytebuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int rm_bytebuf_reserve(rm_bytebuf_t *b, size_t extra)
{
    size_t want, cap;
    uint8_t *p;

    if (extra > SIZE_MAX - b->len)
        return -ENOMEM;
    want = b->len + extra;
    if (want <= b->cap)
        return 0;
    cap = b->cap != 0 ? b->cap : 256;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    if ((p = realloc(b->base, cap)) == NULL)
        return -ENOMEM;
    b->base = p;
    b->cap = cap;
    return 0;
}

int rm_bytebuf_append(rm_bytebuf_t *b, const void *p, size_t n)
{
    int ret;
    if (n == 0)
        return 0;
    if ((ret = rm_bytebuf_reserve(b, n)) != 0)
        return ret;
    memcpy(b->base + b->len, p, n);
    b->len += n;
    return 0;
}

void rm_bytebuf_consume(rm_bytebuf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
}

void rm_bytebuf_free(rm_bytebuf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}
