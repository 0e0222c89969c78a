/*
 * Public keys: gw_jwks_add_pem and gw_jwks_parse, and gw_jwt_verify with
 * RS256/384/512 and ES256/384 under them. The keys are made by the test
 * (mbedtls's generators, a fresh set each run), written out as PEM and as
 * JWKS members, and the tokens signed here; so no key is trusted because
 * it is in the tree, and the JWKS path is checked against the PEM path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>

#include "gw/error.h"
#include "gw/jwks.h"
#include "gw/jwt.h"

#define NOW INT64_C(1700000000)
#define CLAIMS "{\"sub\":\"alice\",\"exp\":1800000000}"

static const char B64URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The keys of the run: RSA-2048, P-256, P-384, and a weak RSA-1024. */
static struct {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context rsa, p256, p384, rsa1024;
} K;

static int keys_setup(void **state)
{
    (void)state;
    mbedtls_entropy_init(&K.entropy);
    mbedtls_ctr_drbg_init(&K.drbg);
    if (mbedtls_ctr_drbg_seed(&K.drbg, mbedtls_entropy_func, &K.entropy,
                              (const uint8_t *)"test_jwks", 9) != 0)
        return -1;
    mbedtls_pk_init(&K.rsa);
    mbedtls_pk_init(&K.p256);
    mbedtls_pk_init(&K.p384);
    mbedtls_pk_init(&K.rsa1024);
    return mbedtls_pk_setup(&K.rsa,
                            mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) ||
           mbedtls_rsa_gen_key(mbedtls_pk_rsa(K.rsa), mbedtls_ctr_drbg_random,
                               &K.drbg, 2048, 65537) ||
           mbedtls_pk_setup(&K.rsa1024,
                            mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) ||
           mbedtls_rsa_gen_key(mbedtls_pk_rsa(K.rsa1024),
                               mbedtls_ctr_drbg_random, &K.drbg, 1024, 65537) ||
           mbedtls_pk_setup(&K.p256,
                            mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) ||
           mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(K.p256),
                               mbedtls_ctr_drbg_random, &K.drbg) ||
           mbedtls_pk_setup(&K.p384,
                            mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) ||
           mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP384R1, mbedtls_pk_ec(K.p384),
                               mbedtls_ctr_drbg_random, &K.drbg);
}

static int keys_teardown(void **state)
{
    (void)state;
    mbedtls_pk_free(&K.rsa);
    mbedtls_pk_free(&K.p256);
    mbedtls_pk_free(&K.p384);
    mbedtls_pk_free(&K.rsa1024);
    mbedtls_ctr_drbg_free(&K.drbg);
    mbedtls_entropy_free(&K.entropy);
    return 0;
}

/* Appends base64url(data), unpadded, at *len of out. */
static void b64(char *out, size_t *len, size_t cap, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint32_t acc = 0;
    unsigned bits = 0;

    assert_true(*len + n * 4 / 3 + 4 < cap);
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | p[i];
        for (bits += 8; bits >= 6;) {
            bits -= 6;
            out[(*len)++] = B64URL[acc >> bits & 63];
        }
    }
    if (bits > 0)
        out[(*len)++] = B64URL[acc << (6 - bits) & 63];
    out[*len] = '\0';
}

typedef struct token {
    char s[4096];
    size_t len;
} token_t;

typedef enum sig_form { SIG_RAW, SIG_DER } sig_form_t;

/* The signature of t's bytes with key under alg's digest: RSA PKCS#1
 * v1.5, or ECDSA as JWS has it (r || s), or as DER when form says so. */
