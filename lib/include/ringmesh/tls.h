/* The TLS backend: mutual TLS 1.3 with X.509-SVIDs, over caller-owned I/O.
 *
 * Only *_wolfssl.c files include wolfSSL. A session never touches a socket: the caller receives ciphertext into the
 * session's input window (rm_tls_in_space/rm_tls_in_commit) and sends what the session leaves in its output
 * window (rm_tls_out_data/rm_tls_out_consume), so any event loop can drive it and it never blocks.
 * Every function returns 0 or bytes on success, RM_ERR_TLS_WANT_IO when it needs more input or more output room,
 * or another RM_ERR_TLS_* / RM_ERR_SVID_* code naming why the session failed. wolfSSL codes never escape. */
#ifndef RINGMESH_TLS_H
#define RINGMESH_TLS_H

#include "ringmesh/svid.h"

#include <stddef.h>
#include <stdint.h>

#define RM_TLS_ALPN "ringmesh/1"
/* The pooled proxy-to-proxy connections that carry requests as HTTP/2 (docs/traffic-management.md, "Requests"). */
#define RM_TLS_ALPN_H2 "ringmesh/h2"

typedef struct st_rm_tls_ctx_t rm_tls_ctx_t;
typedef struct st_rm_tls_t rm_tls_t;

typedef enum { RM_TLS_CLIENT = 0, RM_TLS_SERVER = 1 } rm_tls_role_t;

/** What a context is made from. PEM buffers are copied; the caller may wipe its own copies after the call. */
typedef struct st_rm_tls_ctx_config_t {
    const char *cert_pem; /* chain, leaf first */
    size_t cert_len;
    const char *key_pem;
    size_t key_len;
    const char *bundle_pem; /* trust anchors */
    size_t bundle_len;
    const char *trust_domain; /* peers must be in this trust domain */
    const char *alpn;         /* protocol offered; NULL means RM_TLS_ALPN ("h2" to reach the control plane) */
    /* peers may be in these trust domains too (trustDomainAliases); the own certificate must be in trust_domain */
    const char *const *peer_trust_domain_aliases;
    size_t num_peer_trust_domain_aliases;
    /* server only: ask no client certificate (HTTPS to clients outside the mesh, e.g. the Kubernetes API server
     * calling the admission webhook); the ALPN is then chosen when the client offers it, not required */
    int no_client_auth;
    /* server with no_client_auth only: the own certificate comes from a CA outside the mesh (cert-manager's for the
     * webhook) and is not checked as an SVID under the bundle; it must still match the key */
    int foreign_cert;
} rm_tls_ctx_config_t;

/** Initialises the library once per process. Returns 0 or RM_ERR_TLS_CONFIG. */
int rm_tls_global_init(void);

/** Makes an immutable context for one role. Checks that the certificate is a valid SVID for the bundle and
 *  matches the key. A client context may have no certificate (cert_pem NULL): it still verifies the server's SVID,
 *  and serves only to reach the control plane before the first SVID. On failure writes a sentence into `err` and
 * returns RM_ERR_TLS_CONFIG or an RM_ERR_SVID_* code; the sentence begins with "trust bundle" when the bundle is
 * at fault and with "private key" when the key is. A context may be shared by every worker thread; it is
 * reference-counted (starts at 1). */
int rm_tls_ctx_new(rm_tls_ctx_t **out, rm_tls_role_t role, const rm_tls_ctx_config_t *cfg, char *err, size_t errlen);
void rm_tls_ctx_ref(rm_tls_ctx_t *ctx);
void rm_tls_ctx_unref(rm_tls_ctx_t *ctx);
/** This context's own SPIFFE ID (from its certificate). */
const rm_spiffe_id_t *rm_tls_ctx_id(const rm_tls_ctx_t *ctx);
/** notBefore and notAfter of this context's own certificate. */
time_t rm_tls_ctx_not_before(const rm_tls_ctx_t *ctx);
time_t rm_tls_ctx_not_after(const rm_tls_ctx_t *ctx);

