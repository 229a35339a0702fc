/* rm__trace_kv_list_parse(): the proxy's reading of OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS
 * ("k=v,k2=v2", values percent-decoded), set in the pod's environment by whoever writes the pod spec.
 *
 * The input is the variable's value (cut at its first NUL, as the environment is). Checked: the result is 0,
 * -EINVAL or -ENOMEM; -EINVAL points *bad / *bad_len at a piece inside the input; every key handed over is non-empty
 * (unless percent-encoding made it so) and no more keys come than there are entries; keys and values are owned by the
 * callee (freed here) and NUL-terminated. */
/* rm-fuzz-link: ringmesh_proxy_core */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "trace_export_internal.h"

typedef struct {
    const char *raw; /* the whole input */
    size_t count;
} seen_t;

static void take(void *ctx, char *key, char *value)
{
    seen_t *s = ctx;
    size_t n;

    RM_FUZZ_CHECK(key != NULL && value != NULL);
    n = strlen(key);
    RM_FUZZ_CHECK(n > 0 || strchr(s->raw, '%') != NULL); /* (a key written only as %00 decodes to "") */
    rm_fuzz_touch(key, n);
    rm_fuzz_touch(value, strlen(value));
    s->count++;
    free(key);
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = rm_fuzz_strndup(data, size);
    const char *bad = NULL;
    size_t bad_len = 0, len = strlen(s), entries = 1;
    seen_t seen = {s, 0};
    int ret = rm__trace_kv_list_parse(s, take, &seen, &bad, &bad_len);

    RM_FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
    if (ret == -EINVAL) {
        RM_FUZZ_CHECK(bad != NULL && bad >= s && bad <= s + len && bad_len <= (size_t)(s + len - bad));
        rm_fuzz_touch(bad, bad_len);
    }
    for (size_t i = 0; i != len; ++i)
        entries += s[i] == ',';
    RM_FUZZ_CHECK(seen.count <= entries);
    free(s);
    return 0;
}
