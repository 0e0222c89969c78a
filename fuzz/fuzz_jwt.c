/*
 * libFuzzer driver for gw_jwt_verify. Each input is tried five ways:
 *  1. as a token, under a fixed key, and under a verifier that also holds
 *     an EC P-256 key (kid "ec") and an RSA-2048 key (kid "rsa");
 *  2. split into a key (length in the first byte) and a token;
 *  3. as header and payload JSON, separated by the first NUL (or payload
 *     only, under a fixed HS256 header), which the driver encodes and signs
 *     itself: random bytes never carry a valid MAC, so this is the only way
 *     they reach the claim checks behind the signature;
 *  4. as a payload under an ES256 or RS256 header, signed with the
 *     driver's private key, so that the public-key path reaches the claims;
 *  5. as the signature bytes of a token for each public key, so that
 *     arbitrary r, s and RSA blocks reach the signature checks.
 * The keys are made once, from a fixed seed, so that a crash replays.
 * Beyond the sanitizers, it aborts on a result outside the documented set,
 * on claims left behind by a failure, and on success without a subject.
 */
#include "gw/error.h"
#include "gw/jwt.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
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

/* The public-key half of the driver, made on the first input. */
static struct {
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context ec, rsa; /* private keys */
    gw_jwks_t keys;             /* their public halves */
    gw_jwt_verifier_t v;        /* HS256 and every public algorithm */
} fuzz_pub;

static const char fuzz_es_header[] = "{\"alg\":\"ES256\",\"kid\":\"ec\"}";
static const char fuzz_rs_header[] = "{\"alg\":\"RS256\",\"kid\":\"rsa\"}";

static const char fuzz_valid[] = "{\"sub\":\"u\"}";

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

/* Verifies under v, prepared by gw_jwt_verifier_init; returns the
 * verdict. */
