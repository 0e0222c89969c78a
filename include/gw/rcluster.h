/*
 * The Redis Cluster link (README "Redis Cluster"), on the broker thread's
 * loop, in place of the single-node link (gw/redis.h) when redis.cluster
 * is set: the same calls for route.c and the broker, over sharded pub/sub.
 *
 * It asks the seed nodes (redis.cluster_nodes), and later any master it
 * knows, for CLUSTER SLOTS, and keeps a gw_shard (a subscriber and a
 * publisher connection) per shard master. Every channel is a sharded one,
 * the plain channel included: SSUBSCRIBEd, SPUBLISHed, SUNSUBSCRIBEd on
 * the master of its slot, one command per slot (Redis 7.0 refuses channels
 * of two slots in one), a turn's commands to a master in one write.
 *
 * Topology. A MOVED reply, a SUNSUBSCRIBE Redis sends unasked (its slot
 * migrated), or a shard whose connections fail (its master may have failed
 * over) makes it ask again: one CLUSTER SLOTS at a time, at most one per
 * broker.reconnect_min_ms, and with the reconnect backoff while no node
 * answers. The slots whose master changed, and those Redis let go, are
 * marked; once the map is new, the wanted channels of the marked slots are
 * subscribed on their masters (the owner's resubscribe hook walks them).
 * A master that comes back is subscribed again by its own reconnect.
 *
 * State: UP while a map is known and every shard is up; DOWN while any is
 * not, or no node answers; CONNECTING until the first time up. One log
 * line per change, and one per change of the topology.
 */
#ifndef GW_RCLUSTER_H
#define GW_RCLUSTER_H

#include "gw/config.h"
#include "gw/link.h"
#include "gw/redis.h"
#include "gw/shard.h"
#include "gw/stats.h"

#include <stddef.h>
#include <uv.h>

typedef struct gw_rcluster gw_rcluster_t;

/*
 * Starts discovering from the seeds once loop runs. cfg and stats (the
 * owner's counters) are borrowed and must outlive the link; hooks are
 * copied and heard as from the single-node link: message, resubscribe
 * (here: the owner subscribes every channel it wants, and the link keeps
 * those of the slots it is resubscribing), state. hooks->control must be
 * NULL: the handoff's control channel is not served on a cluster.
 */
gw_rcluster_t *gw_rcluster_start(uv_loop_t *loop, const gw_config_t *cfg,
                                 gw_stats_t *stats,
                                 const gw_redis_hooks_t *hooks);

/*
 * SPUBLISHes payload (copied) on each of the n channels (copied), each on
 * the master of its slot. Returns 0 when every one is queued, else the
 * first error (GW_ECLOSED: its shard is down or unknown; GW_EFULL): those
 * whose shard is up are sent all the same, the others counted lost.
 */
int gw_rcluster_publish_to(gw_rcluster_t *c, const char *const *channels,
                           const size_t *lens, size_t n, const char *payload,
                           size_t len);

/*
 * SSUBSCRIBEs (on) or SUNSUBSCRIBEs the n channels (copied), each on the
 * master of its slot, one command per slot. A channel whose master is not
 * connected is skipped: that master's next connection subscribes what is
 * wanted then. Returns 0, or GW_ECLOSED while no map is known.
 */
int gw_rcluster_subscribe(gw_rcluster_t *c, int on, const char *const *channels,
                          const size_t *lens, size_t n);

/* GETs key on the master of its slot: as gw_redis_get. */
int gw_rcluster_get(gw_rcluster_t *c, const char *key, gw_redis_get_cb cb,
                    void *data);

/* The link's state as a whole, and since when. */
gw_link_status_t gw_rcluster_link(const gw_rcluster_t *c);

/* Calls cb for each shard master of the map, with its slot count. */
void gw_rcluster_shards(const gw_rcluster_t *c,
                        void (*cb)(void *data, const gw_shard_info_t *s,
                                   size_t slots),
                        void *data);

/*
 * Stops every connection (pending GETs answered GW_ECLOSED) and closes the
 * link's handles; memory is freed by their close callbacks, so run the
 * loop on; c must not be used again. Not from within a hook.
 */
void gw_rcluster_stop(gw_rcluster_t *c);

#endif
