/*
 * The broker thread: the single producer of every worker's event queue. It
 * runs its own loop with the HTTP API (and the RabbitMQ and Redis links),
 * parses each incoming event once and hands it to the workers by reference.
 */
#ifndef GW_BROKER_H
#define GW_BROKER_H

#include "gw/event.h"
#include "gw/server.h"
#include "gw/stats.h"

/* Binds the HTTP port and starts the thread; NULL on failure (logged). */
gw_broker_t *gw_broker_start(gw_server_t *srv);

/* Stops the thread and frees the broker. Main thread. */
void gw_broker_stop(gw_broker_t *b);

/*
 * Hands ev to every worker, taking the caller's reference. Broker thread
 * only. Returns the number of workers reached, or GW_EFULL when a queue has
 * no room (then nothing was queued and ev was released).
 */
int gw_broker_publish(gw_broker_t *b, gw_event_t *ev);

/* The server the broker belongs to. */
gw_server_t *gw_broker_server(gw_broker_t *b);

#endif