static size_t sign(mbedtls_pk_context *key, mbedtls_md_type_t md,
                   const token_t *t, sig_form_t form, uint8_t *sig)
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
    uint8_t hash[64];
    size_t n = 0, size;
    mbedtls_ecp_keypair *ec;
    mbedtls_mpi r, s;

    assert_int_equal(mbedtls_md(info, (const uint8_t *)t->s, t->len, hash), 0);
    if (mbedtls_pk_get_type(key) == MBEDTLS_PK_RSA || form == SIG_DER) {
        assert_int_equal(mbedtls_pk_sign(key, md, hash, 0, sig, &n,
                                         mbedtls_ctr_drbg_random, &K.drbg),
                         0);
        return n;
    }
    ec = mbedtls_pk_ec(*key);
    size = (ec->grp.pbits + 7) / 8;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    assert_int_equal(mbedtls_ecdsa_sign(&ec->grp, &r, &s, &ec->d, hash,
                                        mbedtls_md_get_size(info),
                                        mbedtls_ctr_drbg_random, &K.drbg),
                     0);
    assert_int_equal(mbedtls_mpi_write_binary(&r, sig, size), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&s, sig + size, size), 0);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return 2 * size;
}

/* A token of header hdr and the CLAIMS, signed by key (or with `flip`
 * bit of the signature inverted when flip >= 0). */
static token_t *make_form(token_t *t, const char *hdr, mbedtls_pk_context *key,
                          mbedtls_md_type_t md, int flip, sig_form_t form)
{
    uint8_t sig[1024];
    size_t n;

    t->len = 0;
    b64(t->s, &t->len, sizeof(t->s), hdr, strlen(hdr));
    t->s[t->len++] = '.';
    b64(t->s, &t->len, sizeof(t->s), CLAIMS, strlen(CLAIMS));
    n = sign(key, md, t, form, sig);
    if (flip >= 0)
        sig[flip / 8] ^= (uint8_t)(1u << flip % 8);
    t->s[t->len++] = '.';
    b64(t->s, &t->len, sizeof(t->s), sig, n);
    return t;
}

static token_t *make(token_t *t, const char *hdr, mbedtls_pk_context *key,
                     mbedtls_md_type_t md)
{
    return make_form(t, hdr, key, md, -1, SIG_RAW);
}

/* v over ks verifies t: its result, the claims checked and freed. */
static int verify(gw_jwt_verifier_t v, const gw_jwks_t *ks, const token_t *t)
{
    gw_jwt_claims_t c;
    int ret;

    v.keys = ks;
    gw_jwt_verifier_init(&v);
    ret = gw_jwt_verify(&v, t->s, t->len, NOW, &c);
    if (ret == 0) {
        assert_string_equal(c.sub, "alice");
        gw_jwt_claims_free(&c);
    }
    gw_jwt_verifier_free(&v);
    return ret;
}

static const gw_jwt_verifier_t ALL = {
    .algs = GW_JWT_ALL, .secret = (const uint8_t *)"s3cret", .secret_len = 6};

static void add_pem(gw_jwks_t *ks, const char *kid, mbedtls_pk_context *key,
                    int want)
{
    uint8_t pem[4096];

    assert_int_equal(mbedtls_pk_write_pubkey_pem(key, pem, sizeof(pem)), 0);
    assert_int_equal(gw_jwks_add_pem(ks, kid, pem, strlen((char *)pem)), want);
}

/* The set of the three good keys, from PEM. */
static void pem_set(gw_jwks_t *ks)
{
    *ks = (gw_jwks_t){NULL, 0};
    add_pem(ks, "rsa", &K.rsa, 0);
    add_pem(ks, "p256", &K.p256, 0);
    add_pem(ks, "p384", &K.p384, 0);
}

