/*
 * The Redis Cluster link: the map of slots to masters, a gw_shard per
 * master, and the slots whose channels are to be subscribed again.
 *
 * Ownership. The link owns the map, the shards (started and stopped as the
 * map changes; a shard of a master that stays is kept, its connections
 * with it) and the discovery connection, which it forgets when it closes
 * it or hears it closed. The link is freed by its timer's close callback
 * after gw_rcluster_stop; the shards and connections free themselves.
 *
 * The marked ("dirty") slots are how every change of topology ends the
 * same way: a slot whose master changed in a new map, a slot Redis said
 * was not the shard's own, and every slot of a shard whose subscriber is
 * new are marked; then rcluster_resync has the owner walk its wanted
 * channels through gw_rcluster_subscribe, which keeps those of the marked
 * slots and subscribes each on its master, and clears the marks of the
 * slots that have one. A master that is not connected then is skipped:
 * its own next connection marks its slots again.
 */
#include "gw/rcluster.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/log.h"
#include "gw/resp.h"
#include "gw/slotmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_rcluster {
    uv_loop_t *loop;         /* borrowed: the broker thread's */
    const gw_config_t *cfg;  /* borrowed */
    gw_stats_t *stats;       /* borrowed: the owner's counters */
    gw_redis_hooks_t hooks;  /* the owner's (control unused) */
    gw_link_status_t status; /* as /health reports it */
    gw_slotmap_t *map;       /* owned: the latest CLUSTER SLOTS */
    gw_shard_t **shards;     /* owned: shards[i] serves map->shards[i] */
    size_t *nslots;          /* owned: how many slots each serves */
    gw_slot_node_t *seeds;   /* owned: redis.cluster_nodes */
    size_t nseeds;
    uint8_t dirty[GW_SLOT_BYTES]; /* slots to subscribe again */
    int resyncing;                /* the resubscribe hook walks for them */
    int known;                    /* a map has been applied */
    gw_resp_t *ask;               /* the CLUSTER SLOTS in flight, or NULL */
    gw_slot_node_t asked;         /* the node it asks */
    size_t next;                  /* the next node to ask */
    size_t failures;              /* nodes that did not answer, this round */
    int again;                    /* a rediscovery asked while one ran */
    uint64_t last_ms;             /* uv_now when the latest ask began */
    unsigned attempt;             /* rounds failed in a row */
    uint64_t seed;                /* backoff jitter */
    uv_timer_t timer;             /* the next ask */
    int stopping;                 /* gw_rcluster_stop was called */
    char why[320];                /* the latest node's failure */
    gw_log_limit_t log;           /* repeated troubles of the map */
};

/* ---- state ------------------------------------------------------------ */

static void rcluster_set_state(gw_rcluster_t *c, gw_link_state_t s,
                               const char *why)
{
    if (!gw_link_set(&c->status, s))
        return;
    if (s == GW_LINK_DOWN)
        gw_warn("redis cluster: down (%s)", why);
    else
        gw_info("redis cluster: %s", why);
    if (c->hooks.state != NULL)
        c->hooks.state(s, c->hooks.data);
}

/* The state of the whole from its shards': up when all are. */
static void rcluster_update(gw_rcluster_t *c)
{
    gw_shard_info_t s, bad = {0};
    size_t up = 0;
    char why[400];

    if (!c->known)
        return;
    for (size_t i = 0; i < c->map->nshards; i++) {
        gw_shard_info(c->shards[i], &s);
        if (s.status.state == GW_LINK_UP)
            up++;
        else if (bad.host == NULL || s.status.state == GW_LINK_DOWN)
            bad = s;
    }
    if (up == c->map->nshards) {
        snprintf(why, sizeof(why), "up: %zu shards serve %zu slots", up,
                 gw_slotmap_covered(c->map));
        rcluster_set_state(c, GW_LINK_UP, why);
        return;
    }
    if (c->status.state == GW_LINK_CONNECTING &&
        bad.status.state != GW_LINK_DOWN)
        return;
    snprintf(why, sizeof(why), "shard %s:%d %s", bad.host, bad.port,
             gw_link_state_name(bad.status.state));
    rcluster_set_state(c, GW_LINK_DOWN, why);
}

/* ---- subscriptions ---------------------------------------------------- */

static int rcluster_any_dirty(const gw_rcluster_t *c)
{
    for (size_t i = 0; i < GW_SLOT_BYTES; i++)
        if (c->dirty[i] != 0)
            return 1;
    return 0;
}

