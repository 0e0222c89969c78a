/*
 * Abuse limits on authentication (seed 003 layer 4), shared by the
 * workers: identify and resume attempts per client address and per user
 * (token buckets), and failed authentications per address, which back off
 * (each failure past GW_GUARD_FREE_FAILURES makes the address wait twice as
 * long before its next attempt is heard) and then refuse the address for a
 * while. Behind a proxy every client has the proxy's address: the
 * per-address limits are then turned off (auth.identify_rate,
 * fail_delay_ms and fail_limit at 0) and applied at the proxy.
 *
 * State lives in one fixed table of GW_GUARD_ENTRIES entries, allocated
 * once: an attack from many addresses evicts the least recently touched
 * entry of a small set, and memory never grows. A mutex guards it: taken
 * once or twice per authentication, never per message. Why shared and not
 * per worker: the acceptor spreads sockets by address and port, so one
 * address's connections land on every worker.
 */
#ifndef GW_GUARD_H
#define GW_GUARD_H

#include "gw/bucket.h"
#include "gw/config.h"

#include <stdint.h>
#include <sys/socket.h>

/* Failures an address may have before it waits between attempts: a
 * client whose token just expired may try once more with a stale one. */
#define GW_GUARD_FREE_FAILURES 2
/* Entries of the table (addresses and users together), ~48 bytes each. */
#define GW_GUARD_ENTRIES 16384

typedef struct gw_guard gw_guard_t;

/* What an address's failures allow at a time. Pure, for tests. */
typedef struct gw_guard_fails {
    uint64_t last_ms;  /* the latest failure */
    uint64_t until_ms; /* no attempt is heard before this */
    uint32_t count;    /* failures since the address was last forgiven */
} gw_guard_fails_t;

/*
 * The wait after failure number n (1-based): nothing up to
 * GW_GUARD_FREE_FAILURES, then delay_ms, doubling, at most block_ms; from
 * the limit-th failure on (limit 0: never), block_ms (the refusal). Pure.
 */
uint64_t gw_guard_backoff_ms(uint32_t n, uint32_t delay_ms, uint32_t limit,
                             uint32_t block_ms);

/* Records a failure at now_ms under cfg's auth.fail_* (a count is
 * forgotten block_ms after its latest failure). Pure. */
void gw_guard_fails_add(gw_guard_fails_t *f, uint64_t now_ms,
                        const gw_config_t *cfg);

/* How long an attempt at now_ms must still wait: 0 when it is heard. */
uint64_t gw_guard_fails_wait(const gw_guard_fails_t *f, uint64_t now_ms);

gw_guard_t *gw_guard_new(void);
void gw_guard_free(gw_guard_t *g);

/*
 * An identify or resume from addr at now_ms, before its token is looked
 * at: 0, or GW_ELIMITED when the address is over auth.identify_rate or is
 * backing off after failures (*wait_ms then says for how long; 0 for the
 * rate). addr may be NULL (not an IP peer): nothing is limited. Any thread.
 */
int gw_guard_attempt(gw_guard_t *g, const struct sockaddr *addr,
                     uint64_t now_ms, const gw_config_t *cfg,
                     uint64_t *wait_ms);

/* The token did not verify: the address backs off. Any thread. */
void gw_guard_failed(gw_guard_t *g, const struct sockaddr *addr,
                     uint64_t now_ms, const gw_config_t *cfg);

/*
 * The token verified for user: 0, or GW_ELIMITED when that user is over
 * auth.identify_user_rate. Counted only for verified tokens, so that
 * nobody can lock a user out by sending bad tokens in their name. Any
 * thread.
 */
int gw_guard_user(gw_guard_t *g, const char *user, uint64_t now_ms,
                  const gw_config_t *cfg);

#endif
