/* The mesh model: reference counting, canonical order and the content version. */
#include "mesh_model_internal.h"

#include "ringmesh/bytebuf.h"
#include "ringmesh/digest.h"
#include "route_model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rm_mesh_model_t *rm_mesh_model_ref(rm_mesh_model_t *m)
{
    __atomic_add_fetch(&m->refcnt, 1, __ATOMIC_RELAXED);
    return m;
}

void rm__model_service_clear(rm_model_service_t *s)
{
    free(s->namespace_);
    free(s->name);
    for (size_t i = 0; i < s->num_addresses; i++)
        free(s->addresses[i]);
    free(s->addresses);
    for (size_t i = 0; i < s->num_identities; i++)
        free(s->identities[i]);
    free(s->identities);
    free(s->file);
    rm__model_endpoints_free(s->endpoints, s->num_endpoints);
    memset(s, 0, sizeof(*s));
}

void rm__model_workload_clear(rm_model_workload_t *w)
{
    free(w->namespace_);
    free(w->pod);
    free(w->name);
    free(w->app);
    free(w->version);
    free(w->service_account);
    for (size_t i = 0; i < w->num_addresses; i++)
        free(w->addresses[i]);
    free(w->addresses);
    memset(w, 0, sizeof(*w));
}

void rm__mesh_settings_aliases_free(rm_mesh_settings_t *s)
{
    for (size_t i = 0; i < s->num_trust_domain_aliases; i++)
        free(s->trust_domain_aliases[i]);
    free(s->trust_domain_aliases);
    s->trust_domain_aliases = NULL;
    s->num_trust_domain_aliases = 0;
}

static void model_free(rm_mesh_model_t *m)
{
    free(m->version);
    free(m->settings.trust_domain);
    free(m->settings.root_namespace);
    rm__mesh_settings_aliases_free(&m->settings);
    rm_policy_set_clear(&m->policies);
    for (size_t i = 0; i < m->num_services; i++)
        rm__model_service_clear(&m->services[i]);
    free(m->services);
    for (size_t i = 0; i < m->num_workloads; i++)
        rm__model_workload_clear(&m->workloads[i]);
    free(m->workloads);
    rm__model_routes_free(m);
    free(m);
}

void rm_mesh_model_unref(rm_mesh_model_t *m)
{
    if (m == NULL)
        return;
    /* release: this thread's reads of the model happen before the free; acquire: the freeing thread sees them */
    if (__atomic_sub_fetch(&m->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
        model_free(m);
}

rm_mesh_model_t *rm__mesh_model_new(void)
{
    rm_mesh_model_t *m;

    if ((m = calloc(1, sizeof(*m))) == NULL)
        return NULL;
    if ((m->settings.trust_domain = strdup(RM_MODEL_DEFAULT_TRUST_DOMAIN)) == NULL) {
        free(m);
        return NULL;
    }
    if ((m->settings.root_namespace = strdup(RM_MODEL_DEFAULT_ROOT_NAMESPACE)) == NULL) {
        free(m->settings.trust_domain);
        free(m);
        return NULL;
    }
    m->settings.default_action = RM_AUTHZ_DENY;
    m->settings.log_allowed_sample = 1;
    m->settings.inbound_mode = RM_MODEL_MTLS_STRICT;
    m->settings.access_log = 0;
    m->settings.access_log_sample = 1;
    m->settings.svid_ttl = RM_MODEL_DEFAULT_SVID_TTL;
    m->refcnt = 1;
    return m;
}

/* ---------------------------------------------------------------------------------------------------------
 * Canonical order.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_addr_key_t {
    int family; /* AF_INET sorts before AF_INET6 */
    uint8_t bytes[16];
    unsigned port;
} addr_key_t;

/* Reads "ip:port" or "[ip6]:port" (the canonical forms); anything else sorts last, by its text. */
static int addr_key_parse(const char *s, addr_key_t *k)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port;
    size_t n;

    memset(k, 0, sizeof(*k));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (n = (size_t)(close - s - 1)) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, k->bytes) != 1)
            return -1;
        k->family = AF_INET6;
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL || (n = (size_t)(colon - s)) >= sizeof(host))
            return -1;
        memcpy(host, s, n);
        host[n] = '\0';
        if (inet_pton(AF_INET, host, k->bytes) != 1)
            return -1;
        k->family = AF_INET;
        port = colon + 1;
    }
    k->port = (unsigned)strtoul(port, NULL, 10);
    return 0;
}

