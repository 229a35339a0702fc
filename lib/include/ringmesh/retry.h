/* Retries of a request by the outbound proxy: the retry budget that keeps retries from multiplying an outage, and
 * the policy that says whether one attempt's outcome may be retried, after how long, and with which response flag
 * the request ends when it may not. Pure functions over state the caller owns: no I/O, no allocation, no locks. A
 * budget belongs to one worker thread; the monotonic time is passed in (milliseconds), so nothing sleeps or reads
 * a clock. Semantics and defaults: docs/traffic-management.md "Retries, timeouts, outlier detection and circuit
 * breaking". */
#ifndef RINGMESH_RETRY_H
#define RINGMESH_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "ringmesh/route.h"
#include "ringmesh/traffic_config.h"

/* ---------------------------------------------------------------------------------------------------------
 * The retry budget (Linkerd's): over a sliding window, retries may add `ratio` of the requests plus
 * `min_per_second` x the window's seconds. The window is 10 slots of a tenth of it each; a slot's counts leave
 * the window all at once when it ages out.
 * ------------------------------------------------------------------------------------------------------- */

#define RM_RETRY_BUDGET_SLOTS 10u

/** One worker's budget for one destination (or for all: the caller chooses the scope). The all-zero value is not
 *  valid: use rm_retry_budget_init(). */
typedef struct st_rm_retry_budget_t {
    uint32_t ratio_permille;
    uint32_t min_per_second; /* this worker's share */
    int64_t slot_ms;
    int64_t slot_index; /* the slot now falls in, as now / slot_ms; -1 before the first note */
    uint32_t requests[RM_RETRY_BUDGET_SLOTS], retries[RM_RETRY_BUDGET_SLOTS];
    uint64_t sum_requests, sum_retries; /* over the slots in the window */
    uint64_t refused;                   /* retries the budget refused (for metrics) */
} rm_retry_budget_t;

/** Sets up a budget from `cfg` for one of `workers` workers: the minimum per second is shared out (rounded up),
 *  the ratio applies as it is. */
void rm_retry_budget_init(rm_retry_budget_t *b, const rm_retry_budget_config_t *cfg, unsigned workers);

/** Counts one request (a first attempt, not a retry) at `now_ms`. */
void rm_retry_budget_note_request(rm_retry_budget_t *b, int64_t now_ms);

/** Whether one more retry fits in the budget at `now_ms`: 1 and the retry is counted, or 0 (refused, counted in
 *  b->refused). */
int rm_retry_budget_withdraw(rm_retry_budget_t *b, int64_t now_ms);

/* ---------------------------------------------------------------------------------------------------------
 * The policy.
 * ------------------------------------------------------------------------------------------------------- */

/** What one attempt came to, as the request path saw it. */
typedef enum {
    RM_ATTEMPT_RESPONSE = 0,       /* response headers arrived (status, grpc_status below) */
    RM_ATTEMPT_CONNECT_FAILED = 1, /* no connection to the endpoint: refused, unreachable, TLS refused; nothing sent */
    RM_ATTEMPT_REFUSED = 2,        /* the stream never reached the app: RST_STREAM REFUSED_STREAM, or a GOAWAY whose
                                      last-stream-id is below the stream (rm_retry_goaway_refused) */
    RM_ATTEMPT_RESET = 3,          /* the stream or connection ended after the request went, before any response */
    RM_ATTEMPT_TIMEOUT = 4,        /* the attempt's own deadline (timeouts.backendRequest) passed */
} rm_attempt_result_t;

typedef struct st_rm_attempt_t {
    rm_attempt_result_t result;
    int status;           /* RESPONSE: the HTTP status */
    int grpc_status;      /* RESPONSE: grpc-status of a trailers-only response (in the headers); -1 when none */
    int response_started; /* some of a response has been given to the app: never retried */
    int body_replayable;  /* the request had no body, or all of it is still held (not more than bufferLimit) */
} rm_attempt_t;

/** A request's retry policy: the rule's `retry` over the proxy's defaults. Resolved once per request; points into
 *  the rule or the defaults, which must outlive it. */
typedef struct st_rm_retry_policy_t {
    uint32_t attempts; /* retries after the first try */
    const uint32_t *codes;
    size_t num_codes;
    uint32_t grpc_statuses; /* bit n: grpc-status n */
    uint32_t backoff_ms, max_backoff_ms;
    uint8_t route_codes; /* the codes are the rule's own: retried whatever the method */
} rm_retry_policy_t;

/** Fills `out` from `rule` (NULL: no rule) and `defaults`: a rule with `retry` gives `attempts` (when written),
 *  `codes` (when written; then responses with those statuses are retried for every method, as the route's author
 *  asked) and `backoff` (the base interval; the ceiling becomes 10 x of it unless the defaults' is higher).
 *  Everything else comes from `defaults`. */
void rm_retry_policy_resolve(const rm_route_rule_t *rule, const rm_retry_config_t *defaults, rm_retry_policy_t *out);

