/* e2e_load: load for the end-to-end tests and the benchmarks (bench/conns.sh, bench/soak.sh,
 * bench/handshake-flood.sh). One thread, one epoll, nonblocking sockets, every wait bounded.
 *
 *   e2e_load serve --listen IP:PORT [--http SIZE]
 *       Serves any number of connections. Without --http it echoes what it reads (a peer's EOF closes the
 *       connection). With --http SIZE it answers every HTTP/1.1 request head with "200 OK" and a SIZE-byte body, on
 *       the same connection (keep-alive).
 *
 *   e2e_load hold --connect IP:PORT --conns N [--ready FILE] [--release FILE] [--timeout MS]
 *                 [--step K [--step-pause MS]] [--pids PID,PID...]
 *       Opens N connections (at most 256 connecting at a time); on each, sends 8 bytes and waits for their echo.
 *       When every connection has echoed or failed it prints {"event":"held",...} and creates FILE (--ready), then
 *       keeps them all open until --release FILE exists (or --timeout ms more pass), and closes them. With --step,
 *       it opens them K at a time: once every connection of a step has echoed or failed it waits --step-pause ms
 *       (default 1000: the proxies' tick, when they give memory back, comes in between) and prints
 *       {"event":"step","held":...,"failed":...,"procs":[...]} before opening the next K; the memory each
 *       connection adds is the slope between the steps.
 *
 *   e2e_load requests --connect IP:PORT --conns C --requests N [--size B] [--http] [--sample-every K]
 *                     [--pids PID,PID...] [--timeout MS] [--stop-file FILE] [--interval MS] [--new-conn]
 *       C keep-alive connections (with --new-conn, a new connection for every request) share N request/response
 *       exchanges, each connection pausing --interval ms between its requests (steady, bounded traffic): B bytes sent
 * and their echo checked byte for byte, or (--http, against "serve --http B") a GET whose answer must be a 200 with a
 * B-byte body. A request that fails (reset, early EOF, wrong answer, no answer within --timeout) is counted, and its
 * connection is opened again. Every K requests it prints
 * {"event":"sample","requests":...,"failed":...,"procs":[{"pid":P, "rss_kb":...,"fds":...}]} for the --pids.
 * --stop-file ends the run early (after the requests in flight).
 *
 * The last line is {"event":"done",...} with the counts, requests/s and the latency percentiles (microseconds).
 * Exit status: 0 when nothing failed, 1 when something did, 64 on bad usage. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, memmem */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool_addr.h"

#define LOAD_MAX_SIZE       65536
#define LOAD_MAX_PIDS       8
#define LOAD_CONNECTING_MAX 256

enum { ST_IDLE = 0, ST_CONNECTING, ST_SENDING, ST_RECEIVING, ST_HELD, ST_FAILED, ST_CLOSED, ST_WAIT };

typedef struct st_load_conn_t {
    int fd;
    int state;
    char *out;
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
    size_t want; /* bytes of the answer expected (0: still reading an HTTP head) */
    int64_t started_us;
    int64_t deadline_ms;
} load_conn_t;

static struct sockaddr_storage target;
static socklen_t target_len;
static int epfd = -1;
static int timeout_ms = 10000;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void)
{
    return now_us() / 1000;
}

static int file_exists(const char *path)
{
    struct stat st;
    return path != NULL && stat(path, &st) == 0;
}

