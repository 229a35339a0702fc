/* The retry budget (ringmesh/retry.h): counts of requests and retries in RM_RETRY_BUDGET_SLOTS slots of a tenth of
 * the window each, kept with their sums, so that a note or a withdrawal costs a few additions. Integer arithmetic
 * only: a retry fits when 1000 x (retries + 1) <= min_per_second x window_ms + ratio_permille x requests. */
#include "ringmesh/retry.h"

#include <string.h>

void rm_retry_budget_init(rm_retry_budget_t *b, const rm_retry_budget_config_t *cfg, unsigned workers)
{
    uint32_t window = cfg->window_ms >= RM_RETRY_BUDGET_SLOTS ? cfg->window_ms : RM_RETRY_BUDGET_SLOTS;
    memset(b, 0, sizeof(*b));
    if (workers == 0)
        workers = 1;
    b->ratio_permille = cfg->ratio_permille;
    b->min_per_second = (cfg->min_per_second + workers - 1) / workers;
    b->slot_ms = window / RM_RETRY_BUDGET_SLOTS;
    b->slot_index = -1;
}

/* Moves the window to the slot `now_ms` falls in, emptying the slots it leaves behind. A clock that seems to go
 * back (it does not: the time is monotonic, but callers may pass a time read before another's) stays in the
 * current slot. */
static void advance(rm_retry_budget_t *b, int64_t now_ms)
{
    int64_t idx = now_ms >= 0 ? now_ms / b->slot_ms : 0;
    if (b->slot_index < 0) {
        b->slot_index = idx;
        return;
    }
    if (idx <= b->slot_index)
        return;
    int64_t steps = idx - b->slot_index;
    if (steps >= (int64_t)RM_RETRY_BUDGET_SLOTS) {
        memset(b->requests, 0, sizeof(b->requests));
        memset(b->retries, 0, sizeof(b->retries));
        b->sum_requests = b->sum_retries = 0;
    } else {
        for (int64_t i = 1; i <= steps; i++) {
            size_t s = (size_t)((b->slot_index + i) % RM_RETRY_BUDGET_SLOTS);
            b->sum_requests -= b->requests[s];
            b->sum_retries -= b->retries[s];
            b->requests[s] = b->retries[s] = 0;
        }
    }
    b->slot_index = idx;
}

void rm_retry_budget_note_request(rm_retry_budget_t *b, int64_t now_ms)
{
    advance(b, now_ms);
    size_t s = (size_t)(b->slot_index % RM_RETRY_BUDGET_SLOTS);
    if (b->requests[s] == UINT32_MAX)
        return;
    b->requests[s]++;
    b->sum_requests++;
}

int rm_retry_budget_withdraw(rm_retry_budget_t *b, int64_t now_ms)
{
    advance(b, now_ms);
    size_t s = (size_t)(b->slot_index % RM_RETRY_BUDGET_SLOTS);
    uint64_t window_ms = (uint64_t)b->slot_ms * RM_RETRY_BUDGET_SLOTS;
    uint64_t allowed = (uint64_t)b->min_per_second * window_ms + (uint64_t)b->ratio_permille * b->sum_requests;
    if ((b->sum_retries + 1) * 1000 > allowed || b->retries[s] == UINT32_MAX) {
        b->refused++;
        return 0;
    }
    b->retries[s]++;
    b->sum_retries++;
    return 1;
}
