#include "gw/route.h"

#include "gw/alloc.h"
#include "gw/amqp_key.h"
#include "gw/error.h"
#include "gw/log.h"

#include <stdlib.h>
#include <string.h>

struct gw_route {
    uv_loop_t *loop;         /* borrowed: the broker's */
    const gw_config_t *cfg;  /* borrowed */
    gw_stats_t *stats;       /* borrowed: the broker's */
    gw_redis_t *redis;       /* borrowed; NULL until set */
    gw_rcluster_t *cluster;  /* borrowed; NULL unless on a Redis Cluster */
    gw_amqp_t *amqp;         /* borrowed; NULL until set, or not targeted */
    gw_interest_t *interest; /* owned */
    uv_timer_t timer;        /* the next end of a linger */
    int targeted;            /* redis.targeted, with Redis enabled */
    int link_up;             /* the Redis link is up: confirmations come */
    gw_route_hooks_t hooks;  /* the owner's */
    gw_log_limit_t log;      /* messages dropped for their channel */
};

static const gw_stat_t route_kind_stat[] = {
    [GW_CHANNEL_GUILD] = GW_STAT_EVENTS_REDIS_GUILD,
    [GW_CHANNEL_USER] = GW_STAT_EVENTS_REDIS_USER,
    [GW_CHANNEL_SESSION] = GW_STAT_EVENTS_REDIS_SESSION,
    [GW_CHANNEL_PLAIN] = GW_STAT_EVENTS_REDIS_PLAIN,
};

/* The link's (UN)SUBSCRIBE of the channels of l: the Redis Cluster's,
 * which SSUBSCRIBEs each on its shard, or the single node's. */
static void route_link_subscribe(gw_route_t *rt, int on,
                                 const gw_channel_list_t *l)
{
    const char *const *names = (const char *const *)l->names;

    if (rt->cluster != NULL)
        gw_rcluster_subscribe(rt->cluster, on, names, l->lens, l->n);
    else if (rt->redis != NULL)
        gw_redis_subscribe(rt->redis, on, names, l->lens, l->n);
}

/* The link's PUBLISH (SPUBLISH on a cluster) on the channels of l. */
static int route_link_publish(gw_route_t *rt, const gw_channel_list_t *l,
                              const char *text, size_t len)
{
    const char *const *names = (const char *const *)l->names;

    if (rt->cluster != NULL)
        return gw_rcluster_publish_to(rt->cluster, names, l->lens, l->n, text,
                                      len);
    return gw_redis_publish_to(rt->redis, names, l->lens, l->n, text, len);
}

/* The channels of n targets, SUBSCRIBEd (on) or UNSUBSCRIBEd. A link that
 * is down takes nothing: its next connection asks for the whole set. */
static void route_subscribe(gw_route_t *rt, int on,
                            const gw_interest_target_t *t, size_t n)
{
    gw_channel_list_t l = {0};

    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        gw_channel_list_add(&l, rt->cfg->redis_channel, t[i].kind, t[i].id,
                            strlen(t[i].id));
    route_link_subscribe(rt, on, &l);
    gw_channel_list_free(&l);
}

/* Keyed RabbitMQ bindings follow the same targets: the link queues the
 * binds and unbinds of one turn and writes them without waiting. */
static void route_bind(gw_route_t *rt, const gw_interest_target_t *on,
                       size_t non, const gw_interest_target_t *off, size_t noff)
{
    if (rt->amqp == NULL)
        return;
    if (non > 0)
        gw_amqp_targets(rt->amqp, 1, on, non);
    if (noff > 0)
        gw_amqp_targets(rt->amqp, 0, off, noff);
}

static void route_changed_cb(void *data, const gw_interest_target_t *on,
                             size_t non, const gw_interest_target_t *off,
                             size_t noff)
{
    gw_route_t *rt = data;

    if (rt->targeted) {
        route_subscribe(rt, 1, on, non);
        route_subscribe(rt, 0, off, noff);
    }
    route_bind(rt, on, non, off, noff);
}

static void route_answered_cb(void *data, unsigned worker,
                              const gw_interest_target_t *t)
{
    gw_route_t *rt = data;

    rt->hooks.answered(rt->hooks.data, worker, t);
}

static void route_timer_cb(uv_timer_t *t)
{
    gw_route_flush(t->data);
}