static void touch(const char *path)
{
    int fd;
    if (path != NULL && (fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0)
        close(fd);
}

/* Descriptors for N connections: the soft limit raised as far as the hard one allows. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void ep_set(load_conn_t *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(epfd, op, c->fd, &ev);
}

/* ------------------------------------------------------------------ serve */

typedef struct st_srv_conn_t {
    load_conn_t c;
    int listener;
} srv_conn_t;

static void srv_close(load_conn_t *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* Writes what is pending; returns -1 on error, 0 when everything left, 1 when some is still pending. */
static int flush_out(load_conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 1 : -1;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

static int run_serve(const char *listen_addr, long http_size)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int lfd, one = 1;
    char *body = NULL;
    size_t body_len = 0;

    if (parse_addr(listen_addr, &ss, &sl) != 0) {
        fprintf(stderr, "e2e_load: bad --listen %s\n", listen_addr);
        return 64;
    }
    raise_nofile();
    lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, sl) != 0 || listen(lfd, 4096) != 0) {
        fprintf(stderr, "e2e_load: listen on %s: %s\n", listen_addr, strerror(errno));
        return 1;
    }
    if (http_size >= 0) {
        char head[128];
        int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %ld\r\n\r\n", http_size);
        body_len = (size_t)hl + (size_t)http_size;
        body = malloc(body_len);
        memcpy(body, head, (size_t)hl);
        memset(body + hl, 'x', (size_t)http_size);
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    srv_conn_t lst = {.c = {.fd = lfd}, .listener = 1};
    ep_set(&lst.c, EPOLLIN, EPOLL_CTL_ADD);
    printf("{\"event\":\"listening\",\"addr\":\"%s\"}\n", listen_addr);
    fflush(stdout);
    for (;;) {
        struct epoll_event evs[256];
        int n = epoll_wait(epfd, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            srv_conn_t *s = evs[i].data.ptr;
            load_conn_t *c = &s->c;
            if (s->listener) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    srv_conn_t *ns = calloc(1, sizeof(*ns));
                    ns->c.fd = fd;
                    ns->c.in_cap = LOAD_MAX_SIZE;
                    ns->c.in = malloc(ns->c.in_cap);
                    ns->c.out = malloc(LOAD_MAX_SIZE + 256);
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    ep_set(&ns->c, EPOLLIN, EPOLL_CTL_ADD);
                }
                continue;
            }
            if (c->out_len > 0) {
                int r = flush_out(c);
                if (r < 0) {
                    srv_close(c);
                    continue;
                }
                if (r > 0)
                    continue;
                ep_set(c, EPOLLIN, EPOLL_CTL_MOD);
            }
            ssize_t got = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
            if (got == 0 || (got < 0 && errno != EAGAIN)) {
                srv_close(c);
                continue;
            }
            if (got < 0)
                continue;
            c->in_len += (size_t)got;
            if (body == NULL) {
                memcpy(c->out, c->in, c->in_len);
                c->out_len = c->in_len;
                c->in_len = 0;
            } else {
                char *end;
                /* one answer per complete head; a client that sends no head within the buffer is cut */
                while (c->in_len >= 4 && (end = memmem(c->in, c->in_len, "\r\n\r\n", 4)) != NULL &&
                       c->out_len + body_len <= LOAD_MAX_SIZE + 256) {
                    size_t used = (size_t)(end + 4 - c->in);
                    memcpy(c->out + c->out_len, body, body_len);
                    c->out_len += body_len;
                    memmove(c->in, c->in + used, c->in_len - used);
                    c->in_len -= used;
                }
                if (c->in_len == c->in_cap) {
                    srv_close(c);
                    continue;
                }
            }
            int r = flush_out(c);
            if (r < 0)
                srv_close(c);
            else if (r > 0)
                ep_set(c, EPOLLOUT, EPOLL_CTL_MOD);
        }
    }
}

/* ------------------------------------------------------------------ client side */

static int conn_open(load_conn_t *c)
{
    int one = 1;
    c->fd = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&target, target_len) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(c->fd);
        c->fd = -1;
        return -e;
    }
    c->state = ST_CONNECTING;
    c->deadline_ms = now_ms() + timeout_ms;
    ep_set(c, EPOLLOUT, EPOLL_CTL_ADD);
    return 0;
}

static void conn_close(load_conn_t *c, int state)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = state;
    c->in_len = c->out_len = c->out_off = 0;
}

/* Moves the connection on after an event. Returns 1 when its exchange is complete, -1 when it failed, 0 else. */
static int conn_io(load_conn_t *c, uint32_t events, int http)
{
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP)) != 0)
            return -1;
        c->state = ST_SENDING;
    }
    if (c->state == ST_SENDING) {
        int r = flush_out(c);
        if (r < 0)
            return -1;
        if (r > 0)
            return 0;
        c->state = ST_RECEIVING;
        ep_set(c, EPOLLIN, EPOLL_CTL_MOD);
        return 0;
    }
    if (c->state == ST_RECEIVING) {
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0)
            return -1;
        c->in_len += (size_t)n;
        if (http && c->want == 0) {
            char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
            const char *cl;
            if (end == NULL)
                return c->in_len == c->in_cap ? -1 : 0;
            *end = '\0';
            if (strncmp(c->in, "HTTP/1.1 200 ", 13) != 0 || (cl = strstr(c->in, "Content-Length: ")) == NULL)
                return -1;
            c->want = (size_t)(end + 4 - c->in) + strtoul(cl + 16, NULL, 10);
            if (c->want > c->in_cap)
                return -1;
        }
        if (c->in_len < c->want)
            return 0;
        if (c->in_len > c->want)
            return -1; /* more than was asked for: the stream is out of step */
        if (!http && memcmp(c->in, c->out, c->want) != 0)
            return -1;
        return 1;
    }
    if (c->state == ST_HELD && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
        return -1; /* a held connection must stay quiet and open */
    return 0;
}

