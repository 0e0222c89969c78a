#include "gw/broker.h"

#include "gw/alloc.h"
#include "gw/amqp.h"
#include "gw/buf.h"
#include "gw/error.h"
#include "gw/hex.h"
#include "gw/http.h"
#include "gw/json.h"
#include "gw/log.h"
#include "gw/presence.h"
#include "gw/rcluster.h"
#include "gw/redis.h"
#include "gw/route.h"
#include "gw/sync.h"
#include "gw/transport.h"
#include "gw/worker.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Relays taken per loop turn, so that a typing storm cannot starve the
 * HTTP API and the links; the rest waits one turn. */
#define BROKER_RELAYS_PER_TURN 1024

/*
 * Where the broker thread is in the shutdown, set by the main thread and
 * read by the broker's loop. Ordered: each phase only moves to a later one,
 * and from BROKER_QUIESCED on nothing more is handed to the workers.
 */
enum broker_phase {
    BROKER_RUNNING,  /* the HTTP API, the links and the relays deliver */
    BROKER_QUIESCED, /* ingress closed; queued relays are dropped */
    BROKER_STOPPING, /* the loop's handles close and the thread ends */
};

struct gw_broker {
    gw_server_t *srv;       /* borrowed */
    const gw_config_t *cfg; /* borrowed: the latest snapshot (SIGHUP) */
    _Atomic(const gw_config_t *) next_cfg; /* handed over, not yet taken */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t stop;         /* main thread -> broker: next shutdown phase */
    uv_async_t reconf;       /* main thread -> broker: next_cfg is set */
    atomic_int phase;        /* enum broker_phase */
    uv_sem_t quiesced;       /* posted once BROKER_QUIESCED is done */
    gw_wake_t relay_wake;    /* workers -> broker: relay queues have work */
    gw_http_server_t *http;  /* owned; freed by its close callbacks */
    gw_redis_t *redis;       /* owned; NULL on a Redis Cluster */
    gw_rcluster_t *cluster;  /* owned; NULL unless redis.cluster */
    gw_route_t *route;       /* owned: what goes on which channel */
    gw_amqp_t *amqp;         /* owned */
    gw_presence_t *presence; /* owned; NULL when presence is off */
    gw_handoff_t *handoff;   /* owned; NULL when handoff or Redis is off */
    uv_timer_t census_timer; /* retries a census the queues refused */
    uint32_t census;         /* the census to hand the workers */
    char *instance_id;       /* owned */
    char *echo;              /* owned: {"origin":"<instance_id>", how
                                this instance's envelopes begin */
    size_t echo_len;
    gw_log_limit_t reject_log; /* invalid events, from any source */
    gw_log_limit_t relay_log;  /* upstream events refused or lost */
    gw_log_limit_t answer_log; /* answers dropped: a worker queue full */
    gw_amqp_gate_t upstream;   /* the link's publishing side, any thread */
    uint64_t msg_prefix;       /* random: message ids unique across runs */
    uint64_t msg_seq;          /* message ids published so far */
    gw_stats_t stats;
};

/* Where an event entered; selects the counter. */
typedef enum gw_source {
    GW_SOURCE_HTTP,
    GW_SOURCE_REDIS,
    GW_SOURCE_AMQP,
    GW_SOURCE_CLIENT,   /* a client's typing.start, relayed */
    GW_SOURCE_PRESENCE, /* a presence.update of this instance */
} gw_source_t;

/* What an upstream event keeps until RabbitMQ confirms it: enough to
 * answer its client if it does not. */
typedef struct broker_pending {
    int worker;                         /* the client's worker */
    uint8_t session[GW_SESSION_ID_LEN]; /* the client's session */
    char *nonce;                        /* owned; NULL when none was sent */
    char *user;                         /* owned, for the log */
    char *event;                        /* owned, for the log */
} broker_pending_t;

static const gw_stat_t broker_source_stat[] = {
    [GW_SOURCE_HTTP] = GW_STAT_EVENTS_HTTP,
    [GW_SOURCE_REDIS] = GW_STAT_EVENTS_REDIS,
    [GW_SOURCE_AMQP] = GW_STAT_EVENTS_AMQP,
    [GW_SOURCE_CLIENT] = GW_STAT_TYPING_RELAYED,
    [GW_SOURCE_PRESENCE] = GW_STAT_COUNT, /* counted by presence */
};

static const char *const broker_source_name[] = {
    [GW_SOURCE_HTTP] = "HTTP",         [GW_SOURCE_REDIS] = "Redis",
    [GW_SOURCE_AMQP] = "AMQP",         [GW_SOURCE_CLIENT] = "typing",
    [GW_SOURCE_PRESENCE] = "presence",
};

gw_server_t *gw_broker_server(gw_broker_t *b)
{
    return b->srv;
}

const gw_config_t *gw_broker_config(const gw_broker_t *b)
{
    return b->cfg;
}

void gw_broker_reconfigure(gw_broker_t *b, const gw_config_t *cfg)
{
    atomic_store_explicit(&b->next_cfg, cfg, memory_order_release);
    uv_async_send(&b->reconf);
}

const gw_stats_t *gw_broker_stats(const gw_broker_t *b)
{
    return &b->stats;
}

const char *gw_broker_instance_id(const gw_broker_t *b)
{
    return b->instance_id;
}

