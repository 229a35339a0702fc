/* What the gRPC server's calls share that does not depend on the server's state: the tag every operation batch
 * carries, the caller's address and SPIFFE ID, reading a message, and answering a unary call. All of it runs on
 * the server thread. */
#ifndef RINGMESH_CONTROL_GRPC_CALLS_H
#define RINGMESH_CONTROL_GRPC_CALLS_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

/** Every operation batch carries a tag; its callback runs on the server thread when the batch completes. */
typedef struct st_rm__grpc_tag_t rm__grpc_tag_t;
struct st_rm__grpc_tag_t {
    void (*cb)(rm__grpc_tag_t *tag, int ok);
};

/** Copies the call's peer address ("ipv4:127.0.0.1:5000") into `out` ("" when gRPC has none). */
void rm__grpc_copy_peer(grpc_call *call, char *out, size_t size);

/** Copies the SPIFFE ID of the call's client certificate into `out` ("" without one): the handshake verified it. */
void rm__grpc_copy_spiffe_id(grpc_call *call, char *out, size_t size);

/** Logs one line (event call_refused) for a call refused before its method ran (Sign and Discovery log their own
 *  refusals): peer, SPIFFE ID when the client has one, method, status and reason. */
void rm__grpc_log_call_refused(grpc_call *call, const char *peer, const char *method, grpc_status_code status,
                               const char *reason);

/** Reads a whole message into *data (malloc'd, free() it) and *len. Returns 0, -EINVAL or -ENOMEM. */
int rm__grpc_read_message(grpc_byte_buffer *bb, uint8_t **data, size_t *len);

/** Answers a unary call with `response` (may be NULL) and a status; takes ownership of the call, which frees
 *  itself once the batch completes on the server's queue. */
void rm__grpc_unary_finish(grpc_call *call, const uint8_t *response, size_t len, grpc_status_code status,
                           const char *details);

#endif
