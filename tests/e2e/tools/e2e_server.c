/* e2e_server: a TCP server for the end-to-end tests, one thread per connection.
 *
 *   e2e_server --listen IP:PORT [--mode echo|banner|reply-after-eof|reset|shut-first|hang] [--banner TEXT]
 *              [--hold-file PATH]
 *
 * Modes:
 *   echo             writes back what it reads; on the peer's EOF it shuts down its write side and closes.
 *   banner           writes --banner as soon as it accepts (a server-first protocol), then behaves like echo.
 *   reply-after-eof  reads until the peer's EOF, then answers "received=N\n" followed by every byte it read.
 *   reset            reads one chunk, then closes with SO_LINGER {1, 0} so the peer gets a TCP reset.
 *   shut-first       writes --banner and shuts down its write side at once (the server half-closes first), then
 *                    keeps reading until the peer's EOF.
 *   hang             accepts and then neither reads nor writes: it waits (at most 60 s) for the peer to go away,
 *                    which it sees without reading (POLLRDHUP), and logs what was left unread as "received".
 *
 * With --hold-file, each connection reads nothing until PATH exists (checked every 20 ms, for at most 60 s), so that
 * what the peer sends backs up (a consumer that stalls).
 *
 * Every event is one JSON line on stdout: "listening", "accept" (peer and local address) and "close" (byte
 * counts, the first 64 bytes received as "head", and how the connection ended), so the tests can check who
 * connected and what arrived. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tool_addr.h"

#define E2E_MAX_STORED (64u * 1024 * 1024) /* reply-after-eof keeps what it reads; more is an error */

typedef enum {
    E2E_MODE_ECHO = 0,
    E2E_MODE_BANNER,
    E2E_MODE_REPLY_AFTER_EOF,
    E2E_MODE_RESET,
    E2E_MODE_SHUT_FIRST,
    E2E_MODE_HANG
} e2e_mode_t;

#define E2E_HEAD_MAX 64 /* the first bytes received are logged, so tests can tell connections apart */

typedef struct st_e2e_server_conn_t {
    int fd;
    char peer[64];
    char local[64];
    uint64_t received;
    uint64_t sent;
    char head[E2E_HEAD_MAX];
    size_t head_len;
} e2e_server_conn_t;

static e2e_mode_t server_mode = E2E_MODE_ECHO;
static const char *server_banner = "220 e2e_server ready\r\n";
static const char *hold_file;
static pthread_mutex_t stdout_lock = PTHREAD_MUTEX_INITIALIZER;

static void emit(const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&stdout_lock);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&stdout_lock);
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(out, outlen, "%s:%u", ip, ntohs(sin->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(out, outlen, "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else {
        snprintf(out, outlen, "?");
    }
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* 0: the peer's EOF, 1: we reset the connection on purpose, <0: -errno */
static const char *end_name(int err)
{
    if (err == 1)
        return "sent_reset";
    if (err == 0)
        return "eof";
    if (err == -ECONNRESET || err == -EPIPE)
        return "reset";
    return "error";
}

static void note_received(e2e_server_conn_t *conn, const char *buf, size_t n)
{
    size_t take = E2E_HEAD_MAX - conn->head_len;

    if (take > n)
        take = n;
    memcpy(conn->head + conn->head_len, buf, take);
    conn->head_len += take;
    conn->received += n;
}

/* Writes `s` as the body of a JSON string (RFC 8259 escapes). */
static void json_escape(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 7 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

/* Echo until EOF (then shut down our write side) or an error. Returns 0 on EOF or -errno. */
static int serve_echo(e2e_server_conn_t *conn)
{
    int fd = conn->fd;
    char buf[65536];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        note_received(conn, buf, (size_t)n);
        int ret = write_all(fd, buf, (size_t)n);
        if (ret != 0)
            return ret;
        conn->sent += (uint64_t)n;
    }
    shutdown(fd, SHUT_WR);
    return 0;
}

static int serve_reply_after_eof(e2e_server_conn_t *conn)
{
    int fd = conn->fd;
    char *data = NULL, header[64];
    size_t len = 0, cap = 0;
    int ret = 0;

    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap == 0 ? 262144 : cap * 2;
            char *n;
            if (ncap > E2E_MAX_STORED) {
                ret = -EFBIG;
                goto Exit;
            }
            if ((n = realloc(data, ncap)) == NULL) {
                ret = -ENOMEM;
                goto Exit;
            }
            data = n;
            cap = ncap;
        }
        ssize_t n = recv(fd, data + len, cap - len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            goto Exit;
        }
        if (n == 0)
            break;
        note_received(conn, data + len, (size_t)n);
        len += (size_t)n;
    }
    snprintf(header, sizeof(header), "received=%zu\n", len);
    if ((ret = write_all(fd, header, strlen(header))) != 0)
        goto Exit;
    if ((ret = write_all(fd, data, len)) != 0)
        goto Exit;
    conn->sent = strlen(header) + len;
    shutdown(fd, SHUT_WR);

Exit:
    free(data);
    return ret;
}

