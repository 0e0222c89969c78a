/*
 * Open client connections, shared by the acceptor and the workers: in all,
 * against server.max_connections, and per address, for
 * server.max_connections_per_ip.

 * The total counts a socket from its accept (the acceptor) to its close
 * (the WebSocket layer), wherever it is in between: in a worker's queue,
 * in its upgrade, being refused. It is one atomic, so that the acceptor can
 * refuse at once what would take the process past its descriptors.
 * An IPv6 client counts by its /64, the
 * block one subscriber is given, and an IPv4-mapped IPv6 address as its
 * IPv4 one. A mutex guards the table: a worker takes it once as a
 * connection opens and once as it closes, when the limit is on.
 */
#ifndef GW_PEERS_H
#define GW_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An address as counted: the family, then 4 bytes of IPv4 or the 8 of an
 * IPv6 /64. The set's keys point at it, the first member of its entry. */
#define GW_PEERS_KEY_LEN 9

typedef struct gw_peers gw_peers_t;
typedef struct gw_peer gw_peer_t;

/* Connections past the cap that may be in their 503 at once; beyond them
 * the acceptor closes a socket as soon as it has it. Part of the
 * descriptor reserve (gw_peers_default_cap). */
#define GW_PEERS_REFUSING 64

/* max_open: the cap of open connections (server.max_connections). */
gw_peers_t *gw_peers_new(uint32_t max_open);

/* The key addr counts under (an IPv6 client by its /64, an IPv4-mapped
 * one as IPv4): 0, or -1 when it is neither IPv4 nor IPv6. Pure. */
int gw_peers_key(const struct sockaddr *addr, uint8_t key[GW_PEERS_KEY_LEN]);

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

/*
 * Counts an accepted socket, unless GW_PEERS_REFUSING are over the cap
 * already: returns 0, or GW_EFULL (nothing counted; the caller closes it).
 * Any thread.
 */
int gw_peers_enter(gw_peers_t *p);

/* Counts a socket that was accepted already (handed from another loop),
 * whatever the total. Any thread. */
void gw_peers_count(gw_peers_t *p);

/* Forgets a socket gw_peers_enter counted, as it closes. Any thread. */
void gw_peers_leave(gw_peers_t *p);

/* Whether more connections are open than the cap: the newest are answered
 * 503. Any thread. */
int gw_peers_over_cap(const gw_peers_t *p);

/* Open connections, all workers together. Any thread. */
uint32_t gw_peers_open(const gw_peers_t *p);

/*
 * The default of server.max_connections: the descriptor limit
 * (RLIMIT_NOFILE) less what the rest of the process needs, for `workers`
 * worker threads and at most http_conns HTTP connections. Writes the
 * reserve to *reserve.
 */
uint32_t gw_peers_default_cap(int workers, uint32_t http_conns,
                              uint32_t *reserve);

/* Addresses with connections open. Any thread. */
size_t gw_peers_addresses(gw_peers_t *p);

#endif