static void test_pem_keys_verify(void **state)
{
    gw_jwks_t ks;
    token_t t;
    (void)state;

    pem_set(&ks);
    assert_int_equal(ks.n, 3);
    assert_int_equal(gw_jwks_find(&ks, "rsa")->algs, GW_JWT_RSA);
    assert_int_equal(gw_jwks_find(&ks, "p256")->algs, GW_JWT_ES256);
    assert_int_equal(gw_jwks_find(&ks, "p384")->algs, GW_JWT_ES384);
    make(&t, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", &K.rsa, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), 0);
    make(&t, "{\"alg\":\"RS384\",\"kid\":\"rsa\"}", &K.rsa, MBEDTLS_MD_SHA384);
    assert_int_equal(verify(ALL, &ks, &t), 0);
    make(&t, "{\"alg\":\"RS512\",\"kid\":\"rsa\"}", &K.rsa, MBEDTLS_MD_SHA512);
    assert_int_equal(verify(ALL, &ks, &t), 0);
    make(&t, "{\"alg\":\"ES256\",\"kid\":\"p256\"}", &K.p256,
         MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), 0);
    make(&t, "{\"alg\":\"ES384\",\"kid\":\"p384\"}", &K.p384,
         MBEDTLS_MD_SHA384);
    assert_int_equal(verify(ALL, &ks, &t), 0);
    gw_jwks_free(&ks);
}

/* Every bit of a signature counts, and an ECDSA signature in DER (what
 * OpenSSL writes, not what JWS carries) is refused. */
static void test_bad_signatures(void **state)
{
    gw_jwks_t ks;
    token_t t;
    (void)state;

    pem_set(&ks);
    for (int bit = 0; bit < 2048; bit += 97) {
        make_form(&t, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", &K.rsa,
                  MBEDTLS_MD_SHA256, bit, SIG_RAW);
        assert_int_equal(verify(ALL, &ks, &t), GW_EAUTH);
    }
    for (int bit = 0; bit < 512; bit += 31) {
        make_form(&t, "{\"alg\":\"ES256\",\"kid\":\"p256\"}", &K.p256,
                  MBEDTLS_MD_SHA256, bit, SIG_RAW);
        assert_int_equal(verify(ALL, &ks, &t), GW_EAUTH);
    }
    make_form(&t, "{\"alg\":\"ES256\",\"kid\":\"p256\"}", &K.p256,
              MBEDTLS_MD_SHA256, -1, SIG_DER);
    assert_int_equal(verify(ALL, &ks, &t), GW_EAUTH);
    /* Signed with the other digest than the header says. */
    make(&t, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", &K.rsa, MBEDTLS_MD_SHA384);
    assert_int_equal(verify(ALL, &ks, &t), GW_EAUTH);
    /* An empty signature, and one cut short. */
    make(&t, "{\"alg\":\"ES256\",\"kid\":\"p256\"}", &K.p256,
         MBEDTLS_MD_SHA256);
    t.len = (size_t)(strrchr(t.s, '.') - t.s) + 1;
    assert_int_equal(verify(ALL, &ks, &t), GW_EAUTH);
    make(&t, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", &K.rsa, MBEDTLS_MD_SHA256);
    t.len -= 6; /* 342 characters to 336: 252 whole bytes */
    assert_int_equal(verify(ALL, &ks, &t), GW_EAUTH);
    gw_jwks_free(&ks);
}

/* The HMAC of t keyed with the PEM text of key: the classic confusion of
 * a verifier that takes the token's word for what its key is. */
static token_t *make_hmac_with_pem(token_t *t, const char *hdr,
                                   mbedtls_pk_context *key)
{
    uint8_t pem[4096], mac[32];

    assert_int_equal(mbedtls_pk_write_pubkey_pem(key, pem, sizeof(pem)), 0);
    t->len = 0;
    b64(t->s, &t->len, sizeof(t->s), hdr, strlen(hdr));
    t->s[t->len++] = '.';
    b64(t->s, &t->len, sizeof(t->s), CLAIMS, strlen(CLAIMS));
    assert_int_equal(
        mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), pem,
                        strlen((char *)pem), (const uint8_t *)t->s, t->len,
                        mac),
        0);
    t->s[t->len++] = '.';
    b64(t->s, &t->len, sizeof(t->s), mac, sizeof(mac));
    return t;
}

