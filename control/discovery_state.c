#include "discovery_state.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery_workloads.h"
#include "endpoints_derive.h"
#include "route_model.h"
#include "jwks_fetch.h"
#include "ringmesh/v1/discovery.pb-c.h"

#define PEM_END "-----END CERTIFICATE-----"

/* Splits a PEM bundle into its certificates (pointers into a copy the caller frees). */
static int split_pem(const char *pem, char **copy, char ***certs, size_t *num)
{
    char *p, *end, **list = NULL, **grown;
    size_t n = 0;

    *copy = NULL;
    *certs = NULL;
    *num = 0;
    if (pem == NULL)
        return 0;
    if ((*copy = strdup(pem)) == NULL)
        return -ENOMEM;
    p = *copy;
    while ((p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL) {
        if ((end = strstr(p, PEM_END)) == NULL)
            break;
        end += sizeof(PEM_END) - 1;
        if ((grown = realloc(list, (n + 1) * sizeof(*list))) == NULL) {
            free(list);
            free(*copy);
            *copy = NULL;
            return -ENOMEM;
        }
        list = grown;
        list[n++] = p;
        if (*end != '\0')
            *end++ = '\0';
        p = end;
    }
    *certs = list;
    *num = n;
    return 0;
}

/* Wraps a serialized resource in a DiscoveryResponse. Takes over `value` (malloc'ed). */
static int encode_push_value(rm_xds_push_t *push, rm_xds_type_t type, const char *name, uint8_t *value,
                             size_t value_len, uint64_t seq)
{
    Ringmesh__V1__DiscoveryResponse resp = RINGMESH__V1__DISCOVERY_RESPONSE__INIT;
    Ringmesh__V1__Resource res = RINGMESH__V1__RESOURCE__INIT, *resp_list[1] = {&res};

    rm_xds_version_of(value, value_len, push->version);
    snprintf(push->nonce, sizeof(push->nonce), "%s-%" PRIu64, rm_xds_type_name(type), seq);

    res.name = (char *)name;
    res.version = push->version;
    res.value.data = value;
    res.value.len = value_len;
    resp.version_info = push->version;
    resp.type_url = (char *)rm_xds_type_url(type);
    resp.nonce = push->nonce;
    resp.n_resources = 1;
    resp.resources = resp_list;
    push->response_len = ringmesh__v1__discovery_response__get_packed_size(&resp);
    if ((push->response = malloc(push->response_len == 0 ? 1 : push->response_len)) == NULL) {
        free(value);
        return -ENOMEM;
    }
    ringmesh__v1__discovery_response__pack(&resp, push->response);
    free(value);
    return 0;
}

/* Serializes a resource message and wraps it in a DiscoveryResponse. */
static int encode_push(rm_xds_push_t *push, rm_xds_type_t type, const char *name, const ProtobufCMessage *msg,
                       uint64_t seq)
{
    uint8_t *value;
    size_t value_len = protobuf_c_message_get_packed_size(msg);

    if ((value = malloc(value_len == 0 ? 1 : value_len)) == NULL)
        return -ENOMEM;
    protobuf_c_message_pack(msg, value);
    return encode_push_value(push, type, name, value, value_len, seq);
}

static int build_trust_bundle(rm_xds_push_t *push, const rm_mesh_model_t *model, const char *bundle_pem, uint64_t seq)
{
    Ringmesh__V1__TrustBundle tb = RINGMESH__V1__TRUST_BUNDLE__INIT;
    char *copy, **certs;
    size_t n;
    int ret;

    if ((ret = split_pem(bundle_pem, &copy, &certs, &n)) != 0)
        return ret;
    if (n == 0) {
        ret = -EINVAL; /* a mesh without a root cannot verify anything: never push that */
        goto Exit;
    }
    tb.trust_domain = model->settings.trust_domain;
    tb.n_roots_pem = n;
    tb.roots_pem = certs;
    ret = encode_push(push, RM_XDS_TRUST_BUNDLE, model->settings.trust_domain, &tb.base, seq);
Exit:
    free(certs);
    free(copy);
    return ret;
}

static int build_destinations(rm_xds_push_t *push, const rm_mesh_model_t *model, uint64_t seq)
{
    Ringmesh__V1__DestinationMap map = RINGMESH__V1__DESTINATION_MAP__INIT;
    Ringmesh__V1__Destination *dests = NULL, **list = NULL;
    rm_route_arena_t routes = {0};
    char **names = NULL;
    size_t n = model->num_services;
    int ret = -ENOMEM;

    if (n > 0) {
        if ((dests = calloc(n, sizeof(*dests))) == NULL || (list = calloc(n, sizeof(*list))) == NULL ||
            (names = calloc(n, sizeof(*names))) == NULL)
            goto Exit;
    }
    for (size_t i = 0; i < n; i++) {
        const rm_model_service_t *svc = &model->services[i];
        size_t nlen = strlen(svc->namespace_) + strlen(svc->name) + 2;

        if ((names[i] = malloc(nlen)) == NULL)
            goto Exit;
        snprintf(names[i], nlen, "%s/%s", svc->namespace_, svc->name);
        ringmesh__v1__destination__init(&dests[i]);
        dests[i].name = names[i];
        dests[i].n_addresses = svc->num_addresses;
        dests[i].addresses = svc->addresses;
        dests[i].in_mesh = svc->in_mesh != 0;
        dests[i].n_identities = svc->in_mesh ? svc->num_identities : 0;
        dests[i].identities = svc->identities;
        if (svc->in_mesh && rm_endpoints_fill_destination(svc, &dests[i]) != 0)
            goto Exit;
        if (rm__destination_routes(model, svc, &routes, &dests[i]) != 0)
            goto Exit;
        list[i] = &dests[i];
    }
    map.n_destinations = n;
    map.destinations = list;
    ret = encode_push(push, RM_XDS_DESTINATIONS, "destinations", &map.base, seq);
Exit:
    if (names != NULL)
        for (size_t i = 0; i < n; i++) {
            free(names[i]);
            rm_endpoints_destination_free(&dests[i]);
        }
    free(names);
    free(list);
    free(dests);
    rm_route_arena_clear(&routes);
    return ret;
}

static int build_mesh_settings(rm_xds_push_t *push, const rm_mesh_model_t *model, uint64_t seq)
{
    Ringmesh__V1__MeshSettings ms = RINGMESH__V1__MESH_SETTINGS__INIT;
    const rm_mesh_settings_t *s = &model->settings;

    ms.trust_domain = s->trust_domain;
    ms.inbound_mode = (Ringmesh__V1__MtlsMode)s->inbound_mode;
    ms.connect_timeout_ms = s->connect_timeout_ms;
    ms.idle_timeout_ms = s->idle_timeout_ms;
    ms.access_log = s->access_log != 0;
    ms.access_log_sample_rate = s->access_log_sample;
    ms.metrics_istio_names = s->metrics_istio_names != 0;
    ms.metrics_max_series_per_metric = s->metrics_max_series;
    ms.metrics_series_expiry_ms = s->metrics_expiry_ms;
    ms.svid_ttl_seconds = s->svid_ttl;
    return encode_push(push, RM_XDS_MESH_SETTINGS, "mesh", &ms.base, seq);
}

int rm_xds_push_set_build(const rm_mesh_model_t *model, const char *bundle_pem, uint64_t seq, rm_xds_push_set_t **out)
{
    rm_xds_push_set_t *set;
    int ret;

    if ((set = calloc(1, sizeof(*set))) == NULL)
        return -ENOMEM;
    set->seq = seq;
    set->refcnt = 1;
    set->model = rm_mesh_model_ref((rm_mesh_model_t *)model);
    pthread_mutex_init(&set->workload_lock, NULL);
    if ((ret = build_trust_bundle(&set->types[RM_XDS_TRUST_BUNDLE], model, bundle_pem, seq)) != 0 ||
        (ret = build_destinations(&set->types[RM_XDS_DESTINATIONS], model, seq)) != 0 ||
        (ret = build_mesh_settings(&set->types[RM_XDS_MESH_SETTINGS], model, seq)) != 0 ||
        (ret = rm__xds_workload_peers_encode(model, RM_XDS_WORKLOAD_PEERS_MAX_BYTES, &set->peers, &set->peers_len)) !=
            0) {
        rm_xds_push_set_unref(set);
        return ret;
    }
    *out = set;
    return 0;
}

rm_xds_push_set_t *rm_xds_push_set_ref(rm_xds_push_set_t *set)
{
    __atomic_add_fetch(&set->refcnt, 1, __ATOMIC_RELAXED);
    return set;
}

void rm_xds_push_set_unref(rm_xds_push_set_t *set)
{
    if (set == NULL || __atomic_sub_fetch(&set->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
        free(set->types[t].response);
    for (size_t i = 0; i < set->num_workloads; i++) {
        free(set->workloads[i]->key);
        free(set->workloads[i]->push.response);
        free(set->workloads[i]);
    }
    free(set->workloads);
    free(set->peers);
    pthread_mutex_destroy(&set->workload_lock);
    rm_mesh_model_unref(set->model);
    free(set);
}

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

rm_xds_request_kind_t rm_xds_on_request(rm_xds_stream_state_t *st, const char *type_url, const char *version,
                                        const char *nonce, int is_nack, int *type_out)
{
    int t = rm_xds_type_from_url(type_url);
    rm_xds_type_state_t *ts;

    *type_out = t;
    if (t < 0)
        return RM_XDS_REQ_UNKNOWN_TYPE;
    ts = &st->types[t];
    if (nonce == NULL || nonce[0] == '\0') {
        /* A (re)subscription. What the sidecar says it runs counts as sent and accepted: a proxy that came back
         * from its state directory with the current version gets no push at all. */
        ts->subscribed = 1;
        copy_str(ts->sent_version, sizeof(ts->sent_version), version);
        copy_str(ts->acked_version, sizeof(ts->acked_version), version);
        ts->sent_nonce[0] = '\0';
        ts->awaiting_answer = 0;
        return RM_XDS_REQ_SUBSCRIBE;
    }
    if (!ts->subscribed || strcmp(nonce, ts->sent_nonce) != 0)
        return RM_XDS_REQ_STALE;
    ts->awaiting_answer = 0;
    copy_str(ts->acked_version, sizeof(ts->acked_version), version);
    if (is_nack) {
        ts->nacks++;
        return RM_XDS_REQ_NACK;
    }
    ts->acks++;
    return RM_XDS_REQ_ACK;
}

/* The workload's labels as "key=value", for the decision log (wp->workload_labels, malloc'ed). */
static int workload_labels(const rm_workload_t *w, rm_workload_policy_t *wp)
{
    if (w->num_labels == 0)
        return 0;
    if ((wp->workload_labels = calloc(w->num_labels, sizeof(char *))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < w->num_labels; i++, wp->num_workload_labels++) {
        size_t kl = strlen(w->labels[i].key), vl = strlen(w->labels[i].value);
        if ((wp->workload_labels[i] = malloc(kl + vl + 2)) == NULL)
            return -ENOMEM;
        memcpy(wp->workload_labels[i], w->labels[i].key, kl);
        wp->workload_labels[i][kl] = '=';
        memcpy(wp->workload_labels[i] + kl + 1, w->labels[i].value, vl + 1);
    }
    return 0;
}

/* The RequestAuthentications selecting the workload into wp->request_authns: shallow copies (*copies, the caller
 * frees them and their resolved rules) whose jwksUri rules carry the JWKS the control plane fetched
 * (jwks_fetch.h). */
static int select_request_authns(const rm_policy_set_t *ps, const char *root, const rm_workload_t *w,
                                 rm_workload_policy_t *wp, rm_request_authn_t **copies)
{
    const rm_request_authn_t **ptrs;
    if (ps->num_request_authns == 0)
        return 0;
    if ((*copies = calloc(ps->num_request_authns, sizeof(**copies))) == NULL)
        return -ENOMEM;
    if ((ptrs = calloc(ps->num_request_authns, sizeof(*ptrs))) == NULL)
        return -ENOMEM;
    wp->request_authns = ptrs;
    for (size_t i = 0; i < ps->num_request_authns; i++) {
        if (!rm_request_authn_selects(&ps->request_authns[i], root, w))
            continue;
        rm_request_authn_t *c = &(*copies)[wp->num_request_authns];
        *c = ps->request_authns[i];
        if (rm_jwks_resolve(&ps->request_authns[i], &c->rules) != 0) {
            c->rules = NULL, c->num_rules = 0;
            return -ENOMEM;
        }
        ptrs[wp->num_request_authns++] = c;
    }
    return 0;
}

/* The policies selecting the workload, its mTLS modes and the mesh's authorization settings. */
static int build_workload_policy(rm_xds_push_t *push, const rm_mesh_model_t *model, const rm_workload_t *w,
                                 uint64_t seq)
{
    const rm_policy_set_t *ps = &model->policies;
    const rm_mesh_settings_t *s = &model->settings;
    const rm_authz_policy_t **sel = NULL;
    rm_peer_port_mode_t ports[64];
    size_t nsel = 0, nports = 0;
    rm_workload_policy_t wp = {0};
    uint8_t *value = NULL;
    size_t len = 0;
    int ret;

    if ((sel = calloc(ps->num_policies + 1, sizeof(*sel))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < ps->num_policies; i++)
        if (rm_authz_policy_selects(&ps->policies[i], s->root_namespace, w))
            sel[nsel++] = &ps->policies[i];
    wp.opts.default_action = s->default_action;
    wp.opts.log_allowed = (uint8_t)(s->log_allowed != 0);
    wp.opts.log_allowed_sample = s->log_allowed_sample;
    wp.path_normalization = s->path_normalization;
    wp.opts.trust_domain = s->trust_domain;
    wp.opts.trust_domain_aliases = s->trust_domain_aliases;
    wp.opts.num_trust_domain_aliases = s->num_trust_domain_aliases;
    wp.opts.num_trusted_proxies = s->num_trusted_proxies;
    wp.inbound_mode = rm_peer_authn_resolve(ps, s->root_namespace, w, ports, sizeof(ports) / sizeof(ports[0]), &nports);
    wp.port_modes = ports;
    wp.num_port_modes = nports;
    wp.log_attributes = (uint8_t)(s->log_attributes != 0);
    wp.workload_namespace = (char *)w->namespace_;
    rm_request_authn_t *ra_copies = NULL;
    if ((ret = workload_labels(w, &wp)) != 0)
        goto Exit;
    if ((ret = select_request_authns(ps, s->root_namespace, w, &wp, &ra_copies)) == 0 &&
        (ret = rm_workload_policy_encode(sel, nsel, &wp, &value, &len)) == 0)
        ret = encode_push_value(push, RM_XDS_WORKLOAD_POLICY, "policy", value, len, seq);
Exit:
    for (size_t i = 0; i < wp.num_workload_labels; i++)
        free(wp.workload_labels[i]);
    free(wp.workload_labels);
    for (size_t i = 0; ra_copies != NULL && i < wp.num_request_authns; i++)
        rm_jwks_resolved_free(ra_copies[i].rules, ra_copies[i].num_rules);
    free(ra_copies);
    free((void *)wp.request_authns);
    free(sel);
    return ret;
}

/* The WorkloadMap of the node `w` names is keyed by its own workload's content, so replicas share it: the key and
 * the self part are made first (cheap), the peers are appended only when the push is built. */
static int workloads_push_key(rm_xds_push_set_t *set, const rm_xds_workload_t *w, char **key, uint8_t **value,
                              size_t *len)
{
    return rm__xds_workload_self_encode(set->model, w->workload.namespace_, w->node,
                                        w->service_account != NULL ? w->service_account : "default", NULL, 0, key,
                                        value, len);
}

static int workloads_append_peers(rm_xds_push_set_t *set, uint8_t **value, size_t *len)
{
    uint8_t *grown;

    if (set->peers_len == 0)
        return 0;
    if ((grown = realloc(*value, *len + set->peers_len)) == NULL)
        return -ENOMEM;
    memcpy(grown + *len, set->peers, set->peers_len);
    *value = grown;
    *len += set->peers_len;
    return 0;
}

const rm_xds_push_t *rm_xds_push_get(rm_xds_push_set_t *set, int type, const rm_xds_workload_t *w)
{
    const rm_xds_push_t *found = NULL;
    char *key = NULL;
    uint8_t *value = NULL;
    size_t value_len = 0;

    if (type != RM_XDS_WORKLOAD_POLICY && type != RM_XDS_WORKLOADS)
        return &set->types[type];
    if (w == NULL || w->key == NULL)
        return NULL;
    if (type == RM_XDS_WORKLOADS && workloads_push_key(set, w, &key, &value, &value_len) != 0)
        return NULL;
    const char *k = key != NULL ? key : w->key;
    pthread_mutex_lock(&set->workload_lock);
    for (size_t i = 0; i < set->num_workloads && found == NULL; i++)
        if (strcmp(set->workloads[i]->key, k) == 0)
            found = &set->workloads[i]->push;
    if (found == NULL) {
        if (set->num_workloads == set->cap_workloads) {
            size_t cap = set->cap_workloads ? set->cap_workloads * 2 : 16;
            rm_xds_workload_push_t **np = realloc(set->workloads, cap * sizeof(*np));
            if (np == NULL)
                goto Exit;
            set->workloads = np;
            set->cap_workloads = cap;
        }
        /* each entry is its own allocation: pointers to it stay valid while the set lives */
        rm_xds_workload_push_t *e = calloc(1, sizeof(*e));
        if (e == NULL)
            goto Exit;
        int ret;
        if ((e->key = strdup(k)) == NULL)
            ret = -ENOMEM;
        else if (type == RM_XDS_WORKLOADS) {
            if ((ret = workloads_append_peers(set, &value, &value_len)) == 0) {
                ret = encode_push_value(&e->push, RM_XDS_WORKLOADS, "workloads", value, value_len, set->seq);
                value = NULL; /* taken over (freed on failure too) */
            }
        } else
            ret = build_workload_policy(&e->push, set->model, &w->workload, set->seq);
        if (ret != 0) {
            free(e->key);
            free(e->push.response);
            free(e);
            goto Exit;
        }
        set->workloads[set->num_workloads++] = e;
        found = &e->push;
    }
Exit:
    pthread_mutex_unlock(&set->workload_lock);
    free(key);
    free(value);
    return found;
}

int rm_xds_next_push(const rm_xds_stream_state_t *st, rm_xds_push_set_t *set, const rm_xds_workload_t *w,
                     const rm_xds_push_t **push)
{
    if (set == NULL)
        return -1;
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++) {
        const rm_xds_type_state_t *ts = &st->types[t];
        if (!ts->subscribed)
            continue;
        const rm_xds_push_t *p = rm_xds_push_get(set, t, w);
        if (p != NULL && strcmp(ts->sent_version, p->version) != 0) {
            *push = p;
            return t;
        }
    }
    return -1;
}

void rm_xds_mark_sent(rm_xds_stream_state_t *st, int type, const rm_xds_push_t *push)
{
    rm_xds_type_state_t *ts = &st->types[type];

    copy_str(ts->sent_version, sizeof(ts->sent_version), push->version);
    copy_str(ts->sent_nonce, sizeof(ts->sent_nonce), push->nonce);
    ts->awaiting_answer = 1;
}
