/* The Kubernetes source (source.h): informers for the objects the model is built from (kube_informer.h), the
 * policy informers started and stopped as their CustomResourceDefinitions come and go, and one thread that
 * rebuilds the model (kube_model.h) when the objects or the MeshConfig file change, debounced, and delivers it when
 * its version changes. It also answers workload lookups from its pod cache, so that policy selection uses the
 * labels the API has for a pod, and the injector's lookups: a namespace's labels from its namespace cache, and the
 * server's version, asked at create and then now and again by the builder thread. */
#include "source.h"

#include "control_metrics.h"
#include "inject_lookup.h"
#include "kube_client.h"
#include "kube_informer.h"
#include "kube_model.h"
#include "workload_derive.h"
#include "mesh_load.h"

#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEFAULT_SYNC_MS     60000u
#define DEFAULT_DEBOUNCE_MS 100u
#define MAX_DELAY_MS        1000u /* a rebuild waits at most this long after the first change */
#define MESH_POLL_MS        500u  /* how often the MeshConfig file is looked at */
#define MESH_MAX            (4u << 20)
#define DEFAULT_LOOKUP_MS   2000u
#define DEFAULT_VERSION_MS  (10u * 60 * 1000)
#define UNKNOWN_VERSION_MS  10000u /* while the version is unknown, it is asked again this often */

/* The policy resources, each read at the first of its versions that the cluster serves. */
typedef struct st_policy_crd_t {
    const char *group, *plural, *kind;
    const char *versions[3];
} policy_crd_t;

static const policy_crd_t POLICY_CRDS[] = {
    {"ringmesh.io", "authorizationpolicies", "AuthorizationPolicy", {"v1alpha1", NULL}},
    {"ringmesh.io", "peerauthentications", "PeerAuthentication", {"v1alpha1", NULL}},
    {"security.istio.io", "authorizationpolicies", "AuthorizationPolicy", {"v1", "v1beta1", NULL}},
    {"security.istio.io", "peerauthentications", "PeerAuthentication", {"v1", "v1beta1", NULL}},
    /* the Gateway API's routes (installed by the user), read as the mesh's documents too (route_model.h) */
    {"gateway.networking.k8s.io", "httproutes", "HTTPRoute", {"v1", NULL}},
    {"gateway.networking.k8s.io", "grpcroutes", "GRPCRoute", {"v1", NULL}},
    {"ringmesh.io", "requestauthentications", "RequestAuthentication", {"v1alpha1", NULL}},
    {"security.istio.io", "requestauthentications", "RequestAuthentication", {"v1", "v1beta1", NULL}},
};
#define NUM_POLICY_CRDS (sizeof(POLICY_CRDS) / sizeof(POLICY_CRDS[0]))

enum { INF_NAMESPACES, INF_PODS, INF_SERVICES, INF_SLICES, INF_CRDS, NUM_CORE };

