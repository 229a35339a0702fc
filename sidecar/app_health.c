/* RINGMESH_APP_PROBERS parsed with jansson, and the prober threads that answer /app-health/ requests (see
 * app_health.h). The probes themselves are in app_probe.c. */
#include "app_health.h"

#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/textbuf.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------------------
 * Parsing.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_parse_ctx_t {
    const char *var, *key;
    char *err;
    size_t errlen;
} parse_ctx_t;

static int fail(parse_ctx_t *ctx, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(parse_ctx_t *ctx, int code, const char *field, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (ctx->errlen > 0) {
        if (ctx->key == NULL)
            snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->var, reason);
        else
            snprintf(ctx->err, ctx->errlen, "%s: \"%.200s\"%s%s: %s", ctx->var, ctx->key, field != NULL ? "." : "",
                     field != NULL ? field : "", reason);
    }
    return code;
}

static int name_ok(const char *s, size_t len)
{
    /* a container name is a DNS label (RFC 1123) */
    if (len == 0 || len > 63)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (ch == '-' && i != 0 && i != len - 1)))
            return 0;
    }
    return 1;
}

/* A Kubernetes IntOrString port, the name already resolved by the injector: an integer or a string of digits. */
static int get_port(parse_ctx_t *ctx, json_t *o, const char *field, uint16_t *out)
{
    json_t *v = json_object_get(o, "port");
    json_int_t n = -1;
    if (v == NULL)
        return fail(ctx, RM_ERR_CONFIG_VALUE, field, "port is required");
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (s[0] >= '0' && s[0] <= '9' && strlen(s) <= 5)
            n = strtol(s, &end, 10), n = *end == '\0' ? n : -1;
        if (n < 0)
            return fail(ctx, RM_ERR_CONFIG_VALUE, field, "port \"%.64s\" is a name; want its number", s);
    }
    if (n < 1 || n > 65535)
        return fail(ctx, RM_ERR_CONFIG_VALUE, field, "port is not a port number (want 1..65535)");
    *out = (uint16_t)n;
    return 0;
}

static int get_string(parse_ctx_t *ctx, json_t *o, const char *name, const char *field, char **out)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(ctx, RM_ERR_CONFIG_VALUE, field, "%s must be a string", name);
    if (strlen(json_string_value(v)) > 2048)
        return fail(ctx, RM_ERR_CONFIG_VALUE, field, "%s is longer than 2048 bytes", name);
    if ((*out = strdup(json_string_value(v))) == NULL)
        return fail(ctx, -ENOMEM, field, "out of memory");
    return 0;
}

/* Refuses members of `o` not in `allowed` (NULL-terminated): a probe the proxy would run differently from the
 * kubelet must not start. */
static int only_known(parse_ctx_t *ctx, json_t *o, const char *field, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i;
        for (i = 0; allowed[i] != NULL && strcmp(allowed[i], k) != 0; i++)
            ;
        if (allowed[i] == NULL)
            return fail(ctx, RM_ERR_CONFIG_VALUE, field, "unknown field \"%.64s\"", k);
    }
    return 0;
}

