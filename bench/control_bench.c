/* control_bench: load for ringmesh-control on loopback, written on the gRPC core like the sidecar's client
 * (sidecar/control_client.c).
 *
 *   streams  N sidecars, each with its own TCP+TLS connection (mTLS with one SVID) and its own Discovery stream,
 *            subscribed to the three types and ACKing every push. Reports the time until all of them hold the
 *            three resources and the control plane's memory per stream, then writes configuration changes into
 *            the control plane's config directory and reports the time until each stream receives the
 *            DestinationMap that holds the change.
 *   sign     Identity.Sign with a fresh key and CSR per call (all made before timing starts), C calls in flight
 *            on C connections (or a new connection per call): calls/s, latency, failures.
 *   svid     One Sign call; writes the SVID's chain and its key (what `streams` presents).
 *
 * Results are JSON lines on stdout, progress and errors go to stderr. Everything is bounded in count and time: a
 * phase that runs out of time reports what it got. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
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

#include "grpc_h2.h"
#include "grpc_runtime.h"

#include "ringmesh/csr.h"
#include "ringmesh/error.h"
#include "ringmesh/tls.h"
#include "ringmesh/x509_issue.h"
#include "ringmesh/xds.h"
#include "ringmesh/v1/discovery.pb-c.h"
#include "ringmesh/v1/identity.pb-c.h"

#define METHOD_SIGN       "/ringmesh.v1.Identity/Sign"
#define METHOD_STREAM     "/ringmesh.v1.Discovery/Stream"
#define SERVER_NAME       "ringmesh-control.ringmesh-system.svc"
#define MAX_STREAMS       20000
#define MAX_WORKERS       2
#define MAX_CHANGES       10
#define MAX_SIGN_COUNT    100000
#define MAX_CONCURRENCY   1024
#define SIGN_DEADLINE_MS  10000
#define FILE_MAX          (1u << 20)
#define WORKER_POLL_MS    20
#define SETTLE_MS         2000 /* after the last stream is up, before memory is read */
#define CHANGE_GAP_MS     1000 /* between two changes, so that the control plane's reload debounce starts afresh */
#define CLOSE_TIMEOUT_MS  20000
#define CONNECT_TIMEOUT_S 180
#define CHANGE_TIMEOUT_S  10
#define REQUEST_MAX       1024 /* a DiscoveryRequest we send always fits */

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ------------------------------------------------------------------ small helpers */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static gpr_timespec deadline_in_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static int read_file(const char *path, char **out, size_t *len)
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
static int read_token(const char *path, char **out)
{
    size_t len;
    int ret;

    if ((ret = read_file(path, out, &len)) != 0)
        return ret;
    while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r' || (*out)[len - 1] == ' '))
        (*out)[--len] = '\0';
    return 0;
}

static void emit(json_t *obj)
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

static void set_latencies(json_t *obj, const char *prefix, int64_t *v, size_t n)
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
static int proc_memory(long pid, long *rss_kb, long *pss_kb)
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
static int64_t proc_cpu_ms(long pid)
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

static long self_rss_kb(void)
{
    long rss, pss;
    return proc_memory((long)getpid(), &rss, &pss) == 0 ? rss : -1;
}

/* Raises RLIMIT_NOFILE to at least `need` (the hard limit too when we may). Returns 0 or -errno. */
static int raise_nofile(rlim_t need)
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
static grpc_channel *make_channel(const char *target, grpc_channel_credentials *creds)
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
static grpc_slice message_slice(grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    grpc_slice all;

    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return grpc_empty_slice();
    all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return all;
}

/* ------------------------------------------------------------------ options */

typedef struct st_bench_opts_t {
    const char *target, *bundle, *cert, *key, *token, *ns, *sa, *config_dir, *cert_out, *key_out;
    long control_pid;
    unsigned count, concurrency, workers, parallel, changes;
    unsigned connect_timeout_s, change_timeout_s;
    long ttl_s;
    int new_connection, proxy_client;
    const char *trust_domain;
} bench_opts_t;

static const char USAGE[] =
    "usage: control_bench streams --target ADDR --bundle FILE --cert FILE --key FILE --ns NS --sa SA --count N\n"
    "                             --config-dir DIR --control-pid PID [--threads 1|2] [--parallel P]\n"
    "                             [--changes K] [--connect-timeout S] [--change-timeout S]\n"
    "       control_bench sign --target ADDR --bundle FILE --token FILE --count N --concurrency C\n"
    "                          [--new-connection [--proxy-client [--trust-domain TD]]] [--control-pid PID]\n"
    "                          [--ttl S]\n"
    "       control_bench svid --target ADDR --bundle FILE --token FILE --cert-out FILE --key-out FILE [--ttl S]\n"
    "\n"
    "ADDR is a gRPC target (ipv4:127.0.0.1:15012). The control plane's certificate is checked for\n" SERVER_NAME ".\n"
    "--proxy-client: each call on a new connection made by the proxy's own client (sidecar/grpc_h2.c: wolfSSL and\n"
    "nghttp2), from C threads, as a proxy asks for its first SVID; the server must present the control plane's\n"
    "SPIFFE ID in TD (default cluster.local).\n"
    "Results: one JSON object per line on stdout.\n";

