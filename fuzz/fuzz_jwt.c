/*
 * libFuzzer driver for gw_jwt_verify. Each input is tried three ways:
 *  1. as a token, under a fixed key;
 *  2. split into a key (length in the first byte) and a token;
 *  3. as header and payload JSON, separated by the first NUL (or payload
 *     only, under a fixed HS256 header), which the driver encodes and signs
 *     itself: random bytes never carry a valid MAC, so this is the only way
 *     they reach the claim checks behind the signature.
 * Beyond the sanitizers, it aborts on a result outside the documented set,
 * on claims left behind by a failure, and on success without a subject.
 */
#include "gw/error.h"
#include "gw/jwt.h"

#include <mbedtls/md.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NOW INT64_C(1700000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_key[] = "fuzz-key";
static const char fuzz_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char fuzz_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const gw_jwt_verifier_t fuzz_plain = {
    .algs = GW_JWT_HS256,
    .secret = (const uint8_t *)fuzz_key,
    .secret_len = sizeof(fuzz_key) - 1,
};

static const gw_jwt_verifier_t fuzz_strict = {
    .algs = GW_JWT_HS256,
    .secret = (const uint8_t *)fuzz_key,
    .secret_len = sizeof(fuzz_key) - 1,
    .audience = "gatewayd",
    .issuer = "auth",
    .leeway_s = 60,
};

static int fuzz_known_result(int ret)
{
    switch (ret) {
    case 0:
    case GW_EPARSE:
    case GW_ETOOBIG:
    case GW_EAUTH:
    case GW_EEXPIRED:
    case GW_ENOTYET:
    case GW_EALG:
    case GW_ENOKEY: return 1;
    }
    return 0;
}

static void fuzz_verify(const gw_jwt_verifier_t *v, const char *tok, size_t len)
{
    static const gw_jwt_claims_t zero;
    gw_jwt_claims_t c;
    gw_jwt_verifier_t p = *v;
    int ret;

    gw_jwt_verifier_init(&p);
    ret = gw_jwt_verify(&p, tok, len, FUZZ_NOW, &c);
    gw_jwt_verifier_free(&p);
    if (!fuzz_known_result(ret))
        abort();
    if (ret != 0) {
        if (memcmp(&c, &zero, sizeof(c)) != 0)
            abort();
        return;
    }
    if (c.sub == NULL || c.sub[0] == '\0' ||
        (c.guilds == NULL && c.nguilds != 0))
        abort();
    for (size_t i = 0; i < c.nguilds; i++)
        if (!gw_jwt_claims_allow_guild(&c, c.guilds[i]))
            abort();
    /* No guilds claim allows every guild; a list, only what it names. */
    if (c.guilds == NULL && !gw_jwt_claims_allow_guild(&c, "unlisted"))
        abort();
    gw_jwt_claims_free(&c);
}

/* Appends base64url(p[0..n)) at out; returns the length written. */
static size_t fuzz_encode(const uint8_t *p, size_t n, char *out)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | p[i];
        for (bits += 8; bits >= 6; bits -= 6)
            out[o++] = fuzz_b64[acc >> (bits - 6) & 63];
    }
    if (bits > 0)
        out[o++] = fuzz_b64[acc << (6 - bits) & 63];
    return o;
}

static void fuzz_signed(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    const uint8_t *hdr = (const uint8_t *)fuzz_header, *body = data;
    size_t hlen = sizeof(fuzz_header) - 1, blen = size;
    uint8_t mac[32];
    char *tok;
    size_t len;

    if (nul != NULL) {
        hdr = data, hlen = (size_t)(nul - data);
        body = nul + 1, blen = size - hlen - 1;
    }
    tok = malloc((hlen + blen + sizeof(mac)) / 3 * 4 + 16);
    len = fuzz_encode(hdr, hlen, tok);
    tok[len++] = '.';
    len += fuzz_encode(body, blen, tok + len);
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                    (const uint8_t *)fuzz_key, sizeof(fuzz_key) - 1,
                    (const uint8_t *)tok, len, mac);
    tok[len++] = '.';
    len += fuzz_encode(mac, sizeof(mac), tok + len);
    fuzz_verify(&fuzz_plain, tok, len);
    fuzz_verify(&fuzz_strict, tok, len);
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_jwt_verifier_t v = fuzz_plain;
    size_t keylen;

    fuzz_verify(&fuzz_plain, (const char *)data, size);
    if (size > 0) {
        keylen = data[0] < size - 1 ? data[0] : size - 1;
        v.secret = data + 1;
        v.secret_len = keylen;
        fuzz_verify(&v, (const char *)data + 1 + keylen, size - 1 - keylen);
    }
    fuzz_signed(data, size);
    return 0;
}
