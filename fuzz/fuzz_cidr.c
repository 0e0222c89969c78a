/*
 * server.proxy_trusted lists on arbitrary text (NUL-terminated, as the
 * configuration gives it): a list that parses parses again to the same
 * networks, none with bits past its prefix, and each network takes its
 * own address.
 */
#include "gw/cidr.h"
#include "gw/error.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The network's own address as a socket would give it. */
static int fuzz_in_own(const gw_cidr_t *list, int n, const gw_cidr_t *c)
{
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    struct sockaddr_in a4 = {.sin_family = AF_INET};

    if (c->family == AF_INET) {
        memcpy(&a4.sin_addr, c->addr, 4);
        return gw_cidr_match(list, (size_t)n, (struct sockaddr *)&a4);
    }
    memcpy(&a6.sin6_addr, c->addr, 16);
    return gw_cidr_match(list, (size_t)n, (struct sockaddr *)&a6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    gw_cidr_t *list = NULL;
    const char *bad = NULL;
    int n, m;

    memcpy(s, data, size);
    s[size] = '\0';
    n = gw_cidr_parse(s, NULL, 0, &bad);
    if (n == GW_EPARSE) {
        if (bad == NULL || bad < s || bad > s + size)
            abort();
        goto done;
    }
    if (n < 0)
        abort();
    list = calloc((size_t)n + 1, sizeof(*list));
    if ((m = gw_cidr_parse(s, list, (size_t)n, NULL)) != n)
        abort();
    for (int i = 0; i < n; i++)
        if ((list[i].family != AF_INET && list[i].family != AF_INET6) ||
            list[i].bits > (list[i].family == AF_INET ? 32 : 128) ||
            !fuzz_in_own(list + i, 1, list + i))
            abort();
done:
    free(list);
    free(s);
    return 0;
}
