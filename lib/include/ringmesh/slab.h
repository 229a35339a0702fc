/* Long-lived small objects kept apart from the heap that handshakes churn.
 *
 * A TLS handshake allocates and frees tens of kilobytes through malloc; the objects a connection keeps for its whole
 * life (the connection, its TLS session object, the peer's ID, the names it reports) would otherwise be placed
 * between those transient blocks, and once the transient ones are freed the pages stay resident because a few small
 * live objects pin each of them. The slab takes those objects out of malloc's heap: they come from chunks of
 * RM_SLAB_CHUNK bytes mapped for them alone, one size class per chunk, so that the heap's pages empty out when the
 * handshakes are over (malloc_trim gives them back) and the slab's pages are densely used.
 *
 * Objects of at most RM_SLAB_MAX bytes; sizes are rounded up to 16 bytes up to 512, to 64 above. Memory is returned
 * zeroed. The slab is one per process with a lock: objects are taken and given back once per connection (not per
 * request), and may be freed by a thread other than the one that took them (a handshake thread sets the peer's ID,
 * the worker frees it). A chunk that empties is unmapped unless it is the last one of its size class.
 *
 * In a build with AddressSanitizer, the slab is malloc and free, so that the sanitizer sees each object; under
 * valgrind, each object is reported to memcheck as a heap block (leaks and use after free are found as for
 * malloc's). */
#ifndef RINGMESH_SLAB_H
#define RINGMESH_SLAB_H

#include <stddef.h>

#define RM_SLAB_CHUNK ((size_t)64 * 1024)
#define RM_SLAB_MAX   ((size_t)4096)

/* RM_SLAB_IS_MALLOC is defined in a build with AddressSanitizer (gcc says so with __SANITIZE_ADDRESS__, clang with
 * __has_feature): the slab is then malloc and free. */
#if defined(__SANITIZE_ADDRESS__)
#define RM_SLAB_IS_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RM_SLAB_IS_MALLOC 1
#endif
#endif

/** Takes a zeroed object of `size` bytes (1 to RM_SLAB_MAX). NULL when `size` is out of range or no chunk can be
 *  mapped (out of memory). */
void *rm_slab_alloc(size_t size);
/** Gives back an object rm_slab_alloc returned, from any thread. NULL is fine. */
void rm_slab_free(void *p);
/** A NUL-terminated copy of the first `n` bytes of `s` (fewer when `s` ends before), on the slab. NULL when out of
 *  memory or when the copy would be longer than RM_SLAB_MAX - 1. */
char *rm_slab_strndup(const char *s, size_t n);

/** What the slab holds: bytes of objects given out (their rounded sizes), and bytes of chunks mapped. */
typedef struct st_rm_slab_stats_t {
    size_t in_use;
    size_t mapped;
} rm_slab_stats_t;
rm_slab_stats_t rm_slab_stats(void);

#endif
