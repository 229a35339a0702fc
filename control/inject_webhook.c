/* The admission webhook's HTTPS server (inject_webhook.h). Blocking sockets with poll() deadlines drive the TLS
 * backend's session (it never touches a socket itself): flush what it has to send, else receive what it waits for. */
#include "inject_webhook.h"
#include "control_util.h"

#include "admin_http.h"
#include "kube_cluster.h"
#include "ringmesh/config.h"

#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/tls.h"
#include "ringmesh/x509_issue.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS      16
#define URL_MAX          512
#define RETRY_ISSUE_S    60
#define DEFAULT_TTL_S    (24 * 3600)
#define DEFAULT_BODY_MAX (4u << 20)
#define DEFAULT_IO_MS    10000
#define HANDSHAKE_MS     3000 /* the API server completes a handshake in milliseconds: a silent client is cut off soon */
#define RENEW_CHECK_MS   1000 /* how often the renewal thread looks at the certificate (and the files) */

struct st_rm_inject_webhook_t {
    int fd, stop_fd;
    pthread_t threads[MAX_THREADS];
    unsigned num_threads;
    pthread_t renewer; /* renews the serving certificate on time, whether connections come or not */
    int have_renewer;
    unsigned port;
    rm_inject_webhook_config_t cfg;
    char *spiffe_id;
    char **dns_names;
    pthread_mutex_t lock; /* guards ctx and renew_at */
    rm_tls_ctx_t *ctx;
    time_t renew_at;
    /* file mode (cert_file/key_file): what the files looked like when last loaded, and when they were last looked at */
    char *cert_file, *key_file;
    struct stat cert_st, key_st;
    time_t checked_at;
};

/* ---------------------------------------------------------------------------------------------------------
 * The serving certificate.
 * ------------------------------------------------------------------------------------------------------- */

/* A TLS server context from a certificate file and a key file. */
static int files_ctx(const char *cert_file, const char *key_file, const char *bundle, size_t bundle_len,
                     const char *trust_domain, rm_tls_ctx_t **out, char *err, size_t errlen)
{
    rm_config_error_t *e;
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    int ret;

    if ((e = calloc(1, sizeof(*e))) == NULL)
        return -ENOMEM;
    if ((ret = rm_file_read_at(AT_FDCWD, cert_file, NULL, 1 << 20, RM_FILE_REGULAR, &cert, &cert_len, e)) != 0 ||
        (ret = rm_file_read_at(AT_FDCWD, key_file, NULL, 1 << 20, RM_FILE_SECRET | RM_FILE_REGULAR, &key, &key_len,
                               e)) != 0) {
        rm_config_error_format(e, err, errlen);
        goto Exit;
    }
    rm_tls_ctx_config_t tc = {
        .cert_pem = cert,
        .cert_len = cert_len,
        .key_pem = key,
        .key_len = key_len,
        .bundle_pem = bundle,
        .bundle_len = bundle_len,
        .trust_domain = trust_domain,
        .alpn = "http/1.1",
        .no_client_auth = 1,
        .foreign_cert = 1,
    };
    char inner[400];
    if ((ret = rm_tls_ctx_new(out, RM_TLS_SERVER, &tc, inner, sizeof(inner))) != 0)
        snprintf(err, errlen, "%s, %s: not a usable certificate and key: %s", cert_file, key_file, inner);

Exit:
    free(e);
    free(cert);
    rm_file_free(key, key_len, RM_FILE_SECRET);
    return ret;
}

