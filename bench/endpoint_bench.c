/* endpoint_bench: what the outbound proxy's endpoint choice costs per connection (sidecar/dest_endpoints.h): one
 * rm_endpoint_pick (power of two choices over the candidates, two lookups in the worker's load table) and the load
 * bookkeeping of the connection it opens and closes (rm_endpoint_load_inc, rm_endpoint_load_dec), for services of
 * 3 to 1,000 endpoints, with connections held open so that the load table is not empty.
 *
 *   endpoint_bench [ITERATIONS]      default 2,000,000 per size
 *
 * Times are the thread's CPU time per operation (CLOCK_THREAD_CPUTIME_ID), so that time spent waiting for a core on
 * a busy machine is not counted. Prints one JSON line per size: {"endpoints":N,"pick_ns":..,"pick_and_count_ns":..}.
 * bench/endpoints.sh runs it. */
#include "dest_endpoints.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* the thread's CPU time: a shared machine's waits left out */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int run(size_t n, long iters)
{
    rm_dest_endpoints_t e = {0};
    rm_endpoint_load_t *load = calloc(1, sizeof(*load));
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    volatile int sink = 0;
    int ret = 1;

    if (load == NULL || (e.items = calloc(n, sizeof(*e.items))) == NULL)
        goto Exit;
    e.num = n;
    for (size_t i = 0; i < n; i++) {
        char a[64];
        snprintf(a, sizeof(a), "198.18.%zu.%zu:8080", i / 250, i % 250 + 1);
        if (rm_sockaddr_parse(a, &e.items[i].addr) != 0)
            goto Exit;
        e.items[i].ready = e.items[i].serving = (i % 10) != 9; /* one in ten not ready */
    }
    if (rm_dest_endpoints_index(&e) != 0)
        goto Exit;
    /* a few connections open on every endpoint, as under load */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 1 + i % 4; k++)
            rm_endpoint_load_inc(load, &e.items[i].addr);

    double t0 = now_ns();
    for (long k = 0; k < iters; k++)
        sink += rm_endpoint_pick(&e, load, NULL, 0, &rng);
    double t1 = now_ns();
    for (long k = 0; k < iters; k++) {
        int i = rm_endpoint_pick(&e, load, NULL, 0, &rng);
        rm_endpoint_load_inc(load, &e.items[i].addr);
        rm_endpoint_load_dec(load, &e.items[i].addr);
    }
    double t2 = now_ns();
    printf("{\"endpoints\":%zu,\"candidates\":%zu,\"pick_ns\":%.1f,\"pick_and_count_ns\":%.1f}\n", n, e.num_candidates,
           (t1 - t0) / (double)iters, (t2 - t1) / (double)iters);
    ret = sink < 0;
Exit:
    free(e.candidates);
    free(e.items);
    free(load);
    return ret;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
    static const size_t sizes[] = {3, 10, 100, 1000};
    if (iters <= 0) {
        fprintf(stderr, "usage: endpoint_bench [ITERATIONS]\n");
        return 64;
    }
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        if (run(sizes[s], iters) != 0) {
            fprintf(stderr, "endpoint_bench: out of memory\n");
            return 1;
        }
    return 0;
}
