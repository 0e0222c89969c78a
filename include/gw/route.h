/*
 * Targeted delivery between instances (README "Redis: targeted channels"),
 * on the broker thread: which channels this instance subscribes to (its
 * workers' interest, gw/interest.h, named as channels, gw/channel.h),
 * which channels an envelope is published to, and whether a message
 * agrees with the channel it came on. The link below does the I/O.
 *
 * The seam for other links: a batch of targets that became wanted or
 * unwanted (route_changed_cb) and the walk of the wanted set after a
 * reconnect (gw_route_resubscribe) are all a link needs. The Redis Cluster
 * link (gw/rcluster.h) takes the same names and SSUBSCRIBEs each on its
 * slot's shard; keyed RabbitMQ bindings (amqp.routing = "targeted", README
 * "RabbitMQ: keyed bindings") bind `guild.<id>.#` and the like for the same
 * targets, with the same linger (gw_route_rebind after a reconnect), and
 * check each delivery against its routing key (gw_route_key_match).
 *
 * With neither targeted the workers report nothing; with redis.targeted off
 * every envelope goes to the plain channel, as before targeting.
 */
#ifndef GW_ROUTE_H
#define GW_ROUTE_H

#include "gw/amqp.h"
#include "gw/channel.h"
#include "gw/config.h"
#include "gw/event.h"
#include "gw/interest.h"
#include "gw/rcluster.h"
#include "gw/redis.h"
#include "gw/stats.h"

#include <stddef.h>
#include <uv.h>

typedef struct gw_route gw_route_t;

typedef struct gw_route_hooks {
    /* The subscription window (README "Targeted channels"): worker
     * `worker`'s +1 of t is answered, once per +1: t's channel is
     * confirmed (or no link is up to wait for, or t is wanted no more),
     * so the worker's sessions may hear they are in it. */
    void (*answered)(void *data, unsigned worker,
                     const gw_interest_target_t *t);
    void *data;
} gw_route_hooks_t;

/* Starts on the broker's loop. cfg and stats (the broker's) are borrowed
 * and must outlive the route; hooks are copied. */
gw_route_t *gw_route_start(uv_loop_t *loop, const gw_config_t *cfg,
                           gw_stats_t *stats, const gw_route_hooks_t *hooks);

/* The link it subscribes and publishes on (borrowed; until gw_route_stop). */
void gw_route_set_redis(gw_route_t *rt, gw_redis_t *redis);

/* Or, on a Redis Cluster, that link (borrowed; until gw_route_stop),
 * which then takes the place of the single node's. */
void gw_route_set_cluster(gw_route_t *rt, gw_rcluster_t *cluster);

/* The RabbitMQ link whose queue follows the targets (borrowed; until
 * gw_route_stop); ignored unless amqp.routing is "targeted". */
void gw_route_set_amqp(gw_route_t *rt, gw_amqp_t *amqp);

/* Whether a RabbitMQ link is set whose queue follows the targets. */
int gw_route_amqp_targeted(const gw_route_t *rt);

/* Whether the workers are to report their targets: a link routes by
 * them (redis.targeted, or amqp.routing = "targeted"). */
int gw_route_interested(const gw_config_t *cfg);

/* Whether the workers hold their answers for the subscription of targets
 * new to them (a link routes by targets, and redis.subscribe_wait_ms),
 * which the route's hook answers. */
int gw_route_waited(const gw_config_t *cfg);

/* Whether envelopes go to their targets' channels (redis.targeted, with
 * Redis enabled), rather than to the plain channel alone. */
int gw_route_targeted(const gw_route_t *rt);

/* Takes worker `worker`'s relay of n changes (their ids copied where
 * kept); each +1 is answered through the hook. */
void gw_route_interest(gw_route_t *rt, unsigned worker,
                       const gw_interest_change_t *c, size_t n);

/* The Redis link's subscribed hook: Redis confirmed channel name[0..len)
 * (SUBSCRIBE's or, on a cluster, SSUBSCRIBE's reply). */
void gw_route_subscribed(gw_route_t *rt, const char *name, size_t len);

/* The RabbitMQ link's bound hook: the binding of pattern[0..len) (a
 * gw_amqp_key_pattern) is made. */
void gw_route_bound(gw_route_t *rt, const char *pattern, size_t len);

/* The Redis link's state: confirmations are waited for while it is up. */
void gw_route_link(gw_route_t *rt, gw_link_state_t state);

/* The end of a loop turn of relays: what changed goes to the link, in one
 * SUBSCRIBE and one UNSUBSCRIBE at most (per 1024 channels). */
void gw_route_flush(gw_route_t *rt);

/* The link's resubscribe hook: subscribes every wanted target's channel on
 * its new subscriber connection. */
void gw_route_resubscribe(gw_route_t *rt);

/* The RabbitMQ link's rebind hook: binds every wanted target on its new
 * connection. */
void gw_route_rebind(gw_route_t *rt);

/*
 * Whether ev, delivered by RabbitMQ with routing key key[0..len), agrees
 * with it (gw/amqp_key.h read by gw_channel_match, a user's envelope
 * narrowed to the key's user): 0, or GW_EINVAL, counted
 * (amqp_key_mismatches) and logged, when it names no target of ours or
 * another (ev is then to be dead-lettered).
 */
int gw_route_key_match(gw_route_t *rt, gw_event_t *ev, const char *key,
                       size_t len);

/*
 * Reads the channel a message came on and counts the message by the
 * channel's kind: 0 with *out set, or GW_EINVAL for a name that is not one
 * of ours (logged; the message is not to be delivered).
 */
int gw_route_channel(gw_route_t *rt, const char *name, size_t len,
                     gw_channel_t *out);

/* gw_channel_match, counted and logged when ev does not agree with ch:
 * 0, or GW_EINVAL (ev is not to be delivered). */
int gw_route_match(gw_route_t *rt, gw_event_t *ev, const gw_channel_t *ch);

/* Appends the channels ev is published to (gw_channel_for_event when
 * targeted, else the plain channel). */
void gw_route_channels(const gw_route_t *rt, const gw_event_t *ev,
                       gw_channel_list_t *out);

/* PUBLISHes (SPUBLISHes) text on the channels of `to`: 0, or the link's
 * error. */
int gw_route_publish(gw_route_t *rt, const gw_channel_list_t *to,
                     const char *text, size_t len);

/* Closes the route's timer; it is freed on a later turn of the loop. It
 * uses the link no more: stop it before the link. */
void gw_route_stop(gw_route_t *rt);

#endif