gw_wake_t *gw_broker_relay_wake(gw_broker_t *b)
{
    return &b->relay_wake;
}

gw_link_status_t gw_broker_redis_link(const gw_broker_t *b)
{
    return b->cluster != NULL ? gw_rcluster_link(b->cluster)
                              : gw_redis_link(b->redis);
}

int gw_broker_redis_shards(const gw_broker_t *b,
                           void (*cb)(void *data, const gw_shard_info_t *s,
                                      size_t slots),
                           void *data)
{
    if (b->cluster == NULL)
        return 0;
    gw_rcluster_shards(b->cluster, cb, data);
    return 1;
}

/* A GET on the link: the single node's, or the master of the key's slot. */
static int broker_redis_get(gw_broker_t *b, const char *key, gw_redis_get_cb cb,
                            void *data)
{
    return b->cluster != NULL ? gw_rcluster_get(b->cluster, key, cb, data)
                              : gw_redis_get(b->redis, key, cb, data);
}

gw_link_status_t gw_broker_amqp_link(const gw_broker_t *b)
{
    return gw_amqp_link(b->amqp);
}

/* Reads only the gate, which the broker owns until after the workers have
 * stopped: the link itself is freed at quiesce, and is created after the
 * workers start. */
int gw_broker_upstream_admit(const gw_broker_t *b)
{
    const gw_amqp_gate_t *g = &b->upstream;

    if (!atomic_load_explicit(&g->open, memory_order_relaxed))
        return GW_ECLOSED;
    if (atomic_load_explicit(&g->unconfirmed, memory_order_relaxed) >=
        b->srv->cfg->relay_max_unconfirmed)
        return GW_EFULL;
    return 0;
}

/*
 * Hands ev to every worker, or to the one worker a session id names; the
 * number reached (0 when that worker does not exist), or GW_EFULL.
 */
static int broker_fanout(gw_broker_t *b, gw_event_t *ev)
{
    gw_server_t *srv = b->srv;
    int first = 0, end = srv->nworkers;

    if (ev->target == GW_TARGET_SESSION) {
        first = (int)gw_session_id_worker(ev->session);
        end = first < srv->nworkers ? first + 1 : first;
    }
    /* This thread is every event queue's only producer, so room seen now is
     * still there for the pushes below: all workers get it or none does. */
    for (int i = first; i < end; i++) {
        if (gw_queue_room(&srv->workers[i]->events) == 0) {
            gw_event_unref(ev);
            return GW_EFULL;
        }
    }
    if (end == first) {
        gw_event_unref(ev);
        return 0;
    }
    ev->ingress_ns = uv_hrtime();
    gw_event_set_refs(ev, (unsigned)(end - first));
    for (int i = first; i < end; i++) {
        gw_worker_t *w = srv->workers[i];
        gw_queue_push(&w->events, ev);
        /* The broker is the only writer of this worker counter. */
        gw_stat_max(&w->stats, GW_STAT_QUEUE_HWM, gw_queue_depth(&w->events));
    }
    return end - first;
}

/* Parses an envelope from src; one that is not valid is counted and
 * logged, and *reason says why. */
static int broker_parse(gw_broker_t *b, gw_source_t src, const char *json,
                        size_t len, gw_event_t **ev, const char **reason)
{
    int rc = gw_event_parse(json, len, ev, reason);

    if (rc != 0) {
        gw_stat_add(&b->stats, GW_STAT_PARSE_FAILURES, 1);
        gw_log_limited(&b->reject_log, GW_LOG_INFO,
                       "broker: %s event rejected: %s", broker_source_name[src],
                       *reason);
    }
    return rc;
}

/* Hands ev to the workers (its reference taken), counted by source: the
 * number of workers reached, or GW_EFULL with *reason set. */
static int broker_deliver(gw_broker_t *b, gw_source_t src, gw_event_t *ev,
                          const char **reason)
{
    int rc = broker_fanout(b, ev);

    if (rc < 0)
        *reason = "worker queues are full";
    else if (broker_source_stat[src] != GW_STAT_COUNT)
        gw_stat_add(&b->stats, broker_source_stat[src], 1);
    return rc;
}

/* Parses one backend envelope and hands it to the workers here: the
 * number reached, or GW_EPARSE / GW_EINVAL / GW_EFULL with *reason. */
static int broker_ingest(gw_broker_t *b, gw_source_t src, const char *json,
                         size_t len, const char **reason)
{
    gw_event_t *ev;
    int rc = broker_parse(b, src, json, len, &ev, reason);

    return rc != 0 ? rc : broker_deliver(b, src, ev, reason);
}

/*
 * Whether a Redis message is this instance's own, known by the way its
 * envelopes begin: {"origin":"<id>" then ',' or '}' (the first member is
 * the one a parse reads). Its echo then costs a compare, not a parse.
 */
static int broker_own_echo(const gw_broker_t *b, const char *payload,
                           size_t len)
{
    return len > b->echo_len && memcmp(payload, b->echo, b->echo_len) == 0 &&
           (payload[b->echo_len] == ',' || payload[b->echo_len] == '}');
}

/*
 * A message of one of the Redis channels. The channel routes: an envelope
 * that is not for the target its channel names is dropped (counted), and
 * one for several users is narrowed to the user whose copy this is.
 */
