/*
 * JSON Web Token verification (RFC 7519), pure: a token and the time in,
 * a verdict and the claims out. Signatures are checked with mbedtls.
 */
#ifndef GW_JWT_H
#define GW_JWT_H

#include "gw/jwks.h"

#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <stddef.h>
#include <stdint.h>

/* The bit of one algorithm name ("RS256"), or 0 for any other ("none"). */
unsigned gw_jwt_alg_bit(const char *name);

/*
 * Parses a comma-separated list of algorithm names ("HS256, ES256") into
 * bits: 0, or GW_EINVAL for an unknown name or an empty list.
 */
int gw_jwt_algs_parse(const char *list, unsigned *out);

/*
 * Decodes unpadded base64url (RFC 7515 section 2) of len characters into
 * out, which has room for len * 3 / 4 bytes: 0, or GW_EPARSE. Strict: one
 * byte string has exactly one accepted encoding.
 */
int gw_jwt_b64url_decode(const char *in, size_t len, uint8_t *out,
                         size_t *outlen);

/* HS256, HS384, HS512. */
#define GW_JWT_NHMAC 3

/* A public key of one verifier, parsed from its set's DER. */
typedef struct gw_jwt_key {
    const char *kid;       /* borrowed from the set */
    unsigned algs;         /* GW_JWT_* bits it verifies */
    mbedtls_pk_context pk; /* this verifier's own context */
} gw_jwt_key_t;

/*
 * Fill in the settings, then gw_jwt_verifier_init() before the first
 * gw_jwt_verify() and gw_jwt_verifier_free() after the last; changing a
 * setting means another init. A verifier is used by one thread at a time.
 */
typedef struct gw_jwt_verifier {
    unsigned algs;         /* the accepted algorithms, GW_JWT_* bits */
    const uint8_t *secret; /* HMAC key, borrowed; empty = no HMAC */
    size_t secret_len;
    const gw_jwks_t *keys; /* borrowed public keys, or NULL */
    const char *audience;  /* NULL or "" = aud not checked */
    const char *issuer;    /* NULL or "" = iss not checked */
    int64_t leeway_s;      /* clock skew allowed on exp and nbf */
    /* Set by init: for each HMAC algorithm, the digest states after the
     * key's inner and outer pad blocks (RFC 2104), hashed once rather
     * than for every token. */
    mbedtls_md_context_t pad[GW_JWT_NHMAC][2];
    unsigned ready;    /* accepted algorithms that have a key */
    gw_jwt_key_t *pub; /* owned: the public keys of accepted algorithms */
    size_t npub;
} gw_jwt_verifier_t;

/* Prepares v's keys: the secret for each accepted HMAC algorithm, and a
 * context for each public key that verifies an accepted algorithm. An
 * algorithm without a key refuses every token. Aborts when out of memory. */
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
 * parts, bad JSON), GW_EALG (an alg not accepted, "none" included, or one
 * the selected key does not verify), GW_ENOKEY (a kid not in the set, or
 * no kid and no sole public key), GW_EAUTH (bad signature, missing sub,
 * aud/iss mismatch), GW_EEXPIRED or GW_ENOTYET, and `out` holds nothing
 * to free.
 *
 * The key: a token with a "kid" is verified by the public key of that id
 * only; one without is verified by the HMAC secret if its alg is HMAC, or
 * else by the sole public key when exactly one is configured.
 */
int gw_jwt_verify(const gw_jwt_verifier_t *v, const char *token, size_t len,
                  int64_t now, gw_jwt_claims_t *out);

void gw_jwt_claims_free(gw_jwt_claims_t *c);

/* True if the claims allow joining `guild`: no "guilds" claim, or listed. */
int gw_jwt_claims_allow_guild(const gw_jwt_claims_t *c, const char *guild);

#endif