static const struct {
    const char *kind, *api_version, *path;
} CORE[NUM_CORE] = {
    {"Namespace", "v1", "/api/v1/namespaces"},
    {"Pod", "v1", "/api/v1/pods"},
    {"Service", "v1", "/api/v1/services"},
    {"EndpointSlice", "discovery.k8s.io/v1", "/apis/discovery.k8s.io/v1/endpointslices"},
    {"CustomResourceDefinition", "apiextensions.k8s.io/v1", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"},
};

typedef struct st_kube_source_t {
    rm_source_t super;
    rm_kube_client_t *client;
    rm_kube_client_t *lookup_client; /* the same API with lookup_timeout_ms: namespaces fetched, /version */
    rm_source_kube_config_t cfg;
    char *mesh_path;

    pthread_mutex_t lock; /* the caches, the flags below */
    pthread_cond_t wake;
    rm_kube_informer_t *core[NUM_CORE];
    rm_kube_informer_t *policy[NUM_POLICY_CRDS];
    const char *policy_version[NUM_POLICY_CRDS]; /* the version watched, NULL when none */
    int dirty, crds_dirty, stop;
    int64_t first_change_ms, last_change_ms;
    uint64_t pod_generation;               /* atomic */
    unsigned version_major, version_minor; /* the server's; 0.0 while unknown */
    int64_t version_due_ms;                /* when /version is asked next (builder thread) */
    int version_logged_unknown;            /* "kube_version_unknown" was logged since it was last known */

    /* the builder's own */
    char *version;    /* of the model in force */
    json_t *rejected; /* "kind ns/name" -> reason, of the last build: each is logged once */
    struct stat mesh_st;
    char *mesh_text;
    size_t mesh_len;
    int64_t mesh_checked_ms;
    rm_source_update_cb cb;
    void *cb_arg;
    int (*should_stop)(void *arg); /* while create waits */
    void *should_stop_arg;
    int running;
    pthread_t thread;
} kube_source_t;

#define KUBE_SOURCE(src) ((kube_source_t *)((char *)(src)-offsetof(kube_source_t, super)))

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rm_source_workload_clear(rm_source_workload_t *w)
{
    for (size_t i = 0; w->labels != NULL && i < w->num_labels; i++) {
        free(w->labels[i].key);
        free(w->labels[i].value);
    }
    free(w->labels);
    free(w->service_account);
    memset(w, 0, sizeof(*w));
}

/* ---------------------------------------------------------------------------------------------------------
 * Changes.
 * ------------------------------------------------------------------------------------------------------- */

static const json_t *meta(const json_t *o, const char *key)
{
    return json_object_get(json_object_get(o, "metadata"), key);
}

/* What of a pod the model and the lookups read: labels, service account, whether it is injected. */
static int pod_differs(const json_t *a, const json_t *b, int *model_relevant)
{
    const char *sa = json_string_value(json_object_get(json_object_get(a, "spec"), "serviceAccountName"));
    const char *sb = json_string_value(json_object_get(json_object_get(b, "spec"), "serviceAccountName"));
    int ia = json_object_get(meta(a, "annotations"), RM_KUBE_INJECTED_ANNOTATION) != NULL;
    int ib = json_object_get(meta(b, "annotations"), RM_KUBE_INJECTED_ANNOTATION) != NULL;
    int sa_differs = (sa == NULL) != (sb == NULL) || (sa != NULL && strcmp(sa, sb) != 0);
    /* the workloads (metric labels, access log) are part of the model too */
    *model_relevant = sa_differs || ia != ib || rm_workload_pods_differ(a, b);
    return sa_differs || !json_equal(meta(a, "labels"), meta(b, "labels")) ||
           (meta(a, "labels") == NULL) != (meta(b, "labels") == NULL);
}

static void mark_dirty(kube_source_t *ks)
{
    int64_t now = now_ms();
    if (!ks->dirty)
        ks->first_change_ms = now;
    ks->dirty = 1;
    ks->last_change_ms = now;
    pthread_cond_broadcast(&ks->wake);
}

/* Under the lock, from an informer's thread. */
// cppcheck-suppress constParameter ; the informer's callback type (kube_informer.h) passes it non-const
static void on_changed(void *arg, rm_kube_informer_t *inf, const json_t *old_obj, const json_t *new_obj)
{
    kube_source_t *ks = arg;

    if (inf == ks->core[INF_CRDS]) {
        ks->crds_dirty = 1;
        pthread_cond_broadcast(&ks->wake);
        return;
    }
    if (inf == ks->core[INF_NAMESPACES])
        return; /* kept for the lookups of other parts; the model does not read namespaces */
    if (inf == ks->core[INF_PODS]) {
        int relevant = 1;
        if (old_obj == NULL || new_obj == NULL || pod_differs(old_obj, new_obj, &relevant))
            __atomic_add_fetch(&ks->pod_generation, 1, __ATOMIC_RELEASE);
        if (old_obj != NULL && new_obj != NULL && !relevant)
            return;
    }
    mark_dirty(ks);
}

/* ---------------------------------------------------------------------------------------------------------
 * Policy informers, as their CRDs come and go.
 * ------------------------------------------------------------------------------------------------------- */

/* The version of `crd` to watch given the CRDs in the cache (under the lock), or NULL. */
static const char *wanted_version(kube_source_t *ks, const policy_crd_t *crd)
{
    char name[160];
    snprintf(name, sizeof(name), "%s.%s", crd->plural, crd->group);
    const json_t *obj = json_object_get(rm_kube_informer_cache(ks->core[INF_CRDS]), name);
    const json_t *versions = json_object_get(json_object_get(obj, "spec"), "versions"), *v;
    if (obj == NULL)
        return NULL;
    for (size_t w = 0; crd->versions[w] != NULL; w++) {
        size_t i;
        json_array_foreach(versions, i, v)
        {
            const char *n = json_string_value(json_object_get(v, "name"));
            if (n != NULL && strcmp(n, crd->versions[w]) == 0 && json_is_true(json_object_get(v, "served")))
                return crd->versions[w];
        }
    }
    return NULL;
}

static void log_policy_watch(const policy_crd_t *crd, const char *version, int started)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, started ? "kube_watch_started" : "kube_watch_stopped");
    rm_log_str(&l, "source", "kubernetes");
    rm_log_str(&l, "kind", crd->kind);
    rm_log_str(&l, "group", crd->group);
    rm_log_str(&l, "version", version);
    rm_log_str(&l, "reason",
               started ? "its CustomResourceDefinition serves this version"
                       : "its CustomResourceDefinition no longer serves this version");
    rm_log_end(&l);
}

