#include "grpc_server.h"
#include "grpc_calls.h"
#include "grpc_runtime.h"
#include "handshake_log.h"
#include "openssl_defaults.h"
#include "serving_creds.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "discovery_state.h"
#include "workload_labels.h"
#include "identity_service.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/svid.h"
#include "ringmesh/v1/discovery.pb-c.h"
#include "ringmesh/x509_issue.h"

#define METHOD_SIGN       "/ringmesh.v1.Identity/Sign"
#define METHOD_STREAM     "/ringmesh.v1.Discovery/Stream"
#define MAX_REQUEST_BYTES (64 << 10)
#define POLL_MS           10 /* how soon the server thread sees a new model: the bound on that part of a push's delay */

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef rm__grpc_tag_t tag_t;

typedef struct st_stream_t stream_t;

struct st_rm_control_server_t {
    rm_control_server_config_t cfg;
    grpc_server *server;
    grpc_completion_queue *cq;
    void *m_sign, *m_stream;
    pthread_t thread;
    int stopping; /* atomic */

    /* Hand-over of models from other threads. */
    pthread_mutex_t mutex;
    rm_mesh_model_t *incoming;
    rm_control_stats_t stats; /* under mutex */

    /* Server-thread state. */
    rm_mesh_model_t *model;
    rm_xds_push_set_t *set;
    uint64_t seq;
    stream_t *streams; /* doubly linked */
    unsigned num_streams;

    /* Pending accepts, one per method, plus the catch-all for unknown methods. */
    struct {
        tag_t tag;
        grpc_call *call;
        gpr_timespec deadline;
        grpc_metadata_array md;
        grpc_byte_buffer *payload;
    } accept_sign, accept_stream;
    struct {
        tag_t tag;
        grpc_call *call;
        grpc_call_details details;
        grpc_metadata_array md;
    } accept_other;
    tag_t shutdown_tag;
    int shutdown_done;

    /* The port's credentials: the serving certificate, renewed by the server thread before it gets old. */
    rm_serving_creds_t *serving;

    uint64_t workloads_seen; /* the source's workloads generation the streams' labels were taken at */
};

struct st_stream_t {
    rm_control_server_t *srv;
    stream_t *prev, *next;
    grpc_call *call;
    char peer[128];
    char spiffe_id[256];
    char ns[64], sa[254];
    char node_id[254];
    int have_node;
    rm_xds_stream_state_t xds;
    rm_workload_labels_t workload; /* the node's namespace and labels, for its WorkloadPolicy */

