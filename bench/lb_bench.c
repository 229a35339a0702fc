/* lb_bench: the cost of the per-request balancer's choice (rm_lb_ewma_pick, ringmesh/lb.h) among 3, 10 and 100
 * endpoints whose estimates hold measurements of different ages and some requests in flight, as on a busy worker.
 *
 * Timing: batches of B picks (CLOCK_MONOTONIC around the batch, divided by B); each pick is followed by the
 * bookkeeping the proxy does for it (rm_lb_ewma_start, and rm_lb_ewma_done of an earlier request), which is
 * counted too. Percentiles over the batches.
 *
 *   lb_bench [--batches N] [--batch B]
 *
 * Prints a markdown table. Exit status 0, 2 on bad arguments. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringmesh/lb.h"

#define MAX_EPS 100

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t batches = 2000, batch = 1000;
    static const size_t sizes[] = {3, 10, 100};
    static rm_lb_ewma_t eps[MAX_EPS];
    rm_lb_ewma_t *stats[MAX_EPS];
    const rm_lb_ewma_cfg_t cfg = {0};
    double *per_pick;
    uint64_t rng = 0x2545f4914f6cdd1dull, sink = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc)
            batches = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: lb_bench [--batches N] [--batch B]\n");
            return 2;
        }
    }
    if (batches == 0 || batch == 0 || (per_pick = calloc(batches, sizeof(*per_pick))) == NULL) {
        fprintf(stderr, "lb_bench: bad arguments\n");
        return 2;
    }
    printf("| endpoints | p50 ns/pick | p90 | p99 |\n|---|---|---|---|\n");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        uint64_t t0 = now_ns();
        memset(eps, 0, sizeof(eps));
        for (size_t i = 0; i < n; i++) {
            stats[i] = &eps[i];
            rm_lb_ewma_start(&eps[i]);
            rm_lb_ewma_done(&eps[i], &cfg, t0 - (i + 1) * 1000000ull, t0 - i * 1000ull); /* 1 ms .. n ms */
            for (size_t k = 0; k < i % 4; k++)
                rm_lb_ewma_start(&eps[i]);
        }
        for (size_t b = 0; b < batches; b++) {
            uint64_t start = now_ns();
            for (size_t k = 0; k < batch; k++) {
                int x = rm_lb_ewma_pick(stats, n, &cfg, start, &rng);
                rm_lb_ewma_start(&eps[x]);
                rm_lb_ewma_done(&eps[x], &cfg, start - 2000000ull, start);
                sink += (uint64_t)x;
            }
            per_pick[b] = (double)(now_ns() - start) / (double)batch;
        }
        qsort(per_pick, batches, sizeof(*per_pick), cmp_double);
        printf("| %zu | %.1f | %.1f | %.1f |\n", n, per_pick[batches / 2], per_pick[batches * 9 / 10],
               per_pick[batches * 99 / 100]);
    }
    free(per_pick);
    return sink == 0xffffffffffffffffull ? 1 : 0; /* keeps the picks from being optimised away */
}
