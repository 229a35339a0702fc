/* The TLS backend over wolfSSL: contexts, sessions and the hand-over of a session's keys to kernel TLS. With
 * ecdsa_memo_wolfssl.c (its remembered signature checks), the only code of the proxy's path that includes wolfSSL
 * headers. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "ringmesh/buffer_pool.h"
#include "ringmesh/error.h"
#include "ringmesh/slab.h"
#include "ringmesh/tls.h"
#include "tls_internal.h"

#include <errno.h>
#include <linux/tls.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One TLS 1.3 record can carry 2^14 bytes of plaintext plus at most 256 bytes of expansion and a 5-byte header;
 * both windows hold at least one whole record so a write never stops half-way. They are pool buffers, held only while
 * they hold bytes: small ones (one record) by default, large ones (many records) for a stream. */
/* Largest plaintext we hand wolfSSL_write, and what one record adds to it (header, type, tag, slack). */
#define TLS_WRITE_CHUNK    16384
#define TLS_WRITE_OVERHEAD 64

struct st_rm_tls_ctx_t {
    WOLFSSL_CTX *ctx;
    rm_tls_role_t role;
    atomic_int refs;
    char trust_domain[RM_TRUST_DOMAIN_MAX + 1];
    char **peer_td_aliases; /* owned copies; peers may be in these trust domains too */
    size_t num_peer_td_aliases;
    rm_spiffe_id_t id;
    time_t not_before, not_after;
    char alpn[32];      /* offered (and, with RM_TLS_REQUIRE_MESH_ALPN, required) */
    int no_client_auth; /* server: no client certificate asked for or required */
};

struct st_rm_tls_t {
    WOLFSSL *ssl;
    rm_tls_ctx_t *ctx;
    const char *const *expected_ids;
    size_t num_expected_ids;
    uint8_t *in; /* ciphertext received, not yet given to wolfSSL: in[in_off .. in_len); NULL when empty */
    size_t in_off, in_len;
    uint8_t *out; /* ciphertext produced, not yet sent: out[out_off .. out_len); NULL when empty */
    size_t out_off, out_len;
    uint8_t in_large;  /* the next input window is a large pool buffer (rm_tls_in_want_large) */
    uint8_t out_large; /* the next output window is: rm_tls_write was given more than one record */
    int in_eof;
    size_t rec_left; /* bytes of the current record's body not yet given to wolfSSL; 0 at a header */
    uint8_t hdr[5];  /* the header being passed through, hdr_have bytes of it so far */
    uint8_t hdr_have;
    int verify_err;   /* why our verify callback refused the peer */
    int hello_judged; /* server: the peer's ClientHello has been checked against what we accept */
    int leaf_checked; /* the verify callback has judged the leaf: signatures from now on are CertificateVerify */
    int handshake_done;
    int alpn_h2; /* the handshake negotiated ringmesh/h2 */
    int peer_closed;
    unsigned flags;
    char *peer_id;            /* the SPIFFE ID the peer presented (even a refused one), owned, on the slab; NULL when
                               * none. Kept at its own length: a fixed rm_spiffe_id_t would be 2 KiB in every session */
    uint8_t ktls_tx, ktls_rx; /* the kernel has this direction's record layer */
    int ktls_alert;           /* the alert the peer sent through the kernel's record layer, or -1 */
    const char *version;      /* kept when the WOLFSSL object is released (rm_tls_ktls_release) */
};

/* Hands wolfSSL at most the rest of the current record. wolfSSL asks for as much as its input buffer holds; given
 * more than one record it decrypts the first and then moves the rest down its buffer (ShrinkInputBuffer), a copy
 * per record on a bulk stream. Stopping at record boundaries leaves nothing to move. The 5-byte record header is
 * tracked as it passes through, so the boundary is known even when a header arrives split. */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    rm_tls_t *tls = arg;
    const uint8_t *p;
    size_t avail = tls->in_len - tls->in_off, n;
    (void)ssl;
    if (avail == 0) /* in is NULL when empty: no pointer is formed from it */
        return tls->in_eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
    p = tls->in + tls->in_off;
    if (tls->rec_left == 0) {
        /* at a record header: pass it through, remembering its length field (wolfSSL loops until it has all) */
        n = 5u - tls->hdr_have;
        if (n > avail)
            n = avail;
        if (n > (size_t)sz)
            n = (size_t)sz;
        memcpy(tls->hdr + tls->hdr_have, p, n);
        tls->hdr_have += (uint8_t)n;
        if (tls->hdr_have == 5) {
            tls->rec_left = (size_t)tls->hdr[3] << 8 | tls->hdr[4];
            tls->hdr_have = 0;
        }
    } else {
        n = tls->rec_left < avail ? tls->rec_left : avail;
        if (n > (size_t)sz)
            n = (size_t)sz;
        tls->rec_left -= n;
    }
    memcpy(buf, p, n);
    tls->in_off += n;
    /* no compaction here: a receive may be in flight into the tail; rm_tls_in_space compacts before the next */
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    rm_tls_t *tls = arg;
    size_t room;
    (void)ssl;
    if (tls->out == NULL && (tls->out = tls->out_large ? rm_buf_get_large() : rm_buf_get()) == NULL)
        return WOLFSSL_CBIO_ERR_GENERAL;
    /* Append only: bytes before out_len may be in flight in a send, so they never move. */
    room = rm_buf_size(tls->out) - tls->out_len;
    if (room == 0)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    if ((size_t)sz > room)
        sz = (int)room;
    memcpy(tls->out + tls->out_len, buf, (size_t)sz);
    tls->out_len += (size_t)sz;
    return sz;
}

