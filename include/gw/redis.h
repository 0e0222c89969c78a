/*
 * The Redis link, on the broker thread's loop (hiredis with its libuv
 * adapter, never blocking; the host is resolved on libuv's thread pool):
 * SUBSCRIBE to the configured channel (gateway_events), and to the
 * channels its owner asks for, on one connection, PUBLISH on another, AUTH
 * first on each when a password is set. A failure of either drops both;
 * they reconnect together with gw_link_backoff and subscribe again, the
 * owner's channels included. Logs one line per state change, none per
 * retry.
 */
#ifndef GW_REDIS_H
#define GW_REDIS_H

#include "gw/config.h"
#include "gw/link.h"
#include "gw/stats.h"

#include <stddef.h>
#include <uv.h>

typedef struct gw_redis gw_redis_t;

/* What the owner hears from the link, on the loop's thread; neither
 * callback may call gw_redis_stop. */
typedef struct gw_redis_hooks {
    /* One message of a channel other than `control`: the channel's name
     * (clen bytes) and the payload (len bytes), neither NUL-terminated. */
    void (*message)(const char *channel, size_t clen, const char *payload,
                    size_t len, void *data);
    /* A new subscriber connection takes the configured channel (and
     * control); the owner subscribes there every other channel it wants
     * (gw_redis_subscribe), which the link counts before it is up. NULL
     * when the owner wants no other. */
    void (*resubscribe)(void *data);
    /* Redis confirmed one channel of a SUBSCRIBE (on a cluster, of an
     * SSUBSCRIBE): its name, clen bytes, not NUL-terminated. NULL when
     * unwanted. */
    void (*subscribed)(const char *channel, size_t clen, void *data);
    /* The link's state changed (see gw_redis_link); NULL when unwanted. */
    void (*state)(gw_link_state_t state, void *data);
    /* A second channel subscribed beside the configured one, for the
     * instances to talk among themselves (copied), or NULL; its messages
     * go to control_message instead of message. */
    const char *control;
    void (*control_message)(const char *payload, size_t len, void *data);
    void *data; /* passed to each */
} gw_redis_hooks_t;

/*
 * Starts connecting to cfg->redis_host:redis_port once loop runs (the first
 * attempt is made on the loop's thread). Returns the link even when Redis is
 * unreachable: it keeps retrying. When !cfg->redis_enabled the link does
 * nothing and stays GW_LINK_DISABLED. cfg and stats (the owner's counters,
 * which the link's add to) are borrowed and must outlive the link; hooks
 * are copied.
 */
gw_redis_t *gw_redis_start(uv_loop_t *loop, const gw_config_t *cfg,
                           gw_stats_t *stats, const gw_redis_hooks_t *hooks);

/*
 * PUBLISHes payload (binary-safe, copied) on each of the n channels
 * (names of lens[i] bytes, copied): all are queued, or none. Returns 0
 * once queued on a live connection; GW_ECLOSED when the publishing
 * connection is not connected, or GW_EFULL when 4096 commands would be
 * unanswered (Redis stalled).
 */
int gw_redis_publish_to(gw_redis_t *r, const char *const *channels,
                        const size_t *lens, size_t n, const char *payload,
                        size_t len);

/*
 * SUBSCRIBEs (on) or UNSUBSCRIBEs (!on) the n channels (copied) on the
 * subscriber connection, in as few commands as Redis takes comfortably
 * (1024 channels each). Returns 0 once queued, or GW_ECLOSED when there is
 * no subscriber connection: nothing is to be done then, as the next one
 * asks the resubscribe hook for every channel. Redis takes a channel
 * subscribed twice, or one unsubscribed that was not, without a word.
 */
int gw_redis_subscribe(gw_redis_t *r, int on, const char *const *channels,
                       const size_t *lens, size_t n);

/*
 * The answer to a GET: status 0 with the value (len bytes, valid during
 * the call) or NULL when the key does not exist; GW_EIO when Redis
 * answered with an error or a value that is not a string; GW_ECLOSED when
 * the connection went away first. Called exactly once, on the loop.
 */
typedef void (*gw_redis_get_cb)(void *data, int status, const char *value,
                                size_t len);

/*
 * GETs key on the publishing connection (never the subscribed one).
 * Returns 0 once queued (cb answers later), or GW_ECLOSED / GW_EFULL as
 * gw_redis_publish, with cb never called.
 */
int gw_redis_get(gw_redis_t *r, const char *key, gw_redis_get_cb cb,
                 void *data);

/* A Lua script, run by its SHA1 so that its text crosses the network
 * once per Redis restart, not once per call. */
typedef struct gw_redis_script {
    const char *text; /* borrowed: static, NUL-terminated */
    char sha[41];     /* hex SHA1 of text */
} gw_redis_script_t;

/* Names a script: text must outlive s. */
void gw_redis_script_init(gw_redis_script_t *s, const char *text);

/*
 * Runs script s with no keys and the argc NUL-terminated strings of argv
 * (copied) as ARGV, on the publishing connection: EVALSHA, and EVAL once
 * if Redis does not know the script yet. cb answers as for a GET: the
 * script's string result, NULL for nil, GW_EIO for an error (the script's
 * or Redis's) or a result of another type. Returns as gw_redis_get.
 */
int gw_redis_eval(gw_redis_t *r, const gw_redis_script_t *s, int argc,
                  const char *const *argv, gw_redis_get_cb cb, void *data);

/* As gw_redis_eval, with arguments of lens[i] bytes that may hold any
 * byte (NUL included). */
int gw_redis_eval_bin(gw_redis_t *r, const gw_redis_script_t *s, int argc,
                      const char *const *argv, const size_t *lens,
                      gw_redis_get_cb cb, void *data);

/*
 * The link's state: CONNECTING during the first attempt, UP once Redis has
 * confirmed every channel of the new subscriber connection (those of the
 * resubscribe hook included) and the publishing connection is connected, DOWN
 * from a failure until both work again (retries do not go back to CONNECTING),
 * DISABLED when off; and since when.
 */
gw_link_status_t gw_redis_link(const gw_redis_t *r);

/*
 * Frees both connections (redisAsyncFree; pending PUBLISHes are dropped)
 * and closes the link's handles. Memory is freed by the close callbacks, so
 * run the loop until it has no handles afterwards; r must not be used again.
 * A host-name lookup already running cannot be cancelled: the loop then
 * also waits for it (at most the resolver's timeout), and its callback
 * frees r. Not from within cb.
 */
void gw_redis_stop(gw_redis_t *r);

#endif
