/* The proxy's checks of a pushed DestinationMap (what it NACKs) and snapshot derivation from pushed settings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <cmocka.h>

#include "control_client.h"
#include "ringmesh/v1/discovery.pb-c.h"

typedef struct {
    Ringmesh__V1__Destination d[4];
    Ringmesh__V1__Destination *list[4];
    Ringmesh__V1__DestinationMap map;
    uint8_t buf[8192];
    size_t len;
} map_t;

static char *ids_orders[] = {"spiffe://cluster.local/ns/shop/sa/orders", "spiffe://cluster.local/ns/shop/sa/legacy"};
static char *addrs_orders[] = {"198.19.0.10:8080", "[2001:2::10]:8080"};
static char *addrs_ext[] = {"198.19.0.99:443"};

static void map_init(map_t *m)
{
    memset(m, 0, sizeof(*m));
    ringmesh__v1__destination_map__init(&m->map);
    for (int i = 0; i < 4; i++) {
        ringmesh__v1__destination__init(&m->d[i]);
        m->list[i] = &m->d[i];
    }
    m->d[0].name = "shop/orders";
    m->d[0].in_mesh = 1;
    m->d[0].n_addresses = 2;
    m->d[0].addresses = addrs_orders;
    m->d[0].n_identities = 2;
    m->d[0].identities = ids_orders;
    m->d[1].name = "shop/external";
    m->d[1].in_mesh = 0;
    m->d[1].n_addresses = 1;
    m->d[1].addresses = addrs_ext;
    m->map.n_destinations = 2;
    m->map.destinations = m->list;
}

static int parse(map_t *m, rm_dest_table_t **out, char *err, size_t errlen)
{
    m->len = ringmesh__v1__destination_map__pack(&m->map, m->buf);
    return rm__control_parse_destinations(m->buf, m->len, "cluster.local", out, err, errlen);
}

static void test_valid_map(void **state)
{
    map_t m;
    rm_dest_table_t *t = NULL;
    char err[256] = "";
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};

    map_init(&m);
    assert_int_equal(parse(&m, &t, err, sizeof(err)), 0);
    /* one entry per in-mesh address; the service outside the mesh is not in the table (pass-through) */
    assert_int_equal(t->num, 2);
    assert_int_equal(t->dests[0].num_identities, 2);
    assert_string_equal(t->dests[1].identities[1], ids_orders[1]);
    inet_pton(AF_INET, "198.19.0.10", &sin.sin_addr);
    rm_proxy_config_t cfg = {.destinations = t->dests, .num_destinations = t->num};
    assert_non_null(rm_proxy_config_find_destination(&cfg, (struct sockaddr *)&sin));
    inet_pton(AF_INET, "198.19.0.99", &sin.sin_addr);
    sin.sin_port = htons(443);
    assert_null(rm_proxy_config_find_destination(&cfg, (struct sockaddr *)&sin));
    rm_dest_table_unref(t);
}

static void expect_nack(map_t *m, const char *needle)
{
    rm_dest_table_t *t = NULL;
    char err[256] = "";

    assert_int_equal(parse(m, &t, err, sizeof(err)), -EINVAL);
    assert_null(t);
    if (strstr(err, needle) == NULL)
        fail_msg("reason \"%s\" does not mention \"%s\"", err, needle);
}

static void test_rejections(void **state)
{
    map_t m;
    static char *bad_addr[] = {"orders.shop:8080"};
    static char *no_port[] = {"198.19.0.10"};
    static char *foreign[] = {"spiffe://other.domain/ns/shop/sa/orders"};
    static char *not_spiffe[] = {"https://cluster.local/ns/shop/sa/orders"};
    static char *no_path[] = {"spiffe://cluster.local"};
    static char *many[17];

    map_init(&m);
    m.d[0].n_identities = 0;
    expect_nack(&m, "0 identities");

    map_init(&m);
    for (int i = 0; i < 17; i++)
        many[i] = ids_orders[0];
    m.d[0].n_identities = 17;
    m.d[0].identities = many;
    expect_nack(&m, "17 identities");

    map_init(&m);
    m.d[0].addresses = bad_addr;
    m.d[0].n_addresses = 1;
    expect_nack(&m, "orders.shop:8080");

    map_init(&m);
    m.d[0].addresses = no_port;
    m.d[0].n_addresses = 1;
    expect_nack(&m, "not ip:port");

    map_init(&m);
    m.d[0].identities = foreign;
    m.d[0].n_identities = 1;
    expect_nack(&m, "trust domain cluster.local");

    map_init(&m);
    m.d[0].identities = not_spiffe;
    m.d[0].n_identities = 1;
    expect_nack(&m, "not a SPIFFE ID");

    /* the trust domain's own ID names no workload: no leaf SVID may carry it */
    map_init(&m);
    m.d[0].identities = no_path;
    m.d[0].n_identities = 1;
    expect_nack(&m, "\"spiffe://cluster.local\": SPIFFE ID of an X509-SVID leaf must have a path");

    /* bytes that are not a DestinationMap */
    rm_dest_table_t *t = NULL;
    char err[256];
    static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(rm__control_parse_destinations(junk, sizeof(junk), "cluster.local", &t, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "does not decode"));
}

