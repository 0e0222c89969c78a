/*
 * The acceptor thread: owns the WebSocket listening sockets (the plain one
 * and, with tls.enabled, the TLS one), accepts, and hashes each new socket
 * onto a worker, handing the descriptor over through that worker's queue
 * with the kind of port it came to.
 */
#ifndef GW_ACCEPTOR_H
#define GW_ACCEPTOR_H

#include "gw/server.h"
#include "gw/stats.h"

#include <stdint.h>

/* An accepted socket as a worker's queue carries it: the descriptor and
 * whether it came to the TLS port, in one pointer. The queue's NULL is
 * "empty"; descriptor 0 is stdin's and never accepted. */
static inline void *gw_accepted(int fd, int tls)
{
    return (void *)(((intptr_t)fd << 1) | (tls != 0));
}

static inline int gw_accepted_fd(const void *p)
{
    return (int)((intptr_t)p >> 1);
}

static inline int gw_accepted_tls(const void *p)
{
    return (int)((intptr_t)p & 1);
}

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
