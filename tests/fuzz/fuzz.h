/* Shared by the fuzz targets (tests/fuzz/fuzz_<name>.c) and the corpus replayer (replay_main.c).
 *
 * A target defines LLVMFuzzerTestOneInput(), which libFuzzer calls with each generated input and replay_main.c
 * calls with each committed corpus file. A target reports a broken invariant with RM_FUZZ_CHECK, which aborts:
 * libFuzzer saves the input as a crash, and the replayer names the corpus file and fails its ctest test.
 * Sanitizer reports (AddressSanitizer, UndefinedBehaviorSanitizer) end the process the same way. */
#ifndef RINGMESH_FUZZ_H
#define RINGMESH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/** Runs one input through the target. Returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/** Aborts with the failed condition and its place when `cond` is false. Active in every build type (unlike
 *  assert(), which NDEBUG removes from release builds). */
#define RM_FUZZ_CHECK(cond)                                                                                            \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);                               \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/** Splits the rest of a fuzz input into chunks for a two-way filter: at data[*off] a header byte whose low bit is the
 *  direction (1: from the app) and whose upper seven bits are the length, 127 meaning that the next two bytes hold
 *  it (big-endian); the chunk follows, cut short at the end of the input. Advances *off past the chunk and returns 1,
 *  or returns 0 at the end of the input. */
static inline int rm_fuzz_next_chunk(const uint8_t *data, size_t size, size_t *off, int *from_app, size_t *at,
                                     size_t *len)
{
    size_t o = *off, n;

    if (o >= size)
        return 0;
    *from_app = data[o] & 1;
    n = data[o] >> 1;
    ++o;
    if (n == 127) {
        n = o + 2 <= size ? (size_t)data[o] << 8 | data[o + 1] : 0;
        o = o + 2 <= size ? o + 2 : size;
    }
    if (n > size - o)
        n = size - o;
    *at = o;
    *len = n;
    *off = o + n;
    return 1;
}

/** Reads every byte of p[0..n) and returns their sum, so that a pointer into freed or foreign memory handed to a
 *  callback trips AddressSanitizer. */
static inline unsigned rm_fuzz_touch(const char *p, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i != n; ++i)
        sum += (uint8_t)p[i];
    return sum;
}

/** Returns a malloc'd copy of data[0..size) followed by a NUL, for APIs that take C strings. The copy is exactly
 *  size + 1 bytes long, so reading past the NUL is a heap overflow under AddressSanitizer. Aborts when out of
 *  memory. */
static inline char *rm_fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    RM_FUZZ_CHECK(s != NULL);
    for (size_t i = 0; i != size; ++i)
        s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

/** Returns a malloc'd copy of data[0..size) of exactly `size` bytes (at least one byte is allocated, so the result
 *  is never NULL; the extra byte is never meant to be read). Aborts when out of memory. */
static inline uint8_t *rm_fuzz_memdup(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size != 0 ? size : 1);

    RM_FUZZ_CHECK(p != NULL);
    if (size == 0)
        p[0] = 0; /* initialised all the same, for compilers that cannot see it is never read */
    for (size_t i = 0; i != size; ++i)
        p[i] = data[i];
    return p;
}

#endif