    tag_t start_tag, read_tag, write_tag, close_tag, status_tag;
    int pending; /* batches in flight */
    grpc_byte_buffer *recv;
    grpc_byte_buffer *sending;
    int writing, status_sent, closed, cancelled;
    int half_closed;                         /* the sidecar ended its side: finish once the write in flight is done */
    int md_sent;                             /* response headers sent (only once the node checked out) */
    uint64_t pushed_at_us[RM_XDS_NUM_TYPES]; /* when the push awaiting an answer was sent, per type (monotonic) */
    grpc_slice status_details;
    int have_status_details;
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void stats_add(rm_control_server_t *srv, uint64_t *field, int64_t delta)
{
    pthread_mutex_lock(&srv->mutex);
    *field += (uint64_t)delta;
    pthread_mutex_unlock(&srv->mutex);
}

static void request_sign(rm_control_server_t *srv);
static void request_stream(rm_control_server_t *srv);
static void request_other(rm_control_server_t *srv);

static void on_sign(tag_t *tag, int ok)
{
    rm_control_server_t *srv = container_of(tag, rm_control_server_t, accept_sign.tag);
    grpc_call *call = srv->accept_sign.call;
    grpc_byte_buffer *payload = srv->accept_sign.payload;
    rm_sign_result_t res;
    uint8_t *req = NULL;
    size_t req_len = 0;
    char peer[128];

    srv->accept_sign.call = NULL;
    srv->accept_sign.payload = NULL;
    grpc_metadata_array_destroy(&srv->accept_sign.md);
    if (!ok)
        return; /* shutting down */
    request_sign(srv);

    rm__grpc_copy_peer(call, peer, sizeof(peer));
    if (payload == NULL || rm__grpc_read_message(payload, &req, &req_len) != 0) {
        memset(&res, 0, sizeof(res));
        res.grpc_status = GRPC_STATUS_INVALID_ARGUMENT;
        res.outcome = RM_SIGN_REQUEST_INVALID;
        snprintf(res.message, sizeof(res.message), "no request message");
        rm__grpc_log_call_refused(call, peer, METHOD_SIGN, GRPC_STATUS_INVALID_ARGUMENT, res.message);
    } else {
        int64_t ttl = srv->model != NULL ? srv->model->settings.svid_ttl : 0;
        rm_identity_sign(srv->cfg.ca, srv->cfg.attestor, ttl, peer, req, req_len, &res);
    }
    if (payload != NULL)
        grpc_byte_buffer_destroy(payload);
    free(req);
    pthread_mutex_lock(&srv->mutex);
    if (res.grpc_status == 0) {
        srv->stats.sign_ok++;
    } else {
        srv->stats.sign_refused++;
        srv->stats.sign_refusals[(unsigned)res.outcome < RM_SIGN_NUM_OUTCOMES ? res.outcome : RM_SIGN_INTERNAL]++;
    }
    pthread_mutex_unlock(&srv->mutex);
    rm__grpc_unary_finish(call, res.response, res.response_len, (grpc_status_code)res.grpc_status,
                          res.grpc_status == 0 ? "" : res.message);
    free(res.response);
}

static void on_other(tag_t *tag, int ok)
{
    rm_control_server_t *srv = container_of(tag, rm_control_server_t, accept_other.tag);
    grpc_call *call = srv->accept_other.call;
    char method[200], msg[256], peer[128];

    srv->accept_other.call = NULL;
    snprintf(method, sizeof(method), "%.*s", (int)GRPC_SLICE_LENGTH(srv->accept_other.details.method),
             (const char *)GRPC_SLICE_START_PTR(srv->accept_other.details.method));
    grpc_call_details_destroy(&srv->accept_other.details);
    grpc_metadata_array_destroy(&srv->accept_other.md);
    if (!ok)
        return;
    request_other(srv);
    snprintf(msg, sizeof(msg), "unknown method %s", method);
    rm__grpc_copy_peer(call, peer, sizeof(peer));
    rm__grpc_log_call_refused(call, peer, method, GRPC_STATUS_UNIMPLEMENTED, msg);
    rm__grpc_unary_finish(call, NULL, 0, GRPC_STATUS_UNIMPLEMENTED, msg);
}

/* ---- Discovery streams ---- */

static void stream_maybe_free(stream_t *s)
{
    rm_control_server_t *srv = s->srv;

    if (s->pending > 0)
        return;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    srv->num_streams--;
    pthread_mutex_lock(&srv->mutex);
    srv->stats.streams_active--;
    if (s->have_node)
        srv->stats.connected_proxies--;
    pthread_mutex_unlock(&srv->mutex);
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "stream_closed");
        rm_log_str(&l, "peer", s->peer);
        rm_log_str(&l, "spiffeId", s->spiffe_id);
        rm_log_str(&l, "node", s->node_id);
        rm_log_bool(&l, "cancelled", s->cancelled);
        rm_log_end(&l);
    }
    rm_workload_labels_clear(&s->workload);
    if (s->recv != NULL)
        grpc_byte_buffer_destroy(s->recv);
    if (s->sending != NULL)
        grpc_byte_buffer_destroy(s->sending);
    if (s->have_status_details)
        grpc_slice_unref(s->status_details);
    grpc_call_unref(s->call);
    free(s);
}

static void stream_on_status_sent(tag_t *tag, int ok)
{
    stream_t *s = container_of(tag, stream_t, status_tag);
    (void)ok;
    s->pending--;
    stream_maybe_free(s);
}

/* Ends the stream with a status (once; after any write in flight). */
static void stream_finish(stream_t *s, grpc_status_code status, const char *details)
{
    grpc_op ops[2];
    size_t n = 0;

    if (s->status_sent || s->closed)
        return;
    s->status_sent = 1;
    if (status != GRPC_STATUS_OK) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "stream_refused");
        rm_log_str(&l, "peer", s->peer);
        rm_log_str(&l, "spiffeId", s->spiffe_id);
        rm_log_int(&l, "grpcStatus", status);
        rm_log_str(&l, "reason", details);
        rm_log_end(&l);
        stats_add(s->srv, &s->srv->stats.streams_refused, 1);
    }
    memset(ops, 0, sizeof(ops));
    s->status_details = grpc_slice_from_copied_string(details);
    s->have_status_details = 1;
    if (!s->md_sent) {
        /* gRPC core sends headers and trailers together: a trailers-only refusal */
        s->md_sent = 1;
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    ops[n].data.send_status_from_server.status_details = &s->status_details;
    n++;
    s->status_tag.cb = stream_on_status_sent;
    if (grpc_call_start_batch(s->call, ops, n, &s->status_tag, NULL) == GRPC_CALL_OK)
        s->pending++;
}