#ifdef HAVE_PK_CALLBACKS
/* wolfSSL's ECDSA verify callback, for certificate signatures and the TLS CertificateVerify alike; the first are
 * remembered (ecdsa_memo_wolfssl.c). */
static int ecc_verify_cb(WOLFSSL *ssl, const unsigned char *sig, unsigned int sig_len, const unsigned char *hash,
                         unsigned int hash_len, const unsigned char *key_der, unsigned int key_len, int *result,
                         void *arg)
{
    rm_tls_t *tls = arg;
    (void)ssl;
    /* the certificates' signatures come before the leaf's verify callback; after it, only the CertificateVerify */
    return rm__tls_ecdsa_verify(key_der, key_len, hash, hash_len, sig, sig_len, tls == NULL || !tls->leaf_checked,
                                result);
}
#endif

/* Converts a wolfSSL verification or handshake error to ours. */
static int alpn_is(const char *proto, unsigned short len, const char *name)
{
    return proto != NULL && len == strlen(name) && memcmp(proto, name, len) == 0;
}

static int convert_error(int e)
{
    switch (e) {
    case ASN_AFTER_DATE_E:
        return RM_ERR_TLS_EXPIRED;
    case ASN_BEFORE_DATE_E:
        return RM_ERR_TLS_NOT_YET_VALID;
    case ASN_NO_SIGNER_E:
    case ASN_SELF_SIGNED_E:
    case ASN_SIG_CONFIRM_E:
    case ASN_PATHLEN_INV_E:
    case ASN_PATHLEN_SIZE_E:
        return RM_ERR_TLS_UNTRUSTED;
    case NO_PEER_CERT:
        return RM_ERR_TLS_NO_PEER_CERT;
    case UNKNOWN_ALPN_PROTOCOL_NAME_E:
        return RM_ERR_TLS_ALPN;
    case MEMORY_E:
        return RM_ERR_TLS_NO_MEMORY;
    case VERSION_ERROR:
        return RM_ERR_TLS_VERSION;
    case MATCH_SUITE_ERROR:
    case UNSUPPORTED_SUITE:
        return RM_ERR_TLS_NO_SHARED_CIPHER;
    case EXTKEYUSE_AUTH_E:
        return RM_ERR_SVID_EXT_KEY_USAGE;
    case KEYUSE_SIGNATURE_E:
        return RM_ERR_SVID_NO_DIGITAL_SIGNATURE;
    case ECC_PEERKEY_ERROR:
    case PEER_KEY_ERROR:
    case BAD_KEY_SHARE_DATA:
        return RM_ERR_TLS_BAD_KEY_SHARE;
    case FATAL_ERROR: /* an alert from the peer: rm_tls_peer_alert names it */
        return RM_ERR_TLS_PEER_ALERT;
    case ZERO_RETURN:
    case SOCKET_PEER_CLOSED_E:
        return RM_ERR_TLS_CLOSED;
    }
    return RM_ERR_TLS_HANDSHAKE;
}

/* The store reports OpenSSL's X509_V_ERR_* numbers (positive) under OPENSSL_EXTRA, wolfSSL's own (negative) otherwise.
 * 0 means "no opinion": the handshake's own error is used instead. */
static int convert_verify_error(int e)
{
    if (e < 0) {
        int r = convert_error(e);
        return r == RM_ERR_TLS_HANDSHAKE ? 0 : r;
    }
    switch (e) {
    case 9: /* X509_V_ERR_CERT_NOT_YET_VALID */
        return RM_ERR_TLS_NOT_YET_VALID;
    case 10: /* X509_V_ERR_CERT_HAS_EXPIRED */
        return RM_ERR_TLS_EXPIRED;
    case 2:  /* UNABLE_TO_GET_ISSUER_CERT */
    case 7:  /* CERT_SIGNATURE_FAILURE */
    case 18: /* DEPTH_ZERO_SELF_SIGNED_CERT */
    case 19: /* SELF_SIGNED_CERT_IN_CHAIN */
    case 20: /* UNABLE_TO_GET_ISSUER_CERT_LOCALLY */
    case 21: /* UNABLE_TO_VERIFY_LEAF_SIGNATURE */
    case 24: /* INVALID_CA */
    case 25: /* PATH_LENGTH_EXCEEDED */
        return RM_ERR_TLS_UNTRUSTED;
    }
    return 0;
}

/* Applies the X509-SVID rules and the expected identities to the peer's leaf, and keeps the SPIFFE ID it presents
 * (even a refused one: the log says who was refused). The ID is parsed into a fixed buffer on the stack,
 * RM_SPIFFE_ID_MAX bytes (a URI SAN longer than that is no SPIFFE ID and is refused by the rules), then copied at its
 * length into the session. Returns 0 or the rule that failed; RM_ERR_TLS_NO_MEMORY (the peer is refused) when the
 * copy cannot be made. */
static int judge_leaf(rm_tls_t *tls, WOLFSSL_X509_STORE_CTX *store)
{
    rm_svid_expect_t expect;
    rm_spiffe_id_t id;
    int ret;

    /* The leaf as the peer sent it (DER), which wolfSSL hands every verify callback whatever its feature set. */
    if (store->certs == NULL || store->totalCerts < 1 || store->certs[0].buffer == NULL || store->certs[0].length == 0)
        return RM_ERR_SVID_PARSE;
    expect.trust_domain = tls->ctx->trust_domain;
    expect.trust_domain_aliases = (const char *const *)tls->ctx->peer_td_aliases;
    expect.num_trust_domain_aliases = tls->ctx->num_peer_td_aliases;
    expect.ids = tls->expected_ids;
    expect.num_ids = tls->num_expected_ids;
    id.len = 0;
    ret = rm_svid_check_peer_der(store->certs[0].buffer, store->certs[0].length, time(NULL), &expect, &id);
    rm_slab_free(tls->peer_id);
    tls->peer_id = NULL;
    if (id.len != 0 && (tls->peer_id = rm_slab_strndup(id.str, id.len)) == NULL)
        return RM_ERR_TLS_NO_MEMORY;
    return ret;
}

