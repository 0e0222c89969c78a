/*
 * Presence (SPEC section 3, seed 003): which users are online across the
 * cluster, and the presence.update online / offline their guilds hear.
 * Broker thread only.
 *
 * The workers report every change of a user's sessions on them. With Redis
 * up, the counts live there (src/presence.lua): each worker of each
 * instance is a "holder" whose liveness its instance refreshes, so that the
 * survivors reap an instance that died without a word, and one script call
 * per change decides atomically whether the user came online or left. While
 * Redis is away (or disabled) the instance decides alone, from a table of
 * its own users that a census of the workers builds; the table is dropped
 * when Redis is back, and the census taken then registers every user
 * again. The table is the only memory presence keeps per user, and only
 * while Redis is away.
 */
#ifndef GW_PRESENCE_H
#define GW_PRESENCE_H

#include "gw/config.h"
#include "gw/link.h"
#include "gw/redis.h"
#include "gw/stats.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gw_presence gw_presence_t;

/* One worker's word about one user (or the end of its census). */
typedef struct gw_presence_report {
    int worker;
    uint32_t census;    /* the last census the worker took */
    int counted;        /* part of that census: `after` is all it holds */
    uint32_t before;    /* the user's sessions on the worker before */
    uint32_t after;     /* and now */
    const char *user;   /* NULL: the end of the worker's census */
    const char *guilds; /* JSON array of their guilds; when after == 0,
                           those of the session that left */
} gw_presence_report_t;

/* What the owner installs. */
typedef struct gw_presence_hooks {
    /* Delivers an envelope on this instance and to the others. */
    void (*announce)(void *data, const char *json, size_t len);
    /* Asks every worker to report each of its users, as census `census`. */
    void (*census)(void *data, uint32_t census);
    void *data; /* passed to each */
} gw_presence_hooks_t;

/*
 * Starts presence on the broker's loop. redis, cfg and stats are borrowed
 * and must outlive p; instance names this instance's holders; hooks are
 * copied; the instance's holders are its workers 0..nworkers-1. Until the
 * Redis link reports GW_LINK_UP, presence is local.
 */
gw_presence_t *gw_presence_start(uv_loop_t *loop, gw_redis_t *redis,
                                 const gw_config_t *cfg, const char *instance,
                                 int nworkers, gw_stats_t *stats,
                                 const gw_presence_hooks_t *hooks);

/* Takes one worker's report (the strings are copied where kept). */
void gw_presence_report(gw_presence_t *p, const gw_presence_report_t *r);

/* The Redis link's new state: a census follows each move to or from UP. */
void gw_presence_link(gw_presence_t *p, gw_link_state_t state);

/* A worker lost a report (its relay queue was full): takes a census. */
void gw_presence_resync(gw_presence_t *p);

/*
 * The answer to a query: status 0 with a JSON document (heap, the callee's
 * to free), GW_ECLOSED when the cluster view is unavailable (Redis down),
 * GW_EIO when Redis failed. Called exactly once, on the loop, never from
 * within the query's own call.
 */
typedef void (*gw_presence_answer_cb)(void *data, int status, char *json,
                                      size_t len);

/*
 * Each user's status and session count: {"users":[{"userId","status",
 * "sessions"}...],"scope":"cluster"|"instance"}. Without Redis the
 * instance answers alone ("instance"). 0, or GW_EFULL with cb not called.
 */
int gw_presence_users(gw_presence_t *p, const char *const *users, int n,
                      gw_presence_answer_cb cb, void *data);

/*
 * How many of a guild's members are online in the cluster, and up to
 * presence.guild_limit of them: {"guildId","online","userIds"}. Needs
 * Redis: GW_ECLOSED without it, GW_EFULL when it is stalled; cb is then
 * not called.
 */
int gw_presence_guild(gw_presence_t *p, const char *guild,
                      gw_presence_answer_cb cb, void *data);

/* Closes the timers; p is freed by their close callbacks. Call it before
 * gw_redis_stop: the script calls that stop answers (as failed) then
 * change nothing, and p outlives them. */
void gw_presence_stop(gw_presence_t *p);

#endif
