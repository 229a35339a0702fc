/* The slab of long-lived small objects (ringmesh/slab.h): chunks mapped apart from malloc's heap, one size class per
 * chunk, a free list per chunk, chunks with a free slot on their class's list. */
#include "ringmesh/slab.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MALLOCLIKE_BLOCK
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, zeroed) ((void)0)
#define VALGRIND_FREELIKE_BLOCK(p, rz)              ((void)0)
#define VALGRIND_MAKE_MEM_DEFINED(p, n)             ((void)0)
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n)           ((void)0)
#define VALGRIND_MAKE_MEM_NOACCESS(p, n)            ((void)0)
#endif

/* 16-byte steps up to 512 bytes (classes 1..32), 64-byte steps up to RM_SLAB_MAX (33..88) */
#define SMALL_STEP  16
#define SMALL_MAX   512
#define LARGE_STEP  64
#define NUM_CLASSES (1 + SMALL_MAX / SMALL_STEP + (RM_SLAB_MAX - SMALL_MAX) / LARGE_STEP)
#define CHUNK_MAGIC 0x726d736cu /* "rmsl" */
#define HEADER_SIZE 64          /* the chunk's header, then its objects, 16-byte aligned */

/* A slot given back: it holds the next one of its chunk's free list. */
typedef struct st_slot_t {
    struct st_slot_t *next;
} slot_t;

typedef struct st_chunk_t {
    uint32_t magic;
    uint32_t cls;
    uint32_t size;                  /* of each object */
    uint32_t capacity;              /* objects the chunk holds */
    uint32_t used;                  /* objects given out */
    uint32_t bump;                  /* slots from here on were never given out */
    slot_t *free;                   /* slots given back */
    struct st_chunk_t *prev, *next; /* on its class's list while it has a free slot (on_list) */
    int on_list;
} chunk_t;

_Static_assert(sizeof(chunk_t) <= HEADER_SIZE, "the chunk header fits before the objects");

typedef struct st_class_t {
    chunk_t *avail; /* chunks with a free slot */
    size_t num_chunks;
} class_t;

static pthread_mutex_t slab_lock = PTHREAD_MUTEX_INITIALIZER;
static rm_slab_stats_t stats;

#ifndef RM_SLAB_IS_MALLOC
static class_t classes[NUM_CLASSES];

static size_t class_of(size_t size, size_t *rounded)
{
    if (size <= SMALL_MAX) {
        size_t c = (size + SMALL_STEP - 1) / SMALL_STEP;
        *rounded = c * SMALL_STEP;
        return c;
    }
    size_t k = (size - SMALL_MAX + LARGE_STEP - 1) / LARGE_STEP;
    *rounded = SMALL_MAX + k * LARGE_STEP;
    return SMALL_MAX / SMALL_STEP + k;
}

static void list_add(class_t *k, chunk_t *ch)
{
    ch->prev = NULL;
    ch->next = k->avail;
    if (k->avail != NULL)
        k->avail->prev = ch;
    k->avail = ch;
    ch->on_list = 1;
}

static void list_remove(class_t *k, chunk_t *ch)
{
    if (ch->prev != NULL)
        ch->prev->next = ch->next;
    else
        k->avail = ch->next;
    if (ch->next != NULL)
        ch->next->prev = ch->prev;
    ch->prev = ch->next = NULL;
    ch->on_list = 0;
}

/* Maps a chunk aligned to RM_SLAB_CHUNK (so that an object's chunk is its address rounded down): twice the size,
 * then the unaligned ends unmapped. Pages are backed only once objects are placed in them. */
static chunk_t *chunk_new(size_t cls, size_t size)
{
    size_t span = 2 * RM_SLAB_CHUNK;
    // cppcheck-suppress invalidFunctionArg ; an anonymous mapping takes the descriptor -1 (mmap(2))
    uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    size_t head = (RM_SLAB_CHUNK - (uintptr_t)raw % RM_SLAB_CHUNK) % RM_SLAB_CHUNK, tail = span - head - RM_SLAB_CHUNK;
    uint8_t *start = raw + head;
    if (head != 0)
        munmap(raw, head);
    munmap(start + RM_SLAB_CHUNK, tail); /* never empty: head < RM_SLAB_CHUNK */
    chunk_t *ch = (chunk_t *)(void *)start;
    ch->magic = CHUNK_MAGIC;
    ch->cls = (uint32_t)cls;
    ch->size = (uint32_t)size;
    ch->capacity = (uint32_t)((RM_SLAB_CHUNK - HEADER_SIZE) / size);
    VALGRIND_MAKE_MEM_NOACCESS((uint8_t *)ch + HEADER_SIZE, RM_SLAB_CHUNK - HEADER_SIZE);
    stats.mapped += RM_SLAB_CHUNK;
    return ch;
}
#endif

