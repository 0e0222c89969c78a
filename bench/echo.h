/*
 * The echo backend of the relay scenario: what a service behind gatewayd
 * does with client events, at its simplest. It consumes what gatewayd
 * publishes to its upstream exchange with one routing key, and answers
 * each message at once to the session that sent it, echoing its nonce
 * (relay_answer(), relay.h), on the exchange gatewayd consumes from.
 *
 * rabbitmq-c only blocks, so, as the fanout publisher (rmqpub.h), the
 * backend is a thread of the coordinator with one connection and one
 * channel:
 *
 * - it connects, logs in (guest/guest), declares both exchanges as
 *   gatewayd does (topic, durable: either may come first), an exclusive,
 *   auto-deleted queue of its own bound with conf->binding, and consumes
 *   it with automatic acks (the broker's acks are not what is measured);
 * - it waits for frames in poll(2) at most ECHO_TURN_US at a time (so that
 *   a stop is seen), assembles each delivery from its method, header and
 *   body frames, and publishes the answer before it reads on: mandatory,
 *   transient, no confirms. An answer no queue took comes back and is
 *   counted (returned); its content frames, like any content that follows
 *   no delivery, are skipped;
 * - it times the way up of each request (the client's send stamp in its
 *   data to the delivery) in a histogram, and its own CPU time.
 *
 * The coordinator sees the thread's figures through a mutex-protected copy
 * refreshed every ECHO_SHARE_US and when the thread ends. Every wait is
 * bounded: connect, login and each declaration by ECHO_TIMEOUT_S, the
 * thread's stop by ECHO_STOP_MS, after which its socket is shut down under
 * it (a publish stuck on a broker that stopped reading fails at once).
 *
 * Names are echo_*: amqp_* is rabbitmq-c's namespace.
 */
#ifndef BENCH_ECHO_H
#define BENCH_ECHO_H

#include <stdint.h>

#include "stats.h"

typedef struct echo_conf {
    char host[64];
    int port;
    const char *upstream;    /* the exchange client events go up to */
    const char *binding;     /* the routing key the queue is bound with */
    const char *exchange;    /* where answers go (gatewayd consumes it) */
    const char *routing_key; /* the answers' routing key */
} echo_conf_t;

typedef struct echo_stats {
    uint64_t received; /* deliveries taken from the queue */
    uint64_t answered; /* answers published */
    uint64_t bad;      /* deliveries that were no request: not answered */
    uint64_t returned; /* answers no queue took (basic.return) */
    stats_hist_t up;   /* client send -> delivery here, us */
    double cpu_s;      /* the thread's CPU time */
    int broken;        /* the connection failed */
} echo_stats_t;

typedef struct echo echo_t;

/* Starts the thread. conf's strings must outlive the backend. */
echo_t *echo_new(const echo_conf_t *conf);

/* 0 while connecting, 1 consuming, -1 failed. */
int echo_ready(echo_t *e);

/* A copy of the figures now (out is large: a histogram). */
void echo_stats(echo_t *e, echo_stats_t *out);

/* Stops the thread (bounded, see above), closes the connection, frees e. */
void echo_free(echo_t *e);

#endif
