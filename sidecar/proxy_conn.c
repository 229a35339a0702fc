/* The proxied connection's state machine: accept, original destination, mode decision, connect, handshake, pump,
 * close, and the connection's logs. The two sides are transport.h's; the L4 decision and the choice of a filter are
 * conn_authz.c's; a running filter is conn_l7.c's (types shared through proxy_conn-t.h).
 *
 * Every completion updates what it learned and calls conn_progress(), which runs passes of conn_step() over the
 * whole state, each submitting whatever is missing (a receive where a pipe has room, a send where one has data, a
 * shutdown where a direction has ended), until one has nothing left to do. Making progress a function of state, not
 * of the event that arrived, keeps half-close, errors and timeouts in one place. */
#include "conn_addr.h"
#include "access_log.h"
#include "conn_trace.h"
#include "conn_observe.h"
#include "proxy_conn-t.h"
#include "req_out.h"
#include "req_in.h"
#include "ringmesh/buffer_pool.h"
#include "ringmesh/error.h"
#include "ringmesh/slab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const mode_names[] = {"undecided", "mtls", "plaintext", "passthrough"};
static const char *const close_names[] = {"", "eof", "reset", "timeout", "error", "drain", "rejected"};

static void conn_progress(rm_conn_t *c);
static void refuse(rm_conn_t *c, const char *reason, int code);
static void log_conn_error(rm_conn_t *c, int err);

/* ------------------------------------------------------------------ helpers */

/* Why this connection has no SVID to present, for its refusal line. */
static const char *no_svid_reason(rm_conn_t *c)
{
    const char *r = c->snap->no_tls_reason;
    if (r == NULL)
        return "no SVID configured for mTLS";
    if (strcmp(r, "svid_expired") == 0)
        return "the SVID has expired and no new one could be obtained: refusing to present it";
    return "no SVID yet: waiting for the control plane";
}

void rm__conn_log_fields(rm_conn_t *c, rm_log_line_t *l)
{
    rm_log_str(l, "direction", c->dir == RM_CONN_DIR_OUTBOUND ? "outbound" : "inbound");
    if (c->explicit_cfg != NULL)
        rm_log_str(l, "listener", c->explicit_cfg->name);
    rm_log_addr(l, "src", (struct sockaddr *)&c->src.ss);
    rm_log_addr(l, "dst", c->orig_dst.len != 0 ? (struct sockaddr *)&c->orig_dst.ss : NULL);
}

const char *rm__conn_peer_id(rm_conn_t *c)
{
    rm_tls_t *tls = rm__conn_tls_side(c)->tls;
    return tls != NULL ? rm_tls_peer_id(tls) : NULL;
}

/* The address of the peer a refusal or TLS error is about: the client inbound, the server it was connected to outbound.
 */
static const struct sockaddr *peer_addr_of(rm_conn_t *c)
{
    const rm_conn_addr_t *a =
        c->dir == RM_CONN_DIR_OUTBOUND ? (c->target.len != 0 ? &c->target : &c->orig_dst) : &c->src;
    return a->len != 0 ? (const struct sockaddr *)&a->ss : NULL;
}

static void log_rejected(rm_conn_t *c, const char *reason, int code)
{
    rm_log_line_t l;
    if (c->rejected_logged)
        return;
    c->rejected_logged = 1;
    rm_log_begin(&l, RM_LOG_WARN, "peer_rejected");
    rm__conn_log_fields(c, &l);
    rm_log_addr(&l, "peer_addr", peer_addr_of(c));
    rm_log_str(&l, "reason", reason);
    rm_log_int(&l, "code", code);
    rm_tls_t *tls = rm__conn_tls_side(c)->tls;
    if (tls != NULL) {
        /* the ID the peer presented, even when it was the reason for refusing it */
        const char *id = rm_tls_peer_id(tls);
        if (id != NULL)
            rm_log_str(&l, "peer_id", id);
        const char *alert = rm_tls_peer_alert(tls);
        if (alert != NULL)
            rm_log_str(&l, "peer_alert", alert);
    }
    if (c->num_expected_ids > 0) {
        char exp[1024];
        size_t o = 0;
        for (size_t i = 0; i < c->num_expected_ids && o < sizeof(exp) - 1; i++) {
            int n = snprintf(exp + o, sizeof(exp) - o, "%s%s", i ? "," : "", c->expected_ids[i]);
            if (n < 0)
                break;
            o += (size_t)n;
        }
        rm_log_strn(&l, "expected", exp, o < sizeof(exp) ? o : sizeof(exp) - 1);
    }
    rm_log_end(&l);
    atomic_fetch_add_explicit(&c->w->stats.rejected_peer, 1, memory_order_relaxed);
}

static void log_access(rm_conn_t *c)
{
    rm_log_line_t l;
    if (!rm__conn_cfg(c)->connection_log || c->close_reason == RM_CONN_CLOSE_REJECTED)
        return;
    rm_log_begin(&l, RM_LOG_INFO, "connection");
    rm__conn_log_fields(c, &l);
    rm_log_str(&l, "mode", mode_names[c->mode]);
    if (c->target.len != 0 && c->dir == RM_CONN_DIR_OUTBOUND)
        rm_log_addr(&l, "upstream", (struct sockaddr *)&c->target.ss);
    if (c->mode == RM_CONN_MODE_MTLS) {
        rm_tls_t *tls = rm__conn_tls_side(c)->tls;
        rm_log_str(&l, "peer_id", rm__conn_peer_id(c));
        rm_log_str(&l, "tls_version", tls != NULL ? rm_tls_version(tls) : NULL);
        rm_log_bool(&l, "kernel_tls", rm_side_kernel_tls(rm__conn_tls_side(c)));
    }
    /* sent/received from the point of view of the connection's originator (the downstream side) */
    rm_log_uint(&l, "bytes_sent", c->d2u.bytes + (c->l7 != NULL ? c->l7->app_out.bytes : 0));
    rm_log_uint(&l, "bytes_received", c->u2d.bytes + (c->l7 != NULL ? c->l7->client_out.bytes : 0));
    rm_log_uint(&l, "duration_ms", rm_loop_now_ms(c->w->loop) - c->started_ms);
    rm_log_str(&l, "close", close_names[c->close_reason]);
    rm_log_end(&l);
}

