/*
 * The public keys that tokens may be signed with (SPEC section 5): RSA and
 * EC keys from PEM files and from a JSON Web Key Set (RFC 7517, RFC 7518
 * section 6), each with its key id and the JWS algorithms it verifies.
 *
 * A set is plain data, made once by the thread that loads the files and
 * then read, never written, by every worker: each key is kept as its DER
 * SubjectPublicKeyInfo, and each worker's verifier parses its own mbedtls
 * context from it (mbedtls caches state inside a key on first use, so one
 * context cannot be shared between threads).
 */
#ifndef GW_JWKS_H
#define GW_JWKS_H

#include <stddef.h>
#include <stdint.h>

/* The JWS algorithms a verifier knows, as bits of a set. */
enum {
    GW_JWT_HS256 = 1 << 0,
    GW_JWT_HS384 = 1 << 1,
    GW_JWT_HS512 = 1 << 2,
    GW_JWT_RS256 = 1 << 3,
    GW_JWT_RS384 = 1 << 4,
    GW_JWT_RS512 = 1 << 5,
    GW_JWT_ES256 = 1 << 6,
    GW_JWT_ES384 = 1 << 7,
};
#define GW_JWT_HMAC (GW_JWT_HS256 | GW_JWT_HS384 | GW_JWT_HS512)
#define GW_JWT_RSA (GW_JWT_RS256 | GW_JWT_RS384 | GW_JWT_RS512)
#define GW_JWT_ALL (GW_JWT_HMAC | GW_JWT_RSA | GW_JWT_ES256 | GW_JWT_ES384)

/* Keys a set holds at most: a JWKS of more is refused. */
#define GW_JWKS_MAX_KEYS 64
/* RSA moduli accepted, in bits: smaller is weak, larger only costs. */
#define GW_JWKS_RSA_MIN_BITS 2048
#define GW_JWKS_RSA_MAX_BITS 4096

typedef struct gw_jwks_key {
    char *kid;     /* owned: the key id tokens name it by */
    unsigned algs; /* the GW_JWT_* algorithms it verifies */
    uint8_t *der;  /* owned: SubjectPublicKeyInfo */
    size_t der_len;
} gw_jwks_key_t;

/* A set of public keys; zero-initialised is the empty set. */
typedef struct gw_jwks {
    gw_jwks_key_t *keys; /* owned */
    size_t n;
} gw_jwks_t;

/*
 * Parses a JWKS document (buf, len bytes) and adds its signing keys to ks.
 * Pure: no I/O. Keys that are not for us are skipped (a "use" other than
 * "sig", a kty other than RSA or EC, a curve other than P-256 and P-384,
 * an "alg" we do not verify); a key of ours that is malformed, an RSA
 * modulus out of bounds, a point off its curve, a missing or duplicate
 * kid refuse the whole document. 0, GW_EPARSE (not a JWKS), GW_EINVAL (a
 * bad key) or GW_ETOOBIG (more than GW_JWKS_MAX_KEYS); on error ks is as
 * it was.
 */
int gw_jwks_parse(gw_jwks_t *ks, const char *buf, size_t len);

/*
 * Adds the public key of a PEM document to ks under kid: RSA
 * within the bounds above, or EC on P-256 or P-384. 0, GW_EPARSE, or
 * GW_EINVAL (a key we do not verify with, or kid already in ks).
 */
int gw_jwks_add_pem(gw_jwks_t *ks, const char *kid, const uint8_t *buf,
                    size_t len);

/* The key named kid, or NULL. */
const gw_jwks_key_t *gw_jwks_find(const gw_jwks_t *ks, const char *kid);

void gw_jwks_free(gw_jwks_t *ks);

#endif
