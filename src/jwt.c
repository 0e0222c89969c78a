/*
 * JWT verification: RFC 7519 claims in an RFC 7515 compact JWS signed with
 * HMAC, RSASSA-PKCS1-v1_5 or ECDSA (RFC 7518 sections 3.2 to 3.4).
 *
 * The order of the checks is the security argument. The header is decoded
 * only for its "alg", which must be accepted, and its "kid", which picks
 * one of the configured keys; the key decides what alg may be, never the
 * token (an RSA key is never an HMAC secret). The signature over the raw
 * "header.payload" bytes comes next; not one byte of the payload is
 * decoded before the signature has been verified.
 */
#include "gw/jwt.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/json.h"

#include <math.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Tokens come in a query string, a header or an identify frame and are a
 * few hundred bytes in practice; the cap bounds the JSON we parse and lets
 * the decoded parts live on the stack.
 */
#define JWT_MAX_LEN 8192
/* Each guild of a claim takes at least 4 bytes ("g",) of a payload that
 * is shorter than the token: the count fits a session's 16 bits. */
_Static_assert(JWT_MAX_LEN / 4 <= GW_JWT_MAX_GUILDS,
               "a token cannot list more guilds than a session counts");
/* The largest decoded part of a JWT_MAX_LEN token. */
#define JWT_MAX_DECODED (JWT_MAX_LEN / 4 * 3)
/* The longest MAC and digest (SHA-512), the largest digest block (SHA-384
 * and SHA-512), the longest signature (RSA-4096) and its base64url length. */
#define JWT_MAX_MAC 64
#define JWT_MAX_BLOCK 128
#define JWT_MAX_SIG (GW_JWKS_RSA_MAX_BITS / 8)
#define JWT_MAX_SIG_B64 ((JWT_MAX_SIG * 4 + 2) / 3)

/* One dot-separated part of a token, still base64url-encoded. */
typedef struct jwt_part {
    const char *p;
    size_t len;
} jwt_part_t;

typedef enum jwt_kind { JWT_HMAC, JWT_RSA, JWT_EC } jwt_kind_t;

/* The algorithms a verifier may be configured with; the HMAC ones first,
 * in the order of the verifier's pad[]. */
typedef struct jwt_alg {
    const char *name;     /* the header's "alg" */
    unsigned bit;         /* GW_JWT_* */
    jwt_kind_t kind;      /* the key it takes */
    mbedtls_md_type_t md; /* the digest of the MAC or signature */
    size_t block;         /* HMAC: the block size, which mbedtls 2 does not
                             tell */
} jwt_alg_t;

static const jwt_alg_t jwt_algs[] = {
    {"HS256", GW_JWT_HS256, JWT_HMAC, MBEDTLS_MD_SHA256, 64},
    {"HS384", GW_JWT_HS384, JWT_HMAC, MBEDTLS_MD_SHA384, 128},
    {"HS512", GW_JWT_HS512, JWT_HMAC, MBEDTLS_MD_SHA512, 128},
    {"RS256", GW_JWT_RS256, JWT_RSA, MBEDTLS_MD_SHA256, 0},
    {"RS384", GW_JWT_RS384, JWT_RSA, MBEDTLS_MD_SHA384, 0},
    {"RS512", GW_JWT_RS512, JWT_RSA, MBEDTLS_MD_SHA512, 0},
    {"ES256", GW_JWT_ES256, JWT_EC, MBEDTLS_MD_SHA256, 0},
    {"ES384", GW_JWT_ES384, JWT_EC, MBEDTLS_MD_SHA384, 0},
};
#define JWT_NALGS (sizeof(jwt_algs) / sizeof(jwt_algs[0]))
_Static_assert(GW_JWT_HMAC == (1 << GW_JWT_NHMAC) - 1,
               "the HMAC algorithms are the first bits, one pad pair each");

