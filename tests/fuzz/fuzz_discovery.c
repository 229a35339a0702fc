/* The proxy's handling of what the control plane pushes on Discovery.Stream (proto/ringmesh/v1/discovery.proto).
 *
 * Every input is decoded as each message the proxy reads: a DiscoveryResponse (a push; when it is of one of our
 * types with exactly one resource, that resource goes on to its own decoder, as the proxy does), a DestinationMap
 * through rm__control_parse_destinations(), a TrustBundle (whose roots are then loaded as the proxy loads them)
 * and a MeshSettings.
 *
 * Checked: rm__control_parse_destinations() returns 0, -EINVAL or -ENOMEM; a failure leaves *out alone and gives
 * a reason; a table holds one entry per address of the in-mesh destinations, each a parsed address with 1 to 16
 * identities that are SPIFFE IDs of the proxy's trust domain, and looking an entry's address up finds an entry
 * of that address. A message that decodes encodes again to the size it announces. */
/* rm-fuzz-link: ringmesh_proxy_core */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <netinet/in.h>

#include "control_client.h"
#include "fuzz.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/v1/discovery.pb-c.h"
#include "ringmesh/xds.h"
#include "workload_meta.h"

#define TRUST_DOMAIN "cluster.local"
#define ERR_LEN      512

static int sockaddr_ok(const rm_sockaddr_t *a)
{
    if (a->ss.ss_family == AF_INET)
        return a->len == sizeof(struct sockaddr_in);
    if (a->ss.ss_family == AF_INET6)
        return a->len == sizeof(struct sockaddr_in6);
    return 0;
}

/* Encodes `m` into a buffer of exactly the size it announces. (Decoding that encoding again is not checked:
 * libprotobuf-c accepts field number 0 spelled as an overlong varint, keeps it as an unknown field and writes it
 * back in the short form, which it refuses.) */
static void check_encode(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len != 0 ? len : 1);

    RM_FUZZ_CHECK(buf != NULL);
    RM_FUZZ_CHECK(protobuf_c_message_pack(m, buf) == len);
    free(buf);
}

/* The number of table entries a decodable DestinationMap gives: one per address of an in-mesh destination. */
static size_t in_mesh_addresses(const uint8_t *data, size_t size)
{
    Ringmesh__V1__DestinationMap *map = ringmesh__v1__destination_map__unpack(NULL, size, data);
    size_t n = 0;

    RM_FUZZ_CHECK(map != NULL);
    for (size_t i = 0; i != map->n_destinations; ++i)
        if (map->destinations[i]->in_mesh)
            n += map->destinations[i]->n_addresses;
    ringmesh__v1__destination_map__free_unpacked(map, NULL);
    return n;
}

static void fuzz_destinations(const uint8_t *data, size_t size)
{
    static rm_dest_table_t sentinel; /* what *out holds before the call: a failure must leave it */
    rm_dest_table_t *t = &sentinel;
    rm_spiffe_id_t *id = malloc(sizeof(*id));
    char *err = malloc(ERR_LEN);
    int ret;

    RM_FUZZ_CHECK(id != NULL && err != NULL);
    memset(err, 'x', ERR_LEN); /* the parser must terminate the message itself */
    ret = rm__control_parse_destinations(data, size, TRUST_DOMAIN, &t, err, ERR_LEN);
    RM_FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
    if (ret != 0) {
        RM_FUZZ_CHECK(t == &sentinel);
        RM_FUZZ_CHECK(memchr(err, '\0', ERR_LEN) != NULL && err[0] != '\0');
        goto Exit;
    }
    RM_FUZZ_CHECK(t != NULL && t != &sentinel);
    RM_FUZZ_CHECK(atomic_load(&t->refs) == 1);
    RM_FUZZ_CHECK(t->num == in_mesh_addresses(data, size));
    RM_FUZZ_CHECK(t->num == 0 || t->dests != NULL);

    rm_proxy_config_t cfg = {.destinations = t->dests, .num_destinations = t->num};
    for (size_t i = 0; i != t->num; ++i) {
        const rm_destination_t *d = &t->dests[i], *found;
        RM_FUZZ_CHECK(sockaddr_ok(&d->addr));
        RM_FUZZ_CHECK(d->num_identities >= 1 && d->num_identities <= RM_MAX_IDENTITIES);
        for (size_t j = 0; j != d->num_identities; ++j) {
            RM_FUZZ_CHECK(rm_spiffe_id_parse(d->identities[j], strlen(d->identities[j]), id) == 0);
            RM_FUZZ_CHECK(id->td_len == strlen(TRUST_DOMAIN) && memcmp(id->str + 9, TRUST_DOMAIN, id->td_len) == 0);
        }
        /* addresses may repeat across destinations: the lookup finds the first entry of that address */
        found = rm_proxy_config_find_destination(&cfg, (const struct sockaddr *)&d->addr.ss);
        RM_FUZZ_CHECK(found != NULL && found->addr.len == d->addr.len &&
                      memcmp(&found->addr.ss, &d->addr.ss, d->addr.len) == 0);
    }
    rm_dest_table_unref(t);

Exit:
    free(err);
    free(id);
}

