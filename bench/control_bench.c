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
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "grpc_runtime.h"

#include "control_bench.h"

/* ------------------------------------------------------------------ options */

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

int cb_require(const char *mode, const char *name, const void *value)
{
    if (value != NULL)
        return 0;
    fprintf(stderr, "control_bench %s: --%s is required\n", mode, name);
    return -1;
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
        ret = cb_run_streams(&o);
    } else if (strcmp(mode, "sign") == 0) {
        ret = cb_run_sign(&o);
    } else if (strcmp(mode, "svid") == 0) {
        ret = cb_run_svid(&o);
    } else {
        fprintf(stderr, "control_bench: unknown mode \"%s\"\n", mode);
        fputs(USAGE, stderr);
        ret = 2;
    }
    /* grpc_shutdown() waits for every call to end; streams left open after the close timeout would hold it */
    fflush(stdout);
    _exit(ret);
}