static const cJSON *jwt_get(const cJSON *obj, const char *name)
{
    /* Case-sensitive: cJSON_GetObjectItem would take "ALG" for "alg". */
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* "none" and every name we cannot check find nothing. */
static const jwt_alg_t *jwt_find_alg(const char *name)
{
    for (size_t i = 0; i < JWT_NALGS; i++)
        if (strcmp(name, jwt_algs[i].name) == 0)
            return &jwt_algs[i];
    return NULL;
}

unsigned gw_jwt_alg_bit(const char *name)
{
    const jwt_alg_t *alg = jwt_find_alg(name);

    return alg != NULL ? alg->bit : 0;
}

int gw_jwt_algs_parse(const char *list, unsigned *out)
{
    char name[8];
    size_t n;

    *out = 0;
    while (*list != '\0') {
        list += strspn(list, " ,");
        n = strcspn(list, " ,");
        if (n == 0)
            break;
        if (n >= sizeof(name))
            return GW_EINVAL;
        memcpy(name, list, n);
        name[n] = '\0';
        if (gw_jwt_alg_bit(name) == 0)
            return GW_EINVAL;
        *out |= gw_jwt_alg_bit(name);
        list += n;
    }
    return *out != 0 ? 0 : GW_EINVAL;
}

static int jwt_b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Strict: '=', '+', '/' and anything else outside the alphabet are
 * refused, and so are nonzero unused bits in the last character, so that
 * a token cannot be altered without breaking its signature.
 */
int gw_jwt_b64url_decode(const char *in, size_t len, uint8_t *out,
                         size_t *outlen)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    int v;

    /* A lone last character carries 6 bits: not even one byte. */
    if (len % 4 == 1)
        return GW_EPARSE;
    for (size_t i = 0; i < len; i++) {
        v = jwt_b64url_value((unsigned char)in[i]);
        if (v < 0)
            return GW_EPARSE;
        acc = (acc << 6 | (uint32_t)v) & 0xFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1))
        return GW_EPARSE;
    *outlen = n;
    return 0;
}

/* Splits a compact JWS into exactly three parts, header and payload
 * non-empty. The signature may be empty here; it then fails to verify. */
static int jwt_split(const char *token, size_t len, jwt_part_t part[3])
{
    const char *p = token, *end, *dot;

    /* Tested first: token may be NULL then, and NULL + 0 is undefined. */
    if (len == 0)
        return GW_EPARSE;
    end = token + len;
    for (int i = 0; i < 2; i++) {
        dot = memchr(p, '.', (size_t)(end - p));
        if (dot == NULL)
            return GW_EPARSE;
        part[i] = (jwt_part_t){p, (size_t)(dot - p)};
        p = dot + 1;
    }
    if (memchr(p, '.', (size_t)(end - p)) != NULL)
        return GW_EPARSE;
    part[2] = (jwt_part_t){p, (size_t)(end - p)};
    if (part[0].len == 0 || part[1].len == 0)
        return GW_EPARSE;
    return 0;
}

/*
 * Decodes a part and parses it as a JSON object into *out (the caller
 * deletes it), held to RFC 8259 by gw_json_parse: claims end up in logs
 * and in frames sent to clients. An escaped NUL is refused as well: cJSON
 * cuts a string there, so "alice\u0000x" would read as "alice". (A
 * literal backslash before "u0000" is refused too; no claim we read needs
 * one.)
 */
static int jwt_parse_object(const jwt_part_t *part, cJSON **out)
{
    uint8_t buf[JWT_MAX_DECODED];
    cJSON *json;
    size_t n;

    if (gw_jwt_b64url_decode(part->p, part->len, buf, &n) != 0 ||
        memmem(buf, n, "\\u0000", 6) != NULL)
        return GW_EPARSE;
    json = gw_json_parse((const char *)buf, n);
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return GW_EPARSE;
    }
    *out = json;
    return 0;
}

/*
 * Checks the JOSE header: "alg" must be one of the accepted algorithms
 * ("none" never is), "kid" a string if present. "crit" lists extensions
 * the recipient must understand (RFC 7515 section 4.1.11); we understand
 * none, so its presence refuses the token.
 */