void rm__conn_abort(rm_conn_t *c, rm__conn_close_t why)
{
    if (c->t.closing)
        return;
    c->t.closing = 1;
    if (c->close_reason == RM_CONN_CLOSE_NONE)
        c->close_reason = why;
    if (why != RM_CONN_CLOSE_EOF) {
        rm_side_reset_on_close(&c->down);
        rm_side_reset_on_close(&c->up);
    }
}

/* ------------------------------------------------------------------ completions */

/* The kernel's record layer refused what the peer sent: a refusal of the peer, said as such. */
static void log_ktls_record_error(rm_conn_t *c, int err)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_WARN, "tls_error");
    rm__conn_log_fields(c, &l);
    rm_log_str(&l, "layer", "kernel");
    rm_log_str(&l, "reason",
               err == -EBADMSG    ? "a record failed authentication (bad_record_mac)"
               : err == -EMSGSIZE ? "a record is larger than TLS allows (record_overflow)"
                                  : "the kernel's TLS layer refused the stream");
    rm_log_err(&l, "error", err);
    if (rm__conn_peer_id(c) != NULL)
        rm_log_str(&l, "peer_id", rm__conn_peer_id(c));
    rm_log_end(&l);
}

/* Inbound: when the client's first bytes must have shown TLS or plaintext, and a TLS handshake must be over. */
static uint64_t inbound_handshake_deadline(rm_conn_t *c)
{
    return c->started_ms + rm__conn_cfg(c)->handshake_timeout_ms;
}

static void on_up_connect(rm_io_op_t *op, int res)
{
    rm_side_t *s = rm_container_of(op, rm_side_t, conn_op);
    rm_conn_t *c = rm_container_of(s, rm_conn_t, up);
    c->t.pending--;
    c->up_connecting = 0;
    if (c->t.closing || c->req_in != NULL) /* a request server's app side is its own (req_in.c) */
        goto Progress;
    if (res != 0 && c->dir == RM_CONN_DIR_OUTBOUND && rm__conn_endpoint_retry(c, res, "connect_failed")) {
        atomic_fetch_add_explicit(&c->w->stats.connect_failed, 1, memory_order_relaxed);
        goto Progress; /* nothing else is in flight upstream: conn_step connects to the next endpoint */
    }
    if (res != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "upstream_connect_failed");
        rm__conn_log_fields(c, &l);
        rm_log_addr(&l, "upstream", (struct sockaddr *)&c->target.ss);
        rm_log_err(&l, "error", res);
        rm_log_end(&l);
        atomic_fetch_add_explicit(&c->w->stats.connect_failed, 1, memory_order_relaxed);
        c->upstream_failed = 1;
        rm__conn_abort(c, RM_CONN_CLOSE_ERROR);
        goto Progress;
    }
    int one = 1;
    setsockopt(s->h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->t.last_active_ms = rm_loop_now_ms(c->w->loop);
    if (s->tls == NULL)
        s->ready = 1; /* a TLS side is ready only after its handshake (conn_progress drives it) */
    /* the connect deadline is over; a handshake still to come gets its own. Inbound (PERMISSIVE connects to the app
     * at once), the client's first bytes and its handshake keep the one counted from accept. */
    int handshaking = rm__conn_tls_side(c)->tls != NULL && !rm__conn_tls_side(c)->ready;
    if (c->dir == RM_CONN_DIR_INBOUND)
        c->deadline_ms = c->mode == RM_CONN_MODE_UNDECIDED || handshaking ? inbound_handshake_deadline(c) : 0;
    else
        c->deadline_ms = handshaking ? c->t.last_active_ms + rm__conn_cfg(c)->handshake_timeout_ms : 0;
Progress:
    conn_progress(c);
}

/* ------------------------------------------------------------------ progress */

static int start_upstream_connect(rm_conn_t *c)
{
    int ret;
    if ((ret = rm_side_connect(&c->up, (struct sockaddr *)&c->target.ss, c->target.len, on_up_connect)) != 0)
        return ret;
    c->up_connecting = 1;
    c->deadline_ms = rm_loop_now_ms(c->w->loop) + rm__conn_cfg(c)->connect_timeout_ms;
    return 0;
}

/* Publishes this worker thread's signature verification counters for the metrics. */
static void publish_verify_stats(rm_worker_t *w)
{
    rm_tls_verify_stats_t v = rm_tls_thread_verify_stats();
    atomic_store_explicit(&w->stats.sig_computed, v.computed, memory_order_relaxed);
    atomic_store_explicit(&w->stats.sig_remembered, v.remembered, memory_order_relaxed);
}

