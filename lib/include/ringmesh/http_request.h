/* One HTTP request as the policy engine and the proxy's L7 filters see it (HTTP/1.1 and HTTP/2 alike). */
#ifndef RINGMESH_HTTP_REQUEST_H
#define RINGMESH_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/** One header field as received. Names are lower-case (HTTP/1.1 names are folded by the filter). */
typedef struct st_rm_http_header_t {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} rm_http_header_t;

/** One request, as the hook sees it. Every pointer is valid only during the hook call. */
typedef struct st_rm_http_request_t {
    const char *method; /* "GET", ...; for HTTP/2 the :method pseudo-header */
    size_t method_len;
    const char *path; /* the request target, query included (HTTP/2: :path): in the proxy, normalized
                         (ringmesh/http_path.h) and exactly what the app receives */
    size_t path_len;
    const char *path_error; /* the target could not be normalized (why): the proxy answers 400 whatever the hook
                               says, and `path` is the target as received. NULL otherwise */
    const char *host;       /* Host header (HTTP/1.1) or :authority (HTTP/2); NULL when absent */
    size_t host_len;
    const rm_http_header_t *headers; /* the regular header fields in order (no pseudo-headers) */
    size_t num_headers;
    uint32_t stream_id; /* HTTP/2 stream ID; 0 for HTTP/1.1 */
    uint8_t http2;
    uint8_t grpc; /* content-type is application/grpc or starts with application/grpc+ / application/grpc; */
} rm_http_request_t;

#endif
