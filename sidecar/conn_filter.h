/* Connection filters: what runs between the client and the app once a connection's bytes are looked at request by
 * request (HTTP/1.1, HTTP/2 and gRPC today; metrics and spans, routing next). A connection runs at most one filter,
 * chosen by the L4 decision (conn_authz.c) from the client's first bytes, and drives it only through this table, so
 * a new filter is a new table, not a new branch in the connection.
 *
 * The contract is the one of http_filter.h: bytes in, bytes out, no I/O. `from_client` and `from_app` take what one
 * end sent and append what the other end (to_app, to_client) must get; they return 0 to go on, RM_CONN_FILTER_CLOSE
 * when an answer that closes the connection is in to_client, or a negative error (to_client is still sent, then the
 * connection closes; -ENOMEM closes at once). A nonzero result is sticky. The filter's state is `size` bytes the
 * connection keeps for it (no allocation per request). */
#ifndef RINGMESH_CONN_FILTER_H
#define RINGMESH_CONN_FILTER_H

#include "http_filter.h"
#include "ringmesh/bytebuf.h"

#include <stddef.h>
#include <stdint.h>

/** A filter's answer that closes the connection once to_client has gone out. */
#define RM_CONN_FILTER_CLOSE 1

/** What a filter says of the client's first bytes. */
typedef enum {
    RM_CONN_SNIFF_NO = 0,   /* not its protocol */
    RM_CONN_SNIFF_YES,      /* its protocol: the filter takes the connection */
    RM_CONN_SNIFF_NEED_MORE /* may be its protocol: more bytes will tell */
} rm_conn_sniff_t;

typedef struct st_rm_conn_filter_ops_t {
    /** The protocol, for logs ("http1", "http2"). */
    const char *name;
    /** Looks at the client's first `n` (> 0) bytes, never waiting on a timer: the caller decides as TCP when no
     *  filter claims them and no more bytes can come (EOF, or a full buffer). */
    rm_conn_sniff_t (*sniff)(const uint8_t *p, size_t n);
    /** Bytes of state the connection keeps for the filter (aligned for any type). */
    size_t size;
    /** Initialises the state; `decide` is called once per request with `ctx`, and `done` (may be NULL) once per
     *  exchange decide saw, with the same `ctx`. Returns 0 or a negative error, and then nothing needs freeing. */
    int (*init)(void *state, rm_http_decide_cb decide, rm_http_done_cb done, void *ctx);
    /** How the paths of the requests decided from now on are normalized. */
    void (*set_path_normalization)(void *state, rm_path_normalization_t mode);
    /** Optional (NULL: nothing to do): the filter runs in observe mode (its hook allows every request) and may
     *  take the cheaper path that mode allows; called once, after init, before any bytes. */
    void (*set_observe)(void *state);
    /** Takes what the client sent. */
    int (*from_client)(void *state, const uint8_t *in, size_t len, rm_bytebuf_t *to_app, rm_bytebuf_t *to_client);
    /** Takes what the app sent. */
    int (*from_app)(void *state, const uint8_t *in, size_t len, rm_bytebuf_t *to_app, rm_bytebuf_t *to_client);
    /** Why a nonzero result ended the exchange, for the log; `from_app` says which call returned it. */
    const char *(*reason)(int result, int from_app);
    /** The connection is ending: reports every exchange still open. `app_ended`: everything the app sent has been
     *  given to from_app and the app finished sending, so a response framed by the connection's end is complete.
     *  Later calls report nothing. */
    void (*end)(void *state, int app_ended);
    /** Frees what the state holds (reports nothing). */
    void (*dispose)(void *state);
} rm_conn_filter_ops_t;

/** The filters a connection may run, in the order they are asked to claim its first bytes; NULL-terminated. */
extern const rm_conn_filter_ops_t *const rm_conn_filters[];
/** HTTP/1.x (http1_filter.h). */
extern const rm_conn_filter_ops_t rm_conn_filter_http1;
/** HTTP/2 and gRPC (h2_filter.h). */
extern const rm_conn_filter_ops_t rm_conn_filter_http2;

#endif
