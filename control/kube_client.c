/* The Kubernetes API client (kube_client.h): requests over libcurl, answers through jansson. The in-cluster
 * configuration is here; the kubeconfig reader is in kubeconfig.c. */
#include "kube_client.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "control_util.h"
#include "ringmesh/error.h"

#define DEFAULT_TIMEOUT_MS 30000u
#define TOKEN_MAX          (16u << 10)
#define SHOWN_MAX          240 /* bytes of API text quoted in a message */

struct st_rm_kube_client_t {
    rm_kube_config_t cfg;
    unsigned timeout_ms;
    pthread_mutex_t lock; /* guards the token below */
    char *bearer;         /* "Authorization: Bearer ..." */
    time_t bearer_read;   /* when token_file was read; 0: never */
};

/* ---------------------------------------------------------------------------------------------------------
 * Configuration.
 * ------------------------------------------------------------------------------------------------------- */

/* Zeroes `cap` bytes of `p` and frees it (answers may hold a Secret's key). NULL is fine. */
static void wipe_free(char *p, size_t cap)
{
    if (p == NULL)
        return;
    volatile char *v = p;
    for (size_t i = 0; i < cap; i++)
        v[i] = 0;
    free(p);
}

static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void rm_kube_config_clear(rm_kube_config_t *cfg)
{
    free(cfg->server);
    free(cfg->origin);
    free(cfg->ca_file);
    free(cfg->ca_data);
    free_secret(cfg->token);
    free(cfg->token_file);
    free(cfg->cert_file);
    free(cfg->key_file);
    free(cfg->cert_data);
    free_secret(cfg->key_data);
    free(cfg->namespace_);
    memset(cfg, 0, sizeof(*cfg));
}

/* Reads a small text file, trailing white space dropped. */
static int read_trimmed(const char *path, char **out)
{
    char *data = NULL;
    size_t len = 0;
    int ret;

    if ((ret = rm_file_read(path, TOKEN_MAX, &data, &len)) != 0)
        return ret;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' ' || data[len - 1] == '\t'))
        data[--len] = '\0';
    *out = data;
    return 0;
}

int rm_kube_config_in_cluster(const char *sa_dir, rm_kube_config_t *cfg, char *err, size_t errlen)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    char *ns = NULL;
    int ret;

    memset(cfg, 0, sizeof(*cfg));
    if (sa_dir == NULL)
        sa_dir = RM_KUBE_SA_DIR;
    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0')
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                              "not in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not "
                              "set (outside a cluster, give --kubeconfig FILE)");
    /* an IPv6 service host is written in brackets in the URL */
    if (asprintf(&cfg->server, strchr(host, ':') != NULL ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0 ||
        asprintf(&cfg->ca_file, "%s/ca.crt", sa_dir) < 0 || asprintf(&cfg->token_file, "%s/token", sa_dir) < 0 ||
        (cfg->origin = strdup("in-cluster")) == NULL) {
        ret = -ENOMEM;
        goto Fail;
    }
    if (asprintf(&ns, "%s/namespace", sa_dir) >= 0) {
        read_trimmed(ns, &cfg->namespace_); /* optional: only for defaults */
        free(ns);
    }
    return 0;
Fail:
    rm_kube_config_clear(cfg);
    return rm_config_fail(err, errlen, ret, "out of memory");
}

