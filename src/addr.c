#include "gw/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

char *gw_addr_name(const struct sockaddr *sa, int with_port, char *out,
                   size_t len)
{
    char host[INET6_ADDRSTRLEN];
    const void *ip;
    unsigned port;
    int v6 = sa->sa_family == AF_INET6;

    if (sa->sa_family == AF_INET) {
        ip = &((const struct sockaddr_in *)sa)->sin_addr;
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (v6) {
        ip = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    } else {
        snprintf(out, len, "?");
        return out;
    }
    inet_ntop(sa->sa_family, ip, host, sizeof(host));
    if (!with_port)
        snprintf(out, len, "%s", host);
    else
        snprintf(out, len, v6 ? "[%s]:%u" : "%s:%u", host, port);
    return out;
}