/* The channels of one slot, on its master; while resyncing, only a
 * marked slot's. */
static void rcluster_subscribe_slot(gw_rcluster_t *c, int on,
                                    const gw_slot_group_t *g,
                                    const char *const *names,
                                    const size_t *lens)
{
    if (c->resyncing && !gw_slot_marked(c->dirty, g->slot))
        return;
    if (g->shard != GW_SLOT_NONE) {
        /* GW_ECLOSED: that master's next connection subscribes them. */
        gw_shard_subscribe(c->shards[g->shard], on, names, lens, g->n);
        return;
    }
    if (!on)
        return;
    gw_slot_mark(c->dirty, g->slot); /* for when a master serves it */
    gw_log_limited(&c->log, GW_LOG_WARN,
                   "redis cluster: no master serves slot %u: %.*s not "
                   "subscribed",
                   g->slot, (int)(lens[0] < 200 ? lens[0] : 200), names[0]);
}

int gw_rcluster_subscribe(gw_rcluster_t *c, int on, const char *const *channels,
                          const size_t *lens, size_t n)
{
    size_t *order, *sorted_lens, ng;
    const char **sorted;
    gw_slot_group_t *groups;

    if (!c->known)
        return GW_ECLOSED;
    if (n == 0)
        return 0;
    order = gw_malloc(n * sizeof(*order));
    groups = gw_malloc(n * sizeof(*groups));
    sorted = gw_malloc(n * sizeof(*sorted));
    sorted_lens = gw_malloc(n * sizeof(*sorted_lens));
    ng = gw_slotmap_group(c->map, channels, lens, n, order, groups);
    for (size_t k = 0; k < n; k++) {
        sorted[k] = channels[order[k]];
        sorted_lens[k] = lens[order[k]];
    }
    for (size_t g = 0; g < ng; g++)
        rcluster_subscribe_slot(c, on, &groups[g], sorted + groups[g].first,
                                sorted_lens + groups[g].first);
    free(order);
    free(groups);
    free(sorted);
    free(sorted_lens);
    return 0;
}

/*
 * Subscribes the wanted channels of the marked slots on their masters:
 * the plain channel, which the link itself wants, and the owner's, which
 * its hook walks. Then the slots that have a master are unmarked.
 */
static void rcluster_resync(gw_rcluster_t *c)
{
    const char *plain = c->cfg->redis_channel;
    size_t len = strlen(plain);

    if (!rcluster_any_dirty(c))
        return;
    c->resyncing = 1;
    gw_rcluster_subscribe(c, 1, &plain, &len, 1);
    if (c->hooks.resubscribe != NULL)
        c->hooks.resubscribe(c->hooks.data);
    c->resyncing = 0;
    for (unsigned s = 0; s < GW_SLOTS; s++)
        if (c->map->owner[s] != GW_SLOT_NONE)
            c->dirty[s >> 3] &= (uint8_t) ~(1u << (s & 7));
}

/* ---- discovery -------------------------------------------------------- */

static void rcluster_timer_cb(uv_timer_t *t);

/*
 * Asks for the map again soon: at once when the latest ask is at least
 * broker.reconnect_min_ms old, else when it will be. One at a time; one
 * asked for meanwhile follows it.
 */
static void rcluster_rediscover(gw_rcluster_t *c)
{
    uint64_t now = uv_now(c->loop), min = c->cfg->reconnect_min_ms;

    if (c->stopping)
        return;
    if (c->ask != NULL) {
        c->again = 1;
        return;
    }
    if (uv_is_active((uv_handle_t *)&c->timer))
        return; /* due already, or a failed round's backoff */
    uv_timer_start(&c->timer, rcluster_timer_cb,
                   now - c->last_ms >= min ? 0 : min - (now - c->last_ms), 0);
}

/* The nodes to ask, in turn: the masters known, then the seeds. */
static const gw_slot_node_t *rcluster_candidate(gw_rcluster_t *c,
                                                gw_slot_node_t *tmp)
{
    size_t k = c->next++ % (c->map->nshards + c->nseeds);

    if (k >= c->map->nshards)
        return &c->seeds[k - c->map->nshards];
    snprintf(tmp->host, sizeof(tmp->host), "%s", c->map->shards[k].host);
    tmp->port = c->map->shards[k].port;
    return tmp;
}

