/* Where the webhook learns a namespace's labels and the cluster's version (the rm_inject_namespace_labels_fn and
 * rm_inject_kube_version_fn of inject.h):
 *  - with the Kubernetes source, from the source itself (source.h's namespace_labels and server_version: the
 *    namespace cache, and the API server's /version);
 *  - with the file source, from flags: --namespace-labels-file FILE (a YAML or JSON mapping of namespace name ->
 *    labels, read again at every review, so that it may change under a running control plane; a namespace it does
 *    not name has no labels) and --kube-version MAJOR.MINOR (fixed). */
#ifndef RINGMESH_CONTROL_INJECT_LOOKUP_H
#define RINGMESH_CONTROL_INJECT_LOOKUP_H

#include "inject.h"

/** An rm_inject_namespace_labels_fn; `arg` is the file's path (const char *). A file that cannot be read or is not
 *  a mapping of mappings of strings fails the lookup (-errno / -EINVAL), and the review with it. */
int rm_inject_namespace_labels_from_file(void *arg, const char *namespace_, json_t **labels);

typedef struct st_rm_inject_fixed_version_t {
    unsigned major, minor;
} rm_inject_fixed_version_t;

/** An rm_inject_kube_version_fn; `arg` is an rm_inject_fixed_version_t (0.0: unknown, -ENOENT). */
int rm_inject_kube_version_fixed(void *arg, unsigned *major, unsigned *minor);

/** An rm_inject_namespace_labels_fn; `arg` is an rm_source_t whose ops have namespace_labels (source.h): its
 *  answer, errors included (the review then fails with the reason and the webhook's failurePolicy decides). */
int rm_inject_namespace_labels_from_source(void *arg, const char *namespace_, json_t **labels);

/** An rm_inject_kube_version_fn; `arg` is an rm_source_t whose ops have server_version: the version it last
 *  learned, or -ENOENT while unknown. */
int rm_inject_kube_version_from_source(void *arg, unsigned *major, unsigned *minor);

/** Reads the API server's version from its /version document: gitVersion when it parses ("v1.33.2",
 *  "v1.29.0-eks-4f2b1c", "v1.28.5+k3s1", "v1.30.1-gke.1200"), else the major and minor fields ("1" and "29" or
 *  "29+", as some providers report). Returns 0 with major.minor (major at least 1), or -EINVAL when neither
 *  reads as a version. */
int rm_inject_parse_version_info(const json_t *doc, unsigned *major, unsigned *minor);

#endif
