/* What a connection reports for observability: each HTTP exchange a filter saw (request metrics, spans, access log)
 * and each connection as a whole (TCP metrics, access log). The connection module calls these on its worker
 * thread; they take no lock and, once warm, allocate nothing. */
#ifndef RINGMESH_CONN_OBSERVE_H
#define RINGMESH_CONN_OBSERVE_H

#include "http_filter.h"

struct st_rm_conn_t;

/** 1 when something consumes the connection's reports (metrics.enabled, tracing, the access log), so that requests
 *  no policy decides are still parsed (observe mode, conn_observe_l7.c); 0: their bytes pass untouched. */
int rm__conn_observed(struct st_rm_conn_t *c);
/** A request's head is complete and decided (`verdict`): keeps what the exchange's end needs, sets `out->cookie`,
 *  and may ask for header fields on the forwarded request (trace context). Inbound and outbound alike. */
void rm__conn_observe_request(struct st_rm_conn_t *c, const rm_http_request_t *req, rm_http_verdict_t verdict,
                              rm_http_decision_t *out);
/** The exchange of a request rm__conn_observe_request saw has ended (rm_http_done_cb). */
void rm__conn_observe_exchange(void *conn, const rm_http_exchange_t *ex);
/** The connection is established to both ends (outbound: the upstream connected; inbound: the mode is decided). */
void rm__conn_observe_opened(struct st_rm_conn_t *c);
/** The connection is closing; its byte counts are final. Called once, and only after rm__conn_observe_opened. */
void rm__conn_observe_closed(struct st_rm_conn_t *c);
/** Frees what the reports kept for the connection's exchanges (after its filter has reported the last of them). */
void rm__conn_observe_free(struct st_rm_conn_t *c);

#endif
