/* gRPC core's own log lines, and the TLS handshakes it fails, as JSON lines on stdout.
 *
 * gRPC core (1.51) reports a failed server handshake only as text, without the peer: OpenSSL's error from its TSI
 * layer, or the answer of the certificate verifier. Its "handshaker" tracer names, for every handshake, the
 * handshake manager, the endpoint it runs on and, when it fails, that error; its "tcp" tracer names the peer
 * address of an endpoint on every read and write. This module turns both tracers on, takes every line gRPC logs
 * (gpr_set_log_function), joins the three and writes one `tls_refused` line per refused handshake, with its cause,
 * the peer, and what the client verifier found (client_verify.h). Every other line gRPC logs becomes a `grpc_log`
 * line (its errors at level error, the rest at debug) instead of text on stderr; the tracers' own lines are
 * dropped. */
#ifndef RINGMESH_CONTROL_HANDSHAKE_LOG_H
#define RINGMESH_CONTROL_HANDSHAKE_LOG_H

#include <stddef.h>

/** What the client verifier found wrong with a client certificate, recorded until gRPC reports the failed
 *  handshake. Strings are copied (and cut to fit). */
typedef struct st_rm_tls_refusal_t {
    const char *cause;     /* short, stable: "untrusted_certificate", "certificate_expired", "svid_rule", ... */
    int code;              /* the RM_ERR_* of the rule that failed */
    const char *spiffe_id; /* the URI SAN the certificate carries ("" when none) */
} rm_tls_refusal_t;

/** Installs the log function, turns on gRPC's "handshaker" and "tcp" tracers and lets gRPC's INFO lines reach
 *  the log function (unless GRPC_VERBOSITY already asks for more). Call after grpc_init(); calling it again is
 *  harmless. */
void rm_handshake_log_init(void);

/** Records a refusal by the client verifier and writes into `details` (NUL-terminated, cut to `size`) the error
 *  text to hand back to gRPC: it carries a tag by which the failed handshake's line finds the record. Thread-safe.
 *  Records are kept in a ring of 256: one whose handshake is never reported is overwritten. */
void rm_handshake_log_refusal(const rm_tls_refusal_t *r, char *details, size_t size);

/** Handles one line of gRPC's log (the body of the log function; exposed for tests). `severity` is gRPC's
 *  gpr_log_severity. Thread-safe. */
void rm__handshake_log_line(int severity, const char *file, int line, const char *message);

#endif