/* Starts and stops policy informers to match the CRDs. Called without the lock. */
static void reconcile_policies(kube_source_t *ks)
{
    const char *want[NUM_POLICY_CRDS];

    pthread_mutex_lock(&ks->lock);
    for (size_t i = 0; i < NUM_POLICY_CRDS; i++)
        want[i] = wanted_version(ks, &POLICY_CRDS[i]);
    pthread_mutex_unlock(&ks->lock);
    for (size_t i = 0; i < NUM_POLICY_CRDS; i++) {
        const policy_crd_t *crd = &POLICY_CRDS[i];
        if (want[i] == ks->policy_version[i])
            continue;
        if (ks->policy[i] != NULL) {
            rm_kube_informer_t *inf = ks->policy[i];
            pthread_mutex_lock(&ks->lock);
            ks->policy[i] = NULL; /* its objects leave the model */
            mark_dirty(ks);
            pthread_mutex_unlock(&ks->lock);
            rm_kube_informer_stop(inf);
            log_policy_watch(crd, ks->policy_version[i], 0);
            ks->policy_version[i] = NULL;
        }
        if (want[i] != NULL) {
            char api[96], path[192];
            snprintf(api, sizeof(api), "%s/%s", crd->group, want[i]);
            snprintf(path, sizeof(path), "/apis/%s/%s/%s", crd->group, want[i], crd->plural);
            rm_kube_informer_config_t ic = {.kind = crd->kind,
                                            .api_version = api,
                                            .path = path,
                                            .watch_seconds = ks->cfg.watch_seconds,
                                            .timeout_ms = ks->cfg.timeout_ms,
                                            .lock = &ks->lock,
                                            .wake = &ks->wake,
                                            .changed = on_changed,
                                            .arg = ks};
            rm_kube_informer_t *inf = NULL;
            if (rm_kube_informer_start(ks->client, &ic, &inf) == 0) {
                pthread_mutex_lock(&ks->lock);
                ks->policy[i] = inf;
                pthread_mutex_unlock(&ks->lock);
                ks->policy_version[i] = want[i];
                log_policy_watch(crd, want[i], 1);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * The MeshConfig file.
 * ------------------------------------------------------------------------------------------------------- */

/* Reads the file again when it changed (its inode, size or time: a ConfigMap's swap changes the inode). Returns 1
 * when the text changed, 0 when not, or an error (logged by the caller; the old text stays). */
static int mesh_reread(kube_source_t *ks, int force, rm_config_error_t *e)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;

    if (ks->mesh_path == NULL)
        return 0;
    if (stat(ks->mesh_path, &st) != 0)
        return rm_config_error_set(e, RM_ERR_CONFIG_IO, ks->mesh_path, (rm_yaml_pos_t){0, 0}, NULL,
                                   "cannot read the MeshConfig file: %s", strerror(errno));
    if (!force && st.st_ino == ks->mesh_st.st_ino && st.st_dev == ks->mesh_st.st_dev &&
        st.st_size == ks->mesh_st.st_size && st.st_mtim.tv_sec == ks->mesh_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == ks->mesh_st.st_mtim.tv_nsec)
        return 0;
    if (rm_file_read_at(AT_FDCWD, ks->mesh_path, ks->mesh_path, MESH_MAX, 0, &data, &len, e) != 0)
        return e->code = RM_ERR_CONFIG_IO;
    ks->mesh_st = st;
    if (ks->mesh_text != NULL && len == ks->mesh_len && memcmp(data, ks->mesh_text, len) == 0) {
        free(data);
        return 0;
    }
    free(ks->mesh_text);
    ks->mesh_text = data;
    ks->mesh_len = len;
    return 1;
}

/* ---------------------------------------------------------------------------------------------------------
 * Building.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_build_ctx_t {
    kube_source_t *ks;
    json_t *now_rejected;
} build_ctx_t;

static void on_rejected(void *arg, const char *kind, const char *ns, const char *name, const rm_config_error_t *e)
{
    build_ctx_t *b = arg;
    char key[600], msg[2048];
    rm_config_error_format(e, msg, sizeof(msg));
    snprintf(key, sizeof(key), "%s %s/%s", kind, ns, name);
    const char *before = json_string_value(json_object_get(b->ks->rejected, key));
    json_object_set_new(b->now_rejected, key, json_string(msg));
    if (before != NULL && strcmp(before, msg) == 0)
        return; /* logged (and counted) when it was first refused */
    rm_control_source_error(RM_CONTROL_SOURCE_KUBERNETES, RM_SOURCE_ERR_OBJECT_REFUSED);
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_WARN, "config_rejected");
    rm_log_str(&l, "source", "kubernetes");
    rm_log_str(&l, "kind", kind);
    rm_log_str(&l, "namespace", ns);
    rm_log_str(&l, "name", name);
    rm_log_uint(&l, "line", e->line);
    rm_log_str(&l, "field", e->field);
    rm_log_str(&l, "reason", e->reason);
    rm_log_str(&l, "action", "skipped: the rest of the configuration is used without it");
    rm_log_end(&l);
}

static void log_build_rejected(const kube_source_t *ks, const rm_config_error_t *e)
{
    rm_log_line_t l;
    rm_control_source_error(RM_CONTROL_SOURCE_KUBERNETES, rm_source_error_kind_of(e->code));
    rm_log_begin(&l, RM_LOG_WARN, "config_rejected");
    rm_log_str(&l, "source", "kubernetes");
    rm_log_str(&l, "file", e->file);
    rm_log_uint(&l, "line", e->line);
    rm_log_uint(&l, "column", e->column);
    rm_log_str(&l, "field", e->field);
    rm_log_str(&l, "reason", e->reason);
    rm_log_err(&l, "error", e->code);
    rm_log_str(&l, "version_in_force", ks->version != NULL ? ks->version : "");
    rm_log_end(&l);
}

/* Builds a model from the caches (taking the lock). Returns 0 with *out, or an error in `e`. */
static int build(kube_source_t *ks, rm_mesh_model_t **out, size_t *num_docs, rm_config_error_t *e)
{
    const json_t *policies[NUM_POLICY_CRDS];
    rm_kube_objects_t objs = {.policies = policies};
    build_ctx_t b = {.ks = ks, .now_rejected = json_object()};
    int ret;

    if (b.now_rejected == NULL)
        return rm_config_error_set(e, RM_ERR_CONFIG_IO, "kubernetes", (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
    pthread_mutex_lock(&ks->lock);
    objs.pods = rm_kube_informer_cache(ks->core[INF_PODS]);
    objs.services = rm_kube_informer_cache(ks->core[INF_SERVICES]);
    objs.endpoint_slices = rm_kube_informer_cache(ks->core[INF_SLICES]);
    for (size_t i = 0; i < NUM_POLICY_CRDS; i++)
        if (ks->policy[i] != NULL)
            policies[objs.num_policies++] = rm_kube_informer_cache(ks->policy[i]);
    ret = rm_kube_model_build(&objs, ks->mesh_path, ks->mesh_text, ks->mesh_len, on_rejected, &b, out, num_docs, e);
    pthread_mutex_unlock(&ks->lock);
    json_decref(ks->rejected);
    ks->rejected = b.now_rejected;
    return ret;
}

static void log_accepted(const rm_mesh_model_t *m, size_t num_docs)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, "config_accepted");
    rm_log_str(&l, "source", "kubernetes");
    rm_log_str(&l, "version", m->version);
    rm_log_uint(&l, "services", m->num_services);
    rm_log_uint(&l, "policies", m->policies.num_policies);
    rm_log_uint(&l, "peerAuthentications", m->policies.num_peer_authns);
    rm_log_uint(&l, "objects", num_docs);
    rm_log_uint(&l, "routes", m->num_routes);
    rm_log_end(&l);
}

static void rebuild(kube_source_t *ks)
{
    rm_config_error_t *e = calloc(1, sizeof(*e));
    rm_mesh_model_t *m = NULL;
    size_t num_docs = 0;
    char *version;

    if (e == NULL)
        return;
    if (build(ks, &m, &num_docs, e) != 0) {
        log_build_rejected(ks, e);
        goto Exit;
    }
    if (m == NULL) /* build() gives a model whenever it returns 0 */
        goto Exit;
    if (ks->version != NULL && strcmp(m->version, ks->version) == 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_DEBUG, "config_unchanged");
        rm_log_str(&l, "source", "kubernetes");
        rm_log_str(&l, "version", m->version);
        rm_log_end(&l);
        goto Exit;
    }
    if ((version = strdup(m->version)) == NULL)
        goto Exit;
    free(ks->version);
    ks->version = version;
    log_accepted(m, num_docs);
    ks->cb(ks->cb_arg, m);
    m = NULL;
Exit:
    rm_mesh_model_unref(m);
    free(e);
}

