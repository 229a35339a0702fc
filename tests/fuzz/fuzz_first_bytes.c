/* What the proxy decides from a client's first plaintext bytes: each connection filter's sniff() (HTTP/1.x,
 * HTTP/2 prior knowledge), rm_h2_filter_sniff() and rm__conn_pick_filter(), which picks the filter that takes the
 * connection (or none: plain TCP), as the inbound policy path and the outbound observer call them.
 *
 * The input is the first bytes; every prefix of it (up to 1 KiB) is offered, as they arrive one read at a time.
 * Checked: each answer is one of the documented values; an answer stays once given (a protocol recognised, or
 * refused, on a prefix is recognised, or refused, on every longer prefix: more bytes never change a decision); a
 * picked filter is one of rm_conn_filters and claims the bytes itself; when none is picked and none asked for more,
 * no filter says YES or NEED_MORE. */
/* rm-fuzz-link: ringmesh_proxy_core */
#include <errno.h>
#include <string.h>

#include "conn_filter.h"
#include "fuzz.h"
#include "h2_filter.h"
#include "proxy_conn-t.h"

#define MAX_PREFIX  1024
#define MAX_FILTERS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_conn_sniff_t settled[MAX_FILTERS];
    const rm_conn_filter_ops_t *picked = NULL;
    int h2_settled = -EAGAIN, num = 0;
    size_t limit = size < MAX_PREFIX ? size : MAX_PREFIX;

    while (rm_conn_filters[num] != NULL) {
        RM_FUZZ_CHECK(num < MAX_FILTERS);
        settled[num++] = RM_CONN_SNIFF_NEED_MORE;
    }
    for (size_t n = 1; n <= limit; ++n) {
        uint8_t *p = rm_fuzz_memdup(data, n);
        int need_more = 0, any_open = 0, h2;
        const rm_conn_filter_ops_t *f;

        for (int i = 0; i != num; ++i) {
            rm_conn_sniff_t s = rm_conn_filters[i]->sniff(p, n);
            RM_FUZZ_CHECK(s == RM_CONN_SNIFF_NO || s == RM_CONN_SNIFF_YES || s == RM_CONN_SNIFF_NEED_MORE);
            if (settled[i] != RM_CONN_SNIFF_NEED_MORE) {
                if (s != settled[i])
                    fprintf(stderr, "filter %s: %d on %zu bytes, %d before\n", rm_conn_filters[i]->name, s, n,
                            settled[i]);
                RM_FUZZ_CHECK(s == settled[i]);
            }
            settled[i] = s;
            any_open |= s != RM_CONN_SNIFF_NO;
        }
        h2 = rm_h2_filter_sniff(p, n);
        RM_FUZZ_CHECK(h2 == 1 || h2 == 0 || h2 == -EAGAIN);
        RM_FUZZ_CHECK(h2_settled == -EAGAIN || h2 == h2_settled);
        h2_settled = h2;

        f = rm__conn_pick_filter(p, n, &need_more);
        if (f != NULL) {
            int known = 0;
            for (int i = 0; i != num; ++i)
                known |= rm_conn_filters[i] == f;
            RM_FUZZ_CHECK(known);
            RM_FUZZ_CHECK(f->sniff(p, n) == RM_CONN_SNIFF_YES);
            RM_FUZZ_CHECK(picked == NULL || picked == f);
            picked = f;
        } else {
            RM_FUZZ_CHECK(picked == NULL);
            RM_FUZZ_CHECK(need_more == any_open);
        }
        free(p);
    }
    return 0;
}
