/* rm_h2_filter_from_client() / rm_h2_filter_from_app(): the inbound HTTP/2 policy filter.
 *
 * The input is a script:
 *   byte 0   the policy: 0 allow all, 1 deny all, 2 deny when :path or a header value contains byte 1,
 *            3 alternate (deny, allow, deny, ...);
 *   byte 1   the byte policy 2 looks for;
 *   byte 2   flags: 1 the client first sends the preface and an empty SETTINGS frame (random bytes almost never
 *            pass the preface); 2 the app first sends an empty SETTINGS frame (its preface, after which the filter's
 *            own frames can reach the client); 4 the client then sends a connection WINDOW_UPDATE of 65536, which
 *            fills the filter's reserve for 403 bodies;
 *   then     chunks: a tag byte T (bit 0: 0 from the client, 1 from the app; T >> 1 is the length, 127 meaning a
 *            two-byte big-endian length follows), then that many bytes (fewer when the input ends).
 * Each chunk is fed to the filter in an exactly sized copy. After every call this checks what h2_filter.h says:
 *   - the result is 0, -EPROTO, -ENOBUFS or -ENOMEM; a negative result is sticky (later calls in both directions
 *     return it again and append nothing);
 *   - the filter's own frames never reach the client before the app's first SETTINGS frame, so from_client does
 *     not touch to_client as long as the app has sent nothing;
 *   - from_app passes the app's bytes on: to_client gains them all, in order (the filter's frames may be inserted);
 *   - to_app begins with the client preface and is a sequence of frames; every forwarded HEADERS frame has neither
 *     PADDED nor PRIORITY, header frames are at most 16384 bytes, and no HEADERS or CONTINUATION frame is for a
 *     stream above the highest one the hook allowed (a stream that was never allowed is never shown to the app:
 *     under "deny all", the app gets no header block at all);
 *   - the hook is called once per new stream, with rising stream IDs, http2 == 1, a method, and lower-case regular
 *     header names without pseudo-headers (every byte it is given is read, so AddressSanitizer checks them);
 *   - buffered() is bounded: a partial client frame is at most 9 + the largest frame size (2^24 - 1) and no more
 *     than the client sent, and the frames waiting for an app frame boundary are at most RM_H2_FILTER_MAX_PENDING
 *     (-ENOBUFS beyond).
 * Everything is freed at the end, so LeakSanitizer checks the filter's memory (and nghttp2's HPACK tables) too. */
/* rm-fuzz-link: ringmesh_proxy_core */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "h2_filter.h"

#define FRAME_HEADER           9
#define MAX_FRAME_SIZE_LIMIT   16777215u /* 2^24 - 1, RFC 9113 6.5.2 */
#define FORWARDED_FRAGMENT_MAX 16384u

enum { POLICY_ALLOW, POLICY_DENY, POLICY_BYTE, POLICY_ALTERNATE };

typedef struct {
    rm_h2_filter_t f;
    rm_bytebuf_t to_app, to_client;
    uint8_t policy, trigger;
    size_t calls;
    uint32_t last_decided, max_allowed;
    size_t client_bytes, app_bytes;
    size_t to_app_parsed; /* to_app bytes checked as whole frames (the preface first) */
    size_t reported;      /* exchanges reported (done) */
    uint8_t seen[4096];   /* cookies reported, by value (cookie = the decide call's number) */
} state_t;

