#include "gw/slab.h"

#include "gw/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif

#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SLAB_POISON(p, n) ((void)(p), (void)(n))
#define SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Objects need no more than 8-byte alignment (pointers and 64-bit
 * integers): rounding to malloc's 16 would give back part of the saving. */
#define SLAB_ALIGN 8

struct gw_slab_block {
    gw_slab_block_t *next;
    /* Objects follow, from the first multiple of SLAB_ALIGN. */
};

#define SLAB_HEAD                                                              \
    ((sizeof(gw_slab_block_t) + SLAB_ALIGN - 1) & ~(size_t)(SLAB_ALIGN - 1))

void gw_slab_init(gw_slab_t *s, size_t size)
{
    memset(s, 0, sizeof(*s));
    if (size < sizeof(void *))
        size = sizeof(void *); /* a free object holds the next one */
    s->size = (size + SLAB_ALIGN - 1) & ~(size_t)(SLAB_ALIGN - 1);
}

size_t gw_slab_free(gw_slab_t *s)
{
    gw_slab_block_t *b = s->blocks;
    size_t live = s->live;

    while (b != NULL) {
        gw_slab_block_t *next = b->next;
        SLAB_UNPOISON(b, GW_SLAB_BLOCK);
        free(b);
        b = next;
    }
    s->blocks = NULL;
    s->free = NULL;
    s->carve = s->end = NULL;
    s->live = 0;
    return live;
}

/* A new block, newest first; its objects are carved as they are asked
 * for. */
static void slab_grow(gw_slab_t *s)
{
    gw_slab_block_t *b = gw_malloc(GW_SLAB_BLOCK);
    size_t n = (GW_SLAB_BLOCK - SLAB_HEAD) / s->size;

    b->next = s->blocks;
    s->blocks = b;
    s->carve = (char *)b + SLAB_HEAD;
    s->end = s->carve + n * s->size;
    SLAB_POISON(s->carve, GW_SLAB_BLOCK - SLAB_HEAD);
}

void *gw_slab_alloc(gw_slab_t *s)
{
    void *p = s->free;

    if (p != NULL) {
        SLAB_UNPOISON(p, s->size);
        memcpy(&s->free, p, sizeof(void *));
    } else {
        if (s->carve == s->end)
            slab_grow(s);
        p = s->carve;
        s->carve += s->size;
        SLAB_UNPOISON(p, s->size);
    }
    s->live++;
    return memset(p, 0, s->size);
}

void gw_slab_put(gw_slab_t *s, void *p)
{
    if (p == NULL)
        return;
    memcpy(p, &s->free, sizeof(void *));
    s->free = p;
    s->live--;
    SLAB_POISON(p, s->size);
}