static int parse_http(parse_ctx_t *ctx, json_t *h, rm_app_probe_t *p)
{
    static const char *const known[] = {"path", "port", "host", "scheme", "httpHeaders", NULL};
    char *scheme = NULL;
    json_t *hdrs, *e;
    size_t i;
    int ret;

    p->kind = RM_APP_PROBE_HTTP;
    if ((ret = only_known(ctx, h, "httpGet", known)) != 0 || (ret = get_port(ctx, h, "httpGet", &p->port)) != 0 ||
        (ret = get_string(ctx, h, "path", "httpGet", &p->path)) != 0 ||
        (ret = get_string(ctx, h, "host", "httpGet", &p->host)) != 0 ||
        (ret = get_string(ctx, h, "scheme", "httpGet", &scheme)) != 0)
        goto Exit;
    if (scheme != NULL && strcmp(scheme, "HTTPS") == 0) {
        p->https = 1;
    } else if (scheme != NULL && strcmp(scheme, "HTTP") != 0) {
        ret = fail(ctx, RM_ERR_CONFIG_VALUE, "httpGet", "scheme \"%.32s\" is not HTTP or HTTPS", scheme);
        goto Exit;
    }
    if (p->path == NULL || p->path[0] != '/') {
        /* the kubelet puts a missing leading slash back */
        size_t n = p->path != NULL ? strlen(p->path) : 0;
        char *abs = malloc(n + 2);
        if (abs == NULL) {
            ret = fail(ctx, -ENOMEM, NULL, "out of memory");
            goto Exit;
        }
        abs[0] = '/';
        memcpy(abs + 1, p->path != NULL ? p->path : "", n + 1);
        free(p->path);
        p->path = abs;
    }
    for (const char *c = p->path; c != NULL && *c != '\0'; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
            ret = fail(ctx, RM_ERR_CONFIG_VALUE, "httpGet", "path has a space or control character");
            goto Exit;
        }
    }
    if ((hdrs = json_object_get(h, "httpHeaders")) != NULL && !json_is_null(hdrs)) {
        if (!json_is_array(hdrs)) {
            ret = fail(ctx, RM_ERR_CONFIG_VALUE, "httpGet", "httpHeaders must be a list");
            goto Exit;
        }
        if (json_array_size(hdrs) > RM_APP_HEALTH_MAX_HEADERS) {
            ret = fail(ctx, RM_ERR_CONFIG_VALUE, "httpGet", "httpHeaders has more than %d entries",
                       RM_APP_HEALTH_MAX_HEADERS);
            goto Exit;
        }
        json_array_foreach(hdrs, i, e)
        {
            static const char *const hknown[] = {"name", "value", NULL};
            char field[48];
            snprintf(field, sizeof(field), "httpGet.httpHeaders[%zu]", i);
            if (!json_is_object(e)) {
                ret = fail(ctx, RM_ERR_CONFIG_VALUE, field, "want an object {name, value}");
                goto Exit;
            }
            if ((ret = only_known(ctx, e, field, hknown)) != 0 ||
                (ret = get_string(ctx, e, "name", field, &p->header_names[i])) != 0 ||
                (ret = get_string(ctx, e, "value", field, &p->header_values[i])) != 0)
                goto Exit;
            p->num_headers = i + 1;
            if (p->header_names[i] == NULL || p->header_names[i][0] == '\0') {
                ret = fail(ctx, RM_ERR_CONFIG_VALUE, field, "name is required");
                goto Exit;
            }
            for (const char *c = p->header_names[i]; *c != '\0'; c++) {
                if (*c <= 0x20 || *c == ':' || *c == 0x7f) {
                    ret = fail(ctx, RM_ERR_CONFIG_VALUE, field, "name is not an HTTP header name");
                    goto Exit;
                }
            }
            for (const char *c = p->header_values[i] != NULL ? p->header_values[i] : ""; *c != '\0'; c++) {
                if (*c == '\r' || *c == '\n' || *c == '\0') {
                    ret = fail(ctx, RM_ERR_CONFIG_VALUE, field, "value has a line break");
                    goto Exit;
                }
            }
        }
    }
    ret = 0;
Exit:
    free(scheme);
    return ret;
}

