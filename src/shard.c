/*
 * A shard master's two connections. Ownership: the shard owns its gw_resp
 * connections and forgets each when it closes it or hears it closed;
 * gw_resp frees them itself. The shard is freed by its timer's close
 * callback, after gw_shard_stop; no hook of a connection comes after the
 * connection is closed, so nothing refers to a freed shard.
 *
 * The subscriber's commands wait in a list until every channel they named
 * is answered. Redis answers in the order of the commands, one reply per
 * channel, and a refused command with one error; messages and unasked
 * SUNSUBSCRIBEs come between commands, never within one's replies. A
 * SUNSUBSCRIBE command keeps its channel names, so that a reply naming
 * another channel is known to be unasked.
 */
#include "gw/shard.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/log.h"
#include "gw/resp.h"
#include "gw/slotmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Commands (SPUBLISH, GET) on the publisher not yet answered: past it the
 * master is not keeping up, and the shard refuses rather than queueing
 * without bound. */
#define SHARD_MAX_PENDING 4096

/* Channels per SSUBSCRIBE or SUNSUBSCRIBE, as the single-node link sends:
 * a slot holding more (a hash tag shared by many) takes several. */
#define SHARD_CHANNELS_PER_COMMAND 1024

/* A subscriber command not yet answered in full. */
typedef struct shard_cmd {
    struct shard_cmd *next;
    int on;         /* SSUBSCRIBE, else SUNSUBSCRIBE */
    int opening;    /* among the new connection's first commands */
    size_t n, done; /* channels named, and answered so far */
    char *names;    /* SUNSUBSCRIBE: owned, its channels end to end */
    size_t *lens;   /* SUNSUBSCRIBE: owned, their lengths */
    size_t at;      /* offset in names of the next channel to answer */
} shard_cmd_t;

struct gw_shard {
    uv_loop_t *loop;          /* borrowed: the broker thread's */
    const gw_config_t *cfg;   /* borrowed */
    gw_stats_t *stats;        /* borrowed: the owner's counters */
    gw_shard_hooks_t hooks;   /* the owner's */
    char *host;               /* owned */
    int port;                 /* with host, the master's address */
    char name[300];           /* "host:port" for the log */
    gw_link_status_t status;  /* as /health reports it */
    gw_resp_t *sub;           /* the subscriber; NULL when none */
    gw_resp_t *pub;           /* the publisher; NULL when none */
    int sub_ready, pub_ready; /* connected */
    int opening;              /* the opened hook runs */
    size_t unconfirmed;       /* opening channels not yet confirmed */
    shard_cmd_t *head, *tail; /* owned: subscriber commands in flight */
    uint64_t channels;        /* as Redis last counted them */
    uint64_t lost;            /* SPUBLISHes lost */
    unsigned attempt;         /* failed attempts since last up */
    uint64_t seed;            /* backoff jitter */
    int stopping;             /* gw_shard_stop was called */
    uv_timer_t timer;         /* reconnect backoff */
    gw_log_limit_t lost_log;  /* lost SPUBLISHes */
};

gw_shard_reply_kind_t gw_shard_reply_read(const redisReply *r,
                                          gw_shard_reply_t *out)
{
    const redisReply *kind, *third;

    *out = (gw_shard_reply_t){GW_SHARD_OTHER, NULL, 0, NULL, 0, -1};
    if (r->type == REDIS_REPLY_ERROR) {
        *out = (gw_shard_reply_t){GW_SHARD_ERROR, NULL, 0, r->str, r->len, -1};
        return out->kind;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING)
        return out->kind;
    kind = r->element[0];
    third = r->element[2];
    if (kind->len == 8 && memcmp(kind->str, "smessage", 8) == 0 &&
        third->type == REDIS_REPLY_STRING) {
        out->kind = GW_SHARD_MESSAGE;
        out->payload = third->str;
        out->len = third->len;
    } else if (third->type == REDIS_REPLY_INTEGER && kind->len == 10 &&
               memcmp(kind->str, "ssubscribe", 10) == 0) {
        out->kind = GW_SHARD_SUBSCRIBED;
        out->count = third->integer;
    } else if (third->type == REDIS_REPLY_INTEGER && kind->len == 12 &&
               memcmp(kind->str, "sunsubscribe", 12) == 0) {
        out->kind = GW_SHARD_UNSUBSCRIBED;
        out->count = third->integer;
    } else {
        return out->kind;
    }
    out->channel = r->element[1]->str;
    out->clen = r->element[1]->len;
    return out->kind;
}

