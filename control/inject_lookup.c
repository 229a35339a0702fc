/* What the webhook learns about the cluster: from the configuration source, or from flags (inject_lookup.h). */
#include "inject_lookup.h"

#include "source.h"

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

int rm_inject_namespace_labels_from_source(void *arg, const char *namespace_, json_t **labels)
{
    rm_source_t *src = arg;
    *labels = NULL;
    return src->ops->namespace_labels(src, namespace_, labels);
}

int rm_inject_kube_version_from_source(void *arg, unsigned *major, unsigned *minor)
{
    rm_source_t *src = arg;
    return src->ops->server_version(src, major, minor);
}

/* A decimal number of at most 4 digits, then `tail` ("" or "+"), and nothing else. */
static int parse_field(const char *s, const char *tail, unsigned *out)
{
    unsigned v = 0;
    size_t n = 0;
    if (s == NULL)
        return -EINVAL;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n == 4)
            return -EINVAL;
        v = v * 10 + (unsigned)(s[n] - '0');
    }
    if (n == 0 || (strcmp(s + n, "") != 0 && strcmp(s + n, tail) != 0))
        return -EINVAL;
    *out = v;
    return 0;
}

int rm_inject_parse_version_info(const json_t *doc, unsigned *major, unsigned *minor)
{
    unsigned ma, mi;

    if (!json_is_object(doc))
        return -EINVAL;
    if (rm_inject_parse_kube_version(json_string_value(json_object_get(doc, "gitVersion")), &ma, &mi) == 0 && ma >= 1)
        goto Found;
    if (parse_field(json_string_value(json_object_get(doc, "major")), "+", &ma) == 0 &&
        parse_field(json_string_value(json_object_get(doc, "minor")), "+", &mi) == 0 && ma >= 1)
        goto Found;
    return -EINVAL;
Found:
    *major = ma;
    *minor = mi;
    return 0;
}
