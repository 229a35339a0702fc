/* The proxied connection's types, shared by the files that make up the connection module: proxy_conn.c (the state
 * machine: accept, original destination, mode decision, connect, pump, close, logs), conn_authz.c (the L4 decision
 * and the choice of filter), conn_l7.c (running a filter between the sides). The sides themselves are transport.h's.
 * Nothing outside the connection module includes this file (the worker sees rm_conn_t through proxy.h only). */
#ifndef RINGMESH_PROXY_CONN_T_H
#define RINGMESH_PROXY_CONN_T_H

#include "conn_addr.h"
#include "conn_filter.h"
#include "dest_endpoints.h"
#include "mesh_metrics.h"
#include "proxy.h"
#include "ringmesh/bytebuf.h"
#include "ringmesh/log.h"
#include "transport.h"

#include <stddef.h>
#include <stdint.h>

/** How the connection carries the bytes (logged as "mode"); inbound starts UNDECIDED until the first bytes show. */
typedef enum {
    RM_CONN_MODE_UNDECIDED = 0,
    RM_CONN_MODE_MTLS,
    RM_CONN_MODE_PLAINTEXT,
    RM_CONN_MODE_PASSTHROUGH
} rm__conn_mode_t;
/** Which end carries TLS: `up` outbound (and explicit upstream listeners), `down` inbound. */
typedef enum { RM_CONN_DIR_OUTBOUND = 0, RM_CONN_DIR_INBOUND } rm__conn_dir_t;
/** How the connection ended (logged as "close"). */
typedef enum {
    RM_CONN_CLOSE_NONE = 0,
    RM_CONN_CLOSE_EOF,
    RM_CONN_CLOSE_RESET,
    RM_CONN_CLOSE_TIMEOUT,
    RM_CONN_CLOSE_ERROR,
    RM_CONN_CLOSE_DRAIN,
    RM_CONN_CLOSE_REJECTED,
} rm__conn_close_t;

typedef enum {
    RM_CONN_AUTHZ_OFF = 0, /* outbound, or a proxy without a control plane: no policy to apply */
    RM_CONN_AUTHZ_PENDING, /* inbound, not decided yet (waiting for the peer's identity or the protocol) */
    RM_CONN_AUTHZ_DONE,    /* the connection was allowed as a whole */
    RM_CONN_AUTHZ_HTTP,    /* every request is decided (l7 holds the filter) */
    RM_CONN_AUTHZ_SNIFF,   /* no per-request policy: the client's first bytes tell whether a filter observes requests */
} rm__conn_authz_t;

/** After a filter's answer that closes: the client's last bytes are read and dropped for a while (conn_l7.c). */
enum { RM_CONN_LINGER_NO = 0, RM_CONN_LINGER_ON, RM_CONN_LINGER_OVER };

/* An inbound connection whose requests (streams) are decided one by one by a filter (conn_filter.h). The filter's
 * output goes through staging pipes so that a send in flight always reads a buffer that stays put. Allocated in one
 * block with the filter's state behind it. */
typedef struct st_rm__conn_l7_t {
    const rm_conn_filter_ops_t *ops;
    rm_bytebuf_t to_app, to_client;
    rm_pipe_t app_out, client_out;
    int result;                            /* the filter's sticky result: 0, RM_CONN_FILTER_CLOSE or a negative error */
    int ended;                             /* the exchanges still open were reported as ended (rm__conn_l7_end) */
    uint8_t observe;                       /* outbound: requests are observed, never refused or rewritten */
    _Alignas(max_align_t) uint8_t state[]; /* ops->size bytes */
} rm__conn_l7_t;

/* What the connection's reports keep between its requests (conn_observe.c): each request in flight by its cookie
 * (a slot index + 1; 0: no slot was free) and the series they record into. Allocated at the connection's first
 * request: most connections of a busy proxy are idle or plain TCP and never need it. */
#define RM_CONN_OBS_SLOTS 64
typedef struct st_rm__conn_obs_req_t {
    uint64_t start_ms[RM_CONN_OBS_SLOTS];
    uint64_t used, denied, grpc;             /* bit i: slot i holds a request, it was denied, it is gRPC */
    uint8_t base_peer_known, base_svc_known; /* mcache.base was filled with the peer's identity, the service */
    struct st_rm_access_request_t **alog;    /* per slot: the access log's record of its request, once sampled */
    rm_mesh_request_cache_t mcache;          /* the request series the connection records into (mesh_metrics.h) */
} rm__conn_obs_req_t;

/* What conn_observe.c keeps of the connection. Part of the connection, zeroed with it; what it points to is freed by
 * rm__conn_observe_free. */
typedef struct st_rm__conn_obs_t {
    /* destination_service, then its name and its namespace, each NUL-terminated, in one allocation of their
     * length; NULL: not known yet */
    char *svc;
    rm__conn_obs_req_t *req; /* NULL until the first request (or when it could not be allocated) */
    uint8_t opened;          /* rm__conn_observe_opened was called: closed must be reported */
} rm__conn_obs_t;