static void unref_set_cb(void *p)
{
    rm_xds_push_set_unref(p);
}

static void stream_maybe_push(stream_t *s)
{
    rm_control_server_t *srv = s->srv;
    grpc_op op;
    int t;

    if (s->writing || s->status_sent || s->closed || !s->have_node)
        return;
    const rm_xds_push_t *push;
    /* its own workload in the WorkloadMap: the pod the node id names, running as the attested account */
    s->workload.xw.node = s->node_id;
    s->workload.xw.service_account = s->sa;
    if ((t = rm_xds_next_push(&s->xds, srv->set, &s->workload.xw, &push)) < 0)
        return;
    /* the slice holds a reference on the set, so the bytes outlive a newer change while the send is in flight */
    grpc_slice slice =
        grpc_slice_new_with_user_data(push->response, push->response_len, unref_set_cb, rm_xds_push_set_ref(srv->set));
    s->sending = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = s->sending;
    if (grpc_call_start_batch(s->call, &op, 1, &s->write_tag, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(s->sending);
        s->sending = NULL;
        return;
    }
    s->pending++;
    s->writing = 1;
    rm_xds_mark_sent(&s->xds, t, push);
    s->pushed_at_us[t] = mono_us();
    stats_add(srv, &srv->stats.pushes[t], 1);
    if (rm_log_enabled(RM_LOG_DEBUG)) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_DEBUG, "config_pushed");
        rm_log_str(&l, "node", s->node_id);
        rm_log_str(&l, "type", rm_xds_type_name(t));
        rm_log_str(&l, "version", push->version);
        rm_log_str(&l, "nonce", push->nonce);
        rm_log_end(&l);
    }
}

static void stream_on_write(tag_t *tag, int ok)
{
    stream_t *s = container_of(tag, stream_t, write_tag);

    s->pending--;
    s->writing = 0;
    grpc_byte_buffer_destroy(s->sending);
    s->sending = NULL;
    if (ok && s->half_closed)
        stream_finish(s, GRPC_STATUS_OK, "");
    else if (ok)
        stream_maybe_push(s);
    stream_maybe_free(s);
}

static void stream_start_read(stream_t *s)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv;
    if (grpc_call_start_batch(s->call, &op, 1, &s->read_tag, NULL) == GRPC_CALL_OK)
        s->pending++;
}

/* The pod's labels as the source holds them: the pod (named by the node id, in the attested namespace) must be
 * known and run as the attested service account. Returns NULL or the reason for refusing. */
static const char *set_workload_from_source(stream_t *s, char *buf, size_t size)
{
    rm_source_t *src = s->srv->cfg.workloads;
    rm_source_workload_t w;
    int ret = src->ops->lookup_workload(src, s->ns, s->node_id, &w);
    if (ret == -ENOENT) {
        snprintf(buf, size, "pod %s/%s (the node id) is not known to the control plane's Kubernetes source", s->ns,
                 s->node_id);
        return buf;
    }
    if (ret != 0)
        return "out of memory";
    if (strcmp(w.service_account, s->sa) != 0) {
        if (snprintf(buf, size, "pod %s/%s runs as service account \"%s\" but the node's SVID is %s", s->ns, s->node_id,
                     w.service_account, s->spiffe_id) >= (int)size)
            buf[size - 1] = '\0';
        rm_source_workload_clear(&w);
        return buf;
    }
    ret = rm_workload_labels_set(&s->workload, s->ns, w.labels, w.num_labels);
    w.labels = NULL;
    w.num_labels = 0;
    rm_source_workload_clear(&w);
    return ret != 0 ? "out of memory" : NULL;
}

/* After the source's pods changed: each stream's labels are looked up again, and a stream whose labels changed is
 * pushed what its new WorkloadPolicy is (nothing when the policies selecting it are the same). */
