/* ringmeshctl inject: the webhook's injection, offline, over a multi-document YAML stream of manifests; and
 * ringmeshctl wait-ready: the classic sidecar's postStart hook, which holds the app back until the proxy is ready. */
#include "ctl.h"
#include "inject.h"
#include "ringmesh/duration.h"
#include "ringmesh/error.h"
#include "ringmesh/yaml_json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STREAM_MAX (16u << 20)

/* ---------------------------------------------------------------------------------------------------------
 * inject
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_inject_run_t {
    const rm_inject_config_t *cfg;
    rm_inject_env_t env;
    int refused;
} inject_run_t;

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(b != NULL ? json_object_get(obj, a) : obj, b != NULL ? b : a);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* Injects one pod template ({metadata, spec}) or Pod in place. */
static int inject_template(inject_run_t *run, json_t *holder, const char *what, size_t doc)
{
    json_t *pod, *meta = json_object_get(holder, "metadata"), *spec = json_object_get(holder, "spec");
    rm_inject_result_t res;
    int ret;

    if (!json_is_object(spec)) {
        fprintf(stderr, "ringmeshctl inject: document %zu (%s): no pod spec; left as it is\n", doc, what);
        return 0;
    }
    if ((pod = json_pack("{s:s,s:s,s:o,s:O}", "apiVersion", "v1", "kind", "Pod", "metadata",
                         meta != NULL ? json_incref(meta) : json_object(), "spec", spec)) == NULL)
        return -ENOMEM;
    if ((ret = rm_inject_pod(run->cfg, pod, &run->env, &res)) != 0) {
        json_decref(pod);
        return ret;
    }
    if (res.warning[0] != '\0')
        fprintf(stderr, "ringmeshctl inject: document %zu (%s): warning: %s\n", doc, what, res.warning);
    switch (res.outcome) {
    case RM_INJECT_REFUSED:
        fprintf(stderr, "ringmeshctl inject: document %zu (%s): refused: %s\n", doc, what, res.reason);
        run->refused = 1;
        break;
    case RM_INJECT_SKIPPED:
        fprintf(stderr, "ringmeshctl inject: document %zu (%s): not injected: %s\n", doc, what, res.reason);
        break;
    case RM_INJECT_PATCHED:
        if (json_object_set(holder, "metadata", json_object_get(res.pod, "metadata")) != 0 ||
            json_object_set(holder, "spec", json_object_get(res.pod, "spec")) != 0)
            ret = -ENOMEM;
        break;
    }
    rm_inject_result_dispose(&res);
    json_decref(pod);
    return ret;
}

/* The pod templates of the workload kinds; other documents pass through. */
// NOLINTNEXTLINE(misc-no-recursion): a List's items only, one level (depth 0 -> 1)
static int inject_document(inject_run_t *run, json_t *obj, size_t doc, unsigned depth)
{
    const char *kind = str_at(obj, "kind", NULL), *name = str_at(obj, "metadata", "name");
    char what[320];
    json_t *tmpl = NULL;

    if (!json_is_object(obj))
        return 0;
    snprintf(what, sizeof(what), "%.64s %.200s", kind, name);
    if (strcmp(kind, "List") == 0 && depth == 0) {
        size_t i;
        json_t *item;
        int ret;
        json_array_foreach(json_object_get(obj, "items"), i,
                           item) if ((ret = inject_document(run, item, doc, depth + 1)) != 0) return ret;
        return 0;
    }
    if (strcmp(kind, "Pod") == 0)
        return inject_template(run, obj, what, doc);
    if (strcmp(kind, "Deployment") == 0 || strcmp(kind, "StatefulSet") == 0 || strcmp(kind, "DaemonSet") == 0 ||
        strcmp(kind, "ReplicaSet") == 0 || strcmp(kind, "Job") == 0 || strcmp(kind, "ReplicationController") == 0)
        tmpl = json_object_get(json_object_get(obj, "spec"), "template");
    else if (strcmp(kind, "CronJob") == 0)
        tmpl = json_object_get(json_object_get(json_object_get(json_object_get(obj, "spec"), "jobTemplate"), "spec"),
                               "template");
    else
        return 0;
    if (!json_is_object(tmpl)) {
        fprintf(stderr, "ringmeshctl inject: document %zu (%s): no pod template; left as it is\n", doc, what);
        return 0;
    }
    return inject_template(run, tmpl, what, doc);
}