static int drive_handshake(rm_conn_t *c)
{
    rm_side_t *s = rm__conn_tls_side(c);
    int r, ret;

    if (c->hs.busy)
        return 0; /* a handshake thread has the session (conn_handshake.c) */
    if (c->hs.done) {
        c->hs.done = 0;
        r = c->hs.result;
        ret = rm_side_handshake_step_done(s, r);
    } else if (rm__conn_handshake_offload(c, s)) {
        return 0;
    } else {
        ret = rm_side_handshake(s, &r);
    }
    if (ret != 0)
        return ret;
    if (r == 0) {
        rm__conn_handshake_end(c, 0);
        c->mode = RM_CONN_MODE_MTLS;
        c->deadline_ms = 0;
        if (atomic_load_explicit(&c->w->proxy->kernel_tls, memory_order_relaxed))
            rm_side_enable_ktls(s);
        atomic_fetch_add_explicit(&c->w->stats.handshakes, 1, memory_order_relaxed);
        publish_verify_stats(c->w);
        return 0;
    }
    if (r == RM_ERR_TLS_WANT_IO)
        return 0;
    publish_verify_stats(c->w);
    if (c->dir == RM_CONN_DIR_OUTBOUND && rm__conn_endpoint_retry(c, r, "handshake_refused")) {
        /* nothing of the app's went to the refused endpoint: drop its socket, connect to the next one */
        rm_side_cancel(&c->up);
        return 0;
    }
    log_rejected(c, rm_strerror(r), r);
    rm__conn_handshake_end(c, 1);
    c->close_reason = RM_CONN_CLOSE_REJECTED;
    /* let a pending alert go out, then close: conn_progress sees closing with the send in flight */
    c->t.closing = 1;
    return 0;
}

/* Inbound, the client's first bytes have not shown TLS or plaintext, and never will: it closed, or (`timeout`) they
 * did not come within handshakeTimeout. Nothing of them went to the app; the connection is closed (a reset to the
 * app, which must not take an empty or partial stream for a whole one) and logged with the cause. */
static void undecided_close(rm_conn_t *c, int timeout)
{
    rm_log_line_t l;
    rm_log_begin(&l, timeout || c->d2u.len > 0 ? RM_LOG_WARN : RM_LOG_INFO,
                 timeout ? "handshake_timeout" : "undecided_closed");
    rm__conn_log_fields(c, &l);
    if (timeout)
        rm_log_str(&l, "phase", "first_bytes");
    rm_log_str(&l, "reason",
               timeout ? "the client's first bytes did not show TLS or plaintext within handshakeTimeout"
                       : "the client closed before its first bytes showed TLS or plaintext");
    rm_log_uint(&l, "bytes", c->d2u.len);
    rm_log_str(&l, "effect", "closed; none of its bytes reached the app");
    rm_log_end(&l);
    /* the access log says how it ended for the client; both ends get a reset */
    c->close_reason = timeout ? RM_CONN_CLOSE_TIMEOUT : RM_CONN_CLOSE_EOF;
    rm__conn_abort(c, RM_CONN_CLOSE_RESET);
}

/* Inbound: decide mTLS or plaintext from what arrives first (STRICT refuses all but mesh TLS). The client's bytes,
 * when there are any, decide; else an app that speaks first makes it plaintext (a server-first protocol: a TLS client
 * never waits for the server), unless what it said is an HTTP/2 server preface. Bytes that could still become a
 * ClientHello wait for more, up to handshakeTimeout (rm__conn_tick); a client that closes meanwhile is closed. */
static int decide_mode(rm_conn_t *c)
{
    rm_tls_sniff_t k;
    int ret;

    if (c->d2u.len == 0 && (c->u2d.len > 0 || c->u2d.src_eof) &&
        !(rm__conn_app_sent_h2_settings(&c->u2d) && rm_pipe_room(&c->u2d) > 0)) {
        c->mode = RM_CONN_MODE_PLAINTEXT;
    } else if (c->d2u.len > 0 || c->d2u.src_eof) {
        k = c->d2u.len > 0 ? rm_tls_sniff(c->d2u.buf + c->d2u.off, c->d2u.len) : RM_TLS_SNIFF_NEED_MORE;
        if (k == RM_TLS_SNIFF_NEED_MORE) {
            /* a whole ClientHello record always fits in a pipe's buffer: room stays until it is in */
            if (!c->d2u.src_eof && rm_pipe_room(&c->d2u) > 0)
                return 0;
            undecided_close(c, 0);
            return 0;
        }
        /* an explicit inbound listener is a TLS port by configuration: any mTLS client with an SVID may use it */
        if (k == RM_TLS_SNIFF_TLS_OTHER && c->explicit_cfg != NULL)
            k = RM_TLS_SNIFF_MESH;
        if (k != RM_TLS_SNIFF_MESH && c->inbound_mode == RM_MTLS_STRICT) {
            atomic_fetch_add_explicit(&c->w->stats.rejected_plaintext, 1, memory_order_relaxed);
            refuse(c,
                   k == RM_TLS_SNIFF_TLS_OTHER ? "TLS without the mesh ALPN (ringmesh/1) on a STRICT port"
                                               : "plaintext connection on a STRICT port",
                   RM_ERR_TLS_ALPN);
            return 0;
        }
        if (k == RM_TLS_SNIFF_MESH) {
            char name[256];
            if (c->snap->server_ctx == NULL)
                return RM_ERR_TLS_CONFIG;
            if (rm__conn_handshake_admit(c) != 0)
                return 0; /* refused before any cryptography: too many in progress, or its address backs off */
            if (rm_tls_client_hello_sni(c->d2u.buf + c->d2u.off, c->d2u.len, name, sizeof(name)) > 0 &&
                (c->sni = rm_slab_strndup(name, sizeof(name))) == NULL)
                return -ENOMEM;
            /* ringmesh/h2 (the pooled request connections) carries HTTP/2 to the app: docs/traffic-management.md */
            if ((ret = rm_tls_new(&c->down.tls, c->snap->server_ctx, NULL, 0,
                                  c->explicit_cfg != NULL ? 0 : RM_TLS_REQUIRE_MESH_ALPN | RM_TLS_ACCEPT_H2)) != 0)
                return ret;
            if ((ret = rm_tls_in_append(c->down.tls, c->d2u.buf + c->d2u.off, c->d2u.len)) != 0)
                return ret;
            c->d2u.off = c->d2u.len = 0;
            rm_pipe_release_if_empty(&c->d2u);
            c->down.ready = 0;
            c->mode = RM_CONN_MODE_MTLS;
            if (!c->up_connecting)
                c->deadline_ms = inbound_handshake_deadline(c);
            return 0;
        }
        c->mode = RM_CONN_MODE_PLAINTEXT;
    } else {
        return 0;
    }
    c->down.ready = 1;
    if (!c->up_connecting)
        c->deadline_ms = 0; /* decided: the first-bytes deadline is over (a connect's own stays) */
    return 0;
}

