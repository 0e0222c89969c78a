/*
 * The broker thread: the single producer of every worker's event queue and
 * the single consumer of every worker's relay queue. It runs its own loop
 * with the HTTP API and the Redis and RabbitMQ links, parses each incoming
 * event once and hands it to the workers by reference.
 */
#ifndef GW_BROKER_H
#define GW_BROKER_H

#include "gw/event.h"
#include "gw/handoff.h"
#include "gw/http.h"
#include "gw/link.h"
#include "gw/presence.h"
#include "gw/server.h"
#include "gw/stats.h"
#include "gw/wake.h"

#include <uv.h>

/* Where an event entered; selects the counter. */
typedef enum gw_source {
    GW_SOURCE_HTTP,
    GW_SOURCE_REDIS,
    GW_SOURCE_AMQP,
    GW_SOURCE_CLIENT,   /* a client's typing.start, relayed */
    GW_SOURCE_PRESENCE, /* a presence.update of this instance */
} gw_source_t;

typedef enum gw_relay_kind {
    GW_RELAY_TYPING,   /* a client's typing.start, for the guild */
    GW_RELAY_UPSTREAM, /* a client's event, for the backends (RabbitMQ) */
    GW_RELAY_SYNC,     /* a client's sync_request: Redis, else upstream */
    GW_RELAY_PRESENCE, /* a user's sessions on the worker changed */
    GW_RELAY_HANDOVER, /* a connection resuming a session of another
                          worker, to hand to that worker */
    GW_RELAY_HANDOFF,  /* a step of a drain handoff (step), through Redis */
} gw_relay_kind_t;

/* What a worker hands the broker through its relay queue. */
typedef struct gw_relay {
    gw_relay_kind_t kind;
    int worker;    /* the sender's worker: an answer goes back there */
    char *user;    /* owned: the authenticated user; presence: NULL at
                      the end of a census */
    char *guild;   /* owned, typing: the guild */
    char *channel; /* owned, typing: the channel */
    char *event;   /* owned, upstream, sync: the name, the routing key;
                      handoff: the step's text, or NULL */
    char *data;    /* owned, upstream, sync: the client's data as sent;
                      presence: the user's guilds, a JSON array;
                      handover: the bytes read after the resume (len);
                      handoff: the snapshot (len), or NULL */
    char *nonce;   /* owned, upstream, sync: the client's nonce, or NULL */
    char *scope;   /* owned, sync: the request's scope, or NULL */
    uint8_t session[GW_SESSION_ID_LEN]; /* upstream, sync: the sender's;
                                           handover: the one resumed */
    uint64_t received_ms;   /* upstream, sync: wall clock when taken */
    uint32_t census;        /* presence: the worker's last census */
    int counted;            /* presence: part of that census */
    uint32_t before;        /* presence: the user's sessions here before */
    uint32_t after;         /* presence: and after */
    int fd;                 /* handover: owned, the connection (-1 once
                               passed on); unused by other kinds */
    size_t len;             /* handover: bytes of data (binary) */
    uint64_t seq;           /* handover: the client's last seq */
    uint32_t exp;           /* handover: its token's exp, 0 = none */
    gw_handoff_step_t step; /* handoff */
    uint8_t requester[GW_SESSION_ID_LEN]; /* handoff: LOOKUP, CLAIM */
    uint32_t ttl_ms;                      /* handoff: OPEN */
    /* handover: owned, the transport's state that goes with fd (NULL for
     * plain TCP, and once passed on) */
    gw_transport_state_t *state;
} gw_relay_t;

/* Frees a relay and its strings. */
void gw_relay_free(gw_relay_t *r);

/*
 * Creates the broker and binds the HTTP port, without starting its thread:
 * the workers, created next, need its wake-up handle for their relay
 * queues. `api` answers every request of the HTTP port, with the broker as
 * its data (the owner installs it: the broker never names the API).
 * NULL on failure (logged).
 */
gw_broker_t *gw_broker_create(gw_server_t *srv, gw_http_handler_cb api);

/* Starts the links and the thread, once every worker exists. */
void gw_broker_run(gw_broker_t *b);

/*
 * First half of the shutdown: closes the HTTP API and the links and stops
 * delivering relays, so nothing more is pushed to the workers; returns once
 * that is done. The relay wake-up stays valid until gw_broker_stop, which
 * runs after the workers, its producers, have stopped. Main thread.
 */
void gw_broker_quiesce(gw_broker_t *b);

/* Stops the thread and frees the broker. Main thread, after
 * gw_broker_quiesce and after the workers' threads have ended; the relays
 * still queued are freed with the workers (gw_worker_free). */
void gw_broker_stop(gw_broker_t *b);

/*
 * Whether an upstream relay may be handed over now: 0, GW_ECLOSED while the
 * RabbitMQ link is not up, or GW_EFULL while relay.max_unconfirmed
 * publishes await their confirm. Any thread: the worker asks before it
 * queues, so that the client hears at once.
 */
int gw_broker_upstream_admit(const gw_broker_t *b);

/* The handle that wakes the broker when a relay queue has work. */
gw_wake_t *gw_broker_relay_wake(gw_broker_t *b);

/*
 * Parses one backend envelope and hands it to every worker. Broker thread
 * only. Returns the number of workers reached, or GW_EPARSE / GW_EINVAL with
 * *reason set, or GW_EFULL when a worker queue has no room (nothing queued).
 */
int gw_broker_ingest(gw_broker_t *b, gw_source_t src, const char *json,
                     size_t len, const char **reason);

/* This instance's id (broker.instance_id or the host name). */
const char *gw_broker_instance_id(const gw_broker_t *b);

/* The state of the Redis and RabbitMQ links, for /health. */
gw_link_state_t gw_broker_redis_state(const gw_broker_t *b);
gw_link_state_t gw_broker_amqp_state(const gw_broker_t *b);

/* Presence, for the HTTP API; NULL when presence.enabled is false.
 * Broker thread. */
gw_presence_t *gw_broker_presence(const gw_broker_t *b);

/* The broker's counters. */
const gw_stats_t *gw_broker_stats(const gw_broker_t *b);

/* The server the broker belongs to. */
gw_server_t *gw_broker_server(gw_broker_t *b);

/* The configuration the broker thread goes by now (SIGHUP changes it).
 * Broker thread. */
const gw_config_t *gw_broker_config(const gw_broker_t *b);

/* Hands the broker a new configuration snapshot, taken on its loop: cfg
 * must outlive the broker. Main thread. */
void gw_broker_reconfigure(gw_broker_t *b, const gw_config_t *cfg);

#endif