static int serve_reset(e2e_server_conn_t *conn)
{
    int fd = conn->fd;
    char buf[4096];
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ssize_t n;

    do {
        n = recv(fd, buf, sizeof(buf), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    note_received(conn, buf, (size_t)n);
    /* close() with a zero linger time sends RST instead of FIN */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    return 1;
}

/* Half-closes first, then reads to EOF: what the peer sends after our FIN must still arrive. */
static int serve_shut_first(e2e_server_conn_t *conn)
{
    char buf[4096];
    int ret;

    if ((ret = write_all(conn->fd, server_banner, strlen(server_banner))) != 0)
        return ret;
    conn->sent += strlen(server_banner);
    shutdown(conn->fd, SHUT_WR);
    for (;;) {
        ssize_t n = recv(conn->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        note_received(conn, buf, (size_t)n);
    }
}

/* Never reads: waits for the peer's FIN or reset without consuming anything (bounded). */
static int serve_hang(e2e_server_conn_t *conn)
{
    struct pollfd pfd = {.fd = conn->fd, .events = POLLRDHUP};
    int unread = 0;

    for (int i = 0; i < 600; i++) {
        if (poll(&pfd, 1, 100) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0)
            break;
    }
    ioctl(conn->fd, FIONREAD, &unread);
    conn->received = (uint64_t)(unread > 0 ? unread : 0);
    return (pfd.revents & POLLERR) != 0 ? -ECONNRESET : 0;
}

static void *serve_connection(void *arg)
{
    e2e_server_conn_t *conn = arg;
    char head[E2E_HEAD_MAX * 6 + 1];
    int ret = 0;

    emit("{\"event\":\"accept\",\"peer\":\"%s\",\"local\":\"%s\"}", conn->peer, conn->local);
    if (hold_file != NULL) {
        for (int i = 0; i < 3000 && access(hold_file, F_OK) != 0; i++)
            usleep(20 * 1000);
        emit("{\"event\":\"released\",\"peer\":\"%s\"}", conn->peer);
    }
    switch (server_mode) {
    case E2E_MODE_BANNER:
        if ((ret = write_all(conn->fd, server_banner, strlen(server_banner))) != 0)
            break;
        conn->sent += strlen(server_banner);
        ret = serve_echo(conn);
        break;
    case E2E_MODE_ECHO:
        ret = serve_echo(conn);
        break;
    case E2E_MODE_REPLY_AFTER_EOF:
        ret = serve_reply_after_eof(conn);
        break;
    case E2E_MODE_RESET:
        ret = serve_reset(conn);
        break;
    case E2E_MODE_SHUT_FIRST:
        ret = serve_shut_first(conn);
        break;
    case E2E_MODE_HANG:
        ret = serve_hang(conn);
        break;
    }
    json_escape(conn->head, conn->head_len, head, sizeof(head));
    emit("{\"event\":\"close\",\"peer\":\"%s\",\"received\":%llu,\"sent\":%llu,\"head\":\"%s\",\"end\":\"%s\","
         "\"error\":\"%s\"}",
         conn->peer, (unsigned long long)conn->received, (unsigned long long)conn->sent, head, end_name(ret),
         ret >= 0 ? "" : strerror(-ret));
    close(conn->fd);
    free(conn);
    return NULL;
}

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: e2e_server --listen IP:PORT [--mode echo|banner|reply-after-eof|reset|shut-first|hang] [--banner TEXT] "
        "[--hold-file PATH]\n");
}

int main(int argc, char **argv)
{
    const char *listen_arg = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int lfd = -1, one = 1, ret = 1;
    pthread_attr_t attr;

    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_arg = argv[++i];
        } else if (strcmp(argv[i], "--hold-file") == 0 && i + 1 < argc) {
            hold_file = argv[++i];
        } else if (strcmp(argv[i], "--banner") == 0 && i + 1 < argc) {
            server_banner = argv[++i];
        } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            const char *m = argv[++i];
            if (strcmp(m, "echo") == 0) {
                server_mode = E2E_MODE_ECHO;
            } else if (strcmp(m, "banner") == 0) {
                server_mode = E2E_MODE_BANNER;
            } else if (strcmp(m, "reply-after-eof") == 0) {
                server_mode = E2E_MODE_REPLY_AFTER_EOF;
            } else if (strcmp(m, "reset") == 0) {
                server_mode = E2E_MODE_RESET;
            } else if (strcmp(m, "shut-first") == 0) {
                server_mode = E2E_MODE_SHUT_FIRST;
            } else if (strcmp(m, "hang") == 0) {
                server_mode = E2E_MODE_HANG;
            } else {
                fprintf(stderr, "e2e_server: unknown mode %s\n", m);
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (listen_arg == NULL || parse_addr(listen_arg, &ss, &sslen) != 0) {
        usage(stderr);
        return 2;
    }

    if ((lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        perror("e2e_server: socket");
        goto Exit;
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&ss, sslen) != 0 || listen(lfd, 128) != 0) {
        fprintf(stderr, "e2e_server: cannot listen on %s: %s\n", listen_arg, strerror(errno));
        goto Exit;
    }
    emit("{\"event\":\"listening\",\"addr\":\"%s\"}", listen_arg);

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        struct sockaddr_storage peer, local;
        socklen_t plen = sizeof(peer), llen = sizeof(local);
        e2e_server_conn_t *conn;
        pthread_t th;
        int fd;

        if ((fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC)) < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("e2e_server: accept");
            goto Exit;
        }
        getsockname(fd, (struct sockaddr *)&local, &llen);
        if ((conn = calloc(1, sizeof(*conn))) == NULL) {
            close(fd);
            continue;
        }
        conn->fd = fd;
        format_addr(&peer, conn->peer, sizeof(conn->peer));
        format_addr(&local, conn->local, sizeof(conn->local));
        if (pthread_create(&th, &attr, serve_connection, conn) != 0) {
            close(fd);
            free(conn);
        }
    }

Exit:
    if (lfd >= 0)
        close(lfd);
    return ret;
}