static void test_snapshot_derive(void **state)
{
    rm_proxy_config_t *cfg = calloc(1, sizeof(*cfg));
    rm_snapshot_t *base = calloc(1, sizeof(*base)), *d;
    rm_dest_table_t *t = NULL;
    map_t m;
    char err[256];

    cfg->inbound_mode = RM_MTLS_STRICT;
    cfg->connect_timeout_ms = 5000;
    cfg->idle_timeout_ms = 3600000;
    cfg->access_log = 1;
    cfg->metrics_istio_names = 1;
    cfg->metrics_max_series = 2000;
    cfg->metrics_expiry_ms = 600000;
    atomic_init(&base->refs, 1);
    base->cfg = cfg;
    map_init(&m);
    assert_int_equal(parse(&m, &t, err, sizeof(err)), 0);

    rm_snapshot_params_t params = {.dests = t,
                                   .have_inbound_mode = 1,
                                   .inbound_mode = RM_MTLS_PERMISSIVE,
                                   .connect_timeout_ms = 1234,
                                   .access_log = 0,
                                   .metrics_istio_names = 1, /* pushed false: over the file's true */
                                   .metrics_max_series = 300,
                                   .no_tls_reason = "no_svid_yet"};
    d = rm_snapshot_derive(base, &params);
    assert_non_null(d);
    assert_ptr_equal(d->cfg->destinations, t->dests);
    assert_int_equal(d->cfg->num_destinations, 2);
    assert_int_equal(d->cfg->inbound_mode, RM_MTLS_PERMISSIVE);
    assert_int_equal(d->cfg->connect_timeout_ms, 1234);
    assert_int_equal(d->cfg->idle_timeout_ms, 3600000); /* 0 pushed: the file's */
    assert_int_equal(d->cfg->access_log, 0);
    assert_int_equal(d->cfg->metrics_istio_names, 0);
    assert_int_equal(d->cfg->metrics_max_series, 300);
    assert_int_equal(d->cfg->metrics_expiry_ms, 600000); /* 0 pushed: the file's */
    assert_null(d->client_ctx);
    assert_int_equal(atomic_load(&base->refs), 2); /* the derived snapshot keeps its base alive */
    assert_int_equal(atomic_load(&t->refs), 2);
    rm_dest_table_unref(t);
    rm_snapshot_unref(d);
    assert_int_equal(atomic_load(&base->refs), 1);
    rm_snapshot_unref(base); /* frees cfg too */
}

/* Per-port modes pushed over a proxy file that has none: the pushed ones, in order (the file's empty list was copied
 * from a null pointer, undefined behaviour that UndefinedBehaviorSanitizer stops in the sanitizer build). */
static void test_snapshot_derive_port_modes(void **state)
{
    rm_proxy_config_t *cfg = calloc(1, sizeof(*cfg));
    rm_snapshot_t *base = calloc(1, sizeof(*base)), *d;
    static const rm_peer_port_mode_t pushed[] = {{.port = 8080, .mode = RM_PEER_MTLS_PERMISSIVE},
                                                 {.port = 9090, .mode = RM_PEER_MTLS_DISABLE}};
    (void)state;
    assert_non_null(cfg);
    assert_non_null(base);
    cfg->inbound_mode = RM_MTLS_STRICT; /* no port_modes: NULL, 0 */
    atomic_init(&base->refs, 1);
    base->cfg = cfg;
    rm_snapshot_params_t params = {.port_modes = pushed, .num_port_modes = 2};
    d = rm_snapshot_derive(base, &params);
    assert_non_null(d);
    assert_int_equal(d->cfg->num_port_modes, 2);
    assert_int_equal(d->cfg->port_modes[0].port, 8080);
    assert_int_equal(d->cfg->port_modes[0].mode, RM_MTLS_PERMISSIVE);
    assert_int_equal(d->cfg->port_modes[1].port, 9090);
    assert_int_equal(d->cfg->port_modes[1].mode, RM_MTLS_DISABLE);
    rm_snapshot_unref(d);
    rm_snapshot_unref(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_derive_port_modes),
        cmocka_unit_test(test_valid_map),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_snapshot_derive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
