/* Snapshot reference counting, derivation and publication (see snapshot.h). */
#include "snapshot.h"
#include "dest_endpoints.h"
#include "proxy.h"
#include "dest_routes.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void rm_snapshot_ref(rm_snapshot_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void rm_snapshot_unref(rm_snapshot_t *s)
{
    /* a derived snapshot holds a reference to its base: dropping the last one of each goes down the chain */
    while (s != NULL && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        rm_snapshot_t *base = s->base;
        rm_tls_ctx_unref(s->client_ctx);
        rm_tls_ctx_unref(s->server_ctx);
        rm_authz_unref(s->authz);
        rm_workload_table_unref(s->workloads);
        if (base != NULL) {
            rm_dest_table_unref(s->dest_table);
            free(s->owned_port_modes);
        } else {
            rm_proxy_config_free(s->cfg);
        }
        free(s);
        s = base;
    }
}

void rm_dest_table_ref(rm_dest_table_t *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void rm_dest_table_unref(rm_dest_table_t *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < t->num; i++)
        for (size_t j = 0; j < t->dests[i].num_identities; j++)
            free(t->dests[i].identities[j]);
    for (size_t i = 0; i < t->num; i++) {
        free(t->dests[i].sni);
        rm_dest_endpoints_free(t->dests[i].endpoints);
    }
    free(t->dests);
    for (size_t i = 0; i < t->num_routes; i++)
        rm_dest_routes_free(t->routes[i]);
    free(t->routes);
    free(t);
}

rm_snapshot_t *rm_snapshot_derive(rm_snapshot_t *base, const rm_snapshot_params_t *params)
{
    rm_snapshot_t *s;

    if ((s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    rm_snapshot_ref(base);
    s->base = base;
    s->derived_cfg = *base->cfg;
    s->cfg = &s->derived_cfg;
    if (params->dests != NULL) {
        rm_dest_table_ref(params->dests);
        s->dest_table = params->dests;
        s->derived_cfg.destinations = params->dests->dests;
        s->derived_cfg.num_destinations = params->dests->num;
    }
    if (params->have_inbound_mode) /* the pushed default; the file's per-port exceptions stay */
        s->derived_cfg.inbound_mode = params->inbound_mode;
    if (params->connect_timeout_ms != 0)
        s->derived_cfg.connect_timeout_ms = params->connect_timeout_ms;
    if (params->idle_timeout_ms != 0)
        s->derived_cfg.idle_timeout_ms = params->idle_timeout_ms;
    /* the access log: the pod's annotation, else the mesh's setting once pushed, else the file's */
    if (params->access_log >= 0) {
        s->derived_cfg.access_log = params->access_log;
        s->derived_cfg.access_log_sample = params->access_log_sample > 0 ? params->access_log_sample : 1;
    }
    if ((s->workloads = params->workloads) != NULL) {
        rm_workload_table_ref(s->workloads);
        rm_workload_access_log_t o = rm_workload_table_access_log(s->workloads);
        if (o != RM_WORKLOAD_ACCESS_LOG_MESH)
            s->derived_cfg.access_log = o == RM_WORKLOAD_ACCESS_LOG_ON;
    }
    if (params->metrics_istio_names != 0)
        s->derived_cfg.metrics_istio_names = params->metrics_istio_names == 2;
    if (params->metrics_max_series != 0)
        s->derived_cfg.metrics_max_series = params->metrics_max_series;
    if (params->metrics_expiry_ms != 0)
        s->derived_cfg.metrics_expiry_ms = params->metrics_expiry_ms;
    if ((s->client_ctx = params->client_ctx) != NULL)
        rm_tls_ctx_ref(s->client_ctx);
    if ((s->server_ctx = params->server_ctx) != NULL)
        rm_tls_ctx_ref(s->server_ctx);
    s->no_tls_reason = params->no_tls_reason;
    if ((s->authz = params->authz) != NULL)
        rm_authz_ref(s->authz);
    s->authz_required = params->authz_required;
    if (params->num_port_modes > 0) {
        /* the pushed per-port modes first (rm_proxy_config_port_mode takes the first match), then the file's */
        size_t n = params->num_port_modes + base->cfg->num_port_modes;
        if ((s->owned_port_modes = calloc(n, sizeof(*s->owned_port_modes))) == NULL) {
            rm_snapshot_unref(s);
            return NULL;
        }
        for (size_t i = 0; i < params->num_port_modes; i++) {
            s->owned_port_modes[i].port = params->port_modes[i].port;
            s->owned_port_modes[i].mode = params->port_modes[i].mode == RM_PEER_MTLS_PERMISSIVE ? RM_MTLS_PERMISSIVE
                                          : params->port_modes[i].mode == RM_PEER_MTLS_DISABLE  ? RM_MTLS_DISABLE
                                                                                                : RM_MTLS_STRICT;
        }
        if (base->cfg->num_port_modes > 0) /* (the file's list is NULL when empty: no memcpy from it) */
            memcpy(s->owned_port_modes + params->num_port_modes, base->cfg->port_modes,
                   base->cfg->num_port_modes * sizeof(*s->owned_port_modes));
        s->derived_cfg.port_modes = s->owned_port_modes;
        s->derived_cfg.num_port_modes = n;
    }
    if (params->versions != NULL)
        memcpy(s->versions, params->versions, sizeof(s->versions));
    return s;
}

rm_snapshot_t *rm_snapshot_acquire(rm_proxy_t *p)
{
    /* Safe without a lock: rm_proxy_publish() keeps the previous snapshot's publication reference until every
     * worker has finished the loop iteration in which it might have loaded the old pointer. */
    rm_snapshot_t *s = atomic_load_explicit(&p->snap, memory_order_acquire);
    rm_snapshot_ref(s);
    return s;
}

rm_snapshot_t *rm_snapshot_current(rm_proxy_t *p)
{
    return atomic_load_explicit(&p->snap, memory_order_acquire);
}

void rm_proxy_publish(rm_proxy_t *p, rm_snapshot_t *snap)
{
    uint_fast64_t *seen;
    rm_snapshot_t *old;

    pthread_mutex_lock(&p->publish_lock);
    old = atomic_exchange_explicit(&p->snap, snap, memory_order_acq_rel);
    if ((seen = calloc(p->num_workers == 0 ? 1 : p->num_workers, sizeof(*seen))) != NULL) {
        for (unsigned i = 0; i < p->num_workers; i++)
            seen[i] = atomic_load(&p->workers[i].epoch);
        /* A loop iteration lasts at most one tick (250 ms); a worker that has exited holds nothing. */
        for (unsigned i = 0; i < p->num_workers; i++)
            while (atomic_load(&p->workers[i].epoch) == seen[i] && !atomic_load(&p->workers[i].exited))
                nanosleep(&(struct timespec){.tv_nsec = 2 * 1000 * 1000}, NULL);
        free(seen);
    } else {
        /* no memory to track epochs: wait out more than two ticks instead */
        nanosleep(&(struct timespec){.tv_nsec = 600 * 1000 * 1000}, NULL);
    }
    pthread_mutex_unlock(&p->publish_lock);
    rm_snapshot_unref(old); /* its publication reference */
}