/* A connection ended by an error. TLS failures after the handshake are mostly the peer refusing us (TLS 1.3
 * clients finish before the server has judged their certificate): worth a warning with the peer's alert. I/O
 * errors are routine. */
static void log_conn_error(rm_conn_t *c, int err)
{
    int is_tls = err <= RM_ERR_CLASS_TLS && err > RM_ERR_CLASS_SVID;
    rm_tls_t *tls = rm__conn_tls_side(c)->tls;
    const char *alert = tls != NULL ? rm_tls_peer_alert(tls) : NULL;
    rm_log_line_t l;
    rm_log_begin(&l, is_tls ? RM_LOG_WARN : RM_LOG_DEBUG, is_tls ? "tls_error" : "connection_error");
    rm__conn_log_fields(c, &l);
    if (is_tls)
        rm_log_addr(&l, "peer_addr", peer_addr_of(c));
    rm_log_err(&l, "error", err);
    if (alert != NULL)
        rm_log_str(&l, "peer_alert", alert);
    if (rm__conn_peer_id(c) != NULL)
        rm_log_str(&l, "peer_id", rm__conn_peer_id(c));
    rm_log_end(&l);
}

static void conn_free(rm_conn_t *c);

/* What one pass of conn_step() left behind. */
typedef enum {
    STEP_WAIT = 0, /* everything that can be submitted is: wait for a completion or the tick */
    STEP_AGAIN,    /* the state moved (the connection began to close): look again */
    STEP_FREED,    /* the connection is gone */
} step_t;

/* One pass over the connection's state: submits what is missing for the state it finds. A pass that changes the
 * state in a way the rest of the pass does not handle (the connection began to close) returns STEP_AGAIN. */
