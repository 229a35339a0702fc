/* Trace context parsing and formatting (ringmesh/trace_context.h): W3C Trace Context level 1 and B3. */
#include "ringmesh/trace_context.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

/* Each byte's hex value: 0..15 for 0-9 and a-f, 16..31 for A-F (the value + 16), 0xff for anything else: an
 * incoming traceparent is decoded on every request that carries one, one lookup per character. */
static const uint8_t hex_table[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,    1,    2,    3,    4,    5,    6,    7,    8,
    9,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 26,   27,   28,   29,   30,   31,   0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 10,   11,   12,   13,   14,   15,   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

static inline unsigned hex_entry(char c)
{
    return hex_table[(unsigned char)c];
}

/* Decodes 2n hex characters into out[0, n). Returns 0, or -EINVAL on a character that is not hex (or, with
 * lower_only, an upper-case one). */
static int hex_decode(const char *s, size_t n, uint8_t *out, int lower_only)
{
    unsigned limit = lower_only ? 16 : 32;
    for (size_t i = 0; i < n; i++) {
        unsigned hi = hex_entry(s[2 * i]), lo = hex_entry(s[2 * i + 1]);
        if (hi >= limit || lo >= limit)
            return -EINVAL;
        out[i] = (uint8_t)((hi & 15) << 4 | (lo & 15));
    }
    return 0;
}

static int all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

/* Every byte's two hex digits, so that a traceparent (formatted for every request tracing sees) is 24 copies. */
#define HEX_ROW(h) h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h "c" h "d" h "e" h "f"
static const char hex_pairs[513] =
    HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4") HEX_ROW("5") HEX_ROW("6") HEX_ROW("7") HEX_ROW("8")
        HEX_ROW("9") HEX_ROW("a") HEX_ROW("b") HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");

void rm_trace_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, hex_pairs + 2 * b[i], 2);
    out[2 * n] = '\0';
}

int rm_traceparent_parse(const char *s, size_t len, rm_span_context_t *out)
{
    uint8_t version, flags;
    rm_span_context_t c;

    /* version "-" trace-id "-" parent-id "-" trace-flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 */
    if (len < RM_TRACEPARENT_LEN || hex_decode(s, 1, &version, 1) != 0 || version == 0xff)
        return -EINVAL;
    /* version 00 is exactly 55 characters; a later version may add fields after a '-' (level 1, section 3.2.4) */
    if (version == 0 ? len != RM_TRACEPARENT_LEN : len > RM_TRACEPARENT_LEN && s[RM_TRACEPARENT_LEN] != '-')
        return -EINVAL;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -EINVAL;
    if (hex_decode(s + 3, 16, c.trace_id, 1) != 0 || hex_decode(s + 36, 8, c.span_id, 1) != 0 ||
        hex_decode(s + 53, 1, &flags, 1) != 0)
        return -EINVAL;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8))
        return -EINVAL;
    c.flags = flags & RM_TRACE_FLAG_SAMPLED;
    *out = c;
    return 0;
}

void rm_traceparent_format(const rm_span_context_t *ctx, char *out)
{
    memcpy(out, "00-", 3);
    rm_trace_hex(ctx->trace_id, 16, out + 3);
    out[35] = '-';
    rm_trace_hex(ctx->span_id, 8, out + 36);
    out[52] = '-';
    out[53] = '0';
    out[54] = (ctx->flags & RM_TRACE_FLAG_SAMPLED) ? '1' : '0';
    out[55] = '\0';
}

/* tracestate grammar (W3C level 1, section 3.3.1):
 *   key   = simple-key / multi-tenant-key
 *   simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
 *   multi-tenant-key = tenant-id "@" system-id
 *   tenant-id = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
 *   system-id = lcalpha 0*13( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
 *   value = 0*255(chr) nblk-chr;  chr = %x20 / nblk-chr;  nblk-chr = %x21-2B / %x2D-3C / %x3E-7E */
static int key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/';
}

