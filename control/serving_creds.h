/* The credentials of the control plane's gRPC port: gRPC core's TLS credentials with the control plane's own
 * serving certificate, renewed at half its life, and the client verifier of client_verify.h.
 *
 * gRPC 1.51's TLS credentials take their certificate from a certificate provider, and the only one its C API
 * offers that can change is the file watcher, which reads files again every second here. The files are one
 * in-memory file (memfd) holding the chain and the key, read through /proc/self/fd: the key never touches a disk.
 * A renewal writes a new memfd and puts it in place of the old one with dup3(), so that a read sees one or the
 * other, never half of each (the watcher reads again when the file changed under it). Handshakes after the
 * watcher's next read use the new certificate. */
#ifndef RINGMESH_CONTROL_SERVING_CREDS_H
#define RINGMESH_CONTROL_SERVING_CREDS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <grpc/grpc_security.h>

#include "ca.h"

typedef struct st_rm_serving_creds_t rm_serving_creds_t;

typedef struct st_rm_serving_config_t {
    const rm_ca_t *ca;
    const char *spiffe_id;        /* the control plane's own */
    const char *const *dns_names; /* names sidecars dial */
    size_t num_dns_names;
    int64_t ttl; /* lifetime of each certificate (0: 24 h) */
} rm_serving_config_t;

/** Issues the first serving certificate (logged as serving_certificate_issued) and makes the server credentials:
 *  client certificates requested, not required, and judged by rm_client_verifier_create()'s verifier alone.
 *  `cfg`'s strings must outlive the result. On success *creds is the caller's (release it once the port is
 *  added) and *out is freed with rm_serving_creds_free() after the server is destroyed. On failure returns a
 *  negative error with a sentence in `err`. */
int rm_serving_creds_create(const rm_serving_config_t *cfg, grpc_server_credentials **creds, rm_serving_creds_t **out,
                            char *err, size_t errlen);

/** Issues a new serving certificate when the current one has lived half its life (`now` is time(NULL)). A failed
 *  issuance is logged (serving_certificate_failed) and tried again a minute later; the current one stays. Call it
 *  often from one thread (the server thread does, on every turn). */
void rm_serving_creds_tick(rm_serving_creds_t *sc, time_t now);

/** Closes the in-memory file and frees `sc`. Call it once gRPC has let go of the credentials (after grpc_shutdown()):
 *  until then its file watcher reads the file by descriptor number. NULL is fine. */
void rm_serving_creds_free(rm_serving_creds_t *sc);

#endif
