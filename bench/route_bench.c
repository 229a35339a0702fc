/* route_bench: the cost of choosing a route rule and a backend for one request (rm_route_select followed by
 * rm_route_pick_backend), the work the sidecar does per request once routes are applied on the request path.
 *
 * Each shape is written as YAML, read by the real reader (rm_route_load_yaml) and built into the table of one
 * Service (rm_route_table_build), as the sidecar does with a push:
 *
 *   canary  one HTTPRoute: a header-matched rule to the canary and a 90/10 weighted split (the common case).
 *   many    20 HTTPRoutes of 8 rules each (160 matches) on one Service: exact paths, prefixes of every length,
 *           methods, headers and query parameters; requests that match early, late and not at all (404).
 *   regex   the canary route with a RegularExpression path rule and header in front (POSIX regexec per request).
 *   grpc    one GRPCRoute of 30 service/method matches (15 rules) and a catch-all rule, gRPC requests.
 *
 * Every request is selected once first and checked against the rule it must take; a wrong one ends the
 * benchmark with status 1. Timing: batches of B select+pick of one request (CLOCK_MONOTONIC, divided by B), the
 * request drawn at random per batch; percentiles over the batches.
 *
 *   route_bench [--batches N] [--batch B]
 *
 * Prints a markdown table. Exit status 0, 1 when a choice was wrong, 2 on a setup error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringmesh/route.h"

#define MAX_REQS 8
#define YAML_MAX (1u << 20)

typedef struct st_req_t {
    const char *label, *method, *path, *hname, *hvalue;
    int grpc;
    int want_rule; /* -1: no match */
    const char *want_route;
} req_t;

typedef struct st_shape_t {
    const char *name;
    void (*write)(char *buf, size_t len);
    req_t reqs[MAX_REQS];
} shape_t;

#define HEAD(name)                                                                                                     \
    "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: " name ", namespace: shop}\n"    \
    "spec:\n  parentRefs: [{group: \"\", kind: Service, name: orders}]\n  rules:\n"

static void write_canary(char *buf, size_t len)
{
    snprintf(buf, len,
             HEAD("canary") "  - matches: [{headers: [{name: x-canary, value: \"true\"}]}]\n"
                            "    backendRefs: [{name: orders-v2, port: 8080}]\n"
                            "  - backendRefs: [{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: "
                            "8080, weight: 10}]\n");
}

static void write_regex(char *buf, size_t len)
{
    snprintf(buf, len,
             HEAD("canary") "  - matches: [{path: {type: RegularExpression, value: '/items/[0-9]+/reviews'}, headers: "
                            "[{name: x-user, type: RegularExpression, value: 'beta-.*'}]}]\n"
                            "    backendRefs: [{name: orders-v2, port: 8080}]\n"
                            "  - backendRefs: [{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: "
                            "8080, weight: 10}]\n");
}

static void write_many(char *buf, size_t len)
{
    size_t o = 0;
    for (int r = 0; r < 20; r++) {
        o += (size_t)snprintf(buf + o, len - o,
                              "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                              "metadata: {name: r%02d, namespace: shop}\nspec:\n"
                              "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n  rules:\n",
                              r);
        for (int k = 0; k < 8; k++) {
            switch (k % 4) {
            case 0:
                o += (size_t)snprintf(buf + o, len - o, "  - matches: [{path: {type: Exact, value: /api/r%d/k%d}}]\n",
                                      r, k);
                break;
            case 1:
                o +=
                    (size_t)snprintf(buf + o, len - o,
                                     "  - matches: [{path: {value: /api/r%d/p%d/deeper/still}, method: POST}]\n", r, k);
                break;
            case 2:
                o += (size_t)snprintf(
                    buf + o, len - o,
                    "  - matches: [{path: {value: /svc%d}, headers: [{name: x-tenant, value: t%d}]}]\n", r, k);
                break;
            default:
                o += (size_t)snprintf(buf + o, len - o,
                                      "  - matches: [{path: {value: /q%d}, queryParams: [{name: v, value: \"%d\"}]}]\n",
                                      r, k);
            }
            o += (size_t)snprintf(buf + o, len - o,
                                  "    backendRefs: [{name: b%d, port: 8080, weight: 3}, {name: c%d, port: 8080}]\n", r,
                                  k);
        }
    }
}

static void write_grpc(char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len,
                                "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
                                "metadata: {name: grpc, namespace: shop}\nspec:\n"
                                "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n  rules:\n");
    /* 15 rules of two methods each (the API allows 16 rules), then a catch-all */
    for (int k = 0; k < 15; k++)
        o += (size_t)snprintf(buf + o, len - o,
                              "  - matches: [{method: {service: shop.v1.Service%d, method: Call%d}}, "
                              "{method: {service: shop.v1.Service%d, method: Call%d}}]\n"
                              "    backendRefs: [{name: s%d, port: 9090}]\n",
                              k % 8, 2 * k, k % 8, 2 * k + 1, k);
    snprintf(buf + o, len - o, "  - backendRefs: [{name: rest, port: 9090}]\n");
}

