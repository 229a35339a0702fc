/* rm_mesh_model_load_dir(): the control plane's configuration directory (docs/control-config.md), here holding one
 * file.
 *
 * A temporary directory is made on first use (removed at exit); each input is written to config.yaml in it, and
 * the directory loaded. On failure: a configuration error code, *out untouched, and a message that is non-empty,
 * NUL-terminated inside the buffer, starts with the file's path and, when it names a line, a line of the file (or
 * the end of the last one); a one-byte buffer gets an empty message and the same code. On success the model keeps the
 * documented rules: a 16-hex-digit version that is the same when the file is read again; settings in their ranges;
 * services in (namespace, name) order without repeats, each with DNS-1123 names, canonical "ip:port" addresses that no
 * other service has, and, in the mesh, at least one identity; identities sorted, unique, SPIFFE IDs of the trust
 * domain. */
/* rm-fuzz-link: ringmesh_control_core */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "source.h"

#define ERR_LEN      1024
#define VERSION_LEN  16
#define SVID_TTL_MIN 300
#define SVID_TTL_MAX (8760 * 3600)

static char dir_path[64], file_path[96];

static void remove_config_dir(void)
{
    if (dir_path[0] != '\0') {
        unlink(file_path);
        rmdir(dir_path);
        dir_path[0] = '\0';
    }
}

/* Writes the input as the whole content of config.yaml in this process's directory. */
static void write_config_file(const uint8_t *data, size_t size)
{
    size_t off = 0;
    int fd;

    if (dir_path[0] == '\0') {
        snprintf(dir_path, sizeof(dir_path), "/tmp/ringmesh-fuzz-mesh-%d-XXXXXX", (int)getpid());
        RM_FUZZ_CHECK(mkdtemp(dir_path) != NULL);
        snprintf(file_path, sizeof(file_path), "%s/config.yaml", dir_path);
        atexit(remove_config_dir);
    }
    fd = open(file_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    RM_FUZZ_CHECK(fd >= 0);
    while (off != size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n < 0 && errno == EINTR)
            continue;
        RM_FUZZ_CHECK(n > 0);
        off += (size_t)n;
    }
    RM_FUZZ_CHECK(close(fd) == 0);
}

static int is_dns_label(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (size_t i = 0; i != len; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* "a.b.c:port" or "[v6]:port" exactly as inet_ntop writes the address, a port of 1 to 65535 without leading
 * zeros, and not the unspecified address. */
static int is_canonical_address(const char *s)
{
    char host[INET6_ADDRSTRLEN + 1], again[INET6_ADDRSTRLEN], port_text[8];
    uint8_t bytes[16] = {0}, zero[16] = {0};
    const char *end, *port;
    unsigned long p;
    int family;
    size_t n;

    if (s[0] == '[') {
        if ((end = strchr(s, ']')) == NULL || end[1] != ':')
            return 0;
        family = AF_INET6;
        s++;
        port = end + 2;
    } else {
        if ((end = strchr(s, ':')) == NULL)
            return 0;
        family = AF_INET;
        port = end + 1;
    }
    if ((n = (size_t)(end - s)) >= sizeof(host))
        return 0;
    memcpy(host, s, n);
    host[n] = '\0';
    if (inet_pton(family, host, bytes) != 1 || inet_ntop(family, bytes, again, sizeof(again)) == NULL ||
        strcmp(again, host) != 0 || memcmp(bytes, zero, family == AF_INET ? 4 : 16) == 0)
        return 0;
    if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)bytes))
        return 0; /* folded into IPv4 */
    if (strlen(port) > 5 || sscanf(port, "%lu", &p) != 1)
        return 0;
    snprintf(port_text, sizeof(port_text), "%lu", p);
    return p >= 1 && p <= 65535 && strcmp(port_text, port) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_model(const rm_mesh_model_t *m)
{
    const rm_mesh_settings_t *st = &m->settings;
    rm_spiffe_id_t *id = malloc(sizeof(*id));
    const char **all = NULL;
    size_t num_all = 0, td_len;

    RM_FUZZ_CHECK(id != NULL);
    RM_FUZZ_CHECK(m->version != NULL && strlen(m->version) == VERSION_LEN &&
                  strspn(m->version, "0123456789abcdef") == VERSION_LEN);
    RM_FUZZ_CHECK(st->trust_domain != NULL && rm_trust_domain_check(st->trust_domain, strlen(st->trust_domain)) == 0);
    td_len = strlen(st->trust_domain);
    RM_FUZZ_CHECK(st->inbound_mode == RM_MODEL_MTLS_STRICT || st->inbound_mode == RM_MODEL_MTLS_PERMISSIVE ||
                  st->inbound_mode == RM_MODEL_MTLS_DISABLE);
    RM_FUZZ_CHECK(st->access_log == 0 || st->access_log == 1);
    RM_FUZZ_CHECK(st->svid_ttl >= SVID_TTL_MIN && st->svid_ttl <= SVID_TTL_MAX);
    RM_FUZZ_CHECK(m->num_services == 0 || m->services != NULL);

    for (size_t i = 0; i != m->num_services; ++i) {
        const rm_model_service_t *s = &m->services[i];
        RM_FUZZ_CHECK(s->namespace_ != NULL && is_dns_label(s->namespace_));
        RM_FUZZ_CHECK(s->name != NULL && is_dns_label(s->name));
        if (i != 0) {
            const rm_model_service_t *prev = &m->services[i - 1];
            int c = strcmp(prev->namespace_, s->namespace_);
            RM_FUZZ_CHECK(c < 0 || (c == 0 && strcmp(prev->name, s->name) < 0));
        }
        RM_FUZZ_CHECK(s->file != NULL && strcmp(s->file, file_path) == 0 && s->line >= 1);
        RM_FUZZ_CHECK(s->in_mesh == 0 || s->in_mesh == 1);
        RM_FUZZ_CHECK(s->num_addresses >= 1);
        for (size_t j = 0; j != s->num_addresses; ++j)
            RM_FUZZ_CHECK(is_canonical_address(s->addresses[j]));
        RM_FUZZ_CHECK((all = realloc(all, (num_all + s->num_addresses) * sizeof(*all))) != NULL);
        memcpy(all + num_all, s->addresses, s->num_addresses * sizeof(*all));
        num_all += s->num_addresses;

        if (s->in_mesh)
            RM_FUZZ_CHECK(s->num_identities >= 1);
        for (size_t j = 0; j != s->num_identities; ++j) {
            const char *x = s->identities[j];
            RM_FUZZ_CHECK(rm_spiffe_id_parse(x, strlen(x), id) == 0);
            RM_FUZZ_CHECK(id->td_len == td_len && memcmp(id->str + 9, st->trust_domain, td_len) == 0);
            RM_FUZZ_CHECK(id->len > 9 + td_len); /* a workload, not the trust domain itself */
            if (j != 0)
                RM_FUZZ_CHECK(strcmp(s->identities[j - 1], x) < 0);
        }
    }
    /* a VIP:port belongs to one service only */
    if (num_all > 1)
        qsort(all, num_all, sizeof(*all), cmp_str);
    for (size_t i = 1; i < num_all; ++i)
        RM_FUZZ_CHECK(strcmp(all[i - 1], all[i]) != 0);
    free(all);
    free(id);
}