static void broker_redis_cb(const char *channel, size_t clen,
                            const char *payload, size_t len, void *data)
{
    gw_broker_t *b = data;
    gw_channel_t ch;
    gw_event_t *ev;
    const char *reason;

    if (gw_route_channel(b->route, channel, clen, &ch) != 0)
        return;
    /* Delivered here already when this instance published it. */
    if (broker_own_echo(b, payload, len)) {
        gw_stat_add(&b->stats, GW_STAT_OWN_ECHOES, 1);
        return;
    }
    if (broker_parse(b, GW_SOURCE_REDIS, payload, len, &ev, &reason) != 0)
        return;
    /* The same, from an envelope that does not name its origin first. */
    if (ev->origin != NULL && strcmp(ev->origin, b->instance_id) == 0) {
        gw_stat_add(&b->stats, GW_STAT_OWN_ECHOES, 1);
        gw_event_unref(ev);
        return;
    }
    if (gw_route_match(b->route, ev, &ch) != 0) {
        gw_event_unref(ev);
        return;
    }
    /* Pub/sub has no redelivery: a full queue loses this event, logged. */
    if (broker_deliver(b, GW_SOURCE_REDIS, ev, &reason) == GW_EFULL)
        gw_log_limited(&b->reject_log, GW_LOG_WARN,
                       "broker: Redis event dropped: %s", reason);
}

/* The link has a new subscriber connection: every targeted channel. */
static void broker_resubscribe_cb(void *data)
{
    gw_broker_t *b = data;

    gw_route_resubscribe(b->route);
}

/*
 * A RabbitMQ delivery. With targeted routing the routing key routes, as a
 * Redis channel does: an envelope that is not for the target its key names
 * is dead-lettered (counted), one for several users narrowed to the key's.
 */
static int broker_amqp_cb(const char *key, size_t klen, const char *body,
                          size_t len, void *data)
{
    gw_broker_t *b = data;
    const char *reason;
    gw_event_t *ev;
    int rc;

    if (body == NULL) {
        gw_stat_add(&b->stats, GW_STAT_DEAD_LETTERED, 1);
        gw_log_limited(&b->reject_log, GW_LOG_WARN,
                       "broker: AMQP message of %zu bytes over "
                       "http.max_body_size dead-lettered",
                       len);
        return GW_ETOOBIG;
    }
    rc = broker_parse(b, GW_SOURCE_AMQP, body, len, &ev, &reason);
    if (rc == 0 && gw_route_amqp_targeted(b->route) &&
        gw_route_key_match(b->route, ev, key, klen) != 0) {
        gw_event_unref(ev);
        rc = GW_EINVAL;
    }
    if (rc == 0)
        rc = broker_deliver(b, GW_SOURCE_AMQP, ev, &reason);
    if (rc == GW_EPARSE || rc == GW_EINVAL)
        gw_stat_add(&b->stats, GW_STAT_DEAD_LETTERED, 1);
    return rc < 0 ? rc : 0;
}

/* The RabbitMQ link has a new connection: every wanted target's binding. */
static void broker_rebind_cb(void *data)
{
    gw_broker_t *b = data;

    gw_route_rebind(b->route);
}

/* The envelope of a relayed typing.start, as every instance receives it. */
static char *broker_typing_envelope(gw_broker_t *b, const gw_relay_typing_t *t)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *data;
    char *text;

    /* The origin first, where its own instance sees it unparsed. */
    cJSON_AddStringToObject(doc, "origin", b->instance_id);
    cJSON_AddStringToObject(doc, "event", "typing.start");
    cJSON_AddStringToObject(doc, "guildId", t->guild);
    data = cJSON_AddObjectToObject(doc, "data");
    cJSON_AddStringToObject(data, "userId", t->user);
    cJSON_AddStringToObject(data, "channelId", t->channel);
    cJSON_AddStringToObject(doc, "excludeUserId", t->user);
    cJSON_AddNumberToObject(doc, "priority", 4);
    text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (text == NULL)
        abort(); /* cJSON fails here only for want of memory */
    return text;
}

void gw_relay_free(gw_relay_t *r)
{
    switch (r->kind) {
    case GW_RELAY_TYPING:
        free(r->typing.user);
        free(r->typing.guild);
        free(r->typing.channel);
        break;
    case GW_RELAY_UPSTREAM:
    case GW_RELAY_SYNC:
        free(r->request.user);
        free(r->request.event);
        free(r->request.data);
        free(r->request.nonce);
        free(r->request.scope);
        break;
    case GW_RELAY_PRESENCE:
        free(r->presence.user);
        free(r->presence.guilds);
        break;
    case GW_RELAY_HANDOVER:
        if (r->handover.fd >= 0)
            close(r->handover.fd); /* it never reached its worker */
        gw_transport_state_free(r->handover.state);
        free(r->handover.rest);
        free(r->handover.user);
        gw_grant_free(&r->handover.grant);
        break;
    case GW_RELAY_HANDOFF:
        free((char *)r->handoff.text);
        free((char *)r->handoff.blob);
        break;
    case GW_RELAY_INTEREST:
        gw_interest_changes_free(r->interest.changes, r->interest.n);
        break;
    }
    free(r);
}

/*
 * Delivers an envelope here at once, and to the other instances through
 * the channels of its targets (they skip it if it comes back here: its
 * origin is this instance). Parsed once, its channels read before the
 * event goes to the workers. What the workers here cannot take now
 * (GW_EFULL) goes nowhere: the caller hears that nothing was delivered.
 * Returns as broker_ingest; *published says whether Redis took it.
 */