static void test_alg_confusion(void **state)
{
    gw_jwt_verifier_t v = ALL;
    gw_jwks_t ks;
    token_t t;
    (void)state;

    pem_set(&ks);
    /* The RSA public key as an HMAC secret: by kid, and as the secret. */
    make_hmac_with_pem(&t, "{\"alg\":\"HS256\",\"kid\":\"rsa\"}", &K.rsa);
    assert_int_equal(verify(ALL, &ks, &t), GW_EALG);
    make_hmac_with_pem(&t, "{\"alg\":\"HS256\"}", &K.rsa);
    assert_int_equal(verify(ALL, &ks, &t), GW_EAUTH);
    /* A key of another type, or of another curve. */
    make(&t, "{\"alg\":\"RS256\",\"kid\":\"p256\"}", &K.rsa, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), GW_EALG);
    make(&t, "{\"alg\":\"ES256\",\"kid\":\"rsa\"}", &K.p256, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), GW_EALG);
    make(&t, "{\"alg\":\"ES384\",\"kid\":\"p256\"}", &K.p384,
         MBEDTLS_MD_SHA384);
    assert_int_equal(verify(ALL, &ks, &t), GW_EALG);
    make(&t, "{\"alg\":\"ES256\",\"kid\":\"p384\"}", &K.p256,
         MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), GW_EALG);
    /* "none", whatever the kid. */
    make(&t, "{\"alg\":\"none\",\"kid\":\"rsa\"}", &K.rsa, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), GW_EALG);
    /* A good token of an algorithm the configuration does not accept. */
    make(&t, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", &K.rsa, MBEDTLS_MD_SHA256);
    v.algs = GW_JWT_ALL & ~GW_JWT_RS256;
    assert_int_equal(verify(v, &ks, &t), GW_EALG);
    v.algs = GW_JWT_RS256;
    assert_int_equal(verify(v, &ks, &t), 0);
    gw_jwks_free(&ks);
}

/* A kid selects its key, and only that key; no kid means the secret for
 * HMAC, or the sole public key. */
static void test_kid_selection(void **state)
{
    gw_jwks_t ks, one = {NULL, 0};
    token_t t;
    (void)state;

    pem_set(&ks);
    make(&t, "{\"alg\":\"RS256\",\"kid\":\"rsa-old\"}", &K.rsa,
         MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), GW_ENOKEY);
    make(&t, "{\"alg\":\"RS256\"}", &K.rsa, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), GW_ENOKEY);
    make(&t, "{\"alg\":\"RS256\",\"kid\":7}", &K.rsa, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), GW_EPARSE);
    /* A sole key verifies tokens without a kid. */
    add_pem(&one, "only", &K.p256, 0);
    make(&t, "{\"alg\":\"ES256\"}", &K.p256, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &one, &t), 0);
    assert_int_equal(verify(ALL, NULL, &t), GW_ENOKEY);
    /* The same key under another kid is another key's token. */
    make(&t, "{\"alg\":\"ES256\",\"kid\":\"only\"}", &K.p256,
         MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &one, &t), 0);
    assert_int_equal(verify(ALL, &ks, &t), GW_ENOKEY);
    gw_jwks_free(&one);
    gw_jwks_free(&ks);
}

