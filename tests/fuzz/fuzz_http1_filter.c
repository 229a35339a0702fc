/* rm_http1_filter_from_client() / rm_http1_filter_from_app(): the inbound HTTP/1.1 policy filter.
 *
 * The input is a script:
 *   byte 0   the policy: 0 allow all, 1 deny all, 2 deny when the path or a header value contains byte 1,
 *            3 alternate (deny, allow, deny, ...);
 *   byte 1   the byte policy 2 looks for;
 *   then     chunks: a tag byte T (bit 0: 0 from the client, 1 from the app; T >> 1 is the length, 127 meaning a
 *            two-byte big-endian length follows), then that many bytes (fewer when the input ends).
 * Each chunk is fed to the filter in an exactly sized copy. After every call this checks what http1_filter.h says:
 *   - the result is one of 0, RM_HTTP1_FILTER_CLOSE, -EPROTO, -EMSGSIZE, -ENOMEM; a nonzero result is sticky (the
 *     next calls, in both directions, return it again and append nothing) and client_finished() is 1 from then on;
 *     RM_HTTP1_FILTER_CLOSE comes with a 403 in to_client and -EMSGSIZE with a 431;
 *   - to_app gets only bytes of allowed requests: it is empty before the first allowed request, and does not grow
 *     between a denial and the next allowed request (the hook compares to_app's length at each call);
 *   - from_app passes the app's bytes on: to_client gains them all, in order (answers may be inserted);
 *   - pass-through, once on, stays on and copies bytes exactly; the hook is not called then, nor once the filter
 *     takes no more requests (client_finished, which never goes back to 0);
 *   - the hook gets a method and a path, http2 == 0, stream_id == 0, lower-case header names (every byte it is
 *     given is read, so AddressSanitizer checks the pointers);
 *   - buffered() is bounded: the head of a request is at most RM_HTTP1_MAX_HEAD_SIZE (431 beyond), held client
 *     bytes only exist after an allowed Upgrade or CONNECT and are never more than the client sent, and each queued
 *     answer (one per denied request, plus one final 400/431) is a short fixed message, here counted as at most
 *     ANSWER_MAX bytes. So buffered <= MAX_HEAD_SIZE + held + ANSWER_MAX * (denials + 1), where held is 0 until an
 *     upgrade was allowed and at most every byte the client sent after that.
 * Everything is freed at the end, so LeakSanitizer checks the filter's memory too. */
/* rm-fuzz-link: ringmesh_proxy_core */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http1_filter.h"

#define ANSWER_MAX 1024

enum { POLICY_ALLOW, POLICY_DENY, POLICY_BYTE, POLICY_ALTERNATE };

typedef struct {
    rm_http1_filter_t f;
    rm_bytebuf_t to_app, to_client;
    uint8_t policy, trigger;
    size_t calls, denials;
    int last_denied;     /* the last verdict was a denial (to_app must not grow until the next allow) */
    int any_allowed;     /* to_app stays empty until then */
    int upgrade_allowed; /* an allowed request may have started an upgrade or a tunnel */
    size_t to_app_at_denial;
    size_t client_bytes;    /* everything the client sent */
    size_t client_after_up; /* what the client sent since the first allowed upgrade */
    int in_call_finished;   /* client_finished() was 1 before the current call */
    size_t reported;        /* exchanges reported (done) */
    uint8_t seen[4096];     /* cookies reported, by value (cookie = the decide call's number) */
} state_t;

static int contains(const char *p, size_t n, uint8_t c)
{
    return n != 0 && memchr(p, c, n) != NULL;
}

static int eq_nocase(const char *p, size_t n, const char *s)
{
    size_t i;

    if (n != strlen(s))
        return 0;
    for (i = 0; i != n; ++i) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != s[i])
            return 0;
    }
    return 1;
}

/* Each exchange is reported once, for a request the hook saw. */
static void done(void *ctx, const rm_http_exchange_t *ex)
{
    state_t *s = ctx;
    RM_FUZZ_CHECK(ex->cookie >= 1 && ex->cookie <= s->calls);
    if (ex->cookie < sizeof(s->seen)) {
        RM_FUZZ_CHECK(!s->seen[ex->cookie]);
        s->seen[ex->cookie] = 1;
    }
    s->reported++;
}

