/*
 * The Redis link: two hiredis connections on the broker thread's loop, one
 * SUBSCRIBEd to the channels (a subscribed connection can run nothing
 * else), one for PUBLISH. They live and die together: a failure of either is a
 * failure of the link, which drops both and opens both again after a
 * backoff, so the state has one meaning for /health.
 *
 * Ownership. hiredis owns each redisAsyncContext and frees it itself right
 * after calling our connect callback with an error, or our disconnect
 * callback; those callbacks forget the pointer, and nothing touches the
 * context afterwards. We free a context only with redisAsyncFree, and never
 * while a hiredis callback is on the stack: a failure seen inside one only
 * sets `failed` and fires the timer at once, whose callback is the safe point
 * that frees what is left ("reaps") and then waits out the backoff. The
 * pointer is cleared before redisAsyncFree, so the callbacks that free runs
 * (NULL replies, the disconnect callback) recognise a context that is no
 * longer ours and do nothing.
 *
 * The link itself is freed when its timer is closed and no host lookup is in
 * flight; see gw_redis_stop.
 */
#include "gw/redis.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/hex.h"
#include "gw/log.h"
#include "gw/redisuv.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <mbedtls/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Commands (PUBLISH, GET) sent and not yet answered. Past it Redis is not
 * keeping up (or is stalled with the socket still open), and the link
 * refuses rather than growing the output buffer without bound.
 */
#define REDIS_MAX_PENDING 4096

/*
 * Channels per SUBSCRIBE or UNSUBSCRIBE command. Redis takes many more, but
 * a command is read whole into its query buffer and answered at once: a
 * resubscribe of 100,000 channels goes as 98 commands of bounded size
 * rather than one of several megabytes.
 */
#define REDIS_CHANNELS_PER_COMMAND 1024

struct gw_redis {
    uv_loop_t *loop;         /* borrowed: the broker thread's */
    const gw_config_t *cfg;  /* borrowed: outlives the link */
    gw_redis_hooks_t hooks;  /* the owner's; hooks.control owned */
    gw_stats_t *stats;       /* borrowed: the owner's counters */
    gw_link_status_t status; /* as /health reports it */
    redisAsyncContext *sub;  /* the SUBSCRIBEd connection; NULL when none */
    redisAsyncContext *pub;  /* the PUBLISHing connection; NULL when none */
    int subscribed;          /* Redis confirmed sub's first channels */
    size_t unconfirmed;      /* of those, not yet confirmed */
    int opening;             /* the resubscribe hook runs: its channels
                                are among the first */
    int pub_ready;           /* pub is connected: PUBLISH may be queued */
    unsigned pending;        /* commands on pub not yet answered */
    int failed;              /* the link failed; the timer will reap */
    int stopping;            /* gw_redis_stop was called */
    unsigned attempt;        /* failed attempts since the link was last up */
    uint64_t seed;           /* backoff jitter */
    int closed;              /* the timer is closed */
    int resolving;           /* lookup is in flight */
    uv_timer_t timer;        /* reconnect backoff; safe point after failure */
    uv_getaddrinfo_t lookup; /* resolves cfg->redis_host off the loop */
};

static void redis_timer_cb(uv_timer_t *t);

/* Frees the link once stopped and nothing of it is left on the loop. */
static void redis_release(gw_redis_t *r)
{
    if (!r->stopping || !r->closed || r->resolving)
        return;
    free((char *)r->hooks.control);
    free(r);
}

static void redis_close_cb(uv_handle_t *h)
{
    gw_redis_t *r = h->data;

    r->closed = 1;
    redis_release(r);
}

/* The one place the state changes, so each change is logged once. */
static void redis_set_state(gw_redis_t *r, gw_link_state_t s, const char *why)
{
    const gw_config_t *cfg = r->cfg;

    if (!gw_link_set(&r->status, s))
        return;
    if (s == GW_LINK_DOWN)
        gw_warn("redis %s:%d: down (%s); reconnecting with backoff",
                cfg->redis_host, cfg->redis_port, why);
    else
        gw_info("redis %s:%d: %s", cfg->redis_host, cfg->redis_port, why);
    if (r->hooks.state != NULL)
        r->hooks.state(s, r->hooks.data);
}

