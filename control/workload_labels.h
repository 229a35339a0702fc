/* A discovery stream's workload: the namespace and labels its WorkloadPolicy is chosen by, owned, with the key under
 * which the push is shared by every node of the same workload (discovery_state.h). The labels come either from the
 * node itself (file source) or from the configuration source's pod (source.h, lookup_workload). */
#ifndef RINGMESH_CONTROL_WORKLOAD_LABELS_H
#define RINGMESH_CONTROL_WORKLOAD_LABELS_H

#include <stddef.h>

#include "discovery_state.h"
#include "ringmesh/policy.h"
#include "ringmesh/v1/discovery.pb-c.h"

typedef struct st_rm_workload_labels_t {
    rm_xds_workload_t xw; /* what discovery reads; points into the fields below */
    rm_label_t *labels;   /* sorted by key, then value */
    char *key;            /* "ns\nk=v\n..." */
} rm_workload_labels_t;

/** Makes `labels` (taken over, freed on failure too; sorted here) the workload of namespace `ns` (borrowed: it must
 *  outlive `wl`). Returns 0 or -ENOMEM (then `wl` is unchanged). */
int rm_workload_labels_set(rm_workload_labels_t *wl, const char *ns, rm_label_t *labels, size_t n);

/** The node's own labels. Returns 0 or -ENOMEM. */
int rm_workload_labels_from_node(rm_workload_labels_t *wl, const char *ns, const Ringmesh__V1__Node *node);

/** 1 when `labels` (sorted as above) are the ones held. */
int rm_workload_labels_equal(const rm_workload_labels_t *wl, const rm_label_t *labels, size_t n);

/** Frees a label array. */
void rm_labels_free(rm_label_t *labels, size_t n);

/** Frees what `wl` holds and zeroes it. */
void rm_workload_labels_clear(rm_workload_labels_t *wl);

#endif
