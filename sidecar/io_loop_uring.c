/* io_uring backend: every op is one SQE whose user_data is the op; cancel SQEs carry user_data 0. */
#include "io_loop_internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CANCEL_TAG 0

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
    int ret;
    if (!loop->ring_disabled)
        return 0;
    /* liburing 2.3 declares io_uring_enable_rings() but does not export it: register directly */
    if ((ret = (int)syscall(__NR_io_uring_register, loop->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0)) != 0)
        return -errno;
    loop->ring_disabled = 0;
    return 0;
}

void rm__uring_dispose(rm_loop_t *loop)
{
    io_uring_queue_exit(&loop->ring);
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
        io_uring_prep_connect(sqe, fd, (struct sockaddr *)&op->addr, op->addrlen);
        break;
    case RM_IO_OP_RECV:
        io_uring_prep_recv(sqe, fd, op->buf, op->len, 0);
        break;
    case RM_IO_OP_WAIT_READABLE:
        io_uring_prep_poll_add(sqe, fd, POLLIN | POLLRDHUP);
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
        op->state = 0;
        op->cb(op, res);
        ran++;
    }
    io_uring_cq_advance(&loop->ring, seen);
    return ran;
}
