/* The TLS backend end to end in memory: a client and a server session exchange their output windows directly.
 * Certificates are made at test time with the openssl CLI (an independent encoder). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/buffer_pool.h"
#include "ringmesh/error.h"
#include "ringmesh/slab.h"
#include "ringmesh/svid.h"
#include "ringmesh/tls.h"
#include "tls_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/rm-tls-test-XXXXXX";

/* A workload ID of exactly RM_SPIFFE_ID_MAX bytes, the longest a SPIFFE ID may be. */
static char long_id[RM_SPIFFE_ID_MAX + 1];

/* tests/CMakeLists.txt links this test with --wrap=malloc, --wrap=rm_slab_alloc and --wrap=rm_slab_strndup, so that
 * what a handshake allocates can be seen: every allocation the size of a parsed SPIFFE ID, from the heap or the slab,
 * and every copy of a string to the slab (where the session keeps the peer's ID, ringmesh/slab.h). */
static size_t id_sized_allocs, strndups;
void *__real_malloc(size_t n);
void *__real_rm_slab_alloc(size_t n);
char *__real_rm_slab_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
    if (n == sizeof(rm_spiffe_id_t))
        ++id_sized_allocs;
    return __real_malloc(n);
}

void *__wrap_rm_slab_alloc(size_t n)
{
    if (n == sizeof(rm_spiffe_id_t))
        ++id_sized_allocs;
    return __real_rm_slab_alloc(n);
}

char *__wrap_rm_slab_strndup(const char *s, size_t n)
{
    ++strndups;
    return __real_rm_slab_strndup(s, n);
}

static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

/* openssl 3.0's "x509 -req" cannot set arbitrary dates, so leaves are signed with "openssl ca". */
static void write_ca_config(void)
{
    sh("cd %s && mkdir -p newcerts && : > index.txt && echo 1000 > serial && cat > ca.cnf <<'EOF'\n"
       "[ca]\ndefault_ca = t\n[t]\ndatabase = index.txt\nnew_certs_dir = newcerts\nserial = serial\n"
       "default_md = sha256\npolicy = p\nunique_subject = no\ncopy_extensions = none\n[p]\nCN = supplied\n"
       "[req]\ndistinguished_name = dn\n[dn]\n"
       "[leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
       "extendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = $ENV::RM_SAN\nEOF",
       dir);
}

/* make_ca NAME: self-signed P-256 root */
static void make_ca(const char *name)
{
    sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.pem "
       "-days 2 -subj /O=test/CN=%s -addext basicConstraints=critical,CA:TRUE "
       "-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null",
       dir, name, name, name);
}

/* make_leaf NAME CA URI START END: an SVID signed by CA, dates as YYMMDDHHMMSSZ */
static void make_leaf(const char *name, const char *ca, const char *uri, const char *start, const char *end)
{
    sh("cd %s && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.csr "
       "-subj /CN=%s 2>/dev/null && RM_SAN=URI:%s openssl ca -config ca.cnf -batch -notext -cert %s.pem "
       "-keyfile %s.key -in %s.csr -out %s.pem -extensions leaf -startdate %s -enddate %s 2>/dev/null",
       dir, name, name, name, uri, ca, ca, name, name, start, end);
}

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    char *buf;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "rb"));
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(*len + 1);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static rm_tls_ctx_t *make_ctx(rm_tls_role_t role, const char *leaf, const char *bundle, const char *td, int *err_out)
{
    char certf[64], keyf[64], err[256];
    size_t cl, kl, bl;
    rm_tls_ctx_t *ctx = NULL;
    snprintf(certf, sizeof(certf), "%s.pem", leaf);
    snprintf(keyf, sizeof(keyf), "%s.key", leaf);
    char *cert = slurp(certf, &cl), *key = slurp(keyf, &kl), *b = slurp(bundle, &bl);
    rm_tls_ctx_config_t cfg = {cert, cl, key, kl, b, bl, td, NULL, NULL, 0, 0, 0};
    int ret = rm_tls_ctx_new(&ctx, role, &cfg, err, sizeof(err));
    if (err_out != NULL)
        *err_out = ret;
    else if (ret != 0)
        fail_msg("ctx: %s", err);
    free(cert), free(key), free(b);
    return ctx;
}

/* At most this many bytes move per step (0: no limit); small values split record headers and bodies. */
static size_t shuttle_chunk;

/* Moves each side's output into the other's input until neither makes progress. */
static void shuttle(rm_tls_t *a, rm_tls_t *b)
{
    for (int moved = 1, i = 0; moved && i < 1000000; i++) {
        moved = 0;
        rm_tls_t *pair[2][2] = {{a, b}, {b, a}};
        for (int k = 0; k < 2; k++) {
            const uint8_t *p;
            size_t n, room;
            uint8_t *dst;
            rm_tls_out_data(pair[k][0], &p, &n);
            if (n == 0)
                continue;
            assert_int_equal(rm_tls_in_space(pair[k][1], &dst, &room), 0);
            if (n > room)
                n = room;
            if (shuttle_chunk != 0 && n > shuttle_chunk)
                n = shuttle_chunk;
            memcpy(dst, p, n);
            rm_tls_in_commit(pair[k][1], n);
            rm_tls_out_consume(pair[k][0], n);
            moved = 1;
        }
    }
}

/* Runs both handshakes to completion or failure. */
static void handshake(rm_tls_t *cli, rm_tls_t *srv, int *cr, int *sr)
{
    *cr = *sr = RM_ERR_TLS_WANT_IO;
    for (int i = 0; i < 20 && (*cr == RM_ERR_TLS_WANT_IO || *sr == RM_ERR_TLS_WANT_IO); i++) {
        if (*cr == RM_ERR_TLS_WANT_IO)
            *cr = rm_tls_handshake(cli);
        shuttle(cli, srv);
        if (*sr == RM_ERR_TLS_WANT_IO)
            *sr = rm_tls_handshake(srv);
        shuttle(cli, srv);
    }
}

