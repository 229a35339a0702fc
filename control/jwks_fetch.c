/* jwksUri fetching in the control plane (jwks_fetch.h). One thread: it sleeps until the next URI is due (or a new
 * URI arrives), fetches it with libcurl outside the lock, and publishes the result under the lock. */
#include "jwks_fetch.h"

#include "ringmesh/jwt_user.h"
#include "ringmesh/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_REFRESH_MS (20u * 60 * 1000) /* Istio's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL */
#define DEFAULT_TIMEOUT_MS 5000u             /* Istio's JWTRule timeout */
#define FIRST_BACKOFF_MS   1000u
#define JWKS_BODY_MAX      (1u << 20)
#define MAX_URIS           256

typedef struct st_entry_t {
    char *uri;
    uint32_t timeout_ms;
    char *jwks;  /* the last good document, NULL until one */
    char *error; /* the last failure, NULL after a success */
    uint64_t next_ms, backoff_ms;
    int used; /* by the policies in force (marked by watch) */
} entry_t;

struct st_rm_jwks_fetcher_t {
    rm_jwks_fetcher_opts_t opts;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    entry_t e[MAX_URIS];
    size_t n;
    uint64_t failures;
};

static pthread_mutex_t global_mu = PTHREAD_MUTEX_INITIALIZER;
static rm_jwks_fetcher_t *global;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct st_body_t {
    char *p;
    size_t n;
    int too_big;
} body_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    body_t *b = arg;
    size_t len = size * nmemb;
    if (b->n + len > JWKS_BODY_MAX) {
        b->too_big = 1;
        return 0;
    }
    char *np = realloc(b->p, b->n + len + 1);
    if (np == NULL)
        return 0;
    memcpy(np + b->n, data, len);
    b->p = np;
    b->n += len;
    b->p[b->n] = '\0';
    return len;
}

/* Fetches uri; on success *jwks is the document (checked to hold a usable key), else *why says what failed. */
static int fetch(const rm_jwks_fetcher_t *f, const char *uri, uint32_t timeout_ms, char **jwks, char *why,
                 size_t whylen)
{
    CURL *c = curl_easy_init();
    body_t b = {0};
    long status = 0;
    int ret = -1;
    char cerr[CURL_ERROR_SIZE] = "";
    if (c == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, uri);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (f->opts.ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, f->opts.ca_file);
    CURLcode cr = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cr != CURLE_OK) {
        snprintf(why, whylen, "%s",
                 b.too_big ? "the JWKS is larger than 1 MiB"
                 : cerr[0] ? cerr
                           : curl_easy_strerror(cr));
    } else if (status != 200) {
        snprintf(why, whylen, "HTTP status %ld", status);
    } else {
        rm_jwt_keyset_t *ks = NULL;
        char err[200];
        if (b.p == NULL || rm_jwt_keyset_parse(b.p, b.n, &ks, err, sizeof(err)) != 0) {
            snprintf(why, whylen, "not a usable JWKS: %s", b.p == NULL ? "empty" : err);
        } else {
            *jwks = b.p;
            b.p = NULL;
            ret = 0;
        }
        rm_jwt_keyset_free(ks);
    }
    free(b.p);
    curl_easy_cleanup(c);
    return ret;
}