static int broker_spread(gw_broker_t *b, gw_source_t src, const char *text,
                         size_t len, const char **reason, int *published)
{
    gw_channel_list_t to = {0};
    gw_event_t *ev;
    int rc = broker_parse(b, src, text, len, &ev, reason);

    *published = 0;
    if (rc != 0)
        return rc;
    gw_route_channels(b->route, ev, &to);
    rc = broker_deliver(b, src, ev, reason);
    if (rc != GW_EFULL && gw_broker_redis_link(b).state != GW_LINK_DISABLED) {
        *published = gw_route_publish(b->route, &to, text, len) == 0;
        if (!*published)
            gw_stat_add(&b->stats, GW_STAT_REDIS_PUBLISH_FAILURES, 1);
    }
    gw_channel_list_free(&to);
    return rc;
}

/* An envelope of the gateway's own (typing, presence): spread, and a
 * failure here logged. */
static void broker_spread_own(gw_broker_t *b, gw_source_t src, const char *text,
                              size_t len)
{
    const char *reason;
    int published;

    if (broker_spread(b, src, text, len, &reason, &published) < 0)
        gw_log_limited(&b->reject_log, GW_LOG_WARN,
                       "broker: %s event not delivered: %s",
                       broker_source_name[src], reason);
}

int gw_broker_publish(gw_broker_t *b, const char *json, size_t len,
                      const char **reason, int *cluster)
{
    size_t n;
    char *stamped;
    int rc;

    *cluster = 0;
    if (!gw_route_targeted(b->route))
        return broker_ingest(b, GW_SOURCE_HTTP, json, len, reason);
    stamped = gw_event_stamp_origin(json, len, b->instance_id, &n);
    if (stamped == NULL) /* not an object: parsing says so */
        return broker_ingest(b, GW_SOURCE_HTTP, json, len, reason);
    rc = broker_spread(b, GW_SOURCE_HTTP, stamped, n, reason, cluster);
    free(stamped);
    return rc;
}

static void broker_relay_typing(gw_broker_t *b, gw_relay_t *r)
{
    char *text = broker_typing_envelope(b, &r->typing);

    broker_spread_own(b, GW_SOURCE_CLIENT, text, strlen(text));
    cJSON_free(text);
    gw_relay_free(r);
}

/* ---- presence --------------------------------------------------------- */

static void broker_announce(void *data, const char *json, size_t len)
{
    broker_spread_own(data, GW_SOURCE_PRESENCE, json, len);
}

/* Asks every worker for the census; queues that are full now are tried
 * again shortly, and a later census replaces one not yet handed over. */
static void broker_census_cb(uv_timer_t *t)
{
    gw_broker_t *b = t->data;

    if (atomic_load(&b->phase) >= BROKER_QUIESCED)
        return;
    if (broker_fanout(b, gw_event_census(b->census)) == GW_EFULL)
        uv_timer_start(t, broker_census_cb, 100, 0);
}

static void broker_census(void *data, uint32_t census)
{
    gw_broker_t *b = data;

    b->census = census;
    broker_census_cb(&b->census_timer);
}

static void broker_redis_state_cb(gw_link_state_t state, void *data)
{
    gw_broker_t *b = data;

    gw_route_link(b->route, state);
    if (b->presence != NULL)
        gw_presence_link(b->presence, state);
}

static void broker_relay_presence(gw_broker_t *b, gw_relay_t *r)
{
    const gw_relay_presence_t *q = &r->presence;
    gw_presence_report_t rep = {r->worker, q->census, q->counted, q->before,
                                q->after,  q->user,   q->guilds};

    if (b->presence != NULL)
        gw_presence_report(b->presence, &rep);
    gw_relay_free(r);
}

/* A connection resuming a session of another worker goes to that
 * worker; one that cannot (no such worker, its queue full) is closed, and
 * its client reconnects. */
static void broker_relay_handover(gw_broker_t *b, gw_relay_t *r)
{
    gw_relay_handover_t *h = &r->handover;
    gw_event_t *ev =
        gw_event_adopt(h->session, h->fd, h->state, (uint8_t *)h->rest, h->len,
                       h->seq, h->user, &h->grant);

    h->fd = -1;
    h->state = NULL;
    if (broker_fanout(b, ev) <= 0)
        gw_log_limited(&b->answer_log, GW_LOG_WARN,
                       "broker: a resuming connection for worker %u "
                       "dropped: no such worker, or its queue is full",
                       gw_session_id_worker(h->session));
    gw_relay_free(r);
}

/* ---- drain handoff (docs/continuity.md section 3) --------------------- */

static void broker_handoff_answer(void *data, gw_event_t *ev)
{
    gw_broker_t *b = data;
    unsigned worker = gw_session_id_worker(ev->session);

    if (atomic_load(&b->phase) >= BROKER_QUIESCED) {
        gw_event_unref(ev);
        return;
    }
    if (broker_fanout(b, ev) <= 0)
        gw_log_limited(&b->answer_log, GW_LOG_WARN,
                       "broker: a handoff answer for worker %u dropped: no "
                       "such worker, or its queue is full",
                       worker);
}

