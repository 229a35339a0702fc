/* ringmeshctl stat: a table per workload (requests/s, success, p50/p99, denies/s, mTLS share, open connections),
 * from proxies' /metrics pages scraped twice (--admin) or from Prometheus (--prometheus); a live view redrawn in
 * place in a terminal, or one table (--once) or one JSON document (-o json) for scripts. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "ringmesh/duration.h"
#include "stat.h"

#define USAGE                                                                                                          \
    "usage: ringmeshctl stat (--prometheus URL | --admin HOST:PORT [--admin HOST:PORT ...]) [-n NAMESPACE]\n"          \
    "                        [--once] [-o table|json] [--interval DURATION] [--window DURATION]\n"

#define HELP                                                                                                           \
    "\n"                                                                                                               \
    "A row per workload that received requests or connections (reporter=\"destination\" series):\n"                    \
    "  REQ/S     requests per second\n"                                                                                \
    "  SUCCESS   share of requests that succeeded: HTTP status below 500, gRPC status OK\n"                            \
    "  P50, P99  request duration quantiles in ms, from the duration histogram (as histogram_quantile)\n"              \
    "  DENY/S    requests per second answered 403, or with gRPC status 7 (PERMISSION_DENIED)\n"                        \
    "  MTLS      share of requests that came over mutual TLS\n"                                                        \
    "  TCP CONN  connections open (opened minus closed)\n"                                                             \
    "\n"                                                                                                               \
    "  --prometheus URL     query this Prometheus server (rates over --window, default 1m)\n"                          \
    "  --admin HOST:PORT    scrape this proxy's admin port (http://HOST:PORT/metrics, or a full URL); repeat it\n"     \
    "                       for several proxies. Rates come from two scrapes --interval apart\n"                       \
    "  -n, --namespace NS   only the workloads of namespace NS\n"                                                      \
    "  --interval DURATION  time between scrapes and between redraws (default 2s)\n"                                   \
    "  --once               print one table and exit\n"                                                                \
    "  -o, --output FORMAT  table (default) or json: one JSON array of rows, then exit\n"                              \
    "\n"                                                                                                               \
    "Metric names: ringmesh_* (istio_* when a proxy has only those: metrics.istioNames).\n"                            \
    "Without --once the table is redrawn every interval until Ctrl-C.\n"                                               \
    "Exit status: 0 ok (Ctrl-C included), 1 an endpoint could not be read, 2 usage.\n"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    stop_requested = 1;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps `ms` unless Ctrl-C comes first. */
static void pause_ms(uint32_t ms)
{
    uint64_t deadline = monotonic_ms() + ms, now;

    while (!stop_requested && (now = monotonic_ms()) < deadline) {
        struct timespec ts = {(time_t)((deadline - now) / 1000), (long)((deadline - now) % 1000) * 1000000};
        nanosleep(&ts, NULL); /* EINTR: the loop looks at the flag */
    }
}

/* ---- the proxies' pages (--admin) ----------------------------------------------------------------------------- */

typedef struct st_endpoint_t {
    char *url;
    rm_stat_scrape_t scrape; /* the last good one */
    uint64_t taken_ms;       /* when it arrived */
} endpoint_t;

/* HOST:PORT, [V6]:PORT, or a URL taken as is. */
static char *endpoint_url(const char *arg)
{
    const char *colon = strrchr(arg, ':');
    char *url, *end;
    unsigned long port;

    if (strstr(arg, "://") != NULL) {
        if (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0)
            return NULL;
        return strdup(arg);
    }
    if (colon == NULL || colon == arg || strchr(arg, '/') != NULL ||
        (strchr(arg, ':') != colon && (arg[0] != '[' || colon[-1] != ']')))
        return NULL;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port == 0 || port > 65535)
        return NULL;
    if ((url = malloc(strlen(arg) + sizeof("http:///metrics"))) != NULL &&
        snprintf(url, strlen(arg) + sizeof("http:///metrics"), "http://%s/metrics", arg) < 0) {
        free(url);
        url = NULL;
    }
    return url;
}

