/* Per-thread pool of I/O buffers in two sizes: RM_BUF_SIZE, big enough for one whole TLS record, for everything by
 * default, and RM_BUF_LARGE_SIZE for a stream whose source keeps more waiting than a small buffer holds (a bulk
 * transfer), so that it moves in fewer, larger system calls and records go out many to a send.
 *
 * A proxied connection holds buffers only while they hold bytes: an idle keep-alive connection holds none, so
 * memory follows the data in flight, not the number of open connections. Each thread (one event loop) has its own
 * free lists, so taking and returning a buffer is a pointer swap with no lock. Up to RM_BUF_IDLE_MAX idle small
 * buffers and RM_BUF_LARGE_IDLE_MAX idle large ones are kept per thread; more are freed. A thread's idle buffers
 * are freed when the thread ends (buffers it lent out and that were not returned stay with whoever holds them).
 *
 * rm_buf_get and rm_buf_get_large return NULL only when malloc fails; callers then end the connection that needed
 * it. rm_buf_put takes either kind back. */
#ifndef RINGMESH_BUFFER_POOL_H
#define RINGMESH_BUFFER_POOL_H

#include <stddef.h>
#include <stdint.h>

#define RM_BUF_SIZE           (16384 + 512) /* one TLS 1.3 record (2^14 + 256 + 5) with room to spare */
#define RM_BUF_LARGE_SIZE     (256 * 1024)  /* fifteen full records, or 256 KiB of plaintext */
#define RM_BUF_IDLE_MAX       64
#define RM_BUF_LARGE_IDLE_MAX 8 /* 2 MiB */

/** Takes a buffer of RM_BUF_SIZE bytes from this thread's pool. NULL when out of memory. */
uint8_t *rm_buf_get(void);
/** Takes a buffer of RM_BUF_LARGE_SIZE bytes from this thread's pool. NULL when out of memory. */
uint8_t *rm_buf_get_large(void);
/** Returns a buffer of either size to this thread's pool. NULL is fine. */
void rm_buf_put(uint8_t *buf);
/** A buffer's size: RM_BUF_SIZE or RM_BUF_LARGE_SIZE. */
size_t rm_buf_size(const uint8_t *buf);
/** Frees a buffer without returning it to a pool (from a thread other than the one whose pool lent it, as that
 *  thread ends). NULL is fine. */
void rm_buf_free(uint8_t *buf);

/** Frees every idle buffer of this thread's pool (an event loop with nothing open calls this). */
void rm_buf_trim(void);

/** Buffers this thread has taken and not returned, and buffers idle in its pool, of each size. */
typedef struct st_rm_buf_stats_t {
    size_t in_use, idle;
    size_t large_in_use, large_idle;
} rm_buf_stats_t;
rm_buf_stats_t rm_buf_stats(void);

#endif