struct st_rm_conn_t {
    rm_worker_t *w;
    rm_conn_t *prev, *next;
    rm_snapshot_t *snap;
    rm__conn_dir_t dir;
    rm__conn_mode_t mode;
    rm_mtls_mode_t inbound_mode;
    const rm_listener_config_t *explicit_cfg;
    const char *const *expected_ids;
    size_t num_expected_ids;
    rm_side_owner_t t; /* the sides' loop, ops in flight, closing, last activity */
    rm_side_t down, up;
    rm_pipe_t d2u, u2d;
    rm_conn_addr_t src, orig_dst, target; /* at their family's size (conn_addr.h) */
    uint64_t started_ms, deadline_ms;
    rm__conn_close_t close_reason;
    /* flags as bytes, together, so that the object stays in the slab's 1,024-byte class (test_conn_addr) */
    uint8_t cancelled;
    uint8_t counted; /* holds a slot of maxConnections */
    uint8_t rejected_logged;
    uint8_t up_connecting;
    uint8_t
        lingering; /* RM_CONN_LINGER_*: the filter's closing answer is out, the client's last bytes are being dropped */
    /* the connection's own policy decision (inbound, decided as a whole), for the access log */
    uint8_t authz_logged, authz_allowed;
    uint8_t upstream_failed; /* the upstream could not be connected to (refused, unreachable, timed out) */
    rm__conn_authz_t authz_state;
    const rm_authz_policy_t *authz_policy; /* the policy that decided, in c->snap's policies; NULL: none */
    /* the policy that decided the request being decided now (authz_decide), in the published snapshot: valid only
     * until the end of the loop iteration, for rm__conn_observe_request to copy */
    const rm_authz_policy_t *request_authz_policy;
    rm__conn_l7_t *l7;
    struct st_rm__req_in_t *req_in;   /* a pooled request connection served as HTTP/2 (req_in.h); NULL otherwise */
    char *sni;                        /* inbound: the server name of the peer's ClientHello, when it sent one */
    struct st_rm_conn_trace_t *trace; /* the spans of its HTTP exchanges (conn_trace.h), once one is traced */
    rm__conn_obs_t obs;               /* what conn_observe.c keeps of the connection and its exchanges */
    /* outbound to a destination with endpoints (conn_endpoint.c): they (in c->snap), the ones tried (the last is
     * c->target, counted open in the worker's load table while ep_counted), the server name to send */
    const struct st_rm_dest_endpoints_t *eps;
    int ep_tried[RM_ENDPOINT_MAX_ATTEMPTS];
    uint8_t ep_num_tried, ep_counted;
    uint8_t ep_switching; /* the upstream side is being closed to connect to the next endpoint */
    const char *ep_sni;
    rm_hs_job_t hs; /* inbound: its handshake's admission and steps on the handshake threads (conn_handshake.c) */
    /* outbound with traffic.requestBalancing (req_out.h): the destination while the app's first bytes decide
     * (nothing connected yet), then the request path serving its HTTP/1.x */
    const rm_destination_t *rq_dest;
    struct st_rm_req_out_t *rq;
};

/** The configuration of the snapshot the connection started with. */
static inline rm_proxy_config_t *rm__conn_cfg(rm_conn_t *c)
{
    return c->snap->cfg;
}

/** The side that carries TLS when the connection has any: up for outbound, down for inbound. */
static inline rm_side_t *rm__conn_tls_side(rm_conn_t *c)
{
    return c->dir == RM_CONN_DIR_OUTBOUND ? &c->up : &c->down;
}

/* proxy_conn.c */
/** Adds direction, listener, src and dst to a log line about the connection. */
void rm__conn_log_fields(rm_conn_t *c, rm_log_line_t *l);
/** Ends the connection (sets closing). Any reason but EOF resets both ends: a cut stream must not look complete. */
void rm__conn_abort(rm_conn_t *c, rm__conn_close_t why);
/** The SPIFFE ID the TLS peer presented, or NULL. */
const char *rm__conn_peer_id(rm_conn_t *c);

/** Outbound with requestBalancing: the app's first bytes are not for the request path (or did not come in time):
 *  connects to the destination (c->rq_dest) as any outbound mesh connection. Returns 0 or an error. */
int rm__conn_connect_deferred(rm_conn_t *c);

/* conn_handshake.c: inbound handshakes apart from the workers */
/** Asks the handshake guard whether c's handshake may start. Returns 0 (it counts as pending until
 *  rm__conn_handshake_end), or 1: refused (counted and logged by the guard), c is closing. */
int rm__conn_handshake_admit(rm_conn_t *c);
/** c's admitted handshake ended: completed (`failed` 0) or not. Nothing when it was not admitted (or ended). */
void rm__conn_handshake_end(rm_conn_t *c, int failed);
/** Hands the next step of the handshake on `s` to the handshake threads when it is worth it (inbound, bytes to work
 *  on, nothing of the side in flight). Returns 1 when it did (c->hs.busy; rm__conn_handshake_back follows), 0 when the
 *  caller runs the step itself. */
int rm__conn_handshake_offload(rm_conn_t *c, rm_side_t *s);
/** c is closing: a step still queued is skipped by the thread. */
void rm__conn_handshake_cancel(rm_conn_t *c);