int rm_inject_webhook_check_files(const char *cert_file, const char *key_file, const char *trust_domain, char *err,
                                  size_t errlen)
{
    rm_x509_issue_opts_t opts;
    rm_tls_ctx_t *ctx = NULL;
    /* the context wants roots for client certificates it never asks for: a throwaway root stands in for the mesh's */
    char *root = NULL, *root_key = NULL;
    size_t root_len = 0, root_key_len = 0;
    int ret;

    rm_x509_issue_opts_init(&opts);
    if ((ret = rm_x509_make_root_ca(trust_domain, &opts, &root, &root_len, &root_key, &root_key_len)) != 0)
        return rm_config_fail(err, errlen, ret, "cannot make a root to check the webhook pair with: %s",
                              rm_strerror(ret));
    ret = files_ctx(cert_file, key_file, root, root_len, trust_domain, &ctx, err, errlen);
    if (ctx != NULL)
        rm_tls_ctx_unref(ctx);
    free(root);
    rm_x509_free_secret(root_key, root_key_len);
    return ret;
}

/* Whether the files changed since `w` last loaded them (a cert-manager renewal swaps the volume's symlink). */
static int files_changed(rm_inject_webhook_t *w, struct stat *cert_st, struct stat *key_st)
{
    if (stat(w->cert_file, cert_st) != 0 || stat(w->key_file, key_st) != 0)
        return 0; /* mid-swap, or gone: keep serving the pair in hand */
#define SAME(a, b)                                                                                                     \
    ((a).st_dev == (b).st_dev && (a).st_ino == (b).st_ino && (a).st_size == (b).st_size &&                             \
     (a).st_mtim.tv_sec == (b).st_mtim.tv_sec && (a).st_mtim.tv_nsec == (b).st_mtim.tv_nsec)
    return !(SAME(*cert_st, w->cert_st) && SAME(*key_st, w->key_st));
#undef SAME
}

static int issue_ctx(rm_inject_webhook_t *w, rm_tls_ctx_t **out, time_t *renew_at, char *err, size_t errlen)
{
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0, bundle_len;
    long ttl = w->cfg.serving_ttl > 0 ? w->cfg.serving_ttl : DEFAULT_TTL_S;
    const char *bundle = rm_ca_bundle_pem(w->cfg.ca, &bundle_len);
    int ret;

    if (w->cert_file != NULL) {
        struct stat cst, kst;
        (void)files_changed(w, &cst, &kst);
        if ((ret = files_ctx(w->cert_file, w->key_file, bundle, bundle_len, rm_ca_trust_domain(w->cfg.ca), out, err,
                             errlen)) != 0)
            return ret;
        w->cert_st = cst;
        w->key_st = kst;
        *renew_at = (time_t)rm_tls_ctx_not_after(*out); /* files are re-read on change; this is only a backstop */
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "webhook_certificate_loaded");
        rm_log_str(&l, "certFile", w->cert_file);
        rm_log_int(&l, "notAfter", (int64_t)rm_tls_ctx_not_after(*out));
        rm_log_end(&l);
        return 0;
    }
    if ((ret = rm_ca_issue_serving(w->cfg.ca, w->spiffe_id, (const char *const *)w->dns_names, w->cfg.num_dns_names,
                                   ttl, &cert, &cert_len, &key, &key_len)) != 0) {
        snprintf(err, errlen, "cannot issue the webhook's serving certificate: %s", rm_strerror(ret));
        goto Exit;
    }
    rm_tls_ctx_config_t tc = {
        .cert_pem = cert,
        .cert_len = cert_len,
        .key_pem = key,
        .key_len = key_len,
        .bundle_pem = bundle,
        .bundle_len = bundle_len,
        .trust_domain = rm_ca_trust_domain(w->cfg.ca),
        .alpn = "http/1.1",
        .no_client_auth = 1,
    };
    if ((ret = rm_tls_ctx_new(out, RM_TLS_SERVER, &tc, err, errlen)) != 0)
        goto Exit;
    *renew_at = time(NULL) + ttl / 2;
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, "webhook_certificate_issued");
    rm_log_str(&l, "spiffeId", w->spiffe_id);
    char names[1024];
    size_t o = 0;
    names[0] = '\0';
    for (size_t i = 0; i < w->cfg.num_dns_names && o < sizeof(names); i++)
        o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i == 0 ? "" : ",", w->dns_names[i]);
    rm_log_str(&l, "dnsNames", names);
    rm_log_int(&l, "notAfter", (int64_t)rm_tls_ctx_not_after(*out));
    rm_log_end(&l);

