/* The retry policy and the timeouts of a request (ringmesh/retry.h). */
#include "ringmesh/retry.h"

#include "ringmesh/response_flags.h"

#include <string.h>

void rm_retry_policy_resolve(const rm_route_rule_t *rule, const rm_retry_config_t *defaults, rm_retry_policy_t *out)
{
    *out = (rm_retry_policy_t){.attempts = defaults->attempts,
                               .codes = defaults->codes,
                               .num_codes = defaults->num_codes,
                               .grpc_statuses = defaults->grpc_statuses,
                               .backoff_ms = defaults->backoff_ms,
                               .max_backoff_ms = defaults->max_backoff_ms};
    if (rule == NULL || !rule->retry.set)
        return;
    if (rule->retry.attempts >= 0)
        out->attempts = (uint32_t)rule->retry.attempts;
    if (rule->retry.num_codes > 0) {
        out->codes = rule->retry.codes;
        out->num_codes = rule->retry.num_codes;
        out->route_codes = 1;
    }
    if (rule->retry.backoff_ms >= 0) {
        uint64_t base = (uint64_t)rule->retry.backoff_ms, ceiling = base * 10;
        out->backoff_ms = base > UINT32_MAX ? UINT32_MAX : (uint32_t)base;
        if (ceiling < defaults->max_backoff_ms)
            ceiling = defaults->max_backoff_ms;
        out->max_backoff_ms = ceiling > UINT32_MAX ? UINT32_MAX : (uint32_t)ceiling;
    }
}

int rm_retry_method_idempotent(const char *method, size_t len)
{
    static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    if (method == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++)
        if (strlen(idempotent[i]) == len && memcmp(idempotent[i], method, len) == 0)
            return 1;
    return 0;
}

int rm_retry_goaway_refused(uint32_t last_stream_id, uint32_t stream_id)
{
    return stream_id > last_stream_id;
}

uint32_t rm_retry_backoff_ms(uint32_t base_ms, uint32_t max_ms, uint32_t n, uint32_t random)
{
    uint64_t ceiling;
    if (n == 0)
        n = 1;
    /* (2^n - 1) x base, without overflow: past 2^32 x base the cap has long taken over */
    ceiling = n >= 32 ? UINT64_MAX : (((uint64_t)1 << n) - 1) * base_ms;
    if (ceiling > max_ms)
        ceiling = max_ms;
    if (ceiling <= 1)
        return 1;
    uint64_t d = ((uint64_t)random * (ceiling + 1)) >> 32;
    return d < 1 ? 1 : (uint32_t)d;
}

/* The gRPC status of a response to a gRPC request: its grpc-status, or, when it has none (a response no gRPC server
 * made, e.g. an intermediary's 503), the one gRPC derives from the HTTP status (gRPC's "HTTP to gRPC status code
 * mapping"): 429, 502, 503 and 504 are UNAVAILABLE. Only the statuses a retry policy can name matter here. */
static int grpc_status_of(const rm_attempt_t *a)
{
    if (a->grpc_status >= 0)
        return a->grpc_status;
    switch (a->status) {
    case 429:
    case 502:
    case 503:
    case 504:
        return 14;
    case 400:
        return 13;
    default:
        return a->status >= 200 && a->status < 300 ? -1 : 2;
    }
}

static int has_code(const rm_retry_policy_t *p, int status)
{
    for (size_t i = 0; i < p->num_codes; i++)
        if ((int)p->codes[i] == status)
            return 1;
    return 0;
}

void rm_retry_decide(const rm_retry_policy_t *p, const char *method, size_t method_len, int grpc, uint32_t retries_done,
                     const rm_attempt_t *a, rm_retry_budget_t *budget, int64_t now_ms, int64_t deadline_ms,
                     uint32_t random, rm_retry_decision_t *out)
{
    int idempotent = rm_retry_method_idempotent(method, method_len), needs_idempotent = 1;
    unsigned fail_flags = 0;
    int gs;

    *out = (rm_retry_decision_t){.reason = RM_RETRY_NOT_RETRYABLE};
    switch (a->result) {
    case RM_ATTEMPT_CONNECT_FAILED:
        fail_flags = RM_RF_UF;
        needs_idempotent = 0; /* nothing was sent */
        break;
    case RM_ATTEMPT_REFUSED:
        fail_flags = RM_RF_UC;
        needs_idempotent = 0; /* the peer says it never processed the stream */
        break;
    case RM_ATTEMPT_RESET:
        fail_flags = RM_RF_UC;
        break;
    case RM_ATTEMPT_TIMEOUT:
        fail_flags = RM_RF_UT;
        break;
    default:
        gs = grpc ? grpc_status_of(a) : -1;
        if (gs >= 0 && gs < 32 && (p->grpc_statuses & (1u << gs))) {
            needs_idempotent = 0; /* gRPC's own retry policy retries its statuses whatever the call */
        } else if (has_code(p, a->status)) {
            needs_idempotent = !p->route_codes;
        } else {
            return; /* passed on as it is */
        }
        break;
    }
    out->flags = fail_flags;
    if (a->response_started) {
        out->reason = RM_RETRY_STARTED;
        return;
    }
    if (needs_idempotent && !idempotent) {
        out->reason = RM_RETRY_NOT_IDEMPOTENT;
        return;
    }
    if (!a->body_replayable) {
        out->reason = RM_RETRY_BODY;
        return;
    }
    out->flags |= RM_RF_URX;
    if (retries_done >= p->attempts) {
        out->reason = RM_RETRY_EXHAUSTED;
        return;
    }
    uint32_t delay = rm_retry_backoff_ms(p->backoff_ms, p->max_backoff_ms, retries_done + 1, random);
    if (deadline_ms != RM_DEADLINE_NONE && now_ms + (int64_t)delay >= deadline_ms) {
        out->reason = RM_RETRY_DEADLINE;
        return;
    }
    if (budget != NULL && !rm_retry_budget_withdraw(budget, now_ms)) {
        out->reason = RM_RETRY_BUDGET;
        return;
    }
    *out = (rm_retry_decision_t){.retry = 1, .delay_ms = delay, .reason = RM_RETRY_GO};
}

void rm_request_timeouts_resolve(const rm_route_rule_t *rule, const rm_traffic_config_t *cfg, int64_t start_ms,
                                 rm_request_timeouts_t *out)
{
    int64_t request = cfg->request_timeout_ms;
    *out = (rm_request_timeouts_t){.deadline_ms = RM_DEADLINE_NONE, .idle_ms = cfg->idle_timeout_ms};
    if (rule != NULL && rule->request_timeout_ms != RM_ROUTE_TIMEOUT_UNSET)
        request = rule->request_timeout_ms;
    if (request > 0)
        out->deadline_ms = start_ms + request;
    if (rule != NULL && rule->backend_request_timeout_ms > 0)
        out->per_attempt_ms = rule->backend_request_timeout_ms;
}

int64_t rm_request_attempt_deadline(const rm_request_timeouts_t *t, int64_t now_ms)
{
    int64_t d = t->deadline_ms;
    if (t->per_attempt_ms > 0 && now_ms + t->per_attempt_ms < d)
        d = now_ms + t->per_attempt_ms;
    return d;
}

int64_t rm_request_idle_deadline(const rm_request_timeouts_t *t, int64_t last_activity_ms)
{
    return t->idle_ms > 0 ? last_activity_ms + t->idle_ms : RM_DEADLINE_NONE;
}