static void refresh_workloads(rm_control_server_t *srv)
{
    rm_source_t *src = srv->cfg.workloads;
    uint64_t gen;

    if (src == NULL || (gen = src->ops->workloads_generation(src)) == srv->workloads_seen)
        return;
    srv->workloads_seen = gen;
    for (stream_t *s = srv->streams; s != NULL; s = s->next) {
        rm_source_workload_t w;
        if (!s->have_node || s->status_sent || src->ops->lookup_workload(src, s->ns, s->node_id, &w) != 0)
            continue; /* a pod that went away keeps its last labels until its stream ends */
        /* a pod that now runs as another account is left as it was: its SVID no longer matches, and its stream
         * ends with the pod. The lookup sorts by key only: sorting again here makes the comparison exact. */
        int same = strcmp(w.service_account, s->sa) != 0;
        if (!same) {
            rm_workload_labels_t fresh = {0};
            rm_label_t *labels = w.labels;
            size_t n = w.num_labels;
            w.labels = NULL;
            w.num_labels = 0;
            if (rm_workload_labels_set(&fresh, s->ns, labels, n) != 0)
                same = 1;
            else if ((same = rm_workload_labels_equal(&s->workload, fresh.labels, fresh.xw.workload.num_labels)))
                rm_workload_labels_clear(&fresh);
            else {
                rm_workload_labels_clear(&s->workload);
                s->workload = fresh;
            }
        }
        if (!same) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_INFO, "workload_labels_changed");
            rm_log_str(&l, "node", s->node_id);
            rm_log_str(&l, "namespace", s->ns);
            rm_log_str(&l, "workloadKey", s->workload.key);
            rm_log_end(&l);
            stream_maybe_push(s);
        }
        rm_source_workload_clear(&w);
    }
}

/* Checks the node against the SVID the stream was opened with. Returns NULL or the reason for refusing. */
static const char *check_node(stream_t *s, const Ringmesh__V1__Node *node, char *buf, size_t size)
{
    if (node == NULL)
        return "the first request must carry the node";
    if (node->namespace_ == NULL || strcmp(node->namespace_, s->ns) != 0 || node->service_account == NULL ||
        strcmp(node->service_account, s->sa) != 0) {
        snprintf(buf, size, "node claims namespace \"%s\" and service account \"%s\" but its SVID is %s",
                 node->namespace_ != NULL ? node->namespace_ : "",
                 node->service_account != NULL ? node->service_account : "", s->spiffe_id);
        return buf;
    }
    snprintf(s->node_id, sizeof(s->node_id), "%s", node->id != NULL && node->id[0] != '\0' ? node->id : s->peer);
    if (s->srv->cfg.workloads != NULL)
        return set_workload_from_source(s, buf, size);
    if (node->n_labels > 256)
        return "the node has more than 256 labels";
    if (rm_workload_labels_from_node(&s->workload, s->ns, node) != 0)
        return "out of memory";
    return NULL;
}

/* An ACK or NACK of the push in flight of `type`: counted, and its time since the push observed. */
static void count_answer(stream_t *s, int type, int is_nack)
{
    rm_control_server_t *srv = s->srv;
    double seconds = (double)(mono_us() - s->pushed_at_us[type]) / 1e6;

    pthread_mutex_lock(&srv->mutex);
    if (is_nack)
        srv->stats.nacks[type]++;
    else
        srv->stats.acks[type]++;
    rm_control_histogram_observe(&srv->stats.push_answer[type], seconds);
    pthread_mutex_unlock(&srv->mutex);
}