Exit:
    free(cert);
    if (key != NULL)
        rm_x509_free_secret(key, key_len);
    return ret;
}

/* The context for a new connection (a reference the caller drops), renewed first when it has lived half its life. */
static rm_tls_ctx_t *current_ctx(rm_inject_webhook_t *w)
{
    rm_tls_ctx_t *ctx, *fresh = NULL;
    time_t now = time(NULL), renew_at;
    char err[256];

    pthread_mutex_lock(&w->lock);
    if (w->cert_file != NULL && now != w->checked_at) {
        struct stat cst, kst;
        w->checked_at = now;
        if (files_changed(w, &cst, &kst))
            w->renew_at = now; /* load the renewed pair below */
    }
    if (now >= w->renew_at) {
        if (issue_ctx(w, &fresh, &renew_at, err, sizeof(err)) == 0) {
            rm_tls_ctx_unref(w->ctx);
            w->ctx = fresh;
            w->renew_at = renew_at;
        } else {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_ERROR, "webhook_certificate_failed");
            rm_log_str(&l, "reason", err);
            rm_log_end(&l);
            /* a renewed file pair that does not load: the previous pair serves until the files change again */
            w->renew_at = w->cert_file != NULL ? (time_t)rm_tls_ctx_not_after(w->ctx) : now + RETRY_ISSUE_S;
            if (w->cert_file != NULL)
                (void)files_changed(w, &w->cert_st, &w->key_st);
        }
    }
    ctx = w->ctx;
    rm_tls_ctx_ref(ctx);
    pthread_mutex_unlock(&w->lock);
    return ctx;
}

int64_t rm_inject_webhook_not_after(rm_inject_webhook_t *w)
{
    rm_tls_ctx_t *ctx = current_ctx(w);
    int64_t not_after = (int64_t)rm_tls_ctx_not_after(ctx);
    rm_tls_ctx_unref(ctx);
    return not_after;
}

/* ---------------------------------------------------------------------------------------------------------
 * One connection.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_conn_t {
    int fd;
    rm_tls_t *tls;
    uint64_t deadline_ms;
    size_t max_body;
    /* the request */
    char url[URL_MAX];
    char *body;
    size_t body_len, body_cap;
    int complete, too_long_url, too_large, bad_type;
    char header[32];
    size_t header_len;
    int in_value, is_content_type, have_content_type;
    char content_type[48];
    size_t content_type_len;
} conn_t;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int wait_fd(conn_t *c, short events)
{
    struct pollfd pfd = {c->fd, events, 0};
    uint64_t now = mono_ms();
    if (now >= c->deadline_ms)
        return -ETIMEDOUT;
    int r = poll(&pfd, 1, (int)(c->deadline_ms - now));
    return r > 0 ? 0 : r == 0 ? -ETIMEDOUT : -errno;
}