void *rm_slab_alloc(size_t size)
{
    if (size == 0 || size > RM_SLAB_MAX)
        return NULL;
#ifdef RM_SLAB_IS_MALLOC
    void *m = calloc(1, size);
    if (m != NULL) {
        pthread_mutex_lock(&slab_lock);
        stats.in_use += malloc_usable_size(m);
        pthread_mutex_unlock(&slab_lock);
    }
    return m;
#else
    size_t rounded, cls = class_of(size, &rounded);
    class_t *k = &classes[cls];
    chunk_t *ch;
    uint8_t *p;

    pthread_mutex_lock(&slab_lock);
    if ((ch = k->avail) == NULL) {
        if ((ch = chunk_new(cls, rounded)) == NULL) {
            pthread_mutex_unlock(&slab_lock);
            return NULL;
        }
        list_add(k, ch);
        k->num_chunks++;
    }
    if (ch->free != NULL) {
        slot_t *slot = ch->free;
        VALGRIND_MAKE_MEM_DEFINED(slot, sizeof(*slot));
        ch->free = slot->next;
        p = (uint8_t *)slot;
    } else {
        p = (uint8_t *)ch + HEADER_SIZE + (size_t)ch->bump * ch->size;
        ch->bump++;
    }
    ch->used++;
    if (ch->free == NULL && ch->bump == ch->capacity)
        list_remove(k, ch);
    stats.in_use += rounded;
    pthread_mutex_unlock(&slab_lock);
    VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 1);
    memset(p, 0, size);
    return p;
#endif
}

void rm_slab_free(void *p)
{
    if (p == NULL)
        return;
#ifdef RM_SLAB_IS_MALLOC
    pthread_mutex_lock(&slab_lock);
    stats.in_use -= malloc_usable_size(p);
    pthread_mutex_unlock(&slab_lock);
    free(p);
#else
    chunk_t *ch = (chunk_t *)(void *)((uint8_t *)p - (uintptr_t)p % RM_SLAB_CHUNK);
    if (ch->magic != CHUNK_MAGIC) {
        /* a pointer the slab did not give out: a bug in the caller, and freeing it would corrupt a chunk */
        fprintf(stderr, "rm_slab_free: %p is not an object of the slab\n", p);
        abort();
    }
    VALGRIND_FREELIKE_BLOCK(p, 0);
    pthread_mutex_lock(&slab_lock);
    class_t *k = &classes[ch->cls];
    slot_t *slot = p;
    VALGRIND_MAKE_MEM_UNDEFINED(slot, sizeof(*slot));
    slot->next = ch->free;
    VALGRIND_MAKE_MEM_NOACCESS(slot, ch->size);
    ch->free = slot;
    ch->used--;
    stats.in_use -= ch->size;
    if (!ch->on_list)
        list_add(k, ch);
    if (ch->used == 0 && k->num_chunks > 1) {
        /* an empty chunk goes back to the kernel; the last one of its class stays for the next object */
        list_remove(k, ch);
        k->num_chunks--;
        ch->magic = 0;
        stats.mapped -= RM_SLAB_CHUNK;
        munmap(ch, RM_SLAB_CHUNK);
    }
    pthread_mutex_unlock(&slab_lock);
#endif
}

char *rm_slab_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    if (len >= RM_SLAB_MAX)
        return NULL;
    char *d = rm_slab_alloc(len + 1);
    if (d != NULL)
        memcpy(d, s, len); /* the slab zeroed the terminator */
    return d;
}

rm_slab_stats_t rm_slab_stats(void)
{
    pthread_mutex_lock(&slab_lock);
    rm_slab_stats_t s = stats;
    pthread_mutex_unlock(&slab_lock);
    return s;
}