static void test_pem_refused(void **state)
{
    gw_jwks_t ks;
    static const char junk[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n"
                               "-----END PUBLIC KEY-----\n";
    (void)state;

    pem_set(&ks);
    add_pem(&ks, "weak", &K.rsa1024, GW_EINVAL);
    add_pem(&ks, "rsa", &K.p256, GW_EINVAL); /* kid taken */
    assert_int_equal(
        gw_jwks_add_pem(&ks, "j", (const uint8_t *)junk, sizeof(junk) - 1),
        GW_EPARSE);
    assert_int_equal(gw_jwks_add_pem(&ks, "e", (const uint8_t *)"", 0),
                     GW_EPARSE);
    assert_int_equal(ks.n, 3);
    gw_jwks_free(&ks);
    gw_jwks_free(&ks); /* harmless twice */
}

/* ---- JWKS documents ---------------------------------------------- */

/* Appends the JWK of key, with `extra` members (",..." or ""). */
static void jwk(char *doc, size_t *len, size_t cap, const char *kid,
                mbedtls_pk_context *key, const char *extra)
{
    uint8_t a[512], b[512];
    size_t an, bn;

    if (mbedtls_pk_get_type(key) == MBEDTLS_PK_RSA) {
        mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*key);
        an = mbedtls_rsa_get_len(rsa);
        bn = 3;
        assert_int_equal(mbedtls_rsa_export_raw(rsa, a, an, NULL, 0, NULL, 0,
                                                NULL, 0, b, bn),
                         0);
        *len += (size_t)snprintf(doc + *len, cap - *len,
                                 "{\"kty\":\"RSA\",\"kid\":\"%s\"%s,\"n\":\"",
                                 kid, extra);
        b64(doc, len, cap, a, an);
        *len += (size_t)snprintf(doc + *len, cap - *len, "\",\"e\":\"");
        b64(doc, len, cap, b, bn);
    } else {
        mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*key);
        an = bn = (ec->grp.pbits + 7) / 8;
        assert_int_equal(mbedtls_mpi_write_binary(&ec->Q.X, a, an), 0);
        assert_int_equal(mbedtls_mpi_write_binary(&ec->Q.Y, b, bn), 0);
        *len += (size_t)snprintf(
            doc + *len, cap - *len,
            "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\"%s,\"x\":\"", kid,
            an == 32 ? "P-256" : "P-384", extra);
        b64(doc, len, cap, a, an);
        *len += (size_t)snprintf(doc + *len, cap - *len, "\",\"y\":\"");
        b64(doc, len, cap, b, bn);
    }
    *len += (size_t)snprintf(doc + *len, cap - *len, "\"}");
}

static char DOC[16384];

/* {"keys":[rsa, p256, p384 as JWKs, then `more` ("" or ",{...}")]} */
static size_t jwks_doc(const char *more)
{
    size_t n = (size_t)snprintf(DOC, sizeof(DOC), "{\"keys\":[");

    jwk(DOC, &n, sizeof(DOC), "r1", &K.rsa, ",\"use\":\"sig\"");
    DOC[n++] = ',';
    jwk(DOC, &n, sizeof(DOC), "e1", &K.p256, ",\"alg\":\"ES256\"");
    DOC[n++] = ',';
    jwk(DOC, &n, sizeof(DOC), "e2", &K.p384, "");
    n += (size_t)snprintf(DOC + n, sizeof(DOC) - n, "%s]}", more);
    return n;
}

static void test_jwks_verify(void **state)
{
    gw_jwks_t ks = {NULL, 0};
    token_t t;
    (void)state;

    assert_int_equal(gw_jwks_parse(&ks, DOC, jwks_doc("")), 0);
    assert_int_equal(ks.n, 3);
    make(&t, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", &K.rsa, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), 0);
    make(&t, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", &K.p256, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), 0);
    make(&t, "{\"alg\":\"ES384\",\"kid\":\"e2\"}", &K.p384, MBEDTLS_MD_SHA384);
    assert_int_equal(verify(ALL, &ks, &t), 0);
    make(&t, "{\"alg\":\"ES256\",\"kid\":\"e2\"}", &K.p256, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), GW_EALG);
    gw_jwks_free(&ks);
}

/* A key's "alg" narrows what it verifies; keys not for us are skipped. */
static void test_jwks_alg_and_skips(void **state)
{
    gw_jwks_t ks = {NULL, 0};
    size_t n = (size_t)snprintf(DOC, sizeof(DOC), "{\"keys\":[");
    token_t t;
    (void)state;

    jwk(DOC, &n, sizeof(DOC), "r256", &K.rsa, ",\"alg\":\"RS256\"");
    n += (size_t)snprintf(
        DOC + n, sizeof(DOC) - n,
        ",{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}"
        ",{\"kty\":\"OKP\",\"kid\":\"o\",\"crv\":\"Ed25519\",\"x\":\"AA\"}"
        ",{\"kty\":\"EC\",\"kid\":\"p521\",\"crv\":\"P-521\",\"x\":\"AA\"}"
        ",{\"kty\":\"RSA\",\"kid\":\"enc\",\"use\":\"enc\",\"n\":\"AA\"}"
        ",{\"kty\":\"RSA\",\"kid\":\"ps\",\"alg\":\"PS256\",\"n\":\"AA\"}]}");
    assert_int_equal(gw_jwks_parse(&ks, DOC, n), 0);
    assert_int_equal(ks.n, 1);
    assert_int_equal(ks.keys[0].algs, GW_JWT_RS256);
    make(&t, "{\"alg\":\"RS256\",\"kid\":\"r256\"}", &K.rsa, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), 0);
    make(&t, "{\"alg\":\"RS512\",\"kid\":\"r256\"}", &K.rsa, MBEDTLS_MD_SHA512);
    assert_int_equal(verify(ALL, &ks, &t), GW_EALG);
    make(&t, "{\"alg\":\"HS256\",\"kid\":\"h\"}", &K.rsa, MBEDTLS_MD_SHA256);
    assert_int_equal(verify(ALL, &ks, &t), GW_ENOKEY);
    gw_jwks_free(&ks);
}

