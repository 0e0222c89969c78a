/*
 * Lists of networks in CIDR notation ("10.0.0.0/8, 2001:db8::/32", a bare
 * address standing for itself alone), and whether an address is in one:
 * server.proxy_trusted, the proxies whose PROXY headers are believed.
 * Pure.
 */
#ifndef GW_CIDR_H
#define GW_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One network: the first `bits` bits of addr (4 bytes of IPv4, 16 of
 * IPv6) in network order; the bits past them are 0. */
typedef struct gw_cidr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bits;
    uint8_t addr[16];
} gw_cidr_t;

/*
 * Parses the comma-separated list s (spaces around entries ignored) into
 * out, which has room for max entries (out may be NULL with max 0, to
 * count and check only). Returns the number of entries in s, which may
 * be more than max (only max are written), or GW_EPARSE when an entry is
 * not an IPv4 or IPv6 address with an optional /prefix within its
 * family's bits, or has bits set past its prefix ("10.0.0.1/8": which
 * was meant?); *bad then points at it in s, when bad is not NULL.
 */
int gw_cidr_parse(const char *s, gw_cidr_t *out, size_t max, const char **bad);

/*
 * Whether addr is in one of the n networks of list. An IPv4-mapped IPv6
 * address (::ffff:10.0.0.1, a dual-stack socket's IPv4 peer) is taken as
 * the IPv4 address it carries; other families are in none.
 */
int gw_cidr_match(const gw_cidr_t *list, size_t n, const struct sockaddr *addr);

#endif