/*
 * Marks the link failed: nothing more is published or delivered, and the
 * timer fires at once to reap both connections outside hiredis's callbacks.
 * Later failures of the same attempt (the other connection dying too) are
 * not news and are ignored.
 */
static void redis_fail(gw_redis_t *r, const char *what, const char *why)
{
    char reason[192];

    if (r->failed || r->stopping)
        return;
    r->failed = 1;
    r->subscribed = 0;
    r->pub_ready = 0;
    gw_stat_set(r->stats, GW_STAT_REDIS_CHANNELS, 0);
    snprintf(reason, sizeof(reason), "%s: %s", what, why);
    redis_set_state(r, GW_LINK_DOWN, reason);
    uv_timer_start(&r->timer, redis_timer_cb, 0, 0);
}

/* Up once both work: subscribed, and the publisher connected. */
static void redis_up_if_ready(gw_redis_t *r)
{
    char why[160];

    if (!r->subscribed || !r->pub_ready)
        return;
    r->attempt = 0;
    snprintf(why, sizeof(why), "up, subscribed to %s (%llu channels)",
             r->cfg->redis_channel,
             (unsigned long long)gw_stat_get(r->stats, GW_STAT_REDIS_CHANNELS));
    redis_set_state(r, GW_LINK_UP, why);
}

/* Clears the link's pointer to ac; false when ac was no longer ours. */
static int redis_forget(gw_redis_t *r, const redisAsyncContext *ac)
{
    if (r->sub == ac)
        r->sub = NULL;
    else if (r->pub == ac)
        r->pub = NULL;
    else
        return 0;
    return 1;
}

/* Frees *acp, if any, outside any of its callbacks (see the top). */
static void redis_reap(redisAsyncContext **acp)
{
    redisAsyncContext *ac = *acp;

    *acp = NULL;
    if (ac != NULL)
        redisAsyncFree(ac);
}

/* hiredis frees ac after this returns when status is an error. */
static void redis_connect_cb(const redisAsyncContext *ac, int status)
{
    gw_redis_t *r = ac->data;

    if (status != REDIS_OK) {
        redis_forget(r, ac);
        redis_fail(r, "connect", ac->c.errstr);
        return;
    }
    if (ac == r->pub && !r->failed) {
        r->pub_ready = 1;
        redis_up_if_ready(r);
    }
}

/*
 * hiredis frees ac after this returns. A context still ours went down with
 * an error (we never ask for a clean disconnect); one we freed ourselves is
 * no longer ours and needs nothing.
 */
static void redis_disconnect_cb(const redisAsyncContext *ac, int status)
{
    gw_redis_t *r = ac->data;

    (void)status;
    if (redis_forget(r, ac))
        redis_fail(r, "connection lost", ac->c.errstr);
}

/* A message, to the control hook or the message hook by its channel. */
static void redis_deliver(gw_redis_t *r, const redisReply *channel,
                          const redisReply *payload)
{
    const char *control = r->hooks.control;

    if (control != NULL && channel->len == strlen(control) &&
        memcmp(channel->str, control, channel->len) == 0)
        r->hooks.control_message(payload->str, payload->len, r->hooks.data);
    else
        r->hooks.message(channel->str, channel->len, payload->str, payload->len,
                         r->hooks.data);
}

/*
 * A channel confirmed (subscribe) or let go (unsubscribe), with the number
 * the connection holds now. Replies come in the order of the commands, so
 * the link is subscribed when the last of its first channels is confirmed.
 */
static void redis_confirmed(gw_redis_t *r, const redisReply *rep)
{
    const redisReply *count = rep->element[2];

    if (count->type == REDIS_REPLY_INTEGER && count->integer >= 0)
        gw_stat_set(r->stats, GW_STAT_REDIS_CHANNELS, (uint64_t)count->integer);
    if (strcmp(rep->element[0]->str, "subscribe") != 0)
        return;
    if (r->hooks.subscribed != NULL)
        r->hooks.subscribed(rep->element[1]->str, rep->element[1]->len,
                            r->hooks.data);
    if (r->unconfirmed == 0)
        return;
    if (--r->unconfirmed == 0) {
        r->subscribed = 1;
        redis_up_if_ready(r);
    }
}

