#include "ringmesh/yaml_pos_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t path_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void insert_bucket(size_t *buckets, size_t num_buckets, const char *path, size_t index)
{
    size_t mask = num_buckets - 1, i = path_hash(path) & mask;
    while (buckets[i] != 0)
        i = (i + 1) & mask;
    buckets[i] = index + 1;
}

const rm_yaml_node_t *rm_yaml_pos_map_find(const rm_yaml_pos_map_t *map, const char *path)
{
    if (map->num_buckets == 0)
        return NULL;
    size_t mask = map->num_buckets - 1;
    for (size_t i = path_hash(path) & mask;; i = (i + 1) & mask) {
        size_t b = map->buckets[i];
        if (b == 0)
            return NULL;
        if (strcmp(map->entries[b - 1].path, path) == 0)
            return &map->entries[b - 1];
    }
}

int rm_yaml_pos_map_add(rm_yaml_pos_map_t *map, const char *path, rm_yaml_pos_t key, rm_yaml_pos_t value)
{
    if (rm_yaml_pos_map_find(map, path) != NULL)
        return 1;
    if (map->num == map->cap) {
        size_t cap = map->cap == 0 ? 64 : map->cap * 2;
        rm_yaml_node_t *entries = realloc(map->entries, cap * sizeof(*entries));
        if (entries == NULL)
            return -ENOMEM;
        map->entries = entries;
        map->cap = cap;
    }
    if ((map->num + 1) * 2 > map->num_buckets) {
        size_t num_buckets = map->num_buckets == 0 ? 128 : map->num_buckets * 2;
        size_t *buckets = calloc(num_buckets, sizeof(*buckets));
        if (buckets == NULL)
            return -ENOMEM;
        for (size_t e = 0; e < map->num; e++)
            insert_bucket(buckets, num_buckets, map->entries[e].path, e);
        free(map->buckets);
        map->buckets = buckets;
        map->num_buckets = num_buckets;
    }
    if ((map->entries[map->num].path = strdup(path)) == NULL)
        return -ENOMEM;
    map->entries[map->num].key = key;
    map->entries[map->num].value = value;
    insert_bucket(map->buckets, map->num_buckets, path, map->num);
    map->num++;
    return 0;
}

void rm_yaml_pos_map_dispose(rm_yaml_pos_map_t *map)
{
    for (size_t i = 0; i < map->num; i++)
        free(map->entries[i].path);
    free(map->entries);
    free(map->buckets);
    memset(map, 0, sizeof(*map));
}