gw_route_t *gw_route_start(uv_loop_t *loop, const gw_config_t *cfg,
                           gw_stats_t *stats, const gw_route_hooks_t *hooks)
{
    gw_route_t *rt = gw_calloc(1, sizeof(*rt));

    rt->loop = loop;
    rt->cfg = cfg;
    rt->stats = stats;
    rt->targeted = cfg->redis_enabled && cfg->redis_targeted;
    rt->hooks = *hooks;
    rt->interest = gw_interest_new(
        cfg->redis_unsubscribe_linger_ms, stats,
        &(gw_interest_hooks_t){route_changed_cb, route_answered_cb, rt});
    uv_timer_init(loop, &rt->timer);
    rt->timer.data = rt;
    return rt;
}

void gw_route_set_redis(gw_route_t *rt, gw_redis_t *redis)
{
    rt->redis = redis;
}

void gw_route_set_cluster(gw_route_t *rt, gw_rcluster_t *cluster)
{
    rt->cluster = cluster;
}

void gw_route_set_amqp(gw_route_t *rt, gw_amqp_t *amqp)
{
    rt->amqp = gw_amqp_key_targeted(rt->cfg) ? amqp : NULL;
}

int gw_route_interested(const gw_config_t *cfg)
{
    return (cfg->redis_enabled && cfg->redis_targeted) ||
           gw_amqp_key_targeted(cfg);
}

int gw_route_waited(const gw_config_t *cfg)
{
    return gw_route_interested(cfg) && cfg->redis_subscribe_wait_ms > 0;
}

int gw_route_amqp_targeted(const gw_route_t *rt)
{
    return rt->amqp != NULL;
}

int gw_route_targeted(const gw_route_t *rt)
{
    return rt->targeted;
}

/* The links whose confirmation a +1 waits for now: those that route by
 * targets and are up (what is published meanwhile on one that is down is
 * lost to this instance anyway). */
static unsigned route_need(const gw_route_t *rt)
{
    unsigned need = 0;

    if (rt->targeted && rt->link_up)
        need |= GW_INTEREST_VIA_REDIS;
    if (rt->amqp != NULL && gw_amqp_link(rt->amqp).state == GW_LINK_UP)
        need |= GW_INTEREST_VIA_AMQP;
    return need;
}

/*
 * A worker's +1 of a guild or a user is answered once its channel (and
 * binding) is confirmed; at once when no link is up to wait for. Nothing
 * is answered when no worker waits (gw_route_waited), nor for a session,
 * whose channel no answer waits for (README).
 */
static void route_await(gw_route_t *rt, unsigned worker,
                        const gw_interest_change_t *c)
{
    gw_interest_target_t t = {c->kind, c->id};
    unsigned need = route_need(rt);

    if (!gw_route_waited(rt->cfg) || c->kind == GW_INTEREST_SESSION)
        return;
    if (need != 0)
        gw_interest_await(rt->interest, c->kind, c->id, worker, need);
    else
        rt->hooks.answered(rt->hooks.data, worker, &t);
}

void gw_route_interest(gw_route_t *rt, unsigned worker,
                       const gw_interest_change_t *c, size_t n)
{
    uint64_t now = uv_now(rt->loop);

    for (size_t i = 0; i < n; i++) {
        gw_interest_add(rt->interest, c[i].kind, c[i].id, c[i].delta, now);
        if (c[i].delta > 0)
            route_await(rt, worker, &c[i]);
    }
}

void gw_route_subscribed(gw_route_t *rt, const char *name, size_t len)
{
    gw_channel_t ch;

    if (gw_channel_parse(rt->cfg->redis_channel, name, len, &ch) == 0 &&
        ch.kind != GW_CHANNEL_PLAIN)
        gw_interest_confirm(rt->interest, (gw_interest_kind_t)ch.kind, ch.id,
                            ch.len, GW_INTEREST_VIA_REDIS);
}

void gw_route_bound(gw_route_t *rt, const char *pattern, size_t len)
{
    char id[GW_CHANNEL_ID_MAX];
    gw_channel_t ch;

    /* A pattern is a routing key whose last word is `#`: read as one. */
    if (gw_amqp_key_parse(pattern, len, id, &ch) == 0 &&
        ch.kind != GW_CHANNEL_PLAIN)
        gw_interest_confirm(rt->interest, (gw_interest_kind_t)ch.kind, ch.id,
                            ch.len, GW_INTEREST_VIA_AMQP);
}

void gw_route_link(gw_route_t *rt, gw_link_state_t state)
{
    rt->link_up = state == GW_LINK_UP;
}

