/* The stat table from Prometheus' HTTP API: one instant query per column, all evaluated at the same time, rates
 * over the window, p50/p99 by histogram_quantile() over the summed bucket rates. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stat.h"

#define BY "destination_workload_namespace, destination_workload"

/* What a query's value is, in a row. */
typedef enum en_column_t {
    COL_REQUESTS,
    COL_SUCCESS,
    COL_DENY,
    COL_MTLS,
    COL_P50,
    COL_P99,
    COL_TCP_OPENED,
    COL_TCP_CLOSED,
    COL_PREFIX, /* which prefix the metrics carry */
} column_t;

typedef struct st_prom_t {
    const char *base; /* without a trailing '/' */
    size_t base_len;
    double eval_time;
    const volatile int *stop;
    char *err;
    size_t errlen;
} prom_t;

/* Runs one instant query; *result is the "result" array (owned by *root) on success. */
static int query(prom_t *p, const char *promql, json_t **root, json_t **result)
{
    char url[8192], curl_err[256];
    rm_stat_body_t body;
    json_error_t jerr;
    json_t *status, *data;
    char *escaped = curl_easy_escape(NULL, promql, 0);
    int ret = -1;

    *root = NULL;
    if (escaped == NULL) {
        snprintf(p->err, p->errlen, "out of memory");
        return -1;
    }
    snprintf(url, sizeof(url), "%.*s/api/v1/query?query=%s&time=%.3f", (int)p->base_len, p->base, escaped,
             p->eval_time);
    curl_free(escaped);
    if (rm_stat_get(url, "application/json", p->stop, &body, curl_err, sizeof(curl_err)) != 0) {
        snprintf(p->err, p->errlen, "%.*s/api/v1/query: %s", (int)p->base_len, p->base, curl_err);
        return -1;
    }
    if ((*root = json_loadb(body.data, body.len, 0, &jerr)) == NULL || !json_is_object(*root)) {
        if (body.status != 200)
            snprintf(p->err, p->errlen, "%.*s/api/v1/query: HTTP %ld (is this Prometheus?)", (int)p->base_len, p->base,
                     body.status);
        else
            snprintf(p->err, p->errlen, "%.*s/api/v1/query: the answer is not JSON (%s at byte %d)", (int)p->base_len,
                     p->base, jerr.text, jerr.position);
        goto Exit;
    }
    status = json_object_get(*root, "status");
    if (!json_is_string(status) || strcmp(json_string_value(status), "success") != 0) {
        const char *type = json_string_value(json_object_get(*root, "errorType")),
                   *text = json_string_value(json_object_get(*root, "error"));
        snprintf(p->err, p->errlen, "%.*s/api/v1/query: Prometheus answered HTTP %ld: %s%s%s (query: %s)",
                 (int)p->base_len, p->base, body.status, type != NULL ? type : "error", text != NULL ? ": " : "",
                 text != NULL ? text : "", promql);
        goto Exit;
    }
    data = json_object_get(*root, "data");
    if (!json_is_string(json_object_get(data, "resultType")) ||
        strcmp(json_string_value(json_object_get(data, "resultType")), "vector") != 0 ||
        !json_is_array(*result = json_object_get(data, "result"))) {
        snprintf(p->err, p->errlen, "%.*s/api/v1/query: the answer is not an instant vector (query: %s)",
                 (int)p->base_len, p->base, promql);
        goto Exit;
    }
    ret = 0;

Exit:
    if (ret != 0) {
        json_decref(*root);
        *root = NULL;
    }
    rm_stat_body_free(&body);
    return ret;
}

static const char *label_or_unknown(json_t *metric, const char *name)
{
    const char *v = json_string_value(json_object_get(metric, name));

    return v != NULL && *v != '\0' ? v : "unknown";
}

/* Runs `promql` and puts each element's value in its row's column `col`. */
static int fill(prom_t *p, rm_stat_table_t *t, column_t col, const char *promql, uint32_t window_ms)
{
    json_t *root, *result, *e;
    size_t i;
    int ret = -1;

    if (query(p, promql, &root, &result) != 0)
        return -1;
    json_array_foreach(result, i, e)
    {
        json_t *metric = json_object_get(e, "metric"), *value = json_object_get(e, "value");
        const char *s = json_string_value(json_array_get(value, 1));
        rm_stat_row_t *r;
        char *end;
        double v;

        if (s == NULL || (v = strtod(s, &end), *end != '\0') || !json_is_object(metric)) {
            snprintf(p->err, p->errlen, "%.*s/api/v1/query: an element of the answer has no value (query: %s)",
                     (int)p->base_len, p->base, promql);
            goto Exit;
        }
        if ((r = rm_stat_table_row(t, label_or_unknown(metric, "destination_workload_namespace"),
                                   label_or_unknown(metric, "destination_workload"))) == NULL) {
            snprintf(p->err, p->errlen, "out of memory");
            goto Exit;
        }
        switch (col) {
        case COL_REQUESTS:
            r->req_rate = v;
            r->requests = v * window_ms / 1000.0;
            break;
        case COL_SUCCESS:
            r->success_rate = v;
            break;
        case COL_DENY:
            r->deny_rate = v;
            break;
        case COL_MTLS:
            r->mtls_rate = v;
            break;
        case COL_P50:
            r->p50_ms = v;
            break;
        case COL_P99:
            r->p99_ms = v;
            break;
        case COL_TCP_OPENED:
            r->tcp_open += v;
            break;
        case COL_TCP_CLOSED:
            r->tcp_open -= v;
            break;
        case COL_PREFIX:
            break;
        }
    }
    ret = 0;

Exit:
    json_decref(root);
    return ret;
}