/** Session flags. */
#define RM_TLS_REQUIRE_MESH_ALPN 0x1 /* fail unless the context's ALPN (ringmesh/1 by default) was negotiated */
/* server with the default ALPN only: ringmesh/h2 (the pooled request connections) is accepted as well as ringmesh/1;
 * with RM_TLS_REQUIRE_MESH_ALPN one of the two must be negotiated; rm_tls_alpn_h2 tells which */
#define RM_TLS_ACCEPT_H2 0x2
/* client: offer ringmesh/h2 only (a pooled request connection, docs/traffic-management.md "Requests") instead of the
 * context's ALPN; with RM_TLS_REQUIRE_MESH_ALPN the server must choose it */
#define RM_TLS_OFFER_H2 0x4

/** Starts a session. `expected_ids` (may be NULL; must outlive the session) are the IDs the peer may present:
 *  a client passes the destination's identities. The mesh ALPN is always offered; with RM_TLS_REQUIRE_MESH_ALPN it
 *  must also be negotiated (explicit listeners interoperate with plain mTLS peers and leave it out).
 *  Returns 0 or RM_ERR_TLS_NO_MEMORY. The session holds a ref on ctx. */
int rm_tls_new(rm_tls_t **out, rm_tls_ctx_t *ctx, const char *const *expected_ids, size_t num_expected_ids,
               unsigned flags);
void rm_tls_free(rm_tls_t *tls);

/** The free tail of the input window (a pool buffer, taken here when none is held): receive ciphertext there, then
 *  commit what arrived. Call it right before submitting a receive, never while one is in flight (it may move
 *  buffered bytes to the front). Returns 0 or RM_ERR_TLS_NO_MEMORY. */
int rm_tls_in_space(rm_tls_t *tls, uint8_t **p, size_t *len);
/** Whether the input windows taken from now on are large pool buffers (RM_BUF_LARGE_SIZE): the peer keeps more
 *  waiting than a small window holds, so fewer, larger receives take it. With 1, the next rm_tls_in_space moves what a
 *  small window holds into a large one; with 0, the next window taken after a release is small again. Small is the
 *  default. */
void rm_tls_in_want_large(rm_tls_t *tls, int large);
void rm_tls_in_commit(rm_tls_t *tls, size_t n);
/** Copies bytes already read elsewhere (sniffed) into the input window. Returns 0, RM_ERR_TLS_NO_MEMORY, or
 *  RM_ERR_TLS_PROTOCOL if they do not fit. */
int rm_tls_in_append(rm_tls_t *tls, const uint8_t *p, size_t len);
/** Takes a pool buffer as the input window, empty: receive into it, then rm_tls_in_commit. Only when no window
 *  is held (rm_tls_in_release returned 1). Returns 0, or RM_ERR_TLS_PROTOCOL (the buffer is not taken) when one is. */
int rm_tls_in_adopt(rm_tls_t *tls, uint8_t *buf);
/** Bytes received into the input window that the session has not taken yet (what the next handshake step works
 *  on). */
size_t rm_tls_in_pending(const rm_tls_t *tls);
/** Takes the output window from the calling thread's pool now when none is held, so that a handshake step run on
 *  another thread writes into it instead of taking a buffer from that thread's pool. Returns 0 or
 *  RM_ERR_TLS_NO_MEMORY. */
int rm_tls_out_reserve(rm_tls_t *tls);
/** Gives the input window back to the pool when wolfSSL has taken every byte of it; never while a receive into it
 *  is in flight. Returns 1 when no window is held afterwards. */
int rm_tls_in_release(rm_tls_t *tls);
/** Marks the transport as closed by the peer (TCP EOF): later reads fail instead of waiting. */
void rm_tls_in_eof(rm_tls_t *tls);

/** The ciphertext waiting to be sent. The output window goes back to the pool once all of it is consumed. */
void rm_tls_out_data(rm_tls_t *tls, const uint8_t **p, size_t *len);
void rm_tls_out_consume(rm_tls_t *tls, size_t n);

/** Advances the handshake. Returns 0 once it is complete and the peer's SVID is verified, RM_ERR_TLS_WANT_IO, or
 *  the reason it failed (an alert for the peer may then be waiting in the output window). */
