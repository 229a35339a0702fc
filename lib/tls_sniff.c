/* Tells a mesh ClientHello from anything else by the first bytes a client sends (RFC 8446 section 4.1.2 layout,
 * RFC 7301 ALPN extension). Pure parsing over the caller's bytes: bounds-checked, no allocation, no wolfSSL. */
#include "ringmesh/tls.h"

#include <string.h>

#include "ringmesh/error.h"

typedef struct {
    const uint8_t *p, *end;
} cursor_t;

static int take(cursor_t *c, size_t n, const uint8_t **out)
{
    if ((size_t)(c->end - c->p) < n)
        return -1;
    if (out != NULL)
        *out = c->p;
    c->p += n;
    return 0;
}

static int take_u8(cursor_t *c, unsigned *v)
{
    const uint8_t *b;
    if (take(c, 1, &b) != 0)
        return -1;
    *v = b[0];
    return 0;
}

static int take_u16(cursor_t *c, unsigned *v)
{
    const uint8_t *b;
    if (take(c, 2, &b) != 0)
        return -1;
    *v = (unsigned)b[0] << 8 | b[1];
    return 0;
}

/* Returns 1 when the ALPN extension body lists a mesh protocol: the L4 tunnel or the pooled HTTP/2 connections. */
static int alpn_offers_mesh(const uint8_t *p, size_t len)
{
    cursor_t c = {p, p + len};
    unsigned list_len, name_len;
    const uint8_t *name;
    if (take_u16(&c, &list_len) != 0 || list_len > (size_t)(c.end - c.p))
        return 0;
    c.end = c.p + list_len;
    while (c.p < c.end) {
        if (take_u8(&c, &name_len) != 0 || take(&c, name_len, &name) != 0)
            return 0;
        if (name_len == sizeof(RM_TLS_ALPN) - 1 && memcmp(name, RM_TLS_ALPN, name_len) == 0)
            return 1;
        if (name_len == sizeof(RM_TLS_ALPN_H2) - 1 && memcmp(name, RM_TLS_ALPN_H2, name_len) == 0)
            return 1;
    }
    return 0;
}

/* Finds the extensions of a ClientHello that sits whole in the first record of p. Returns RM_TLS_SNIFF_MESH when
 * *ext covers the extension block (the caller looks at it), or what p is otherwise. */
static rm_tls_sniff_t client_hello_extensions(const uint8_t *p, size_t len, cursor_t *ext)
{
    cursor_t c;
    unsigned rec_len, hs_len, n, ext_total;

    if (len == 0)
        return RM_TLS_SNIFF_NEED_MORE;
    if (p[0] != 0x16) /* handshake record */
        return RM_TLS_SNIFF_PLAINTEXT;
    if (len < 2)
        return RM_TLS_SNIFF_NEED_MORE;
    if (p[1] != 0x03)
        return RM_TLS_SNIFF_PLAINTEXT;
    if (len < 5)
        return RM_TLS_SNIFF_NEED_MORE;
    rec_len = (unsigned)p[3] << 8 | p[4];
    if (rec_len < 4 || rec_len > 16384 + 256)
        return RM_TLS_SNIFF_PLAINTEXT;
    if (len < 5 + (size_t)rec_len)
        return RM_TLS_SNIFF_NEED_MORE;

    c.p = p + 5;
    c.end = p + 5 + rec_len;
    if (c.p[0] != 0x01) /* ClientHello */
        return RM_TLS_SNIFF_TLS_OTHER;
    hs_len = (unsigned)c.p[1] << 16 | (unsigned)c.p[2] << 8 | c.p[3];
    c.p += 4;
    if (hs_len > (size_t)(c.end - c.p))
        return RM_TLS_SNIFF_TLS_OTHER; /* spans records: ours never do */
    c.end = c.p + hs_len;
    /* legacy_version, random, session id, cipher suites, compression methods */
    if (take(&c, 2 + 32, NULL) != 0 || take_u8(&c, &n) != 0 || take(&c, n, NULL) != 0 || take_u16(&c, &n) != 0 ||
        take(&c, n, NULL) != 0 || take_u8(&c, &n) != 0 || take(&c, n, NULL) != 0)
        return RM_TLS_SNIFF_TLS_OTHER;
    if (take_u16(&c, &ext_total) != 0 || ext_total > (size_t)(c.end - c.p))
        return RM_TLS_SNIFF_TLS_OTHER;
    ext->p = c.p;
    ext->end = c.p + ext_total;
    return RM_TLS_SNIFF_MESH;
}

/* The body of extension `type`, or -1 when absent or the block is malformed. */
static int find_extension(cursor_t c, unsigned type, const uint8_t **body, unsigned *body_len)
{
    unsigned ext_type, ext_len;
    const uint8_t *ext;
    while (c.p < c.end) {
        if (take_u16(&c, &ext_type) != 0 || take_u16(&c, &ext_len) != 0 || take(&c, ext_len, &ext) != 0)
            return -1;
        if (ext_type == type) {
            *body = ext;
            *body_len = ext_len;
            return 0;
        }
    }
    return -1;
}

