/* The proxy's side of the control plane: its identity (key generated in memory, CSR, Identity.Sign, renewal) and
 * its configuration (Discovery.Stream, ACK/NACK), on one control thread that publishes snapshots to the workers.
 *
 * Static stability: the last good SVID, key (mode 0600), bundle and accepted resources are kept in the state
 * directory; a proxy that starts while the control plane is down comes back from them, and a proxy that loses
 * the control plane keeps serving with what it has, retrying with capped exponential backoff and jitter. */
#ifndef RINGMESH_CONTROL_CLIENT_H
#define RINGMESH_CONTROL_CLIENT_H

#include "proxy.h"

typedef struct st_rm_control_client_t rm_control_client_t;

/** Restores what the state directory holds (publishing it at once when it is usable), then starts the control
 *  thread. `p` must be set up (rm_proxy_setup) with a snapshot whose configuration has a `control` section.
 *  Returns 0 or a negative errno (the reason is logged). */
int rm_control_client_start(rm_proxy_t *p, rm_control_client_t **out);

/** Stops the control thread and frees the client. NULL is fine. */
void rm_control_client_stop(rm_control_client_t *cc);

/** Validation of pushed resources, shared with the unit tests. Each returns 0, or -EINVAL with the reason in
 *  `err`. */
struct ProtobufCBinaryData;
int rm__control_parse_destinations(const uint8_t *value, size_t len, const char *trust_domain, rm_dest_table_t **out,
                                   char *err, size_t errlen);

#endif
