/*
 * The RabbitMQ link's connection attempt (amqp.c owns it): everything that
 * blocks, run as a uv_queue_work job on libuv's thread pool. The job
 * touches nothing but its own struct until its after-work callback, back on
 * the loop, takes the connection over. One job per link, reused for every
 * attempt and for the polite close at stop.
 *
 * It connects, logs in, opens the channels, declares the exchanges, the
 * dead letters and the queue, binds it, puts the publishing channel in
 * confirm mode, sets the prefetch and starts consuming. With amqp.routing
 * = "all" the queue is bound with amqp.binding_keys. With "targeted" it is
 * bound to a generation exchange of its own (gw/amqp_key.h): the job finds
 * which generations exist, deletes a half-built one, declares the one this
 * connection builds, binds the queue to it and it to the events exchange
 * with broadcast.#, and unbinds amqp.binding_keys from the queue, so that a
 * durable queue that ran with "all" no longer takes everything. The loop
 * then binds the targets' patterns to that generation and deletes the one
 * before once they are all bound (amqp_bind.c).
 */
#ifndef GW_AMQP_CONNECT_H
#define GW_AMQP_CONNECT_H

#include "gw/amqp.h"
#include "gw/config.h"

#include <amqp.h>
#include <uv.h>

/* Settings and result of the connection attempt. */
typedef struct gw_amqp_connect {
    uv_work_t req;
    gw_amqp_t *link; /* the owner; touched only in its after-work callbacks */
    char *host, *user, *password, *vhost;
    char *exchange, *dlx, *dlq, *queue;
    char *upstream; /* the exchange client events are published to */
    char *keys;     /* comma-separated binding patterns */
    int port;
    int durable;
    int targeted; /* amqp.routing = "targeted" */
    uint16_t prefetch;
    amqp_connection_state_t conn; /* consuming, or being closed */
    /* Targeted: the generation exchange this connection binds targets to,
     * and the one to delete once that is complete, or NULL (both owned,
     * set by each successful attempt). */
    char *generation, *previous;
    char err[256];   /* why the attempt failed */
    uv_mutex_t lock; /* guards fd and aborted across threads */
    int fd;          /* the attempt's connected socket while it blocks, or -1 */
    int aborted;     /* gw_amqp_stop came: no more blocking */
} gw_amqp_connect_t;

/* The job for cfg's link (strings copied); req.data is the job. */
gw_amqp_connect_t *gw_amqp_connect_new(gw_amqp_t *link, const gw_config_t *cfg,
                                       const char *instance_id);

/* Frees the job and its strings; its connection, if any, is the caller's
 * to have destroyed first. */
void gw_amqp_connect_free(gw_amqp_connect_t *job);

/* Thread pool: one attempt. On success job->conn is the connection,
 * consuming; on failure NULL, and job->err says why. */
void gw_amqp_connect_work(uv_work_t *req);

/* Thread pool: connection.close (which closes the channels too), bounded
 * by the RPC timeout, so that RabbitMQ logs a clean disconnect; then the
 * connection is destroyed and job->conn is NULL. */
void gw_amqp_connect_close_work(uv_work_t *req);

/* Loop: ends the blocking of a running attempt at once, by shutting its
 * socket down once it has one (the TCP connect alone stays bounded by its
 * timeout). */
void gw_amqp_connect_abort(gw_amqp_connect_t *job);

#endif
