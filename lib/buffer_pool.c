#include "ringmesh/buffer_pool.h"

#include <stdlib.h>

typedef struct free_buf {
    struct free_buf *next;
} free_buf_t;

static __thread free_buf_t *free_list;
static __thread size_t num_idle, num_in_use;

uint8_t *rm_buf_get(void)
{
    free_buf_t *b = free_list;
    if (b != NULL) {
        free_list = b->next;
        num_idle--;
    } else if ((b = malloc(RM_BUF_SIZE)) == NULL) {
        return NULL;
    }
    num_in_use++;
    return (uint8_t *)b;
}

void rm_buf_put(uint8_t *buf)
{
    if (buf == NULL)
        return;
    num_in_use--;
    if (num_idle >= RM_BUF_IDLE_MAX) {
        free(buf);
        return;
    }
    free_buf_t *b = (free_buf_t *)buf;
    b->next = free_list;
    free_list = b;
    num_idle++;
}

void rm_buf_trim(void)
{
    while (free_list != NULL) {
        free_buf_t *b = free_list;
        free_list = b->next;
        free(b);
    }
    num_idle = 0;
}

rm_buf_stats_t rm_buf_stats(void)
{
    rm_buf_stats_t s = {num_in_use, num_idle};
    return s;
}
