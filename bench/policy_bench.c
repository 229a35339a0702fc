/* policy_bench: the cost of one authorization decision (rm_authz_evaluate) with 1,000 rules on the workload.
 *
 * Each shape is a policy set written as YAML text, read by the real loader (rm_policy_load_yaml), selected for the
 * workload bench/app=checkout (rm_authz_policy_selects) and compiled (rm_authz_engine_new), as the proxy does:
 *
 *   principals  1,000 ALLOW rules (10 policies of 100), each from one exact principal to GET/HEAD on its own path
 *               prefix, and 8 DENY rules (namespaces, ipBlocks, principal suffix, paths, methods, a header): the
 *               principal index narrows the ALLOW rules to one, the DENY rules are looked at on every decision.
 *   mixed       100 DENY rules (2 policies) and 900 ALLOW rules (6 policies) that the principal index cannot
 *               narrow: namespaces, principal prefixes, ipBlocks, ports, hosts, exact/prefix/suffix paths,
 *               notPaths, notNamespaces and request headers in `when`. A decision scans them in order.
 *   tcp         as principals, on TCP connections (no HTTP request): 1,000 ALLOW rules from exact principals to
 *               database ports, 8 DENY rules on namespaces, ipBlocks, ports, SNI and source.namespace.
 *
 * Requests are made before timing, in four classes: early-allow (allowed by one of the first 10% of the ALLOW
 * rules), late-allow (one of the last 10%), deny (by a DENY rule) and no-allow-match (nothing matches: the worst
 * case, which has to look at every rule that applies). Every request is decided once first and checked against
 * the decision it must get (policy and rule); a wrong one ends the benchmark with status 1.
 *
 * Timing: a batch of B decisions of the same request is timed with CLOCK_MONOTONIC and divided by B (B = 16: the
 * clock's own cost, reported, is then a few ns per decision); batches pick their request at random, 30% early,
 * 30% late, 10% deny, 30% no-allow-match. Percentiles are over the batches, for the mix and per class. A second
 * pass decides the same stream one decision per request in turn (no repetition) for decisions/s on one core.
 *
 *   policy_bench [--batches N] [--batch B] [--seed S] [--shape NAME] [--json FILE]
 *
 * Prints a markdown table on stdout and writes the JSON summary to FILE (stdout when FILE is "-"). Exit status 0,
 * 1 when a decision was wrong, 2 on a usage or setup error. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static const char *const class_names[CLASS_COUNT] = {"early-allow", "late-allow", "deny", "no-allow-match"};
static const unsigned class_permille[CLASS_COUNT] = {300, 300, 100, 300};

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

/* ------------------------------------------------------------------ helpers */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("policy_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* printf into a growable buffer; the YAML text is the only thing built with it */
__attribute__((format(printf, 2, 3))) static void yp(rm_bytebuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || rm_bytebuf_reserve(b, (size_t)n + 1) != 0)
        die("out of memory writing YAML");
    va_start(ap, fmt);
    vsnprintf((char *)b->base + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* One AuthorizationPolicy document up to "  rules:"; the rules follow at two spaces. */
static void policy_head(rm_bytebuf_t *b, const char *name, const char *action)
{
    yp(b,
       "---\n"
       "apiVersion: security.istio.io/v1\n"
       "kind: AuthorizationPolicy\n"
       "metadata:\n"
       "  name: %s\n"
       "  namespace: " WORKLOAD_NS "\n"
       "spec:\n"
       "  selector:\n"
       "    matchLabels:\n"
       "      app: " WORKLOAD_APP "\n"
       "  action: %s\n"
       "  rules:\n",
       name, action);
}

/* A request with the fields every request of the benchmark has; the generators then change what they test. */
static void req_base(req_t *r, req_class_t k, int i)
{
    memset(r, 0, sizeof(*r));
    r->klass = k;
    snprintf(r->request_id, sizeof(r->request_id), "%08x-7f3a-4c1e-9b2d-%012x", (unsigned)(k * 1000 + i),
             (unsigned)i * 7919u);
    rm_authz_ip_parse("192.168.7.20", r->a.source_ip);
    r->a.have_source_ip = 1;
    rm_authz_ip_parse("10.2.0.5", r->a.destination_ip);
    r->a.have_destination_ip = 1;
    r->a.destination_port = 8080;
    strcpy(r->method, "GET");
    strcpy(r->path, "/");
    strcpy(r->host, "checkout.bench.svc:8080");
    r->want_rule = -1;
}

static void req_principal(req_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void req_principal(req_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->principal, sizeof(r->principal), fmt, ap);
    va_end(ap);
}

static void req_source_ip(req_t *r, const char *ip)
{
    if (rm_authz_ip_parse(ip, r->a.source_ip) != 0)
        die("bad source IP %s", ip);
}

static void req_header(req_t *r, const char *name, const char *value)
{
    snprintf(r->extra_name, sizeof(r->extra_name), "%s", name);
    snprintf(r->extra_value, sizeof(r->extra_value), "%s", value);
}

static void want(req_t *r, int allow, rm_authz_reason_t reason, const char *policy, int rule)
{
    r->want_allow = (uint8_t)allow;
    r->want_reason = reason;
    snprintf(r->want_policy, sizeof(r->want_policy), "%s", policy != NULL ? policy : "");
    r->want_rule = rule;
}

/* policies are named PREFIX-NN */
static void want_policy(req_t *r, int allow, const char *prefix, int policy_number, int rule)
{
    char name[32];
    snprintf(name, sizeof(name), "%s-%02d", prefix, policy_number);
    want(r, allow, RM_AUTHZ_REASON_POLICY, name, rule);
}

/* Points the attributes at the request's own strings: what the proxy hands the engine. */
static void req_finish(req_t *r, int http)
{
    static const char traceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    size_t nh = 0;
    r->a.principal = r->principal[0] != '\0' ? r->principal : NULL;
    if (!http) {
        r->a.http = NULL;
        return;
    }
#define HDR(n, v, vl)                                                                                                  \
    r->headers[nh++] = (rm_http_header_t){.name = n, .name_len = strlen(n), .value = v, .value_len = vl}
    HDR("user-agent", "bench-client/1.4", strlen("bench-client/1.4"));
    HDR("accept", "application/json", strlen("application/json"));
    HDR("x-request-id", r->request_id, strlen(r->request_id));
    HDR("traceparent", traceparent, strlen(traceparent));
    if (r->extra_name[0] != '\0')
        HDR(r->extra_name, r->extra_value, strlen(r->extra_value));
#undef HDR
    r->http.method = r->method;
    r->http.method_len = strlen(r->method);
    r->http.path = r->path;
    r->http.path_len = strlen(r->path);
    r->http.host = r->host;
    r->http.host_len = strlen(r->host);
    r->http.headers = r->headers;
    r->http.num_headers = nh;
    r->a.http = &r->http;
}

/* ------------------------------------------------------------------ shape: principals (and tcp) */

#define CALLER_RULES      1000
#define CALLER_PER_POLICY 100

static void write_caller_rules(rm_bytebuf_t *b, int http)
{
    char name[32];
    for (int g = 0; g < CALLER_RULES; g++) {
        if (g % CALLER_PER_POLICY == 0) {
            snprintf(name, sizeof(name), "allow-callers-%02d", g / CALLER_PER_POLICY);
            policy_head(b, name, "ALLOW");
        }
        /* users write both forms; the engine compares without "spiffe://" */
        yp(b,
           "  - from:\n"
           "    - source:\n"
           "        principals: [\"%scluster.local/ns/ns%d/sa/sa%d\"]\n"
           "    to:\n"
           "    - operation:\n",
           g % 4 == 0 ? "spiffe://" : "", g, g);
        if (http)
            yp(b,
               "        methods: [\"GET\", \"HEAD\"]\n"
               "        paths: [\"/api/svc%d/*\"]\n",
               g);
        else
            yp(b, "        ports: [\"5432\", \"6432\"]\n");
    }
}

/* The DENY policy both shapes start with: a quarantined namespace, an address block and a principal suffix. Its
 * rules for the shape's own fields follow. */
static void deny_blocked_sources(rm_bytebuf_t *b)
{
    policy_head(b, "deny-blocked", "DENY");
    yp(b, "  - from:\n"
          "    - source:\n"
          "        namespaces: [\"quarantine\"]\n"
          "  - from:\n"
          "    - source:\n"
          "        ipBlocks: [\"203.0.113.0/24\"]\n"
          "  - from:\n"
          "    - source:\n"
          "        principals: [\"*/sa/compromised\"]\n");
}

static void write_principals(rm_bytebuf_t *b)
{
    deny_blocked_sources(b);
    yp(b, "  - to:\n"
          "    - operation:\n"
          "        paths: [\"/admin/*\"]\n"
          "  - to:\n"
          "    - operation:\n"
          "        methods: [\"DELETE\"]\n"
          "        paths: [\"/api/*\"]\n"
          "  - to:\n"
          "    - operation:\n"
          "        paths: [\"*.php\"]\n"
          "  - when:\n"
          "    - key: request.headers[x-debug-override]\n"
          "      values: [\"*\"]\n"
          "  - from:\n"
          "    - source:\n"
          "        namespaces: [\"legacy-*\"]\n"
          "    to:\n"
          "    - operation:\n"
          "        methods: [\"POST\", \"PUT\"]\n");
    write_caller_rules(b, 1);
}

/* a caller allowed by ALLOW rule g */
static void caller_request(req_t *r, int g)
{
    req_principal(r, "spiffe://cluster.local/ns/ns%d/sa/sa%d", g, g);
    snprintf(r->path, sizeof(r->path), "/api/svc%d/orders/%d?expand=items", g, g * 7 % 1000);
}

static void make_principals(req_t *r, req_class_t k, int i)
{
    int g;
    req_base(r, k, i);
    switch (k) {
    case CLASS_EARLY:
    case CLASS_LATE:
        g = k == CLASS_EARLY ? i % (CALLER_RULES / 10) : CALLER_RULES - CALLER_RULES / 10 + i % (CALLER_RULES / 10);
        caller_request(r, g);
        want_policy(r, 1, "allow-callers", g / CALLER_PER_POLICY, g % CALLER_PER_POLICY);
        break;
    case CLASS_DENY:
        g = (i * 37) % CALLER_RULES;
        caller_request(r, g); /* an allowed request, made to hit DENY rule i % 8 */
        switch (i % 8) {
        case 0:
            req_principal(r, "spiffe://cluster.local/ns/quarantine/sa/sa%d", g);
            break;
        case 1: {
            char ip[32];
            snprintf(ip, sizeof(ip), "203.0.113.%d", i % 250 + 1);
            req_source_ip(r, ip);
            break;
        }
        case 2:
            req_principal(r, "spiffe://cluster.local/ns/ns%d/sa/compromised", g);
            break;
        case 3:
            strcpy(r->path, "/admin/users?page=2");
            break;
        case 4:
            strcpy(r->method, "DELETE");
            break;
        case 5:
            snprintf(r->path, sizeof(r->path), "/api/svc%d/index.php", g);
            break;
        case 6:
            req_header(r, "x-debug-override", "1");
            break;
        case 7:
            req_principal(r, "spiffe://cluster.local/ns/legacy-billing/sa/sa%d", g);
            strcpy(r->method, "POST");
            break;
        }
        want(r, 0, RM_AUTHZ_REASON_POLICY, "deny-blocked", i % 8);
        break;
    case CLASS_NOMATCH:
    default:
        g = (i * 13) % CALLER_RULES;
        caller_request(r, g);
        if (i % 3 == 0)
            req_principal(r, "spiffe://cluster.local/ns/stranger/sa/s%d", i); /* unknown caller */
        else if (i % 3 == 1)
            snprintf(r->path, sizeof(r->path), "/api/svc%d/orders", (g + 1) % CALLER_RULES); /* not its path */
        else
            r->principal[0] = '\0'; /* plaintext: no principal */
        want(r, 0, RM_AUTHZ_REASON_NO_ALLOW_MATCH, NULL, -1);
        break;
    }
    req_finish(r, 1);
}

/* ------------------------------------------------------------------ shape: tcp */

static void write_tcp(rm_bytebuf_t *b)
{
    deny_blocked_sources(b);
    yp(b, "  - to:\n"
          "    - operation:\n"
          "        ports: [\"22\"]\n"
          "  - from:\n"
          "    - source:\n"
          "        notIpBlocks: [\"10.0.0.0/8\"]\n"
          "    to:\n"
          "    - operation:\n"
          "        ports: [\"5433\"]\n"
          "  - when:\n"
          "    - key: source.namespace\n"
          "      values: [\"legacy-*\"]\n"
          "  - when:\n"
          "    - key: connection.sni\n"
          "      values: [\"*.attacker.example\"]\n"
          "  - from:\n"
          "    - source:\n"
          "        ipBlocks: [\"198.51.100.0/24\", \"192.0.2.0/24\"]\n");
    write_caller_rules(b, 0);
}

static void tcp_request(req_t *r, int g)
{
    req_principal(r, "spiffe://cluster.local/ns/ns%d/sa/sa%d", g, g);
    req_source_ip(r, "10.1.3.7");
    r->a.destination_port = 5432;
    r->a.sni = "db.bench.svc.cluster.local";
}

static void make_tcp(req_t *r, req_class_t k, int i)
{
    int g;
    req_base(r, k, i);
    switch (k) {
    case CLASS_EARLY:
    case CLASS_LATE:
        g = k == CLASS_EARLY ? i % (CALLER_RULES / 10) : CALLER_RULES - CALLER_RULES / 10 + i % (CALLER_RULES / 10);
        tcp_request(r, g);
        if (i % 2)
            r->a.destination_port = 6432;
        want_policy(r, 1, "allow-callers", g / CALLER_PER_POLICY, g % CALLER_PER_POLICY);
        break;
    case CLASS_DENY:
        g = (i * 37) % CALLER_RULES;
        tcp_request(r, g);
        switch (i % 8) {
        case 0:
            req_principal(r, "spiffe://cluster.local/ns/quarantine/sa/sa%d", g);
            break;
        case 1:
            req_source_ip(r, "203.0.113.40");
            break;
        case 2:
            req_principal(r, "spiffe://cluster.local/ns/ns%d/sa/compromised", g);
            break;
        case 3:
            r->a.destination_port = 22;
            break;
        case 4:
            req_source_ip(r, "172.16.0.9");
            r->a.destination_port = 5433;
            break;
        case 5:
            req_principal(r, "spiffe://cluster.local/ns/legacy-db/sa/sa%d", g);
            break;
        case 6:
            r->a.sni = "db.attacker.example";
            break;
        case 7:
            req_source_ip(r, "198.51.100.77");
            break;
        }
        want(r, 0, RM_AUTHZ_REASON_POLICY, "deny-blocked", i % 8);
        break;
    case CLASS_NOMATCH:
    default:
        g = (i * 13) % CALLER_RULES;
        tcp_request(r, g);
        if (i % 3 == 0)
            req_principal(r, "spiffe://cluster.local/ns/stranger/sa/s%d", i);
        else if (i % 3 == 1)
            r->a.destination_port = 9999; /* not its port */
        else
            r->principal[0] = '\0';
        want(r, 0, RM_AUTHZ_REASON_NO_ALLOW_MATCH, NULL, -1);
        break;
    }
    req_finish(r, 0);
}

/* ------------------------------------------------------------------ shape: mixed */

#define MIXED_DENY            100
#define MIXED_DENY_PER_POLICY 50
#define MIXED_ALLOW           900
#define MIXED_ALLOW_PER       150
#define MIXED_KINDS           6

static void write_mixed(rm_bytebuf_t *b)
{
    char name[32];
    for (int k = 0; k < MIXED_DENY; k++) {
        if (k % MIXED_DENY_PER_POLICY == 0) {
            snprintf(name, sizeof(name), "deny-%02d", k / MIXED_DENY_PER_POLICY);
            policy_head(b, name, "DENY");
        }
        switch (k % 4) {
        case 0:
            yp(b, "  - from:\n    - source:\n        namespaces: [\"quarantine-%d\"]\n", k);
            break;
        case 1:
            yp(b, "  - from:\n    - source:\n        ipBlocks: [\"203.0.%d.0/24\"]\n", k);
            break;
        case 2:
            yp(b, "  - to:\n    - operation:\n        paths: [\"/admin/%d/*\"]\n", k);
            break;
        case 3:
            yp(b, "  - when:\n    - key: request.headers[x-block]\n      values: [\"b%d\"]\n", k);
            break;
        }
    }
    for (int g = 0; g < MIXED_ALLOW; g++) {
        if (g % MIXED_ALLOW_PER == 0) {
            snprintf(name, sizeof(name), "allow-%02d", g / MIXED_ALLOW_PER);
            policy_head(b, name, "ALLOW");
        }
        switch (g % MIXED_KINDS) {
        case 0:
            yp(b,
               "  - from:\n    - source:\n        namespaces: [\"ns%d\"]\n"
               "    to:\n    - operation:\n        methods: [\"GET\", \"HEAD\"]\n"
               "        paths: [\"/api/v1/svc%d/*\"]\n",
               g, g);
            break;
        case 1:
            yp(b,
               "  - from:\n    - source:\n        principals: [\"cluster.local/ns/ns%d/sa/*\"]\n"
               "    to:\n    - operation:\n        ports: [\"8080\"]\n        paths: [\"*/svc%d.json\"]\n",
               g, g);
            break;
        case 2:
            yp(b,
               "  - from:\n    - source:\n        ipBlocks: [\"10.%d.%d.0/24\"]\n"
               "    to:\n    - operation:\n        methods: [\"POST\"]\n        paths: [\"/ingest/%d\"]\n",
               g / 256, g % 256, g);
            break;
        case 3:
            yp(b,
               "  - from:\n    - source:\n        namespaces: [\"ns%d\"]\n"
               "    to:\n    - operation:\n        paths: [\"/tenant/*\"]\n        notPaths: [\"*/private\"]\n"
               "    when:\n    - key: request.headers[x-tenant]\n      values: [\"tenant-%d\"]\n",
               g, g);
            break;
        case 4:
            yp(b,
               "  - from:\n    - source:\n        namespaces: [\"ns%d\", \"shared-%d\"]\n"
               "    to:\n    - operation:\n        hosts: [\"svc%d.example.com\"]\n"
               "        notPaths: [\"/internal/*\"]\n",
               g, g, g);
            break;
        case 5:
            yp(b,
               "  - from:\n    - source:\n        notNamespaces: [\"quarantine-*\"]\n"
               "    to:\n    - operation:\n        methods: [\"GET\"]\n        paths: [\"/public/%d\", "
               "\"/public/%d/*\"]\n",
               g, g);
            break;
        }
    }
}

/* a request that ALLOW rule g, and no rule before it, allows */
static void mixed_allowed_request(req_t *r, int g)
{
    char ip[32];
    switch (g % MIXED_KINDS) {
    case 0:
        req_principal(r, "spiffe://cluster.local/ns/ns%d/sa/client", g);
        snprintf(r->path, sizeof(r->path), "/api/v1/svc%d/items?limit=5", g);
        break;
    case 1:
        req_principal(r, "spiffe://cluster.local/ns/ns%d/sa/reader", g);
        snprintf(r->path, sizeof(r->path), "/static/svc%d.json", g);
        break;
    case 2:
        r->principal[0] = '\0';
        snprintf(ip, sizeof(ip), "10.%d.%d.7", g / 256, g % 256);
        req_source_ip(r, ip);
        strcpy(r->method, "POST");
        snprintf(r->path, sizeof(r->path), "/ingest/%d", g);
        break;
    case 3:
        req_principal(r, "spiffe://cluster.local/ns/ns%d/sa/tenant-app", g);
        snprintf(r->path, sizeof(r->path), "/tenant/%d/data", g);
        snprintf(r->extra_value, sizeof(r->extra_value), "tenant-%d", g);
        snprintf(r->extra_name, sizeof(r->extra_name), "x-tenant");
        break;
    case 4:
        req_principal(r, "spiffe://cluster.local/ns/shared-%d/sa/web", g);
        snprintf(r->host, sizeof(r->host), "svc%d.example.com:8080", g);
        strcpy(r->path, "/home");
        break;
    case 5:
        req_principal(r, "spiffe://cluster.local/ns/outsider/sa/crawler");
        snprintf(r->path, sizeof(r->path), "/public/%d/index.html", g);
        break;
    }
}

static void make_mixed(req_t *r, req_class_t k, int i)
{
    int g;
    req_base(r, k, i);
    switch (k) {
    case CLASS_EARLY:
    case CLASS_LATE:
        g = k == CLASS_EARLY ? i % (MIXED_ALLOW / 10) : MIXED_ALLOW - MIXED_ALLOW / 10 + i % (MIXED_ALLOW / 10);
        mixed_allowed_request(r, g);
        want_policy(r, 1, "allow", g / MIXED_ALLOW_PER, g % MIXED_ALLOW_PER);
        break;
    case CLASS_DENY: {
        int d = (i * 7) % MIXED_DENY;
        char v[32];
        g = (i * 6) % MIXED_ALLOW; /* kind 0: an allowed request, made to hit DENY rule d */
        mixed_allowed_request(r, g);
        switch (d % 4) {
        case 0:
            req_principal(r, "spiffe://cluster.local/ns/quarantine-%d/sa/client", d);
            break;
        case 1:
            snprintf(v, sizeof(v), "203.0.%d.9", d);
            req_source_ip(r, v);
            break;
        case 2:
            snprintf(r->path, sizeof(r->path), "/admin/%d/settings", d);
            break;
        case 3:
            snprintf(v, sizeof(v), "b%d", d);
            req_header(r, "x-block", v);
            break;
        }
        want_policy(r, 0, "deny", d / MIXED_DENY_PER_POLICY, d % MIXED_DENY_PER_POLICY);
        break;
    }
    case CLASS_NOMATCH:
    default:
        g = (i * 6) % MIXED_ALLOW; /* kind 0 */
        mixed_allowed_request(r, g);
        if (i % 3 == 0) {
            req_principal(r, "spiffe://cluster.local/ns/stranger/sa/s%d", i);
        } else if (i % 3 == 1) {
            r->principal[0] = '\0';
            strcpy(r->path, "/");
        } else {
            strcpy(r->method, "POST"); /* its namespace, not its method */
        }
        want(r, 0, RM_AUTHZ_REASON_NO_ALLOW_MATCH, NULL, -1);
        break;
    }
    req_finish(r, 1);
}

/* ------------------------------------------------------------------ setup and checks */

static void shape_setup(shape_t *s)
{
    rm_bytebuf_t yaml = {0};
    rm_policy_diags_t diags = {0};
    rm_label_t label = {.key = "app", .value = WORKLOAD_APP};
    rm_workload_t w = {.namespace_ = WORKLOAD_NS, .labels = &label, .num_labels = 1};
    rm_authz_engine_opts_t opts = {.default_action = RM_AUTHZ_DENY};
    const rm_authz_policy_t **sel;
    char file[64], err[512] = "", msg[1200];
    int ret;

    s->write_yaml(&yaml);
    s->yaml_bytes = yaml.len;
    snprintf(file, sizeof(file), "%s.yaml", s->name);
    int64_t t0 = now_ns();
    ret = rm_policy_load_yaml(&s->set, (const char *)yaml.base, yaml.len, file, 1, &diags);
    s->load_ms = (double)(now_ns() - t0) / 1e6;
    for (size_t i = 0; i < diags.n; i++) {
        rm_policy_diag_format(&diags.d[i], msg, sizeof(msg));
        fprintf(stderr, "policy_bench: %s\n", msg);
    }
    if (ret != 0 || diags.num_errors != 0)
        die("%s: the loader refused the generated policies (%d)", s->name, ret);
    rm_policy_diags_clear(&diags);
    rm_bytebuf_free(&yaml);

    if ((sel = calloc(s->set.num_policies + 1, sizeof(*sel))) == NULL)
        die("out of memory");
    for (size_t i = 0; i < s->set.num_policies; i++)
        if (rm_authz_policy_selects(&s->set.policies[i], ROOT_NAMESPACE, &w))
            sel[s->num_policies++] = &s->set.policies[i];
    if (s->num_policies != s->set.num_policies)
        die("%s: %zu of %zu policies select the workload", s->name, s->num_policies, s->set.num_policies);
    t0 = now_ns();
    ret = rm_authz_engine_new(&s->engine, sel, s->num_policies, &opts, err, sizeof(err));
    s->compile_ms = (double)(now_ns() - t0) / 1e6;
    free(sel);
    if (ret != 0)
        die("%s: compile: %d %s", s->name, ret, err);
    s->num_rules = rm_authz_engine_num_rules(s->engine);

    for (int k = 0; k < CLASS_COUNT; k++)
        for (int i = 0; i < REQS_PER_CLASS; i++)
            s->make_request(&s->reqs[k * REQS_PER_CLASS + i], (req_class_t)k, i);
}

/* Decides every request once and compares with what it must get. Returns the number of wrong decisions. */
static int shape_check(const shape_t *s)
{
    int wrong = 0;
    char why[512];
    for (size_t i = 0; i < CLASS_COUNT * REQS_PER_CLASS; i++) {
        const req_t *r = &s->reqs[i];
        rm_authz_decision_t d;
        rm_authz_evaluate(s->engine, &r->a, 0.5, &d);
        int ok = d.allow == r->want_allow && d.reason == r->want_reason && d.rule == r->want_rule &&
                 (r->want_policy[0] == '\0' ? d.policy == NULL
                                            : d.policy != NULL && strcmp(d.policy->name, r->want_policy) == 0);
        if (!ok) {
            rm_authz_decision_explain(&d, why, sizeof(why));
            if (wrong < 10)
                fprintf(stderr,
                        "policy_bench: %s %s request %zu (principal %s, %s %s): got \"%s\", want %s by %s rule %d "
                        "(%s)\n",
                        s->name, class_names[r->klass], i % REQS_PER_CLASS, r->a.principal ? r->a.principal : "-",
                        r->a.http ? r->method : "tcp", r->a.http ? r->path : "", why, r->want_allow ? "allow" : "deny",
                        r->want_policy[0] ? r->want_policy : "-", r->want_rule, rm_authz_reason_word(r->want_reason));
            wrong++;
        }
    }
    return wrong;
}

/* ------------------------------------------------------------------ measurement */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nearest rank on sorted values */
static double rank(const double *v, size_t n, double p)
{
    size_t k = (size_t)ceil(p * (double)n);
    return v[k == 0 ? 0 : k - 1];
}

static stats_t summarize(double *v, size_t n)
{
    stats_t st = {.n = n};
    double sum = 0;
    if (n == 0)
        return st;
    qsort(v, n, sizeof(*v), cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    st.p50 = rank(v, n, 0.50);
    st.p90 = rank(v, n, 0.90);
    st.p99 = rank(v, n, 0.99);
    st.p999 = rank(v, n, 0.999);
    st.max = v[n - 1];
    st.mean = sum / (double)n;
    return st;
}

static volatile unsigned sink;

static void shape_measure(shape_t *s, size_t batches, unsigned batch)
{
    uint32_t *pick = malloc(batches * sizeof(*pick));
    double *ns = malloc(batches * sizeof(*ns)), *cls = malloc(batches * sizeof(*cls));
    rm_authz_decision_t d;
    unsigned acc = 0;
    if (pick == NULL || ns == NULL || cls == NULL)
        die("out of memory");

    for (size_t b = 0; b < batches; b++) {
        unsigned u = (unsigned)(rng_next() % 1000), k = 0, cum = class_permille[0];
        while (u >= cum && k + 1 < CLASS_COUNT)
            cum += class_permille[++k];
        pick[b] = k * REQS_PER_CLASS + (uint32_t)(rng_next() % REQS_PER_CLASS);
    }
    for (int rep = 0; rep < 8; rep++) /* warm-up: code, engine and requests in cache, CPU clocked up */
        for (size_t i = 0; i < CLASS_COUNT * REQS_PER_CLASS; i++) {
            rm_authz_evaluate(s->engine, &s->reqs[i].a, 0.5, &d);
            acc += d.allow;
        }

    for (size_t b = 0; b < batches; b++) {
        const rm_authz_attrs_t *a = &s->reqs[pick[b]].a;
        int64_t t0 = now_ns();
        for (unsigned k = 0; k < batch; k++) {
            rm_authz_evaluate(s->engine, a, 0.5, &d);
            acc += d.allow;
        }
        ns[b] = (double)(now_ns() - t0) / batch;
    }

    /* one decision per request in turn: decisions/s on one core */
    int64_t t0 = now_ns();
    for (unsigned k = 0; k < batch; k++)
        for (size_t b = 0; b < batches; b++) {
            rm_authz_evaluate(s->engine, &s->reqs[pick[b]].a, 0.5, &d);
            acc += d.allow;
        }
    double elapsed = (double)(now_ns() - t0);
    s->decisions_per_s = (double)batches * batch / (elapsed / 1e9);
    s->stream_mean_ns = elapsed / ((double)batches * batch);
    sink = acc;

    for (int k = 0; k < CLASS_COUNT; k++) {
        size_t n = 0;
        for (size_t b = 0; b < batches; b++)
            if (pick[b] / REQS_PER_CLASS == (uint32_t)k)
                cls[n++] = ns[b];
        s->per_class[k] = summarize(cls, n);
    }
    s->all = summarize(ns, batches);
    free(pick);
    free(ns);
    free(cls);
}

/* the median cost of the clock reads around one batch, which every batch includes */
static double timer_overhead_ns(void)
{
    enum { N = 20001 };
    static double v[N];
    for (int i = 0; i < N; i++) {
        int64_t t0 = now_ns();
        v[i] = (double)(now_ns() - t0);
    }
    qsort(v, N, sizeof(v[0]), cmp_double);
    return v[N / 2];
}

/* ------------------------------------------------------------------ output */

static int worst_class(const shape_t *s)
{
    int w = 0;
    for (int k = 1; k < CLASS_COUNT; k++)
        if (s->per_class[k].p99 > s->per_class[w].p99)
            w = k;
    return w;
}

static void print_stats_json(FILE *f, const stats_t *st)
{
    fprintf(f,
            "{\"samples\":%zu,\"p50_ns\":%.1f,\"p90_ns\":%.1f,\"p99_ns\":%.1f,\"p999_ns\":%.1f,\"max_ns\":%.1f,"
            "\"mean_ns\":%.1f}",
            st->n, st->p50, st->p90, st->p99, st->p999, st->max, st->mean);
}

static void print_json(FILE *f, shape_t *const *shapes, size_t n, size_t batches, unsigned batch, uint64_t seed,
                       double overhead)
{
    fprintf(f,
            "{\"bench\":\"policy\",\"batch\":%u,\"batches\":%zu,\"seed\":%llu,\"timer_overhead_ns\":%.1f,"
            "\"target_p99_ns\":%.0f,\"shapes\":[",
            batch, batches, (unsigned long long)seed, overhead, TARGET_P99_NS);
    for (size_t i = 0; i < n; i++) {
        const shape_t *s = shapes[i];
        int w = worst_class(s);
        fprintf(f,
                "%s{\"name\":\"%s\",\"http\":%s,\"policies\":%zu,\"rules\":%zu,\"yaml_bytes\":%zu,\"load_ms\":%.2f,"
                "\"compile_ms\":%.2f,\"decisions\":%zu,\"decisions_per_s\":%.0f,\"stream_mean_ns\":%.1f,\"all\":",
                i ? "," : "", s->name, s->http ? "true" : "false", s->num_policies, s->num_rules, s->yaml_bytes,
                s->load_ms, s->compile_ms, batches * batch, s->decisions_per_s, s->stream_mean_ns);
        print_stats_json(f, &s->all);
        fprintf(f, ",\"worst_class\":\"%s\",\"classes\":{", class_names[w]);
        for (int k = 0; k < CLASS_COUNT; k++) {
            fprintf(f, "%s\"%s\":", k ? "," : "", class_names[k]);
            print_stats_json(f, &s->per_class[k]);
        }
        fprintf(f, "},\"p99_met\":%s}",
                s->all.p99 <= TARGET_P99_NS && s->per_class[w].p99 <= TARGET_P99_NS ? "true" : "false");
    }
    fprintf(f, "]}\n");
}

static void print_row(const char *shape, const char *klass, const char *share, const stats_t *st, double per_s)
{
    printf("| %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", shape, klass, share, st->p50, st->p90,
           st->p99, st->p999, st->max, st->mean, per_s);
}

static void print_markdown(shape_t *const *shapes, size_t n, size_t batches, unsigned batch, double overhead)
{
    printf("Decisions timed in batches of %u of one request (%zu batches, %zu decisions per shape); clock read "
           "around a batch: %.0f ns (%.1f ns per decision, included). ns per decision.\n\n",
           batch, batches, batches * batch, overhead, overhead / batch);
    printf("| shape | class | share | p50 | p90 | p99 | p99.9 | max | mean | decisions/s |\n");
    printf("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (size_t i = 0; i < n; i++) {
        const shape_t *s = shapes[i];
        char label[96], share[16];
        snprintf(label, sizeof(label), "%s (%zu rules%s)", s->name, s->num_rules, s->http ? "" : ", TCP");
        print_row(label, "**mix**", "100%", &s->all, s->decisions_per_s);
        for (int k = 0; k < CLASS_COUNT; k++) {
            snprintf(share, sizeof(share), "%u%%", class_permille[k] / 10);
            print_row("", class_names[k], share, &s->per_class[k], 1e9 / s->per_class[k].mean);
        }
    }
    printf("\ndecisions/s: for the mix, one core deciding the same stream one decision per request in turn (no "
           "repetition); per class, 1 s / mean.\n\n");
    for (size_t i = 0; i < n; i++) {
        const shape_t *s = shapes[i];
        int w = worst_class(s);
        printf("- %s: p99 %.0f ns over the mix, %.0f ns for %s (worst class): %s the 1 µs target. %zu policies, "
               "YAML %zu bytes, loaded in %.1f ms, compiled in %.1f ms.\n",
               s->name, s->all.p99, s->per_class[w].p99, class_names[w],
               s->all.p99 <= TARGET_P99_NS && s->per_class[w].p99 <= TARGET_P99_NS ? "meets" : "misses",
               s->num_policies, s->yaml_bytes, s->load_ms, s->compile_ms);
    }
}

/* ------------------------------------------------------------------ main */

static shape_t shape_defs[] = {
    {.name = "principals", .http = 1, .write_yaml = write_principals, .make_request = make_principals},
    {.name = "mixed", .http = 1, .write_yaml = write_mixed, .make_request = make_mixed},
    {.name = "tcp", .http = 0, .write_yaml = write_tcp, .make_request = make_tcp},
};
#define NUM_SHAPES (sizeof(shape_defs) / sizeof(shape_defs[0]))

static void usage(void)
{
    fprintf(stderr, "usage: policy_bench [--batches N] [--batch B] [--seed S] [--shape principals|mixed|tcp] "
                    "[--json FILE|-]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"batches", required_argument, NULL, 'n'},
                                             {"batch", required_argument, NULL, 'b'},
                                             {"seed", required_argument, NULL, 's'},
                                             {"shape", required_argument, NULL, 'S'},
                                             {"json", required_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    size_t batches = DEFAULT_BATCHES;
    unsigned long batch = DEFAULT_BATCH;
    uint64_t seed = 1;
    const char *only = NULL, *json_path = NULL;
    shape_t *shapes[NUM_SHAPES];
    size_t n = 0;
    int opt, wrong = 0;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            batches = strtoul(optarg, NULL, 10);
            break;
        case 'b':
            batch = strtoul(optarg, NULL, 10);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            only = optarg;
            break;
        case 'j':
            json_path = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind != argc || batches < 1000 || batch < 1 || batch > 1024)
        usage();
    rng_state ^= seed * 0xbf58476d1ce4e5b9ULL;
    if (rng_state == 0)
        rng_state = 1;

    for (size_t i = 0; i < NUM_SHAPES; i++)
        if (only == NULL || strcmp(only, shape_defs[i].name) == 0)
            shapes[n++] = &shape_defs[i];
    if (n == 0)
        usage();

    for (size_t i = 0; i < n; i++) {
        shape_setup(shapes[i]);
        int w = shape_check(shapes[i]);
        fprintf(stderr, "policy_bench: %s: %zu rules, %d of %d decisions wrong\n", shapes[i]->name,
                shapes[i]->num_rules, w, CLASS_COUNT * REQS_PER_CLASS);
        wrong += w;
    }
    if (wrong > 0) {
        fprintf(stderr, "policy_bench: %d wrong decisions: not measuring a broken engine\n", wrong);
        return 1;
    }

    double overhead = timer_overhead_ns();
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "policy_bench: measuring %s\n", shapes[i]->name);
        shape_measure(shapes[i], batches, (unsigned)batch);
    }

    print_markdown(shapes, n, batches, (unsigned)batch, overhead);
    if (json_path != NULL) {
        FILE *f = strcmp(json_path, "-") == 0 ? stdout : fopen(json_path, "w");
        if (f == NULL)
            die("%s: %s", json_path, strerror(errno));
        print_json(f, shapes, n, batches, (unsigned)batch, seed, overhead);
        if (f != stdout && fclose(f) != 0)
            die("%s: %s", json_path, strerror(errno));
    }
    for (size_t i = 0; i < n; i++) {
        rm_authz_engine_free(shapes[i]->engine);
        rm_policy_set_clear(&shapes[i]->set);
    }
    return 0;
}
