/* rm_http_path_normalize(): request-target normalization, the path the policy judges and the app receives.
 *
 * Byte 0 picks the mode (low two bits); the rest is the target, given in an exactly sized copy (a read past its
 * length is a heap overflow). Checked, for every mode:
 *   - the result is 0 or -EINVAL (with an error text), never -ENOBUFS at the documented size len + 1; the output
 *     stays within len + 1 bytes (the buffer has exactly that) and path_len <= len;
 *   - `changed` says whether the output differs from the input;
 *   - NONE returns the target as it is;
 *   - outside NONE, an origin-form or absolute-form target comes out as a path starting with '/' that holds no "."
 *     or ".." segment, no '\', no '#', no "%00", and (MERGE_SLASHES, DECODE_AND_MERGE_SLASHES) no "//" and
 *     (DECODE_AND_MERGE_SLASHES) no "%2F" or "%5C"; the query after it is the input's, byte for byte;
 *   - normalizing the output again changes nothing: what the app receives is already what the policy judged, so an
 *     app that normalizes the same way routes that very path (no double decoding, no escape made up of two). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "ringmesh/http_path.h"

static int has_segment(const char *p, size_t n, const char *seg)
{
    size_t sl = strlen(seg);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '/')
            continue;
        size_t j = i + 1;
        while (j < n && p[j] != '/')
            j++;
        if (j - i - 1 == sl && memcmp(p + i + 1, seg, sl) == 0)
            return 1;
    }
    return 0;
}

static int has_ci(const char *p, size_t n, const char *s)
{
    size_t sl = strlen(s);
    for (size_t i = 0; i + sl <= n; i++)
        if (strncasecmp(p + i, s, sl) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    rm_path_normalization_t mode = (rm_path_normalization_t)(data[0] & 3);
    size_t len = size - 1;
    char *in = malloc(len + 1), *out = malloc(len + 1), *again = malloc(len + 2);
    RM_FUZZ_CHECK(in != NULL && out != NULL && again != NULL);
    memcpy(in, data + 1, len);
    char *exact = malloc(len ? len : 1); /* exactly sized copy of the target */
    RM_FUZZ_CHECK(exact != NULL);
    memcpy(exact, in, len);

    rm_http_target_t t, t2;
    int ret = rm_http_path_normalize(mode, exact, len, out, len + 1, &t);
    RM_FUZZ_CHECK(ret == 0 || ret == -EINVAL);
    if (ret == -EINVAL) {
        RM_FUZZ_CHECK(t.error != NULL && mode != RM_PATH_NORMALIZATION_NONE);
        goto Exit;
    }
    RM_FUZZ_CHECK(t.len <= len + 1 && t.path_len <= t.len && t.path_len <= len + 1);
    RM_FUZZ_CHECK(t.changed == (t.len != len || memcmp(out, exact, len) != 0));
    if (mode == RM_PATH_NORMALIZATION_NONE) {
        RM_FUZZ_CHECK(t.len == len && memcmp(out, exact, len) == 0);
        goto Exit;
    }
    if (t.path_len > 0 && out[0] == '/') {
        const char *p = out;
        size_t n = t.path_len;
        RM_FUZZ_CHECK(!has_segment(p, n, ".") && !has_segment(p, n, ".."));
        RM_FUZZ_CHECK(memchr(p, '\\', n) == NULL && memchr(p, '#', n) == NULL && memchr(p, '?', n) == NULL);
        RM_FUZZ_CHECK(!has_ci(p, n, "%00"));
        if (mode != RM_PATH_NORMALIZATION_BASE)
            RM_FUZZ_CHECK(!has_ci(p, n, "//"));
        if (mode == RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES)
            RM_FUZZ_CHECK(!has_ci(p, n, "%2f") && !has_ci(p, n, "%5c"));
        /* the query is the input's: from its first '?' up to its first '#' after that */
        const char *q = memchr(exact, '?', len);
        const char *h = memchr(exact, '#', len);
        if (q != NULL && (h == NULL || q < h)) {
            const char *qe = memchr(q, '#', len - (size_t)(q - exact));
            size_t ql = (size_t)((qe != NULL ? qe : exact + len) - q);
            RM_FUZZ_CHECK(t.len - t.path_len == ql && memcmp(out + t.path_len, q, ql) == 0);
        } else {
            RM_FUZZ_CHECK(t.len == t.path_len);
        }
    }
    /* once is enough */
    ret = rm_http_path_normalize(mode, out, t.len, again, t.len + 1, &t2);
    RM_FUZZ_CHECK(ret == 0 && !t2.changed && t2.path_len == t.path_len);
Exit:
    free(exact);
    free(in);
    free(out);
    free(again);
    return 0;
}