/*
 * Every reply of the subscribed connection: one confirmation per channel,
 * one ["message", channel, payload] per event; NULL while hiredis frees
 * it. An error reply never gets here: hiredis takes one on a subscribed
 * connection as fatal and disconnects, so it arrives as
 * redis_disconnect_cb.
 */
static void redis_sub_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    gw_redis_t *r = ac->data;
    redisReply *rep = reply;
    const char *kind;

    (void)privdata;
    if (rep == NULL || r->failed)
        return;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING)
        return;
    kind = rep->element[0]->str;
    if (strcmp(kind, "message") == 0 &&
        rep->element[2]->type == REDIS_REPLY_STRING)
        redis_deliver(r, rep->element[1], rep->element[2]);
    else if (strcmp(kind, "subscribe") == 0 || strcmp(kind, "unsubscribe") == 0)
        redis_confirmed(r, rep);
}

/* AUTH's reply on either connection; privdata names the connection. */
static void redis_auth_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;

    if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
        redis_fail(ac->data, privdata, rep->str);
}

static void redis_publish_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    gw_redis_t *r = ac->data;
    redisReply *rep = reply;

    (void)privdata;
    if (ac == r->pub)
        r->pending--;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
        redis_fail(r, "PUBLISH", rep->str);
}

/*
 * One connection to ip:port with our callbacks, AUTH queued first when a
 * password is set (commands queue until the connect completes). `name`
 * labels failures. NULL on failure, already reported.
 */
static redisAsyncContext *redis_open(gw_redis_t *r, const char *ip,
                                     const char *name)
{
    const gw_config_t *cfg = r->cfg;
    redisAsyncContext *ac = redisAsyncConnect(ip, cfg->redis_port);

    if (ac == NULL)
        abort(); /* hiredis returns NULL only for want of memory */
    if (ac->err) {
        redis_fail(r, name, ac->c.errstr);
        goto Error;
    }
    ac->data = r;
    if (gw_redisuv_attach(ac, r->loop) != 0) {
        redis_fail(r, name, "cannot watch the socket");
        goto Error;
    }
    redisEnableKeepAlive(&ac->c); /* notices a vanished host */
    redisAsyncSetConnectCallback(ac, redis_connect_cb);
    redisAsyncSetDisconnectCallback(ac, redis_disconnect_cb);
    if (cfg->redis_password[0] != '\0')
        redisAsyncCommand(ac, redis_auth_cb, (void *)name, "AUTH %b",
                          cfg->redis_password, strlen(cfg->redis_password));
    return ac;
Error:
    redisAsyncFree(ac);
    return NULL;
}

/*
 * Opens both connections to ip. SUBSCRIBE is queued behind AUTH: the
 * configured channel and control, then what the owner wants besides.
 */
static void redis_open_both(gw_redis_t *r, const char *ip)
{
    const char *first[2] = {r->cfg->redis_channel, r->hooks.control};
    size_t lens[2] = {strlen(first[0]), first[1] ? strlen(first[1]) : 0};

    r->sub = redis_open(r, ip, "subscriber");
    if (r->sub == NULL)
        return;
    r->unconfirmed = 0;
    r->opening = 1;
    gw_redis_subscribe(r, 1, first, lens, first[1] != NULL ? 2 : 1);
    if (r->hooks.resubscribe != NULL)
        r->hooks.resubscribe(r->hooks.data);
    r->opening = 0;
    r->pending = 0;
    r->pub = redis_open(r, ip, "publisher");
}

/*
 * The address to connect to: the first IPv4 one, else the first, as hiredis
 * itself prefers IPv4 (a "localhost" Redis often listens on 127.0.0.1 only).
 */