/* ---------------------------------------------------------------------------------------------------------
 * The server's version and namespaces, for the injector.
 * ------------------------------------------------------------------------------------------------------- */

/* Asks /version and keeps major.minor; schedules the next ask. Called without the lock. A failure leaves the
 * version unknown (the injector's nativeSidecar auto then means the classic sidecar), logged once until known. */
static void refresh_version(kube_source_t *ks)
{
    json_t *doc = NULL;
    char err[512] = "";
    unsigned major = 0, minor = 0;
    int ret;

    if ((ret = rm_kube_get(ks->lookup_client, "/version", &doc, err, sizeof(err))) == 0 &&
        rm_inject_parse_version_info(doc, &major, &minor) != 0) {
        char *text = json_dumps(doc, JSON_COMPACT);
        snprintf(err, sizeof(err), "%s/version: neither gitVersion nor major and minor read as a version: %.200s",
                 rm_kube_client_server(ks->client), text != NULL ? text : "");
        free(text);
        ret = -EINVAL;
    }
    pthread_mutex_lock(&ks->lock);
    unsigned old_major = ks->version_major, old_minor = ks->version_minor;
    int log_unknown = ret != 0 && !ks->version_logged_unknown;
    if (ret == 0) {
        ks->version_major = major;
        ks->version_minor = minor;
        ks->version_logged_unknown = 0;
    } else {
        /* a version once known stays in force: a failed refresh says nothing about the cluster's version */
        ks->version_logged_unknown = 1;
    }
    ks->version_due_ms = now_ms() + (ks->version_major != 0 ? ks->cfg.version_refresh_ms : UNKNOWN_VERSION_MS);
    pthread_mutex_unlock(&ks->lock);

    rm_log_line_t l;
    if (ret == 0 && (major != old_major || minor != old_minor)) {
        char v[32];
        snprintf(v, sizeof(v), "%u.%u", major, minor);
        rm_log_begin(&l, RM_LOG_INFO, "kube_version");
        rm_log_str(&l, "source", "kubernetes");
        rm_log_str(&l, "gitVersion", json_string_value(json_object_get(doc, "gitVersion")));
        rm_log_str(&l, "version", v);
        rm_log_str(&l, "nativeSidecarAuto",
                   major > 1 || (major == 1 && minor >= RM_INJECT_NATIVE_MINOR) ? "native" : "classic");
        rm_log_end(&l);
    } else if (log_unknown) {
        rm_log_begin(&l, RM_LOG_WARN, "kube_version_unknown");
        rm_log_str(&l, "source", "kubernetes");
        rm_log_str(&l, "reason", err);
        rm_log_str(&l, "action",
                   old_major != 0 ? "the version learned before stays in force; asked again later"
                                  : "nativeSidecar auto injects the classic sidecar until the version "
                                    "is known; asked again later");
        rm_log_end(&l);
    }
    json_decref(doc);
}

