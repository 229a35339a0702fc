/* resil_bench: the per-request cost of the resilience checks the outbound request path makes around one request
 * (lib/retry_budget.c, lib/outlier.c, lib/circuit.c, lib/retry_policy.c) and of applying a route rule's filters
 * (lib/route_apply.c). No I/O: the request's outcome is drawn.
 *
 * Rows:
 *   checks       budget note + two endpoints' ejection checks (the balancer's two choices) + a circuit token
 *                taken and given back + the outcome reported to outlier detection + the retry decision on it,
 *                over 16 endpoints, every response a 200
 *   checks-5xx   the same with 1 response in 8 a 503 (retries decided and taken from the budget, counters moving)
 *   policy       resolving a rule's retry policy and timeouts (once per request)
 *   apply-none   rm_route_apply on a rule without filters
 *   apply-hdr    a RequestHeaderModifier (set, add, remove) over 8 request headers
 *   apply-rw     a URLRewrite ReplacePrefixMatch and hostname over 8 headers
 *
 * Timing: batches of B requests between two clock reads (CLOCK_MONOTONIC, divided by B); percentiles over the
 * batches. Prints a markdown table.
 *
 *   resil_bench [--batches N] [--batch B]
 *
 * Exit status 0, 1 when a check gave a wrong answer, 2 on a setup error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringmesh/circuit.h"
#include "ringmesh/outlier.h"
#include "ringmesh/retry.h"
#include "ringmesh/route_apply.h"

#define NUM_EPS 16u

typedef struct st_ep_t {
    rm_outlier_ep_t outlier;
    rm_circuit_counts_t counts;
} ep_t;

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

typedef struct st_world_t {
    rm_traffic_config_t cfg;
    rm_retry_budget_t budget;
    rm_outlier_group_t group;
    rm_circuit_counts_t dest;
    rm_circuit_limits_t dest_limits, ep_limits;
    rm_retry_policy_t policy;
    ep_t eps[NUM_EPS];
    int64_t now_ms;
    uint64_t retries, sink;
} world_t;

/* One request's checks; `fail_mask`: a response is a 503 when (random & fail_mask) == 0 (0: never). */
static void one_request(world_t *w, uint32_t fail_mask)
{
    uint32_t r = rng_next();
    size_t a = r % NUM_EPS, b = (r >> 8) % NUM_EPS;
    rm_circuit_token_t tok;
    rm_attempt_t at = {.result = RM_ATTEMPT_RESPONSE, .status = 200, .grpc_status = -1, .body_replayable = 1};
    rm_retry_decision_t d;

    w->now_ms++;
    rm_retry_budget_note_request(&w->budget, w->now_ms);
    if (b == a)
        b = (a + 1) % NUM_EPS;
    int ea = rm_outlier_is_ejected(&w->group, &w->eps[a].outlier, w->now_ms);
    int eb = rm_outlier_is_ejected(&w->group, &w->eps[b].outlier, w->now_ms);
    ep_t *ep = &w->eps[ea && !eb ? b : a];
    if (rm_circuit_acquire(&w->dest_limits, &w->dest, &w->ep_limits, &ep->counts, RM_CIRCUIT_REQUEST, &tok) != 0) {
        w->sink++;
        return;
    }
    if (fail_mask != 0 && ((r >> 16) & fail_mask) == 0)
        at.status = 503;
    rm_outlier_report(&w->group, &ep->outlier, RM_OUTLIER_RESPONSE, at.status, w->now_ms);
    rm_retry_decide(&w->policy, "GET", 3, 0, 0, &at, &w->budget, w->now_ms, RM_DEADLINE_NONE, r, &d);
    w->retries += (uint64_t)d.retry;
    rm_circuit_release(&tok);
}

static void world_init(world_t *w)
{
    memset(w, 0, sizeof(*w));
    rm_traffic_config_defaults(&w->cfg);
    rm_retry_budget_init(&w->budget, &w->cfg.budget, 2);
    rm_outlier_group_init(&w->group, &w->cfg.outlier);
    rm_outlier_group_set_size(&w->group, NUM_EPS);
    rm_circuit_limits_per_worker(&w->cfg.destination, 2, &w->dest_limits);
    rm_circuit_limits_per_worker(&w->cfg.endpoint, 2, &w->ep_limits);
    rm_retry_policy_resolve(NULL, &w->cfg.retry, &w->policy);
    w->now_ms = 1000;
}

static const char *const yaml =
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\n"
    "spec:\n  parentRefs: [{group: \"\", kind: Service, name: orders}]\n  rules:\n"
    "  - backendRefs: [{name: orders, port: 8080}]\n"
    "  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-env, value: prod}], add: "
    "[{name: x-mesh, value: ringmesh}], remove: [x-debug]}}]\n"
    "    timeouts: {request: 10s, backendRequest: 2s}\n"
    "    retry: {attempts: 3, codes: [502, 503], backoff: 50ms}\n"
    "  - matches: [{path: {value: /api/v1}}]\n"
    "    filters: [{type: URLRewrite, urlRewrite: {hostname: orders-v2, path: {type: ReplacePrefixMatch, "
    "replacePrefixMatch: /v2}}}]\n";