static void stream_handle_request(stream_t *s, const Ringmesh__V1__DiscoveryRequest *req)
{
    rm_control_server_t *srv = s->srv;
    const char *nonce = req->response_nonce != NULL ? req->response_nonce : "";
    const char *version = req->version_info != NULL ? req->version_info : "";
    int is_nack = req->error_detail != NULL, type;
    const char *nack_reason = is_nack && req->error_detail->message != NULL ? req->error_detail->message : "";
    char buf[512];
    const char *refusal;
    rm_xds_request_kind_t kind;

    if (!s->have_node) {
        if ((refusal = check_node(s, req->node, buf, sizeof(buf))) != NULL) {
            stream_finish(s, GRPC_STATUS_PERMISSION_DENIED, refusal);
            return;
        }
        s->have_node = 1;
        stats_add(srv, &srv->stats.connected_proxies, 1);
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_SEND_INITIAL_METADATA;
        s->md_sent = 1;
        if (grpc_call_start_batch(s->call, &op, 1, &s->start_tag, NULL) == GRPC_CALL_OK)
            s->pending++;
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "stream_opened");
        rm_log_str(&l, "peer", s->peer);
        rm_log_str(&l, "spiffeId", s->spiffe_id);
        rm_log_str(&l, "node", s->node_id);
        if (req->node->proxy_version != NULL && req->node->proxy_version[0] != '\0')
            rm_log_str(&l, "proxyVersion", req->node->proxy_version);
        rm_log_end(&l);
    }
    kind = rm_xds_on_request(&s->xds, req->type_url, version, nonce, is_nack, &type);
    switch (kind) {
    case RM_XDS_REQ_UNKNOWN_TYPE:
        snprintf(buf, sizeof(buf), "unknown resource type \"%s\"", req->type_url != NULL ? req->type_url : "");
        stream_finish(s, GRPC_STATUS_INVALID_ARGUMENT, buf);
        return;
    case RM_XDS_REQ_NACK: {
        rm_log_line_t l;
        count_answer(s, type, 1);
        rm_log_begin(&l, RM_LOG_WARN, "config_nacked");
        rm_log_str(&l, "node", s->node_id);
        rm_log_str(&l, "spiffeId", s->spiffe_id);
        rm_log_str(&l, "type", rm_xds_type_name(type));
        rm_log_str(&l, "rejectedNonce", nonce);
        rm_log_str(&l, "rejectedVersion", s->xds.types[type].sent_version);
        rm_log_str(&l, "keptVersion", version);
        rm_log_str(&l, "reason", nack_reason);
        rm_log_end(&l);
        break;
    }
    case RM_XDS_REQ_ACK:
        count_answer(s, type, 0);
        if (rm_log_enabled(RM_LOG_DEBUG)) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_DEBUG, "config_acked");
            rm_log_str(&l, "node", s->node_id);
            rm_log_str(&l, "type", rm_xds_type_name(type));
            rm_log_str(&l, "version", version);
            rm_log_end(&l);
        }
        break;
    case RM_XDS_REQ_SUBSCRIBE:
    case RM_XDS_REQ_STALE:
        break;
    }
    stream_maybe_push(s);
}

static void stream_on_read(tag_t *tag, int ok)
{
    stream_t *s = container_of(tag, stream_t, read_tag);
    Ringmesh__V1__DiscoveryRequest *req;
    uint8_t *data = NULL;
    size_t len = 0;

    s->pending--;
    if (!ok || s->recv == NULL) {
        /* The sidecar half-closed (or the call is gone): end our side too, after a write in flight. */
        s->half_closed = 1;
        if (ok && !s->writing)
            stream_finish(s, GRPC_STATUS_OK, "");
        stream_maybe_free(s);
        return;
    }
    if (rm__grpc_read_message(s->recv, &data, &len) != 0 ||
        (req = ringmesh__v1__discovery_request__unpack(NULL, len, data)) == NULL) {
        grpc_byte_buffer_destroy(s->recv);
        s->recv = NULL;
        free(data);
        stream_finish(s, GRPC_STATUS_INVALID_ARGUMENT, "request is not a valid ringmesh.v1.DiscoveryRequest");
        stream_maybe_free(s);
        return;
    }
    grpc_byte_buffer_destroy(s->recv);
    s->recv = NULL;
    free(data);
    stream_handle_request(s, req);
    ringmesh__v1__discovery_request__free_unpacked(req, NULL);
    if (!s->status_sent && !s->closed)
        stream_start_read(s);
    stream_maybe_free(s);
}

static void stream_on_close(tag_t *tag, int ok)
{
    stream_t *s = container_of(tag, stream_t, close_tag);
    (void)ok;
    s->pending--;
    s->closed = 1;
    stream_maybe_free(s);
}

static void stream_on_start(tag_t *tag, int ok)
{
    stream_t *s = container_of(tag, stream_t, start_tag);
    (void)ok;
    s->pending--;
    stream_maybe_free(s);
}

/* Reads the peer's SPIFFE ID from the TLS session; Discovery requires one of the form /ns/<ns>/sa/<sa>. A client
 * certificate got here only through the handshake's verifier (client_verify.h: chain, X509-SVID rules and trust
 * domain); the trust domain is compared again as a guard against a change of credentials. */
