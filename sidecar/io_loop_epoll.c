/* epoll backend, for hosts where io_uring is refused (container runtimes' default seccomp profiles).
 *
 * Handles are registered once, edge-triggered, for both directions. A submitted op is tried at once (most
 * sockets are ready); if the kernel says EAGAIN it is parked on its handle until the next edge. Results are
 * queued and their callbacks run from rm_loop_run_once, never from inside the submit call. */
#include "io_loop_internal.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256

int rm__epoll_init(rm_loop_t *loop)
{
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    return loop->epfd < 0 ? -errno : 0;
}

void rm__epoll_dispose(rm_loop_t *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
}

int rm__epoll_add(rm_loop_t *loop, rm_io_handle_t *h)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = h};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, h->fd, &ev) != 0)
        return -errno;
    h->registered = 1;
    return 0;
}

void rm__epoll_del(rm_loop_t *loop, rm_io_handle_t *h)
{
    if (h->registered)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, h->fd, NULL);
    h->registered = 0;
}

static void queue_done(rm_loop_t *loop, rm_io_op_t *op, int res)
{
    op->res = res;
    op->state = 3;
    op->next = NULL;
    if (loop->done_tail != NULL)
        loop->done_tail->next = op;
    else
        loop->done_head = op;
    loop->done_tail = op;
}

/* Performs the op's syscall once. Returns -EAGAIN when it must wait for readiness. */
static int try_op(rm_io_op_t *op)
{
    int fd = op->h->fd, r;
    socklen_t sl;

    switch (op->kind) {
    case RM_IO_OP_ACCEPT:
        r = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        return r >= 0 ? r : -errno;
    case RM_IO_OP_CONNECT:
        if (op->state == 2) {
            /* parked after EINPROGRESS: writability means the handshake finished, SO_ERROR says how */
            int err = 0;
            sl = sizeof(err);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
                return -errno;
            if (err == 0) {
                /* spurious edge? a connected socket has a peer */
                struct sockaddr_storage ss;
                sl = sizeof(ss);
                if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
                    return errno == ENOTCONN ? -EAGAIN : -errno;
            }
            return -err;
        }
        if (connect(fd, op->addr, op->addrlen) == 0)
            return 0;
        return errno == EINPROGRESS ? -EAGAIN : -errno;
    case RM_IO_OP_RECV:
        do
            r = (int)recv(fd, op->buf, op->len, 0);
        while (r < 0 && errno == EINTR);
        /* Only EAGAIN proves the socket empty: a short read may leave a FIN queued, and its edge is already gone. */
        if (r < 0 && errno == EAGAIN)
            op->h->readable = 0;
        return r >= 0 ? r : -errno;
    case RM_IO_OP_WAIT_READABLE:
        /* ready unless the socket was last seen empty and no edge came since */
        return op->h->readable ? 0 : -EAGAIN;
    case RM_IO_OP_RECV_POOLED:
        return op->h->readable ? rm__recv_pooled_now(op) : -EAGAIN;
    case RM_IO_OP_SEND:
        do
            r = (int)send(fd, op->buf, op->len, MSG_NOSIGNAL);
        while (r < 0 && errno == EINTR);
        return r >= 0 ? r : -errno;
    case RM_IO_OP_READ:
        do
            r = (int)read(fd, op->buf, op->len);
        while (r < 0 && errno == EINTR);
        return r >= 0 ? r : -errno;
    }
    return -EINVAL;
}

static int is_write_side(const rm_io_op_t *op)
{
    return op->kind == RM_IO_OP_CONNECT || op->kind == RM_IO_OP_SEND;
}

int rm__epoll_submit(rm_loop_t *loop, rm_io_op_t *op)
{
    rm_io_op_t **slot = is_write_side(op) ? &op->h->wr : &op->h->rd;
    int res;

    if (*slot != NULL)
        return -EBUSY;
    op->state = 1;
    res = try_op(op);
    if (res == -EAGAIN || res == -EWOULDBLOCK) {
        op->state = 2;
        *slot = op;
        return 0;
    }
    queue_done(loop, op, res);
    return 0;
}

void rm__epoll_cancel(rm_loop_t *loop, rm_io_op_t *op)
{
    if (op->state != 2)
        return; /* already queued with its real result */
    if (op->h->rd == op)
        op->h->rd = NULL;
    if (op->h->wr == op)
        op->h->wr = NULL;
    queue_done(loop, op, -ECANCELED);
}

static void retry_parked(rm_loop_t *loop, rm_io_op_t **slot)
{
    rm_io_op_t *op = *slot;
    int res;
    if (op == NULL)
        return;
    res = try_op(op);
    if (res == -EAGAIN || res == -EWOULDBLOCK)
        return;
    *slot = NULL;
    queue_done(loop, op, res);
}

static int run_done(rm_loop_t *loop)
{
    rm_io_op_t *op = loop->done_head;
    int ran = 0;
    /* Run only what is queued now: ops that complete again at once (a busy bulk stream) wait for the next
     * iteration, so they cannot starve other handles or the timers. */
    loop->done_head = loop->done_tail = NULL;
    while (op != NULL) {
        rm_io_op_t *next = op->next;
        op->state = 0;
        op->cb(op, op->res);
        ran++;
        op = next;
    }
    return ran;
}

int rm__epoll_run_once(rm_loop_t *loop, int timeout_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int n, ran;

    ran = run_done(loop);
    n = epoll_wait(loop->epfd, evs, MAX_EVENTS, ran > 0 || loop->done_head != NULL ? 0 : timeout_ms);
    if (n < 0 && errno != EINTR)
        return -errno;
    rm__loop_update_now(loop);
    for (int i = 0; i < n; i++) {
        rm_io_handle_t *h = evs[i].data.ptr;
        uint32_t e = evs[i].events;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            h->readable = 1;
            retry_parked(loop, &h->rd);
        }
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            retry_parked(loop, &h->wr);
    }
    return ran + run_done(loop);
}
