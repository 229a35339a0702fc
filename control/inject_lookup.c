/* Stand-ins for what the Kubernetes API source will tell the webhook (inject_lookup.h). */
#include "inject_lookup.h"

#include "ringmesh/config.h"
#include "ringmesh/yaml_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LABELS_FILE_MAX (1u << 20)

int rm_inject_namespace_labels_from_file(void *arg, const char *namespace_, json_t **labels)
{
    char *data = NULL, err[256];
    size_t len;
    json_t *docs = NULL, *all, *mine, *v;
    const char *key;
    int ret;

    *labels = NULL;
    if ((ret = rm_file_read((const char *)arg, LABELS_FILE_MAX, &data, &len)) != 0)
        return ret;
    if ((ret = rm_yaml_to_json(data, len, &docs, err, sizeof(err))) != 0)
        goto Exit;
    all = json_array_get(docs, 0);
    if (all != NULL && !json_is_object(all) && !json_is_null(all)) {
        ret = -EINVAL;
        goto Exit;
    }
    if ((mine = json_object_get(all, namespace_)) == NULL || json_is_null(mine))
        goto Exit;
    if (!json_is_object(mine)) {
        ret = -EINVAL;
        goto Exit;
    }
    json_object_foreach(mine, key, v)
    {
        if (!json_is_string(v)) {
            ret = -EINVAL;
            goto Exit;
        }
    }
    *labels = json_incref(mine);

Exit:
    json_decref(docs);
    free(data);
    return ret;
}

int rm_inject_kube_version_fixed(void *arg, unsigned *major, unsigned *minor)
{
    const rm_inject_fixed_version_t *v = arg;
    if (v == NULL || (v->major == 0 && v->minor == 0))
        return -ENOENT;
    *major = v->major;
    *minor = v->minor;
    return 0;
}