/* Puts a new request into the connection's send buffer. */
static void conn_request(load_conn_t *c, uint64_t seq, size_t size, int http)
{
    if (http) {
        c->out_len = (size_t)snprintf(c->out, size + 128, "GET /load/%llu HTTP/1.1\r\nHost: load\r\n\r\n",
                                      (unsigned long long)seq);
        c->want = 0;
    } else {
        for (size_t i = 0; i < size; i++)
            c->out[i] = (char)('a' + (seq + i) % 26);
        c->out_len = size;
        c->want = size;
    }
    c->out_off = 0;
    c->in_len = 0;
    c->started_us = now_us();
    c->deadline_ms = now_ms() + timeout_ms;
    c->state = c->state == ST_CONNECTING ? ST_CONNECTING : ST_SENDING;
    if (c->state == ST_SENDING)
        ep_set(c, EPOLLOUT, EPOLL_CTL_MOD);
}

static void print_procs(const long *pids, int npids)
{
    printf("\"procs\":[");
    for (int i = 0; i < npids; i++) {
        char path[64], line[256];
        long rss = -1, fds = 0;
        FILE *f;
        snprintf(path, sizeof(path), "/proc/%ld/status", pids[i]);
        if ((f = fopen(path, "r")) != NULL) {
            while (fgets(line, sizeof(line), f) != NULL)
                if (strncmp(line, "VmRSS:", 6) == 0)
                    rss = strtol(line + 6, NULL, 10);
            fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/%ld/fd", pids[i]);
        DIR *d = opendir(path);
        if (d == NULL) {
            fds = -1;
        } else {
            for (struct dirent *e; (e = readdir(d)) != NULL;)
                fds += e->d_name[0] != '.';
            closedir(d);
        }
        printf("%s{\"pid\":%ld,\"rss_kb\":%ld,\"fds\":%ld}", i ? "," : "", pids[i], rss, fds);
    }
    printf("]");
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int run_requests(long conns, long total, long size, int http, long every, const long *pids, int npids,
                        const char *stop_file, long interval_ms, int new_conn)
{
    load_conn_t *cs = calloc((size_t)conns, sizeof(*cs));
    uint32_t *lat = malloc(sizeof(uint32_t) * (size_t)(total > 0 ? total : 1));
    long issued = 0, ok = 0, failed = 0, done = 0, reconnects = 0, next_sample = every;
    int64_t t0 = now_us(), last_progress = now_ms();
    int stopping = 0;

    for (long i = 0; i < conns; i++) {
        cs[i].fd = -1;
        cs[i].in_cap = (size_t)size + 256;
        cs[i].in = malloc(cs[i].in_cap);
        cs[i].out = malloc((size_t)size + 256);
        cs[i].state = ST_WAIT; /* the first request goes at once */
    }
    int64_t next_stop_check = 0;
    while (done < issued || (issued < total && !stopping)) {
        struct epoll_event evs[256];
        int n = epoll_wait(epfd, evs, 256, interval_ms > 0 && interval_ms < 100 ? (int)interval_ms : 100);
        int64_t now = now_ms();
        for (int i = 0; i < n; i++) {
            load_conn_t *c = evs[i].data.ptr;
            int r = conn_io(c, evs[i].events, http);
            if (r == 0)
                continue;
            done++;
            if (r > 0) {
                lat[ok++] = (uint32_t)(now_us() - c->started_us);
                last_progress = now;
                if (new_conn)
                    conn_close(c, ST_WAIT);
            } else {
                failed++;
                conn_close(c, ST_WAIT);
            }
            c->state = ST_WAIT;
            c->deadline_ms = now + interval_ms; /* when the next request goes */
            if (every > 0 && done >= next_sample) {
                printf("{\"event\":\"sample\",\"requests\":%ld,\"failed\":%ld,", done, failed);
                print_procs(pids, npids);
                printf("}\n");
                fflush(stdout);
                next_sample += every;
            }
        }
        if (stop_file != NULL && now >= next_stop_check) {
            next_stop_check = now + 100;
            stopping |= file_exists(stop_file);
        }
        for (long i = 0; i < conns; i++) {
            load_conn_t *c = &cs[i];
            if (c->state == ST_WAIT) {
                if (issued >= total || stopping) {
                    conn_close(c, ST_CLOSED);
                    continue;
                }
                if (now < c->deadline_ms)
                    continue;
                if (c->fd < 0) {
                    reconnects += c->started_us != 0;
                    if (conn_open(c) != 0) {
                        failed++;
                        done++;
                        issued++;
                        c->deadline_ms = now + interval_ms;
                        continue;
                    }
                }
                conn_request(c, (uint64_t)issued++, (size_t)size, http);
            } else if (c->fd >= 0 && c->state != ST_CLOSED && now > c->deadline_ms) {
                /* no answer in time: the request fails, the connection is opened again */
                conn_close(c, ST_WAIT);
                c->deadline_ms = now;
                failed++;
                done++;
            }
        }
        /* a run that makes no progress at all ends */
        if (now - last_progress > 3 * (int64_t)timeout_ms)
            break;
    }
    double secs = (double)(now_us() - t0) / 1e6;
    qsort(lat, (size_t)ok, sizeof(*lat), cmp_u32);
    printf("{\"event\":\"done\",\"requests\":%ld,\"ok\":%ld,\"failed\":%ld,\"reconnects\":%ld,\"seconds\":%.3f,"
           "\"rps\":%.0f,\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,",
           done, ok, failed, reconnects, secs, secs > 0 ? (double)ok / secs : 0.0, ok ? lat[ok / 2] : 0,
           ok ? lat[ok * 9 / 10] : 0, ok ? lat[ok * 99 / 100] : 0);
    print_procs(pids, npids);
    printf("}\n");
    fflush(stdout);
    return failed == 0 && (done == total || stopping) ? 0 : 1;
}

/* A step of a hold is complete: its memory is read after a pause (the proxies' tick comes in between). */
static void hold_step(long held, long failed, const long *pids, int npids, long pause_ms)
{
    struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    printf("{\"event\":\"step\",\"held\":%ld,\"failed\":%ld,", held, failed);
    print_procs(pids, npids);
    printf("}\n");
    fflush(stdout);
}

static int run_hold(long conns, const char *ready, const char *release, const long *pids, int npids, long step,
                    long step_pause_ms)
{
    load_conn_t *cs = calloc((size_t)conns, sizeof(*cs));
    long next = 0, connecting = 0, held = 0, failed = 0, lost = 0;
    long upto = step > 0 && step < conns ? step : conns; /* connections this step opens up to */
    int64_t t0 = now_us(), deadline;

    raise_nofile();
    for (long i = 0; i < conns; i++) {
        cs[i].fd = -1;
        cs[i].in_cap = 64;
        cs[i].in = malloc(64);
        cs[i].out = malloc(64);
    }
    deadline = now_ms() + timeout_ms + conns; /* a millisecond a connection, on top */
    while (held + failed < conns && now_ms() < deadline) {
        if (held + failed >= upto) {
            hold_step(held, failed, pids, npids, step_pause_ms);
            deadline += step_pause_ms;
            upto = upto + step < conns ? upto + step : conns;
        }
        while (next < upto && connecting < LOAD_CONNECTING_MAX) {
            load_conn_t *c = &cs[next];
            if (conn_open(c) != 0) {
                failed++;
                c->state = ST_FAILED;
            } else {
                conn_request(c, (uint64_t)next, 8, 0);
                connecting++;
            }
            next++;
        }
        struct epoll_event evs[256];
        int n = epoll_wait(epfd, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            load_conn_t *c = evs[i].data.ptr;
            int r = conn_io(c, evs[i].events, 0);
            if (r == 0)
                continue;
            connecting--;
            if (r > 0) {
                held++;
                c->state = ST_HELD;
                ep_set(c, EPOLLIN, EPOLL_CTL_MOD);
            } else {
                failed++;
                conn_close(c, ST_FAILED);
            }
        }
    }
    if (step > 0)
        hold_step(held, failed, pids, npids, step_pause_ms); /* the last step */
    printf("{\"event\":\"held\",\"conns\":%ld,\"held\":%ld,\"failed\":%ld,\"seconds\":%.3f,", conns, held, failed,
           (double)(now_us() - t0) / 1e6);
    print_procs(pids, npids);
    printf("}\n");
    fflush(stdout);
    touch(ready);
    deadline = now_ms() + timeout_ms;
    while (!file_exists(release) && now_ms() < deadline) {
        struct epoll_event evs[256];
        int n = epoll_wait(epfd, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            load_conn_t *c = evs[i].data.ptr;
            if (conn_io(c, evs[i].events, 0) < 0) {
                lost++;
                conn_close(c, ST_FAILED);
            }
        }
    }
    for (long i = 0; i < conns; i++)
        if (cs[i].fd >= 0)
            conn_close(&cs[i], ST_CLOSED);
    printf("{\"event\":\"done\",\"conns\":%ld,\"held\":%ld,\"failed\":%ld,\"lost_while_held\":%ld}\n", conns, held,
           failed, lost);
    fflush(stdout);
    return failed == 0 && lost == 0 ? 0 : 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: e2e_load serve --listen IP:PORT [--http SIZE]\n"
                    "       e2e_load hold --connect IP:PORT --conns N [--ready FILE] [--release FILE] [--timeout MS]\n"
                    "                [--step K [--step-pause MS]] [--pids PID,...]\n"
                    "       e2e_load requests --connect IP:PORT --conns C --requests N [--size B] [--http]\n"
                    "                [--sample-every K] [--pids PID,...] [--timeout MS] [--stop-file FILE]\n"
                    "                [--interval MS] [--new-conn]\n");
}

int main(int argc, char **argv)
{
    const char *listen_addr = NULL, *connect_addr = NULL, *ready = NULL, *release = NULL, *stop_file = NULL;
    long conns = 1, total = 0, size = 64, every = 0, http_size = -1, pids[LOAD_MAX_PIDS];
    long interval = 0, step = 0, step_pause = 1000;
    int http = 0, npids = 0, new_conn = 0;

    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage();
        return 64;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--http") == 0 && strcmp(argv[1], "requests") == 0) {
            http = 1;
            continue;
        }
        if (strcmp(a, "--new-conn") == 0) {
            new_conn = 1;
            continue;
        }
        if (v == NULL) {
            usage();
            return 64;
        }
        i++;
        if (strcmp(a, "--listen") == 0)
            listen_addr = v;
        else if (strcmp(a, "--connect") == 0)
            connect_addr = v;
        else if (strcmp(a, "--http") == 0)
            http_size = strtol(v, NULL, 10);
        else if (strcmp(a, "--conns") == 0)
            conns = strtol(v, NULL, 10);
        else if (strcmp(a, "--requests") == 0)
            total = strtol(v, NULL, 10);
        else if (strcmp(a, "--size") == 0)
            size = strtol(v, NULL, 10);
        else if (strcmp(a, "--sample-every") == 0)
            every = strtol(v, NULL, 10);
        else if (strcmp(a, "--timeout") == 0)
            timeout_ms = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--ready") == 0)
            ready = v;
        else if (strcmp(a, "--release") == 0)
            release = v;
        else if (strcmp(a, "--interval") == 0)
            interval = strtol(v, NULL, 10);
        else if (strcmp(a, "--step") == 0)
            step = strtol(v, NULL, 10);
        else if (strcmp(a, "--step-pause") == 0)
            step_pause = strtol(v, NULL, 10);
        else if (strcmp(a, "--stop-file") == 0)
            stop_file = v;
        else if (strcmp(a, "--pids") == 0) {
            char *s = strdup(v), *save = NULL;
            for (char *t = strtok_r(s, ",", &save); t != NULL && npids < LOAD_MAX_PIDS; t = strtok_r(NULL, ",", &save))
                pids[npids++] = strtol(t, NULL, 10);
            free(s);
        } else {
            usage();
            return 64;
        }
    }
    if (conns < 1 || conns > 1000000 || size < 1 || size > LOAD_MAX_SIZE - 256 || http_size > LOAD_MAX_SIZE - 256 ||
        timeout_ms < 1 || step < 0 || step_pause < 0 || step_pause > 600000) {
        usage();
        return 64;
    }
    if (strcmp(argv[1], "serve") == 0 && listen_addr != NULL)
        return run_serve(listen_addr, http_size);
    if (connect_addr == NULL || parse_addr(connect_addr, &target, &target_len) != 0) {
        usage();
        return 64;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    raise_nofile();
    if (strcmp(argv[1], "hold") == 0)
        return run_hold(conns, ready, release, pids, npids, step, step_pause);
    if (strcmp(argv[1], "requests") == 0 && total > 0)
        return run_requests(conns, total, size, http, every, pids, npids, stop_file, interval, new_conn);
    usage();
    return 64;
}
