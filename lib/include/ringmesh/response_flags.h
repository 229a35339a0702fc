/* Response flags: why a request ended the way it did when a proxy, not the app, decided it. The names are Envoy's
 * (the access log's %RESPONSE_FLAGS% and Istio's `response_flags` metric label), so dashboards and runbooks written
 * for Envoy read ringmesh's the same way. A request may carry several (a connect failure that exhausted its
 * retries is "UF,URX"). docs/traffic-management.md lists them. */
#ifndef RINGMESH_RESPONSE_FLAGS_H
#define RINGMESH_RESPONSE_FLAGS_H

#include <stddef.h>

/** One bit per flag; 0 is "no flag" (printed "-", as Envoy does). */
enum {
    RM_RF_UH = 1u << 0,  /* no healthy upstream: no endpoint to send to (503) */
    RM_RF_UF = 1u << 1,  /* upstream connection failure (503) */
    RM_RF_UT = 1u << 2,  /* upstream request timeout (504) */
    RM_RF_URX = 1u << 3, /* retry limit exceeded: attempts or the retry budget ran out */
    RM_RF_UO = 1u << 4,  /* overflow: a circuit breaking limit refused the request (503) */
    RM_RF_NR = 1u << 5,  /* no route matched (404) */
    RM_RF_UC = 1u << 6,  /* upstream connection terminated (503) */
    RM_RF_DC = 1u << 7,  /* downstream (the app's) connection terminated */
    RM_RF_LR = 1u << 8,  /* connection or stream reset locally */
};

/** Longest text rm_response_flags_format() writes, NUL included (every flag, comma-separated). */
#define RM_RESPONSE_FLAGS_MAX 32u

/** Writes `flags` as Envoy does ("UF,URX"; "-" for none) into buf[0..len), in the order of the enum above.
 *  Returns the length written (without the NUL); the text is cut short (still NUL-terminated) when len is too
 *  small, RM_RESPONSE_FLAGS_MAX is always enough. */
size_t rm_response_flags_format(unsigned flags, char *buf, size_t len);

/** The HTTP status a proxy answers with for a request that ends with `flags` and no response of the app's: 404 for
 *  NR, 504 for UT, 503 for UH, UF, UO, UC and URX; 0 when the flags alone do not make a response (DC, LR, none). */
int rm_response_flags_status(unsigned flags);

/** The gRPC status of the same (grpc-status on a trailers-only response): 14 UNAVAILABLE for 503, 4
 *  DEADLINE_EXCEEDED for 504, 12 UNIMPLEMENTED for NR; 0 when rm_response_flags_status() is 0. */
int rm_response_flags_grpc_status(unsigned flags);

#endif
