/* The trust bundle published into the cluster (kube_cluster.h): the ringmesh-root-cert ConfigMap of every
 * namespace, and the caBundle of the injector's webhooks.
 *
 * One thread reconciles. Two informers feed it: Namespaces, and the ConfigMaps named ringmesh-root-cert in every
 * namespace (a fieldSelector on metadata.name, which is what RBAC's resourceNames allows for list and watch). Any
 * change they see wakes the thread; so does the resync period, which is also when the webhook configuration is read
 * again (RBAC gives the control plane only get and patch on it, no watch). Every write follows a comparison with what
 * the API holds, so replicas that share the CA write nothing once one of them has. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "inject_webhook.h"
#include "kube_cluster.h"
#include "kube_informer.h"
#include "ringmesh/log.h"

#define DEFAULT_RESYNC_MS 30000
#define RETRY_MIN_MS      250
#define NS_PATH           "/api/v1/namespaces"
#define CM_PATH           "/api/v1/configmaps?fieldSelector=metadata.name%3D" RM_ROOT_CERT_CONFIGMAP
#define MANAGED_BY_LABEL  "app.kubernetes.io/managed-by"
#define MANAGED_BY_VALUE  "ringmesh-control"

struct st_rm_kube_publisher_t {
    rm_kube_publisher_config_t cfg;
    char *bundle, *webhook_config;
    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* guards the informers' caches, dirty and stop */
    pthread_cond_t wake;
    int dirty, stop;
    rm_kube_informer_t *namespaces, *configmaps;
    int webhook_missing_logged;
    int64_t last_update_ms;        /* when a ConfigMap was last updated in place (0: never) */
    int64_t updates_held_until_ms; /* updates wait until then (another writer disagrees); 0: none held */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_changed(void *arg, rm_kube_informer_t *inf, const json_t *old_obj, const json_t *new_obj)
{
    rm_kube_publisher_t *p = arg;
    (void)inf;
    (void)old_obj;
    (void)new_obj;
    p->dirty = 1; /* under p->lock: the informers run this under it */
    pthread_cond_signal(&p->wake);
}

/* ---- the webhook configuration ---- */

/* Returns 0 when done (patched, already current, or nothing to do), nonzero to be retried soon. */
static int reconcile_webhook(rm_kube_publisher_t *p)
{
    char err[768];
    unsigned patched = 0;
    int ret;

    if (p->webhook_config == NULL)
        return 0;
    ret = rm_inject_webhook_publish_ca_bundle(p->cfg.client, p->webhook_config, p->bundle, p->cfg.bundle_len, &patched,
                                              err, sizeof(err));
    if (ret == 0) {
        p->webhook_missing_logged = 0;
        if (patched != 0) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_INFO, "webhook_ca_bundle_patched");
            rm_log_str(&l, "mutatingWebhookConfiguration", p->webhook_config);
            rm_log_uint(&l, "webhooks", patched);
            rm_log_end(&l);
        }
        return 0;
    }
    if (ret != 404 || !p->webhook_missing_logged) {
        rm_log_line_t l;
        rm_log_begin(&l, ret == 404 ? RM_LOG_INFO : RM_LOG_WARN,
                     ret == 404 ? "webhook_config_missing" : "webhook_ca_bundle_not_published");
        rm_log_str(&l, "mutatingWebhookConfiguration", p->webhook_config);
        rm_log_str(&l, "reason", err);
        rm_log_end(&l);
        p->webhook_missing_logged = ret == 404;
    }
    return -1;
}

/* ---- the root-cert ConfigMaps ---- */

typedef struct st_cm_work_t {
    char *ns;
    json_t *existing; /* NULL: create */
} cm_work_t;

/* Under p->lock: the namespaces whose ConfigMap is missing or differs. */
static int collect_work(rm_kube_publisher_t *p, cm_work_t **out, size_t *num)
{
    json_t *nss = rm_kube_informer_cache(p->namespaces), *cms = rm_kube_informer_cache(p->configmaps), *ns;
    const char *key;
    cm_work_t *w;
    size_t n = 0;

    *out = NULL;
    *num = 0;
    if (!rm_kube_informer_synced(p->namespaces) || !rm_kube_informer_synced(p->configmaps))
        return -1; /* not yet: the informers wake us when they have listed */
    if ((w = calloc(json_object_size(nss) + 1, sizeof(*w))) == NULL)
        return -1;
    json_object_foreach(nss, key, ns)
    {
        const char *phase = json_string_value(json_object_get(json_object_get(ns, "status"), "phase"));
        char cm_key[400];
        json_t *cm;
        if (phase != NULL && strcmp(phase, "Terminating") == 0)
            continue; /* the API refuses creations there */
        snprintf(cm_key, sizeof(cm_key), "%s/%s", key, RM_ROOT_CERT_CONFIGMAP);
        cm = json_object_get(cms, cm_key);
        const char *have = json_string_value(json_object_get(json_object_get(cm, "data"), RM_ROOT_CERT_KEY));
        if (cm != NULL && have != NULL && strcmp(have, p->bundle) == 0)
            continue;
        if ((w[n].ns = strdup(key)) == NULL)
            break;
        w[n].existing = cm != NULL ? json_deep_copy(cm) : NULL;
        ++n;
    }
    *out = w;
    *num = n;
    return 0;
}

