#include "gw/replay.h"

#include "gw/alloc.h"

#include <stdlib.h>

#define REPLAY_FIRST_CAP 4 /* entries of a buffer's first allocation */

/* Drops the oldest entry. */
static void replay_drop(gw_replay_t *r)
{
    gw_frame_t *f = r->frames[r->head];

    r->bytes -= f->len;
    gw_frame_unref(f);
    r->head = (r->head + 1) & (r->cap - 1);
    r->count--;
}

/* A buffer of twice the capacity (or the first one), entries in order. */
static gw_replay_t *replay_grow(gw_replay_t *r)
{
    uint32_t cap = r != NULL ? 2 * r->cap : REPLAY_FIRST_CAP;
    gw_replay_t *n = gw_malloc(sizeof(*n) + cap * sizeof(n->frames[0]));

    n->cap = cap;
    n->head = 0;
    n->count = gw_replay_count(r);
    n->bytes = r != NULL ? r->bytes : 0;
    for (uint32_t i = 0; i < n->count; i++)
        n->frames[i] = gw_replay_get(r, i);
    free(r);
    return n;
}

uint32_t gw_replay_push(gw_replay_t **rp, gw_frame_t *body, uint32_t max_count,
                        uint64_t max_bytes)
{
    gw_replay_t *r = *rp;
    uint32_t dropped = 0;

    /* Full at the bound: the oldest makes room instead of growing. */
    if (r != NULL && r->count >= max_count && r->count > 0) {
        replay_drop(r);
        dropped++;
    }
    if (r == NULL || r->count == r->cap)
        *rp = r = replay_grow(r);
    r->frames[(r->head + r->count) & (r->cap - 1)] = gw_frame_ref(body);
    r->count++;
    r->bytes += body->len;
    while (r->count > 1 && (r->count > max_count || r->bytes > max_bytes)) {
        replay_drop(r);
        dropped++;
    }
    return dropped;
}

void gw_replay_free(gw_replay_t *r)
{
    if (r == NULL)
        return;
    while (r->count > 0)
        replay_drop(r);
    free(r);
}