/* Called for every certificate of the peer's chain (WOLFSSL_ALWAYS_VERIFY_CB), with wolfSSL's verdict on it. The
 * first reason to refuse is kept. At the leaf the X509-SVID rules are applied whatever wolfSSL said, so that a
 * refusal names the peer's SPIFFE ID and the rule: a chain that leads to no trusted root (or a certificate above the
 * leaf out of its dates) is reported as such, since nothing the leaf says can be believed then; otherwise the leaf
 * rule that failed (its dates, key usage, extended key usage, ID); otherwise what wolfSSL found, or, when that has
 * no name here, the handshake's own error. */
static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    rm_tls_t *tls = store->userCtx;
    int chain_err, leaf_err;

    if (tls == NULL)
        return 0;
    chain_err = preverify ? 0 : convert_verify_error(store->error);
    if (store->error_depth != 0) {
        if (tls->verify_err == 0)
            tls->verify_err = chain_err; /* 0 when wolfSSL's reason has no name here: the handshake's error then */
        return preverify;
    }
    tls->leaf_checked = 1;
    leaf_err = judge_leaf(tls, store);
    if (tls->verify_err == 0) {
        /* an untrusted chain is named before the leaf's faults; else the leaf's, else the chain's */
        tls->verify_err = chain_err != RM_ERR_TLS_UNTRUSTED && leaf_err != 0 ? leaf_err : chain_err;
    }
    return preverify && leaf_err == 0;
}

/* What ringmesh negotiates, deliberately and in both roles: TLS 1.3 only, these cipher suites and these key
 * exchange groups, each in order of preference. P-256 comes first among the groups: it is the client's key share and
 * the curve of every SVID. Without the lists wolfSSL offers everything it was built with (secp224r1 and P-521 among
 * the groups), and a wolfSSL server answers a client none of whose groups it takes with a HelloRetryRequest for a
 * group the client never offered; so a server checks the ClientHello against these lists first (judge_client_hello)
 * and refuses it with the reason. Code points are IANA's (RFC 8446 B.4 and 4.2.7), which wolfSSL's group numbers
 * are too. */
static const struct {
    uint16_t iana;
    const char *wolf_name;
} mesh_suites[] = {
    {0x1301, "TLS13-AES128-GCM-SHA256"},
    {0x1302, "TLS13-AES256-GCM-SHA384"},
    {0x1303, "TLS13-CHACHA20-POLY1305-SHA256"},
};
static const int mesh_groups[] = {WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP384R1};
#define NUM_MESH_SUITES (sizeof(mesh_suites) / sizeof(mesh_suites[0]))
#define NUM_MESH_GROUPS (sizeof(mesh_groups) / sizeof(mesh_groups[0]))
#define TLS13_VERSION   0x0304

static int set_suites_and_groups(WOLFSSL_CTX *ctx)
{
    char list[128];
    int groups[NUM_MESH_GROUPS];
    size_t i, off = 0;

    for (i = 0; i != NUM_MESH_SUITES; ++i)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i != 0 ? ":" : "", mesh_suites[i].wolf_name);
    if (off >= sizeof(list) || wolfSSL_CTX_set_cipher_list(ctx, list) != WOLFSSL_SUCCESS)
        return RM_ERR_TLS_CONFIG;
    memcpy(groups, mesh_groups, sizeof(groups));
    /* the supported_groups extension a client sends ... */
    for (i = 0; i != NUM_MESH_GROUPS; ++i)
        if (wolfSSL_CTX_UseSupportedCurve(ctx, (word16)groups[i]) != WOLFSSL_SUCCESS)
            return RM_ERR_TLS_CONFIG;
    /* ... and the order in which a server picks among the client's key shares */
    if (wolfSSL_CTX_set_groups(ctx, groups, (int)NUM_MESH_GROUPS) != WOLFSSL_SUCCESS)
        return RM_ERR_TLS_CONFIG;
    return 0;
}

/* A fatal alert in a plaintext record (RFC 8446 6), for a ClientHello refused before wolfSSL has seen it. */
static void queue_alert(rm_tls_t *tls, uint8_t description)
{
    uint8_t rec[7] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02 /* fatal */, description};
    (void)io_send(NULL, (char *)rec, (int)sizeof(rec), tls);
}

/* Server side, before wolfSSL reads the ClientHello: whether it offers TLS 1.3, one of our cipher suites and one of
 * our groups. Returns 0 (acceptable, or not a ClientHello this parser reads whole: wolfSSL then decides),
 * RM_ERR_TLS_WANT_IO while the first record is incomplete, or the reason to refuse it (the alert is queued). */