/* The number of lines of the input as libyaml counts them (CR LF, CR, LF, NEL, LS and PS end a line). */
static unsigned count_lines(const uint8_t *p, size_t n)
{
    unsigned lines = 1;

    for (size_t i = 0; i < n;) {
        size_t b = 0;
        if (p[i] == '\r')
            b = i + 1 < n && p[i + 1] == '\n' ? 2 : 1;
        else if (p[i] == '\n')
            b = 1;
        else if (i + 1 < n && p[i] == 0xc2 && p[i + 1] == 0x85)
            b = 2;
        else if (i + 2 < n && p[i] == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
            b = 3;
        lines += b != 0;
        i += b != 0 ? b : 1;
    }
    return lines;
}

static void check_error(const char *err, const uint8_t *data, size_t size)
{
    size_t plen = strlen(file_path);
    unsigned line, col;
    char colon;

    RM_FUZZ_CHECK(memchr(err, '\0', ERR_LEN) != NULL && err[0] != '\0');
    RM_FUZZ_CHECK(strncmp(err, file_path, plen) == 0 && err[plen] == ':');
    /* "FILE:LINE:COLUMN: ..." when the error has a place: a line of the file, or the one after its end, where
     * libyaml puts the end of a stream that does not end with a line break */
    if (sscanf(err + plen, ":%u:%u%c", &line, &col, &colon) == 3 && colon == ':')
        RM_FUZZ_CHECK(line >= 1 && line <= count_lines(data, size) + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rm_mesh_model_t sentinel; /* what *out holds before the call: a failed load must leave it */
    rm_mesh_model_t *const untouched = &sentinel, *m = untouched, *again = untouched;
    char *err = malloc(ERR_LEN), *tiny = malloc(1);
    int ret;

    RM_FUZZ_CHECK(err != NULL && tiny != NULL);
    write_config_file(data, size);
    memset(err, 'x', ERR_LEN); /* the loader must terminate the message itself */
    ret = rm_mesh_model_load_dir(dir_path, &m, err, ERR_LEN);
    if (ret == 0) {
        RM_FUZZ_CHECK(m != NULL && m != untouched);
        check_model(m);
        /* the version is a digest of the content: the same file gives the same version */
        RM_FUZZ_CHECK(rm_mesh_model_load_dir(dir_path, &again, err, ERR_LEN) == 0);
        RM_FUZZ_CHECK(again != untouched && strcmp(again->version, m->version) == 0);
        RM_FUZZ_CHECK(again->num_services == m->num_services);
        rm_mesh_model_unref(again);
        rm_mesh_model_unref(m);
    } else {
        RM_FUZZ_CHECK(ret == RM_ERR_CONFIG_PARSE || ret == RM_ERR_CONFIG_VALUE || ret == RM_ERR_CONFIG_IO);
        RM_FUZZ_CHECK(m == untouched);
        check_error(err, data, size);

        /* the same failure with no room for a message: nothing written past the buffer */
        tiny[0] = 'x';
        RM_FUZZ_CHECK(rm_mesh_model_load_dir(dir_path, &m, tiny, 1) == ret && m == untouched && tiny[0] == '\0');
    }
    free(tiny);
    free(err);
    return 0;
}
