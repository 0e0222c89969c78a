#include "mint.h"

#include "gw/alloc.h"

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <stdlib.h>
#include <string.h>

/* Appends base64url of in[0..n) without padding (RFC 7515 section 2) at
 * out + *len, which has room for it. */
static void mint_b64url(const unsigned char *in, size_t n, char *out,
                        size_t *len)
{
    size_t cap = (n + 2) / 3 * 4 + 1, olen = 0;
    char *p = out + *len;

    /* Cannot fail: the room is what base64 of n bytes takes. */
    (void)mbedtls_base64_encode((unsigned char *)p, cap, &olen, in, n);
    while (olen > 0 && p[olen - 1] == '=')
        olen--;
    for (size_t i = 0; i < olen; i++)
        p[i] = p[i] == '+' ? '-' : p[i] == '/' ? '_' : p[i];
    *len += olen;
    out[*len] = '\0';
}

static char *mint_claims(const ctl_mint_t *m)
{
    cJSON *c = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(c, "sub", m->sub);
    cJSON_AddNumberToObject(c, "iat", (double)m->iat);
    cJSON_AddNumberToObject(c, "exp", (double)m->exp);
    if (m->guilds != NULL)
        cJSON_AddItemToObject(
            c, "guilds",
            cJSON_CreateStringArray((const char *const *)m->guilds,
                                    (int)m->nguilds));
    if (m->aud != NULL && m->aud[0] != '\0')
        cJSON_AddStringToObject(c, "aud", m->aud);
    if (m->iss != NULL && m->iss[0] != '\0')
        cJSON_AddStringToObject(c, "iss", m->iss);
    text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (text == NULL)
        abort(); /* cJSON fails only when out of memory */
    return text;
}

char *ctl_mint_hs256(const ctl_mint_t *m, const char *secret)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *claims = mint_claims(m), *token;
    size_t clen = strlen(claims), len = 0;
    unsigned char mac[32];

    /* Each part grows by 4/3 and up to 3 padding bytes while it is
     * encoded; then the two dots and a NUL. */
    token = gw_malloc((sizeof(header) + clen + sizeof(mac)) * 4 / 3 + 32);
    mint_b64url((const unsigned char *)header, sizeof(header) - 1, token, &len);
    token[len++] = '.';
    mint_b64url((const unsigned char *)claims, clen, token, &len);
    /* Fails only for an unknown digest, and SHA-256 is always built in. */
    (void)mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                          (const unsigned char *)secret, strlen(secret),
                          (const unsigned char *)token, len, mac);
    token[len++] = '.';
    mint_b64url(mac, sizeof(mac), token, &len);
    free(claims);
    return token;
}
