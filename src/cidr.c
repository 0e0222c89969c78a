#include "gw/cidr.h"

#include "gw/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* An entry as written: "address" or "address/bits", at most this long. */
#define CIDR_TEXT_MAX (INET6_ADDRSTRLEN + 4)

/* The prefix length after '/': 0..max in decimal, no leading zero. */
static int cidr_bits(const char *s, unsigned max, uint8_t *bits)
{
    size_t n = strspn(s, "0123456789");
    unsigned v = 0;

    if (n == 0 || n > 3 || s[n] != '\0' || (s[0] == '0' && n > 1))
        return GW_EPARSE;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    if (v > max)
        return GW_EPARSE;
    *bits = (uint8_t)v;
    return 0;
}

/* Whether every bit of addr (len bytes) past the first `bits` is 0. */
static int cidr_host_bits_clear(const uint8_t *addr, size_t len, unsigned bits)
{
    for (size_t i = bits / 8; i < len; i++) {
        unsigned keep = i == bits / 8 ? bits % 8 : 0;
        if (addr[i] & (0xffu >> keep))
            return 0;
    }
    return 1;
}

/* One entry, text[0..len) without the spaces around it. */
static int cidr_entry(const char *text, size_t len, gw_cidr_t *c)
{
    char buf[CIDR_TEXT_MAX + 1], *slash;
    unsigned max;

    if (len == 0 || len > CIDR_TEXT_MAX)
        return GW_EPARSE;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if ((slash = strchr(buf, '/')) != NULL)
        *slash = '\0';
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, buf, c->addr) == 1)
        c->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, c->addr) == 1)
        c->family = AF_INET6;
    else
        return GW_EPARSE;
    max = c->family == AF_INET ? 32 : 128;
    c->bits = (uint8_t)max;
    if (slash != NULL && cidr_bits(slash + 1, max, &c->bits) != 0)
        return GW_EPARSE;
    return cidr_host_bits_clear(c->addr, max / 8, c->bits) ? 0 : GW_EPARSE;
}

int gw_cidr_parse(const char *s, gw_cidr_t *out, size_t max, const char **bad)
{
    const char *p = s;
    int n = 0;

    while (*(p += strspn(p, " \t")) != '\0') {
        size_t len = strcspn(p, ",");
        size_t trim = len;
        gw_cidr_t c;
        while (trim > 0 && (p[trim - 1] == ' ' || p[trim - 1] == '\t'))
            trim--;
        if (cidr_entry(p, trim, &c) != 0) {
            if (bad != NULL)
                *bad = p;
            return GW_EPARSE;
        }
        if ((size_t)n < max)
            out[n] = c;
        n++;
        p += len;
        if (*p == ',')
            p++;
    }
    return n;
}

/* Whether the first `bits` bits of a and b are the same. */
static int cidr_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return 0;
    return rest == 0 ||
           ((a[whole] ^ b[whole]) & (0xffu << (8 - rest)) & 0xffu) == 0;
}

int gw_cidr_match(const gw_cidr_t *list, size_t n, const struct sockaddr *addr)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                         0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *a;
    int family = addr->sa_family;

    if (family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)addr)->sin_addr;
    } else if (family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
            family = AF_INET;
            a += sizeof(v4mapped);
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (list[i].family == family &&
            cidr_prefix_equal(list[i].addr, a, list[i].bits))
            return 1;
    return 0;
}
