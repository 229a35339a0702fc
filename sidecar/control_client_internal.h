/* Internal to the proxy's control-plane client, shared by its parts; the contract with the rest of the proxy is
 * control_client.h.
 *
 *   control_client.c     the client's state, its thread and lifetime; snapshots published to the workers; the TLS
 *                        contexts made from the SVID held and for reaching the control plane
 *   svid_renewal.c       Identity.Sign: a new key and CSR, the SVID taken, renewed before expiry, expiry watched
 *   discovery_stream.c   Discovery.Stream: subscription, pushes applied, ACK/NACK, reconnection with backoff
 *   control_resources.c  pushed resources checked and applied (TrustBundle, WorkloadPolicy, DestinationMap,
 *                        MeshSettings)
 *   control_state.c      the state directory: what was accepted is saved, and restored at start
 *
 * Everything here runs on the control thread, or before it starts (rm_control_client_start): nothing is locked. */
#ifndef RINGMESH_CONTROL_CLIENT_INTERNAL_H
#define RINGMESH_CONTROL_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "control_client.h"
#include "workload_meta.h"
#include "grpc_h2.h"
#include "ringmesh/xds.h"
#include "ringmesh/v1/discovery.pb-c.h"

struct st_rm_control_client_t {
    rm_proxy_t *proxy;
    const rm_proxy_config_t *cfg; /* the base snapshot's, alive as long as the proxy */
    const rm_control_config_t *ccfg;
    pthread_t thread;
    atomic_int stop;
    char node_id[256], node_ns[256], node_sa[256];

    /* identity */
    char *cert_pem, *key_pem, *bundle_pem; /* the SVID held (key in memory only; the state file is 0600) */
    size_t cert_len, key_len, bundle_len;
    int64_t not_before, not_after;
    int64_t issued_at;    /* when it was received: NotBefore is backdated for clock skew, so the lifetime that
                           * counts for renewal runs from here */
    uint64_t renew_at_ms; /* monotonic */
    unsigned sign_failures;
    int expiring_logged, expired_published;
    rm_tls_ctx_t *client_ctx, *server_ctx;

    /* configuration: last accepted per type */
    char versions[RM_XDS_NUM_TYPES][64];
    rm_dest_table_t *dests;
    rm_authz_t *authz; /* the WorkloadPolicy in force */
    int have_mesh;
    rm_mtls_mode_t inbound_mode;
    int have_inbound_mode;
    uint32_t connect_timeout_ms, idle_timeout_ms;
    int access_log;                                 /* MeshSettings.access_log */
    double access_log_sample;                       /* MeshSettings.access_log_sample_rate */
    rm_workload_table_t *workloads;                 /* the WorkloadMap in force */
    int metrics_istio_names;                        /* MeshSettings' metrics settings: 0 while none came, 1 off, 2 on */
    uint32_t metrics_max_series, metrics_expiry_ms; /* 0: the file's */

    /* discovery stream */
    rm_h2_conn_t *conn;
    rm_h2_call_t *call;
    int stream_up, stream_ended;
    uint64_t stream_up_since_ms;
    int end_status;
    char end_message[256];
    char control_id[600]; /* the SPIFFE ID the control plane must present */
    uint64_t reconnect_at_ms;
    unsigned stream_failures;
    int outage_logged;
    int received_any;
};

/* control_client.c */

/** Milliseconds of CLOCK_MONOTONIC. */
uint64_t rm__control_now_ms(void);

/** 32 random bits (from getrandom, or the clock when it has none to give). */
uint32_t rm__control_rand32(void);

/** The wait before retry number `failures` (from 1): capped exponential backoff with full jitter in [d/2, d]. */
uint64_t rm__control_backoff_ms(unsigned failures);

/** Publishes a snapshot of what the client holds to the workers (logging proxy_ready the first time everything is
 *  in place). On failure to allocate the previous snapshot stays in force, and that is logged. */
void rm__control_publish(rm_control_client_t *cc);

/** Builds the client and server TLS contexts from the SVID held and `bundle` (NULL: the bundle held). Returns 0 or an
 *  error with the reason in err; nothing changes on failure. */
int rm__control_rebuild_tls(rm_control_client_t *cc, const char *bundle, size_t bundle_len, char *err, size_t errlen);

/** A TLS client context for the control plane: ALPN h2, the bootstrap roots plus the bundle held, and the SVID when
 *  `with_svid` and one is held. Returns 0 (the caller owns *out) or an error with the reason in err. */
int rm__control_make_ctx(rm_control_client_t *cc, int with_svid, rm_tls_ctx_t **out, char *err, size_t errlen);

/* svid_renewal.c */

/** Sets when to renew: at the configured fraction of the SVID's lifetime, spread by up to 20 % either way. */
void rm__control_schedule_renewal(rm_control_client_t *cc);

/** Asks for a new SVID now (Identity.Sign); on success publishes it and schedules the next renewal, on failure
 *  schedules a retry with backoff and logs (on the 1st, 2nd, 4th... failure). */
void rm__control_renew(rm_control_client_t *cc);

/** Warns once when the SVID nears expiry; once it has expired, stops presenting it and publishes that. */
void rm__control_check_expiry(rm_control_client_t *cc);

/* discovery_stream.c */

/** Opens the connection and the Discovery stream and subscribes to every type; on failure the stream counts as
 *  closed (rm__control_stream_closed). */
void rm__control_stream_open(rm_control_client_t *cc);

/** The stream has ended or could not start: logs once per outage, closes the connection and schedules the next
 *  attempt with backoff. */
void rm__control_stream_closed(rm_control_client_t *cc, int status, const char *details);

/* control_resources.c */

/** Checks and applies one resource of `type` (RM_XDS_*) to what the client holds. Returns 0, or a negative error
 *  (-EINVAL, -ENOMEM, the policy compiler's) with the reason in err; on failure what was held stays. */
int rm__control_apply_resource(rm_control_client_t *cc, int type, const Ringmesh__V1__Resource *res, char *err,
                               size_t errlen);

/* control_state.c */

/** Reads a state file, token or bundle: at most 1 MiB, NUL-terminated, with RM_FILE_SECRET (never copied by a
 *  reallocation). The caller frees it, with rm_file_free(..., RM_FILE_SECRET) when it holds key material. Returns 0
 *  or a negative errno. */
int rm__control_read_file(const char *path, char **out, size_t *len);

/** Writes `name` in the state directory (mode 0600 when `is_private`); a failure is logged, not returned. */
void rm__control_save_state(rm_control_client_t *cc, const char *name, const void *data, size_t len, int is_private);

/** Saves an accepted resource of `type` in the state directory. */
void rm__control_save_resource(rm_control_client_t *cc, int type, const Ringmesh__V1__Resource *res);

/** Restores the SVID (when it is still valid and trusted) and the resources saved in the state directory. */
void rm__control_restore_state(rm_control_client_t *cc);

#endif