static int jwt_check_header(const gw_jwt_verifier_t *v, const cJSON *hdr,
                            const jwt_alg_t **alg, const char **kid)
{
    const cJSON *name = jwt_get(hdr, "alg"), *typ = jwt_get(hdr, "typ");
    const cJSON *id = jwt_get(hdr, "kid");

    if (!cJSON_IsString(name) ||
        (*alg = jwt_find_alg(name->valuestring)) == NULL ||
        !(v->algs & (*alg)->bit))
        return GW_EALG;
    if (typ != NULL &&
        (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0))
        return GW_EPARSE;
    if (jwt_get(hdr, "crit") != NULL || (id != NULL && !cJSON_IsString(id)))
        return GW_EPARSE;
    *kid = id != NULL ? id->valuestring : NULL;
    return 0;
}

/*
 * The public key that verifies the token, or NULL for the HMAC secret.
 * A kid names a public key, and only that key may verify; a token without
 * one is the secret's if it is HMAC, else the sole public key's. Either
 * way the key must verify the token's alg: an RSA key used as an HMAC
 * secret, an ES384 token for a P-256 key, are refused here.
 */
static int jwt_select(const gw_jwt_verifier_t *v, const jwt_alg_t *alg,
                      const char *kid, const gw_jwt_key_t **key)
{
    *key = NULL;
    if (kid != NULL) {
        for (size_t i = 0; i < v->npub && *key == NULL; i++)
            if (strcmp(v->pub[i].kid, kid) == 0)
                *key = &v->pub[i];
        if (*key == NULL)
            return GW_ENOKEY;
    } else if (alg->kind != JWT_HMAC) {
        if (v->npub != 1)
            return GW_ENOKEY;
        *key = &v->pub[0];
    }
    if (*key != NULL && !((*key)->algs & alg->bit))
        return GW_EALG;
    return 0;
}

/* HMAC(key, in) into out, from the states after the pads (RFC 2104):
 * H(opad-state || H(ipad-state || in)). */
static int jwt_hmac(const mbedtls_md_context_t pad[2],
                    const mbedtls_md_info_t *md, const uint8_t *in,
                    size_t inlen, uint8_t *out)
{
    mbedtls_md_context_t ctx;
    uint8_t inner[JWT_MAX_MAC];
    int ret;

    mbedtls_md_init(&ctx);
    ret = mbedtls_md_setup(&ctx, md, 0) != 0 ||
          mbedtls_md_clone(&ctx, &pad[0]) != 0 ||
          mbedtls_md_update(&ctx, in, inlen) != 0 ||
          mbedtls_md_finish(&ctx, inner) != 0 ||
          mbedtls_md_clone(&ctx, &pad[1]) != 0 ||
          mbedtls_md_update(&ctx, inner, mbedtls_md_get_size(md)) != 0 ||
          mbedtls_md_finish(&ctx, out) != 0;
    mbedtls_md_free(&ctx);
    return ret ? GW_EAUTH : 0;
}

/*
 * Checks a MAC. The comparison takes the same time wherever the first
 * wrong byte is, so timing does not let an attacker forge a MAC byte by
 * byte.
 */
static int jwt_check_mac(const gw_jwt_verifier_t *v, const jwt_alg_t *alg,
                         const uint8_t *in, size_t inlen, const uint8_t *got,
                         size_t n)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(alg->md);
    uint8_t want[JWT_MAX_MAC];

    /* The HMAC algorithms come first in jwt_algs, as in pad[]. */
    if (n != mbedtls_md_get_size(md) ||
        jwt_hmac(v->pad[alg - jwt_algs], md, in, inlen, want) != 0)
        return GW_EAUTH;
    return mbedtls_ct_memcmp(want, got, n) == 0 ? 0 : GW_EAUTH;
}

/* An ECDSA signature as JWS carries it (RFC 7518 section 3.4): r and s,
 * each the curve's size, big-endian and concatenated, not DER. */
static int jwt_check_ecdsa(mbedtls_ecp_keypair *ec, const uint8_t *hash,
                           size_t hlen, const uint8_t *sig, size_t n)
{
    size_t size = (ec->grp.pbits + 7) / 8;
    mbedtls_mpi r, s;
    int ret;

    if (n != 2 * size)
        return GW_EAUTH;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ret = mbedtls_mpi_read_binary(&r, sig, size) != 0 ||
          mbedtls_mpi_read_binary(&s, sig + size, size) != 0 ||
          mbedtls_ecdsa_verify(&ec->grp, hash, hlen, &ec->Q, &r, &s) != 0;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return ret ? GW_EAUTH : 0;
}

