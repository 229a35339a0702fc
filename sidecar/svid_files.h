/* The SVID of a proxy configured without a control plane: the certificate chain, private key and trust bundle in
 * tls.certFile, tls.keyFile and tls.bundleFile. They are read at start, and read again whenever they change on disk
 * (an agent that rotates short-lived SVIDs, a Kubernetes Secret volume swapping its files): the new SVID is checked
 * as at start and published for new connections, while open ones keep the one they started with. A set that fails a
 * check leaves the SVID in force as it is, with a log line naming the file and the reason. */
#ifndef RINGMESH_SVID_FILES_H
#define RINGMESH_SVID_FILES_H

#include "proxy.h"

#include <stdint.h>
#include <sys/types.h>

enum { RM_SVID_FILE_CERT, RM_SVID_FILE_KEY, RM_SVID_FILE_BUNDLE, RM_SVID_NUM_FILES };

/** What stat(2) says of a file (through symbolic links, as Secret volumes use them): a new inode, size or
 *  modification time is a change. */
typedef struct st_rm_file_sig_t {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    int err; /* -errno when stat failed */
} rm_file_sig_t;

typedef struct st_rm_svid_files_t {
    const rm_proxy_config_t *cfg;
    rm_file_sig_t loaded[RM_SVID_NUM_FILES]; /* when last read, whether the SVID in them was taken or not */
    rm_file_sig_t seen[RM_SVID_NUM_FILES];   /* at the previous check, while a change settles */
    int settling;                            /* a change was seen at the previous check */
} rm_svid_files_t;

/** Reads the three files and makes the client and server contexts (see rm_tls_ctx_new for the checks). Warns when the
 *  key file is readable by group or others. On failure writes a sentence into `err`, points `*file` at the file at
 *  fault and returns a negative errno or an RM_ERR_* code; key material is wiped from memory either way. */
int rm_svid_files_load(const rm_proxy_config_t *cfg, rm_tls_ctx_t **client, rm_tls_ctx_t **server, char *err,
                       size_t errlen, const char **file);

/** Starts watching the files of `cfg`; call before the first rm_svid_files_load, so that a change made in between is
 *  not missed. */
void rm_svid_files_watch(rm_svid_files_t *w, const rm_proxy_config_t *cfg);

/** Checks the files once (the proxy's main thread does, every 200 ms). When they have changed since they were last
 *  read and stayed as they are since the previous check (an agent writing the three one after the other is done),
 *  reads them again: a valid SVID is published for new connections (log `svid_reloaded`), an invalid one is logged
 *  (`svid_reload_failed`) and read again only after the next change. Returns 1 when it published, 0 when nothing
 *  changed or is settling, negative when the files failed. */
int rm_svid_files_poll(rm_svid_files_t *w, rm_proxy_t *p);

#endif