static void redis_pick_ip(const struct addrinfo *res, char *ip, size_t len)
{
    const struct addrinfo *ai = res;

    while (ai != NULL && ai->ai_family != AF_INET)
        ai = ai->ai_next;
    if (ai == NULL)
        ai = res;
    if (ai->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, len);
    else
        uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, len);
}

static void redis_lookup_cb(uv_getaddrinfo_t *req, int status,
                            struct addrinfo *res)
{
    gw_redis_t *r = req->data;
    char ip[64];

    r->resolving = 0;
    if (r->stopping) {
        uv_freeaddrinfo(res);
        redis_release(r);
        return;
    }
    if (status < 0) {
        redis_fail(r, "resolve", uv_strerror(status));
        return;
    }
    redis_pick_ip(res, ip, sizeof(ip));
    uv_freeaddrinfo(res);
    redis_open_both(r, ip);
}

static int redis_is_ip(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];

    return uv_inet_pton(AF_INET, host, addr) == 0 ||
           uv_inet_pton(AF_INET6, host, addr) == 0;
}

/*
 * Starts an attempt. hiredis would call getaddrinfo itself, blocking the
 * loop on a slow DNS; libuv resolves a host name on its thread pool instead,
 * and hiredis is given the address.
 */
static void redis_connect(gw_redis_t *r)
{
    struct addrinfo hints;
    int rc;

    if (redis_is_ip(r->cfg->redis_host)) {
        redis_open_both(r, r->cfg->redis_host);
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = uv_getaddrinfo(r->loop, &r->lookup, redis_lookup_cb,
                        r->cfg->redis_host, NULL, &hints);
    if (rc < 0) {
        redis_fail(r, "resolve", uv_strerror(rc));
        return;
    }
    r->resolving = 1;
}

/* Either the safe point after a failure, or the end of the backoff. */
static void redis_timer_cb(uv_timer_t *t)
{
    gw_redis_t *r = t->data;
    const gw_config_t *cfg = r->cfg;
    uint64_t delay;

    if (!r->failed) {
        redis_connect(r);
        return;
    }
    redis_reap(&r->sub);
    redis_reap(&r->pub);
    r->failed = 0;
    delay = gw_link_backoff(r->attempt++, cfg->reconnect_min_ms,
                            cfg->reconnect_max_ms, &r->seed);
    uv_timer_start(t, redis_timer_cb, delay, 0);
}

gw_redis_t *gw_redis_start(uv_loop_t *loop, const gw_config_t *cfg,
                           gw_stats_t *stats, const gw_redis_hooks_t *hooks)
{
    gw_redis_t *r = gw_calloc(1, sizeof(*r));

    r->loop = loop;
    r->cfg = cfg;
    r->stats = stats;
    r->hooks = *hooks;
    if (hooks->control != NULL)
        r->hooks.control = gw_strdup(hooks->control);
    r->seed = uv_hrtime() ^ (uintptr_t)r;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r->lookup.data = r;
    gw_link_init(&r->status, GW_LINK_DISABLED);
    if (!cfg->redis_enabled)
        return r;
    redis_set_state(r, GW_LINK_CONNECTING, "connecting");
    /* The first attempt runs on the loop's own thread. */
    uv_timer_start(&r->timer, redis_timer_cb, 0, 0);
    return r;
}

/* Hands a string reply (a GET's, a script's) to its owner's callback:
 * NULL when the connection was freed or lost first. */
static void redis_answer(gw_redis_get_cb cb, void *data, const redisReply *rep)
{
    if (rep == NULL)
        cb(data, GW_ECLOSED, NULL, 0);
    else if (rep->type == REDIS_REPLY_NIL)
        cb(data, 0, NULL, 0);
    else if (rep->type == REDIS_REPLY_STRING)
        cb(data, 0, rep->str, rep->len);
    else
        cb(data, GW_EIO, NULL, 0);
}

/* A GET in flight: whom to tell. */
typedef struct redis_get {
    gw_redis_get_cb cb;
    void *data;
} redis_get_t;

/* hiredis calls this once per GET: with the reply, or with NULL when the
 * connection is freed or lost first. */
static void redis_get_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    gw_redis_t *r = ac->data;
    redis_get_t *g = privdata;

    if (ac == r->pub)
        r->pending--;
    redis_answer(g->cb, g->data, reply);
    free(g);
}