static int fuzz_verify_with(const gw_jwt_verifier_t *v, const char *tok,
                            size_t len)
{
    static const gw_jwt_claims_t zero;
    gw_jwt_claims_t c;
    int ret = gw_jwt_verify(v, tok, len, FUZZ_NOW, &c);

    if (!fuzz_known_result(ret))
        abort();
    if (ret != 0) {
        if (memcmp(&c, &zero, sizeof(c)) != 0)
            abort();
        return ret;
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
    return 0;
}

/* Verifies under a copy of the settings v, prepared for this call. */
static void fuzz_verify(const gw_jwt_verifier_t *v, const char *tok, size_t len)
{
    gw_jwt_verifier_t p = *v;

    gw_jwt_verifier_init(&p);
    fuzz_verify_with(&p, tok, len);
    gw_jwt_verifier_free(&p);
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

/* Not entropy: a fixed seed, so that the keys and every signature, hence
 * every input's path, are the same in each run. */
static int fuzz_seed(void *data, unsigned char *out, size_t len)
{
    (void)data;
    memset(out, 0x5a, len);
    return 0;
}

static void fuzz_add_key(mbedtls_pk_context *pk, const char *kid)
{
    unsigned char pem[4096];

    if (mbedtls_pk_write_pubkey_pem(pk, pem, sizeof(pem)) != 0 ||
        gw_jwks_add_pem(&fuzz_pub.keys, kid, pem, strlen((char *)pem) + 1) != 0)
        abort();
}

static void fuzz_pub_init(void)
{
    static int done;
    mbedtls_ctr_drbg_context *d = &fuzz_pub.drbg;

    if (done++)
        return;
    mbedtls_ctr_drbg_init(d);
    mbedtls_pk_init(&fuzz_pub.ec);
    mbedtls_pk_init(&fuzz_pub.rsa);
    if (mbedtls_ctr_drbg_seed(d, fuzz_seed, NULL, NULL, 0) != 0 ||
        mbedtls_pk_setup(&fuzz_pub.ec,
                         mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1,
                            mbedtls_pk_ec(fuzz_pub.ec), mbedtls_ctr_drbg_random,
                            d) != 0 ||
        mbedtls_pk_setup(&fuzz_pub.rsa,
                         mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0 ||
        mbedtls_rsa_gen_key(mbedtls_pk_rsa(fuzz_pub.rsa),
                            mbedtls_ctr_drbg_random, d, 2048, 65537) != 0)
        abort();
    fuzz_add_key(&fuzz_pub.ec, "ec");
    fuzz_add_key(&fuzz_pub.rsa, "rsa");
    fuzz_pub.v = (gw_jwt_verifier_t){
        .algs = GW_JWT_ALL,
        .secret = (const uint8_t *)fuzz_key,
        .secret_len = sizeof(fuzz_key) - 1,
        .keys = &fuzz_pub.keys,
    };
    gw_jwt_verifier_init(&fuzz_pub.v);
}

/* Encodes header.payload into a new buffer with room for a signature of
 * siglen bytes after it; *len is the signing input's length. */
static char *fuzz_input(const char *hdr, const uint8_t *body, size_t blen,
                        size_t siglen, size_t *len)
{
    size_t hlen = strlen(hdr);
    char *tok = malloc((hlen + blen + siglen) / 3 * 4 + 16);

    *len = fuzz_encode((const uint8_t *)hdr, hlen, tok);
    tok[(*len)++] = '.';
    *len += fuzz_encode(body, blen, tok + *len);
    return tok;
}

/* Signs header.payload with the driver's EC key (r and s as JWS carries
 * them) or RSA key (PKCS#1 v1.5) and verifies the token. */
static void fuzz_pk_signed(const uint8_t *body, size_t blen, int rsa)
{
    uint8_t hash[32], sig[512];
    size_t len, n = 64;
    mbedtls_mpi r, s;
    char *tok = fuzz_input(rsa ? fuzz_rs_header : fuzz_es_header, body, blen,
                           sizeof(sig), &len);
    int ret;

    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    mbedtls_sha256_ret((const uint8_t *)tok, len, hash, 0);
    if (rsa) {
        ret = mbedtls_pk_sign(&fuzz_pub.rsa, MBEDTLS_MD_SHA256, hash,
                              sizeof(hash), sig, &n, mbedtls_ctr_drbg_random,
                              &fuzz_pub.drbg);
    } else {
        mbedtls_ecp_keypair *ec = mbedtls_pk_ec(fuzz_pub.ec);
        ret = mbedtls_ecdsa_sign(&ec->grp, &r, &s, &ec->d, hash, sizeof(hash),
                                 mbedtls_ctr_drbg_random, &fuzz_pub.drbg) ||
              mbedtls_mpi_write_binary(&r, sig, 32) ||
              mbedtls_mpi_write_binary(&s, sig + 32, 32);
    }
    if (ret != 0)
        abort();
    tok[len++] = '.';
    len += fuzz_encode(sig, n, tok + len);
    /* The driver's own signature over the smallest valid payload must
     * pass: else this path tests nothing behind the signature. */
    if (fuzz_verify_with(&fuzz_pub.v, tok, len) != 0 &&
        blen == sizeof(fuzz_valid) - 1 && memcmp(body, fuzz_valid, blen) == 0)
        abort();
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    free(tok);
}

/* The input as the signature of a fixed token, for each public key. */
static void fuzz_pk_forged(const uint8_t *data, size_t size)
{
    const char *hdr[] = {fuzz_es_header, fuzz_rs_header};
    size_t len;

    for (size_t i = 0; i < 2; i++) {
        char *tok = fuzz_input(hdr[i], (const uint8_t *)fuzz_valid,
                               sizeof(fuzz_valid) - 1, size, &len);
        tok[len++] = '.';
        len += fuzz_encode(data, size, tok + len);
        fuzz_verify_with(&fuzz_pub.v, tok, len);
        free(tok);
    }
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

    fuzz_pub_init();
    fuzz_verify(&fuzz_plain, (const char *)data, size);
    (void)fuzz_verify_with(&fuzz_pub.v, (const char *)data, size);
    if (size > 0) {
        keylen = data[0] < size - 1 ? data[0] : size - 1;
        v.secret = data + 1;
        v.secret_len = keylen;
        fuzz_verify(&v, (const char *)data + 1 + keylen, size - 1 - keylen);
    }
    fuzz_signed(data, size);
    fuzz_pk_signed(data, size, 0);
    /* RSA signing costs milliseconds: one input in eight (the valid
     * payload among them). */
    if (size % 8 == sizeof(fuzz_valid) % 8 - 1)
        fuzz_pk_signed(data, size, 1);
    fuzz_pk_forged(data, size);
    return 0;
}
