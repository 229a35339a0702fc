/* The outbound request path's entry points for the connection module (req_out.c; docs/traffic-management.md,
 * "Requests"). An outbound connection to an in-mesh destination with endpoints, with traffic.requestBalancing,
 * waits for the app's first bytes without connecting (c->rq_dest set): HTTP/1.x is then served here request by
 * request over the worker's pooled HTTP/2 connections (c->rq), anything else connects as before. */
#ifndef RINGMESH_REQ_OUT_H
#define RINGMESH_REQ_OUT_H

#include "conn_filter.h"

/** How long an outbound connection waits for the app's first bytes before connecting as TCP (a server-first
 *  protocol, which the request path cannot serve). */
#define RM_REQ_OUT_DETECT_MS 1000

struct st_rm_conn_t;
typedef struct st_rm_req_out_t rm_req_out_t;

/** The app's first bytes are claimed by filter `f`: HTTP/1.x (other than a first request that is CONNECT or asks
 *  for an Upgrade) becomes the request path (c->rq). Returns 0 when taken, 1 when not (the caller connects as
 *  before), 2 when more of the first head is needed, or -ENOMEM. */
int rm__req_out_take(struct st_rm_conn_t *c, const rm_conn_filter_ops_t *f);
/** Moves the connection's requests and responses along (the connection's progress, in place of the pipes' pump);
 *  may set closing (the app closed, or a response was cut). Returns 0 or an error that ends the connection. */
int rm__req_out_pump(struct st_rm_conn_t *c);
/** The worker's tick: a request past its timeout (the rule's timeouts.request, else traffic.requestTimeout) is
 *  answered 504 (flag UT) when no response has started, else its app connection is reset; its stream is cancelled.
 *  Returns 1 when that happened (the caller runs the connection's progress), else 0. */
int rm__req_out_tick(struct st_rm_conn_t *c, uint64_t now_ms);
/** The connection is closing: a stream still open is cancelled (RST_STREAM) and its exchange reported. */
void rm__req_out_free(struct st_rm_conn_t *c);

#endif