static int parse_probe(parse_ctx_t *ctx, const char *key, json_t *v, rm_app_probe_t *p)
{
    static const char *const known[] = {"httpGet", "tcpSocket", "grpc", "timeoutSeconds", NULL};
    const char *rest, *slash;
    json_t *h, *t;
    int handlers = 0, ret;

    ctx->key = key;
    if (strncmp(key, RM_APP_HEALTH_PREFIX, strlen(RM_APP_HEALTH_PREFIX)) != 0 ||
        (slash = strchr((rest = key + strlen(RM_APP_HEALTH_PREFIX)), '/')) == NULL)
        return fail(ctx, RM_ERR_CONFIG_VALUE, NULL, "want a key \"/app-health/<container>/livez|readyz|startupz\"");
    if (!name_ok(rest, (size_t)(slash - rest)))
        return fail(ctx, RM_ERR_CONFIG_VALUE, NULL, "the container name is not a DNS label");
    if (strcmp(slash + 1, "livez") != 0 && strcmp(slash + 1, "readyz") != 0 && strcmp(slash + 1, "startupz") != 0)
        return fail(ctx, RM_ERR_CONFIG_VALUE, NULL, "the probe is not livez, readyz or startupz");
    if ((p->key = strdup(key)) == NULL || (p->container = strndup(rest, (size_t)(slash - rest))) == NULL ||
        (p->name = strdup(slash + 1)) == NULL)
        return fail(ctx, -ENOMEM, NULL, "out of memory");
    if (!json_is_object(v))
        return fail(ctx, RM_ERR_CONFIG_VALUE, NULL, "want a probe object ({\"httpGet\"|\"tcpSocket\"|\"grpc\": ...})");
    if ((ret = only_known(ctx, v, NULL, known)) != 0)
        return ret;
    p->timeout_s = 1;
    if ((t = json_object_get(v, "timeoutSeconds")) != NULL) {
        if (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > 3600)
            return fail(ctx, RM_ERR_CONFIG_VALUE, "timeoutSeconds", "want a whole number of seconds in 1..3600");
        p->timeout_s = (unsigned)json_integer_value(t);
    }
    if ((h = json_object_get(v, "httpGet")) != NULL) {
        handlers++;
        if (!json_is_object(h))
            return fail(ctx, RM_ERR_CONFIG_VALUE, "httpGet", "want an object");
        if ((ret = parse_http(ctx, h, p)) != 0)
            return ret;
    }
    if ((h = json_object_get(v, "tcpSocket")) != NULL) {
        static const char *const tknown[] = {"port", "host", NULL};
        handlers++;
        p->kind = RM_APP_PROBE_TCP;
        if (!json_is_object(h))
            return fail(ctx, RM_ERR_CONFIG_VALUE, "tcpSocket", "want an object");
        if ((ret = only_known(ctx, h, "tcpSocket", tknown)) != 0 ||
            (ret = get_port(ctx, h, "tcpSocket", &p->port)) != 0 ||
            (ret = get_string(ctx, h, "host", "tcpSocket", &p->host)) != 0)
            return ret;
    }
    if ((h = json_object_get(v, "grpc")) != NULL) {
        static const char *const gknown[] = {"port", "service", NULL};
        handlers++;
        p->kind = RM_APP_PROBE_GRPC;
        if (!json_is_object(h))
            return fail(ctx, RM_ERR_CONFIG_VALUE, "grpc", "want an object");
        if ((ret = only_known(ctx, h, "grpc", gknown)) != 0 || (ret = get_port(ctx, h, "grpc", &p->port)) != 0 ||
            (ret = get_string(ctx, h, "service", "grpc", &p->service)) != 0)
            return ret;
        if (p->service == NULL && (p->service = strdup("")) == NULL)
            return fail(ctx, -ENOMEM, NULL, "out of memory");
    }
    if (handlers != 1)
        return fail(ctx, RM_ERR_CONFIG_VALUE, NULL, "want exactly one of httpGet, tcpSocket or grpc (found %d)",
                    handlers);
    if (p->host != NULL && (p->host[0] == '\0' || strlen(p->host) > 253)) {
        free(p->host);
        p->host = NULL; /* an empty host is the default: the pod's IP */
    }
    return 0;
}

static void probe_free(rm_app_probe_t *p)
{
    free(p->key);
    free(p->container);
    free(p->name);
    free(p->host);
    free(p->path);
    free(p->service);
    for (size_t i = 0; i < RM_APP_HEALTH_MAX_HEADERS; i++) {
        free(p->header_names[i]);
        free(p->header_values[i]);
    }
}

void rm_app_probes_dispose(rm_app_probes_t *t)
{
    for (size_t i = 0; i < t->num_probes; i++)
        probe_free(&t->probes[i]);
    free(t->probes);
    t->probes = NULL;
    t->num_probes = 0;
}