/* Checks an RSA or ECDSA signature with key, whose type jwt_select matched
 * to alg through the algorithms the key was loaded for. */
static int jwt_check_pk(const gw_jwt_key_t *key, const jwt_alg_t *alg,
                        const uint8_t *in, size_t inlen, const uint8_t *sig,
                        size_t n)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(alg->md);
    mbedtls_pk_context *pk = (mbedtls_pk_context *)&key->pk;
    uint8_t hash[JWT_MAX_MAC];

    if (mbedtls_md(md, in, inlen, hash) != 0)
        return GW_EAUTH;
    if (alg->kind == JWT_EC)
        return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY
                   ? jwt_check_ecdsa(mbedtls_pk_ec(*pk), hash,
                                     mbedtls_md_get_size(md), sig, n)
                   : GW_EAUTH;
    /* A longer signature would verify in mbedtls and then be refused as
     * a length mismatch: refused first, whatever mbedtls makes of it. */
    if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_RSA ||
        n != mbedtls_pk_get_len(pk))
        return GW_EAUTH;
    return mbedtls_pk_verify(pk, alg->md, hash, mbedtls_md_get_size(md), sig,
                             n) == 0
               ? 0
               : GW_EAUTH;
}

/* Checks the signature of the signing input `in` (the token's own
 * "header.payload" bytes, never a re-encoding) with the selected key. */
static int jwt_check_signature(const gw_jwt_verifier_t *v, const jwt_alg_t *alg,
                               const gw_jwt_key_t *key, const char *in,
                               size_t inlen, const jwt_part_t *sig)
{
    uint8_t got[JWT_MAX_SIG];
    size_t n;

    /* An empty secret would let anyone sign; config refuses it, and init
     * leaves such an algorithm unready: this is the backstop. */
    if (!(v->ready & alg->bit))
        return GW_EAUTH;
    /* Longer than any signature: refused before decoding overflows got[]. */
    if (sig->len > JWT_MAX_SIG_B64)
        return GW_EAUTH;
    if (gw_jwt_b64url_decode(sig->p, sig->len, got, &n) != 0)
        return GW_EPARSE;
    if (key == NULL)
        return jwt_check_mac(v, alg, (const uint8_t *)in, inlen, got, n);
    return jwt_check_pk(key, alg, (const uint8_t *)in, inlen, got, n);
}

/*
 * Reads a NumericDate (RFC 7519 section 2). Fractions round to the strict
 * side (exp down, nbf up) and values beyond int64 saturate, since a cast
 * of an out-of-range double is undefined.
 */
static int jwt_numeric_date(const cJSON *item, int round_up, int64_t *out)
{
    double d;

    if (!cJSON_IsNumber(item) || isnan(item->valuedouble))
        return GW_EPARSE;
    d = item->valuedouble;
    if (d >= 9223372036854775808.0) {
        *out = INT64_MAX;
    } else if (d < -9223372036854775808.0) {
        *out = INT64_MIN;
    } else {
        *out = (int64_t)d;
        if (round_up && (double)*out < d)
            (*out)++;
        else if (!round_up && (double)*out > d)
            (*out)--;
    }
    return 0;
}

/* a + b, saturated: exp and nbf come from outside and may be huge. */
static int64_t jwt_add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

static int jwt_check_time(const gw_jwt_verifier_t *v, const cJSON *claims,
                          int64_t now, gw_jwt_claims_t *out)
{
    const cJSON *exp = jwt_get(claims, "exp"), *nbf = jwt_get(claims, "nbf");

    if (exp != NULL && jwt_numeric_date(exp, 0, &out->exp) != 0)
        return GW_EPARSE;
    if (nbf != NULL && jwt_numeric_date(nbf, 1, &out->nbf) != 0)
        return GW_EPARSE;
    if (exp != NULL && now > jwt_add_sat(out->exp, v->leeway_s))
        return GW_EEXPIRED;
    if (nbf != NULL && jwt_add_sat(now, v->leeway_s) < out->nbf)
        return GW_ENOTYET;
    return 0;
}

