/*
 * A bounded single-producer single-consumer queue of pointers between two
 * threads, with a wake-up of the consumer's loop (gw_wake_t).
 *
 * Exactly one thread may push and exactly one other thread pop. Why it is
 * correct: `tail` is written only by the producer and `head` only by the
 * consumer, both free-running counters. The producer stores the slot, then
 * publishes it with a release store of tail; the consumer's acquire load of
 * tail therefore sees the slot's contents. The consumer reads the slot, then
 * frees it with a release store of head; the producer's acquire load of head
 * therefore cannot reuse a slot still being read. C11 atomics rather than
 * Concurrency Kit's ck_ring: ck's inline assembly is invisible to
 * ThreadSanitizer, which checks these paths.
 */
#ifndef GW_QUEUE_H
#define GW_QUEUE_H

#include "gw/wake.h"
#include <stdatomic.h>

typedef struct gw_queue {
    _Alignas(64) atomic_uint head; /* next slot to pop; consumer writes */
    _Alignas(64) atomic_uint tail; /* next slot to fill; producer writes */
    _Alignas(64) unsigned mask;    /* capacity - 1 */
    void **slots;                  /* owned; capacity entries */
    gw_wake_t *wake;               /* borrowed: the consumer's wake-up */
} gw_queue_t;

/* capacity must be a power of two. */
void gw_queue_init(gw_queue_t *q, unsigned capacity, gw_wake_t *wake);
void gw_queue_free(gw_queue_t *q);

/*
 * Producer side: enqueues p and wakes the consumer. Returns 0 or GW_EFULL;
 * on GW_EFULL the caller still owns p.
 */
int gw_queue_push(gw_queue_t *q, void *p);

/* Producer side: free slots. Only the consumer can change it, upwards. */
unsigned gw_queue_room(gw_queue_t *q);

/* Consumer side: the oldest pointer, or NULL when empty. */
void *gw_queue_pop(gw_queue_t *q);

/* Entries queued, as seen from either side at this instant. */
unsigned gw_queue_depth(gw_queue_t *q);

#endif
