#include "gw/sni.h"

#include "gw/error.h"

#include <string.h>

int gw_sni_next(const char **list, gw_sni_entry_t *e)
{
    const char *s = *list + strspn(*list, " \t"), *end, *colon;

    if (*s == '\0')
        return 0;
    end = s + strcspn(s, ",");
    *list = *end == ',' ? end + 1 : end;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    colon = memchr(s, ':', (size_t)(end - s));
    if (colon == NULL || colon == s || colon + 1 == end ||
        memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
        return GW_EINVAL;
    *e = (gw_sni_entry_t){s, colon + 1, (size_t)(colon - s),
                          (size_t)(end - colon - 1)};
    return 1;
}

static char sni_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int gw_sni_name_matches(const char *pattern, size_t plen, const char *host,
                        size_t hlen)
{
    /* A wildcard stands for one whole label, the first (RFC 6125 6.4.3):
     * not for part of one, nor for none. */
    if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = memchr(host, '.', hlen);
        if (dot == NULL || dot == host)
            return 0;
        hlen -= (size_t)(dot - host);
        host = dot;
        pattern++;
        plen--;
    }
    if (plen != hlen)
        return 0;
    for (size_t i = 0; i < plen; i++)
        if (sni_lower(pattern[i]) != sni_lower(host[i]))
            return 0;
    return 1;
}