static int key_valid(const char *k, size_t n)
{
    const char *at = memchr(k, '@', n);
    if (at == NULL) {
        if (n < 1 || n > 256 || !(k[0] >= 'a' && k[0] <= 'z'))
            return 0;
        for (size_t i = 1; i < n; i++)
            if (!key_char(k[i]))
                return 0;
        return 1;
    }
    size_t tn = (size_t)(at - k), sn = n - tn - 1;
    if (tn < 1 || tn > 241 || sn < 1 || sn > 14)
        return 0;
    if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9')) || !(at[1] >= 'a' && at[1] <= 'z'))
        return 0;
    for (size_t i = 1; i < tn; i++)
        if (!key_char(k[i]))
            return 0;
    for (size_t i = 1; i < sn; i++)
        if (!key_char(at[1 + i]))
            return 0;
    return 1;
}

static int value_valid(const char *v, size_t n)
{
    if (n < 1 || n > 256)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
            return 0;
    }
    return v[n - 1] != ' ';
}

/* 1 when the list out[0, len) already has a member with key k[0, kn). */
static int key_present(const char *out, size_t len, const char *k, size_t kn)
{
    size_t i = 0;
    while (i < len) {
        const char *m = out + i, *comma = memchr(m, ',', len - i);
        size_t mn = comma != NULL ? (size_t)(comma - m) : len - i;
        if (mn > kn && m[kn] == '=' && memcmp(m, k, kn) == 0)
            return 1;
        i += mn + 1;
    }
    return 0;
}

/* Removes the first member longer than 128 bytes from the list out[0, *len). Returns 1 when one was removed. */
static int remove_long_member(char *out, size_t *len)
{
    size_t i = 0;
    while (i < *len) {
        const char *m = out + i, *comma = memchr(m, ',', *len - i);
        size_t mn = comma != NULL ? (size_t)(comma - m) : *len - i;
        if (mn > 128) {
            /* remove the member and one of the commas beside it */
            size_t from = i > 0 ? i - 1 : i, to = comma != NULL && i == 0 ? i + mn + 1 : i + mn;
            memmove(out + from, out + to, *len - to);
            *len -= to - from;
            return 1;
        }
        i += mn + 1;
    }
    return 0;
}

int rm_tracestate_append(char *out, size_t *out_len, size_t *members, const char *s, size_t len)
{
    size_t i = 0;
    while (i <= len) {
        const char *comma = i < len ? memchr(s + i, ',', len - i) : NULL;
        size_t end = comma != NULL ? (size_t)(comma - s) : len;
        size_t a = i, b = end;
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        if (b > a) {
            const char *m = s + a, *eq = memchr(m, '=', b - a);
            if (eq == NULL || !key_valid(m, (size_t)(eq - m)) || !value_valid(eq + 1, (size_t)(b - a) - (eq - m) - 1))
                return -EINVAL;
            if (++*members > RM_TRACESTATE_MAX_MEMBERS)
                return -EINVAL;
            size_t kn = (size_t)(eq - m), mn = b - a;
            if (key_present(out, *out_len, m, kn))
                return -EINVAL;
            /* past 512 bytes, members longer than 128 bytes go first, then the last ones (W3C level 1, 3.3.1.5) */
            while (*out_len + (*out_len > 0) + mn > RM_TRACESTATE_MAX_LEN && remove_long_member(out, out_len))
                ;
            if (*out_len + (*out_len > 0) + mn <= RM_TRACESTATE_MAX_LEN) {
                if (*out_len > 0)
                    out[(*out_len)++] = ',';
                memcpy(out + *out_len, m, mn);
                *out_len += mn;
            }
        }
        if (comma == NULL)
            break;
        i = end + 1;
    }
    out[*out_len] = '\0';
    return 0;
}

int rm_b3_trace_id_parse(const char *s, size_t len, uint8_t out[16], uint8_t *is_64)
{
    uint8_t id[16] = {0};
    if (len == 16) {
        if (hex_decode(s, 8, id + 8, 0) != 0)
            return -EINVAL;
        *is_64 = 1;
    } else if (len == 32) {
        if (hex_decode(s, 16, id, 0) != 0)
            return -EINVAL;
        *is_64 = 0;
    } else {
        return -EINVAL;
    }
    if (all_zero(id, 16))
        return -EINVAL;
    memcpy(out, id, 16);
    return 0;
}