int rm_tls_handshake(rm_tls_t *tls);
/** The SPIFFE ID the peer presented: verified once rm_tls_handshake returned 0; after a refusal, the ID that was
 *  refused (for the log). NULL when the peer presented none that parsed. Owned by the session. */
const char *rm_tls_peer_id(const rm_tls_t *tls);
/** Nonzero once the handshake is over when it negotiated ringmesh/h2 (RM_TLS_ALPN_H2). */
int rm_tls_alpn_h2(const rm_tls_t *tls);
/** The last alert received from the peer as text (e.g. "bad_certificate"), or NULL. */
const char *rm_tls_peer_alert(const rm_tls_t *tls);
/** Negotiated protocol version string, e.g. "TLSv1.3". */
const char *rm_tls_version(const rm_tls_t *tls);

/** ECDSA signature verifications of the peers' certificates and handshakes made by the calling thread's sessions:
 *  computed, or answered from the thread's memo of certificate signatures already verified (ecdsa_memo_wolfssl.c). */
typedef struct st_rm_tls_verify_stats_t {
    uint64_t computed, remembered;
} rm_tls_verify_stats_t;

rm_tls_verify_stats_t rm_tls_thread_verify_stats(void);

/** Decrypts into buf. Returns bytes (>0), 0 when the peer sent close_notify or closed the transport after one,
 *  RM_ERR_TLS_WANT_IO, or an error. */
int rm_tls_read(rm_tls_t *tls, uint8_t *buf, size_t len);
/** Encrypts up to len bytes (at most one record) into the output window. Returns bytes consumed (>0),
 *  RM_ERR_TLS_WANT_IO when the output window has no room (send it, then call again with the same data), or an error.
 *  Given more than one record's worth while no window is held, it takes a large one (RM_BUF_LARGE_SIZE), so that the
 *  records of a stream go out many to a send. */
int rm_tls_write(rm_tls_t *tls, const uint8_t *buf, size_t len);
/** Queues a close_notify alert in the output window. Returns 0 or an error. */
int rm_tls_close_notify(rm_tls_t *tls);

/* Kernel TLS (Linux kTLS, CONFIG_TLS). After the handshake, a TLS 1.3 session's record layer can be handed to the
 * kernel, one direction at a time: its traffic keys and sequence numbers go to the socket, and from then on that
 * direction carries plaintext on the socket itself (send and receive it directly, not through the session); the
 * kernel seals and opens the records. The session keeps answering rm_tls_peer_id and rm_tls_version. */

/** Attaches the kernel's TLS layer to a connected TCP socket (TCP_ULP "tls"). Returns 0 or -errno: -ENOENT when
 *  the kernel has no TLS layer. */
int rm_tls_ktls_attach(int fd);
/** Whether this kernel lets a TCP socket take the TLS layer, tried on a loopback connection made for the purpose.
 *  From a process with CAP_NET_ADMIN this also loads the tls module when it is one and not loaded yet. Returns 0 or
 *  -errno (-ENOENT: no TLS layer). */
int rm_tls_ktls_probe(void);
/** Hands the sending direction to the kernel (the layer attached). Call with nothing of the output window left to
 *  send. Returns 0; RM_ERR_TLS_WANT_IO while output is waiting; RM_ERR_TLS_PROTOCOL when the session cannot be
 *  handed over (not TLS 1.3, a cipher the kernel does not take, or a wolfSSL without key access); or -errno from the
 *  kernel. After 0, rm_tls_write, rm_tls_out_* and rm_tls_close_notify are never called again. */
int rm_tls_ktls_start_tx(rm_tls_t *tls, int fd);
/** Hands the receiving direction to the kernel, only at a record boundary with nothing received left in the session
 *  and no receive in flight into its input window.
 *  Returns 0; RM_ERR_TLS_WANT_IO when not there yet: read what the session holds (rm_tls_read), and when *need is
 *  not 0, receive at most *need bytes next (the rest of the record wolfSSL holds part of), then try again; or
 *  RM_ERR_TLS_PROTOCOL / -errno as rm_tls_ktls_start_tx. After 0, rm_tls_read and rm_tls_in_* are never called
 *  again. */