/* ringmesh_ when any proxy reports under that name, else istio_ when any does, else ringmesh_. */
static int pick_prefix(prom_t *p, const char **prefix)
{
    json_t *root, *result, *e;
    size_t i;
    int found[RM_STAT_NUM_PREFIXES] = {0};

    if (query(p,
              "count by (__name__) ({__name__=~\"(ringmesh|istio)_(requests_total|tcp_connections_opened_total)\","
              "reporter=\"destination\"})",
              &root, &result) != 0)
        return -1;
    json_array_foreach(result, i, e)
    {
        const char *name = json_string_value(json_object_get(json_object_get(e, "metric"), "__name__"));
        found[RM_STAT_PREFIX_ISTIO] |= name != NULL && strncmp(name, "istio_", 6) == 0;
        found[RM_STAT_PREFIX_RINGMESH] |= name != NULL && strncmp(name, "ringmesh_", 9) == 0;
    }
    json_decref(root);
    *prefix =
        rm_stat_prefixes[!found[RM_STAT_PREFIX_RINGMESH] && found[RM_STAT_PREFIX_ISTIO] ? RM_STAT_PREFIX_ISTIO
                                                                                        : RM_STAT_PREFIX_RINGMESH];
    return 0;
}

int rm_stat_prometheus(rm_stat_table_t *t, const char *base_url, uint32_t window_ms, double eval_time, const char *ns,
                       const volatile int *stop, char *err, size_t errlen)
{
    prom_t p = {.base = base_url,
                .base_len = strlen(base_url),
                .eval_time = eval_time,
                .stop = stop,
                .err = err,
                .errlen = errlen};
    char sel[512], promql[2048];
    const char *P;
    size_t i;

    if (errlen != 0)
        err[0] = '\0';
    while (p.base_len != 0 && p.base[p.base_len - 1] == '/')
        --p.base_len;
    /* the namespace as a PromQL string: backslashes and quotes escaped */
    i = (size_t)snprintf(sel, sizeof(sel), "reporter=\"destination\"");
    if (ns != NULL) {
        i += (size_t)snprintf(sel + i, sizeof(sel) - i, ",destination_workload_namespace=\"");
        for (const char *c = ns; *c != '\0' && i + 4 < sizeof(sel); ++c) {
            if (*c == '\\' || *c == '"')
                sel[i++] = '\\';
            sel[i++] = *c;
        }
        snprintf(sel + i, sizeof(sel) - i, "\"");
    }
    if (pick_prefix(&p, &P) != 0)
        return -1;

#define FILL(col, ...)                                                                                                 \
    do {                                                                                                               \
        snprintf(promql, sizeof(promql), __VA_ARGS__);                                                                 \
        if (fill(&p, t, col, promql, window_ms) != 0)                                                                  \
            return -1;                                                                                                 \
    } while (0)

    FILL(COL_REQUESTS, "sum by (" BY ") (rate(%srequests_total{%s}[%ums]))", P, sel, window_ms);
    FILL(COL_SUCCESS,
         "sum by (" BY ") (rate(%srequests_total{%s,request_protocol!=\"grpc\",response_code=~\"[1-4][0-9][0-9]\"}"
         "[%ums]) or rate(%srequests_total{%s,request_protocol=\"grpc\",grpc_response_status=\"0\"}[%ums]))",
         P, sel, window_ms, P, sel, window_ms);
    FILL(COL_DENY,
         "sum by (" BY ") (rate(%srequests_total{%s,response_code=\"403\"}[%ums]) or "
         "rate(%srequests_total{%s,request_protocol=\"grpc\",grpc_response_status=\"7\"}[%ums]))",
         P, sel, window_ms, P, sel, window_ms);
    FILL(COL_MTLS, "sum by (" BY ") (rate(%srequests_total{%s,connection_security_policy=\"mutual_tls\"}[%ums]))", P,
         sel, window_ms);
    FILL(COL_P50,
         "histogram_quantile(0.5, sum by (" BY ", le) (rate(%srequest_duration_milliseconds_bucket{%s}[%ums])))", P,
         sel, window_ms);
    FILL(COL_P99,
         "histogram_quantile(0.99, sum by (" BY ", le) (rate(%srequest_duration_milliseconds_bucket{%s}[%ums])))", P,
         sel, window_ms);
    FILL(COL_TCP_OPENED, "sum by (" BY ") (%stcp_connections_opened_total{%s})", P, sel);
    FILL(COL_TCP_CLOSED, "sum by (" BY ") (%stcp_connections_closed_total{%s})", P, sel);
#undef FILL
    return 0;
}
