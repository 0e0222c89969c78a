/*
 * Public keys for token signatures: from PEM documents and from JWKS
 * documents (RFC 7517; the RSA and EC members of RFC 7518 section 6).
 *
 * Every key, whatever it came from, goes through one mbedtls context that
 * is checked (modulus size, point on the curve) and written out as DER,
 * so that what a worker later parses is exactly what was checked here.
 */
#include "gw/jwks.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/json.h"
#include "gw/jwt.h"

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <stdlib.h>
#include <string.h>

/* A SubjectPublicKeyInfo of the largest RSA key takes about 550 bytes. */
#define JWKS_MAX_DER 1024
/* The longest member we decode: a 4096-bit modulus. */
#define JWKS_MAX_RAW (GW_JWKS_RSA_MAX_BITS / 8)
/* A JWKS document larger than this is not one. */
#define JWKS_MAX_DOC (1 << 20)

/* The algorithms a checked key verifies: RSA ones for an RSA key, the
 * one ECDSA of its curve for an EC key, none for anything else. */
static unsigned jwks_key_algs(const mbedtls_pk_context *pk)
{
    size_t bits;

    switch (mbedtls_pk_get_type(pk)) {
    case MBEDTLS_PK_RSA:
        bits = mbedtls_pk_get_bitlen(pk);
        return bits >= GW_JWKS_RSA_MIN_BITS && bits <= GW_JWKS_RSA_MAX_BITS
                   ? GW_JWT_RSA
                   : 0;
    case MBEDTLS_PK_ECKEY:
        switch (mbedtls_pk_ec(*pk)->grp.id) {
        case MBEDTLS_ECP_DP_SECP256R1: return GW_JWT_ES256;
        case MBEDTLS_ECP_DP_SECP384R1: return GW_JWT_ES384;
        default: return 0;
        }
    default: return 0;
    }
}

/* Adds pk as kid, verifying the algorithms of `only` that the key can.
 * Takes nothing of the caller's. */
static int jwks_add(gw_jwks_t *ks, const char *kid, mbedtls_pk_context *pk,
                    unsigned only)
{
    uint8_t der[JWKS_MAX_DER];
    unsigned algs = jwks_key_algs(pk) & only;
    gw_jwks_key_t *k;
    int n;

    if (algs == 0 || gw_jwks_find(ks, kid) != NULL)
        return GW_EINVAL;
    if (ks->n >= GW_JWKS_MAX_KEYS)
        return GW_ETOOBIG;
    /* Written backwards, at the end of der[]. */
    n = mbedtls_pk_write_pubkey_der(pk, der, sizeof(der));
    if (n <= 0)
        return GW_EINVAL;
    ks->keys = gw_realloc(ks->keys, (ks->n + 1) * sizeof(*ks->keys));
    k = &ks->keys[ks->n++];
    k->kid = gw_strdup(kid);
    k->algs = algs;
    k->der_len = (size_t)n;
    k->der = gw_malloc(k->der_len);
    memcpy(k->der, der + sizeof(der) - k->der_len, k->der_len);
    return 0;
}

int gw_jwks_add_pem(gw_jwks_t *ks, const char *kid, const uint8_t *buf,
                    size_t len)
{
    mbedtls_pk_context pk;
    uint8_t *copy = gw_malloc(len + 1);
    int ret;

    /* mbedtls reads PEM only from a NUL-terminated buffer, NUL counted. */
    memcpy(copy, buf, len);
    copy[len] = '\0';
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, copy, len + 1) != 0)
        ret = GW_EPARSE;
    else
        ret = jwks_add(ks, kid, &pk, GW_JWT_ALL);
    mbedtls_pk_free(&pk);
    free(copy);
    return ret;
}

/* A base64url member of a key, decoded: 0, or GW_EINVAL when missing,
 * malformed, or longer than max bytes. */
static int jwks_member(const cJSON *key, const char *name, uint8_t *out,
                       size_t max, size_t *n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(key, name);
    size_t len;

    if (!cJSON_IsString(v))
        return GW_EINVAL;
    len = strlen(v->valuestring);
    if (len == 0 || len > (max * 4 + 2) / 3)
        return GW_EINVAL;
    return gw_jwt_b64url_decode(v->valuestring, len, out, n) == 0 ? 0
                                                                  : GW_EINVAL;
}

static int jwks_rsa(const cJSON *key, mbedtls_pk_context *pk)
{
    uint8_t n[JWKS_MAX_RAW], e[8];
    size_t nlen, elen;
    mbedtls_rsa_context *rsa;

    if (jwks_member(key, "n", n, sizeof(n), &nlen) != 0 ||
        jwks_member(key, "e", e, sizeof(e), &elen) != 0 ||
        mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0)
        return GW_EINVAL;
    rsa = mbedtls_pk_rsa(*pk);
    if (mbedtls_rsa_import_raw(rsa, n, nlen, NULL, 0, NULL, 0, NULL, 0, e,
                               elen) != 0 ||
        mbedtls_rsa_complete(rsa) != 0 || mbedtls_rsa_check_pubkey(rsa) != 0)
        return GW_EINVAL;
    return 0;
}

