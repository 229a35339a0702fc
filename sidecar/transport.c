/* A side of a proxied connection: its receives, sends, TLS and kernel-TLS record layers (see transport.h).
 *
 * Completions take in what they learned (bytes into the pipe or the TLS input window, bytes out, EOF, an error) and
 * hand over to the owner's progress callback, which decides what to submit next from the whole state. */
#include "transport.h"
#include "ringmesh/error.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The session, not the socket, carries this direction's records. */
#define SIDE_TLS_RX(s) ((s)->tls != NULL && !((s)->ktls & RM_KTLS_RX))
#define SIDE_TLS_TX(s) ((s)->tls != NULL && !((s)->ktls & RM_KTLS_TX))

void rm_side_init(rm_side_t *s, rm_side_owner_t *owner, rm_pipe_t *rx, rm_pipe_t *tx)
{
    memset(s, 0, sizeof(*s));
    s->h.fd = -1;
    s->owner = owner;
    s->rx = rx;
    s->tx = tx;
    /* a new socket has nothing to read yet as far as we know: its first read waits for readability without a
     * buffer, so a burst of handshakes holds buffers only for the bytes actually in flight */
    s->drained = 1;
}

int rm_side_open(rm_side_t *s, int fd)
{
    int ret;
    if ((ret = rm_loop_add(s->owner->loop, &s->h, fd)) != 0)
        s->h.fd = -1;
    return ret;
}

int rm_side_connect(rm_side_t *s, const struct sockaddr *sa, socklen_t len, rm_io_cb_t cb)
{
    int fd, ret;
    if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP)) < 0)
        return -errno;
    if ((ret = rm_side_open(s, fd)) != 0)
        goto Exit;
    if ((ret = rm_io_connect(s->owner->loop, &s->h, &s->conn_op, sa, len, cb)) != 0) {
        rm_loop_del(s->owner->loop, &s->h);
        s->h.fd = -1;
        goto Exit;
    }
    s->owner->pending++;
Exit:
    if (ret != 0)
        close(fd);
    return ret;
}

void rm_side_close(rm_side_t *s)
{
    if (s->tls != NULL) {
        rm_tls_free(s->tls);
        s->tls = NULL;
    }
    if (s->h.fd >= 0) {
        rm_loop_del(s->owner->loop, &s->h);
        close(s->h.fd);
        s->h.fd = -1;
    }
}

