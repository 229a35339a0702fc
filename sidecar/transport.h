/* The transport: one side of a proxied connection (a socket, plaintext, TLS, or TLS whose record layer the kernel
 * took over) and the pipes that carry plaintext between sides. It knows nothing of proxying: an owner (the
 * connection, or a test) embeds an rm_side_owner_t, joins sides through pipes, and moves bytes with rm_side_fill,
 * rm_side_drain and rm_side_pump whenever its progress callback runs.
 *
 * Invariants of a side:
 *   - h.fd < 0: not open. An open side is attached to owner->loop (rm_side_open, rm_side_connect).
 *   - At most one receive (rd_op), one send (wr_op) and one connect (conn_op) in flight; each counts one in
 *     owner->pending from submit to completion, so the owner may free its sides only when pending is 0.
 *   - Receives feed `rx`; sends drain `tx` (plaintext sides, and kernel-TLS directions), or the TLS session's output
 *     window (TLS directions the session still carries). The owner sets rx and tx before the first receive or
 *     send; tx may change only while no plain send is in flight.
 *   - `ready`: bytes may move (connected, and handshake done when tls != NULL); the owner sets it for plain sides
 *     and rm_side_handshake does for TLS ones.
 *   - rd_eof: the peer finished sending (FIN or close_notify). wr_shut: 0 open, 1 close_notify queued (TLS), 2 FIN
 *     sent. A direction is over (rm_side_direction_done) when its pipe's source ended, the pipe is empty and the
 *     destination's FIN is out.
 *   - drained: the last receive came back short, so the next one waits for readability holding no buffer (idle
 *     sides cost no memory).
 *   - Kernel TLS (rm_side_enable_ktls after the handshake): each direction is handed to the kernel as soon as
 *     nothing of it is left in the session; from then on that direction is plaintext on the socket, as for a plain
 *     side.
 * After owner->closing is set, completions only count down pending and give buffers back; then progress runs.
 *
 * Invariants of a pipe: buf is a pool buffer (ringmesh/buffer_pool.h) while it holds data or a receive targets it,
 * else NULL; the data is buf[off .. off+len); while recv_busy, a plain receive is writing behind the data, which must
 * not move. The all-zero pipe is a valid empty one. */
#ifndef RINGMESH_TRANSPORT_H
#define RINGMESH_TRANSPORT_H

#include "io_loop.h"
#include "ringmesh/buffer_pool.h"
#include "ringmesh/bytebuf.h"
#include "ringmesh/tls.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RM_PIPE_SIZE RM_BUF_SIZE /* pipes hold pool buffers, see ringmesh/buffer_pool.h */

typedef struct st_rm_pipe_t {
    uint8_t *buf;
    size_t off, len;
    uint8_t large; /* the next buffer is a large one: the source's last receive filled all it was given */
    uint8_t src_eof;
    uint8_t recv_busy;
    uint64_t bytes; /* sent out of this pipe so far */
} rm_pipe_t;

/** How a side failed, for the owner's error callback. */
typedef enum {
    RM_SIDE_RESET = 1,    /* the peer reset the connection (ECONNRESET, EPIPE on send) */
    RM_SIDE_IO_ERROR,     /* any other I/O error, or no memory for a buffer */
    RM_SIDE_TLS_ERROR,    /* the session failed on bytes the kernel's record layer passed up (err: RM_ERR_TLS_*) */
    RM_SIDE_RECORD_ERROR, /* the kernel's record layer refused a record (-EBADMSG, -EMSGSIZE, ...) */
} rm_side_error_t;

typedef struct st_rm_side_t rm_side_t;
typedef struct st_rm_side_owner_t rm_side_owner_t;

/** What a side tells its owner. All run on the loop's thread, from completion callbacks (never inside a submit). */
typedef struct st_rm_side_owner_ops_t {
    /** After every completion on any of the owner's sides, once the side has taken in what it learned. The owner
     *  looks at its whole state and submits what is missing; it may free its sides here once pending is 0. */
    void (*progress)(rm_side_owner_t *o);
    /** A side failed: the owner is expected to set closing (the side submits nothing more on its own). */
    void (*error)(rm_side_owner_t *o, rm_side_t *s, rm_side_error_t kind, int err);
    /** Kernel TLS: `failed_step` ("attach", "tx", "rx") failed with `err` and the records stay in the session; or,
     *  with failed_step NULL, both directions are now the kernel's. For logs and counters. */
    void (*ktls)(rm_side_owner_t *o, rm_side_t *s, const char *failed_step, int err);
} rm_side_owner_ops_t;

/** Shared by the sides of one owner. */
struct st_rm_side_owner_t {
    rm_loop_t *loop;
    const rm_side_owner_ops_t *ops;
    unsigned pending;        /* ops in flight on the owner's sides */
    uint8_t closing;         /* set by the owner: completions no longer move bytes */
    uint64_t last_active_ms; /* the loop's clock at the last byte received or sent */
};

/* Which directions of a TLS side the kernel has (rm_side_t.ktls). */
#define RM_KTLS_TRY      0x1 /* wanted: handed over as soon as the session allows */
#define RM_KTLS_ATTACHED 0x2 /* the socket has the kernel's TLS layer */
#define RM_KTLS_TX       0x4
#define RM_KTLS_RX       0x8