/* ---------------------------------------------------------------------------------------------------------
 * The client.
 * ------------------------------------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int rm_kube_client_new(rm_kube_config_t *cfg, unsigned timeout_ms, rm_kube_client_t **out, char *err, size_t errlen)
{
    rm_kube_client_t *c;

    if (cfg->server == NULL || strncmp(cfg->server, "https://", 8) != 0)
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE, "%s: the API server %s is not an https:// URL",
                              cfg->origin != NULL ? cfg->origin : "", cfg->server != NULL ? cfg->server : "(none)");
    if (cfg->ca_file == NULL && cfg->ca_data == NULL)
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                              "%s: no certificate authority for %s (the server is never trusted without one)",
                              cfg->origin != NULL ? cfg->origin : "", cfg->server);
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return rm_config_fail(err, errlen, -ENOMEM, "out of memory");
    pthread_once(&curl_once, curl_init_once);
    c->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    size_t n = strlen(c->cfg.server);
    while (n > 8 && c->cfg.server[n - 1] == '/')
        c->cfg.server[--n] = '\0';
    c->timeout_ms = timeout_ms != 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

const char *rm_kube_client_server(const rm_kube_client_t *c)
{
    return c->cfg.server;
}

void rm_kube_client_free(rm_kube_client_t *c)
{
    if (c == NULL)
        return;
    rm_kube_config_clear(&c->cfg);
    free_secret(c->bearer);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The Authorization header (a copy the caller frees with free_secret), from the inline token or the token file
 * (read again when older than RM_KUBE_TOKEN_MAX_AGE or when `reread`). NULL without a token (client certificates).
 * Returns 0 or an error with the reason. */
static int bearer_header(rm_kube_client_t *c, int reread, char **out, char *err, size_t errlen)
{
    const char *token = c->cfg.token;
    char *file_token = NULL;
    int ret = 0;

    *out = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->cfg.token_file != NULL) {
        time_t now = time(NULL);
        if (c->bearer == NULL || reread || now - c->bearer_read >= RM_KUBE_TOKEN_MAX_AGE || now < c->bearer_read) {
            if ((ret = read_trimmed(c->cfg.token_file, &file_token)) != 0) {
                ret = rm_config_fail(err, errlen, RM_KUBE_ERR_TRANSPORT, "cannot read the token %s: %s",
                                     c->cfg.token_file, rm_strerror(ret));
                goto Exit;
            }
            if (file_token[0] == '\0') {
                ret =
                    rm_config_fail(err, errlen, RM_KUBE_ERR_TRANSPORT, "the token file %s is empty", c->cfg.token_file);
                goto Exit;
            }
            free_secret(c->bearer);
            c->bearer = NULL;
            if (asprintf(&c->bearer, "Authorization: Bearer %s", file_token) < 0) {
                c->bearer = NULL;
                ret = rm_config_fail(err, errlen, -ENOMEM, "out of memory");
                goto Exit;
            }
            c->bearer_read = now;
        }
        if ((*out = strdup(c->bearer)) == NULL)
            ret = rm_config_fail(err, errlen, -ENOMEM, "out of memory");
    } else if (token != NULL) {
        if (asprintf(out, "Authorization: Bearer %s", token) < 0) {
            *out = NULL;
            ret = rm_config_fail(err, errlen, -ENOMEM, "out of memory");
        }
    }
Exit:
    pthread_mutex_unlock(&c->lock);
    free_secret(file_token);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * Lines of a watch stream.
 * ------------------------------------------------------------------------------------------------------- */

int rm__kube_lines_feed(rm__kube_lines_t *l, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl != NULL ? (size_t)(nl - data) : len;
        if (l->len + take > l->max)
            return -E2BIG;
        if (l->len + take + 1 > l->cap) {
            size_t ncap = l->cap == 0 ? 4096 : l->cap;
            while (ncap < l->len + take + 1)
                ncap *= 2;
            char *nb = realloc(l->buf, ncap);
            if (nb == NULL)
                return -ENOMEM;
            l->buf = nb;
            l->cap = ncap;
        }
        memcpy(l->buf + l->len, data, take);
        l->len += take;
        data += take;
        len -= take;
        if (nl == NULL)
            break;
        data++, len--; /* the '\n' */
        size_t n = l->len;
        if (n > 0 && l->buf[n - 1] == '\r')
            n--;
        l->buf[n] = '\0';
        l->len = 0;
        if (n > 0) {
            int ret = l->on_line(l->arg, l->buf, n);
            if (ret != 0)
                return ret;
        }
    }
    return 0;
}

