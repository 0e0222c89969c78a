/*
 * Plain TCP: the transport ops that read and write the socket as it is.
 */
#ifndef GW_TCP_H
#define GW_TCP_H

#include "gw/transport.h"

/*
 * Adopts an accepted non-blocking socket as a plain TCP transport. Nagle
 * is off (every flush is a whole batch): the socket has TCP_NODELAY from
 * the listener that accepted it (acceptor.c). Same contract as
 * gw_transport_init.
 */
int gw_tcp_open(gw_transport_t *t, gw_transport_loop_t *l, int fd);

#endif