struct st_rm_side_t {
    rm_io_handle_t h;
    rm_io_op_t rd_op, wr_op, conn_op;
    rm_tls_t *tls; /* owned; NULL for a plain side */
    rm_side_owner_t *owner;
    rm_pipe_t *rx, *tx;
    uint8_t rd_eof;
    uint8_t ready;
    uint8_t wr_shut;
    uint8_t drained;
    uint8_t ktls; /* RM_KTLS_* */
    /* the session's last read wanted I/O while a receive was in flight: reading again gives nothing until a receive
     * or a send of this side completes (rm_side_fill skips it) */
    uint8_t tls_dry;
    uint32_t ktls_need; /* receive at most this much next (0: no limit), to reach a record boundary */
};

/** Makes `s` a closed side of `owner` feeding `rx` and drained from `tx` (either may be NULL until set). */
void rm_side_init(rm_side_t *s, rm_side_owner_t *owner, rm_pipe_t *rx, rm_pipe_t *tx);
/** Attaches an open nonblocking socket. Returns 0 or -errno (the fd is then not taken: the caller closes it). */
int rm_side_open(rm_side_t *s, int fd);
/** Opens a socket and connects it to `sa` (which must stay valid until `cb` runs: it is not copied); `cb` (whose op
 *  is s->conn_op) runs once, and must count down owner->pending and run progress. Returns 0 or -errno (nothing
 *  open, cb never called). */
int rm_side_connect(rm_side_t *s, const struct sockaddr *sa, socklen_t len, rm_io_cb_t cb);
/** Frees the TLS session and closes the socket. Only when nothing is in flight (rm_side_busy is 0). */
void rm_side_close(rm_side_t *s);
/** Makes the socket's close send a reset instead of a FIN (SO_LINGER 0): for a cut stream. */
void rm_side_reset_on_close(rm_side_t *s);
/** Cancels whatever is in flight; the completions follow with -ECANCELED (or their real result). */
void rm_side_cancel(rm_side_t *s);
/** Nonzero while any op of the side is in flight. */
int rm_side_busy(const rm_side_t *s);

/** Submits a receive into `rx` (or the TLS input window) unless one is in flight, the peer has ended, or there is
 *  no room. Returns 0 or -errno / an RM_ERR_TLS_* that ends the owner. */
int rm_side_submit_recv(rm_side_t *s);
/** Sends the TLS output the session holds (handshake messages, records, alerts). Returns 0 or an error. */
int rm_side_flush(rm_side_t *s);
/** Drives a TLS side's handshake: feeds it what arrived, sends what it says, receives more. *result is 0 when the
 *  handshake is done (s->ready is set), RM_ERR_TLS_WANT_IO while it goes on, else the TLS or SVID error that
 *  refused the peer (an alert may be going out: let the send finish before cancelling). Returns 0, or an I/O error
 *  that ends the owner. */
int rm_side_handshake(rm_side_t *s, int *result);
/** The second half of rm_side_handshake(), for a step whose rm_tls_handshake() ran elsewhere (handshake_pool.h) and
 *  returned `result`: sends what the session wrote, sets ready or receives more. Returns as rm_side_handshake. */
int rm_side_handshake_step_done(rm_side_t *s, int result);
/** Asks for the TLS side's record layer to go to the kernel once the session allows (call after the handshake). */
void rm_side_enable_ktls(rm_side_t *s);
/** Nonzero when the kernel seals and opens both directions of the side's records. */
int rm_side_kernel_tls(const rm_side_t *s);

/** Fills src->rx from src. With `draining`, the caller drains the pipe next and then fills again (rm_side_pump).
 *  Returns 0 or an error that ends the owner. */
int rm_side_fill(rm_side_t *src, int draining);
/** Drains dst->tx into dst, ending that direction (close_notify and FIN) once the pipe's source has ended and the
 *  pipe is empty. Returns 0 or an error that ends the owner. */
int rm_side_drain(rm_side_t *dst);
/** Moves one direction along: src -> src->rx (which must be dst->tx) -> dst. Returns 0 or an error. */
int rm_side_pump(rm_side_t *src, rm_side_t *dst);
/** Nonzero when the direction into `dst` is over: its pipe's source ended, the pipe is empty, dst's FIN is out. */
int rm_side_direction_done(const rm_side_t *dst);

/** Gives the pipe's buffer back when it holds nothing and no receive is writing into it. */
static inline void rm_pipe_release_if_empty(rm_pipe_t *p)
{
    if (p->buf != NULL && p->len == 0 && !p->recv_busy) {
        rm_buf_put(p->buf);
        p->buf = NULL;
        p->off = 0;
    }
}

/** Makes sure the pipe holds a buffer. Returns 0 or -ENOMEM. */
int rm_pipe_reserve(rm_pipe_t *p);

/** Drops the first n bytes of the data. */
static inline void rm_pipe_consume(rm_pipe_t *p, size_t n)
{
    p->off += n;
    p->len -= n;
    rm_pipe_release_if_empty(p);
}

/** Bytes that fit behind the data (a whole buffer when none is held). */
static inline size_t rm_pipe_room(const rm_pipe_t *p)
{
    return p->buf == NULL ? RM_PIPE_SIZE : rm_buf_size(p->buf) - (p->off + p->len);
}

/** Moves what fits of `src` behind the pipe's data (taking a buffer when it holds none; an empty pipe no receive
 *  writes into starts at the buffer's beginning) and drops it from `src`: how bytes a filter or a codec produced
 *  are staged for a send. Returns 0 or -ENOMEM. */
int rm_pipe_append_from(rm_pipe_t *p, rm_bytebuf_t *src);

/** Gives the pipe's buffer back whatever it holds (the owner is closing). */
void rm_pipe_free(rm_pipe_t *p);

#endif