static int cmp_address(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    addr_key_t ka, kb;
    int pa = addr_key_parse(a, &ka), pb = addr_key_parse(b, &kb), c;

    if (pa != 0 || pb != 0)
        return pa != pb ? (pa != 0) - (pb != 0) : strcmp(a, b);
    if (ka.family != kb.family)
        return ka.family == AF_INET ? -1 : 1;
    if ((c = memcmp(ka.bytes, kb.bytes, sizeof(ka.bytes))) != 0)
        return c;
    return ka.port < kb.port ? -1 : ka.port > kb.port;
}

static int cmp_endpoint(const void *x, const void *y)
{
    const rm_model_endpoint_t *a = x, *b = y;
    int c;
    if (a->port != b->port)
        return a->port < b->port ? -1 : 1;
    if ((c = cmp_address(&a->address, &b->address)) != 0)
        return c;
    return strcmp(a->identity, b->identity);
}

void rm__model_endpoints_sort(rm_model_endpoint_t *e, size_t n)
{
    if (n > 1)
        qsort(e, n, sizeof(*e), cmp_endpoint);
}

void rm__model_endpoints_free(rm_model_endpoint_t *e, size_t n)
{
    for (size_t i = 0; e != NULL && i < n; i++) {
        free(e[i].address);
        free(e[i].identity);
        free(e[i].zone);
    }
    free(e);
}

static int cmp_string(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int cmp_workload(const void *x, const void *y)
{
    const rm_model_workload_t *a = x, *b = y;
    int c = strcmp(a->namespace_, b->namespace_);
    return c != 0 ? c : strcmp(a->pod, b->pod);
}

static int cmp_service(const void *x, const void *y)
{
    const rm_model_service_t *a = x, *b = y;
    int c = strcmp(a->namespace_, b->namespace_);
    return c != 0 ? c : strcmp(a->name, b->name);
}

static int cmp_authz_policy(const void *x, const void *y)
{
    const rm_authz_policy_t *a = x, *b = y;
    int c = strcmp(a->namespace_, b->namespace_);
    return c != 0 ? c : strcmp(a->name, b->name);
}

static int cmp_request_authn(const void *x, const void *y)
{
    const rm_request_authn_t *a = x, *b = y;
    int c = strcmp(a->namespace_, b->namespace_);
    return c != 0 ? c : strcmp(a->name, b->name);
}

static int cmp_peer_authn(const void *x, const void *y)
{
    const rm_peer_authn_t *a = x, *b = y;
    int c = strcmp(a->namespace_, b->namespace_);
    return c != 0 ? c : strcmp(a->name, b->name);
}

/* ---------------------------------------------------------------------------------------------------------
 * Canonical serialization and version.
 * ------------------------------------------------------------------------------------------------------- */

/* The serialization is appended to an rm_bytebuf_t without checking each step: its failure flag sticks, and
 * rm__mesh_model_serialize() checks it once at the end. */

/* "<tag>=<length>:<bytes>\n": the length makes every string unambiguous whatever bytes it holds. */
static void ser_str(rm_bytebuf_t *b, const char *tag, const char *s)
{
    char head[64];
    size_t n = s != NULL ? strlen(s) : 0;
    int h = snprintf(head, sizeof(head), "%s=%zu:", tag, n);
    rm_bytebuf_append(b, head, (size_t)h);
    rm_bytebuf_append(b, s, n);
    rm_bytebuf_append(b, "\n", 1);
}

static void ser_int(rm_bytebuf_t *b, const char *tag, int64_t v)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), "%s=%" PRId64 "\n", tag, v);
    rm_bytebuf_append(b, tmp, (size_t)n);
}

static void ser_list(rm_bytebuf_t *b, const char *tag, const rm_strlist_t *l)
{
    ser_int(b, tag, (int64_t)l->n);
    for (size_t i = 0; i < l->n; i++)
        ser_str(b, "v", l->v[i]);
}

/* A list added to the API later: absent when empty, so the versions of meshes that do not use it stay as they were */
static void ser_list_opt(rm_bytebuf_t *b, const char *tag, const rm_strlist_t *l)
{
    if (l->n > 0)
        ser_list(b, tag, l);
}

static void ser_selector(rm_bytebuf_t *b, int has_selector, const rm_label_t *labels, size_t num)
{
    ser_int(b, "hasSelector", has_selector);
    ser_int(b, "matchLabels", (int64_t)num);
    for (size_t k = 0; k < num; k++) {
        ser_str(b, "key", labels[k].key);
        ser_str(b, "value", labels[k].value);
    }
}