static void *builder_main(void *arg)
{
    kube_source_t *ks = arg;
    unsigned debounce = ks->cfg.debounce_ms;

    pthread_mutex_lock(&ks->lock);
    while (!ks->stop) {
        int64_t now = now_ms();
        if (ks->crds_dirty) {
            ks->crds_dirty = 0;
            pthread_mutex_unlock(&ks->lock);
            reconcile_policies(ks);
            pthread_mutex_lock(&ks->lock);
            continue;
        }
        if (now >= ks->version_due_ms) {
            pthread_mutex_unlock(&ks->lock);
            refresh_version(ks);
            pthread_mutex_lock(&ks->lock);
            continue;
        }
        if (now - ks->mesh_checked_ms >= MESH_POLL_MS) {
            rm_config_error_t *e = calloc(1, sizeof(*e));
            ks->mesh_checked_ms = now;
            pthread_mutex_unlock(&ks->lock);
            int r = e != NULL ? mesh_reread(ks, 0, e) : 0;
            if (r < 0)
                log_build_rejected(ks, e);
            free(e);
            pthread_mutex_lock(&ks->lock);
            if (r > 0)
                mark_dirty(ks);
            continue;
        }
        if (ks->dirty && (now - ks->last_change_ms >= debounce || now - ks->first_change_ms >= MAX_DELAY_MS)) {
            ks->dirty = 0;
            pthread_mutex_unlock(&ks->lock);
            rebuild(ks);
            pthread_mutex_lock(&ks->lock);
            continue;
        }
        int64_t wake = ks->mesh_checked_ms + MESH_POLL_MS;
        if (ks->version_due_ms < wake)
            wake = ks->version_due_ms;
        if (ks->dirty) {
            int64_t due = ks->last_change_ms + debounce;
            if (due > ks->first_change_ms + MAX_DELAY_MS)
                due = ks->first_change_ms + MAX_DELAY_MS;
            if (due < wake)
                wake = due;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait = wake - now_ms();
        if (wait < 1)
            wait = 1;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&ks->wake, &ks->lock, &ts);
    }
    pthread_mutex_unlock(&ks->lock);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------------------
 * The source's operations.
 * ------------------------------------------------------------------------------------------------------- */

static int kube_source_start(rm_source_t *src, rm_source_update_cb cb, void *arg)
{
    kube_source_t *ks = KUBE_SOURCE(src);
    sigset_t all, old;
    int ret;

    if (ks->running)
        return -EBUSY;
    if (cb == NULL)
        return -EINVAL;
    ks->cb = cb;
    ks->cb_arg = arg;
    ks->stop = 0;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = -pthread_create(&ks->thread, NULL, builder_main, ks);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret == 0)
        ks->running = 1;
    return ret;
}

