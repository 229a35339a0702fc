/* e2e_client: a scripted TCP client for the end-to-end tests.
 *
 *   e2e_client --connect IP:PORT [--timeout MS] [--out FILE] [--status FILE] STEP...
 *
 * Steps run in order after the connection is made:
 *   send:TEXT      send TEXT (escapes \n \r \t \\ are understood)
 *   sendfile:PATH  send the whole file
 *   read:N         wait until N more bytes have arrived (bytes that arrived during earlier steps count)
 *   readeof        read until the peer's EOF
 *   shutdown       shut down the write side (half-close)
 *   touch:PATH     create PATH (tells the test script a point was reached)
 *   waitfile:PATH  wait until PATH exists (the test script says when to go on)
 *   sleep:MS       sleep
 * The socket is read during every step, so a large send never deadlocks against an echoing peer. Everything
 * received is written to --out (default stdout). Each step must finish within --timeout ms (default 10000).
 *
 * The outcome is one JSON line on stderr (and in --status FILE): {"result":..., "sent":N, "received":N, ...}.
 * Exit status: 0 every step done, 2 connection refused, 3 connection reset, 4 timeout, 5 EOF before a read:N
 * was satisfied, 1 any other error, 64 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool_addr.h"

enum {
    E2E_EXIT_OK = 0,
    E2E_EXIT_ERROR = 1,
    E2E_EXIT_REFUSED = 2,
    E2E_EXIT_RESET = 3,
    E2E_EXIT_TIMEOUT = 4,
    E2E_EXIT_EARLY_EOF = 5,
    E2E_EXIT_USAGE = 64
};

typedef struct st_e2e_client_t {
    int fd;
    int out_fd;
    int peer_eof;
    uint64_t sent;
    uint64_t received;
    uint64_t consumed; /* bytes accounted for by read:N / readeof steps */
    int timeout_ms;
    const char *step; /* the step being run, for the status line */
    char error[256];
} e2e_client_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int exit_for_errno(e2e_client_t *c, const char *what, int err)
{
    snprintf(c->error, sizeof(c->error), "%s: %s", what, strerror(err));
    if (err == ECONNREFUSED)
        return E2E_EXIT_REFUSED;
    if (err == ECONNRESET || err == EPIPE)
        return E2E_EXIT_RESET;
    if (err == ETIMEDOUT)
        return E2E_EXIT_TIMEOUT;
    return E2E_EXIT_ERROR;
}

static int write_out(e2e_client_t *c, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(c->out_fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return exit_for_errno(c, "writing the output", errno);
        }
        buf += n;
        len -= (size_t)n;
    }
    return E2E_EXIT_OK;
}

/* Moves bytes both ways until `sendlen` bytes are sent and, when `want` is nonzero, `received` reaches `want`
 * (or, with `until_eof`, the peer's EOF). Returns an E2E_EXIT_* code. */
static int pump(e2e_client_t *c, const char *sendbuf, size_t sendlen, uint64_t want, int until_eof)
{
    int64_t deadline = now_ms() + c->timeout_ms;
    char buf[65536];
    size_t off = 0;

    for (;;) {
        int need_recv = until_eof ? !c->peer_eof : c->received < want;
        if (off == sendlen && !need_recv)
            return E2E_EXIT_OK;
        if (need_recv && c->peer_eof) {
            snprintf(c->error, sizeof(c->error), "EOF after %llu bytes, wanted %llu", (unsigned long long)c->received,
                     (unsigned long long)want);
            return E2E_EXIT_EARLY_EOF;
        }
        struct pollfd pfd = {.fd = c->fd,
                             .events = (short)((c->peer_eof ? 0 : POLLIN) | (off < sendlen ? POLLOUT : 0))};
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            snprintf(c->error, sizeof(c->error), "timed out after %d ms (sent %zu of %zu, received %llu)",
                     c->timeout_ms, off, sendlen, (unsigned long long)c->received);
            return E2E_EXIT_TIMEOUT;
        }
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            return exit_for_errno(c, "poll", errno);
        }
        if (pr == 0)
            continue;
        if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0 && !c->peer_eof) {
            ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    return exit_for_errno(c, "recv", errno);
            } else if (n == 0) {
                c->peer_eof = 1;
            } else {
                int ret;
                c->received += (uint64_t)n;
                if ((ret = write_out(c, buf, (size_t)n)) != E2E_EXIT_OK)
                    return ret;
            }
        }
        if ((pfd.revents & (POLLOUT | POLLERR)) != 0 && off < sendlen) {
            ssize_t n = send(c->fd, sendbuf + off, sendlen - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    return exit_for_errno(c, "send", errno);
            } else {
                off += (size_t)n;
                c->sent += (uint64_t)n;
            }
        }
    }
}

