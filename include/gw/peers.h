/*
 * Open client connections per address, shared by the workers, for
 * server.max_connections_per_ip. An IPv6 client counts by its /64, the
 * block one subscriber is given, and an IPv4-mapped IPv6 address as its
 * IPv4 one. A mutex guards the table: a worker takes it once as a
 * connection opens and once as it closes, when the limit is on.
 */
#ifndef GW_PEERS_H
#define GW_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct gw_peers gw_peers_t;
typedef struct gw_peer gw_peer_t;

gw_peers_t *gw_peers_new(void);

/* Every entry must have been released. */
void gw_peers_free(gw_peers_t *p);

/*
 * Counts one more connection from addr unless `limit` are open from it
 * already. Returns the address's entry, which the connection holds until
 * gw_peers_release, or NULL when over the limit or addr is neither IPv4
 * nor IPv6. Any thread.
 */
gw_peer_t *gw_peers_take(gw_peers_t *p, const struct sockaddr *addr,
                         uint32_t limit);

/* Gives back what gw_peers_take counted. Any thread. */
void gw_peers_release(gw_peers_t *p, gw_peer_t *peer);

/* Addresses with connections open. Any thread. */
size_t gw_peers_addresses(gw_peers_t *p);

#endif
