#include "io_loop_internal.h"
#include "ringmesh/buffer_pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

void rm__loop_update_now(rm_loop_t *loop)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    loop->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t rm_loop_now_ms(const rm_loop_t *loop)
{
    return loop->now_ms;
}

const char *rm_loop_backend_name(rm_io_backend_t b)
{
    return b == RM_IO_BACKEND_URING ? "io_uring" : "epoll";
}

rm_io_backend_t rm_loop_backend(const rm_loop_t *loop)
{
    return loop->backend;
}

int rm_loop_new(rm_loop_t **out, rm_io_backend_t backend, unsigned entries)
{
    rm_loop_t *loop;
    int ret;

    if ((loop = calloc(1, sizeof(*loop))) == NULL)
        return -ENOMEM;
    loop->backend = backend;
    loop->epfd = -1;
    ret = backend == RM_IO_BACKEND_URING ? rm__uring_init(loop, entries) : rm__epoll_init(loop);
    if (ret != 0) {
        free(loop);
        return ret;
    }
    rm__loop_update_now(loop);
    *out = loop;
    return 0;
}

int rm_loop_attach_thread(rm_loop_t *loop)
{
    return loop->backend == RM_IO_BACKEND_URING ? rm__uring_attach_thread(loop) : 0;
}

void rm_loop_free(rm_loop_t *loop)
{
    if (loop == NULL)
        return;
    if (loop->backend == RM_IO_BACKEND_URING)
        rm__uring_dispose(loop);
    else
        rm__epoll_dispose(loop);
    free(loop);
}

int rm_loop_add(rm_loop_t *loop, rm_io_handle_t *h, int fd)
{
    h->fd = fd;
    h->rd = h->wr = NULL;
    h->registered = 0;
    h->readable = 0;
    if (loop->backend == RM_IO_BACKEND_EPOLL)
        return rm__epoll_add(loop, h);
    return 0;
}

void rm_loop_del(rm_loop_t *loop, rm_io_handle_t *h)
{
    if (loop->backend == RM_IO_BACKEND_EPOLL)
        rm__epoll_del(loop, h);
}

static int submit(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, rm_io_op_kind_t kind, void *buf, size_t len,
                  rm_io_cb_t cb)
{
    if (op->state != 0)
        return -EBUSY;
    op->cb = cb;
    op->h = h;
    op->kind = (uint8_t)kind;
    op->buf = buf;
    op->len = len;
    op->cancelled = 0;
    op->polling = 0;
    op->next = NULL;
    return loop->backend == RM_IO_BACKEND_URING ? rm__uring_submit(loop, op) : rm__epoll_submit(loop, op);
}

int rm_io_accept(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, rm_io_cb_t cb)
{
    return submit(loop, h, op, RM_IO_OP_ACCEPT, NULL, 0, cb);
}

int rm_io_connect(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, const struct sockaddr *sa, socklen_t len,
                  rm_io_cb_t cb)
{
    if (len > sizeof(struct sockaddr_storage) || op->state != 0)
        return -EINVAL;
    op->addr = sa;
    op->addrlen = len;
    return submit(loop, h, op, RM_IO_OP_CONNECT, NULL, 0, cb);
}

int rm_io_recv(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, void *buf, size_t len, rm_io_cb_t cb)
{
    return submit(loop, h, op, RM_IO_OP_RECV, buf, len, cb);
}

int rm_io_send(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, const void *buf, size_t len, rm_io_cb_t cb)
{
    return submit(loop, h, op, RM_IO_OP_SEND, (void *)buf, len, cb);
}

int rm_io_recv_pooled(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, size_t len, rm_io_cb_t cb)
{
    if (len == 0 || len > RM_BUF_SIZE)
        len = RM_BUF_SIZE;
    return submit(loop, h, op, RM_IO_OP_RECV_POOLED, NULL, len, cb);
}

int rm_io_wait_readable(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, rm_io_cb_t cb)
{
    return submit(loop, h, op, RM_IO_OP_WAIT_READABLE, NULL, 0, cb);
}

int rm_io_try_recv(rm_loop_t *loop, rm_io_handle_t *h, void *buf, size_t len)
{
    ssize_t r;
    do
        r = recv(h->fd, buf, len, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN)
            h->readable = 0; /* epoll: the next arrival raises a new edge */
        return -errno;
    }
    return (int)r;
}

int rm__recv_pooled_now(rm_io_op_t *op)
{
    uint8_t *b = rm_buf_get();
    int r;
    if (b == NULL)
        return -ENOMEM;
    if ((r = rm_io_try_recv(NULL, op->h, b, op->len)) > 0) {
        op->buf = b;
        return r;
    }
    rm_buf_put(b);
    return r;
}

int rm_io_read(rm_loop_t *loop, rm_io_handle_t *h, rm_io_op_t *op, void *buf, size_t len, rm_io_cb_t cb)
{
    return submit(loop, h, op, RM_IO_OP_READ, buf, len, cb);
}

void rm_io_cancel(rm_loop_t *loop, rm_io_op_t *op)
{
    if (op->state == 0 || op->cancelled)
        return;
    op->cancelled = 1;
    if (loop->backend == RM_IO_BACKEND_URING)
        rm__uring_cancel(loop, op);
    else
        rm__epoll_cancel(loop, op);
}

int rm_loop_run_once(rm_loop_t *loop, int timeout_ms)
{
    return loop->backend == RM_IO_BACKEND_URING ? rm__uring_run_once(loop, timeout_ms)
                                                : rm__epoll_run_once(loop, timeout_ms);
}