int rm_b3_span_id_parse(const char *s, size_t len, uint8_t out[8])
{
    uint8_t id[8];
    if (len != 16 || hex_decode(s, 8, id, 0) != 0 || all_zero(id, 8))
        return -EINVAL;
    memcpy(out, id, 8);
    return 0;
}

/* A B3 sampling state: "1", "0", "d" (debug) and, for x-b3-sampled, the older "true" and "false". */
static int b3_sampling_parse(const char *s, size_t len, int allow_debug, rm_trace_incoming_t *in)
{
    if ((len == 1 && s[0] == '1') || (len == 4 && strncasecmp(s, "true", 4) == 0)) {
        in->sampling = RM_TRACE_SAMPLING_YES;
    } else if ((len == 1 && s[0] == '0') || (len == 5 && strncasecmp(s, "false", 5) == 0)) {
        in->sampling = RM_TRACE_SAMPLING_NO;
    } else if (allow_debug && len == 1 && s[0] == 'd') {
        in->sampling = RM_TRACE_SAMPLING_YES;
        in->b3_debug = 1;
    } else {
        return -EINVAL;
    }
    return 0;
}

int rm_b3_single_parse(const char *s, size_t len, rm_trace_incoming_t *in)
{
    rm_trace_incoming_t r;
    memset(&r, 0, sizeof(r));
    if (len == 1) {
        if (b3_sampling_parse(s, len, 1, &r) != 0 || s[0] == 't' || s[0] == 'f')
            return -EINVAL;
        goto Done;
    }
    const char *dash = memchr(s, '-', len);
    if (dash == NULL || rm_b3_trace_id_parse(s, (size_t)(dash - s), r.parent.trace_id, &r.b3_trace_id_64) != 0)
        return -EINVAL;
    const char *span = dash + 1, *end = s + len;
    if (end - span < 16 || rm_b3_span_id_parse(span, 16, r.parent.span_id) != 0)
        return -EINVAL;
    const char *p = span + 16;
    if (p < end) {
        if (*p != '-' || end - p < 2)
            return -EINVAL;
        p++;
        if (p + 1 < end && p[1] != '-')
            return -EINVAL;
        if (*p != '1' && *p != '0' && *p != 'd')
            return -EINVAL;
        b3_sampling_parse(p, 1, 1, &r);
        p++;
        if (p < end) {
            uint8_t parent[8];
            if (*p != '-' || rm_b3_span_id_parse(p + 1, (size_t)(end - p - 1), parent) != 0)
                return -EINVAL;
        }
    }
    r.source = RM_TRACE_FROM_B3_SINGLE;
Done:
    in->source = r.source;
    in->parent = r.parent;
    in->sampling = r.sampling;
    in->b3_debug = r.b3_debug;
    in->b3_trace_id_64 = r.b3_trace_id_64;
    return 0;
}

