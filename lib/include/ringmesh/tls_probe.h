/* A TLS client that does not verify its server: what the kubelet's HTTPS probes do (an app's health endpoint often
 * has a self-signed certificate), for the proxy's /app-health probes. Nothing else may use it: every connection
 * between workloads goes through rm_tls (ringmesh/tls.h), which checks SPIFFE identities.
 *
 * Blocking in the caller's thread, over a connected non-blocking socket, every step bounded by a deadline on
 * CLOCK_MONOTONIC in milliseconds. TLS 1.2 and 1.3. */
#ifndef RINGMESH_TLS_PROBE_H
#define RINGMESH_TLS_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct st_rm_tls_probe_t rm_tls_probe_t;

/** Completes a handshake on `fd` (sending `sni` when it is a name, not an address) before `deadline_ms`. Returns 0
 *  and *out, or a negative error with the reason in `why`. The socket stays the caller's to close. */
int rm_tls_probe_open(int fd, const char *sni, uint64_t deadline_ms, rm_tls_probe_t **out, char *why, size_t whylen);

/** Writes all of buf. Returns 0 or a negative error (-ETIMEDOUT past the deadline). */
int rm_tls_probe_write(rm_tls_probe_t *t, const void *buf, size_t len, uint64_t deadline_ms);

/** Reads what is there, waiting until the deadline. Returns the count, 0 at the end of the stream, or a negative
 *  error. */
ssize_t rm_tls_probe_read(rm_tls_probe_t *t, void *buf, size_t len, uint64_t deadline_ms);

/** Frees the session (no close_notify: the caller closes the socket). NULL is fine. */
void rm_tls_probe_free(rm_tls_probe_t *t);

#endif
