/* Where the webhook learns a namespace's labels and the cluster's version, until the Kubernetes API source serves
 * both (it will pass its own rm_inject_namespace_labels_fn and rm_inject_kube_version_fn instead):
 *  - --namespace-labels-file FILE: a YAML or JSON mapping of namespace name -> labels, read again at every review
 *    (so that it may change under a running control plane); a namespace it does not name has no labels;
 *  - --kube-version MAJOR.MINOR: fixed. */
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

#endif
