/* Resources the control plane pushes, checked before they are taken: a TrustBundle for this trust domain that still
 * verifies the SVID held, a WorkloadPolicy that compiles, a DestinationMap, MeshSettings. */
#include "control_client_internal.h"
#include "conn_addr.h"
#include "dest_endpoints.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"

#include "dest_routes.h"

int rm__control_parse_destinations(const uint8_t *value, size_t len, const char *trust_domain, rm_dest_table_t **out,
                                   char *err, size_t errlen)
{
    Ringmesh__V1__DestinationMap *map;
    rm_dest_table_t *t;
    size_t n = 0, k = 0;
    int ret = -EINVAL;

    if ((map = ringmesh__v1__destination_map__unpack(NULL, len, value)) == NULL) {
        snprintf(err, errlen, "DestinationMap does not decode");
        return -EINVAL;
    }
    for (size_t i = 0; i < map->n_destinations; i++)
        if (map->destinations[i]->in_mesh)
            n += map->destinations[i]->n_addresses;
    if ((t = calloc(1, sizeof(*t))) == NULL || (n > 0 && (t->dests = calloc(n, sizeof(*t->dests))) == NULL)) {
        free(t);
        ringmesh__v1__destination_map__free_unpacked(map, NULL);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    atomic_init(&t->refs, 1);
    if (map->n_destinations > 0 && (t->routes = calloc(map->n_destinations, sizeof(*t->routes))) == NULL) {
        snprintf(err, errlen, "out of memory");
        ret = -ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < map->n_destinations; i++) {
        const Ringmesh__V1__Destination *d = map->destinations[i];
        const char *name = d->name != NULL ? d->name : "";
        rm_dest_routes_t *routes = NULL;
        if (!d->in_mesh)
            continue; /* not in the mesh: pass-through, which is what an unknown address gets */
        if ((ret = rm_dest_routes_parse(d, &routes, err, errlen)) != 0)
            goto Exit;
        if (routes != NULL)
            t->routes[t->num_routes++] = routes;
        ret = -EINVAL;
        if (d->n_identities == 0 || d->n_identities > RM_MAX_IDENTITIES) {
            snprintf(err, errlen, "destination %s: in the mesh with %zu identities (1 to %d allowed)", name,
                     d->n_identities, RM_MAX_IDENTITIES);
            goto Exit;
        }
        for (size_t j = 0; j < d->n_identities; j++) {
            rm_spiffe_id_t id;
            const char *s = d->identities[j];
            int rc = rm_spiffe_workload_id_parse(s, strlen(s), &id);
            if (rc == RM_ERR_SVID_NO_PATH) {
                snprintf(err, errlen, "destination %s: identity \"%.300s\": %s", name, s, rm_strerror(rc));
                goto Exit;
            }
            if (rc != 0 || id.td_len != strlen(trust_domain) || memcmp(id.str + 9, trust_domain, id.td_len) != 0) {
                snprintf(err, errlen, "destination %s: identity \"%.300s\" is not a SPIFFE ID in trust domain %s", name,
                         s, trust_domain);
                goto Exit;
            }
        }
        for (size_t a = 0; a < d->n_addresses; a++) {
            rm_destination_t *dst = &t->dests[k];
            dst->routes = routes;
            if (rm_sockaddr_parse(d->addresses[a], &dst->addr) != 0 || strchr(d->addresses[a], ':') == NULL) {
                snprintf(err, errlen, "destination %s: address \"%.100s\" is not ip:port", name, d->addresses[a]);
                goto Exit;
            }
            k++;
            t->num = k;
            /* the server name Istio's sidecars send, so that connection.sni rules written for Istio work */
            const char *slash = strchr(name, '/');
            if (slash != NULL && slash > name && slash[1] != '\0') {
                char sni[256];
                int sl = snprintf(sni, sizeof(sni), "outbound_.%u_._.%s.%.*s.svc.cluster.local",
                                  (unsigned)ntohs(dst->addr.ss.ss_family == AF_INET6
                                                      ? ((const struct sockaddr_in6 *)&dst->addr.ss)->sin6_port
                                                      : ((const struct sockaddr_in *)&dst->addr.ss)->sin_port),
                                  slash + 1, (int)(slash - name), name);
                if (sl > 0 && (size_t)sl < sizeof(sni) && (dst->sni = strdup(sni)) == NULL) {
                    snprintf(err, errlen, "out of memory");
                    ret = -ENOMEM;
                    goto Exit;
                }
            }
            if ((ret = rm_dest_endpoints_parse(d, rm_sockaddr_port(&dst->addr.ss), dst->addr.ss.ss_family, trust_domain,
                                               &dst->endpoints, err, errlen)) != 0)
                goto Exit;
            ret = -EINVAL;
            for (size_t j = 0; j < d->n_identities; j++) {
                if ((dst->identities[j] = strdup(d->identities[j])) == NULL) {
                    snprintf(err, errlen, "out of memory");
                    ret = -ENOMEM;
                    goto Exit;
                }
                dst->num_identities = j + 1;
            }
        }
    }
    *out = t;
    t = NULL;
    ret = 0;
Exit:
    rm_dest_table_unref(t);
    ringmesh__v1__destination_map__free_unpacked(map, NULL);
    return ret;
}

static rm_mtls_mode_t mode_of(Ringmesh__V1__MtlsMode m)
{
    switch (m) {
    case RINGMESH__V1__MTLS_MODE__PERMISSIVE:
        return RM_MTLS_PERMISSIVE;
    case RINGMESH__V1__MTLS_MODE__DISABLE:
        return RM_MTLS_DISABLE;
    default:
        return RM_MTLS_STRICT;
    }
}

/* The same checks whether the resource was just pushed or restored from the state directory. */
int rm__control_apply_resource(rm_control_client_t *cc, int type, const Ringmesh__V1__Resource *res, char *err,
                               size_t errlen)
{
    const uint8_t *v = res->value.data;
    size_t len = res->value.len;
    int ret = 0;

    switch (type) {
    case RM_XDS_TRUST_BUNDLE: {
        Ringmesh__V1__TrustBundle *tb = ringmesh__v1__trust_bundle__unpack(NULL, len, v);
        char *joined = NULL;
        size_t jlen = 0;
        if (tb == NULL) {
            snprintf(err, errlen, "TrustBundle does not decode");
            return -EINVAL;
        }
        if (tb->trust_domain == NULL || strcmp(tb->trust_domain, cc->cfg->trust_domain) != 0 || tb->n_roots_pem == 0) {
            snprintf(err, errlen,
                     "TrustBundle for trust domain \"%s\" with %zu roots: this proxy is in %s and needs "
                     "at least one root",
                     tb->trust_domain != NULL ? tb->trust_domain : "", tb->n_roots_pem, cc->cfg->trust_domain);
            ringmesh__v1__trust_bundle__free_unpacked(tb, NULL);
            return -EINVAL;
        }
        for (size_t i = 0; i < tb->n_roots_pem; i++)
            jlen += strlen(tb->roots_pem[i]) + 1;
        if ((joined = malloc(jlen + 1)) == NULL) {
            ringmesh__v1__trust_bundle__free_unpacked(tb, NULL);
            return -ENOMEM;
        }
        joined[0] = '\0';
        for (size_t i = 0, o = 0; i < tb->n_roots_pem; i++)
            o += (size_t)sprintf(joined + o, "%s\n", tb->roots_pem[i]);
        ringmesh__v1__trust_bundle__free_unpacked(tb, NULL);
        rm_trust_bundle_t *check;
        if (rm_trust_bundle_load_pem(&check, joined, strlen(joined)) != 0) {
            snprintf(err, errlen, "TrustBundle holds a root that does not parse");
            free(joined);
            return -EINVAL;
        }
        rm_trust_bundle_free(check);
        if (cc->cert_pem != NULL) {
            char why[256];
            /* The new bundle must still verify our own SVID, or every peer would refuse us. */
            if (rm__control_rebuild_tls(cc, joined, strlen(joined), why, sizeof(why)) != 0) {
                snprintf(err, errlen, "TrustBundle refused: %s", why);
                free(joined);
                return -EINVAL;
            }
        }
        free(cc->bundle_pem);
        cc->bundle_pem = joined;
        cc->bundle_len = strlen(joined);
        return 0;
    }
    case RM_XDS_WORKLOAD_POLICY: {
        rm_authz_t *a;
        char workload[512];
        snprintf(workload, sizeof(workload), "%s/%s", cc->node_ns, cc->node_id);
        if ((ret = rm_authz_new(v, len, workload, res->version, &a, err, errlen)) != 0)
            return ret;
        rm_authz_inherit_counters(a, cc->authz);
        rm_authz_unref(cc->authz);
        cc->authz = a;
        return 0;
    }
    case RM_XDS_WORKLOADS: {
        rm_workload_table_t *t;
        if ((ret = rm_workload_table_parse(v, len, &t, err, errlen)) != 0)
            return ret;
        rm_workload_table_unref(cc->workloads);
        cc->workloads = t;
        return 0;
    }
    case RM_XDS_DESTINATIONS: {
        rm_dest_table_t *t;
        if ((ret = rm__control_parse_destinations(v, len, cc->cfg->trust_domain, &t, err, errlen)) != 0)
            return ret;
        rm_dest_table_unref(cc->dests);
        cc->dests = t;
        return 0;
    }
    case RM_XDS_MESH_SETTINGS: {
        Ringmesh__V1__MeshSettings *ms = ringmesh__v1__mesh_settings__unpack(NULL, len, v);
        if (ms == NULL) {
            snprintf(err, errlen, "MeshSettings does not decode");
            return -EINVAL;
        }
        if (ms->trust_domain == NULL || strcmp(ms->trust_domain, cc->cfg->trust_domain) != 0) {
            snprintf(err, errlen, "MeshSettings for trust domain \"%s\": this proxy is in %s",
                     ms->trust_domain != NULL ? ms->trust_domain : "", cc->cfg->trust_domain);
            ringmesh__v1__mesh_settings__free_unpacked(ms, NULL);
            return -EINVAL;
        }
        if (!(ms->access_log_sample_rate >= 0 && ms->access_log_sample_rate <= 1)) {
            snprintf(err, errlen, "MeshSettings: access log sample rate %g is not in [0, 1]",
                     ms->access_log_sample_rate);
            ringmesh__v1__mesh_settings__free_unpacked(ms, NULL);
            return -EINVAL;
        }
        if (ms->inbound_mode > RINGMESH__V1__MTLS_MODE__DISABLE) {
            snprintf(err, errlen, "MeshSettings: unknown mTLS mode %d", (int)ms->inbound_mode);
            ringmesh__v1__mesh_settings__free_unpacked(ms, NULL);
            return -EINVAL;
        }
        cc->have_inbound_mode = ms->inbound_mode != RINGMESH__V1__MTLS_MODE__MTLS_MODE_UNSPECIFIED;
        cc->inbound_mode = mode_of(ms->inbound_mode);
        cc->connect_timeout_ms = ms->connect_timeout_ms;
        cc->idle_timeout_ms = ms->idle_timeout_ms;
        cc->access_log = ms->access_log;
        cc->access_log_sample = ms->access_log_sample_rate;
        cc->metrics_istio_names = ms->metrics_istio_names ? 2 : 1;
        cc->metrics_max_series = ms->metrics_max_series_per_metric;
        cc->metrics_expiry_ms = ms->metrics_series_expiry_ms;
        cc->have_mesh = 1;
        ringmesh__v1__mesh_settings__free_unpacked(ms, NULL);
        return 0;
    }
    }
    snprintf(err, errlen, "unknown resource type");
    return -EINVAL;
}
