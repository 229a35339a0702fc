/* The JWKS of RequestAuthentication jwksUri, fetched by the control plane (libcurl, https with the system's CA
 * bundle or --jwks-ca-file) and pushed inline to the sidecars, so that proxies need no egress.
 *
 * Every jwksUri of the policies in force is fetched at once, then every `refresh_ms` (Istio's 20 minutes by
 * default). A fetch that fails (transport, HTTP status, not a JWKS with a usable key) is logged (jwks_fetch_failed),
 * counted, and retried with backoff from 1 s, doubling up to refresh_ms; the last good JWKS stays in use. A jwksUri
 * that never fetched has no JWKS: the sidecars refuse every token of its issuer (401), as Istio does, and say why.
 * When what a jwksUri resolves to changes, on_change is called (from the fetcher's thread) so that the pushes are
 * built again. */
#ifndef RINGMESH_CONTROL_JWKS_FETCH_H
#define RINGMESH_CONTROL_JWKS_FETCH_H

#include "ringmesh/policy.h"

#include <stddef.h>
#include <stdint.h>

typedef struct st_rm_jwks_fetcher_t rm_jwks_fetcher_t;

typedef struct st_rm_jwks_fetcher_opts_t {
    uint32_t refresh_ms;     /* 0: 20 minutes */
    uint32_t max_backoff_ms; /* 0: refresh_ms */
    const char *ca_file;     /* NULL: libcurl's default bundle */
    void (*on_change)(void *arg);
    void *arg;
} rm_jwks_fetcher_opts_t;

/** Starts the fetcher's thread and makes it the process's (rm_jwks_resolve reads it). Returns 0 or -errno. */
int rm_jwks_fetcher_start(const rm_jwks_fetcher_opts_t *opts, rm_jwks_fetcher_t **out);

/** Fetches (from now on) every jwksUri of `set`'s RequestAuthentications; URIs no longer used are dropped. */
void rm_jwks_fetcher_watch(rm_jwks_fetcher_t *f, const rm_policy_set_t *set);

/** Failed fetches so far (the metric ringmesh_control_jwks_fetch_failures_total). */
uint64_t rm_jwks_fetcher_failures(const rm_jwks_fetcher_t *f);

void rm_jwks_fetcher_stop(rm_jwks_fetcher_t *f);

/** Copies of `ra`'s JWT rules with the JWKS of each jwksUri filled in from the process's fetcher (jwks, or
 *  jwks_error when it has none yet). *rules (with its strings, freed by rm_jwks_resolved_free) replaces ra->rules
 *  in a shallow copy of `ra` for encoding. Returns 0 or -ENOMEM. */
int rm_jwks_resolve(const rm_request_authn_t *ra, rm_jwt_rule_t **rules);
void rm_jwks_resolved_free(rm_jwt_rule_t *rules, size_t num);

#endif
