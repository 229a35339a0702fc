/* The Discovery stream: one per connection to the control plane, subscribed to every resource type; each push is
 * checked, applied and ACKed, or NACKed with the reason while the last good version stays. */
#include "control_client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

#define METHOD_STREAM "/ringmesh.v1.Discovery/Stream"

#define NODE_LABELS_MAX 64

typedef struct st_node_labels_t {
    Ringmesh__V1__Node__LabelsEntry entries[NODE_LABELS_MAX];
    Ringmesh__V1__Node__LabelsEntry *ptrs[NODE_LABELS_MAX];
    size_t n;
    char store[16384];
    size_t used;
} node_labels_t;

static void add_label(node_labels_t *nl, const char *k, size_t klen, const char *v, size_t vlen)
{
    if (nl->n == NODE_LABELS_MAX || klen == 0 || nl->used + klen + vlen + 2 > sizeof(nl->store))
        return;
    for (size_t i = 0; i < nl->n; i++)
        if (strlen(nl->entries[i].key) == klen && memcmp(nl->entries[i].key, k, klen) == 0)
            return; /* the configuration's value wins over the file's */
    char *ks = nl->store + nl->used;
    memcpy(ks, k, klen);
    ks[klen] = '\0';
    char *vs = ks + klen + 1;
    memcpy(vs, v, vlen);
    vs[vlen] = '\0';
    nl->used += klen + vlen + 2;
    ringmesh__v1__node__labels_entry__init(&nl->entries[nl->n]);
    nl->entries[nl->n].key = ks;
    nl->entries[nl->n].value = vs;
    nl->ptrs[nl->n] = &nl->entries[nl->n];
    nl->n++;
}

/* The workload's labels (they select its policies): control.node.labels, then the downward-API file, whose lines
 * are key="value" with Go string escapes (labels have none that matter: their values are [A-Za-z0-9._-]). */
static void collect_labels(rm_control_client_t *cc, node_labels_t *nl)
{
    nl->n = nl->used = 0;
    for (size_t i = 0; i < cc->ccfg->num_node_labels; i++) {
        const char *l = cc->ccfg->node_labels[i];
        size_t key_len;
        if (rm_config_parse_label(l, &key_len) == 0) /* checked when the configuration was loaded */
            add_label(nl, l, key_len, l + key_len + 1, strlen(l + key_len + 1));
    }
    if (cc->ccfg->node_labels_file == NULL)
        return;
    char *data = NULL;
    size_t len = 0;
    if (rm__control_read_file(cc->ccfg->node_labels_file, &data, &len) != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "labels_file_unreadable");
        rm_log_str(&l, "file", cc->ccfg->node_labels_file);
        rm_log_end(&l);
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        char *v = eq + 1;
        size_t vlen = strlen(v);
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
            v++, vlen -= 2;
        add_label(nl, line, (size_t)(eq - line), v, vlen);
    }
    free(data);
}

static void enqueue_request(rm_control_client_t *cc, int type, const char *version, const char *nonce,
                            const char *nack_reason, int with_node)
{
    static node_labels_t labels; /* the control thread's: only it sends requests */
    Ringmesh__V1__DiscoveryRequest req = RINGMESH__V1__DISCOVERY_REQUEST__INIT;
    Ringmesh__V1__Node node = RINGMESH__V1__NODE__INIT;
    Ringmesh__V1__ErrorDetail ed = RINGMESH__V1__ERROR_DETAIL__INIT;
    uint8_t *buf;
    size_t len;

    if (with_node) {
        node.id = cc->node_id;
        node.namespace_ = cc->node_ns;
        node.service_account = cc->node_sa;
        node.proxy_version = "ringmesh-proxy/0.1.0";
        collect_labels(cc, &labels);
        node.n_labels = labels.n;
        node.labels = labels.ptrs;
        req.node = &node;
    }
    req.type_url = (char *)rm_xds_type_url(type);
    req.version_info = (char *)version;
    req.response_nonce = (char *)nonce;
    if (nack_reason != NULL) {
        ed.code = 3; /* INVALID_ARGUMENT */
        ed.message = (char *)nack_reason;
        req.error_detail = &ed;
    }
    if (cc->call == NULL)
        return;
    len = ringmesh__v1__discovery_request__get_packed_size(&req);
    if ((buf = malloc(len == 0 ? 1 : len)) == NULL)
        return;
    ringmesh__v1__discovery_request__pack(&req, buf);
    rm_h2_call_send(cc->call, buf, len);
    free(buf);
}

static void handle_response(rm_control_client_t *cc, const Ringmesh__V1__DiscoveryResponse *resp)
{
    int type = rm_xds_type_from_url(resp->type_url);
    const char *nonce = resp->nonce != NULL ? resp->nonce : "";
    char err[512] = "";
    int ret = -EINVAL;

    if (type < 0) {
        snprintf(err, sizeof(err), "unknown resource type \"%.200s\"", resp->type_url != NULL ? resp->type_url : "");
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "config_rejected");
        rm_log_str(&l, "reason", err);
        rm_log_end(&l);
        return;
    }
    if (resp->n_resources != 1)
        snprintf(err, sizeof(err), "%s push holds %zu resources, exactly 1 expected", rm_xds_type_name(type),
                 resp->n_resources);
    else
        ret = rm__control_apply_resource(cc, type, resp->resources[0], err, sizeof(err));
    if (ret == 0) {
        snprintf(cc->versions[type], sizeof(cc->versions[type]), "%s",
                 resp->version_info != NULL ? resp->version_info : "");
        rm__control_save_resource(cc, type, resp->resources[0]);
        atomic_fetch_add(&cc->proxy->control.accepted[type], 1);
        rm__control_publish(cc);
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "config_accepted");
        rm_log_str(&l, "type", rm_xds_type_name(type));
        rm_log_str(&l, "version", cc->versions[type]);
        rm_log_end(&l);
        enqueue_request(cc, type, cc->versions[type], nonce, NULL, 0);
    } else {
        atomic_fetch_add(&cc->proxy->control.rejected[type], 1);
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "config_rejected");
        rm_log_str(&l, "type", rm_xds_type_name(type));
        rm_log_str(&l, "rejected_version", resp->version_info);
        rm_log_str(&l, "kept_version", cc->versions[type]);
        rm_log_str(&l, "reason", err);
        rm_log_end(&l);
        enqueue_request(cc, type, cc->versions[type], nonce, err, 0);
    }
}

