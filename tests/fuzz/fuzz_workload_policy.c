/* rm_workload_policy_decode(): the WorkloadPolicy the control plane pushes to each proxy (proto/ringmesh/v1/
 * discovery.proto), then what the proxy does with it: compile its policies into an engine and decide fixed requests.
 *
 * The input is the serialized message. Checked: the result is 0, RM_ERR_POLICY_INVALID with a non-empty message,
 * or -ENOMEM; on failure the set is empty; on success every policy is compiled (rm_authz_engine_new() succeeds or
 * refuses with a message), an engine decides a TCP connection with and without a peer identity, and encoding what was
 * decoded and decoding that again gives the same number of policies and port modes. */
/* rm-fuzz-link: ringmesh_proxy_core */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "ringmesh/error.h"
#include "ringmesh/policy.h"

#define ERR_LEN 512

static void decide(const rm_authz_engine_t *engine)
{
    static const uint8_t ip[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 1, 2};
    rm_authz_attrs_t a;
    rm_authz_decision_t d;

    memset(&a, 0, sizeof(a));
    a.principal = "spiffe://cluster.local/ns/shop/sa/frontend";
    memcpy(a.source_ip, ip, sizeof(ip));
    a.have_source_ip = 1;
    a.destination_port = 8080;
    rm_authz_evaluate(engine, &a, 0.5, &d);
    RM_FUZZ_CHECK(rm_authz_decision_word(&d) != NULL);
    a.principal = NULL;
    rm_authz_evaluate(engine, &a, 0.5, &d);
    RM_FUZZ_CHECK(rm_authz_decision_word(&d) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_policy_set_t set, again;
    rm_workload_policy_t wp, wp2;
    char err[ERR_LEN];
    uint8_t *copy = rm_fuzz_memdup(data, size), *enc = NULL;
    size_t enc_len = 0;
    int ret;

    memset(&set, 0, sizeof(set));
    memset(&again, 0, sizeof(again));
    memset(&wp, 0, sizeof(wp));
    memset(&wp2, 0, sizeof(wp2));
    err[0] = '\0';
    ret = rm_workload_policy_decode(copy, size, &set, &wp, err, sizeof(err));
    if (ret != 0) {
        RM_FUZZ_CHECK(ret == RM_ERR_POLICY_INVALID || ret == -ENOMEM);
        RM_FUZZ_CHECK(ret == -ENOMEM || (memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0'));
        RM_FUZZ_CHECK(set.num_policies == 0 && set.num_peer_authns == 0);
        goto Exit;
    }
    {
        const rm_authz_policy_t **ps = calloc(set.num_policies + 1, sizeof(*ps));
        rm_authz_engine_t *engine = NULL;
        RM_FUZZ_CHECK(ps != NULL);
        for (size_t i = 0; i != set.num_policies; ++i)
            ps[i] = &set.policies[i];
        err[0] = '\0';
        if (rm_authz_engine_new(&engine, ps, set.num_policies, &wp.opts, err, sizeof(err)) == 0) {
            decide(engine);
            rm_authz_engine_free(engine);
        } else {
            RM_FUZZ_CHECK(err[0] != '\0');
        }
        RM_FUZZ_CHECK(rm_workload_policy_encode((const rm_authz_policy_t *const *)ps, set.num_policies, &wp, &enc,
                                                &enc_len) == 0);
        free(ps);
    }
    err[0] = '\0';
    ret = rm_workload_policy_decode(enc, enc_len, &again, &wp2, err, sizeof(err));
    if (ret != 0)
        fprintf(stderr, "re-decoding failed: %s\n", err);
    RM_FUZZ_CHECK(ret == 0);
    RM_FUZZ_CHECK(again.num_policies == set.num_policies);
    RM_FUZZ_CHECK(wp2.num_port_modes == wp.num_port_modes);

Exit:
    free(enc);
    rm_policy_set_clear(&set);
    rm_policy_set_clear(&again);
    rm_workload_policy_clear(&wp);
    rm_workload_policy_clear(&wp2);
    free(copy);
    return 0;
}
