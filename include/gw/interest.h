/*
 * Which targets this instance wants to hear of (README "Redis: targeted
 * channels"): the guilds, users and sessions its workers hold, counted
 * across the workers. Broker thread only; no I/O, the caller gives the
 * time, so that it is tested without a loop or a Redis.
 *
 * A worker reports only its own first join (+1) and last leave (-1) of a
 * target (gw/index.h knows both), so that the count of a target is the
 * number of workers holding it. A target is wanted while a worker holds
 * it, and, for a guild or a user, `linger_ms` more after the last one let
 * go: a session that reconnects at once finds its channels still there,
 * instead of an unsubscribe and a subscribe. A session's id never comes
 * back, so its channel goes at once.
 *
 * What changed reaches the owner in one batch per gw_interest_flush: the
 * targets that became wanted and those no longer wanted, each once, and a
 * target that came and went between two flushes not at all. The owner
 * turns them into its links' commands (SUBSCRIBE / UNSUBSCRIBE now; SSUBSCRIBE
 * per shard or queue bindings for others), and after a link reconnects
 * walks the wanted set with gw_interest_each.
 */
#ifndef GW_INTEREST_H
#define GW_INTEREST_H

#include "gw/stats.h"

#include <stddef.h>
#include <stdint.h>

typedef enum gw_interest_kind {
    GW_INTEREST_GUILD,
    GW_INTEREST_USER,
    GW_INTEREST_SESSION, /* its id: the session id's 32 lowercase hex */
} gw_interest_kind_t;

#define GW_INTEREST_KINDS 3

/* One worker's word about one target, as its relay carries it. */
typedef struct gw_interest_change {
    gw_interest_kind_t kind;
    int delta; /* +1: the worker's first session of it; -1: its last left */
    char *id;  /* owned by whoever holds the change */
} gw_interest_change_t;

/* Frees n changes, their ids and the array. */
void gw_interest_changes_free(gw_interest_change_t *c, size_t n);

/* A target, as the owner's hook and gw_interest_each see it. */
typedef struct gw_interest_target {
    gw_interest_kind_t kind;
    const char *id; /* NUL-terminated; valid during the call */
} gw_interest_target_t;

typedef struct gw_interest_hooks {
    /* The targets that became wanted (on) and no longer are (off) since
     * the last flush; at least one of the two is not empty. */
    void (*changed)(void *data, const gw_interest_target_t *on, size_t non,
                    const gw_interest_target_t *off, size_t noff);
    /* Worker `worker`, which waits for t (gw_interest_await), need wait
     * no more: t's channel is confirmed, or t is no longer wanted. */
    void (*answered)(void *data, unsigned worker,
                     const gw_interest_target_t *t);
    void *data;
} gw_interest_hooks_t;

typedef struct gw_interest gw_interest_t;

/* An empty table; stats (borrowed) gets its gauges, hooks are copied. */
gw_interest_t *gw_interest_new(uint64_t linger_ms, gw_stats_t *stats,
                               const gw_interest_hooks_t *hooks);

/* Frees the table, telling nothing. */
void gw_interest_free(gw_interest_t *in);

/* One worker's +1 or -1 for a target at time now_ms (id copied when
 * kept). A -1 for a target no worker holds is ignored. */
void gw_interest_add(gw_interest_t *in, gw_interest_kind_t kind, const char *id,
                     int delta, uint64_t now_ms);

/*
 * Ends the lingers due by now_ms and tells the owner what changed, in one
 * call of its hook (none when nothing did). Returns the time the next
 * linger ends, or UINT64_MAX when none runs.
 */
uint64_t gw_interest_flush(gw_interest_t *in, uint64_t now_ms);

/* Calls cb for every target the owner was told is wanted and was not
 * told is no longer (lingering ones included); cb must not change in. */
void gw_interest_each(const gw_interest_t *in,
                      void (*cb)(void *data, const gw_interest_target_t *t),
                      void *data);

/* The links that confirm a target's subscription (a mask of them). */
#define GW_INTEREST_VIA_REDIS 1u /* Redis's subscribe reply */
#define GW_INTEREST_VIA_AMQP 2u  /* RabbitMQ's exchange.bind-ok */

/*
 * The subscription window (gw/subwait.h): worker `worker` (below 65536)
 * sent a +1 for the target and waits until each link of `need` (not 0)
 * has confirmed it. Answered at once (the hook's `answered`) when they
 * have already or the target is unknown; else when the last of them does
 * (gw_interest_confirm) or the target is dropped; once per call. The
 * latest call's `need` is the target's.
 */
void gw_interest_await(gw_interest_t *in, gw_interest_kind_t kind,
                       const char *id, unsigned worker, unsigned need);

/* Link `via` confirmed the target (id of len bytes, not NUL-terminated):
 * once every link its waiters need has, they are answered, and later
 * ones at once (a link that reconnects subscribes, or binds, every wanted
 * target again before it counts as up). Ignored for a target the owner
 * was not told is wanted. */
void gw_interest_confirm(gw_interest_t *in, gw_interest_kind_t kind,
                         const char *id, size_t len, unsigned via);

#endif
