/*
 * A session's replay buffer (docs/continuity.md): the dispatches it was
 * sent, oldest first, as references to the shared frames of their bodies.
 * The seq of each is implicit: the buffer holds the last `count` dispatches
 * of the session, so the newest is the session's seq. Bounded by entries
 * and by the bytes of the bodies held; allocated at the first push and
 * grown by doubling, so an empty buffer is one NULL pointer. One thread.
 */
#ifndef GW_REPLAY_H
#define GW_REPLAY_H

#include "gw/frame.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gw_replay {
    uint32_t cap;         /* entries, a power of two */
    uint32_t head;        /* index of the oldest */
    uint32_t count;       /* entries held */
    uint64_t bytes;       /* bytes of the bodies held */
    gw_frame_t *frames[]; /* owned references */
} gw_replay_t;

/*
 * Appends body as the newest dispatch, taking a reference of its own, then
 * drops the oldest until at most max_count entries and max_bytes bytes are
 * held (the newest always stays). *rp may be NULL (an empty buffer); it is
 * allocated or grown here. Returns how many entries were dropped.
 */
uint32_t gw_replay_push(gw_replay_t **rp, gw_frame_t *body, uint32_t max_count,
                        uint64_t max_bytes);

/* Entries held; 0 for an empty (NULL) buffer. */
static inline uint32_t gw_replay_count(const gw_replay_t *r)
{
    return r != NULL ? r->count : 0;
}

/* The i-th oldest entry's body, i < gw_replay_count(r); borrowed. */
static inline gw_frame_t *gw_replay_get(const gw_replay_t *r, uint32_t i)
{
    return r->frames[(r->head + i) & (r->cap - 1)];
}

/* Drops every reference and frees the buffer; NULL is fine. */
void gw_replay_free(gw_replay_t *r);

#endif
