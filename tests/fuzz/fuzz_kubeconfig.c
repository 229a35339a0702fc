/* rm_kube_config_load_kubeconfig(): the kubeconfig the control plane reads with --kubeconfig (YAML).
 *
 * The input is the file's text, parsed from memory and shown as "fuzz.kubeconfig" (relative file names are then
 * relative to the current directory; the loader only records them, it does not open them). Checked: the result is
 * 0 or an RM_ERR_CONFIG_* code; on failure the error carries that code, the file name and a non-empty
 * NUL-terminated reason, and the configuration holds nothing; on success the server is https:// with no trailing
 * '/', the origin names the file, and there is at most one way to trust the server (file or inline) and at most
 * one client credential of each kind (token or token file; certificate file or inline, key likewise). */
/* rm-fuzz-link: ringmesh_control_core */
#include <string.h>

#include "fuzz.h"
#include "kube_client.h"
#include "ringmesh/error.h"

static void touch(const char *s)
{
    if (s != NULL)
        rm_fuzz_touch(s, strlen(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_kube_config_t cfg;
    rm_config_error_t err;
    char *text = rm_fuzz_strndup(data, size);
    int ret;

    memset(&cfg, 0, sizeof(cfg));
    memset(&err, 0, sizeof(err));
    ret = rm_kube_config_load_kubeconfig("fuzz.kubeconfig", text, size, &cfg, &err);
    if (ret != 0) {
        RM_FUZZ_CHECK(ret == err.code);
        RM_FUZZ_CHECK(memchr(err.reason, '\0', sizeof(err.reason)) != NULL && err.reason[0] != '\0');
        RM_FUZZ_CHECK(memchr(err.file, '\0', sizeof(err.file)) != NULL && strcmp(err.file, "fuzz.kubeconfig") == 0);
        RM_FUZZ_CHECK(cfg.server == NULL && cfg.token == NULL && cfg.key_data == NULL);
    } else {
        size_t n;
        RM_FUZZ_CHECK(cfg.server != NULL && strncmp(cfg.server, "https://", 8) == 0);
        n = strlen(cfg.server);
        RM_FUZZ_CHECK(n > 8 && cfg.server[n - 1] != '/');
        RM_FUZZ_CHECK(cfg.origin != NULL && strstr(cfg.origin, "fuzz.kubeconfig") != NULL);
        RM_FUZZ_CHECK(cfg.ca_file == NULL || cfg.ca_data == NULL);
        RM_FUZZ_CHECK(cfg.token == NULL || cfg.token_file == NULL);
        RM_FUZZ_CHECK(cfg.cert_file == NULL || cfg.cert_data == NULL);
        RM_FUZZ_CHECK(cfg.key_file == NULL || cfg.key_data == NULL);
        touch(cfg.ca_file);
        touch(cfg.ca_data);
        touch(cfg.token);
        touch(cfg.token_file);
        touch(cfg.cert_file);
        touch(cfg.key_file);
        touch(cfg.cert_data);
        touch(cfg.key_data);
        touch(cfg.namespace_);
    }
    rm_kube_config_clear(&cfg);
    free(text);
    return 0;
}
