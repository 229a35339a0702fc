/* control_bench's parts and what they share:
 *
 *   control_bench.c          options and main
 *   control_bench_util.c     the harness: clocks, files, JSON result lines, latency percentiles, the control plane's
 *                            memory and CPU from /proc, descriptors, gRPC channels
 *   control_bench_sign.c     the sign and svid modes (Identity.Sign)
 *   control_bench_streams.c  the streams mode (Discovery streams, configuration changes) */
#ifndef RINGMESH_CONTROL_BENCH_H
#define RINGMESH_CONTROL_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <jansson.h>

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
typedef struct st_bench_opts_t {
    const char *target, *bundle, *cert, *key, *token, *ns, *sa, *config_dir, *cert_out, *key_out;
    long control_pid;
    unsigned count, concurrency, workers, parallel, changes;
    unsigned connect_timeout_s, change_timeout_s;
    long ttl_s;
    int new_connection, proxy_client;
    const char *trust_domain;
} bench_opts_t;

/* control_bench_util.c */

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t cb_now_ns(void);

/** Sleeps `ms` milliseconds, through interruptions by signals. */
void cb_sleep_ms(int64_t ms);

/** A gRPC deadline `ms` from now (the monotonic clock). */
gpr_timespec cb_deadline_in_ms(int64_t ms);

/** Reads a file of at most FILE_MAX bytes, NUL-terminated (the caller frees *out). Returns 0, -EFBIG (larger) or
 *  -errno. */
int cb_read_file(const char *path, char **out, size_t *len);

/** Reads a token file without its trailing newline (the caller frees *out). Returns as cb_read_file. */
int cb_read_token(const char *path, char **out);

/** Prints `obj` as one JSON line on stdout (flushed) and releases it. */
void cb_emit(json_t *obj);

/** Sorts the n latencies (ns) in v and sets PREFIXmin_ms, p50_ms, p90_ms, p99_ms and max_ms (nearest rank) in obj. */
void cb_set_latencies(json_t *obj, const char *prefix, int64_t *v, size_t n);

/** A process's VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup) in KiB. Returns 0 or -errno (then what
 *  could not be read is -1). */
int cb_proc_memory(long pid, long *rss_kb, long *pss_kb);

/** A process's user plus system CPU time in ms (/proc/PID/stat); -1 when it cannot be read. */
int64_t cb_proc_cpu_ms(long pid);

/** This process's resident set size in KiB, or -1. */
long cb_self_rss_kb(void);

/** Raises RLIMIT_NOFILE to at least `need` (the hard limit too when the process may). Returns 0, -EMFILE (the hard
 *  limit is lower and may not be raised) or -errno. */
int cb_raise_nofile(rlim_t need);

/** A channel to `target` (for SERVER_NAME) with its own connection, as each sidecar has: no subchannel sharing, the
 *  sidecar's keep-alive settings. */
grpc_channel *cb_make_channel(const char *target, grpc_channel_credentials *creds);

/** A received message copied into one contiguous slice (the caller unrefs it; empty when it cannot be read). */
grpc_slice cb_message_slice(grpc_byte_buffer *bb);

/* control_bench.c */

/** Says on stderr that mode `mode` needs --`name` when `value` is NULL. Returns 0 or -1. */
int cb_require(const char *mode, const char *name, const void *value);

/* control_bench_sign.c and control_bench_streams.c: each mode, from parsed options; returns the exit status */

int cb_run_sign(const bench_opts_t *o);
int cb_run_svid(const bench_opts_t *o);
int cb_run_streams(const bench_opts_t *o);

#endif