/* Only when there are some, so that the versions of configurations without any stay what they were. */
static void ser_request_authns(rm_bytebuf_t *b, const rm_policy_set_t *set)
{
    if (set->num_request_authns == 0)
        return;
    ser_int(b, "requestAuthentications", (int64_t)set->num_request_authns);
    for (size_t i = 0; i < set->num_request_authns; i++) {
        const rm_request_authn_t *p = &set->request_authns[i];
        ser_str(b, "namespace", p->namespace_);
        ser_str(b, "name", p->name);
        ser_selector(b, p->has_selector, p->match_labels, p->num_match_labels);
        ser_int(b, "jwtRules", (int64_t)p->num_rules);
        for (size_t k = 0; k < p->num_rules; k++) {
            const rm_jwt_rule_t *r = &p->rules[k];
            ser_str(b, "issuer", r->issuer);
            ser_list(b, "audiences", &r->audiences);
            ser_str(b, "jwks", r->jwks != NULL ? r->jwks : "");
            ser_str(b, "jwksUri", r->jwks_uri != NULL ? r->jwks_uri : "");
            ser_int(b, "fromHeaders", (int64_t)r->num_from_headers);
            for (size_t h = 0; h < r->num_from_headers; h++) {
                ser_str(b, "name", r->from_headers[h].name);
                ser_str(b, "prefix", r->from_headers[h].prefix);
            }
            ser_list(b, "fromParams", &r->from_params), ser_list(b, "fromCookies", &r->from_cookies);
            ser_int(b, "forwardOriginalToken", r->forward_original_token);
            ser_str(b, "outputPayloadToHeader", r->output_payload_to_header != NULL ? r->output_payload_to_header : "");
            ser_int(b, "outputClaimToHeaders", (int64_t)r->num_output_claim_to_headers);
            for (size_t h = 0; h < r->num_output_claim_to_headers; h++) {
                ser_str(b, "header", r->output_claim_to_headers[h].header);
                ser_str(b, "claim", r->output_claim_to_headers[h].claim);
            }
            ser_int(b, "timeoutMs", r->timeout_ms);
            ser_list(b, "spaceDelimitedClaims", &r->space_delimited_claims);
        }
    }
}

/* Every field of every policy (where it was read excepted). */
static void ser_policies(rm_bytebuf_t *b, const rm_policy_set_t *set)
{
    ser_int(b, "authorizationPolicies", (int64_t)set->num_policies);
    for (size_t i = 0; i < set->num_policies; i++) {
        const rm_authz_policy_t *p = &set->policies[i];
        ser_str(b, "namespace", p->namespace_);
        ser_str(b, "name", p->name);
        ser_selector(b, p->has_selector, p->match_labels, p->num_match_labels);
        ser_int(b, "action", p->action);
        ser_int(b, "dryRun", p->dry_run);
        ser_int(b, "logAllowed", p->log_allowed);
        ser_int(b, "rules", (int64_t)p->num_rules);
        for (size_t r = 0; r < p->num_rules; r++) {
            const rm_authz_rule_t *ru = &p->rules[r];
            ser_int(b, "from", (int64_t)ru->num_from);
            for (size_t k = 0; k < ru->num_from; k++) {
                const rm_authz_source_t *s = &ru->from[k];
                ser_list(b, "principals", &s->principals), ser_list(b, "notPrincipals", &s->not_principals);
                ser_list(b, "namespaces", &s->namespaces), ser_list(b, "notNamespaces", &s->not_namespaces);
                ser_list(b, "ipBlocks", &s->ip_blocks), ser_list(b, "notIpBlocks", &s->not_ip_blocks);
                ser_list_opt(b, "serviceAccounts", &s->service_accounts);
                ser_list_opt(b, "notServiceAccounts", &s->not_service_accounts);
                ser_list_opt(b, "trustDomains", &s->trust_domains);
                ser_list_opt(b, "notTrustDomains", &s->not_trust_domains);
                ser_list_opt(b, "remoteIpBlocks", &s->remote_ip_blocks);
                ser_list_opt(b, "notRemoteIpBlocks", &s->not_remote_ip_blocks);
                if (s->request_principals.n + s->not_request_principals.n > 0) { /* older versions stay */
                    ser_list(b, "requestPrincipals", &s->request_principals);
                    ser_list(b, "notRequestPrincipals", &s->not_request_principals);
                }
            }
            ser_int(b, "to", (int64_t)ru->num_to);
            for (size_t k = 0; k < ru->num_to; k++) {
                const rm_authz_operation_t *o = &ru->to[k];
                ser_list(b, "hosts", &o->hosts), ser_list(b, "notHosts", &o->not_hosts);
                ser_list(b, "ports", &o->ports), ser_list(b, "notPorts", &o->not_ports);
                ser_list(b, "methods", &o->methods), ser_list(b, "notMethods", &o->not_methods);
                ser_list(b, "paths", &o->paths), ser_list(b, "notPaths", &o->not_paths);
            }
            ser_int(b, "when", (int64_t)ru->num_when);
            for (size_t k = 0; k < ru->num_when; k++) {
                ser_str(b, "key", ru->when[k].key);
                ser_list(b, "values", &ru->when[k].values), ser_list(b, "notValues", &ru->when[k].not_values);
            }
        }
    }
    ser_int(b, "peerAuthentications", (int64_t)set->num_peer_authns);
    for (size_t i = 0; i < set->num_peer_authns; i++) {
        const rm_peer_authn_t *p = &set->peer_authns[i];
        ser_str(b, "namespace", p->namespace_);
        ser_str(b, "name", p->name);
        ser_selector(b, p->has_selector, p->match_labels, p->num_match_labels);
        ser_int(b, "mode", p->mode);
        ser_int(b, "portModes", (int64_t)p->num_port_modes);
        for (size_t k = 0; k < p->num_port_modes; k++) {
            ser_int(b, "port", p->port_modes[k].port);
            ser_int(b, "mode", p->port_modes[k].mode);
        }
    }
    ser_request_authns(b, set);
}

