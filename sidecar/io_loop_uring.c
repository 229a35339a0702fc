/* io_uring backend: every op is one SQE whose user_data is the op; cancel SQEs carry user_data 0. */
#include "io_loop_internal.h"
#include "ringmesh/buffer_pool.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CANCEL_TAG 0

/* RM_IO_OP_RECV_POOLED: receives name a group of provided buffers instead of a buffer, and the kernel takes one
 * when data arrives (IOSQE_BUFFER_SELECT), so a connection waiting for its peer holds no memory, and the data comes
 * in the completion with no receive call of ours. The ring holds pool buffers; each one handed out becomes the
 * caller's and its slot gets a fresh one. The ring starts with BR_STEP buffers, so an idle proxy holds few, and
 * gets BR_STEP more each time it runs dry, up to BR_ENTRIES. When it is empty (-ENOBUFS) or the kernel has none
 * (before 5.19), the receive waits for readability and then takes a buffer from the pool itself. */
#define BR_ENTRIES 32 /* a power of two */
#define BR_STEP    8
#define BR_GROUP   1

int rm__uring_init(rm_loop_t *loop, unsigned entries)
{
    struct io_uring_params p;
    int ret;

    memset(&p, 0, sizeof(p));
    /* One thread submits and reaps; completions are run when we enter the kernel, not by IPIs. The ring starts
     * disabled so that the worker thread that will own it can enable it (SINGLE_ISSUER binds the ring to the task
     * that enables it, not to the one that created it). */
    p.flags =
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
    ret = io_uring_queue_init_params(entries, &loop->ring, &p);
    if (ret == -EINVAL) {
        /* older kernels: plain setup, usable from any thread */
        memset(&p, 0, sizeof(p));
        ret = io_uring_queue_init_params(entries, &loop->ring, &p);
    } else if (ret == 0) {
        loop->ring_disabled = 1;
    }
    if (ret != 0)
        return ret;
    if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&loop->ring);
        return -ENOSYS;
    }
    return 0;
}

int rm__uring_attach_thread(rm_loop_t *loop)
{
    if (!loop->ring_disabled)
        return 0;
    /* liburing 2.3 declares io_uring_enable_rings() but does not export it: register directly */
    if (syscall(__NR_io_uring_register, loop->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) != 0)
        return -errno;
    loop->ring_disabled = 0;
    return 0;
}

static void br_free(rm_loop_t *loop)
{
    if (loop->br_bufs != NULL) {
        for (unsigned i = 0; i < BR_ENTRIES; i++)
            rm_buf_free(loop->br_bufs[i]); /* maybe not on the loop's thread, whose pool they came from */
        free(loop->br_bufs);
    }
    free(loop->br);
    loop->br = NULL;
    loop->br_bufs = NULL;
}

/* Gives the ring up to BR_STEP more buffers (IDs br_count on), while it has room. */
static void br_grow(rm_loop_t *loop)
{
    unsigned n = 0;
    while (n < BR_STEP && loop->br_count < BR_ENTRIES) {
        uint8_t *b = rm_buf_get();
        if (b == NULL)
            break;
        loop->br_bufs[loop->br_count] = b;
        io_uring_buf_ring_add(loop->br, b, RM_BUF_SIZE, (unsigned short)loop->br_count,
                              io_uring_buf_ring_mask(BR_ENTRIES), (int)n);
        loop->br_count++;
        n++;
    }
    if (n > 0)
        io_uring_buf_ring_advance(loop->br, (int)n);
}

/* Registers the ring of provided buffers, on the loop's thread (with SINGLE_ISSUER only it may register). */
static void br_setup(rm_loop_t *loop)
{
    struct io_uring_buf_reg reg;
    void *mem;

    loop->br_state = -1;
    if (posix_memalign(&mem, 4096, BR_ENTRIES * sizeof(struct io_uring_buf)) != 0)
        return;
    memset(mem, 0, BR_ENTRIES * sizeof(struct io_uring_buf));
    loop->br = mem;
    if ((loop->br_bufs = calloc(BR_ENTRIES, sizeof(*loop->br_bufs))) == NULL)
        goto Fail;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uintptr_t)mem;
    reg.ring_entries = BR_ENTRIES;
    reg.bgid = BR_GROUP;
    if (io_uring_register_buf_ring(&loop->ring, &reg, 0) != 0)
        goto Fail;
    io_uring_buf_ring_init(loop->br);
    loop->br_state = 1;
    br_grow(loop);
    return;
Fail:
    br_free(loop);
}

/* The buffer the kernel took for a completion, now the caller's; its slot gets a fresh one from the pool (the pool's
 * count of buffers in use covers the ring's: they are taken with rm_buf_get, and callers return them with
 * rm_buf_put). When none can be had, the slot stays empty and the ring has one buffer fewer. */
