#include "gw/origin.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* Whether host[0..hlen) is matched by pattern[0..plen), which may begin
 * with "*." for one or more whole labels. */
static int origin_host_match(const char *pattern, size_t plen, const char *host,
                             size_t hlen)
{
    if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
        size_t tail = plen - 1; /* ".example.com" */
        return hlen > tail &&
               strncasecmp(host + hlen - tail, pattern + 1, tail) == 0 &&
               host[0] != '.';
    }
    return plen == hlen && strncasecmp(pattern, host, hlen) == 0;
}

/* Whether one entry e[0..elen) matches origin. */
static int origin_entry_match(const char *e, size_t elen, const char *origin)
{
    const char *sep = strstr(origin, "://");
    const char *esep = memmem(e, elen, "://", 3);
    size_t olen = strlen(origin);

    if (esep != NULL) {
        size_t slen = (size_t)(esep - e) + 3;
        if (sep == NULL || (size_t)(sep - origin) + 3 != slen ||
            strncasecmp(e, origin, slen) != 0)
            return 0;
        return origin_host_match(e + slen, elen - slen, origin + slen,
                                 olen - slen);
    }
    if (sep == NULL) /* "null", or an entry "null" */
        return origin_host_match(e, elen, origin, olen);
    return origin_host_match(e, elen, sep + 3,
                             olen - (size_t)(sep - origin) - 3);
}

/* Calls the entries of list one by one until fn says 1; returns that. */
static int origin_each(const char *list, const char *origin,
                       int (*fn)(const char *, size_t, const char *))
{
    const char *p = list;

    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *e = p;
        size_t elen = len;

        while (elen > 0 && (*e == ' ' || *e == '\t'))
            e++, elen--;
        while (elen > 0 && (e[elen - 1] == ' ' || e[elen - 1] == '\t'))
            elen--;
        if (fn(e, elen, origin))
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

int gw_origin_allowed(const char *list, const char *origin)
{
    if (list == NULL || list[strspn(list, " \t,")] == '\0' || origin == NULL)
        return 1;
    return origin_each(list, origin, origin_entry_match);
}

/* An entry is wrong when its host is empty or has a path, or when it has
 * a '*' other than a leading "*." of the host. */
static int origin_entry_bad(const char *e, size_t elen, const char *unused)
{
    const char *esep = memmem(e, elen, "://", 3);
    const char *host = esep ? esep + 3 : e;
    size_t hlen = elen - (size_t)(host - e), stars = 0;
    (void)unused;

    for (size_t i = 0; i < elen; i++)
        stars += e[i] == '*';
    if (hlen >= 2 && host[0] == '*' && host[1] == '.')
        stars--, hlen -= 2;
    return hlen == 0 || stars != 0 || memchr(host, '/', hlen) != NULL;
}

const char *gw_origin_check_list(const char *list)
{
    if (list[strspn(list, " \t,")] == '\0')
        return NULL;
    return origin_each(list, NULL, origin_entry_bad)
               ? "holds an entry that is empty, has a path, or a '*' other "
                 "than a leading \"*.\""
               : NULL;
}
