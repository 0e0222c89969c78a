#include "gw/queue.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <stdlib.h>

void gw_queue_init(gw_queue_t *q, unsigned capacity, gw_wake_t *wake)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    q->mask = capacity - 1;
    q->slots = gw_calloc(capacity, sizeof(*q->slots));
    q->wake = wake;
}

void gw_queue_free(gw_queue_t *q)
{
    free(q->slots);
    q->slots = NULL;
}

unsigned gw_queue_room(gw_queue_t *q)
{
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);

    return q->mask + 1 - (t - h);
}

int gw_queue_push(gw_queue_t *q, void *p)
{
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);

    if (t - h > q->mask)
        return GW_EFULL;
    q->slots[t & q->mask] = p;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    /* Always signal: gw_wake_signal folds signals into one wake-up, without
     * the lost wake-up races of an "only when it was empty" test. */
    gw_wake_signal(q->wake);
    return 0;
}

void *gw_queue_pop(gw_queue_t *q)
{
    unsigned h = atomic_load_explicit(&q->head, memory_order_relaxed);
    unsigned t = atomic_load_explicit(&q->tail, memory_order_acquire);
    void *p;

    if (h == t)
        return NULL;
    p = q->slots[h & q->mask];
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return p;
}

unsigned gw_queue_depth(gw_queue_t *q)
{
    unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
    unsigned t = atomic_load_explicit(&q->tail, memory_order_acquire);

    return t - h;
}