/* The curve of "crv", or NONE for one we do not verify with. */
static mbedtls_ecp_group_id jwks_curve(const cJSON *crv)
{
    if (!cJSON_IsString(crv))
        return MBEDTLS_ECP_DP_NONE;
    if (strcmp(crv->valuestring, "P-256") == 0)
        return MBEDTLS_ECP_DP_SECP256R1;
    if (strcmp(crv->valuestring, "P-384") == 0)
        return MBEDTLS_ECP_DP_SECP384R1;
    return MBEDTLS_ECP_DP_NONE;
}

/* An EC key: x and y each exactly the curve's size (RFC 7518 section
 * 6.2.1.2), and the point on the curve. */
static int jwks_ec(const cJSON *key, mbedtls_ecp_group_id id,
                   mbedtls_pk_context *pk)
{
    uint8_t pt[1 + 2 * 48];
    size_t size = id == MBEDTLS_ECP_DP_SECP256R1 ? 32 : 48, xl, yl;
    mbedtls_ecp_keypair *ec;

    if (jwks_member(key, "x", pt + 1, size, &xl) != 0 ||
        jwks_member(key, "y", pt + 1 + size, size, &yl) != 0 || xl != size ||
        yl != size ||
        mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        return GW_EINVAL;
    pt[0] = 0x04; /* uncompressed */
    ec = mbedtls_pk_ec(*pk);
    if (mbedtls_ecp_group_load(&ec->grp, id) != 0 ||
        mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, pt, 1 + 2 * size) !=
            0 ||
        mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0)
        return GW_EINVAL;
    return 0;
}

/* Whether a JWK is a signing key of a kind we verify with; *only is the
 * algorithm its "alg" restricts it to, or every one. */
static int jwks_wanted(const cJSON *key, unsigned *only)
{
    const cJSON *use = cJSON_GetObjectItemCaseSensitive(key, "use");
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(key, "alg");
    const cJSON *kty = cJSON_GetObjectItemCaseSensitive(key, "kty");

    *only = GW_JWT_ALL;
    if (use != NULL &&
        (!cJSON_IsString(use) || strcmp(use->valuestring, "sig")))
        return 0;
    if (alg != NULL &&
        (!cJSON_IsString(alg) ||
         (*only = gw_jwt_alg_bit(alg->valuestring) & ~GW_JWT_HMAC) == 0))
        return 0;
    if (!cJSON_IsString(kty))
        return 0;
    if (strcmp(kty->valuestring, "RSA") == 0)
        return 1;
    return strcmp(kty->valuestring, "EC") == 0 &&
           jwks_curve(cJSON_GetObjectItemCaseSensitive(key, "crv")) !=
               MBEDTLS_ECP_DP_NONE;
}

/* One JWK: skipped (0), added (0), or refused. */
static int jwks_key(gw_jwks_t *ks, const cJSON *key)
{
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(key, "kid");
    const cJSON *kty = cJSON_GetObjectItemCaseSensitive(key, "kty");
    mbedtls_pk_context pk;
    unsigned only;
    int ret;

    if (!cJSON_IsObject(key))
        return GW_EINVAL;
    if (!jwks_wanted(key, &only))
        return 0;
    /* Tokens select keys by kid: a key without one could never be used. */
    if (!cJSON_IsString(kid) || kid->valuestring[0] == '\0')
        return GW_EINVAL;
    mbedtls_pk_init(&pk);
    if (strcmp(kty->valuestring, "RSA") == 0)
        ret = jwks_rsa(key, &pk);
    else
        ret = jwks_ec(
            key, jwks_curve(cJSON_GetObjectItemCaseSensitive(key, "crv")), &pk);
    if (ret == 0)
        ret = jwks_add(ks, kid->valuestring, &pk, only);
    mbedtls_pk_free(&pk);
    return ret;
}

int gw_jwks_parse(gw_jwks_t *ks, const char *buf, size_t len)
{
    size_t before = ks->n;
    cJSON *doc = len <= JWKS_MAX_DOC ? gw_json_parse(buf, len) : NULL;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
    const cJSON *key;
    int ret = 0;

    if (!cJSON_IsObject(doc) || !cJSON_IsArray(keys)) {
        ret = GW_EPARSE;
        goto Error;
    }
    cJSON_ArrayForEach(key, keys)
    {
        if ((ret = jwks_key(ks, key)) != 0)
            goto Error;
    }
Error:
    cJSON_Delete(doc);
    /* A refused document leaves nothing behind, not even the array an
     * empty set had not had. */
    while (ret != 0 && ks->n > before) {
        ks->n--;
        free(ks->keys[ks->n].kid);
        free(ks->keys[ks->n].der);
    }
    if (ret != 0 && before == 0) {
        free(ks->keys);
        ks->keys = NULL;
    }
    return ret;
}

const gw_jwks_key_t *gw_jwks_find(const gw_jwks_t *ks, const char *kid)
{
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->keys[i].kid, kid) == 0)
            return &ks->keys[i];
    return NULL;
}

void gw_jwks_free(gw_jwks_t *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->keys[i].kid);
        free(ks->keys[i].der);
    }
    free(ks->keys);
    *ks = (gw_jwks_t){NULL, 0};
}
