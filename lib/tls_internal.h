/* Internal to the TLS backend (lib/tls_wolfssl.c and the files it calls into: ecdsa_memo_wolfssl.c, ktls_linux.c,
 * tls_alert_names.c), declared here for them and their unit tests: not part of any module's contract. */
#ifndef RINGMESH_TLS_INTERNAL_H
#define RINGMESH_TLS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ringmesh/tls.h"

/** Verifies an ECDSA signature (DER) over `hash` with the public key `key_der` (a DER SubjectPublicKeyInfo), as
 *  wolfSSL's own certificate and CertificateVerify checks do. With `remember`, the inputs of a signature that
 *  verified are kept in this thread's memo and looked up first, so that the same check again is a lookup; without
 *  (a CertificateVerify, new in every handshake), it is only computed, and takes no slot from a certificate's.
 *  Sets *valid to 1 or 0; returns 0, or a negative wolfSSL error when the key does not decode (then *valid is 0).
 *  (ecdsa_memo_wolfssl.c) */
int rm__tls_ecdsa_verify(const uint8_t *key_der, size_t key_len, const uint8_t *hash, size_t hash_len,
                         const uint8_t *sig, size_t sig_len, int remember, int *valid);

/** The name of a TLS alert description as the IANA registry spells it ("handshake_failure"), or "unknown_alert".
 *  (tls_alert_names.c) */
const char *rm__tls_alert_name(int code);

/** Forgets every remembered signature of this thread. (ecdsa_memo_wolfssl.c) */
void rm__tls_memo_clear(void);

/** Queues a TLS 1.3 KeyUpdate in the session's output window (what a peer may send at any time after the
 *  handshake; ringmesh's own sessions never do). Returns 0 or RM_ERR_TLS_PROTOCOL. */
int rm__tls_key_update(rm_tls_t *tls);

/** Server side: queues a TLS 1.3 NewSessionTicket in the output window (ringmesh's servers send none, other servers
 *  do). Returns 0 or RM_ERR_TLS_PROTOCOL. */
int rm__tls_send_ticket(rm_tls_t *tls);

/** One direction of a TLS 1.3 session's record protection, as the kernel's TLS layer takes it. */
typedef struct st_rm__ktls_keys_t {
    uint16_t cipher; /* TLS_CIPHER_AES_GCM_128, TLS_CIPHER_AES_GCM_256 or TLS_CIPHER_CHACHA20_POLY1305 (linux/tls.h) */
    uint8_t key[32];
    size_t key_len;
    uint8_t iv[12]; /* the traffic secret's static IV; each record's nonce is it XOR the sequence number */
    uint64_t seq;   /* the sequence number of the next record */
} rm__ktls_keys_t;

/** Gives one direction of a connected socket, whose kernel TLS layer is attached, to the kernel (setsockopt SOL_TLS
 *  TLS_TX or TLS_RX with TLS 1.3 crypto info). Wipes its own copy of the key. Returns 0 or -errno. (ktls_linux.c) */
int rm__ktls_install(int fd, int rx, const rm__ktls_keys_t *k);

/** Reads the record at the head of a kernel-TLS socket when it is not application data. Returns 0 for close_notify,
 *  RM_ERR_TLS_WANT_IO when there is nothing to do (application data is next, or the record was a NewSessionTicket,
 *  dropped), RM_ERR_TLS_PROTOCOL for another alert (its description in *alert) or another handshake message, or
 *  -errno. (ktls_linux.c) */
int rm__ktls_read_control(int fd, int *alert);

#endif