int rm__mesh_model_serialize(const rm_mesh_model_t *m, char **out, size_t *out_len)
{
    rm_bytebuf_t b = {0};
    const rm_mesh_settings_t *s = &m->settings;

    ser_str(&b, "format", "ringmesh.mesh_model.v1");
    ser_str(&b, "trustDomain", s->trust_domain);
    ser_int(&b, "mtlsMode", (int64_t)s->inbound_mode);
    ser_int(&b, "connectTimeoutMs", s->connect_timeout_ms);
    ser_int(&b, "idleTimeoutMs", s->idle_timeout_ms);
    ser_int(&b, "accessLog", s->access_log ? 1 : 0);
    if (s->access_log_sample != 1) /* absent when default, as pathNormalization */
        ser_int(&b, "accessLogSamplePpm", (int64_t)(s->access_log_sample * 1e6));
    ser_int(&b, "svidTTL", s->svid_ttl);
    ser_str(&b, "rootNamespace", s->root_namespace);
    ser_int(&b, "defaultAction", (int64_t)s->default_action);
    ser_int(&b, "logAllowed", s->log_allowed ? 1 : 0);
    ser_int(&b, "logAllowedSamplePpm", (int64_t)(s->log_allowed_sample * 1e6));
    if (s->log_attributes) /* absent when default: versions stay as they were */
        ser_int(&b, "logAttributes", 1);
    if (s->metrics_istio_names) /* the metrics settings are absent when default: versions stay as they were */
        ser_int(&b, "metricsIstioNames", 1);
    if (s->metrics_max_series != 0)
        ser_int(&b, "metricsMaxSeries", s->metrics_max_series);
    if (s->metrics_expiry_ms != 0)
        ser_int(&b, "metricsSeriesExpiryMs", s->metrics_expiry_ms);
    if (s->path_normalization != RM_PATH_NORMALIZATION_BASE) /* absent when default: versions stay as they were */
        ser_int(&b, "pathNormalization", (int64_t)s->path_normalization);
    if (s->num_trusted_proxies != 0) /* absent when default: versions stay as they were */
        ser_int(&b, "numTrustedProxies", s->num_trusted_proxies);
    if (s->num_trust_domain_aliases > 0) { /* absent when none, so a mesh without aliases keeps its version */
        ser_int(&b, "trustDomainAliases", (int64_t)s->num_trust_domain_aliases);
        for (size_t i = 0; i < s->num_trust_domain_aliases; i++)
            ser_str(&b, "alias", s->trust_domain_aliases[i]);
    }
    ser_policies(&b, &m->policies);
    ser_int(&b, "services", (int64_t)m->num_services);
    for (size_t i = 0; i < m->num_services; i++) {
        const rm_model_service_t *svc = &m->services[i];
        ser_str(&b, "namespace", svc->namespace_);
        ser_str(&b, "name", svc->name);
        ser_int(&b, "inMesh", svc->in_mesh ? 1 : 0);
        ser_int(&b, "addresses", (int64_t)svc->num_addresses);
        for (size_t j = 0; j < svc->num_addresses; j++)
            ser_str(&b, "address", svc->addresses[j]);
        ser_int(&b, "identities", (int64_t)svc->num_identities);
        for (size_t j = 0; j < svc->num_identities; j++)
            ser_str(&b, "identity", svc->identities[j]);
        if (svc->num_endpoints > 0) /* absent when none, so a service without endpoints keeps its version */
            ser_int(&b, "endpoints", (int64_t)svc->num_endpoints);
        for (size_t j = 0; j < svc->num_endpoints; j++) {
            const rm_model_endpoint_t *e = &svc->endpoints[j];
            ser_int(&b, "port", e->port);
            ser_str(&b, "address", e->address);
            ser_str(&b, "identity", e->identity);
            ser_str(&b, "zone", e->zone);
            ser_int(&b, "conditions", (e->ready ? 1 : 0) | (e->serving ? 2 : 0) | (e->terminating ? 4 : 0));
        }
    }
    if (m->num_workloads > 0) { /* absent when none (the file source), so its versions stay as they were */
        ser_int(&b, "workloads", (int64_t)m->num_workloads);
        for (size_t i = 0; i < m->num_workloads; i++) {
            const rm_model_workload_t *w = &m->workloads[i];
            ser_str(&b, "namespace", w->namespace_);
            ser_str(&b, "pod", w->pod);
            ser_str(&b, "name", w->name);
            ser_str(&b, "app", w->app);
            ser_str(&b, "version", w->version);
            ser_str(&b, "serviceAccount", w->service_account);
            ser_int(&b, "accessLog", (int64_t)w->access_log);
            ser_int(&b, "addresses", (int64_t)w->num_addresses);
            for (size_t j = 0; j < w->num_addresses; j++)
                ser_str(&b, "address", w->addresses[j]);
        }
    }
    rm__model_routes_serialize(&b, m);
    if (b.failed) {
        rm_bytebuf_free(&b);
        return -ENOMEM;
    }
    *out_len = b.len;
    *out = (char *)rm_bytebuf_release(&b);
    return 0;
}

