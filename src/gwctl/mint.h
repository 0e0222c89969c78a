/*
 * Tokens as a backend signs them for its clients: HS256 JSON Web Tokens
 * (RFC 7519, in the JWS compact serialisation of RFC 7515) with the claims
 * gatewayd reads. Pure; the daemon's own verifier (gw/jwt.h) checks them
 * in the unit tests.
 */
#ifndef CTL_MINT_H
#define CTL_MINT_H

#include <stddef.h>
#include <stdint.h>

/* The claims; every string borrowed for the call. */
typedef struct ctl_mint {
    const char *sub;     /* the user id */
    char *const *guilds; /* the "guilds" claim, or NULL for none */
    size_t nguilds;
    const char *aud; /* NULL or "" = no claim */
    const char *iss; /* NULL or "" = no claim */
    int64_t iat;     /* Unix seconds */
    int64_t exp;     /* Unix seconds */
} ctl_mint_t;

/* The token for m signed with secret (heap, the caller frees it). */
char *ctl_mint_hs256(const ctl_mint_t *m, const char *secret);

#endif