static int judge_client_hello(rm_tls_t *tls)
{
    rm_tls_client_hello_t hello;
    size_t i;
    int r, any;

    if (tls->in == NULL)
        return tls->in_eof ? 0 : RM_ERR_TLS_WANT_IO;
    r = rm_tls_client_hello_parse(tls->in + tls->in_off, tls->in_len - tls->in_off, &hello);
    if (r == RM_ERR_TLS_WANT_IO)
        return tls->in_eof || tls->in_len == rm_buf_size(tls->in) ? 0 : RM_ERR_TLS_WANT_IO;
    if (r != 0)
        return 0;
    if (!rm_tls_u16_list_has(&hello.versions, TLS13_VERSION)) {
        queue_alert(tls, 70 /* protocol_version */);
        return RM_ERR_TLS_VERSION;
    }
    for (i = 0, any = 0; i != NUM_MESH_SUITES && !any; ++i)
        any = rm_tls_u16_list_has(&hello.suites, mesh_suites[i].iana);
    if (!any) {
        queue_alert(tls, 40 /* handshake_failure */);
        return RM_ERR_TLS_NO_SHARED_CIPHER;
    }
    for (i = 0, any = 0; i != NUM_MESH_GROUPS && !any; ++i)
        any = rm_tls_u16_list_has(&hello.groups, (unsigned)mesh_groups[i]);
    if (!any) {
        queue_alert(tls, 40 /* handshake_failure */);
        return RM_ERR_TLS_NO_SHARED_GROUP;
    }
    return 0;
}

static void ctx_free_aliases(rm_tls_ctx_t *c)
{
    for (size_t i = 0; i < c->num_peer_td_aliases; i++)
        free(c->peer_td_aliases[i]);
    free(c->peer_td_aliases);
}

int rm_tls_global_init(void)
{
    return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : RM_ERR_TLS_CONFIG;
}