/* ---- state ------------------------------------------------------------ */

static void shard_timer_cb(uv_timer_t *t);

/* The one place the state changes, so each change is logged once. */
static void shard_set_state(gw_shard_t *s, gw_link_state_t st, const char *why)
{
    if (!gw_link_set(&s->status, st))
        return;
    if (st == GW_LINK_DOWN)
        gw_warn("redis shard %s: down (%s); reconnecting with backoff", s->name,
                why);
    else
        gw_info("redis shard %s: %s", s->name, why);
    s->hooks.state(s->hooks.data, s);
}

/* Redis's count of the channels the subscriber holds, into the gauge. */
static void shard_count(gw_shard_t *s, long long count)
{
    if (count < 0)
        return;
    gw_stat_add(s->stats, GW_STAT_REDIS_CHANNELS,
                (int64_t)count - (int64_t)s->channels);
    s->channels = (uint64_t)count;
}

static void shard_cmd_pop(gw_shard_t *s)
{
    shard_cmd_t *c = s->head;

    s->head = c->next;
    if (s->head == NULL)
        s->tail = NULL;
    free(c->names);
    free(c->lens);
    free(c);
}

/* Closes both connections and forgets what they held. */
static void shard_drop(gw_shard_t *s)
{
    if (s->sub != NULL)
        gw_resp_close(s->sub);
    if (s->pub != NULL)
        gw_resp_close(s->pub);
    s->sub = s->pub = NULL;
    s->sub_ready = s->pub_ready = 0;
    s->unconfirmed = 0;
    while (s->head != NULL)
        shard_cmd_pop(s);
    shard_count(s, 0);
}

/* A failure of either connection, or of Redis's answers: both dropped,
 * and opened again after the backoff. */
static void shard_fail(gw_shard_t *s, const char *what, const char *why)
{
    char reason[200];

    if (s->stopping)
        return;
    shard_drop(s);
    snprintf(reason, sizeof(reason), "%s: %s", what, why);
    shard_set_state(s, GW_LINK_DOWN, reason);
    s->hooks.failed(s->hooks.data, s);
    uv_timer_start(&s->timer, shard_timer_cb,
                   gw_link_backoff(s->attempt++, s->cfg->reconnect_min_ms,
                                   s->cfg->reconnect_max_ms, &s->seed),
                   0);
}

/* Up once both are connected and the opening channels are confirmed. */
static void shard_up_if_ready(gw_shard_t *s)
{
    char why[64];

    if (!s->sub_ready || !s->pub_ready || s->unconfirmed > 0)
        return;
    s->attempt = 0;
    snprintf(why, sizeof(why), "up (%llu channels)",
             (unsigned long long)s->channels);
    shard_set_state(s, GW_LINK_UP, why);
}

/* ---- the subscriber --------------------------------------------------- */

/* k opening channels answered (confirmed, or refused). */
static void shard_opening_answered(gw_shard_t *s, size_t k)
{
    s->unconfirmed -= k < s->unconfirmed ? k : s->unconfirmed;
    shard_up_if_ready(s);
}

/* An ssubscribe reply: one channel of the head command confirmed. */
static void shard_confirmed(gw_shard_t *s)
{
    shard_cmd_t *c = s->head;
    int opening;

    if (c == NULL || !c->on)
        return; /* Redis confirms nothing unasked: not ours to count */
    opening = c->opening;
    if (++c->done == c->n)
        shard_cmd_pop(s);
    if (opening)
        shard_opening_answered(s, 1);
}

