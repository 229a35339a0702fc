/* The growable byte buffer's slow paths; the invariants are in ringmesh/bytebuf.h. */
#include "ringmesh/bytebuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define INITIAL_CAP 256

/* Moves the content to `cap` bytes. With `wipe` a new block is taken and the old one zeroed before it is freed:
 * realloc could leave a copy of a secret behind. */
static uint8_t *move_to(rm_bytebuf_t *b, size_t cap)
{
    uint8_t *p;

    if (!b->wipe)
        return realloc(b->base, cap);
    if ((p = malloc(cap)) == NULL)
        return NULL;
    if (b->base != NULL) {
        memcpy(p, b->base, b->len);
        explicit_bzero(b->base, b->cap);
        free(b->base);
    }
    return p;
}

int rm__bytebuf_grow(rm_bytebuf_t *b, size_t extra)
{
    size_t want, cap;
    uint8_t *p;

    if (b->failed)
        return -ENOMEM;
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX - b->len)
        goto Fail;
    want = b->len + extra;
    cap = b->cap != 0 ? b->cap : INITIAL_CAP;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    if ((p = move_to(b, cap)) == NULL)
        goto Fail;
    b->base = p;
    b->cap = cap;
    return 0;

Fail:
    b->failed = 1;
    return -ENOMEM;
}

int rm_bytebuf_appendf(rm_bytebuf_t *b, const char *fmt, ...)
{
    va_list ap;
    size_t room;
    int n;

    if (b->failed)
        return -ENOMEM;
    /* format straight into the free space; only when it does not fit, grow and format again */
    room = b->cap - b->len;
    va_start(ap, fmt);
    n = vsnprintf(room != 0 ? (char *)b->base + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return -EINVAL;
    }
    if ((size_t)n >= room) {
        if (rm__bytebuf_grow(b, (size_t)n + 1) != 0)
            return -ENOMEM;
        va_start(ap, fmt);
        vsnprintf((char *)b->base + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

int rm_bytebuf_terminate(rm_bytebuf_t *b)
{
    int ret;

    if ((ret = rm_bytebuf_reserve(b, 1)) != 0)
        return ret;
    b->base[b->len] = '\0';
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

uint8_t *rm_bytebuf_release(rm_bytebuf_t *b)
{
    uint8_t *p = b->base;

    if (b->failed) {
        rm_bytebuf_free(b);
        return NULL;
    }
    *b = (rm_bytebuf_t){.wipe = b->wipe};
    return p;
}

void rm_bytebuf_free(rm_bytebuf_t *b)
{
    if (b->wipe && b->base != NULL)
        explicit_bzero(b->base, b->cap);
    free(b->base);
    *b = (rm_bytebuf_t){.wipe = b->wipe};
}
