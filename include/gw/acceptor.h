/*
 * The acceptor thread: owns the WebSocket listening socket, accepts, and
 * hashes each new socket onto a worker, handing the descriptor over through
 * that worker's queue.
 */
#ifndef GW_ACCEPTOR_H
#define GW_ACCEPTOR_H

#include "gw/server.h"
#include "gw/stats.h"

/* Binds and starts the thread; NULL on failure (logged). */
gw_acceptor_t *gw_acceptor_start(gw_server_t *srv);

/* Stops accepting and closes the listening socket (a drain); the thread
 * runs on until gw_acceptor_stop. Main thread. */
void gw_acceptor_pause(gw_acceptor_t *a);

/* Stops accepting, joins the thread and frees the acceptor. */
void gw_acceptor_stop(gw_acceptor_t *a);

/* The acceptor's counters (accept_drops). */
const gw_stats_t *gw_acceptor_stats(const gw_acceptor_t *a);

#endif