int main(int argc, char **argv)
{
    size_t batches = 200000, batch = 16;
    double *times = NULL;
    static world_t w;
    rm_route_list_t list = {0};
    rm_config_error_t err = {0};
    static const rm_http_header_t hs[] = {
        {"host", 4, "orders:8080", 11},
        {"user-agent", 10, "bench/1", 7},
        {"accept", 6, "*/*", 3},
        {"x-debug", 7, "1", 1},
        {"x-env", 5, "dev", 3},
        {"x-request-id", 12, "abc-123", 7},
        {"content-length", 14, "0", 1},
        {"traceparent", 11, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55},
    };
    rm_http_request_t req = {.method = "GET",
                             .method_len = 3,
                             .path = "/api/v1/items/42?full=1",
                             .path_len = 23,
                             .host = "orders:8080",
                             .host_len = 11,
                             .headers = hs,
                             .num_headers = 8};
    char abuf[1024];
    rm_http_header_t ahdrs[32];
    int status = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batches") == 0)
            batches = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = strtoul(argv[i + 1], NULL, 10);
    }
    if (batches == 0 || batch == 0 || (times = calloc(batches, sizeof(*times))) == NULL ||
        rm_route_load_yaml(&list, yaml, strlen(yaml), "bench", &err) != 0) {
        fprintf(stderr, "resil_bench: setup failed\n");
        return 2;
    }
    const rm_route_rule_t *rules = list.routes[0]->rules;

    /* checks before timing: the rewrite row's output and the 5xx row's retries */
    {
        rm_route_arena_t a = {.buf = abuf, .cap = sizeof(abuf), .headers = ahdrs, .headers_cap = 32};
        rm_route_applied_t out;
        if (rm_route_apply(&rules[2], 0, &req, 8080, &a, &out) != 0 || out.path_len != 19 ||
            memcmp(out.path, "/v2/items/42?full=1", 19) != 0 || out.authority_len != 9) {
            fprintf(stderr, "resil_bench: wrong rewrite\n");
            status = 1;
        }
    }
    printf("| row | ns/request mean | p50 | p99 |\n|---|---|---|---|\n");
    for (int row = 0; row < 6; row++) {
        static const char *const names[] = {"checks", "checks-5xx", "policy", "apply-none", "apply-hdr", "apply-rw"};
        world_init(&w);
        for (size_t b = 0; b < batches; b++) {
            int64_t t0 = now_ns();
            for (size_t i = 0; i < batch; i++) {
                switch (row) {
                case 0:
                    one_request(&w, 0);
                    break;
                case 1:
                    one_request(&w, 7);
                    break;
                case 2: {
                    rm_retry_policy_t p;
                    rm_request_timeouts_t t;
                    rm_retry_policy_resolve(&rules[1], &w.cfg.retry, &p);
                    rm_request_timeouts_resolve(&rules[1], &w.cfg, w.now_ms, &t);
                    w.sink += p.attempts + (uint64_t)rm_request_attempt_deadline(&t, w.now_ms);
                    break;
                }
                default: {
                    rm_route_arena_t a = {.buf = abuf, .cap = sizeof(abuf), .headers = ahdrs, .headers_cap = 32};
                    rm_route_applied_t out;
                    if (rm_route_apply(&rules[row - 3], 0, &req, 8080, &a, &out) == 0)
                        w.sink += out.num_headers + out.path_len;
                    break;
                }
                }
            }
            times[b] = (double)(now_ns() - t0) / (double)batch;
        }
        double sum = 0;
        for (size_t b = 0; b < batches; b++)
            sum += times[b];
        qsort(times, batches, sizeof(*times), cmp_double);
        printf("| %s | %.0f | %.0f | %.0f |\n", names[row], sum / (double)batches, times[batches / 2],
               times[batches * 99 / 100]);
        if (row == 1) {
            /* 1 response in 8 fails: the retries granted, what the budget refused, the ejections (five 503s in a row
             * on one endpoint are rare but happen) */
            fprintf(stderr, "resil_bench: checks-5xx: %llu retries, %llu refused by the budget, %llu ejections\n",
                    (unsigned long long)w.retries, (unsigned long long)w.budget.refused,
                    (unsigned long long)w.group.ejections[RM_OUTLIER_5XX]);
            if (w.retries == 0)
                status = 1;
        }
    }
    if (w.sink == 42)
        printf("\n"); /* keeps the loops from being optimized away */
    rm_route_list_clear(&list);
    free(times);
    return status;
}
