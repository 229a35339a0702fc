/* The access log: one JSON line (lib/log.c), event "access", per HTTP exchange and per TCP connection, with the
 * fields of Envoy's default access log that apply, in our names (docs/access-log.md).
 *
 * Off by default. On per mesh (MeshConfig accessLog.enabled, accessLog.sampleRate), per workload (the pod
 * annotation ringmesh.io/access-log, pushed with the workload, wins), or in the proxy's own file; the snapshot's
 * configuration holds the outcome (access_log, access_log_sample). Each exchange or connection is sampled on its
 * own, from a per-thread PRNG: no lock, no allocation.
 *
 * Who calls what: the connection module writes a connection's line when it frees the connection
 * (rm__conn_access_log_tcp, refused connections included); for HTTP, rm__conn_observe_request keeps what the line
 * needs of the request head (rm__conn_access_log_request: the head is gone by the time its exchange ends) in the
 * exchange's state, and rm__conn_observe_exchange writes the line (rm__conn_access_log_http). */
#ifndef RINGMESH_ACCESS_LOG_H
#define RINGMESH_ACCESS_LOG_H

#include "http_filter.h"
#include "proxy_config.h"
#include "workload_meta.h"

#include <stddef.h>
#include <stdint.h>

struct st_rm_conn_t;

/** One line's content. Strings may be NULL (logged as null); workloads NULL are "unknown". */
typedef struct st_rm_access_entry_t {
    int64_t start_time_ms; /* wall clock, Unix milliseconds: start_time (RFC 3339, UTC) */
    uint64_t duration_ms;
    const char *reporter; /* "source" (outbound) | "destination" (inbound) */
    const char *protocol; /* "HTTP/1.1" | "HTTP/2" | "TCP" */
    const char *method, *path, *authority, *user_agent, *x_forwarded_for, *request_id; /* HTTP only */
    int response_code;               /* HTTP: the status, 0 when none came; TCP: not logged */
    int grpc_status;                 /* -1: none */
    const char *response_flags;      /* Envoy's: "-" when none */
    uint64_t bytes_received;         /* from the downstream (request body for HTTP) */
    uint64_t bytes_sent;             /* to the downstream (response body for HTTP) */
    const rm_sockaddr_t *downstream; /* the client's address */
    const rm_sockaddr_t *upstream;   /* the address forwarded to; NULL: none */
    const char *destination_service; /* "<namespace>/<name>" or NULL */
    const rm_workload_meta_t *source, *destination;
    const char *source_principal, *destination_principal; /* SPIFFE IDs, NULL unknown */
    const char *connection_security_policy;               /* "mutual_tls" | "none" */
    const char *trace_id;                                 /* 32 hex digits, NULL when none */
    const char *authz_decision, *authz_policy; /* "allow" / "deny" and "<namespace>/<name>", NULL when none */
} rm_access_entry_t;

/** Writes `e` as one "access" line (INFO). */
void rm_access_log_write(const rm_access_entry_t *e);

/** Formats `ms` (Unix milliseconds) as RFC 3339 UTC with milliseconds ("2026-12-07T13:52:23.042Z") into `buf`
 *  (at least 25 bytes). Returns buf. */
char *rm_access_log_time(int64_t ms, char *buf, size_t size);

/** 1 when this exchange or connection is to be logged under `cfg` (access_log on, and sampled at
 *  access_log_sample), else 0. Draws from this thread's PRNG. */
int rm_access_log_sampled(const rm_proxy_config_t *cfg);
/** 1 with probability `rate` (0 never, 1 always), from this thread's PRNG. */
int rm_access_log_draw(double rate);

/** Sizes of the request fields kept until the exchange ends (longer values are cut). */
#define RM_ACCESS_METHOD_MAX 16
#define RM_ACCESS_PATH_MAX   512
#define RM_ACCESS_FIELD_MAX  256
#define RM_ACCESS_TRACE_ID   32

/** What the access log needs of a request after its head is gone: kept by value, no allocation. `sampled` 0 means
 *  the exchange is not logged (and nothing else was kept). */
typedef struct st_rm_access_request_t {
    uint8_t sampled;
    uint8_t decided; /* a policy was asked (inbound); 0: no decision to log */
    uint8_t http2;
    uint8_t allowed; /* the policy verdict */
    int64_t start_time_ms;
    uint64_t start_mono_ms;
    char method[RM_ACCESS_METHOD_MAX];
    char path[RM_ACCESS_PATH_MAX];
    char authority[RM_ACCESS_FIELD_MAX];
    char user_agent[RM_ACCESS_FIELD_MAX];
    char x_forwarded_for[RM_ACCESS_FIELD_MAX];
    char request_id[RM_ACCESS_FIELD_MAX];
    char trace_id[RM_ACCESS_TRACE_ID + 1];
    char authz_policy[RM_ACCESS_FIELD_MAX]; /* "<namespace>/<name>" of the policy that decided, "" when none */
} rm_access_request_t;

/** `now_ms` for rm_access_log_request_keep: read the wall clock there, only when the request is sampled. */
#define RM_ACCESS_NOW (-1)

/** Fills `rec` from `req` decided `verdict` at `now_ms` (wall, or RM_ACCESS_NOW) / `mono_ms` (the loop's clock), when
 *  the access log is on in `cfg` and the sample draws it; else only sets rec->sampled to 0 (no clock is read). */
void rm_access_log_request_keep(rm_access_request_t *rec, const rm_proxy_config_t *cfg, const rm_http_request_t *req,
                                rm_http_verdict_t verdict, int64_t now_ms, uint64_t mono_ms);

/** The trace ID of a W3C traceparent, else of B3 (x-b3-traceid, or the first part of b3), copied into `out`
 *  (RM_ACCESS_TRACE_ID + 1 bytes); "" when none. */
void rm_access_log_trace_id(const rm_http_request_t *req, char *out);

/* conn_access_log.c: from a connection */

/** rm_access_log_request_keep() for a request of connection `c` decided `verdict` just now (in the same loop
 *  iteration as the decision: the policy that decided is copied from the connection). For rm__conn_observe_request. */
void rm__conn_access_log_request(struct st_rm_conn_t *c, const rm_http_request_t *req, rm_http_verdict_t verdict,
                                 rm_access_request_t *rec);
/** Writes the line of exchange `ex` of connection `c`, whose request was kept in `rec` (nothing when not
 *  sampled). For rm__conn_observe_exchange. */
void rm__conn_access_log_http(struct st_rm_conn_t *c, const rm_access_request_t *rec, const rm_http_exchange_t *ex);
/** Writes the line of connection `c`, closing (when the access log is on and the sample draws it). A connection
 *  whose requests went through an HTTP filter has its lines per exchange and none of its own. For
 *  rm__conn_observe_closed. */
void rm__conn_access_log_tcp(struct st_rm_conn_t *c);

#endif