static const char *stream_identify(stream_t *s, char *buf, size_t size)
{
    grpc_auth_context *ctx = grpc_call_auth_context(s->call);
    grpc_auth_property_iterator it;
    const grpc_auth_property *p;
    rm_spiffe_id_t id;
    const char *td = rm_ca_trust_domain(s->srv->cfg.ca), *path;
    int n = 0;

    if (ctx == NULL)
        return "the connection is not TLS";
    it = grpc_auth_context_find_properties_by_name(ctx, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
    if ((p = grpc_auth_property_iterator_next(&it)) != NULL)
        snprintf(s->spiffe_id, sizeof(s->spiffe_id), "%.*s", (int)p->value_length, p->value);
    grpc_auth_context_release(ctx);
    if (s->spiffe_id[0] == '\0')
        return "Discovery requires mTLS with an X.509-SVID (no SPIFFE ID in the client certificate)";
    if (rm_spiffe_id_parse(s->spiffe_id, strlen(s->spiffe_id), &id) != 0 || id.td_len != strlen(td) ||
        memcmp(id.str + 9, td, id.td_len) != 0) {
        snprintf(buf, size, "client SPIFFE ID %s is not in trust domain %s", s->spiffe_id, td);
        return buf;
    }
    path = id.str + 9 + id.td_len;
    if (sscanf(path, "/ns/%63[^/]/sa/%253[^/]%n", s->ns, s->sa, &n) != 2 || path[n] != '\0') {
        snprintf(buf, size, "client SPIFFE ID %s is not of the form spiffe://%s/ns/<namespace>/sa/<account>",
                 s->spiffe_id, td);
        return buf;
    }
    return NULL;
}

static void on_stream(tag_t *tag, int ok)
{
    rm_control_server_t *srv = container_of(tag, rm_control_server_t, accept_stream.tag);
    grpc_call *call = srv->accept_stream.call;
    stream_t *s;
    grpc_op ops[1];
    char buf[512];
    const char *refusal;

    srv->accept_stream.call = NULL;
    grpc_metadata_array_destroy(&srv->accept_stream.md);
    if (!ok)
        return;
    request_stream(srv);

    if ((s = calloc(1, sizeof(*s))) == NULL) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    s->srv = srv;
    s->call = call;
    s->start_tag.cb = stream_on_start;
    s->read_tag.cb = stream_on_read;
    s->write_tag.cb = stream_on_write;
    s->close_tag.cb = stream_on_close;
    rm__grpc_copy_peer(call, s->peer, sizeof(s->peer));
    s->next = srv->streams;
    if (srv->streams != NULL)
        srv->streams->prev = s;
    srv->streams = s;
    srv->num_streams++;
    pthread_mutex_lock(&srv->mutex);
    srv->stats.streams_active++;
    srv->stats.streams_total++;
    pthread_mutex_unlock(&srv->mutex);

    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &s->cancelled;
    if (grpc_call_start_batch(call, ops, 1, &s->close_tag, NULL) == GRPC_CALL_OK)
        s->pending++;
    /* No response headers yet: they go out once the first request has shown the node is who its SVID says, so a
     * sidecar that sees them knows it was accepted (a refusal is a trailers-only response). */
    if ((refusal = stream_identify(s, buf, sizeof(buf))) != NULL)
        stream_finish(s, GRPC_STATUS_UNAUTHENTICATED, refusal);
    else if (srv->num_streams > srv->cfg.max_streams)
        stream_finish(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many discovery streams on this replica");
    else
        stream_start_read(s);
    stream_maybe_free(s);
}

/* ---- accepting ---- */

static void request_sign(rm_control_server_t *srv)
{
    grpc_metadata_array_init(&srv->accept_sign.md);
    srv->accept_sign.tag.cb = on_sign;
    grpc_server_request_registered_call(srv->server, srv->m_sign, &srv->accept_sign.call, &srv->accept_sign.deadline,
                                        &srv->accept_sign.md, &srv->accept_sign.payload, srv->cq, srv->cq,
                                        &srv->accept_sign.tag);
}

static void request_stream(rm_control_server_t *srv)
{
    grpc_metadata_array_init(&srv->accept_stream.md);
    srv->accept_stream.tag.cb = on_stream;
    grpc_server_request_registered_call(srv->server, srv->m_stream, &srv->accept_stream.call,
                                        &srv->accept_stream.deadline, &srv->accept_stream.md, NULL, srv->cq, srv->cq,
                                        &srv->accept_stream.tag);
}

static void request_other(rm_control_server_t *srv)
{
    grpc_call_details_init(&srv->accept_other.details);
    grpc_metadata_array_init(&srv->accept_other.md);
    srv->accept_other.tag.cb = on_other;
    grpc_server_request_call(srv->server, &srv->accept_other.call, &srv->accept_other.details, &srv->accept_other.md,
                             srv->cq, srv->cq, &srv->accept_other.tag);
}

/* ---- configuration changes ---- */

static void release_set(rm_control_server_t *srv)
{
    rm_xds_push_set_unref(srv->set);
    srv->set = NULL;
}

/* Builds the push set for `model` and pushes it to every stream. Takes the caller's model reference. */
static void install_model(rm_control_server_t *srv, rm_mesh_model_t *model)
{
    rm_xds_push_set_t *set;
    size_t bundle_len;
    int ret;

    if ((ret = rm_xds_push_set_build(model, rm_ca_bundle_pem(srv->cfg.ca, &bundle_len), ++srv->seq, &set)) != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "config_push_failed");
        rm_log_str(&l, "version", model->version);
        rm_log_err(&l, "error", ret);
        rm_log_end(&l);
        rm_mesh_model_unref(model);
        return;
    }
    release_set(srv);
    srv->set = set;
    rm_mesh_model_unref(srv->model);
    srv->model = model;
    pthread_mutex_lock(&srv->mutex);
    srv->stats.model_updates++;
    snprintf(srv->stats.version, sizeof(srv->stats.version), "%s", model->version);
    srv->stats.num_services = model->num_services;
    srv->stats.num_policies = model->policies.num_policies;
    srv->stats.num_peer_authns = model->policies.num_peer_authns;
    pthread_mutex_unlock(&srv->mutex);
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "config_serving");
        rm_log_str(&l, "version", model->version);
        rm_log_str(&l, "trustBundleVersion", set->types[RM_XDS_TRUST_BUNDLE].version);
        rm_log_str(&l, "destinationsVersion", set->types[RM_XDS_DESTINATIONS].version);
        rm_log_str(&l, "meshSettingsVersion", set->types[RM_XDS_MESH_SETTINGS].version);
        rm_log_uint(&l, "streams", srv->num_streams);
        rm_log_end(&l);
    }
    for (stream_t *s = srv->streams; s != NULL; s = s->next)
        stream_maybe_push(s);
}