static int setup(void **state)
{
    assert_non_null(mkdtemp(dir));
    assert_int_equal(rm_tls_global_init(), 0);
    write_ca_config();
    make_ca("ca");
    make_ca("otherca");
    sh("cd %s && cat ca.pem otherca.pem > both.pem", dir);
    make_leaf("client", "ca", "spiffe://cluster.local/ns/a/sa/client", "200101000000Z", "491231000000Z");
    make_leaf("server", "ca", "spiffe://cluster.local/ns/b/sa/server", "200101000000Z", "491231000000Z");
    make_leaf("expired", "ca", "spiffe://cluster.local/ns/b/sa/server", "200101000000Z", "210101000000Z");
    make_leaf("foreign", "otherca", "spiffe://cluster.local/ns/b/sa/server", "200101000000Z", "491231000000Z");
    make_leaf("othertd", "ca", "spiffe://example.org/ns/b/sa/server", "200101000000Z", "491231000000Z");
    snprintf(long_id, sizeof(long_id), "spiffe://cluster.local/ns/b/sa/");
    memset(long_id + strlen(long_id), 'x', RM_SPIFFE_ID_MAX - strlen(long_id));
    make_leaf("longid", "ca", long_id, "200101000000Z", "491231000000Z");
    return 0;
}

static int teardown(void **state)
{
    sh("rm -rf %s", dir);
    return 0;
}

static const char *server_ids[] = {"spiffe://cluster.local/ns/b/sa/server"};