static int parse_label(const char *s, json_t *labels)
{
    const char *eq = strchr(s, '=');
    if (eq == NULL || eq == s)
        return -1;
    char *key = strndup(s, (size_t)(eq - s));
    int ret = key != NULL && json_object_set_new(labels, key, json_string(eq + 1)) == 0 ? 0 : -1;
    free(key);
    return ret;
}

static int read_input(const char *path, char **data, size_t *len)
{
    if (strcmp(path, "-") != 0)
        return rm__ctl_read_file(path, data, len);
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= STREAM_MAX) {
                free(buf);
                return -EFBIG;
            }
            char *b = realloc(buf, cap * 2);
            if (b == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = b;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, stdin);
        if (r == 0) {
            if (ferror(stdin)) {
                free(buf);
                return -EIO;
            }
            break;
        }
        n += r;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int rm__ctl_inject(int argc, char **argv)
{
    enum { F_FILE, F_CONFIG, F_VERSION, F_LABELS, F_OUTPUT, F_NUM };
    flag_t flags[F_NUM] = {
        {.name = "filename", .takes_value = 1, .short_name = 'f'},
        {.name = "injector-config", .takes_value = 1},
        {.name = "kube-version", .takes_value = 1},
        {.name = "namespace-labels", .takes_value = 1, .repeatable = 1},
        {.name = "output", .takes_value = 1, .short_name = 'o'},
    };
    rm_inject_config_t cfg = {0};
    rm_config_error_t cerr;
    inject_run_t run = {.cfg = &cfg};
    json_t *docs = NULL, *labels = NULL, *out_doc = NULL;
    char *data = NULL, *out = NULL, err[512];
    size_t len, outlen, i;
    json_t *doc;
    int ret = RM_CTL_EXIT_USAGE, err_code, json_out = 0;

    if ((err_code = rm__ctl_parse_flags("", "inject", argc, argv, flags, F_NUM)) != 0) {
        if (err_code > 0) {
            printf("usage: ringmeshctl inject -f FILE|- [--injector-config FILE] [--kube-version X.Y]\n"
                   "                          [--namespace-labels KEY=VALUE]... [-o yaml|json]\n");
            return RM_CTL_EXIT_OK;
        }
        fprintf(stderr, "run 'ringmeshctl inject --help' for usage\n");
        return RM_CTL_EXIT_USAGE;
    }
    if (flags[F_FILE].value == NULL) {
        fprintf(stderr, "ringmeshctl inject: -f FILE (or - for standard input) is required\n");
        return RM_CTL_EXIT_USAGE;
    }
    if (flags[F_OUTPUT].value != NULL) {
        if (strcmp(flags[F_OUTPUT].value, "json") == 0)
            json_out = 1;
        else if (strcmp(flags[F_OUTPUT].value, "yaml") != 0) {
            fprintf(stderr, "ringmeshctl inject: -o %s: yaml or json\n", flags[F_OUTPUT].value);
            return RM_CTL_EXIT_USAGE;
        }
    }
    if (flags[F_CONFIG].value != NULL) {
        if (rm_inject_config_load(flags[F_CONFIG].value, &cfg, &cerr) != 0) {
            rm_config_error_format(&cerr, err, sizeof(err));
            fprintf(stderr, "ringmeshctl inject: %s\n", err);
            goto Exit;
        }
    } else if (rm_inject_config_defaults(&cfg) != 0) {
        fprintf(stderr, "ringmeshctl inject: out of memory\n");
        goto Exit;
    }
    if (flags[F_VERSION].value != NULL &&
        rm_inject_parse_kube_version(flags[F_VERSION].value, &run.env.kube_major, &run.env.kube_minor) != 0) {
        fprintf(stderr, "ringmeshctl inject: --kube-version %s: want MAJOR.MINOR, e.g. 1.33\n", flags[F_VERSION].value);
        goto Exit;
    }
    /* without --namespace-labels, as if the namespace were labelled ringmesh.io/inject=enabled: asking to inject is
     * the opt-in, and a pod still opts out with ringmesh.io/inject: "false" */
    if ((labels = json_object()) == NULL)
        goto Exit;
    if (flags[F_LABELS].count == 0 && json_object_set_new(labels, RM_INJECT_NAMESPACE_LABEL, json_string("enabled")))
        goto Exit;
    for (i = 0; i < flags[F_LABELS].count; i++) {
        if (parse_label(flags[F_LABELS].values[i], labels) != 0) {
            fprintf(stderr, "ringmeshctl inject: --namespace-labels %s: want KEY=VALUE\n", flags[F_LABELS].values[i]);
            goto Exit;
        }
    }
    run.env.namespace_labels = labels;
    if ((err_code = read_input(flags[F_FILE].value, &data, &len)) != 0) {
        ret = rm__ctl_file_error(flags[F_FILE].value, NULL, err_code);
        goto Exit;
    }
    if (rm_yaml_to_json(data, len, &docs, err, sizeof(err)) != 0) {
        fprintf(stderr, "ringmeshctl inject: %s:%s\n", flags[F_FILE].value, err);
        ret = RM_CTL_EXIT_INVALID;
        goto Exit;
    }
    /* empty documents (a trailing ---) carry nothing */
    for (i = json_array_size(docs); i-- > 0;)
        if (json_is_null(json_array_get(docs, i)))
            json_array_remove(docs, i);
    json_array_foreach(docs, i, doc)
    {
        if ((err_code = inject_document(&run, doc, i + 1, 0)) != 0) {
            fprintf(stderr, "ringmeshctl inject: %s\n", strerror(-err_code));
            goto Exit;
        }
    }
    if (run.refused) {
        ret = RM_CTL_EXIT_INVALID;
        goto Exit;
    }
    if (json_out) {
        out_doc = json_array_size(docs) == 1
                      ? json_incref(json_array_get(docs, 0))
                      : json_pack("{s:s,s:s,s:O}", "apiVersion", "v1", "kind", "List", "items", docs);
        out = out_doc != NULL ? json_dumps(out_doc, JSON_INDENT(2)) : NULL;
        outlen = out != NULL ? strlen(out) : 0;
    } else if (rm_json_to_yaml(docs, &out, &outlen) != 0) {
        out = NULL;
    }
    if (out == NULL) {
        fprintf(stderr, "ringmeshctl inject: the result cannot be written\n");
        goto Exit;
    }
    if (fwrite(out, 1, outlen, stdout) != outlen || (json_out && fputc('\n', stdout) == EOF) || fflush(stdout) != 0) {
        fprintf(stderr, "ringmeshctl inject: cannot write the result: %s\n", strerror(errno));
        goto Exit;
    }
    ret = RM_CTL_EXIT_OK;

Exit:
    free(out);
    free(data);
    json_decref(out_doc);
    json_decref(docs);
    json_decref(labels);
    rm_inject_config_dispose(&cfg);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * wait-ready
 * ------------------------------------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "http://IP:PORT/PATH" (an IPv6 IP in brackets). */
static int parse_url(const char *url, struct sockaddr_storage *ss, socklen_t *sl, char *host, size_t hostlen,
                     const char **path)
{
    char h[64];
    const char *p, *colon, *slash;
    unsigned long port;
    char *end;

    if (strncmp(url, "http://", 7) != 0)
        return -1;
    p = url + 7;
    if ((slash = strchr(p, '/')) == NULL)
        return -1;
    *path = slash;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(slash - p));
        if (close == NULL || close[1] != ':' || (size_t)(close - p - 1) >= sizeof(h))
            return -1;
        snprintf(h, sizeof(h), "%.*s", (int)(close - p - 1), p + 1);
        colon = close + 1;
    } else {
        if ((colon = memchr(p, ':', (size_t)(slash - p))) == NULL || (size_t)(colon - p) >= sizeof(h))
            return -1;
        snprintf(h, sizeof(h), "%.*s", (int)(colon - p), p);
    }
    port = strtoul(colon + 1, &end, 10);
    if (end != slash || port == 0 || port > 65535)
        return -1;
    snprintf(host, hostlen, "%.*s", (int)(colon - url - 7), url + 7);
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *sl = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, h, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *sl = sizeof(*sin6);
        return 0;
    }
    return -1;
}