void rm_side_reset_on_close(rm_side_t *s)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (s->h.fd >= 0)
        setsockopt(s->h.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void rm_side_cancel(rm_side_t *s)
{
    rm_io_cancel(s->owner->loop, &s->rd_op);
    rm_io_cancel(s->owner->loop, &s->wr_op);
    rm_io_cancel(s->owner->loop, &s->conn_op);
}

int rm_side_busy(const rm_side_t *s)
{
    return rm_io_busy(&s->rd_op) || rm_io_busy(&s->wr_op) || rm_io_busy(&s->conn_op);
}

int rm_pipe_reserve(rm_pipe_t *p)
{
    if (p->buf == NULL && (p->buf = p->large ? rm_buf_get_large() : rm_buf_get()) == NULL)
        return -ENOMEM;
    return 0;
}

int rm_pipe_append_from(rm_pipe_t *p, rm_bytebuf_t *src)
{
    if (src->len == 0)
        return 0;
    if (rm_pipe_reserve(p) != 0)
        return -ENOMEM;
    if (p->len == 0 && !p->recv_busy)
        p->off = 0;
    size_t room = rm_pipe_room(p), n = src->len < room ? src->len : room;
    memcpy(p->buf + p->off + p->len, src->base, n);
    p->len += n;
    rm_bytebuf_consume(src, n);
    return 0;
}

void rm_pipe_free(rm_pipe_t *p)
{
    rm_buf_put(p->buf);
    p->buf = NULL;
    p->off = p->len = 0;
}

/* ------------------------------------------------------------------ completions */

static void side_failed(rm_side_t *s, rm_side_error_t kind, int err)
{
    s->owner->ops->error(s->owner, s, kind, err);
}

/* What a receive of `res` bytes (asked for `asked`) means for the side and the pipe it feeds. */
static void recv_result(rm_side_t *s, int res, size_t asked)
{
    rm_pipe_t *out_pipe = s->rx;
    s->tls_dry = 0;
    if (res > 0) {
        s->owner->last_active_ms = rm_loop_now_ms(s->owner->loop);
        /* a receive that filled all it was given left more behind: a stream, taken in large buffers from now on */
        s->drained = (size_t)res < asked;
        if (SIDE_TLS_RX(s)) {
            rm_tls_in_commit(s->tls, (size_t)res);
            rm_tls_in_want_large(s->tls, !s->drained);
        } else {
            out_pipe->len += (size_t)res;
            out_pipe->large = !s->drained;
        }
        return;
    }
    if (res == -EIO && (s->ktls & RM_KTLS_RX)) {
        /* the kernel's record layer met a record that is not application data */
        int r = rm_tls_ktls_read_control(s->tls, s->h.fd);
        if (r == RM_ERR_TLS_WANT_IO) {
            s->drained = 0; /* nothing for the app in it: receive again */
            rm_pipe_release_if_empty(out_pipe);
            return;
        }
        if (r != 0) {
            side_failed(s, RM_SIDE_TLS_ERROR, r);
            rm_pipe_release_if_empty(out_pipe);
            return;
        }
        res = 0; /* close_notify */
    }
    if (res == 0) {
        s->rd_eof = 1;
        if (SIDE_TLS_RX(s))
            rm_tls_in_eof(s->tls);
        else
            out_pipe->src_eof = 1;
    } else if (res != -ECANCELED) {
        /* a reset or error on one end resets the other */
        side_failed(s,
                    res == -ECONNRESET     ? RM_SIDE_RESET
                    : s->ktls & RM_KTLS_RX ? RM_SIDE_RECORD_ERROR
                                           : RM_SIDE_IO_ERROR,
                    res);
    }
    if (!SIDE_TLS_RX(s))
        rm_pipe_release_if_empty(out_pipe);
}

static void on_recv(rm_io_op_t *op, int res)
{
    rm_side_t *s = rm_container_of(op, rm_side_t, rd_op);
    rm_side_owner_t *o = s->owner;
    o->pending--;
    if (!SIDE_TLS_RX(s)) {
        s->rx->recv_busy = 0;
        if (o->closing)
            rm_pipe_release_if_empty(s->rx);
    }
    if (!o->closing)
        recv_result(s, res, s->rd_op.len);
    o->ops->progress(o);
}

/* Where the side's received bytes go: the TLS input window, or the tail of the pipe it feeds. */
static int recv_target(rm_side_t *s, uint8_t **p, size_t *n)
{
    int ret;
    if (SIDE_TLS_RX(s)) {
        if ((ret = rm_tls_in_space(s->tls, p, n)) != 0)
            return ret;
        if (s->ktls_need != 0 && *n > s->ktls_need)
            *n = s->ktls_need;
        return 0;
    }
    if ((ret = rm_pipe_reserve(s->rx)) != 0)
        return ret;
    *p = s->rx->buf + s->rx->off + s->rx->len;
    *n = rm_pipe_room(s->rx);
    return 0;
}

/* The socket has something to read: take a buffer and read it now. */
static void on_readable(rm_io_op_t *op, int res)
{
    rm_side_t *s = rm_container_of(op, rm_side_t, rd_op);
    rm_side_owner_t *o = s->owner;
    uint8_t *p;
    size_t n;
    int ret;

    o->pending--;
    if (o->closing)
        goto Progress;
    if (res < 0) {
        recv_result(s, res, 0);
        goto Progress;
    }
    if ((ret = recv_target(s, &p, &n)) != 0) {
        side_failed(s, RM_SIDE_IO_ERROR, ret);
        goto Progress;
    }
    res = rm_io_try_recv(o->loop, &s->h, p, n);
    if (res == -EAGAIN) {
        s->drained = 1; /* a spurious wake-up: wait again, without the buffer */
        if (!SIDE_TLS_RX(s))
            rm_pipe_release_if_empty(s->rx);
        goto Progress;
    }
    recv_result(s, res, n);
Progress:
    o->ops->progress(o);
}

/* A pooled receive came back: its buffer (taken only when the data arrived) becomes the TLS input window or the
 * pipe's buffer, both empty and released when the receive was submitted. */
static void on_pooled(rm_io_op_t *op, int res)
{
    rm_side_t *s = rm_container_of(op, rm_side_t, rd_op);
    rm_side_owner_t *o = s->owner;
    uint8_t *b = res > 0 ? s->rd_op.buf : NULL;

    o->pending--;
    if (o->closing) {
        rm_buf_put(b);
        goto Progress;
    }
    if (b != NULL) {
        if (SIDE_TLS_RX(s) ? rm_tls_in_adopt(s->tls, b) != 0 : s->rx->buf != NULL) {
            rm_buf_put(b); /* never: nothing else fills them while the receive is out */
            side_failed(s, RM_SIDE_IO_ERROR, -EPROTO);
            goto Progress;
        }
        if (!SIDE_TLS_RX(s)) {
            s->rx->buf = b;
            s->rx->off = s->rx->len = 0;
        }
    }
    recv_result(s, res, s->rd_op.len);
Progress:
    o->ops->progress(o);
}

static void on_send(rm_io_op_t *op, int res)
{
    rm_side_t *s = rm_container_of(op, rm_side_t, wr_op);
    rm_side_owner_t *o = s->owner;

    o->pending--;
    s->tls_dry = 0; /* room for the session's output: a read that wanted to write may go on */
    if (o->closing)
        goto Progress;
    if (res >= 0) {
        o->last_active_ms = rm_loop_now_ms(o->loop);
        if (SIDE_TLS_TX(s)) {
            rm_tls_out_consume(s->tls, (size_t)res);
        } else {
            s->tx->bytes += (size_t)res;
            rm_pipe_consume(s->tx, (size_t)res);
        }
    } else if (res != -ECANCELED) {
        side_failed(s, res == -ECONNRESET || res == -EPIPE ? RM_SIDE_RESET : RM_SIDE_IO_ERROR, res);
    }
Progress:
    o->ops->progress(o);
}

/* ------------------------------------------------------------------ submissions */

int rm_side_submit_recv(rm_side_t *s)
{
    rm_side_owner_t *o = s->owner;
    uint8_t *p;
    size_t n;
    int ret;

    if (s->h.fd < 0 || s->rd_eof || rm_io_busy(&s->rd_op))
        return 0;
    if (s->drained) {
        /* nothing known to be there: wait for it without holding a buffer (idle connections cost none) */
        int released;
        if (SIDE_TLS_RX(s)) {
            released = rm_tls_in_release(s->tls);
        } else {
            rm_pipe_release_if_empty(s->rx);
            released = s->rx->buf == NULL;
        }
        if (released) {
            /* with nothing held, the receive takes a buffer when the data comes, in one operation */
            if ((ret = rm_io_recv_pooled(o->loop, &s->h, &s->rd_op, SIDE_TLS_RX(s) ? s->ktls_need : 0, on_pooled)) != 0)
                return ret;
            o->pending++;
            return 0;
        }
        /* part of a record is held: wait, then receive behind it */
        if ((ret = rm_io_wait_readable(o->loop, &s->h, &s->rd_op, on_readable)) != 0)
            return ret;
        o->pending++;
        return 0;
    }
    if ((ret = recv_target(s, &p, &n)) != 0)
        return ret;
    if (n == 0)
        return 0;
    if ((ret = rm_io_recv(o->loop, &s->h, &s->rd_op, p, n, on_recv)) != 0)
        return ret;
    if (!SIDE_TLS_RX(s))
        s->rx->recv_busy = 1;
    o->pending++;
    return 0;
}

static int submit_send(rm_side_t *s, const uint8_t *p, size_t n)
{
    int ret;
    if (n == 0 || rm_io_busy(&s->wr_op))
        return 0;
    if ((ret = rm_io_send(s->owner->loop, &s->h, &s->wr_op, p, n, on_send)) != 0)
        return ret;
    s->owner->pending++;
    return 0;
}

int rm_side_flush(rm_side_t *s)
{
    const uint8_t *p;
    size_t n;
    if (!SIDE_TLS_TX(s) || s->h.fd < 0)
        return 0;
    rm_tls_out_data(s->tls, &p, &n);
    return submit_send(s, p, n);
}

static int tls_output_pending(rm_side_t *s)
{
    const uint8_t *p;
    size_t n;
    if (!SIDE_TLS_TX(s))
        return 0;
    rm_tls_out_data(s->tls, &p, &n);
    return n != 0;
}

int rm_side_handshake(rm_side_t *s, int *result)
{
    *result = rm_tls_handshake(s->tls);
    return rm_side_handshake_step_done(s, *result);
}

int rm_side_handshake_step_done(rm_side_t *s, int result)
{
    int ret;

    if ((ret = rm_side_flush(s)) != 0)
        return ret;
    if (result == 0)
        s->ready = 1;
    else if (result == RM_ERR_TLS_WANT_IO)
        return rm_side_submit_recv(s);
    return 0;
}

/* ------------------------------------------------------------------ kernel TLS */

void rm_side_enable_ktls(rm_side_t *s)
{
    if (s->tls != NULL)
        s->ktls |= RM_KTLS_TRY;
}

int rm_side_kernel_tls(const rm_side_t *s)
{
    return (s->ktls & (RM_KTLS_TX | RM_KTLS_RX)) == (RM_KTLS_TX | RM_KTLS_RX);
}

static void ktls_failed(rm_side_t *s, const char *what, int err)
{
    s->ktls &= (uint8_t)~RM_KTLS_TRY; /* what is not handed over stays in the session */
    s->owner->ops->ktls(s->owner, s, what, err);
}

static int ktls_attach(rm_side_t *s)
{
    int r;
    if (s->ktls & RM_KTLS_ATTACHED)
        return 1;
    if ((r = rm_tls_ktls_attach(s->h.fd)) != 0) {
        ktls_failed(s, "attach", r);
        return 0;
    }
    s->ktls |= RM_KTLS_ATTACHED;
    return 1;
}

/* Both directions are the kernel's: the session's own record layer goes. */
static void ktls_both(rm_side_t *s)
{
    if (!rm_side_kernel_tls(s))
        return;
    rm_tls_ktls_release(s->tls);
    s->owner->ops->ktls(s->owner, s, NULL, 0);
}

/* Hands the sending direction to the kernel once everything the session produced has gone out. */
static void ktls_start_tx(rm_side_t *s)
{
    int r;
    if (!(s->ktls & RM_KTLS_TRY) || (s->ktls & RM_KTLS_TX) || s->wr_shut || rm_io_busy(&s->wr_op) || !ktls_attach(s))
        return;
    if ((r = rm_tls_ktls_start_tx(s->tls, s->h.fd)) == 0) {
        s->ktls |= RM_KTLS_TX;
        ktls_both(s);
    } else if (r != RM_ERR_TLS_WANT_IO) {
        ktls_failed(s, "tx", r);
    }
}

/* Hands the receiving direction to the kernel when the session is at a record boundary with nothing left in it; until
 * then, limits the next receive to the rest of the record. Call with no receive in flight. */
static void ktls_start_rx(rm_side_t *s)
{
    size_t need;
    int r;
    if (!(s->ktls & RM_KTLS_TRY) || (s->ktls & RM_KTLS_RX) || s->rd_eof || rm_io_busy(&s->rd_op) || !ktls_attach(s))
        return;
    if ((r = rm_tls_ktls_start_rx(s->tls, s->h.fd, &need)) == 0) {
        s->ktls |= RM_KTLS_RX;
        s->ktls_need = 0;
        ktls_both(s);
        return;
    }
    if (r == RM_ERR_TLS_WANT_IO)
        s->ktls_need = (uint32_t)need;
    else
        ktls_failed(s, "rx", r);
}

/* ------------------------------------------------------------------ moving bytes */

int rm_side_fill(rm_side_t *src, int draining)
{
    rm_pipe_t *pipe = src->rx;
    int ret;

    if (!src->ready || pipe->src_eof)
        return 0;
    if (SIDE_TLS_RX(src)) {
        /* nothing came in since the session last wanted input, and the receive that will bring it is in flight */
        if (src->tls_dry && rm_io_busy(&src->rd_op))
            return rm_side_flush(src);
        pipe->large = !src->drained; /* the plaintext of a stream of records */
        if ((ret = rm_pipe_reserve(pipe)) != 0)
            return ret;
        while (rm_pipe_room(pipe) > 0) {
            int r = rm_tls_read(src->tls, pipe->buf + pipe->off + pipe->len, rm_pipe_room(pipe));
            if (r > 0) {
                pipe->len += (size_t)r;
                continue;
            }
            if (r == 0) {
                pipe->src_eof = 1;
                break;
            }
            if (r == RM_ERR_TLS_WANT_IO) {
                /* the session holds nothing more: the moment the kernel can take this direction */
                ktls_start_rx(src);
                if ((ret = rm_side_submit_recv(src)) != 0)
                    return ret;
                src->tls_dry = 1;
                break;
            }
            return r;
        }
        rm_pipe_release_if_empty(pipe);
        /* reading may have produced protocol output (e.g. a KeyUpdate answer) */
        return rm_side_flush(src);
    }
    if (draining && pipe->len > 0 && src->drained) {
        /* The last receive took all there was and its bytes are on their way out: the next receive waits until
         * they have gone and then takes a buffer when data comes, in one operation, rather than waiting for
         * readability now and receiving behind them with a system call of its own. */
        return 0;
    }
    return rm_side_submit_recv(src);
}

int rm_side_drain(rm_side_t *dst)
{
    rm_pipe_t *pipe = dst->tx;
    int ret;

    if (!dst->ready)
        return 0;
    ktls_start_tx(dst);
    if (SIDE_TLS_TX(dst)) {
        while (pipe->len > 0) {
            int r = rm_tls_write(dst->tls, pipe->buf + pipe->off, pipe->len);
            if (r > 0) {
                pipe->bytes += (size_t)r;
                rm_pipe_consume(pipe, (size_t)r);
                continue;
            }
            if (r == RM_ERR_TLS_WANT_IO)
                break;
            return r;
        }
        if (pipe->len == 0 && pipe->src_eof && !dst->wr_shut) {
            if ((ret = rm_tls_close_notify(dst->tls)) != 0)
                return ret;
            dst->wr_shut = 1; /* the TCP FIN follows once the alert is sent */
        }
        if ((ret = rm_side_flush(dst)) != 0)
            return ret;
        if (dst->wr_shut == 1 && !tls_output_pending(dst) && !rm_io_busy(&dst->wr_op)) {
            shutdown(dst->h.fd, SHUT_WR);
            dst->wr_shut = 2;
        }
        return 0;
    }
    if (pipe->len > 0)
        return submit_send(dst, pipe->buf + pipe->off, pipe->len);
    if (pipe->src_eof && !dst->wr_shut && !rm_io_busy(&dst->wr_op)) {
        /* the kernel's record layer ends the stream with close_notify; when the socket is full, the FIN alone does
         * (as every peer of ours takes it) */
        if (dst->tls != NULL)
            (void)rm_tls_ktls_close_notify(dst->h.fd);
        shutdown(dst->h.fd, SHUT_WR);
        dst->wr_shut = 2;
    }
    return 0;
}

int rm_side_pump(rm_side_t *src, rm_side_t *dst)
{
    int ret;
    if ((ret = rm_side_fill(src, 1)) != 0 || (ret = rm_side_drain(dst)) != 0)
        return ret;
    /* a TLS destination took the whole pipe at once: the source's receive need not wait for a send */
    if (src->rx->len == 0 && !SIDE_TLS_RX(src))
        return rm_side_fill(src, 1);
    return 0;
}

int rm_side_direction_done(const rm_side_t *dst)
{
    return dst->tx->src_eof && dst->tx->len == 0 && dst->wr_shut == 2;
}
