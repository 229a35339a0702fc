/* policy_bench's parts (policy_bench.c: the harness, setup, timing and output; policy_bench_shapes.c: the policy
 * sets and the requests of each shape), and what they share. */
#ifndef RINGMESH_POLICY_BENCH_H
#define RINGMESH_POLICY_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "ringmesh/bytebuf.h"
#include "ringmesh/policy.h"

#define REQS_PER_CLASS  240 /* distinct requests per class and shape (divisible by 3, 4, 8 and 16) */
#define MAX_HEADERS     6
#define DEFAULT_BATCHES 50000
#define DEFAULT_BATCH   16
#define TARGET_P99_NS   1000.0
#define ROOT_NAMESPACE  "ringmesh-system"
#define WORKLOAD_NS     "bench"
#define WORKLOAD_APP    "checkout"

typedef enum { CLASS_EARLY = 0, CLASS_LATE, CLASS_DENY, CLASS_NOMATCH, CLASS_COUNT } req_class_t;
typedef struct st_req_t {
    req_class_t klass;
    rm_authz_attrs_t a;
    rm_http_request_t http;
    rm_http_header_t headers[MAX_HEADERS];
    char principal[128], method[16], path[160], host[64], request_id[40], extra_name[32], extra_value[64];
    /* the decision it must get */
    uint8_t want_allow;
    rm_authz_reason_t want_reason;
    char want_policy[32];
    int want_rule;
} req_t;

typedef struct st_stats_t {
    size_t n;
    double p50, p90, p99, p999, max, mean;
} stats_t;

typedef struct st_shape_t {
    const char *name;
    int http;
    void (*write_yaml)(rm_bytebuf_t *b);
    void (*make_request)(req_t *r, req_class_t k, int i);
    /* filled in */
    rm_policy_set_t set;
    rm_authz_engine_t *engine;
    size_t num_policies, num_rules, yaml_bytes;
    double load_ms, compile_ms;
    req_t reqs[CLASS_COUNT * REQS_PER_CLASS]; /* class k is reqs[k * REQS_PER_CLASS ...] */
    stats_t all, per_class[CLASS_COUNT];
    double decisions_per_s, stream_mean_ns;
} shape_t;

/* policy_bench.c */

/** Prints "policy_bench: " and the message on stderr and exits with status 2 (a setup error). */
__attribute__((noreturn, format(printf, 1, 2))) void pb_die(const char *fmt, ...);

/* policy_bench_shapes.c: each shape's YAML policy set (appended to b) and its request i of class k (made in full,
 * with the decision it must get) */

void pb_write_principals(rm_bytebuf_t *b);
void pb_make_principals(req_t *r, req_class_t k, int i);
void pb_write_tcp(rm_bytebuf_t *b);
void pb_make_tcp(req_t *r, req_class_t k, int i);
void pb_write_mixed(rm_bytebuf_t *b);
void pb_make_mixed(req_t *r, req_class_t k, int i);

#endif