static void fuzz_trust_bundle(const uint8_t *data, size_t size)
{
    Ringmesh__V1__TrustBundle *tb = ringmesh__v1__trust_bundle__unpack(NULL, size, data);
    rm_trust_bundle_t *bundle = NULL;
    size_t len = 0, o = 0;
    char *joined;
    int ret;

    if (tb == NULL)
        return;
    check_encode(&tb->base);
    RM_FUZZ_CHECK(tb->trust_domain != NULL && (tb->n_roots_pem == 0 || tb->roots_pem != NULL));
    /* the roots as the proxy loads them: each followed by a line break, in one buffer */
    for (size_t i = 0; i != tb->n_roots_pem; ++i)
        len += strlen(tb->roots_pem[i]) + 1;
    joined = malloc(len + 1);
    RM_FUZZ_CHECK(joined != NULL);
    for (size_t i = 0; i != tb->n_roots_pem; ++i) {
        size_t n = strlen(tb->roots_pem[i]);
        memcpy(joined + o, tb->roots_pem[i], n);
        joined[o + n] = '\n';
        o += n + 1;
    }
    joined[o] = '\0';
    ret = rm_trust_bundle_load_pem(&bundle, joined, o);
    RM_FUZZ_CHECK(ret == 0 || ret == RM_ERR_SVID_PARSE || ret == RM_ERR_SVID_CA_NOT_CA || ret == -ENOMEM);
    RM_FUZZ_CHECK((ret == 0) == (bundle != NULL));
    rm_trust_bundle_free(bundle);
    free(joined);
    ringmesh__v1__trust_bundle__free_unpacked(tb, NULL);
}

static void fuzz_mesh_settings(const uint8_t *data, size_t size)
{
    Ringmesh__V1__MeshSettings *ms = ringmesh__v1__mesh_settings__unpack(NULL, size, data);

    if (ms == NULL)
        return;
    check_encode(&ms->base);
    RM_FUZZ_CHECK(ms->trust_domain != NULL && (ms->n_port_modes == 0 || ms->port_modes != NULL));
    for (size_t i = 0; i != ms->n_port_modes; ++i)
        RM_FUZZ_CHECK(ms->port_modes[i] != NULL);
    ringmesh__v1__mesh_settings__free_unpacked(ms, NULL);
}

/* A WorkloadMap: parsed into the address table or refused with a reason; every string of a parsed one is set, and
 * lookups of its own addresses find a workload. */
static void fuzz_workloads(const uint8_t *data, size_t size)
{
    rm_workload_table_t *t;
    char err[512] = "";

    if (rm_workload_table_parse(data, size, &t, err, sizeof(err)) != 0) {
        RM_FUZZ_CHECK(err[0] != '\0');
        return;
    }
    const rm_workload_meta_t *self = rm_workload_table_self(t);
    RM_FUZZ_CHECK(self->name != NULL && self->namespace != NULL && self->app != NULL && self->version != NULL &&
                  self->principal != NULL);
    for (size_t i = 0; i < rm_workload_table_num_peers(t); i++) {
        char *const *addrs;
        size_t n;
        const rm_workload_meta_t *m = rm_workload_table_peer_at(t, i, &addrs, &n);
        RM_FUZZ_CHECK(m->name != NULL && m->principal != NULL);
        for (size_t a = 0; a < n; a++) {
            rm_sockaddr_t sa;
            char text[80];
            snprintf(text, sizeof(text), strchr(addrs[a], ':') != NULL ? "[%s]:1" : "%s:1", addrs[a]);
            RM_FUZZ_CHECK(rm_sockaddr_parse(text, &sa) == 0 && rm_workload_table_find(t, &sa) != NULL);
        }
        (void)rm_workload_table_find_principal(t, m->principal);
    }
    rm_workload_table_unref(t);
}

static void fuzz_response(const uint8_t *data, size_t size)
{
    Ringmesh__V1__DiscoveryResponse *resp = ringmesh__v1__discovery_response__unpack(NULL, size, data);
    const Ringmesh__V1__Resource *res;
    int type;

    if (resp == NULL)
        return;
    check_encode(&resp->base);
    RM_FUZZ_CHECK(resp->type_url != NULL && resp->version_info != NULL && resp->nonce != NULL);
    type = rm_xds_type_from_url(resp->type_url);
    RM_FUZZ_CHECK(type >= -1 && type < RM_XDS_NUM_TYPES);
    if (type >= 0) {
        RM_FUZZ_CHECK(strcmp(rm_xds_type_url(type), resp->type_url) == 0);
        if (resp->n_resources == 1) {
            res = resp->resources[0];
            RM_FUZZ_CHECK(res != NULL && (res->value.len == 0 || res->value.data != NULL));
            switch (type) {
            case RM_XDS_TRUST_BUNDLE:
                fuzz_trust_bundle(res->value.data, res->value.len);
                break;
            case RM_XDS_DESTINATIONS:
                fuzz_destinations(res->value.data, res->value.len);
                break;
            case RM_XDS_MESH_SETTINGS:
                fuzz_mesh_settings(res->value.data, res->value.len);
                break;
            case RM_XDS_WORKLOADS:
                fuzz_workloads(res->value.data, res->value.len);
                break;
            }
        }
    }
    ringmesh__v1__discovery_response__free_unpacked(resp, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = rm_fuzz_memdup(data, size); /* exactly `size` bytes: an over-read is caught */

    fuzz_response(copy, size);
    fuzz_destinations(copy, size);
    fuzz_trust_bundle(copy, size);
    fuzz_mesh_settings(copy, size);
    fuzz_workloads(copy, size);
    free(copy);
    return 0;
}