static size_t unescape(const char *in, char *out)
{
    size_t n = 0;

    for (; *in != '\0'; in++) {
        if (*in == '\\' && in[1] != '\0') {
            in++;
            switch (*in) {
            case 'n':
                out[n++] = '\n';
                break;
            case 'r':
                out[n++] = '\r';
                break;
            case 't':
                out[n++] = '\t';
                break;
            default:
                out[n++] = *in;
                break;
            }
        } else {
            out[n++] = *in;
        }
    }
    return n;
}

static int read_file(e2e_client_t *c, const char *path, char **data, size_t *len)
{
    struct stat st;
    int fd = -1, ret = E2E_EXIT_OK;
    size_t off = 0;

    *data = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
        ret = exit_for_errno(c, path, errno);
        goto Exit;
    }
    if ((*data = malloc((size_t)st.st_size + 1)) == NULL) {
        ret = exit_for_errno(c, "malloc", ENOMEM);
        goto Exit;
    }
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, *data + off, (size_t)st.st_size - off);
        if (n <= 0) {
            ret = exit_for_errno(c, path, n < 0 ? errno : EIO);
            goto Exit;
        }
        off += (size_t)n;
    }
    *len = off;

Exit:
    if (fd >= 0)
        close(fd);
    if (ret != E2E_EXIT_OK) {
        free(*data);
        *data = NULL;
    }
    return ret;
}

