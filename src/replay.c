#include "gw/replay.h"

#include "gw/alloc.h"

#include <stdlib.h>
#include <string.h>

#define REPLAY_FIRST_CAP 4    /* entries of a session's first buffer */
#define REPLAY_LOG_FIRST 1024 /* entries of a log's first ring */
#define REPLAY_INTERNED 4096  /* remembered interned positions */

void gw_replay_log_init(gw_replay_log_t *l)
{
    memset(l, 0, sizeof(*l));
}

/* Drops the oldest entry of the log. */
static void replay_log_drop(gw_replay_log_t *l)
{
    gw_frame_t *f = l->frames[l->first & (l->cap - 1)];

    l->bytes -= f->len;
    gw_frame_unref(f);
    l->first++;
}

void gw_replay_log_free(gw_replay_log_t *l)
{
    while (l->first < l->next)
        replay_log_drop(l);
    free(l->frames);
    free(l->interned);
    gw_replay_log_init(l);
}

/* Twice the ring (or the first), the entries at their positions. */
static void replay_log_grow(gw_replay_log_t *l)
{
    uint32_t cap = l->cap ? 2 * l->cap : REPLAY_LOG_FIRST;
    gw_frame_t **frames = gw_malloc(cap * sizeof(*frames));

    for (uint64_t p = l->first; p < l->next; p++)
        frames[p & (cap - 1)] = l->frames[p & (l->cap - 1)];
    free(l->frames);
    l->frames = frames;
    l->cap = cap;
}

uint64_t gw_replay_log_append(gw_replay_log_t *l, gw_frame_t *body,
                              uint64_t max_bytes)
{
    if (l->next - l->first == l->cap) {
        if (l->cap < GW_REPLAY_LOG_MAX)
            replay_log_grow(l);
        else
            replay_log_drop(l);
    }
    l->frames[l->next & (l->cap - 1)] = gw_frame_ref(body);
    l->bytes += body->len;
    l->last = body;
    while (l->bytes > max_bytes && l->next - l->first > 0)
        replay_log_drop(l);
    return l->next++;
}

uint64_t gw_replay_log_intern(gw_replay_log_t *l, gw_frame_t *body,
                              uint64_t max_bytes)
{
    /* The identity is already a hash: its low bits pick the slot. */
    size_t slot = (size_t)(body->id & (REPLAY_INTERNED - 1));
    gw_frame_t *held;
    uint64_t pos;

    if (body->id == 0)
        return gw_replay_log_append(l, body, max_bytes);
    if (l->interned == NULL)
        l->interned = gw_calloc(REPLAY_INTERNED, sizeof(*l->interned));
    pos = l->interned[slot];
    held =
        pos >= l->first && pos < l->next ? l->frames[pos & (l->cap - 1)] : NULL;
    if (held != NULL && held->id == body->id && held->len == body->len &&
        memcmp(held->data, body->data, body->len) == 0)
        return pos;
    pos = gw_replay_log_append(l, body, max_bytes);
    l->interned[slot] = pos;
    return pos;
}

/* A session buffer of twice the capacity (or the first), in order: the
 * ring's two runs copied as they lie. */
static gw_replay_t *replay_grow(gw_replay_t *r)
{
    uint32_t cap = r != NULL ? 2 * r->cap : REPLAY_FIRST_CAP;
    gw_replay_t *n = gw_malloc(sizeof(*n) + cap * sizeof(n->pos[0]));
    uint32_t count = gw_replay_count(r), run;

    n->cap = cap;
    n->head = 0;
    n->count = count;
    if (count > 0) {
        run = r->cap - r->head < count ? r->cap - r->head : count;
        memcpy(n->pos, r->pos + r->head, run * sizeof(n->pos[0]));
        memcpy(n->pos + run, r->pos, (count - run) * sizeof(n->pos[0]));
    }
    free(r);
    return n;
}

int gw_replay_push_grow(gw_replay_t **rp, uint32_t pos, uint32_t max_count)
{
    *rp = replay_grow(*rp);
    return gw_replay_push(rp, pos, max_count);
}

void gw_replay_free(gw_replay_t *r)
{
    free(r);
}