static void kube_source_stop(rm_source_t *src)
{
    kube_source_t *ks = KUBE_SOURCE(src);
    if (!ks->running)
        return;
    pthread_mutex_lock(&ks->lock);
    ks->stop = 1;
    pthread_cond_broadcast(&ks->wake);
    pthread_mutex_unlock(&ks->lock);
    pthread_join(ks->thread, NULL);
    ks->running = 0;
}

static void kube_source_free(kube_source_t *ks)
{
    for (size_t i = 0; i < NUM_POLICY_CRDS; i++)
        rm_kube_informer_stop(ks->policy[i]);
    for (size_t i = 0; i < NUM_CORE; i++)
        rm_kube_informer_stop(ks->core[i]);
    rm_kube_client_free(ks->client);
    rm_kube_client_free(ks->lookup_client);
    pthread_cond_destroy(&ks->wake);
    pthread_mutex_destroy(&ks->lock);
    json_decref(ks->rejected);
    free(ks->mesh_path);
    free(ks->mesh_text);
    free(ks->version);
    free(ks);
}

static void kube_source_destroy(rm_source_t *src)
{
    if (src == NULL)
        return;
    kube_source_stop(src);
    kube_source_free(KUBE_SOURCE(src));
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const rm_label_t *)a)->key, ((const rm_label_t *)b)->key);
}

static int kube_lookup_workload(rm_source_t *src, const char *ns, const char *name, rm_source_workload_t *out)
{
    kube_source_t *ks = KUBE_SOURCE(src);
    char key[512];
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (snprintf(key, sizeof(key), "%s/%s", ns, name) >= (int)sizeof(key))
        return -ENOENT;
    pthread_mutex_lock(&ks->lock);
    const json_t *pod = json_object_get(rm_kube_informer_cache(ks->core[INF_PODS]), key);
    if (pod == NULL) {
        ret = -ENOENT;
        goto Exit;
    }
    const char *sa = json_string_value(json_object_get(json_object_get(pod, "spec"), "serviceAccountName"));
    const json_t *labels = meta(pod, "labels"), *v;
    const char *k;
    if ((out->service_account = strdup(sa != NULL && sa[0] != '\0' ? sa : "default")) == NULL)
        goto NoMem;
    if (json_object_size(labels) > 0 && (out->labels = calloc(json_object_size(labels), sizeof(rm_label_t))) == NULL)
        goto NoMem;
    json_object_foreach((json_t *)labels, k, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL)
            continue;
        rm_label_t *l = &out->labels[out->num_labels];
        if ((l->key = strdup(k)) == NULL || (l->value = strdup(s)) == NULL) {
            free(l->key);
            goto NoMem;
        }
        out->num_labels++;
    }
    if (out->num_labels > 1)
        qsort(out->labels, out->num_labels, sizeof(*out->labels), cmp_label);
    goto Exit;
NoMem:
    rm_source_workload_clear(out);
    ret = -ENOMEM;
Exit:
    pthread_mutex_unlock(&ks->lock);
    return ret;
}

static uint64_t kube_workloads_generation(rm_source_t *src)
{
    return __atomic_load_n(&KUBE_SOURCE(src)->pod_generation, __ATOMIC_ACQUIRE);
}

/* A namespace name as the API allows it (a DNS label), so that it can go into a path as it is. */
static int valid_namespace(const char *ns)
{
    size_t n = strlen(ns);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((ns[i] >= 'a' && ns[i] <= 'z') || (ns[i] >= '0' && ns[i] <= '9') || ns[i] == '-'))
            return 0;
    return 1;
}