rm_tls_sniff_t rm_tls_sniff(const uint8_t *p, size_t len)
{
    cursor_t ext;
    const uint8_t *body;
    unsigned body_len;
    rm_tls_sniff_t k = client_hello_extensions(p, len, &ext);

    if (k != RM_TLS_SNIFF_MESH)
        return k;
    if (find_extension(ext, 16 /* application_layer_protocol_negotiation */, &body, &body_len) != 0)
        return RM_TLS_SNIFF_TLS_OTHER;
    return alpn_offers_mesh(body, body_len) ? RM_TLS_SNIFF_MESH : RM_TLS_SNIFF_TLS_OTHER;
}

size_t rm_tls_client_hello_sni(const uint8_t *p, size_t len, char *out, size_t outlen)
{
    cursor_t ext, c;
    const uint8_t *body, *name;
    unsigned body_len, list_len, type, name_len;

    if (outlen == 0)
        return 0;
    out[0] = '\0';
    if (client_hello_extensions(p, len, &ext) != RM_TLS_SNIFF_MESH ||
        find_extension(ext, 0 /* server_name, RFC 6066 section 3 */, &body, &body_len) != 0)
        return 0;
    c.p = body;
    c.end = body + body_len;
    if (take_u16(&c, &list_len) != 0 || list_len > (size_t)(c.end - c.p))
        return 0;
    c.end = c.p + list_len;
    while (c.p < c.end) {
        if (take_u8(&c, &type) != 0 || take_u16(&c, &name_len) != 0 || take(&c, name_len, &name) != 0)
            return 0;
        if (type != 0 /* host_name */)
            continue;
        if (name_len == 0 || name_len >= outlen)
            return 0;
        for (unsigned i = 0; i < name_len; i++)
            if (name[i] <= 0x20 || name[i] >= 0x7f) /* a DNS name: printable ASCII, no spaces */
                return 0;
        memcpy(out, name, name_len);
        out[name_len] = '\0';
        return name_len;
    }
    return 0;
}

/* A list of 16-bit values whose length in bytes is the `len_bytes`-byte prefix at c (1 or 2), e.g. cipher_suites. */
static int take_u16_list(cursor_t *c, int len_bytes, rm_tls_u16_list_t *out)
{
    unsigned n;
    const uint8_t *p;
    if ((len_bytes == 1 ? take_u8(c, &n) : take_u16(c, &n)) != 0 || n % 2 != 0 || take(c, n, &p) != 0)
        return -1;
    out->p = p;
    out->num = n / 2;
    out->present = 1;
    return 0;
}

int rm_tls_client_hello_parse(const uint8_t *p, size_t len, rm_tls_client_hello_t *out)
{
    cursor_t c, ext;
    const uint8_t *body;
    unsigned n, body_len;
    rm_tls_sniff_t k;

    memset(out, 0, sizeof(*out));
    if ((k = client_hello_extensions(p, len, &ext)) == RM_TLS_SNIFF_NEED_MORE)
        return RM_ERR_TLS_WANT_IO;
    if (k != RM_TLS_SNIFF_MESH)
        return RM_ERR_TLS_PROTOCOL;
    /* client_hello_extensions has checked the layout up to the extensions: walk it again for the fields */
    c.p = p + 5 + 4;
    c.end = ext.p;
    if (take_u16(&c, &out->legacy_version) != 0 || take(&c, 32, NULL) != 0 || take_u8(&c, &n) != 0 ||
        take(&c, n, NULL) != 0 || take_u16_list(&c, 2, &out->suites) != 0)
        return RM_ERR_TLS_PROTOCOL;
    if (find_extension(ext, 43 /* supported_versions */, &body, &body_len) == 0) {
        c.p = body;
        c.end = body + body_len;
        if (take_u16_list(&c, 1, &out->versions) != 0 || c.p != c.end)
            return RM_ERR_TLS_PROTOCOL;
    }
    if (find_extension(ext, 10 /* supported_groups */, &body, &body_len) == 0) {
        c.p = body;
        c.end = body + body_len;
        if (take_u16_list(&c, 2, &out->groups) != 0 || c.p != c.end)
            return RM_ERR_TLS_PROTOCOL;
    }
    return 0;
}

unsigned rm_tls_u16_list_at(const rm_tls_u16_list_t *list, size_t i)
{
    return (unsigned)list->p[2 * i] << 8 | list->p[2 * i + 1];
}

int rm_tls_u16_list_has(const rm_tls_u16_list_t *list, unsigned value)
{
    for (size_t i = 0; i != list->num; ++i)
        if (rm_tls_u16_list_at(list, i) == value)
            return 1;
    return 0;
}