static int name_is(const rm_http_header_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* The flags that follow from a B3 sampling state: sampled when it says so; deferred reads as not sampled until the
 * sampler decides (conn_trace). */
static void b3_flags(rm_trace_incoming_t *in)
{
    in->parent.flags = in->sampling == RM_TRACE_SAMPLING_YES ? RM_TRACE_FLAG_SAMPLED : 0;
}

void rm_trace_extract(const rm_http_header_t *headers, size_t num_headers, rm_trace_incoming_t *in)
{
    const rm_http_header_t *tp = NULL, *b3 = NULL, *tid = NULL, *sid = NULL, *sampled = NULL, *flags = NULL;
    size_t num_tp = 0;

    memset(in, 0, offsetof(rm_trace_incoming_t, tracestate));
    in->tracestate[0] = '\0';
    for (size_t i = 0; i < num_headers; i++) {
        const rm_http_header_t *h = &headers[i];
        if (name_is(h, "traceparent")) {
            tp = h;
            num_tp++;
        } else if (name_is(h, "b3")) {
            b3 = h;
            in->has_b3_single = 1;
        } else if (h->name_len > 5 && strncasecmp(h->name, "x-b3-", 5) == 0) {
            in->has_b3_multi = 1;
            if (name_is(h, "x-b3-traceid"))
                tid = h;
            else if (name_is(h, "x-b3-spanid"))
                sid = h;
            else if (name_is(h, "x-b3-sampled"))
                sampled = h;
            else if (name_is(h, "x-b3-flags"))
                flags = h;
        }
    }
    /* W3C first. Two traceparent fields make one invalid value (RFC 9110 combines them with a comma). */
    if (num_tp == 1 && rm_traceparent_parse(tp->value, tp->value_len, &in->parent) == 0) {
        in->source = RM_TRACE_FROM_W3C;
        in->sampling = (in->parent.flags & RM_TRACE_FLAG_SAMPLED) ? RM_TRACE_SAMPLING_YES : RM_TRACE_SAMPLING_NO;
        size_t members = 0, len = 0;
        for (size_t i = 0; i < num_headers; i++) {
            if (!name_is(&headers[i], "tracestate"))
                continue;
            if (rm_tracestate_append(in->tracestate, &len, &members, headers[i].value, headers[i].value_len) != 0) {
                len = 0;
                break;
            }
        }
        in->tracestate_len = len;
        in->tracestate[len] = '\0';
        return;
    }
    if (b3 != NULL && rm_b3_single_parse(b3->value, b3->value_len, in) == 0) {
        b3_flags(in);
        return;
    }
    in->source = RM_TRACE_FROM_NONE;
    in->sampling = RM_TRACE_SAMPLING_DEFER;
    if (tid != NULL && sid != NULL &&
        rm_b3_trace_id_parse(tid->value, tid->value_len, in->parent.trace_id, &in->b3_trace_id_64) == 0 &&
        rm_b3_span_id_parse(sid->value, sid->value_len, in->parent.span_id) == 0)
        in->source = RM_TRACE_FROM_B3_MULTI;
    if (sampled != NULL && b3_sampling_parse(sampled->value, sampled->value_len, 0, in) != 0)
        in->sampling = RM_TRACE_SAMPLING_DEFER;
    if (flags != NULL && flags->value_len == 1 && flags->value[0] == '1') {
        in->b3_debug = 1;
        in->sampling = RM_TRACE_SAMPLING_YES;
    }
    if (in->source == RM_TRACE_FROM_NONE)
        memset(&in->parent, 0, sizeof(in->parent));
    b3_flags(in);
}

/* Ids come from a per-thread batch of CSPRNG bytes: one getrandom per RANDOM_BATCH bytes, none per request. */
#define RANDOM_BATCH 2048

typedef struct {
    uint8_t bytes[RANDOM_BATCH];
    size_t used; /* bytes[used, RANDOM_BATCH) are unused */
} random_batch_t;

static __thread random_batch_t random_batch = {.used = RANDOM_BATCH};

static int random_take(uint8_t *out, size_t n)
{
    if (random_batch.used + n > RANDOM_BATCH) {
        size_t got = 0;
        while (got < RANDOM_BATCH) {
            ssize_t r = getrandom(random_batch.bytes + got, RANDOM_BATCH - got, 0);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            got += (size_t)r;
        }
        random_batch.used = 0;
    }
    memcpy(out, random_batch.bytes + random_batch.used, n);
    random_batch.used += n;
    return 0;
}

int rm_trace_random_ids(uint8_t *trace_id, uint8_t *span_id)
{
    int ret;
    /* an all-zero id is invalid: draw again (2^-64 at most; bounded all the same) */
    for (int tries = 0; trace_id != NULL && tries < 4; tries++) {
        if ((ret = random_take(trace_id, 16)) != 0)
            return ret;
        if (!all_zero(trace_id, 16))
            break;
    }
    for (int tries = 0; span_id != NULL && tries < 4; tries++) {
        if ((ret = random_take(span_id, 8)) != 0)
            return ret;
        if (!all_zero(span_id, 8))
            break;
    }
    return 0;
}
