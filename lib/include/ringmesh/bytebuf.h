/* A growable byte buffer.
 *
 * Invariants: bytes [0, len) of `base` are the content; `cap` bytes are allocated; base == NULL iff cap == 0.
 * The all-zero value is a valid empty buffer. Functions that grow it return -ENOMEM (and leave it unchanged)
 * when allocation fails. */
#ifndef RINGMESH_BYTEBUF_H
#define RINGMESH_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_rm_bytebuf_t {
    uint8_t *base;
    size_t len, cap;
} rm_bytebuf_t;

/** Makes room for `extra` more bytes past len. Returns 0 or -ENOMEM. */
int rm_bytebuf_reserve(rm_bytebuf_t *b, size_t extra);
/** Appends n bytes. Returns 0 or -ENOMEM. */
int rm_bytebuf_append(rm_bytebuf_t *b, const void *p, size_t n);
/** Drops the first n bytes (n <= len), moving the rest to the front. */
void rm_bytebuf_consume(rm_bytebuf_t *b, size_t n);
/** Frees the storage; the buffer is empty again. */
void rm_bytebuf_free(rm_bytebuf_t *b);

#endif
