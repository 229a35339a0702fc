/* The inbound HTTP/2 policy filter: a frame-level filter that decodes every client header block and encodes the
 * forwarded ones again, so that dropping a block never puts the app's HPACK decoder out of step. See h2_filter.h. */
#include "h2_filter.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#define FRAME_HEADER_SIZE        9
#define MIN_MAX_FRAME_SIZE       16384    /* SETTINGS_MAX_FRAME_SIZE's initial value and floor (RFC 9113 6.5.2) */
#define MAX_MAX_FRAME_SIZE       16777215 /* its ceiling */
#define HPACK_DEFAULT_TABLE_SIZE 4096     /* SETTINGS_HEADER_TABLE_SIZE's initial value */
#define INITIAL_WINDOW           65535
#define NO_VALUE                 UINT32_MAX
#define RESERVE_MIN_INCREMENT    16384 /* only increments this large feed the reserve (see h2_filter.h) */
#define DENIED_BODY_LEN          (sizeof(RM_HTTP_DENIED_BODY) - 1)
#define MESH_FIELD_PREFIX        "ringmesh-" /* the proxies' own fields (docs/traffic-management.md, "Requests") */

_Static_assert(DENIED_BODY_LEN == 19, "the 403 block says content-length: 19");

/* Where one decoded field of the current header block sits in f->strings. */
typedef struct st_h2_field_t {
    uint32_t name_off, name_len, value_off, value_len;
    uint8_t flags; /* NGHTTP2_NV_FLAG_NO_INDEX when the client sent it "never indexed" */
} h2_field_t;

enum {
    ANSWER_403,
    ANSWER_403_NO_BODY,
    ANSWER_GRPC,
    ANSWER_431,
    ANSWER_400,
    ANSWER_401,                  /* a refused JWT (RequestAuthentication) */
    ANSWER_GRPC_UNAUTHENTICATED, /* the same for gRPC: grpc-status 16 */
    ANSWER_COUNT
};

/* The answers' header blocks, the same for every connection: encoded once per process. */
static struct {
    uint8_t bytes[128];
    size_t len;
} answer_blocks[ANSWER_COUNT];
static int answer_blocks_result;
static pthread_once_t answer_blocks_once = PTHREAD_ONCE_INIT;

#define NV(n, v)                                                                                                       \
    {                                                                                                                  \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NO_INDEX                         \
    }

/* The answers share the server->client byte stream with the app's HPACK encoder, so they must leave the client's
 * decoder exactly as they found it: no insertion into the dynamic table and no dynamic table size update. nghttp2's
 * deflater can produce such blocks (checked against nghttp2_hd.c): created with the default table size (4096) it
 * does not start its first block with a size update (nghttp2_hd_deflate_init2 schedules one only below 4096), and
 * NGHTTP2_NV_FLAG_NO_INDEX makes every field either a static table reference or a "literal never indexed". Its own
 * dynamic table must still be empty afterwards, which is checked below. */
