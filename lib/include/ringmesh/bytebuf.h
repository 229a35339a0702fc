/* The growable byte buffer: the one type every module that builds bytes of unknown length uses.
 *
 * Invariants:
 *  - bytes [0, len) of `base` are the content, and len <= cap;
 *  - `cap` bytes are allocated at `base`, and base == NULL iff cap == 0;
 *  - `failed` is sticky: once a growth fails (allocation, or a size past SIZE_MAX), every call that would grow the
 *    buffer does nothing and returns -ENOMEM, so a chain of appends is checked once, at its end. The content is
 *    what was appended before the failure. Only rm_bytebuf_free() clears it;
 *  - with `wipe` set (by the owner, before the first append) the buffer may hold a secret: storage it lets go of,
 *    when it grows and when it is freed, is zeroed first, and no copy is left behind by realloc;
 *  - the all-zero value is a valid empty buffer.
 * Appends are amortised O(1): the capacity doubles, from 256 bytes. The inline fast path of rm_bytebuf_reserve() and
 * rm_bytebuf_append() is one comparison and a memcpy when the bytes fit. */
#ifndef RINGMESH_BYTEBUF_H
#define RINGMESH_BYTEBUF_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct st_rm_bytebuf_t {
    uint8_t *base;
    size_t len, cap;
    uint8_t failed; /* sticky: a growth failed (see above) */
    uint8_t wipe;   /* set by the owner: zero storage before letting it go */
} rm_bytebuf_t;

/** Grows the buffer to hold `extra` more bytes past len, or sets `failed`. The slow path of rm_bytebuf_reserve(). */
int rm__bytebuf_grow(rm_bytebuf_t *b, size_t extra);

/** Makes room for `extra` more bytes past len (at base + len), without changing len. Returns 0, or -ENOMEM when
 *  the buffer has failed or fails now. */
static inline int rm_bytebuf_reserve(rm_bytebuf_t *b, size_t extra)
{
    if (__builtin_expect(!b->failed && extra <= b->cap - b->len, 1))
        return 0;
    return rm__bytebuf_grow(b, extra);
}

/** Appends n bytes (p may be NULL when n is 0). Returns 0, or -ENOMEM when the buffer has failed or fails now. */
static inline int rm_bytebuf_append(rm_bytebuf_t *b, const void *p, size_t n)
{
    int ret;
    if ((ret = rm_bytebuf_reserve(b, n)) != 0)
        return ret;
    if (n != 0) {
        // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): reserve() made room, so base != NULL (cap > 0)
        memcpy(b->base + b->len, p, n);
        b->len += n;
    }
    return 0;
}

/** Appends one byte. Returns 0 or -ENOMEM, as rm_bytebuf_append(). */
static inline int rm_bytebuf_append_byte(rm_bytebuf_t *b, uint8_t c)
{
    return rm_bytebuf_append(b, &c, 1);
}

/** Appends printf-style text, and keeps a NUL at base[len] (not counted in len). Returns 0, -ENOMEM (the buffer has
 *  failed), or -EINVAL when the format fails (the buffer is then marked failed too). */
int rm_bytebuf_appendf(rm_bytebuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Puts a NUL at base[len] without counting it, so base can be read as a C string. Returns 0 or -ENOMEM. */
int rm_bytebuf_terminate(rm_bytebuf_t *b);

/** The content as a C string, for a buffer kept NUL-terminated by rm_bytebuf_appendf() or rm_bytebuf_terminate():
 *  "" while nothing was ever allocated. */
static inline const char *rm_bytebuf_text(const rm_bytebuf_t *b)
{
    return b->base != NULL ? (const char *)b->base : "";
}

/** Drops the first n bytes (n > len drops all), moving the rest to the front. Capacity and `failed` are kept. */
void rm_bytebuf_consume(rm_bytebuf_t *b, size_t n);

/** Hands the content over: returns base (the caller frees it; NULL when nothing was ever allocated) and leaves the
 *  buffer the zero value. Returns NULL, and frees the storage, when the buffer has failed. */
uint8_t *rm_bytebuf_release(rm_bytebuf_t *b);

/** Frees the storage (zeroed first when `wipe`); the buffer is the zero value again (`wipe` is kept). */
void rm_bytebuf_free(rm_bytebuf_t *b);

#endif