static step_t conn_step(rm_conn_t *c)
{
    int ret = 0;

    if (c->t.closing) {
        /* A rejected handshake may still have an alert in flight: let it finish, then cancel the rest. */
        if (!c->cancelled) {
            if (c->close_reason == RM_CONN_CLOSE_REJECTED && rm_io_busy(&rm__conn_tls_side(c)->wr_op))
                return STEP_WAIT;
            c->cancelled = 1;
            rm__conn_handshake_cancel(c);
            rm_side_cancel(&c->down);
            rm_side_cancel(&c->up);
        }
        if (c->t.pending == 0) {
            conn_free(c);
            return STEP_FREED;
        }
        return STEP_WAIT;
    }

    if (c->ep_switching) {
        /* to the next endpoint once the refused one's operations are back */
        if (rm_side_busy(&c->up))
            return STEP_WAIT;
        if ((ret = rm__conn_endpoint_reconnect(c)) != 0 || (ret = start_upstream_connect(c)) != 0)
            goto Error;
        c->deadline_ms = c->started_ms + rm__conn_cfg(c)->connect_timeout_ms; /* the first connect's budget */
        return STEP_WAIT;
    }

    if (c->dir == RM_CONN_DIR_INBOUND && c->mode == RM_CONN_MODE_UNDECIDED) {
        /* sniffing: read from both ends as plaintext until one of them speaks; decide before reading on, so no
         * receive into the pipe is in flight when its bytes move to the TLS session */
        if ((ret = decide_mode(c)) != 0)
            goto Error;
        if (c->t.closing) {
            return STEP_AGAIN;
        }
        if (c->mode == RM_CONN_MODE_UNDECIDED) {
            if ((ret = rm_side_submit_recv(&c->down)) != 0)
                goto Error;
            if (c->up.ready && (ret = rm_side_submit_recv(&c->up)) != 0)
                goto Error;
            return STEP_WAIT;
        }
    }

    /* handshake on the TLS side once its transport is there */
    {
        rm_side_t *ts = rm__conn_tls_side(c);
        if (ts->tls != NULL && !ts->ready && ts->h.fd >= 0 && !(ts == &c->up && c->up_connecting)) {
            if ((ret = drive_handshake(c)) != 0)
                goto Error;
            if (c->t.closing || c->ep_switching) {
                return STEP_AGAIN;
            }
        }
    }

    /* inbound: a pooled request connection (ringmesh/h2) is an HTTP/2 server of its own (req_in.c) */
    if (c->req_in == NULL && rm__req_in_wanted(c) && (ret = rm__req_in_start(c)) != 0)
        goto Error;
    if (c->req_in != NULL) {
        if ((ret = rm__req_in_pump(c)) != 0)
            goto Error;
        return c->t.closing ? STEP_AGAIN : STEP_WAIT;
    }

    /* inbound: decide on the peer as soon as it is known; nothing reaches the app before a decision */
    if (c->authz_state == RM_CONN_AUTHZ_PENDING && c->down.ready) {
        if ((ret = rm__conn_authz_progress(c)) != 0)
            goto Error;
        if (c->t.closing) {
            return STEP_AGAIN;
        }
    }

    /* inbound: connect to the app once the peer is authenticated (STRICT) or at once (PERMISSIVE, sniffing) */
    if (c->dir == RM_CONN_DIR_INBOUND && c->up.h.fd < 0 && c->down.ready) {
        if ((ret = start_upstream_connect(c)) != 0)
            goto Error;
    }

    if (c->authz_state == RM_CONN_AUTHZ_PENDING && c->down.ready) {
        /* waiting for the client's first bytes to tell the protocol: read both ends, forward nothing */
        if ((ret = rm_side_fill(&c->down, 0)) != 0 || (ret = rm_side_fill(&c->up, 0)) != 0)
            goto Error;
        if ((ret = rm__conn_authz_progress(c)) != 0)
            goto Error;
        if (c->t.closing) {
            return STEP_AGAIN;
        }
        if (c->authz_state == RM_CONN_AUTHZ_PENDING)
            return STEP_WAIT;
    }

    if (!c->obs.opened && c->down.ready && c->up.ready) /* decided and connected at both ends */
        rm__conn_observe_opened(c);
    /* no per-request policy: the client's first bytes tell whether its requests are observed (conn_observe_l7.c) */
    if (c->authz_state == RM_CONN_AUTHZ_SNIFF && c->down.ready) {
        if ((ret = rm__conn_observe_sniff(c)) != 0)
            goto Error;
        if (c->authz_state == RM_CONN_AUTHZ_SNIFF)
            return STEP_WAIT;
    }

    if (c->rq != NULL) { /* the request path serves the app (req_out.c) */
        if ((ret = rm__req_out_pump(c)) != 0)
            goto Error;
        return c->t.closing ? STEP_AGAIN : STEP_WAIT;
    }
    if (c->l7 != NULL) {
        if ((ret = rm__conn_l7_pump(c)) != 0)
            goto Error;
        if (c->t.closing) {
            return STEP_AGAIN;
        }
    } else {
        if ((ret = rm_side_pump(&c->down, &c->up)) != 0)
            goto Error;
        if ((ret = rm_side_pump(&c->up, &c->down)) != 0)
            goto Error;
    }

    if (rm_side_direction_done(&c->up) && rm_side_direction_done(&c->down) && !rm_side_busy(&c->down) &&
        !rm_side_busy(&c->up)) {
        c->close_reason = RM_CONN_CLOSE_EOF;
        c->t.closing = 1;
        return STEP_AGAIN;
    }
    return STEP_WAIT;

Error:
    log_conn_error(c, ret);
    rm__conn_abort(c, RM_CONN_CLOSE_ERROR);
    return STEP_AGAIN;
}

/* Runs passes until one has nothing more to do. A pass that returns STEP_AGAIN has set `closing`, and a pass over a
 * closing connection never returns STEP_AGAIN, so this takes at most two passes. */
static void conn_progress(rm_conn_t *c)
{
    step_t r;
    do {
        r = conn_step(c);
    } while (r == STEP_AGAIN);
}

/* ------------------------------------------------------------------ lifecycle */

static void conn_side_progress(rm_side_owner_t *o)
{
    conn_progress(rm_container_of(o, rm_conn_t, t));
}

/* A side failed: a reset or error on one end resets the other. */
// cppcheck-suppress constParameter ; the side owner's callback type (transport.h) passes it non-const
static void conn_side_error(rm_side_owner_t *o, rm_side_t *s, rm_side_error_t kind, int err)
{
    rm_conn_t *c = rm_container_of(o, rm_conn_t, t);
    if (c->ep_switching && s == &c->up)
        return; /* the endpoint being left: its errors end nothing */
    if (c->req_in != NULL && s == &c->up) {
        rm__req_in_up_error(c, err); /* the app's HTTP/2 session: its streams fail, the connection stays */
        return;
    }
    if (kind == RM_SIDE_TLS_ERROR)
        log_conn_error(c, err);
    else if (kind == RM_SIDE_RECORD_ERROR)
        log_ktls_record_error(c, err);
    rm__conn_abort(c, kind == RM_SIDE_RESET ? RM_CONN_CLOSE_RESET : RM_CONN_CLOSE_ERROR);
}

static void conn_side_ktls(rm_side_owner_t *o, rm_side_t *s, const char *failed_step, int err)
{
    rm_conn_t *c = rm_container_of(o, rm_conn_t, t);
    rm_log_line_t l;
    if (failed_step == NULL) {
        atomic_fetch_add_explicit(&c->w->stats.ktls_conns, 1, memory_order_relaxed);
        c->w->sessions_released = 1;
        return;
    }
    atomic_fetch_add_explicit(&c->w->stats.ktls_failed, 1, memory_order_relaxed);
    rm_log_begin(&l, RM_LOG_WARN, "kernel_tls_failed");
    rm__conn_log_fields(c, &l);
    rm_log_str(&l, "step", failed_step);
    rm_log_err(&l, "error", err);
    rm_log_str(&l, "effect", "this connection's records stay in the proxy");
    rm_log_end(&l);
}