static void *fetch_thread(void *arg)
{
    rm_jwks_fetcher_t *f = arg;
    uint64_t max_backoff = f->opts.max_backoff_ms ? f->opts.max_backoff_ms : f->opts.refresh_ms;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        uint64_t now = now_ms(), next = now + f->opts.refresh_ms;
        entry_t *due = NULL;
        for (size_t i = 0; i < f->n; i++) {
            if (f->e[i].used && f->e[i].next_ms <= now && due == NULL)
                due = &f->e[i];
            if (f->e[i].used && f->e[i].next_ms < next)
                next = f->e[i].next_ms;
        }
        if (due == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = next > now ? next - now : 0;
            if (wait > 1000)
                wait = 1000; /* a bounded sleep: new URIs signal, the monotonic deadline is checked again */
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000)
                ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&f->cv, &f->mu, &ts);
            continue;
        }
        char *uri = strdup(due->uri), *jwks = NULL, why[300] = "";
        uint32_t timeout = due->timeout_ms;
        pthread_mutex_unlock(&f->mu);
        int ret = uri == NULL ? -1 : fetch(f, uri, timeout, &jwks, why, sizeof(why));
        pthread_mutex_lock(&f->mu);
        int changed = 0;
        entry_t *e = NULL;
        for (size_t i = 0; uri != NULL && i < f->n && e == NULL; i++)
            if (strcmp(f->e[i].uri, uri) == 0)
                e = &f->e[i];
        if (e != NULL && ret == 0) {
            changed = e->jwks == NULL || strcmp(e->jwks, jwks) != 0 || e->error != NULL;
            free(e->jwks);
            free(e->error);
            e->jwks = jwks, e->error = NULL, jwks = NULL;
            e->backoff_ms = FIRST_BACKOFF_MS;
            e->next_ms = now_ms() + f->opts.refresh_ms;
            if (changed) {
                rm_log_line_t l;
                rm_log_begin(&l, RM_LOG_INFO, "jwks_fetched");
                rm_log_str(&l, "uri", uri);
                rm_log_end(&l);
            }
        } else if (e != NULL) {
            __atomic_add_fetch(&f->failures, 1, __ATOMIC_RELAXED);
            changed = e->jwks == NULL && (e->error == NULL || strcmp(e->error, why) != 0);
            free(e->error);
            e->error = strdup(why);
            e->next_ms = now_ms() + e->backoff_ms;
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_WARN, "jwks_fetch_failed");
            rm_log_str(&l, "uri", uri);
            rm_log_str(&l, "error", why);
            rm_log_str(&l, "kept", e->jwks != NULL ? "the last good JWKS" : "none: tokens of its issuer are refused");
            rm_log_uint(&l, "retry_ms", e->backoff_ms);
            rm_log_end(&l);
            e->backoff_ms = e->backoff_ms * 2 > max_backoff ? max_backoff : e->backoff_ms * 2;
        }
        free(jwks);
        free(uri);
        if (changed && f->opts.on_change != NULL) {
            pthread_mutex_unlock(&f->mu);
            f->opts.on_change(f->opts.arg);
            pthread_mutex_lock(&f->mu);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

int rm_jwks_fetcher_start(const rm_jwks_fetcher_opts_t *opts, rm_jwks_fetcher_t **out)
{
    rm_jwks_fetcher_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->opts = *opts;
    if (f->opts.refresh_ms == 0)
        f->opts.refresh_ms = DEFAULT_REFRESH_MS;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (pthread_create(&f->thread, NULL, fetch_thread, f) != 0) {
        free(f);
        return -EAGAIN;
    }
    pthread_mutex_lock(&global_mu);
    global = f;
    pthread_mutex_unlock(&global_mu);
    *out = f;
    return 0;
}

void rm_jwks_fetcher_watch(rm_jwks_fetcher_t *f, const rm_policy_set_t *set)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->n; i++)
        f->e[i].used = 0;
    for (size_t i = 0; i < set->num_request_authns; i++) {
        for (size_t k = 0; k < set->request_authns[i].num_rules; k++) {
            const rm_jwt_rule_t *r = &set->request_authns[i].rules[k];
            entry_t *e = NULL;
            if (r->jwks_uri == NULL)
                continue;
            for (size_t j = 0; j < f->n && e == NULL; j++)
                if (strcmp(f->e[j].uri, r->jwks_uri) == 0)
                    e = &f->e[j];
            if (e == NULL && f->n < MAX_URIS && (f->e[f->n].uri = strdup(r->jwks_uri)) != NULL) {
                e = &f->e[f->n++];
                e->next_ms = 0; /* fetch now */
                e->backoff_ms = FIRST_BACKOFF_MS;
            }
            if (e != NULL) {
                e->used = 1;
                e->timeout_ms = r->timeout_ms ? r->timeout_ms : DEFAULT_TIMEOUT_MS;
            }
        }
    }
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

uint64_t rm_jwks_fetcher_failures(const rm_jwks_fetcher_t *f)
{
    return __atomic_load_n(&f->failures, __ATOMIC_RELAXED);
}

void rm_jwks_fetcher_stop(rm_jwks_fetcher_t *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&global_mu);
    if (global == f)
        global = NULL;
    pthread_mutex_unlock(&global_mu);
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    for (size_t i = 0; i < f->n; i++) {
        free(f->e[i].uri);
        free(f->e[i].jwks);
        free(f->e[i].error);
    }
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}

void rm_jwks_resolved_free(rm_jwt_rule_t *rules, size_t num)
{
    for (size_t i = 0; rules != NULL && i < num; i++) {
        if (rules[i].jwks_uri != NULL) { /* only these hold strings of their own */
            free(rules[i].jwks);
            free(rules[i].jwks_error);
        }
    }
    free(rules);
}

int rm_jwks_resolve(const rm_request_authn_t *ra, rm_jwt_rule_t **rules)
{
    *rules = NULL;
    if (ra->num_rules == 0)
        return 0;
    rm_jwt_rule_t *r = calloc(ra->num_rules, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    int oom = 0;
    pthread_mutex_lock(&global_mu);
    rm_jwks_fetcher_t *f = global;
    if (f != NULL)
        pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < ra->num_rules; i++) {
        r[i] = ra->rules[i];
        if (r[i].jwks_uri == NULL)
            continue;
        const entry_t *e = NULL;
        for (size_t j = 0; f != NULL && j < f->n && e == NULL; j++)
            if (strcmp(f->e[j].uri, r[i].jwks_uri) == 0)
                e = &f->e[j];
        r[i].jwks = e != NULL && e->jwks != NULL ? strdup(e->jwks) : NULL;
        r[i].jwks_error = strdup(e != NULL && e->error != NULL  ? e->error
                                 : e != NULL && e->jwks != NULL ? ""
                                                                : "its jwksUri has not been fetched yet");
        oom |= (e != NULL && e->jwks != NULL && r[i].jwks == NULL) || r[i].jwks_error == NULL;
    }
    if (f != NULL)
        pthread_mutex_unlock(&f->mu);
    pthread_mutex_unlock(&global_mu);
    if (oom) {
        rm_jwks_resolved_free(r, ra->num_rules);
        return -ENOMEM;
    }
    *rules = r;
    return 0;
}