/* Returns 0, or nonzero when a write failed and the round should be retried soon. */
static int publish_one(rm_kube_publisher_t *p, cm_work_t *w)
{
    char path[600], err[768];
    char *body = NULL;
    json_t *obj;
    int ret;

    if (w->existing != NULL) {
        obj = json_incref(w->existing);
        json_t *data = json_object_get(obj, "data");
        if (!json_is_object(data)) {
            data = json_object();
            json_object_set_new(obj, "data", data);
        }
        json_object_set_new(data, RM_ROOT_CERT_KEY, json_string(p->bundle));
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/%s", w->ns, RM_ROOT_CERT_CONFIGMAP);
    } else {
        obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                        "metadata", "name", RM_ROOT_CERT_CONFIGMAP, "namespace", w->ns, "labels", MANAGED_BY_LABEL,
                        MANAGED_BY_VALUE, "data", RM_ROOT_CERT_KEY, p->bundle);
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", w->ns);
    }
    if (obj == NULL || (body = json_dumps(obj, JSON_COMPACT)) == NULL) {
        json_decref(obj);
        return -ENOMEM;
    }
    ret = rm_kube_send(p->cfg.client, w->existing != NULL ? "PUT" : "POST", path, "application/json", body, NULL, err,
                       sizeof(err));
    free(body);
    json_decref(obj);
    rm_log_line_t l;
    if (ret == 0) {
        rm_log_begin(&l, RM_LOG_INFO, "root_cert_published");
        rm_log_str(&l, "namespace", w->ns);
        rm_log_str(&l, "configMap", RM_ROOT_CERT_CONFIGMAP);
        rm_log_str(&l, "action", w->existing != NULL ? "updated" : "created");
        rm_log_end(&l);
        return 0;
    }
    if (ret == 409)
        return -1; /* another replica wrote first: compare again after the informer has seen it */
    if (ret == 404 || ret == 403) {
        /* 404: the namespace went away (or is going); 403: a namespace the API forbids writing to */
        rm_log_begin(&l, RM_LOG_WARN, "root_cert_not_published");
        rm_log_str(&l, "namespace", w->ns);
        rm_log_str(&l, "reason", err);
        rm_log_end(&l);
        return 0;
    }
    rm_log_begin(&l, RM_LOG_WARN, "root_cert_not_published");
    rm_log_str(&l, "namespace", w->ns);
    rm_log_str(&l, "reason", err);
    rm_log_end(&l);
    return -1;
}

static int reconcile_configmaps(rm_kube_publisher_t *p)
{
    cm_work_t *work = NULL;
    size_t n = 0;
    int failed = 0;

    if (!p->cfg.publish_root_cert)
        return 0;
    pthread_mutex_lock(&p->lock);
    int ret = collect_work(p, &work, &n);
    pthread_mutex_unlock(&p->lock);
    if (ret != 0)
        return 0; /* the informers wake us once synced */
    /* An update shortly after our own last one means another writer holds a different bundle (replicas on two CAs
     * while a CA change rolls out): updates then wait a resync period, so the two never write in a tight loop.
     * Creations (a ConfigMap deleted, a new namespace) are never held. */
    int64_t now = now_ms();
    int any_update = 0, held = 0;
    for (size_t i = 0; i < n; i++)
        any_update |= work[i].existing != NULL;
    if (any_update && p->last_update_ms != 0 && now - p->last_update_ms < (int64_t)p->cfg.resync_ms) {
        held = 1;
        if (p->updates_held_until_ms == 0) {
            p->updates_held_until_ms = p->last_update_ms + p->cfg.resync_ms;
            rm_log_msg(RM_LOG_WARN, "root_cert_contended",
                       "another writer puts a different trust bundle into ringmesh-root-cert (replicas on two CAs?); "
                       "updates are held to one per resync period");
        }
    }
    for (size_t i = 0; i < n; i++) {
        if ((held && work[i].existing != NULL) /* retried after the hold */ || publish_one(p, &work[i]) != 0) {
            failed = 1;
        } else if (work[i].existing != NULL) {
            p->last_update_ms = now;
        }
        free(work[i].ns);
        json_decref(work[i].existing);
    }
    if (!held)
        p->updates_held_until_ms = 0;
    free(work);
    return failed ? -1 : 0;
}

