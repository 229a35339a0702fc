/* Shared between io_loop.c and its two backends; not part of the loop's contract. */
#ifndef RINGMESH_IO_LOOP_INTERNAL_H
#define RINGMESH_IO_LOOP_INTERNAL_H

#include "io_loop.h"

#include <liburing.h>

struct st_rm_loop_t {
    rm_io_backend_t backend;
    uint64_t now_ms;
    /* io_uring */
    struct io_uring ring;
    int ring_disabled; /* created with IORING_SETUP_R_DISABLED, not yet enabled by its thread */
    /* provided buffers for RM_IO_OP_RECV_POOLED: pool buffers, replaced as the kernel hands them out */
    struct io_uring_buf_ring *br;
    uint8_t **br_bufs; /* by buffer ID */
    unsigned br_count; /* buffer IDs in use: 0 .. br_count - 1 */
    int br_state;      /* 0 not set up yet, 1 ready, -1 unavailable (receives poll, then take a buffer) */
    /* epoll */
    int epfd;
    rm_io_op_t *done_head, *done_tail; /* completions waiting for their callbacks */
};

void rm__loop_update_now(rm_loop_t *loop);
/** A pooled receive made now, the socket being readable: rm_io_try_recv into a pool buffer taken for it. Returns
 *  bytes with op->buf set, or 0 / -errno (-EAGAIN: nothing there after all) with the buffer given back. */
int rm__recv_pooled_now(rm_io_op_t *op);

int rm__uring_init(rm_loop_t *loop, unsigned entries);
void rm__uring_dispose(rm_loop_t *loop);
int rm__uring_attach_thread(rm_loop_t *loop);
int rm__uring_submit(rm_loop_t *loop, rm_io_op_t *op);
void rm__uring_cancel(rm_loop_t *loop, rm_io_op_t *op);
int rm__uring_run_once(rm_loop_t *loop, int timeout_ms);

int rm__epoll_init(rm_loop_t *loop);
void rm__epoll_dispose(rm_loop_t *loop);
int rm__epoll_add(rm_loop_t *loop, rm_io_handle_t *h);
void rm__epoll_del(rm_loop_t *loop, rm_io_handle_t *h);
int rm__epoll_submit(rm_loop_t *loop, rm_io_op_t *op);
void rm__epoll_cancel(rm_loop_t *loop, rm_io_op_t *op);
int rm__epoll_run_once(rm_loop_t *loop, int timeout_ms);

#endif