int rm_tls_ctx_new(rm_tls_ctx_t **out, rm_tls_role_t role, const rm_tls_ctx_config_t *cfg, char *err, size_t errlen)
{
    rm_tls_ctx_t *c = NULL;
    rm_trust_bundle_t *bundle = NULL;
    rm_svid_expect_t expect = {0};
    int ret;

    if ((c = calloc(1, sizeof(*c))) == NULL) {
        snprintf(err, errlen, "out of memory");
        ret = RM_ERR_TLS_NO_MEMORY;
        goto Exit;
    }
    c->role = role;
    c->no_client_auth = role == RM_TLS_SERVER && cfg->no_client_auth;
    atomic_init(&c->refs, 1);
    if (cfg->trust_domain == NULL || strlen(cfg->trust_domain) > RM_TRUST_DOMAIN_MAX) {
        snprintf(err, errlen, "trust domain missing or too long");
        ret = RM_ERR_TLS_CONFIG;
        goto Exit;
    }
    strcpy(c->trust_domain, cfg->trust_domain);
    if (cfg->num_peer_trust_domain_aliases > 0 &&
        (c->peer_td_aliases = calloc(cfg->num_peer_trust_domain_aliases, sizeof(char *))) == NULL) {
        snprintf(err, errlen, "out of memory");
        ret = RM_ERR_TLS_NO_MEMORY;
        goto Exit;
    }
    for (size_t i = 0; i < cfg->num_peer_trust_domain_aliases; i++) {
        const char *td = cfg->peer_trust_domain_aliases[i];
        if (td == NULL || rm_trust_domain_check(td, strlen(td)) != 0) {
            snprintf(err, errlen, "trust domain alias %zu is not a trust domain", i);
            ret = RM_ERR_TLS_CONFIG;
            goto Exit;
        }
        if ((c->peer_td_aliases[i] = strdup(td)) == NULL) {
            snprintf(err, errlen, "out of memory");
            ret = RM_ERR_TLS_NO_MEMORY;
            goto Exit;
        }
        c->num_peer_td_aliases++;
    }
    if (cfg->alpn != NULL && (cfg->alpn[0] == '\0' || strlen(cfg->alpn) >= sizeof(c->alpn))) {
        snprintf(err, errlen, "ALPN protocol name empty or too long");
        ret = RM_ERR_TLS_CONFIG;
        goto Exit;
    }
    strcpy(c->alpn, cfg->alpn != NULL ? cfg->alpn : RM_TLS_ALPN);

    /* Our own certificate must itself be a valid SVID of our trust domain under the bundle we hand out. */
    if ((ret = rm_trust_bundle_load_pem(&bundle, cfg->bundle_pem, cfg->bundle_len)) != 0) {
        snprintf(err, errlen, "trust bundle: %s", rm_strerror(ret));
        goto Exit;
    }
    expect.trust_domain = c->trust_domain;
    if (cfg->foreign_cert && !(role == RM_TLS_SERVER && cfg->no_client_auth && cfg->cert_pem != NULL)) {
        snprintf(err, errlen, "a certificate from outside the mesh is only for a server that asks no client's");
        ret = RM_ERR_TLS_CONFIG;
        goto Exit;
    }
    if ((cfg->cert_pem == NULL && role == RM_TLS_CLIENT) || cfg->foreign_cert) {
        /* a client without a certificate of its own (only to reach the control plane for its first SVID), or a
         * certificate from outside the mesh served to clients outside it: no SVID to check; the key match below
         * still holds a certificate to its key */
    } else if ((ret = rm_svid_verify_pem(bundle, cfg->cert_pem, cfg->cert_len, time(NULL), &expect, &c->id)) != 0) {
        snprintf(err, errlen, "own certificate is not a valid SVID: %s", rm_strerror(ret));
        goto Exit;
    }
    if (cfg->cert_pem != NULL) {
        rm_x509_info_t *info = malloc(sizeof(*info));
        unsigned char *der = malloc(cfg->cert_len);
        int dlen;
        if (info == NULL || der == NULL) {
            free(info), free(der);
            ret = RM_ERR_TLS_NO_MEMORY;
            goto Exit;
        }
        dlen = wc_CertPemToDer((const unsigned char *)cfg->cert_pem, (int)cfg->cert_len, der, (int)cfg->cert_len,
                               CERT_TYPE);
        if (dlen > 0 && rm_x509_parse_der(der, (size_t)dlen, info) == 0) {
            c->not_before = info->not_before;
            c->not_after = info->not_after;
        }
        free(info), free(der);
    }

    if ((c->ctx = wolfSSL_CTX_new(role == RM_TLS_SERVER ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method())) ==
        NULL) {
        snprintf(err, errlen, "wolfSSL context could not be created");
        ret = RM_ERR_TLS_CONFIG;
        goto Exit;
    }
    if (cfg->cert_pem != NULL &&
        wolfSSL_CTX_use_certificate_chain_buffer_format(c->ctx, (const unsigned char *)cfg->cert_pem,
                                                        (long)cfg->cert_len, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
        snprintf(err, errlen, "certificate chain could not be loaded");
        ret = RM_ERR_TLS_CONFIG;
        goto Exit;
    }
    if (cfg->cert_pem != NULL &&
        (wolfSSL_CTX_use_PrivateKey_buffer(c->ctx, (const unsigned char *)cfg->key_pem, (long)cfg->key_len,
                                           WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
         wolfSSL_CTX_check_private_key(c->ctx) != WOLFSSL_SUCCESS)) {
        snprintf(err, errlen, "private key could not be loaded or does not match the certificate");
        ret = RM_ERR_TLS_CONFIG;
        goto Exit;
    }
    if (wolfSSL_CTX_load_verify_buffer(c->ctx, (const unsigned char *)cfg->bundle_pem, (long)cfg->bundle_len,
                                       WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
        snprintf(err, errlen, "trust bundle could not be loaded");
        ret = RM_ERR_TLS_CONFIG;
        goto Exit;
    }
    if ((ret = set_suites_and_groups(c->ctx)) != 0) {
        snprintf(err, errlen, "cipher suites or key exchange groups could not be set");
        goto Exit;
    }
    if (c->no_client_auth)
        wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_NONE, NULL);
    else
        wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    /* Every connection is a full handshake: no tickets, no session cache (nothing to steal, nothing to replay). */
    wolfSSL_CTX_set_session_cache_mode(c->ctx, WOLFSSL_SESS_CACHE_OFF);
    if (role == RM_TLS_SERVER)
        wolfSSL_CTX_no_ticket_TLSv13(c->ctx);
#ifdef HAVE_PK_CALLBACKS
    wolfSSL_CTX_SetEccVerifyCb(c->ctx, ecc_verify_cb);
#endif
    wolfSSL_CTX_SetIORecv(c->ctx, io_recv);
    wolfSSL_CTX_SetIOSend(c->ctx, io_send);
    ret = 0;

Exit:
    rm_trust_bundle_free(bundle);
    if (ret != 0) {
        if (c != NULL && c->ctx != NULL)
            wolfSSL_CTX_free(c->ctx);
        if (c != NULL)
            ctx_free_aliases(c);
        free(c);
    } else {
        *out = c;
    }
    return ret;
}

void rm_tls_ctx_ref(rm_tls_ctx_t *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void rm_tls_ctx_unref(rm_tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) == 1) {
        wolfSSL_CTX_free(ctx->ctx);
        ctx_free_aliases(ctx);
        free(ctx);
    }
}

const rm_spiffe_id_t *rm_tls_ctx_id(const rm_tls_ctx_t *ctx)
{
    return &ctx->id;
}

time_t rm_tls_ctx_not_after(const rm_tls_ctx_t *ctx)
{
    return ctx->not_after;
}

time_t rm_tls_ctx_not_before(const rm_tls_ctx_t *ctx)
{
    return ctx->not_before;
}

int rm_tls_new(rm_tls_t **out, rm_tls_ctx_t *ctx, const char *const *expected_ids, size_t num_expected_ids,
               unsigned flags)
{
    rm_tls_t *tls;

    /* on the slab: the session object outlives the handshake's transient allocations (ringmesh/slab.h) */
    if ((tls = rm_slab_alloc(sizeof(*tls))) == NULL)
        return RM_ERR_TLS_NO_MEMORY;
    if ((tls->ssl = wolfSSL_new(ctx->ctx)) == NULL)
        goto Fail;
    tls->ctx = ctx;
    tls->expected_ids = expected_ids;
    tls->num_expected_ids = num_expected_ids;
    tls->flags = flags;
    tls->ktls_alert = -1;
    wolfSSL_SetIOReadCtx(tls->ssl, tls);
    wolfSSL_SetIOWriteCtx(tls->ssl, tls);
    wolfSSL_SetCertCbCtx(tls->ssl, tls);
#ifdef HAVE_PK_CALLBACKS
    wolfSSL_SetEccVerifyCtx(tls->ssl, tls);
#endif
    /* a mesh server that also serves the pooled request connections chooses between the two mesh protocols */
    if (ctx->role == RM_TLS_SERVER && (flags & RM_TLS_ACCEPT_H2) && strcmp(ctx->alpn, RM_TLS_ALPN) == 0) {
        char both[] = RM_TLS_ALPN "," RM_TLS_ALPN_H2;
        if (wolfSSL_UseALPN(tls->ssl, both, (unsigned)strlen(both), WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)
            goto Fail;
    } else if (ctx->role == RM_TLS_CLIENT && (flags & RM_TLS_OFFER_H2)) {
        char h2[] = RM_TLS_ALPN_H2;
        if (wolfSSL_UseALPN(tls->ssl, h2, (unsigned)strlen(h2), WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)
            goto Fail;
    } else if (wolfSSL_UseALPN(tls->ssl, ctx->alpn, (unsigned)strlen(ctx->alpn),
                               ctx->no_client_auth ? WOLFSSL_ALPN_CONTINUE_ON_MISMATCH
                                                   : WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)
        goto Fail;
    if (ctx->role == RM_TLS_CLIENT && wolfSSL_UseKeyShare(tls->ssl, WOLFSSL_ECC_SECP256R1) != WOLFSSL_SUCCESS)
        goto Fail;
    rm_tls_ctx_ref(ctx);
    *out = tls;
    return 0;

Fail:
    if (tls->ssl != NULL)
        wolfSSL_free(tls->ssl);
    rm_slab_free(tls);
    return RM_ERR_TLS_NO_MEMORY;
}

int rm_tls_set_server_name(rm_tls_t *tls, const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > 255)
        return RM_ERR_TLS_CONFIG;
    if (wolfSSL_UseSNI(tls->ssl, WOLFSSL_SNI_HOST_NAME, name, (word16)len) != WOLFSSL_SUCCESS)
        return RM_ERR_TLS_CONFIG;
    return 0;
}

void rm_tls_free(rm_tls_t *tls)
{
    if (tls == NULL)
        return;
    if (tls->ssl != NULL)
        wolfSSL_free(tls->ssl);
    rm_tls_ctx_unref(tls->ctx);
    rm_slab_free(tls->peer_id);
    rm_buf_put(tls->in);
    rm_buf_put(tls->out);
    rm_slab_free(tls);
}

void rm_tls_in_want_large(rm_tls_t *tls, int large)
{
    tls->in_large = large != 0;
}

int rm_tls_in_space(rm_tls_t *tls, uint8_t **p, size_t *len)
{
    if (tls->in == NULL) {
        if ((tls->in = tls->in_large ? rm_buf_get_large() : rm_buf_get()) == NULL)
            return RM_ERR_TLS_NO_MEMORY;
        tls->in_off = tls->in_len = 0;
    } else if (tls->in_large && rm_buf_size(tls->in) < RM_BUF_LARGE_SIZE) {
        /* a stream: what the small window holds (at most one record) moves to a large one */
        uint8_t *large = rm_buf_get_large();
        if (large == NULL)
            return RM_ERR_TLS_NO_MEMORY;
        memcpy(large, tls->in + tls->in_off, tls->in_len - tls->in_off);
        rm_buf_put(tls->in);
        tls->in = large;
        tls->in_len -= tls->in_off;
        tls->in_off = 0;
    } else if (tls->in_off > 0) {
        memmove(tls->in, tls->in + tls->in_off, tls->in_len - tls->in_off);
        tls->in_len -= tls->in_off;
        tls->in_off = 0;
    }
    *p = tls->in + tls->in_len;
    *len = rm_buf_size(tls->in) - tls->in_len;
    return 0;
}

void rm_tls_in_commit(rm_tls_t *tls, size_t n)
{
    tls->in_len += n;
}

int rm_tls_in_append(rm_tls_t *tls, const uint8_t *p, size_t len)
{
    uint8_t *dst;
    size_t room;
    int ret;
    if ((ret = rm_tls_in_space(tls, &dst, &room)) != 0)
        return ret;
    if (len > room)
        return RM_ERR_TLS_PROTOCOL;
    memcpy(dst, p, len);
    tls->in_len += len;
    return 0;
}

int rm_tls_in_adopt(rm_tls_t *tls, uint8_t *buf)
{
    if (tls->in != NULL)
        return RM_ERR_TLS_PROTOCOL;
    tls->in = buf;
    tls->in_off = tls->in_len = 0;
    return 0;
}

size_t rm_tls_in_pending(const rm_tls_t *tls)
{
    return tls->in != NULL ? tls->in_len - tls->in_off : 0;
}

int rm_tls_out_reserve(rm_tls_t *tls)
{
    if (tls->out == NULL && (tls->out = tls->out_large ? rm_buf_get_large() : rm_buf_get()) == NULL)
        return RM_ERR_TLS_NO_MEMORY;
    return 0;
}

int rm_tls_in_release(rm_tls_t *tls)
{
    if (tls->in == NULL)
        return 1;
    if (tls->in_off != tls->in_len)
        return 0;
    rm_buf_put(tls->in);
    tls->in = NULL;
    tls->in_off = tls->in_len = 0;
    return 1;
}

void rm_tls_in_eof(rm_tls_t *tls)
{
    tls->in_eof = 1;
}

void rm_tls_out_data(rm_tls_t *tls, const uint8_t **p, size_t *len)
{
    *p = tls->out != NULL ? tls->out + tls->out_off : NULL;
    *len = tls->out_len - tls->out_off;
}

void rm_tls_out_consume(rm_tls_t *tls, size_t n)
{
    tls->out_off += n;
    if (tls->out_off == tls->out_len) {
        /* everything sent: nothing can be in flight from this buffer any more */
        rm_buf_put(tls->out);
        tls->out = NULL;
        tls->out_off = tls->out_len = 0;
    }
}

int rm_tls_handshake(rm_tls_t *tls)
{
    int r, e;
    char *proto = NULL;
    unsigned short proto_len = 0;

    if (tls->handshake_done)
        return 0;
    if (tls->ctx->role == RM_TLS_SERVER && !tls->hello_judged) {
        if ((r = judge_client_hello(tls)) == RM_ERR_TLS_WANT_IO)
            return r;
        tls->hello_judged = 1;
        if (r != 0)
            return r;
    }
    r = tls->ctx->role == RM_TLS_SERVER ? wolfSSL_accept(tls->ssl) : wolfSSL_connect(tls->ssl);
    if (r != WOLFSSL_SUCCESS) {
        e = wolfSSL_get_error(tls->ssl, r);
        if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
            return RM_ERR_TLS_WANT_IO;
        if (tls->verify_err != 0)
            return tls->verify_err;
        if (e == SOCKET_ERROR_E && tls->in_eof)
            return RM_ERR_TLS_CLOSED;
        return convert_error(e);
    }
    if (tls->verify_err != 0)
        return tls->verify_err;
    /* A peer that does not know our ALPN still completes the handshake: refuse it here where it is required. */
    if ((tls->flags & RM_TLS_REQUIRE_MESH_ALPN) &&
        (wolfSSL_ALPN_GetProtocol(tls->ssl, &proto, &proto_len) != WOLFSSL_SUCCESS ||
         !(alpn_is(proto, proto_len, tls->ctx->alpn) ||
           ((tls->flags & (RM_TLS_ACCEPT_H2 | RM_TLS_OFFER_H2)) && alpn_is(proto, proto_len, RM_TLS_ALPN_H2)))))
        return RM_ERR_TLS_ALPN;
    if (tls->peer_id == NULL && !tls->ctx->no_client_auth)
        return RM_ERR_TLS_NO_PEER_CERT;
    if (wolfSSL_ALPN_GetProtocol(tls->ssl, &proto, &proto_len) == WOLFSSL_SUCCESS)
        tls->alpn_h2 = alpn_is(proto, proto_len, RM_TLS_ALPN_H2);
    tls->handshake_done = 1;
    return 0;
}

int rm_tls_alpn_h2(const rm_tls_t *tls)
{
    return tls->handshake_done && tls->alpn_h2;
}

const char *rm_tls_peer_id(const rm_tls_t *tls)
{
    return tls->peer_id;
}

const char *rm_tls_peer_alert(const rm_tls_t *tls)
{
    WOLFSSL_ALERT_HISTORY h;
    if (tls->ktls_alert >= 0)
        return rm__tls_alert_name(tls->ktls_alert);
    if (tls->ssl == NULL || wolfSSL_get_alert_history(tls->ssl, &h) != WOLFSSL_SUCCESS || h.last_rx.code <= 0)
        return NULL;
    return rm__tls_alert_name(h.last_rx.code);
}

const char *rm_tls_version(const rm_tls_t *tls)
{
    return tls->ssl != NULL ? wolfSSL_get_version(tls->ssl) : tls->version;
}

int rm_tls_read(rm_tls_t *tls, uint8_t *buf, size_t len)
{
    int r, e;
    if (tls->peer_closed)
        return 0;
    if (len > INT32_MAX)
        len = INT32_MAX;
    r = wolfSSL_read(tls->ssl, buf, (int)len);
    if (r > 0)
        return r;
    e = wolfSSL_get_error(tls->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
        return RM_ERR_TLS_WANT_IO;
    if (e == WOLFSSL_ERROR_ZERO_RETURN) {
        tls->peer_closed = 1;
        return 0;
    }
    if (tls->in_eof && (e == SOCKET_ERROR_E || e == SOCKET_PEER_CLOSED_E)) {
        /* TCP FIN without close_notify: the stream ends here (a TCP proxy has no better answer) */
        tls->peer_closed = 1;
        return 0;
    }
    /* a TLS 1.3 server refusing our certificate says so after our side of the handshake is over */
    return e == FATAL_ERROR ? RM_ERR_TLS_PEER_ALERT : RM_ERR_TLS_PROTOCOL;
}

int rm_tls_write(rm_tls_t *tls, const uint8_t *buf, size_t len)
{
    int r, e;
    size_t room;
    if (tls->out == NULL)
        tls->out_large = len > TLS_WRITE_CHUNK; /* more than one record: they go out together, in a large window */
    /* out_len is 0 while no buffer is held */
    room = (tls->out != NULL ? rm_buf_size(tls->out) : tls->out_large ? RM_BUF_LARGE_SIZE : RM_BUF_SIZE) - tls->out_len;
    /* Hand wolfSSL no more than fits as whole records in the free tail, so a write never half-completes. */
    if (room < TLS_WRITE_OVERHEAD + 256)
        return RM_ERR_TLS_WANT_IO;
    room -= TLS_WRITE_OVERHEAD;
    if (len > room)
        len = room;
    if (len > TLS_WRITE_CHUNK)
        len = TLS_WRITE_CHUNK;
    r = wolfSSL_write(tls->ssl, buf, (int)len);
    if (r > 0)
        return r;
    e = wolfSSL_get_error(tls->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_WRITE || e == WOLFSSL_ERROR_WANT_READ)
        return RM_ERR_TLS_WANT_IO;
    return RM_ERR_TLS_PROTOCOL;
}

int rm_tls_close_notify(rm_tls_t *tls)
{
    int r = wolfSSL_shutdown(tls->ssl);
    if (r == WOLFSSL_SUCCESS || r == WOLFSSL_SHUTDOWN_NOT_DONE)
        return 0;
    int e = wolfSSL_get_error(tls->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_WRITE || e == WOLFSSL_ERROR_WANT_READ)
        return 0;
    return RM_ERR_TLS_PROTOCOL;
}

/* ------------------------------------------------------------------ kernel TLS
 *
 * Once the handshake is over, a TLS 1.3 session's record layer is only AEAD sealing and opening with two traffic keys,
 * two static IVs and two sequence numbers. Those are read from wolfSSL (its ATOMIC_USER accessors) and handed to the
 * socket (ktls_linux.c); the kernel then seals what is sent and opens what is received, so plaintext moves between the
 * socket and the other side of the proxy with no record work in user space. The session stays to answer who the peer
 * is. Each direction moves only at a record boundary with nothing of it left in the session: the output window sent,
 * the input window and wolfSSL's input empty, no decrypted byte unread. */

#ifdef ATOMIC_USER
static int ktls_keys(rm_tls_t *tls, int rx, rm__ktls_keys_t *k)
{
    WOLFSSL *ssl = tls->ssl;
    int client = wolfSSL_GetSide(ssl) == WOLFSSL_CLIENT_END;
    int client_keys = client != rx; /* what we send is sealed with our side's keys, what we receive with the peer's */
    int bulk = wolfSSL_GetBulkCipher(ssl), key_len = wolfSSL_GetKeySize(ssl);
    const unsigned char *key = client_keys ? wolfSSL_GetClientWriteKey(ssl) : wolfSSL_GetServerWriteKey(ssl);
    const unsigned char *iv = client_keys ? wolfSSL_GetClientWriteIV(ssl) : wolfSSL_GetServerWriteIV(ssl);
    word64 seq = 0;

    if (wolfSSL_version(ssl) != TLS1_3_VERSION || wolfSSL_GetIVSize(ssl) != (int)sizeof(k->iv) || key == NULL ||
        iv == NULL)
        return RM_ERR_TLS_PROTOCOL;
    if (bulk == wolfssl_aes_gcm && key_len == 16)
        k->cipher = TLS_CIPHER_AES_GCM_128;
    else if (bulk == wolfssl_aes_gcm && key_len == 32)
        k->cipher = TLS_CIPHER_AES_GCM_256;
    else if (bulk == wolfssl_chacha && key_len == 32)
        k->cipher = TLS_CIPHER_CHACHA20_POLY1305;
    else
        return RM_ERR_TLS_PROTOCOL;
    if ((rx ? wolfSSL_GetPeerSequenceNumber(ssl, &seq) : wolfSSL_GetSequenceNumber(ssl, &seq)) < 0)
        return RM_ERR_TLS_PROTOCOL;
    memcpy(k->key, key, (size_t)key_len);
    k->key_len = (size_t)key_len;
    memcpy(k->iv, iv, sizeof(k->iv));
    k->seq = seq;
    return 0;
}
#endif

static int ktls_start(rm_tls_t *tls, int fd, int rx)
{
#ifdef ATOMIC_USER
    rm__ktls_keys_t k;
    int ret;
    if ((ret = ktls_keys(tls, rx, &k)) == 0)
        ret = rm__ktls_install(fd, rx, &k);
    explicit_bzero(&k, sizeof(k));
    if (ret == 0) {
        /* the direction's window, empty now, is never used again */
        if (rx) {
            tls->ktls_rx = 1;
            rm_buf_put(tls->in);
            tls->in = NULL;
            tls->in_off = tls->in_len = 0;
        } else {
            tls->ktls_tx = 1;
            rm_buf_put(tls->out);
            tls->out = NULL;
            tls->out_off = tls->out_len = 0;
        }
    }
    return ret;
#else
    (void)tls, (void)fd, (void)rx;
    return RM_ERR_TLS_PROTOCOL; /* this wolfSSL gives no access to its traffic keys */
#endif
}

int rm_tls_ktls_start_tx(rm_tls_t *tls, int fd)
{
    if (!tls->handshake_done || tls->ssl == NULL)
        return RM_ERR_TLS_PROTOCOL;
    if (tls->ktls_tx)
        return 0;
    if (tls->out != NULL && tls->out_off < tls->out_len)
        return RM_ERR_TLS_WANT_IO;
    return ktls_start(tls, fd, 0);
}

int rm_tls_ktls_start_rx(rm_tls_t *tls, int fd, size_t *need)
{
    *need = 0;
    if (!tls->handshake_done || tls->ssl == NULL)
        return RM_ERR_TLS_PROTOCOL;
    if (tls->ktls_rx)
        return 0;
    if (tls->in != NULL && tls->in_off < tls->in_len)
        return RM_ERR_TLS_WANT_IO; /* ciphertext to give wolfSSL first */
    if (tls->hdr_have != 0 || tls->rec_left != 0) {
        /* wolfSSL holds part of a record: receive exactly the rest of it (the header first, when that is partial) */
        *need = tls->hdr_have != 0 ? 5u - tls->hdr_have : tls->rec_left;
        return RM_ERR_TLS_WANT_IO;
    }
    if (wolfSSL_pending(tls->ssl) > 0 || tls->peer_closed || tls->in_eof)
        return RM_ERR_TLS_WANT_IO; /* plaintext to read first; or nothing more will come */
    return ktls_start(tls, fd, 1);
}

int rm_tls_ktls_read_control(rm_tls_t *tls, int fd)
{
    int alert, r = rm__ktls_read_control(fd, &alert);
    if (alert >= 0)
        tls->ktls_alert = alert;
    if (r == 0)
        tls->peer_closed = 1;
    return r;
}

int rm__tls_key_update(rm_tls_t *tls)
{
    int r = wolfSSL_update_keys(tls->ssl);
    if (r == WOLFSSL_SUCCESS || wolfSSL_get_error(tls->ssl, r) == WOLFSSL_ERROR_WANT_WRITE)
        return 0;
    return RM_ERR_TLS_PROTOCOL;
}

int rm__tls_send_ticket(rm_tls_t *tls)
{
#if defined(HAVE_SESSION_TICKET) && !defined(NO_WOLFSSL_SERVER)
    int r = wolfSSL_send_SessionTicket(tls->ssl);
    if (r == WOLFSSL_SUCCESS || wolfSSL_get_error(tls->ssl, r) == WOLFSSL_ERROR_WANT_WRITE)
        return 0;
#endif
    return RM_ERR_TLS_PROTOCOL;
}

void rm_tls_ktls_release(rm_tls_t *tls)
{
    if (!tls->ktls_tx || !tls->ktls_rx || tls->ssl == NULL)
        return;
    tls->version = wolfSSL_get_version(tls->ssl); /* a static string */
    wolfSSL_free(tls->ssl);                       /* the windows went back when each direction was handed over */
    tls->ssl = NULL;
}