static void *publisher_thread(void *arg)
{
    rm_kube_publisher_t *p = arg;
    unsigned hook_retry_ms = RETRY_MIN_MS, cm_retry_ms = RETRY_MIN_MS;
    int64_t hook_next = 0, cm_next = 0;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        for (;;) {
            int64_t next = hook_next < cm_next ? hook_next : cm_next, now = now_ms();
            if (p->stop || p->dirty || now >= next)
                break;
            struct timespec ts = {.tv_sec = (time_t)(next / 1000), .tv_nsec = (long)(next % 1000) * 1000000};
            pthread_cond_timedwait(&p->wake, &p->lock, &ts);
        }
        int stop = p->stop, dirty = p->dirty;
        p->dirty = 0;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        int64_t now = now_ms();
        /* the webhook configuration has no watch (RBAC: get and patch): it is read on its own timer only */
        if (now >= hook_next) {
            if (reconcile_webhook(p) != 0) {
                hook_next = now_ms() + hook_retry_ms;
                hook_retry_ms = hook_retry_ms * 2 < p->cfg.resync_ms ? hook_retry_ms * 2 : p->cfg.resync_ms;
            } else {
                hook_next = now_ms() + p->cfg.resync_ms;
                hook_retry_ms = RETRY_MIN_MS;
            }
        }
        if (dirty || now >= cm_next) {
            if (reconcile_configmaps(p) != 0) {
                int64_t at = now_ms() + cm_retry_ms;
                if (p->updates_held_until_ms > at)
                    at = p->updates_held_until_ms;
                cm_next = at;
                cm_retry_ms = cm_retry_ms * 2 < p->cfg.resync_ms ? cm_retry_ms * 2 : p->cfg.resync_ms;
            } else {
                cm_next = now_ms() + p->cfg.resync_ms;
                cm_retry_ms = RETRY_MIN_MS;
            }
        }
    }
    return NULL;
}

int rm_kube_publisher_start(const rm_kube_publisher_config_t *cfg, rm_kube_publisher_t **out, char *err, size_t errlen)
{
    rm_kube_publisher_t *p;
    pthread_condattr_t ca;
    int ret;

    *out = NULL;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return -ENOMEM;
    p->cfg = *cfg;
    if (p->cfg.resync_ms == 0)
        p->cfg.resync_ms = DEFAULT_RESYNC_MS;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    if ((p->bundle = strndup(cfg->bundle_pem, cfg->bundle_len)) == NULL ||
        (cfg->webhook_config != NULL && (p->webhook_config = strdup(cfg->webhook_config)) == NULL)) {
        ret = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto Fail;
    }
    if (cfg->publish_root_cert) {
        rm_kube_informer_config_t ic = {.kind = "Namespace",
                                        .api_version = "v1",
                                        .path = NS_PATH,
                                        .timeout_ms = 30000,
                                        .lock = &p->lock,
                                        .wake = &p->wake,
                                        .changed = on_changed,
                                        .arg = p};
        if ((ret = rm_kube_informer_start(cfg->client, &ic, &p->namespaces)) != 0) {
            snprintf(err, errlen, "cannot start the Namespace informer: %s", strerror(-ret));
            goto Fail;
        }
        ic.kind = "ConfigMap";
        ic.path = CM_PATH;
        if ((ret = rm_kube_informer_start(cfg->client, &ic, &p->configmaps)) != 0) {
            snprintf(err, errlen, "cannot start the ConfigMap informer: %s", strerror(-ret));
            goto Fail;
        }
    }
    if ((ret = pthread_create(&p->thread, NULL, publisher_thread, p)) != 0) {
        ret = -ret;
        snprintf(err, errlen, "cannot start the publisher's thread");
        goto Fail;
    }
    p->started = 1;
    *out = p;
    return 0;

Fail:
    rm_kube_publisher_stop(p);
    return ret;
}

void rm_kube_publisher_stop(rm_kube_publisher_t *p)
{
    if (p == NULL)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        p->stop = 1;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    rm_kube_informer_stop(p->configmaps);
    rm_kube_informer_stop(p->namespaces);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->bundle);
    free(p->webhook_config);
    free(p);
}