static int run_step(e2e_client_t *c, const char *step)
{
    int ret = E2E_EXIT_OK;

    c->step = step;
    if (strncmp(step, "send:", 5) == 0) {
        char *buf = malloc(strlen(step));
        size_t n;
        if (buf == NULL)
            return exit_for_errno(c, "malloc", ENOMEM);
        n = unescape(step + 5, buf);
        ret = pump(c, buf, n, 0, 0);
        free(buf);
    } else if (strncmp(step, "sendfile:", 9) == 0) {
        char *data;
        size_t len = 0;
        if ((ret = read_file(c, step + 9, &data, &len)) == E2E_EXIT_OK) {
            ret = pump(c, data, len, 0, 0);
            free(data);
        }
    } else if (strncmp(step, "read:", 5) == 0) {
        uint64_t n = strtoull(step + 5, NULL, 10);
        if ((ret = pump(c, NULL, 0, c->consumed + n, 0)) == E2E_EXIT_OK)
            c->consumed += n;
    } else if (strcmp(step, "readeof") == 0) {
        if ((ret = pump(c, NULL, 0, 0, 1)) == E2E_EXIT_OK)
            c->consumed = c->received;
    } else if (strcmp(step, "shutdown") == 0) {
        if (shutdown(c->fd, SHUT_WR) != 0)
            ret = exit_for_errno(c, "shutdown", errno);
    } else if (strncmp(step, "touch:", 6) == 0) {
        int fd = open(step + 6, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return exit_for_errno(c, step + 6, errno);
        close(fd);
    } else if (strncmp(step, "waitfile:", 9) == 0) {
        int64_t deadline = now_ms() + c->timeout_ms;
        while (access(step + 9, F_OK) != 0) {
            if (now_ms() >= deadline) {
                snprintf(c->error, sizeof(c->error), "%s did not appear within %d ms", step + 9, c->timeout_ms);
                return E2E_EXIT_TIMEOUT;
            }
            usleep(20000);
        }
    } else if (strncmp(step, "sleep:", 6) == 0) {
        usleep((useconds_t)strtoul(step + 6, NULL, 10) * 1000);
    } else {
        snprintf(c->error, sizeof(c->error), "unknown step %s", step);
        ret = E2E_EXIT_USAGE;
    }
    return ret;
}

static const char *result_name(int code)
{
    switch (code) {
    case E2E_EXIT_OK:
        return "ok";
    case E2E_EXIT_REFUSED:
        return "refused";
    case E2E_EXIT_RESET:
        return "reset";
    case E2E_EXIT_TIMEOUT:
        return "timeout";
    case E2E_EXIT_EARLY_EOF:
        return "eof";
    case E2E_EXIT_USAGE:
        return "usage";
    default:
        return "error";
    }
}

/* The error text is produced here from strerror() and fixed strings, so it needs no JSON escaping beyond quotes. */
static void report(e2e_client_t *c, int code, const char *status_path)
{
    char line[768];

    for (char *p = c->error; *p != '\0'; p++)
        if (*p == '"' || *p == '\\')
            *p = '\'';
    snprintf(line, sizeof(line),
             "{\"result\":\"%s\",\"sent\":%llu,\"received\":%llu,\"peer_eof\":%s,\"step\":\"%s\",\"error\":\"%s\"}\n",
             result_name(code), (unsigned long long)c->sent, (unsigned long long)c->received,
             c->peer_eof ? "true" : "false", c->step != NULL && strchr(c->step, '"') == NULL ? c->step : "", c->error);
    fputs(line, stderr);
    if (status_path != NULL) {
        FILE *fp = fopen(status_path, "w");
        if (fp != NULL) {
            fputs(line, fp);
            fclose(fp);
        }
    }
}

int main(int argc, char **argv)
{
    e2e_client_t c = {.fd = -1, .out_fd = 1, .timeout_ms = 10000};
    const char *connect_arg = NULL, *out_path = NULL, *status_path = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int i, ret = E2E_EXIT_OK;

    signal(SIGPIPE, SIG_IGN);
    for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
            connect_arg = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            c.timeout_ms = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc) {
            status_path = argv[++i];
        } else {
            break;
        }
    }
    if (connect_arg == NULL || parse_addr(connect_arg, &ss, &sslen) != 0 || c.timeout_ms <= 0) {
        fprintf(stderr, "usage: e2e_client --connect IP:PORT [--timeout MS] [--out FILE] [--status FILE] STEP...\n");
        return E2E_EXIT_USAGE;
    }
    if (out_path != NULL && (c.out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        perror(out_path);
        return E2E_EXIT_ERROR;
    }

    c.step = "connect";
    if ((c.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
        ret = exit_for_errno(&c, "socket", errno);
        goto Exit;
    }
    if (connect(c.fd, (struct sockaddr *)&ss, sslen) != 0) {
        struct pollfd pfd = {.fd = c.fd, .events = POLLOUT};
        int err = 0;
        socklen_t errlen = sizeof(err);
        if (errno != EINPROGRESS) {
            ret = exit_for_errno(&c, "connect", errno);
            goto Exit;
        }
        if (poll(&pfd, 1, c.timeout_ms) <= 0) {
            snprintf(c.error, sizeof(c.error), "connect timed out after %d ms", c.timeout_ms);
            ret = E2E_EXIT_TIMEOUT;
            goto Exit;
        }
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &errlen);
        if (err != 0) {
            ret = exit_for_errno(&c, "connect", err);
            goto Exit;
        }
    }
    for (; i < argc; i++)
        if ((ret = run_step(&c, argv[i])) != E2E_EXIT_OK)
            goto Exit;
    c.step = "done";

Exit:
    report(&c, ret, status_path);
    if (c.fd >= 0)
        close(c.fd);
    if (c.out_fd > 1)
        close(c.out_fd);
    return ret;
}
