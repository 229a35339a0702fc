/* What a proxy configured without a control plane reads from files: its SVID (tls.certFile, tls.keyFile,
 * tls.bundleFile) and its authorization policies (authorization.policyDir). Both are read at start, and read again
 * whenever they change on disk (an agent rotating short-lived SVIDs, a Kubernetes Secret or ConfigMap volume
 * swapping its files, a configuration-management run): what passes the same checks as at start is published for
 * new connections, while open ones keep what they started with. A change that fails a check leaves what is in force
 * as it is, with a log line naming the file and the reason, and is read again only once the files change again. */
#ifndef RINGMESH_FILE_SOURCES_H
#define RINGMESH_FILE_SOURCES_H

#include "proxy.h"

#include <stdint.h>

/** One watched source: a digest of what stat(2) says of its files (through symbolic links, as Secret and ConfigMap
 *  volumes use them; a new inode, size or modification time, or a file added or removed, is a change). */
typedef struct st_rm_file_watch_t {
    uint64_t loaded;  /* when last read, whether what was in them was taken or not */
    uint64_t seen;    /* at the previous check, while a change settles */
    uint8_t settling; /* a change was seen at the previous check */
} rm_file_watch_t;

typedef struct st_rm_file_sources_t {
    const rm_proxy_config_t *cfg;
    uint8_t svid_enabled, policies_enabled;
    rm_file_watch_t svid, policies;
    uint8_t expiring_logged; /* svid_expiring logged for the SVID in force */
    uint8_t expired;         /* svid_expired logged for the SVID in force */
} rm_file_sources_t;

/** Reads the three SVID files and makes the client and server contexts (see rm_tls_ctx_new for the checks). Warns
 *  when the key file is readable by group or others. On failure writes a sentence into `err`, points `*file` at the
 *  file at fault and returns a negative errno or an RM_ERR_* code; key material is wiped from memory either way. */
int rm_svid_files_load(const rm_proxy_config_t *cfg, rm_tls_ctx_t **client, rm_tls_ctx_t **server, char *err,
                       size_t errlen, const char **file);

/** Reads every policy of authorization.policyDir (rm_authz_from_path) for this host. On failure writes
 *  "FILE:LINE:COLUMN: field: reason" into `err` and returns an error. */
int rm_policy_files_load(const rm_proxy_config_t *cfg, rm_authz_t **out, char *err, size_t errlen);

/** Logs the policies in force: `event` is policies_loaded (at start) or policies_reloaded. */
void rm_policy_files_log(const char *event, const rm_proxy_config_t *cfg, const rm_authz_t *authz);

/** Starts watching the files `cfg` names (the SVID's when there is no control plane, the policies' when
 *  authorization.policyDir is set); call before reading them at start, so that a change made in between is read
 *  again. */
void rm_file_sources_watch(rm_file_sources_t *fs, const rm_proxy_config_t *cfg);

/** Checks the watched files once (the proxy's main thread does, every 200 ms). A source whose files have changed
 *  since they were last read, and stayed as they are since the previous check (an agent writing several files one
 *  after the other is done), is read again: a valid SVID is published for new connections (log svid_reloaded),
 *  valid policies likewise (policies_reloaded); a failure is logged (svid_reload_failed, policies_reload_failed).
 *  The SVID in force is watched for its expiry: svid_expiring with a tenth of its lifetime left, svid_expired once
 *  it has expired (peers then refuse it, until valid files are written). */
void rm_file_sources_poll(rm_file_sources_t *fs, rm_proxy_t *p);

#endif
