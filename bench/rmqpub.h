/*
 * The RabbitMQ publish path of fanout (--via amqp): events published to
 * gatewayd's topic exchange with publisher confirms, at a fixed rate.
 *
 * rabbitmq-c only blocks, and the coordinator's libuv loop must not (it
 * reads the clients' reports and samples /proc while events go out), so
 * the publisher is a thread of its own with one connection and one
 * channel:
 *
 * - it connects, logs in (guest/guest), declares the exchange as gatewayd
 *   does (topic, durable) and puts the channel in confirm mode
 *   (confirm.select), then waits for rmqpub_start();
 * - it paces with the socket as its clock: between two due events it waits
 *   in poll(2) for frames (basic.ack, basic.nack, basic.return) until the
 *   next event's due time, rounded up to the millisecond (an event may go
 *   out up to 1 ms late, as on the other paths' 1 ms timer), so it never
 *   spins and never sleeps past a confirm. Each event is stamped ("bts")
 *   just before it is written;
 * - every publish is mandatory, so an event no queue takes comes back
 *   (basic.return, counted as returned) before its ack.
 *
 * The coordinator sees the thread only through a mutex-protected copy of
 * its figures (publish_stats_t), refreshed once per turn of the thread.
 * Every wait is bounded: connect, login and each declaration by
 * RMQPUB_TIMEOUT_S, the confirms of the last events by RMQPUB_CONFIRM_S,
 * and rmqpub_free() by RMQPUB_STOP_MS, after which it shuts the socket down
 * under the thread (shutdown(2), not close: the descriptor stays the
 * thread's) so that a write stuck on a broker that stopped reading fails
 * at once.
 *
 * Unconfirmed publishes are at most RMQPUB_WINDOW; past it the thread waits
 * for confirms and the wait shows as publisher lag. The broker may confirm
 * out of order, so settled tags are kept in a bitmap over that window
 * (rmqpub_window_*, pure, unit-tested).
 *
 * Names are rmqpub_*: amqp_* is rabbitmq-c's namespace.
 */
#ifndef BENCH_RMQPUB_H
#define BENCH_RMQPUB_H

#include <stdint.h>

#include "publish.h"

#define RMQPUB_WINDOW 65536 /* unconfirmed publishes at most; power of 2 */

/* Delivery tags of one confirm-mode channel: tags count from 1 in publish
 * order; each is settled once, by an ack or a nack, alone or as part of a
 * "multiple" one. */
typedef struct rmqpub_window {
    uint64_t low;   /* every tag below low is settled */
    uint64_t next;  /* the tag the next publish gets */
    uint64_t above; /* settled tags >= low (their bits are set) */
    uint8_t bits[RMQPUB_WINDOW / 8]; /* settled tags >= low, by tag % W */
} rmqpub_window_t;

void rmqpub_window_init(rmqpub_window_t *w);

/* 1 while another publish fits in the window. */
int rmqpub_window_room(const rmqpub_window_t *w);

/* Takes the next tag (call only with room). */
uint64_t rmqpub_window_publish(rmqpub_window_t *w);

/* Settles tag, or with multiple every tag up to it (tag 0 with multiple:
 * every published tag). Returns how many tags this settled for the first
 * time; tags never published, or settled before, count 0. */
uint64_t rmqpub_window_settle(rmqpub_window_t *w, uint64_t tag, int multiple);

/* Unsettled tags. */
uint64_t rmqpub_window_pending(const rmqpub_window_t *w);

typedef struct rmqpub rmqpub_t;

/* Starts the thread, which connects to conf->host:conf->port and publishes
 * to conf->exchange with conf->routing_key. conf's strings must outlive the
 * publisher. */
rmqpub_t *rmqpub_new(const publish_conf_t *conf);

/* 0 while connecting, 1 ready, -1 failed. */
int rmqpub_ready(rmqpub_t *q);

/* Publishes count events at rate per second from now on. */
void rmqpub_start(rmqpub_t *q, double rate, uint64_t count);

/* 1 once every event is sent and confirmed, or the path broke. */
int rmqpub_done(rmqpub_t *q);

/* A copy of the figures now. */
void rmqpub_stats(rmqpub_t *q, publish_stats_t *out);

/* Stops the thread (bounded, see above), closes the connection, frees q. */
void rmqpub_free(rmqpub_t *q);

#endif
