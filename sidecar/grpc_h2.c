#include "grpc_h2.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "ringmesh/bytebuf.h"
#include "ringmesh/error.h"

#define PING_IDLE_MS     60000
#define PING_TIMEOUT_MS  20000
#define WRITE_TIMEOUT_MS 10000
#define WINDOW_SIZE      (1 << 20)

struct st_rm_h2_call_t {
    rm_h2_conn_t *conn;
    rm_h2_call_t *prev, *next;
    int32_t stream_id;
    rm_h2_call_cbs_t cbs;
    void *arg;
    rm_bytebuf_t out; /* framed messages; out.base[out_off .. out.len) not yet handed to nghttp2 */
    size_t out_off;
    int out_eof, deferred;
    rm_bytebuf_t in; /* DATA received; in.base[in_off .. in.len) not yet cut into messages */
    size_t in_off;
    int http_status, grpc_status, have_grpc_status;
    char grpc_message[256];
    int accepted, accepted_told;
    int closed; /* nghttp2 closed the stream; on_close is due */
    uint32_t rst_code;
    int bad; /* a framing error: the call is being reset */
};

struct st_rm_h2_conn_t {
    int fd;
    rm_tls_t *tls;
    nghttp2_session *ng;
    char authority[256];
    rm_h2_call_t *calls;
    size_t num_calls;
    uint64_t last_recv_ms, ping_sent_ms;
    uint64_t ping_idle_ms, ping_timeout_ms; /* keepalive: PING after this much silence, dead without an answer */
    int dead;
    char error[256];
    char expected_id[512];
    const char *ids[1]; /* what rm_tls checks the server against: points at expected_id */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Appends to a buffer whose bytes before *off are taken: they are dropped first when all are, or when that saves
 * growing it. */
static int pending_append(rm_bytebuf_t *b, size_t *off, const void *p, size_t n)
{
    if (*off > 0 && (*off == b->len || n > b->cap - b->len)) {
        rm_bytebuf_consume(b, *off);
        *off = 0;
    }
    return rm_bytebuf_append(b, p, n);
}

__attribute__((format(printf, 2, 3))) static void set_dead(rm_h2_conn_t *c, const char *fmt, ...)
{
    va_list ap;

    if (c->dead)
        return;
    c->dead = 1;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ socket and TLS */

/* Sends all the TLS output, waiting for the socket up to WRITE_TIMEOUT_MS. */
static int flush_tls(rm_h2_conn_t *c)
{
    const uint8_t *p;
    size_t len;

    for (rm_tls_out_data(c->tls, &p, &len); len > 0; rm_tls_out_data(c->tls, &p, &len)) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {c->fd, POLLOUT, 0};
            if (poll(&pfd, 1, WRITE_TIMEOUT_MS) <= 0) {
                set_dead(c, "%s", "the control plane does not read what is sent");
                return -ETIMEDOUT;
            }
            continue;
        }
        if (n < 0) {
            set_dead(c, "send: %s", strerror(errno));
            return -errno;
        }
        rm_tls_out_consume(c->tls, (size_t)n);
    }
    return 0;
}

/* Encrypts and sends everything nghttp2 has to send. */
static int flush(rm_h2_conn_t *c)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ng, &data);
        if (n < 0) {
            set_dead(c, "HTTP/2: %s", nghttp2_strerror((int)n));
            return -EPROTO;
        }
        if (n == 0)
            break;
        for (size_t o = 0; o < (size_t)n;) {
            int w = rm_tls_write(c->tls, data + o, (size_t)n - o);
            if (w == RM_ERR_TLS_WANT_IO) {
                if (flush_tls(c) != 0)
                    return -EIO;
                continue;
            }
            if (w < 0) {
                set_dead(c, "TLS: %s", rm_strerror(w));
                return -EIO;
            }
            o += (size_t)w;
        }
    }
    return flush_tls(c);
}

