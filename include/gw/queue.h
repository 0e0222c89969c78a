/*
 * A bounded single-producer single-consumer queue of pointers between two
 * threads (Concurrency Kit's ck_ring), with a libuv wake-up of the consumer.
 *
 * Exactly one thread may call gw_queue_push and exactly one other thread
 * gw_queue_pop for a given queue; that is the whole synchronisation
 * argument, and ck_ring's SPSC operations carry the fences it needs.
 */
#ifndef GW_QUEUE_H
#define GW_QUEUE_H

#include <ck_ring.h>
#include <uv.h>

typedef struct gw_queue {
    ck_ring_t ring;
    ck_ring_buffer_t *slots; /* owned; capacity entries */
    uv_async_t *wake;        /* borrowed: the consumer loop's async handle */
} gw_queue_t;

/* capacity must be a power of two; one slot stays free (ck_ring). */
void gw_queue_init(gw_queue_t *q, unsigned capacity, uv_async_t *wake);
void gw_queue_free(gw_queue_t *q);

/*
 * Producer side: enqueues p and wakes the consumer. Returns 0 or GW_EFULL;
 * on GW_EFULL the caller still owns p.
 */
int gw_queue_push(gw_queue_t *q, void *p);

/* Consumer side: the oldest pointer, or NULL when empty. */
void *gw_queue_pop(gw_queue_t *q);

/* Entries queued now; exact on either side up to the other side's races. */
unsigned gw_queue_depth(const gw_queue_t *q);

#endif
