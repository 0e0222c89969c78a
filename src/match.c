#include "gw/match.h"

#include <fnmatch.h>
#include <string.h>

#define MATCH_PATTERN_MAX                                                      \
    128 /* bytes in one pattern; longer ones match nothing */

static int match_name_ok(const char *name)
{
    size_t n = strlen(name);

    return name[0] >= 'a' && name[0] <= 'z' && n <= GW_MATCH_NAME_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* Whether the pattern p[0..n), trimmed of spaces, matches name. */
static int match_one(const char *p, size_t n, const char *name)
{
    char one[MATCH_PATTERN_MAX];

    while (n > 0 && *p == ' ')
        p++, n--;
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n == 0 || n >= sizeof(one))
        return 0;
    memcpy(one, p, n);
    one[n] = '\0';
    return fnmatch(one, name, 0) == 0;
}

int gw_match_event(const char *patterns, const char *name)
{
    if (!match_name_ok(name))
        return 0;
    if (patterns[0] == '\0')
        return 1;
    for (;;) {
        size_t n = strcspn(patterns, ",");
        if (match_one(patterns, n, name))
            return 1;
        if (patterns[n] == '\0')
            return 0;
        patterns += n + 1;
    }
}