int rm_tls_ktls_start_rx(rm_tls_t *tls, int fd, size_t *need);
/** A receive on a socket whose receiving direction the kernel has failed with -EIO: the next record is not
 *  application data. Reads it: returns 0 for close_notify (the end of the stream), RM_ERR_TLS_WANT_IO when it
 *  carried nothing for the application (a NewSessionTicket, dropped: sessions are never resumed), or
 *  RM_ERR_TLS_PROTOCOL for an alert (rm_tls_peer_alert names it) or another handshake message (a KeyUpdate: the
 *  kernel cannot change keys). */
int rm_tls_ktls_read_control(rm_tls_t *tls, int fd);
/** Sends close_notify through the kernel's record layer. Returns 0 or -errno (-EAGAIN: the socket is full). */
int rm_tls_ktls_close_notify(int fd);
/** Once the kernel has both directions, frees the session's own record layer and windows; what the session
 *  answers about the peer stays. Does nothing otherwise. */
void rm_tls_ktls_release(rm_tls_t *tls);

/** Result of looking at the first bytes a client sent (PERMISSIVE ports). */
typedef enum {
    RM_TLS_SNIFF_NEED_MORE = 0, /* could be a ClientHello, not complete yet */
    RM_TLS_SNIFF_PLAINTEXT,     /* not TLS */
    RM_TLS_SNIFF_TLS_OTHER,     /* TLS, but not offering the mesh ALPN (the app's own TLS) */
    RM_TLS_SNIFF_MESH,          /* a ClientHello offering ALPN ringmesh/1 or ringmesh/h2 */
} rm_tls_sniff_t;

/** Classifies the first bytes of a connection. Never reads past len. */
rm_tls_sniff_t rm_tls_sniff(const uint8_t *p, size_t len);

/** Copies the host_name of the server_name extension (SNI) of the ClientHello in p into out (NUL-terminated) and
 *  returns its length; 0 when there is none, it does not fit in outlen - 1 bytes, or it is not printable ASCII.
 *  Never reads past len. */
size_t rm_tls_client_hello_sni(const uint8_t *p, size_t len, char *out, size_t outlen);

/** A list of 16-bit code points in a ClientHello, in wire order (big-endian pairs), pointing into the caller's
 *  bytes. `num` counts the entries; `present` says whether the list was in the message at all. */
typedef struct st_rm_tls_u16_list_t {
    const uint8_t *p;
    size_t num;
    int present;
} rm_tls_u16_list_t;

/** What a ClientHello offers that decides whether a ringmesh server can answer it. */
typedef struct st_rm_tls_client_hello_t {
    unsigned legacy_version;    /* e.g. 0x0303 */
    rm_tls_u16_list_t versions; /* supported_versions (RFC 8446 4.2.1); absent from a TLS 1.2 client */
    rm_tls_u16_list_t suites;   /* cipher_suites */
    rm_tls_u16_list_t groups;   /* supported_groups (RFC 8446 4.2.7) */
} rm_tls_client_hello_t;

/** Parses the ClientHello that sits whole in the first record of p; the lists point into p. Never reads past len.
 *  Returns 0, RM_ERR_TLS_WANT_IO when the first record is not all there yet, or RM_ERR_TLS_PROTOCOL when p does not
 *  start with a well-formed ClientHello in one record. */
int rm_tls_client_hello_parse(const uint8_t *p, size_t len, rm_tls_client_hello_t *out);

/** Entry `i` (< list->num) of a list. */
unsigned rm_tls_u16_list_at(const rm_tls_u16_list_t *list, size_t i);

/** Whether `value` is in the list. */
int rm_tls_u16_list_has(const rm_tls_u16_list_t *list, unsigned value);

/** Client side: the server name to send (SNI) in the ClientHello; call before the handshake. Returns 0 or
 *  RM_ERR_TLS_CONFIG. */
int rm_tls_set_server_name(rm_tls_t *tls, const char *name);

#endif
