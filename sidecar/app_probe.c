/* Running one of the app's original probes as the kubelet would (app_health.h): tcpSocket, httpGet (HTTP or HTTPS
 * without verification) and grpc (grpc.health.v1.Health/Check over HTTP/2 cleartext, nghttp2). Blocking, in a
 * prober thread, every step bounded by the probe's timeoutSeconds. */
#include "app_health.h"
#include "grpc_h2.h"

#include "ringmesh/tls_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_REQ_MAX  8192
#define HTTP_HEAD_MAX 4096
#define GRPC_BODY_MAX 4096

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        uint64_t now = now_ms();
        if (now >= deadline_ms)
            return -ETIMEDOUT;
        int n = poll(&pfd, 1, (int)(deadline_ms - now));
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* Connects to host:port (a numeric address, else resolved) before the deadline. Returns the non-blocking socket,
 * or a negative error with the reason in `why`. */
static int connect_to(const char *host, uint16_t port, uint64_t deadline_ms, char *why, size_t whylen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
    char portstr[8];
    int fd = -1, ret, gai;
    socklen_t elen = sizeof(ret);

    snprintf(portstr, sizeof(portstr), "%u", port);
    if ((gai = getaddrinfo(host, portstr, &hints, &res)) != 0 || res == NULL) {
        snprintf(why, whylen, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -EHOSTUNREACH;
    }
    if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
        ret = -errno;
        snprintf(why, whylen, "socket: %s", strerror(-ret));
        goto Exit;
    }
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            ret = -errno;
        } else if ((ret = wait_fd(fd, POLLOUT, deadline_ms)) == 0) {
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &ret, &elen) != 0)
                ret = errno;
            ret = -ret;
        }
        if (ret != 0) {
            snprintf(why, whylen, "connect to %s port %u: %s", host, port,
                     ret == -ETIMEDOUT ? "timed out" : strerror(-ret));
            goto Exit;
        }
    }
    ret = fd;
    fd = -1;
Exit:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return ret;
}

static int send_all(int fd, const void *buf, size_t len, uint64_t deadline_ms)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
        int ret;
        if (w > 0)
            done += (size_t)w;
        else if (w < 0 && errno == EAGAIN) {
            if ((ret = wait_fd(fd, POLLOUT, deadline_ms)) != 0)
                return ret;
        } else if (w < 0 && errno != EINTR)
            return -errno;
    }
    return 0;
}

