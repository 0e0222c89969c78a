#include "gw/ring.h"

#include "gw/alloc.h"

#include <stdlib.h>
#include <string.h>

static gw_ring_chunk_t *ring_chunk_get(gw_ring_pool_t *pool)
{
    gw_ring_chunk_t *c = pool->free;

    if (c == NULL)
        return gw_malloc(sizeof(*c));
    pool->free = c->next;
    pool->nfree--;
    return c;
}

static void ring_chunk_put(gw_ring_pool_t *pool, gw_ring_chunk_t *c)
{
    if (pool->nfree >= pool->max_free) {
        free(c);
        return;
    }
    c->next = pool->free;
    pool->free = c;
    pool->nfree++;
}

void gw_ring_push(gw_ring_t *r, gw_ring_pool_t *pool, gw_frame_t *frame,
                  const uint8_t *head, size_t hlen)
{
    gw_ring_entry_t *e;

    if (r->last == NULL || r->wr == GW_RING_CHUNK) {
        gw_ring_chunk_t *c = ring_chunk_get(pool);
        c->next = NULL;
        if (r->last == NULL) {
            r->first = c;
            r->rd = 0;
        } else {
            r->last->next = c;
        }
        r->last = c;
        r->wr = 0;
    }
    e = &r->last->e[r->wr++];
    e->frame = frame;
    e->hlen = (uint8_t)hlen;
    if (hlen > 0)
        memcpy(e->head, head, hlen);
    r->count++;
}

/* The oldest entry; the ring must not be empty. */
static gw_ring_entry_t *ring_front(const gw_ring_t *r)
{
    return &r->first->e[r->rd];
}

/* Removes the oldest entry and returns its chunk to the pool when done. */
static void ring_pop(gw_ring_t *r, gw_ring_pool_t *pool)
{
    gw_frame_unref(ring_front(r)->frame);
    r->off = 0;
    r->count--;
    if (++r->rd < GW_RING_CHUNK && !(r->first == r->last && r->rd == r->wr))
        return;
    gw_ring_chunk_t *c = r->first;
    r->first = c->next;
    r->rd = 0;
    if (r->first == NULL)
        r->last = NULL;
    ring_chunk_put(pool, c);
}

static void iov_add(uv_buf_t *iov, unsigned *n, const void *p, size_t len,
                    size_t *skip, size_t *total)
{
    if (*skip >= len) {
        *skip -= len;
        return;
    }
    iov[*n] = uv_buf_init((char *)p + *skip, (unsigned)(len - *skip));
    *total += len - *skip;
    *skip = 0;
    (*n)++;
}

unsigned gw_ring_iov(const gw_ring_t *r, uv_buf_t *iov, unsigned max_iov,
                     size_t *nbytes)
{
    const gw_ring_chunk_t *c = r->first;
    unsigned n = 0, i = r->rd;
    size_t skip = r->off, total = 0;

    while (c != NULL && n + 2 <= max_iov) {
        if (c == r->last && i == r->wr)
            break;
        const gw_ring_entry_t *e = &c->e[i];
        iov_add(iov, &n, e->head, e->hlen, &skip, &total);
        iov_add(iov, &n, e->frame->data, e->frame->len, &skip, &total);
        if (++i == GW_RING_CHUNK) {
            c = c->next;
            i = 0;
        }
    }
    *nbytes = total;
    return n;
}

void gw_ring_consume(gw_ring_t *r, gw_ring_pool_t *pool, size_t n)
{
    while (n > 0 && r->count > 0) {
        gw_ring_entry_t *e = ring_front(r);
        size_t left = e->hlen + (size_t)e->frame->len - r->off;
        if (n < left) {
            r->off += (uint32_t)n;
            return;
        }
        n -= left;
        ring_pop(r, pool);
    }
}

/* Bytes of e not yet written, given the ring's offset into the first. */
static size_t ring_entry_left(const gw_ring_entry_t *e, size_t off)
{
    return e->hlen + (size_t)e->frame->len - off;
}

unsigned gw_ring_discard_unsent(gw_ring_t *r, gw_ring_pool_t *pool, size_t busy)
{
    gw_ring_chunk_t *c = r->first, *kc = NULL;
    unsigned i = r->rd, ki = 0, kept = 0, dropped;
    size_t covered = 0;

    /* Find the last entry to keep (kc, ki): the entries holding the first
     * `busy` bytes, and the first entry if it is partly written. */
    if (busy == 0 && r->off > 0)
        busy = 1;
    while (kept < r->count && covered < busy) {
        covered += ring_entry_left(&c->e[i], kept == 0 ? r->off : 0);
        kc = c;
        ki = i;
        kept++;
        if (++i == GW_RING_CHUNK) {
            c = c->next;
            i = 0;
        }
    }
    dropped = r->count - kept;
    if (kept == 0) {
        gw_ring_clear(r, pool);
        return dropped;
    }
    for (gw_ring_chunk_t *d = kc; d != NULL; d = d->next) {
        unsigned end = d == r->last ? r->wr : GW_RING_CHUNK;
        for (unsigned j = d == kc ? ki + 1 : 0; j < end; j++)
            gw_frame_unref(d->e[j].frame);
    }
    while (kc->next != NULL) {
        gw_ring_chunk_t *d = kc->next;
        kc->next = d->next;
        ring_chunk_put(pool, d);
    }
    r->last = kc;
    r->wr = (uint16_t)(ki + 1);
    r->count = kept;
    return dropped;
}

void gw_ring_clear(gw_ring_t *r, gw_ring_pool_t *pool)
{
    while (r->count > 0)
        ring_pop(r, pool);
    *r = (gw_ring_t){0};
}

void gw_ring_pool_free(gw_ring_pool_t *pool)
{
    while (pool->free != NULL) {
        gw_ring_chunk_t *c = pool->free;
        pool->free = c->next;
        free(c);
    }
    pool->nfree = 0;
}