static int scrape_one(endpoint_t *e, rm_stat_scrape_t *out, uint64_t *taken, char *err, size_t errlen)
{
    rm_stat_body_t body;
    char why[512];
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (rm_stat_get(e->url, "text/plain;version=0.0.4", &stop_requested, &body, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", e->url, why);
        return -1;
    }
    *taken = monotonic_ms();
    if (body.status != 200) {
        snprintf(err, errlen, "%s: HTTP %ld", e->url, body.status);
        goto Exit;
    }
    if (rm_stat_scrape_parse(out, body.data, body.len, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", e->url, why);
        goto Exit;
    }
    ret = 0;

Exit:
    if (ret != 0)
        rm_stat_scrape_free(out);
    rm_stat_body_free(&body);
    return ret;
}

/* Scrapes every endpoint. With `table`, adds what happened since each one's previous scrape, which the new one
 * replaces; on an error nothing is replaced. */
static int scrape_all(endpoint_t *eps, size_t n, rm_stat_table_t *table, const char *ns, char *err, size_t errlen)
{
    rm_stat_scrape_t *cur = calloc(n, sizeof(*cur));
    uint64_t *taken = calloc(n, sizeof(*taken));
    size_t i;
    int ret = -1;

    if (cur == NULL || taken == NULL) {
        snprintf(err, errlen, "out of memory");
        goto Exit;
    }
    for (i = 0; i != n; ++i)
        if (scrape_one(&eps[i], &cur[i], &taken[i], err, errlen) != 0)
            goto Exit;
    for (i = 0; table != NULL && i != n; ++i) {
        if (rm_stat_table_add_scrapes(table, &eps[i].scrape, &cur[i], taken[i] - eps[i].taken_ms, ns) != 0) {
            snprintf(err, errlen, "out of memory");
            goto Exit;
        }
    }
    for (i = 0; i != n; ++i) {
        rm_stat_scrape_free(&eps[i].scrape);
        eps[i].scrape = cur[i];
        eps[i].taken_ms = taken[i];
        memset(&cur[i], 0, sizeof(cur[i]));
    }
    ret = 0;

Exit:
    for (i = 0; cur != NULL && i != n; ++i)
        rm_stat_scrape_free(&cur[i]);
    free(cur);
    free(taken);
    return ret;
}

/* ---- output ----------------------------------------------------------------------------------------------------- */

static double share(double part, double whole)
{
    return whole > 0 ? part / whole : NAN;
}

static double open_connections(const rm_stat_row_t *r)
{
    return r->tcp_open > 0 ? round(r->tcp_open) : 0;
}

static json_t *number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int print_json(const rm_stat_table_t *t)
{
    json_t *rows = json_array();
    size_t i;
    int ret = -1;

    if (rows == NULL)
        goto Exit;
    for (i = 0; i != t->num; ++i) {
        const rm_stat_row_t *r = &t->rows[i];
        json_t *row = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "namespace", r->namespace,
                                "workload", r->workload, "requests", json_real(r->requests), "req_per_s",
                                json_real(r->req_rate), "success", number_or_null(share(r->success_rate, r->req_rate)),
                                "p50_ms", number_or_null(r->p50_ms), "p99_ms", number_or_null(r->p99_ms), "deny_per_s",
                                json_real(r->deny_rate), "mtls", number_or_null(share(r->mtls_rate, r->req_rate)),
                                "tcp_connections", (json_int_t)open_connections(r));
        if (row == NULL || json_array_append_new(rows, row) != 0)
            goto Exit;
    }
    if (json_dumpf(rows, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) != 0 || fputc('\n', stdout) == EOF)
        goto Exit;
    ret = 0;

Exit:
    json_decref(rows);
    return ret;
}

#define NUM_COLUMNS 9

static void format_ms(char *buf, size_t len, double ms)
{
    if (!isfinite(ms))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, ms < 10 ? "%.2fms" : ms < 100 ? "%.1fms" : "%.0fms", ms);
}

static void format_share(char *buf, size_t len, double v, int decimals)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.*f%%", decimals, v * 100);
}

