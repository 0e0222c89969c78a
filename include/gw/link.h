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

/*
 * The delay before reconnect attempt number `attempt` (0 for the first
 * retry): min_ms doubled per attempt up to max_ms, then "equal jitter" (a
 * random point in the upper half), so that many gateways restarted together
 * do not reconnect in step. `seed` is the caller's PRNG state.
 */
uint64_t gw_link_backoff(unsigned attempt, uint32_t min_ms, uint32_t max_ms,
                         uint64_t *seed);

#endif