static void test_handshake_and_data(void **state)
{
    rm_tls_ctx_t *cc = make_ctx(RM_TLS_CLIENT, "client", "ca.pem", "cluster.local", NULL);
    rm_tls_ctx_t *sc = make_ctx(RM_TLS_SERVER, "server", "ca.pem", "cluster.local", NULL);
    rm_tls_t *cli, *srv;
    int cr, sr;
    uint8_t buf[40000];
    static uint8_t big[100000];

    assert_string_equal(rm_tls_ctx_id(cc)->str, "spiffe://cluster.local/ns/a/sa/client");
    assert_int_equal(rm_tls_new(&cli, cc, server_ids, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    handshake(cli, srv, &cr, &sr);
    assert_int_equal(cr, 0);
    assert_int_equal(sr, 0);
    assert_string_equal(rm_tls_peer_id(cli), "spiffe://cluster.local/ns/b/sa/server");
    assert_string_equal(rm_tls_peer_id(srv), "spiffe://cluster.local/ns/a/sa/client");
    assert_string_equal(rm_tls_version(cli), "TLSv1.3");

    /* 100 kB through the client's writes, in as many records as the window allows, arrives intact */
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 31 + 7);
    size_t sent = 0, got = 0;
    static uint8_t recv_all[100000];
    for (int iter = 0; iter < 1000 && got < sizeof(big); iter++) {
        if (sent < sizeof(big)) {
            int w = rm_tls_write(cli, big + sent, sizeof(big) - sent);
            assert_true(w > 0 || w == RM_ERR_TLS_WANT_IO);
            if (w > 0)
                sent += (size_t)w;
        }
        shuttle(cli, srv);
        for (;;) {
            int r = rm_tls_read(srv, buf, sizeof(buf));
            if (r == RM_ERR_TLS_WANT_IO)
                break;
            assert_true(r > 0);
            memcpy(recv_all + got, buf, (size_t)r);
            got += (size_t)r;
        }
    }
    assert_int_equal(got, sizeof(big));
    assert_memory_equal(recv_all, big, sizeof(big));

    /* close_notify from the client ends the server's reading with 0; the server can still answer (half-close) */
    assert_int_equal(rm_tls_close_notify(cli), 0);
    shuttle(cli, srv);
    assert_int_equal(rm_tls_read(srv, buf, sizeof(buf)), 0);
    int w = rm_tls_write(srv, (const uint8_t *)"bye", 3);
    assert_int_equal(w, 3);
    shuttle(cli, srv);
    assert_int_equal(rm_tls_read(cli, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "bye", 3);

    rm_tls_free(cli);
    rm_tls_free(srv);
    rm_tls_ctx_unref(cc);
    rm_tls_ctx_unref(sc);
}

/* Ciphertext arriving in pieces of every small size, splitting record headers and bodies anywhere, still yields
 * the exact byte stream (the backend hands wolfSSL one record at a time and tracks headers across pieces). */
static void test_fragmented_ciphertext(void **state)
{
    static const size_t chunks[] = {1, 2, 3, 4, 5, 6, 7, 13, 4096, 16389};
    rm_tls_ctx_t *cc = make_ctx(RM_TLS_CLIENT, "client", "ca.pem", "cluster.local", NULL);
    rm_tls_ctx_t *sc = make_ctx(RM_TLS_SERVER, "server", "ca.pem", "cluster.local", NULL);
    static uint8_t big[40000], got[40000];
    uint8_t buf[20000];

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 13 + 5);
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        rm_tls_t *cli, *srv;
        int cr, sr;
        size_t sent = 0, have = 0;
        shuttle_chunk = chunks[k];
        assert_int_equal(rm_tls_new(&cli, cc, server_ids, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
        assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
        handshake(cli, srv, &cr, &sr);
        assert_int_equal(cr, 0);
        assert_int_equal(sr, 0);
        for (int iter = 0; iter < 100000 && have < sizeof(big); iter++) {
            if (sent < sizeof(big)) {
                int w = rm_tls_write(cli, big + sent, sizeof(big) - sent);
                if (w > 0)
                    sent += (size_t)w;
            }
            shuttle(cli, srv);
            for (;;) {
                int r = rm_tls_read(srv, buf, sizeof(buf));
                if (r == RM_ERR_TLS_WANT_IO)
                    break;
                assert_true(r > 0);
                memcpy(got + have, buf, (size_t)r);
                have += (size_t)r;
            }
        }
        assert_int_equal(have, sizeof(big));
        assert_memory_equal(got, big, sizeof(big));
        rm_tls_free(cli);
        rm_tls_free(srv);
    }
    shuttle_chunk = 0;
    rm_tls_ctx_unref(cc);
    rm_tls_ctx_unref(sc);
}

/* Writes as many records of `data` as the client's output window takes; returns the bytes written. */
static size_t write_until_full(rm_tls_t *cli, const uint8_t *data, size_t len)
{
    size_t sent = 0;
    for (;;) {
        int w = rm_tls_write(cli, data + sent, len - sent);
        if (w == RM_ERR_TLS_WANT_IO || sent == len)
            return sent;
        assert_true(w > 0);
        sent += (size_t)w;
    }
}

/* A stream's records go out many to a window, and come in many to a window: given more than one record's worth with
 * no window held, a write takes a large one; a session asked for large input windows moves what its small one holds
 * (a partial record) into a large one and reads on; both are back to small, one-record windows for small writes and
 * after a release. */
static void test_large_windows(void **state)
{
    rm_tls_ctx_t *cc = make_ctx(RM_TLS_CLIENT, "client", "ca.pem", "cluster.local", NULL);
    rm_tls_ctx_t *sc = make_ctx(RM_TLS_SERVER, "server", "ca.pem", "cluster.local", NULL);
    rm_tls_t *cli, *srv;
    int cr, sr;
    static uint8_t big[RM_BUF_LARGE_SIZE * 2], got[RM_BUF_LARGE_SIZE * 2];
    const uint8_t *p;
    uint8_t *dst;
    size_t n, room, have = 0;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(rm_tls_new(&cli, cc, server_ids, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    handshake(cli, srv, &cr, &sr);
    assert_int_equal(cr, 0);
    assert_int_equal(sr, 0);

    /* one record's worth at a time: a small window, full after one record and a short one in its tail */
    size_t sent = write_until_full(cli, big, 16384);
    assert_int_equal(sent, 16384);
    sent += write_until_full(cli, big + sent, 16384);
    assert_true(sent < 16384 + 1024);
    rm_tls_out_data(cli, &p, &n);
    assert_true(n > 16384 && n <= RM_BUF_SIZE);
    assert_int_equal(rm_tls_in_space(srv, &dst, &room), 0);
    assert_int_equal(room, RM_BUF_SIZE);

    /* the server's small window gets the first 1000 bytes of that record: part of it held */
    memcpy(dst, p, 1000);
    rm_tls_in_commit(srv, 1000);
    rm_tls_out_consume(cli, 1000);
    assert_int_equal(rm_tls_read(srv, got, sizeof(got)), RM_ERR_TLS_WANT_IO);
    /* asked for large windows, it moves those bytes into one and takes the rest of the record behind them */
    rm_tls_in_want_large(srv, 1);
    assert_int_equal(rm_tls_in_space(srv, &dst, &room), 0);
    rm_tls_out_data(cli, &p, &n);
    assert_true(room >= RM_BUF_LARGE_SIZE - 1000);
    memcpy(dst, p, n);
    rm_tls_in_commit(srv, n);
    rm_tls_out_consume(cli, n);
    int r;
    while ((r = rm_tls_read(srv, got + have, sizeof(got) - have)) > 0)
        have += (size_t)r;
    assert_int_equal(r, RM_ERR_TLS_WANT_IO);
    assert_int_equal(have, sent);
    assert_memory_equal(got, big, have);

    /* more than a record's worth with no window held: one large window takes many records */
    size_t first = have;
    sent = write_until_full(cli, big + have, sizeof(big) - have);
    assert_true(sent >= 12 * 16384);
    rm_tls_out_data(cli, &p, &n);
    assert_true(n > RM_BUF_SIZE && n <= RM_BUF_LARGE_SIZE);
    /* ... and the large input window takes them all in one piece */
    assert_int_equal(rm_tls_in_space(srv, &dst, &room), 0);
    assert_true(room >= n);
    memcpy(dst, p, n);
    rm_tls_in_commit(srv, n);
    rm_tls_out_consume(cli, n);
    while ((r = rm_tls_read(srv, got + have, sizeof(got) - have)) > 0)
        have += (size_t)r;
    assert_int_equal(r, RM_ERR_TLS_WANT_IO);
    assert_int_equal(have, first + sent);
    assert_memory_equal(got, big, have);

    /* back to small: released, the next window is one record again */
    rm_tls_in_want_large(srv, 0);
    assert_int_equal(rm_tls_in_release(srv), 1);
    assert_int_equal(rm_tls_in_space(srv, &dst, &room), 0);
    assert_int_equal(room, RM_BUF_SIZE);

    rm_tls_free(cli);
    rm_tls_free(srv);
    rm_tls_ctx_unref(cc);
    rm_tls_ctx_unref(sc);
}

/* Runs a handshake where the server uses `server_leaf` and returns the client's result. */
static int client_result_against(const char *server_leaf, const char *const *ids, size_t n)
{
    rm_tls_ctx_t *cc = make_ctx(RM_TLS_CLIENT, "client", "ca.pem", "cluster.local", NULL);
    int err = 0;
    /* a server context refuses to load an invalid own SVID, so build the server with a bundle that accepts it */
    const char *bundle = strcmp(server_leaf, "foreign") == 0 ? "otherca.pem" : "ca.pem";
    rm_tls_ctx_t *sc = make_ctx(RM_TLS_SERVER, server_leaf, bundle,
                                strcmp(server_leaf, "othertd") == 0 ? "example.org" : "cluster.local", &err);
    if (sc == NULL)
        return 1000 + err; /* reported separately */
    rm_tls_t *cli, *srv;
    int cr, sr;
    assert_int_equal(rm_tls_new(&cli, cc, ids, n, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    handshake(cli, srv, &cr, &sr);
    rm_tls_free(cli);
    rm_tls_free(srv);
    rm_tls_ctx_unref(cc);
    rm_tls_ctx_unref(sc);
    return cr;
}

static void test_wrong_identity_refused(void **state)
{
    const char *want[] = {"spiffe://cluster.local/ns/b/sa/orders"};
    assert_int_equal(client_result_against("server", want, 1), RM_ERR_SVID_UNEXPECTED_ID);
    /* the right one among several is accepted */
    const char *several[] = {"spiffe://cluster.local/ns/b/sa/orders", "spiffe://cluster.local/ns/b/sa/server"};
    assert_int_equal(client_result_against("server", several, 2), 0);
}

static void test_untrusted_and_foreign_domain_refused(void **state)
{
    assert_int_equal(client_result_against("foreign", server_ids, 1), RM_ERR_TLS_UNTRUSTED);
    const char *td_ids[] = {"spiffe://example.org/ns/b/sa/server"};
    assert_int_equal(client_result_against("othertd", td_ids, 1), RM_ERR_SVID_TRUST_DOMAIN);
}

/* A context configured with trust domain aliases (a proxy's authorization.trustDomainAliases) accepts peers of those
 * trust domains too; without them the same peer is refused. */
static rm_tls_ctx_t *make_ctx_aliases(rm_tls_role_t role, const char *leaf, const char *td, const char *alias)
{
    char certf[64], keyf[64], err[256];
    size_t cl, kl, bl;
    rm_tls_ctx_t *ctx = NULL;
    const char *aliases[] = {alias};
    snprintf(certf, sizeof(certf), "%s.pem", leaf);
    snprintf(keyf, sizeof(keyf), "%s.key", leaf);
    char *cert = slurp(certf, &cl), *key = slurp(keyf, &kl), *b = slurp("ca.pem", &bl);
    rm_tls_ctx_config_t cfg = {cert, cl, key, kl, b, bl, td, NULL, alias != NULL ? aliases : NULL, alias != NULL, 0, 0};
    if (rm_tls_ctx_new(&ctx, role, &cfg, err, sizeof(err)) != 0)
        fail_msg("ctx: %s", err);
    free(cert), free(key), free(b);
    return ctx;
}

static void test_trust_domain_aliases(void **state)
{
    for (int with_alias = 0; with_alias < 2; with_alias++) {
        /* client: spiffe://example.org/ns/b/sa/server; server: spiffe://cluster.local/ns/b/sa/server */
        rm_tls_ctx_t *cc = make_ctx_aliases(RM_TLS_CLIENT, "othertd", "example.org", "cluster.local");
        rm_tls_ctx_t *sc =
            make_ctx_aliases(RM_TLS_SERVER, "server", "cluster.local", with_alias ? "example.org" : NULL);
        rm_tls_t *cli, *srv;
        int cr, sr;
        assert_int_equal(rm_tls_new(&cli, cc, server_ids, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
        assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
        handshake(cli, srv, &cr, &sr);
        assert_int_equal(sr, with_alias ? 0 : RM_ERR_SVID_TRUST_DOMAIN);
        if (with_alias)
            assert_string_equal(rm_tls_peer_id(srv), "spiffe://example.org/ns/b/sa/server");
        rm_tls_free(cli);
        rm_tls_free(srv);
        rm_tls_ctx_unref(cc);
        rm_tls_ctx_unref(sc);
    }
    /* the own certificate must still be of the trust domain itself */
    const char *aliases[] = {"example.org"};
    char err[256];
    size_t cl, kl, bl;
    char *cert = slurp("othertd.pem", &cl), *key = slurp("othertd.key", &kl), *b = slurp("ca.pem", &bl);
    rm_tls_ctx_config_t cfg = {cert, cl, key, kl, b, bl, "cluster.local", NULL, aliases, 1, 0, 0};
    rm_tls_ctx_t *ctx = NULL;
    assert_int_equal(rm_tls_ctx_new(&ctx, RM_TLS_SERVER, &cfg, err, sizeof(err)), RM_ERR_SVID_TRUST_DOMAIN);
    assert_null(ctx);
    free(cert), free(key), free(b);
}

/* A certificate from outside the mesh (cert-manager's for the webhook): a server that asks no client certificate
 * may serve one that is not an SVID of its trust domain, still held to its key; nothing else may. */
static void test_foreign_cert_server_only(void **state)
{
    char err[256];
    size_t cl, kl, bl, ol;
    char *cert = slurp("othertd.pem", &cl), *key = slurp("othertd.key", &kl), *b = slurp("ca.pem", &bl),
         *other_key = slurp("server.key", &ol);
    rm_tls_ctx_config_t cfg = {cert, cl, key, kl, b, bl, "cluster.local", "http/1.1", NULL, 0, 1, 1};
    rm_tls_ctx_t *ctx = NULL;
    (void)state;

    assert_int_equal(rm_tls_ctx_new(&ctx, RM_TLS_SERVER, &cfg, err, sizeof(err)), 0);
    rm_tls_ctx_unref(ctx);
    ctx = NULL;
    /* still held to its key */
    cfg.key_pem = other_key;
    cfg.key_len = ol;
    assert_int_equal(rm_tls_ctx_new(&ctx, RM_TLS_SERVER, &cfg, err, sizeof(err)), RM_ERR_TLS_CONFIG);
    assert_null(ctx);
    cfg.key_pem = key;
    cfg.key_len = kl;
    /* not for a server that asks for client certificates, nor for a client */
    cfg.no_client_auth = 0;
    assert_int_equal(rm_tls_ctx_new(&ctx, RM_TLS_SERVER, &cfg, err, sizeof(err)), RM_ERR_TLS_CONFIG);
    assert_non_null(strstr(err, "outside the mesh"));
    assert_int_equal(rm_tls_ctx_new(&ctx, RM_TLS_CLIENT, &cfg, err, sizeof(err)), RM_ERR_TLS_CONFIG);
    assert_null(ctx);
    free(cert), free(key), free(b), free(other_key);
}

static void test_expired_refused_and_not_loaded(void **state)
{
    int err = 0;
    /* our own expired SVID is never loaded for presenting */
    assert_null(make_ctx(RM_TLS_SERVER, "expired", "ca.pem", "cluster.local", &err));
    assert_int_not_equal(err, 0);
}

static void test_client_from_untrusted_ca_refused_by_server(void **state)
{
    /* a client whose SVID chains to a CA outside the server's bundle is refused by the server, with that reason */
    /* the client trusts both roots (so it accepts the server) but holds an SVID the server's bundle does not */
    rm_tls_ctx_t *cc = make_ctx(RM_TLS_CLIENT, "foreign", "both.pem", "cluster.local", NULL);
    rm_tls_ctx_t *sc = make_ctx(RM_TLS_SERVER, "server", "ca.pem", "cluster.local", NULL);
    rm_tls_t *cli, *srv;
    int cr, sr;
    assert_int_equal(rm_tls_new(&cli, cc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    handshake(cli, srv, &cr, &sr);
    assert_int_equal(sr, RM_ERR_TLS_UNTRUSTED);
    /* in TLS 1.3 the client finishes before the server judges its certificate: it learns of the refusal from the
     * server's alert on its first read, which must fail rather than wait */
    uint8_t buf[64];
    shuttle(cli, srv);
    int r = cr == 0 ? rm_tls_read(cli, buf, sizeof(buf)) : cr;
    assert_int_equal(r, RM_ERR_TLS_PEER_ALERT); /* said as the peer's refusal, not as a broken record */
    /* the alert is named as the IANA registry names it: the server does not know the client's CA */
    assert_non_null(rm_tls_peer_alert(cli));
    assert_string_equal(rm_tls_peer_alert(cli), "unknown_ca");
    /* the refusal still names who presented the certificate */
    assert_non_null(rm_tls_peer_id(srv));
    assert_string_equal(rm_tls_peer_id(srv), "spiffe://cluster.local/ns/b/sa/server");
    rm_tls_free(cli);
    rm_tls_free(srv);
    rm_tls_ctx_unref(cc);
    rm_tls_ctx_unref(sc);
}

/* A context with another ALPN, and a client context without a certificate (used to reach the control plane before
 * the first SVID): it still checks the server's SVID, and a server that requires client certificates refuses it. */
static rm_tls_ctx_t *ctx_with(rm_tls_role_t role, const char *leaf, const char *alpn)
{
    char certf[64], keyf[64], err[256];
    size_t cl = 0, kl = 0, bl;
    char *cert = NULL, *key = NULL, *b = slurp("ca.pem", &bl);
    rm_tls_ctx_t *ctx = NULL;
    if (leaf != NULL) {
        snprintf(certf, sizeof(certf), "%s.pem", leaf);
        snprintf(keyf, sizeof(keyf), "%s.key", leaf);
        cert = slurp(certf, &cl);
        key = slurp(keyf, &kl);
    }
    rm_tls_ctx_config_t cfg = {cert, cl, key, kl, b, bl, "cluster.local", alpn, NULL, 0, 0, 0};
    if (rm_tls_ctx_new(&ctx, role, &cfg, err, sizeof(err)) != 0)
        fail_msg("ctx: %s", err);
    free(cert), free(key), free(b);
    return ctx;
}

static int handshake_result(rm_tls_ctx_t *cc, rm_tls_ctx_t *sc, int *server_result)
{
    rm_tls_t *cli, *srv;
    int cr, sr;
    assert_int_equal(rm_tls_new(&cli, cc, server_ids, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    handshake(cli, srv, &cr, &sr);
    rm_tls_free(cli);
    rm_tls_free(srv);
    if (server_result != NULL)
        *server_result = sr;
    return cr;
}

static void test_alpn_and_certless_client(void **state)
{
    rm_tls_ctx_t *h2_client = ctx_with(RM_TLS_CLIENT, "client", "h2"),
                 *h2_server = ctx_with(RM_TLS_SERVER, "server", "h2");
    rm_tls_ctx_t *mesh_server = ctx_with(RM_TLS_SERVER, "server", NULL), *bare = ctx_with(RM_TLS_CLIENT, NULL, "h2");
    int sr;

    assert_int_equal(handshake_result(h2_client, h2_server, &sr), 0); /* h2 on both sides */
    assert_int_equal(sr, 0);
    assert_int_not_equal(handshake_result(h2_client, mesh_server, &sr), 0); /* h2 against ringmesh/1 */
    assert_int_equal(sr, RM_ERR_TLS_ALPN);
    /* no client certificate: the client still verifies the server (TLS 1.3 lets it finish first), and our servers,
     * which require one, refuse it */
    assert_int_equal(handshake_result(bare, h2_server, &sr), 0);
    assert_int_equal(sr, RM_ERR_TLS_NO_PEER_CERT);
    assert_string_equal(rm_tls_ctx_id(bare)->str, "");
    rm_tls_ctx_unref(h2_client);
    rm_tls_ctx_unref(h2_server);
    rm_tls_ctx_unref(mesh_server);
    rm_tls_ctx_unref(bare);
}

/* The inbound's mesh server accepts the pooled request connections' ringmesh/h2 beside ringmesh/1 when the session
 * asks for it (RM_TLS_ACCEPT_H2), and tells which one was negotiated; without the flag ringmesh/h2 is refused. */
static int mesh_handshake(rm_tls_ctx_t *cc, rm_tls_ctx_t *sc, unsigned server_flags, int *server_result, int *h2)
{
    rm_tls_t *cli, *srv;
    int cr, sr;
    assert_int_equal(rm_tls_new(&cli, cc, server_ids, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN | server_flags), 0);
    handshake(cli, srv, &cr, &sr);
    *h2 = rm_tls_alpn_h2(srv);
    assert_int_equal(rm_tls_alpn_h2(cli), *h2 && cr == 0);
    rm_tls_free(cli);
    rm_tls_free(srv);
    *server_result = sr;
    return cr;
}

static void test_server_accepts_h2_alpn(void **state)
{
    rm_tls_ctx_t *h2_client = ctx_with(RM_TLS_CLIENT, "client", RM_TLS_ALPN_H2),
                 *mesh_client = ctx_with(RM_TLS_CLIENT, "client", NULL),
                 *mesh_server = ctx_with(RM_TLS_SERVER, "server", NULL),
                 *other_client = ctx_with(RM_TLS_CLIENT, "client", "h2");
    int sr, h2;

    assert_int_equal(mesh_handshake(h2_client, mesh_server, RM_TLS_ACCEPT_H2, &sr, &h2), 0);
    assert_int_equal(sr, 0);
    assert_int_equal(h2, 1);
    assert_int_equal(mesh_handshake(mesh_client, mesh_server, RM_TLS_ACCEPT_H2, &sr, &h2), 0);
    assert_int_equal(sr, 0);
    assert_int_equal(h2, 0);
    /* without the flag, as before: ringmesh/h2 is not the server's protocol */
    assert_int_not_equal(mesh_handshake(h2_client, mesh_server, 0, &sr, &h2), 0);
    assert_int_equal(sr, RM_ERR_TLS_ALPN);
    assert_int_equal(h2, 0);
    /* another protocol is still refused */
    assert_int_not_equal(mesh_handshake(other_client, mesh_server, RM_TLS_ACCEPT_H2, &sr, &h2), 0);
    assert_int_equal(sr, RM_ERR_TLS_ALPN);
    rm_tls_ctx_unref(h2_client);
    rm_tls_ctx_unref(mesh_client);
    rm_tls_ctx_unref(mesh_server);
    rm_tls_ctx_unref(other_client);
}

/* A server context with no_client_auth (the admission webhook's HTTPS): it asks for no client certificate, so a
 * client without one completes the handshake (where a mesh server refuses it, above), a client that offers another
 * ALPN is not refused for it, and data flows both ways. */
static void test_server_without_client_auth(void **state)
{
    (void)state;
    char err[256];
    size_t cl, kl, bl;
    char *cert = slurp("server.pem", &cl), *key = slurp("server.key", &kl), *b = slurp("ca.pem", &bl);
    rm_tls_ctx_config_t cfg = {cert, cl, key, kl, b, bl, "cluster.local", "http/1.1", NULL, 0, 1, 0};
    rm_tls_ctx_t *sc = NULL, *bare = ctx_with(RM_TLS_CLIENT, NULL, "h2"),
                 *withcert = ctx_with(RM_TLS_CLIENT, "client", "http/1.1");
    rm_tls_t *cli, *srv;
    uint8_t buf[16];
    int cr, sr;

    if (rm_tls_ctx_new(&sc, RM_TLS_SERVER, &cfg, err, sizeof(err)) != 0)
        fail_msg("ctx: %s", err);
    free(cert), free(key), free(b);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rm_tls_new(&cli, i == 0 ? bare : withcert, server_ids, 1, 0), 0);
        assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, 0), 0);
        handshake(cli, srv, &cr, &sr);
        assert_int_equal(cr, 0);
        assert_int_equal(sr, 0);
        assert_int_equal(rm_tls_write(cli, (const uint8_t *)"ping", 4), 4);
        shuttle(cli, srv);
        assert_int_equal(rm_tls_read(srv, buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "ping", 4);
        assert_int_equal(rm_tls_write(srv, (const uint8_t *)"pong", 4), 4);
        shuttle(srv, cli);
        assert_int_equal(rm_tls_read(cli, buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "pong", 4);
        rm_tls_free(cli);
        rm_tls_free(srv);
    }
    rm_tls_ctx_unref(sc);
    rm_tls_ctx_unref(bare);
    rm_tls_ctx_unref(withcert);
}

/* One full handshake between fresh sessions of the two contexts; both must succeed. */
static void handshake_once(rm_tls_ctx_t *cc, rm_tls_ctx_t *sc)
{
    rm_tls_t *cli, *srv;
    int cr, sr;
    assert_int_equal(rm_tls_new(&cli, cc, server_ids, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    handshake(cli, srv, &cr, &sr);
    assert_int_equal(cr, 0);
    assert_int_equal(sr, 0);
    rm_tls_free(cli);
    rm_tls_free(srv);
}

/* One rm__tls_ecdsa_verify call: its verdict, and how it was reached (computed or remembered). */
static void expect_verify_as(int remember, const uint8_t *key, size_t key_len, const uint8_t *hash, const uint8_t *sig,
                             size_t sig_len, int want_valid, uint64_t want_computed, uint64_t want_remembered)
{
    rm_tls_verify_stats_t before = rm_tls_thread_verify_stats(), after;
    int valid = !want_valid;
    rm__tls_ecdsa_verify(key, key_len, hash, 32, sig, sig_len, remember, &valid);
    after = rm_tls_thread_verify_stats();
    assert_int_equal(valid, want_valid);
    assert_int_equal(after.computed - before.computed, want_computed);
    assert_int_equal(after.remembered - before.remembered, want_remembered);
}

#define expect_verify(...) expect_verify_as(1, __VA_ARGS__)

/* The remembered ECDSA verifications answer only for the exact (key, hash, signature) that verified: a changed
 * signature, hash or key is computed again, and fails. */
static void test_signature_memo(void **state)
{
    size_t key_len, other_len, sig_len, hash_len;
    int valid;

    sh("cd %s && openssl ecparam -name prime256v1 -genkey -noout -out memo.key && "
       "openssl ec -in memo.key -pubout -outform DER -out memo.pub 2>/dev/null && "
       "openssl ecparam -name prime256v1 -genkey -noout -out other.key && "
       "openssl ec -in other.key -pubout -outform DER -out other.pub 2>/dev/null && "
       "printf 'a message whose digest is signed' | openssl dgst -sha256 -binary > memo.hash && "
       "openssl pkeyutl -sign -inkey memo.key -in memo.hash -out memo.sig",
       dir);
    uint8_t *key = (uint8_t *)slurp("memo.pub", &key_len), *other = (uint8_t *)slurp("other.pub", &other_len);
    uint8_t *sig = (uint8_t *)slurp("memo.sig", &sig_len), *hash = (uint8_t *)slurp("memo.hash", &hash_len);
    assert_int_equal(hash_len, 32);

    rm__tls_memo_clear();
    expect_verify(key, key_len, hash, sig, sig_len, 1, 1, 0);
    /* the same triple again: answered from the memo */
    expect_verify(key, key_len, hash, sig, sig_len, 1, 0, 1);
    /* another hash, another key, a changed signature: each computed, each refused */
    hash[5] ^= 1;
    expect_verify(key, key_len, hash, sig, sig_len, 0, 1, 0);
    hash[5] ^= 1;
    expect_verify(other, other_len, hash, sig, sig_len, 0, 1, 0);
    sig[sig_len - 1] ^= 0x40;
    expect_verify(key, key_len, hash, sig, sig_len, 0, 1, 0);
    sig[sig_len - 1] ^= 0x40;
    /* a key that does not decode is an error, never a success */
    valid = 1;
    assert_true(rm__tls_ecdsa_verify(key, 10, hash, hash_len, sig, sig_len, 1, &valid) < 0);
    assert_int_equal(valid, 0);
    /* forgotten: computed again */
    rm__tls_memo_clear();
    expect_verify(key, key_len, hash, sig, sig_len, 1, 1, 0);
    /* a verification not to remember (a CertificateVerify) is computed even when the memo has it, and is not kept */
    expect_verify_as(0, key, key_len, hash, sig, sig_len, 1, 1, 0);
    rm__tls_memo_clear();
    expect_verify_as(0, key, key_len, hash, sig, sig_len, 1, 1, 0);
    expect_verify(key, key_len, hash, sig, sig_len, 1, 1, 0);
    free(key), free(other), free(sig), free(hash);
}

/* In a handshake each side verifies two signatures of its peer: the CA's over the peer's certificate, and the
 * peer's CertificateVerify. On the next handshake with the same peer the first is remembered and the second, over a
 * new transcript, is computed. */
static void test_handshake_remembers_certificate_signatures(void **state)
{
    rm_tls_ctx_t *cc = make_ctx(RM_TLS_CLIENT, "client", "ca.pem", "cluster.local", NULL);
    rm_tls_ctx_t *sc = make_ctx(RM_TLS_SERVER, "server", "ca.pem", "cluster.local", NULL);
    rm_tls_verify_stats_t s0, s1, s2;

    rm__tls_memo_clear();
    s0 = rm_tls_thread_verify_stats();
    handshake_once(cc, sc);
    s1 = rm_tls_thread_verify_stats();
    assert_int_equal(s1.computed - s0.computed, 4);
    assert_int_equal(s1.remembered - s0.remembered, 0);
    handshake_once(cc, sc);
    s2 = rm_tls_thread_verify_stats();
    assert_int_equal(s2.computed - s1.computed, 2);
    assert_int_equal(s2.remembered - s1.remembered, 2);
    rm_tls_ctx_unref(cc);
    rm_tls_ctx_unref(sc);
}

/* What the client side offers: TLS 1.3 only, the three suites, P-256, X25519 and P-384 and nothing else, one key
 * share (P-256). Read from the ClientHello it writes into its output window. */
static void test_client_hello_offers_only_mesh_parameters(void **state)
{
    static const unsigned groups[] = {23, 29, 24}, suites[] = {0x1301, 0x1302, 0x1303};
    rm_tls_ctx_t *cc = make_ctx(RM_TLS_CLIENT, "client", "ca.pem", "cluster.local", NULL);
    rm_tls_client_hello_t hello;
    rm_tls_t *cli;
    const uint8_t *p;
    size_t n, i;

    assert_int_equal(rm_tls_new(&cli, cc, server_ids, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_handshake(cli), RM_ERR_TLS_WANT_IO);
    rm_tls_out_data(cli, &p, &n);
    assert_int_equal(rm_tls_client_hello_parse(p, n, &hello), 0);
    assert_int_equal(hello.versions.num, 1);
    assert_int_equal(rm_tls_u16_list_at(&hello.versions, 0), 0x0304);
    assert_int_equal(hello.groups.num, sizeof(groups) / sizeof(groups[0]));
    for (i = 0; i != hello.groups.num; ++i)
        assert_int_equal(rm_tls_u16_list_at(&hello.groups, i), groups[i]);
    /* TLS_EMPTY_RENEGOTIATION_INFO_SCSV (0x00ff) may ride along; no other suite */
    for (i = 0, n = 0; i != hello.suites.num; ++i) {
        unsigned suite = rm_tls_u16_list_at(&hello.suites, i);
        if (suite == 0x00ff)
            continue;
        assert_int_equal(suite, suites[n]);
        ++n;
    }
    assert_int_equal(n, sizeof(suites) / sizeof(suites[0]));
    rm_tls_free(cli);
    rm_tls_ctx_unref(cc);
}

/* A TLS 1.3 ClientHello record offering exactly `versions`, `suites` and `groups` (a 32-byte key share for the first
 * group: the server must refuse before it would use it). Returns the length. */
static size_t client_hello(uint8_t *out, const unsigned *versions, size_t nv, const unsigned *suites, size_t ns,
                           const unsigned *groups, size_t ng)
{
    uint8_t body[1024], *ext_len_at;
    size_t n = 0, i, ext_start;

    body[n++] = 3, body[n++] = 3;
    memset(body + n, 0x5a, 32), n += 32;
    body[n++] = 0;
    body[n++] = (uint8_t)((2 * ns) >> 8), body[n++] = (uint8_t)(2 * ns);
    for (i = 0; i != ns; ++i)
        body[n++] = (uint8_t)(suites[i] >> 8), body[n++] = (uint8_t)suites[i];
    body[n++] = 1, body[n++] = 0;
    ext_len_at = body + n;
    n += 2;
    ext_start = n;
    body[n++] = 0, body[n++] = 43, body[n++] = 0, body[n++] = (uint8_t)(1 + 2 * nv), body[n++] = (uint8_t)(2 * nv);
    for (i = 0; i != nv; ++i)
        body[n++] = (uint8_t)(versions[i] >> 8), body[n++] = (uint8_t)versions[i];
    body[n++] = 0, body[n++] = 10, body[n++] = 0, body[n++] = (uint8_t)(2 + 2 * ng), body[n++] = 0,
    body[n++] = (uint8_t)(2 * ng);
    for (i = 0; i != ng; ++i)
        body[n++] = (uint8_t)(groups[i] >> 8), body[n++] = (uint8_t)groups[i];
    body[n++] = 0, body[n++] = 13, body[n++] = 0, body[n++] = 4, body[n++] = 0, body[n++] = 2, body[n++] = 4,
    body[n++] = 3; /* signature_algorithms: ecdsa_secp256r1_sha256 */
    body[n++] = 0, body[n++] = 51, body[n++] = 0, body[n++] = 38, body[n++] = 0, body[n++] = 36;
    body[n++] = (uint8_t)(groups[0] >> 8), body[n++] = (uint8_t)groups[0], body[n++] = 0, body[n++] = 32;
    memset(body + n, 9, 32), n += 32;
    ext_len_at[0] = (uint8_t)((n - ext_start) >> 8), ext_len_at[1] = (uint8_t)(n - ext_start);
    out[0] = 0x16, out[1] = 3, out[2] = 1, out[3] = (uint8_t)((n + 4) >> 8), out[4] = (uint8_t)(n + 4);
    out[5] = 1, out[6] = 0, out[7] = (uint8_t)(n >> 8), out[8] = (uint8_t)n;
    memcpy(out + 9, body, n);
    return 9 + n;
}

/* Feeds a ClientHello to a server session (in two pieces: the first alone is not enough to judge) and returns what
 * the handshake says; *alert gets the description of the fatal alert left in the output window, or -1. */
static int server_answer(rm_tls_ctx_t *sc, const uint8_t *hello, size_t len, int *alert)
{
    rm_tls_t *srv;
    const uint8_t *p;
    size_t n;
    int r;

    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_in_append(srv, hello, len / 2), 0);
    assert_int_equal(rm_tls_handshake(srv), RM_ERR_TLS_WANT_IO);
    rm_tls_out_data(srv, &p, &n);
    assert_int_equal(n, 0);
    assert_int_equal(rm_tls_in_append(srv, hello + len / 2, len - len / 2), 0);
    r = rm_tls_handshake(srv);
    rm_tls_out_data(srv, &p, &n);
    *alert = -1;
    if (n == 7 && p[0] == 0x15 && p[5] == 2)
        *alert = p[6];
    rm_tls_free(srv);
    return r;
}

/* A server refuses what it cannot negotiate with the reason and the alert RFC 8446 names, before wolfSSL would
 * answer an unknown group with a HelloRetryRequest for a group the client never offered. */
static void test_server_refuses_unshared_offers(void **state)
{
    static const unsigned tls13[] = {0x0304}, tls12[] = {0x0303}, gcm[] = {0x1301}, ccm[] = {0x1304, 0x1305},
                          x448[] = {30}, p521_p224[] = {25, 21}, p384[] = {24};
    rm_tls_ctx_t *sc = make_ctx(RM_TLS_SERVER, "server", "ca.pem", "cluster.local", NULL);
    uint8_t hello[1200];
    size_t len;
    int alert;

    len = client_hello(hello, tls13, 1, gcm, 1, x448, 1);
    assert_int_equal(server_answer(sc, hello, len, &alert), RM_ERR_TLS_NO_SHARED_GROUP);
    assert_int_equal(alert, 40); /* handshake_failure */
    len = client_hello(hello, tls13, 1, gcm, 1, p521_p224, 2);
    assert_int_equal(server_answer(sc, hello, len, &alert), RM_ERR_TLS_NO_SHARED_GROUP);
    assert_int_equal(alert, 40);
    len = client_hello(hello, tls13, 1, ccm, 2, p384, 1);
    assert_int_equal(server_answer(sc, hello, len, &alert), RM_ERR_TLS_NO_SHARED_CIPHER);
    assert_int_equal(alert, 40);
    len = client_hello(hello, tls12, 1, gcm, 1, p384, 1);
    assert_int_equal(server_answer(sc, hello, len, &alert), RM_ERR_TLS_VERSION);
    assert_int_equal(alert, 70); /* protocol_version */
    /* what it can negotiate goes on to wolfSSL (here: the made-up key share is no P-384 point) */
    len = client_hello(hello, tls13, 1, gcm, 1, p384, 1);
    int r = server_answer(sc, hello, len, &alert);
    assert_true(r != RM_ERR_TLS_NO_SHARED_GROUP && r != RM_ERR_TLS_NO_SHARED_CIPHER && r != RM_ERR_TLS_VERSION);
    rm_tls_ctx_unref(sc);
}

/* The verify callback parses the peer's SPIFFE ID on its stack and keeps one copy of the ID's own length in the
 * session (a fixed RM_SPIFFE_ID_MAX buffer in every session would hold 2 KiB per connection): a handshake makes no
 * allocation the size of a parsed ID and one copy to the slab per side that judged a peer, the longest ID a peer may
 * present comes back whole, and a refused peer is still named. The session object and the ID are the slab's, not
 * the heap's that the handshake churns (ringmesh/slab.h): what the slab holds grows with them and comes back to
 * where it was when they are freed. */
static void test_peer_id_kept_at_its_length(void **state)
{
    rm_tls_ctx_t *cc = make_ctx(RM_TLS_CLIENT, "client", "ca.pem", "cluster.local", NULL);
    rm_tls_ctx_t *sc = make_ctx(RM_TLS_SERVER, "longid", "ca.pem", "cluster.local", NULL);
    const char *want[] = {long_id}, *other[] = {"spiffe://cluster.local/ns/b/sa/orders"};
    rm_tls_t *cli, *srv;
    int cr, sr;

    assert_int_equal(strlen(long_id), RM_SPIFFE_ID_MAX);
    id_sized_allocs = strndups = 0;
    size_t slab0 = rm_slab_stats().in_use;
    assert_int_equal(rm_tls_new(&cli, cc, want, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    size_t slab1 = rm_slab_stats().in_use;
    assert_true(slab1 > slab0); /* the two session objects */
    handshake(cli, srv, &cr, &sr);
    /* and the two IDs, at their length (rounded to the slab's 16 or 64 bytes) */
    assert_true(rm_slab_stats().in_use >= slab1 + RM_SPIFFE_ID_MAX + 1 + strlen(rm_tls_peer_id(srv)) + 1);
    assert_true(rm_slab_stats().in_use <= slab1 + RM_SPIFFE_ID_MAX + 1 + 64 + 64);
    assert_int_equal(cr, 0);
    assert_int_equal(sr, 0);
    assert_string_equal(rm_tls_peer_id(cli), long_id);
    assert_string_equal(rm_tls_peer_id(srv), "spiffe://cluster.local/ns/a/sa/client");
    assert_int_equal(strndups, 2); /* one ID kept by each side */
    assert_int_equal(id_sized_allocs, 0);
    strndups = 0;
    rm_tls_free(cli);
    rm_tls_free(srv);
    assert_int_equal(rm_slab_stats().in_use, slab0);

    assert_int_equal(rm_tls_new(&cli, cc, other, 1, RM_TLS_REQUIRE_MESH_ALPN), 0);
    assert_int_equal(rm_tls_new(&srv, sc, NULL, 0, RM_TLS_REQUIRE_MESH_ALPN), 0);
    handshake(cli, srv, &cr, &sr);
    assert_int_equal(cr, RM_ERR_SVID_UNEXPECTED_ID);
    assert_string_equal(rm_tls_peer_id(cli), long_id);
    assert_int_equal(strndups, 1); /* the client refused the server's ID before sending its own certificate */
    assert_int_equal(id_sized_allocs, 0);
    rm_tls_free(cli);
    rm_tls_free(srv);
    rm_tls_ctx_unref(cc);
    rm_tls_ctx_unref(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_fragmented_ciphertext),
        cmocka_unit_test(test_large_windows),
        cmocka_unit_test(test_wrong_identity_refused),
        cmocka_unit_test(test_untrusted_and_foreign_domain_refused),
        cmocka_unit_test(test_trust_domain_aliases),
        cmocka_unit_test(test_expired_refused_and_not_loaded),
        cmocka_unit_test(test_client_from_untrusted_ca_refused_by_server),
        cmocka_unit_test(test_alpn_and_certless_client),
        cmocka_unit_test(test_server_accepts_h2_alpn),
        cmocka_unit_test(test_server_without_client_auth),
        cmocka_unit_test(test_signature_memo),
        cmocka_unit_test(test_handshake_remembers_certificate_signatures),
        cmocka_unit_test(test_client_hello_offers_only_mesh_parameters),
        cmocka_unit_test(test_server_refuses_unshared_offers),
        cmocka_unit_test(test_peer_id_kept_at_its_length),
        cmocka_unit_test(test_foreign_cert_server_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