static void *server_thread(void *arg)
{
    rm_control_server_t *srv = arg;

    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            srv->cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(POLL_MS, GPR_TIMESPAN)), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            ((tag_t *)ev.tag)->cb(ev.tag, ev.success);
        rm_serving_creds_tick(srv->serving, time(NULL));
        rm_mesh_model_t *incoming = NULL;
        pthread_mutex_lock(&srv->mutex);
        incoming = srv->incoming;
        srv->incoming = NULL;
        pthread_mutex_unlock(&srv->mutex);
        if (incoming != NULL && !__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
            install_model(srv, incoming);
        else if (incoming != NULL)
            rm_mesh_model_unref(incoming);
        if (!__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
            refresh_workloads(srv);
    }
    return NULL;
}

static void on_shutdown(tag_t *tag, int ok)
{
    rm_control_server_t *srv = container_of(tag, rm_control_server_t, shutdown_tag);
    (void)ok;
    srv->shutdown_done = 1;
    grpc_completion_queue_shutdown(srv->cq);
}

/* Process-wide settings of the libraries under gRPC, once, before the first grpc_init(). */
static pthread_once_t runtime_once = PTHREAD_ONCE_INIT;

static void runtime_init(void)
{
    const char *why;
    rm_grpc_runtime_init();
    int r = rm_openssl_server_defaults(&why);
    rm_log_line_t l;
    rm_log_begin(&l, r < 0 ? RM_LOG_WARN : RM_LOG_INFO, "tls_defaults");
    rm_log_str(&l, "settings", why);
    rm_log_end(&l);
}