/* Documents refused whole, leaving the set as it was. */
static void test_jwks_refused(void **state)
{
    static const struct {
        const char *more;
        int want;
    } cases[] = {
        {",{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}",
         GW_EINVAL}, /* no kid */
        {",{\"kty\":\"EC\",\"kid\":\"x\",\"crv\":\"P-256\",\"x\":\"AA\","
         "\"y\":\"AA\"}",
         GW_EINVAL}, /* coordinates too short */
        {",{\"kty\":\"RSA\",\"kid\":\"x\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
         GW_EINVAL}, /* a modulus of 24 bits */
        {",{\"kty\":\"RSA\",\"kid\":\"x\",\"n\":\"A+B\",\"e\":\"AQAB\"}",
         GW_EINVAL}, /* not base64url */
        {",{\"kty\":\"RSA\",\"kid\":\"x\",\"e\":\"AQAB\"}", GW_EINVAL},
        {",7", GW_EINVAL},
    };
    gw_jwks_t ks = {NULL, 0};
    size_t n;
    (void)state;

    assert_int_equal(gw_jwks_parse(&ks, DOC, jwks_doc("")), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* A good key first: it must not stay behind. */
        n = (size_t)snprintf(DOC, sizeof(DOC), "{\"keys\":[");
        jwk(DOC, &n, sizeof(DOC), "fresh", &K.p256, "");
        n += (size_t)snprintf(DOC + n, sizeof(DOC) - n, "%s]}", cases[i].more);
        assert_int_equal(gw_jwks_parse(&ks, DOC, n), cases[i].want);
        assert_int_equal(ks.n, 3);
    }
    /* A real RSA key that says it is for ES256. */
    n = (size_t)snprintf(DOC, sizeof(DOC), "{\"keys\":[");
    jwk(DOC, &n, sizeof(DOC), "fresh", &K.rsa, ",\"alg\":\"ES256\"");
    n += (size_t)snprintf(DOC + n, sizeof(DOC) - n, "]}");
    assert_int_equal(gw_jwks_parse(&ks, DOC, n), GW_EINVAL);
    assert_int_equal(ks.n, 3);
    /* A duplicate kid, inside a document or across two. */
    assert_int_equal(gw_jwks_parse(&ks, DOC, jwks_doc("")), GW_EINVAL);
    assert_int_equal(ks.n, 3);
    gw_jwks_free(&ks);
}

