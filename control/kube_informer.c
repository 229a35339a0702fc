/* The informer (kube_informer.h): list, watch, relist, back off. */
#include "kube_informer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "control_metrics.h"
#include "ringmesh/log.h"

#define KEY_MAX 512

struct st_rm_kube_informer_t {
    rm_kube_client_t *client;
    rm_kube_informer_config_t cfg;
    char *kind, *api_version, *path;
    json_t *cache;
    char rv[128]; /* the resourceVersion to watch from */
    int synced;
    char last_error[512];
    int stop; /* atomic */
    pthread_t thread;
    pthread_mutex_t sleep_lock;
    pthread_cond_t sleep_cond;
    uint64_t lists, watches;
};

unsigned rm__kube_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, uint32_t rnd)
{
    uint64_t ceiling = base_ms;
    for (unsigned i = 0; i < attempt && ceiling < max_ms; i++)
        ceiling *= 2;
    if (ceiling > max_ms)
        ceiling = max_ms;
    return (unsigned)(rnd % (ceiling + 1));
}

const char *rm__kube_object_key(const json_t *obj, char *buf, size_t len)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    int n;

    if (name == NULL || name[0] == '\0')
        return NULL;
    n = ns != NULL && ns[0] != '\0' ? snprintf(buf, len, "%s/%s", ns, name) : snprintf(buf, len, "%s", name);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

static uint32_t random32(void)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
        r = (uint32_t)time(NULL) * 2654435761u;
    return r;
}

static int stopping(rm_kube_informer_t *inf)
{
    return __atomic_load_n(&inf->stop, __ATOMIC_ACQUIRE);
}

/* Sleeps `ms` or until stopped. */
static void nap(rm_kube_informer_t *inf, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&inf->sleep_lock);
    while (!stopping(inf) && pthread_cond_timedwait(&inf->sleep_cond, &inf->sleep_lock, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&inf->sleep_lock);
}

static void log_failure(rm_kube_informer_t *inf, const char *event, int code, const char *err, unsigned retry_ms)
{
    rm_log_line_t l;
    rm_control_source_error(RM_CONTROL_SOURCE_KUBERNETES, strcmp(event, "kube_list_failed") == 0
                                                              ? RM_SOURCE_ERR_LIST_FAILED
                                                              : RM_SOURCE_ERR_WATCH_FAILED);
    rm_log_begin(&l, RM_LOG_WARN, event);
    rm_log_str(&l, "source", "kubernetes");
    rm_log_str(&l, "kind", inf->kind);
    rm_log_str(&l, "reason", err);
    rm_log_int(&l, "status", code > 0 ? code : 0);
    rm_log_uint(&l, "retryMs", retry_ms);
    rm_log_end(&l);
    pthread_mutex_lock(inf->cfg.lock);
    snprintf(inf->last_error, sizeof(inf->last_error), "%s", err);
    pthread_cond_broadcast(inf->cfg.wake);
    pthread_mutex_unlock(inf->cfg.lock);
}

/* Fills in kind and apiVersion (list items lack them) and returns the object's key. */
static const char *prepare(rm_kube_informer_t *inf, json_t *obj, char *key, size_t len)
{
    if (!json_is_object(obj))
        return NULL;
    json_object_set_new(obj, "kind", json_string(inf->kind));
    json_object_set_new(obj, "apiVersion", json_string(inf->api_version));
    /* what no decision reads and what makes objects large */
    json_object_del(json_object_get(obj, "metadata"), "managedFields");
    return rm__kube_object_key(obj, key, len);
}

static char *list_url(rm_kube_informer_t *inf, const char *cont)
{
    char *url, *esc = NULL;
    int n;
    if (cont != NULL && cont[0] != '\0') {
        /* continue tokens are base64: '+', '/' and '=' need escaping in a query */
        size_t l = strlen(cont);
        if ((esc = malloc(3 * l + 1)) == NULL)
            return NULL;
        size_t o = 0;
        for (size_t i = 0; i < l; i++) {
            unsigned char c = (unsigned char)cont[i];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                c == '.' || c == '~')
                esc[o++] = (char)c;
            else
                o += (size_t)sprintf(esc + o, "%%%02X", c);
        }
        esc[o] = '\0';
        n = asprintf(&url, "%s%climit=%d&continue=%s", inf->path, strchr(inf->path, '?') != NULL ? '&' : '?',
                     RM_KUBE_LIST_LIMIT, esc);
    } else {
        n = asprintf(&url, "%s%climit=%d", inf->path, strchr(inf->path, '?') != NULL ? '&' : '?', RM_KUBE_LIST_LIMIT);
    }
    free(esc);
    return n < 0 ? NULL : url;
}