static uint8_t *br_take(rm_loop_t *loop, unsigned bid)
{
    uint8_t *b = loop->br_bufs[bid], *fresh = rm_buf_get();
    loop->br_bufs[bid] = fresh;
    if (fresh != NULL) {
        io_uring_buf_ring_add(loop->br, fresh, RM_BUF_SIZE, (unsigned short)bid, io_uring_buf_ring_mask(BR_ENTRIES), 0);
        io_uring_buf_ring_advance(loop->br, 1);
    }
    return b;
}

void rm__uring_dispose(rm_loop_t *loop)
{
    io_uring_queue_exit(&loop->ring);
    br_free(loop);
}

static struct io_uring_sqe *get_sqe(rm_loop_t *loop)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
    if (sqe == NULL) {
        /* SQ full: hand what we have to the kernel and try once more */
        io_uring_submit(&loop->ring);
        sqe = io_uring_get_sqe(&loop->ring);
    }
    return sqe;
}

int rm__uring_submit(rm_loop_t *loop, rm_io_op_t *op)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    int fd = op->h->fd;

    if (sqe == NULL)
        return -EAGAIN;
    switch (op->kind) {
    case RM_IO_OP_ACCEPT:
        io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case RM_IO_OP_CONNECT:
        io_uring_prep_connect(sqe, fd, op->addr, op->addrlen);
        break;
    case RM_IO_OP_RECV:
        io_uring_prep_recv(sqe, fd, op->buf, op->len, 0);
        break;
    case RM_IO_OP_WAIT_READABLE:
        io_uring_prep_poll_add(sqe, fd, POLLIN | POLLRDHUP);
        break;
    case RM_IO_OP_RECV_POOLED:
        if (loop->br_state == 0)
            br_setup(loop);
        if (loop->br_state < 0 || op->polling) {
            op->polling = 1;
            io_uring_prep_poll_add(sqe, fd, POLLIN | POLLRDHUP);
            break;
        }
        io_uring_prep_recv(sqe, fd, NULL, op->len, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BR_GROUP;
        /* a pooled receive is what a side submits when its socket was last seen empty: arm the poll without trying
         * the receive first (same kernels as provided-buffer rings, 5.19) */
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
        break;
    case RM_IO_OP_SEND:
        io_uring_prep_send(sqe, fd, op->buf, op->len, MSG_NOSIGNAL);
        break;
    case RM_IO_OP_READ:
        io_uring_prep_read(sqe, fd, op->buf, (unsigned)op->len, 0);
        break;
    default:
        return -EINVAL;
    }
    io_uring_sqe_set_data(sqe, op);
    op->state = 1;
    return 0;
}

void rm__uring_cancel(rm_loop_t *loop, rm_io_op_t *op)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (sqe == NULL)
        return; /* the op still completes on its own once its fd is shut down */
    io_uring_prep_cancel(sqe, op, 0);
    io_uring_sqe_set_data64(sqe, CANCEL_TAG);
}

/* A pooled receive's completion: its buffer, or the receive made now after readability. Returns nonzero when the op
 * was submitted again instead (the ring was empty, or nothing was there after all). */
static int pooled_result(rm_loop_t *loop, rm_io_op_t *op, struct io_uring_cqe *cqe, int *res)
{
    op->buf = NULL;
    if (!op->polling) {
        if (*res == -ENOBUFS && !op->cancelled) {
            br_grow(loop);
            op->polling = 1; /* the ring was empty: wait for readability, then take a buffer from the pool */
            return rm__uring_submit(loop, op) == 0;
        }
        if (cqe->flags & IORING_CQE_F_BUFFER) {
            uint8_t *b = br_take(loop, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
            if (*res > 0)
                op->buf = b;
            else
                rm_buf_put(b);
        }
        return 0;
    }
    if (*res < 0)
        return 0; /* the poll failed or was cancelled */
    *res = rm__recv_pooled_now(op);
    if (*res == -EAGAIN && !op->cancelled)
        return rm__uring_submit(loop, op) == 0; /* a spurious wake-up: wait again */
    return 0;
}

int rm__uring_run_once(rm_loop_t *loop, int timeout_ms)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;
    unsigned head, seen = 0;
    int ret, ran = 0;

    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
        ret = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, &ts, NULL);
    } else {
        ret = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, NULL, NULL);
    }
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
        return ret;
    rm__loop_update_now(loop);

    /* Callbacks may queue new SQEs but never reap, so walking the CQ in place is safe. */
    io_uring_for_each_cqe(&loop->ring, head, cqe)
    {
        rm_io_op_t *op = io_uring_cqe_get_data(cqe);
        seen++;
        if (op == NULL)
            continue;
        int res = cqe->res;
        if (op->kind == RM_IO_OP_WAIT_READABLE && res > 0)
            res = 0; /* the poll mask: readable, at EOF or in error; the receive that follows tells which */
        if (op->kind == RM_IO_OP_RECV_POOLED && pooled_result(loop, op, cqe, &res) != 0)
            continue; /* submitted again */
        op->state = 0;
        op->cb(op, res);
        ran++;
    }
    io_uring_cq_advance(&loop->ring, seen);
    return ran;
}