/* Whether a sunsubscribe reply answers the head command: it names the
 * channel that command named next. */
static int shard_asked(gw_shard_t *s, const gw_shard_reply_t *r)
{
    shard_cmd_t *c = s->head;

    if (c == NULL || c->on || c->lens[c->done] != r->clen ||
        memcmp(c->names + c->at, r->channel, r->clen) != 0)
        return 0;
    c->at += r->clen;
    if (++c->done == c->n)
        shard_cmd_pop(s);
    return 1;
}

/* A slot is not this shard's any more: the owner finds its new master. */
static void shard_moved(gw_shard_t *s, unsigned slot)
{
    gw_stat_add(s->stats, GW_STAT_REDIS_CLUSTER_MOVED, 1);
    s->hooks.moved(s->hooks.data, s, slot);
}

/* An error answers the head command as a whole. MOVED: its slot lives
 * elsewhere (the owner resubscribes it there). Anything else is a failure
 * of the link. */
static void shard_refused(gw_shard_t *s, const gw_shard_reply_t *r)
{
    shard_cmd_t *c = s->head;
    gw_slot_moved_t mv;
    size_t left;
    int opening;

    if (c == NULL || gw_slot_moved(r->payload, r->len, &mv) != 0) {
        shard_fail(s, "subscriber", r->payload);
        return;
    }
    left = c->n - c->done;
    opening = c->opening;
    shard_cmd_pop(s);
    shard_moved(s, mv.slot);
    if (opening)
        shard_opening_answered(s, left);
}

static void shard_sub_push(void *data, const redisReply *rep)
{
    gw_shard_t *s = data;
    gw_shard_reply_t r;

    switch (gw_shard_reply_read(rep, &r)) {
    case GW_SHARD_MESSAGE:
        s->hooks.message(s->hooks.data, r.channel, r.clen, r.payload, r.len);
        break;
    case GW_SHARD_SUBSCRIBED:
        shard_count(s, r.count);
        shard_confirmed(s);
        s->hooks.subscribed(s->hooks.data, r.channel, r.clen);
        break;
    case GW_SHARD_UNSUBSCRIBED:
        shard_count(s, r.count);
        if (!shard_asked(s, &r))
            shard_moved(s, gw_slot_of(r.channel, r.clen));
        break;
    case GW_SHARD_ERROR: shard_refused(s, &r); break;
    case GW_SHARD_OTHER: break; /* nothing asked for it */
    }
}

static void shard_sub_connected(void *data)
{
    gw_shard_t *s = data;

    s->sub_ready = 1;
    shard_up_if_ready(s);
}

static void shard_sub_closed(void *data, const char *why)
{
    gw_shard_t *s = data;

    s->sub = NULL; /* closed by gw_resp itself */
    shard_fail(s, "subscriber", why);
}

/* A command of n channels, the names kept for a SUNSUBSCRIBE. */
static shard_cmd_t *shard_cmd_new(int on, int opening,
                                  const char *const *channels,
                                  const size_t *lens, size_t n)
{
    shard_cmd_t *c = gw_calloc(1, sizeof(*c));
    size_t total = 0;

    *c = (shard_cmd_t){NULL, on, opening, n, 0, NULL, NULL, 0};
    if (on)
        return c;
    c->lens = gw_malloc(n * sizeof(*c->lens));
    for (size_t i = 0; i < n; i++)
        total += c->lens[i] = lens[i];
    c->names = gw_malloc(total + 1);
    total = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(c->names + total, channels[i], lens[i]);
        total += lens[i];
    }
    return c;
}