/* Whether a command may be queued on the publishing connection now. */
static int redis_room(const gw_redis_t *r)
{
    if (!r->pub_ready)
        return GW_ECLOSED;
    if (r->pending >= REDIS_MAX_PENDING)
        return GW_EFULL;
    return 0;
}

int gw_redis_get(gw_redis_t *r, const char *key, gw_redis_get_cb cb, void *data)
{
    redis_get_t *g;
    int rc = redis_room(r);

    if (rc != 0)
        return rc;
    g = gw_malloc(sizeof(*g));
    *g = (redis_get_t){cb, data};
    if (redisAsyncCommand(r->pub, redis_get_cb, g, "GET %b", key,
                          strlen(key)) != REDIS_OK) {
        free(g);
        return GW_ECLOSED;
    }
    r->pending++;
    return 0;
}

void gw_redis_script_init(gw_redis_script_t *s, const char *text)
{
    unsigned char sum[20];

    s->text = text;
    mbedtls_sha1_ret((const unsigned char *)text, strlen(text), sum);
    gw_hex_encode(sum, sizeof(sum), s->sha);
    s->sha[40] = '\0';
}

/*
 * A script call in flight. Its command is kept whole: "EVALSHA sha 0
 * args...", whose first two words become "EVAL text" for the one retry a
 * Redis that lost its script cache (a restart, SCRIPT FLUSH) needs.
 */
typedef struct redis_eval {
    gw_redis_get_cb cb;
    void *data;
    const gw_redis_script_t *script; /* borrowed */
    int retried;                     /* sent as EVAL already */
    int argc;                        /* words of the command */
    const char **argv;               /* owned array; words from [3] owned */
    size_t *lens;                    /* owned */
} redis_eval_t;

static void redis_eval_free(redis_eval_t *e)
{
    for (int i = 3; i < e->argc; i++)
        free((char *)e->argv[i]);
    free(e->argv);
    free(e->lens);
    free(e);
}

static void redis_eval_cb(redisAsyncContext *ac, void *reply, void *privdata);

static int redis_eval_send(gw_redis_t *r, redis_eval_t *e)
{
    if (redisAsyncCommandArgv(r->pub, redis_eval_cb, e, e->argc, e->argv,
                              e->lens) != REDIS_OK)
        return GW_ECLOSED;
    r->pending++;
    return 0;
}

/* Redis forgot the script: sent again with its text, once. */
static int redis_eval_retry(gw_redis_t *r, redis_eval_t *e)
{
    const gw_redis_script_t *s = e->script;

    e->retried = 1;
    e->argv[0] = "EVAL";
    e->lens[0] = 4;
    e->argv[1] = s->text;
    e->lens[1] = strlen(s->text);
    return redis_room(r) == 0 ? redis_eval_send(r, e) : GW_ECLOSED;
}

static void redis_eval_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    gw_redis_t *r = ac->data;
    redisReply *rep = reply;
    redis_eval_t *e = privdata;

    if (ac == r->pub)
        r->pending--;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && !e->retried &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0 && ac == r->pub &&
        redis_eval_retry(r, e) == 0)
        return;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
        gw_warn("redis: script failed: %s", rep->str);
    redis_answer(e->cb, e->data, rep);
    redis_eval_free(e);
}

int gw_redis_eval_bin(gw_redis_t *r, const gw_redis_script_t *s, int argc,
                      const char *const *argv, const size_t *lens,
                      gw_redis_get_cb cb, void *data)
{
    redis_eval_t *e;
    int rc = redis_room(r);

    if (rc != 0)
        return rc;
    e = gw_calloc(1, sizeof(*e));
    *e = (redis_eval_t){cb, data, s, 0, argc + 3, NULL, NULL};
    e->argv = gw_malloc(sizeof(*e->argv) * (size_t)e->argc);
    e->lens = gw_malloc(sizeof(*e->lens) * (size_t)e->argc);
    e->argv[0] = "EVALSHA";
    e->argv[1] = s->sha;
    e->argv[2] = "0";
    for (int i = 0; i < 3; i++)
        e->lens[i] = strlen(e->argv[i]);
    for (int i = 0; i < argc; i++) {
        size_t n = lens != NULL ? lens[i] : strlen(argv[i]);
        char *copy = gw_malloc(n + 1);
        memcpy(copy, argv[i], n);
        copy[n] = '\0';
        e->argv[i + 3] = copy;
        e->lens[i + 3] = n;
    }
    rc = redis_eval_send(r, e);
    if (rc != 0)
        redis_eval_free(e);
    return rc;
}

