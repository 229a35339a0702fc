/* Request-target normalization: the one place where the path an HTTP request names is made canonical, so that
 * the path the authorization policy is matched against and the path the app receives are the same bytes.
 *
 * The modes are Istio's (MeshConfig pathNormalization.normalization, its "Authorization Policy Normalization"):
 *   BASE (the default)           percent-encoded unreserved characters are decoded once (%2d %2e %30-%39 %41-%5a
 *                                %5f %61-%7a %7e, hex digits in either case; "%252e" stays "%252e", never "."),
 *                                '\' becomes '/', "." and ".." segments are resolved as in RFC 3986 5.2.4, and a
 *                                path holding "%00" is refused;
 *   MERGE_SLASHES                BASE, then runs of '/' become one;
 *   DECODE_AND_MERGE_SLASHES     "%2f" and "%5c" (either case) are decoded to '/' first, then MERGE_SLASHES;
 *   NONE                         nothing: the target is used as received (unsafe: an app may route "/a/../b" to
 *                                "/b" while a policy saw "/a/../b").
 *
 * Forms of request target (RFC 9112 3.2): origin-form ("/p?q") is normalized; absolute-form
 * ("http://host/p?q") becomes origin-form (the authority dropped: the Host header names the host, as it does for
 * the policy); asterisk-form ("*") and authority-form ("host:port", CONNECT) are returned unchanged. In every
 * mode but NONE the fragment ("#...") is dropped, and the query ("?...") is kept as it was received, never
 * decoded or checked. */
#ifndef RINGMESH_HTTP_PATH_H
#define RINGMESH_HTTP_PATH_H

#include <stddef.h>

typedef enum {
    RM_PATH_NORMALIZATION_BASE = 0, /* the default: the zero value */
    RM_PATH_NORMALIZATION_NONE,
    RM_PATH_NORMALIZATION_MERGE_SLASHES,
    RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES,
} rm_path_normalization_t;

/** The result of rm_http_path_normalize. */
typedef struct st_rm_http_target_t {
    size_t len;        /* bytes written to `out`: the request target to forward (normalized path, then the query) */
    size_t path_len;   /* out[0, path_len) is the path alone: what the policy matches */
    int changed;       /* the target to forward differs from the one received */
    const char *error; /* on -EINVAL: why, in words ("the path holds a percent-encoded NUL (%00)") */
} rm_http_target_t;

/** Normalizes the request target target[0, len) per `mode` into out[0, cap). `cap` must be at least len + 1
 *  (the result is never longer than that; it is not NUL-terminated). Allocates nothing.
 *  Returns 0; -EINVAL when the request must be refused with 400 (t->error says why); -ENOBUFS when cap is too
 *  small. */
int rm_http_path_normalize(rm_path_normalization_t mode, const char *target, size_t len, char *out, size_t cap,
                           rm_http_target_t *t);

/** Istio's name of a mode: "BASE", "NONE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES". */
const char *rm_path_normalization_name(rm_path_normalization_t mode);

/** Parses one of those names (exactly as written). Returns 0, or -EINVAL when `s` is none of them. */
int rm_path_normalization_parse(const char *s, rm_path_normalization_t *out);

/** The names, for error messages: "BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES or NONE". */
#define RM_PATH_NORMALIZATION_NAMES "BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES or NONE"

/** 1 when a query parameter of this name (name[0, len), as received) carries a credential whose value logs and spans
 *  must not show: names containing token, secret, passw, signature, credential, apikey, api_key or api-key, and the
 *  names key, sig, auth, authorization and code (case-insensitive). */
int rm_http_param_secret(const char *name, size_t len);

/** Copies the request target target[0, len) into out (NUL-terminated, truncated to cap - 1 bytes) with the value of
 *  every query parameter rm_http_param_secret names replaced by "REDACTED" (`/p?access_token=x&a=1` is
 *  `/p?access_token=REDACTED&a=1`); the path and the other parameters are kept as received. Returns the length
 *  written. Allocates nothing. */
size_t rm_http_target_redact(const char *target, size_t len, char *out, size_t cap);

#endif