int rm__mesh_model_seal(rm_mesh_model_t *m)
{
    uint8_t digest[RM_SHA256_LEN];
    char hex[2 * RM_SHA256_LEN + 1], *ser = NULL, *version;
    size_t ser_len = 0;
    int ret;

    for (size_t i = 0; i < m->num_services; i++) {
        rm_model_service_t *svc = &m->services[i];
        if (svc->num_addresses > 1)
            qsort(svc->addresses, svc->num_addresses, sizeof(svc->addresses[0]), cmp_address);
        if (svc->num_identities > 1)
            qsort(svc->identities, svc->num_identities, sizeof(svc->identities[0]), cmp_string);
        rm__model_endpoints_sort(svc->endpoints, svc->num_endpoints);
    }
    if (m->num_services > 1)
        qsort(m->services, m->num_services, sizeof(m->services[0]), cmp_service);
    if (m->num_workloads > 1)
        qsort(m->workloads, m->num_workloads, sizeof(m->workloads[0]), cmp_workload);
    if (m->policies.num_policies > 1)
        qsort(m->policies.policies, m->policies.num_policies, sizeof(m->policies.policies[0]), cmp_authz_policy);
    if (m->policies.num_request_authns > 1)
        qsort(m->policies.request_authns, m->policies.num_request_authns, sizeof(m->policies.request_authns[0]),
              cmp_request_authn);
    if (m->policies.num_peer_authns > 1)
        qsort(m->policies.peer_authns, m->policies.num_peer_authns, sizeof(m->policies.peer_authns[0]), cmp_peer_authn);

    if ((ret = rm__mesh_model_serialize(m, &ser, &ser_len)) != 0)
        return ret;
    rm_sha256(ser, ser_len, digest);
    free(ser);
    rm_hex_encode(digest, sizeof(digest), hex);
    if ((version = strndup(hex, RM_MODEL_VERSION_LEN)) == NULL)
        return -ENOMEM;
    free(m->version);
    m->version = version;
    return 0;
}