static rm_http_verdict_t decide(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    state_t *s = ctx;
    RM_FUZZ_CHECK(out != NULL && out->cookie == 0 && out->num_set == 0);
    out->cookie = s->calls + 1; /* calls counts this one below */
    volatile unsigned sink = 0;
    rm_http_verdict_t v = RM_HTTP_ALLOW;
    int upgrade = 0;
    size_t i, j;

    RM_FUZZ_CHECK(!rm_http1_filter_passthrough(&s->f));
    RM_FUZZ_CHECK(!s->in_call_finished);
    RM_FUZZ_CHECK(req->method != NULL && req->method_len != 0);
    RM_FUZZ_CHECK(req->path != NULL || req->path_len == 0);
    RM_FUZZ_CHECK(req->http2 == 0 && req->stream_id == 0);
    RM_FUZZ_CHECK(req->num_headers <= RM_HTTP1_MAX_HEADERS);
    RM_FUZZ_CHECK(req->num_headers == 0 || req->headers != NULL);
    sink += rm_fuzz_touch(req->method, req->method_len) + rm_fuzz_touch(req->path, req->path_len);
    if (req->host != NULL)
        sink += rm_fuzz_touch(req->host, req->host_len);
    for (i = 0; i != req->num_headers; ++i) {
        const rm_http_header_t *h = req->headers + i;
        sink += rm_fuzz_touch(h->name, h->name_len) + rm_fuzz_touch(h->value, h->value_len);
        for (j = 0; j != h->name_len; ++j)
            RM_FUZZ_CHECK(!(h->name[j] >= 'A' && h->name[j] <= 'Z'));
        if (eq_nocase(h->name, h->name_len, "upgrade"))
            upgrade = 1;
    }
    if (eq_nocase(req->method, req->method_len, "connect"))
        upgrade = 1;
    (void)sink;

    switch (s->policy) {
    case POLICY_ALLOW:
        break;
    case POLICY_DENY:
        v = RM_HTTP_DENY;
        break;
    case POLICY_BYTE:
        if (req->path != NULL && contains(req->path, req->path_len, s->trigger))
            v = RM_HTTP_DENY;
        for (i = 0; i != req->num_headers && v == RM_HTTP_ALLOW; ++i)
            if (contains(req->headers[i].value, req->headers[i].value_len, s->trigger))
                v = RM_HTTP_DENY;
        break;
    default:
        v = s->calls % 2 == 0 ? RM_HTTP_DENY : RM_HTTP_ALLOW;
        break;
    }
    ++s->calls;

    /* to_app has not grown since the last denial, nor at all before the first allowed request */
    if (s->last_denied)
        RM_FUZZ_CHECK(s->to_app.len == s->to_app_at_denial);
    if (!s->any_allowed)
        RM_FUZZ_CHECK(s->to_app.len == 0);
    if (v == RM_HTTP_DENY) {
        ++s->denials;
        s->last_denied = 1;
        s->to_app_at_denial = s->to_app.len;
    } else {
        s->last_denied = 0;
        s->any_allowed = 1;
        if (upgrade)
            s->upgrade_allowed = 1;
    }
    return v;
}

static int valid_result(int r)
{
    return r == 0 || r == RM_HTTP1_FILTER_CLOSE || r == -EPROTO || r == -EMSGSIZE || r == -ENOMEM;
}

/* `needle` appears in hay[from, hay->len) in order, possibly with other bytes in between. */
static int is_subsequence(const uint8_t *needle, size_t n, const rm_bytebuf_t *hay, size_t from)
{
    size_t i = 0, j = from;
    size_t h = hay->len;

    while (i != n && j != h) {
        if (needle[i] == hay->base[j])
            ++i;
        ++j;
    }
    return i == n;
}

