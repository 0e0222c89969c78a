/*
 * The PROXY protocol header parser on arbitrary bytes (an exact-size copy,
 * so that ASan sees any read past len). Its answer must be one it
 * documents; a whole header must be no longer than the input nor than
 * GW_PROXYPROTO_MAX, parse the same on its own, and every shorter prefix
 * of it must be "need more" (the transport reads it in pieces); "need
 * more" must hold for every prefix too, and never past the longest
 * header.
 */
#include "gw/error.h"
#include "gw/proxyproto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A prefix of a header, or of a wait for one, must wait. */
static void fuzz_prefix_waits(const uint8_t *buf, size_t cut)
{
    gw_sockaddr_t c;
    size_t used;

    if (gw_proxyproto_parse(buf, cut, &used, &c) != GW_EAGAIN || used != 0 ||
        c.sa.sa_family != AF_UNSPEC)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    gw_sockaddr_t c, again;
    size_t used, used2, whole;
    int rc;

    memcpy(buf, data, size);
    rc = gw_proxyproto_parse(buf, size, &used, &c);
    if (rc == 0) {
        if (used == 0 || used > size || used > GW_PROXYPROTO_MAX ||
            (c.sa.sa_family != AF_UNSPEC && c.sa.sa_family != AF_INET &&
             c.sa.sa_family != AF_INET6))
            abort();
        if (gw_proxyproto_parse(buf, used, &used2, &again) != 0 ||
            used2 != used || memcmp(&c, &again, sizeof(c)) != 0)
            abort();
    } else if (rc == GW_EAGAIN) {
        if (size >= GW_PROXYPROTO_MAX)
            abort();
    } else if (rc != GW_EPARSE && rc != GW_ETOOBIG) {
        abort();
    }
    /* Every prefix of what was whole, or waited for, waits: all of them
     * for short inputs, a few (the longest, the middle) for long ones. */
    whole = rc == 0 ? used : rc == GW_EAGAIN ? size : 0;
    for (size_t cut = 0; cut<whole; cut += whole> 128 ? whole / 7 + 1 : 1)
        fuzz_prefix_waits(buf, cut);
    if (whole > 0)
        fuzz_prefix_waits(buf, whole - 1);
    free(buf);
    return 0;
}
