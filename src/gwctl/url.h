/*
 * The addresses gwctl is given: ws://, wss://, http:// and https:// URLs
 * (RFC 3986 as far as a client of the gateway needs: host, port, path
 * and query; IPv6 literals in brackets; no user info). Pure.
 */
#ifndef CTL_URL_H
#define CTL_URL_H

#include <stddef.h>

#define CTL_URL_HOST_MAX 255  /* a DNS name's longest */
#define CTL_URL_PATH_MAX 2048 /* path and query */

typedef struct ctl_url {
    int websocket;                        /* ws:// or wss:// */
    int tls;                              /* wss:// or https:// */
    char host[CTL_URL_HOST_MAX + 1];      /* without brackets */
    char port[6];                         /* decimal, the scheme's by default */
    char path[CTL_URL_PATH_MAX + 1];      /* "/" at least; the query kept */
    char authority[CTL_URL_HOST_MAX + 9]; /* "host:port" for Host:, IPv6
                                             in brackets */
} ctl_url_t;

/*
 * Parses s into u: 0, or GW_EPARSE (not a URL of those schemes, a bad
 * port, an empty host, user info, spaces or control characters, too long).
 * A fragment is dropped: it is never sent.
 */
int ctl_url_parse(const char *s, ctl_url_t *u);

#endif