static void broker_handoff_control_cb(const char *payload, size_t len,
                                      void *data)
{
    gw_broker_t *b = data;

    if (b->handoff != NULL)
        gw_handoff_control(b->handoff, payload, len);
}

static void broker_relay_handoff(gw_broker_t *b, gw_relay_t *r)
{
    /* Without Redis (or with handoff off) the workers ask nothing: the
     * protocol checks, but a relay queued before a reload may still come. */
    if (b->handoff != NULL)
        gw_handoff_request(b->handoff, &r->handoff);
    gw_relay_free(r);
}

/* A worker dropped a presence report: a census sets the count right. */
static void broker_presence_check(gw_broker_t *b)
{
    gw_server_t *srv = b->srv;
    int lost = 0;

    for (int i = 0; i < srv->nworkers; i++)
        lost |= atomic_exchange(&srv->workers[i]->presence_lost, 0);
    if (lost && b->presence != NULL)
        gw_presence_resync(b->presence);
}

gw_presence_t *gw_broker_presence(const gw_broker_t *b)
{
    return b->presence;
}

/* ---- upstream events (client -> RabbitMQ) --------------------------- */

/* What the backends receive; the client's data goes in as it sent it. */
static void broker_upstream_body(gw_buf_t *o, const gw_broker_t *b,
                                 const gw_relay_t *r)
{
    char id[2 * GW_SESSION_ID_LEN];

    gw_hex_encode(r->request.session, GW_SESSION_ID_LEN, id);
    gw_buf_printf(o, "{\"event\":");
    gw_buf_json_string(o, r->request.event);
    gw_buf_printf(o, ",\"data\":%s,\"userId\":", r->request.data);
    gw_buf_json_string(o, r->request.user);
    gw_buf_printf(o, ",\"sessionId\":\"%.*s\",\"instanceId\":", (int)sizeof(id),
                  id);
    gw_buf_json_string(o, b->instance_id);
    if (r->request.nonce != NULL) {
        gw_buf_printf(o, ",\"nonce\":");
        gw_buf_json_string(o, r->request.nonce);
    }
    gw_buf_printf(o, ",\"receivedAt\":%" PRIu64 "}", r->request.received_ms);
}

/* The error event that answers a client whose event did not go up. */
typedef struct broker_refusal {
    const char *nonce; /* or NULL */
    const char *code;
    const char *message;
} broker_refusal_t;

static void broker_refusal_text(gw_buf_t *o, const broker_refusal_t *f)
{
    gw_buf_printf(o, "{\"event\":\"error\",");
    if (f->nonce != NULL) {
        gw_buf_printf(o, "\"nonce\":");
        gw_buf_json_string(o, f->nonce);
        gw_buf_printf(o, ",");
    }
    gw_buf_printf(o, "\"data\":{\"code\":");
    gw_buf_json_string(o, f->code);
    gw_buf_printf(o, ",\"message\":");
    gw_buf_json_string(o, f->message);
    gw_buf_printf(o, "}}");
}

/* Hands an answer for one session to the worker that holds it, through
 * its event queue, of which the broker is the only producer. Nothing is
 * pushed once the workers are stopping; a full queue drops it, logged. */
static void broker_answer(gw_broker_t *b, int worker, gw_event_t *ev,
                          const char *what)
{
    gw_worker_t *w = b->srv->workers[worker];

    if (atomic_load(&b->phase) >= BROKER_QUIESCED) {
        gw_event_unref(ev);
        return;
    }
    ev->ingress_ns = uv_hrtime();
    if (gw_queue_push(&w->events, ev) != 0) {
        gw_event_unref(ev);
        gw_log_limited(&b->answer_log, GW_LOG_WARN,
                       "broker: worker %d queue full: a client's %s answer "
                       "dropped",
                       worker, what);
        return;
    }
    gw_stat_max(&w->stats, GW_STAT_QUEUE_HWM, gw_queue_depth(&w->events));
}

/* Tells the client that sent m why its event did not go up. */
static void broker_refuse(gw_broker_t *b, const broker_pending_t *m,
                          const char *code, const char *message)
{
    broker_refusal_t f = {m->nonce, code, message};
    gw_buf_t o = {0};
    gw_event_t *ev;

    if (atomic_load(&b->phase) >= BROKER_QUIESCED)
        return;
    broker_refusal_text(&o, &f);
    ev = gw_event_private(m->session, o.data, o.len);
    free(o.data);
    broker_answer(b, m->worker, ev, code);
}

static void broker_pending_free(broker_pending_t *m)
{
    free(m->nonce);
    free(m->user);
    free(m->event);
    free(m);
}

/* Takes what an answer needs from the relay, which is then freed. */
static broker_pending_t *broker_pending_take(gw_relay_t *r)
{
    broker_pending_t *m = gw_malloc(sizeof(*m));

    m->worker = r->worker;
    memcpy(m->session, r->request.session, GW_SESSION_ID_LEN);
    m->nonce = r->request.nonce;
    m->user = r->request.user;
    m->event = r->request.event;
    r->request.nonce = r->request.user = r->request.event = NULL;
    gw_relay_free(r);
    return m;
}

/* The end of a publish: RabbitMQ confirmed it, refused or returned it
 * (GW_EIO), or the link went down first (GW_ECLOSED). A confirmed event
 * needs no word to its client: the backend answers through the reply
 * path. */