static int contains(const char *p, size_t n, uint8_t c)
{
    return n != 0 && p != NULL && memchr(p, c, n) != NULL;
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
    size_t i, j;

    RM_FUZZ_CHECK(req->http2 == 1);
    RM_FUZZ_CHECK(req->stream_id != 0 && req->stream_id > s->last_decided && req->stream_id <= 0x7fffffff);
    s->last_decided = req->stream_id;
    RM_FUZZ_CHECK(req->method != NULL && req->method_len != 0);
    RM_FUZZ_CHECK(req->path != NULL || req->path_len == 0);
    RM_FUZZ_CHECK(req->num_headers == 0 || req->headers != NULL);
    sink += rm_fuzz_touch(req->method, req->method_len) + rm_fuzz_touch(req->path, req->path_len);
    if (req->host != NULL)
        sink += rm_fuzz_touch(req->host, req->host_len);
    for (i = 0; i != req->num_headers; ++i) {
        const rm_http_header_t *h = req->headers + i;
        sink += rm_fuzz_touch(h->name, h->name_len) + rm_fuzz_touch(h->value, h->value_len);
        RM_FUZZ_CHECK(h->name_len == 0 || h->name[0] != ':');
        for (j = 0; j != h->name_len; ++j)
            RM_FUZZ_CHECK(!(h->name[j] >= 'A' && h->name[j] <= 'Z'));
    }
    (void)sink;

    switch (s->policy) {
    case POLICY_ALLOW:
        break;
    case POLICY_DENY:
        v = RM_HTTP_DENY;
        break;
    case POLICY_BYTE:
        if (contains(req->path, req->path_len, s->trigger))
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
    if (v == RM_HTTP_ALLOW && req->stream_id > s->max_allowed)
        s->max_allowed = req->stream_id;
    return v;
}

static int valid_result(int r)
{
    return r == 0 || r == -EPROTO || r == -ENOBUFS || r == -ENOMEM;
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

/* Checks the preface and every complete frame of to_app not checked yet. */
static void check_to_app(state_t *s)
{
    const uint8_t *p = s->to_app.base;
    size_t n = s->to_app.len;

    if (s->to_app_parsed < NGHTTP2_CLIENT_MAGIC_LEN) {
        size_t m = n < NGHTTP2_CLIENT_MAGIC_LEN ? n : NGHTTP2_CLIENT_MAGIC_LEN;
        RM_FUZZ_CHECK(m == 0 || memcmp(p, NGHTTP2_CLIENT_MAGIC, m) == 0);
        if (m < NGHTTP2_CLIENT_MAGIC_LEN)
            return;
        s->to_app_parsed = NGHTTP2_CLIENT_MAGIC_LEN;
    }
    while (n - s->to_app_parsed >= FRAME_HEADER) {
        const uint8_t *h = p + s->to_app_parsed;
        uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
        uint32_t stream = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) & 0x7fffffff;
        uint8_t type = h[3], flags = h[4];

        if (type == NGHTTP2_HEADERS || type == NGHTTP2_CONTINUATION) {
            RM_FUZZ_CHECK(len <= FORWARDED_FRAGMENT_MAX);
            RM_FUZZ_CHECK(stream != 0 && stream <= s->max_allowed);
            if (type == NGHTTP2_HEADERS)
                RM_FUZZ_CHECK((flags & (NGHTTP2_FLAG_PADDED | NGHTTP2_FLAG_PRIORITY)) == 0);
        }
        if (n - s->to_app_parsed - FRAME_HEADER < len)
            return; /* a DATA frame still streaming, or cut by an error */
        s->to_app_parsed += FRAME_HEADER + len;
    }
}

static int call(state_t *s, int from_app, const uint8_t *data, size_t len)
{
    uint8_t *copy = rm_fuzz_memdup(data, len);
    size_t app_before = s->to_app.len, client_before = s->to_client.len, bound;
    int r;

    if (!from_app) {
        s->client_bytes += len;
        r = rm_h2_filter_from_client(&s->f, copy, len, &s->to_app, &s->to_client);
        if (s->app_bytes == 0)
            RM_FUZZ_CHECK(s->to_client.len == client_before);
    } else {
        s->app_bytes += len;
        r = rm_h2_filter_from_app(&s->f, copy, len, &s->to_client);
        RM_FUZZ_CHECK(s->to_app.len == app_before);
        if (r == 0)
            RM_FUZZ_CHECK(s->to_client.len >= client_before + len &&
                          is_subsequence(data, len, &s->to_client, client_before));
    }
    RM_FUZZ_CHECK(valid_result(r));
    check_to_app(s);
    bound =
        s->client_bytes < FRAME_HEADER + MAX_FRAME_SIZE_LIMIT ? s->client_bytes : FRAME_HEADER + MAX_FRAME_SIZE_LIMIT;
    RM_FUZZ_CHECK(rm_h2_filter_buffered(&s->f) <= bound + RM_H2_FILTER_MAX_PENDING);
    free(copy);
    return r;
}

static size_t put_frame(uint8_t *out, uint32_t len, uint8_t type, uint8_t flags, uint32_t stream)
{
    out[0] = (uint8_t)(len >> 16);
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    out[3] = type;
    out[4] = flags;
    out[5] = (uint8_t)(stream >> 24);
    out[6] = (uint8_t)(stream >> 16);
    out[7] = (uint8_t)(stream >> 8);
    out[8] = (uint8_t)stream;
    return FRAME_HEADER;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t start[NGHTTP2_CLIENT_MAGIC_LEN + FRAME_HEADER], frame[FRAME_HEADER + 4];
    state_t *s;
    size_t off = 3;
    int r;

    if (size < 3)
        return 0;
    s = calloc(1, sizeof(*s));
    RM_FUZZ_CHECK(s != NULL);
    s->policy = data[0] % 4;
    s->trigger = data[1];
    RM_FUZZ_CHECK(rm_h2_filter_init(&s->f, decide, done, s) == 0);

    if ((data[2] & 1) != 0) {
        memcpy(start, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
        put_frame(start + NGHTTP2_CLIENT_MAGIC_LEN, 0, NGHTTP2_SETTINGS, 0, 0);
        RM_FUZZ_CHECK(call(s, 0, start, sizeof(start)) == 0);
    }
    if ((data[2] & 2) != 0) {
        put_frame(frame, 0, NGHTTP2_SETTINGS, 0, 0);
        RM_FUZZ_CHECK(call(s, 1, frame, FRAME_HEADER) == 0);
    }
    if ((data[2] & 5) == 5) {
        put_frame(frame, 4, NGHTTP2_WINDOW_UPDATE, 0, 0);
        frame[FRAME_HEADER] = 0;
        frame[FRAME_HEADER + 1] = 1; /* 65536 */
        frame[FRAME_HEADER + 2] = 0;
        frame[FRAME_HEADER + 3] = 0;
        RM_FUZZ_CHECK(call(s, 0, frame, sizeof(frame)) == 0);
    }

    int from_app;
    size_t at, len;
    while (rm_fuzz_next_chunk(data, size, &off, &from_app, &at, &len)) {
        r = call(s, from_app, data + at, len);
        if (r != 0) {
            /* sticky in both directions, nothing appended */
            size_t app_len = s->to_app.len, client_len = s->to_client.len;
            put_frame(frame, 0, NGHTTP2_SETTINGS, 0, 0);
            RM_FUZZ_CHECK(call(s, 0, frame, FRAME_HEADER) == r);
            RM_FUZZ_CHECK(call(s, 1, frame, FRAME_HEADER) == r);
            RM_FUZZ_CHECK(s->to_app.len == app_len && s->to_client.len == client_len);
        }
    }

    rm_h2_filter_end(&s->f);
    RM_FUZZ_CHECK(s->reported == s->calls); /* every exchange the hook saw, once */
    rm_h2_filter_dispose(&s->f);
    rm_bytebuf_free(&s->to_app);
    rm_bytebuf_free(&s->to_client);
    free(s);
    return 0;
}