static const shape_t shapes[] = {
    {"canary",
     write_canary,
     {{"marked", "GET", "/items/42", "x-canary", "true", 0, 0, "canary"},
      {"split", "GET", "/items/42?x=1", NULL, NULL, 0, 1, "canary"}}},
    {"many",
     write_many,
     {{"early-exact", "GET", "/api/r0/k0", NULL, NULL, 0, 0, "r00"},
      {"late-prefix", "POST", "/api/r19/p5/deeper/still/more", NULL, NULL, 0, 5, "r19"},
      {"header", "GET", "/svc7/x", "x-tenant", "t6", 0, 6, "r07"},
      {"query", "GET", "/q19?a=b&v=7", NULL, NULL, 0, 7, "r19"},
      {"no-match", "GET", "/nothing/here", NULL, NULL, 0, -1, NULL}}},
    {"regex",
     write_regex,
     {{"regex-hit", "GET", "/items/12345/reviews", "x-user", "beta-anna", 0, 0, "canary"},
      {"regex-miss", "GET", "/items/12345/reviews", "x-user", "anna", 0, 1, "canary"}}},
    {"grpc",
     write_grpc,
     {{"first", "POST", "/shop.v1.Service0/Call0", NULL, NULL, 1, 0, "grpc"},
      {"last", "POST", "/shop.v1.Service6/Call29", NULL, NULL, 1, 14, "grpc"},
      {"other", "POST", "/shop.v1.Other/Call", NULL, NULL, 1, 15, "grpc"}}},
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rng_next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t batches = 200000, batch = 16;
    char *yaml = malloc(YAML_MAX);
    double *times = NULL;
    int status = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batches") == 0)
            batches = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = strtoul(argv[i + 1], NULL, 10);
    }
    if (yaml == NULL || batches == 0 || batch == 0 || (times = calloc(batches, sizeof(*times))) == NULL) {
        fprintf(stderr, "route_bench: setup failed\n");
        return 2;
    }
    printf("| shape | request | matches in the table | ns/choice mean | p50 | p99 |\n|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        const shape_t *sh = &shapes[s];
        rm_route_list_t list = {0};
        rm_config_error_t err = {0};
        rm_route_table_t *t = NULL;
        rm_http_header_t hdr[MAX_REQS];
        rm_http_request_t reqs[MAX_REQS];
        size_t nreq = 0, nmatch = 0;
        uint64_t sink = 0;

        sh->write(yaml, YAML_MAX);
        if (rm_route_load_yaml(&list, yaml, strlen(yaml), sh->name, &err) != 0 ||
            rm_route_table_build((const rm_route_t *const *)list.routes, list.num, "shop", "orders", &t) != 0) {
            char msg[1024];
            rm_config_error_format(&err, msg, sizeof(msg));
            fprintf(stderr, "route_bench: %s: %s\n", sh->name, msg);
            return 2;
        }
        for (size_t i = 0; i < list.num; i++)
            for (size_t k = 0; k < list.routes[i]->num_rules; k++)
                nmatch += list.routes[i]->rules[k].num_matches;
        for (; nreq < MAX_REQS && sh->reqs[nreq].label != NULL; nreq++) {
            const req_t *q = &sh->reqs[nreq];
            rm_route_choice_t c;
            hdr[nreq] = (rm_http_header_t){q->hname, q->hname != NULL ? strlen(q->hname) : 0, q->hvalue,
                                           q->hvalue != NULL ? strlen(q->hvalue) : 0};
            reqs[nreq] = (rm_http_request_t){.method = q->method,
                                             .method_len = strlen(q->method),
                                             .path = q->path,
                                             .path_len = strlen(q->path),
                                             .headers = &hdr[nreq],
                                             .num_headers = q->hname != NULL,
                                             .grpc = (uint8_t)q->grpc};
            int rc = rm_route_select(t, 8080, &reqs[nreq], &c);
            if ((q->want_rule < 0 && rc == 0) || (q->want_rule >= 0 && (rc != 0 || (int)c.rule_index != q->want_rule ||
                                                                        strcmp(c.route->name, q->want_route) != 0))) {
                fprintf(stderr, "route_bench: %s/%s: wrong choice\n", sh->name, q->label);
                status = 1;
            }
        }
        /* row -1: the requests drawn at random per batch; then each request alone */
        for (int row = -1; row < (int)nreq; row++) {
            for (size_t b = 0; b < batches; b++) {
                const rm_http_request_t *req = &reqs[row < 0 ? rng_next() % nreq : (size_t)row];
                uint32_t r = rng_next();
                int64_t t0 = now_ns();
                for (size_t i = 0; i < batch; i++) {
                    rm_route_choice_t c;
                    if (rm_route_select(t, 8080, req, &c) == 0) {
                        const rm_route_backend_t *be = rm_route_pick_backend(c.rule, r + (uint32_t)i);
                        sink += be != NULL ? be->port : 1;
                    }
                }
                times[b] = (double)(now_ns() - t0) / (double)batch;
            }
            double sum = 0;
            for (size_t b = 0; b < batches; b++)
                sum += times[b];
            qsort(times, batches, sizeof(*times), cmp_double);
            printf("| %s | %s | %zu | %.0f | %.0f | %.0f |\n", sh->name, row < 0 ? "mix" : sh->reqs[row].label, nmatch,
                   sum / (double)batches, times[batches / 2], times[batches * 99 / 100]);
        }
        if (sink == 42)
            printf("\n"); /* keeps the loop from being optimized away */
        rm_route_table_free(t);
        rm_route_list_clear(&list);
    }
    free(times);
    free(yaml);
    return status;
}
