#include "ringmesh/xds.h"

#include <string.h>

#include "ringmesh/digest.h"

static const char *const type_urls[RM_XDS_NUM_TYPES] = {
    RM_XDS_TYPE_PREFIX "TrustBundle",    RM_XDS_TYPE_PREFIX "DestinationMap", RM_XDS_TYPE_PREFIX "MeshSettings",
    RM_XDS_TYPE_PREFIX "WorkloadPolicy", RM_XDS_TYPE_PREFIX "WorkloadMap",
};

static const char *const type_names[RM_XDS_NUM_TYPES] = {"trust_bundle", "destinations", "mesh_settings",
                                                         "workload_policy", "workloads"};

const char *rm_xds_type_url(rm_xds_type_t t)
{
    return (unsigned)t < RM_XDS_NUM_TYPES ? type_urls[t] : "";
}

const char *rm_xds_type_name(rm_xds_type_t t)
{
    return (unsigned)t < RM_XDS_NUM_TYPES ? type_names[t] : "unknown";
}

int rm_xds_type_from_url(const char *url)
{
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
        if (url != NULL && strcmp(url, type_urls[t]) == 0)
            return t;
    return -1;
}

void rm_xds_version_of(const void *data, size_t len, char out[RM_XDS_VERSION_LEN + 1])
{
    uint8_t md[RM_SHA256_LEN];

    rm_sha256(data, len, md);
    rm_hex_encode(md, RM_XDS_VERSION_LEN / 2, out);
}