static void build_answer_blocks(void)
{
    static const nghttp2_nv nv403[] = {NV(":status", "403"), NV("content-type", "text/plain"),
                                       NV("content-length", "19")};
    static const nghttp2_nv nv403_no_body[] = {NV(":status", "403"), NV("content-type", "text/plain"),
                                               NV("content-length", "0")};
    static const nghttp2_nv nv_grpc[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                                         NV("grpc-status", "7"), NV("grpc-message", RM_HTTP_DENIED_BODY)};
    static const nghttp2_nv nv431[] = {NV(":status", "431"), NV("content-length", "0")};
    static const nghttp2_nv nv400[] = {NV(":status", "400"), NV("content-length", "0")};
    static const nghttp2_nv nv401[] = {NV(":status", "401"), NV("content-length", "0"),
                                       NV("www-authenticate", "Bearer error=\"invalid_token\"")};
    static const nghttp2_nv nv_grpc16[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                                           NV("grpc-status", "16"), NV("grpc-message", "Jwt verification fails")};
    static const struct {
        const nghttp2_nv *nva;
        size_t len;
    } lists[ANSWER_COUNT] = {
        [ANSWER_403] = {nv403, sizeof(nv403) / sizeof(nv403[0])},
        [ANSWER_403_NO_BODY] = {nv403_no_body, sizeof(nv403_no_body) / sizeof(nv403_no_body[0])},
        [ANSWER_GRPC] = {nv_grpc, sizeof(nv_grpc) / sizeof(nv_grpc[0])},
        [ANSWER_431] = {nv431, sizeof(nv431) / sizeof(nv431[0])},
        [ANSWER_400] = {nv400, sizeof(nv400) / sizeof(nv400[0])},
        [ANSWER_401] = {nv401, sizeof(nv401) / sizeof(nv401[0])},
        [ANSWER_GRPC_UNAUTHENTICATED] = {nv_grpc16, sizeof(nv_grpc16) / sizeof(nv_grpc16[0])},
    };
    nghttp2_hd_deflater *deflater = NULL;

    if (nghttp2_hd_deflate_new(&deflater, HPACK_DEFAULT_TABLE_SIZE) != 0) {
        answer_blocks_result = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < ANSWER_COUNT; i++) {
        ssize_t n = nghttp2_hd_deflate_hd(deflater, answer_blocks[i].bytes, sizeof(answer_blocks[i].bytes),
                                          lists[i].nva, lists[i].len);
        if (n < 0) {
            answer_blocks_result = n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EIO;
            goto Exit;
        }
        answer_blocks[i].len = (size_t)n;
    }
    if (nghttp2_hd_deflate_get_dynamic_table_size(deflater) != 0)
        answer_blocks_result = -EIO;
Exit:
    nghttp2_hd_deflate_del(deflater);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put_frame_header(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream)
{
    p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    return put_u32(p + 5, stream & 0x7fffffff);
}

static int protocol_error(rm_h2_filter_t *f, uint32_t code)
{
    f->goaway_code = code;
    return -EPROTO;
}

/* The filter's own frames may go to the client now: the app's stream is between two frames, outside a header
 * block sequence, and past the app's first SETTINGS. Whenever this becomes true, `pending` is emptied at once. */
static int can_insert(const rm_h2_filter_t *f)
{
    return f->a_preface_done && !f->a_in_block && f->a_hdr_len == 0;
}

static int send_to_client(rm_h2_filter_t *f, rm_bytebuf_t *to_client, const uint8_t *p, size_t n)
{
    if (can_insert(f))
        return rm_bytebuf_append(to_client, p, n);
    if (f->pending.len + n > RM_H2_FILTER_MAX_PENDING)
        return -ENOBUFS;
    return rm_bytebuf_append(&f->pending, p, n);
}

static int send_rst_stream(rm_h2_filter_t *f, rm_bytebuf_t *to_client, uint32_t stream, uint32_t code)
{
    uint8_t frame[FRAME_HEADER_SIZE + 4];
    put_u32(put_frame_header(frame, 4, NGHTTP2_RST_STREAM, 0, stream), code);
    return send_to_client(f, to_client, frame, sizeof(frame));
}

static int is_refused(const rm_h2_filter_t *f, uint32_t stream)
{
    if (stream % 2 == 0)
        return 0; /* stream 0, or pushed by the app */
    if (stream > f->last_allowed && stream <= f->last_stream)
        return 1;
    for (size_t i = 0; i < RM_H2_FILTER_DENIED_RING; i++)
        if (f->denied[i] == stream)
            return 1;
    return 0;
}

static void remember_refused(rm_h2_filter_t *f, uint32_t stream)
{
    for (size_t i = 0; i < RM_H2_FILTER_DENIED_RING; i++) {
        if (f->denied[i] == 0) {
            f->denied[i] = stream;
            return;
        }
    }
    f->denied[f->denied_next] = stream;
    f->denied_next = (f->denied_next + 1) % RM_H2_FILTER_DENIED_RING;
}

static void forget_refused(rm_h2_filter_t *f, uint32_t stream)
{
    for (size_t i = 0; i < RM_H2_FILTER_DENIED_RING; i++)
        if (f->denied[i] == stream)
            f->denied[i] = 0;
}

/* Answers a refused stream (ANSWER_*), then resets it if the client was still sending it. `hooked`: the hook was
 * called for the stream, whose exchange is then reported. */
static int answer_stream(rm_h2_filter_t *f, rm_bytebuf_t *to_client, uint32_t stream, int kind, int hooked)
{
    uint8_t buf[FRAME_HEADER_SIZE + sizeof(answer_blocks[0].bytes) + FRAME_HEADER_SIZE + DENIED_BODY_LEN], *p = buf;
    int body = 0, ret;

    if (kind == ANSWER_403) {
        if (f->reserve >= DENIED_BODY_LEN && f->client_initial_window >= DENIED_BODY_LEN) {
            f->reserve -= DENIED_BODY_LEN;
            body = 1;
        } else {
            kind = ANSWER_403_NO_BODY;
        }
    }
    p = put_frame_header(p, answer_blocks[kind].len, NGHTTP2_HEADERS,
                         NGHTTP2_FLAG_END_HEADERS | (body ? 0 : NGHTTP2_FLAG_END_STREAM), stream);
    memcpy(p, answer_blocks[kind].bytes, answer_blocks[kind].len);
    p += answer_blocks[kind].len;
    if (body) {
        p = put_frame_header(p, DENIED_BODY_LEN, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, stream);
        memcpy(p, RM_HTTP_DENIED_BODY, DENIED_BODY_LEN);
        p += DENIED_BODY_LEN;
    }
    remember_refused(f, stream);
    if (hooked)
        rm__h2_exchange_answered(f, f->decision.cookie,
                                 kind == ANSWER_GRPC || kind == ANSWER_GRPC_UNAUTHENTICATED ? 200
                                 : kind == ANSWER_400                                       ? 400
                                 : kind == ANSWER_401                                       ? 401
                                                                                            : 403,
                                 kind == ANSWER_GRPC                   ? 7
                                 : kind == ANSWER_GRPC_UNAUTHENTICATED ? 16
                                                                       : -1,
                                 body ? DENIED_BODY_LEN : 0);
    if ((ret = send_to_client(f, to_client, buf, (size_t)(p - buf))) != 0)
        return ret;
    /* RFC 9113 8.1: a complete response may come before the whole request; RST_STREAM(NO_ERROR) then asks the
     * client to stop sending it. */
    if (!f->block_end_stream)
        ret = send_rst_stream(f, to_client, stream, NGHTTP2_NO_ERROR);
    return ret;
}

static int store_field(rm_h2_filter_t *f, const nghttp2_nv *nv)
{
    h2_field_t field;
    int ret;

    f->block_size += nv->namelen + nv->valuelen + 32;
    if (f->block_too_large || f->block_size > RM_H2_FILTER_MAX_HEADER_LIST) {
        f->block_too_large = 1; /* still decoded to keep HPACK in step, no longer kept */
        return 0;
    }
    field.name_off = (uint32_t)f->strings.len;
    field.name_len = (uint32_t)nv->namelen;
    field.value_off = (uint32_t)(f->strings.len + nv->namelen);
    field.value_len = (uint32_t)nv->valuelen;
    field.flags = nv->flags & NGHTTP2_NV_FLAG_NO_INDEX;
    if ((ret = rm_bytebuf_append(&f->strings, nv->name, nv->namelen)) != 0 ||
        (ret = rm_bytebuf_append(&f->strings, nv->value, nv->valuelen)) != 0 ||
        (ret = rm_bytebuf_append(&f->fields, &field, sizeof(field))) != 0)
        return ret;
    return 0;
}

/* Decodes one fragment of the current header block; `last` when it ends the block. */
static int inflate_fragment(rm_h2_filter_t *f, const uint8_t *in, size_t len, int last)
{
    static const uint8_t empty[1];
    if (in == NULL)
        in = empty; /* an empty HEADERS frame before any payload: the buffer was never allocated */
    for (;;) {
        nghttp2_nv nv;
        int flags = 0, ret;
        ssize_t n = nghttp2_hd_inflate_hd2(f->inflater, &nv, &flags, in, len, last);
        if (n < 0)
            return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : protocol_error(f, NGHTTP2_COMPRESSION_ERROR);
        in += n;
        len -= (size_t)n;
        if ((flags & NGHTTP2_HD_INFLATE_EMIT) != 0 && (ret = store_field(f, &nv)) != 0)
            return ret;
        if ((flags & NGHTTP2_HD_INFLATE_FINAL) != 0) {
            nghttp2_hd_inflate_end_headers(f->inflater);
            return 0;
        }
        if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && len == 0)
            return 0;
    }
}