/* Sends everything the session has to send. */
static int flush_out(conn_t *c)
{
    const uint8_t *p;
    size_t len;
    int ret;

    for (;;) {
        rm_tls_out_data(c->tls, &p, &len);
        if (len == 0)
            return 0;
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            rm_tls_out_consume(c->tls, (size_t)n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        if ((ret = wait_fd(c, POLLOUT)) != 0)
            return ret;
    }
}

/* Receives what has arrived into the session's input window. */
static int recv_in(conn_t *c)
{
    uint8_t *p;
    size_t cap;
    int ret;

    if (mono_ms() >= c->deadline_ms)
        return -ETIMEDOUT; /* every loop that waits for input passes here: none outlives the deadline */
    if (rm_tls_in_space(c->tls, &p, &cap) != 0)
        return -ENOMEM;
    if (cap == 0)
        return 0; /* the window holds a record the session has not taken yet: it takes it on the next call */
    for (;;) {
        ssize_t n = recv(c->fd, p, cap, MSG_DONTWAIT);
        if (n > 0) {
            rm_tls_in_commit(c->tls, (size_t)n);
            return 0;
        }
        if (n == 0) {
            rm_tls_in_eof(c->tls);
            return 0;
        }
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        if ((ret = wait_fd(c, POLLIN)) != 0)
            return ret;
    }
}

static int handshake(conn_t *c)
{
    int r, ret;
    for (;;) {
        r = rm_tls_handshake(c->tls);
        if ((ret = flush_out(c)) != 0)
            return ret;
        if (r == 0)
            return 0;
        if (r != RM_ERR_TLS_WANT_IO)
            return r;
        if ((ret = recv_in(c)) != 0)
            return ret;
    }
}

static int write_all(conn_t *c, const char *p, size_t len)
{
    int ret;
    while (len > 0) {
        int n = rm_tls_write(c->tls, (const uint8_t *)p, len);
        if (n == RM_ERR_TLS_WANT_IO) {
            if ((ret = flush_out(c)) != 0)
                return ret;
            continue;
        }
        if (n < 0)
            return n;
        p += n;
        len -= (size_t)n;
    }
    return flush_out(c);
}

static void respond(conn_t *c, int status, const char *reason, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     reason, type, len);
    if (write_all(c, head, (size_t)n) == 0 && write_all(c, body, len) == 0 && rm_tls_close_notify(c->tls) == 0)
        flush_out(c);
}

static const char *status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    default:
        return "Internal Server Error";
    }
}

static void respond_text(conn_t *c, int status, const char *msg)
{
    respond(c, status, status_reason(status), "text/plain; charset=utf-8", msg, strlen(msg));
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    size_t have = strlen(c->url);
    if (have + len >= sizeof(c->url)) {
        c->too_long_url = 1;
        return 1;
    }
    memcpy(c->url + have, at, len);
    c->url[have + len] = '\0';
    return 0;
}