/** Whether `method` is idempotent by RFC 9110 and may be retried after it may have reached the app: GET, HEAD,
 *  OPTIONS, TRACE, PUT, DELETE (case-sensitive, as methods are). */
int rm_retry_method_idempotent(const char *method, size_t len);

/** Whether a stream `stream_id` that a GOAWAY with `last_stream_id` ends was never processed by the peer (RFC 9113
 *  6.8: streams above the last-stream-id were not). */
int rm_retry_goaway_refused(uint32_t last_stream_id, uint32_t stream_id);

/** Why a decision came out as it did (also for metrics). */
typedef enum {
    RM_RETRY_GO = 0,             /* retry after delay_ms */
    RM_RETRY_NOT_RETRYABLE = 1,  /* a success, or a failure the policy does not retry */
    RM_RETRY_STARTED = 2,        /* part of a response went to the app */
    RM_RETRY_NOT_IDEMPOTENT = 3, /* the request may have reached the app and its method is not idempotent */
    RM_RETRY_BODY = 4,           /* the request body is not held any more */
    RM_RETRY_EXHAUSTED = 5,      /* no attempt left */
    RM_RETRY_DEADLINE = 6,       /* the backoff would end after the request's deadline */
    RM_RETRY_BUDGET = 7,         /* the retry budget refused */
} rm_retry_reason_t;

typedef struct st_rm_retry_decision_t {
    int retry;         /* 1: send the request again after delay_ms, preferably to another endpoint */
    uint32_t delay_ms; /* jittered exponential backoff */
    unsigned flags;    /* when retry is 0: the response flags the request ends with (UF, UC, UT for a failure of
                          the proxy's; URX added when a retryable outcome found no retry left); 0 for an app's
                          response that is simply passed on */
    rm_retry_reason_t reason;
} rm_retry_decision_t;

/** Decides about one attempt's outcome `a` of a request with `method` (`grpc`: a gRPC request) that has had
 *  `retries_done` retries so far, under policy `p`, at `now_ms`, with the request's overall deadline
 *  `deadline_ms` (RM_DEADLINE_NONE: none). Retryable: a connect failure and a refused stream for every method;
 *  a reset or the attempt's timeout for idempotent methods; a response whose status is in the codes (idempotent
 *  methods, or every method for the rule's own codes); a gRPC trailers-only response whose grpc-status is in the
 *  policy's (a gRPC response without grpc-status gets the one gRPC derives from its HTTP status: 429, 502, 503,
 *  504 are UNAVAILABLE). Never when a response has started or the body is gone. A retryable outcome then needs an
 * attempt left, a backoff that ends before the deadline, and the budget's consent (withdrawn here, so call this once
 * per outcome; `budget` NULL: no budget). `random` is a uniformly drawn number for the jitter. */
void rm_retry_decide(const rm_retry_policy_t *p, const char *method, size_t method_len, int grpc, uint32_t retries_done,
                     const rm_attempt_t *a, rm_retry_budget_t *budget, int64_t now_ms, int64_t deadline_ms,
                     uint32_t random, rm_retry_decision_t *out);

/** The wait before retry number `n` (1 for the first retry): uniformly drawn by `random` from [0, min((2^n - 1) x
 *  base, max)] (Envoy's full jitter), at least 1 ms. */
uint32_t rm_retry_backoff_ms(uint32_t base_ms, uint32_t max_ms, uint32_t n, uint32_t random);

/* ---------------------------------------------------------------------------------------------------------
 * Timeouts of a request (Gateway API: timeouts.request covers the whole request with its retries,
 * timeouts.backendRequest each attempt; 0 disables) and its idle timeout.
 * ------------------------------------------------------------------------------------------------------- */

#define RM_DEADLINE_NONE INT64_MAX

typedef struct st_rm_request_timeouts_t {
    int64_t deadline_ms;    /* the request's, absolute; RM_DEADLINE_NONE */
    int64_t per_attempt_ms; /* length of one attempt; 0: no limit of its own */
    int64_t idle_ms;        /* nothing received either way for this long ends the request; 0: never */
} rm_request_timeouts_t;

/** The timeouts of a request that started at `start_ms` and took `rule` (NULL: none): timeouts.request when the rule
 *  writes it (0: none), else the proxy's requestTimeout (0: none); timeouts.backendRequest when written (0: none);
 *  the proxy's idleTimeout. */
void rm_request_timeouts_resolve(const rm_route_rule_t *rule, const rm_traffic_config_t *cfg, int64_t start_ms,
                                 rm_request_timeouts_t *out);

/** The deadline of an attempt that starts at `now_ms`: the earlier of the request's deadline and now + the
 *  per-attempt length; RM_DEADLINE_NONE when neither is set. */
int64_t rm_request_attempt_deadline(const rm_request_timeouts_t *t, int64_t now_ms);

/** The idle deadline after activity at `last_activity_ms`; RM_DEADLINE_NONE when there is no idle timeout. A
 *  request that reaches either deadline ends with UT (504 when no response has started). */
int64_t rm_request_idle_deadline(const rm_request_timeouts_t *t, int64_t last_activity_ms);

#endif
