/* Per-thread pool of I/O buffers, each big enough for one whole TLS record (RM_BUF_SIZE bytes).
 *
 * A proxied connection holds buffers only while they hold bytes: an idle keep-alive connection holds none, so
 * memory follows the data in flight, not the number of open connections. Each thread (one event loop) has its own
 * free list, so taking and returning a buffer is a pointer swap with no lock. Up to RM_BUF_IDLE_MAX idle buffers
 * are kept per thread; more are freed.
 *
 * rm_buf_get returns NULL only when malloc fails; callers then end the connection that needed it. */
#ifndef RINGMESH_BUFFER_POOL_H
#define RINGMESH_BUFFER_POOL_H

#include <stddef.h>
#include <stdint.h>

#define RM_BUF_SIZE     (16384 + 512) /* one TLS 1.3 record (2^14 + 256 + 5) with room to spare */
#define RM_BUF_IDLE_MAX 64

/** Takes a buffer of RM_BUF_SIZE bytes from this thread's pool. NULL when out of memory. */
uint8_t *rm_buf_get(void);
/** Returns a buffer to this thread's pool. NULL is fine. */
void rm_buf_put(uint8_t *buf);

/** Frees every idle buffer of this thread's pool (an event loop with nothing open calls this). */
void rm_buf_trim(void);

/** Buffers this thread has taken and not returned, and buffers idle in its pool. */
typedef struct st_rm_buf_stats_t {
    size_t in_use, idle;
} rm_buf_stats_t;
rm_buf_stats_t rm_buf_stats(void);

#endif
