/* WorkloadMap encoding (discovery_workloads.h). */
#include "discovery_workloads.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/log.h"
#include "ringmesh/v1/discovery.pb-c.h"

static int principal_of(const rm_mesh_model_t *m, const char *ns, const char *sa, char **out)
{
    size_t n = strlen(m->settings.trust_domain) + strlen(ns) + strlen(sa) + 32;

    if ((*out = malloc(n)) == NULL)
        return -ENOMEM;
    snprintf(*out, n, "spiffe://%s/ns/%s/sa/%s", m->settings.trust_domain, ns, sa);
    return 0;
}

/* `info` points into `w` and `principal`. */
static void info_of(const rm_model_workload_t *w, char *principal, Ringmesh__V1__WorkloadInfo *info)
{
    ringmesh__v1__workload_info__init(info);
    info->name = w->name;
    info->namespace_ = w->namespace_;
    info->app = w->app;
    info->version = w->version;
    info->principal = principal;
    info->addresses = w->addresses;
    info->n_addresses = w->num_addresses;
    info->access_log = (Ringmesh__V1__AccessLogOverride)w->access_log;
}

int rm__xds_workload_peers_encode(const rm_mesh_model_t *m, size_t max_bytes, uint8_t **out, size_t *len)
{
    Ringmesh__V1__WorkloadMap map = RINGMESH__V1__WORKLOAD_MAP__INIT;
    Ringmesh__V1__WorkloadInfo *infos = NULL, **list = NULL;
    char **principals = NULL;
    size_t n = 0, total = 0, left_out = 0;
    int ret = -ENOMEM;

    *out = NULL;
    *len = 0;
    if (m->num_workloads == 0)
        return 0;
    if ((infos = calloc(m->num_workloads, sizeof(*infos))) == NULL ||
        (list = calloc(m->num_workloads, sizeof(*list))) == NULL ||
        (principals = calloc(m->num_workloads, sizeof(*principals))) == NULL)
        goto Exit;
    for (size_t i = 0; i < m->num_workloads; i++) {
        const rm_model_workload_t *w = &m->workloads[i];
        if (w->num_addresses == 0)
            continue; /* nobody can be told apart by an address it does not have */
        if (principal_of(m, w->namespace_, w->service_account, &principals[n]) != 0)
            goto Exit;
        info_of(w, principals[n], &infos[n]);
        /* the bytes this entry adds: its own size, the field's tag and length prefix (at most 1 + 5) */
        size_t entry = ringmesh__v1__workload_info__get_packed_size(&infos[n]) + 6;
        if (total + entry > max_bytes) {
            left_out++;
            free(principals[n]);
            principals[n] = NULL;
            continue;
        }
        total += entry;
        list[n] = &infos[n];
        n++;
    }
    if (left_out > 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "workloads_truncated");
        rm_log_uint(&l, "sent", n);
        rm_log_uint(&l, "leftOut", left_out);
        rm_log_uint(&l, "maxBytes", max_bytes);
        rm_log_str(&l, "outcome", "the proxies do not know the workloads left out: their metric labels say unknown");
        rm_log_end(&l);
    }
    map.peers = list;
    map.n_peers = n;
    if ((*len = ringmesh__v1__workload_map__get_packed_size(&map)) > 0) {
        if ((*out = malloc(*len)) == NULL)
            goto Exit;
        ringmesh__v1__workload_map__pack(&map, *out);
    }
    ret = 0;
Exit:
    if (principals != NULL)
        for (size_t i = 0; i < m->num_workloads; i++)
            free(principals[i]);
    free(principals);
    free(list);
    free(infos);
    if (ret != 0)
        *len = 0;
    return ret;
}

static const rm_model_workload_t *find_pod(const rm_mesh_model_t *m, const char *ns, const char *pod)
{
    size_t lo = 0, hi = m->num_workloads;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const rm_model_workload_t *w = &m->workloads[mid];
        int c = strcmp(ns, w->namespace_);
        if (c == 0)
            c = strcmp(pod, w->pod);
        if (c == 0)
            return w;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int rm__xds_workload_self_encode(const rm_mesh_model_t *m, const char *ns, const char *node, const char *sa,
                                 const uint8_t *peers, size_t peers_len, char **key, uint8_t **value, size_t *len)
{
    Ringmesh__V1__WorkloadMap map = RINGMESH__V1__WORKLOAD_MAP__INIT;
    Ringmesh__V1__WorkloadInfo self;
    const rm_model_workload_t *w = node != NULL ? find_pod(m, ns, node) : NULL;
    char *principal = NULL;
    size_t self_len, key_len;
    int ret = -ENOMEM;

    *key = NULL;
    *value = NULL;
    if (principal_of(m, ns, w != NULL ? w->service_account : sa, &principal) != 0)
        return -ENOMEM;
    if (w != NULL) {
        info_of(w, principal, &self);
        self.addresses = NULL; /* the proxy knows its own; replicas of one workload then share this push */
        self.n_addresses = 0;
    } else {
        ringmesh__v1__workload_info__init(&self);
        self.namespace_ = (char *)ns;
        self.principal = principal;
    }
    map.self = &self;
    self_len = ringmesh__v1__workload_map__get_packed_size(&map);
    if ((*value = malloc(self_len + peers_len + 1)) == NULL)
        goto Exit;
    ringmesh__v1__workload_map__pack(&map, *value);
    if (peers_len > 0)
        memcpy(*value + self_len, peers, peers_len);
    *len = self_len + peers_len;
    /* the key: the self part's bytes, in hex (they hold no NUL-free guarantee) */
    key_len = 2 * self_len + 3;
    if ((*key = malloc(key_len)) == NULL)
        goto Exit;
    memcpy(*key, "W:", 2);
    for (size_t i = 0; i < self_len; i++)
        snprintf(*key + 2 + 2 * i, 3, "%02x", (*value)[i]);
    (*key)[2 + 2 * self_len] = '\0';
    ret = 0;
Exit:
    if (ret != 0) {
        free(*value);
        *value = NULL;
    }
    free(principal);
    return ret;
}