int gw_redis_eval(gw_redis_t *r, const gw_redis_script_t *s, int argc,
                  const char *const *argv, gw_redis_get_cb cb, void *data)
{
    return gw_redis_eval_bin(r, s, argc, argv, NULL, cb, data);
}

int gw_redis_publish_to(gw_redis_t *r, const char *const *channels,
                        const size_t *lens, size_t n, const char *payload,
                        size_t len)
{
    int rc = redis_room(r);

    if (rc != 0)
        return rc;
    if (r->pending + n > REDIS_MAX_PENDING)
        return GW_EFULL;
    for (size_t i = 0; i < n; i++) {
        /* hiredis refuses only a context that is being freed, which a
         * connected publisher is not: all go, or none. */
        if (redisAsyncCommand(r->pub, redis_publish_cb, NULL, "PUBLISH %b %b",
                              channels[i], lens[i], payload, len) != REDIS_OK)
            return GW_ECLOSED;
        r->pending++;
        gw_stat_add(r->stats, GW_STAT_REDIS_PUBLISHES, 1);
    }
    return 0;
}

/* One SUBSCRIBE or UNSUBSCRIBE of n channels (at most the command's
 * share), each confirmed by its own reply to redis_sub_cb. */
static void redis_subscribe_some(gw_redis_t *r, int on,
                                 const char *const *channels,
                                 const size_t *lens, size_t n)
{
    const char *argv[REDIS_CHANNELS_PER_COMMAND + 1];
    size_t argl[REDIS_CHANNELS_PER_COMMAND + 1];

    argv[0] = on ? "SUBSCRIBE" : "UNSUBSCRIBE";
    argl[0] = strlen(argv[0]);
    memcpy(argv + 1, channels, n * sizeof(*channels));
    memcpy(argl + 1, lens, n * sizeof(*lens));
    if (redisAsyncCommandArgv(r->sub, on ? redis_sub_cb : NULL, NULL,
                              (int)n + 1, argv, argl) != REDIS_OK)
        return; /* a context being freed: the next one subscribes anew */
    gw_stat_add(r->stats,
                on ? GW_STAT_REDIS_SUBSCRIBES : GW_STAT_REDIS_UNSUBSCRIBES, 1);
    if (on && r->opening)
        r->unconfirmed += n;
}

int gw_redis_subscribe(gw_redis_t *r, int on, const char *const *channels,
                       const size_t *lens, size_t n)
{
    if (r->sub == NULL || r->failed)
        return GW_ECLOSED;
    for (size_t i = 0; i < n; i += REDIS_CHANNELS_PER_COMMAND) {
        size_t k = n - i < REDIS_CHANNELS_PER_COMMAND
                       ? n - i
                       : REDIS_CHANNELS_PER_COMMAND;
        redis_subscribe_some(r, on, channels + i, lens + i, k);
    }
    return 0;
}

gw_link_status_t gw_redis_link(const gw_redis_t *r)
{
    return r->status;
}

void gw_redis_stop(gw_redis_t *r)
{
    r->stopping = 1;
    r->pub_ready = 0;
    redis_reap(&r->sub);
    redis_reap(&r->pub);
    /* A lookup still queued is cancelled; one already running is not.
     * Either way its callback runs, and may be the one that frees r. */
    if (r->resolving)
        uv_cancel((uv_req_t *)&r->lookup);
    uv_close((uv_handle_t *)&r->timer, redis_close_cb);
}
