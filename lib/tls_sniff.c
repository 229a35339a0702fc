/* Tells a mesh ClientHello from anything else by the first bytes a client sends (RFC 8446 section 4.1.2 layout,
 * RFC 7301 ALPN extension). Pure parsing over the caller's bytes: bounds-checked, no allocation, no wolfSSL. */
#include "ringmesh/tls.h"

#include <string.h>

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

/* Returns 1 when the ALPN extension body lists the mesh protocol. */
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
    }
    return 0;
}

rm_tls_sniff_t rm_tls_sniff(const uint8_t *p, size_t len)
{
    cursor_t c;
    unsigned rec_len, hs_len, n, ext_total, ext_type, ext_len;
    const uint8_t *ext;

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
    c.end = c.p + ext_total;
    while (c.p < c.end) {
        if (take_u16(&c, &ext_type) != 0 || take_u16(&c, &ext_len) != 0 || take(&c, ext_len, &ext) != 0)
            return RM_TLS_SNIFF_TLS_OTHER;
        if (ext_type == 16 /* application_layer_protocol_negotiation */)
            return alpn_offers_mesh(ext, ext_len) ? RM_TLS_SNIFF_MESH : RM_TLS_SNIFF_TLS_OTHER;
    }
    return RM_TLS_SNIFF_TLS_OTHER;
}
