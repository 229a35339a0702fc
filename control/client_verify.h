/* The check of client certificates on the control plane's gRPC port: gRPC core's external certificate verifier,
 * running lib's SVID verification (rm_svid_verify_pem: the chain to the trust bundle, then the X509-SVID leaf
 * rules, and the trust domain) on the chain each client presents. OpenSSL only asks for the certificate and checks
 * the client holds its key; what the certificate is worth is decided here alone, as the proxy decides it for
 * mesh connections. A client without a certificate passes (Identity.Sign is how a sidecar gets its first one;
 * Discovery refuses it). A refusal is recorded with handshake_log.h, which logs it with the peer's address. */
#ifndef RINGMESH_CONTROL_CLIENT_VERIFY_H
#define RINGMESH_CONTROL_CLIENT_VERIFY_H

#include <grpc/grpc_security.h>

#include "ca.h"

/** Makes the verifier for `ca`'s trust bundle and trust domain (both copied). The caller releases it with
 *  grpc_tls_certificate_verifier_release(); gRPC keeps it alive while credentials use it. Returns NULL with a
 *  sentence in `err` when the bundle does not load, or on memory exhaustion. */
grpc_tls_certificate_verifier *rm_client_verifier_create(const rm_ca_t *ca, char *err, size_t errlen);

#endif