static const rm_side_owner_ops_t conn_side_ops = {conn_side_progress, conn_side_error, conn_side_ktls};

static rm_conn_t *conn_alloc(rm_worker_t *w)
{
    rm_conn_t *c = w->free_conns;
    if (c != NULL) {
        w->free_conns = c->next;
        w->num_free--;
    } else if ((c = rm_slab_alloc(sizeof(*c))) == NULL) { /* apart from the handshakes' churn: ringmesh/slab.h */
        return NULL;
    }
    memset(c, 0, sizeof(*c));
    c->w = w;
    c->t.loop = w->loop;
    c->t.ops = &conn_side_ops;
    rm_side_init(&c->down, &c->t, &c->d2u, &c->u2d);
    rm_side_init(&c->up, &c->t, &c->u2d, &c->d2u);
    return c;
}

static void conn_free(rm_conn_t *c)
{
    rm_worker_t *w = c->w;
    rm__conn_l7_end(c); /* its exchanges still open are reported first, while their spans are kept */
    rm__req_in_free(c);
    rm__conn_access_log_tcp(c); /* every connection, refused ones too (their line says the decision) */
    log_access(c);
    if (c->obs.opened)
        rm__conn_observe_closed(c);
    rm_side_close(&c->down);
    rm_side_close(&c->up);
    rm__conn_endpoint_release(c);
    rm__conn_handshake_end(c, 1); /* still admitted: it never completed (timed out, cut, closed by the peer) */
    if (c->counted)
        atomic_fetch_sub_explicit(&w->proxy->num_conns, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->stats.bytes_down_to_up, c->d2u.bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->stats.bytes_up_to_down, c->u2d.bytes, memory_order_relaxed);
    rm_slab_free(c->sni);
    c->sni = NULL;
    rm_conn_trace_free(c->trace);
    c->trace = NULL;
    if (c->l7 != NULL) {
        atomic_fetch_add_explicit(&w->stats.bytes_down_to_up, c->l7->app_out.bytes, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->stats.bytes_up_to_down, c->l7->client_out.bytes, memory_order_relaxed);
        rm__conn_l7_free(c);
    }
    rm__req_out_free(c);
    rm__conn_observe_free(c);
    rm_pipe_free(&c->d2u);
    rm_pipe_free(&c->u2d);
    rm_snapshot_unref(c->snap);
    c->snap = NULL;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    w->num_conns--;
    w->trim_pending = 1;
    atomic_fetch_sub_explicit(&w->stats.active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->stats.closed, 1, memory_order_relaxed);
    /* keep a bounded number of connection objects for reuse */
    if (w->num_free < 256) {
        c->next = w->free_conns;
        w->free_conns = c;
        w->num_free++;
    } else {
        rm_slab_free(c);
    }
}

void rm__conn_handshake_back(rm_hs_job_t *job)
{
    rm_conn_t *c = rm_container_of(job, rm_conn_t, hs);
    c->t.pending--;
    c->hs.busy = 0;
    c->hs.done = !c->t.closing;
    conn_progress(c);
}

rm_conn_t *rm__conn_next(rm_conn_t *c)
{
    return c->next;
}

void rm__conn_release(rm_conn_t *c)
{
    rm_slab_free(c);
}

/* Sets c->target to the loopback address of the app, on the original port. */
static void set_app_target(rm_conn_t *c, uint16_t port)
{
    memset(&c->target, 0, sizeof(c->target));
    if (c->orig_dst.ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->target.ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_loopback;
        s6->sin6_port = htons(port);
        c->target.len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&c->target.ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s4->sin_port = htons(port);
        c->target.len = sizeof(*s4);
    }
}

static void refuse(rm_conn_t *c, const char *reason, int code)
{
    log_rejected(c, reason, code);
    c->close_reason = RM_CONN_CLOSE_REJECTED;
    rm__conn_abort(c, RM_CONN_CLOSE_REJECTED);
}

/* This proxy has no SVID to present (none yet, or its own expired during an outage of the control plane): refused with
 * that reason, and counted apart from the peers' faults. */
static void refuse_no_svid(rm_conn_t *c)
{
    atomic_fetch_add_explicit(&c->w->stats.rejected_no_svid, 1, memory_order_relaxed);
    refuse(c, no_svid_reason(c), RM_ERR_TLS_CONFIG);
}

static int connect_mesh(rm_conn_t *c, const char *sni);

