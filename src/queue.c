#include "gw/queue.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <stdlib.h>

void gw_queue_init(gw_queue_t *q, unsigned capacity, uv_async_t *wake)
{
    ck_ring_init(&q->ring, capacity);
    q->slots = gw_calloc(capacity, sizeof(*q->slots));
    q->wake = wake;
}

void gw_queue_free(gw_queue_t *q)
{
    free(q->slots);
    q->slots = NULL;
}

int gw_queue_push(gw_queue_t *q, void *p)
{
    if (!ck_ring_enqueue_spsc(&q->ring, q->slots, p))
        return GW_EFULL;
    /*
     * Always signal: uv_async_send is a single atomic load while a wake-up
     * is already pending, so coalescing happens there, and we avoid the
     * lost-wake-up races of an "only when it was empty" test across threads.
     */
    uv_async_send(q->wake);
    return 0;
}

void *gw_queue_pop(gw_queue_t *q)
{
    void *p;

    if (!ck_ring_dequeue_spsc(&q->ring, q->slots, &p))
        return NULL;
    return p;
}

unsigned gw_queue_depth(const gw_queue_t *q)
{
    return ck_ring_size(&q->ring);
}
