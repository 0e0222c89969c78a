/*
 * A slab: objects of one fixed size carved from large blocks, for the
 * per-connection structures one worker holds by the thousand (its
 * connections, sessions and guild memberships).
 *
 * malloc puts an 8-byte header before each chunk and rounds the chunk up
 * to a multiple of 16: a 168-byte session takes 192 bytes of heap, a
 * 40-byte membership 48. A slab object takes its size rounded up to 8 and
 * nothing more; the block's header is paid once per GW_SLAB_BLOCK bytes.
 * Objects are handed out from a free list (freed ones first, newest on
 * top, still warm in cache), else carved from the newest block, so a block
 * is touched, hence resident, only as far as it has been used.
 *
 * Blocks are kept until gw_slab_free: freed objects serve the next
 * allocations of the same size, not of others. A worker's peak of
 * connections stays its footprint, as it mostly does with malloc's arenas
 * too (they give back only free memory at the top of the heap).
 *
 * One thread only: a slab belongs to a worker, and every object is freed
 * on the thread that allocated it. Under AddressSanitizer free objects
 * and the uncarved rest of a block are poisoned, so a use after
 * gw_slab_put is still reported.
 */
#ifndef GW_SLAB_H
#define GW_SLAB_H

#include <stddef.h>

/* Bytes of one block: below glibc's mmap threshold (128 KiB), so blocks
 * come from the worker's arena like the allocations they replace. */
#define GW_SLAB_BLOCK (64 * 1024)

typedef struct gw_slab_block gw_slab_block_t;

typedef struct gw_slab {
    size_t size;             /* of an object, rounded up to 8 */
    void *free;              /* freed objects, each holding the next */
    gw_slab_block_t *blocks; /* owned, newest first */
    char *carve;             /* the newest block's next uncarved object */
    char *end;               /* the end of the newest block's objects */
    size_t live;             /* objects handed out and not put back */
} gw_slab_t;

/* An empty slab of objects of `size` bytes (1 to GW_SLAB_BLOCK / 4). */
void gw_slab_init(gw_slab_t *s, size_t size);

/* Frees every block. Objects still out are gone with them: the owner
 * frees its objects first. Returns how many were still out, so that the
 * owner can report a leak that no leak checker sees (they are all one
 * block to it). */
size_t gw_slab_free(gw_slab_t *s);

/* A zeroed object; aborts on out-of-memory like gw_malloc. */
void *gw_slab_alloc(gw_slab_t *s);

/* Gives an object of s back (NULL: nothing). */
void gw_slab_put(gw_slab_t *s, void *p);

/* Objects handed out and not put back. */
static inline size_t gw_slab_live(const gw_slab_t *s)
{
    return s->live;
}

#endif