void gw_route_flush(gw_route_t *rt)
{
    uint64_t now = uv_now(rt->loop);
    uint64_t due = gw_interest_flush(rt->interest, now);

    if (due == UINT64_MAX)
        uv_timer_stop(&rt->timer);
    else
        uv_timer_start(&rt->timer, route_timer_cb, due > now ? due - now : 0,
                       0);
}

/* The wanted targets' channels, gathered for one subscribe. */
typedef struct route_gathering {
    const char *prefix;
    gw_channel_list_t l;
} route_gathering_t;

static void route_gather(void *data, const gw_interest_target_t *t)
{
    route_gathering_t *g = data;

    gw_channel_list_add(&g->l, g->prefix, t->kind, t->id, strlen(t->id));
}

void gw_route_resubscribe(gw_route_t *rt)
{
    route_gathering_t g = {rt->cfg->redis_channel, {0}};

    gw_interest_each(rt->interest, route_gather, &g);
    if (g.l.n > 0)
        route_link_subscribe(rt, 1, &g.l);
    gw_channel_list_free(&g.l);
}

/* The wanted targets, gathered for one call of the link. */
typedef struct route_targets {
    gw_interest_target_t *t;
    size_t n, cap;
} route_targets_t;

static void route_gather_target(void *data, const gw_interest_target_t *t)
{
    route_targets_t *g = data;

    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->t = gw_realloc(g->t, g->cap * sizeof(*g->t));
    }
    g->t[g->n++] = *t;
}

void gw_route_rebind(gw_route_t *rt)
{
    route_targets_t g = {0};

    if (rt->amqp == NULL)
        return;
    /* The ids point into the table, which does not change until the link
     * has queued them. */
    gw_interest_each(rt->interest, route_gather_target, &g);
    if (g.n > 0)
        gw_amqp_targets(rt->amqp, 1, g.t, g.n);
    free(g.t);
}

/* Whether ev is for the target its channel or routing key (`what`, for
 * the log) names: 0, or GW_EINVAL counted under stat and logged. */
static int route_agree(gw_route_t *rt, gw_event_t *ev, const gw_channel_t *ch,
                       gw_stat_t stat, const char *what, size_t len)
{
    const char *why =
        ch == NULL ? "it names no target" : gw_channel_match(ev, ch);

    if (why == NULL)
        return 0;
    gw_stat_add(rt->stats, stat, 1);
    gw_log_limited(&rt->log, GW_LOG_WARN,
                   "route: a message on %.*s refused: %s",
                   (int)(len < 200 ? len : 200), what, why);
    return GW_EINVAL;
}

int gw_route_key_match(gw_route_t *rt, gw_event_t *ev, const char *key,
                       size_t len)
{
    char id[GW_CHANNEL_ID_MAX];
    gw_channel_t ch;
    int parsed = gw_amqp_key_parse(key, len, id, &ch) == 0;

    return route_agree(rt, ev, parsed ? &ch : NULL, GW_STAT_AMQP_MISMATCHES,
                       key, len);
}

int gw_route_channel(gw_route_t *rt, const char *name, size_t len,
                     gw_channel_t *out)
{
    if (gw_channel_parse(rt->cfg->redis_channel, name, len, out) != 0) {
        gw_log_limited(&rt->log, GW_LOG_WARN,
                       "route: a Redis message on %.*s, not a channel of "
                       "ours, dropped",
                       (int)(len < 200 ? len : 200), name);
        return GW_EINVAL;
    }
    gw_stat_add(rt->stats, route_kind_stat[out->kind], 1);
    return 0;
}

int gw_route_match(gw_route_t *rt, gw_event_t *ev, const gw_channel_t *ch)
{
    return route_agree(rt, ev, ch, GW_STAT_REDIS_MISMATCHES, ch->id, ch->len);
}

void gw_route_channels(const gw_route_t *rt, const gw_event_t *ev,
                       gw_channel_list_t *out)
{
    if (rt->targeted)
        gw_channel_for_event(out, rt->cfg->redis_channel, ev,
                             rt->cfg->redis_max_user_channels);
    else
        gw_channel_list_plain(out, rt->cfg->redis_channel);
}

int gw_route_publish(gw_route_t *rt, const gw_channel_list_t *to,
                     const char *text, size_t len)
{
    return route_link_publish(rt, to, text, len);
}

static void route_close_cb(uv_handle_t *h)
{
    gw_route_t *rt = h->data;

    gw_interest_free(rt->interest);
    free(rt);
}

void gw_route_stop(gw_route_t *rt)
{
    rt->redis = NULL;
    rt->cluster = NULL;
    rt->amqp = NULL;
    uv_close((uv_handle_t *)&rt->timer, route_close_cb);
}