/* "aud" is one string or an array of strings (RFC 7519 section 4.1.3);
 * the configured audience must be among them. */
static int jwt_check_aud(const char *want, const cJSON *aud)
{
    const cJSON *it;

    if (want == NULL || want[0] == '\0')
        return 0;
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, want) == 0 ? 0 : GW_EAUTH;
    if (!cJSON_IsArray(aud))
        return GW_EAUTH;
    cJSON_ArrayForEach(it, aud)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, want) == 0)
            return 0;
    }
    return GW_EAUTH;
}

static int jwt_check_iss(const char *want, const cJSON *iss)
{
    if (want == NULL || want[0] == '\0')
        return 0;
    if (cJSON_IsString(iss) && strcmp(iss->valuestring, want) == 0)
        return 0;
    return GW_EAUTH;
}

/*
 * Copies the "guilds" claim. An empty array becomes a non-NULL list of
 * zero guilds, which allows none; only an absent claim (NULL) allows all.
 */
static int jwt_copy_guilds(const cJSON *guilds, gw_jwt_claims_t *out)
{
    const cJSON *it;

    if (guilds == NULL)
        return 0;
    if (!cJSON_IsArray(guilds))
        return GW_EPARSE;
    cJSON_ArrayForEach(it, guilds)
    {
        if (!cJSON_IsString(it))
            return GW_EPARSE;
    }
    out->guilds =
        gw_calloc((size_t)cJSON_GetArraySize(guilds) + 1, sizeof(*out->guilds));
    cJSON_ArrayForEach(it, guilds)
    {
        out->guilds[out->nguilds++] = gw_strdup(it->valuestring);
    }
    return 0;
}

/* Checks and copies the claims of a payload whose signature is good. */
static int jwt_read_claims(const gw_jwt_verifier_t *v, const cJSON *claims,
                           int64_t now, gw_jwt_claims_t *out)
{
    const cJSON *sub = jwt_get(claims, "sub");
    int ret;

    if (!cJSON_IsString(sub) || sub->valuestring[0] == '\0')
        return GW_EAUTH;
    if ((ret = jwt_check_time(v, claims, now, out)) != 0)
        return ret;
    if (jwt_check_aud(v->audience, jwt_get(claims, "aud")) != 0 ||
        jwt_check_iss(v->issuer, jwt_get(claims, "iss")) != 0)
        return GW_EAUTH;
    if ((ret = jwt_copy_guilds(jwt_get(claims, "guilds"), out)) != 0)
        return ret;
    out->sub = gw_strdup(sub->valuestring);
    return 0;
}

int gw_jwt_verify(const gw_jwt_verifier_t *v, const char *token, size_t len,
                  int64_t now, gw_jwt_claims_t *out)
{
    const jwt_alg_t *alg;
    const gw_jwt_key_t *key;
    const char *kid;
    cJSON *hdr = NULL, *claims = NULL;
    jwt_part_t part[3];
    int ret;

    memset(out, 0, sizeof(*out));
    if (len > JWT_MAX_LEN) {
        ret = GW_ETOOBIG;
        goto Error;
    }
    if ((ret = jwt_split(token, len, part)) != 0 ||
        (ret = jwt_parse_object(&part[0], &hdr)) != 0 ||
        (ret = jwt_check_header(v, hdr, &alg, &kid)) != 0 ||
        (ret = jwt_select(v, alg, kid, &key)) != 0)
        goto Error;
    /* The signing input runs from the token's start to the second dot. */
    if ((ret = jwt_check_signature(
             v, alg, key, token, part[0].len + 1 + part[1].len, &part[2])) != 0)
        goto Error;
    if ((ret = jwt_parse_object(&part[1], &claims)) == 0)
        ret = jwt_read_claims(v, claims, now, out);

Error:
    cJSON_Delete(hdr);
    cJSON_Delete(claims);
    if (ret != 0)
        gw_jwt_claims_free(out);
    return ret;
}

