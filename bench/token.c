#include "token.h"

#include <mbedtls/md.h>
#include <string.h>

size_t token_b64url(const uint8_t *in, size_t n, char *out)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        "0123456789-_";
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        out[o++] = abc[v >> 18];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        out[o++] = abc[in[i] >> 2];
        out[o++] = abc[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

        out[o++] = abc[v >> 10];
        out[o++] = abc[v >> 4 & 63];
        out[o++] = abc[(v & 15) << 2];
    }
    out[o] = '\0';
    return o;
}

size_t token_hs256(const char *secret, const char *claims, char *out,
                   size_t cap)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t clen = strlen(claims), o;
    uint8_t mac[32];

    /* header.claims.signature, each base64url: 4/3 of the input, rounded up,
     * plus the dots and a NUL. */
    if ((sizeof(header) + clen + sizeof(mac)) / 3 * 4 + 16 > cap)
        return 0;
    o = token_b64url((const uint8_t *)header, sizeof(header) - 1, out);
    out[o++] = '.';
    o += token_b64url((const uint8_t *)claims, clen, out + o);
    if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                        (const uint8_t *)secret, strlen(secret),
                        (const uint8_t *)out, o, mac) != 0)
        return 0;
    out[o++] = '.';
    o += token_b64url(mac, sizeof(mac), out + o);
    return o;
}
