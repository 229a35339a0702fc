/* The proxy's event loop: a completion API over two backends, io_uring (liburing) and epoll.
 *
 * Every operation is submitted on a handle (one per socket) with an op object embedded in its owner; when it
 * finishes, op->cb(op, res) runs on the loop's thread with res as an io_uring completion would give it: bytes or
 * a new fd on success, negative errno on failure, -ECANCELED after rm_io_cancel().
 *
 * Contract (as libuv's): if a submit function returns nonzero the callback is never called; otherwise it is called
 * exactly once, never from inside the submit call. An op object is busy from submit to its callback. A handle
 * has at most one read-side op (accept, recv, read) and one write-side op (connect, send) in flight. Buffers
 * must stay valid and unmoved until the callback. The owner recovers itself from the op with container_of. */
#ifndef RINGMESH_IO_LOOP_H
#define RINGMESH_IO_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define rm_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct st_rm_loop_t rm_loop_t;
typedef struct st_rm_io_op_t rm_io_op_t;
typedef struct st_rm_io_handle_t rm_io_handle_t;
typedef void (*rm_io_cb_t)(rm_io_op_t *op, int res);

typedef enum { RM_IO_BACKEND_URING = 1, RM_IO_BACKEND_EPOLL = 2 } rm_io_backend_t;

typedef enum {
    RM_IO_OP_ACCEPT = 1,
    RM_IO_OP_CONNECT,
    RM_IO_OP_RECV,
    RM_IO_OP_SEND,
    RM_IO_OP_READ,
    RM_IO_OP_WAIT_READABLE,
    RM_IO_OP_RECV_POOLED,
} rm_io_op_kind_t;

struct st_rm_io_op_t {
    rm_io_cb_t cb;
    /* private to the loop */
    rm_io_handle_t *h;
    void *buf;
    size_t len;
    const struct sockaddr *addr; /* connect target: the caller's, kept valid until the completion (not copied: an
                                  * address in every op of every side would cost 128 bytes each) */
    socklen_t addrlen;
    int res;
    uint8_t kind;
    uint8_t state; /* 0 idle, 1 in flight, 2 parked (epoll), 3 completed and queued */
    uint8_t cancelled;
    uint8_t polling;  /* io_uring, RECV_POOLED without a provided buffer: waiting for readability first */
    rm_io_op_t *next; /* completion queue (epoll) */
};

struct st_rm_io_handle_t {
    int fd;
    /* private to the loop */
    rm_io_op_t *rd, *wr; /* parked ops (epoll) */
    uint8_t registered;
    uint8_t readable; /* epoll: a read edge arrived since the socket was last seen empty */
};

/** Creates a loop on the given backend. Returns 0 or negative errno (io_uring refused by seccomp or a sysctl:
 *  -EPERM, -ENOSYS; the caller falls back to epoll). `entries` sizes the ring (ignored by epoll). */
int rm_loop_new(rm_loop_t **out, rm_io_backend_t backend, unsigned entries);
void rm_loop_free(rm_loop_t *loop);
/** Makes the calling thread the loop's owner; call once from that thread before submitting anything (io_uring
 *  rings are bound to one submitting task). Returns 0 or negative errno. */
int rm_loop_attach_thread(rm_loop_t *loop);
rm_io_backend_t rm_loop_backend(const rm_loop_t *loop);
const char *rm_loop_backend_name(rm_io_backend_t b);

/** Attaches an open nonblocking socket (or eventfd) to the loop. Returns 0 or negative errno. */
int rm_loop_add(rm_loop_t *loop, rm_io_handle_t *h, int fd);
/** Detaches a handle; call before closing its fd, after every op on it has completed. */
void rm_loop_del(rm_loop_t *loop, rm_io_handle_t *h);

/** Submit functions: 0 on success, negative errno when the op could not be submitted (callback not called). */
int rm_io_accept(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, rm_io_cb_t cb);
/** Connects to `sa`, which must stay valid and unchanged until the callback runs (it is not copied). */
int rm_io_connect(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, const struct sockaddr *sa, socklen_t len,
                  rm_io_cb_t cb);
int rm_io_recv(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, void *buf, size_t len, rm_io_cb_t cb);
int rm_io_send(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, const void *buf, size_t len, rm_io_cb_t cb);
/** Completes (res 0) once the socket has something to read: data, EOF or an error. Holds no buffer while it waits,
 *  so an idle connection costs no memory; follow it with rm_io_try_recv. A read-side op. */
int rm_io_wait_readable(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, rm_io_cb_t cb);
/** Receives at most `len` bytes (up to RM_BUF_SIZE) into a pool buffer (ringmesh/buffer_pool.h) taken only when
 *  data arrives (meant for a socket last seen empty: io_uring waits for readability before it tries), so that a waiting
 * receive holds no memory and costs no extra system call: on res > 0, op->buf is that buffer, the callback's from then
 * on (give it back with rm_buf_put, or keep it); with res <= 0 there is none. io_uring picks the buffer from a ring of
 * provided buffers (one per loop); epoll receives when the socket is readable. A read-side op. */
int rm_io_recv_pooled(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, size_t len, rm_io_cb_t cb);
/** Receives now, without waiting: bytes (0 at EOF) or negative errno, -EAGAIN when nothing is there. Only when no
 *  read-side op is in flight on the handle. */
int rm_io_try_recv(rm_loop_t *loop, rm_io_handle_t *h, void *buf, size_t len);
int rm_io_read(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, void *buf, size_t len, rm_io_cb_t cb);
/** Asks for an in-flight op to finish early; its callback then runs with -ECANCELED (or its real result if it had
 *  already finished). Does nothing for an idle op. */
void rm_io_cancel(rm_loop_t *loop, rm_io_op_t *op);
/** Returns nonzero while the op is submitted and its callback has not run yet. */
static inline int rm_io_busy(const rm_io_op_t *op)
{
    return op->state != 0;
}

/** Runs one iteration: submits what is queued, waits up to `timeout_ms` (-1 = forever) for completions and runs
 *  their callbacks. Returns the number of callbacks run, or negative errno on a loop failure. */
int rm_loop_run_once(rm_loop_t *loop, int timeout_ms);

/** The loop's cached monotonic clock in milliseconds, refreshed once per iteration. */
uint64_t rm_loop_now_ms(const rm_loop_t *loop);

#endif