/* Hashes key ^ byte, padded to the block, into a fresh state. */
static int jwt_pad_state(mbedtls_md_context_t *ctx, const mbedtls_md_info_t *md,
                         const uint8_t *key, size_t block, uint8_t byte)
{
    uint8_t pad[JWT_MAX_BLOCK];
    int ret;

    for (size_t i = 0; i < block; i++)
        pad[i] = key[i] ^ byte;
    ret = mbedtls_md_setup(ctx, md, 0) != 0 || mbedtls_md_starts(ctx) != 0 ||
          mbedtls_md_update(ctx, pad, block) != 0;
    mbedtls_platform_zeroize(pad, sizeof(pad));
    return ret;
}

/* Prepares the pads of one HMAC algorithm from the secret. */
static void jwt_init_hmac(gw_jwt_verifier_t *v, const jwt_alg_t *alg)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(alg->md);
    mbedtls_md_context_t *pad = v->pad[alg - jwt_algs];
    uint8_t key[JWT_MAX_BLOCK] = {0};

    /* A key longer than the block is replaced by its digest (RFC 2104). */
    if (v->secret_len > alg->block) {
        if (mbedtls_md(md, v->secret, v->secret_len, key) != 0)
            abort();
    } else {
        memcpy(key, v->secret, v->secret_len);
    }
    /* mbedtls fails these only for want of memory. */
    if (jwt_pad_state(&pad[0], md, key, alg->block, 0x36) != 0 ||
        jwt_pad_state(&pad[1], md, key, alg->block, 0x5c) != 0)
        abort();
    mbedtls_platform_zeroize(key, sizeof(key));
    v->ready |= alg->bit;
}

/* Parses this verifier's own context of every public key that verifies
 * an accepted algorithm. The DER was written by gw_jwks from a checked
 * key: only a want of memory fails to parse it. */
static void jwt_init_pub(gw_jwt_verifier_t *v)
{
    const gw_jwks_key_t *k;
    gw_jwt_key_t *key;

    v->pub = gw_calloc(v->keys->n ? v->keys->n : 1, sizeof(*v->pub));
    for (size_t i = 0; i < v->keys->n; i++) {
        k = &v->keys->keys[i];
        if (!(k->algs & v->algs))
            continue;
        key = &v->pub[v->npub++];
        key->kid = k->kid;
        key->algs = k->algs & v->algs;
        mbedtls_pk_init(&key->pk);
        if (mbedtls_pk_parse_public_key(&key->pk, k->der, k->der_len) != 0)
            abort();
        v->ready |= key->algs;
    }
}

void gw_jwt_verifier_init(gw_jwt_verifier_t *v)
{
    v->ready = 0;
    v->pub = NULL;
    v->npub = 0;
    for (size_t i = 0; i < GW_JWT_NHMAC; i++) {
        mbedtls_md_init(&v->pad[i][0]);
        mbedtls_md_init(&v->pad[i][1]);
    }
    for (size_t i = 0; i < JWT_NALGS; i++)
        if (jwt_algs[i].kind == JWT_HMAC && (v->algs & jwt_algs[i].bit) &&
            v->secret != NULL && v->secret_len > 0)
            jwt_init_hmac(v, &jwt_algs[i]);
    if (v->keys != NULL)
        jwt_init_pub(v);
}

void gw_jwt_verifier_free(gw_jwt_verifier_t *v)
{
    for (size_t i = 0; i < GW_JWT_NHMAC; i++) {
        mbedtls_md_free(&v->pad[i][0]);
        mbedtls_md_free(&v->pad[i][1]);
    }
    for (size_t i = 0; i < v->npub; i++)
        mbedtls_pk_free(&v->pub[i].pk);
    free(v->pub);
    v->pub = NULL;
    v->npub = 0;
    v->ready = 0;
}

void gw_jwt_claims_free(gw_jwt_claims_t *c)
{
    free(c->sub);
    for (size_t i = 0; i < c->nguilds; i++)
        free(c->guilds[i]);
    free(c->guilds);
    memset(c, 0, sizeof(*c));
}

int gw_jwt_claims_allow_guild(const gw_jwt_claims_t *c, const char *guild)
{
    if (c->guilds == NULL)
        return 1;
    for (size_t i = 0; i < c->nguilds; i++)
        if (strcmp(c->guilds[i], guild) == 0)
            return 1;
    return 0;
}
