/* policy_bench's shapes: each policy set written as YAML, and the requests of each class with the decision each must
 * get (the shapes are described at the top of policy_bench.c). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy_bench.h"

/* printf into a growable buffer; the YAML text is the only thing built with it */
__attribute__((format(printf, 2, 3))) static void yp(rm_bytebuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || rm_bytebuf_reserve(b, (size_t)n + 1) != 0)
        pb_die("out of memory writing YAML");
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
        pb_die("bad source IP %s", ip);
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

void pb_write_principals(rm_bytebuf_t *b)
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

void pb_make_principals(req_t *r, req_class_t k, int i)
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

void pb_write_tcp(rm_bytebuf_t *b)
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

void pb_make_tcp(req_t *r, req_class_t k, int i)
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

void pb_write_mixed(rm_bytebuf_t *b)
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
        /* no port: hosts match the authority as sent, port included (docs/authorization.md) */
        snprintf(r->host, sizeof(r->host), "svc%d.example.com", g);
        strcpy(r->path, "/home");
        break;
    case 5:
        req_principal(r, "spiffe://cluster.local/ns/outsider/sa/crawler");
        snprintf(r->path, sizeof(r->path), "/public/%d/index.html", g);
        break;
    }
}

void pb_make_mixed(req_t *r, req_class_t k, int i)
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
