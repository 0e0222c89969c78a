/*
 * JSON Web Token verification (RFC 7519), pure: a token and the time in,
 * a verdict and the claims out. Signatures are checked with mbedtls.
 */
#ifndef GW_JWT_H
#define GW_JWT_H

#include <mbedtls/md.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Fill in the settings, then gw_jwt_verifier_init() before the first
 * gw_jwt_verify() and gw_jwt_verifier_free() after the last; changing a
 * setting means another init.
 */
typedef struct gw_jwt_verifier {
    const char *alg;       /* the one accepted "alg"; only "HS256" today */
    const uint8_t *secret; /* HMAC key, borrowed */
    size_t secret_len;
    const char *audience; /* NULL or "" = aud not checked */
    const char *issuer;   /* NULL or "" = iss not checked */
    int64_t leeway_s;     /* clock skew allowed on exp and nbf */
    /* Set by init: the digest states after the key's inner and outer pad
     * blocks (RFC 2104), hashed once rather than for every token. */
    mbedtls_md_context_t pad[2];
    int ready; /* pad[] holds a usable key */
} gw_jwt_verifier_t;

/* Prepares v's key. An unknown alg or an empty secret leaves v refusing
 * every token. Aborts when out of memory. */
void gw_jwt_verifier_init(gw_jwt_verifier_t *v);
void gw_jwt_verifier_free(gw_jwt_verifier_t *v);

/* Entries a "guilds" claim can list: more than a token's size allows (a
 * session counts them in 16 bits; jwt.c asserts the bound). */
#define GW_JWT_MAX_GUILDS 65535

typedef struct gw_jwt_claims {
    char *sub;     /* owned; always set on success */
    int64_t exp;   /* 0 when absent */
    int64_t nbf;   /* 0 when absent */
    char **guilds; /* owned; NULL when the "guilds" claim is absent */
    size_t nguilds;
} gw_jwt_claims_t;

/*
 * Verifies `token` (len bytes, not NUL-terminated) at time `now` (Unix
 * seconds). On success returns 0 and fills `out` (free it with
 * gw_jwt_claims_free). Otherwise returns GW_EPARSE (not three base64url
 * parts, bad JSON), GW_EALG (alg other than v->alg, "none" included),
 * GW_EAUTH (bad signature, missing sub, aud/iss mismatch), GW_EEXPIRED or
 * GW_ENOTYET, and `out` holds nothing to free.
 */
int gw_jwt_verify(const gw_jwt_verifier_t *v, const char *token, size_t len,
                  int64_t now, gw_jwt_claims_t *out);

void gw_jwt_claims_free(gw_jwt_claims_t *c);

/* True if the claims allow joining `guild`: no "guilds" claim, or listed. */
int gw_jwt_claims_allow_guild(const gw_jwt_claims_t *c, const char *guild);

#endif