/* Lists every page into a new cache and swaps it in. Returns 0 or the failure (err set). */
static int list_all(rm_kube_informer_t *inf, char *err, size_t errlen)
{
    json_t *fresh = json_object(), *page = NULL;
    char *cont = NULL, rv[sizeof(inf->rv)] = "", key[KEY_MAX];
    int ret = 0, restarts = 0;

    if (fresh == NULL)
        return -ENOMEM;
    for (;;) {
        char *url = list_url(inf, cont);
        if (url == NULL) {
            ret = -ENOMEM;
            break;
        }
        ret = rm_kube_get(inf->client, url, &page, err, errlen);
        free(url);
        if (ret == 410 && cont != NULL && restarts < 3) {
            /* the continue token expired: the list starts over, from a new snapshot */
            rm_log_line_t l;
            rm_control_source_error(RM_CONTROL_SOURCE_KUBERNETES, RM_SOURCE_ERR_RELIST);
            rm_log_begin(&l, RM_LOG_INFO, "kube_list_restarted");
            rm_log_str(&l, "source", "kubernetes");
            rm_log_str(&l, "kind", inf->kind);
            rm_log_str(&l, "reason", err);
            rm_log_end(&l);
            free(cont);
            cont = NULL;
            json_object_clear(fresh);
            restarts++;
            continue;
        }
        if (ret != 0 || stopping(inf))
            break;
        json_t *items = json_object_get(page, "items"), *md = json_object_get(page, "metadata"), *it;
        const char *next = json_string_value(json_object_get(md, "continue"));
        const char *prv = json_string_value(json_object_get(md, "resourceVersion"));
        size_t i;
        if (!json_is_array(items) && !json_is_null(items) && items != NULL) {
            ret = rm_config_fail(err, errlen, RM_KUBE_ERR_ANSWER, "LIST %s: the answer has no items list", inf->path);
            break;
        }
        json_array_foreach(items, i, it)
        {
            const char *k = prepare(inf, it, key, sizeof(key));
            if (k != NULL)
                json_object_set(fresh, k, it);
        }
        if (prv != NULL)
            snprintf(rv, sizeof(rv), "%s", prv);
        free(cont);
        cont = next != NULL && next[0] != '\0' ? strdup(next) : NULL;
        json_decref(page);
        page = NULL;
        if (cont == NULL)
            break;
    }
    json_decref(page);
    free(cont);
    if (ret == 0 && !stopping(inf)) {
        pthread_mutex_lock(inf->cfg.lock);
        json_decref(inf->cache);
        inf->cache = fresh;
        fresh = NULL;
        snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
        inf->synced = 1;
        inf->last_error[0] = '\0';
        inf->lists++;
        inf->cfg.changed(inf->cfg.arg, inf, NULL, NULL);
        pthread_cond_broadcast(inf->cfg.wake);
        pthread_mutex_unlock(inf->cfg.lock);
    }
    json_decref(fresh);
    return ret;
}

typedef struct st_watch_state_t {
    rm_kube_informer_t *inf;
    char *err;
    size_t errlen;
    uint64_t events;
} watch_state_t;

static int on_event(void *arg, const char *type, json_t *obj)
{
    watch_state_t *ws = arg;
    rm_kube_informer_t *inf = ws->inf;
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    char key[KEY_MAX];
    const char *k;

    ws->events++;
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = rm__kube_status_message(obj);
        rm_config_fail(ws->err, ws->errlen, code > 0 ? (int)code : RM_KUBE_ERR_ANSWER, "WATCH %s: ERROR event %d: %s",
                       inf->path, (int)code, msg);
        return code > 0 ? (int)code : RM_KUBE_ERR_ANSWER;
    }
    if (strcmp(type, "BOOKMARK") == 0) {
        if (rv != NULL)
            snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
        return 0;
    }
    int deleted = strcmp(type, "DELETED") == 0;
    if (!deleted && strcmp(type, "ADDED") != 0 && strcmp(type, "MODIFIED") != 0)
        return 0; /* a type this version does not know: skipped */
    if ((k = prepare(inf, obj, key, sizeof(key))) == NULL)
        return 0;
    pthread_mutex_lock(inf->cfg.lock);
    json_t *old = json_incref(json_object_get(inf->cache, k));
    if (deleted)
        json_object_del(inf->cache, k);
    else
        json_object_set(inf->cache, k, obj);
    if (rv != NULL)
        snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
    inf->cfg.changed(inf->cfg.arg, inf, old, deleted ? NULL : obj);
    pthread_mutex_unlock(inf->cfg.lock);
    json_decref(old);
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *informer_main(void *arg)
{
    rm_kube_informer_t *inf = arg;
    char err[1024];
    unsigned attempt = 0;
    int need_list = 1;

    while (!stopping(inf)) {
        int ret;
        if (need_list) {
            if ((ret = list_all(inf, err, sizeof(err))) != 0) {
                if (stopping(inf))
                    break;
                unsigned ms =
                    rm__kube_backoff_ms(attempt++, RM_KUBE_BACKOFF_BASE_MS, RM_KUBE_BACKOFF_MAX_MS, random32());
                log_failure(inf, "kube_list_failed", ret, err, ms);
                nap(inf, ms);
                continue;
            }
            need_list = 0;
            attempt = 0;
        }
        unsigned secs = inf->cfg.watch_seconds + random32() % (inf->cfg.watch_seconds / 5 + 1);
        char *url;
        if (asprintf(&url, "%s%cwatch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u", inf->path,
                     strchr(inf->path, '?') != NULL ? '&' : '?', inf->rv, secs) < 0) {
            nap(inf, RM_KUBE_BACKOFF_MAX_MS);
            continue;
        }
        watch_state_t ws = {.inf = inf, .err = err, .errlen = sizeof(err)};
        int64_t began = mono_ms();
        __atomic_add_fetch(&inf->watches, 1, __ATOMIC_RELAXED);
        ret = rm_kube_watch(inf->client, url, secs * 1000 + inf->cfg.timeout_ms, on_event, &ws, &inf->stop, err,
                            sizeof(err));
        free(url);
        if (stopping(inf))
            break;
        if (ret == 410) {
            /* the resourceVersion is too old (history compacted): list again, at once */
            rm_log_line_t l;
            rm_control_source_error(RM_CONTROL_SOURCE_KUBERNETES, RM_SOURCE_ERR_RELIST);
            rm_log_begin(&l, RM_LOG_INFO, "kube_watch_expired");
            rm_log_str(&l, "source", "kubernetes");
            rm_log_str(&l, "kind", inf->kind);
            rm_log_str(&l, "reason", err);
            rm_log_end(&l);
            need_list = 1;
            continue;
        }
        if (ret == 0 && (ws.events > 0 || mono_ms() - began >= 1000)) {
            attempt = 0; /* the server ended a watch that worked: resume at once */
            continue;
        }
        if (ret == 0)
            snprintf(err, sizeof(err), "WATCH %s: the server ended the watch at once", inf->path);
        unsigned ms = rm__kube_backoff_ms(attempt++, RM_KUBE_BACKOFF_BASE_MS, RM_KUBE_BACKOFF_MAX_MS, random32());
        log_failure(inf, "kube_watch_failed", ret, err, ms);
        nap(inf, ms);
    }
    return NULL;
}

