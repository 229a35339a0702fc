/* The observe-mode request and response scanners (http1_scan.h) against http_parser: two HTTP/1.1 filters that allow
 * every request, one in observe mode (rm_http1_filter_set_observe: responses of the plainest shape framed by the
 * scanner, bodies skipped by count) and one without, are fed the same bytes, and must agree after every call: the same
 * result, the same requests given to the hook (method, path, host, every field), the same bytes to the app and to the
 * client, the same exchanges reported (status, request and response body bytes, complete, answered by the proxy) in the
 * same order, and, at the end, the same reports of what was still open. rm_http1_scan_response_head() on every app
 * chunk must also describe a head that ends inside it and a status the scanner accepts.
 *
 * The input is the script of fuzz_http1_filter.c (its two first bytes unused here): chunks, each a tag byte T (bit
 * 0: 0 from the client, 1 from the app; T >> 1 is the length, 127 meaning a two-byte big-endian length follows),
 * then that many bytes. Everything is freed at the end, so LeakSanitizer checks both filters' memory. */
/* rm-fuzz-link: ringmesh_proxy_core */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http1_filter.h"
#include "http1_scan.h"

#define MAX_REPORTS 256

typedef struct {
    rm_http1_filter_t f;
    rm_bytebuf_t to_app, to_client;
    uint64_t calls;
    uint64_t seen_hash; /* FNV-1a over everything the hook was given: method, path, host, fields, flags */
    size_t reported;
    rm_http_exchange_t reports[MAX_REPORTS]; /* the first MAX_REPORTS, in order */
} twin_t;

static void hash_bytes(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i != n; i++)
        *h = (*h ^ b[i]) * 1099511628211ULL;
    *h = (*h ^ 0xff) * 1099511628211ULL; /* a separator, so that "ab" "c" differs from "a" "bc" */
}

static rm_http_verdict_t allow(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    twin_t *t = ctx;
    uint8_t flags[3] = {req->host != NULL, req->path_error != NULL, (uint8_t)req->num_headers};
    hash_bytes(&t->seen_hash, req->method, req->method_len);
    hash_bytes(&t->seen_hash, req->path, req->path_len);
    if (req->host != NULL)
        hash_bytes(&t->seen_hash, req->host, req->host_len);
    for (size_t i = 0; i != req->num_headers; i++) {
        hash_bytes(&t->seen_hash, req->headers[i].name, req->headers[i].name_len);
        hash_bytes(&t->seen_hash, req->headers[i].value, req->headers[i].value_len);
    }
    hash_bytes(&t->seen_hash, flags, sizeof(flags));
    out->cookie = ++t->calls;
    return RM_HTTP_ALLOW;
}

static void done(void *ctx, const rm_http_exchange_t *ex)
{
    twin_t *t = ctx;
    if (t->reported < MAX_REPORTS)
        t->reports[t->reported] = *ex;
    t->reported++;
}

static void same(const twin_t *a, const twin_t *b)
{
    RM_FUZZ_CHECK(a->to_app.len == b->to_app.len && a->to_client.len == b->to_client.len);
    RM_FUZZ_CHECK(a->to_app.len == 0 || memcmp(a->to_app.base, b->to_app.base, a->to_app.len) == 0);
    RM_FUZZ_CHECK(a->to_client.len == 0 || memcmp(a->to_client.base, b->to_client.base, a->to_client.len) == 0);
    RM_FUZZ_CHECK(a->calls == b->calls && a->reported == b->reported);
    RM_FUZZ_CHECK(a->seen_hash == b->seen_hash); /* the hook was given the same requests */
    for (size_t i = 0; i != a->reported && i != MAX_REPORTS; i++) {
        const rm_http_exchange_t *x = a->reports + i, *y = b->reports + i;
        RM_FUZZ_CHECK(x->cookie == y->cookie && x->status == y->status && x->grpc_status == y->grpc_status);
        RM_FUZZ_CHECK(x->request_bytes == y->request_bytes && x->response_bytes == y->response_bytes);
        RM_FUZZ_CHECK(x->complete == y->complete && x->answered_by_proxy == y->answered_by_proxy);
    }
    RM_FUZZ_CHECK(rm_http1_filter_passthrough(&a->f) == rm_http1_filter_passthrough(&b->f));
    RM_FUZZ_CHECK(rm_http1_filter_client_finished(&a->f) == rm_http1_filter_client_finished(&b->f));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    twin_t *t[2];
    size_t off = 2;
    int from_app;
    size_t at, len;

    if (size < 2)
        return 0;
    for (int i = 0; i != 2; i++) {
        t[i] = calloc(1, sizeof(*t[i]));
        RM_FUZZ_CHECK(t[i] != NULL);
        RM_FUZZ_CHECK(rm_http1_filter_init(&t[i]->f, allow, done, t[i]) == 0);
    }
    rm_http1_filter_set_observe(&t[1]->f);

    while (rm_fuzz_next_chunk(data, size, &off, &from_app, &at, &len)) {
        int r[2];
        if (from_app) {
            rm_http1_resp_head_t h;
            if (rm_http1_scan_response_head(data + at, len, &h)) {
                RM_FUZZ_CHECK(h.head_len >= 19 && h.head_len <= len && h.head_len <= RM_HTTP1_SCAN_MAX_HEAD);
                RM_FUZZ_CHECK(memcmp(data + at + h.head_len - 4, "\r\n\r\n", 4) == 0);
                RM_FUZZ_CHECK(h.status >= 200 && h.status <= 599 && h.status != 204 && h.status != 304);
            }
        }
        for (int i = 0; i != 2; i++) {
            uint8_t *copy = rm_fuzz_memdup(data + at, len);
            r[i] = from_app ? rm_http1_filter_from_app(&t[i]->f, copy, len, &t[i]->to_app, &t[i]->to_client)
                            : rm_http1_filter_from_client(&t[i]->f, copy, len, &t[i]->to_app, &t[i]->to_client);
            free(copy);
        }
        RM_FUZZ_CHECK(r[0] == r[1]);
        same(t[0], t[1]);
    }
    /* the app ends, or only the connection: what was still open is reported the same way */
    for (int i = 0; i != 2; i++)
        rm_http1_filter_end(&t[i]->f, data[0] & 1);
    same(t[0], t[1]);
    RM_FUZZ_CHECK(t[0]->reported == t[0]->calls);
    for (int i = 0; i != 2; i++) {
        rm_http1_filter_dispose(&t[i]->f);
        rm_bytebuf_free(&t[i]->to_app);
        rm_bytebuf_free(&t[i]->to_client);
        free(t[i]);
    }
    return 0;
}
