/*
 * One shard master of a Redis Cluster (README "Redis Cluster"), on the
 * broker thread's loop: a subscriber connection that holds the sharded
 * channels of the shard's slots (SSUBSCRIBE, SUNSUBSCRIBE) and a publisher
 * connection (SPUBLISH, GET), both gw_resp connections, AUTH first on each
 * when redis.password is set. They live and die together: a failure of
 * either drops both, and they open again after gw_link_backoff. One log
 * line per change of the shard's state, none per retry.
 *
 * The subscriber's replies are matched to its commands in order: a
 * SUNSUBSCRIBE that Redis sends unasked (the channel's slot migrated to
 * another master), or a command Redis refuses with MOVED, means that a
 * slot lives elsewhere now; the owner hears it (moved) and finds where.
 */
#ifndef GW_SHARD_H
#define GW_SHARD_H

#include "gw/config.h"
#include "gw/link.h"
#include "gw/redis.h"
#include "gw/stats.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gw_shard gw_shard_t;

/* What the owner hears from a shard, on the loop; no hook may call
 * gw_shard_stop on the shard that calls it. */
typedef struct gw_shard_hooks {
    /* One message of a sharded channel (neither NUL-terminated). */
    void (*message)(void *data, const char *channel, size_t clen,
                    const char *payload, size_t len);
    /* Redis confirmed one channel of an SSUBSCRIBE (clen bytes). */
    void (*subscribed)(void *data, const char *channel, size_t clen);
    /* A new subscriber connection: the owner subscribes there, with
     * gw_shard_subscribe, the channels of the shard's slots, which count
     * toward the shard being up. */
    void (*opened)(void *data, gw_shard_t *s);
    /* Redis says that slot is not this shard's (MOVED, or a SUNSUBSCRIBE
     * it sent unasked): what the shard held of it is held no more. */
    void (*moved)(void *data, gw_shard_t *s, unsigned slot);
    /* The shard's state changed (gw_shard_info). */
    void (*state)(void *data, gw_shard_t *s);
    /* An attempt failed: the first failure, or a retry's. */
    void (*failed)(void *data, gw_shard_t *s);
    void *data; /* passed to each */
} gw_shard_hooks_t;

/*
 * Starts connecting to host:port (copied) once loop runs. cfg (password,
 * backoff) and stats (the owner's counters, which the shard's add to) are
 * borrowed and must outlive the shard; hooks are copied.
 */
gw_shard_t *gw_shard_start(uv_loop_t *loop, const gw_config_t *cfg,
                           gw_stats_t *stats, const char *host, int port,
                           const gw_shard_hooks_t *hooks);

/*
 * SSUBSCRIBEs (on) or SUNSUBSCRIBEs the n channels (copied), all of one
 * slot (Redis 7.0 refuses more in one command), in commands of at most
 * 1024. Returns 0 once queued, or GW_ECLOSED when there is no subscriber
 * connection: nothing is to be done then, as the next one asks the opened
 * hook for every channel.
 */
int gw_shard_subscribe(gw_shard_t *s, int on, const char *const *channels,
                       const size_t *lens, size_t n);

/*
 * SPUBLISHes payload (copied) on channel (copied). 0 once queued;
 * GW_ECLOSED when the publisher is not connected, GW_EFULL when 4096
 * commands would be unanswered. What is not queued, or is refused with
 * MOVED, is counted lost for the shard and logged (rate-limited).
 */
int gw_shard_publish(gw_shard_t *s, const char *channel, size_t clen,
                     const char *payload, size_t len);

/* GETs key on the publisher: as gw_redis_get (a MOVED answered GW_EIO,
 * and heard by the moved hook). */
int gw_shard_get(gw_shard_t *s, const char *key, gw_redis_get_cb cb,
                 void *data);

/* What /health and /metrics show of a shard. */
typedef struct gw_shard_info {
    const char *host; /* borrowed from the shard */
    int port;
    gw_link_status_t status; /* CONNECTING, UP, or DOWN */
    uint64_t channels;       /* as the subscriber last heard Redis count */
    uint64_t lost;           /* SPUBLISHes lost: the shard was not up */
} gw_shard_info_t;

void gw_shard_info(const gw_shard_t *s, gw_shard_info_t *out);

/*
 * Closes both connections (pending GETs answered GW_ECLOSED, pending
 * SPUBLISHes dropped) and the shard's timer, which frees it on a later
 * turn of the loop; s must not be used again.
 */
void gw_shard_stop(gw_shard_t *s);

/* What a reply of a sharded subscriber connection says. */
typedef enum gw_shard_reply_kind {
    GW_SHARD_MESSAGE,      /* ["smessage", channel, payload] */
    GW_SHARD_SUBSCRIBED,   /* ["ssubscribe", channel, count] */
    GW_SHARD_UNSUBSCRIBED, /* ["sunsubscribe", channel, count] */
    GW_SHARD_ERROR,        /* an error: payload holds its text */
    GW_SHARD_OTHER,        /* anything else */
} gw_shard_reply_kind_t;

typedef struct gw_shard_reply {
    gw_shard_reply_kind_t kind;
    const char *channel; /* into the reply; clen bytes */
    size_t clen;
    const char *payload; /* into the reply; len bytes, NUL-terminated */
    size_t len;
    long long count; /* channels held, for (un)subscribed; -1 if none */
} gw_shard_reply_t;

/* Reads one reply (pure, no I/O): out's kind, also returned. */
gw_shard_reply_kind_t gw_shard_reply_read(const redisReply *r,
                                          gw_shard_reply_t *out);

#endif