/* A node did not tell: the next is asked at once, and after a round of
 * them all, the next round after the backoff. */
static void rcluster_ask_failed(gw_rcluster_t *c, const char *why)
{
    const gw_config_t *cfg = c->cfg;

    snprintf(c->why, sizeof(c->why), "%s:%d: %s", c->asked.host, c->asked.port,
             why);
    if (++c->failures < c->map->nshards + c->nseeds) {
        uv_timer_start(&c->timer, rcluster_timer_cb, 0, 0);
        return;
    }
    c->failures = 0;
    if (!c->known)
        rcluster_set_state(c, GW_LINK_DOWN, c->why);
    else if (c->attempt == 0) /* once, until a node answers again */
        gw_warn("redis cluster: no node answered CLUSTER SLOTS (%s); the "
                "map is kept, asking again with backoff",
                c->why);
    uv_timer_start(&c->timer, rcluster_timer_cb,
                   gw_link_backoff(c->attempt++, cfg->reconnect_min_ms,
                                   cfg->reconnect_max_ms, &c->seed),
                   0);
}

static void rcluster_ask_closed(void *data, const char *why)
{
    gw_rcluster_t *c = data;

    c->ask = NULL; /* closed by gw_resp itself */
    rcluster_ask_failed(c, why);
}

/* Masters that do not know their own address (CLUSTER SLOTS names them
 * "") are where they were reached. */
static void rcluster_name_self(gw_slotmap_t *m, const gw_slot_node_t *asked)
{
    for (size_t i = 0; i < m->nshards; i++)
        if (m->shards[i].host[0] == '\0') {
            free(m->shards[i].host);
            m->shards[i].host = gw_strdup(asked->host);
        }
}

/* How many slots each master of the map serves, for /health. */
static void rcluster_count_slots(gw_rcluster_t *c)
{
    size_t n = c->map->nshards + 1;

    c->nslots = gw_realloc(c->nslots, n * sizeof(*c->nslots));
    memset(c->nslots, 0, n * sizeof(*c->nslots));
    for (size_t s = 0; s < GW_SLOTS; s++)
        if (c->map->owner[s] != GW_SLOT_NONE)
            c->nslots[c->map->owner[s]]++;
}

/* The gw_shard hooks below, for a new master. */
static gw_shard_t *rcluster_shard_start(gw_rcluster_t *c,
                                        const gw_shard_addr_t *a);

/*
 * Takes a new map (owned): keeps the shards of masters that stay, starts
 * the new ones, stops the others, marks the slots whose master changed and
 * subscribes their channels where they live now.
 */
static void rcluster_apply(gw_rcluster_t *c, gw_slotmap_t *next)
{
    gw_shard_t **shards = gw_calloc(next->nshards, sizeof(*shards));
    size_t changed = gw_slotmap_diff(c->map, next, c->dirty);

    for (size_t i = 0; i < next->nshards; i++) {
        int j =
            gw_slotmap_find(c->map, next->shards[i].host, next->shards[i].port);
        shards[i] =
            j >= 0 ? c->shards[j] : rcluster_shard_start(c, &next->shards[i]);
        if (j >= 0)
            c->shards[j] = NULL;
    }
    for (size_t j = 0; j < c->map->nshards; j++)
        if (c->shards[j] != NULL) {
            gw_info("redis cluster: %s:%d is no longer a master",
                    c->map->shards[j].host, c->map->shards[j].port);
            gw_shard_stop(c->shards[j]);
        }
    free(c->shards);
    gw_slotmap_free(c->map);
    free(c->map);
    c->map = next;
    c->shards = shards;
    rcluster_count_slots(c);
    if (!c->known || changed > 0)
        gw_info("redis cluster: %zu masters serve %zu slots%s", next->nshards,
                gw_slotmap_covered(next),
                c->known ? " (a new map: slots changed master)" : "");
    c->known = 1;
    rcluster_resync(c);
    rcluster_update(c);
}

/* CLUSTER SLOTS answered; NULL when the connection went first (its closed
 * hook tells, or the link is stopping). */
