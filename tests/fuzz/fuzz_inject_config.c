/* rm_inject_config_parse(): the injector's InjectorConfig (the sidecar injector's YAML configuration, from the
 * chart's ConfigMap), read over the defaults as ringmesh-control does.
 *
 * The input is the document. Checked: the result is 0 or an RM_ERR_CONFIG_* code equal to the error's, whose reason
 * is non-empty, NUL-terminated and names the file; on success the fields the injector writes into pods are set (a
 * name, an image, a control address, a trust domain, a pull policy of Always, IfNotPresent or Never) and the proxy's
 * UID is not root; disposing is safe either way. */
/* rm-fuzz-link: ringmesh_inject */
#include <string.h>

#include "fuzz.h"
#include "inject.h"
#include "ringmesh/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_inject_config_t c;
    rm_config_error_t err;
    char *text = rm_fuzz_strndup(data, size);
    int ret;

    memset(&c, 0, sizeof(c));
    memset(&err, 0, sizeof(err));
    RM_FUZZ_CHECK(rm_inject_config_defaults(&c) == 0);
    ret = rm_inject_config_parse("fuzz-injector.yaml", text, size, &c, &err);
    if (ret != 0) {
        RM_FUZZ_CHECK(ret == err.code);
        RM_FUZZ_CHECK(memchr(err.reason, '\0', sizeof(err.reason)) != NULL && err.reason[0] != '\0');
        RM_FUZZ_CHECK(strcmp(err.file, "fuzz-injector.yaml") == 0);
    } else {
        RM_FUZZ_CHECK(c.name != NULL && c.image != NULL && c.control_address != NULL && c.trust_domain != NULL);
        RM_FUZZ_CHECK(c.image_pull_policy != NULL);
        RM_FUZZ_CHECK(strcmp(c.image_pull_policy, "Always") == 0 || strcmp(c.image_pull_policy, "IfNotPresent") == 0 ||
                      strcmp(c.image_pull_policy, "Never") == 0);
        RM_FUZZ_CHECK(c.proxy_uid != 0);
        rm_fuzz_touch(c.image, strlen(c.image));
        rm_fuzz_touch(c.control_address, strlen(c.control_address));
    }
    rm_inject_config_dispose(&c);
    free(text);
    return 0;
}