/* One GET; returns the HTTP status, or 0 when none was read before `deadline`. */
static int probe_once(const struct sockaddr_storage *ss, socklen_t sl, const char *host, const char *path,
                      uint64_t deadline)
{
    char req[1024], resp[64];
    size_t got = 0;
    int fd, status = 0, n;

    if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        return 0;
    if (connect(fd, (const struct sockaddr *)ss, sl) != 0 && errno != EINPROGRESS)
        goto Exit;
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ringmeshctl-wait-ready\r\n"
                 "Connection: close\r\n\r\n",
                 path, host);
    if (n < 0 || (size_t)n >= sizeof(req))
        goto Exit;
    for (size_t sent = 0; sent < (size_t)n;) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        uint64_t now = now_ms();
        if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0 || (pfd.revents & (POLLERR | POLLHUP)))
            goto Exit;
        ssize_t w = send(fd, req + sent, (size_t)n - sent, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            goto Exit;
        if (w > 0)
            sent += (size_t)w;
    }
    while (got < 12) {
        struct pollfd pfd = {fd, POLLIN, 0};
        uint64_t now = now_ms();
        if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
            goto Exit;
        ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            goto Exit;
        if (r > 0)
            got += (size_t)r;
    }
    resp[got] = '\0';
    if (strncmp(resp, "HTTP/1.", 7) == 0 && resp[8] == ' ' && resp[9] >= '1' && resp[9] <= '5' && resp[10] >= '0' &&
        resp[10] <= '9' && resp[11] >= '0' && resp[11] <= '9')
        status = (resp[9] - '0') * 100 + (resp[10] - '0') * 10 + (resp[11] - '0');