/* conn_endpoint.c: outbound connections to a destination's endpoints */
/** Chooses the endpoint an outbound connection to `dest` (which has endpoints) goes to: c->target and the identity
 *  expected become that endpoint's; it counts as open in the worker's load table. Returns 0, or -EHOSTUNREACH when
 *  none of them is ready or serving (the caller refuses the connection; logged here). */
int rm__conn_endpoint_first(rm_conn_t *c, const rm_destination_t *dest, const char *sni);
/** The connect to c's endpoint failed with `err`, or its handshake refused it (`err` an RM_ERR_TLS_* / SVID error):
 *  logs it and, while attempts (RM_ENDPOINT_MAX_ATTEMPTS) and the connect timeout from accept allow and another
 *  endpoint is a candidate, makes that one the target and sets ep_switching (the caller cancels the upstream side;
 *  rm__conn_endpoint_reconnect follows once nothing is in flight). Returns 1 when switching, 0 when the connection
 *  ends as it would without endpoints. */
int rm__conn_endpoint_retry(rm_conn_t *c, int err, const char *why);
/** Nothing in flight on the upstream side any more: closes it and opens the new endpoint's TLS session; the caller
 *  then connects. Returns 0 or an error that ends the connection. */
int rm__conn_endpoint_reconnect(rm_conn_t *c);
/** The connection is closing: its endpoint no longer counts as open. */
void rm__conn_endpoint_release(rm_conn_t *c);

/* conn_authn.c: RequestAuthentication of an inbound request */
struct st_rm_request_authn_cfg_t;
struct st_rm_authn_result_t;
/** Checks the request's JWT against `cfg` into *r (cleared by the caller with rm_authn_result_clear) and logs a
 *  refusal (event "authn"). Returns r->outcome (an rm_authn_outcome_t). */
int rm__conn_authn_request(rm_conn_t *c, const struct st_rm_request_authn_cfg_t *cfg, const char *workload,
                           const rm_http_request_t *req, struct st_rm_authn_result_t *r);
/** Adds to `out` the fields a valid token's rule asks for: the token header removed (unless forwardOriginalToken),
 *  outputPayloadToHeader, outputClaimToHeaders. */
void rm__conn_authn_outputs(const struct st_rm_authn_result_t *r, rm_http_decision_t *out);

/* conn_authz.c: the L4 decision (inbound) */
/** Moves a pending inbound connection towards a decision: allows it (authz_state DONE), refuses it (closing), starts
 *  a per-request filter (rm__conn_l7_start), or waits for more first bytes. Returns 0 or an error that ends it. */
int rm__conn_authz_progress(rm_conn_t *c);
/** The first filter of rm_conn_filters that claims the client's first bytes p[0, n), or NULL (*need_more set when
 *  one may still claim them with more bytes). */
const rm_conn_filter_ops_t *rm__conn_pick_filter(const uint8_t *p, size_t n, int *need_more);
/** 1 when the app's first bytes are, or begin, an HTTP/2 server preface (a SETTINGS frame). */
int rm__conn_app_sent_h2_settings(const rm_pipe_t *u2d);
/** The policy hook given to inbound filters: decides one request on the policies in force, then reports it
 *  (rm__conn_observe_request). */
rm_http_verdict_t rm__conn_decide_request(void *conn, const rm_http_request_t *req, rm_http_decision_t *out);

/* conn_observe_l7.c: observing the requests of connections no policy decides request by request */
/** Moves a connection in authz_state SNIFF (outbound to the mesh; inbound without HTTP rules, once allowed) towards
 *  a choice from the client's first bytes: a filter in observe mode (rm__conn_l7_start), or plain bytes (authz_state
 *  OFF), never waiting on a timer. Returns 0 or an error that ends it. */
int rm__conn_observe_sniff(rm_conn_t *c);
/** The hook given to outbound filters: allows every request and reports it (rm__conn_observe_request). */
rm_http_verdict_t rm__conn_observe_decide(void *conn, const rm_http_request_t *req, rm_http_decision_t *out);

/* conn_l7.c: a filter between the sides */
/** Puts the filter `ops` between client and app (authz_state HTTP): deciding each request (inbound), or, with
 *  `observe` (outbound), only observing them (rm__conn_observe_decide, paths as written). Each exchange's end is
 *  logged at debug level ("http_exchange") and reported (rm__conn_observe_exchange). Returns 0, -ENOMEM, or the
 *  filter's init error. */
int rm__conn_l7_start(rm_conn_t *c, const rm_conn_filter_ops_t *ops, int observe);
/** Moves both directions through the filter; may set closing (an answer that closes is out). Returns 0 or an error. */
int rm__conn_l7_pump(rm_conn_t *c);
/** Reports the exchanges still open as ended (the connection is closing); once. */
void rm__conn_l7_end(rm_conn_t *c);
/** Reports the exchanges still open, then frees the filter, its staging pipes and buffers (the connection is
 *  closing). */
void rm__conn_l7_free(rm_conn_t *c);

#endif