void rm__kube_lines_free(rm__kube_lines_t *l)
{
    free(l->buf);
    l->buf = NULL;
    l->len = l->cap = 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Requests.
 * ------------------------------------------------------------------------------------------------------- */

const char *rm__kube_status_message(const json_t *j)
{
    const char *kind = json_string_value(json_object_get(j, "kind"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (kind == NULL || strcmp(kind, "Status") != 0 || msg == NULL)
        return "";
    return msg;
}

/* Text from the API fit to quote: at most SHOWN_MAX bytes of printable ASCII. */
static const char *shown(char buf[SHOWN_MAX + 4], const char *s)
{
    size_t i;
    for (i = 0; i < SHOWN_MAX && s[i] != '\0'; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (s[i] != '\0')
        memcpy(buf + i, "...", 3), i += 3;
    buf[i] = '\0';
    return buf;
}

typedef struct st_transfer_t {
    /* a whole answer (GET, PATCH, POST) */
    char *body;
    size_t len, cap, max;
    int too_large;
    /* or a stream of events (WATCH) */
    rm__kube_lines_t *lines;
    int stream_ret; /* what ended the stream from the inside */
    long status;    /* HTTP status, once the headers are in */
    CURL *curl;
    const int *cancel;
    int cancelled;
    int64_t deadline_ms; /* a watch's first byte must come by then (0: no such bound) */
    int got_data;
    int no_answer;
} transfer_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
    transfer_t *t = ctx;
    size_t n = size * nmemb;

    t->got_data = 1;
    if (t->status == 0)
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
    if (t->lines != NULL && t->status >= 200 && t->status < 300) {
        if ((t->stream_ret = rm__kube_lines_feed(t->lines, data, n)) != 0)
            return 0;
        return n;
    }
    if (n > t->max - t->len) {
        t->too_large = 1;
        return 0;
    }
    if (t->len + n + 1 > t->cap) {
        size_t ncap = t->cap == 0 ? 16384 : t->cap;
        while (ncap < t->len + n + 1)
            ncap *= 2;
        /* not realloc: an answer may hold a Secret, and the old block is wiped before it is freed */
        char *nb = malloc(ncap);
        if (nb == NULL)
            return 0;
        if (t->body != NULL) {
            memcpy(nb, t->body, t->len);
            wipe_free(t->body, t->cap);
        }
        t->body = nb;
        t->cap = ncap;
    }
    memcpy(t->body + t->len, data, n);
    t->len += n;
    t->body[t->len] = '\0';
    return n;
}

/* The status line and headers count as an answer: a watch with no events yet has sent them. */
static size_t on_header(char *data, // NOLINT(readability-non-const-parameter): libcurl's callback type
                        size_t size, size_t nmemb, void *ctx)
{
    transfer_t *t = ctx;
    (void)data;
    t->got_data = 1;
    return size * nmemb;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    transfer_t *t = ctx;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (t->cancel != NULL && __atomic_load_n(t->cancel, __ATOMIC_ACQUIRE)) {
        t->cancelled = 1;
        return 1;
    }
    /* a watch whose server never answers (a stalled API server) is not left hanging until its overall bound */
    if (t->deadline_ms != 0 && !t->got_data && mono_ms() > t->deadline_ms) {
        t->no_answer = 1;
        return 1;
    }
    return 0;
}

#define SETOPT(h, opt, val)                                                                                            \
    do {                                                                                                               \
        if (rc == CURLE_OK)                                                                                            \
            rc = curl_easy_setopt((h), (opt), (val));                                                                  \
    } while (0)

/* One transfer. `t` carries the answer; returns 0 when an HTTP answer came (any status, in t->status), or an error
 * with the sentence. */
static int perform(rm_kube_client_t *c, const char *method, const char *url, const char *content_type, const char *body,
                   transfer_t *t, unsigned limit_ms, int reread_token, char *err, size_t errlen)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *h;
    char *bearer = NULL, *ctype = NULL;
    CURLcode rc = CURLE_OK;
    CURL *curl;
    int ret;

    if ((ret = bearer_header(c, reread_token, &bearer, err, errlen)) != 0)
        return ret;
    if ((curl = curl_easy_init()) == NULL) {
        free_secret(bearer);
        return rm_config_fail(err, errlen, -ENOMEM, "out of memory");
    }
    t->curl = curl;
    if ((h = curl_slist_append(headers, "Accept: application/json")) != NULL)
        headers = h;
    if (bearer != NULL && (h = curl_slist_append(headers, bearer)) != NULL)
        headers = h;
    if (content_type != NULL && asprintf(&ctype, "Content-Type: %s", content_type) >= 0 &&
        (h = curl_slist_append(headers, ctype)) != NULL)
        headers = h;
    free(ctype);
    free_secret(bearer);
    SETOPT(curl, CURLOPT_ERRORBUFFER, curl_err);
    SETOPT(curl, CURLOPT_URL, url);
    SETOPT(curl, CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(curl, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(curl, CURLOPT_PROXY, "");
    SETOPT(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SETOPT(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(curl, CURLOPT_CAPATH, (char *)NULL);
    if (c->cfg.ca_file != NULL) {
        SETOPT(curl, CURLOPT_CAINFO, c->cfg.ca_file);
    } else {
        struct curl_blob blob = {.data = c->cfg.ca_data, .len = strlen(c->cfg.ca_data), .flags = CURL_BLOB_COPY};
        SETOPT(curl, CURLOPT_CAINFO, (char *)NULL);
        SETOPT(curl, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (c->cfg.cert_file != NULL)
        SETOPT(curl, CURLOPT_SSLCERT, c->cfg.cert_file);
    if (c->cfg.key_file != NULL)
        SETOPT(curl, CURLOPT_SSLKEY, c->cfg.key_file);
    if (c->cfg.cert_data != NULL) {
        struct curl_blob blob = {.data = c->cfg.cert_data, .len = strlen(c->cfg.cert_data), .flags = CURL_BLOB_COPY};
        SETOPT(curl, CURLOPT_SSLCERT_BLOB, &blob);
        SETOPT(curl, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (c->cfg.key_data != NULL) {
        struct curl_blob blob = {.data = c->cfg.key_data, .len = strlen(c->cfg.key_data), .flags = CURL_BLOB_COPY};
        SETOPT(curl, CURLOPT_SSLKEY_BLOB, &blob);
        SETOPT(curl, CURLOPT_SSLKEYTYPE, "PEM");
    }
    SETOPT(curl, CURLOPT_NOSIGNAL, 1L);
    SETOPT(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    if (t->lines == NULL) {
        SETOPT(curl, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    } else {
        t->deadline_ms = mono_ms() + c->timeout_ms;
        if (limit_ms != 0)
            SETOPT(curl, CURLOPT_TIMEOUT_MS, (long)limit_ms);
    }
    SETOPT(curl, CURLOPT_USERAGENT, "ringmesh-control");
    SETOPT(curl, CURLOPT_HTTPHEADER, headers);
    SETOPT(curl, CURLOPT_ACCEPT_ENCODING, ""); /* gzip if the server offers it */
    if (strcmp(method, "GET") != 0) {
        SETOPT(curl, CURLOPT_CUSTOMREQUEST, method);
        SETOPT(curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        SETOPT(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body != NULL ? strlen(body) : 0));
    }
    SETOPT(curl, CURLOPT_WRITEFUNCTION, on_data);
    SETOPT(curl, CURLOPT_WRITEDATA, t);
    SETOPT(curl, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(curl, CURLOPT_HEADERDATA, t);
    SETOPT(curl, CURLOPT_NOPROGRESS, 0L);
    SETOPT(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(curl, CURLOPT_XFERINFODATA, t);
    if (rc != CURLE_OK) {
        ret = rm_config_fail(err, errlen, RM_KUBE_ERR_TRANSPORT, "%s %s: cannot set up the request: %s", method, url,
                             curl_easy_strerror(rc));
        goto Exit;
    }

    rc = curl_easy_perform(curl);
    if (t->status == 0)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t->status);
    const char *why = curl_err[0] != '\0' ? curl_err : curl_easy_strerror(rc);
    if (t->cancelled) {
        ret = rm_config_fail(err, errlen, RM_KUBE_ERR_CANCELLED, "%s %s: cancelled", method, url);
    } else if (t->no_answer) {
        ret = rm_config_fail(err, errlen, RM_KUBE_ERR_TRANSPORT, "%s %s: no answer within %u ms", method, url,
                             c->timeout_ms);
    } else if (t->stream_ret != 0) {
        ret = t->stream_ret; /* the caller words it */
    } else if (t->too_large) {
        ret = rm_config_fail(err, errlen, RM_KUBE_ERR_ANSWER, "%s %s: the answer is larger than %zu bytes", method, url,
                             t->max);
    } else if (rc == CURLE_OK) {
        ret = 0;
    } else if (rc == CURLE_OPERATION_TIMEDOUT && t->lines != NULL && t->status != 0) {
        ret = rm_config_fail(err, errlen, RM_KUBE_ERR_TRANSPORT, "%s %s: the watch stalled (still open after %u ms)",
                             method, url, limit_ms);
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
               rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ISSUER_ERROR) {
        ret = rm_config_fail(err, errlen, RM_KUBE_ERR_TRANSPORT,
                             "%s %s: TLS failed: %s (the server's certificate must chain to the cluster CA of %s and "
                             "name the host)",
                             method, url, why, c->cfg.origin != NULL ? c->cfg.origin : "the configuration");
    } else {
        ret = rm_config_fail(err, errlen, RM_KUBE_ERR_TRANSPORT, "%s %s: %s", method, url, why);
    }
Exit:
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    t->curl = NULL;
    return ret;
}

static char *make_url(const rm_kube_client_t *c, const char *path)
{
    char *url;
    if (asprintf(&url, "%s%s", c->cfg.server, path) < 0)
        return NULL;
    return url;
}

/* A non-2xx answer as a sentence naming the URL and the Status message; returns the status. */
static int status_error(const char *method, const char *url, long status, const char *body, size_t len, char *err,
                        size_t errlen)
{
    char q[SHOWN_MAX + 4];
    json_t *j = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
    const char *msg = rm__kube_status_message(j);
    rm_config_fail(err, errlen, (int)status, "%s %s: HTTP %ld%s%s", method, url, status, msg[0] != '\0' ? ": " : "",
                   shown(q, msg));
    json_decref(j);
    return (int)status;
}

static int request(rm_kube_client_t *c, const char *method, const char *path, const char *content_type,
                   const char *body, json_t **out, char *err, size_t errlen)
{
    transfer_t t;
    char *url;
    int ret;

    if (out != NULL)
        *out = NULL;
    if ((url = make_url(c, path)) == NULL)
        return rm_config_fail(err, errlen, -ENOMEM, "out of memory");
    for (int attempt = 0; attempt < 2; attempt++) {
        memset(&t, 0, sizeof(t));
        t.max = RM_KUBE_ANSWER_MAX;
        if ((ret = perform(c, method, url, content_type, body, &t, 0, attempt > 0, err, errlen)) != 0)
            goto Exit;
        /* a 401 with a token file: the kubelet may have rotated it; read it again, once */
        if (t.status == 401 && attempt == 0 && c->cfg.token_file != NULL) {
            wipe_free(t.body, t.cap);
            t.body = NULL;
            t.len = t.cap = 0;
            continue;
        }
        break;
    }
    if (t.status < 200 || t.status >= 300) {
        ret = status_error(method, url, t.status, t.body, t.len, err, errlen);
        goto Exit;
    }
    if (out != NULL) {
        json_error_t je;
        if ((*out = json_loadb(t.body != NULL ? t.body : "", t.len, 0, &je)) == NULL) {
            ret = rm_config_fail(err, errlen, RM_KUBE_ERR_ANSWER, "%s %s: the answer is not JSON: %s", method, url,
                                 je.text);
            goto Exit;
        }
    }
    ret = 0;
Exit:
    wipe_free(t.body, t.cap);
    free(url);
    return ret;
}

int rm_kube_get(rm_kube_client_t *c, const char *path, json_t **out, char *err, size_t errlen)
{
    return request(c, "GET", path, NULL, NULL, out, err, errlen);
}

int rm_kube_send(rm_kube_client_t *c, const char *method, const char *path, const char *content_type, const char *body,
                 json_t **out, char *err, size_t errlen)
{
    return request(c, method, path, content_type, body, out, err, errlen);
}

/* ---------------------------------------------------------------------------------------------------------
 * Watches.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_watch_ctx_t {
    rm_kube_event_cb cb;
    void *arg;
    const char *url;
    char *err;
    size_t errlen;
} watch_ctx_t;

static int on_event_line(void *arg, const char *line, size_t len)
{
    watch_ctx_t *w = arg;
    json_error_t je;
    json_t *ev = json_loadb(line, len, 0, &je);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *object = json_object_get(ev, "object");
    int ret;

    if (ev == NULL || type == NULL || !json_is_object(object)) {
        ret = rm_config_fail(w->err, w->errlen, RM_KUBE_ERR_ANSWER, "WATCH %s: an event is not a JSON watch event%s%s",
                             w->url, ev == NULL ? ": " : " (want type and object)", ev == NULL ? je.text : "");
        json_decref(ev);
        return ret;
    }
    ret = w->cb(w->arg, type, object);
    json_decref(ev);
    return ret;
}

int rm_kube_watch(rm_kube_client_t *c, const char *path, unsigned limit_ms, rm_kube_event_cb cb, void *arg,
                  const int *cancel, char *err, size_t errlen)
{
    watch_ctx_t w = {.cb = cb, .arg = arg, .err = err, .errlen = errlen};
    rm__kube_lines_t lines = {.max = RM_KUBE_EVENT_MAX, .on_line = on_event_line, .arg = &w};
    transfer_t t;
    char *url;
    int ret;

    if ((url = make_url(c, path)) == NULL)
        return rm_config_fail(err, errlen, -ENOMEM, "out of memory");
    w.url = url;
    for (int attempt = 0; attempt < 2; attempt++) {
        memset(&t, 0, sizeof(t));
        t.max = 1u << 20; /* the body of a refusal */
        t.lines = &lines;
        t.cancel = cancel;
        ret = perform(c, "GET", url, NULL, NULL, &t, limit_ms, attempt > 0, err, errlen);
        if (ret == 0 && t.status == 401 && attempt == 0 && c->cfg.token_file != NULL) {
            free(t.body);
            continue;
        }
        break;
    }
    if (ret == -E2BIG)
        ret = rm_config_fail(err, errlen, RM_KUBE_ERR_ANSWER, "WATCH %s: an event is longer than %u bytes", url,
                             RM_KUBE_EVENT_MAX);
    else if (ret == -ENOMEM)
        ret = rm_config_fail(err, errlen, -ENOMEM, "WATCH %s: out of memory", url);
    else if (ret == 0 && (t.status < 200 || t.status >= 300))
        ret = status_error("WATCH", url, t.status, t.body, t.len, err, errlen);
    else if (ret == 0)
        rm_config_fail(err, errlen, 0, "WATCH %s: the server ended the watch", url);
    rm__kube_lines_free(&lines);
    free(t.body);
    free(url);
    return ret;
}