/* The control plane accepted the stream (it may have nothing to push: the versions we run may be current). */
static void on_stream_accepted(void *arg, rm_h2_call_t *call)
{
    rm_control_client_t *cc = arg;

    (void)call;
    if (!cc->received_any) {
        cc->received_any = 1;
        cc->stream_up = 1;
        cc->stream_up_since_ms = rm__control_now_ms();
        atomic_store(&cc->proxy->control.connected, 1);
        if (cc->outage_logged) {
            cc->outage_logged = 0;
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_INFO, "control_plane_reconnected");
            rm_log_str(&l, "control_plane", cc->ccfg->address);
            rm_log_end(&l);
        }
    }
}

static void on_stream_message(void *arg, rm_h2_call_t *call, const uint8_t *msg, size_t len)
{
    rm_control_client_t *cc = arg;
    Ringmesh__V1__DiscoveryResponse *resp;

    on_stream_accepted(arg, call);
    if ((resp = ringmesh__v1__discovery_response__unpack(NULL, len, msg)) == NULL) {
        rm_log_msg(RM_LOG_WARN, "config_rejected", "a push does not decode as ringmesh.v1.DiscoveryResponse");
        return;
    }
    handle_response(cc, resp);
    ringmesh__v1__discovery_response__free_unpacked(resp, NULL);
}

static void on_stream_close(void *arg, rm_h2_call_t *call, int status, const char *message)
{
    rm_control_client_t *cc = arg;

    (void)call;
    cc->call = NULL;
    cc->stream_ended = 1;
    cc->end_status = status;
    snprintf(cc->end_message, sizeof(cc->end_message), "%s", message != NULL ? message : "");
}

/* The stream has ended (or could not start): log once per outage, schedule the reconnection. */
void rm__control_stream_closed(rm_control_client_t *cc, int status, const char *details)
{
    int was_up = cc->stream_up;

    /* Back off from the minimum again only after a stream that stayed up for a while: a control plane that accepts
     * and then drops every stream must not be hammered. */
    if (cc->received_any && rm__control_now_ms() - cc->stream_up_since_ms >= 10000)
        cc->stream_failures = 0;
    else
        cc->stream_failures++;
    cc->reconnect_at_ms =
        rm__control_now_ms() + rm__control_backoff_ms(cc->stream_failures == 0 ? 1 : cc->stream_failures);
    if (!cc->outage_logged && !atomic_load(&cc->stop)) {
        /* once per outage, however long it lasts */
        cc->outage_logged = 1;
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "control_plane_unreachable");
        rm_log_str(&l, "control_plane", cc->ccfg->address);
        rm_log_int(&l, "grpc_status", status);
        rm_log_str(&l, "details", details);
        rm_log_bool(&l, "was_connected", was_up);
        rm_log_str(&l, "msg", "serving with the last good SVID and configuration; retrying with backoff");
        rm_log_end(&l);
    }
    cc->stream_up = 0;
    cc->received_any = 0;
    cc->stream_ended = 0;
    atomic_store(&cc->proxy->control.connected, 0);
    /* a new connection next time: it presents a rotated SVID and trusts the current bundle */
    rm_h2_close(cc->conn);
    cc->conn = NULL;
    cc->call = NULL;
}

void rm__control_stream_open(rm_control_client_t *cc)
{
    static const rm_h2_call_cbs_t cbs = {on_stream_accepted, on_stream_message, on_stream_close};
    rm_tls_ctx_t *ctx = NULL;
    char err[512] = "";
    int ret;

    if ((ret = rm__control_make_ctx(cc, 1, &ctx, err, sizeof(err))) != 0 ||
        (ret = rm_h2_connect(cc->ccfg->address, cc->ccfg->server_name, ctx, cc->control_id, 10000, &cc->conn, err,
                             sizeof(err))) != 0 ||
        (rm_h2_set_keepalive(cc->conn, cc->ccfg->keepalive_time_ms, cc->ccfg->keepalive_timeout_ms),
         (ret = rm_h2_call_start(cc->conn, METHOD_STREAM, &cbs, cc, &cc->call)) != 0)) {
        rm_tls_ctx_unref(ctx);
        if (ret != 0 && err[0] == '\0')
            snprintf(err, sizeof(err), "%s", rm_strerror(ret));
        rm__control_stream_closed(cc, RM_GRPC_UNAVAILABLE, err);
        return;
    }
    rm_tls_ctx_unref(ctx); /* the connection's session holds its own reference */
    /* Subscribe to every type, saying which version we run (restored or from the previous stream), so that a
     * control plane already at that version has nothing to push. */
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
        enqueue_request(cc, t, cc->versions[t], "", NULL, t == 0);
}
