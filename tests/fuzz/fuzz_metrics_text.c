/* ringmeshctl stat's readers of a proxy's /metrics page: rm_expo_parse() (the Prometheus text format) and
 * rm_stat_scrape_parse() with a table made of two scrapes of the same page.
 *
 * The input is the page, in an exactly sized copy (a read past its end is a heap overflow). Checked:
 *   - the parse returns 0 or -1; on -1 the error is "line N: ..." with N no greater than the number of lines;
 *   - every sample has a valid metric name, valid and distinct label names, and its line number is within the page;
 *     names and values are NUL-terminated and no longer than the page;
 *   - rm_stat_scrape_parse() accepts exactly what rm_expo_parse() accepts, except a bucket without a numeric `le`
 *     and a series the table reads given twice;
 *   - a table from two scrapes of the same page counts no request (NaN for counters that are not numbers). */
/* rm-fuzz-link: ringmesh_ctl_core */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "stat.h"

typedef struct {
    size_t size, lines;
} page_t;

static int valid_name(const char *s, int colon_ok)
{
    if (*s == '\0' || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s != '\0'; ++s)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              (colon_ok && *s == ':')))
            return 0;
    return 1;
}

static int check_sample(void *ctx, const rm_expo_sample_t *s)
{
    const page_t *p = ctx;

    RM_FUZZ_CHECK(valid_name(s->name, 1) && strlen(s->name) <= p->size);
    RM_FUZZ_CHECK(s->line >= 1 && s->line <= p->lines);
    RM_FUZZ_CHECK(s->num_labels <= RM_EXPO_MAX_LABELS);
    for (size_t i = 0; i != s->num_labels; ++i) {
        RM_FUZZ_CHECK(valid_name(s->labels[i].name, 0));
        RM_FUZZ_CHECK(strlen(s->labels[i].value) <= p->size);
        rm_fuzz_touch(s->labels[i].value, strlen(s->labels[i].value));
        for (size_t j = 0; j != i; ++j)
            RM_FUZZ_CHECK(strcmp(s->labels[i].name, s->labels[j].name) != 0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = (char *)rm_fuzz_memdup(data, size), err[256] = "", err2[256] = "";
    page_t p = {.size = size, .lines = 1};
    rm_stat_scrape_t a = {0}, b = {0};
    rm_stat_table_t t = {0};
    int ret, ret2;
    size_t i;

    for (i = 0; i != size; ++i)
        p.lines += text[i] == '\n';
    ret = rm_expo_parse(text, size, check_sample, &p, err, sizeof(err));
    RM_FUZZ_CHECK(ret == 0 || ret == -1);
    if (ret != 0) {
        unsigned long line = 0;
        RM_FUZZ_CHECK(sscanf(err, "line %lu: ", &line) == 1 && line >= 1 && line <= p.lines);
        RM_FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    }
    ret2 = rm_stat_scrape_parse(&a, text, size, err2, sizeof(err2));
    RM_FUZZ_CHECK(ret2 == 0 || ret2 == -1);
    RM_FUZZ_CHECK(ret == 0 || ret2 == -1);
    if (ret == 0 && ret2 != 0)
        RM_FUZZ_CHECK(strstr(err2, "bucket") != NULL || strstr(err2, "is given again") != NULL);
    if (ret2 == 0) {
        RM_FUZZ_CHECK(rm_stat_scrape_parse(&b, text, size, err2, sizeof(err2)) == 0);
        RM_FUZZ_CHECK(rm_stat_table_add_scrapes(&t, &a, &b, 1000, NULL) == 0);
        rm_stat_table_finish(&t);
        for (i = 0; i != t.num; ++i) {
            const rm_stat_row_t *r = &t.rows[i];
            RM_FUZZ_CHECK(r->requests == 0 || isnan(r->requests));
            rm_fuzz_touch(r->namespace, strlen(r->namespace));
            rm_fuzz_touch(r->workload, strlen(r->workload));
        }
    }
    rm_stat_table_free(&t);
    rm_stat_scrape_free(&a);
    rm_stat_scrape_free(&b);
    free(text);
    return 0;
}