static int setup_outbound(rm_conn_t *c, rm_listener_t *l)
{
    rm_proxy_config_t *cfg = rm__conn_cfg(c);
    const rm_destination_t *dest;
    const char *sni = NULL;
    rm_sockaddr_t od;
    int ret;

    c->dir = RM_CONN_DIR_OUTBOUND;
    if (l->kind == RM_LISTENER_KIND_EXPLICIT_UPSTREAM) {
        c->explicit_cfg = l->explicit_cfg;
        rm_conn_addr_set(&c->target, &l->explicit_cfg->target);
        c->orig_dst = c->target;
        c->expected_ids = (const char *const *)l->explicit_cfg->identities;
        c->num_expected_ids = l->explicit_cfg->num_identities;
    } else {
        if ((ret = rm_sockaddr_original_dst(c->down.h.fd, &od)) != 0) {
            refuse(c, "no original destination (connection was not redirected by iptables)", ret);
            return 0;
        }
        rm_conn_addr_set(&c->orig_dst, &od);
        if (rm_sockaddr_same(&l->addr, &od.ss) || rm_sockaddr_port(&od.ss) == rm_sockaddr_port(&l->addr.ss)) {
            refuse(c, "original destination is the proxy itself (redirect loop)", -ELOOP);
            return 0;
        }
        c->target = c->orig_dst;
        if ((dest = rm_proxy_config_find_destination(cfg, (struct sockaddr *)&c->orig_dst.ss)) == NULL) {
            c->mode = RM_CONN_MODE_PASSTHROUGH;
            c->down.ready = 1;
            return start_upstream_connect(c);
        }
        c->expected_ids = (const char *const *)dest->identities;
        c->num_expected_ids = dest->num_identities;
        sni = dest->sni;
        if (cfg->request_balancing && dest->endpoints != NULL && c->snap->client_ctx != NULL) {
            /* the app's first bytes choose between the request path and a connection of its own (req_out.h); a
             * server-first protocol gets its connection after RM_REQ_OUT_DETECT_MS */
            c->rq_dest = dest;
            c->mode = RM_CONN_MODE_MTLS;
            c->authz_state = RM_CONN_AUTHZ_SNIFF;
            c->down.ready = 1;
            c->deadline_ms = c->started_ms + RM_REQ_OUT_DETECT_MS;
            return 0;
        }
        /* endpoints pushed: connect to one of them, expecting its own identity (conn_endpoint.c) */
        if (dest->endpoints != NULL && rm__conn_endpoint_first(c, dest, sni) != 0) {
            c->close_reason = RM_CONN_CLOSE_REJECTED;
            rm__conn_abort(c, RM_CONN_CLOSE_REJECTED);
            return 0;
        }
    }
    return connect_mesh(c, sni);
}

int rm__conn_connect_deferred(rm_conn_t *c)
{
    const rm_destination_t *dest = c->rq_dest;
    c->rq_dest = NULL;
    c->deadline_ms = 0;
    if (dest->endpoints != NULL && rm__conn_endpoint_first(c, dest, dest->sni) != 0) {
        c->close_reason = RM_CONN_CLOSE_REJECTED;
        rm__conn_abort(c, RM_CONN_CLOSE_REJECTED);
        return 0;
    }
    return connect_mesh(c, dest->sni);
}

/* Connects an outbound mesh connection to c->target with mTLS expecting c->expected_ids. */
static int connect_mesh(rm_conn_t *c, const char *sni)
{
    int ret;
    if (c->snap->client_ctx == NULL) {
        refuse_no_svid(c);
        return 0;
    }
    if ((ret = rm_tls_new(&c->up.tls, c->snap->client_ctx, c->expected_ids, c->num_expected_ids,
                          c->explicit_cfg != NULL ? 0 : RM_TLS_REQUIRE_MESH_ALPN)) != 0)
        return ret;
    if (sni != NULL && (ret = rm_tls_set_server_name(c->up.tls, sni)) != 0)
        return ret;
    c->mode = RM_CONN_MODE_MTLS;
    c->authz_state = rm__conn_observed(c) ? RM_CONN_AUTHZ_SNIFF : RM_CONN_AUTHZ_OFF;
    c->down.ready = 1;
    return start_upstream_connect(c);
}

static int setup_inbound(rm_conn_t *c, rm_listener_t *l)
{
    rm_sockaddr_t od;
    int ret;
    uint16_t port;

    c->dir = RM_CONN_DIR_INBOUND;
    c->authz_state = c->snap->authz != NULL || c->snap->authz_required ? RM_CONN_AUTHZ_PENDING
                     : rm__conn_observed(c)                            ? RM_CONN_AUTHZ_SNIFF
                                                                       : RM_CONN_AUTHZ_OFF;
    if (l->kind == RM_LISTENER_KIND_EXPLICIT_INBOUND) {
        c->explicit_cfg = l->explicit_cfg;
        rm_conn_addr_set(&c->target, &l->explicit_cfg->target);
        rm_conn_addr_set(&c->orig_dst, &l->addr);
        c->inbound_mode = l->explicit_cfg->mode;
    } else {
        if ((ret = rm_sockaddr_original_dst(c->down.h.fd, &od)) != 0) {
            refuse(c, "no original destination (connection was not redirected by iptables)", ret);
            return 0;
        }
        rm_conn_addr_set(&c->orig_dst, &od);
        port = rm_sockaddr_port(&od.ss);
        if (port == rm_sockaddr_port(&l->addr.ss)) {
            refuse(c, "original destination is the proxy itself (redirect loop)", -ELOOP);
            return 0;
        }
        set_app_target(c, port);
        c->inbound_mode = rm_proxy_config_port_mode(rm__conn_cfg(c), port);
    }
    switch (c->inbound_mode) {
    case RM_MTLS_STRICT:
        if (c->snap->server_ctx == NULL) {
            refuse_no_svid(c);
            return 0;
        }
        /* look at the first bytes before handing them to TLS, so a plaintext client is refused with that reason;
         * the app is connected only after the peer is authenticated */
        c->mode = RM_CONN_MODE_UNDECIDED;
        c->deadline_ms = inbound_handshake_deadline(c);
        return 0;
    case RM_MTLS_PERMISSIVE:
        /* connect to the app at once so a server-first protocol is never kept waiting; the client's first bytes
         * have until handshakeTimeout once the app is connected (on_up_connect) */
        c->mode = RM_CONN_MODE_UNDECIDED;
        return start_upstream_connect(c);
    case RM_MTLS_DISABLE:
        c->mode = RM_CONN_MODE_PLAINTEXT;
        c->down.ready = 1;
        return 0;
    }
    return 0;
}