static int parse_unsigned(const char *name, const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "control_bench: --%s %s: a number from %u to %u\n", name, s, min, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_opts(int argc, char **argv, bench_opts_t *o)
{
    enum {
        O_TARGET = 256,
        O_BUNDLE,
        O_CERT,
        O_KEY,
        O_TOKEN,
        O_NS,
        O_SA,
        O_COUNT,
        O_CONC,
        O_CONFIG,
        O_PID,
        O_THREADS,
        O_PARALLEL,
        O_CHANGES,
        O_CONNECT_TO,
        O_CHANGE_TO,
        O_NEWCONN,
        O_PROXY_CLIENT,
        O_TRUST_DOMAIN,
        O_TTL,
        O_CERT_OUT,
        O_KEY_OUT,
    };
    static const struct option longopts[] = {
        {"target", required_argument, NULL, O_TARGET},
        {"bundle", required_argument, NULL, O_BUNDLE},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"token", required_argument, NULL, O_TOKEN},
        {"ns", required_argument, NULL, O_NS},
        {"sa", required_argument, NULL, O_SA},
        {"count", required_argument, NULL, O_COUNT},
        {"concurrency", required_argument, NULL, O_CONC},
        {"config-dir", required_argument, NULL, O_CONFIG},
        {"control-pid", required_argument, NULL, O_PID},
        {"threads", required_argument, NULL, O_THREADS},
        {"parallel", required_argument, NULL, O_PARALLEL},
        {"changes", required_argument, NULL, O_CHANGES},
        {"connect-timeout", required_argument, NULL, O_CONNECT_TO},
        {"change-timeout", required_argument, NULL, O_CHANGE_TO},
        {"new-connection", no_argument, NULL, O_NEWCONN},
        {"proxy-client", no_argument, NULL, O_PROXY_CLIENT},
        {"trust-domain", required_argument, NULL, O_TRUST_DOMAIN},
        {"ttl", required_argument, NULL, O_TTL},
        {"cert-out", required_argument, NULL, O_CERT_OUT},
        {"key-out", required_argument, NULL, O_KEY_OUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned u;
    int c;

    memset(o, 0, sizeof(*o));
    o->workers = 2;
    o->parallel = 200;
    o->changes = 3;
    o->connect_timeout_s = CONNECT_TIMEOUT_S;
    o->change_timeout_s = CHANGE_TIMEOUT_S;
    o->concurrency = 1;
    o->trust_domain = "cluster.local";
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_TARGET:
            o->target = optarg;
            break;
        case O_BUNDLE:
            o->bundle = optarg;
            break;
        case O_CERT:
            o->cert = optarg;
            break;
        case O_KEY:
            o->key = optarg;
            break;
        case O_TOKEN:
            o->token = optarg;
            break;
        case O_NS:
            o->ns = optarg;
            break;
        case O_SA:
            o->sa = optarg;
            break;
        case O_CONFIG:
            o->config_dir = optarg;
            break;
        case O_CERT_OUT:
            o->cert_out = optarg;
            break;
        case O_KEY_OUT:
            o->key_out = optarg;
            break;
        case O_NEWCONN:
            o->new_connection = 1;
            break;
        case O_PROXY_CLIENT:
            o->proxy_client = 1;
            break;
        case O_TRUST_DOMAIN:
            o->trust_domain = optarg;
            break;
        case O_COUNT:
            if (parse_unsigned("count", optarg, 1, MAX_SIGN_COUNT, &o->count) != 0)
                return -1;
            break;
        case O_CONC:
            if (parse_unsigned("concurrency", optarg, 1, MAX_CONCURRENCY, &o->concurrency) != 0)
                return -1;
            break;
        case O_PID:
            if (parse_unsigned("control-pid", optarg, 1, 1u << 30, &u) != 0)
                return -1;
            o->control_pid = (long)u;
            break;
        case O_THREADS:
            if (parse_unsigned("threads", optarg, 1, MAX_WORKERS, &o->workers) != 0)
                return -1;
            break;
        case O_PARALLEL:
            if (parse_unsigned("parallel", optarg, 1, MAX_STREAMS, &o->parallel) != 0)
                return -1;
            break;
        case O_CHANGES:
            if (parse_unsigned("changes", optarg, 0, MAX_CHANGES, &o->changes) != 0)
                return -1;
            break;
        case O_CONNECT_TO:
            if (parse_unsigned("connect-timeout", optarg, 1, 600, &o->connect_timeout_s) != 0)
                return -1;
            break;
        case O_CHANGE_TO:
            if (parse_unsigned("change-timeout", optarg, 1, 120, &o->change_timeout_s) != 0)
                return -1;
            break;
        case O_TTL:
            if (parse_unsigned("ttl", optarg, 0, 365u * 24 * 3600, &u) != 0)
                return -1;
            o->ttl_s = (long)u;
            break;
        case 'h':
            fputs(USAGE, stdout);
            exit(0);
        default:
            fputs(USAGE, stderr);
            return -1;
        }
    }
    return 0;
}

static int require(const char *mode, const char *name, const void *value)
{
    if (value != NULL)
        return 0;
    fprintf(stderr, "control_bench %s: --%s is required\n", mode, name);
    return -1;
}

/* ------------------------------------------------------------------ Identity.Sign */

typedef struct st_sign_call_t sign_call_t;

typedef struct st_sign_bench_t {
    const bench_opts_t *opts;
    grpc_completion_queue *cq;
    grpc_channel_credentials *creds;
    grpc_byte_buffer **requests; /* one packed SignRequest per call, fresh key and CSR each */
    int64_t *latency;            /* of the calls that succeeded */
    unsigned next, done, ok, failed, in_flight;
    char first_error[256];
} sign_bench_t;

struct st_sign_call_t {
    sign_bench_t *b;
    grpc_channel *channel; /* the slot's (reused) or this call's own (--new-connection) */
    grpc_call *call;
    grpc_byte_buffer *recv;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
    int64_t started;
};

/* Makes a key and the PEM CSR for it; the key itself is not needed once the CSR is signed. */
static int make_csr(char **csr, size_t *csr_len, char **key_out, size_t *key_len_out)
{
    char *key = NULL;
    uint8_t *spki = NULL;
    size_t key_len = 0, spki_len;
    int ret;

    if ((ret = rm_x509_generate_key(&key, &key_len, &spki, &spki_len)) == 0)
        ret = rm_csr_make(key, key_len, NULL, csr, csr_len);
    free(spki);
    if (ret == 0 && key_out != NULL) {
        *key_out = key;
        *key_len_out = key_len;
    } else if (key != NULL) {
        rm_x509_free_secret(key, key_len);
    }
    return ret;
}

/* Packs one SignRequest for `csr` and `token` into `out` (NULL: only measures). Returns its packed size. */
static size_t sign_request_pack(const char *csr, const char *token, long ttl_s, uint8_t *out)
{
    Ringmesh__V1__SignRequest req = RINGMESH__V1__SIGN_REQUEST__INIT;

    req.csr_pem = (char *)csr;
    req.credential = (char *)token;
    req.requested_ttl_seconds = ttl_s;
    return out != NULL ? ringmesh__v1__sign_request__pack(&req, out)
                       : ringmesh__v1__sign_request__get_packed_size(&req);
}

static grpc_byte_buffer *pack_sign_request(const char *csr, const char *token, long ttl_s)
{
    grpc_slice sl = grpc_slice_malloc(sign_request_pack(csr, token, ttl_s, NULL));
    sign_request_pack(csr, token, ttl_s, GRPC_SLICE_START_PTR(sl));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

/* Starts Sign on `sc` with `request` (kept by the caller until the tag completes). Returns 0 or -EIO. */
static int sign_start(sign_call_t *sc, grpc_completion_queue *cq, grpc_byte_buffer *request)
{
    grpc_slice method = grpc_slice_from_static_string(METHOD_SIGN);
    grpc_op ops[6];

    sc->call = grpc_channel_create_call(
        sc->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(SIGN_DEADLINE_MS, GPR_TIMESPAN)), NULL);
    grpc_metadata_array_init(&sc->md_initial);
    grpc_metadata_array_init(&sc->md_trailing);
    sc->details = grpc_empty_slice();
    sc->recv = NULL;
    sc->status = GRPC_STATUS_UNKNOWN;
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &sc->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &sc->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &sc->md_trailing;
    ops[5].data.recv_status_on_client.status = &sc->status;
    ops[5].data.recv_status_on_client.status_details = &sc->details;
    sc->started = now_ns();
    if (grpc_call_start_batch(sc->call, ops, 6, sc, NULL) != GRPC_CALL_OK) {
        grpc_call_unref(sc->call);
        sc->call = NULL;
        grpc_metadata_array_destroy(&sc->md_initial);
        grpc_metadata_array_destroy(&sc->md_trailing);
        return -EIO;
    }
    return 0;
}

/* Decodes a finished call's answer (NULL unless it succeeded with a certificate), describing a failure in err,
 * and releases the call. */