static void rcluster_slots_cb(void *data, const redisReply *rep)
{
    gw_rcluster_t *c = data;
    gw_slotmap_t *next;
    const char *why = NULL;

    if (rep == NULL)
        return;
    next = gw_malloc(sizeof(*next));
    gw_slotmap_init(next);
    if (rep->type == REDIS_REPLY_ERROR)
        why = rep->str; /* a node without cluster support says so */
    else if (gw_slotmap_parse(next, rep) != 0)
        why = "CLUSTER SLOTS answered in a form not understood";
    else if (next->nshards == 0)
        why = "no master serves any slot";
    if (why != NULL) {
        rcluster_ask_failed(c, why);
        free(next);
    } else {
        gw_stat_add(c->stats, GW_STAT_REDIS_CLUSTER_DISCOVERIES, 1);
        rcluster_name_self(next, &c->asked);
        if (c->known && c->attempt > 0)
            gw_info("redis cluster: %s:%d answered CLUSTER SLOTS again",
                    c->asked.host, c->asked.port);
        c->attempt = c->failures = 0;
        rcluster_apply(c, next);
    }
    gw_resp_close(c->ask);
    c->ask = NULL;
    if (why == NULL && c->again) {
        c->again = 0;
        rcluster_rediscover(c);
    }
}

/* Asks the next candidate for CLUSTER SLOTS. */
static void rcluster_ask(gw_rcluster_t *c)
{
    gw_slot_node_t tmp;
    const char *why;

    c->asked = *rcluster_candidate(c, &tmp);
    c->last_ms = uv_now(c->loop);
    c->ask = gw_resp_open(
        c->loop, c->asked.host, c->asked.port, c->cfg->redis_password,
        &(gw_resp_hooks_t){NULL, NULL, rcluster_ask_closed, c}, &why);
    if (c->ask == NULL) {
        rcluster_ask_failed(c, why);
        return;
    }
    gw_resp_command(c->ask, 2, (const char *[]){"CLUSTER", "SLOTS"},
                    (const size_t[]){7, 5}, rcluster_slots_cb, c);
}

static void rcluster_timer_cb(uv_timer_t *t)
{
    gw_rcluster_t *c = t->data;

    if (c->ask == NULL)
        rcluster_ask(c);
}

/* ---- the shards' hooks ------------------------------------------------ */

static void rcluster_message(void *data, const char *channel, size_t clen,
                             const char *payload, size_t len)
{
    gw_rcluster_t *c = data;

    c->hooks.message(channel, clen, payload, len, c->hooks.data);
}

static void rcluster_subscribed(void *data, const char *channel, size_t clen)
{
    gw_rcluster_t *c = data;

    if (c->hooks.subscribed != NULL)
        c->hooks.subscribed(channel, clen, c->hooks.data);
}

/* A new subscriber for s: every slot of s is marked, and resubscribed. */
static void rcluster_opened(void *data, gw_shard_t *s)
{
    gw_rcluster_t *c = data;

    for (size_t i = 0; i < c->map->nshards; i++) {
        if (c->shards[i] != s)
            continue;
        for (unsigned slot = 0; slot < GW_SLOTS; slot++)
            if (c->map->owner[slot] == i)
                gw_slot_mark(c->dirty, slot);
    }
    rcluster_resync(c);
}

/* A slot is elsewhere now: marked, and the map asked for again. */
static void rcluster_moved(void *data, gw_shard_t *s, unsigned slot)
{
    gw_rcluster_t *c = data;

    (void)s;
    gw_slot_mark(c->dirty, slot);
    rcluster_rediscover(c);
}

static void rcluster_shard_state(void *data, gw_shard_t *s)
{
    (void)s;
    rcluster_update(data);
}

/* A master's connections failed: it may have failed over, which the map
 * tells once the cluster has elected its replica. */
static void rcluster_shard_failed(void *data, gw_shard_t *s)
{
    (void)s;
    rcluster_rediscover(data);
}

static gw_shard_t *rcluster_shard_start(gw_rcluster_t *c,
                                        const gw_shard_addr_t *a)
{
    return gw_shard_start(
        c->loop, c->cfg, c->stats, a->host, a->port,
        &(gw_shard_hooks_t){rcluster_message, rcluster_subscribed,
                            rcluster_opened, rcluster_moved,
                            rcluster_shard_state, rcluster_shard_failed, c});
}

/* ---- the owner's calls ------------------------------------------------ */

