/* Which policies apply to a workload: selection by namespace and labels (the root namespace's policies apply
 * mesh-wide), and the PeerAuthentication mode that results for a workload and its ports. */
#include "ringmesh/policy.h"

#include <string.h>

static int labels_match(const rm_label_t *want, size_t nwant, const rm_workload_t *w)
{
    for (size_t i = 0; i < nwant; i++) {
        int found = 0;
        for (size_t k = 0; k < w->num_labels && !found; k++)
            found = strcmp(w->labels[k].key, want[i].key) == 0 && strcmp(w->labels[k].value, want[i].value) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

static int selects(const char *pns, int has_selector, const rm_label_t *ml, size_t nml, const char *root,
                   const rm_workload_t *w)
{
    int in_root = root != NULL && strcmp(pns, root) == 0;
    if (in_root && !has_selector)
        return 1;
    if (!in_root && strcmp(pns, w->namespace_) != 0)
        return 0;
    return !has_selector || labels_match(ml, nml, w);
}

int rm_authz_policy_selects(const rm_authz_policy_t *p, const char *root_namespace, const rm_workload_t *w)
{
    return selects(p->namespace_, p->has_selector, p->match_labels, p->num_match_labels, root_namespace, w);
}

int rm_peer_authn_selects(const rm_peer_authn_t *p, const char *root_namespace, const rm_workload_t *w)
{
    return selects(p->namespace_, p->has_selector, p->match_labels, p->num_match_labels, root_namespace, w);
}

int rm_request_authn_selects(const rm_request_authn_t *p, const char *root_namespace, const rm_workload_t *w)
{
    return selects(p->namespace_, p->has_selector, p->match_labels, p->num_match_labels, root_namespace, w);
}

rm_peer_mtls_mode_t rm_peer_authn_resolve(const rm_policy_set_t *set, const char *root_namespace,
                                          const rm_workload_t *w, rm_peer_port_mode_t *port_modes, size_t max_ports,
                                          size_t *num_ports)
{
    /* the first by namespace/name at each level, so every replica and every run pick the same one */
    const rm_peer_authn_t *level[3] = {NULL, NULL, NULL}; /* mesh, namespace, workload */
    for (size_t i = 0; i < set->num_peer_authns; i++) {
        const rm_peer_authn_t *p = &set->peer_authns[i];
        int lv;
        int in_root = root_namespace != NULL && strcmp(p->namespace_, root_namespace) == 0;
        int wl = p->has_selector && p->num_match_labels > 0;
        if (!rm_peer_authn_selects(p, root_namespace, w))
            continue;
        if (wl && strcmp(p->namespace_, w->namespace_) != 0)
            continue; /* workload-level policies apply in their own namespace only */
        lv = wl ? 2 : in_root && strcmp(w->namespace_, root_namespace) != 0 ? 0 : 1;
        if (level[lv] == NULL || strcmp(p->name, level[lv]->name) < 0)
            level[lv] = p;
    }
    rm_peer_mtls_mode_t mode = RM_PEER_MTLS_UNSET;
    for (int lv = 0; lv < 3; lv++)
        if (level[lv] != NULL && level[lv]->mode != RM_PEER_MTLS_UNSET)
            mode = level[lv]->mode;
    if (num_ports != NULL)
        *num_ports = 0;
    if (level[2] != NULL && port_modes != NULL && num_ports != NULL) {
        for (size_t i = 0; i < level[2]->num_port_modes && *num_ports < max_ports; i++)
            if (level[2]->port_modes[i].mode != RM_PEER_MTLS_UNSET)
                port_modes[(*num_ports)++] = level[2]->port_modes[i];
    }
    return mode;
}