/* Receives what the socket has (without waiting). Returns 1 when bytes arrived, 0 when none, or an error. */
static int recv_some(rm_h2_conn_t *c)
{
    uint8_t *space;
    size_t cap;
    ssize_t n;

    if (rm_tls_in_space(c->tls, &space, &cap) != 0) {
        set_dead(c, "%s", "out of memory");
        return -ENOMEM;
    }
    if (cap == 0)
        return 0; /* the window holds a whole record wolfSSL has not taken yet: read it first */
    do
        n = recv(c->fd, space, cap, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return 0;
    if (n < 0) {
        set_dead(c, "recv: %s", strerror(errno));
        return -errno;
    }
    if (n == 0) {
        rm_tls_in_eof(c->tls);
        return 1;
    }
    rm_tls_in_commit(c->tls, (size_t)n);
    c->last_recv_ms = mono_ms();
    return 1;
}

static int connect_tcp(const char *addr, int deadline_ms, char *err, size_t errlen)
{
    char host[256], port[16];
    const char *colon;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
    int fd = -1, ret;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof(host))
            goto Bad;
        snprintf(host, sizeof(host), "%.*s", (int)(close - addr - 1), addr + 1);
        colon = close + 1;
    } else {
        if ((colon = strrchr(addr, ':')) == NULL || (size_t)(colon - addr) >= sizeof(host))
            goto Bad;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port))
        goto Bad;
    snprintf(port, sizeof(port), "%s", colon + 1);
    if ((ret = getaddrinfo(host, port, &hints, &res)) != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(ret));
        return -EHOSTUNREACH;
    }
    ret = -ECONNREFUSED;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int one = 1, soerr = 0;
        socklen_t sl = sizeof(soerr);
        if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            ret = -errno;
            goto Next;
        }
        struct pollfd pfd = {fd, POLLOUT, 0};
        int wait = deadline_ms - (int)mono_ms();
        if (poll(&pfd, 1, wait > 0 ? wait : 0) <= 0) {
            ret = -ETIMEDOUT;
            goto Next;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            ret = -(soerr != 0 ? soerr : errno);
            goto Next;
        }
        freeaddrinfo(res);
        return fd;
    Next:
        close(fd);
    }
    freeaddrinfo(res);
    snprintf(err, errlen, "cannot connect to %s: %s", addr, strerror(-ret));
    return ret;
Bad:
    snprintf(err, errlen, "address %s is not host:port", addr);
    return -EINVAL;
}

/* ------------------------------------------------------------------ nghttp2 callbacks */