void rm__conn_accepted(rm_listener_t *l, int fd)
{
    rm_worker_t *w = l->w;
    rm_proxy_t *p = w->proxy;
    rm_conn_t *c;
    rm_sockaddr_t src = {0};
    socklen_t sl;
    int ret, one = 1;
    unsigned n;

    n = atomic_fetch_add_explicit(&p->num_conns, 1, memory_order_relaxed) + 1;
    if ((c = conn_alloc(w)) == NULL) {
        atomic_fetch_sub_explicit(&p->num_conns, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    c->counted = 1;
    c->snap = rm_snapshot_acquire(p);
    c->started_ms = c->t.last_active_ms = rm_loop_now_ms(w->loop);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->num_conns++;
    atomic_fetch_add_explicit(&w->stats.accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->stats.active, 1, memory_order_relaxed);

    sl = sizeof(src.ss);
    if (getpeername(fd, (struct sockaddr *)&src.ss, &sl) == 0) {
        src.len = sl;
        rm_sockaddr_unmap_v4(&src);
        rm_conn_addr_set(&c->src, &src);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (rm_side_open(&c->down, fd) != 0) {
        close(fd);
        rm__conn_abort(c, RM_CONN_CLOSE_ERROR);
        conn_progress(c);
        return;
    }
    if (n > rm__conn_cfg(c)->max_connections) {
        atomic_fetch_add_explicit(&w->stats.rejected_limit, 1, memory_order_relaxed);
        if (rm_loop_now_ms(w->loop) - w->limit_logged_ms >= 1000 || w->limit_logged_ms == 0) {
            rm_log_line_t line;
            w->limit_logged_ms = rm_loop_now_ms(w->loop);
            rm_log_begin(&line, RM_LOG_WARN, "connection_limit");
            rm_log_uint(&line, "max_connections", rm__conn_cfg(c)->max_connections);
            rm_log_addr(&line, "src", (struct sockaddr *)&c->src.ss);
            rm_log_str(&line, "msg", "maxConnections reached: refusing new connections (logged at most once a second)");
            rm_log_end(&line);
        }
        c->close_reason = RM_CONN_CLOSE_REJECTED;
        rm__conn_abort(c, RM_CONN_CLOSE_REJECTED);
        conn_progress(c);
        return;
    }

    if (l->kind == RM_LISTENER_KIND_OUTBOUND || l->kind == RM_LISTENER_KIND_EXPLICIT_UPSTREAM)
        ret = setup_outbound(c, l);
    else
        ret = setup_inbound(c, l);
    if (ret != 0 && !c->t.closing) {
        rm_log_line_t line;
        rm_log_begin(&line, RM_LOG_WARN, "connection_setup_failed");
        rm__conn_log_fields(c, &line);
        rm_log_err(&line, "error", ret);
        rm_log_end(&line);
        rm__conn_abort(c, RM_CONN_CLOSE_ERROR);
    }
    conn_progress(c);
}

void rm__conn_tick(rm_conn_t *c, uint64_t now_ms)
{
    rm_proxy_config_t *cfg = rm__conn_cfg(c);
    if (c->t.closing)
        return;
    if (c->deadline_ms != 0 && now_ms >= c->deadline_ms && c->lingering == RM_CONN_LINGER_ON) {
        /* the client did not close after the answer: close now (rm__conn_l7_pump) */
        c->lingering = RM_CONN_LINGER_OVER;
        c->deadline_ms = 0;
        conn_progress(c);
        return;
    }
    if (c->rq != NULL && rm__req_out_tick(c, now_ms)) {
        conn_progress(c);
        return;
    }
    if (c->deadline_ms != 0 && now_ms >= c->deadline_ms && c->rq_dest != NULL) {
        if (rm__conn_connect_deferred(c) != 0) /* the app said nothing: a server-first protocol */
            rm__conn_abort(c, RM_CONN_CLOSE_ERROR);
        conn_progress(c);
        return;
    }
    if (c->deadline_ms != 0 && now_ms >= c->deadline_ms) {
        if (!c->up_connecting && c->dir == RM_CONN_DIR_INBOUND && c->mode == RM_CONN_MODE_UNDECIDED) {
            undecided_close(c, 1);
        } else {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_WARN, c->up_connecting ? "upstream_connect_timeout" : "handshake_timeout");
            rm__conn_log_fields(c, &l);
            if (!c->up_connecting)
                rm_log_str(&l, "phase", "tls");
            rm_log_end(&l);
            c->upstream_failed = c->up_connecting;
            rm__conn_abort(c, RM_CONN_CLOSE_TIMEOUT);
        }
        conn_progress(c);
        return;
    }
    if (cfg->idle_timeout_ms != 0 && now_ms - c->t.last_active_ms >= cfg->idle_timeout_ms) {
        rm__conn_abort(c, RM_CONN_CLOSE_TIMEOUT);
        conn_progress(c);
    } else if (c->req_in != NULL && c->w->draining) {
        conn_progress(c); /* a request server says GOAWAY (req_in.c) */
    }
}

void rm__conn_drain_cut(rm_conn_t *c)
{
    if (c->t.closing)
        return;
    rm__conn_abort(c, RM_CONN_CLOSE_DRAIN);
    conn_progress(c);
}
