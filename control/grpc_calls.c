/* The gRPC server's call helpers (grpc_calls.h). */
#include "grpc_calls.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>

#include "ringmesh/log.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* A finished unary call (Sign, or a refusal of an unknown method): frees itself when its batch completes. */
typedef struct st_unary_t {
    rm__grpc_tag_t tag;
    grpc_call *call;
    grpc_byte_buffer *response;
    grpc_slice details;
    int cancelled;
} unary_t;

void rm__grpc_copy_peer(grpc_call *call, char *out, size_t size)
{
    char *p = grpc_call_get_peer(call);
    snprintf(out, size, "%s", p != NULL ? p : "");
    gpr_free(p);
}

/* The SPIFFE ID of the call's client certificate ("" without one): the handshake verified it. */
void rm__grpc_copy_spiffe_id(grpc_call *call, char *out, size_t size)
{
    grpc_auth_context *ctx = grpc_call_auth_context(call);
    grpc_auth_property_iterator it;
    const grpc_auth_property *p;

    out[0] = '\0';
    if (ctx == NULL)
        return;
    it = grpc_auth_context_find_properties_by_name(ctx, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
    if ((p = grpc_auth_property_iterator_next(&it)) != NULL)
        snprintf(out, size, "%.*s", (int)p->value_length, p->value);
    grpc_auth_context_release(ctx);
}

/* One line for a call refused before its method ran (Sign and Discovery log their own refusals). */
void rm__grpc_log_call_refused(grpc_call *call, const char *peer, const char *method, grpc_status_code status,
                               const char *reason)
{
    char id[256];
    rm_log_line_t l;

    rm__grpc_copy_spiffe_id(call, id, sizeof(id));
    rm_log_begin(&l, RM_LOG_WARN, "call_refused");
    rm_log_str(&l, "peer", peer);
    if (id[0] != '\0')
        rm_log_str(&l, "spiffeId", id);
    rm_log_str(&l, "method", method);
    rm_log_int(&l, "grpcStatus", status);
    rm_log_str(&l, "reason", reason);
    rm_log_end(&l);
}

/* ---- reading a message ---- */

int rm__grpc_read_message(grpc_byte_buffer *bb, uint8_t **data, size_t *len)
{
    grpc_byte_buffer_reader reader;
    grpc_slice all;

    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return -EINVAL;
    all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    *len = GRPC_SLICE_LENGTH(all);
    if ((*data = malloc(*len == 0 ? 1 : *len)) == NULL) {
        grpc_slice_unref(all);
        return -ENOMEM;
    }
    memcpy(*data, GRPC_SLICE_START_PTR(all), *len);
    grpc_slice_unref(all);
    return 0;
}

/* ---- unary calls ---- */

static void unary_done(rm__grpc_tag_t *tag, int ok)
{
    unary_t *u = container_of(tag, unary_t, tag);

    (void)ok;
    if (u->response != NULL)
        grpc_byte_buffer_destroy(u->response);
    grpc_slice_unref(u->details);
    grpc_call_unref(u->call);
    free(u);
}

/* Answers a unary call with `response` (may be NULL) and a status; takes ownership of the call. */
void rm__grpc_unary_finish(grpc_call *call, const uint8_t *response, size_t len, grpc_status_code status,
                           const char *details)
{
    unary_t *u;
    grpc_op ops[4];
    size_t n = 0;

    if ((u = calloc(1, sizeof(*u))) == NULL) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    u->tag.cb = unary_done;
    u->call = call;
    u->details = grpc_slice_from_copied_string(details != NULL ? details : "");
    memset(ops, 0, sizeof(ops));
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    if (response != NULL) {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)response, len);
        u->response = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = u->response;
        n++;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    ops[n].data.send_status_from_server.status_details = &u->details;
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &u->cancelled;
    n++;
    if (grpc_call_start_batch(call, ops, n, &u->tag, NULL) != GRPC_CALL_OK)
        unary_done(&u->tag, 0);
}
