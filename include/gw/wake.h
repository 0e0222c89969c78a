/*
 * A cross-thread wake-up of a libuv loop: an eventfd watched by a uv_poll_t
 * in the consumer's loop, and a flag that folds every signal sent before
 * the consumer runs into one write.
 *
 * Why not uv_async_t: libuv 1.44's consumer spins, then sched_yield()s,
 * while a producer is between its flag and its write. The write itself
 * wakes the consumer, so on two busy cores that race is the common case:
 * measured at about 60 yields per second per worker, 0.1-0.2 ms each, in
 * the fan-out benchmark (bench/README.md). Here the consumer never waits.
 *
 * Ordering: a producer publishes its work, then exchanges `pending` to 1
 * and writes the eventfd only if it was 0. The consumer reads the eventfd,
 * exchanges `pending` back to 0, then looks for work. Both exchanges are
 * acquire-release RMWs on one location, so work published before a
 * producer found the flag already set is visible to the consumer whose
 * exchange cleared it; work published later brings a new write.
 */
#ifndef GW_WAKE_H
#define GW_WAKE_H

#include <stdatomic.h>
#include <uv.h>

typedef struct gw_wake gw_wake_t;
typedef void (*gw_wake_cb)(gw_wake_t *w);

struct gw_wake {
    uv_poll_t poll;     /* in the consumer's loop; poll.data is free */
    int fd;             /* the eventfd, owned */
    atomic_int pending; /* 1 from a signal until the consumer runs */
    gw_wake_cb cb;
    void *data; /* the consumer's */
};

/* Creates the eventfd and starts watching it in loop. Returns 0 or a
 * negative libuv error. */
int gw_wake_init(uv_loop_t *loop, gw_wake_t *w, gw_wake_cb cb, void *data);

/* Any thread: makes cb run soon in the consumer's loop, once for any
 * number of signals before it runs. */
void gw_wake_signal(gw_wake_t *w);

/* Consumer thread: stops watching; cb runs no more. close_cb may be NULL. */
void gw_wake_close(gw_wake_t *w, uv_close_cb close_cb);

/* Closes the eventfd once the poll handle is closed and no thread can
 * signal any more. */
void gw_wake_free(gw_wake_t *w);

#endif