int rm_control_server_start(const rm_control_server_config_t *cfg, rm_mesh_model_t *model, rm_control_server_t **out,
                            char *err, size_t errlen)
{
    rm_control_server_t *srv;
    grpc_arg args[4];
    grpc_channel_args chargs;
    grpc_server_credentials *creds;
    int ret;

    if ((srv = calloc(1, sizeof(*srv))) == NULL)
        return -ENOMEM;
    srv->cfg = *cfg;
    if (srv->cfg.max_streams == 0)
        srv->cfg.max_streams = 16384;
    pthread_mutex_init(&srv->mutex, NULL);
    pthread_once(&runtime_once, runtime_init);
    grpc_init();
    rm_handshake_log_init();

    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = MAX_REQUEST_BYTES;
    /* Idle sidecars cost memory, not CPU: keep-alive pings from clients at most every 30 s. */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
    args[1].value.integer = 30000;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_CONCURRENT_STREAMS;
    args[2].value.integer = 16;
    /* TLS frames of 4 KB instead of 16 KB: the frame buffers are per connection, and Discovery messages are small. */
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_TSI_MAX_FRAME_SIZE;
    args[3].value.integer = 4096;
    chargs.num_args = 4;
    chargs.args = args;
    srv->server = grpc_server_create(&chargs, NULL);
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    srv->m_sign =
        grpc_server_register_method(srv->server, METHOD_SIGN, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    srv->m_stream = grpc_server_register_method(srv->server, METHOD_STREAM, NULL, GRPC_SRM_PAYLOAD_NONE, 0);

    rm_serving_config_t serving = {.ca = cfg->ca,
                                   .spiffe_id = cfg->serving_id,
                                   .dns_names = cfg->serving_dns_names,
                                   .num_dns_names = cfg->num_serving_dns_names,
                                   .ttl = cfg->serving_ttl};
    if ((ret = rm_serving_creds_create(&serving, &creds, &srv->serving, err, errlen)) != 0)
        goto Fail;
    ret = grpc_server_add_http2_port(srv->server, cfg->listen, creds);
    grpc_server_credentials_release(creds);
    if (ret == 0) {
        snprintf(err, errlen, "cannot listen on %s (address in use or invalid)", cfg->listen);
        ret = -EADDRINUSE;
        goto Fail;
    }
    grpc_server_start(srv->server);
    request_sign(srv);
    request_stream(srv);
    request_other(srv);
    srv->incoming = rm_mesh_model_ref(model);
    if ((ret = pthread_create(&srv->thread, NULL, server_thread, srv)) != 0) {
        snprintf(err, errlen, "cannot start the server thread");
        ret = -ret;
        goto Fail;
    }
    *out = srv;
    return 0;

Fail:
    /* Nothing was started: no call can be in flight. */
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
    srv->shutdown_tag.cb = on_shutdown;
    grpc_server_cancel_all_calls(srv->server);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            ((tag_t *)ev.tag)->cb(ev.tag, ev.success);
    }
    grpc_server_destroy(srv->server);
    grpc_completion_queue_destroy(srv->cq);
    rm_mesh_model_unref(srv->incoming);
    pthread_mutex_destroy(&srv->mutex);
    grpc_shutdown();
    rm_serving_creds_free(srv->serving); /* after gRPC's file watcher is gone: it reads the file by its number */
    free(srv);
    return ret;
}

void rm_control_server_update(rm_control_server_t *srv, rm_mesh_model_t *model)
{
    rm_mesh_model_t *old;

    pthread_mutex_lock(&srv->mutex);
    old = srv->incoming;
    srv->incoming = rm_mesh_model_ref(model);
    pthread_mutex_unlock(&srv->mutex);
    rm_mesh_model_unref(old); /* superseded before the server thread saw it */
}

void rm_control_server_stats(rm_control_server_t *srv, rm_control_stats_t *out)
{
    pthread_mutex_lock(&srv->mutex);
    *out = srv->stats;
    pthread_mutex_unlock(&srv->mutex);
}

void rm_control_server_stop(rm_control_server_t *srv)
{
    if (srv == NULL)
        return;
    __atomic_store_n(&srv->stopping, 1, __ATOMIC_RELEASE);
    srv->shutdown_tag.cb = on_shutdown;
    /* The thread keeps dispatching: the shutdown tag completes once every call has ended, then the queue shuts
     * down and the thread returns. */
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
    grpc_server_cancel_all_calls(srv->server);
    pthread_join(srv->thread, NULL);
    grpc_server_destroy(srv->server);
    grpc_completion_queue_destroy(srv->cq);
    release_set(srv);
    rm_mesh_model_unref(srv->model);
    rm_mesh_model_unref(srv->incoming);
    pthread_mutex_destroy(&srv->mutex);
    grpc_shutdown();
    rm_serving_creds_free(srv->serving); /* after gRPC's file watcher is gone: it reads the file by its number */
    free(srv);
}