/* Header names and values may arrive in pieces: a name is gathered until its value begins, and the value of
 * Content-Type (its first bytes) until the next name or the end of the headers. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->in_value) {
        c->in_value = 0;
        c->header_len = 0;
    }
    if (c->header_len + len < sizeof(c->header)) {
        memcpy(c->header + c->header_len, at, len);
        c->header_len += len;
    } else {
        c->header_len = sizeof(c->header); /* longer than any name looked for */
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (!c->in_value) {
        c->in_value = 1;
        c->is_content_type = c->header_len == 12 && strncasecmp(c->header, "content-type", 12) == 0;
        if (c->is_content_type)
            c->content_type_len = 0;
    }
    if (c->is_content_type) {
        size_t n = len < sizeof(c->content_type) - 1 - c->content_type_len
                       ? len
                       : sizeof(c->content_type) - 1 - c->content_type_len;
        memcpy(c->content_type + c->content_type_len, at, n);
        c->content_type_len += n;
        c->content_type[c->content_type_len] = '\0';
        c->have_content_type = 1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn_t *c = p->data;
    /* the API server sends application/json (with or without parameters); anything else is refused */
    if (c->have_content_type &&
        !(strncasecmp(c->content_type, "application/json", 16) == 0 &&
          (c->content_type[16] == '\0' || c->content_type[16] == ';' || c->content_type[16] == ' ')))
        c->bad_type = 1;
    if (p->content_length != ULLONG_MAX && p->content_length > c->max_body) {
        c->too_large = 1;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->body_len + len > c->max_body) {
        c->too_large = 1;
        return -1;
    }
    if (c->body_len + len + 1 > c->body_cap) {
        size_t cap = c->body_cap == 0 ? 16384 : c->body_cap;
        while (cap < c->body_len + len + 1)
            cap *= 2;
        char *b = realloc(c->body, cap);
        if (b == NULL)
            return -1;
        c->body = b;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    ((conn_t *)p->data)->complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {.on_url = on_url,
                                              .on_header_field = on_header_field,
                                              .on_header_value = on_header_value,
                                              .on_headers_complete = on_headers_complete,
                                              .on_body = on_body,
                                              .on_message_complete = on_complete};

static void log_review(const rm_inject_review_info_t *info, int status)
{
    static const char *const outcomes[] = {"injected", "skipped", "refused"};
    rm_log_line_t l;
    rm_log_begin(&l, info->outcome == RM_INJECT_REFUSED ? RM_LOG_WARN : RM_LOG_INFO, "inject_review");
    rm_log_str(&l, "uid", info->uid);
    rm_log_str(&l, "namespace", info->namespace_);
    rm_log_str(&l, "name", info->name);
    rm_log_str(&l, "outcome", info->malformed ? "malformed" : outcomes[info->outcome]);
    rm_log_int(&l, "status", status);
    if (info->reason[0] != '\0')
        rm_log_str(&l, "reason", info->reason);
    rm_log_end(&l);
}

static void serve(void *arg, int fd)
{
    rm_inject_webhook_t *w = arg;
    conn_t c = {.fd = fd, .max_body = w->cfg.max_body};
    http_parser parser;
    rm_tls_ctx_t *ctx = current_ctx(w);
    uint8_t buf[16384];
    char *answer = NULL;
    rm_inject_review_info_t info;
    int ret, status;

    uint64_t start = mono_ms();
    c.deadline_ms = start + (w->cfg.io_timeout_ms < HANDSHAKE_MS ? w->cfg.io_timeout_ms : HANDSHAKE_MS);
    if (rm_tls_new(&c.tls, ctx, NULL, 0, 0) != 0)
        goto Exit;
    ret = handshake(&c);
    c.deadline_ms = start + w->cfg.io_timeout_ms;
    if (ret != 0) {
        if (ret != -ETIMEDOUT && ret != RM_ERR_TLS_CLOSED) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_DEBUG, "webhook_handshake_failed");
            rm_log_err(&l, "error", ret);
            rm_log_end(&l);
        }
        goto Exit;
    }
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &c;
    while (!c.complete) {
        int n = rm_tls_read(c.tls, buf, sizeof(buf));
        if (n == RM_ERR_TLS_WANT_IO) {
            if (flush_out(&c) != 0 || recv_in(&c) != 0)
                goto Exit;
            continue;
        }
        if (n <= 0)
            goto Exit; /* closed before a whole request, or broken */
        size_t done = http_parser_execute(&parser, &settings, (const char *)buf, (size_t)n);
        if (c.complete)
            break;
        if (c.too_large) {
            respond_text(&c, 413, "the body is larger than the webhook accepts\n");
            goto Exit;
        }
        if (HTTP_PARSER_ERRNO(&parser) != HPE_OK || done != (size_t)n) {
            respond_text(&c, c.too_long_url ? 414 : 400, c.too_long_url ? "URL too long\n" : "bad HTTP request\n");
            goto Exit;
        }
    }
    if (strcmp(c.url, RM_INJECT_WEBHOOK_PATH) != 0 && strncmp(c.url, RM_INJECT_WEBHOOK_PATH "?", 8) != 0) {
        respond_text(&c, 404, "not found: the webhook serves POST " RM_INJECT_WEBHOOK_PATH "\n");
        goto Exit;
    }
    if (parser.method != HTTP_POST) {
        respond_text(&c, 405, "only POST\n");
        goto Exit;
    }
    if (c.bad_type) {
        respond_text(&c, 415, "the body must be application/json\n");
        goto Exit;
    }
    if (rm_inject_review(&w->cfg.review, c.body != NULL ? c.body : "", c.body_len, &status, &answer, &info) != 0) {
        respond_text(&c, 500, "out of memory\n");
        goto Exit;
    }
    log_review(&info, status);
    respond(&c, status, status_reason(status), "application/json", answer, strlen(answer));

Exit:
    free(answer);
    free(c.body);
    if (c.tls != NULL)
        rm_tls_free(c.tls);
    rm_tls_ctx_unref(ctx);
}