static int call(state_t *s, int from_app, const uint8_t *data, size_t len)
{
    uint8_t *copy = rm_fuzz_memdup(data, len);
    size_t app_before = s->to_app.len, client_before = s->to_client.len, calls_before = s->calls;
    int passthrough = rm_http1_filter_passthrough(&s->f), r;

    s->in_call_finished = rm_http1_filter_client_finished(&s->f);
    if (!from_app) {
        s->client_bytes += len;
        if (s->upgrade_allowed)
            s->client_after_up += len;
        r = rm_http1_filter_from_client(&s->f, copy, len, &s->to_app, &s->to_client);
    } else {
        r = rm_http1_filter_from_app(&s->f, copy, len, &s->to_app, &s->to_client);
    }
    RM_FUZZ_CHECK(valid_result(r));
    if (r == RM_HTTP1_FILTER_CLOSE)
        RM_FUZZ_CHECK(s->to_client.len != 0 && memmem(s->to_client.base, s->to_client.len, "HTTP/1.1 403", 12) != NULL);
    if (r == -EMSGSIZE)
        RM_FUZZ_CHECK(s->to_client.len != 0 && memmem(s->to_client.base, s->to_client.len, "HTTP/1.1 431", 12) != NULL);
    if (r != 0)
        RM_FUZZ_CHECK(rm_http1_filter_client_finished(&s->f));
    if (s->in_call_finished) {
        RM_FUZZ_CHECK(rm_http1_filter_client_finished(&s->f));
        RM_FUZZ_CHECK(s->calls == calls_before);
    }
    if (passthrough) {
        RM_FUZZ_CHECK(rm_http1_filter_passthrough(&s->f));
        RM_FUZZ_CHECK(s->calls == calls_before);
        if (r == 0 && !from_app)
            RM_FUZZ_CHECK(s->to_app.len == app_before + len && s->to_client.len == client_before &&
                          (len == 0 || memcmp(s->to_app.base + app_before, data, len) == 0));
        if (r == 0 && from_app)
            RM_FUZZ_CHECK(s->to_client.len == client_before + len && s->to_app.len == app_before &&
                          (len == 0 || memcmp(s->to_client.base + client_before, data, len) == 0));
    }
    if (r == 0 && from_app)
        RM_FUZZ_CHECK(s->to_client.len >= client_before + len &&
                      is_subsequence(data, len, &s->to_client, client_before));
    /* no bytes to the app between a denial and the next allowed request */
    if (s->last_denied)
        RM_FUZZ_CHECK(s->to_app.len == s->to_app_at_denial);
    if (!s->any_allowed)
        RM_FUZZ_CHECK(s->to_app.len == 0);
    RM_FUZZ_CHECK(rm_http1_filter_buffered(&s->f) <=
                  RM_HTTP1_MAX_HEAD_SIZE + s->client_after_up + ANSWER_MAX * (s->denials + 1));
    RM_FUZZ_CHECK(rm_http1_filter_buffered(&s->f) <= s->client_bytes + ANSWER_MAX * (s->denials + 1));
    free(copy);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t probe[] = "GET / HTTP/1.1\r\n\r\n";
    state_t *s;
    size_t off = 2;

    if (size < 2)
        return 0;
    s = calloc(1, sizeof(*s));
    RM_FUZZ_CHECK(s != NULL);
    s->policy = data[0] % 4;
    s->trigger = data[1];
    RM_FUZZ_CHECK(rm_http1_filter_init(&s->f, decide, done, s) == 0);

    int from_app, r;
    size_t at, len;
    while (rm_fuzz_next_chunk(data, size, &off, &from_app, &at, &len)) {
        r = call(s, from_app, data + at, len);
        if (r != 0) {
            /* sticky in both directions, nothing appended */
            size_t app_len = s->to_app.len, client_len = s->to_client.len;
            RM_FUZZ_CHECK(call(s, 0, probe, sizeof(probe) - 1) == r);
            RM_FUZZ_CHECK(call(s, 1, probe, sizeof(probe) - 1) == r);
            RM_FUZZ_CHECK(s->to_app.len == app_len && s->to_client.len == client_len);
        }
    }

    rm_http1_filter_end(&s->f, 1);
    RM_FUZZ_CHECK(s->reported == s->calls); /* every exchange the hook saw, once */
    rm_http1_filter_dispose(&s->f);
    rm_bytebuf_free(&s->to_app);
    rm_bytebuf_free(&s->to_client);
    free(s);
    return 0;
}