Exit:
    close(fd);
    return status;
}

int rm__ctl_wait_ready(int argc, char **argv)
{
    enum { F_URL, F_TIMEOUT, F_INTERVAL, F_NUM };
    flag_t flags[F_NUM] = {
        {.name = "url", .takes_value = 1},
        {.name = "timeout", .takes_value = 1},
        {.name = "interval", .takes_value = 1},
    };
    const char *url, *path;
    char host[128];
    struct sockaddr_storage ss;
    socklen_t sl;
    uint32_t timeout_ms = 120000, interval_ms = 500;
    int err, last = 0;

    if ((err = rm__ctl_parse_flags("", "wait-ready", argc, argv, flags, F_NUM)) != 0) {
        if (err > 0) {
            printf("usage: ringmeshctl wait-ready [--url http://127.0.0.1:15021/healthz/ready] [--timeout 120s]\n"
                   "                              [--interval 500ms]\n");
            return RM_CTL_EXIT_OK;
        }
        fprintf(stderr, "run 'ringmeshctl wait-ready --help' for usage\n");
        return RM_CTL_EXIT_USAGE;
    }
    url = flags[F_URL].value != NULL ? flags[F_URL].value : "http://127.0.0.1:15021/healthz/ready";
    if (parse_url(url, &ss, &sl, host, sizeof(host), &path) != 0) {
        fprintf(stderr, "ringmeshctl wait-ready: --url %s: want http://IP:PORT/PATH\n", url);
        return RM_CTL_EXIT_USAGE;
    }
    if ((flags[F_TIMEOUT].value != NULL && rm_duration_parse_ms(flags[F_TIMEOUT].value, &timeout_ms) != 0) ||
        (flags[F_INTERVAL].value != NULL &&
         (rm_duration_parse_ms(flags[F_INTERVAL].value, &interval_ms) != 0 || interval_ms == 0))) {
        fprintf(stderr, "ringmeshctl wait-ready: --timeout and --interval are durations, e.g. 120s and 500ms\n");
        return RM_CTL_EXIT_USAGE;
    }
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        uint64_t start = now_ms();
        uint64_t probe_deadline = start + 2000 < deadline ? start + 2000 : deadline;
        int status = probe_once(&ss, sl, host, path, probe_deadline);
        if (status != 0)
            last = status; /* the last answer there was, for the message */
        if (status == 200) {
            printf("{\"event\":\"proxy_ready\",\"url\":\"%s\"}\n", url);
            return RM_CTL_EXIT_OK;
        }
        uint64_t now = now_ms();
        if (now >= deadline)
            break;
        uint64_t wait = interval_ms < deadline - now ? interval_ms : deadline - now;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "ringmeshctl wait-ready: %s not ready after %u ms (last answer: %s%d)\n", url, timeout_ms,
            last == 0 ? "none, " : "HTTP ", last);
    return RM_CTL_EXIT_INVALID;
}