int rm_kube_informer_start(rm_kube_client_t *client, const rm_kube_informer_config_t *cfg, rm_kube_informer_t **out)
{
    rm_kube_informer_t *inf;
    sigset_t all, old;
    int ret;

    if ((inf = calloc(1, sizeof(*inf))) == NULL)
        return -ENOMEM;
    inf->client = client;
    inf->cfg = *cfg;
    if (inf->cfg.watch_seconds == 0)
        inf->cfg.watch_seconds = 300;
    if ((inf->kind = strdup(cfg->kind)) == NULL || (inf->api_version = strdup(cfg->api_version)) == NULL ||
        (inf->path = strdup(cfg->path)) == NULL || (inf->cache = json_object()) == NULL) {
        ret = -ENOMEM;
        goto Fail;
    }
    pthread_mutex_init(&inf->sleep_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&inf->sleep_cond, &ca);
    pthread_condattr_destroy(&ca);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = -pthread_create(&inf->thread, NULL, informer_main, inf);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret != 0) {
        pthread_cond_destroy(&inf->sleep_cond);
        pthread_mutex_destroy(&inf->sleep_lock);
        goto Fail;
    }
    *out = inf;
    return 0;
Fail:
    free(inf->kind);
    free(inf->api_version);
    free(inf->path);
    json_decref(inf->cache);
    free(inf);
    return ret;
}

void rm_kube_informer_stop(rm_kube_informer_t *inf)
{
    if (inf == NULL)
        return;
    pthread_mutex_lock(&inf->sleep_lock);
    __atomic_store_n(&inf->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&inf->sleep_cond);
    pthread_mutex_unlock(&inf->sleep_lock);
    pthread_join(inf->thread, NULL);
    pthread_cond_destroy(&inf->sleep_cond);
    pthread_mutex_destroy(&inf->sleep_lock);
    json_decref(inf->cache);
    free(inf->kind);
    free(inf->api_version);
    free(inf->path);
    free(inf);
}

json_t *rm_kube_informer_cache(rm_kube_informer_t *inf)
{
    return inf->cache;
}

int rm_kube_informer_synced(const rm_kube_informer_t *inf)
{
    return inf->synced;
}

const char *rm_kube_informer_last_error(const rm_kube_informer_t *inf)
{
    return inf->last_error;
}

const char *rm_kube_informer_kind(const rm_kube_informer_t *inf)
{
    return inf->kind;
}

const char *rm_kube_informer_api_version(const rm_kube_informer_t *inf)
{
    return inf->api_version;
}

void rm_kube_informer_counts(rm_kube_informer_t *inf, uint64_t *lists, uint64_t *watches)
{
    pthread_mutex_lock(inf->cfg.lock);
    *lists = inf->lists;
    pthread_mutex_unlock(inf->cfg.lock);
    *watches = __atomic_load_n(&inf->watches, __ATOMIC_RELAXED);
}