/* One command of n channels (at most the command's share). */
static void shard_subscribe_some(gw_shard_t *s, int on,
                                 const char *const *channels,
                                 const size_t *lens, size_t n)
{
    const char *argv[SHARD_CHANNELS_PER_COMMAND + 1];
    size_t argl[SHARD_CHANNELS_PER_COMMAND + 1];
    shard_cmd_t *c;

    argv[0] = on ? "SSUBSCRIBE" : "SUNSUBSCRIBE";
    argl[0] = strlen(argv[0]);
    memcpy(argv + 1, channels, n * sizeof(*channels));
    memcpy(argl + 1, lens, n * sizeof(*lens));
    if (gw_resp_command(s->sub, (int)n + 1, argv, argl, NULL, NULL) != 0)
        return; /* closing: the next connection subscribes anew */
    c = shard_cmd_new(on, on && s->opening, channels, lens, n);
    if (s->tail != NULL)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    if (c->opening)
        s->unconfirmed += n;
    gw_stat_add(s->stats,
                on ? GW_STAT_REDIS_SUBSCRIBES : GW_STAT_REDIS_UNSUBSCRIBES, 1);
}

int gw_shard_subscribe(gw_shard_t *s, int on, const char *const *channels,
                       const size_t *lens, size_t n)
{
    if (s->sub == NULL)
        return GW_ECLOSED;
    for (size_t i = 0; i < n; i += SHARD_CHANNELS_PER_COMMAND) {
        size_t k = n - i < SHARD_CHANNELS_PER_COMMAND
                       ? n - i
                       : SHARD_CHANNELS_PER_COMMAND;
        shard_subscribe_some(s, on, channels + i, lens + i, k);
    }
    return 0;
}

/* ---- the publisher ---------------------------------------------------- */

static void shard_pub_connected(void *data)
{
    gw_shard_t *s = data;

    s->pub_ready = 1;
    shard_up_if_ready(s);
}

static void shard_pub_closed(void *data, const char *why)
{
    gw_shard_t *s = data;

    s->pub = NULL; /* closed by gw_resp itself */
    shard_fail(s, "publisher", why);
}

/* A SPUBLISH that did not go out: counted for the shard, logged. */
static void shard_lose(gw_shard_t *s, const char *channel, size_t clen,
                       const char *why)
{
    s->lost++;
    gw_stat_add(s->stats, GW_STAT_REDIS_CLUSTER_LOST, 1);
    gw_log_limited(&s->lost_log, GW_LOG_WARN,
                   "redis shard %s: SPUBLISH on %.*s lost: %s (%llu so far)",
                   s->name, (int)(clen < 200 ? clen : 200), channel, why,
                   (unsigned long long)s->lost);
}

/* SPUBLISH's reply. MOVED: published nowhere, as the map was stale. */
static void shard_publish_cb(void *data, const redisReply *rep)
{
    gw_shard_t *s = data;
    gw_slot_moved_t mv;
    char slot[32];

    if (rep == NULL || rep->type != REDIS_REPLY_ERROR)
        return;
    if (gw_slot_moved(rep->str, rep->len, &mv) != 0) {
        shard_fail(s, "SPUBLISH", rep->str);
        return;
    }
    snprintf(slot, sizeof(slot), "slot %u", mv.slot);
    shard_lose(s, slot, strlen(slot), "the slot moved to another master");
    shard_moved(s, mv.slot);
}

/* Whether a command may be queued on the publisher now. */
static int shard_room(const gw_shard_t *s)
{
    if (!s->pub_ready)
        return GW_ECLOSED;
    if (gw_resp_pending(s->pub) >= SHARD_MAX_PENDING)
        return GW_EFULL;
    return 0;
}

int gw_shard_publish(gw_shard_t *s, const char *channel, size_t clen,
                     const char *payload, size_t len)
{
    int rc = shard_room(s);

    if (rc != 0) {
        shard_lose(s, channel, clen,
                   rc == GW_EFULL ? "too many commands unanswered"
                                  : "the shard is not connected");
        return rc;
    }
    gw_resp_command(s->pub, 3, (const char *[]){"SPUBLISH", channel, payload},
                    (const size_t[]){8, clen, len}, shard_publish_cb, s);
    gw_stat_add(s->stats, GW_STAT_REDIS_PUBLISHES, 1);
    return 0;
}

