/* Workload metadata (workload_meta.h): the pushed table, and this proxy's own workload when nothing was pushed. */
#include "workload_meta.h"

#include "snapshot.h"

#include "ringmesh/textbuf.h"
#include "ringmesh/v1/discovery.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char UNKNOWN_TEXT[] = "unknown";
#define UNKNOWN UNKNOWN_TEXT

static const rm_workload_meta_t unknown = {UNKNOWN_TEXT, UNKNOWN_TEXT, UNKNOWN_TEXT, UNKNOWN_TEXT, UNKNOWN_TEXT};

/* ---------------------------------------------------------------------------------------------------------
 * This proxy's workload without a push: set once before the workers start, read-only afterwards.
 * ------------------------------------------------------------------------------------------------------- */

static rm_workload_meta_t env_self = {UNKNOWN_TEXT, UNKNOWN_TEXT, UNKNOWN_TEXT, UNKNOWN_TEXT, UNKNOWN_TEXT};

#define LABELS_FILE_MAX (64 * 1024)

/* The value of label `key` in control.node.labels ("k=v"), else in the downward-API labels file's text (lines
 * k="v"); NULL when neither has it. The result is malloc'ed. */
static char *label_value(const rm_proxy_config_t *cfg, const char *file_text, const char *key)
{
    size_t klen = strlen(key);

    if (cfg->control != NULL)
        for (size_t i = 0; i < cfg->control->num_node_labels; i++) {
            const char *l = cfg->control->node_labels[i];
            if (strncmp(l, key, klen) == 0 && l[klen] == '=')
                return strdup(l + klen + 1);
        }
    for (const char *line = file_text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        if (len > klen + 1 && strncmp(line, key, klen) == 0 && line[klen] == '=') {
            const char *v = line + klen + 1;
            size_t vlen = len - klen - 1;
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
                v++, vlen -= 2;
            return strndup(v, vlen);
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

static char *read_labels_file(const char *path)
{
    FILE *f;
    char *buf;
    size_t n;

    if (path == NULL || (f = fopen(path, "r")) == NULL)
        return NULL;
    if ((buf = malloc(LABELS_FILE_MAX + 1)) != NULL) {
        n = fread(buf, 1, LABELS_FILE_MAX, f);
        buf[n] = '\0';
    }
    (void)fclose(f); /* read only: nothing to lose on close */
    return buf;
}

/* A Deployment's pod is named "<deployment>-<pod-template-hash>-<5 characters>": the workload is the part before
 * "-<hash>-", as the control plane derives it from the ReplicaSet. Other pods are their own workload, as far as the
 * pod alone can tell. */
static char *name_from_pod(const char *pod, const char *hash)
{
    if (hash != NULL && hash[0] != '\0') {
        size_t hl = strlen(hash);
        for (const char *p = strstr(pod, hash); p != NULL; p = strstr(p + 1, hash))
            if (p > pod + 1 && p[-1] == '-' && p[hl] == '-')
                return strndup(pod, (size_t)(p - pod - 1));
    }
    return strdup(pod);
}

static const char *first_of(const char *a, const char *b, const char *c)
{
    return a != NULL && a[0] != '\0' ? a : b != NULL && b[0] != '\0' ? b : c;
}

static void free_meta_strings(rm_workload_meta_t *m)
{
    const char *const fields[] = {m->name, m->namespace, m->app, m->version, m->principal};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (fields[i] != NULL && fields[i] != (const char *)UNKNOWN_TEXT)
            free((char *)fields[i]);
}

int rm_workload_meta_init(const rm_proxy_config_t *cfg)
{
    const rm_control_config_t *cc = cfg->control;
    const char *pod = first_of(cc != NULL ? cc->node_id : NULL, getenv("RINGMESH_POD_NAME"), NULL);
    const char *ns =
        first_of(cfg->workload_namespace, cc != NULL ? cc->node_namespace : NULL, getenv("RINGMESH_POD_NAMESPACE"));
    const char *sa = first_of(cc != NULL ? cc->node_service_account : NULL, getenv("RINGMESH_SERVICE_ACCOUNT"), NULL);
    char *file = read_labels_file(cc != NULL ? cc->node_labels_file : NULL);
    char *hash = label_value(cfg, file, "pod-template-hash");
    char *l_app[3] = {label_value(cfg, file, "service.istio.io/canonical-name"),
                      label_value(cfg, file, "app.kubernetes.io/name"), label_value(cfg, file, "app")};
    char *l_ver[3] = {label_value(cfg, file, "service.istio.io/canonical-revision"),
                      label_value(cfg, file, "app.kubernetes.io/version"), label_value(cfg, file, "version")};
    char *name = NULL, principal[600];
    int ret = -ENOMEM;

    if (cfg->workload_name != NULL)
        name = strdup(cfg->workload_name);
    else if (pod != NULL)
        name = name_from_pod(pod, hash);
    const char *app = first_of(cfg->workload_app, first_of(l_app[0], l_app[1], l_app[2]), name);
    const char *version =
        first_of(cfg->workload_version, first_of(l_ver[0], l_ver[1], l_ver[2]), name != NULL ? "latest" : NULL);
    principal[0] = '\0';
    if (cfg->workload_principal != NULL)
        snprintf(principal, sizeof(principal), "%s", cfg->workload_principal);
    else if (ns != NULL && sa != NULL)
        snprintf(principal, sizeof(principal), "spiffe://%s/ns/%s/sa/%s", cfg->trust_domain, ns, sa);

    /* these strings live as long as the process: the workers read them without a reference */
    rm_workload_meta_t m = {
        name != NULL ? strdup(name) : UNKNOWN,
        ns != NULL ? strdup(ns) : UNKNOWN,
        app != NULL ? strdup(app) : UNKNOWN,
        version != NULL ? strdup(version) : UNKNOWN,
        principal[0] != '\0' ? strdup(principal) : UNKNOWN,
    };
    if (m.name != NULL && m.namespace != NULL && m.app != NULL && m.version != NULL && m.principal != NULL) {
        rm_workload_meta_t old = env_self; /* set again only by tests, before any table borrows its strings */
        env_self = m;
        free_meta_strings(&old);
        ret = 0;
    } else
        free_meta_strings(&m);
    free(name);
    free(hash);
    for (int i = 0; i < 3; i++) {
        free(l_app[i]);
        free(l_ver[i]);
    }
    free(file);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * The pushed table.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_peer_t {
    rm_workload_meta_t meta;
    char **addresses;
    size_t num_addresses;
} peer_t;

/* One address: family (4 or 6; 0 marks an empty slot) and bytes; `peer` indexes peers[]. */
typedef struct st_slot_t {
    uint8_t family;
    uint8_t bytes[16];
    uint32_t peer;
} slot_t;

#define PRINCIPAL_AMBIGUOUS UINT32_MAX

/* One principal: the peer whose workload runs as it, or PRINCIPAL_AMBIGUOUS when workloads that differ do. */
typedef struct st_principal_slot_t {
    const char *principal; /* NULL marks an empty slot */
    uint64_t hash;
    uint32_t peer;
} principal_slot_t;

struct st_rm_workload_table_t {
    atomic_int refs;
    rm_workload_meta_t self;
    rm_workload_access_log_t access_log;
    peer_t *peers;
    size_t num_peers, num_addresses;
    slot_t *slots; /* open addressing, linear probing; a power of two at least twice the addresses */
    size_t mask;
    principal_slot_t *principals; /* open addressing like slots, a power of two at least twice the peers */
    size_t principals_mask;
    char **strings; /* every string the table owns */
    size_t num_strings, cap_strings;
};

static uint64_t hash_addr(uint8_t family, const uint8_t *bytes)
{
    uint64_t h = 1469598103934665603ull ^ family; /* FNV-1a */
    for (int i = 0; i < (family == 4 ? 4 : 16); i++) {
        h ^= bytes[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

/* The family and bytes of an IP literal; -1 when it is not one. */
static int parse_ip(const char *s, uint8_t *family, uint8_t bytes[16])
{
    memset(bytes, 0, 16);
    if (inet_pton(AF_INET, s, bytes) == 1) {
        *family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, s, bytes) != 1)
        return -1;
    *family = 6;
    if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)bytes)) {
        memmove(bytes, bytes + 12, 4);
        memset(bytes + 4, 0, 12);
        *family = 4;
    }
    return 0;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static int same_workload(const rm_workload_meta_t *a, const rm_workload_meta_t *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->namespace, b->namespace) == 0 && strcmp(a->app, b->app) == 0 &&
           strcmp(a->version, b->version) == 0;
}

/* Records that peer `i` runs as its principal (unknown principals are not indexed). */
static void index_principal(rm_workload_table_t *t, uint32_t i)
{
    const char *p = t->peers[i].meta.principal;
    uint64_t h;
    size_t k;

    if (strcmp(p, UNKNOWN_TEXT) == 0)
        return;
    h = hash_str(p);
    for (k = h & t->principals_mask; t->principals[k].principal != NULL; k = (k + 1) & t->principals_mask) {
        principal_slot_t *s = &t->principals[k];
        if (s->hash == h && strcmp(s->principal, p) == 0) {
            if (s->peer != PRINCIPAL_AMBIGUOUS && !same_workload(&t->peers[s->peer].meta, &t->peers[i].meta))
                s->peer = PRINCIPAL_AMBIGUOUS;
            return;
        }
    }
    t->principals[k] = (principal_slot_t){p, h, i};
}

const rm_workload_meta_t *rm_workload_table_find_principal(const rm_workload_table_t *t, const char *principal)
{
    uint64_t h;

    if (t == NULL || principal == NULL || t->principals == NULL)
        return NULL;
    h = hash_str(principal);
    for (size_t k = h & t->principals_mask, n = 0; n <= t->principals_mask; k = (k + 1) & t->principals_mask, n++) {
        const principal_slot_t *s = &t->principals[k];
        if (s->principal == NULL)
            return NULL;
        if (s->hash == h && strcmp(s->principal, principal) == 0)
            return s->peer != PRINCIPAL_AMBIGUOUS ? &t->peers[s->peer].meta : NULL;
    }
    return NULL;
}

static const slot_t *find_slot(const rm_workload_table_t *t, uint8_t family, const uint8_t *bytes)
{
    if (t->slots == NULL)
        return NULL;
    for (size_t i = hash_addr(family, bytes) & t->mask, n = 0; n <= t->mask; i = (i + 1) & t->mask, n++) {
        const slot_t *s = &t->slots[i];
        if (s->family == 0)
            return NULL;
        if (s->family == family && memcmp(s->bytes, bytes, family == 4 ? 4 : 16) == 0)
            return s;
    }
    return NULL;
}

/* A copy of `s` the table owns, or `dflt` when `s` is empty; NULL when out of memory. */
static const char *own(rm_workload_table_t *t, const char *s, const char *dflt)
{
    char *c;

    if (s == NULL || s[0] == '\0')
        return dflt;
    if (t->num_strings == t->cap_strings) {
        size_t cap = t->cap_strings ? 2 * t->cap_strings : 64;
        char **grown = realloc(t->strings, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        t->strings = grown;
        t->cap_strings = cap;
    }
    if ((c = strdup(s)) == NULL)
        return NULL;
    t->strings[t->num_strings++] = c;
    return c;
}

static int own_meta(rm_workload_table_t *t, const Ringmesh__V1__WorkloadInfo *w, const rm_workload_meta_t *dflt,
                    rm_workload_meta_t *out)
{
    if ((out->name = own(t, w->name, dflt->name)) == NULL ||
        (out->namespace = own(t, w->namespace_, dflt->namespace)) == NULL ||
        (out->app = own(t, w->app, dflt->app)) == NULL || (out->version = own(t, w->version, dflt->version)) == NULL ||
        (out->principal = own(t, w->principal, dflt->principal)) == NULL)
        return -ENOMEM;
    return 0;
}

void rm_workload_table_ref(rm_workload_table_t *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void rm_workload_table_unref(rm_workload_table_t *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < t->num_strings; i++)
        free(t->strings[i]);
    free(t->strings);
    for (size_t i = 0; i < t->num_peers; i++)
        free(t->peers[i].addresses);
    free(t->peers);
    free(t->slots);
    free(t->principals);
    free(t);
}

int rm_workload_table_parse(const uint8_t *value, size_t len, rm_workload_table_t **out, char *err, size_t errlen)
{
    Ringmesh__V1__WorkloadMap *map;
    rm_workload_table_t *t = NULL;
    size_t naddr = 0, cap;
    int ret = -ENOMEM;

    if ((map = ringmesh__v1__workload_map__unpack(NULL, len, value)) == NULL) {
        snprintf(err, errlen, "WorkloadMap does not decode");
        return -EINVAL;
    }
    for (size_t i = 0; i < map->n_peers; i++)
        naddr += map->peers[i]->n_addresses;
    if (map->n_peers > RM_WORKLOAD_MAX_PEERS || naddr > RM_WORKLOAD_MAX_ADDRESSES) {
        snprintf(err, errlen, "WorkloadMap with %zu workloads and %zu addresses (at most %d and %d)", map->n_peers,
                 naddr, RM_WORKLOAD_MAX_PEERS, RM_WORKLOAD_MAX_ADDRESSES);
        ret = -EINVAL;
        goto Exit;
    }
    if (map->self != NULL && map->self->access_log > RINGMESH__V1__ACCESS_LOG_OVERRIDE__ACCESS_LOG_OFF) {
        snprintf(err, errlen, "WorkloadMap: unknown access log setting %d for this workload",
                 (int)map->self->access_log);
        ret = -EINVAL;
        goto Exit;
    }
    size_t pcap;
    for (cap = 16; cap < 2 * naddr; cap *= 2)
        ;
    for (pcap = 16; pcap < 2 * map->n_peers; pcap *= 2)
        ;
    if ((t = calloc(1, sizeof(*t))) == NULL ||
        (map->n_peers > 0 && (t->peers = calloc(map->n_peers, sizeof(*t->peers))) == NULL) ||
        (naddr > 0 && (t->slots = calloc(cap, sizeof(*t->slots))) == NULL) ||
        (map->n_peers > 0 && (t->principals = calloc(pcap, sizeof(*t->principals))) == NULL)) {
        snprintf(err, errlen, "out of memory");
        goto Exit;
    }
    atomic_init(&t->refs, 1);
    t->mask = cap - 1;
    t->principals_mask = pcap - 1;
    if (map->self != NULL) {
        if (own_meta(t, map->self, &env_self, &t->self) != 0) {
            snprintf(err, errlen, "out of memory");
            goto Exit;
        }
        t->access_log = (rm_workload_access_log_t)map->self->access_log;
    } else
        t->self = env_self;
    for (size_t i = 0; i < map->n_peers; i++) {
        const Ringmesh__V1__WorkloadInfo *w = map->peers[i];
        peer_t *p = &t->peers[t->num_peers++];
        if (own_meta(t, w, &unknown, &p->meta) != 0 ||
            (w->n_addresses > 0 && (p->addresses = calloc(w->n_addresses, sizeof(*p->addresses))) == NULL)) {
            snprintf(err, errlen, "out of memory");
            goto Exit;
        }
        for (size_t a = 0; a < w->n_addresses; a++) {
            uint8_t family, bytes[16];
            const slot_t *dup;
            if (parse_ip(w->addresses[a], &family, bytes) != 0) {
                snprintf(err, errlen, "WorkloadMap: workload %.100s/%.100s: address \"%.64s\" is not an IP address",
                         p->meta.namespace, p->meta.name, w->addresses[a]);
                ret = -EINVAL;
                goto Exit;
            }
            if ((dup = find_slot(t, family, bytes)) != NULL) {
                const rm_workload_meta_t *o = &t->peers[dup->peer].meta;
                snprintf(err, errlen, "WorkloadMap: address %.64s is both workload %.100s/%.100s's and %.100s/%.100s's",
                         w->addresses[a], o->namespace, o->name, p->meta.namespace, p->meta.name);
                ret = -EINVAL;
                goto Exit;
            }
            size_t k = hash_addr(family, bytes) & t->mask;
            while (t->slots[k].family != 0)
                k = (k + 1) & t->mask;
            t->slots[k].family = family;
            memcpy(t->slots[k].bytes, bytes, 16);
            t->slots[k].peer = (uint32_t)i;
            if ((p->addresses[p->num_addresses] = (char *)own(t, w->addresses[a], NULL)) == NULL) {
                snprintf(err, errlen, "out of memory");
                goto Exit;
            }
            p->num_addresses++;
            t->num_addresses++;
        }
        index_principal(t, (uint32_t)i);
    }
    *out = t;
    t = NULL;
    ret = 0;
Exit:
    rm_workload_table_unref(t);
    ringmesh__v1__workload_map__free_unpacked(map, NULL);
    return ret;
}

const rm_workload_meta_t *rm_workload_table_self(const rm_workload_table_t *t)
{
    return &t->self;
}

rm_workload_access_log_t rm_workload_table_access_log(const rm_workload_table_t *t)
{
    return t != NULL ? t->access_log : RM_WORKLOAD_ACCESS_LOG_MESH;
}

const rm_workload_meta_t *rm_workload_table_find(const rm_workload_table_t *t, const rm_sockaddr_t *addr)
{
    uint8_t family, bytes[16] = {0};
    const slot_t *s;

    if (t == NULL || addr == NULL)
        return NULL;
    if (addr->ss.ss_family == AF_INET) {
        family = 4;
        memcpy(bytes, &((const struct sockaddr_in *)&addr->ss)->sin_addr, 4);
    } else if (addr->ss.ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)&addr->ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = 4;
            memcpy(bytes, a6->s6_addr + 12, 4);
        } else {
            family = 6;
            memcpy(bytes, a6->s6_addr, 16);
        }
    } else
        return NULL;
    return (s = find_slot(t, family, bytes)) != NULL ? &t->peers[s->peer].meta : NULL;
}

size_t rm_workload_table_num_peers(const rm_workload_table_t *t)
{
    return t != NULL ? t->num_peers : 0;
}

size_t rm_workload_table_num_addresses(const rm_workload_table_t *t)
{
    return t != NULL ? t->num_addresses : 0;
}

const rm_workload_meta_t *rm_workload_table_peer_at(const rm_workload_table_t *t, size_t i, char *const **addrs,
                                                    size_t *num)
{
    *addrs = t->peers[i].addresses;
    *num = t->peers[i].num_addresses;
    return &t->peers[i].meta;
}

/* ---------------------------------------------------------------------------------------------------------
 * Through a snapshot.
 * ------------------------------------------------------------------------------------------------------- */

const rm_workload_meta_t *rm_workload_self(const struct st_rm_snapshot_t *s)
{
    if (s != NULL && s->workloads != NULL)
        return &s->workloads->self;
    return &env_self;
}

const rm_workload_meta_t *rm_workload_peer(const struct st_rm_snapshot_t *s, const rm_sockaddr_t *addr)
{
    return s != NULL ? rm_workload_table_find(s->workloads, addr) : NULL;
}

const rm_workload_meta_t *rm_workload_peer_by_principal(const struct st_rm_snapshot_t *s, const char *principal)
{
    return s != NULL ? rm_workload_table_find_principal(s->workloads, principal) : NULL;
}

/* ---------------------------------------------------------------------------------------------------------
 * /config_dump.
 * ------------------------------------------------------------------------------------------------------- */

static size_t json_str(char *buf, size_t len, size_t o, const char *v)
{
    o = rm_textf(buf, len, o, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            o = rm_textf(buf, len, o, "\\%c", *p);
        else if (*p < 0x20)
            o = rm_textf(buf, len, o, "\\u%04x", *p);
        else
            o = rm_textf(buf, len, o, "%c", *p);
    }
    return rm_textf(buf, len, o, "\"");
}

static size_t meta_json(char *buf, size_t len, size_t o, const rm_workload_meta_t *m)
{
    o = rm_textf(buf, len, o, "\"name\":");
    o = json_str(buf, len, o, m->name);
    o = rm_textf(buf, len, o, ",\"namespace\":");
    o = json_str(buf, len, o, m->namespace);
    o = rm_textf(buf, len, o, ",\"app\":");
    o = json_str(buf, len, o, m->app);
    o = rm_textf(buf, len, o, ",\"version\":");
    o = json_str(buf, len, o, m->version);
    o = rm_textf(buf, len, o, ",\"principal\":");
    return json_str(buf, len, o, m->principal);
}

size_t rm_workload_config_dump(const struct st_rm_snapshot_t *s, char *buf, size_t len, size_t o)
{
    static const char *const access_log_names[] = {"mesh", "on", "off"};
    const rm_workload_table_t *t = s != NULL ? s->workloads : NULL;

    o = rm_textf(buf, len, o, "{\"self\":{");
    o = meta_json(buf, len, o, rm_workload_self(s));
    o = rm_textf(buf, len, o, ",\"access_log\":\"%s\"},\"peers\":[", access_log_names[rm_workload_table_access_log(t)]);
    for (size_t i = 0; i < rm_workload_table_num_peers(t) && i < RM_WORKLOAD_DUMP_MAX_PEERS; i++) {
        char *const *addrs;
        size_t n;
        const rm_workload_meta_t *m = rm_workload_table_peer_at(t, i, &addrs, &n);
        o = rm_textf(buf, len, o, "%s{", i ? "," : "");
        o = meta_json(buf, len, o, m);
        o = rm_textf(buf, len, o, ",\"addresses\":[");
        for (size_t a = 0; a < n; a++) {
            o = rm_textf(buf, len, o, "%s", a ? "," : "");
            o = json_str(buf, len, o, addrs[a]);
        }
        o = rm_textf(buf, len, o, "]}");
    }
    return rm_textf(buf, len, o, "],\"peers_total\":%zu}", rm_workload_table_num_peers(t));
}