static void broker_confirm_cb(void *data, void *msg_data, int status)
{
    gw_broker_t *b = data;
    broker_pending_t *m = msg_data;
    int nacked = status == GW_EIO;

    gw_stat_add(&b->stats, GW_STAT_RELAY_UNCONFIRMED, -1);
    if (status == 0) {
        gw_stat_add(&b->stats, GW_STAT_RELAY_CONFIRMED, 1);
        broker_pending_free(m);
        return;
    }
    gw_stat_add(&b->stats, nacked ? GW_STAT_RELAY_NACKED : GW_STAT_RELAY_LOST,
                1);
    gw_log_limited(&b->relay_log, GW_LOG_INFO, "broker: %s from user %s %s",
                   m->event, m->user,
                   nacked ? "refused or returned by RabbitMQ"
                          : "lost with the RabbitMQ connection");
    broker_refuse(b, m, "unavailable",
                  nacked ? "the backends did not take the event"
                         : "the event may not have reached the backends");
    broker_pending_free(m);
}

/* Publishes a client's event for the backends, routed by its name; the
 * client hears at once when that cannot be done now. */
static void broker_relay_upstream(gw_broker_t *b, gw_relay_t *r)
{
    gw_buf_t o = {0};
    char id[33];
    uint64_t now_s = r->request.received_ms / 1000;
    broker_pending_t *m;
    int rc;

    broker_upstream_body(&o, b, r);
    snprintf(id, sizeof(id), "%016" PRIx64 "%016" PRIx64, b->msg_prefix,
             ++b->msg_seq);
    m = broker_pending_take(r);
    rc = gw_amqp_publish(
        b->amqp, m->event, o.data, o.len,
        &(gw_amqp_props_t){id, m->nonce, b->cfg->amqp_exchange, now_s}, m);
    free(o.data);
    if (rc == 0) {
        gw_stat_add(&b->stats, GW_STAT_RELAY_PUBLISHED, 1);
        gw_stat_add(&b->stats, GW_STAT_RELAY_UNCONFIRMED, 1);
        return;
    }
    /* The worker asked a moment ago; the link has changed since. */
    gw_stat_add(&b->stats, GW_STAT_RELAY_REFUSED, 1);
    gw_log_limited(&b->relay_log, GW_LOG_INFO,
                   "broker: %s from user %s not published: %s", m->event,
                   m->user, gw_strerror(rc));
    if (rc == GW_EFULL)
        broker_refuse(b, m, "overloaded",
                      "too many events on their way to the backends");
    else
        broker_refuse(b, m, "unavailable", "the backends cannot be reached");
    broker_pending_free(m);
}

/* ---- sync_request (client -> Redis, else upstream) ------------------ */

/* Answers a sync_request that cannot be served: r is freed. */
static void broker_sync_fail(gw_broker_t *b, gw_relay_t *r, int rc)
{
    broker_pending_t *m = broker_pending_take(r);

    gw_stat_add(&b->stats, GW_STAT_SYNC_FAILURES, 1);
    if (rc == GW_EFULL)
        broker_refuse(b, m, "overloaded", "too many sync requests in flight");
    else
        broker_refuse(b, m, "unavailable", "the sync cache cannot be read");
    broker_pending_free(m);
}

/* A GET in flight and the request it answers. */
typedef struct broker_sync {
    gw_broker_t *b;
    gw_relay_t *r; /* owned */
} broker_sync_t;

/*
 * Redis answered: a hit is sent as sync-data (if it is a JSON object; a
 * value that is not is never sent to a client), a miss goes up to the
 * sync service, which fills the cache and answers through the reply path.
 */
static void broker_sync_cb(void *data, int status, const char *value,
                           size_t len)
{
    broker_sync_t *q = data;
    gw_broker_t *b = q->b;
    gw_relay_t *r = q->r;
    gw_event_t *ev;

    free(q);
    if (status == 0 && value == NULL) {
        gw_stat_add(&b->stats, GW_STAT_SYNC_MISSES, 1);
        broker_relay_upstream(b, r);
        return;
    }
    if (status != 0 ||
        (ev = gw_sync_answer(r->request.session, r->request.nonce, value,
                             len)) == NULL) {
        if (status == 0)
            gw_log_limited(&b->relay_log, GW_LOG_WARN,
                           "broker: the sync-data of user %s is not a JSON "
                           "object: not sent",
                           r->request.user);
        broker_sync_fail(b, r, status == 0 ? GW_EIO : status);
        return;
    }
    gw_stat_add(&b->stats, GW_STAT_SYNC_HITS, 1);
    broker_answer(b, r->worker, ev, "sync-data");
    gw_relay_free(r);
}

/* Looks for the user's cached sync-data in Redis (the publishing
 * connection, never the subscribed one). */
static void broker_relay_sync(gw_broker_t *b, gw_relay_t *r)
{
    char *key = gw_sync_key(b->cfg->sync_key_template, r->request.user,
                            r->request.scope);
    broker_sync_t *q = gw_malloc(sizeof(*q));
    int rc;

    *q = (broker_sync_t){b, r};
    rc = broker_redis_get(b, key, broker_sync_cb, q);
    free(key);
    if (rc == 0)
        return;
    free(q);
    broker_sync_fail(b, r, rc);
}

/* The route's answer to a worker's +1 (the subscription window), which
 * it takes through its event queue like the other answers. */
