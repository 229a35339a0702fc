/* Drives the proxy's span path as a connection's worker does, without the network between: requests are decided
 * (rm_conn_trace_request), their exchanges end (rm_conn_trace_exchange), and the spans go through the real exporter
 * (trace_export.h, configured by the OTEL_* environment) to whatever collector that names. Used by
 * tests/e2e/test_trace_export.sh with the test OTLP collector (tests/tools/otlp-collector.mjs).
 *
 *   trace_span_drive [--requests N] [--inbound] [--status CODE] [--grpc-status N] [--header 'name: value']...
 *                    [--linger-ms MS] [--rss-at N] [--noted]
 *
 * --noted: the authorization decision comes as conn_authz reports it (rm_conn_trace_note_decision: would-deny by
 * shop/dry-run-deny) instead of in the request's info.
 *
 * For each request it prints a JSON line: {"i", "cookie", "set": {header fields the forwarded request gets}}. After
 * the last one it waits --linger-ms (the exporter keeps working meanwhile), stops the exporter (timing the stop),
 * and prints {"stop_ms", "rss_kb", "rss_kb_at": (RSS after request --rss-at), "metrics": "..."}. */
#include "conn_trace.h"
#include "trace_export.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 16

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    long requests = 1, linger_ms = 0, rss_at = -1, rss_at_kb = -1;
    int inbound = 0, noted = 0, status = 200, grpc_status = -1;
    rm_http_header_t headers[MAX_HEADERS];
    size_t num_headers = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--inbound") == 0) {
            inbound = 1;
            continue;
        }
        if (strcmp(a, "--noted") == 0) {
            noted = 1;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "trace_span_drive: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--requests") == 0) {
            requests = atol(v);
        } else if (strcmp(a, "--status") == 0) {
            status = atoi(v);
        } else if (strcmp(a, "--grpc-status") == 0) {
            grpc_status = atoi(v);
        } else if (strcmp(a, "--linger-ms") == 0) {
            linger_ms = atol(v);
        } else if (strcmp(a, "--rss-at") == 0) {
            rss_at = atol(v);
        } else if (strcmp(a, "--header") == 0 && num_headers < MAX_HEADERS) {
            const char *colon = strchr(v, ':');
            if (colon == NULL) {
                fprintf(stderr, "trace_span_drive: --header wants 'name: value', not %s\n", v);
                return 2;
            }
            const char *val = colon + 1;
            while (*val == ' ')
                val++;
            headers[num_headers++] = (rm_http_header_t){v, (size_t)(colon - v), val, strlen(val)};
        } else {
            fprintf(stderr, "trace_span_drive: unknown option %s\n", a);
            return 2;
        }
    }
    if (num_headers < MAX_HEADERS)
        headers[num_headers++] = (rm_http_header_t){"user-agent", 10, "trace-span-drive/1", 18};
    if (rm_trace_export_start(NULL, NULL) != 0) {
        fprintf(stderr, "trace_span_drive: the exporter did not start\n");
        return 1;
    }
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(inbound ? 41000 : 8080)};
    inet_pton(AF_INET, inbound ? "198.18.0.10" : "198.18.0.20", &peer.sin_addr);
    rm_conn_trace_t *table = NULL;
    static const char path[] = "/items/7?color=blue";
    for (long i = 0; i < requests; i++) {
        rm_http_request_t req = {
            .method = "GET",
            .method_len = 3,
            .path = path,
            .path_len = sizeof(path) - 1,
            .host = "orders.shop:8080",
            .host_len = 16,
            .headers = headers,
            .num_headers = num_headers,
        };
        rm_conn_trace_info_t info = {
            .outbound = !inbound,
            .req = &req,
            .verdict = RM_HTTP_ALLOW,
            .authz_policy = noted ? NULL : "shop.allow-frontend",
            .source_principal = "spiffe://cluster.local/ns/shop/sa/frontend",
            .destination_principal = "spiffe://cluster.local/ns/shop/sa/orders",
            .peer_addr = (const struct sockaddr *)&peer,
        };
        rm_http_decision_t d;
        memset(&d, 0, sizeof(d));
        const char *decision_log_id = rm_conn_trace_request_id(&req);
        if (noted)
            rm_conn_trace_note_decision(&req, "would-deny", "shop", "dry-run-deny");
        uint32_t cookie = rm_conn_trace_request(&table, &info, &d);
        const char *span_trace_id = rm_conn_trace_id(table, cookie);
        if (requests <= 100) {
            printf("{\"i\":%ld,\"cookie\":%u,\"decision_log_trace_id\":", i, cookie);
            if (decision_log_id != NULL)
                json_str(decision_log_id, strlen(decision_log_id));
            else
                printf("null");
            printf(",\"span_trace_id\":");
            if (span_trace_id != NULL)
                json_str(span_trace_id, strlen(span_trace_id));
            else
                printf("null");
            printf(",\"set\":{");
            for (size_t k = 0; k < d.num_set; k++) {
                if (k > 0)
                    putchar(',');
                json_str(d.set[k].name, d.set[k].name_len);
                putchar(':');
                json_str(d.set[k].value, d.set[k].value_len);
            }
            printf("}}\n");
        }
        rm_http_exchange_t ex = {.cookie = cookie,
                                 .status = (uint16_t)status,
                                 .grpc_status = (int16_t)grpc_status,
                                 .response_bytes = 12,
                                 .complete = 1};
        rm_conn_trace_exchange(table, cookie, &ex);
        if (i + 1 == rss_at)
            rss_at_kb = rss_kb();
    }
    fflush(stdout);
    if (linger_ms > 0)
        usleep((useconds_t)linger_ms * 1000);
    rm_conn_trace_free(table);
    uint64_t t0 = now_ms();
    rm_trace_export_stop();
    uint64_t stop_ms = now_ms() - t0;
    char metrics[4096];
    size_t n = rm_trace_export_metrics(metrics, sizeof(metrics), 0);
    printf("{\"stop_ms\":%llu,\"rss_kb\":%ld,\"rss_kb_at\":%ld,\"metrics\":", (unsigned long long)stop_ms, rss_kb(),
           rss_at_kb);
    json_str(metrics, n < sizeof(metrics) ? n : sizeof(metrics) - 1);
    printf("}\n");
    return 0;
}
