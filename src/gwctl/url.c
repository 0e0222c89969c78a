#include "url.h"

#include "gw/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct url_scheme {
    const char *prefix;
    int websocket, tls;
    const char *port;
} url_scheme_t;

static const url_scheme_t url_schemes[] = {
    {"ws://", 1, 0, "80"},
    {"wss://", 1, 1, "443"},
    {"http://", 0, 0, "80"},
    {"https://", 0, 1, "443"},
};

static const url_scheme_t *url_scheme(const char *s)
{
    for (size_t i = 0; i < sizeof(url_schemes) / sizeof(url_schemes[0]); i++)
        if (strncasecmp(s, url_schemes[i].prefix,
                        strlen(url_schemes[i].prefix)) == 0)
            return &url_schemes[i];
    return NULL;
}

/* Whether s[0..n) may go on a request line or into a Host header. */
static int url_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return 0;
    return 1;
}

/* The port text p[0..n): 1..65535 in decimal, no sign, no blanks. */
static int url_port(const char *p, size_t n, char out[6])
{
    long v = 0;

    if (n == 0 || n > 5)
        return GW_EPARSE;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return GW_EPARSE;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return GW_EPARSE;
    snprintf(out, 6, "%ld", v);
    return 0;
}

/* The authority a[0..n): host, [v6], optionally :port. */
static int url_authority(const char *a, size_t n, ctl_url_t *u)
{
    const char *colon, *host = a;
    size_t hlen;

    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);

        if (close == NULL || close == a + 1)
            return GW_EPARSE;
        host = a + 1;
        hlen = (size_t)(close - host);
        colon = close + 1 < a + n ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return GW_EPARSE;
    } else {
        colon = memchr(a, ':', n);
        hlen = colon != NULL ? (size_t)(colon - a) : n;
    }
    if (hlen == 0 || hlen > CTL_URL_HOST_MAX || memchr(a, '@', n) != NULL)
        return GW_EPARSE;
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    if (colon != NULL &&
        url_port(colon + 1, (size_t)(a + n - colon - 1), u->port) != 0)
        return GW_EPARSE;
    snprintf(u->authority, sizeof(u->authority),
             strchr(u->host, ':') ? "[%s]:%s" : "%s:%s", u->host, u->port);
    return 0;
}

int ctl_url_parse(const char *s, ctl_url_t *u)
{
    const url_scheme_t *scheme = url_scheme(s);
    const char *rest, *path;
    size_t alen, plen;

    *u = (ctl_url_t){0};
    if (scheme == NULL)
        return GW_EPARSE;
    u->websocket = scheme->websocket;
    u->tls = scheme->tls;
    strcpy(u->port, scheme->port);
    rest = s + strlen(scheme->prefix);
    alen = strcspn(rest, "/?#");
    path = rest + alen;
    plen = strcspn(path, "#");
    if (!url_printable(s, (size_t)(path - s) + plen) ||
        plen + 1 > CTL_URL_PATH_MAX || url_authority(rest, alen, u) != 0)
        return GW_EPARSE;
    /* "ws://h?x" has the empty path: the request line needs its "/". */
    if (plen == 0 || path[0] != '/')
        u->path[0] = '/';
    memcpy(u->path + strlen(u->path), path, plen);
    return 0;
}