/* The table as text, columns as wide as their widest cell; NULL when out of memory. */
static char *render_table(const rm_stat_table_t *t)
{
    static const char *const heads[NUM_COLUMNS] = {"NAMESPACE", "WORKLOAD", "REQ/S", "SUCCESS", "P50",
                                                   "P99",       "DENY/S",   "MTLS",  "TCP CONN"};
    char(*cells)[NUM_COLUMNS][64] = calloc(t->num != 0 ? t->num : 1, sizeof(*cells));
    size_t width[NUM_COLUMNS], i, c, len = 0;
    char *text = NULL;
    FILE *out;

    if (cells == NULL || (out = open_memstream(&text, &len)) == NULL) {
        free(cells);
        return NULL;
    }
    for (c = 0; c != NUM_COLUMNS; ++c)
        width[c] = strlen(heads[c]);
    for (i = 0; i != t->num; ++i) {
        const rm_stat_row_t *r = &t->rows[i];
        snprintf(cells[i][0], sizeof(cells[i][0]), "%s", r->namespace);
        snprintf(cells[i][1], sizeof(cells[i][1]), "%s", r->workload);
        snprintf(cells[i][2], sizeof(cells[i][2]), "%.1f", r->req_rate);
        format_share(cells[i][3], sizeof(cells[i][3]), share(r->success_rate, r->req_rate), 2);
        format_ms(cells[i][4], sizeof(cells[i][4]), r->p50_ms);
        format_ms(cells[i][5], sizeof(cells[i][5]), r->p99_ms);
        snprintf(cells[i][6], sizeof(cells[i][6]), "%.1f", r->deny_rate);
        format_share(cells[i][7], sizeof(cells[i][7]), share(r->mtls_rate, r->req_rate), 0);
        snprintf(cells[i][8], sizeof(cells[i][8]), "%.0f", open_connections(r));
        for (c = 0; c != NUM_COLUMNS; ++c)
            if (strlen(cells[i][c]) > width[c])
                width[c] = strlen(cells[i][c]);
    }
    /* names to the left, numbers to the right */
    for (c = 0; c != NUM_COLUMNS; ++c)
        fprintf(out, c < 2 ? "%-*s%s" : "%*s%s", (int)width[c], heads[c], c + 1 != NUM_COLUMNS ? "  " : "\n");
    for (i = 0; i != t->num; ++i)
        for (c = 0; c != NUM_COLUMNS; ++c)
            fprintf(out, c < 2 ? "%-*s%s" : "%*s%s", (int)width[c], cells[i][c], c + 1 != NUM_COLUMNS ? "  " : "\n");
    if (t->num == 0)
        fprintf(out, "(no workload reported requests or connections)\n");
    free(cells);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* ---- the command ------------------------------------------------------------------------------------------------ */

typedef struct st_stat_opts_t {
    const char *prometheus, *ns;
    endpoint_t *eps;
    size_t num_eps;
    uint32_t interval_ms, window_ms;
    int once, json;
} stat_opts_t;

/* One table: from Prometheus, or from each proxy's scrape since its previous one. */
static int make_table(const stat_opts_t *o, rm_stat_table_t *t, char *err, size_t errlen)
{
    int ret;

    if (o->prometheus != NULL) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ret = rm_stat_prometheus(t, o->prometheus, o->window_ms, (double)now.tv_sec + now.tv_nsec / 1e9, o->ns,
                                 &stop_requested, err, errlen);
    } else {
        ret = scrape_all(o->eps, o->num_eps, t, o->ns, err, errlen);
    }
    if (ret == 0)
        rm_stat_table_finish(t);
    return ret;
}

/* Prints tables until Ctrl-C, or once. Returns the exit status. */
static int run(const stat_opts_t *o)
{
    int live = !o->once && !o->json, tty = live && isatty(STDOUT_FILENO), status = RM_CTL_EXIT_OK, drawn = 0;
    char err[1024], *last = NULL, clock_text[16];

    if (o->prometheus == NULL) { /* the first scrape: what the first interval is measured from */
        if (scrape_all(o->eps, o->num_eps, NULL, o->ns, err, sizeof(err)) != 0)
            goto Failed;
        pause_ms(o->interval_ms);
    }
    if (tty)
        fputs("\033[?25l", stdout); /* no cursor blinking over the table */
    while (!stop_requested) {
        rm_stat_table_t t = {0};
        int ok = make_table(o, &t, err, sizeof(err)) == 0;
        time_t now = time(NULL);
        struct tm tm;

        if (stop_requested) {
            rm_stat_table_free(&t);
            break;
        }
        if (!ok && !drawn) { /* nothing was shown yet: an endpoint that cannot be read is an error */
            rm_stat_table_free(&t);
            goto Failed;
        }
        if (ok && o->json) {
            status = print_json(&t) == 0 ? RM_CTL_EXIT_OK : RM_CTL_EXIT_INVALID;
            rm_stat_table_free(&t);
            break;
        }
        if (ok) {
            free(last);
            last = render_table(&t);
        }
        rm_stat_table_free(&t);
        if (last == NULL) {
            snprintf(err, sizeof(err), "out of memory");
            goto Failed;
        }
        if (strftime(clock_text, sizeof(clock_text), "%H:%M:%S", localtime_r(&now, &tm)) == 0)
            clock_text[0] = '\0';
        if (tty) /* cursor home, clear the screen: the table is redrawn in place */
            fputs("\033[H\033[2J", stdout);
        else if (drawn)
            fputc('\n', stdout);
        if (live) {
            if (o->prometheus != NULL)
                printf("%s  %s, window %us, every %.1fs (Ctrl-C to quit)\n", clock_text, o->prometheus,
                       o->window_ms / 1000, o->interval_ms / 1000.0);
            else
                printf("%s  %zu prox%s, every %.1fs (Ctrl-C to quit)\n", clock_text, o->num_eps,
                       o->num_eps == 1 ? "y" : "ies", o->interval_ms / 1000.0);
            if (!ok)
                printf("error: %s (the table is from the last good read)\n", err);
            fputc('\n', stdout);
        }
        fputs(last, stdout);
        if (fflush(stdout) != 0) {
            snprintf(err, sizeof(err), "cannot write the table: %s", strerror(errno));
            goto Failed;
        }
        drawn = 1;
        if (o->once)
            break;
        pause_ms(o->interval_ms);
    }
    goto Exit;

Failed:
    if (!stop_requested) {
        fprintf(stderr, "ringmeshctl stat: %s\n", err);
        status = RM_CTL_EXIT_INVALID;
    }
Exit:
    if (tty) {
        fputs("\033[?25h", stdout); /* the cursor back; the last table stays on the screen */
        if (fflush(stdout) != 0)
            status = RM_CTL_EXIT_INVALID;
    }
    free(last);
    return status;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("ringmeshctl stat: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nrun 'ringmeshctl stat --help' for usage\n", stderr);
    return RM_CTL_EXIT_USAGE;
}