static ssize_t recv_some(int fd, void *buf, size_t len, uint64_t deadline_ms)
{
    for (;;) {
        ssize_t r = recv(fd, buf, len, 0);
        int ret;
        if (r >= 0)
            return r;
        if (errno == EAGAIN) {
            if ((ret = wait_fd(fd, POLLIN, deadline_ms)) != 0)
                return ret;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * tcpSocket
 * ------------------------------------------------------------------------------------------------------- */

static int probe_tcp(const rm_app_probe_t *p, const char *host, uint64_t deadline_ms, char *why, size_t whylen)
{
    int fd = connect_to(host, p->port, deadline_ms, why, whylen);
    if (fd < 0)
        return 0;
    close(fd);
    snprintf(why, whylen, "connected to port %u", p->port);
    return 1;
}

/* ---------------------------------------------------------------------------------------------------------
 * httpGet
 * ------------------------------------------------------------------------------------------------------- */

/* The request the kubelet sends: its User-Agent and Accept unless the probe sets them, the probe's headers, Host
 * from a "Host" header or else host:port. */
static int http_request(const rm_app_probe_t *p, const char *host, char *buf, size_t len)
{
    const char *host_hdr = NULL;
    int has_ua = 0, has_accept = 0, n;
    for (size_t i = 0; i < p->num_headers; i++) {
        if (strcasecmp(p->header_names[i], "Host") == 0)
            host_hdr = p->header_values[i] != NULL ? p->header_values[i] : "";
        has_ua |= strcasecmp(p->header_names[i], "User-Agent") == 0;
        has_accept |= strcasecmp(p->header_names[i], "Accept") == 0;
    }
    if (host_hdr != NULL)
        n = snprintf(buf, len, "GET %s HTTP/1.1\r\nHost: %s\r\n", p->path, host_hdr);
    else if (strchr(host, ':') != NULL)
        n = snprintf(buf, len, "GET %s HTTP/1.1\r\nHost: [%s]:%u\r\n", p->path, host, p->port);
    else
        n = snprintf(buf, len, "GET %s HTTP/1.1\r\nHost: %s:%u\r\n", p->path, host, p->port);
    if (!has_ua)
        n += snprintf(buf + n, len - (size_t)n, "User-Agent: kube-probe/1.33\r\n");
    if (!has_accept)
        n += snprintf(buf + n, len - (size_t)n, "Accept: */*\r\n");
    for (size_t i = 0; i < p->num_headers && (size_t)n < len; i++)
        if (strcasecmp(p->header_names[i], "Host") != 0)
            n += snprintf(buf + n, len - (size_t)n, "%s: %s\r\n", p->header_names[i],
                          p->header_values[i] != NULL ? p->header_values[i] : "");
    if ((size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "Connection: close\r\n\r\n");
    return (size_t)n < len ? n : -1;
}

/* "HTTP/1.x NNN ..." -> NNN, or -1 */
static int http_status(const char *line, size_t len)
{
    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (line[i] < '0' || line[i] > '9')
            return -1;
    if (len > 12 && line[12] != ' ' && line[12] != '\r')
        return -1;
    return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

static int probe_http(const rm_app_probe_t *p, const char *host, uint64_t deadline_ms, char *why, size_t whylen)
{
    char *req = malloc(HTTP_REQ_MAX), head[HTTP_HEAD_MAX];
    rm_tls_probe_t *tls = NULL;
    size_t have = 0;
    int fd = -1, ok = 0, n, status, ret;

    if (req == NULL) {
        snprintf(why, whylen, "out of memory");
        goto Exit;
    }
    if ((n = http_request(p, host, req, HTTP_REQ_MAX)) < 0) {
        snprintf(why, whylen, "the request is larger than %d bytes", HTTP_REQ_MAX);
        goto Exit;
    }
    if ((fd = connect_to(host, p->port, deadline_ms, why, whylen)) < 0)
        goto Exit;
    if (p->https && rm_tls_probe_open(fd, host, deadline_ms, &tls, why, whylen) != 0)
        goto Exit;
    ret =
        tls != NULL ? rm_tls_probe_write(tls, req, (size_t)n, deadline_ms) : send_all(fd, req, (size_t)n, deadline_ms);
    if (ret != 0) {
        snprintf(why, whylen, "sending the request: %s", ret == -ETIMEDOUT ? "timed out" : strerror(-ret));
        goto Exit;
    }
    /* the status line is all that decides */
    while (memchr(head, '\n', have) == NULL && have < sizeof(head)) {
        ssize_t r = tls != NULL ? rm_tls_probe_read(tls, head + have, sizeof(head) - have, deadline_ms)
                                : recv_some(fd, head + have, sizeof(head) - have, deadline_ms);
        if (r <= 0) {
            snprintf(why, whylen, "reading the response: %s",
                     r == 0            ? "connection closed"
                     : r == -ETIMEDOUT ? "timed out"
                                       : strerror((int)-r));
            goto Exit;
        }
        have += (size_t)r;
    }
    if ((status = http_status(head, have)) < 0) {
        snprintf(why, whylen, "the response is not HTTP/1.x");
        goto Exit;
    }
    /* as the kubelet: 200..399 pass (a redirect is not followed; it counts as passing) */
    ok = status >= 200 && status < 400;
    snprintf(why, whylen, "HTTP status %d", status);
Exit:
    rm_tls_probe_free(tls);
    if (fd >= 0)
        close(fd);
    free(req);
    return ok;
}

/* ---------------------------------------------------------------------------------------------------------
 * grpc: one unary call of grpc.health.v1.Health/Check on a new HTTP/2 cleartext connection (prior knowledge).
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_grpc_call_t {
    int fd;
    uint64_t deadline_ms;
    uint8_t req[5 + 2 + 255];
    size_t req_len, req_sent;
    uint8_t body[GRPC_BODY_MAX];
    size_t body_len;
    int grpc_status; /* -1 until seen */
    char grpc_message[128];
    int http_status;
    int closed;
    uint32_t error_code;
} grpc_call_t;

static ssize_t grpc_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *arg)
{
    grpc_call_t *g = arg;
    return send_all(g->fd, data, len, g->deadline_ms) == 0 ? (ssize_t)len : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static ssize_t grpc_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                              nghttp2_data_source *src, void *arg)
{
    grpc_call_t *g = arg;
    size_t n = g->req_len - g->req_sent < len ? g->req_len - g->req_sent : len;
    memcpy(buf, g->req + g->req_sent, n);
    g->req_sent += n;
    if (g->req_sent == g->req_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int grpc_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                          const uint8_t *value, size_t valuelen, uint8_t flags, void *arg)
{
    grpc_call_t *g = arg;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3)
        g->http_status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0 && valuelen > 0 && valuelen < 4)
        g->grpc_status = rm_h2_parse_digits(value, valuelen, 2, 2);
    else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(g->grpc_message, sizeof(g->grpc_message), "%.*s", (int)valuelen, (const char *)value);
    return 0;
}

static int grpc_on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *arg)
{
    grpc_call_t *g = arg;
    if (len > sizeof(g->body) - g->body_len)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* a health answer is a few bytes */
    memcpy(g->body + g->body_len, data, len);
    g->body_len += len;
    return 0;
}

static int grpc_on_close(nghttp2_session *s, int32_t sid, uint32_t error_code, void *arg)
{
    grpc_call_t *g = arg;
    g->closed = 1;
    g->error_code = error_code;
    return 0;
}

/* HealthCheckResponse: field 1 (status, varint). Returns the status, 0 (UNKNOWN) when absent, -1 when malformed. */
static int health_status(const uint8_t *msg, size_t len)
{
    int status = 0;
    size_t i = 0;
    while (i < len) {
        uint64_t key = 0, v = 0;
        int shift = 0;
        do {
            if (i >= len || shift > 63)
                return -1;
            key |= (uint64_t)(msg[i] & 0x7f) << shift, shift += 7;
        } while (msg[i++] & 0x80);
        if ((key & 7) == 0) {
            shift = 0;
            do {
                if (i >= len || shift > 63)
                    return -1;
                v |= (uint64_t)(msg[i] & 0x7f) << shift, shift += 7;
            } while (msg[i++] & 0x80);
            if (key >> 3 == 1)
                status = (int)(v > 1000 ? 1000 : v);
        } else if ((key & 7) == 2) {
            shift = 0;
            do {
                if (i >= len || shift > 63)
                    return -1;
                v |= (uint64_t)(msg[i] & 0x7f) << shift, shift += 7;
            } while (msg[i++] & 0x80);
            if (v > len - i)
                return -1;
            i += v;
        } else {
            return -1; /* no other wire type appears in this message */
        }
    }
    return status;
}

static int probe_grpc(const rm_app_probe_t *p, const char *host, uint64_t deadline_ms, char *why, size_t whylen)
{
    static const char *const status_names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    grpc_call_t *g = calloc(1, sizeof(*g));
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_session *session = NULL;
    char authority[300];
    uint8_t buf[4096];
    size_t slen = strlen(p->service);
    int ok = 0, st;

    if (g == NULL) {
        snprintf(why, whylen, "out of memory");
        goto Exit;
    }
    g->fd = -1;
    g->grpc_status = -1;
    g->deadline_ms = deadline_ms;
    if (slen > 255) {
        snprintf(why, whylen, "the service name is longer than 255 bytes");
        goto Exit;
    }
    /* a gRPC message: uncompressed, 4-byte length, then HealthCheckRequest{service = 1} */
    g->req_len = 5 + (slen > 0 ? 2 + slen : 0);
    g->req[4] = (uint8_t)(g->req_len - 5);
    if (slen > 0) {
        g->req[5] = 0x0a;
        g->req[6] = (uint8_t)slen;
        memcpy(g->req + 7, p->service, slen);
    }
    snprintf(authority, sizeof(authority), strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host, p->port);
    if ((g->fd = connect_to(host, p->port, deadline_ms, why, whylen)) < 0)
        goto Exit;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        snprintf(why, whylen, "out of memory");
        goto Exit;
    }
    nghttp2_session_callbacks_set_send_callback(cbs, grpc_send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, grpc_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, grpc_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, grpc_on_close);
    if (nghttp2_session_client_new(&session, cbs, g) != 0) {
        snprintf(why, whylen, "out of memory");
        goto Exit;
    }
    {
#define NV(n, v)                                                                                                       \
    {                                                                                                                  \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME                         \
    }
        const nghttp2_nv hdrs[] = {
            NV(":method", "POST"),
            NV(":scheme", "http"),
            NV(":path", "/grpc.health.v1.Health/Check"),
            NV(":authority", authority),
            NV("content-type", "application/grpc"),
            NV("te", "trailers"),
            NV("user-agent", "kube-probe/1.33"),
        };
#undef NV
        nghttp2_data_provider body = {.read_callback = grpc_read_body};
        nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, NULL, 0);
        if (nghttp2_submit_request(session, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &body, g) < 0) {
            snprintf(why, whylen, "the request could not be made");
            goto Exit;
        }
    }
    while (!g->closed) {
        ssize_t r;
        if (nghttp2_session_send(session) != 0) {
            snprintf(why, whylen, "sending the call failed");
            goto Exit;
        }
        if ((r = recv_some(g->fd, buf, sizeof(buf), deadline_ms)) <= 0) {
            snprintf(why, whylen, "waiting for the answer: %s",
                     r == 0            ? "connection closed"
                     : r == -ETIMEDOUT ? "timed out"
                                       : strerror((int)-r));
            goto Exit;
        }
        if (nghttp2_session_mem_recv(session, buf, (size_t)r) < 0) {
            snprintf(why, whylen, "the answer is not HTTP/2");
            goto Exit;
        }
    }
    if (g->http_status != 200) {
        snprintf(why, whylen, "HTTP/2 status %d", g->http_status);
        goto Exit;
    }
    if (g->grpc_status != 0) {
        snprintf(why, whylen, "gRPC status %d%s%s", g->grpc_status, g->grpc_message[0] ? ": " : "", g->grpc_message);
        goto Exit;
    }
    if (g->body_len < 5 || g->body[0] != 0 ||
        ((size_t)g->body[1] << 24 | (size_t)g->body[2] << 16 | (size_t)g->body[3] << 8 | g->body[4]) !=
            g->body_len - 5 ||
        (st = health_status(g->body + 5, g->body_len - 5)) < 0) {
        snprintf(why, whylen, "the answer is not one HealthCheckResponse");
        goto Exit;
    }
    ok = st == 1;
    if (st < 4)
        snprintf(why, whylen, "%s", status_names[st]);
    else
        snprintf(why, whylen, "status %d", st);
Exit:
    if (session != NULL)
        nghttp2_session_del(session);
    nghttp2_session_callbacks_del(cbs);
    if (g != NULL && g->fd >= 0)
        close(g->fd);
    free(g);
    return ok;
}

int rm_app_probe_run(const rm_app_probe_t *p, const char *default_host, uint64_t start_ms, char *why, size_t whylen)
{
    uint64_t deadline_ms = (start_ms != 0 ? start_ms : now_ms()) + (uint64_t)p->timeout_s * 1000;
    const char *host = p->host != NULL ? p->host : default_host;
    if (now_ms() >= deadline_ms) {
        snprintf(why, whylen, "timed out waiting for a prober thread");
        return 0;
    }
    switch (p->kind) {
    case RM_APP_PROBE_HTTP:
        return probe_http(p, host, deadline_ms, why, whylen);
    case RM_APP_PROBE_TCP:
        return probe_tcp(p, host, deadline_ms, why, whylen);
    case RM_APP_PROBE_GRPC:
        return probe_grpc(p, host, deadline_ms, why, whylen);
    }
    snprintf(why, whylen, "unknown probe");
    return 0;
}