int rm_app_probes_parse(const char *var, const char *json, rm_app_probes_t *out, char *err, size_t errlen)
{
    parse_ctx_t ctx = {.var = var, .err = err, .errlen = errlen};
    rm_app_probes_t t = {0};
    json_error_t jerr;
    json_t *root = NULL, *v;
    const char *key;
    int ret;

    if (errlen > 0)
        err[0] = '\0';
    if ((root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        ret = fail(&ctx, RM_ERR_CONFIG_PARSE, NULL, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                   jerr.column);
        goto Exit;
    }
    if (!json_is_object(root)) {
        ret = fail(&ctx, RM_ERR_CONFIG_PARSE, NULL, "want a JSON object from /app-health/ paths to probes");
        goto Exit;
    }
    if (json_object_size(root) > RM_APP_HEALTH_MAX_PROBES) {
        ret = fail(&ctx, RM_ERR_CONFIG_VALUE, NULL, "more than %d probes", RM_APP_HEALTH_MAX_PROBES);
        goto Exit;
    }
    if ((t.probes = calloc(json_object_size(root) + 1, sizeof(*t.probes))) == NULL) {
        ret = fail(&ctx, -ENOMEM, NULL, "out of memory");
        goto Exit;
    }
    json_object_foreach(root, key, v)
    {
        /* counted first: a probe that fails half-parsed is freed with the others */
        rm_app_probe_t *p = &t.probes[t.num_probes++];
        if ((ret = parse_probe(&ctx, key, v, p)) != 0)
            goto Exit;
    }
    *out = t;
    t.probes = NULL;
    t.num_probes = 0;
    ret = 0;
Exit:
    rm_app_probes_dispose(&t);
    json_decref(root);
    return ret;
}

const rm_app_probe_t *rm_app_probes_find(const rm_app_probes_t *t, const char *path)
{
    for (size_t i = 0; i < t->num_probes; i++)
        if (strcmp(t->probes[i].key, path) == 0)
            return &t->probes[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------------------
 * The prober threads.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_job_t {
    size_t probe;
    int fd, head;
    uint64_t arrived_ms;
} job_t;

typedef struct st_probe_state_t {
    uint64_t logged_ms;               /* when the last app_probe_failed line was written, 0: never */
    uint64_t left_out;                /* failures not logged since */
    int failing;                      /* the last run failed */
    unsigned in_flight;               /* requests waiting or running */
    uint64_t passed, failed, refused; /* for /metrics: runs by outcome, and requests refused at once */
} probe_state_t;

struct st_rm_app_health_t {
    rm_app_probes_t table;
    probe_state_t *state;
    char default_host[64];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_t *queue; /* a ring of cap = RM_APP_HEALTH_PER_PROBE per probe: no probe can be refused for another's */
    size_t head, len, cap;
    int stopping;
    pthread_t threads[RM_APP_HEALTH_THREADS];
    size_t num_threads;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes the whole answer on the (non-blocking) admin connection, waiting at most a second for room, and closes it. */
static void answer(int fd, int ok, int head, const char *why)
{
    char resp[512], body[300];
    int blen = snprintf(body, sizeof(body), "%s\n", why), n;
    size_t sent = 0;
    if (blen < 0 || (size_t)blen >= sizeof(body))
        blen = (int)sizeof(body) - 1, body[blen - 1] = '\n';
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                 ok ? "200 OK" : "503 Service Unavailable", blen, head ? "" : body);
    if (n > 0 && (size_t)n >= sizeof(resp))
        n = (int)sizeof(resp) - 1;
    while (n > 0 && sent < (size_t)n) {
        ssize_t w = send(fd, resp + sent, (size_t)n - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, 1000) <= 0)
                break;
        } else {
            break;
        }
    }
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void log_result(rm_app_health_t *ah, const rm_app_probe_t *p, int ok, const char *why)
{
    probe_state_t *st = &ah->state[p - ah->table.probes];
    uint64_t now = now_ms(), left_out = 0;
    int log_fail = 0, log_recovered = 0;

    pthread_mutex_lock(&ah->lock);
    if (ok)
        st->passed++;
    else
        st->failed++;
    if (!ok) {
        if (st->logged_ms == 0 || now - st->logged_ms >= RM_APP_HEALTH_LOG_INTERVAL_MS) {
            log_fail = 1;
            left_out = st->left_out;
            st->left_out = 0;
            st->logged_ms = now;
        } else {
            st->left_out++;
        }
    } else if (st->failing) {
        log_recovered = 1;
        left_out = st->left_out;
        st->left_out = 0;
        st->logged_ms = 0;
    }
    st->failing = !ok;
    pthread_mutex_unlock(&ah->lock);

    if (log_fail || log_recovered) {
        static const char *const kinds[] = {"httpGet", "tcpSocket", "grpc"};
        rm_log_line_t l;
        rm_log_begin(&l, log_fail ? RM_LOG_WARN : RM_LOG_INFO, log_fail ? "app_probe_failed" : "app_probe_passed");
        rm_log_str(&l, "container", p->container);
        rm_log_str(&l, "probe", p->name);
        rm_log_str(&l, "handler", kinds[p->kind]);
        rm_log_uint(&l, "port", p->port);
        rm_log_str(&l, "reason", why);
        rm_log_uint(&l, "failures_not_logged", left_out);
        rm_log_end(&l);
    }
}

static void *prober_main(void *arg)
{
    rm_app_health_t *ah = arg;
    pthread_mutex_lock(&ah->lock);
    for (;;) {
        while (ah->len == 0 && !ah->stopping)
            pthread_cond_wait(&ah->cond, &ah->lock);
        if (ah->len == 0)
            break; /* stopping, nothing left */
        job_t job = ah->queue[ah->head];
        ah->head = (ah->head + 1) % ah->cap;
        ah->len--;
        if (ah->stopping) {
            pthread_mutex_unlock(&ah->lock);
            answer(job.fd, 0, job.head, "the proxy is stopping");
            pthread_mutex_lock(&ah->lock);
            ah->state[job.probe].in_flight--;
            continue;
        }
        pthread_mutex_unlock(&ah->lock);
        {
            const rm_app_probe_t *p = &ah->table.probes[job.probe];
            char why[256];
            int ok = rm_app_probe_run(p, ah->default_host, job.arrived_ms, why, sizeof(why));
            answer(job.fd, ok, job.head, why);
            log_result(ah, p, ok, why);
        }
        pthread_mutex_lock(&ah->lock);
        ah->state[job.probe].in_flight--;
    }
    pthread_mutex_unlock(&ah->lock);
    return NULL;
}

int rm_app_health_start(rm_app_health_t **out, char *err, size_t errlen)
{
    const char *json = getenv(RM_APP_HEALTH_ENV), *pod_ip = getenv("RINGMESH_POD_IP");
    rm_app_health_t *ah = NULL;
    int ret;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (json == NULL || json[0] == '\0')
        return 0;
    if ((ah = calloc(1, sizeof(*ah))) == NULL)
        return rm_config_fail(err, errlen, -ENOMEM, "%s: out of memory", RM_APP_HEALTH_ENV);
    pthread_mutex_init(&ah->lock, NULL);
    pthread_cond_init(&ah->cond, NULL);
    if ((ret = rm_app_probes_parse(RM_APP_HEALTH_ENV, json, &ah->table, err, errlen)) != 0)
        goto Exit;
    if ((ah->state = calloc(ah->table.num_probes + 1, sizeof(*ah->state))) == NULL) {
        ret = rm_config_fail(err, errlen, -ENOMEM, "%s: out of memory", RM_APP_HEALTH_ENV);
        goto Exit;
    }
    /* the kubelet probes the pod's IP; without one (outside a pod) the app is reached on loopback */
    snprintf(ah->default_host, sizeof(ah->default_host), "%s",
             pod_ip != NULL && pod_ip[0] != '\0' && strlen(pod_ip) < sizeof(ah->default_host) ? pod_ip : "127.0.0.1");
    ah->cap = ah->table.num_probes * RM_APP_HEALTH_PER_PROBE;
    if ((ah->queue = calloc(ah->cap, sizeof(*ah->queue))) == NULL) {
        ret = rm_config_fail(err, errlen, -ENOMEM, "%s: out of memory", RM_APP_HEALTH_ENV);
        goto Exit;
    }
    /* one more thread than probes (up to the limit): a probe hanging with two requests leaves the others one each */
    for (; ah->num_threads < RM_APP_HEALTH_THREADS && ah->num_threads <= ah->table.num_probes; ah->num_threads++) {
        if ((ret = -pthread_create(&ah->threads[ah->num_threads], NULL, prober_main, ah)) != 0) {
            rm_config_fail(err, errlen, ret, "%s: the prober threads could not start", RM_APP_HEALTH_ENV);
            goto Exit;
        }
    }
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "app_probes_loaded");
        rm_log_uint(&l, "probes", ah->table.num_probes);
        rm_log_uint(&l, "threads", ah->num_threads);
        rm_log_str(&l, "target", ah->default_host);
        rm_log_end(&l);
    }
    *out = ah;
    ah = NULL;
    ret = 0;
Exit:
    rm_app_health_stop(ah);
    return ret;
}