int rm__ctl_stat(int argc, char **argv)
{
    enum { F_NAMESPACE, F_PROMETHEUS, F_ADMIN, F_ONCE, F_OUTPUT, F_INTERVAL, F_WINDOW, F_NUM };
    flag_t flags[F_NUM] = {
        {.name = "namespace", .takes_value = 1, .short_name = 'n'},
        {.name = "prometheus", .takes_value = 1},
        {.name = "admin", .takes_value = 1, .repeatable = 1},
        {.name = "once"},
        {.name = "output", .takes_value = 1, .short_name = 'o'},
        {.name = "interval", .takes_value = 1},
        {.name = "window", .takes_value = 1},
    };
    stat_opts_t o = {.interval_ms = 2000, .window_ms = 60000};
    struct sigaction sa;
    size_t i;
    int err, status;

    if ((err = rm__ctl_parse_flags("", "stat", argc, argv, flags, F_NUM)) != 0) {
        if (err > 0) {
            printf("%s%s", USAGE, HELP);
            return RM_CTL_EXIT_OK;
        }
        fprintf(stderr, "run 'ringmeshctl stat --help' for usage\n");
        return RM_CTL_EXIT_USAGE;
    }
    if ((flags[F_PROMETHEUS].value != NULL) == (flags[F_ADMIN].count != 0))
        return usage_error("give either --prometheus URL or --admin HOST:PORT (one or more)");
    if ((o.ns = flags[F_NAMESPACE].value) != NULL && *o.ns == '\0')
        return usage_error("--namespace needs a name");
    if (flags[F_OUTPUT].value != NULL && strcmp(flags[F_OUTPUT].value, "table") != 0 &&
        strcmp(flags[F_OUTPUT].value, "json") != 0)
        return usage_error("-o '%s': want table or json", flags[F_OUTPUT].value);
    o.json = flags[F_OUTPUT].value != NULL && strcmp(flags[F_OUTPUT].value, "json") == 0;
    o.once = flags[F_ONCE].value != NULL;
    if (flags[F_INTERVAL].value != NULL &&
        (rm_duration_parse_ms(flags[F_INTERVAL].value, &o.interval_ms) != 0 || o.interval_ms == 0))
        return usage_error("--interval '%s': want a duration such as 2s or 500ms", flags[F_INTERVAL].value);
    if (flags[F_WINDOW].value != NULL) {
        if (flags[F_PROMETHEUS].value == NULL)
            return usage_error("--window applies to --prometheus (with --admin the window is --interval)");
        if (rm_duration_parse_ms(flags[F_WINDOW].value, &o.window_ms) != 0 || o.window_ms < 1000)
            return usage_error("--window '%s': want a duration of at least 1s, such as 1m or 30s",
                               flags[F_WINDOW].value);
    }
    if ((o.prometheus = flags[F_PROMETHEUS].value) != NULL && strncmp(o.prometheus, "http://", 7) != 0 &&
        strncmp(o.prometheus, "https://", 8) != 0)
        return usage_error("--prometheus '%s': want the server's URL, e.g. http://prometheus:9090", o.prometheus);
    if (flags[F_ADMIN].count != 0 && (o.eps = calloc(flags[F_ADMIN].count, sizeof(*o.eps))) == NULL) {
        fprintf(stderr, "ringmeshctl stat: out of memory\n");
        return RM_CTL_EXIT_INVALID;
    }
    for (i = 0; i != flags[F_ADMIN].count; ++i, ++o.num_eps) {
        if ((o.eps[i].url = endpoint_url(flags[F_ADMIN].values[i])) == NULL) {
            status = usage_error("--admin '%s': want HOST:PORT (e.g. 10.0.0.5:15021, [fd00::5]:15021) or an http URL",
                                 flags[F_ADMIN].values[i]);
            goto Exit;
        }
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: a sleep or a transfer notices at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    status = run(&o);

Exit:
    for (i = 0; i != o.num_eps; ++i) {
        free(o.eps[i].url);
        rm_stat_scrape_free(&o.eps[i].scrape);
    }
    free(o.eps);
    return status;
}