/* A copy of the labels of namespace object `obj` (its string values only). */
static json_t *labels_copy(const json_t *obj)
{
    json_t *out = json_object(), *v;
    const char *k;
    if (out == NULL)
        return NULL;
    json_object_foreach((json_t *)meta(obj, "labels"), k, v)
    {
        if (json_is_string(v) && json_object_set_new(out, k, json_string(json_string_value(v))) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static void log_namespace_lookup(const char *event, int level, const char *ns, const char *reason)
{
    rm_log_line_t l;
    rm_log_begin(&l, level, event);
    rm_log_str(&l, "source", "kubernetes");
    rm_log_str(&l, "namespace", ns);
    rm_log_str(&l, "reason", reason);
    rm_log_end(&l);
}

static int kube_namespace_labels(rm_source_t *src, const char *ns, json_t **labels)
{
    kube_source_t *ks = KUBE_SOURCE(src);
    char path[128], err[768];
    json_t *obj = NULL;
    int ret;

    *labels = NULL;
    if (!valid_namespace(ns))
        return -EINVAL;
    pthread_mutex_lock(&ks->lock);
    const json_t *cached = json_object_get(rm_kube_informer_cache(ks->core[INF_NAMESPACES]), ns);
    if (cached != NULL)
        *labels = labels_copy(cached);
    pthread_mutex_unlock(&ks->lock);
    if (cached != NULL)
        return *labels != NULL ? 0 : -ENOMEM;

    /* Not in the cache: created a moment ago (its watch event is on its way), or not there at all. One GET. */
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s", ns);
    int64_t start = now_ms();
    ret = rm_kube_get(ks->lookup_client, path, &obj, err, sizeof(err));
    if (ret == 0 && (*labels = labels_copy(obj)) == NULL)
        ret = -ENOMEM;
    if (ret == 0) {
        log_namespace_lookup("namespace_fetched", RM_LOG_DEBUG, ns,
                             "not in the namespace cache yet: read from the API");
    } else if (ret == 404) {
        ret = -ENOENT;
        log_namespace_lookup("namespace_lookup_failed", RM_LOG_WARN, ns, err);
    } else if (ret != -ENOMEM) {
        rm_control_source_error(RM_CONTROL_SOURCE_KUBERNETES, RM_SOURCE_ERR_LOOKUP_FAILED);
        ret = ret == RM_KUBE_ERR_TRANSPORT && now_ms() - start + 50 >= (int64_t)ks->cfg.lookup_timeout_ms ? -ETIMEDOUT
                                                                                                          : -EIO;
        log_namespace_lookup("namespace_lookup_failed", RM_LOG_WARN, ns, err);
    }
    json_decref(obj);
    return ret;
}

static int kube_server_version(rm_source_t *src, unsigned *major, unsigned *minor)
{
    kube_source_t *ks = KUBE_SOURCE(src);
    int ret = -ENOENT;
    pthread_mutex_lock(&ks->lock);
    if (ks->version_major != 0) {
        *major = ks->version_major;
        *minor = ks->version_minor;
        ret = 0;
    }
    pthread_mutex_unlock(&ks->lock);
    return ret;
}

static const rm_source_ops_t kube_source_ops = {
    .name = "kubernetes",
    .start = kube_source_start,
    .stop = kube_source_stop,
    .destroy = kube_source_destroy,
    .lookup_workload = kube_lookup_workload,
    .workloads_generation = kube_workloads_generation,
    .namespace_labels = kube_namespace_labels,
    .server_version = kube_server_version,
};

/* Waits until every informer started so far has listed once, or the deadline. Under the lock. Returns 0 or
 * -ETIMEDOUT with the informers still waiting named in `err`. */
static int wait_synced(kube_source_t *ks, int64_t deadline, char *err, size_t errlen)
{
    for (;;) {
        rm_kube_informer_t *pending = NULL;
        for (size_t i = 0; i < NUM_CORE && pending == NULL; i++)
            if (!rm_kube_informer_synced(ks->core[i]))
                pending = ks->core[i];
        for (size_t i = 0; i < NUM_POLICY_CRDS && pending == NULL; i++)
            if (ks->policy[i] != NULL && !rm_kube_informer_synced(ks->policy[i]))
                pending = ks->policy[i];
        if (pending == NULL)
            return 0;
        int64_t now = now_ms();
        if (ks->should_stop != NULL && ks->should_stop(ks->should_stop_arg)) {
            snprintf(err, errlen, "%s: stopped while waiting for the first lists", rm_kube_client_server(ks->client));
            return -ECANCELED;
        }
        if (now >= deadline) {
            const char *why = rm_kube_informer_last_error(pending);
            snprintf(err, errlen, "%s: the first list of %s did not complete within %u ms%s%s",
                     rm_kube_client_server(ks->client), rm_kube_informer_kind(pending), ks->cfg.sync_timeout_ms,
                     why[0] != '\0' ? ": " : "", why);
            return -ETIMEDOUT;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait = deadline - now < 200 ? deadline - now : 200;
        ts.tv_nsec += wait * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&ks->wake, &ks->lock, &ts);
    }
}

int rm_source_kube_create(const rm_source_kube_config_t *cfg, rm_source_t **out, rm_mesh_model_t **initial, char *err,
                          size_t errlen)
{
    rm_kube_config_t kc;
    rm_config_error_t *e = NULL;
    kube_source_t *ks = NULL;
    rm_mesh_model_t *m = NULL;
    size_t num_docs = 0;
    int ret;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if ((e = calloc(1, sizeof(*e))) == NULL || (ks = calloc(1, sizeof(*ks))) == NULL) {
        ret = rm_config_fail(err, errlen, -ENOMEM, "out of memory");
        free(e);
        return ret;
    }
    ks->super.ops = &kube_source_ops;
    ks->cfg = *cfg;
    ks->cfg.kubeconfig = ks->cfg.sa_dir = ks->cfg.mesh_config = NULL; /* not kept */
    ks->should_stop = cfg->should_stop;
    ks->should_stop_arg = cfg->should_stop_arg;
    if (ks->cfg.timeout_ms == 0)
        ks->cfg.timeout_ms = 30000;
    if (ks->cfg.sync_timeout_ms == 0)
        ks->cfg.sync_timeout_ms = DEFAULT_SYNC_MS;
    if (ks->cfg.debounce_ms == 0)
        ks->cfg.debounce_ms = DEFAULT_DEBOUNCE_MS;
    if (ks->cfg.lookup_timeout_ms == 0)
        ks->cfg.lookup_timeout_ms = DEFAULT_LOOKUP_MS;
    if (ks->cfg.version_refresh_ms == 0)
        ks->cfg.version_refresh_ms = DEFAULT_VERSION_MS;
    pthread_mutex_init(&ks->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ks->wake, &ca);
    pthread_condattr_destroy(&ca);

    if (cfg->mesh_config != NULL) {
        if ((ks->mesh_path = strdup(cfg->mesh_config)) == NULL) {
            ret = rm_config_fail(err, errlen, -ENOMEM, "out of memory");
            goto Exit;
        }
        if ((ret = mesh_reread(ks, 1, e)) < 0) {
            rm_config_error_format(e, err, errlen);
            goto Exit;
        }
        ks->mesh_checked_ms = now_ms();
    }
    /* two clients of the same API: the informers' and the lookups' (a shorter bound, for the webhook's sake) */
    for (int i = 0; i < 2; i++) {
        if (cfg->kubeconfig != NULL) {
            if ((ret = rm_kube_config_load_kubeconfig(cfg->kubeconfig, NULL, 0, &kc, e)) != 0) {
                rm_config_error_format(e, err, errlen);
                goto Exit;
            }
        } else if ((ret = rm_kube_config_in_cluster(cfg->sa_dir, &kc, err, errlen)) != 0) {
            goto Exit;
        }
        if ((ret = rm_kube_client_new(&kc, i == 0 ? ks->cfg.timeout_ms : ks->cfg.lookup_timeout_ms,
                                      i == 0 ? &ks->client : &ks->lookup_client, err, errlen)) != 0) {
            rm_kube_config_clear(&kc);
            goto Exit;
        }
    }
    refresh_version(ks);
    for (size_t i = 0; i < NUM_CORE; i++) {
        rm_kube_informer_config_t ic = {.kind = CORE[i].kind,
                                        .api_version = CORE[i].api_version,
                                        .path = CORE[i].path,
                                        .watch_seconds = ks->cfg.watch_seconds,
                                        .timeout_ms = ks->cfg.timeout_ms,
                                        .lock = &ks->lock,
                                        .wake = &ks->wake,
                                        .changed = on_changed,
                                        .arg = ks};
        if ((ret = rm_kube_informer_start(ks->client, &ic, &ks->core[i])) != 0) {
            rm_config_fail(err, errlen, ret, "cannot start the %s informer: %s", CORE[i].kind, strerror(-ret));
            goto Exit;
        }
    }
    int64_t deadline = now_ms() + ks->cfg.sync_timeout_ms;
    pthread_mutex_lock(&ks->lock);
    ret = wait_synced(ks, deadline, err, errlen);
    ks->crds_dirty = 0;
    pthread_mutex_unlock(&ks->lock);
    if (ret != 0)
        goto Exit;
    reconcile_policies(ks);
    pthread_mutex_lock(&ks->lock);
    ret = wait_synced(ks, deadline, err, errlen);
    ks->dirty = 0;
    pthread_mutex_unlock(&ks->lock);
    if (ret != 0)
        goto Exit;
    if ((ret = build(ks, &m, &num_docs, e)) != 0) {
        rm_config_error_format(e, err, errlen);
        goto Exit;
    }
    if ((ks->version = strdup(m->version)) == NULL) {
        ret = rm_config_fail(err, errlen, -ENOMEM, "out of memory");
        goto Exit;
    }
    log_accepted(m, num_docs);
    *out = &ks->super;
    *initial = m;
    m = NULL;
    ks = NULL;
    ret = 0;
Exit:
    rm_mesh_model_unref(m);
    if (ks != NULL)
        kube_source_free(ks);
    free(e);
    return ret;
}