/* A point moved off its curve: one bit of y. */
static void test_jwks_point_off_curve(void **state)
{
    gw_jwks_t ks = {NULL, 0};
    size_t n = (size_t)snprintf(DOC, sizeof(DOC), "{\"keys\":[");
    char *y;
    (void)state;

    jwk(DOC, &n, sizeof(DOC), "e", &K.p256, "");
    n += (size_t)snprintf(DOC + n, sizeof(DOC) - n, "]}");
    y = strstr(DOC, "\"y\":\"") + 5;
    *y = *y == 'A' ? 'B' : 'A';
    assert_int_equal(gw_jwks_parse(&ks, DOC, n), GW_EINVAL);
    assert_int_equal(ks.n, 0);
}

static void test_jwks_not_a_set(void **state)
{
    static const char *docs[] = {
        "",
        "[]",
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[]",
        "null",
        "{\"keys\":[]} x",
    };
    gw_jwks_t ks = {NULL, 0};
    (void)state;

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        assert_int_equal(gw_jwks_parse(&ks, docs[i], strlen(docs[i])),
                         GW_EPARSE);
    assert_int_equal(gw_jwks_parse(&ks, "{\"keys\":[]}", 11), 0);
    assert_int_equal(ks.n, 0);
}

/* Every proper prefix of a document, and every split of it into a
 * prefix parsed alone, fails cleanly: the parser never takes half a key. */
static void test_jwks_prefixes(void **state)
{
    gw_jwks_t ks = {NULL, 0};
    size_t n = jwks_doc("");
    (void)state;

    for (size_t i = 0; i < n; i++) {
        assert_int_not_equal(gw_jwks_parse(&ks, DOC, i), 0);
        assert_int_equal(ks.n, 0);
    }
    assert_int_equal(gw_jwks_parse(&ks, DOC, n), 0);
    gw_jwks_free(&ks);
}

static void test_jwks_too_many_keys(void **state)
{
    static char doc[GW_JWKS_MAX_KEYS * 400];
    gw_jwks_t ks = {NULL, 0};
    char kid[16];
    size_t n = (size_t)snprintf(doc, sizeof(doc), "{\"keys\":[");
    (void)state;

    for (int i = 0; i <= GW_JWKS_MAX_KEYS; i++) {
        snprintf(kid, sizeof(kid), "k%d", i);
        if (i > 0)
            doc[n++] = ',';
        jwk(doc, &n, sizeof(doc), kid, &K.p256, "");
    }
    n += (size_t)snprintf(doc + n, sizeof(doc) - n, "]}");
    assert_int_equal(gw_jwks_parse(&ks, doc, n), GW_ETOOBIG);
    assert_int_equal(ks.n, 0);
}

static void test_algs_parse(void **state)
{
    unsigned algs;
    (void)state;

    assert_int_equal(gw_jwt_algs_parse("HS256", &algs), 0);
    assert_int_equal(algs, GW_JWT_HS256);
    assert_int_equal(gw_jwt_algs_parse(" ES256,RS512 , HS256,", &algs), 0);
    assert_int_equal(algs, GW_JWT_ES256 | GW_JWT_RS512 | GW_JWT_HS256);
    assert_int_equal(gw_jwt_algs_parse("none", &algs), GW_EINVAL);
    assert_int_equal(gw_jwt_algs_parse("", &algs), GW_EINVAL);
    assert_int_equal(gw_jwt_algs_parse("HS256,ES256K", &algs), GW_EINVAL);
    assert_int_equal(gw_jwt_algs_parse("HS256X", &algs), GW_EINVAL);
    assert_int_equal(gw_jwt_alg_bit("es256"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pem_keys_verify),
        cmocka_unit_test(test_bad_signatures),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_kid_selection),
        cmocka_unit_test(test_pem_refused),
        cmocka_unit_test(test_jwks_verify),
        cmocka_unit_test(test_jwks_alg_and_skips),
        cmocka_unit_test(test_jwks_refused),
        cmocka_unit_test(test_jwks_point_off_curve),
        cmocka_unit_test(test_jwks_not_a_set),
        cmocka_unit_test(test_jwks_prefixes),
        cmocka_unit_test(test_jwks_too_many_keys),
        cmocka_unit_test(test_algs_parse),
    };
    return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
