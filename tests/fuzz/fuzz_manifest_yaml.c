/* rm_yaml_to_json() and rm_json_to_yaml(): the manifests ringmeshctl inject reads and writes.
 *
 * The input is a YAML stream. Checked: the reader returns 0 with a JSON array, or -EINVAL with a message that is
 * non-empty and starts with "LINE:COLUMN: "; what was read, written back as YAML and read again, is the same
 * JSON (strings stay strings, numbers stay numbers), unless it holds a string with a NUL, which the writer refuses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ringmesh/yaml_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *docs = NULL, *again = NULL;
    char err[256], *yaml = NULL;
    size_t len;
    unsigned line, col;
    int ret;

    ret = rm_yaml_to_json((const char *)data, size, &docs, err, sizeof(err));
    if (ret != 0) {
        RM_FUZZ_CHECK(ret == -EINVAL || ret == -ENOMEM);
        RM_FUZZ_CHECK(docs == NULL);
        if (ret == -EINVAL)
            RM_FUZZ_CHECK(sscanf(err, "%u:%u: ", &line, &col) == 2 && line >= 1 && col >= 1);
        return 0;
    }
    RM_FUZZ_CHECK(json_is_array(docs));
    ret = rm_json_to_yaml(docs, &yaml, &len);
    if (ret == 0) {
        RM_FUZZ_CHECK(strlen(yaml) == len);
        RM_FUZZ_CHECK(rm_yaml_to_json(yaml, len, &again, err, sizeof(err)) == 0);
        RM_FUZZ_CHECK(json_equal(docs, again));
    } else {
        RM_FUZZ_CHECK(ret == -EINVAL);
    }
    free(yaml);
    json_decref(again);
    json_decref(docs);
    return 0;
}