static void *webhook_thread(void *arg)
{
    rm_inject_webhook_t *w = arg;
    rm__control_accept_loop(w->fd, w->stop_fd, SOCK_CLOEXEC | SOCK_NONBLOCK, serve, w);
    return NULL;
}

/* Once a second, what a connection would do first: renew the certificate at half its life, or load the files again
 * when they changed. Without it, a webhook that no connection reached would keep (and the expiry metric show) a
 * certificate past its renewal time until the next connection came. */
static void *renew_thread(void *arg)
{
    rm_inject_webhook_t *w = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct pollfd pfd = {w->stop_fd, POLLIN, 0};
        int r = poll(&pfd, 1, RENEW_CHECK_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != 0)
            break; /* stopping (or poll failed: connections still renew it) */
        rm_tls_ctx_unref(current_ctx(w));
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------------------
 * Start and stop.
 * ------------------------------------------------------------------------------------------------------- */

static void webhook_free(rm_inject_webhook_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    rm_tls_ctx_unref(w->ctx);
    free(w->spiffe_id);
    free(w->cert_file);
    free(w->key_file);
    for (size_t i = 0; w->dns_names != NULL && i < w->cfg.num_dns_names; i++)
        free(w->dns_names[i]);
    free(w->dns_names);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

int rm_inject_webhook_start(const rm_inject_webhook_config_t *cfg, rm_inject_webhook_t **out, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    unsigned len;
    rm_inject_webhook_t *w;
    int one = 1, ret;

    if (rm__control_parse_addr(cfg->listen, &ss, &len) != 0) {
        snprintf(err, errlen, "--webhook-listen %s: not ip:port or [ip6]:port", cfg->listen);
        return -EINVAL;
    }
    if (rm_tls_global_init() != 0) {
        snprintf(err, errlen, "the TLS library cannot be initialised");
        return RM_ERR_TLS_CONFIG;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return -ENOMEM;
    w->fd = w->stop_fd = -1;
    w->cfg = *cfg;
    pthread_mutex_init(&w->lock, NULL);
    if (w->cfg.threads == 0)
        w->cfg.threads = 8;
    if (w->cfg.threads > MAX_THREADS)
        w->cfg.threads = MAX_THREADS;
    if (w->cfg.max_body == 0)
        w->cfg.max_body = DEFAULT_BODY_MAX;
    if (w->cfg.io_timeout_ms == 0)
        w->cfg.io_timeout_ms = DEFAULT_IO_MS;
    if (cfg->cert_file != NULL &&
        ((w->cert_file = strdup(cfg->cert_file)) == NULL || (w->key_file = strdup(cfg->key_file)) == NULL)) {
        ret = -ENOMEM;
        goto Fail;
    }
    if ((w->spiffe_id = strdup(cfg->spiffe_id)) == NULL ||
        (w->dns_names = calloc(cfg->num_dns_names + 1, sizeof(char *))) == NULL) {
        ret = -ENOMEM;
        goto Fail;
    }
    for (size_t i = 0; i < cfg->num_dns_names; i++) {
        if ((w->dns_names[i] = strdup(cfg->dns_names[i])) == NULL) {
            ret = -ENOMEM;
            goto Fail;
        }
    }
    if ((ret = issue_ctx(w, &w->ctx, &w->renew_at, err, errlen)) != 0)
        goto Fail;
    if ((w->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
        setsockopt(w->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(w->fd, (struct sockaddr *)&ss, len) != 0 || listen(w->fd, 128) != 0 ||
        (w->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        ret = -errno;
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen, strerror(errno));
        goto Fail;
    }
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } bound;
    socklen_t bl = sizeof(bound);
    memset(&bound, 0, sizeof(bound));
    if (getsockname(w->fd, &bound.sa, &bl) == 0)
        w->port = ntohs(bound.sa.sa_family == AF_INET6 ? bound.in6.sin6_port : bound.in.sin_port);
    if ((ret = pthread_create(&w->renewer, NULL, renew_thread, w)) != 0) {
        snprintf(err, errlen, "cannot start the webhook's renewal thread");
        ret = -ret;
        goto Fail;
    }
    w->have_renewer = 1;
    for (; w->num_threads < w->cfg.threads; w->num_threads++) {
        if ((ret = pthread_create(&w->threads[w->num_threads], NULL, webhook_thread, w)) != 0) {
            snprintf(err, errlen, "cannot start the webhook's threads");
            rm_inject_webhook_stop(w);
            return -ret;
        }
    }
    *out = w;
    return 0;

Fail:
    webhook_free(w);
    return ret;
}

void rm_inject_webhook_stop(rm_inject_webhook_t *w)
{
    uint64_t one = 1;

    if (w == NULL)
        return;
    if ((w->num_threads != 0 || w->have_renewer) && write(w->stop_fd, &one, sizeof(one)) != sizeof(one)) {
        for (unsigned i = 0; i < w->num_threads; i++)
            pthread_cancel(w->threads[i]);
        if (w->have_renewer)
            pthread_cancel(w->renewer);
    }
    for (unsigned i = 0; i < w->num_threads; i++)
        pthread_join(w->threads[i], NULL);
    if (w->have_renewer)
        pthread_join(w->renewer, NULL);
    webhook_free(w);
}

unsigned rm_inject_webhook_port(const rm_inject_webhook_t *w)
{
    return w->port;
}

int rm_inject_webhook_publish_ca_bundle(rm_kube_client_t *client, const char *name, const char *bundle_pem,
                                        size_t bundle_len, unsigned *patched, char *err, size_t errlen)
{
    char path[400], *b64 = NULL, *body = NULL;
    size_t b64_len, i;
    json_t *cfg = NULL, *ops = NULL, *hook;
    int ret;

    *patched = 0;
    snprintf(path, sizeof(path), "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/%s", name);
    if ((ret = rm_kube_get(client, path, &cfg, err, errlen)) != 0)
        goto Exit;
    if ((ret = rm__b64_encode(bundle_pem, bundle_len, &b64, &b64_len)) != 0 || (ops = json_array()) == NULL) {
        ret = rm_config_fail(err, errlen, -ENOMEM, "out of memory");
        goto Exit;
    }
    json_array_foreach(json_object_get(cfg, "webhooks"), i, hook)
    {
        const char *hook_name = json_string_value(json_object_get(hook, "name"));
        const char *have = json_string_value(json_object_get(json_object_get(hook, "clientConfig"), "caBundle"));
        char at[64];
        if (hook_name == NULL || !json_is_object(json_object_get(hook, "clientConfig")))
            continue; /* the API server refuses such a webhook; nothing to patch */
        if (have != NULL && strcmp(have, b64) == 0)
            continue;
        snprintf(at, sizeof(at), "/webhooks/%zu/name", i);
        json_array_append_new(ops, json_pack("{s:s, s:s, s:s}", "op", "test", "path", at, "value", hook_name));
        snprintf(at, sizeof(at), "/webhooks/%zu/clientConfig/caBundle", i);
        json_array_append_new(ops, json_pack("{s:s, s:s, s:s}", "op", "add", "path", at, "value", b64));
        ++*patched;
    }
    if (*patched == 0)
        goto Exit;
    if ((body = json_dumps(ops, JSON_COMPACT)) == NULL) {
        ret = rm_config_fail(err, errlen, -ENOMEM, "out of memory");
        goto Exit;
    }
    ret = rm_kube_send(client, "PATCH", path, "application/json-patch+json", body, NULL, err, errlen);
    if (ret != 0)
        *patched = 0;

Exit:
    free(body);
    json_decref(ops);
    json_decref(cfg);
    free(b64);
    return ret;
}