void rm_app_health_stop(rm_app_health_t *ah)
{
    if (ah == NULL)
        return;
    pthread_mutex_lock(&ah->lock);
    ah->stopping = 1;
    pthread_cond_broadcast(&ah->cond);
    pthread_mutex_unlock(&ah->lock);
    /* A probe may run until its timeout (up to an hour): the proxy's exit waits for none past a second. A thread
     * still running then keeps using the table, so nothing is freed; the process is about to exit. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += RM_APP_HEALTH_STOP_WAIT_S;
    for (size_t i = 0; i < ah->num_threads; i++) {
        if (pthread_timedjoin_np(ah->threads[i], NULL, &until) != 0) {
            rm_log_msg(RM_LOG_INFO, "app_probes_abandoned", "a probe still running at exit was left to the exit");
            return;
        }
    }
    for (; ah->len > 0; ah->len--, ah->head = (ah->head + 1) % ah->cap)
        close(ah->queue[ah->head].fd);
    rm_app_probes_dispose(&ah->table);
    free(ah->state);
    free(ah->queue);
    pthread_cond_destroy(&ah->cond);
    pthread_mutex_destroy(&ah->lock);
    free(ah);
}

int rm_app_health_submit(rm_app_health_t *ah, const char *path, int head, int fd)
{
    const rm_app_probe_t *p;
    probe_state_t *st;
    int ret;
    if (ah == NULL || (p = rm_app_probes_find(&ah->table, path)) == NULL)
        return 404;
    pthread_mutex_lock(&ah->lock);
    st = &ah->state[p - ah->table.probes];
    if (ah->stopping || st->in_flight >= RM_APP_HEALTH_PER_PROBE) {
        st->refused++;
        ret = 503;
    } else {
        st->in_flight++;
        ah->queue[(ah->head + ah->len) % ah->cap] =
            (job_t){.probe = (size_t)(p - ah->table.probes), .fd = fd, .head = head, .arrived_ms = now_ms()};
        ah->len++;
        pthread_cond_signal(&ah->cond);
        ret = RM_APP_HEALTH_TAKEN;
    }
    pthread_mutex_unlock(&ah->lock);
    return ret;
}

size_t rm_app_health_metrics(rm_app_health_t *ah, char *buf, size_t len, size_t o)
{
    static const char *const kinds[] = {"httpGet", "tcpSocket", "grpc"};
    if (ah == NULL)
        return o;
    o = rm_textf(buf, len, o,
                 "# HELP ringmesh_proxy_app_probes_total The app's own probes run for the kubelet (/app-health/...), "
                 "by outcome: passed, failed, or refused at once (two requests for the path already in flight).\n"
                 "# TYPE ringmesh_proxy_app_probes_total counter\n");
    pthread_mutex_lock(&ah->lock);
    for (size_t i = 0; i < ah->table.num_probes; i++) {
        const rm_app_probe_t *p = &ah->table.probes[i];
        const probe_state_t *st = &ah->state[i];
        static const char *const results[] = {"passed", "failed", "refused"};
        const uint64_t counts[] = {st->passed, st->failed, st->refused};
        for (size_t r = 0; r < 3; r++)
            o = rm_textf(buf, len, o,
                         "ringmesh_proxy_app_probes_total{container=\"%s\",probe=\"%s\",handler=\"%s\",result=\"%s\"} "
                         "%llu\n",
                         p->container, p->name, kinds[p->kind], results[r], (unsigned long long)counts[r]);
    }
    pthread_mutex_unlock(&ah->lock);
    return o;
}
