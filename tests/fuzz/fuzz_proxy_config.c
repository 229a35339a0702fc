/* rm_proxy_config_load(): ringmesh-proxy's YAML configuration (docs/proxy-config.md).
 *
 * The input is written to one temporary file per process (made on first use under /tmp, removed at exit) and
 * loaded from there. On failure: a configuration error code, *out untouched, and a message that is non-empty,
 * NUL-terminated inside the buffer and starts with the file name; a one-byte buffer gets an empty message and the
 * same code. On success: the documented rules hold for what was loaded (valid trust domain and identities in it,
 * ranges, unique ports and addresses, TLS files present when an mTLS path is configured), and looking up each
 * destination's own address finds it. */
/* rm-fuzz-link: ringmesh_proxy_core */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "proxy_config.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"

#define ERR_LEN 1024

static char config_path[64];
static int config_fd = -1;

static void remove_config_file(void)
{
    if (config_fd >= 0) {
        close(config_fd);
        unlink(config_path);
        config_fd = -1;
    }
}

/* Writes the input as the whole content of this process's config file. */
static void write_config_file(const uint8_t *data, size_t size)
{
    size_t off = 0;

    if (config_fd < 0) {
        snprintf(config_path, sizeof(config_path), "/tmp/ringmesh-fuzz-config-%d-XXXXXX", (int)getpid());
        config_fd = mkstemp(config_path);
        RM_FUZZ_CHECK(config_fd >= 0);
        atexit(remove_config_file);
    }
    RM_FUZZ_CHECK(ftruncate(config_fd, 0) == 0);
    while (off != size) {
        ssize_t n = pwrite(config_fd, data + off, size - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        RM_FUZZ_CHECK(n > 0);
        off += (size_t)n;
    }
}

static int sockaddr_ok(const rm_sockaddr_t *a)
{
    if (a->ss.ss_family == AF_INET)
        return a->len == sizeof(struct sockaddr_in);
    if (a->ss.ss_family == AF_INET6)
        return a->len == sizeof(struct sockaddr_in6);
    return 0;
}

static uint16_t sockaddr_port(const rm_sockaddr_t *a)
{
    return ntohs(a->ss.ss_family == AF_INET ? ((const struct sockaddr_in *)&a->ss)->sin_port
                                            : ((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

static int sockaddr_same(const rm_sockaddr_t *x, const rm_sockaddr_t *y)
{
    return x->len == y->len && memcmp(&x->ss, &y->ss, x->len) == 0;
}

static int is_unspecified(const rm_sockaddr_t *a)
{
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr, &any6, sizeof(any6)) == 0;
}

static void check_identities(char *const *ids, size_t num, const char *trust_domain)
{
    rm_spiffe_id_t *id = malloc(sizeof(*id));

    RM_FUZZ_CHECK(id != NULL);
    RM_FUZZ_CHECK(num <= RM_MAX_IDENTITIES);
    for (size_t i = 0; i != num; ++i) {
        RM_FUZZ_CHECK(ids[i] != NULL && rm_spiffe_id_parse(ids[i], strlen(ids[i]), id) == 0);
        RM_FUZZ_CHECK(id->td_len == strlen(trust_domain) && memcmp(id->str + 9, trust_domain, id->td_len) == 0);
        for (size_t j = 0; j != i; ++j)
            RM_FUZZ_CHECK(strcmp(ids[i], ids[j]) != 0);
    }
    free(id);
}

static int mode_ok(rm_mtls_mode_t m)
{
    return m == RM_MTLS_STRICT || m == RM_MTLS_PERMISSIVE || m == RM_MTLS_DISABLE;
}

static void check_loaded(const rm_proxy_config_t *cfg)
{
    const rm_sockaddr_t *listens[4 + 64];
    size_t num_listens = 0, i, j;
    int needs_tls;

    RM_FUZZ_CHECK(cfg->trust_domain != NULL &&
                  rm_trust_domain_check(cfg->trust_domain, strlen(cfg->trust_domain)) == 0);
    RM_FUZZ_CHECK(cfg->workers >= 1 && cfg->workers <= 64);
    RM_FUZZ_CHECK(cfg->max_connections >= 1 && cfg->max_connections <= 1000000);
    RM_FUZZ_CHECK(cfg->connect_timeout_ms > 0 && cfg->handshake_timeout_ms > 0);
    RM_FUZZ_CHECK(cfg->io_backend == RM_IO_AUTO || cfg->io_backend == RM_IO_URING || cfg->io_backend == RM_IO_EPOLL);
    RM_FUZZ_CHECK(cfg->log_level != NULL &&
                  (strcmp(cfg->log_level, "debug") == 0 || strcmp(cfg->log_level, "info") == 0 ||
                   strcmp(cfg->log_level, "warn") == 0 || strcmp(cfg->log_level, "error") == 0));
    RM_FUZZ_CHECK(mode_ok(cfg->inbound_mode));

    needs_tls = cfg->outbound_enabled || cfg->num_listeners != 0 ||
                (cfg->inbound_enabled && cfg->inbound_mode != RM_MTLS_DISABLE);
    for (i = 0; i != cfg->num_port_modes; ++i) {
        RM_FUZZ_CHECK(cfg->port_modes[i].port != 0 && mode_ok(cfg->port_modes[i].mode));
        for (j = 0; j != i; ++j)
            RM_FUZZ_CHECK(cfg->port_modes[i].port != cfg->port_modes[j].port);
        RM_FUZZ_CHECK(rm_proxy_config_port_mode(cfg, cfg->port_modes[i].port) == cfg->port_modes[i].mode);
        if (cfg->inbound_enabled && cfg->port_modes[i].mode != RM_MTLS_DISABLE)
            needs_tls = 1;
    }
    if (needs_tls) {
        RM_FUZZ_CHECK(cfg->cert_file != NULL && cfg->cert_file[0] != '\0');
        RM_FUZZ_CHECK(cfg->key_file != NULL && cfg->key_file[0] != '\0');
        RM_FUZZ_CHECK(cfg->bundle_file != NULL && cfg->bundle_file[0] != '\0');
    }

    for (i = 0; i != cfg->num_destinations; ++i) {
        const rm_destination_t *d = &cfg->destinations[i];
        RM_FUZZ_CHECK(sockaddr_ok(&d->addr) && sockaddr_port(&d->addr) != 0 && !is_unspecified(&d->addr));
        RM_FUZZ_CHECK(d->num_identities >= 1);
        check_identities(d->identities, d->num_identities, cfg->trust_domain);
        RM_FUZZ_CHECK(rm_proxy_config_find_destination(cfg, (const struct sockaddr *)&d->addr.ss) == d);
    }

    if (cfg->outbound_enabled)
        listens[num_listens++] = &cfg->outbound_listen;
    if (cfg->inbound_enabled)
        listens[num_listens++] = &cfg->inbound_listen;
    if (cfg->admin_enabled)
        listens[num_listens++] = &cfg->admin_listen;
    for (i = 0; i != cfg->num_listeners; ++i) {
        const rm_listener_config_t *l = &cfg->listeners[i];
        RM_FUZZ_CHECK(l->name != NULL && strlen(l->name) >= 1 && strlen(l->name) <= 63);
        for (j = 0; j != i; ++j)
            RM_FUZZ_CHECK(strcmp(l->name, cfg->listeners[j].name) != 0);
        RM_FUZZ_CHECK(l->kind == RM_LISTENER_UPSTREAM || l->kind == RM_LISTENER_INBOUND);
        RM_FUZZ_CHECK(sockaddr_ok(&l->listen) && sockaddr_ok(&l->target) && !is_unspecified(&l->target));
        RM_FUZZ_CHECK(mode_ok(l->mode));
        if (l->kind == RM_LISTENER_UPSTREAM)
            RM_FUZZ_CHECK(l->num_identities >= 1);
        else
            RM_FUZZ_CHECK(l->num_identities == 0);
        check_identities(l->identities, l->num_identities, cfg->trust_domain);
        if (num_listens < sizeof(listens) / sizeof(listens[0]))
            listens[num_listens++] = &l->listen;
    }
    for (i = 0; i != num_listens; ++i) {
        RM_FUZZ_CHECK(sockaddr_ok(listens[i]) && sockaddr_port(listens[i]) != 0);
        for (j = 0; j != i; ++j)
            RM_FUZZ_CHECK(!sockaddr_same(listens[i], listens[j]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rm_proxy_config_t sentinel; /* what *out holds before the call: a failed load must leave it */
    rm_proxy_config_t *const untouched = &sentinel, *cfg = untouched;
    char *err = malloc(ERR_LEN), *tiny = malloc(1);
    int ret, again;

    RM_FUZZ_CHECK(err != NULL && tiny != NULL);
    write_config_file(data, size);
    memset(err, 'x', ERR_LEN); /* the loader must terminate the message itself */
    ret = rm_proxy_config_load(config_path, &cfg, err, ERR_LEN);
    if (ret == 0) {
        RM_FUZZ_CHECK(cfg != NULL && cfg != untouched);
        RM_FUZZ_CHECK(cfg->path != NULL && strcmp(cfg->path, config_path) == 0);
        check_loaded(cfg);
        rm_proxy_config_free(cfg);
    } else {
        RM_FUZZ_CHECK(ret == RM_ERR_CONFIG_PARSE || ret == RM_ERR_CONFIG_VALUE || ret == RM_ERR_CONFIG_IO);
        RM_FUZZ_CHECK(cfg == untouched);
        RM_FUZZ_CHECK(memchr(err, '\0', ERR_LEN) != NULL && err[0] != '\0');
        RM_FUZZ_CHECK(strncmp(err, config_path, strlen(config_path)) == 0 && err[strlen(config_path)] == ':');

        /* the same failure with no room for a message: nothing written past the buffer */
        tiny[0] = 'x';
        again = rm_proxy_config_load(config_path, &cfg, tiny, 1);
        RM_FUZZ_CHECK(again == ret && cfg == untouched && tiny[0] == '\0');
    }
    free(tiny);
    free(err);
    return 0;
}
