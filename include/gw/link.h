/*
 * What the broker links (Redis, RabbitMQ) share: their state as /health
 * reports it, and the reconnect backoff.
 */
#ifndef GW_LINK_H
#define GW_LINK_H

#include <stdint.h>

typedef enum gw_link_state {
    GW_LINK_DISABLED,   /* turned off in the configuration */
    GW_LINK_CONNECTING, /* the first attempt since start */
    GW_LINK_UP,         /* connected, subscribed or consuming */
    GW_LINK_DOWN,       /* failed; stays down while retrying, until up */
} gw_link_state_t;

/* "disabled", "connecting", "up" or "down". */
const char *gw_link_state_name(gw_link_state_t s);

/* A link's state and since when it has held. The time is the wall clock's,
 * not a monotonic one: /health hands it to readers on other machines. */
typedef struct gw_link_status {
    gw_link_state_t state;
    uint64_t since_ms; /* Unix time in ms of the change to state */
} gw_link_status_t;

/* Now, on the clock of since_ms. */
uint64_t gw_link_clock_ms(void);

/* Starts l in state s, as of now. */
void gw_link_init(gw_link_status_t *l, gw_link_state_t s);

/* Moves l to s as of now: 1, or 0 when l was in s already (its time
 * stays, and there is no change to log). */
int gw_link_set(gw_link_status_t *l, gw_link_state_t s);

/*
 * The delay before reconnect attempt number `attempt` (0 for the first
 * retry): min_ms doubled per attempt up to max_ms, then "equal jitter" (a
 * random point in the upper half), so that many gateways restarted together
 * do not reconnect in step. `seed` is the caller's PRNG state.
 */
uint64_t gw_link_backoff(unsigned attempt, uint32_t min_ms, uint32_t max_ms,
                         uint64_t *seed);

#endif
