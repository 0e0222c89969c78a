/*
 * What a resume replays (docs/continuity.md), in two parts, so that a
 * delivery costs a session four bytes and no atomic operation:
 *
 * - a worker's log of the dispatch bodies its sessions were sent, each
 *   frame once however many sessions received it, with one reference,
 *   bounded by the bytes of the bodies it holds (the oldest go first);
 * - each session's buffer: the log positions of its last dispatches,
 *   oldest first. Their seq is implicit (the newest is the session's seq).
 *   Allocated at the first push and grown by doubling, so an empty buffer
 *   is one NULL pointer.
 *
 * An entry whose body has left the log cannot be replayed. One thread.
 */
#ifndef GW_REPLAY_H
#define GW_REPLAY_H

#include "gw/frame.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gw_replay_log {
    gw_frame_t **frames; /* owned references, a ring of cap */
    uint32_t cap;        /* a power of two, or 0 before the first add */
    uint64_t first;      /* position of the oldest held */
    uint64_t next;       /* position of the next added */
    uint64_t bytes;      /* of the bodies held */
    gw_frame_t *last;    /* the newest: an event added once, for all */
    uint64_t *interned;  /* owned, NULL until the first intern: log
                            positions by a hash of the body's identity */
} gw_replay_log_t;

#define GW_REPLAY_LOG_MAX (UINT32_C(1) << 22) /* entries, at most */

void gw_replay_log_init(gw_replay_log_t *l);
void gw_replay_log_free(gw_replay_log_t *l);

uint64_t gw_replay_log_append(gw_replay_log_t *l, gw_frame_t *body,
                              uint64_t max_bytes);

/*
 * The log position of body: that of the newest entry when body is it (an
 * event's recipients after the first), else body is appended, taking a
 * reference, and the oldest go past max_bytes (the newest always stays).
 */
static inline uint64_t gw_replay_log_add(gw_replay_log_t *l, gw_frame_t *body,
                                         uint64_t max_bytes)
{
    if (body == l->last)
        return l->next - 1;
    return gw_replay_log_append(l, body, max_bytes);
}

/*
 * The log position of a body with identity (body->id != 0) that another
 * instance sent (a drain handoff's snapshot, docs/continuity.md section
 * 3): that of a body the log holds with the same identity and bytes,
 * when one of the recently interned is, else body is appended. Each
 * restored session carries its own copy of the events it shares with
 * the others; this keeps one. Interned positions are remembered in a
 * fixed table (a collision forgets the older), so the cost is bounded.
 */
uint64_t gw_replay_log_intern(gw_replay_log_t *l, gw_frame_t *body,
                              uint64_t max_bytes);

/*
 * The body at the position whose low 32 bits are pos32, or NULL when it
 * is no longer held. (Positions 2^32 apart alias; the log holds far fewer
 * and a session waits far less.)
 */
static inline gw_frame_t *gw_replay_log_get(const gw_replay_log_t *l,
                                            uint32_t pos32)
{
    uint32_t back = (uint32_t)l->next - pos32;

    if (back == 0 || back > l->next - l->first)
        return NULL;
    return l->frames[(l->next - back) & (l->cap - 1)];
}

typedef struct gw_replay {
    uint32_t cap;   /* entries, a power of two */
    uint32_t head;  /* index of the oldest */
    uint32_t count; /* entries held */
    uint32_t pos[]; /* low 32 bits of log positions */
} gw_replay_t;

/* The slow path of gw_replay_push: the first entry, or a full buffer
 * that may grow. */
int gw_replay_push_grow(gw_replay_t **rp, uint32_t pos, uint32_t max_count);

/*
 * Appends a log position as the session's newest dispatch; past
 * max_count entries the oldest goes. *rp may be NULL (an empty buffer);
 * it is allocated or grown then. Returns 1 when an entry was dropped.
 * Inline: once per delivery.
 */
static inline int gw_replay_push(gw_replay_t **rp, uint32_t pos,
                                 uint32_t max_count)
{
    gw_replay_t *r = *rp;
    uint32_t mask;

    if (r == NULL)
        return gw_replay_push_grow(rp, pos, max_count);
    mask = r->cap - 1;
    if (r->count < max_count) {
        if (r->count == r->cap)
            return gw_replay_push_grow(rp, pos, max_count);
        r->pos[(r->head + r->count++) & mask] = pos;
        return 0;
    }
    /* Full: the newest takes the oldest's place. */
    r->pos[(r->head + r->count) & mask] = pos;
    r->head = (r->head + 1) & mask;
    return 1;
}

/* Entries held; 0 for an empty (NULL) buffer. */
static inline uint32_t gw_replay_count(const gw_replay_t *r)
{
    return r != NULL ? r->count : 0;
}

/* The i-th oldest entry's log position, i < gw_replay_count(r). */
static inline uint32_t gw_replay_get(const gw_replay_t *r, uint32_t i)
{
    return r->pos[(r->head + i) & (r->cap - 1)];
}

void gw_replay_free(gw_replay_t *r);

#endif
