/*
 * HS256 JSON Web Tokens for identify, signed the way a backend would sign
 * them (RFC 7519 with the JWS compact serialisation of RFC 7515).
 */
#ifndef BENCH_TOKEN_H
#define BENCH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* Base64url of in without padding; out needs 4 * ceil(n / 3) + 1 bytes.
 * Returns the length written (a NUL follows). */
size_t token_b64url(const uint8_t *in, size_t n, char *out);

/*
 * Signs the claims (a JSON object's text) with secret. Returns the token's
 * length, or 0 when it does not fit in cap.
 */
size_t token_hs256(const char *secret, const char *claims, char *out,
                   size_t cap);

#endif