static void broker_subscription_cb(void *data, unsigned worker,
                                   const gw_interest_target_t *t)
{
    gw_broker_t *b = data;

    broker_answer(b, (int)worker, gw_event_subscribed(t->kind, t->id),
                  "subscription");
}

/* A worker's targets, counted with the others'; what changed goes to the
 * link at the end of the turn (gw_route_flush). */
static void broker_relay_interest(gw_broker_t *b, gw_relay_t *r)
{
    gw_route_interest(b->route, (unsigned)r->worker, r->interest.changes,
                      r->interest.n);
    gw_relay_free(r);
}

/* Each relay kind's handler; each frees the relay. */
static void (*const broker_relays[])(gw_broker_t *, gw_relay_t *) = {
    [GW_RELAY_TYPING] = broker_relay_typing,
    [GW_RELAY_UPSTREAM] = broker_relay_upstream,
    [GW_RELAY_SYNC] = broker_relay_sync,
    [GW_RELAY_PRESENCE] = broker_relay_presence,
    [GW_RELAY_HANDOVER] = broker_relay_handover,
    [GW_RELAY_HANDOFF] = broker_relay_handoff,
    [GW_RELAY_INTEREST] = broker_relay_interest,
};

static void broker_relay_cb(gw_wake_t *wk)
{
    gw_broker_t *b = wk->data;
    gw_server_t *srv = b->srv;
    int n = 0, more = 0, quiet = atomic_load(&b->phase) >= BROKER_QUIESCED;

    for (int i = 0; i < srv->nworkers; i++) {
        gw_relay_t *r;
        while (n < BROKER_RELAYS_PER_TURN &&
               (r = gw_queue_pop(&srv->workers[i]->relays)) != NULL) {
            /* Once quiesced nothing may reach the stopping workers. */
            if (quiet)
                gw_relay_free(r);
            else
                broker_relays[r->kind](b, r);
            n++;
        }
        more |= gw_queue_depth(&srv->workers[i]->relays) > 0;
    }
    if (more)
        gw_wake_signal(&b->relay_wake);
    if (quiet)
        return;
    broker_presence_check(b);
    gw_route_flush(b->route);
}

static void broker_reconf_cb(uv_async_t *h)
{
    gw_broker_t *b = h->data;
    const gw_config_t *cfg =
        atomic_exchange_explicit(&b->next_cfg, NULL, memory_order_acq_rel);

    if (cfg != NULL)
        b->cfg = cfg;
}

static void broker_stop_cb(uv_async_t *h)
{
    gw_broker_t *b = h->data;

    if (atomic_load(&b->phase) == BROKER_QUIESCED) {
        gw_http_server_close(b->http);
        /* Before the link, whose calls in flight then answer into
         * nothing; presence is freed on a later turn. */
        if (b->presence != NULL)
            gw_presence_stop(b->presence);
        gw_route_stop(b->route); /* before the link it uses */
        if (b->cluster != NULL)
            gw_rcluster_stop(b->cluster);
        else
            gw_redis_stop(b->redis);
        /* After the link: its stop answered every call in flight. */
        if (b->handoff != NULL)
            gw_handoff_free(b->handoff);
        uv_close((uv_handle_t *)&b->census_timer, NULL);
        gw_amqp_stop(b->amqp);
        uv_sem_post(&b->quiesced);
        return;
    }
    gw_wake_close(&b->relay_wake, NULL);
    uv_close((uv_handle_t *)&b->reconf, NULL);
    uv_close((uv_handle_t *)&b->stop, NULL);
}

static void broker_main(void *arg)
{
    gw_broker_t *b = arg;

    /* Named, so that top -H and /proc/PID/task/TID/comm tell the threads
     * apart (gwbench reads the broker's CPU time by this name). */
    pthread_setname_np(pthread_self(), "gw-broker");
    uv_run(&b->loop, UV_RUN_DEFAULT);
}

static char *broker_instance_id(const gw_config_t *cfg)
{
    char host[256];

    if (cfg->instance_id[0] != '\0')
        return gw_strdup(cfg->instance_id);
    if (gethostname(host, sizeof(host)) != 0)
        return gw_strdup("gatewayd");
    host[sizeof(host) - 1] = '\0';
    return gw_strdup(host);
}

