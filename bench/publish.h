/*
 * The backend side of fanout: events published at a fixed rate, each
 * carrying its send time ("bts", CLOCK_MONOTONIC microseconds) in data, so
 * that every client can time its delivery end to end.
 *
 * Paths: Redis (PUBLISH on the gateway channel, or on each event's guild
 * channel as a targeting backend publishes, pipelined on one connection,
 * through a RESP writer of our own) and HTTP (POST /publish, or
 * a per-guild POST <prefix>g<guild> (nchan's /pub/<guild>, the uWebSockets
 * peer's), one request in flight per connection over a
 * few keep-alive connections) run on the coordinator's loop. AMQP (a topic
 * exchange, with publisher confirms) runs on a thread of its own, because
 * rabbitmq-c blocks (rmqpub.h); the functions below hide the difference.
 */
#ifndef BENCH_PUBLISH_H
#define BENCH_PUBLISH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef enum { PUBLISH_REDIS, PUBLISH_HTTP, PUBLISH_AMQP } publish_via_t;

typedef struct publish_conf {
    publish_via_t via;
    int by_guild; /* HTTP: POST <path>g<guild>; else POST <path> with guildId */
    char host[64];
    int port;
    char path[128];          /* HTTP request path (by_guild: its prefix) */
    const char *api_key;     /* HTTP X-API-Key */
    const char *channel;     /* Redis channel */
    int targeted;            /* Redis: event n goes to its guild's channel,
                                <channel>:guild:g<guild> (gatewayd's
                                redis.targeted), not to channel itself */
    const char *exchange;    /* AMQP topic exchange */
    const char *routing_key; /* AMQP routing key of every event */
    uint32_t guilds;         /* event n goes to guild guild0 + n % guilds */
    uint32_t guild0;
    size_t payload;   /* bytes of each envelope, padded */
    unsigned conns;   /* HTTP connections */
    uint64_t *record; /* Redis and HTTP paths: record[n] = event n's
                         "bts", for n < record_cap, written before it is
                         sent (the resume scenario shares it with its
                         clients); NULL = none */
    uint64_t record_cap;
} publish_conf_t;

typedef struct publish_stats {
    uint64_t sent;       /* events written */
    uint64_t acked;      /* Redis replies / HTTP 2xx / AMQP basic.ack */
    uint64_t failed;     /* Redis errors / other HTTP / AMQP basic.nack */
    uint64_t receivers;  /* sum of PUBLISH replies: subscribers reached */
    uint64_t returned;   /* AMQP: routed to no queue (also acked) */
    uint64_t max_lag_us; /* worst delay of a send behind its schedule */
    int broken;          /* a connection failed or closed */
} publish_stats_t;

typedef struct publish publish_t;

/* Connects; run the loop until publish_ready() says 1 (or -1: failed).
 * conf's strings must outlive p. */
publish_t *publish_new(uv_loop_t *loop, const publish_conf_t *conf);
int publish_ready(publish_t *p);

/* Publishes count events at rate per second from now on. */
void publish_start(publish_t *p, double rate, uint64_t count);

/* Sends no more events from now on (Redis and HTTP paths): the count
 * becomes what was sent. */
void publish_stop(publish_t *p);

/* 1 once every event is sent and answered (or the path broke). */
int publish_done(publish_t *p);

/* The figures so far; valid until the next call on p. */
const publish_stats_t *publish_stats(publish_t *p);

/* The envelope of event n sent at t_us, padded to conf->payload bytes;
 * returns its length (at most cap - 1). */
size_t publish_envelope(const publish_conf_t *conf, uint64_t n, uint64_t t_us,
                        char *out, size_t cap);

/* The Redis channel event n is published on (conf->channel, or its
 * guild's channel when conf->targeted); returns its length, or 0 when it
 * does not fit in cap. */
size_t publish_channel(const publish_conf_t *conf, uint64_t n, char *out,
                       size_t cap);

/* Closes the connections (AMQP: stops the thread, bounded); p is freed
 * once their close callbacks ran. */
void publish_free(publish_t *p);

#endif
