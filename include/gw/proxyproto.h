/*
 * The PROXY protocol header (HAProxy's doc/proxy-protocol.txt, versions 1
 * and 2) that a proxy such as HAProxy (send-proxy, send-proxy-v2) writes
 * at the start of each connection it opens to us, naming the client it
 * relays: pure, bytes in, the client's address or "need more" or an error
 * out. The transport reads it before anything else (transport.c).
 *
 * Version 1 is one text line, "PROXY TCP4 src dst sport dport\r\n" (TCP6
 * with IPv6 addresses, or "PROXY UNKNOWN ...\r\n"), at most 107 bytes.
 * Version 2 is a 16-byte binary head (a 12-byte signature, version and
 * command, family and protocol, the length of the rest) followed by the
 * addresses and type-length-value extensions (TLVs). Neither is mistaken
 * for the other, nor for an HTTP request or a TLS ClientHello.
 */
#ifndef GW_PROXYPROTO_H
#define GW_PROXYPROTO_H

#include "gw/addr.h"

#include <stddef.h>
#include <stdint.h>

/* The longest version 1 line, CRLF included (the specification's bound). */
#define GW_PROXYPROTO_V1_MAX 107
/*
 * The longest header taken, either version. A version 2 header with the
 * addresses of TCP over IPv6 and every TLV HAProxy can add (ALPN, the SNI
 * authority, a unique ID of up to 128 bytes, the client's TLS details, a
 * CRC) stays well under it; a longer one is refused (GW_ETOOBIG).
 */
#define GW_PROXYPROTO_MAX 2048

/*
 * Parses the header at the start of buf[0..len). Returns
 *  - 0 when it is whole: *used is its length (what follows is the
 *    relayed connection's first bytes), and *client the client's address
 *    and port, or AF_UNSPEC when the header names none: a version 2 LOCAL
 *    connection (the proxy's own health check), version 1 UNKNOWN, or a
 *    family or protocol other than TCP over IPv4 or IPv6 (UNIX sockets,
 *    UDP), for which the specification has the receiver use the
 *    connection's own addresses;
 *  - GW_EAGAIN when buf is a valid beginning of a header and the rest
 *    is still to come (never once len reaches GW_PROXYPROTO_MAX);
 *  - GW_EPARSE when it is not a header: another protocol, a field out of
 *    its syntax, an address length or TLV that does not fit what the
 *    header says, a version 1 line without its CRLF within 107 bytes;
 *  - GW_ETOOBIG for a version 2 header longer than GW_PROXYPROTO_MAX.
 * A prefix of a whole header is always GW_EAGAIN, so the header may
 * arrive in any number of pieces. TLVs are checked to fit and skipped
 * (a CRC32C among them is not verified).
 */
int gw_proxyproto_parse(const uint8_t *buf, size_t len, size_t *used,
                        gw_sockaddr_t *client);

#endif