gw_broker_t *gw_broker_create(gw_server_t *srv, gw_http_handler_cb api)
{
    gw_broker_t *b = gw_calloc(1, sizeof(*b));
    const gw_config_t *cfg = srv->cfg;
    int rc;

    b->srv = srv;
    b->cfg = cfg;
    atomic_init(&b->next_cfg, NULL);
    b->instance_id = broker_instance_id(cfg);
    b->echo = gw_event_stamp_origin("{}", 2, b->instance_id, &b->echo_len);
    b->echo_len -= 1; /* without the closing brace */
    uv_loop_init(&b->loop);
    uv_async_init(&b->loop, &b->stop, broker_stop_cb);
    uv_async_init(&b->loop, &b->reconf, broker_reconf_cb);
    if (gw_wake_init(&b->loop, &b->relay_wake, broker_relay_cb, b) != 0) {
        gw_error("broker: cannot create its wake-up eventfd");
        abort();
    }
    b->stop.data = b->reconf.data = b;
    atomic_init(&b->phase, BROKER_RUNNING);
    atomic_init(&b->upstream.open, 0);
    atomic_init(&b->upstream.unconfirmed, 0);
    if (getrandom(&b->msg_prefix, sizeof(b->msg_prefix), 0) !=
        sizeof(b->msg_prefix))
        b->msg_prefix = uv_hrtime() ^ (uint64_t)getpid() << 32;
    uv_sem_init(&b->quiesced, 0);
    rc = gw_http_server_start(&b->http, &b->loop, cfg->bind, cfg->http_port,
                              cfg->max_body_size, api, b);
    if (rc != 0) {
        gw_error("cannot listen on %s:%d for HTTP: %s", cfg->bind,
                 cfg->http_port, gw_strerror(rc));
        goto Error;
    }
    return b;

Error:
    /* Only the HTTP API can fail, after everything else is set up: the
     * handles close, and one run of the loop lets their close callbacks,
     * the failed HTTP listener's included, free them. */
    uv_close((uv_handle_t *)&b->stop, NULL);
    uv_close((uv_handle_t *)&b->reconf, NULL);
    gw_wake_close(&b->relay_wake, NULL);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->loop);
    gw_wake_free(&b->relay_wake);
    uv_sem_destroy(&b->quiesced);
    free(b->instance_id);
    free(b->echo);
    free(b);
    return NULL;
}

static void broker_subscribed_cb(const char *channel, size_t clen, void *data)
{
    gw_broker_t *b = data;

    gw_route_subscribed(b->route, channel, clen);
}

static void broker_bound_cb(void *data, const char *pattern, size_t len)
{
    gw_broker_t *b = data;

    gw_route_bound(b->route, pattern, len);
}

/* The Redis link: a Redis Cluster's (gw_config_check refused the
 * handoff, and presence, there), or the single node's. */
static void broker_redis_start(gw_broker_t *b, const char *control)
{
    const gw_config_t *cfg = b->srv->cfg;
    gw_redis_hooks_t hooks = {
        .message = broker_redis_cb,
        .resubscribe =
            gw_route_targeted(b->route) ? broker_resubscribe_cb : NULL,
        .subscribed = gw_route_targeted(b->route) ? broker_subscribed_cb : NULL,
        .state = broker_redis_state_cb,
        .control = control,
        .control_message = broker_handoff_control_cb,
        .data = b};

    if (cfg->redis_enabled && cfg->redis_cluster) {
        b->cluster = gw_rcluster_start(&b->loop, cfg, &b->stats, &hooks);
        gw_route_set_cluster(b->route, b->cluster);
        return;
    }
    b->redis = gw_redis_start(&b->loop, cfg, &b->stats, &hooks);
    gw_route_set_redis(b->route, b->redis);
}

void gw_broker_run(gw_broker_t *b)
{
    const gw_config_t *cfg = b->srv->cfg;
    char control[256];
    int handoff = cfg->redis_enabled && cfg->handoff;

    gw_handoff_channel(cfg, b->instance_id, control, sizeof(control));
    b->route = gw_route_start(&b->loop, cfg, &b->stats,
                              &(gw_route_hooks_t){broker_subscription_cb, b});
    broker_redis_start(b, handoff ? control : NULL);
    if (handoff)
        b->handoff =
            gw_handoff_new(b->redis, cfg, b->instance_id, &b->stats,
                           &(gw_handoff_hooks_t){broker_handoff_answer, b});
    uv_timer_init(&b->loop, &b->census_timer);
    b->census_timer.data = b;
    if (cfg->presence_enabled)
        b->presence = gw_presence_start(
            &b->loop, b->redis, cfg, b->instance_id, b->srv->nworkers,
            &b->stats,
            &(gw_presence_hooks_t){broker_announce, broker_census, b});
    b->amqp = gw_amqp_start(&b->loop, cfg, b->instance_id, &b->stats,
                            &(gw_amqp_hooks_t){
                                .message = broker_amqp_cb,
                                .confirm = broker_confirm_cb,
                                .rebind = broker_rebind_cb,
                                .bound = broker_bound_cb,
                                .data = b,
                                .gate = &b->upstream,
                            });
    gw_route_set_amqp(b->route, b->amqp);
    gw_info("broker: instance %s, redis %s%s, amqp %s", b->instance_id,
            !cfg->redis_enabled   ? "disabled"
            : cfg->redis_targeted ? "enabled (targeted channels)"
                                  : "enabled (one channel)",
            cfg->redis_enabled && cfg->redis_cluster ? " on a Redis Cluster"
                                                     : "",
            !cfg->amqp_enabled                 ? "disabled"
            : gw_route_amqp_targeted(b->route) ? "enabled (targeted bindings)"
                                               : "enabled (amqp.binding_keys)");
    if (uv_thread_create(&b->thread, broker_main, b) != 0) {
        gw_error("cannot start the broker thread");
        abort();
    }
}

void gw_broker_quiesce(gw_broker_t *b)
{
    atomic_store(&b->phase, BROKER_QUIESCED);
    uv_async_send(&b->stop);
    uv_sem_wait(&b->quiesced);
}

void gw_broker_stop(gw_broker_t *b)
{
    atomic_store(&b->phase, BROKER_STOPPING);
    uv_async_send(&b->stop);
    uv_thread_join(&b->thread);
    uv_loop_close(&b->loop);
    gw_wake_free(&b->relay_wake);
    uv_sem_destroy(&b->quiesced);
    free(b->instance_id);
    free(b->echo);
    free(b);
}