static int name_is(const char *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

static int content_type_is_grpc(const char *v, size_t len)
{
    static const char grpc[] = "application/grpc";
    size_t n = sizeof(grpc) - 1;
    return len >= n && strncasecmp(v, grpc, n) == 0 && (len == n || v[n] == '+' || v[n] == ';');
}

/* Fills `req` from the decoded block of a new stream. Returns 0, 1 when the request is malformed (RFC 9113 8.3
 * and the rules in h2_filter.h), or -ENOMEM. */
static int build_request(rm_h2_filter_t *f, rm_http_request_t *req)
{
    const h2_field_t *fields = (const h2_field_t *)f->fields.base;
    size_t num = f->fields.len / sizeof(h2_field_t), num_headers = 0, host_len = 0;
    /* all-empty fields leave the string buffer unallocated: point at an empty string, never offset NULL */
    const char *strings = f->strings.base != NULL ? (const char *)f->strings.base : "", *host = NULL, *scheme = NULL,
               *protocol = NULL;
    size_t scheme_len = 0, protocol_len = 0;
    int regular_seen = 0, content_type_seen = 0, ret;
    rm_http_header_t *headers;

    memset(req, 0, sizeof(*req));
    f->hook_headers.len = 0;
    if ((ret = rm_bytebuf_reserve(&f->hook_headers, num * sizeof(rm_http_header_t))) != 0)
        return ret;
    headers = (rm_http_header_t *)f->hook_headers.base;
    for (size_t i = 0; i < num; i++) {
        const char *name = strings + fields[i].name_off, *value = strings + fields[i].value_off;
        size_t name_len = fields[i].name_len, value_len = fields[i].value_len;
        if (!nghttp2_check_header_name((const uint8_t *)name, name_len) ||
            !nghttp2_check_header_value((const uint8_t *)value, value_len))
            return 1;
        if (name[0] == ':') {
            const char **slot;
            size_t *slot_len;
            if (regular_seen)
                return 1;
            if (name_is(name, name_len, ":method")) {
                slot = &req->method, slot_len = &req->method_len;
            } else if (name_is(name, name_len, ":path")) {
                slot = &req->path, slot_len = &req->path_len;
            } else if (name_is(name, name_len, ":authority")) {
                slot = &req->host, slot_len = &req->host_len;
            } else if (name_is(name, name_len, ":scheme")) {
                slot = &scheme, slot_len = &scheme_len;
            } else if (name_is(name, name_len, ":protocol")) {
                slot = &protocol, slot_len = &protocol_len;
            } else {
                return 1;
            }
            if (*slot != NULL)
                return 1;
            *slot = value;
            *slot_len = value_len;
            continue;
        }
        regular_seen = 1;
        if (name_is(name, name_len, "host")) {
            if (host != NULL)
                return 1;
            host = value, host_len = value_len;
        } else if (name_is(name, name_len, "content-type") && !content_type_seen) {
            content_type_seen = 1;
            req->grpc = content_type_is_grpc(value, value_len);
        }
        headers[num_headers++] = (rm_http_header_t){name, name_len, value, value_len};
    }
    if (req->method == NULL)
        return 1;
    if (req->path == NULL) {
        if (!name_is(req->method, req->method_len, "CONNECT"))
            return 1;
        req->path = "", req->path_len = 0;
    }
    if (host != NULL) {
        /* The policy must judge the authority the app will use. */
        if (req->host != NULL && (req->host_len != host_len || strncasecmp(req->host, host, host_len) != 0))
            return 1;
        req->host = host, req->host_len = host_len;
    }
    req->headers = headers;
    req->num_headers = num_headers;
    req->stream_id = f->block_stream;
    req->http2 = 1;
    return 0;
}

/* Whether a field of the block is one the hook set (names are lower-case on both sides). */
static int is_set_field(const rm_http_decision_t *d, const uint8_t *name, size_t len)
{
    for (size_t i = 0; d != NULL && i < d->num_set; i++)
        if (d->set[i].name_len == len && memcmp(d->set[i].name, name, len) == 0)
            return 1;
    return 0;
}

/* Encodes the current block again for the app and appends it as HEADERS (+ CONTINUATION), with the fields of `d`
 * (NULL: none) in place of those of the same names. Frames are cut at 16384 bytes, the smallest
 * SETTINGS_MAX_FRAME_SIZE there is, so the app's setting and the moment it applies it (once the client acknowledges)
 * never matter. */
static int forward_block(rm_h2_filter_t *f, const rm_http_decision_t *d, rm_bytebuf_t *to_app)
{
    const h2_field_t *fields = (const h2_field_t *)f->fields.base;
    size_t num_fields = f->fields.len / sizeof(h2_field_t), num = 0, bound, total, off = 0,
           num_set = d != NULL ? d->num_set : 0;
    nghttp2_nv *nva;
    ssize_t n;
    int ret;

    f->nva.len = 0;
    if ((ret = rm_bytebuf_reserve(&f->nva, (num_fields + num_set) * sizeof(nghttp2_nv))) != 0)
        return ret;
    nva = (nghttp2_nv *)f->nva.base;
    for (size_t i = 0; i < num_fields; i++) {
        nghttp2_nv *nv = nva + num;
        *nv = (nghttp2_nv){f->strings.base + fields[i].name_off, f->strings.base + fields[i].value_off,
                           fields[i].name_len, fields[i].value_len, fields[i].flags};
        if (f->rewrite_path && name_is((const char *)nv->name, nv->namelen, ":path")) {
            nv->value = f->target.base;
            nv->valuelen = f->target.len;
        }
        if (f->strip_mesh_fields && nv->namelen >= sizeof(MESH_FIELD_PREFIX) - 1 &&
            strncasecmp((const char *)nv->name, MESH_FIELD_PREFIX, sizeof(MESH_FIELD_PREFIX) - 1) == 0)
            continue;
        if (!is_set_field(d, nv->name, nv->namelen))
            num++;
    }
    for (size_t i = 0; i < num_set; i++)
        if (d->set[i].value != NULL) /* NULL: removed */
            nva[num++] = (nghttp2_nv){(uint8_t *)d->set[i].name, (uint8_t *)d->set[i].value, d->set[i].name_len,
                                      d->set[i].value_len, NGHTTP2_NV_FLAG_NONE};
    f->rewrite_path = 0;
    bound = nghttp2_hd_deflate_bound(f->deflater, nva, num);
    f->encoded.len = 0;
    if ((ret = rm_bytebuf_reserve(&f->encoded, bound)) != 0)
        return ret;
    if ((n = nghttp2_hd_deflate_hd(f->deflater, f->encoded.base, bound, nva, num)) < 0)
        return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EIO;
    total = (size_t)n;
    if ((ret = rm_bytebuf_reserve(to_app, total + FRAME_HEADER_SIZE * (total / MIN_MAX_FRAME_SIZE + 1))) != 0)
        return ret;
    do {
        size_t chunk = total - off < MIN_MAX_FRAME_SIZE ? total - off : MIN_MAX_FRAME_SIZE;
        uint8_t flags = off + chunk == total ? NGHTTP2_FLAG_END_HEADERS : 0;
        if (off == 0 && f->block_end_stream)
            flags |= NGHTTP2_FLAG_END_STREAM;
        put_frame_header(to_app->base + to_app->len, chunk, off == 0 ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION, flags,
                         f->block_stream);
        memcpy(to_app->base + to_app->len + FRAME_HEADER_SIZE, f->encoded.base + off, chunk);
        to_app->len += FRAME_HEADER_SIZE + chunk;
        off += chunk;
    } while (off < total);
    return 0;
}

static int finish_block(rm_h2_filter_t *f, rm_bytebuf_t *to_app, rm_bytebuf_t *to_client)
{
    uint32_t stream = f->block_stream;
    rm_http_request_t req;
    rm_http_target_t target;
    uint8_t rst[FRAME_HEADER_SIZE + 4];
    int ret;

    f->block_open = 0;
    if (f->block_drop) {
        if (f->block_end_stream)
            forget_refused(f, stream);
        return 0;
    }
    if (!f->block_new) { /* trailers of a forwarded stream */
        rm__h2_exchange_t *ex;
        if (!f->block_too_large)
            return forward_block(f, NULL, to_app);
        put_u32(put_frame_header(rst, 4, NGHTTP2_RST_STREAM, 0, stream), NGHTTP2_CANCEL);
        if ((ret = rm_bytebuf_append(to_app, rst, sizeof(rst))) != 0)
            return ret;
        if ((ex = rm__h2_exchange_find(f, stream)) != NULL)
            rm__h2_exchange_finish(f, ex, 0);
        remember_refused(f, stream);
        return send_rst_stream(f, to_client, stream, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    if (f->block_too_large)
        return answer_stream(f, to_client, stream, ANSWER_431, 0);
    if ((ret = build_request(f, &req)) < 0)
        return ret;
    if (ret == 1) {
        remember_refused(f, stream);
        return send_rst_stream(f, to_client, stream, NGHTTP2_PROTOCOL_ERROR);
    }
    /* the :path the hook judges is the one the app gets */
    f->target.len = 0;
    if ((ret = rm_bytebuf_reserve(&f->target, req.path_len + 1)) != 0)
        return ret;
    ret = rm_http_path_normalize((rm_path_normalization_t)f->path_mode, req.path, req.path_len, (char *)f->target.base,
                                 f->target.cap, &target);
    if (ret != 0) {
        req.path_error = target.error != NULL ? target.error : "the request target cannot be normalized";
        memset(&f->decision, 0, sizeof(f->decision));
        f->decide(f->decide_ctx, &req, &f->decision); /* for the log; the answer is 400 whatever it says */
        return answer_stream(f, to_client, stream, ANSWER_400, 1);
    }
    f->target.len = target.len;
    req.path = (const char *)f->target.base;
    req.path_len = target.len;
    memset(&f->decision, 0, sizeof(f->decision));
    rm_http_verdict_t verdict = f->decide(f->decide_ctx, &req, &f->decision);
    if (verdict == RM_HTTP_ALLOW) {
        rm_http_decision_t *d = &f->decision;
        size_t kept = 0;
        if (d->num_set > RM_HTTP_MAX_SET_HEADERS)
            d->num_set = RM_HTTP_MAX_SET_HEADERS;
        for (size_t i = 0; i < d->num_set; i++)
            if (rm_http_set_field_valid(d->set[i].name, d->set[i].name_len, d->set[i].value, d->set[i].value_len))
                d->set[kept++] = d->set[i];
        d->num_set = kept;
        f->last_allowed = stream;
        f->rewrite_path = (uint8_t)target.changed;
        rm__h2_exchange_start(f, stream, d->cookie);
        return forward_block(f, d, to_app);
    }
    if (verdict == RM_HTTP_UNAUTHENTICATED)
        return answer_stream(f, to_client, stream, req.grpc ? ANSWER_GRPC_UNAUTHENTICATED : ANSWER_401, 1);
    return answer_stream(f, to_client, stream, req.grpc ? ANSWER_GRPC : ANSWER_403, 1);
}

static int on_client_headers(rm_h2_filter_t *f, rm_bytebuf_t *to_app, rm_bytebuf_t *to_client)
{
    const uint8_t *p = f->c_frame.base;
    size_t len = f->c_len, pad = 0;
    int ret;

    if (f->c_stream == 0 || f->c_stream % 2 == 0)
        return protocol_error(f, NGHTTP2_PROTOCOL_ERROR);
    if ((f->c_flags & NGHTTP2_FLAG_PADDED) != 0) {
        if (len < 1)
            return protocol_error(f, NGHTTP2_FRAME_SIZE_ERROR);
        pad = p[0];
        p++, len--;
    }
    if ((f->c_flags & NGHTTP2_FLAG_PRIORITY) != 0) {
        if (len < 5)
            return protocol_error(f, NGHTTP2_FRAME_SIZE_ERROR);
        p += 5, len -= 5;
    }
    if (pad > len)
        return protocol_error(f, NGHTTP2_PROTOCOL_ERROR);
    len -= pad;

    /* The app's SETTINGS_HEADER_TABLE_SIZE, once in force, is the limit for the client's encoder; the inflater takes
     * it only between blocks. */
    if (f->inflate_table_size != f->inflate_table_target) {
        if (nghttp2_hd_inflate_change_table_size(f->inflater, f->inflate_table_target) != 0)
            return -EIO;
        f->inflate_table_size = f->inflate_table_target;
    }
    f->block_stream = f->c_stream;
    f->block_new = f->c_stream > f->last_stream;
    if (f->block_new)
        f->last_stream = f->c_stream;
    f->block_drop = !f->block_new && is_refused(f, f->c_stream);
    f->block_end_stream = (f->c_flags & NGHTTP2_FLAG_END_STREAM) != 0;
    f->block_too_large = 0;
    f->block_size = 0;
    f->fields.len = 0;
    f->strings.len = 0;
    f->block_open = 1;
    if ((ret = inflate_fragment(f, p, len, (f->c_flags & NGHTTP2_FLAG_END_HEADERS) != 0)) != 0)
        return ret;
    if ((f->c_flags & NGHTTP2_FLAG_END_HEADERS) != 0)
        return finish_block(f, to_app, to_client);
    return 0;
}

static int forward_client_frame(rm_h2_filter_t *f, rm_bytebuf_t *to_app)
{
    int ret;
    if ((ret = rm_bytebuf_append(to_app, f->c_hdr, FRAME_HEADER_SIZE)) != 0)
        return ret;
    return rm_bytebuf_append(to_app, f->c_frame.base, f->c_len);
}

/* The client acknowledged the oldest unacknowledged SETTINGS of the app: the app now holds the client to it. */
static void on_client_settings_ack(rm_h2_filter_t *f)
{
    uint32_t table_size;

    if (f->unacked_len == 0)
        return; /* the app will see the stray ACK */
    table_size = f->unacked[f->unacked_head];
    f->unacked_head = (f->unacked_head + 1) % RM_H2_FILTER_MAX_UNACKED_SETTINGS;
    f->unacked_len--;
    if (table_size != NO_VALUE) {
        /* The app's decoder now wants a size update at the start of the next block when its table shrank;
         * the deflater emits one after every change. */
        nghttp2_hd_deflate_change_table_size(f->deflater, table_size);
        f->inflate_table_target = table_size;
    }
}

static int on_client_window_update(rm_h2_filter_t *f, rm_bytebuf_t *to_app)
{
    uint32_t inc = get_u32(f->c_frame.base) & 0x7fffffff;
    uint8_t frame[FRAME_HEADER_SIZE + 4];

    if (f->c_stream != 0)
        return is_refused(f, f->c_stream) ? 0 : forward_client_frame(f, to_app);
    if (inc >= RESERVE_MIN_INCREMENT && f->reserve < RM_H2_FILTER_WINDOW_RESERVE) {
        uint32_t take = RM_H2_FILTER_WINDOW_RESERVE - f->reserve;
        f->reserve += take;
        inc -= take;
    }
    put_u32(put_frame_header(frame, 4, NGHTTP2_WINDOW_UPDATE, 0, 0), inc);
    return rm_bytebuf_append(to_app, frame, sizeof(frame));
}

/* A whole client frame is in (DATA frames have already been passed on or dropped). */
static int on_client_frame(rm_h2_filter_t *f, rm_bytebuf_t *to_app, rm_bytebuf_t *to_client)
{
    const uint8_t *p = f->c_frame.base;
    uint8_t frame[FRAME_HEADER_SIZE + 4];
    int ret;

    switch (f->c_type) {
    case NGHTTP2_DATA:
        if (!f->c_drop) {
            rm__h2_exchange_t *ex = rm__h2_exchange_find(f, f->c_stream);
            size_t pad = (f->c_flags & NGHTTP2_FLAG_PADDED) != 0 ? 1 + (size_t)f->c_pad : 0;
            if (ex != NULL && f->c_len > pad)
                ex->request_bytes += f->c_len - pad;
            return 0;
        }
        if ((f->c_flags & NGHTTP2_FLAG_END_STREAM) != 0)
            forget_refused(f, f->c_stream);
        if (f->c_len == 0)
            return 0;
        /* The app will never count these bytes, so it will never give them back. */
        put_u32(put_frame_header(frame, 4, NGHTTP2_WINDOW_UPDATE, 0, 0), f->c_len);
        return send_to_client(f, to_client, frame, sizeof(frame));
    case NGHTTP2_HEADERS:
        return on_client_headers(f, to_app, to_client);
    case NGHTTP2_CONTINUATION:
        if ((ret = inflate_fragment(f, p, f->c_len, (f->c_flags & NGHTTP2_FLAG_END_HEADERS) != 0)) != 0)
            return ret;
        if ((f->c_flags & NGHTTP2_FLAG_END_HEADERS) != 0)
            return finish_block(f, to_app, to_client);
        return 0;
    case NGHTTP2_PRIORITY:
        if (f->c_stream == 0)
            return protocol_error(f, NGHTTP2_PROTOCOL_ERROR);
        if (f->c_len != 5)
            return protocol_error(f, NGHTTP2_FRAME_SIZE_ERROR);
        return is_refused(f, f->c_stream) ? 0 : forward_client_frame(f, to_app);
    case NGHTTP2_RST_STREAM:
        if (f->c_stream == 0)
            return protocol_error(f, NGHTTP2_PROTOCOL_ERROR);
        if (f->c_len != 4)
            return protocol_error(f, NGHTTP2_FRAME_SIZE_ERROR);
        if (is_refused(f, f->c_stream)) {
            forget_refused(f, f->c_stream);
            return 0;
        }
        {
            rm__h2_exchange_t *ex = rm__h2_exchange_find(f, f->c_stream);
            if (ex != NULL)
                rm__h2_exchange_finish(f, ex, 0);
        }
        return forward_client_frame(f, to_app);
    case NGHTTP2_SETTINGS:
        if (f->c_stream != 0)
            return protocol_error(f, NGHTTP2_PROTOCOL_ERROR);
        if ((f->c_flags & NGHTTP2_FLAG_ACK) != 0) {
            if (f->c_len != 0)
                return protocol_error(f, NGHTTP2_FRAME_SIZE_ERROR);
            on_client_settings_ack(f);
        } else {
            if (f->c_len % 6 != 0)
                return protocol_error(f, NGHTTP2_FRAME_SIZE_ERROR);
            for (size_t i = 0; i < f->c_len; i += 6) {
                uint32_t id = (uint32_t)p[i] << 8 | p[i + 1], value = get_u32(p + i + 2);
                if (id == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE && value < f->client_initial_window)
                    f->client_initial_window = value;
                else if (id == NGHTTP2_SETTINGS_HEADER_TABLE_SIZE)
                    rm__h2_exchange_client_table_size(f, value);
            }
        }
        return forward_client_frame(f, to_app);
    case NGHTTP2_PUSH_PROMISE:
        return protocol_error(f, NGHTTP2_PROTOCOL_ERROR);
    case NGHTTP2_WINDOW_UPDATE:
        if (f->c_len != 4)
            return protocol_error(f, NGHTTP2_FRAME_SIZE_ERROR);
        return on_client_window_update(f, to_app);
    default: /* PING, GOAWAY and types this filter does not know */
        return forward_client_frame(f, to_app);
    }
}

static int on_client_frame_header(rm_h2_filter_t *f, rm_bytebuf_t *to_app)
{
    const uint8_t *h = f->c_hdr;

    f->c_len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    f->c_type = h[3];
    f->c_flags = h[4];
    f->c_stream = get_u32(h + 5) & 0x7fffffff;
    f->c_off = 0;
    f->c_frame.len = 0;
    if (f->c_len > f->max_frame_size)
        return protocol_error(f, NGHTTP2_FRAME_SIZE_ERROR);
    /* A header block is HEADERS and its CONTINUATION frames with nothing in between (RFC 9113 6.10). */
    if (f->block_open ? f->c_type != NGHTTP2_CONTINUATION || f->c_stream != f->block_stream
                      : f->c_type == NGHTTP2_CONTINUATION)
        return protocol_error(f, NGHTTP2_PROTOCOL_ERROR);
    if (f->c_type == NGHTTP2_DATA) {
        if (f->c_stream == 0)
            return protocol_error(f, NGHTTP2_PROTOCOL_ERROR);
        f->c_drop = (uint8_t)is_refused(f, f->c_stream);
        /* Data of allowed streams streams through, frame header first. */
        return f->c_drop ? 0 : rm_bytebuf_append(to_app, h, FRAME_HEADER_SIZE);
    }
    return rm_bytebuf_reserve(&f->c_frame, f->c_len);
}

int rm_h2_filter_sniff(const uint8_t *in, size_t len)
{
    size_t n = len < NGHTTP2_CLIENT_MAGIC_LEN ? len : NGHTTP2_CLIENT_MAGIC_LEN;
    if (memcmp(in, NGHTTP2_CLIENT_MAGIC, n) != 0)
        return 0;
    return n == NGHTTP2_CLIENT_MAGIC_LEN ? 1 : -EAGAIN;
}

void rm_h2_filter_strip_mesh_fields(rm_h2_filter_t *f)
{
    f->strip_mesh_fields = 1;
}

void rm_h2_filter_set_path_normalization(rm_h2_filter_t *f, rm_path_normalization_t mode)
{
    f->path_mode = (uint8_t)mode;
}

int rm_h2_filter_init(rm_h2_filter_t *f, rm_http_decide_cb decide, rm_http_done_cb done, void *ctx)
{
    int ret;

    memset(f, 0, sizeof(*f));
    if (decide == NULL)
        return -EINVAL;
    pthread_once(&answer_blocks_once, build_answer_blocks);
    if (answer_blocks_result != 0)
        return answer_blocks_result;
    if (nghttp2_hd_inflate_new(&f->inflater) != 0)
        return -ENOMEM;
    /* At the default size, so the first block starts without a size update; the app's decoder starts there too. */
    if (nghttp2_hd_deflate_new(&f->deflater, HPACK_DEFAULT_TABLE_SIZE) != 0) {
        ret = -ENOMEM;
        goto Exit;
    }
    if ((ret = rm__h2_exchange_init(f)) != 0)
        goto Exit;
    f->decide = decide;
    f->done = done;
    f->decide_ctx = ctx;
    f->max_frame_size = MIN_MAX_FRAME_SIZE;
    f->inflate_table_size = f->inflate_table_target = HPACK_DEFAULT_TABLE_SIZE;
    f->client_initial_window = INITIAL_WINDOW;
    ret = 0;
Exit:
    if (ret != 0)
        rm_h2_filter_dispose(f);
    return ret;
}

void rm_h2_filter_dispose(rm_h2_filter_t *f)
{
    if (f->inflater != NULL)
        nghttp2_hd_inflate_del(f->inflater);
    if (f->deflater != NULL)
        nghttp2_hd_deflate_del(f->deflater);
    rm_bytebuf_free(&f->c_frame);
    rm_bytebuf_free(&f->fields);
    rm_bytebuf_free(&f->strings);
    rm_bytebuf_free(&f->nva);
    rm_bytebuf_free(&f->hook_headers);
    rm_bytebuf_free(&f->encoded);
    rm_bytebuf_free(&f->target);
    rm_bytebuf_free(&f->pending);
    rm__h2_exchange_dispose(f);
    memset(f, 0, sizeof(*f));
}

int rm_h2_filter_from_client(rm_h2_filter_t *f, const uint8_t *in, size_t len, rm_bytebuf_t *to_app,
                             rm_bytebuf_t *to_client)
{
    int ret = 0;

    if (f->result != 0)
        return f->result;
    while (len > 0) {
        size_t n;
        if (f->preface_off < NGHTTP2_CLIENT_MAGIC_LEN) {
            n = NGHTTP2_CLIENT_MAGIC_LEN - f->preface_off;
            if (n > len)
                n = len;
            if (memcmp(in, NGHTTP2_CLIENT_MAGIC + f->preface_off, n) != 0) {
                ret = -EPROTO; /* not HTTP/2: no GOAWAY */
                goto Exit;
            }
            if ((ret = rm_bytebuf_append(to_app, in, n)) != 0)
                goto Exit;
            f->preface_off += n;
        } else if (f->c_hdr_len < FRAME_HEADER_SIZE) {
            n = FRAME_HEADER_SIZE - f->c_hdr_len;
            if (n > len)
                n = len;
            memcpy(f->c_hdr + f->c_hdr_len, in, n);
            f->c_hdr_len += n;
            if (f->c_hdr_len == FRAME_HEADER_SIZE && (ret = on_client_frame_header(f, to_app)) != 0)
                goto Exit;
        } else {
            n = f->c_len - f->c_off;
            if (n > len)
                n = len;
            if (f->c_type == NGHTTP2_DATA && f->c_off == 0 && n != 0)
                f->c_pad = in[0]; /* the pad length, when the frame is PADDED */
            if (f->c_type != NGHTTP2_DATA)
                ret = rm_bytebuf_append(&f->c_frame, in, n);
            else if (!f->c_drop)
                ret = rm_bytebuf_append(to_app, in, n);
            if (ret != 0)
                goto Exit;
            f->c_off += (uint32_t)n;
        }
        in += n;
        len -= n;
        if (f->c_hdr_len == FRAME_HEADER_SIZE && f->c_off == f->c_len) {
            f->c_hdr_len = 0;
            if ((ret = on_client_frame(f, to_app, to_client)) != 0)
                goto Exit;
        }
    }

Exit:
    if (ret != 0) {
        f->result = ret;
        if (ret == -EPROTO && f->goaway_code != 0 && can_insert(f)) {
            uint8_t goaway[FRAME_HEADER_SIZE + 8];
            put_u32(put_u32(put_frame_header(goaway, 8, NGHTTP2_GOAWAY, 0, 0), f->last_allowed), f->goaway_code);
            rm_bytebuf_append(to_client, goaway, sizeof(goaway)); /* best effort: the connection closes anyway */
        }
    }
    return ret;
}

static void on_app_setting(rm_h2_filter_t *f, const uint8_t *s)
{
    uint32_t id = (uint32_t)s[0] << 8 | s[1], value = get_u32(s + 2);

    if (id == NGHTTP2_SETTINGS_HEADER_TABLE_SIZE) {
        f->a_table_size = value;
    } else if (id == NGHTTP2_SETTINGS_MAX_FRAME_SIZE && value > f->max_frame_size && value <= MAX_MAX_FRAME_SIZE) {
        /* The client may use a larger size as soon as it has read this. */
        f->max_frame_size = value;
    }
}

static int on_app_frame(rm_h2_filter_t *f)
{
    switch (f->a_type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_PUSH_PROMISE:
        f->a_in_block = (f->a_flags & NGHTTP2_FLAG_END_HEADERS) == 0;
        break;
    case NGHTTP2_CONTINUATION:
        if ((f->a_flags & NGHTTP2_FLAG_END_HEADERS) != 0)
            f->a_in_block = 0;
        break;
    case NGHTTP2_SETTINGS:
        if ((f->a_flags & NGHTTP2_FLAG_ACK) != 0)
            break;
        if (f->unacked_len == RM_H2_FILTER_MAX_UNACKED_SETTINGS)
            return -EPROTO;
        f->unacked[(f->unacked_head + f->unacked_len++) % RM_H2_FILTER_MAX_UNACKED_SETTINGS] = f->a_table_size;
        /* A larger table may be used by the client's encoder as soon as it has read this; a smaller one binds it
         * only once it acknowledges (on_client_settings_ack). */
        if (f->a_table_size != NO_VALUE && f->a_table_size > f->inflate_table_target)
            f->inflate_table_target = f->a_table_size;
        f->a_preface_done = 1;
        break;
    default:
        break;
    }
    return 0;
}

int rm_h2_filter_from_app(rm_h2_filter_t *f, const uint8_t *in, size_t len, rm_bytebuf_t *to_client)
{
    int ret = 0;

    if (f->result != 0)
        return f->result;
    while (len > 0) {
        size_t n;
        if (f->a_hdr_len < FRAME_HEADER_SIZE) {
            n = FRAME_HEADER_SIZE - f->a_hdr_len;
            if (n > len)
                n = len;
            memcpy(f->a_hdr + f->a_hdr_len, in, n);
            f->a_hdr_len += n;
            if (f->a_hdr_len == FRAME_HEADER_SIZE) {
                const uint8_t *h = f->a_hdr;
                f->a_left = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
                f->a_type = h[3];
                f->a_flags = h[4];
                f->a_setting_len = 0;
                f->a_table_size = NO_VALUE;
                rm__h2_exchange_app_frame_begin(f);
                /* The server preface is a SETTINGS frame (RFC 9113 3.4). */
                if (!f->a_preface_done &&
                    (f->a_type != NGHTTP2_SETTINGS || (f->a_flags & NGHTTP2_FLAG_ACK) != 0 || f->a_left % 6 != 0)) {
                    ret = -EPROTO;
                    goto Exit;
                }
            }
        } else {
            n = f->a_left;
            if (n > len)
                n = len;
            if ((ret = rm__h2_exchange_app_payload(f, in, n, f->a_len - f->a_left)) != 0)
                goto Exit;
            if (f->a_type == NGHTTP2_SETTINGS && (f->a_flags & NGHTTP2_FLAG_ACK) == 0) {
                for (size_t i = 0; i < n; i++) {
                    f->a_setting[f->a_setting_len++] = in[i];
                    if (f->a_setting_len == sizeof(f->a_setting)) {
                        on_app_setting(f, f->a_setting);
                        f->a_setting_len = 0;
                    }
                }
            }
            f->a_left -= (uint32_t)n;
        }
        if ((ret = rm_bytebuf_append(to_client, in, n)) != 0)
            goto Exit;
        in += n;
        len -= n;
        if (f->a_hdr_len == FRAME_HEADER_SIZE && f->a_left == 0) {
            if ((ret = on_app_frame(f)) != 0)
                goto Exit;
            rm__h2_exchange_app_frame_end(f);
            f->a_hdr_len = 0;
            if (can_insert(f) && f->pending.len != 0) {
                if ((ret = rm_bytebuf_append(to_client, f->pending.base, f->pending.len)) != 0)
                    goto Exit;
                f->pending.len = 0;
            }
        }
    }

Exit:
    if (ret != 0)
        f->result = ret;
    return ret;
}

size_t rm_h2_filter_buffered(const rm_h2_filter_t *f)
{
    return (f->c_hdr_len < FRAME_HEADER_SIZE ? f->c_hdr_len : f->c_frame.len) + f->pending.len;
}