/* SPUBLISH on one channel, on its slot's master. */
static int rcluster_publish_one(gw_rcluster_t *c, const char *channel,
                                size_t clen, const char *payload, size_t len)
{
    unsigned slot = gw_slot_of(channel, clen);
    unsigned shard = c->known ? c->map->owner[slot] : GW_SLOT_NONE;

    if (shard != GW_SLOT_NONE)
        return gw_shard_publish(c->shards[shard], channel, clen, payload, len);
    gw_stat_add(c->stats, GW_STAT_REDIS_CLUSTER_LOST, 1);
    gw_log_limited(&c->log, GW_LOG_WARN,
                   "redis cluster: no master known for slot %u: SPUBLISH on "
                   "%.*s lost",
                   slot, (int)(clen < 200 ? clen : 200), channel);
    return GW_ECLOSED;
}

int gw_rcluster_publish_to(gw_rcluster_t *c, const char *const *channels,
                           const size_t *lens, size_t n, const char *payload,
                           size_t len)
{
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        int r = rcluster_publish_one(c, channels[i], lens[i], payload, len);
        if (rc == 0)
            rc = r;
    }
    return rc;
}

int gw_rcluster_get(gw_rcluster_t *c, const char *key, gw_redis_get_cb cb,
                    void *data)
{
    unsigned shard =
        c->known ? c->map->owner[gw_slot_of(key, strlen(key))] : GW_SLOT_NONE;

    if (shard == GW_SLOT_NONE)
        return GW_ECLOSED;
    return gw_shard_get(c->shards[shard], key, cb, data);
}

gw_link_status_t gw_rcluster_link(const gw_rcluster_t *c)
{
    return c->status;
}

void gw_rcluster_shards(const gw_rcluster_t *c,
                        void (*cb)(void *data, const gw_shard_info_t *s,
                                   size_t slots),
                        void *data)
{
    gw_shard_info_t s;

    for (size_t i = 0; i < c->map->nshards; i++) {
        gw_shard_info(c->shards[i], &s);
        cb(data, &s, c->nslots[i]);
    }
}

/* ---- life ------------------------------------------------------------- */

/* redis.cluster_nodes, or redis.host:redis.port when it is empty (the
 * option's check took the list already). */
static void rcluster_seeds(gw_rcluster_t *c)
{
    const char *s = c->cfg->redis_cluster_nodes;
    gw_slot_node_t n;

    while (gw_slot_node_next(&s, &n) == 1) {
        c->seeds = gw_realloc(c->seeds, (c->nseeds + 1) * sizeof(n));
        c->seeds[c->nseeds++] = n;
    }
    if (c->nseeds > 0)
        return;
    c->seeds = gw_calloc(1, sizeof(n));
    snprintf(c->seeds[0].host, sizeof(c->seeds[0].host), "%s",
             c->cfg->redis_host);
    c->seeds[0].port = c->cfg->redis_port;
    c->nseeds = 1;
}

gw_rcluster_t *gw_rcluster_start(uv_loop_t *loop, const gw_config_t *cfg,
                                 gw_stats_t *stats,
                                 const gw_redis_hooks_t *hooks)
{
    gw_rcluster_t *c = gw_calloc(1, sizeof(*c));
    char why[400];

    c->loop = loop;
    c->cfg = cfg;
    c->stats = stats;
    c->hooks = *hooks;
    c->hooks.control = NULL;
    c->map = gw_malloc(sizeof(*c->map));
    gw_slotmap_init(c->map);
    c->nslots = gw_calloc(1, sizeof(*c->nslots));
    rcluster_seeds(c);
    c->seed = uv_hrtime() ^ (uintptr_t)c;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    gw_link_init(&c->status, GW_LINK_DISABLED);
    snprintf(why, sizeof(why), "connecting (asking %s:%d%s for the shards)",
             c->seeds[0].host, c->seeds[0].port,
             c->nseeds > 1 ? " and the other seeds" : "");
    rcluster_set_state(c, GW_LINK_CONNECTING, why);
    /* The first ask runs on the loop's own thread. */
    uv_timer_start(&c->timer, rcluster_timer_cb, 0, 0);
    return c;
}

static void rcluster_close_cb(uv_handle_t *h)
{
    gw_rcluster_t *c = h->data;

    free(c->shards);
    free(c->nslots);
    free(c->seeds);
    gw_slotmap_free(c->map);
    free(c->map);
    free(c);
}

void gw_rcluster_stop(gw_rcluster_t *c)
{
    c->stopping = 1;
    for (size_t i = 0; i < c->map->nshards; i++)
        gw_shard_stop(c->shards[i]);
    if (c->ask != NULL)
        gw_resp_close(c->ask);
    c->ask = NULL;
    uv_close((uv_handle_t *)&c->timer, rcluster_close_cb);
}
