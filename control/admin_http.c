#include "admin_http.h"
#include "control_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>

#define REQUEST_MAX   8192
#define METRICS_MAX   (256u << 10)
#define IO_TIMEOUT_MS 2000

struct st_rm_admin_http_t {
    int fd, stop_fd;
    pthread_t thread;
    rm_admin_metrics_cb metrics;
    rm_admin_ready_cb ready;
    void *arg;
};

typedef struct st_request_t {
    char url[256];
    int complete, too_long;
} request_t;

int rm__control_parse_addr(const char *s, struct sockaddr_storage *ss, unsigned *len)
{
    char host[128];
    const char *colon;
    unsigned long port;
    char *end;

    memset(ss, 0, sizeof(*ss));
    if (s == NULL)
        return -EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        colon = close + 1;
    } else {
        if ((colon = strrchr(s, ':')) == NULL || (size_t)(colon - s) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535)
        return -EINVAL;
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*sin6);
        return 0;
    }
    return -EINVAL;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    request_t *r = p->data;
    size_t have = strlen(r->url);
    if (have + len >= sizeof(r->url)) {
        r->too_long = 1;
        return 1;
    }
    memcpy(r->url + have, at, len);
    r->url[have + len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    ((request_t *)p->data)->complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {.on_url = on_url, .on_message_complete = on_complete};

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, IO_TIMEOUT_MS) <= 0)
            return;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *reason, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     reason, type, len);
    write_all(fd, head, (size_t)n);
    write_all(fd, body, len);
}

static void serve(void *arg, int fd)
{
    rm_admin_http_t *a = arg;
    http_parser parser;
    request_t req = {0};
    char buf[REQUEST_MAX];
    size_t used = 0;

    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &req;
    while (!req.complete && used < sizeof(buf)) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, IO_TIMEOUT_MS) <= 0)
            return; /* slow or silent client: drop it, the thread serves others */
        ssize_t n = recv(fd, buf + used, sizeof(buf) - used, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        size_t done = http_parser_execute(&parser, &settings, buf + used, (size_t)n);
        used += (size_t)n;
        if (!req.complete && (HTTP_PARSER_ERRNO(&parser) != HPE_OK || done != (size_t)n)) {
            respond(fd, req.too_long ? 414 : 400, req.too_long ? "URI Too Long" : "Bad Request", "text/plain",
                    "bad request\n", 12);
            return;
        }
    }
    if (!req.complete) {
        respond(fd, 413, "Request Entity Too Large", "text/plain", "request too large\n", 18);
        return;
    }
    if (parser.method != HTTP_GET) {
        respond(fd, 405, "Method Not Allowed", "text/plain", "only GET\n", 9);
        return;
    }
    if (strcmp(req.url, "/healthz/live") == 0) {
        respond(fd, 200, "OK", "text/plain", "live\n", 5);
    } else if (strcmp(req.url, "/healthz/ready") == 0) {
        if (a->ready(a->arg))
            respond(fd, 200, "OK", "text/plain", "ready\n", 6);
        else
            respond(fd, 503, "Service Unavailable", "text/plain", "not ready\n", 10);
    } else if (strcmp(req.url, "/metrics") == 0) {
        char *body = malloc(METRICS_MAX);
        if (body == NULL) {
            respond(fd, 503, "Service Unavailable", "text/plain", "out of memory\n", 14);
            return;
        }
        size_t len = a->metrics(a->arg, body, METRICS_MAX);
        respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len);
        free(body);
    } else {
        respond(fd, 404, "Not Found", "text/plain", "not found\n", 10);
    }
}

static void *admin_thread(void *arg)
{
    rm_admin_http_t *a = arg;
    rm__control_accept_loop(a->fd, a->stop_fd, SOCK_CLOEXEC, serve, a);
    return NULL;
}

int rm_admin_http_start(const char *addr, rm_admin_metrics_cb metrics, rm_admin_ready_cb ready, void *arg,
                        rm_admin_http_t **out, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    unsigned len;
    rm_admin_http_t *a;
    int one = 1, ret;

    if (rm__control_parse_addr(addr, &ss, &len) != 0) {
        snprintf(err, errlen, "--admin-listen %s: not ip:port or [ip6]:port", addr);
        return -EINVAL;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return -ENOMEM;
    a->metrics = metrics;
    a->ready = ready;
    a->arg = arg;
    a->stop_fd = -1;
    if ((a->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(a->fd, (struct sockaddr *)&ss, len) != 0 || listen(a->fd, 64) != 0 ||
        (a->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        ret = -errno;
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        goto Fail;
    }
    if ((ret = pthread_create(&a->thread, NULL, admin_thread, a)) != 0) {
        ret = -ret;
        snprintf(err, errlen, "cannot start the admin thread");
        goto Fail;
    }
    *out = a;
    return 0;
Fail:
    if (a->fd >= 0)
        close(a->fd);
    if (a->stop_fd >= 0)
        close(a->stop_fd);
    free(a);
    return ret;
}

void rm_admin_http_stop(rm_admin_http_t *a)
{
    uint64_t one = 1;

    if (a == NULL)
        return;
    if (write(a->stop_fd, &one, sizeof(one)) != sizeof(one))
        pthread_cancel(a->thread);
    pthread_join(a->thread, NULL);
    close(a->fd);
    close(a->stop_fd);
    free(a);
}
