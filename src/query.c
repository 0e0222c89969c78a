#include "gw/query.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/hex.h"

#include <stdlib.h>
#include <string.h>

/* Percent-decodes s[0..len) into a new string, or NULL for a broken escape
 * or an encoded NUL (it would cut the C string short). */
static char *query_decode(const char *s, size_t len)
{
    char *out = gw_malloc(len + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int hi, lo;

        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        if (len - i < 3)
            goto Error;
        hi = gw_hex_value(s[i + 1]);
        lo = gw_hex_value(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            goto Error;
        out[n++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[n] = '\0';
    return out;

Error:
    free(out);
    return NULL;
}

int gw_query_get(const char *q, size_t len, const char *name, char **out)
{
    size_t nlen = strlen(name);

    *out = NULL;
    for (;;) {
        const char *amp = memchr(q, '&', len);
        size_t n = amp ? (size_t)(amp - q) : len;

        if (n > nlen && memcmp(q, name, nlen) == 0 && q[nlen] == '=') {
            *out = query_decode(q + nlen + 1, n - nlen - 1);
            return *out != NULL ? 0 : GW_EPARSE;
        }
        if (amp == NULL)
            return GW_EINVAL;
        q += n + 1;
        len -= n + 1;
    }
}