static Ringmesh__V1__SignResponse *sign_finish(sign_call_t *sc, int ok, char *err, size_t errlen)
{
    Ringmesh__V1__SignResponse *resp = NULL;

    if (!ok) {
        snprintf(err, errlen, "the call's batch failed");
    } else if (sc->status != GRPC_STATUS_OK || sc->recv == NULL) {
        snprintf(err, errlen, "grpc-status %d: %.*s", (int)sc->status, (int)GRPC_SLICE_LENGTH(sc->details),
                 (const char *)GRPC_SLICE_START_PTR(sc->details));
    } else {
        grpc_slice all = message_slice(sc->recv);
        resp = ringmesh__v1__sign_response__unpack(NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        grpc_slice_unref(all);
        if (resp == NULL || resp->cert_chain_pem == NULL || strstr(resp->cert_chain_pem, "BEGIN CERTIFICATE") == NULL ||
            resp->not_after <= resp->not_before) {
            snprintf(err, errlen, "the SignResponse holds no certificate");
            if (resp != NULL)
                ringmesh__v1__sign_response__free_unpacked(resp, NULL);
            resp = NULL;
        }
    }
    if (sc->recv != NULL)
        grpc_byte_buffer_destroy(sc->recv);
    sc->recv = NULL;
    grpc_slice_unref(sc->details);
    grpc_metadata_array_destroy(&sc->md_initial);
    grpc_metadata_array_destroy(&sc->md_trailing);
    grpc_call_unref(sc->call);
    sc->call = NULL;
    return resp;
}

static void sign_bench_next(sign_call_t *sc);

static void sign_bench_done(sign_call_t *sc, int ok)
{
    sign_bench_t *b = sc->b;
    Ringmesh__V1__SignResponse *resp;
    int64_t t = now_ns();
    char err[256];

    b->in_flight--;
    b->done++;
    if ((resp = sign_finish(sc, ok, err, sizeof(err))) != NULL) {
        b->latency[b->ok++] = t - sc->started;
        ringmesh__v1__sign_response__free_unpacked(resp, NULL);
    } else {
        if (b->failed++ == 0)
            snprintf(b->first_error, sizeof(b->first_error), "%s", err);
    }
    if (b->opts->new_connection) {
        grpc_channel_destroy(sc->channel);
        sc->channel = NULL;
    }
    sign_bench_next(sc);
}

static void sign_bench_next(sign_call_t *sc)
{
    sign_bench_t *b = sc->b;
    unsigned i;

    if (b->next >= b->opts->count)
        return;
    i = b->next++;
    if (sc->channel == NULL && (sc->channel = make_channel(b->opts->target, b->creds)) == NULL) {
        b->done++;
        if (b->failed++ == 0)
            snprintf(b->first_error, sizeof(b->first_error), "cannot create a channel");
        return;
    }
    if (sign_start(sc, b->cq, b->requests[i]) != 0) {
        b->done++;
        if (b->failed++ == 0)
            snprintf(b->first_error, sizeof(b->first_error), "gRPC refused the call");
        return;
    }
    b->in_flight++;
}

/* Waits until every slot's channel is connected, so that the timed calls measure signing, not handshakes.
 * Returns the number of channels that are READY. */
static unsigned connect_channels(grpc_completion_queue *cq, sign_call_t *slots, unsigned n, int64_t timeout_ms)
{
    int64_t end = now_ns() + timeout_ms * 1000000;
    unsigned ready = 0;

    while (now_ns() < end) {
        ready = 0;
        for (unsigned i = 0; i < n; i++)
            ready += grpc_channel_check_connectivity_state(slots[i].channel, 1) == GRPC_CHANNEL_READY;
        if (ready == n)
            break;
        /* connections make progress only while some thread polls: no call is started yet, so this just polls */
        grpc_completion_queue_next(cq, deadline_in_ms(5), NULL);
    }
    return ready;
}

/* --proxy-client: threads, each making calls one after the other, every call on its own connection by the proxy's
 * client (rm_h2_unary), as a proxy asks for its first SVID. */
typedef struct st_proxy_sign_t {
    const bench_opts_t *opts;
    rm_tls_ctx_t *ctx;
    const char *addr;
    char control_id[300];
    uint8_t **requests;
    size_t *request_len;
    int64_t *latency; /* per call; -1 for a failure */
    atomic_uint next;
    pthread_mutex_t lock;
    unsigned failed;
    char first_error[256];
} proxy_sign_t;

static void *proxy_sign_thread(void *arg)
{
    proxy_sign_t *ps = arg;
    unsigned i;

    while ((i = atomic_fetch_add(&ps->next, 1)) < ps->opts->count) {
        uint8_t *resp = NULL;
        size_t resp_len = 0;
        int status = -1, ret;
        char err[256] = "";
        int64_t t0 = now_ns();
        ret = rm_h2_unary(ps->addr, SERVER_NAME, ps->ctx, ps->control_id, METHOD_SIGN, ps->requests[i],
                          ps->request_len[i], SIGN_DEADLINE_MS, &resp, &resp_len, &status, err, sizeof(err));
        int64_t t1 = now_ns();
        Ringmesh__V1__SignResponse *sr =
            ret == 0 && status == 0 ? ringmesh__v1__sign_response__unpack(NULL, resp_len, resp) : NULL;
        if (sr != NULL && sr->cert_chain_pem != NULL && strstr(sr->cert_chain_pem, "BEGIN CERTIFICATE") != NULL) {
            ps->latency[i] = t1 - t0;
        } else {
            ps->latency[i] = -1;
            pthread_mutex_lock(&ps->lock);
            if (ps->failed++ == 0)
                snprintf(ps->first_error, sizeof(ps->first_error), "%s",
                         ret != 0      ? rm_strerror(ret)
                         : status != 0 ? err
                                       : "the SignResponse holds no certificate");
            pthread_mutex_unlock(&ps->lock);
        }
        if (sr != NULL)
            ringmesh__v1__sign_response__free_unpacked(sr, NULL);
        free(resp);
    }
    return NULL;
}

static int run_sign_proxy_client(const bench_opts_t *o, const char *roots, const char *token, unsigned conc)
{
    proxy_sign_t ps;
    pthread_t *threads = NULL;
    char *csr = NULL, err[256];
    size_t csr_len;
    unsigned started = 0, ok = 0;
    int64_t t_gen, t_start, t_end, cpu0 = -1, cpu1 = -1;
    json_t *out;
    int ret;

    memset(&ps, 0, sizeof(ps));
    ps.opts = o;
    pthread_mutex_init(&ps.lock, NULL);
    ps.addr = strncmp(o->target, "ipv4:", 5) == 0 ? o->target + 5 : o->target;
    snprintf(ps.control_id, sizeof(ps.control_id), "spiffe://%s/ns/ringmesh-system/sa/ringmesh-control",
             o->trust_domain);
    rm_tls_ctx_config_t tc = {
        .bundle_pem = roots, .bundle_len = strlen(roots), .trust_domain = o->trust_domain, .alpn = "h2"};
    if ((ret = rm_tls_global_init()) != 0 ||
        (ret = rm_tls_ctx_new(&ps.ctx, RM_TLS_CLIENT, &tc, err, sizeof(err))) != 0) {
        fprintf(stderr, "control_bench sign: the proxy client's TLS context: %s\n", ret != 0 ? err : "");
        goto Exit;
    }
    if ((ps.requests = calloc(o->count, sizeof(*ps.requests))) == NULL ||
        (ps.request_len = calloc(o->count, sizeof(*ps.request_len))) == NULL ||
        (ps.latency = calloc(o->count, sizeof(*ps.latency))) == NULL ||
        (threads = calloc(conc, sizeof(*threads))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    t_gen = now_ns();
    for (unsigned i = 0; i < o->count; i++) {
        if ((ret = make_csr(&csr, &csr_len, NULL, NULL)) != 0) {
            fprintf(stderr, "control_bench sign: cannot make a key and CSR: %s\n", rm_strerror(ret));
            goto Exit;
        }
        ps.request_len[i] = sign_request_pack(csr, token, o->ttl_s, NULL);
        if ((ps.requests[i] = malloc(ps.request_len[i] + 1)) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        sign_request_pack(csr, token, o->ttl_s, ps.requests[i]);
        free(csr);
        csr = NULL;
    }
    t_gen = now_ns() - t_gen;

    if (o->control_pid > 0)
        cpu0 = proc_cpu_ms(o->control_pid);
    t_start = now_ns();
    for (; started < conc; started++)
        if (pthread_create(&threads[started], NULL, proxy_sign_thread, &ps) != 0)
            break;
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    t_end = now_ns();
    if (o->control_pid > 0)
        cpu1 = proc_cpu_ms(o->control_pid);
    if (started == 0) {
        fprintf(stderr, "control_bench sign: cannot start a thread\n");
        ret = -EAGAIN;
        goto Exit;
    }
    for (unsigned i = 0; i < o->count; i++)
        if (ps.latency[i] >= 0)
            ps.latency[ok++] = ps.latency[i];

    out = json_object();
    json_object_set_new(out, "mode", json_string("sign"));
    json_object_set_new(out, "client", json_string("proxy"));
    json_object_set_new(out, "count", json_integer(o->count));
    json_object_set_new(out, "concurrency", json_integer(started));
    json_object_set_new(out, "new_connection", json_true());
    json_object_set_new(out, "ok", json_integer(ok));
    json_object_set_new(out, "failed", json_integer(ps.failed));
    json_object_set_new(out, "unfinished", json_integer(o->count - ok - ps.failed));
    json_object_set_new(out, "elapsed_s", json_real((double)(t_end - t_start) / 1e9));
    json_object_set_new(out, "calls_per_s", json_real((double)ok / ((double)(t_end - t_start) / 1e9)));
    set_latencies(out, "", ps.latency, ok);
    json_object_set_new(out, "csr_gen_ms_each", json_real((double)t_gen / 1e6 / o->count));
    if (cpu0 >= 0 && cpu1 >= 0) {
        json_object_set_new(out, "control_cpu_ms", json_integer(cpu1 - cpu0));
        json_object_set_new(out, "control_cpu_ms_per_call", json_real(ok > 0 ? (double)(cpu1 - cpu0) / ok : 0));
    }
    if (ps.failed > 0)
        json_object_set_new(out, "first_error", json_string(ps.first_error));
    emit(out);
    ret = ps.failed == 0 && ok == o->count ? 0 : 1;

Exit:
    free(csr);
    if (ps.requests != NULL)
        for (unsigned i = 0; i < o->count; i++)
            free(ps.requests[i]);
    free(ps.requests);
    free(ps.request_len);
    free(ps.latency);
    free(threads);
    rm_tls_ctx_unref(ps.ctx);
    pthread_mutex_destroy(&ps.lock);
    return ret < 0 ? 1 : ret;
}

static int run_sign(const bench_opts_t *o)
{
    sign_bench_t b;
    sign_call_t *slots = NULL;
    char *roots = NULL, *token = NULL, *csr = NULL;
    size_t roots_len, csr_len;
    int64_t t_gen, t_start, t_end, cpu0 = -1, cpu1 = -1, deadline;
    unsigned conc;
    json_t *out;
    int ret;

    if (require("sign", "target", o->target) || require("sign", "bundle", o->bundle) ||
        require("sign", "token", o->token))
        return 2;
    if (o->count == 0) {
        fprintf(stderr, "control_bench sign: --count is required\n");
        return 2;
    }
    memset(&b, 0, sizeof(b));
    b.opts = o;
    conc = o->concurrency < o->count ? o->concurrency : o->count;
    if ((ret = read_file(o->bundle, &roots, &roots_len)) != 0 || (ret = read_token(o->token, &token)) != 0) {
        fprintf(stderr, "control_bench sign: cannot read the bundle or the token: %s\n", rm_strerror(ret));
        goto Exit;
    }
    raise_nofile(conc * 4 + 256);
    if (o->proxy_client) {
        if (!o->new_connection) {
            fprintf(stderr, "control_bench sign: --proxy-client goes with --new-connection\n");
            ret = 2;
            goto Exit;
        }
        ret = run_sign_proxy_client(o, roots, token, conc);
        goto Exit;
    }
    if ((b.requests = calloc(o->count, sizeof(*b.requests))) == NULL ||
        (b.latency = calloc(o->count, sizeof(*b.latency))) == NULL || (slots = calloc(conc, sizeof(*slots))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    t_gen = now_ns();
    for (unsigned i = 0; i < o->count; i++) {
        if ((ret = make_csr(&csr, &csr_len, NULL, NULL)) != 0) {
            fprintf(stderr, "control_bench sign: cannot make a key and CSR: %s\n", rm_strerror(ret));
            goto Exit;
        }
        b.requests[i] = pack_sign_request(csr, token, o->ttl_s);
        free(csr);
        csr = NULL;
    }
    t_gen = now_ns() - t_gen;

    b.cq = grpc_completion_queue_create_for_next(NULL);
    b.creds = grpc_ssl_credentials_create_ex(roots, NULL, NULL, NULL);
    for (unsigned i = 0; i < conc; i++) {
        slots[i].b = &b;
        if (!o->new_connection && (slots[i].channel = make_channel(o->target, b.creds)) == NULL) {
            fprintf(stderr, "control_bench sign: cannot create a channel\n");
            ret = -ENOMEM;
            goto Drain;
        }
    }
    if (!o->new_connection && connect_channels(b.cq, slots, conc, 20000) != conc)
        fprintf(stderr, "control_bench sign: not every channel connected within 20 s; going on\n");

    if (o->control_pid > 0)
        cpu0 = proc_cpu_ms(o->control_pid);
    t_start = now_ns();
    for (unsigned i = 0; i < conc; i++)
        sign_bench_next(&slots[i]);
    /* every call has a deadline of SIGN_DEADLINE_MS, so the loop ends; the bound below is a safety net */
    deadline = t_start + ((int64_t)o->count * SIGN_DEADLINE_MS / conc + 60000) * 1000000;
    while (b.in_flight > 0 && now_ns() < deadline) {
        grpc_event ev = grpc_completion_queue_next(b.cq, deadline_in_ms(100), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            sign_bench_done(ev.tag, ev.success);
    }
    t_end = now_ns();
    if (o->control_pid > 0)
        cpu1 = proc_cpu_ms(o->control_pid);

    out = json_object();
    json_object_set_new(out, "mode", json_string("sign"));
    json_object_set_new(out, "count", json_integer(o->count));
    json_object_set_new(out, "concurrency", json_integer(conc));
    json_object_set_new(out, "new_connection", json_boolean(o->new_connection));
    json_object_set_new(out, "ok", json_integer(b.ok));
    json_object_set_new(out, "failed", json_integer(b.failed));
    json_object_set_new(out, "unfinished", json_integer(o->count - b.done));
    json_object_set_new(out, "elapsed_s", json_real((double)(t_end - t_start) / 1e9));
    json_object_set_new(out, "calls_per_s", json_real((double)b.ok / ((double)(t_end - t_start) / 1e9)));
    set_latencies(out, "", b.latency, b.ok);
    json_object_set_new(out, "csr_gen_ms_each", json_real((double)t_gen / 1e6 / o->count));
    if (cpu0 >= 0 && cpu1 >= 0) {
        json_object_set_new(out, "control_cpu_ms", json_integer(cpu1 - cpu0));
        json_object_set_new(out, "control_cpu_ms_per_call", json_real(b.ok > 0 ? (double)(cpu1 - cpu0) / b.ok : 0));
    }
    if (b.failed > 0)
        json_object_set_new(out, "first_error", json_string(b.first_error));
    emit(out);
    ret = b.failed == 0 && b.done == o->count ? 0 : 1;

Drain:
    for (unsigned i = 0; i < conc; i++)
        if (slots[i].channel != NULL)
            grpc_channel_destroy(slots[i].channel);
    if (b.creds != NULL)
        grpc_channel_credentials_release(b.creds);
    if (b.cq != NULL) {
        grpc_completion_queue_shutdown(b.cq);
        while (grpc_completion_queue_next(b.cq, deadline_in_ms(5000), NULL).type == GRPC_OP_COMPLETE)
            ;
        grpc_completion_queue_destroy(b.cq);
    }
Exit:
    if (b.requests != NULL)
        for (unsigned i = 0; i < o->count; i++)
            if (b.requests[i] != NULL)
                grpc_byte_buffer_destroy(b.requests[i]);
    free(b.requests);
    free(b.latency);
    free(slots);
    free(roots);
    free(token);
    return ret < 0 ? 1 : ret;
}

/* One Sign call with a fresh key; writes the chain and the key. */
static int run_svid(const bench_opts_t *o)
{
    sign_call_t sc;
    grpc_completion_queue *cq = NULL;
    grpc_channel_credentials *creds = NULL;
    grpc_byte_buffer *request = NULL;
    Ringmesh__V1__SignResponse *resp = NULL;
    char *roots = NULL, *token = NULL, *csr = NULL, *key = NULL, err[256];
    size_t roots_len, csr_len, key_len = 0;
    int ret;

    if (require("svid", "target", o->target) || require("svid", "bundle", o->bundle) ||
        require("svid", "token", o->token) || require("svid", "cert-out", o->cert_out) ||
        require("svid", "key-out", o->key_out))
        return 2;
    memset(&sc, 0, sizeof(sc));
    if ((ret = read_file(o->bundle, &roots, &roots_len)) != 0 || (ret = read_token(o->token, &token)) != 0) {
        fprintf(stderr, "control_bench svid: cannot read the bundle or the token: %s\n", rm_strerror(ret));
        goto Exit;
    }
    if ((ret = make_csr(&csr, &csr_len, &key, &key_len)) != 0) {
        fprintf(stderr, "control_bench svid: cannot make a key and CSR: %s\n", rm_strerror(ret));
        goto Exit;
    }
    request = pack_sign_request(csr, token, o->ttl_s);
    cq = grpc_completion_queue_create_for_next(NULL);
    creds = grpc_ssl_credentials_create_ex(roots, NULL, NULL, NULL);
    if ((sc.channel = make_channel(o->target, creds)) == NULL || sign_start(&sc, cq, request) != 0) {
        fprintf(stderr, "control_bench svid: cannot start the call\n");
        ret = -EIO;
        goto Exit;
    }
    {
        /* the call's own deadline bounds this wait */
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        resp = sign_finish(&sc, ev.type == GRPC_OP_COMPLETE && ev.success, err, sizeof(err));
    }
    if (resp == NULL) {
        fprintf(stderr, "control_bench svid: Identity.Sign failed: %s\n", err);
        ret = -EIO;
        goto Exit;
    }
    if ((ret = rm_x509_write_file(o->key_out, key, key_len, 1)) != 0 ||
        (ret = rm_x509_write_file(o->cert_out, resp->cert_chain_pem, strlen(resp->cert_chain_pem), 0)) != 0) {
        fprintf(stderr, "control_bench svid: cannot write the SVID: %s\n", rm_strerror(ret));
        goto Exit;
    }
    {
        json_t *out = json_object();
        json_object_set_new(out, "mode", json_string("svid"));
        json_object_set_new(out, "spiffe_id", json_string(resp->spiffe_id != NULL ? resp->spiffe_id : ""));
        json_object_set_new(out, "not_before", json_integer(resp->not_before));
        json_object_set_new(out, "not_after", json_integer(resp->not_after));
        emit(out);
    }
    ret = 0;

Exit:
    if (resp != NULL)
        ringmesh__v1__sign_response__free_unpacked(resp, NULL);
    if (sc.channel != NULL)
        grpc_channel_destroy(sc.channel);
    if (creds != NULL)
        grpc_channel_credentials_release(creds);
    if (cq != NULL) {
        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_next(cq, deadline_in_ms(5000), NULL).type == GRPC_OP_COMPLETE)
            ;
        grpc_completion_queue_destroy(cq);
    }
    if (request != NULL)
        grpc_byte_buffer_destroy(request);
    if (key != NULL)
        rm_x509_free_secret(key, key_len);
    free(csr);
    free(roots);
    free(token);
    return ret == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ Discovery streams */

typedef struct st_worker_t worker_t;
typedef struct st_sidecar_t sidecar_t;

/* Every batch carries a tag; its callback runs on the worker's thread when the batch completes. */
typedef struct st_sidecar_tag_t sidecar_tag_t;
struct st_sidecar_tag_t {
    void (*cb)(sidecar_tag_t *tag, int ok);
};

/* One sidecar: a channel, a stream, and what it must still send. Owned by its worker's thread; the fields other
 * threads read are atomic. */
struct st_sidecar_t {
    worker_t *w;
    unsigned index;
    grpc_channel *channel;
    grpc_call *call;
    sidecar_tag_t t_start, t_status, t_send, t_read;
    int pending; /* batches in flight */
    int status_done, sending, node_sent, have_mask;
    grpc_byte_buffer *recv, *inflight_send;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice status_details;
    /* per type: the request still to send (a subscription, or the ACK of the latest push) */
    struct {
        int want;
        char version[RM_XDS_VERSION_LEN + 8];
        char nonce[64];
    } out[RM_XDS_NUM_TYPES];
    int64_t opened_ns, ready_ns;
    atomic_int state;       /* sidecar_state_t */
    atomic_uint change_seq; /* the last change this sidecar received */
    atomic_llong change_ns; /* when */
};

typedef enum { SC_IDLE, SC_CONNECTING, SC_READY, SC_CLOSED } sidecar_state_t;

typedef struct st_streams_bench_t {
    const bench_opts_t *opts;
    grpc_channel_credentials *creds;
    sidecar_t *sidecars;
    atomic_uint ready, failed, failed_after_ready, bad_pushes, pushes;
    atomic_int stopping;
    /* changes: the main thread writes names[k] before it publishes seq = k */
    char change_names[MAX_CHANGES + 1][64];
    atomic_uint change_seq;
    atomic_uint change_got[MAX_CHANGES + 1];
    pthread_mutex_t err_mutex;
    char first_error[256];
} streams_bench_t;

struct st_worker_t {
    streams_bench_t *b;
    unsigned id;
    grpc_completion_queue *cq;
    pthread_t thread;
    unsigned next_index; /* next sidecar to open: id, id + workers, ... */
    unsigned connecting, open_calls;
    int cancelled;
};

static void note_error(streams_bench_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_error(streams_bench_t *b, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&b->err_mutex);
    if (b->first_error[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(b->first_error, sizeof(b->first_error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&b->err_mutex);
}

static void sidecar_send_next(sidecar_t *sc);
static void sidecar_close(sidecar_t *sc);

/* Closes the sidecar once its stream has ended and every batch has completed. */
static void sidecar_maybe_close(sidecar_t *sc)
{
    if (sc->status_done && sc->pending == 0 && atomic_load(&sc->state) != SC_CLOSED)
        sidecar_close(sc);
}

static void sidecar_on_send(sidecar_tag_t *tag, int ok)
{
    sidecar_t *sc = container_of(tag, sidecar_t, t_send);

    sc->pending--;
    sc->sending = 0;
    grpc_byte_buffer_destroy(sc->inflight_send);
    sc->inflight_send = NULL;
    if (ok)
        sidecar_send_next(sc);
    sidecar_maybe_close(sc);
}

/* Sends the next request waiting (one SEND_MESSAGE in flight per call): the first one carries the node. */
static void sidecar_send_next(sidecar_t *sc)
{
    const bench_opts_t *o = sc->w->b->opts;
    Ringmesh__V1__DiscoveryRequest req = RINGMESH__V1__DISCOVERY_REQUEST__INIT;
    Ringmesh__V1__Node node = RINGMESH__V1__NODE__INIT;
    char node_id[32];
    grpc_slice sl;
    grpc_op op;
    size_t len;
    int t;

    if (sc->sending || sc->call == NULL || sc->status_done)
        return;
    for (t = 0; t < RM_XDS_NUM_TYPES && !sc->out[t].want; t++)
        ;
    if (t == RM_XDS_NUM_TYPES)
        return;
    sc->out[t].want = 0;
    if (!sc->node_sent) {
        snprintf(node_id, sizeof(node_id), "bench-%u", sc->index);
        node.id = node_id;
        node.namespace_ = (char *)o->ns;
        node.service_account = (char *)o->sa;
        node.proxy_version = "control_bench";
        req.node = &node;
        sc->node_sent = 1;
    }
    req.type_url = (char *)rm_xds_type_url((rm_xds_type_t)t);
    req.version_info = sc->out[t].version;
    req.response_nonce = sc->out[t].nonce;
    len = ringmesh__v1__discovery_request__get_packed_size(&req);
    sl = grpc_slice_malloc(len);
    ringmesh__v1__discovery_request__pack(&req, GRPC_SLICE_START_PTR(sl));
    sc->inflight_send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = sc->inflight_send;
    if (grpc_call_start_batch(sc->call, &op, 1, &sc->t_send, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(sc->inflight_send);
        sc->inflight_send = NULL;
        return;
    }
    sc->pending++;
    sc->sending = 1;
}

static void sidecar_start_read(sidecar_t *sc)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &sc->recv;
    if (grpc_call_start_batch(sc->call, &op, 1, &sc->t_read, NULL) == GRPC_CALL_OK)
        sc->pending++;
}

static void sidecar_handle_push(sidecar_t *sc, const Ringmesh__V1__DiscoveryResponse *resp, int64_t received)
{
    streams_bench_t *b = sc->w->b;
    int t = rm_xds_type_from_url(resp->type_url);
    unsigned seq;

    if (t < 0 || resp->n_resources != 1 || resp->version_info == NULL || resp->nonce == NULL) {
        atomic_fetch_add(&b->bad_pushes, 1);
        note_error(b, "stream %u: a push with type \"%s\" and %zu resources", sc->index,
                   resp->type_url != NULL ? resp->type_url : "", resp->n_resources);
        return;
    }
    atomic_fetch_add(&b->pushes, 1);
    snprintf(sc->out[t].version, sizeof(sc->out[t].version), "%s", resp->version_info);
    snprintf(sc->out[t].nonce, sizeof(sc->out[t].nonce), "%s", resp->nonce);
    sc->out[t].want = 1;
    sc->have_mask |= 1 << t;
    if (sc->have_mask == (1 << RM_XDS_NUM_TYPES) - 1 && atomic_load(&sc->state) == SC_CONNECTING) {
        sc->ready_ns = received;
        sc->w->connecting--;
        atomic_store(&sc->state, SC_READY);
        atomic_fetch_add(&b->ready, 1);
    }
    /* A change counts as received when the DestinationMap holds the destination it added. Its name appears as is
     * in the serialized map (protobuf strings are not encoded), which spares decoding every map. */
    if (t == RM_XDS_DESTINATIONS && (seq = atomic_load(&b->change_seq)) > atomic_load(&sc->change_seq)) {
        const ProtobufCBinaryData *v = &resp->resources[0]->value;
        const char *name = b->change_names[seq];
        if (memmem(v->data, v->len, name, strlen(name)) != NULL) {
            atomic_store(&sc->change_ns, received);
            atomic_store(&sc->change_seq, seq);
            atomic_fetch_add(&b->change_got[seq], 1);
        }
    }
    sidecar_send_next(sc);
}

static void sidecar_on_read(sidecar_tag_t *tag, int ok)
{
    sidecar_t *sc = container_of(tag, sidecar_t, t_read);
    int64_t received = now_ns();
    Ringmesh__V1__DiscoveryResponse *resp;
    grpc_slice all;

    sc->pending--;
    if (!ok || sc->recv == NULL) {
        sidecar_maybe_close(sc); /* the stream is ending: the status says why */
        return;
    }
    all = message_slice(sc->recv);
    grpc_byte_buffer_destroy(sc->recv);
    sc->recv = NULL;
    if ((resp = ringmesh__v1__discovery_response__unpack(NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all))) !=
        NULL) {
        sidecar_handle_push(sc, resp, received);
        ringmesh__v1__discovery_response__free_unpacked(resp, NULL);
    } else {
        atomic_fetch_add(&sc->w->b->bad_pushes, 1);
        note_error(sc->w->b, "stream %u: a push does not decode", sc->index);
    }
    grpc_slice_unref(all);
    sidecar_start_read(sc);
    sidecar_maybe_close(sc);
}

static void sidecar_on_start(sidecar_tag_t *tag, int ok)
{
    sidecar_t *sc = container_of(tag, sidecar_t, t_start);

    (void)ok;
    sc->pending--;
    sidecar_maybe_close(sc);
}

static void sidecar_on_status(sidecar_tag_t *tag, int ok)
{
    sidecar_t *sc = container_of(tag, sidecar_t, t_status);

    (void)ok;
    sc->pending--;
    sc->status_done = 1;
    sidecar_maybe_close(sc);
}

static void sidecar_open(sidecar_t *sc)
{
    worker_t *w = sc->w;
    grpc_slice method = grpc_slice_from_static_string(METHOD_STREAM);
    grpc_op ops[2];

    sc->opened_ns = now_ns();
    atomic_store(&sc->state, SC_CONNECTING);
    w->connecting++;
    w->open_calls++;
    sc->t_start.cb = sidecar_on_start;
    sc->t_status.cb = sidecar_on_status;
    sc->t_send.cb = sidecar_on_send;
    sc->t_read.cb = sidecar_on_read;
    grpc_metadata_array_init(&sc->md_initial);
    grpc_metadata_array_init(&sc->md_trailing);
    sc->status_details = grpc_empty_slice();
    if (sc->channel == NULL ||
        (sc->call = grpc_channel_create_call(sc->channel, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq, method, NULL,
                                             gpr_inf_future(GPR_CLOCK_REALTIME), NULL)) == NULL) {
        note_error(w->b, "stream %u: cannot create the channel or the call", sc->index);
        sidecar_close(sc);
        return;
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &sc->md_initial;
    if (grpc_call_start_batch(sc->call, ops, 2, &sc->t_start, NULL) == GRPC_CALL_OK)
        sc->pending++;
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &sc->md_trailing;
    ops[0].data.recv_status_on_client.status = &sc->status;
    ops[0].data.recv_status_on_client.status_details = &sc->status_details;
    if (grpc_call_start_batch(sc->call, ops, 1, &sc->t_status, NULL) == GRPC_CALL_OK)
        sc->pending++;
    else
        sc->status_done = 1;
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
        sc->out[t].want = 1; /* subscribe, version and nonce "" */
    sidecar_send_next(sc);
    sidecar_start_read(sc);
}

/* The stream has ended and every batch has completed. */
static void sidecar_close(sidecar_t *sc)
{
    worker_t *w = sc->w;
    streams_bench_t *b = w->b;
    int was = atomic_load(&sc->state);

    if (!atomic_load(&b->stopping)) {
        atomic_fetch_add(&b->failed, 1);
        if (was == SC_READY)
            atomic_fetch_add(&b->failed_after_ready, 1);
        note_error(b, "stream %u: grpc-status %d: %.*s", sc->index, (int)sc->status,
                   (int)GRPC_SLICE_LENGTH(sc->status_details), (const char *)GRPC_SLICE_START_PTR(sc->status_details));
    }
    if (was == SC_CONNECTING)
        w->connecting--;
    w->open_calls--;
    atomic_store(&sc->state, SC_CLOSED);
    if (sc->call != NULL)
        grpc_call_unref(sc->call);
    sc->call = NULL;
    grpc_slice_unref(sc->status_details);
    grpc_metadata_array_destroy(&sc->md_initial);
    grpc_metadata_array_destroy(&sc->md_trailing);
    if (sc->recv != NULL)
        grpc_byte_buffer_destroy(sc->recv);
    sc->recv = NULL;
    if (sc->channel != NULL)
        grpc_channel_destroy(sc->channel);
    sc->channel = NULL;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    streams_bench_t *b = w->b;
    const bench_opts_t *o = b->opts;
    unsigned budget = (o->parallel + o->workers - 1) / o->workers;
    int64_t stop_deadline = 0;

    for (;;) {
        if (!atomic_load(&b->stopping)) {
            while (w->next_index < o->count && w->connecting < budget) {
                sidecar_open(&b->sidecars[w->next_index]);
                w->next_index += o->workers;
            }
        } else if (!w->cancelled) {
            w->cancelled = 1;
            stop_deadline = now_ns() + (int64_t)CLOSE_TIMEOUT_MS * 1000000;
            for (unsigned i = w->id; i < w->next_index && i < o->count; i += o->workers)
                if (b->sidecars[i].call != NULL && !b->sidecars[i].status_done)
                    grpc_call_cancel(b->sidecars[i].call, NULL);
        }
        if (w->cancelled && (w->open_calls == 0 || now_ns() > stop_deadline))
            break;
        grpc_event ev = grpc_completion_queue_next(w->cq, deadline_in_ms(WORKER_POLL_MS), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            ((sidecar_tag_t *)ev.tag)->cb(ev.tag, ev.success);
    }
    return NULL;
}

/* Writes the change's Service to a hidden file, then renames it to its YAML name: the control plane sees one
 * complete file appear (IN_MOVED_TO). Returns 0 or -errno. */
static int write_change(const bench_opts_t *o, unsigned k, int64_t *t0)
{
    char tmp[4096], dst[4096], body[512];
    FILE *f;
    int n;

    snprintf(tmp, sizeof(tmp), "%s/.bench-change.tmp", o->config_dir);
    snprintf(dst, sizeof(dst), "%s/zz-bench-change.yaml", o->config_dir);
    n = snprintf(body, sizeof(body),
                 "apiVersion: ringmesh.io/v1alpha1\n"
                 "kind: Service\n"
                 "metadata: {name: change-%u, namespace: bench}\n"
                 "spec:\n"
                 "  addresses: [198.19.250.%u]\n"
                 "  ports: [8080]\n"
                 "  serviceAccounts: [%s]\n",
                 k, k, o->sa);
    if ((f = fopen(tmp, "we")) == NULL)
        return -errno;
    if (fwrite(body, 1, (size_t)n, f) != (size_t)n || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        int ret = -errno;
        fclose(f);
        return ret;
    }
    fclose(f);
    *t0 = now_ns();
    return rename(tmp, dst) == 0 ? 0 : -errno;
}

static void remove_change(const bench_opts_t *o)
{
    char dst[4096];

    snprintf(dst, sizeof(dst), "%s/zz-bench-change.yaml", o->config_dir);
    unlink(dst);
}

static int run_streams(const bench_opts_t *o)
{
    streams_bench_t *b;
    worker_t workers[MAX_WORKERS];
    char *roots = NULL, *cert = NULL, *key = NULL;
    size_t roots_len, cert_len, key_len;
    long rss0, pss0, rss1, pss1;
    int64_t *lat = NULL, t_setup, t_start, t_all, deadline, cpu0, cpu1, self0, self1;
    unsigned started = 0, ready;
    int complete; /* every stream up, every change received by every stream, no failure */
    int ret = 1;
    json_t *out;

    if (require("streams", "target", o->target) || require("streams", "bundle", o->bundle) ||
        require("streams", "cert", o->cert) || require("streams", "key", o->key) || require("streams", "ns", o->ns) ||
        require("streams", "sa", o->sa) || require("streams", "config-dir", o->config_dir))
        return 2;
    if (o->count == 0 || o->control_pid == 0) {
        fprintf(stderr, "control_bench streams: --count and --control-pid are required\n");
        return 2;
    }
    if (o->count > MAX_STREAMS) {
        fprintf(stderr, "control_bench streams: at most %d streams\n", MAX_STREAMS);
        return 2;
    }
    if (raise_nofile((rlim_t)o->count * 2 + 1024) != 0)
        fprintf(stderr, "control_bench streams: RLIMIT_NOFILE is below %u; some streams will fail\n",
                o->count * 2 + 1024);
    if ((b = calloc(1, sizeof(*b))) == NULL) {
        fprintf(stderr, "control_bench streams: out of memory\n");
        return 1;
    }
    b->opts = o;
    pthread_mutex_init(&b->err_mutex, NULL);
    if ((b->sidecars = calloc(o->count, sizeof(*b->sidecars))) == NULL ||
        (lat = calloc(o->count, sizeof(*lat))) == NULL) {
        fprintf(stderr, "control_bench streams: out of memory\n");
        goto Exit;
    }
    if (read_file(o->bundle, &roots, &roots_len) != 0 || read_file(o->cert, &cert, &cert_len) != 0 ||
        read_file(o->key, &key, &key_len) != 0) {
        fprintf(stderr, "control_bench streams: cannot read --bundle, --cert or --key\n");
        goto Exit;
    }
    {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        /* one credentials object for every channel: each channel still makes its own TLS connection */
        b->creds = grpc_ssl_credentials_create_ex(roots, &pair, NULL, NULL);
    }
    for (unsigned i = 0; i < o->count; i++) {
        b->sidecars[i].index = i;
        b->sidecars[i].w = &workers[i % o->workers];
    }
    /* Channels first, untimed (a channel connects only when its stream starts). */
    t_setup = now_ns();
    for (unsigned i = 0; i < o->count; i++)
        if ((b->sidecars[i].channel = make_channel(o->target, b->creds)) == NULL)
            note_error(b, "stream %u: cannot create the channel", i);
    t_setup = now_ns() - t_setup;
    remove_change(o);
    /* the control plane has just started; let its heap settle before the idle reading */
    sleep_ms(500);
    if (proc_memory(o->control_pid, &rss0, &pss0) != 0) {
        fprintf(stderr, "control_bench streams: cannot read the memory of process %ld\n", o->control_pid);
        goto Exit;
    }
    cpu0 = proc_cpu_ms(o->control_pid);
    self0 = proc_cpu_ms((long)getpid());

    t_start = now_ns();
    for (unsigned i = 0; i < o->workers; i++) {
        memset(&workers[i], 0, sizeof(workers[i]));
        workers[i].b = b;
        workers[i].id = i;
        workers[i].next_index = i;
        workers[i].cq = grpc_completion_queue_create_for_next(NULL);
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            grpc_completion_queue_destroy(workers[i].cq);
            break;
        }
        started++;
    }
    if (started != o->workers) {
        fprintf(stderr, "control_bench streams: cannot start the worker threads\n");
        goto Stop;
    }
    deadline = t_start + (int64_t)o->connect_timeout_s * 1000000000;
    while (atomic_load(&b->ready) + atomic_load(&b->failed) < o->count && now_ns() < deadline)
        sleep_ms(5);
    t_all = now_ns();
    ready = atomic_load(&b->ready);
    complete = ready == o->count;
    cpu1 = proc_cpu_ms(o->control_pid);
    self1 = proc_cpu_ms((long)getpid());
    sleep_ms(SETTLE_MS);
    proc_memory(o->control_pid, &rss1, &pss1);

    {
        size_t n = 0;
        for (unsigned i = 0; i < o->count; i++)
            if (atomic_load(&b->sidecars[i].state) == SC_READY)
                lat[n++] = b->sidecars[i].ready_ns - b->sidecars[i].opened_ns;
        out = json_object();
        json_object_set_new(out, "mode", json_string("streams"));
        json_object_set_new(out, "phase", json_string("connect"));
        json_object_set_new(out, "count", json_integer(o->count));
        json_object_set_new(out, "threads", json_integer(o->workers));
        json_object_set_new(out, "parallel", json_integer(o->parallel));
        json_object_set_new(out, "ready", json_integer(ready));
        json_object_set_new(out, "failed", json_integer(atomic_load(&b->failed)));
        json_object_set_new(out, "channel_setup_s", json_real((double)t_setup / 1e9));
        json_object_set_new(out, "connect_all_s", json_real((double)(t_all - t_start) / 1e9));
        json_object_set_new(out, "streams_per_s", json_real(ready / ((double)(t_all - t_start) / 1e9)));
        set_latencies(out, "ready_", lat, n);
        json_object_set_new(out, "control_cpu_ms", json_integer(cpu1 - cpu0));
        json_object_set_new(out, "bench_cpu_ms", json_integer(self1 - self0));
        json_object_set_new(out, "control_rss_idle_kb", json_integer(rss0));
        json_object_set_new(out, "control_rss_kb", json_integer(rss1));
        json_object_set_new(out, "control_pss_idle_kb", json_integer(pss0));
        json_object_set_new(out, "control_pss_kb", json_integer(pss1));
        /* streams still up at the reading */
        ready = atomic_load(&b->ready) - atomic_load(&b->failed_after_ready);
        json_object_set_new(out, "streams_at_reading", json_integer(ready));
        json_object_set_new(out, "rss_per_stream_kb", json_real(ready ? (double)(rss1 - rss0) / ready : 0));
        json_object_set_new(out, "pss_per_stream_kb", json_real(ready ? (double)(pss1 - pss0) / ready : 0));
        json_object_set_new(out, "bench_rss_kb", json_integer(self_rss_kb()));
        json_object_set_new(out, "pushes", json_integer(atomic_load(&b->pushes)));
        json_object_set_new(out, "bad_pushes", json_integer(atomic_load(&b->bad_pushes)));
        pthread_mutex_lock(&b->err_mutex);
        if (b->first_error[0] != '\0')
            json_object_set_new(out, "first_error", json_string(b->first_error));
        pthread_mutex_unlock(&b->err_mutex);
        emit(out);
    }

    for (unsigned k = 1; k <= o->changes && ready > 0; k++) {
        unsigned expected = 0, got;
        int64_t t0 = 0, t_end;
        size_t n = 0;

        sleep_ms(CHANGE_GAP_MS);
        expected = 0;
        for (unsigned i = 0; i < o->count; i++)
            expected += atomic_load(&b->sidecars[i].state) == SC_READY;
        snprintf(b->change_names[k], sizeof(b->change_names[k]), "bench/change-%u", k);
        atomic_store(&b->change_seq, k);
        cpu0 = proc_cpu_ms(o->control_pid);
        self0 = proc_cpu_ms((long)getpid());
        if ((ret = write_change(o, k, &t0)) != 0) {
            fprintf(stderr, "control_bench streams: cannot write the change into %s: %s\n", o->config_dir,
                    strerror(-ret));
            ret = 1;
            goto Stop;
        }
        deadline = t0 + (int64_t)o->change_timeout_s * 1000000000;
        while ((got = atomic_load(&b->change_got[k])) < expected && now_ns() < deadline)
            sleep_ms(1);
        t_end = now_ns();
        cpu1 = proc_cpu_ms(o->control_pid);
        self1 = proc_cpu_ms((long)getpid());
        for (unsigned i = 0; i < o->count; i++)
            if (atomic_load(&b->sidecars[i].change_seq) == k)
                lat[n++] = atomic_load(&b->sidecars[i].change_ns) - t0;
        out = json_object();
        json_object_set_new(out, "mode", json_string("streams"));
        json_object_set_new(out, "phase", json_string("change"));
        json_object_set_new(out, "count", json_integer(o->count));
        json_object_set_new(out, "change", json_integer(k));
        json_object_set_new(out, "expected", json_integer(expected));
        json_object_set_new(out, "received", json_integer(n));
        json_object_set_new(out, "timed_out", json_boolean(got < expected));
        complete &= got >= expected;
        set_latencies(out, "", lat, n);
        json_object_set_new(out, "wait_s", json_real((double)(t_end - t0) / 1e9));
        json_object_set_new(out, "control_cpu_ms", json_integer(cpu1 - cpu0));
        json_object_set_new(out, "bench_cpu_ms", json_integer(self1 - self0));
        json_object_set_new(out, "failed", json_integer(atomic_load(&b->failed)));
        emit(out);
    }
    ret = complete && atomic_load(&b->failed) == 0 ? 0 : 1;

Stop:
    remove_change(o);
    atomic_store(&b->stopping, 1);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        if (workers[i].open_calls > 0) {
            /* calls that did not end in time: leave them, the process is about to exit */
            fprintf(stderr, "control_bench streams: %u streams did not close in time\n", workers[i].open_calls);
            continue;
        }
        grpc_completion_queue_shutdown(workers[i].cq);
        while (grpc_completion_queue_next(workers[i].cq, deadline_in_ms(5000), NULL).type == GRPC_OP_COMPLETE)
            ;
        grpc_completion_queue_destroy(workers[i].cq);
    }
Exit:
    /* channels of sidecars never opened (a closed sidecar has destroyed its own) */
    for (unsigned i = 0; b->sidecars != NULL && i < o->count; i++)
        if (b->sidecars[i].channel != NULL && atomic_load(&b->sidecars[i].state) == SC_IDLE)
            grpc_channel_destroy(b->sidecars[i].channel);
    if (b->creds != NULL)
        grpc_channel_credentials_release(b->creds);
    free(roots);
    free(cert);
    if (key != NULL)
        rm_x509_free_secret(key, key_len);
    free(lat);
    free(b->sidecars);
    pthread_mutex_destroy(&b->err_mutex);
    free(b);
    return ret;
}

int main(int argc, char **argv)
{
    bench_opts_t o;
    const char *mode;
    int ret;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    mode = argv[1];
    if (parse_opts(argc - 1, argv + 1, &o) != 0)
        return 2;
    if (optind != argc - 1) {
        fputs(USAGE, stderr);
        return 2;
    }
    rm_grpc_runtime_init(); /* as ringmesh-control does: abseil without its debug-build lock tracking */
    grpc_init();
    if (strcmp(mode, "streams") == 0) {
        ret = run_streams(&o);
    } else if (strcmp(mode, "sign") == 0) {
        ret = run_sign(&o);
    } else if (strcmp(mode, "svid") == 0) {
        ret = run_svid(&o);
    } else {
        fprintf(stderr, "control_bench: unknown mode \"%s\"\n", mode);
        fputs(USAGE, stderr);
        ret = 2;
    }
    /* grpc_shutdown() waits for every call to end; streams left open after the close timeout would hold it */
    fflush(stdout);
    _exit(ret);
}
