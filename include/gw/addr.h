/*
 * Socket addresses as text, for log lines: one formatter for the client
 * port and the API port.
 */
#ifndef GW_ADDR_H
#define GW_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/* Enough for "[" IPv6 "]:" port and the NUL. */
#define GW_ADDR_NAME_MAX 56

/*
 * An IPv4 or IPv6 socket address in the least room that holds either (a
 * sockaddr_storage is 128 bytes): what a PROXY header names, kept for a
 * connection's life. sa.sa_family AF_UNSPEC: no address.
 */
typedef union gw_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} gw_sockaddr_t;

/*
 * Writes the address of sa ("127.0.0.1", "::1"), followed by its port when
 * with_port ("127.0.0.1:80", "[::1]:80"), into out; "?" for a family other
 * than IPv4 and IPv6. Returns out.
 */
char *gw_addr_name(const struct sockaddr *sa, int with_port, char *out,
                   size_t len);

#endif
