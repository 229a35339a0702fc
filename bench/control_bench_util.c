/* control_bench's harness helpers (control_bench.h says each one's contract). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <jansson.h>

#include "control_bench.h"

/* ------------------------------------------------------------------ small helpers */

int64_t cb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cb_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

gpr_timespec cb_deadline_in_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

int cb_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t got;

    if (f == NULL)
        return -errno;
    if ((buf = malloc(FILE_MAX + 1)) == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    got = fread(buf, 1, FILE_MAX + 1, f);
    fclose(f);
    if (got > FILE_MAX) {
        free(buf);
        return -EFBIG;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* A token file without its trailing newline. */
int cb_read_token(const char *path, char **out)
{
    size_t len;
    int ret;

    if ((ret = cb_read_file(path, out, &len)) != 0)
        return ret;
    while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r' || (*out)[len - 1] == ' '))
        (*out)[--len] = '\0';
    return 0;
}

void cb_emit(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));

    if (s != NULL) {
        printf("%s\n", s);
        fflush(stdout);
        free(s);
    }
    json_decref(obj);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of `n` sorted values, in milliseconds. */
static double pct_ms(const int64_t *sorted, size_t n, double p)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1e6;
}

void cb_set_latencies(json_t *obj, const char *prefix, int64_t *v, size_t n)
{
    static const struct {
        const char *name;
        double p;
    } pcts[] = {{"min", 0}, {"p50", 50}, {"p90", 90}, {"p99", 99}, {"max", 100}};
    char key[64];

    qsort(v, n, sizeof(*v), cmp_i64);
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        snprintf(key, sizeof(key), "%s%s_ms", prefix, pcts[i].name);
        json_object_set_new(obj, key, json_real(pct_ms(v, n, pcts[i].p)));
    }
}

/* VmRSS from /proc/PID/status and Pss from /proc/PID/smaps_rollup, in KiB. Returns 0 or -errno. */
int cb_proc_memory(long pid, long *rss_kb, long *pss_kb)
{
    char path[64], line[256];
    FILE *f;

    *rss_kb = *pss_kb = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if ((f = fopen(path, "re")) == NULL)
        return -errno;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", rss_kb) == 1)
            break;
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", pid);
    if ((f = fopen(path, "re")) == NULL)
        return -errno;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Pss: %ld kB", pss_kb) == 1)
            break;
    fclose(f);
    return *rss_kb >= 0 && *pss_kb >= 0 ? 0 : -EPROTO;
}

/* User plus system CPU time of PID, in milliseconds; -1 when it cannot be read. */
int64_t cb_proc_cpu_ms(long pid)
{
    char path[64], buf[2048], *p;
    unsigned long long utime, stime;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "re")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15 */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2 || hz <= 0)
        return -1;
    return (int64_t)((utime + stime) * 1000 / (unsigned long long)hz);
}

long cb_self_rss_kb(void)
{
    long rss, pss;
    return cb_proc_memory((long)getpid(), &rss, &pss) == 0 ? rss : -1;
}

/* Raises RLIMIT_NOFILE to at least `need` (the hard limit too when we may). Returns 0 or -errno. */
int cb_raise_nofile(rlim_t need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max < need)
        rl.rlim_max = need;
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        /* without the privilege to raise the hard limit, take what it allows */
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        return rl.rlim_cur >= need ? 0 : -EMFILE;
    }
    return 0;
}

/* Channel to the control plane with its own connection: sidecars do not share one, and neither may ours. */
grpc_channel *cb_make_channel(const char *target, grpc_channel_credentials *creds)
{
    grpc_arg args[6];
    grpc_channel_args chargs = {0, args};

    args[chargs.num_args].type = GRPC_ARG_STRING;
    args[chargs.num_args].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[chargs.num_args++].value.string = SERVER_NAME;
    args[chargs.num_args].type = GRPC_ARG_INTEGER;
    args[chargs.num_args].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[chargs.num_args++].value.integer = 1;
    /* the sidecar's keep-alive settings (sidecar/control_client.c) */
    args[chargs.num_args].type = GRPC_ARG_INTEGER;
    args[chargs.num_args].key = GRPC_ARG_KEEPALIVE_TIME_MS;
    args[chargs.num_args++].value.integer = 60000;
    args[chargs.num_args].type = GRPC_ARG_INTEGER;
    args[chargs.num_args].key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
    args[chargs.num_args++].value.integer = 20000;
    args[chargs.num_args].type = GRPC_ARG_INTEGER;
    args[chargs.num_args].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[chargs.num_args++].value.integer = 16 << 20;
    return grpc_channel_create(target, creds, &chargs);
}

/* Copies a received message into one contiguous slice (unref it). */
grpc_slice cb_message_slice(grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    grpc_slice all;

    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return grpc_empty_slice();
    all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return all;
}