/* A GET in flight and whom to tell. */
typedef struct shard_get {
    gw_shard_t *s;
    gw_redis_get_cb cb;
    void *data;
} shard_get_t;

static void shard_get_cb(void *data, const redisReply *rep)
{
    shard_get_t *g = data;
    gw_slot_moved_t mv;

    if (rep == NULL)
        g->cb(g->data, GW_ECLOSED, NULL, 0);
    else if (rep->type == REDIS_REPLY_NIL)
        g->cb(g->data, 0, NULL, 0);
    else if (rep->type == REDIS_REPLY_STRING)
        g->cb(g->data, 0, rep->str, rep->len);
    else
        g->cb(g->data, GW_EIO, NULL, 0);
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR &&
        gw_slot_moved(rep->str, rep->len, &mv) == 0)
        shard_moved(g->s, mv.slot);
    free(g);
}

int gw_shard_get(gw_shard_t *s, const char *key, gw_redis_get_cb cb, void *data)
{
    shard_get_t *g;
    int rc = shard_room(s);

    if (rc != 0)
        return rc;
    g = gw_malloc(sizeof(*g));
    *g = (shard_get_t){s, cb, data};
    gw_resp_command(s->pub, 2, (const char *[]){"GET", key},
                    (const size_t[]){3, strlen(key)}, shard_get_cb, g);
    return 0;
}

/* ---- life ------------------------------------------------------------- */

/* Opens both connections; the opened hook queues the subscriptions. */
static void shard_open(gw_shard_t *s)
{
    const char *pw = s->cfg->redis_password, *why;

    s->sub =
        gw_resp_open(s->loop, s->host, s->port, pw,
                     &(gw_resp_hooks_t){shard_sub_connected, shard_sub_push,
                                        shard_sub_closed, s},
                     &why);
    if (s->sub == NULL) {
        shard_fail(s, "subscriber", why);
        return;
    }
    s->unconfirmed = 0;
    s->opening = 1;
    s->hooks.opened(s->hooks.data, s);
    s->opening = 0;
    s->pub = gw_resp_open(
        s->loop, s->host, s->port, pw,
        &(gw_resp_hooks_t){shard_pub_connected, NULL, shard_pub_closed, s},
        &why);
    if (s->pub == NULL)
        shard_fail(s, "publisher", why);
}

static void shard_timer_cb(uv_timer_t *t)
{
    shard_open(t->data);
}

gw_shard_t *gw_shard_start(uv_loop_t *loop, const gw_config_t *cfg,
                           gw_stats_t *stats, const char *host, int port,
                           const gw_shard_hooks_t *hooks)
{
    gw_shard_t *s = gw_calloc(1, sizeof(*s));

    s->loop = loop;
    s->cfg = cfg;
    s->stats = stats;
    s->hooks = *hooks;
    s->host = gw_strdup(host);
    s->port = port;
    snprintf(s->name, sizeof(s->name), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
             host, port);
    s->seed = uv_hrtime() ^ (uintptr_t)s;
    gw_link_init(&s->status, GW_LINK_CONNECTING);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    /* The first attempt runs on a later turn: the owner holds s by then. */
    uv_timer_start(&s->timer, shard_timer_cb, 0, 0);
    return s;
}

void gw_shard_info(const gw_shard_t *s, gw_shard_info_t *out)
{
    *out = (gw_shard_info_t){s->host, s->port, s->status, s->channels, s->lost};
}

static void shard_close_cb(uv_handle_t *h)
{
    gw_shard_t *s = h->data;

    free(s->host);
    free(s);
}

void gw_shard_stop(gw_shard_t *s)
{
    s->stopping = 1;
    shard_drop(s);
    uv_close((uv_handle_t *)&s->timer, shard_close_cb);
}
