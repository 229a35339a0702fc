/* rm_app_probes_parse(): the proxy's reading of RINGMESH_APP_PROBERS, the JSON the injector writes from the pod's
 * own liveness, readiness and startup probes (whoever writes the pod spec controls it).
 *
 * The input is the variable's value (cut at its first NUL, as the environment is). Checked: the result is 0,
 * RM_ERR_CONFIG_PARSE or RM_ERR_CONFIG_VALUE; a failure names the variable in a non-empty NUL-terminated message and
 * leaves nothing allocated (the table stays empty); on success there are at most RM_APP_HEALTH_MAX_PROBES probes, each
 * with a key under /app-health/, a container and a name, a port, at most RM_APP_HEALTH_MAX_HEADERS headers (each
 * named; a value may be null) and a timeout of at least one second, and looking each key up finds that probe. */
/* rm-fuzz-link: ringmesh_proxy_core */
#include <string.h>

#include "app_health.h"
#include "fuzz.h"
#include "ringmesh/error.h"

#define ERR_LEN 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_app_probes_t t;
    char err[ERR_LEN];
    char *json = rm_fuzz_strndup(data, size);
    int ret;

    memset(&t, 0, sizeof(t));
    err[0] = '\0';
    ret = rm_app_probes_parse(RM_APP_HEALTH_ENV, json, &t, err, sizeof(err));
    if (ret != 0) {
        RM_FUZZ_CHECK(ret == RM_ERR_CONFIG_PARSE || ret == RM_ERR_CONFIG_VALUE);
        RM_FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && strstr(err, RM_APP_HEALTH_ENV) != NULL);
        RM_FUZZ_CHECK(t.probes == NULL && t.num_probes == 0);
    } else {
        RM_FUZZ_CHECK(t.num_probes <= RM_APP_HEALTH_MAX_PROBES);
        for (size_t i = 0; i != t.num_probes; ++i) {
            const rm_app_probe_t *p = &t.probes[i];
            RM_FUZZ_CHECK(p->key != NULL && strncmp(p->key, RM_APP_HEALTH_PREFIX, strlen(RM_APP_HEALTH_PREFIX)) == 0);
            RM_FUZZ_CHECK(p->container != NULL && p->name != NULL);
            RM_FUZZ_CHECK(p->port != 0 && p->num_headers <= RM_APP_HEALTH_MAX_HEADERS && p->timeout_s >= 1);
            RM_FUZZ_CHECK(p->kind != RM_APP_PROBE_HTTP || p->path != NULL);
            for (size_t h = 0; h != p->num_headers; ++h) {
                RM_FUZZ_CHECK(p->header_names[h] != NULL && p->header_names[h][0] != '\0');
                if (p->header_values[h] != NULL) /* a null value is sent empty */
                    rm_fuzz_touch(p->header_values[h], strlen(p->header_values[h]));
            }
            RM_FUZZ_CHECK(rm_app_probes_find(&t, p->key) == p);
        }
    }
    rm_app_probes_dispose(&t);
    free(json);
    return 0;
}
