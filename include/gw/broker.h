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
#include "gw/interest.h"
#include "gw/link.h"
#include "gw/presence.h"
#include "gw/server.h"
#include "gw/shard.h"
#include "gw/stats.h"
#include "gw/wake.h"

#include <uv.h>

typedef enum gw_relay_kind {
    GW_RELAY_TYPING,   /* a client's typing.start, for the guild */
    GW_RELAY_UPSTREAM, /* a client's event, for the backends (RabbitMQ) */
    GW_RELAY_SYNC,     /* a client's sync_request: Redis, else upstream */
    GW_RELAY_PRESENCE, /* a user's sessions on the worker changed */
    GW_RELAY_HANDOVER, /* a connection resuming a session of another
                          worker, to hand to that worker */
    GW_RELAY_HANDOFF,  /* a step of a drain handoff (step), through Redis */
    GW_RELAY_INTEREST, /* targets the worker began or ceased to hold */
} gw_relay_kind_t;

/* A client's typing.start, for the guild (GW_RELAY_TYPING). */
typedef struct gw_relay_typing {
    char *user;    /* owned: the sender */
    char *guild;   /* owned */
    char *channel; /* owned */
} gw_relay_typing_t;

/* A client's event for the backends (GW_RELAY_UPSTREAM), or its
 * sync_request (GW_RELAY_SYNC). */
typedef struct gw_relay_request {
    char *user;  /* owned: the authenticated user */
    char *event; /* owned: the name, the routing key */
    char *data;  /* owned: the client's data as sent, NUL-terminated */
    char *nonce; /* owned: the client's nonce, or NULL */
    char *scope; /* owned, sync: the request's scope, or NULL */
    uint8_t session[GW_SESSION_ID_LEN]; /* the sender's */
    uint64_t received_ms;               /* wall clock when taken */
} gw_relay_request_t;

/* A user's sessions on the worker changed (GW_RELAY_PRESENCE). */
typedef struct gw_relay_presence {
    char *user;      /* owned; NULL at the end of a census */
    char *guilds;    /* owned: the user's guilds, a JSON array, or NULL */
    uint32_t census; /* the worker's last census */
    int counted;     /* part of that census */
    uint32_t before; /* the user's sessions here before */
    uint32_t after;  /* and after */
} gw_relay_presence_t;

/* A connection resuming a session of another worker, to hand to that
 * worker (GW_RELAY_HANDOVER). */
typedef struct gw_relay_handover {
    int fd;                      /* owned, -1 once passed on */
    gw_transport_state_t *state; /* owned: what goes with fd (NULL for
                                    plain TCP, and once passed on) */
    char *rest;                  /* owned: the bytes read after the resume */
    size_t len;                  /* of rest */
    uint8_t session[GW_SESSION_ID_LEN]; /* the one resumed */
    uint64_t seq;                       /* the client's last seq */
    char *user;                         /* owned: the token's user */
    gw_grant_t grant;                   /* owned: what its token grants */
} gw_relay_handover_t;

/* Targets the worker began or ceased to hold (GW_RELAY_INTEREST): what
 * its index said during one loop turn, in order, so that a session joining
 * 50 guilds is one relay and one wake-up of the broker. */
typedef struct gw_relay_interest {
    gw_interest_change_t *changes; /* owned, with their ids */
    size_t n;
} gw_relay_interest_t;

/* What a worker hands the broker through its relay queue: one of these,
 * by kind. */
typedef struct gw_relay {
    gw_relay_kind_t kind;
    int worker; /* the sender's worker: an answer goes back there */
    union {
        gw_relay_typing_t typing;
        gw_relay_request_t request; /* upstream, sync */
        gw_relay_presence_t presence;
        gw_relay_handover_t handover;
        gw_handoff_msg_t handoff; /* its text and blob owned */
        gw_relay_interest_t interest;
    };
} gw_relay_t;

/* Frees a relay and what it owns. */
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
 * A backend's envelope from the HTTP API (POST /publish, /sessions/...),
 * parsed and handed to the workers here; with targeted channels, stamped
 * with this instance as its origin and published to its targets' channels
 * too, so that it reaches the whole cluster (*cluster = 1 once Redis took
 * it; 0 when it reached this instance alone). Broker thread only. Returns
 * the number of workers reached here, or GW_EPARSE / GW_EINVAL with
 * *reason set, or GW_EFULL when a worker queue has no room (then it went
 * nowhere).
 */
int gw_broker_publish(gw_broker_t *b, const char *json, size_t len,
                      const char **reason, int *cluster);

/* This instance's id (broker.instance_id or the host name). */
const char *gw_broker_instance_id(const gw_broker_t *b);

/* The state of the Redis and RabbitMQ links and since when, for /health.
 * Broker thread, where the links live. */
gw_link_status_t gw_broker_redis_link(const gw_broker_t *b);
gw_link_status_t gw_broker_amqp_link(const gw_broker_t *b);

/* On a Redis Cluster, cb for each shard master (gw_rcluster_shards), and
 * 1; else 0 and no call. Broker thread. */
int gw_broker_redis_shards(const gw_broker_t *b,
                           void (*cb)(void *data, const gw_shard_info_t *s,
                                      size_t slots),
                           void *data);

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