static rm_h2_call_t *call_of(nghttp2_session *ng, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(ng, stream_id);
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    rm_h2_call_t *call = call_of(ng, frame->hd.stream_id);

    (void)flags, (void)user;
    if (call == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        call->http_status = rm_h2_parse_digits(value, valuelen, 3, 0);
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        call->grpc_status = rm_h2_parse_digits(value, valuelen, 2, 2);
        call->have_grpc_status = 1;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        /* percent-encoded (gRPC over HTTP/2): decode %XX, keep everything else */
        size_t o = 0;
        for (size_t i = 0; i < valuelen && o + 1 < sizeof(call->grpc_message); i++) {
            if (value[i] == '%' && i + 2 < valuelen) {
                char hex[3] = {(char)value[i + 1], (char)value[i + 2], 0};
                char *end;
                long ch = strtol(hex, &end, 16);
                if (*end == '\0') {
                    call->grpc_message[o++] = (char)ch;
                    i += 2;
                    continue;
                }
            }
            call->grpc_message[o++] = (char)value[i];
        }
        call->grpc_message[o] = '\0';
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    rm_h2_call_t *call;

    (void)user;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_RESPONSE &&
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && (call = call_of(ng, frame->hd.stream_id)) != NULL &&
        call->http_status == 200)
        call->accepted = 1;
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *user)
{
    rm_h2_call_t *call = call_of(ng, stream_id);

    (void)flags, (void)user;
    if (call == NULL || call->bad)
        return 0;
    if (call->in.len - call->in_off + len > RM_GRPC_MAX_MESSAGE + 5 ||
        pending_append(&call->in, &call->in_off, data, len) != 0) {
        call->bad = 1;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_INTERNAL_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code, void *user)
{
    rm_h2_call_t *call = call_of(ng, stream_id);

    (void)user;
    if (call != NULL) {
        call->closed = 1;
        call->rst_code = error_code;
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
                         nghttp2_data_source *source, void *user)
{
    rm_h2_call_t *call = source->ptr;
    size_t avail = call->out.len - call->out_off, n;

    (void)ng, (void)stream_id, (void)user;
    if (avail == 0) {
        if (call->out_eof) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        call->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    n = avail < length ? avail : length;
    memcpy(buf, call->out.base + call->out_off, n);
    call->out_off += n;
    if (call->out_off == call->out.len) {
        call->out_off = call->out.len = 0;
        if (call->out_eof)
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

/* ------------------------------------------------------------------ calls */

static void call_free(rm_h2_call_t *call)
{
    rm_h2_conn_t *c = call->conn;

    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    c->num_calls--;
    if (call->stream_id > 0 && !c->dead)
        nghttp2_session_set_stream_user_data(c->ng, call->stream_id, NULL);
    rm_bytebuf_free(&call->out);
    rm_bytebuf_free(&call->in);
    free(call);
}

static void noop_message(void *arg, rm_h2_call_t *call, const uint8_t *msg, size_t len)
{
    (void)arg, (void)call, (void)msg, (void)len;
}

static void noop_close(void *arg, rm_h2_call_t *call, int status, const char *message)
{
    (void)arg, (void)call, (void)status, (void)message;
}

/* Forgets the caller of a call that was given up on: its stream is reset, and what still arrives is dropped. */
static void call_detach(rm_h2_call_t *call)
{
    call->cbs.on_accepted = NULL;
    call->cbs.on_message = noop_message;
    call->cbs.on_close = noop_close;
    call->arg = NULL;
}

/* Cuts the received bytes into messages and hands them over; then, once the stream has closed, the status. */
static void call_deliver(rm_h2_call_t *call)
{
    if (call->accepted && !call->accepted_told) {
        call->accepted_told = 1;
        if (call->cbs.on_accepted != NULL)
            call->cbs.on_accepted(call->arg, call);
    }
    while (!call->bad) {
        const uint8_t *msg = NULL;
        uint32_t mlen = 0;
        const char *why = NULL;
        int got = rm_h2_grpc_message_next(call->in.base, call->in.len, call->in_off, &msg, &mlen, &why);
        if (got == 0)
            break;
        if (got < 0) {
            /* compressed messages are never asked for; a huge one is refused */
            call->bad = 1;
            snprintf(call->grpc_message, sizeof(call->grpc_message), "%s", why);
            if (!call->closed && !call->conn->dead)
                nghttp2_submit_rst_stream(call->conn->ng, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
            break;
        }
        call->in_off += 5 + (size_t)mlen;
        call->cbs.on_message(call->arg, call, msg, mlen);
    }
    if (!call->closed)
        return;
    int status;
    const char *msg = call->grpc_message;
    char buf[128];
    if (call->bad) {
        status = 13; /* INTERNAL */
    } else if (call->have_grpc_status) {
        status = call->grpc_status;
    } else {
        status = RM_GRPC_UNAVAILABLE;
        if (call->rst_code != 0)
            snprintf(buf, sizeof(buf), "stream reset (HTTP/2 error %u)", call->rst_code);
        else
            snprintf(buf, sizeof(buf), "no grpc-status (HTTP status %d)", call->http_status);
        msg = buf;
    }
    call->cbs.on_close(call->arg, call, status, msg);
    call_free(call);
}

int rm_h2_call_start(rm_h2_conn_t *c, const char *path, const rm_h2_call_cbs_t *cbs, void *arg, rm_h2_call_t **out)
{
    rm_h2_call_t *call;
    nghttp2_data_provider prd;
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv hdrs[] = {
        NV(":method", "POST"),
        NV(":scheme", "https"),
        NV(":path", path),
        NV(":authority", c->authority),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("user-agent", "ringmesh-proxy/0.1.0"),
    };
#undef NV

    if (c->dead)
        return -EPIPE;
    if ((call = calloc(1, sizeof(*call))) == NULL)
        return -ENOMEM;
    call->conn = c;
    call->cbs = *cbs;
    call->arg = arg;
    prd.source.ptr = call;
    prd.read_callback = read_body;
    if ((call->stream_id = nghttp2_submit_request(c->ng, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &prd, call)) < 0) {
        free(call);
        return -EPROTO;
    }
    call->next = c->calls;
    if (c->calls != NULL)
        c->calls->prev = call;
    c->calls = call;
    c->num_calls++;
    *out = call;
    return 0;
}

static void resume(rm_h2_call_t *call)
{
    if (call->deferred && !call->conn->dead) {
        call->deferred = 0;
        nghttp2_session_resume_data(call->conn->ng, call->stream_id);
    }
}

int rm_h2_call_send(rm_h2_call_t *call, const uint8_t *msg, size_t len)
{
    uint8_t prefix[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};

    if (call->out_eof || call->closed || call->conn->dead)
        return -EPIPE;
    if (pending_append(&call->out, &call->out_off, prefix, 5) != 0 ||
        pending_append(&call->out, &call->out_off, msg, len) != 0)
        return -ENOMEM;
    resume(call);
    return 0;
}

void rm_h2_call_close_send(rm_h2_call_t *call)
{
    call->out_eof = 1;
    resume(call);
}

/* ------------------------------------------------------------------ connection */

static void fail_all(rm_h2_conn_t *c)
{
    while (c->calls != NULL) {
        rm_h2_call_t *call = c->calls;
        call->cbs.on_close(call->arg, call, RM_GRPC_UNAVAILABLE, c->error);
        call_free(call);
    }
}

int rm_h2_poll(rm_h2_conn_t *c, int timeout_ms)
{
    uint64_t now;
    int ret;

    if (c->dead)
        goto Dead;
    if (flush(c) != 0)
        goto Dead;
    struct pollfd pfd = {c->fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) {
        set_dead(c, "poll: %s", strerror(errno));
        goto Dead;
    }
    if (pfd.revents != 0) {
        while ((ret = recv_some(c)) > 0) {
            uint8_t buf[16384];
            int r;
            while ((r = rm_tls_read(c->tls, buf, sizeof(buf))) > 0) {
                ssize_t n = nghttp2_session_mem_recv(c->ng, buf, (size_t)r);
                if (n < 0) {
                    set_dead(c, "HTTP/2: %s", nghttp2_strerror((int)n));
                    goto Dead;
                }
            }
            if (r == 0) {
                set_dead(c, "%s", "the control plane closed the connection");
                break;
            }
            if (r != RM_ERR_TLS_WANT_IO) {
                set_dead(c, "TLS: %s", rm_strerror(r));
                break;
            }
        }
        rm_tls_in_release(c->tls);
        if (ret < 0)
            set_dead(c, "%s", "receive failed");
    }
    /* callbacks run here, outside nghttp2 */
    for (rm_h2_call_t *call = c->calls, *next; call != NULL; call = next) {
        next = call->next;
        call_deliver(call);
    }
    if (c->dead)
        goto Dead;
    if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng)) {
        set_dead(c, "%s", "the control plane ended the HTTP/2 session (GOAWAY)");
        goto Dead;
    }
    now = mono_ms();
    if (c->ping_sent_ms != 0 && c->last_recv_ms > c->ping_sent_ms)
        c->ping_sent_ms = 0;
    if (c->ping_sent_ms == 0 && now - c->last_recv_ms > c->ping_idle_ms) {
        nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL);
        c->ping_sent_ms = now;
    } else if (c->ping_sent_ms != 0 && now - c->ping_sent_ms > c->ping_timeout_ms) {
        set_dead(c, "no answer to an HTTP/2 PING within %llu ms", (unsigned long long)c->ping_timeout_ms);
        goto Dead;
    }
    return flush(c) == 0 ? 0 : (fail_all(c), -EIO);
Dead:
    fail_all(c);
    return -ECONNRESET;
}

int rm_h2_connect(const char *addr, const char *authority, rm_tls_ctx_t *ctx, const char *expected_id, int timeout_ms,
                  rm_h2_conn_t **out, char *err, size_t errlen)
{
    rm_h2_conn_t *c;
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_SIZE}};
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    int ret;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        return -ENOMEM;
    snprintf(c->authority, sizeof(c->authority), "%s", authority);
    c->ping_idle_ms = PING_IDLE_MS;
    c->ping_timeout_ms = PING_TIMEOUT_MS;
    if ((c->fd = connect_tcp(addr, (int)deadline, err, errlen)) < 0) {
        ret = c->fd;
        free(c);
        return ret;
    }
    snprintf(c->expected_id, sizeof(c->expected_id), "%s", expected_id != NULL ? expected_id : "");
    c->ids[0] = c->expected_id;
    if ((ret = rm_tls_new(&c->tls, ctx, c->ids, expected_id != NULL ? 1 : 0, RM_TLS_REQUIRE_MESH_ALPN)) != 0) {
        snprintf(err, errlen, "TLS session: %s", rm_strerror(ret));
        goto Fail;
    }
    for (;;) {
        ret = rm_tls_handshake(c->tls);
        if (flush_tls(c) != 0 && ret == 0)
            ret = -EIO;
        if (ret == 0)
            break;
        if (ret != RM_ERR_TLS_WANT_IO) {
            const char *peer = rm_tls_peer_id(c->tls), *alert = rm_tls_peer_alert(c->tls);
            snprintf(err, errlen, "TLS handshake with %s failed: %s%s%s%s%s", addr, rm_strerror(ret),
                     peer != NULL ? " (server presented " : "", peer != NULL ? peer : "", peer != NULL ? ")" : "",
                     alert != NULL ? alert : "");
            goto Fail;
        }
        int wait = (int)(deadline - mono_ms());
        struct pollfd pfd = {c->fd, POLLIN, 0};
        if (wait <= 0 || poll(&pfd, 1, wait) <= 0) {
            snprintf(err, errlen, "TLS handshake with %s timed out", addr);
            ret = -ETIMEDOUT;
            goto Fail;
        }
        if ((ret = recv_some(c)) < 0) {
            snprintf(err, errlen, "TLS handshake with %s: %s", addr, c->error);
            goto Fail;
        }
    }
    rm_tls_in_release(c->tls);
    c->last_recv_ms = mono_ms();
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        ret = -ENOMEM;
        goto Fail;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    ret = nghttp2_session_client_new(&c->ng, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (ret != 0) {
        ret = -ENOMEM;
        goto Fail;
    }
    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, WINDOW_SIZE);
    if (flush(c) != 0) {
        snprintf(err, errlen, "%s", c->error);
        ret = -EIO;
        goto Fail;
    }
    *out = c;
    return 0;
Fail:
    rm_h2_close(c);
    return ret != 0 ? ret : -EIO;
}

size_t rm_h2_open_calls(const rm_h2_conn_t *c)
{
    return c->num_calls;
}

const char *rm_h2_error(const rm_h2_conn_t *c)
{
    return c->dead ? c->error : "";
}

void rm_h2_set_keepalive(rm_h2_conn_t *c, uint32_t idle_ms, uint32_t timeout_ms)
{
    if (idle_ms != 0)
        c->ping_idle_ms = idle_ms;
    if (timeout_ms != 0)
        c->ping_timeout_ms = timeout_ms;
}

void rm_h2_close(rm_h2_conn_t *c)
{
    if (c == NULL)
        return;
    c->dead = 1; /* no stream user data to clear: the session goes away */
    while (c->calls != NULL)
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc): call_free() unlinks the head (whose prev is NULL)
        call_free(c->calls);
    if (c->ng != NULL)
        nghttp2_session_del(c->ng);
    rm_tls_free(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* ------------------------------------------------------------------ unary */

typedef struct st_unary_state_t {
    uint8_t *resp;
    size_t resp_len;
    int status, done;
    char message[256];
} unary_state_t;

static void unary_on_message(void *arg, rm_h2_call_t *call, const uint8_t *msg, size_t len)
{
    unary_state_t *u = arg;
    (void)call;
    if (u->resp != NULL)
        return; /* a unary answer has one message */
    if ((u->resp = malloc(len == 0 ? 1 : len)) != NULL) {
        memcpy(u->resp, msg, len);
        u->resp_len = len;
    }
}

static void unary_on_close(void *arg, rm_h2_call_t *call, int status, const char *message)
{
    unary_state_t *u = arg;
    (void)call;
    u->status = status;
    u->done = 1;
    snprintf(u->message, sizeof(u->message), "%s", message != NULL ? message : "");
}

int rm_h2_unary_on(rm_h2_conn_t *c, const char *path, const uint8_t *req, size_t req_len, int timeout_ms,
                   uint8_t **resp, size_t *resp_len, int *status, char *err, size_t errlen)
{
    static const rm_h2_call_cbs_t cbs = {NULL, unary_on_message, unary_on_close};
    unary_state_t u = {0};
    rm_h2_call_t *call;
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    int ret;

    *resp = NULL;
    *resp_len = 0;
    if ((ret = rm_h2_call_start(c, path, &cbs, &u, &call)) != 0 || (ret = rm_h2_call_send(call, req, req_len)) != 0) {
        snprintf(err, errlen, "cannot start the call: %s", strerror(-ret));
        return ret;
    }
    rm_h2_call_close_send(call);
    while (!u.done) {
        int wait = (int)(deadline - mono_ms());
        if (wait <= 0) {
            /* give up on this call only: reset its stream, the connection stays */
            // NOLINTNEXTLINE(clang-analyzer-unix.Malloc): a call is freed only after unary_on_close() set u.done
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
            call_detach(call);
            snprintf(err, errlen, "%s: no answer within %d ms", path, timeout_ms);
            free(u.resp);
            return -ETIMEDOUT;
        }
        rm_h2_poll(c, wait < 200 ? wait : 200);
    }
    *status = u.status;
    if (u.status == 0 && u.resp == NULL) {
        *status = 13;
        snprintf(err, errlen, "%s: OK without a response message", path);
    } else if (u.status != 0) {
        snprintf(err, errlen, "%s", u.message);
    }
    if (*status == 0) {
        *resp = u.resp;
        *resp_len = u.resp_len;
    } else {
        free(u.resp);
    }
    return 0;
}

int rm_h2_unary(const char *addr, const char *authority, rm_tls_ctx_t *ctx, const char *expected_id, const char *path,
                const uint8_t *req, size_t req_len, int timeout_ms, uint8_t **resp, size_t *resp_len, int *status,
                char *err, size_t errlen)
{
    rm_h2_conn_t *c = NULL;
    int ret;

    *resp = NULL;
    *resp_len = 0;
    if ((ret = rm_h2_connect(addr, authority, ctx, expected_id, timeout_ms, &c, err, errlen)) != 0)
        return ret;
    ret = rm_h2_unary_on(c, path, req, req_len, timeout_ms, resp, resp_len, status, err, errlen);
    rm_h2_close(c);
    return ret;
}
